// gilmour-echo-server [--redis URL] [--group G] [--no-health]
//
// Serves topic "echo" in exclusion group G (default "_default"; Go's stock
// echo server uses "exclusive"), answering "Pong " + data, until SIGINT or
// SIGTERM. With --redis it joins the services on that Redis; run several
// copies in one group and each request is answered by exactly one of them.
// Health checks are on unless --no-health is given.
#include <csignal>
#include <iostream>

#include "common/cli.hpp"
#include "echo/echo_service.hpp"

int main(int argc, char** argv) {
  // Block the stop signals before any thread starts, so every thread
  // inherits the mask and sigwait() below receives them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  auto cli = examples::parse_cli(argc, argv, {{"--group"}, {"--no-health"}});
  if (examples::has_flag(cli, "--help")) {
    std::cout << "usage: gilmour-echo-server [--redis URL] [--group G] [--no-health]\n";
    return 0;
  }
  if (!cli.args.empty()) examples::usage_error(cli, "unexpected argument " + cli.args[0]);
  std::string group = examples::option(cli, "--group").value_or("");
  if (examples::option(cli, "--group") && group.empty()) {
    examples::usage_error(cli, "--group needs a non-empty name");
  }
  try {
    gilmour::EngineOptions opts;
    opts.health_check = !examples::has_flag(cli, "--no-health");
    gilmour::Gilmour g(examples::make_backend(cli), opts);
    auto echo = examples::serve_echo(g, group);
    g.start();
    std::cout << "echo server ready on " << g.backend()->describe() << " (group "
              << (group.empty() ? "_default" : group)
              << (opts.health_check ? ", health: " + g.health_ident() : std::string()) << ")"
              << std::endl;
    // Wait for a signal without busy work: sigwait on a blocked set.
    int sig = 0;
    sigwait(&set, &sig);
    g.stop();
    std::cout << "echo server stopped" << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "gilmour-echo-server: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
