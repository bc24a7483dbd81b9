// The replier role: one engine in a process of its own, serving the run's
// request topic in one exclusion group with its peer, a slot on the signal
// topic, and optionally the slow slot of the overflow fault.
#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <gilmour/gilmour.hpp>
#include <iostream>

#include "chaos/process.hpp"
#include "chaos/roles.hpp"
#include "support/timing.hpp"

namespace gilmour::chaos {

namespace {
const char* state_name(ConnectionState s) {
  switch (s) {
    case ConnectionState::kConnected:
      return "connected";
    case ConnectionState::kDisconnected:
      return "disconnected";
    case ConnectionState::kReconnected:
      return "reconnected";
  }
  return "?";
}
}  // namespace

int replier_main(const Args& args) {
  // The stop signals are taken by sigwait on the main thread; the engine's
  // threads inherit the mask.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  Topics topics(args.get("prefix", "chaos"));
  std::string log_path = args.get("log");
  int log = log_path.empty()
                ? -1
                : ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  auto record = [log](const std::string& line) {
    if (log >= 0) write_all(log, line + "\n");
  };
  try {
    EngineOptions options;
    options.set_worker_threads(static_cast<std::size_t>(args.number("workers", 4)))
        .set_on_connection_state([record](ConnectionState s, std::string_view) {
          record(std::string("c ") + state_name(s));
        });
    Gilmour g(redis::make_backend(std::string_view(args.get("redis"))), options);
    auto requests = g.reply_to(
        topics.request,
        [record](const Request& req, Response& res) {
          auto id = req.data<std::int64_t>();
          record("r " + std::to_string(id));
          res.set_data(id);
        },
        HandlerOptions{}.set_group(topics.group));
    auto signals = g.slot(topics.signal, [record](const Request& req) {
      record("s " + std::to_string(req.data().value("id", std::int64_t{-1})));
    });
    Subscription burst;
    if (args.flag("slow-slot")) {
      // Inline: while it sleeps the engine's I/O thread reads nothing, so
      // Redis's output buffer for this subscriber fills.
      burst = g.slot(
          topics.burst,
          [record](const Request& req) {
            auto sleep_ms = req.data().value("sleep_ms", std::int64_t{0});
            if (sleep_ms > 0) test::let_time_pass(std::chrono::milliseconds(sleep_ms));
            record("b " + std::to_string(req.data().value("id", std::int64_t{-1})));
          },
          HandlerOptions{}.set_inline_delivery());
    }
    g.start();
    int sig = 0;
    sigwait(&stop, &sig);
    requests.cancel();
    signals.cancel();
    burst.cancel();
    g.stop();
    std::cout << "stats " << to_json(g.stats()).dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "replier: " << e.what() << std::endl;
    return 1;
  }
  if (log >= 0) ::close(log);
  return 0;
}

}  // namespace gilmour::chaos
