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
#include "support/topology.hpp"

namespace gilmour::test {

class ClusterTopology : public Topology {
 public:
  static constexpr int kNodes = 6;
  static constexpr std::chrono::milliseconds kNodeTimeout{1000};

  ClusterTopology() = default;
  ~ClusterTopology();

  /// Starts the nodes, creates the cluster and waits (scaled) until every
  /// node reports cluster_state:ok and knows its replica. False (with
  /// error()) when it did not come up.
  bool start();

  /// `redis-cluster://127.0.0.1:p,...` naming the nodes `seeds` (indexes;
  /// all of them when empty).
  std::string url(const std::vector<int>& seeds = {}) const;
  /// Every node, in start order.
  const std::vector<std::unique_ptr<RedisServer>>& nodes() const { return nodes_; }
  /// The ports of the running nodes that are masters now.
  std::vector<int> master_ports();
  /// The port of the master serving `slot` now (asked of a running node), or 0.
  int master_of_slot(int slot);
  /// The port of a master other than `port` (the last in master_ports()), or 0.
  int other_master(int port);
  /// CLUSTER MYID of the node on `port` (empty when it did not answer).
  std::string node_id(int port);
  /// SIGKILLs the node on `port`.
  void kill_port(int port);
  /// Waits (scaled) until a running node reports the cluster ok with no
  /// slot served by `port`.
  bool wait_failed_over(int port, std::chrono::milliseconds timeout);

 private:
  bool all_ok();

  std::vector<std::unique_ptr<RedisServer>> nodes_;
};

}  // namespace gilmour::test
