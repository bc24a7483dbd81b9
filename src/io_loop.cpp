#include "io_loop.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace gilmour::detail {

IoLoop::IoLoop() {
  if (uv_loop_init(&loop_) != 0 || uv_async_init(&loop_, &async_, &IoLoop::on_async) != 0 ||
      uv_timer_init(&loop_, &timer_) != 0 || uv_prepare_init(&loop_, &prepare_) != 0 ||
      uv_prepare_start(&prepare_, &IoLoop::on_prepare) != 0 ||
      uv_check_init(&loop_, &check_) != 0 || uv_check_start(&check_, &IoLoop::on_check) != 0) {
    std::fprintf(stderr, "gilmour: cannot initialise the libuv loop\n");
    std::abort();
  }
  async_.data = this;
  timer_.data = this;
  prepare_.data = this;
  check_.data = this;
}

IoLoop::~IoLoop() {
  if (started_) {
    stop_and_join();
  } else {
    // Never ran: close the handles on this thread.
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&prepare_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&check_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }
}

void IoLoop::start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    started_ = true;
  }
  thread_ = std::thread([this] {
    thread_id_.store(std::this_thread::get_id());
    uv_run(&loop_, UV_RUN_DEFAULT);
    // Everything the loop owned must be closed now; run close callbacks.
    uv_run(&loop_, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop_) == UV_EBUSY) {
      uv_walk(
          &loop_,
          [](uv_handle_t* h, void*) {
            if (!uv_is_closing(h)) uv_close(h, nullptr);
          },
          nullptr);
      uv_run(&loop_, UV_RUN_DEFAULT);
      uv_loop_close(&loop_);
    }
    thread_id_.store(std::thread::id());  // a later thread reusing the id is not "on the loop"
  });
}

void IoLoop::stop_and_join() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
    senders_.fetch_add(1, std::memory_order_relaxed);  // see try_post
  }
  wake();
  thread_.join();
  std::vector<std::function<void()>> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dropped.swap(queue_);
    for (auto& fn : lazy_) dropped.push_back(std::move(fn));
    lazy_.clear();
  }
}

bool IoLoop::try_post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_ || (closing_ && !on_io_thread()) || closed_) return false;
    queue_.push_back(std::move(fn));
    // Only the post that makes the queue non-empty wakes the loop: drain()
    // empties the queue under the lock before running it, so a non-empty
    // queue has a wake-up on its way. The send itself happens after the
    // lock is released; senders_ (raised under the lock) keeps the loop from
    // closing async_ until it is done.
    if (queue_.size() != 1) return true;
    senders_.fetch_add(1, std::memory_order_relaxed);
  }
  wake();
  return true;
}

void IoLoop::post_lazy(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!started_ || closed_) return;
  lazy_.push_back(std::move(fn));
  lazy_pending_.store(true, std::memory_order_release);
}

void IoLoop::on_prepare(uv_prepare_t* handle) {
  auto* self = static_cast<IoLoop*>(handle->data);
  self->run_lazy();
  if (self->batch_end_) self->batch_end_();
}

void IoLoop::on_check(uv_check_t* handle) {
  auto* self = static_cast<IoLoop*>(handle->data);
  if (self->batch_end_) self->batch_end_();
}

void IoLoop::run_lazy() {
  // One atomic load per loop iteration when nothing is lazy.
  if (!lazy_pending_.load(std::memory_order_acquire)) return;
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(lazy_);
    lazy_pending_.store(false, std::memory_order_relaxed);
  }
  for (auto& fn : batch) fn();
}

void IoLoop::wake() noexcept {
  uv_async_send(&async_);
  senders_.fetch_sub(1, std::memory_order_release);
}

bool IoLoop::on_io_thread() const noexcept {
  return thread_id_.load() == std::this_thread::get_id();
}

void IoLoop::on_async(uv_async_t* handle) { static_cast<IoLoop*>(handle->data)->drain(); }

void IoLoop::drain() {
  // One batch per wake-up: tasks posted while this batch runs wait for the
  // next loop iteration, so a flood of posts never starves socket I/O and
  // timers (the first post into the emptied queue re-arms the async handle).
  run_lazy();  // what was posted lazily before this batch runs first
  bool closing = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_.swap(queue_);
    closing = closing_;
  }
  for (auto& fn : running_) fn();
  running_.clear();
  if (closing) {
    // Run whatever was posted meanwhile (lazily or not), then close our handles.
    for (;;) {
      run_lazy();
      {
        std::lock_guard<std::mutex> lock(mu_);
        running_.swap(queue_);
        if (running_.empty() && lazy_.empty()) {
          closed_ = true;
          break;
        }
      }
      for (auto& fn : running_) fn();
      running_.clear();
    }
    // No post is accepted any more (closed_); a poster that decided to wake
    // us before that may still be inside uv_async_send. It is one
    // non-blocking syscall away from done: wait for it before closing.
    while (senders_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
    if (batch_end_) batch_end_();  // nothing collected is left behind
    timers_.clear();
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&prepare_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&check_), nullptr);
  }
}

IoLoop::TimerId IoLoop::schedule(std::chrono::milliseconds delay, std::function<void()> fn) {
  // "Forever" (milliseconds::max()) must not overflow the clock: a century will do.
  delay = std::min(delay, std::chrono::milliseconds(std::chrono::hours(24 * 365 * 100)));
  TimerId id{Clock::now() + delay, ++next_timer_};
  timers_.emplace(std::make_pair(id.when, id.seq), std::move(fn));
  if (id.when < armed_for_) arm_timer();
  return id;
}

void IoLoop::cancel(TimerId id) {
  if (id) timers_.erase(std::make_pair(id.when, id.seq));
}

void IoLoop::arm_timer() {
  if (timers_.empty()) {
    uv_timer_stop(&timer_);
    armed_for_ = Clock::time_point::max();
    return;
  }
  auto when = timers_.begin()->first.first;
  auto now = Clock::now();
  auto ms = when <= now
                ? 0
                : std::chrono::duration_cast<std::chrono::milliseconds>(when - now).count() + 1;
  armed_for_ = when;
  uv_timer_start(&timer_, &IoLoop::on_timer, static_cast<std::uint64_t>(ms), 0);
}

void IoLoop::on_timer(uv_timer_t* handle) { static_cast<IoLoop*>(handle->data)->fire_timers(); }

void IoLoop::fire_timers() {
  armed_for_ = Clock::time_point::max();
  auto now = Clock::now();
  while (!timers_.empty() && timers_.begin()->first.first <= now) {
    auto fn = std::move(timers_.begin()->second);
    timers_.erase(timers_.begin());
    fn();
  }
  arm_timer();
}

}  // namespace gilmour::detail
