#include "support/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "support/redis_server.hpp"
#include "support/timing.hpp"

extern char** environ;

namespace gilmour::test {

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const EnvChanges& env) {
  // Everything the child needs is built before fork(): after fork() in a
  // multi-threaded process only async-signal-safe calls are allowed.
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    if (env.count(kv.substr(0, kv.find('='))) == 0) envs.push_back(std::move(kv));
  }
  for (auto& [name, value] : env) {
    if (value) envs.push_back(name + "=" + *value);
  }
  std::vector<char*> cargv, cenv;
  for (auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (auto& e : envs) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return;
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    die_with_parent();
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execve(cargv[0], cargv.data(), cenv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  if (pid < 0) {
    ::close(out[0]);
    ::close(err[0]);
    return;
  }
  pid_ = pid;
  out_fd_ = out[0];
  err_fd_ = err[0];
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  if (out_fd_ >= 0) ::close(out_fd_);
  if (err_fd_ >= 0) ::close(err_fd_);
}

bool ChildProcess::pump(std::chrono::steady_clock::time_point deadline) {
  // One poll over the open pipes; false when both are closed or time is up.
  pollfd fds[2];
  int n = 0;
  if (out_fd_ >= 0) fds[n++] = {out_fd_, POLLIN, 0};
  if (err_fd_ >= 0) fds[n++] = {err_fd_, POLLIN, 0};
  if (n == 0) return false;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  int r = ::poll(fds, static_cast<nfds_t>(n), static_cast<int>(left.count()));
  if (r < 0) return errno == EINTR;
  if (r == 0) return false;
  for (int i = 0; i < n; ++i) {
    if (!fds[i].revents) continue;
    char buf[4096];
    ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
    bool is_out = fds[i].fd == out_fd_;
    if (got > 0) {
      (is_out ? out_ : err_).append(buf, static_cast<std::size_t>(got));
    } else if (got == 0 || errno != EINTR) {
      ::close(fds[i].fd);
      (is_out ? out_fd_ : err_fd_) = -1;
    }
  }
  return true;
}

bool ChildProcess::wait_for_output(const std::string& text, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + scaled(timeout);
  while (out_.find(text) == std::string::npos) {
    if (out_fd_ < 0 || !pump(deadline)) break;
  }
  return out_.find(text) != std::string::npos;
}

void ChildProcess::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

ProgramResult ChildProcess::wait(std::chrono::milliseconds timeout) {
  ProgramResult r;
  if (pid_ <= 0) return r;
  auto deadline = std::chrono::steady_clock::now() + scaled(timeout);
  while (pump(deadline)) {
  }
  if (out_fd_ >= 0 || err_fd_ >= 0) ::kill(pid_, SIGKILL);  // timed out
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.out = std::move(out_);
  r.err = std::move(err_);
  return r;
}

ProgramResult run_program(const std::vector<std::string>& argv, const EnvChanges& env,
                          std::chrono::milliseconds timeout) {
  ChildProcess child(argv, env);
  return child.wait(timeout);
}

}  // namespace gilmour::test
