// SerialExecutor: tasks one at a time, in submission order, on another
// executor (a strand). Serves ordered handlers (HandlerOptions::ordered).
// Not installed.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <mutex>

#include "gilmour/executor.hpp"

namespace gilmour::detail {

/// At most one of its tasks runs at any moment, and they run in the order
/// they were submitted, each on some thread of the target executor. A single
/// drainer task at a time runs the queue and ends when the queue is empty,
/// so an idle SerialExecutor holds no thread.
///
/// Thread safety: submit() from any thread. The target must outlive every
/// task submitted (the drainer holds the SerialExecutor alive itself).
class SerialExecutor final : public Executor, public std::enable_shared_from_this<SerialExecutor> {
 public:
  explicit SerialExecutor(std::shared_ptr<Executor> target) : target_(std::move(target)) {}

  /// Queues `task`. If the target refuses the drainer (throws), the queue is
  /// not left marked as running, and the exception propagates.
  void submit(std::function<void()> task) override;
  /// Tasks queued and not started yet.
  std::size_t pending() const;

 private:
  void drain();

  std::shared_ptr<Executor> target_;
  mutable std::mutex mu_;
  std::deque<std::function<void()>> queue_;
  bool running_ = false;  // a drainer is submitted or running
};

}  // namespace gilmour::detail
