// Shared by the examples: choose the backend from `--redis URL`.
// Without --redis the examples run on the in-process backend.
#pragma once

#include <cstring>
#include <gilmour/gilmour.hpp>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace examples {

struct Cli {
  std::string redis;               // empty: in-process
  std::vector<std::string> args;   // the remaining (positional) arguments
  std::vector<std::string> flags;  // other --flags, as given
};

/// Parses `--redis URL` (or `--redis=URL`); other arguments are kept in order.
inline Cli parse_cli(int argc, char** argv) {
  Cli cli;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--redis" && i + 1 < argc) {
      cli.redis = argv[++i];
    } else if (a.rfind("--redis=", 0) == 0) {
      cli.redis = a.substr(8);
    } else if (a.rfind("--", 0) == 0) {
      cli.flags.push_back(a);
    } else {
      cli.args.push_back(a);
    }
  }
  return cli;
}

inline bool has_flag(const Cli& cli, const std::string& flag) {
  for (auto& f : cli.flags) {
    if (f == flag) return true;
  }
  return false;
}

/// The backend named by the command line: Redis at cli.redis (a URL or a
/// plain HOST:PORT), else the process-wide in-process bus.
inline std::shared_ptr<gilmour::Backend> make_backend(const Cli& cli) {
  if (cli.redis.empty()) return gilmour::inproc::make_backend();
  return gilmour::redis::make_backend(cli.redis);
}

}  // namespace examples
