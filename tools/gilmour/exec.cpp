#include "exec.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

extern char** environ;

namespace gilmour::cli {

namespace {

/// A file descriptor closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const noexcept { return fd_; }
  bool open() const noexcept { return fd_ >= 0; }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

/// A pipe whose ends are close-on-exec (so that commands started
/// concurrently do not inherit each other's pipes, which would hold them open).
bool make_pipe(Fd& read_end, Fd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
  return true;
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

int pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

}  // namespace

ExecResult run_command(const std::string& command, const std::string& input,
                       const std::vector<std::string>& env, const ExecLimits& limits,
                       const ExecTracker& tracker) {
  ExecResult r;
  Fd in_r, in_w, out_r, out_w, err_r, err_w;
  if (!make_pipe(in_r, in_w) || !make_pipe(out_r, out_w) || !make_pipe(err_r, err_w)) {
    r.error = std::string("pipe: ") + std::strerror(errno);
    return r;
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Own process group (killed as a whole), no blocked signals, default
  // dispositions for the ones the tool blocks or ignores.
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t mask;
  sigemptyset(&mask);
  posix_spawnattr_setsigmask(&attr, &mask);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigdefault(&attr, &defaults);

  std::vector<std::string> env_strings;
  for (char** e = environ; e && *e; ++e) {
    std::string_view var(*e);
    bool replaced = std::any_of(env.begin(), env.end(), [&](const std::string& x) {
      auto eq = x.find('=');
      return var.substr(0, eq + 1) == std::string_view(x).substr(0, eq + 1);
    });
    if (!replaced) env_strings.emplace_back(var);
  }
  env_strings.insert(env_strings.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string sh = "sh", dash_c = "-c", cmd = command;
  char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};

  pid_t pid = -1;
  int rc = posix_spawn(&pid, "/bin/sh", &actions, &attr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    r.error = std::string("cannot run /bin/sh: ") + std::strerror(rc);
    return r;
  }
  if (tracker) tracker(pid, true);
  in_r.reset();
  out_w.reset();
  err_w.reset();
  set_nonblocking(in_w.get());
  set_nonblocking(out_r.get());
  set_nonblocking(err_r.get());
  Fd pidfd(pidfd_open(pid));

  std::size_t written = 0;
  if (input.empty()) in_w.reset();
  bool exited = false;
  int status = 0;
  bool killed = false;
  auto kill_group = [&] {
    ::kill(-pid, SIGKILL);
    killed = true;
  };

  while (!killed && (!exited || out_r.open() || err_r.open())) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    limits.deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      r.outcome = ExecResult::Outcome::kTimedOut;
      kill_group();
      break;
    }
    pollfd fds[4];
    int n = 0;
    int i_in = -1, i_out = -1, i_err = -1, i_pid = -1;
    if (in_w.open()) {
      i_in = n;
      fds[n++] = {in_w.get(), POLLOUT, 0};
    }
    if (out_r.open()) {
      i_out = n;
      fds[n++] = {out_r.get(), POLLIN, 0};
    }
    if (err_r.open()) {
      i_err = n;
      fds[n++] = {err_r.get(), POLLIN, 0};
    }
    if (!exited && pidfd.open()) {
      i_pid = n;
      fds[n++] = {pidfd.get(), POLLIN, 0};
    }
    // Without a pidfd, look at the child every 50 ms.
    int wait_ms = static_cast<int>(std::min<long long>(left, pidfd.open() ? left : 50));
    int ready = ::poll(fds, static_cast<nfds_t>(n), wait_ms);
    if (ready < 0 && errno != EINTR) {
      r.error = std::string("poll: ") + std::strerror(errno);
      kill_group();
      break;
    }
    if (i_in >= 0 && fds[i_in].revents) {
      ssize_t w = ::write(in_w.get(), input.data() + written, input.size() - written);
      if (w > 0) written += static_cast<std::size_t>(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) in_w.reset();
    }
    auto drain = [&](Fd& fd, std::string& into, std::size_t limit, bool fatal) {
      char buf[65536];
      for (;;) {
        ssize_t got = ::read(fd.get(), buf, sizeof buf);
        if (got > 0) {
          std::size_t room = limit > into.size() ? limit - into.size() : 0;
          into.append(buf, std::min(room, static_cast<std::size_t>(got)));
          if (fatal && static_cast<std::size_t>(got) > room) {
            r.outcome = ExecResult::Outcome::kOutputTooLong;
            kill_group();
            return;
          }
          continue;
        }
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
        fd.reset();  // EOF or error
        return;
      }
    };
    if (i_out >= 0 && fds[i_out].revents) drain(out_r, r.out, limits.max_output, true);
    if (!killed && i_err >= 0 && fds[i_err].revents) drain(err_r, r.err, limits.max_error, false);
    if (!exited) {
      // Exited? (without reaping it: a pid is not reused before it is reaped,
      // so the tracker may kill it until we say it is gone)
      bool done = false;
      if (i_pid >= 0) {
        done = fds[i_pid].revents != 0;
      } else {
        siginfo_t si{};
        done = ::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
               si.si_pid == pid;
      }
      if (done) {
        if (tracker) tracker(pid, false);
        ::waitpid(pid, &status, 0);
        exited = true;
      }
    }
  }
  if (!exited) {
    if (tracker) tracker(pid, false);
    if (!killed) kill_group();
    ::waitpid(pid, &status, 0);
  }
  if (killed) {
    if (r.outcome == ExecResult::Outcome::kSpawnFailed) r.outcome = ExecResult::Outcome::kAborted;
    return r;
  }
  if (WIFEXITED(status)) {
    r.outcome = ExecResult::Outcome::kExited;
    r.exit_status = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.outcome = ExecResult::Outcome::kSignaled;
    r.signal = WTERMSIG(status);
  }
  return r;
}

}  // namespace gilmour::cli
