// gilmour-chaos: the roles of the one binary (chaos run, soak run, and the
// replier that both spawn as child processes), and what they share: the
// command line and the topic names.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace gilmour::chaos {

/// `--name value` options and `--flag`s of a role's command line.
class Args {
 public:
  /// Parses `argv` (without the program and role names). Every `--name`
  /// followed by a word not starting with `--` takes it as its value.
  explicit Args(const std::vector<std::string>& argv);
  std::string get(const std::string& name, const std::string& fallback = "") const;
  long long number(const std::string& name, long long fallback) const;
  bool flag(const std::string& name) const { return values_.count(name) != 0; }

 private:
  std::map<std::string, std::string> values_;
};

/// The topics of one run, all under a prefix unique to the run.
struct Topics {
  explicit Topics(const std::string& prefix)
      : request(prefix + ".request"),
        group(prefix + ".group"),
        signal(prefix + ".signal"),
        burst(prefix + ".burst") {}
  std::string request;  ///< reply handlers of the repliers, one exclusion group
  std::string group;    ///< that group
  std::string signal;   ///< a slot of every replier (no group)
  std::string burst;    ///< the slow inline slot of the overflow fault
};

/// `replier --redis URL --prefix P [--log FILE] [--slow-slot] [--workers N]`:
/// serves Topics(P) until SIGTERM; with --log, appends one line per event to
/// FILE: `r ID` (request handled), `s ID` (signal received), `b ID` (burst
/// signal received), `c STATE` (connection lost/restored).
int replier_main(const Args& args);
/// The fault run (see chaos_run.cpp).
int chaos_main(const Args& args);
/// The soak run (see soak.cpp).
int soak_main(const Args& args);

}  // namespace gilmour::chaos
