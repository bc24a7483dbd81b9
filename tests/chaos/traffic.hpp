// Steady request and signal traffic from one engine, with a ledger of every
// request (when sent, every answer) and signal (the publish's outcome): what
// the chaos run counts lost, duplicated, failed and recovered from.
//
// Thread safety: every member is thread-safe; start() and stop() are called
// by one controlling thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <gilmour/gilmour.hpp>
#include <mutex>
#include <optional>
#include <thread>

#include "chaos/roles.hpp"

namespace gilmour::chaos {

using Clock = std::chrono::steady_clock;

/// One request: its data is its id, and a correct answer is 200 with the id.
struct RequestRecord {
  Clock::time_point sent;
  Clock::time_point answered;  ///< of the first answer
  int answers = 0;             ///< completions of the request (exactly 1 is correct)
  int code = 0;                ///< of the first answer
  bool wrong = false;          ///< answered 200 with another request's data
  bool threw = false;          ///< request() threw (then answers stays 0)
};

/// One signal with a callback: whether it was published and how many
/// subscriptions Redis delivered it to.
struct SignalRecord {
  bool done = false;
  bool published = false;
  std::int64_t receivers = 0;
  bool threw = false;
};

class Traffic {
 public:
  /// Requests on topics.request at `rate` per second, each with `timeout`,
  /// and a signal (data `{"id": N}`) on topics.signal with every
  /// `signal_every`-th request.
  Traffic(Gilmour& g, Topics topics, int rate, int signal_every, std::chrono::milliseconds timeout);
  ~Traffic();
  Traffic(const Traffic&) = delete;
  Traffic& operator=(const Traffic&) = delete;

  /// Starts sending (on a thread of its own) / stops and joins it.
  void start();
  void stop();

  /// The id the next request / signal will get.
  std::int64_t next_request_id() const;
  std::int64_t next_signal_id() const;
  /// Waits until a request sent at or after `since` is answered 200; its
  /// answer time, or nullopt when none came within `timeout`.
  std::optional<Clock::time_point> wait_first_ok_after(Clock::time_point since,
                                                       std::chrono::milliseconds timeout);
  /// Waits until every request and signal so far completed or `deadline`
  /// passed; returns how many requests have no answer.
  std::size_t wait_all_done(Clock::time_point deadline);
  /// When the last request was sent.
  Clock::time_point last_sent() const;
  /// Copies of the records with ids in [from, to).
  std::vector<RequestRecord> requests(std::int64_t from, std::int64_t to) const;
  std::vector<SignalRecord> signals(std::int64_t from, std::int64_t to) const;

 private:
  void run();
  void send_request();
  void send_signal();
  void on_answer(std::int64_t id, const Message& m);
  std::size_t unanswered_locked() const;

  Gilmour& g_;
  Topics topics_;
  std::chrono::microseconds period_;
  int signal_every_;
  std::chrono::milliseconds timeout_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<RequestRecord> requests_;
  std::deque<SignalRecord> signals_;
  std::size_t open_ = 0;  // requests and signals not completed
  bool stopping_ = false;
  std::thread sender_;
};

}  // namespace gilmour::chaos
