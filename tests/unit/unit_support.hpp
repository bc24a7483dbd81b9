// What the unit tests of the engine's threading pieces share: a patience
// that is only reached when something is broken, and a counter to wait on.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace gilmour::unit {

using namespace std::chrono_literals;
inline constexpr auto kPatience = 60s;  // only ever reached when something is broken

/// A counter that can be waited on.
class Counter {
 public:
  void add(int n = 1) {
    std::lock_guard<std::mutex> lock(mu_);
    n_ += n;
    cv_.notify_all();
  }
  bool wait_for_at_least(int n, std::chrono::seconds patience = kPatience) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, patience, [&] { return n_ >= n; });
  }
  int get() {
    std::lock_guard<std::mutex> lock(mu_);
    return n_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int n_ = 0;
};

}  // namespace gilmour::unit
