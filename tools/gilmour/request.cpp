// gilmour request / gilmour signal.
#include <future>
#include <iostream>

#include "commands.hpp"

namespace gilmour::cli {

int run_request(const Global& g, const RequestArgs& a) {
  auto data = a.has_data ? parse_data(a.data, a.as_string) : nlohmann::json("");
  auto engine = make_engine(g, engine_options(g));
  start_engine(*engine, g);
  RequestOptions ro;
  ro.timeout = std::chrono::milliseconds(a.timeout_ms);
  ro.confirm_subscribers = !a.no_confirm;
  Message m = engine->request_sync(a.topic, std::move(data), ro);
  engine->stop();
  if (a.full) {
    std::cout << m.to_json() << "\n";
  } else if (m.ok()) {
    std::cout << text_of(m.data()) << "\n";
  }
  std::cout << std::flush;
  if (m.ok()) return kExitOk;
  std::cerr << "gilmour: " << a.topic << ": " << m.code() << " " << m.error_text() << "\n";
  return kExitFailed;
}

int run_signal(const Global& g, const SignalArgs& a) {
  auto data = a.has_data ? parse_data(a.data, a.as_string) : nlohmann::json("");
  auto engine = make_engine(g, engine_options(g));
  start_engine(*engine, g);
  SignalOptions so;
  so.confirm_subscribers = a.confirm;
  std::promise<SignalResult> done;
  auto result = done.get_future();
  engine->signal(
      a.topic, std::move(data), [&done](const SignalResult& r) { done.set_value(r); }, so);
  SignalResult r = result.get();
  engine->stop();
  if (!r.ok()) {
    std::cerr << "gilmour: signal " << a.topic << ": " << r.status.message() << "\n";
    return r.receivers == 0 && a.confirm ? kExitFailed : kExitUnreachable;
  }
  if (g.verbose)
    std::cerr << "gilmour: signal " << a.topic << ": " << r.receivers << " receivers\n";
  return kExitOk;
}

}  // namespace gilmour::cli
