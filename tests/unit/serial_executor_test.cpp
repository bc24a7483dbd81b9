#include "serial_executor.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>
#include <vector>

namespace gilmour::detail {
namespace {

TEST(SerialExecutor, RunsOneAtATimeInSubmissionOrder) {
  auto pool = std::make_shared<ThreadPool>(4);
  auto serial = std::make_shared<SerialExecutor>(pool);
  constexpr int kN = 2000;
  std::vector<int> order;  // touched only by serial tasks: TSan checks it
  std::atomic<int> running{0}, overlap{0};
  std::promise<void> done;
  // Producers on several threads; each thread's tasks keep their order.
  std::vector<std::thread> producers;
  for (int t = 0; t < 4; ++t) {
    producers.emplace_back([&, t] {
      for (int i = 0; i < kN / 4; ++i) {
        serial->submit([&, t, i] {
          if (running.fetch_add(1) != 0) ++overlap;
          order.push_back(t * kN + i);
          running.fetch_sub(1);
          if (order.size() == static_cast<std::size_t>(kN)) done.set_value();
        });
      }
    });
  }
  for (auto& p : producers) p.join();
  done.get_future().wait();
  EXPECT_EQ(overlap.load(), 0);
  std::vector<int> last(4, -1);
  for (int v : order) {
    int t = v / kN, i = v % kN;
    EXPECT_GT(i, last[t]) << "thread " << t << " out of order";
    last[t] = i;
  }
  EXPECT_EQ(serial->pending(), 0u);
  pool->shutdown();
}

TEST(SerialExecutor, AThrowingTaskDoesNotStopTheQueue) {
  auto pool = std::make_shared<ThreadPool>(2);
  auto serial = std::make_shared<SerialExecutor>(pool);
  std::promise<int> p;
  serial->submit([] { throw std::runtime_error("task failed"); });
  serial->submit([&] { p.set_value(42); });
  EXPECT_EQ(p.get_future().get(), 42);
  pool->shutdown();
}

/// An executor that refuses work, as an injected one may.
struct Refusing : Executor {
  void submit(std::function<void()>) override { throw std::runtime_error("refused"); }
};

TEST(SerialExecutor, ARefusedDrainerLeavesTheQueueUsable) {
  auto serial = std::make_shared<SerialExecutor>(std::make_shared<Refusing>());
  EXPECT_THROW(serial->submit([] {}), std::runtime_error);
  // Not wedged as "running": the next submit tries the target again.
  EXPECT_THROW(serial->submit([] {}), std::runtime_error);
}

}  // namespace
}  // namespace gilmour::detail
