// Capture and Counter (support/backends.hpp): no GoogleTest, so that the
// benchmarks can link the fixtures that use them.
#include <utility>

#include "support/backends.hpp"
#include "support/timing.hpp"

namespace gilmour::test {

std::vector<std::pair<std::string, std::string>> Capture::wait_for(std::size_t n,
                                                                   std::chrono::milliseconds t) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, scaled(t), [&] { return got_.size() >= n; });
  return got_;
}

std::vector<std::pair<std::string, std::string>> Capture::snapshot() {
  std::lock_guard<std::mutex> lock(mu_);
  return got_;
}

// Notifying under the lock: once a waiter sees the condition, the notifier
// no longer touches the object, so a test may destroy it right away.
void Capture::add(std::string channel, std::string payload) {
  std::lock_guard<std::mutex> lock(mu_);
  got_.emplace_back(std::move(channel), std::move(payload));
  cv_.notify_all();
}

void Counter::add(std::size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  n_ += n;
  cv_.notify_all();
}

std::size_t Counter::value() {
  std::lock_guard<std::mutex> lock(mu_);
  return n_;
}

bool Counter::wait_for(std::size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, scaled(timeout), [&] { return n_ >= n; });
}

}  // namespace gilmour::test
