// Steady request traffic for failure tests: one thread keeps a window of
// requests in flight (request i carries the payload i) and records the codes
// each request completed with, so a test can check that every request
// completed exactly once and how soon requests succeeded again.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "integration/state_log.hpp"
#include "support/backends.hpp"
#include "support/timing.hpp"

namespace gilmour::test {

class RequestTraffic {
 public:
  using Clock = std::chrono::steady_clock;

  /// Starts sending requests to `topic` from `client` (window of `window`,
  /// client timeout `timeout`). `states` are the client's connection states:
  /// while it is down requests fail at once, so the thread paces on them.
  RequestTraffic(Gilmour& client, std::string topic, StateLog& states,
                 std::chrono::milliseconds timeout = std::chrono::milliseconds(1500),
                 int window = 16)
      : client_(client), topic_(std::move(topic)), states_(states), timeout_(timeout) {
    thread_ = std::thread([this, window] { run(window); });
  }
  ~RequestTraffic() { stop(); }
  RequestTraffic(const RequestTraffic&) = delete;
  RequestTraffic& operator=(const RequestTraffic&) = delete;

  /// Waits until `n` requests succeeded in all, for at most scaled(timeout).
  bool wait_ok(int n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, scaled(timeout), [&] { return ok_total_ >= n; });
  }
  int ok_total() {
    std::lock_guard<std::mutex> lock(mu_);
    return ok_total_;
  }
  /// From now on, issued requests are "new": first_new_ok() is the time the
  /// first of them succeeded.
  void mark_new() {
    std::lock_guard<std::mutex> lock(mu_);
    first_new_ = issued_;
    first_new_ok_ = Clock::time_point{};
  }
  /// Waits until a request issued after mark_new() succeeded, at most until
  /// `deadline`; returns when it did (or Clock::time_point{}).
  Clock::time_point wait_first_new_ok(Clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_until(lock, deadline, [&] { return first_new_ok_ != Clock::time_point{}; });
    return first_new_ok_;
  }
  /// Stops issuing and joins the thread.
  void stop() {
    stop_.store(true);
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  /// After stop(): waits until every issued request completed.
  bool wait_all_completed(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, scaled(timeout), [&] { return completed_ >= issued_; });
  }
  int issued() {
    std::lock_guard<std::mutex> lock(mu_);
    return issued_;
  }
  /// Request number -> the codes it completed with.
  std::map<int, std::vector<int>> codes() {
    std::lock_guard<std::mutex> lock(mu_);
    return codes_;
  }

 private:
  void run(int window) {
    for (int i = 0; !stop_.load(); ++i) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_.load() || issued_ - completed_ < window; });
        if (stop_.load()) break;
        ++issued_;
      }
      client_.request(topic_, i, [this, i](Message m) { done(i, m.code()); }, {timeout_});
      auto lost = states_.count(ConnectionState::kDisconnected);
      auto back = states_.count(ConnectionState::kReconnected);
      if (lost > back) {
        // Down: requests fail at once (503); pace on the reconnection event
        // rather than spinning.
        states_.wait_for(ConnectionState::kReconnected, back + 1, std::chrono::milliseconds(100));
      }
    }
  }

  void done(int i, int code) {
    std::lock_guard<std::mutex> lock(mu_);
    codes_[i].push_back(code);
    ++completed_;
    if (code == 200) {
      ++ok_total_;
      if (first_new_ >= 0 && i >= first_new_ && first_new_ok_ == Clock::time_point{}) {
        first_new_ok_ = Clock::now();
      }
    }
    cv_.notify_all();
  }

  Gilmour& client_;
  std::string topic_;
  StateLog& states_;
  std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, std::vector<int>> codes_;
  int issued_ = 0, completed_ = 0, ok_total_ = 0;
  int first_new_ = -1;
  Clock::time_point first_new_ok_{};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// After wait_all_completed(): every request completed exactly once, with
/// 200, 499 (timed out: its response was lost) or 503 (not sent); returns
/// the count per code, also printed as `[ label ] N requests: 200xA ...`.
inline std::map<int, int> expect_each_completed_once(RequestTraffic& traffic,
                                                     const std::string& label) {
  auto codes = traffic.codes();
  std::map<int, int> by_code;
  for (auto& [i, cs] : codes) {
    EXPECT_EQ(cs.size(), 1u) << "request " << i << " completed " << cs.size() << " times";
    if (cs.empty()) continue;
    EXPECT_TRUE(cs[0] == 200 || cs[0] == 499 || cs[0] == 503) << i << ": " << cs[0];
    ++by_code[cs[0]];
  }
  EXPECT_EQ(static_cast<int>(codes.size()), traffic.issued());
  std::cout << "[ " << label << " ] " << traffic.issued() << " requests:";
  for (auto& [c, n] : by_code) std::cout << " " << c << "x" << n;
  std::cout << "\n";
  return by_code;
}

/// How often a replier ran for each request of a RequestTraffic (request i
/// carries the payload i): echo() is the counting replier, and
/// expect_handled_at_most_once() the check that a failover handled no
/// request twice and every answered request once.
class HandledCount {
 public:
  /// A reply handler (any thread) that counts the request and echoes it.
  ReplyHandler echo() {
    return [this](const Request& r, Response& res) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++handled_[r.data<int>()];
      }
      res.set_data(r.data());
    };
  }
  /// After wait_all_completed(): no request was handled twice, and each
  /// answered 200 was handled.
  void expect_handled_at_most_once(RequestTraffic& traffic) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [i, cs] : traffic.codes()) {
      EXPECT_LE(handled_[i], 1) << "request " << i << " handled " << handled_[i] << " times";
      if (cs == std::vector<int>{200}) {
        EXPECT_EQ(handled_[i], 1) << "request " << i << " answered but not handled";
      }
    }
  }

 private:
  std::mutex mu_;
  std::map<int, int> handled_;  // request payload -> times the replier ran for it
};

/// The end of a failover test: `100` more successes (within 10 s, scaled),
/// then the traffic stops, every request completes (5 s) exactly once
/// (expect_each_completed_once, as `label`), none handled twice.
inline void expect_failover_completed(RequestTraffic& traffic, HandledCount& handled,
                                      const std::string& label) {
  ASSERT_TRUE(traffic.wait_ok(traffic.ok_total() + 100, std::chrono::seconds(10)));
  traffic.stop();
  ASSERT_TRUE(traffic.wait_all_completed(std::chrono::seconds(5)));
  expect_each_completed_once(traffic, label);
  handled.expect_handled_at_most_once(traffic);
}

/// Milliseconds in `d`, for reports.
inline long long ms_of(RequestTraffic::Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace gilmour::test
