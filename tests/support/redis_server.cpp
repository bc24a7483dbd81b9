#include "support/redis_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <thread>

#include "support/timing.hpp"

namespace gilmour::test {

namespace {
bool ping(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = false;
  timeval tv{0, 200000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const char cmd[] = "PING\r\n";
    if (::write(fd, cmd, sizeof cmd - 1) == static_cast<ssize_t>(sizeof cmd - 1)) {
      char buf[64];
      ssize_t n = ::read(fd, buf, sizeof buf);
      // +PONG, or -NOAUTH when a password is set: either way it is serving.
      ok = n > 0 && (buf[0] == '+' || buf[0] == '-') &&
           std::string(buf, n).find("LOADING") == std::string::npos;
    }
  }
  ::close(fd);
  return ok;
}
}  // namespace

void die_with_parent() { ::prctl(PR_SET_PDEATHSIG, SIGKILL); }

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

std::string RedisServer::binary() {
  if (const char* env = std::getenv("GILMOUR_REDIS_SERVER"); env && *env) return env;
  for (const char* p : {"/usr/bin/redis-server", "/usr/local/bin/redis-server"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

bool RedisServer::required() {
  const char* ci = std::getenv("CI");
  return ci && *ci && std::string(ci) != "0" && std::string(ci) != "false";
}

RedisServer::~RedisServer() { kill(); }

bool RedisServer::start(std::vector<std::string> extra, int port) {
  extra_ = std::move(extra);
  std::string bin = binary();
  if (bin.empty()) {
    error_ = "redis-server not found (set GILMOUR_REDIS_SERVER)";
    return false;
  }
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = port ? port : free_port();
    std::vector<std::string> args = {bin,
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--daemonize",
                                     "no",
                                     "--loglevel",
                                     "notice",
                                     "--logfile",
                                     ""};
    if (!config_.empty()) args.insert(args.begin() + 1, config_);
    args.insert(args.end(), extra_.begin(), extra_.end());
    int fds[2];
    if (::pipe(fds) != 0) {
      error_ = "pipe() failed";
      return false;
    }
    pid_t pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, 0);
      die_with_parent();
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      ::close(fds[1]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(bin.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    pid_ = pid;
    out_fd_ = fds[0];
    if (wait_ready(scaled(std::chrono::seconds(10)))) return true;
    kill();
    if (port) break;  // a fixed port cannot be retried elsewhere
  }
  return false;
}

bool RedisServer::wait_ready(std::chrono::milliseconds timeout) {
  // Read the server's log until it says it accepts connections (or exits).
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string log;
  bool ready = false;
  while (!ready) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{out_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[4096];
    ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n <= 0) break;  // EOF: the server exited (port taken, bad arguments)
    log.append(buf, static_cast<std::size_t>(n));
    ready = log.find(ready_text_) != std::string::npos;
  }
  if (ready) ready = ping(port_);
  // Keep draining the log so the server never blocks on a full pipe.
  int fd = out_fd_;
  out_fd_ = -1;
  std::thread([fd] {
    char buf[4096];
    while (::read(fd, buf, sizeof buf) > 0) {
    }
    ::close(fd);
  }).detach();
  if (!ready) error_ = "redis-server did not start: " + log.substr(0, 2000);
  return ready;
}

void RedisServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGCONT);
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

void RedisServer::pause() {
  if (pid_ > 0) ::kill(pid_, SIGSTOP);
}

void RedisServer::resume() {
  if (pid_ > 0) ::kill(pid_, SIGCONT);
}

bool RedisServer::restart() {
  kill();
  return start(extra_, port_);
}

RedisServer* shared_redis() {
  static std::unique_ptr<RedisServer> server = [] {
    auto s = std::make_unique<RedisServer>();
    if (!s->start()) return std::unique_ptr<RedisServer>();
    return s;
  }();
  return server.get();
}

}  // namespace gilmour::test
