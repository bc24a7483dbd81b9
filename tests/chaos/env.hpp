// What the chaos and soak runs set up alike: a work directory for the logs,
// a private redis-server on a free loopback port, replier children, and the
// requester engine of this process.
//
// Thread safety: used by the run's controlling thread only.
#pragma once

#include <chrono>
#include <functional>
#include <gilmour/gilmour.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chaos/process.hpp"
#include "chaos/roles.hpp"
#include "support/redis_server.hpp"
#include "support/temp_dir.hpp"

namespace gilmour::chaos {

class Env {
 public:
  /// Topics under a prefix unique to this run (`chaos.<pid>`); failures
  /// are reported on stderr as `<program>: ...`. The destructor removes
  /// the work directory unless keep() was called.
  explicit Env(std::string program);
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  /// Makes the work directory and starts redis-server in it; false (after
  /// saying why) when either fails.
  bool start();
  /// Spawns a replier child (`replier --redis ... --prefix ...` + `extra`)
  /// logging to `<dir>/<name>.log` and, with `events`, its event lines to
  /// `<dir>/<name>.events`.
  std::unique_ptr<Child> spawn_replier(const std::string& name, bool events,
                                       std::vector<std::string> extra = {});
  /// A started requester engine with `workers` threads, logging to
  /// `<dir>/requester.log`; null (after saying why) when start() threw.
  std::unique_ptr<Gilmour> requester(std::size_t workers);
  /// Keeps the work directory (to look at the logs of a failed run).
  void keep() { dir_.keep(); }

  test::RedisServer& redis() { return redis_; }
  const Topics& topics() const { return topics_; }
  const std::string& dir() const { return dir_.path(); }

 private:
  /// Says `what` went wrong on stderr, as `<program>: what`.
  void report(const std::string& what) const;

  std::string program_;
  test::RedisServer redis_;
  std::string prefix_;
  Topics topics_;
  test::TempDir dir_;  // declared last: removed while redis_ still runs, as before
};

/// Polls PUBSUB NUMSUB of `channel` (a full channel name) through `g` until
/// `pred(count)` holds, for at most scaled(`timeout`) (test::eventually());
/// how long that took, or nullopt when it did not happen.
std::optional<std::chrono::milliseconds> wait_listeners(
    Gilmour& g, const std::string& channel, const std::function<bool(std::int64_t)>& pred,
    std::chrono::milliseconds timeout);

/// A wait_listeners() condition: at least `n` subscribers.
inline std::function<bool(std::int64_t)> at_least(std::int64_t n) {
  return [n](std::int64_t count) { return count >= n; };
}

/// The date, the machine and the Redis version, for a report's header.
std::string describe_machine(int redis_port);

}  // namespace gilmour::chaos
