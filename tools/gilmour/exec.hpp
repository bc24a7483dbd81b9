// Running a shell command for `gilmour reply --exec`: input on stdin,
// output captured with a size limit, killed (with its process group) at a
// deadline.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace gilmour::cli {

struct ExecResult {
  enum class Outcome {
    kExited,         ///< exit_status holds the status
    kSignaled,       ///< killed by signal `signal` (not by us)
    kTimedOut,       ///< killed by us at the deadline
    kOutputTooLong,  ///< killed by us: stdout exceeded the limit
    kSpawnFailed,    ///< could not start; `error` says why
    kAborted,        ///< killed by us: the tool is stopping
  };
  Outcome outcome = Outcome::kSpawnFailed;
  int exit_status = 0;
  int signal = 0;
  std::string out;  ///< stdout (at most the limit)
  std::string err;  ///< stderr (at most the stderr limit; the rest is dropped)
  std::string error;
};

struct ExecLimits {
  std::chrono::steady_clock::time_point deadline;
  std::size_t max_output = 1 << 20;
  std::size_t max_error = 64 << 10;
};

/// Hooks that let the caller kill running commands (tool shutdown): called
/// with the child's pid once it runs, and again (with `running` false)
/// before it is reaped.
using ExecTracker = std::function<void(pid_t pid, bool running)>;

/// Runs `/bin/sh -c command` with `input` on stdin and `env` ("K=V") added
/// to the environment, in its own process group.
ExecResult run_command(const std::string& command, const std::string& input,
                       const std::vector<std::string>& env, const ExecLimits& limits,
                       const ExecTracker& tracker = nullptr);

}  // namespace gilmour::cli
