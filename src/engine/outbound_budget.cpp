#include "engine/outbound_budget.hpp"

namespace gilmour::detail {

bool OutboundBudget::take(std::size_t bytes, bool* gave_back) noexcept {
  auto n = count_.load();
  do {
    if (n >= max_count_) return false;
  } while (!count_.compare_exchange_weak(n, n + 1));
  auto b = static_cast<std::int64_t>(bytes);
  auto held = bytes_.load();
  do {
    // Alone, a message over the byte bound still goes (it never could otherwise).
    if (held + b > max_bytes_ && held != 0) {
      count_.fetch_sub(1);
      *gave_back = true;
      return false;
    }
  } while (!bytes_.compare_exchange_weak(held, held + b));
  return true;
}

bool OutboundBudget::try_acquire(std::size_t bytes) noexcept {
  bool gave_back = false;
  if (take(bytes, &gave_back)) return true;
  // Someone may have waited on the count this call held for a moment.
  if (gave_back && waiters_.load() > 0) wake_waiters();
  return false;
}

bool OutboundBudget::acquire_until(std::size_t bytes,
                                   std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  waiters_.fetch_add(1);
  auto attempt = [&] {
    bool gave_back = false;
    if (take(bytes, &gave_back)) return true;
    if (gave_back) cv_.notify_all();  // as try_acquire(); the mutex is ours already
    return false;
  };
  bool ok = false;
  while (!closed_.load()) {
    if (attempt()) {
      ok = true;
      break;
    }
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
      ok = !closed_.load() && attempt();
      break;
    }
  }
  waiters_.fetch_sub(1);
  return ok;
}

void OutboundBudget::release(std::size_t bytes) noexcept {
  auto b = static_cast<std::int64_t>(bytes);
  auto bytes_left = bytes_.fetch_sub(b) - b;
  auto count_left = count_.fetch_sub(1) - 1;
  // Waiters are woken at the low-water mark, not by every release: a
  // producer held at the bound then takes half the window per wake-up
  // instead of paying a futex wake (and a context switch) per message.
  // Nothing outstanding always wakes, so a waiter is never stranded.
  bool low = count_left == 0 || (count_left <= max_count_ / 2 && bytes_left <= max_bytes_ / 2);
  if (low && waiters_.load() > 0) wake_waiters();
}

void OutboundBudget::close() {
  closed_.store(true);
  wake_waiters();
}

void OutboundBudget::wake_waiters() {
  // Taking the mutex orders this wake-up after a waiter's test for room (it
  // holds the mutex from its test until it sleeps).
  std::lock_guard<std::mutex> lock(mu_);
  cv_.notify_all();
}

}  // namespace gilmour::detail
