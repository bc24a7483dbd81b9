#include "serial_executor.hpp"

namespace gilmour::detail {

void SerialExecutor::submit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(task));
    if (running_) return;
    running_ = true;
  }
  try {
    target_->submit([self = shared_from_this()] { self->drain(); });
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    running_ = false;
    throw;
  }
}

std::size_t SerialExecutor::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void SerialExecutor::drain() {
  for (;;) {
    std::function<void()> next;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) {
        running_ = false;
        return;
      }
      next = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      next();
    } catch (...) {  // contained, as ThreadPool does: the queue goes on
    }
  }
}

}  // namespace gilmour::detail
