// IoLoop: timers, cancellation, posting across threads, closing.
//
// Every wait below is on a condition with a generous deadline (the suite runs
// under sanitizers on a loaded 2-core machine); no sleep synchronises.
#include "io_loop.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "unit/unit_support.hpp"

namespace gilmour::detail {
namespace {

using namespace std::chrono_literals;
using unit::kPatience;

/// Runs `fn` on the loop's thread and waits for it.
template <typename F>
void on_loop(IoLoop& io, F fn) {
  std::promise<void> done;
  auto f = done.get_future();
  ASSERT_TRUE(io.try_post([&] {
    fn();
    done.set_value();
  }));
  ASSERT_EQ(f.wait_for(kPatience), std::future_status::ready);
}

using unit::Counter;

TEST(IoLoop, TimersFireInDeadlineOrderAndFifoOnTies) {
  IoLoop io;
  io.start();
  std::vector<int> order;  // touched on the loop thread only
  Counter fired;
  on_loop(io, [&] {
    auto rec = [&](int id) {
      return [&, id] {
        order.push_back(id);
        fired.add();
      };
    };
    // Scheduled out of order; 50 ms apart so that a slow scheduling call
    // cannot reorder them. Equal delays keep their scheduling order.
    io.schedule(150ms, rec(4));
    io.schedule(50ms, rec(2));
    io.schedule(0ms, rec(1));
    io.schedule(100ms, rec(3));
    io.schedule(100ms, rec(33));
  });
  ASSERT_TRUE(fired.wait_for_at_least(5));
  on_loop(io, [&] { EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 33, 4})); });
  io.stop_and_join();
}

TEST(IoLoop, CancelledTimerNeverRuns) {
  IoLoop io;
  io.start();
  std::atomic<bool> cancelled_ran{false};
  Counter later;
  IoLoop::TimerId ran_id;
  on_loop(io, [&] {
    auto a = io.schedule(20ms, [&] { cancelled_ran = true; });
    // Fires after `a` would have: when it has run, `a` had its chance.
    io.schedule(60ms, [&] { later.add(); });
    ran_id = io.schedule(0ms, [&] { later.add(); });
    io.cancel(a);
    io.cancel(a);                  // twice: no-op
    io.cancel(IoLoop::TimerId());  // "none": no-op
  });
  ASSERT_TRUE(later.wait_for_at_least(2));
  EXPECT_FALSE(cancelled_ran.load());
  on_loop(io, [&] { io.cancel(ran_id); });  // already ran: no-op
  io.stop_and_join();
}

TEST(IoLoop, TimerScheduledFromATimerAndForeverDoNotBreakTheQueue) {
  IoLoop io;
  io.start();
  Counter fired;
  on_loop(io, [&] {
    io.schedule(std::chrono::milliseconds::max(), [] { FAIL() << "forever fired"; });
    io.schedule(1ms, [&] { io.schedule(1ms, [&] { fired.add(); }); });
  });
  ASSERT_TRUE(fired.wait_for_at_least(1));
  io.stop_and_join();  // the pending "forever" timer is dropped
}

TEST(IoLoop, PostBeforeStartAndAfterCloseIsRefused) {
  IoLoop io;
  EXPECT_FALSE(io.try_post([] {}));  // not started: dropped
  io.start();
  std::atomic<int> ran{0};
  EXPECT_TRUE(io.try_post([&] { ++ran; }));
  io.stop_and_join();  // runs what was posted
  EXPECT_EQ(ran.load(), 1);
  EXPECT_FALSE(io.try_post([&] { ++ran; }));
  io.post([&] { ++ran; });  // silently dropped
  io.stop_and_join();       // again: no-op
  EXPECT_EQ(ran.load(), 1);
}

TEST(IoLoop, NeverStartedLoopIsDestroyedCleanly) {
  IoLoop io;
  EXPECT_FALSE(io.on_io_thread());
}

TEST(IoLoop, OnIoThreadOnlyOnTheLoop) {
  IoLoop io;
  io.start();
  EXPECT_FALSE(io.on_io_thread());
  bool inside = false;
  on_loop(io, [&] { inside = io.on_io_thread(); });
  EXPECT_TRUE(inside);
  io.stop_and_join();
}

// Wake-ups are coalesced (only the post into an empty queue wakes the loop):
// posts from many threads at once, and from the loop itself, all run, each
// thread's in its own order.
TEST(IoLoop, ManyPostersNoneLostAndEachInOrder) {
  IoLoop io;
  io.start();
  constexpr int kThreads = 6;
  constexpr int kPosts = 3000;
  std::vector<int> last(kThreads, -1);  // loop thread only
  std::atomic<int> out_of_order{0};
  Counter ran;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPosts; ++i) {
        bool ok = io.try_post([&, t, i] {
          if (last[t] != i - 1) ++out_of_order;
          last[t] = i;
          if (i % 100 == 0) {
            // A post from the loop thread, in the middle of a drain.
            io.post([&] { ran.add(); });
          }
          ran.add();
        });
        if (!ok) ADD_FAILURE() << "post refused";
        if (i % 500 == 0) std::this_thread::yield();  // let the loop drain now and then
      }
    });
  }
  for (auto& th : threads) th.join();
  const int expected = kThreads * kPosts + kThreads * (kPosts / 100);
  ASSERT_TRUE(ran.wait_for_at_least(expected)) << ran.get() << " of " << expected;
  EXPECT_EQ(out_of_order.load(), 0);
  io.stop_and_join();
  EXPECT_EQ(ran.get(), expected);
}

// Closing while other threads post: every accepted post runs, every refused
// one does not, and nothing touches the async handle after it is closed
// (what ASan/TSan would catch).
TEST(IoLoop, StopWhilePostingRunsExactlyTheAcceptedPosts) {
  for (int round = 0; round < 20; ++round) {
    IoLoop io;
    io.start();
    constexpr int kThreads = 4;
    std::atomic<int> accepted{0};
    std::atomic<int> ran{0};
    Counter started;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        bool first = true;
        while (io.try_post([&] { ++ran; })) {
          ++accepted;
          if (first) started.add();
          first = false;
        }
      });
    }
    ASSERT_TRUE(started.wait_for_at_least(kThreads));
    io.stop_and_join();
    for (auto& th : threads) th.join();
    EXPECT_EQ(ran.load(), accepted.load()) << "round " << round;
    EXPECT_GE(accepted.load(), kThreads);
  }
}

TEST(IoLoop, PostsFromTheLoopWhileClosingStillRun) {
  IoLoop io;
  io.start();
  std::atomic<int> ran{0};
  // The first task re-posts itself a few times from the loop; stop_and_join
  // runs the chain to its end before closing.
  std::function<void(int)> chain = [&](int left) {
    ++ran;
    if (left > 0) {
      EXPECT_TRUE(io.try_post([&, left] { chain(left - 1); }));
    }
  };
  ASSERT_TRUE(io.try_post([&] { chain(10); }));
  io.stop_and_join();
  EXPECT_EQ(ran.load(), 11);
}

// A lazy post never wakes the loop: it runs at the loop's next iteration,
// whatever causes it (here a timer; no post), and before a later post.
TEST(IoLoop, LazyPostsRunAtTheNextIterationWithoutAWakeUp) {
  IoLoop io;
  io.start();
  std::promise<bool> lazy_ran_first;
  std::atomic<bool> lazy{false};
  on_loop(io, [&] {
    io.post_lazy([&] { lazy.store(true); });
    io.schedule(20ms, [&] { lazy_ran_first.set_value(lazy.load()); });
  });
  auto f = lazy_ran_first.get_future();
  ASSERT_EQ(f.wait_for(kPatience), std::future_status::ready);
  EXPECT_TRUE(f.get()) << "the timer's iteration did not run the lazy task first";
  // From another thread: queued without waking, run before a later post.
  Counter ran;
  for (int i = 0; i < 3; ++i) io.post_lazy([&] { ran.add(); });
  int seen = -1;
  on_loop(io, [&] { seen = ran.get(); });
  EXPECT_EQ(seen, 3);
  io.stop_and_join();
  io.post_lazy([] { FAIL() << "ran after close"; });
}

}  // namespace
}  // namespace gilmour::detail
