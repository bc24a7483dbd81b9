// Shared by the examples: a small command-line parser and the backend
// chosen by `--redis URL`.
//
// Without --redis the examples run on the in-process backend. A --redis that
// is empty, malformed or missing its value is a usage error, never a silent
// fall-back to in-process. Usage errors print "PROGRAM: what went wrong" on
// stderr and exit with status 2.
#pragma once

#include <charconv>
#include <cstdlib>
#include <gilmour/gilmour.hpp>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace examples {

/// What a program accepts besides --redis and --help.
struct CliSpec {
  std::vector<std::string> options;   ///< take a value: `--name VALUE` or `--name=VALUE`
  std::vector<std::string> switches;  ///< take no value: `--name`
};

struct Cli {
  std::string program;                         // argv[0] without its directory
  std::string redis;                           // empty: in-process (never empty when given)
  std::vector<std::string> args;               // the positional arguments, in order
  std::vector<std::string> flags;              // switches given, e.g. "--no-health"
  std::map<std::string, std::string> options;  // options given, e.g. {"--timeout", "500"}
};

/// Prints "PROGRAM: message" and exits with status 2.
[[noreturn]] inline void usage_error(const Cli& cli, const std::string& message) {
  std::cerr << cli.program << ": " << message << " (--help for usage)\n";
  std::exit(2);
}

/// Parses the command line: `--redis URL` (or `--redis=URL`), `--help`, the
/// options and switches of `spec`, and positional arguments (everything
/// after `--` is positional). Exits with status 2 on an unknown option, a
/// missing value, or a --redis that is empty or not a valid Redis URL.
inline Cli parse_cli(int argc, char** argv, const CliSpec& spec = {}) {
  Cli cli;
  std::string_view prog = argc > 0 ? argv[0] : "example";
  cli.program =
      std::string(prog.substr(prog.rfind('/') == std::string_view::npos ? 0 : prog.rfind('/') + 1));
  auto listed = [](const std::vector<std::string>& v, const std::string& name) {
    for (auto& s : v) {
      if (s == name) return true;
    }
    return false;
  };
  bool positional_only = false;
  bool redis_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (positional_only || a.rfind("--", 0) != 0) {
      cli.args.push_back(a);
      continue;
    }
    if (a == "--") {
      positional_only = true;
      continue;
    }
    std::string name = a;
    std::optional<std::string> value;
    if (auto eq = a.find('='); eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
    }
    if (name == "--redis" || listed(spec.options, name)) {
      if (!value) {
        if (i + 1 >= argc) usage_error(cli, name + " needs a value");
        value = argv[++i];
      }
      if (name == "--redis") {
        redis_given = true;
        cli.redis = *value;
      } else {
        cli.options[name] = *value;
      }
    } else if (name == "--help" || listed(spec.switches, name)) {
      if (value) usage_error(cli, name + " takes no value");
      cli.flags.push_back(name);
    } else {
      usage_error(cli, "unknown option " + name);
    }
  }
  if (redis_given) {
    if (cli.redis.empty()) usage_error(cli, "--redis needs a URL, e.g. redis://127.0.0.1:6379");
    try {
      (void)gilmour::redis::Options::from_url(cli.redis);
    } catch (const gilmour::Error& e) {
      usage_error(cli, std::string("--redis: ") + e.what());
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

/// The value of option `name`, if it was given.
inline std::optional<std::string> option(const Cli& cli, const std::string& name) {
  auto it = cli.options.find(name);
  if (it == cli.options.end()) return std::nullopt;
  return it->second;
}

/// `text` as an integer in [min, max]; a usage error (exit 2) naming `what`
/// otherwise.
inline long long int_arg(const Cli& cli, const std::string& what, const std::string& text,
                         long long min, long long max) {
  long long v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() || v < min || v > max) {
    usage_error(cli, what + " must be an integer from " + std::to_string(min) + " to " +
                         std::to_string(max) + ", not '" + text + "'");
  }
  return v;
}

/// The backend named by the command line: Redis at cli.redis (a URL or a
/// plain HOST:PORT), else the process-wide in-process bus.
inline std::shared_ptr<gilmour::Backend> make_backend(const Cli& cli) {
  if (cli.redis.empty()) return gilmour::inproc::make_backend();
  return gilmour::redis::make_backend(cli.redis);
}

}  // namespace examples
