// A real redis-server for tests: started on a free loopback port with
// persistence off, polled until it answers PING, killed at the end.
//
// GILMOUR_REDIS_SERVER overrides the binary. When no binary is found the
// caller skips, except under CI (CI set), where that is a failure.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace gilmour::test {

class RedisServer {
 public:
  RedisServer() = default;
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  /// The redis-server binary, or "" when none is installed.
  static std::string binary();
  /// True when the suite must fail rather than skip without Redis.
  static bool required();

  /// Before start(): a configuration file passed as the first argument (a
  /// sentinel needs one it can rewrite) and the log text that says the
  /// process is ready (a sentinel never logs "Ready to accept connections").
  void set_config(std::string file, std::string ready_text) {
    config_ = std::move(file);
    ready_text_ = std::move(ready_text);
  }

  /// Starts on a free port (or `port` when non-zero) with `extra` arguments.
  /// Returns false (with `error` set) when the server did not come up.
  bool start(std::vector<std::string> extra = {}, int port = 0);
  /// SIGKILL and reap.
  void kill();
  /// SIGSTOP / SIGCONT.
  void pause();
  void resume();
  /// Restarts on the same port with the same arguments.
  bool restart();
  bool running() const { return pid_ > 0; }

  int port() const { return port_; }
  std::string host() const { return "127.0.0.1"; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  const std::string& error() const { return error_; }

 private:
  bool wait_ready(std::chrono::milliseconds timeout);
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = 0;
  std::vector<std::string> extra_;
  std::string config_;
  std::string ready_text_ = "Ready to accept connections";
  std::string error_;
};

/// One server shared by a whole test binary, started on first use.
/// Returns nullptr when Redis is unavailable (see RedisServer::required()).
RedisServer* shared_redis();

/// A free TCP port on 127.0.0.1 (bind to port 0 and read it back).
int free_port();

/// In a forked child: be killed when the test process dies, so no server or
/// peer outlives a crashed or timed-out test.
void die_with_parent();

}  // namespace gilmour::test
