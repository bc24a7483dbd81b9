// Runs the project's programs (examples, tools) as child processes in tests:
// their exit status and what they wrote, or a long-running one (a server)
// read until it is ready and then stopped with a signal.
//
// Thread safety: one ChildProcess is used by one thread at a time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gilmour::test {

using namespace std::chrono_literals;

/// What a finished program did.
struct ProgramResult {
  int exit_code = -1;  ///< the exit status, or -1 when it did not exit normally
  int signal = 0;      ///< the signal that ended it, if one did
  std::string out;     ///< its stdout
  std::string err;     ///< its stderr
};

/// Environment changes for a child: a value sets the variable, nullopt
/// removes it; everything else is inherited.
using EnvChanges = std::map<std::string, std::optional<std::string>>;

/// A child process with its stdout and stderr on pipes; killed (SIGKILL) and
/// reaped on destruction if still running, and when the test process dies.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const EnvChanges& env = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool started() const noexcept { return pid_ > 0; }
  pid_t pid() const noexcept { return pid_; }

  /// Reads stdout until it contains `text`, the program closes it, or
  /// scaled(timeout) passes; returns whether `text` arrived.
  bool wait_for_output(const std::string& text, std::chrono::milliseconds timeout = 60s);
  /// Sends `sig` (when still running).
  void signal(int sig);
  /// Reads both pipes to their end and reaps the child. When it has not
  /// finished within scaled(timeout) it is killed (and the result says
  /// SIGKILL).
  ProgramResult wait(std::chrono::milliseconds timeout = 120s);

 private:
  bool pump(std::chrono::steady_clock::time_point deadline);
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_, err_;
};

/// Runs `argv` to completion (see ChildProcess::wait).
ProgramResult run_program(const std::vector<std::string>& argv, const EnvChanges& env = {},
                          std::chrono::milliseconds timeout = 120s);

}  // namespace gilmour::test
