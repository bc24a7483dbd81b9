// Redis Cluster mode of the Redis backend (cluster_backend.cpp): the slot
// map read with CLUSTER SLOTS, one command and one subscriber connection per
// master, keyed commands routed by slot (cluster_slot.hpp) with MOVED and ASK
// followed, pub/sub placed by channel slot, and failovers followed by
// refreshing the map. See gilmour/backends/redis.hpp and
// docs/redis-backend.md (Redis Cluster).
#pragma once

#include <memory>

#include "gilmour/backend.hpp"
#include "gilmour/backends/redis.hpp"

namespace gilmour::redis::detail {

/// A backend for `options` in Cluster mode (Options::cluster_mode()),
/// already validated. The deleter leaks it rather than free it while it
/// still has handles on a loop (as make_backend does).
std::shared_ptr<Backend> make_cluster_backend(Options options);

}  // namespace gilmour::redis::detail
