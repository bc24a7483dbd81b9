// The bound on outbound work an engine holds (EngineOptions::max_outstanding
// and max_outstanding_bytes): requests from request() until they complete,
// signals from signal() until their publish is acknowledged.
//
// Taking and returning room is lock-free (a compare-and-swap on each of two
// counters); the mutex is taken only by callers that wait for room and by a
// release that sees such a waiter. Neither count ever exceeds its bound,
// except that one message larger than the byte bound is admitted when
// nothing else is outstanding (it could never fit otherwise).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace gilmour::detail {

class OutboundBudget {
 public:
  OutboundBudget(std::size_t max_count, std::size_t max_bytes) noexcept
      : max_count_(static_cast<std::int64_t>(max_count)),
        max_bytes_(static_cast<std::int64_t>(max_bytes)) {}

  /// Takes room for one message of `bytes`; false when there is none.
  bool try_acquire(std::size_t bytes) noexcept;
  /// As try_acquire(), waiting until `deadline` for room. False at the
  /// deadline, or at once (and for every waiter) after close().
  bool acquire_until(std::size_t bytes, std::chrono::steady_clock::time_point deadline);
  /// Gives back what try_acquire() took for a message of `bytes`. Waiters
  /// are woken once the count and the bytes are both at most half their
  /// bounds, or nothing is outstanding (each waiter still takes room only
  /// when its message fits).
  void release(std::size_t bytes) noexcept;
  /// Wakes every waiter and makes later waits fail at once (stop());
  /// try_acquire() still works.
  void close();
  bool closed() const noexcept { return closed_.load(); }

  std::int64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  std::int64_t bytes() const noexcept { return bytes_.load(std::memory_order_relaxed); }

 private:
  /// One attempt; `gave_back` is set when the count was taken and returned
  /// (the bytes did not fit), which a waiter on the count must hear about.
  bool take(std::size_t bytes, bool* gave_back) noexcept;
  void wake_waiters();

  const std::int64_t max_count_;
  const std::int64_t max_bytes_;
  std::atomic<std::int64_t> count_{0};
  std::atomic<std::int64_t> bytes_{0};
  // Waiters announce themselves here (sequentially consistent, as the
  // counters) before testing for room, so a release either is seen by the
  // test or sees the waiter and wakes it under the mutex: no lost wake-up.
  std::atomic<int> waiters_{0};
  std::atomic<bool> closed_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace gilmour::detail
