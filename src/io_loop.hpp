// The engine's I/O thread: a libuv loop, a cross-thread task queue drained on
// each uv_async wake-up, and a timer queue driven by one uv_timer.
//
// Posting costs one mutex round and, only when the queue was empty, one
// uv_async_send (an eventfd write) made outside the mutex: a burst of posts
// between two loop turns wakes the loop once. A lazy post never wakes the
// loop: it runs at the next iteration (a uv_prepare handle).
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "gilmour/backend.hpp"

namespace gilmour::detail {

class IoLoop final : public IoContext {
 public:
  using Clock = std::chrono::steady_clock;
  /// Identifies a scheduled timer; a default TimerId is "none".
  struct TimerId {
    Clock::time_point when{};
    std::uint64_t seq = 0;
    explicit operator bool() const noexcept { return seq != 0; }
  };

  IoLoop();
  ~IoLoop() override;
  IoLoop(const IoLoop&) = delete;
  IoLoop& operator=(const IoLoop&) = delete;

  /// Starts the thread.
  void start();
  /// Asks the loop to finish: runs posted tasks, closes its own handles and
  /// joins. Tasks posted afterwards are dropped. Must not run on the loop.
  void stop_and_join();

  void post(std::function<void()> fn) override { try_post(std::move(fn)); }
  /// As post(); false when the loop is closing and `fn` was dropped.
  bool try_post(std::function<void()> fn);
  /// Runs `fn` on the I/O thread at the loop's next iteration, whatever
  /// wakes it (socket I/O, a timer, a post), without waking it: no eventfd
  /// write, no context switch. For work that may wait, e.g. forgetting a
  /// finished invocation whose deadline timer, if it fires first, does
  /// nothing. Any thread; dropped once the loop has closed. Lazy tasks run
  /// in order among themselves, not with post()'s.
  void post_lazy(std::function<void()> fn);
  /// Before start() only. Runs `fn` on the I/O thread after the callbacks of
  /// each loop iteration's I/O phase (uv_check) and again before the loop
  /// blocks (uv_prepare): where a batch collected while handling one socket
  /// read (or one drained batch of posts) is handed on whole.
  void set_batch_end(std::function<void()> fn) { batch_end_ = std::move(fn); }
  bool on_io_thread() const noexcept override;
  void* native_loop() noexcept override { return &loop_; }

  /// I/O thread only. Runs `fn` on the I/O thread after `delay`.
  TimerId schedule(std::chrono::milliseconds delay, std::function<void()> fn);
  /// I/O thread only. Cancels a timer that has not run; no-op otherwise.
  void cancel(TimerId id);

 private:
  static void on_async(uv_async_t* handle);
  static void on_timer(uv_timer_t* handle);
  static void on_prepare(uv_prepare_t* handle);
  static void on_check(uv_check_t* handle);
  void run_lazy();
  void drain();
  void wake() noexcept;  // uv_async_send, then releases a senders_ count
  void fire_timers();
  void arm_timer();

  uv_loop_t loop_{};
  uv_async_t async_{};
  uv_timer_t timer_{};
  uv_prepare_t prepare_{};  // runs lazy tasks and batch_end_ before each poll
  uv_check_t check_{};      // runs batch_end_ after each poll
  std::function<void()> batch_end_;
  std::thread thread_;
  std::atomic<std::thread::id> thread_id_{};
  std::mutex mu_;
  std::vector<std::function<void()>> queue_;
  std::vector<std::function<void()>> running_;
  std::vector<std::function<void()>> lazy_;  // guarded by mu_
  std::atomic<bool> lazy_pending_{false};    // lazy_ is not empty: checked unlocked
  bool closing_ = false;                     // guarded by mu_
  bool closed_ = false;                      // guarded by mu_: async_ is closed
  bool started_ = false;                     // guarded by mu_
  // Threads between deciding to wake the loop (under mu_) and the end of
  // their uv_async_send: async_ is not closed while non-zero.
  std::atomic<int> senders_{0};
  std::map<std::pair<Clock::time_point, std::uint64_t>, std::function<void()>> timers_;
  std::uint64_t next_timer_ = 0;
  Clock::time_point armed_for_{Clock::time_point::max()};
};

}  // namespace gilmour::detail
