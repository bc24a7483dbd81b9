// gilmour [--redis URL] COMMAND ...: the operator's command line for Gilmour
// services on a Redis (what redis-cli is for Redis, or `nats` for NATS).
// See docs/cli.md.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "commands.hpp"
#include "common.hpp"

namespace {

using gilmour::cli::Global;

/// The library's version, as linked (gilmour/version.hpp).
const std::string kVersion(gilmour::version());

}  // namespace

int main(int argc, char** argv) {
  gilmour::cli::stop::install();  // before any thread starts

  CLI::App app{"Talk to Gilmour services over Redis: call them, watch them, serve them."};
  app.name("gilmour");
  app.set_version_flag("--version", std::string("gilmour ") + kVersion,
                       "Print the gilmour-cpp version and exit");
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the command
  app.footer(
      "The Redis URL is redis://[[user]:password@]host[:port][/db], unix:///path[?db=N]\n"
      "or redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTER[?db=N];\n"
      "default: $GILMOUR_REDIS_URL, else redis://127.0.0.1:6379.\n"
      "Exit codes: 0 ok, 1 failure reported by the remote side, 2 invalid arguments,\n"
      "3 Redis unreachable, 130 interrupted. Run `gilmour COMMAND --help` for details.");

  Global g;
  app.add_option("--redis", g.url, "Redis URL")->envname("GILMOUR_REDIS_URL");
  app.add_option("--connect-timeout", g.connect_timeout_ms,
                 "Give up connecting to Redis after MS milliseconds (default 2000)")
      ->check(CLI::Range(1, 3600 * 1000));
  app.add_flag("-v,--verbose", g.verbose, "Log the library's debug messages on stderr");

  // request
  gilmour::cli::RequestArgs req;
  auto* request = app.add_subcommand("request", "Send a request and print the response's data");
  request->add_option("topic", req.topic, "Topic to call")->required();
  auto* req_data = request->add_option(
      "data", req.data, "Request data: JSON if it parses as JSON, else a string; - reads stdin");
  request->add_flag("-s,--string", req.as_string, "Send DATA as a string even if it is JSON");
  request->add_option("-t,--timeout", req.timeout_ms, "Wait MS milliseconds (default 10000)")
      ->check(CLI::Range(1, 24 * 3600 * 1000));
  request->add_flag("--full", req.full, "Print the whole response envelope (data, code, sender)");
  request->add_flag("--no-confirm", req.no_confirm,
                    "Wait for the timeout even when nobody listens (default: fail at once, 404)");
  request->footer(
      "Prints the response data (a string as is, other JSON compact) and exits 0 on a\n"
      "2xx code; otherwise prints `CODE error-text` on stderr and exits 1.\n"
      "Example: gilmour request echo '{\"name\":\"Ann\"}' --timeout 2000");

  // signal
  gilmour::cli::SignalArgs sig;
  auto* signal = app.add_subcommand("signal", "Publish a signal (fire and forget)");
  signal->add_option("topic", sig.topic, "Topic to signal")->required();
  auto* sig_data = signal->add_option(
      "data", sig.data, "Signal data: JSON if it parses as JSON, else a string; - reads stdin");
  signal->add_flag("-s,--string", sig.as_string, "Send DATA as a string even if it is JSON");
  signal->add_flag("--confirm", sig.confirm, "Exit 1 when no subscriber received the signal");
  signal->footer("Example: gilmour signal item.buy.42 '{\"item\":\"book\",\"price\":500}'");

  // listen
  gilmour::cli::ListenArgs lis;
  auto* listen = app.add_subcommand(
      "listen", "Print the signals, requests and responses on matching topics as they pass");
  listen
      ->add_option("pattern", lis.patterns,
                   "Topic patterns (Redis glob: `*` matches anything, dots included); a name "
                   "starting with gilmour. is taken as a raw channel")
      ->required();
  listen->add_option("-n,--count", lis.count, "Exit after N messages")->check(CLI::PositiveNumber);
  listen->add_flag("--json", lis.json, "One JSON object per line");
  listen->add_flag("--no-responses", lis.no_responses,
                   "Do not follow responses (saves a PSUBSCRIBE gilmour.response.*)");
  listen->footer(
      "Prints `listening on ...` on stderr once subscribed, then one line per message:\n"
      "time kind topic sender code data. Responses are matched to the requests seen.\n"
      "Example: gilmour listen 'item.*' echo --count 10");

  // reply
  gilmour::cli::ReplyArgs rep;
  auto* reply = app.add_subcommand("reply", "Serve a topic by running a shell command per request");
  reply->add_option("topic", rep.topic, "Topic to serve")->required();
  reply
      ->add_option("-e,--exec", rep.exec,
                   "Command run with /bin/sh -c; request data on stdin, response on stdout")
      ->required();
  reply->add_option("-g,--group", rep.group, "Exclusion group (default _default)");
  reply
      ->add_option("-t,--timeout", rep.timeout_ms,
                   "Handler deadline in ms (default 60000): the command is killed, 499 answered")
      ->check(CLI::Range(1, 24 * 3600 * 1000));
  reply
      ->add_option("-c,--concurrency", rep.concurrency,
                   "Commands running at once (default 4); more requests wait")
      ->check(CLI::Range(1, 1024));
  reply
      ->add_option("--max-queue", rep.max_queue,
                   "Requests waiting beyond this are answered 503 at once (default 1000)")
      ->check(CLI::Range(0, 1000000));
  reply
      ->add_option("--max-output", rep.max_output,
                   "Kill the command and answer 500 beyond this many bytes of output "
                   "(default 1048576)")
      ->check(CLI::Range(1LL, 64LL << 20));
  reply->add_flag("--health", rep.health, "Register for health checks (gilmour health)");
  reply
      ->add_option("--error-policy", rep.error_policy,
                   "Error records of failed requests: publish (default), queue or ignore")
      ->check(CLI::IsMember({"publish", "queue", "ignore"}));
  reply->add_flag("-q,--quiet", rep.quiet, "Do not log each request on stderr");
  reply->footer(
      "stdin: the request data as JSON text, or the raw string when it is a string.\n"
      "stdout: the response data (JSON if it parses, else a string; trailing newlines cut).\n"
      "Exit status != 0: code 500 with stderr as the error text. The environment has\n"
      "GILMOUR_TOPIC and GILMOUR_SENDER.\n"
      "Example: gilmour reply upper --exec 'tr a-z A-Z' --group upper-workers");

  // health
  gilmour::cli::HealthArgs hea;
  auto* health = app.add_subcommand(
      "health", "List the registered processes, their topics, and whether they answer a ping");
  health->add_flag("-w,--watch", hea.watch, "Check again every interval until interrupted");
  health->add_option("-i,--interval", hea.interval_s, "Seconds between checks with --watch (5)")
      ->check(CLI::PositiveNumber);
  health->add_option("-t,--timeout", hea.timeout_ms, "Ping timeout in ms (default 1000)")
      ->check(CLI::Range(1, 3600 * 1000));
  health->add_option("--essential", hea.essential,
                     "A topic that must have a listener (repeatable)");
  health->add_flag("--prune", hea.prune,
                   "Remove processes that do not answer from gilmour.known_host.health");
  health->add_flag("--json", hea.json, "One JSON report per check");
  health->footer("Exits 1 when a process does not answer or an essential topic has no listener.");

  // stats
  gilmour::cli::StatsArgs sta;
  auto* stats = app.add_subcommand(
      "stats", "Print the counters of one or every registered gilmour-cpp process");
  stats->add_option("ident", sta.ident, "A process ident (default: every registered process)");
  stats->add_flag("--prometheus", sta.prometheus, "Prometheus text exposition format");
  stats->add_flag("--json", sta.json, "One JSON object per process");
  stats->add_option("-t,--timeout", sta.timeout_ms, "Timeout per process in ms (default 2000)")
      ->check(CLI::PositiveNumber);
  stats->footer(
      "Processes answer with health checks on (our extension, gilmour.stats.<ident>); Go and "
      "Ruby processes do not. Exits 1 when a named IDENT does not answer.");

  // errors
  gilmour::cli::ErrorsArgs err;
  auto* errors = app.add_subcommand("errors", "Print error records, decoded");
  errors->add_flag("-q,--queue", err.queue,
                   "Read the error queue (list gilmour.errorqueue) instead of the channel");
  errors->add_flag("-f,--follow", err.follow,
                   "With --queue: after the records present, print new ones as they come");
  errors->add_option("-n,--count", err.count, "Channel: exit after N records; queue: the N newest")
      ->check(CLI::PositiveNumber);
  errors->add_flag("--json", err.json, "Print each record as JSON");
  errors->add_option("--channel", err.channel, "Error channel (default gilmour.error)");
  errors->add_option("--queue-key", err.queue_key, "Error list (default gilmour.errorqueue)");
  errors->add_option("--interval", err.interval_ms, "Poll interval of --queue --follow in ms")
      ->check(CLI::Range(10, 3600 * 1000));
  errors->footer(
      "Without --queue it subscribes to the error channel and prints records as they\n"
      "are published (until interrupted or --count); with --queue it prints the queued\n"
      "records, oldest first, and exits (or keeps polling with --follow).");

  // bench
  gilmour::cli::BenchArgs ben;
  auto* bench = app.add_subcommand("bench", "Load a topic and report throughput and latency");
  bench->require_subcommand(1);
  auto bench_mode = [&](const char* name, const char* what) {
    auto* sub = bench->add_subcommand(name, what);
    sub->add_option("topic", ben.topic, "Topic")->required();
    sub->add_option("data", ben.data, "Payload (JSON if it parses, else a string)");
    sub->add_option("--size", ben.size, "Payload: a string of this many bytes")
        ->check(CLI::Range(0LL, 64LL << 20));
    sub->add_option("-k,--inflight", ben.inflight, "Operations in flight at once (default 8)")
        ->check(CLI::Range(1, 100000));
    sub->add_option("-d,--duration", ben.duration_s,
                    "Seconds to run (default 5; reply: until interrupted)")
        ->check(CLI::PositiveNumber);
    sub->add_option("-t,--timeout", ben.timeout_ms, "Request timeout in ms (default 5000)")
        ->check(CLI::Range(1, 3600 * 1000));
    sub->add_flag("--json", ben.json, "Print the summary as JSON");
    sub->callback([&ben, name] { ben.mode = name; });
    return sub;
  };
  bench_mode("request", "Requests, K in flight, against a replier of the topic");
  bench_mode("signal", "Signals, K publishes in flight");
  bench_mode("reply", "Answer requests on the topic with their data, as fast as possible");
  bench->footer(
      "A live progress line goes to stderr when it is a terminal; the summary to stdout.\n"
      "Example: gilmour bench reply echo & gilmour bench request echo -k 16 -d 10");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? gilmour::cli::kExitOk : gilmour::cli::kExitUsage;
  }
  if (g.url.empty()) g.url = gilmour::cli::kDefaultUrl;
  req.has_data = req_data->count() > 0;
  sig.has_data = sig_data->count() > 0;

  try {
    if (*request) return run_request(g, req);
    if (*signal) return run_signal(g, sig);
    if (*listen) return run_listen(g, lis);
    if (*reply) return run_reply(g, rep);
    if (*health) return run_health(g, hea);
    if (*errors) return run_errors(g, err);
    if (*stats) return run_stats(g, sta);
    if (*bench) return run_bench(g, ben);
  } catch (const gilmour::cli::Failure& f) {
    std::cerr << "gilmour: " << f.what() << "\n";
    return f.code();
  } catch (const gilmour::InvalidArgument& e) {
    std::cerr << "gilmour: " << e.what() << "\n";
    return gilmour::cli::kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "gilmour: " << e.what() << "\n";
    return gilmour::cli::kExitFailed;
  }
  return gilmour::cli::kExitUsage;
}
