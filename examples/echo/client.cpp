// gilmour-echo-client [--redis URL] [--timeout MS] TEXT...
//
// Sends each TEXT as a request to "echo" and prints each reply's data on its
// own line; exits 1 if any reply has code >= 300 (499 when no reply came
// within --timeout MS, default 5000), 2 on a usage error. Without --redis it
// runs on the in-process backend and starts its own echo server in-process.
#include <iostream>
#include <optional>

#include "common/cli.hpp"
#include "echo/echo_service.hpp"

int main(int argc, char** argv) {
  auto cli = examples::parse_cli(argc, argv, {{"--timeout"}, {}});
  if (cli.args.empty() || examples::has_flag(cli, "--help")) {
    (examples::has_flag(cli, "--help") ? std::cout : std::cerr)
        << "usage: gilmour-echo-client [--redis URL] [--timeout MS] TEXT...\n";
    return examples::has_flag(cli, "--help") ? 0 : 2;
  }
  std::chrono::milliseconds timeout{5000};
  if (auto t = examples::option(cli, "--timeout")) {
    timeout = std::chrono::milliseconds(examples::int_arg(cli, "--timeout", *t, 1, 86'400'000));
  }
  try {
    auto backend = examples::make_backend(cli);
    // Alone in-process there is nobody to answer: bring our own server.
    std::optional<gilmour::Gilmour> server;
    gilmour::Subscription echo;
    if (cli.redis.empty()) {
      server.emplace(gilmour::inproc::make_backend());
      echo = examples::serve_echo(*server);
      server->start();
    }
    gilmour::Gilmour client(backend);
    client.start();
    gilmour::RequestOptions opts;
    opts.timeout = timeout;
    opts.confirm_subscribers = true;  // fail fast when no echo server runs
    int failures = 0;
    for (auto& text : cli.args) {
      auto reply = client.request_sync("echo", text, opts);
      if (!reply.ok()) {
        ++failures;
        std::cerr << "error " << reply.code() << ": " << reply.error_text() << "\n";
        continue;
      }
      const auto& d = reply.data();
      std::cout << (d.is_string() ? d.get<std::string>() : d.dump()) << std::endl;
    }
    client.stop();
    if (server) server->stop();
    return failures ? 1 : 0;
  } catch (const std::exception& e) {
    std::cerr << "gilmour-echo-client: " << e.what() << "\n";
    return 1;
  }
}
