// A Redis Cluster for tests: 3 masters and 3 replicas (one per master) on
// free loopback ports whose cluster-bus port (port + 10000) is free too,
// each with its cluster-config-file in a temporary directory, joined by
// `redis-cli --cluster create ... --cluster-replicas 1`. A small
// cluster-node-timeout makes failovers quick; cluster-require-full-coverage
// is off, so the other masters keep serving while one fails over. Every
// process is killed and the directory removed by the destructor.
//
// Thread safety: none; one test thread drives it.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "support/redis_server.hpp"

namespace gilmour::test {

class ClusterTopology {
 public:
  static constexpr int kNodes = 6;
  static constexpr std::chrono::milliseconds kNodeTimeout{1000};

  ClusterTopology() = default;
  ~ClusterTopology();
  ClusterTopology(const ClusterTopology&) = delete;
  ClusterTopology& operator=(const ClusterTopology&) = delete;

  /// Starts the nodes, creates the cluster and waits (scaled) until every
  /// node reports cluster_state:ok and knows its replica. False (with
  /// error()) when it did not come up.
  bool start();
  const std::string& error() const { return error_; }

  /// `redis-cluster://127.0.0.1:p,...` naming the nodes `seeds` (indexes;
  /// all of them when empty).
  std::string url(const std::vector<int>& seeds = {}) const;
  /// Every node, in start order.
  const std::vector<std::unique_ptr<RedisServer>>& nodes() const { return nodes_; }
  /// The ports of the running nodes that are masters now.
  std::vector<int> master_ports();
  /// The port of the master serving `slot` now (asked of a running node), or 0.
  int master_of_slot(int slot);
  /// SIGKILLs the node on `port`.
  void kill_port(int port);
  /// Waits (scaled) until a running node reports the cluster ok with no
  /// slot served by `port`.
  bool wait_failed_over(int port, std::chrono::milliseconds timeout);

 private:
  bool all_ok();

  std::string dir_;
  std::vector<std::unique_ptr<RedisServer>> nodes_;
  std::string error_;
};

}  // namespace gilmour::test
