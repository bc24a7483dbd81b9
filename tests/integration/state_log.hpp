// What the Redis connection tests share: the connection states an engine
// reported (to wait on), and the error text of a failed start().
#pragma once

#include <gtest/gtest.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/backends.hpp"
#include "support/timing.hpp"

namespace gilmour::test {

/// The connection states an engine reported through
/// EngineOptions::on_connection_state, for a test to wait on.
class StateLog {
 public:
  void add(ConnectionState s, std::string_view detail) {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.emplace_back(s, std::string(detail));
    cv_.notify_all();
  }
  /// Waits until `state` was reported `n` times, for at most scaled(timeout).
  bool wait_for(ConnectionState state, std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, scaled(timeout), [&] { return count_locked(state) >= n; });
  }
  std::string detail_of_first(ConnectionState state) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [s, d] : seen_)
      if (s == state) return d;
    return {};
  }
  std::size_t count(ConnectionState state) {
    std::lock_guard<std::mutex> lock(mu_);
    return count_locked(state);
  }

 private:
  std::size_t count_locked(ConnectionState state) const {
    std::size_t n = 0;
    for (auto& e : seen_) n += e.first == state;
    return n;
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<ConnectionState, std::string>> seen_;
};

/// Engine options whose connection states a test can wait on.
struct Watched {
  std::shared_ptr<StateLog> log;
  EngineOptions options;
};
inline Watched watched() {
  Watched w{std::make_shared<StateLog>(), test_options()};
  w.options.on_connection_state = [log = w.log](ConnectionState s, std::string_view d) {
    log->add(s, d);
  };
  return w;
}
inline constexpr auto kLost = ConnectionState::kDisconnected;
inline constexpr auto kBack = ConnectionState::kReconnected;

inline std::string start_error(std::shared_ptr<Backend> b) {
  Gilmour g(std::move(b), test_options());
  try {
    g.start();
  } catch (const ConnectionError& e) {
    return e.what();
  }
  return "";
}

}  // namespace gilmour::test
