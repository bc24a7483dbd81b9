// A Redis Sentinel deployment for tests: one master, one replica and three
// sentinels (quorum 2) on free loopback ports, each sentinel with its own
// configuration file in a temporary directory. Every process is killed and
// the directory removed by the destructor.
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

class SentinelTopology : public Topology {
 public:
  static constexpr const char* kMasterName = "mymaster";
  static constexpr std::chrono::milliseconds kDownAfter{1000};
  static constexpr std::chrono::milliseconds kFailoverTimeout{3000};

  SentinelTopology() = default;
  ~SentinelTopology();

  /// Starts the data nodes, then the sentinels, and waits (scaled) until
  /// every sentinel knows the replica and the two other sentinels, so that a
  /// failover can happen. False (with error()) when it did not come up.
  bool start();

  /// `redis-sentinel://h:p,h:p,h:p/NAME` (`name`: the master's name by default).
  std::string url(const std::string& name = kMasterName) const;
  /// The data node the sentinels name as master now (polls them), or null.
  RedisServer* master();
  /// SIGKILLs the current master; returns its port (0 when none was found).
  int kill_master();
  /// SIGKILLs every sentinel.
  void kill_sentinels();
  /// Waits (scaled) until a sentinel names a master other than `port`.
  bool wait_for_new_master(int port, std::chrono::milliseconds timeout);
  /// Starts a fourth, separate sentinel that monitors the replica as the
  /// master `name` (it answers with the replica's address); returns its
  /// port, or 0 (with error()).
  int start_sentinel_naming_the_replica(const std::string& name);

 private:
  /// The master's port according to the first sentinel that answers, or 0.
  int master_port_from_sentinels();
  bool topology_ready();
  /// A sentinel monitoring 127.0.0.1:`port` as `name`, or null (error()).
  std::unique_ptr<RedisServer> start_sentinel(const std::string& name, int port, int quorum);

  std::vector<std::unique_ptr<RedisServer>> nodes_;      // [0] started as master
  std::vector<std::unique_ptr<RedisServer>> sentinels_;  // 3
  std::vector<std::unique_ptr<RedisServer>> sentinels_of_replica_;
  int configs_ = 0;  // sentinel configuration files written
};

}  // namespace gilmour::test
