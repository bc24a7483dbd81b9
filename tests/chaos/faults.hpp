// The faults of the chaos run, injected into the run's redis-server while
// traffic flows. Each returns when the fault is over (the server is back,
// resumed, the connections are killed, the burst is published) with a note
// for the report, or throws std::runtime_error when it could not be
// injected.
#pragma once

#include <functional>
#include <gilmour/gilmour.hpp>
#include <string>
#include <vector>

#include "chaos/roles.hpp"
#include "support/redis_server.hpp"

namespace gilmour::chaos {

/// What a fault may act on.
struct FaultTarget {
  test::RedisServer& redis;
  Gilmour& requester;  ///< publishes the overflow's burst
  const Topics& topics;
};

struct Fault {
  std::string name;
  std::function<std::string(FaultTarget&)> inject;
};

/// Every fault, in the order of a run: none (a baseline), kill -9 and
/// restart, SIGSTOP 5 s, CLIENT KILL TYPE pubsub, CLIENT KILL TYPE normal,
/// pub/sub output-buffer overflow of the slow subscriber.
std::vector<Fault> all_faults();

/// Signals in the overflow's burst after the slow one (ids 1..N).
inline constexpr int kBurstSignals = 40;

}  // namespace gilmour::chaos
