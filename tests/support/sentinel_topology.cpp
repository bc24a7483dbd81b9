#include "support/sentinel_topology.hpp"

#include <fstream>
#include <map>
#include <thread>

#include "support/redis_raw.hpp"
#include "support/timing.hpp"

namespace gilmour::test {

namespace {

using Clock = std::chrono::steady_clock;

/// A reply that is a flat array of (field, value) pairs, as a map.
std::map<std::string, std::string> fields_of(const redisReply* r) {
  std::map<std::string, std::string> out;
  if (!r || r->type != REDIS_REPLY_ARRAY) return out;
  for (std::size_t i = 0; i + 1 < r->elements; i += 2) {
    const redisReply* k = r->element[i];
    const redisReply* v = r->element[i + 1];
    if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING) {
      out.emplace(std::string(k->str, k->len), std::string(v->str, v->len));
    }
  }
  return out;
}

}  // namespace

SentinelTopology::~SentinelTopology() {
  for (auto& s : sentinels_of_replica_) s->kill();
  for (auto& s : sentinels_) s->kill();
  for (auto& n : nodes_) n->kill();
}

bool SentinelTopology::start() {
  if (!make_dir("gilmour-sentinel-")) return false;
  nodes_.push_back(std::make_unique<RedisServer>());
  if (!nodes_[0]->start()) {
    error_ = "master: " + nodes_[0]->error();
    return false;
  }
  nodes_.push_back(std::make_unique<RedisServer>());
  if (!nodes_[1]->start({"--replicaof", "127.0.0.1", std::to_string(nodes_[0]->port())})) {
    error_ = "replica: " + nodes_[1]->error();
    return false;
  }
  for (int i = 0; i < 3; ++i) {
    auto s = start_sentinel(kMasterName, nodes_[0]->port(), 2);
    if (!s) return false;
    sentinels_.push_back(std::move(s));
  }
  if (!eventually([this] { return topology_ready(); }, std::chrono::seconds(20),
                  std::chrono::milliseconds(50))) {
    error_ = "the sentinels did not discover the replica and each other";
    return false;
  }
  return true;
}

std::unique_ptr<RedisServer> SentinelTopology::start_sentinel(const std::string& name, int port,
                                                              int quorum) {
  std::string conf = dir() + "/sentinel" + std::to_string(++configs_) + ".conf";
  std::ofstream(conf) << "sentinel monitor " << name << " 127.0.0.1 " << port << " " << quorum
                      << "\n"
                      << "sentinel down-after-milliseconds " << name << " " << kDownAfter.count()
                      << "\n"
                      << "sentinel failover-timeout " << name << " " << kFailoverTimeout.count()
                      << "\n"
                      << "sentinel parallel-syncs " << name << " 1\n";
  auto s = std::make_unique<RedisServer>();
  s->set_config(conf, "+monitor master");
  if (!s->start({"--sentinel", "--dir", dir()})) {
    error_ = "sentinel: " + s->error();
    return nullptr;
  }
  return s;
}

int SentinelTopology::start_sentinel_naming_the_replica(const std::string& name) {
  auto s = start_sentinel(name, nodes_[1]->port(), 1);
  if (!s) return 0;
  int port = s->port();
  sentinels_of_replica_.push_back(std::move(s));
  return port;
}

bool SentinelTopology::topology_ready() {
  RawRedis replica(RawTarget{"127.0.0.1", nodes_[1]->port(), "", ""});
  auto role = replica.command({"ROLE"});
  // ["slave", host, port, state, offset]
  if (!role || role->type != REDIS_REPLY_ARRAY || role->elements < 4 ||
      std::string(role->element[3]->str ? role->element[3]->str : "") != "connected") {
    return false;
  }
  for (auto& s : sentinels_) {
    RawRedis raw(RawTarget{"127.0.0.1", s->port(), "", ""});
    auto f = fields_of(raw.command({"SENTINEL", "MASTER", kMasterName}).get());
    if (f["num-slaves"] != "1" || f["num-other-sentinels"] != "2") return false;
  }
  return true;
}

std::string SentinelTopology::url(const std::string& name) const {
  std::string out = "redis-sentinel://";
  for (std::size_t i = 0; i < sentinels_.size(); ++i) {
    if (i) out += ",";
    out += "127.0.0.1:" + std::to_string(sentinels_[i]->port());
  }
  return out + "/" + name;
}

int SentinelTopology::master_port_from_sentinels() {
  for (auto& s : sentinels_) {
    if (!s->running()) continue;
    RawRedis raw(RawTarget{"127.0.0.1", s->port(), "", ""});
    auto r = raw.command({"SENTINEL", "GET-MASTER-ADDR-BY-NAME", kMasterName});
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
      return std::stoi(std::string(r->element[1]->str, r->element[1]->len));
    }
  }
  return 0;
}

RedisServer* SentinelTopology::master() {
  int port = master_port_from_sentinels();
  for (auto& n : nodes_) {
    if (n->running() && n->port() == port) return n.get();
  }
  return nullptr;
}

int SentinelTopology::kill_master() {
  RedisServer* m = master();
  if (!m) return 0;
  int port = m->port();
  m->kill();
  return port;
}

void SentinelTopology::kill_sentinels() {
  for (auto& s : sentinels_) s->kill();
}

bool SentinelTopology::wait_for_new_master(int port, std::chrono::milliseconds timeout) {
  return eventually(
      [&] {
        int now = master_port_from_sentinels();
        return now != 0 && now != port;
      },
      timeout);
}

}  // namespace gilmour::test
