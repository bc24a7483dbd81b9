// gilmour_test_peer: one process of the cross-process exclusion test.
//
//   gilmour_test_peer REDIS_URL TOPIC GROUP
//
// Serves a reply handler for TOPIC in GROUP. Prints "ready" once the handler
// is subscribed, then "handled N" for every request it runs (N = the
// request's integer data), each line one write(2) so lines from handler
// threads never interleave. Answers with N. Stops cleanly on SIGTERM/SIGINT.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <gilmour/gilmour.hpp>
#include <iostream>
#include <string>

namespace {
void write_line(const std::string& s) {
  std::string line = s + "\n";
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(1, p, left);
    if (n <= 0) return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: gilmour_test_peer REDIS_URL TOPIC GROUP\n";
    return 2;
  }
  // Block the stop signals in every thread (the engine's threads inherit the
  // mask); the main thread takes them with sigwait.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  try {
    gilmour::EngineOptions o;
    o.worker_threads = 4;
    gilmour::Gilmour g(gilmour::redis::make_backend(std::string_view(argv[1])), o);
    g.start();
    auto sub = g.reply_to(argv[2],
                          [](const gilmour::Request& r, gilmour::Response& res) {
                            int n = r.data<int>();
                            write_line("handled " + std::to_string(n));
                            res.set_data(n);
                          },
                          {argv[3]});
    write_line("ready");
    int sig = 0;
    sigwait(&stop, &sig);
    sub.cancel();
    g.stop();
  } catch (const std::exception& e) {
    std::cerr << "gilmour_test_peer: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
