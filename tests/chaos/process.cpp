#include "chaos/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <fstream>

#include "support/redis_server.hpp"

namespace gilmour::chaos {

namespace {
std::string self_exe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

/// Waits until the child `pid` has terminated (not reaped yet), for at most
/// `timeout`: poll(2) on its pidfd (pidfd_open(2), Linux 5.3), readable once
/// it exits. False when it did not exit in time or there is no pidfd.
bool exited_within(pid_t pid, std::chrono::milliseconds timeout) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int ready = 0;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    ready = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
    if (ready >= 0 || errno != EINTR) break;
  }
  ::close(fd);
  return ready > 0;
}
}  // namespace

Child::Child(const std::vector<std::string>& argv, const std::string& log_path) {
  // Built before fork(): after it only async-signal-safe calls are allowed.
  std::string exe = self_exe();
  std::vector<std::string> args = {exe};
  args.insert(args.end(), argv.begin(), argv.end());
  std::vector<char*> cargv;
  cargv.reserve(args.size() + 1);
  for (auto& a : args) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0 || exe.empty()) {
    if (log >= 0) ::close(log);
    return;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    test::die_with_parent();
    ::dup2(log, 1);
    ::dup2(log, 2);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  ::close(log);
  pid_ = pid;
}

Child::~Child() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

int Child::stop(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  const pid_t got = exited_within(pid_, timeout) ? ::waitpid(pid_, &status, 0) : 0;
  if (got == 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
  }
  pid_ = -1;
  return got > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void write_all(int fd, const std::string& s) {
  const char* p = s.data();
  std::size_t left = s.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

std::int64_t rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      std::int64_t kib = -1;
      in >> kib;
      return kib;
    }
    in.ignore(1 << 16, '\n');
  }
  return -1;
}

std::int64_t fd_count(pid_t pid) {
  std::error_code ec;
  std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec);
  if (ec) return -1;
  std::int64_t n = 0;
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) ++n;
  return n - (pid == ::getpid() ? 1 : 0);  // the iterator's own fd
}

}  // namespace gilmour::chaos
