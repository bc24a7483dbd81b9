/// @file gilmour/executor.hpp
/// Executor: where handlers and request callbacks run.
///
/// By default each engine owns a ThreadPool of EngineOptions::worker_threads
/// threads; an application may inject its own Executor (shared by several
/// engines, or its own pool). Each message is its own task, so one reply
/// handler serves many requests at once.
///
/// Thread safety: submit() may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "gilmour/export.hpp"

namespace gilmour {

/// Runs tasks. Implementations must run every submitted task exactly once
/// (or drop it after shutdown) and must not run it on the calling thread
/// when the caller is an engine's I/O thread.
class GILMOUR_API Executor {
 public:
  virtual ~Executor() = default;
  /// Queues `task` to run once on one of the executor's threads.
  virtual void submit(std::function<void()> task) = 0;
};

/// A fixed-size pool that grows while its workers block.
///
/// When a task blocks in Gilmour::request_sync (or calls
/// ThreadPool::BlockingScope itself), the pool starts a temporary worker so
/// that `size` threads stay runnable; this is why a handler may make a
/// blocking request to a handler of the same engine without deadlocking.
/// Temporary workers exit once idle. The pool never exceeds `max_threads`.
///
/// A task that throws is contained: the exception is swallowed (tasks should
/// catch their own; the engine's do).
///
/// Thread safety: all members are thread-safe. The destructor calls
/// shutdown(); on one of its own workers it does not wait for that worker.
class GILMOUR_API ThreadPool : public Executor {
 public:
  /// Starts `size` workers (at least 1). `max_threads` caps the pool while it
  /// grows; 0 means 16 * size + 64.
  explicit ThreadPool(std::size_t size, std::size_t max_threads = 0);
  ~ThreadPool() override;
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  /// Queues `task`. Wakes a worker only when one is idle; with every
  /// worker busy it costs one uncontended lock. Dropped after shutdown().
  void submit(std::function<void()> task) override;
  /// Queues every task of `tasks`, in order, under one lock (`tasks` is
  /// moved from and left empty, its capacity kept for reuse): the way to
  /// hand over a batch, e.g. the messages of one socket read. Wakes at most
  /// as many workers as there are tasks, with one call when that is every
  /// idle worker. Dropped after shutdown, like submit().
  void submit_bulk(std::vector<std::function<void()>>& tasks);
  /// Stops accepting tasks, runs what is queued and waits for the workers
  /// to exit.
  void shutdown();
  /// As shutdown(), waiting at most `wait`; workers still busy then finish
  /// (and run what is queued) on their own. True when all had exited.
  bool shutdown(std::chrono::milliseconds wait);
  /// The number of permanent workers (the constructor's `size`, at least 1).
  std::size_t size() const noexcept;

  /// Marks the current thread as blocked for its lifetime, if it is a worker
  /// of some ThreadPool; a no-op on other threads.
  class GILMOUR_API BlockingScope {
   public:
    BlockingScope();
    ~BlockingScope();
    BlockingScope(const BlockingScope&) = delete;
    BlockingScope& operator=(const BlockingScope&) = delete;

   private:
    void* state_ = nullptr;
  };

  struct State;  ///< implementation detail

 private:
  std::shared_ptr<State> state_;
};

}  // namespace gilmour
