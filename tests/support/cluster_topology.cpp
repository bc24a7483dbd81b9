#include "support/cluster_topology.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

#include "support/child_process.hpp"
#include "support/redis_raw.hpp"
#include "support/timing.hpp"

namespace gilmour::test {

namespace {

/// True when 127.0.0.1:`port` can be bound now.
bool port_free(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

/// A free port whose cluster-bus port (+10000) is free as well.
int free_cluster_port() {
  for (int attempt = 0; attempt < 200; ++attempt) {
    int p = free_port();
    if (p > 0 && p + 10000 <= 65535 && port_free(p + 10000)) return p;
  }
  return 0;
}

std::string reply_text(const redisReply* r) {
  return r && r->str ? std::string(r->str, r->len) : std::string();
}

}  // namespace

ClusterTopology::~ClusterTopology() {
  for (auto& n : nodes_) n->kill();
}

bool ClusterTopology::start() {
  if (!make_dir("gilmour-cluster-")) return false;
  for (int i = 0; i < kNodes; ++i) {
    auto node = std::make_unique<RedisServer>();
    bool up = false;
    for (int attempt = 0; attempt < 5 && !up; ++attempt) {
      int port = free_cluster_port();
      if (port == 0) break;
      up = node->start({"--cluster-enabled", "yes", "--cluster-config-file",
                        dir() + "/nodes-" + std::to_string(port) + ".conf",
                        "--cluster-node-timeout", std::to_string(kNodeTimeout.count()),
                        "--cluster-require-full-coverage", "no", "--dir", dir()},
                       port);
    }
    if (!up) {
      error_ = "node " + std::to_string(i) + ": " + node->error();
      return false;
    }
    nodes_.push_back(std::move(node));
  }
  // redis-cli beside the server binary.
  auto cli = std::filesystem::path(RedisServer::binary()).replace_filename("redis-cli").string();
  std::vector<std::string> argv = {cli, "--cluster", "create"};
  for (auto& n : nodes_) argv.push_back("127.0.0.1:" + std::to_string(n->port()));
  argv.insert(argv.end(), {"--cluster-replicas", "1", "--cluster-yes"});
  auto created = run_program(argv, {}, scaled(std::chrono::seconds(60)));
  if (created.exit_code != 0) {
    error_ = cli + " --cluster create failed (exit " + std::to_string(created.exit_code) +
             "): " + created.out + created.err;
    return false;
  }
  if (!eventually([this] { return all_ok(); }, std::chrono::seconds(30),
                  std::chrono::milliseconds(50))) {
    error_ = "the cluster did not reach cluster_state:ok with 3 masters and 3 replicas";
    return false;
  }
  return true;
}

bool ClusterTopology::all_ok() {
  for (auto& n : nodes_) {
    RawRedis raw(RawTarget{"127.0.0.1", n->port(), "", ""});
    auto info = reply_text(raw.command({"CLUSTER", "INFO"}).get());
    if (info.find("cluster_state:ok") == std::string::npos ||
        info.find("cluster_known_nodes:6") == std::string::npos) {
      return false;
    }
    // Every replica attached (a failover needs one).
    auto role = raw.command({"ROLE"});
    if (!role || role->type != REDIS_REPLY_ARRAY || role->elements < 3) return false;
    if (reply_text(role->element[0]) == "master") {
      if (role->element[2]->type != REDIS_REPLY_ARRAY || role->element[2]->elements != 1) {
        return false;
      }
    } else if (role->elements < 4 || reply_text(role->element[3]) != "connected") {
      return false;
    }
  }
  return true;
}

std::string ClusterTopology::url(const std::vector<int>& seeds) const {
  std::string out = "redis-cluster://";
  std::vector<int> pick = seeds;
  if (pick.empty()) {
    for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) pick.push_back(i);
  }
  for (std::size_t i = 0; i < pick.size(); ++i) {
    if (i) out += ",";
    out += "127.0.0.1:" + std::to_string(nodes_[static_cast<std::size_t>(pick[i])]->port());
  }
  return out;
}

std::vector<int> ClusterTopology::master_ports() {
  std::vector<int> out;
  for (auto& n : nodes_) {
    if (!n->running()) continue;
    RawRedis raw(RawTarget{"127.0.0.1", n->port(), "", ""});
    auto role = raw.command({"ROLE"});
    if (role && role->type == REDIS_REPLY_ARRAY && role->elements > 0 &&
        reply_text(role->element[0]) == "master") {
      out.push_back(n->port());
    }
  }
  return out;
}

int ClusterTopology::master_of_slot(int slot) {
  for (auto& n : nodes_) {
    if (!n->running()) continue;
    RawRedis raw(RawTarget{"127.0.0.1", n->port(), "", ""});
    auto r = raw.command({"CLUSTER", "SLOTS"});
    if (!r || r->type != REDIS_REPLY_ARRAY) continue;
    for (std::size_t i = 0; i < r->elements; ++i) {
      const redisReply* e = r->element[i];
      if (e->elements >= 3 && e->element[0]->integer <= slot && slot <= e->element[1]->integer) {
        return static_cast<int>(e->element[2]->element[1]->integer);
      }
    }
    return 0;
  }
  return 0;
}

int ClusterTopology::other_master(int port) {
  int other = 0;
  for (int p : master_ports()) {
    if (p != port) other = p;
  }
  return other;
}

std::string ClusterTopology::node_id(int port) {
  RawRedis raw(RawTarget{"127.0.0.1", port, "", ""});
  return reply_text(raw.command({"CLUSTER", "MYID"}).get());
}

void ClusterTopology::kill_port(int port) {
  for (auto& n : nodes_) {
    if (n->running() && n->port() == port) n->kill();
  }
}

bool ClusterTopology::wait_failed_over(int port, std::chrono::milliseconds timeout) {
  return eventually(
      [&] {
        for (auto& n : nodes_) {
          if (!n->running()) continue;
          RawRedis raw(RawTarget{"127.0.0.1", n->port(), "", ""});
          auto info = reply_text(raw.command({"CLUSTER", "INFO"}).get());
          if (info.find("cluster_state:ok") == std::string::npos) return false;
          auto r = raw.command({"CLUSTER", "SLOTS"});
          if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0) return false;
          for (std::size_t i = 0; i < r->elements; ++i) {
            if (r->element[i]->element[2]->element[1]->integer == port) return false;
          }
          return true;
        }
        return false;
      },
      timeout, std::chrono::milliseconds(50));
}

}  // namespace gilmour::test
