// gilmour-log-slots [--redis URL] [COUNT]
//
// Signals and slots from the Gilmour talk: purchases are signalled on
// item.buy.<id>; an email notifier and an SMS notifier hear every one, and
// two push-message servers share the group "push_msg" so that exactly one of
// them handles each purchase. Prints what each slot saw, then a summary.
// Exits 1 when a slot run is missing, 2 on a usage error (e.g. a COUNT that
// is not a whole number).
#include <atomic>
#include <condition_variable>
#include <iostream>
#include <mutex>

#include "common/cli.hpp"

int main(int argc, char** argv) {
  auto cli = examples::parse_cli(argc, argv);
  if (examples::has_flag(cli, "--help")) {
    std::cout << "usage: gilmour-log-slots [--redis URL] [COUNT]   (COUNT purchases, default 5)\n";
    return 0;
  }
  if (cli.args.size() > 1) examples::usage_error(cli, "unexpected argument " + cli.args[1]);
  // A usage error (exit 2) unless COUNT is a whole number.
  int count = cli.args.empty()
                  ? 5
                  : static_cast<int>(examples::int_arg(cli, "COUNT", cli.args[0], 0, 100000));
  try {
    std::mutex mu;
    std::condition_variable cv;
    int seen = 0, push_total = 0;
    auto log = [&](const std::string& who, const gilmour::Request& req) {
      std::lock_guard<std::mutex> lock(mu);
      std::cout << who << " <- " << req.channel() << " " << req.data().dump() << std::endl;
      if (who.rfind("push", 0) == 0) ++push_total;
      ++seen;
      cv.notify_all();
    };
    // Three services (engines) on one backend, as three processes would be.
    gilmour::Gilmour notifiers(examples::make_backend(cli));
    gilmour::Gilmour push1(examples::make_backend(cli));
    gilmour::Gilmour push2(examples::make_backend(cli));
    auto email = notifiers.slot("item.buy.*", [&](const gilmour::Request& r) { log("email", r); });
    auto sms = notifiers.slot("item.buy.*", [&](const gilmour::Request& r) { log("sms", r); });
    auto p1 = push1.slot("item.buy.*", [&](const gilmour::Request& r) { log("push-1", r); },
                         {"push_msg"});
    auto p2 = push2.slot("item.buy.*", [&](const gilmour::Request& r) { log("push-2", r); },
                         {"push_msg"});
    notifiers.start();
    push1.start();
    push2.start();

    gilmour::Gilmour web(examples::make_backend(cli));
    web.start();
    for (int i = 0; i < count; ++i) {
      web.signal("item.buy." + std::to_string(420 + i),
                 nlohmann::json{{"item", "book-" + std::to_string(i)}, {"price", 500 + i}});
    }
    std::unique_lock<std::mutex> lock(mu);
    // email + sms + one push per purchase.
    bool all = cv.wait_for(lock, std::chrono::seconds(10), [&] { return seen >= 3 * count; });
    std::cout << "purchases: " << count << ", slot runs: " << seen
              << ", push messages: " << push_total << " (one per purchase)" << std::endl;
    lock.unlock();
    web.stop();
    notifiers.stop();
    push1.stop();
    push2.stop();
    return all && push_total == count ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "gilmour-log-slots: " << e.what() << "\n";
    return 1;
  }
}
