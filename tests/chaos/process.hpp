// Processes of the chaos and soak runs: the role children (spawned from this
// same binary, their stdout and stderr appended to a log file, never a pipe
// that could fill up), and what /proc says about a process (RSS, open fds).
//
// Thread safety: a Child is used by one thread at a time; the free
// functions are thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace gilmour::chaos {

/// A child process running this program in a role (`argv` without the
/// program name), its output appended to `log_path`. Killed with SIGKILL on
/// destruction if still running, and when this process dies.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& log_path);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool started() const noexcept { return pid_ > 0; }
  pid_t pid() const noexcept { return pid_; }
  /// SIGTERM, then waits up to `timeout` for it to exit (SIGKILL after).
  /// Returns the exit status, or -1 when it did not exit normally.
  int stop(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
};

/// Writes all of `s` with write(2) on `fd` (one call unless interrupted), so
/// lines from several threads never interleave.
void write_all(int fd, const std::string& s);

/// Resident set size of a process in KiB (VmRSS of /proc/PID/status); -1
/// when unreadable.
std::int64_t rss_kib(pid_t pid);
/// Open file descriptors of a process (entries of /proc/PID/fd); -1 when
/// unreadable.
std::int64_t fd_count(pid_t pid);

}  // namespace gilmour::chaos
