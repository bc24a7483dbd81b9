// ThreadPool: wake-ups, submit_bulk, growth while a worker blocks, temporary
// workers exiting, shutdown.
//
// Every wait below is on a condition with a generous deadline (the suite runs
// under sanitizers on a loaded 2-core machine); no sleep synchronises.
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <gilmour/executor.hpp>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/timing.hpp"
#include "unit/unit_support.hpp"

namespace gilmour {
namespace {

using namespace std::chrono_literals;
using unit::kPatience;

using test::eventually;
using unit::Counter;

/// The calling thread's kernel id (Linux).
pid_t kernel_tid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

/// Whether the thread `tid` of this process is still alive (Linux).
bool thread_alive(pid_t tid) {
  return access(("/proc/self/task/" + std::to_string(tid)).c_str(), F_OK) == 0;
}

TEST(ThreadPool, RunsEverySubmittedTask) {
  ThreadPool pool(2);
  EXPECT_EQ(pool.size(), 2u);
  Counter done;
  std::vector<std::thread> submitters;
  constexpr int kThreads = 4;
  constexpr int kTasks = 2000;
  for (int t = 0; t < kThreads; ++t) {
    submitters.emplace_back([&] {
      for (int i = 0; i < kTasks; ++i) pool.submit([&] { done.add(); });
    });
  }
  for (auto& th : submitters) th.join();
  ASSERT_TRUE(done.wait_for_at_least(kThreads * kTasks)) << done.get();
}

// One task at a time, each submitted once the previous one finished: every
// submit finds the workers asleep and must wake one (a lost wake-up would
// leave the task queued until a worker's 5 s idle timeout, and the loop
// would not finish in time).
TEST(ThreadPool, WakesAnIdleWorkerForEverySubmit) {
  ThreadPool pool(3);
  constexpr int kRounds = 500;
  Counter done;
  for (int i = 0; i < kRounds; ++i) {
    pool.submit([&] { done.add(); });
    ASSERT_TRUE(done.wait_for_at_least(i + 1, 30s)) << "task " << i << " not run";
  }
}

TEST(ThreadPool, TasksSubmitTasks) {
  ThreadPool pool(2);
  Counter done;
  std::function<void(int)> step = [&](int left) {
    done.add();
    if (left > 0) pool.submit([&, left] { step(left - 1); });
  };
  for (int i = 0; i < 4; ++i) pool.submit([&] { step(500); });
  ASSERT_TRUE(done.wait_for_at_least(4 * 501));
}

TEST(ThreadPool, SubmitBulkRunsAllInOrderOnOneWorker) {
  ThreadPool pool(1);
  std::vector<int> order;  // the single worker only
  Counter done;
  std::vector<std::function<void()>> batch;
  for (int i = 0; i < 100; ++i) {
    batch.emplace_back([&, i] {
      order.push_back(i);
      done.add();
    });
  }
  pool.submit_bulk(batch);
  EXPECT_TRUE(batch.empty());
  ASSERT_TRUE(done.wait_for_at_least(100));
  std::vector<int> want(100);
  for (int i = 0; i < 100; ++i) want[static_cast<std::size_t>(i)] = i;
  pool.shutdown();  // joins the worker: `order` is safe to read
  EXPECT_EQ(order, want);
}

TEST(ThreadPool, SubmitBulkFillsEveryIdleWorker) {
  constexpr int kWorkers = 4;
  ThreadPool pool(kWorkers);
  // Each task waits until all of them run at once: only possible if the
  // batch woke every idle worker.
  std::mutex mu;
  std::condition_variable cv;
  int running = 0;
  std::set<std::thread::id> ids;
  Counter done;
  std::vector<std::function<void()>> batch;
  for (int i = 0; i < kWorkers; ++i) {
    batch.emplace_back([&] {
      std::unique_lock<std::mutex> lock(mu);
      ids.insert(std::this_thread::get_id());
      ++running;
      cv.notify_all();
      cv.wait_for(lock, kPatience, [&] { return running >= kWorkers; });
      lock.unlock();
      done.add();
    });
  }
  pool.submit_bulk(batch);
  ASSERT_TRUE(done.wait_for_at_least(kWorkers));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(running, kWorkers);
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kWorkers));
  // An empty batch is a no-op.
  std::vector<std::function<void()>> none;
  pool.submit_bulk(none);
}

TEST(ThreadPool, ExceptionInATaskIsContained) {
  ThreadPool pool(1);
  Counter done;
  pool.submit([] { throw std::runtime_error("boom"); });
  pool.submit([&] { done.add(); });
  ASSERT_TRUE(done.wait_for_at_least(1));
}

// A pool of one whose only worker blocks (BlockingScope) waiting for a task
// queued behind it: the pool grows a temporary worker to run that task,
// which exits once idle.
TEST(ThreadPool, GrowsWhileAWorkerBlocksAndTheTemporaryWorkerExits) {
  ThreadPool pool(1);
  std::promise<void> second_ran;
  auto second = second_ran.get_future();
  std::promise<bool> first_done;
  auto first = first_done.get_future();
  pid_t first_tid = 0;
  pid_t second_tid = 0;
  pool.submit([&] {
    first_tid = kernel_tid();
    ThreadPool::BlockingScope blocking;  // without it: deadlock
    first_done.set_value(second.wait_for(kPatience) == std::future_status::ready);
  });
  pool.submit([&] {
    second_tid = kernel_tid();
    second_ran.set_value();
  });
  ASSERT_EQ(first.wait_for(kPatience), std::future_status::ready);
  EXPECT_TRUE(first.get()) << "the queued task did not run while the worker blocked";
  ASSERT_NE(first_tid, second_tid);
  // Back to one worker once idle (5 s idle timeout): one of the two exits
  // (normally the temporary one, which went idle first; either is correct).
  auto alive = [&] { return int(thread_alive(first_tid)) + int(thread_alive(second_tid)); };
  EXPECT_TRUE(eventually([&] { return alive() == 1; })) << alive() << " workers alive";
  const pid_t survivor = thread_alive(first_tid) ? first_tid : second_tid;
  // And the pool still works, on the survivor.
  std::promise<pid_t> third;
  auto third_tid = third.get_future();
  pool.submit([&] { third.set_value(kernel_tid()); });
  ASSERT_EQ(third_tid.wait_for(kPatience), std::future_status::ready);
  EXPECT_EQ(third_tid.get(), survivor);
}

TEST(ThreadPool, BlockingScopeOutsideAPoolIsANoOp) {
  ThreadPool::BlockingScope blocking;  // not a worker: nothing happens
  SUCCEED();
}

TEST(ThreadPool, ShutdownRunsQueuedTasksThenDropsNewOnes) {
  Counter done;
  ThreadPool pool(1);
  std::promise<void> release;
  auto gate = release.get_future().share();
  Counter started;
  pool.submit([gate, &started] {
    started.add();
    gate.wait_for(kPatience);
  });
  for (int i = 0; i < 10; ++i) pool.submit([&] { done.add(); });
  ASSERT_TRUE(started.wait_for_at_least(1));
  // Stopping while the ten are still queued behind the busy worker.
  EXPECT_FALSE(pool.shutdown(1ms));
  std::atomic<bool> ran{false};
  pool.submit([&] { ran = true; });  // after shutdown: dropped
  std::vector<std::function<void()>> batch;
  batch.emplace_back([&] { ran = true; });
  pool.submit_bulk(batch);
  EXPECT_TRUE(batch.empty());
  release.set_value();
  pool.shutdown();
  EXPECT_EQ(done.get(), 10);  // queued before shutdown: run
  EXPECT_FALSE(ran.load());
  EXPECT_TRUE(pool.shutdown(0ms));  // again: returns at once
}

TEST(ThreadPool, ShutdownWithDeadlineReturnsFalseWhileAWorkerIsBusy) {
  auto pool = std::make_unique<ThreadPool>(1);
  std::promise<void> release;
  auto gate = release.get_future().share();
  Counter started;
  pool->submit([gate, &started] {
    started.add();
    gate.wait_for(kPatience);
  });
  ASSERT_TRUE(started.wait_for_at_least(1));
  EXPECT_FALSE(pool->shutdown(1ms));  // the worker is stuck in its task
  release.set_value();
  EXPECT_TRUE(pool->shutdown(kPatience));
}

TEST(ThreadPool, DestroyedFromItsOwnWorkerDoesNotWaitForItself) {
  auto* pool = new ThreadPool(1);
  std::promise<void> submitted, done;
  auto go = submitted.get_future();
  auto f = done.get_future();
  pool->submit([pool, &go, &done] {
    go.wait();    // submit() has returned: nobody else uses the pool now
    delete pool;  // shutdown() from a worker: does not wait for this one
    done.set_value();
  });
  submitted.set_value();
  ASSERT_EQ(f.wait_for(kPatience), std::future_status::ready);
}

}  // namespace
}  // namespace gilmour
