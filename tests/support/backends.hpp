// Test worlds: the same engine suite runs on every backend. A World makes
// backends that see each other (one in-process bus, or one redis-server) and
// offers raw access for wire assertions (capture, publish, lists, hashes).
#pragma once

#include <chrono>
#include <condition_variable>
#include <gilmour/gilmour.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "support/timing.hpp"

namespace gilmour::test {

using namespace std::chrono_literals;

/// Messages captured on a channel or pattern by a raw subscriber.
class Capture {
 public:
  virtual ~Capture() = default;
  /// Waits until at least `n` messages arrived, for at most scaled(timeout);
  /// returns what arrived.
  std::vector<std::pair<std::string, std::string>> wait_for(std::size_t n,
                                                            std::chrono::milliseconds timeout = 5s);
  /// What arrived so far.
  std::vector<std::pair<std::string, std::string>> snapshot();

 protected:
  void add(std::string channel, std::string payload);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, std::string>> got_;
};

class World {
 public:
  virtual ~World() = default;
  virtual std::string kind() const = 0;
  /// A new backend on this world (one per engine).
  virtual std::shared_ptr<Backend> backend() = 0;
  /// A raw subscriber, confirmed before this returns.
  virtual std::unique_ptr<Capture> capture(const std::string& channel, bool pattern = false) = 0;
  /// Raw PUBLISH; returns the receiver count.
  virtual std::int64_t publish(const std::string& channel, const std::string& payload) = 0;
  virtual std::vector<std::string> list_range(const std::string& key) = 0;
  virtual std::vector<std::pair<std::string, std::string>> hash_get_all(const std::string& key) = 0;
  virtual void hash_set(const std::string& key, const std::string& field,
                        const std::string& value) = 0;
};

/// "inproc" and "redis".
std::vector<std::string> backend_kinds();
/// A world of that kind; nullptr (with `why` set) when unavailable.
std::unique_ptr<World> make_world(const std::string& kind, std::string* why);
/// A topic prefix unique to the running test.
std::string unique_topic(const std::string& name);
/// Engine options for tests: small pool, quiet logger, timeouts (request,
/// connect, drain) of 10 s, 5 s and 5 s, scaled().
EngineOptions test_options();
/// Each of `bad` makes Gilmour's constructor (on a new backend of `world`)
/// throw InvalidArgument; a failure names its index in `bad`.
void expect_invalid_engine_options(World& world, const std::vector<EngineOptions>& bad);

/// A counter that can be waited on.
class Counter {
 public:
  void add(std::size_t n = 1);
  std::size_t value();
  /// Waits until value() >= n, for at most scaled(timeout).
  bool wait_for(std::size_t n, std::chrono::milliseconds timeout = 10s);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t n_ = 0;
};

/// A one-shot gate.
class Latch {
 public:
  void open();
  /// Waits until open() was called, for at most scaled(timeout).
  bool wait(std::chrono::milliseconds timeout = 10s);
  bool is_open();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

/// An Executor that counts the tasks it has finished running (each counted
/// after it returned).
class CountingExecutor final : public Executor {
 public:
  explicit CountingExecutor(std::size_t n) : pool_(std::make_shared<ThreadPool>(n)) {}
  void submit(std::function<void()> task) override {
    pool_->submit([this, t = std::move(task)] {
      t();
      finished.add();
    });
  }
  Counter finished;

 private:
  std::shared_ptr<ThreadPool> pool_;
};

}  // namespace gilmour::test
