#include "support/backends.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <deque>
#include <functional>
#include <thread>

#include "support/redis_server.hpp"

namespace gilmour::test {

void Latch::open() {
  std::lock_guard<std::mutex> lock(mu_);
  open_ = true;
  cv_.notify_all();
}

bool Latch::wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, scaled(timeout), [&] { return open_; });
}

bool Latch::is_open() {
  std::lock_guard<std::mutex> lock(mu_);
  return open_;
}

std::string unique_topic(const std::string& name) {
  static std::atomic<int> n{0};
  auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string t = info ? std::string(info->test_suite_name()) + "." + info->name() : "test";
  for (auto& c : t) {
    if (c == '/') c = '_';
  }
  return "t" + std::to_string(::getpid()) + "." + std::to_string(++n) + "." + t + "." + name;
}

EngineOptions test_options() {
  EngineOptions o;
  o.worker_threads = 4;
  o.request_timeout = scaled(10s);
  o.connect_timeout = scaled(5s);
  o.drain_timeout = scaled(5s);
  static auto quiet = std::make_shared<spdlog::logger>(
      "gilmour-test", std::make_shared<spdlog::sinks::null_sink_mt>());
  o.logger = quiet;
  return o;
}

void expect_invalid_engine_options(World& world, const std::vector<EngineOptions>& bad) {
  for (std::size_t i = 0; i < bad.size(); ++i) {
    EXPECT_THROW(Gilmour(world.backend(), bad[i]), InvalidArgument) << "options " << i;
  }
}

namespace {

/// A minimal I/O thread for raw backends in tests.
class TestIo final : public IoContext {
 public:
  TestIo() : thread_([this] { run(); }) {}
  ~TestIo() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void post(std::function<void()> fn) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      q_.push_back(std::move(fn));
    }
    cv_.notify_all();
  }
  bool on_io_thread() const noexcept override { return std::this_thread::get_id() == id_; }
  void* native_loop() noexcept override { return nullptr; }

 private:
  void run() {
    id_ = std::this_thread::get_id();
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || !q_.empty(); });
      if (q_.empty()) return;
      auto fn = std::move(q_.front());
      q_.pop_front();
      lock.unlock();
      fn();
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> q_;
  bool stop_ = false;
  std::thread::id id_;
  std::thread thread_;
};

class InprocCapture final : public Capture, public BackendListener {
 public:
  InprocCapture(std::shared_ptr<inproc::Bus> bus, const std::string& channel, bool pattern)
      : backend_(inproc::make_backend(std::move(bus))) {
    std::promise<void> ready;
    io_.post([&] {
      backend_->open(io_, *this, [&, channel, pattern](const Status&) {
        backend_->subscribe(channel, pattern, [&](const Status&) { ready.set_value(); });
      });
    });
    ready.get_future().wait();
  }
  ~InprocCapture() override {
    std::promise<void> closed;
    io_.post([&] { backend_->close([&](const Status&) { closed.set_value(); }); });
    closed.get_future().wait();
  }
  void on_message(std::string_view channel, std::string_view, std::string_view payload) override {
    add(std::string(channel), std::string(payload));
  }
  void on_connection_state(ConnectionState, std::string_view) override {}

 private:
  TestIo io_;
  std::shared_ptr<Backend> backend_;
};

class InprocWorld final : public World {
 public:
  std::string kind() const override { return "inproc"; }
  std::shared_ptr<Backend> backend() override { return inproc::make_backend(bus_); }
  std::unique_ptr<Capture> capture(const std::string& channel, bool pattern) override {
    return std::make_unique<InprocCapture>(bus_, channel, pattern);
  }
  std::int64_t publish(const std::string& channel, const std::string& payload) override {
    std::promise<std::int64_t> n;
    auto b = inproc::make_backend(bus_);
    struct Nop : BackendListener {
      void on_message(std::string_view, std::string_view, std::string_view) override {}
      void on_connection_state(ConnectionState, std::string_view) override {}
    } nop;
    TestIo io;
    io.post([&] {
      b->open(io, nop, [&](const Status&) {
        b->publish(channel, payload, [&](const Status&, std::int64_t c) {
          b->close([&, c](const Status&) { n.set_value(c); });
        });
      });
    });
    return n.get_future().get();
  }
  std::vector<std::string> list_range(const std::string& key) override {
    return bus_->list_range(key);
  }
  std::vector<std::pair<std::string, std::string>> hash_get_all(const std::string& key) override {
    return bus_->hash_get_all(key);
  }
  void hash_set(const std::string& key, const std::string& field,
                const std::string& value) override {
    bus_->hash_set(key, field, value);
  }

 private:
  std::shared_ptr<inproc::Bus> bus_ = inproc::make_bus();
};

}  // namespace

std::unique_ptr<World> make_redis_world(std::string* why);    // redis_world.cpp
std::unique_ptr<World> make_cluster_world(std::string* why);  // redis_world.cpp

std::vector<std::string> backend_kinds() {
  // Opt-in: the suite against a Redis Cluster (3 masters + 3 replicas started
  // once per test process), for a run of a test binary as one process
  // (docs/testing.md); ctest runs each test in its own process.
  const char* cluster = std::getenv("GILMOUR_TEST_CLUSTER");
  if (cluster && *cluster && std::string(cluster) != "0") return {"inproc", "redis", "cluster"};
  return {"inproc", "redis"};
}

std::unique_ptr<World> make_world(const std::string& kind, std::string* why) {
  if (kind == "inproc") return std::make_unique<InprocWorld>();
  if (kind == "redis") return make_redis_world(why);
  if (kind == "cluster") return make_cluster_world(why);
  if (why) *why = "unknown backend kind " + kind;
  return nullptr;
}

}  // namespace gilmour::test
