// The commands of `gilmour`: their arguments (filled by main.cpp's CLI11
// parser) and their entry points. Each returns the process exit code or
// throws Failure.
#pragma once

#include <string>
#include <vector>

#include "common.hpp"

namespace gilmour::cli {

struct RequestArgs {
  std::string topic;
  std::string data;
  bool has_data = false;
  bool as_string = false;
  int timeout_ms = 10000;
  bool full = false;
  bool no_confirm = false;
};
int run_request(const Global& g, const RequestArgs& a);

struct SignalArgs {
  std::string topic;
  std::string data;
  bool has_data = false;
  bool as_string = false;
  bool confirm = false;
};
int run_signal(const Global& g, const SignalArgs& a);

struct ListenArgs {
  std::vector<std::string> patterns;
  long long count = 0;  ///< 0: until interrupted
  bool json = false;
  bool no_responses = false;
};
int run_listen(const Global& g, const ListenArgs& a);

struct ReplyArgs {
  std::string topic;
  std::string exec;
  std::string group;
  int timeout_ms = 60000;
  int concurrency = 4;
  int max_queue = 1000;
  long long max_output = 1 << 20;
  bool health = false;
  std::string error_policy = "publish";
  bool quiet = false;
};
int run_reply(const Global& g, const ReplyArgs& a);

struct HealthArgs {
  bool watch = false;
  double interval_s = 5;
  int timeout_ms = 1000;
  bool json = false;
  bool prune = false;
  std::vector<std::string> essential;
};
int run_health(const Global& g, const HealthArgs& a);

struct StatsArgs {
  std::string ident;  ///< empty: every registered process
  bool prometheus = false;
  bool json = false;
  int timeout_ms = 2000;
};
int run_stats(const Global& g, const StatsArgs& a);

struct ErrorsArgs {
  bool follow = false;
  bool queue = false;
  long long count = 0;  ///< 0: all (queue) / until interrupted (channel)
  bool json = false;
  std::string channel = "gilmour.error";
  std::string queue_key = "gilmour.errorqueue";
  int interval_ms = 1000;
};
int run_errors(const Global& g, const ErrorsArgs& a);

struct BenchArgs {
  std::string mode;  ///< request, signal or reply
  std::string topic;
  std::string data = "bench";
  long long size = -1;  ///< >= 0: a string of this many bytes instead of data
  int inflight = 8;
  double duration_s = 0;  ///< 0: 5 s for request/signal, until interrupted for reply
  int timeout_ms = 5000;
  bool json = false;
};
int run_bench(const Global& g, const BenchArgs& a);

}  // namespace gilmour::cli
