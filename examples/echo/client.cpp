// gilmour-echo-client [--redis URL] [--timeout MS] TEXT...
//
// Sends each TEXT as a request to "echo" and prints each reply's data on its
// own line; exits 1 if any reply has code >= 300. Without --redis it runs on
// the in-process backend and starts its own echo server in-process.
#include <iostream>
#include <optional>

#include "common/cli.hpp"
#include "echo/echo_service.hpp"

int main(int argc, char** argv) {
  auto cli = examples::parse_cli(argc, argv);
  if (cli.args.empty() || examples::has_flag(cli, "--help")) {
    std::cerr << "usage: gilmour-echo-client [--redis URL] TEXT...\n";
    return cli.args.empty() ? 2 : 0;
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
    opts.timeout = std::chrono::seconds(5);
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
