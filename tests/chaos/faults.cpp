#include "chaos/faults.hpp"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>

#include "chaos/env.hpp"
#include "chaos/redis_admin.hpp"
#include "support/timing.hpp"

namespace gilmour::chaos {

namespace {

using namespace std::chrono_literals;
using test::scaled;

std::string admin(FaultTarget& t, const std::vector<std::string>& args) {
  std::string error;
  auto reply = redis_command(t.redis.port(), args, scaled(5s), &error);
  if (!reply) throw std::runtime_error(args[0] + " " + args[1] + " failed: " + error);
  return *reply;
}

std::string kill_and_restart(FaultTarget& t) {
  t.redis.kill();
  test::let_time_pass(1s);  // the outage: one second without a server
  if (!t.redis.restart())
    throw std::runtime_error("redis-server did not restart: " + t.redis.error());
  return "SIGKILL, down 1 s, restarted on the same port (empty: no persistence)";
}

std::string pause_5s(FaultTarget& t) {
  t.redis.pause();
  test::let_time_pass(5s);  // the outage: a server that answers nothing
  t.redis.resume();
  return "SIGSTOP 5 s, SIGCONT";
}

std::string client_kill(FaultTarget& t, const std::string& type) {
  return admin(t, {"CLIENT", "KILL", "TYPE", type}) + " connections killed";
}

std::string overflow(FaultTarget& t) {
  admin(t, {"CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 512kb 1"});
  // One signal that holds the slow subscriber's I/O thread for 3 s, then a
  // burst of 40 x 256 KiB (10 MiB) that Redis must buffer for it meanwhile.
  // Shared with the callbacks, which may outlive this call on a timeout.
  struct Burst {
    std::mutex mu;
    std::condition_variable cv;
    int done = 0;
    int published = 0;
  };
  auto burst = std::make_shared<Burst>();
  auto on_done = [burst](const SignalResult& r) {
    std::lock_guard<std::mutex> lock(burst->mu);
    ++burst->done;
    burst->published += r.ok();
    burst->cv.notify_all();
  };
  t.requester.signal(t.topics.burst, nlohmann::json{{"id", 0}, {"sleep_ms", 3000}}, on_done);
  const std::string pad(std::size_t{256} * 1024, 'x');
  for (int i = 1; i <= kBurstSignals; ++i) {
    t.requester.signal(t.topics.burst, nlohmann::json{{"id", i}, {"pad", pad}}, on_done);
  }
  int published = 0;
  {
    std::unique_lock<std::mutex> lock(burst->mu);
    burst->cv.wait_for(lock, scaled(20s), [&] { return burst->done == kBurstSignals + 1; });
    published = burst->published;
  }
  // Redis drops the subscriber once its buffer passes the hard limit; the
  // fault is over when the slow replier has subscribed again.
  const std::string channel = "gilmour.slot." + t.topics.burst;
  auto dropped = wait_listeners(
      t.requester, channel, [](std::int64_t n) { return n == 0; }, 10s);
  auto back = wait_listeners(t.requester, channel, at_least(1), 30s);
  admin(t, {"CONFIG", "SET", "client-output-buffer-limit", "pubsub 32mb 8mb 60"});
  std::string note = "burst of " + std::to_string(kBurstSignals) + " x 256 KiB (" +
                     std::to_string(published) + "/" + std::to_string(kBurstSignals + 1) +
                     " published); the slow subscriber ";
  if (!dropped) return note + "was NOT dropped by Redis";
  note += "was dropped by Redis, ";
  if (!back) throw std::runtime_error(note + "did NOT subscribe again within 30 s");
  return note + "subscribed again " + std::to_string(back->count()) + " ms later";
}

}  // namespace

std::vector<Fault> all_faults() {
  return {
      {"none", [](FaultTarget&) { return std::string("baseline, no fault"); }},
      {"kill9-restart", kill_and_restart},
      {"sigstop-5s", pause_5s},
      {"kill-pubsub", [](FaultTarget& t) { return client_kill(t, "pubsub"); }},
      {"kill-normal", [](FaultTarget& t) { return client_kill(t, "normal"); }},
      {"pubsub-overflow", overflow},
  };
}

}  // namespace gilmour::chaos
