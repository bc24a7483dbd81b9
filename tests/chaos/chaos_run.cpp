// The chaos run: a private redis-server, two replier processes in one
// exclusion group, and this process sending steady request and signal
// traffic; each fault of faults.hpp in turn, then one line per fault:
//
//   sent / ok / failed by code / lost / duplicated / wrong / handled twice /
//   signals sent, published, expected deliveries, received / replier
//   reconnects / recovery time
//
// - lost: a request with no answer at all by its timeout + slack (the engine
//   must complete every request, with 499 at the latest);
// - duplicated: a request whose callback ran more than once; wrong: a 200
//   carrying another request's data; both must be 0;
// - ran503: requests answered 503 ("could not be sent") that a replier did
//   run: the publish reached Redis before the requester gave the connection
//   up (a command timeout), so 503 does not prove the request was not run;
// - handled twice: a request id run by the replier handlers more than once
//   (both repliers, or one twice), read from their event logs after they
//   stopped; 0 unless the exclusion lock was genuinely lost;
// - signals: expected deliveries are the receivers Redis reported to each
//   publish; received are the slot invocations the repliers logged (a
//   signal delivered twice to one replier counts as duplicated);
// - recovery: from the end of the fault to the first 200 answer of a
//   request sent after it.
//
// Exit status: 0 when nothing was lost, duplicated or wrong and every fault
// recovered; 1 otherwise; 2 when the run could not be set up.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "chaos/env.hpp"
#include "chaos/faults.hpp"
#include "chaos/traffic.hpp"
#include "support/timing.hpp"

namespace gilmour::chaos {

namespace {

using namespace std::chrono_literals;
using test::scaled;

struct Phase {
  std::string name;
  std::string note;
  std::int64_t req_from = 0, req_to = 0, sig_from = 0, sig_to = 0;
  std::size_t lost = 0;  // no answer by the deadline
  std::optional<std::chrono::milliseconds> recovery;
};

/// What a replier's event log says, by request and signal id.
struct EventLog {
  std::map<std::int64_t, int> handled;
  std::map<std::int64_t, int> signals;
  std::map<std::int64_t, int> burst;
  std::vector<std::int64_t> reconnects;  // the last request id handled before each
};

EventLog read_events(const std::string& path) {
  EventLog log;
  std::ifstream in(path);
  std::string kind, value;
  std::int64_t last = -1;
  while (in >> kind >> value) {
    if (kind == "r") {
      last = std::stoll(value);
      ++log.handled[last];
    } else if (kind == "s") {
      ++log.signals[std::stoll(value)];
    } else if (kind == "b") {
      ++log.burst[std::stoll(value)];
    } else if (kind == "c" && value == "reconnected") {
      log.reconnects.push_back(last);
    }
  }
  return log;
}

template <typename Map>
int count_in(const Map& m, std::int64_t from, std::int64_t to, int at_least = 1) {
  int n = 0;
  for (auto it = m.lower_bound(from); it != m.end() && it->first < to; ++it) {
    n += it->second >= at_least ? 1 : 0;
  }
  return n;
}

/// One line of the report; true when the phase passed.
bool report(const Phase& p, const Traffic& traffic, const std::vector<EventLog>& logs) {
  auto reqs = traffic.requests(p.req_from, p.req_to);
  std::size_t ok = 0, dup = 0, wrong = 0, threw = 0;
  std::map<int, int> failed;
  for (const auto& r : reqs) {
    threw += r.threw;
    dup += r.answers > 1;
    wrong += r.wrong;
    if (r.answers == 0) continue;
    if (r.code == code::kOk && !r.wrong) {
      ++ok;
    } else if (!r.wrong) {
      ++failed[r.code];
    }
  }
  std::string codes;
  for (auto& [c, n] : failed)
    codes += (codes.empty() ? "" : " ") + std::to_string(c) + ":" + std::to_string(n);
  if (threw) codes += (codes.empty() ? "" : " ") + std::string("threw:") + std::to_string(threw);
  if (codes.empty()) codes = "-";
  // Handled twice: by both repliers, or twice by one.
  std::map<std::int64_t, int> handled;
  std::map<std::int64_t, int> signal_dup;
  std::int64_t received = 0;
  int reconnects = 0;
  for (const auto& log : logs) {
    for (auto it = log.handled.lower_bound(p.req_from);
         it != log.handled.end() && it->first < p.req_to; ++it) {
      handled[it->first] += it->second;
    }
    for (auto it = log.signals.lower_bound(p.sig_from);
         it != log.signals.end() && it->first < p.sig_to; ++it) {
      received += it->second;
      signal_dup[it->first] += it->second > 1;
    }
    for (auto last : log.reconnects) reconnects += last >= p.req_from && last < p.req_to;
  }
  int twice = count_in(handled, p.req_from, p.req_to, 2);
  // Told 503 ("could not be sent") although a replier ran it: the publish
  // reached Redis before the connection was given up.
  int ran_503 = 0;
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    ran_503 += reqs[i].answers > 0 && reqs[i].code == code::kUnavailable &&
               handled.count(p.req_from + static_cast<std::int64_t>(i)) != 0;
  }
  int sig_dup = count_in(signal_dup, p.sig_from, p.sig_to);
  auto sigs = traffic.signals(p.sig_from, p.sig_to);
  std::int64_t published = 0, expected = 0;
  for (const auto& s : sigs) {
    published += s.published;
    expected += s.receivers;
  }
  std::string recovery = p.recovery ? std::to_string(p.recovery->count()) + " ms" : "NONE";
  std::string signals = std::to_string(sigs.size()) + "/" + std::to_string(published) + "/" +
                        std::to_string(expected) + "/" + std::to_string(received);
  std::printf("%-16s %6zu %6zu  %-20s %4zu %4zu %5zu %5d %6d  %-25s %4d %4d  %9s\n", p.name.c_str(),
              reqs.size(), ok, codes.c_str(), p.lost, dup, wrong, twice, ran_503, signals.c_str(),
              sig_dup, reconnects, recovery.c_str());
  return p.lost == 0 && dup == 0 && wrong == 0 && sig_dup == 0 && p.recovery.has_value();
}

}  // namespace

int chaos_main(const Args& args) {
  const int rate = static_cast<int>(args.number("rate", 100));
  const int signal_every = static_cast<int>(args.number("signal-every", 5));
  const auto timeout = scaled(std::chrono::milliseconds(args.number("timeout-ms", 3000)));
  const auto slack = scaled(5s);
  const auto steady = std::chrono::milliseconds(args.number("steady-ms", 2000));
  std::string only = args.get("faults");

  Env env("gilmour-chaos");
  if (!env.start()) return 2;
  auto a = env.spawn_replier("replier-a", true, {"--slow-slot"});
  auto b = env.spawn_replier("replier-b", true);
  auto g = env.requester(2);
  if (!g) return 2;
  const Topics& topics = env.topics();
  if (!wait_listeners(*g, "gilmour.request." + topics.request, at_least(2), 30s) ||
      !wait_listeners(*g, "gilmour.slot." + topics.signal, at_least(2), 30s) ||
      !wait_listeners(*g, "gilmour.slot." + topics.burst, at_least(1), 30s)) {
    std::cerr << "gilmour-chaos: the repliers did not subscribe (logs in " << env.dir() << ")\n";
    env.keep();
    return 2;
  }
  std::cout << "gilmour-chaos: " << describe_machine(env.redis().port()) << "\n"
            << "traffic: " << rate << " requests/s (timeout " << timeout.count() << " ms), a signal"
            << " every " << signal_every
            << " requests; 2 repliers (separate processes, one group)\n"
            << std::flush;

  Traffic traffic(*g, topics, rate, signal_every, timeout);
  FaultTarget target{env.redis(), *g, topics};
  std::vector<Phase> phases;
  bool setup_ok = true;
  for (auto& fault : all_faults()) {
    if (!only.empty() && ("," + only + ",").find("," + fault.name + ",") == std::string::npos)
      continue;
    Phase p;
    p.name = fault.name;
    p.req_from = traffic.next_request_id();
    p.sig_from = traffic.next_signal_id();
    traffic.start();
    test::let_time_pass(steady);  // traffic before the fault
    try {
      p.note = fault.inject(target);
    } catch (const std::exception& e) {
      p.note = std::string("NOT INJECTED: ") + e.what();
      setup_ok = false;
    }
    auto fault_end = Clock::now();
    if (auto first = traffic.wait_first_ok_after(fault_end, scaled(60s))) {
      p.recovery = std::chrono::duration_cast<std::chrono::milliseconds>(*first - fault_end);
    }
    test::let_time_pass(steady);  // traffic after the recovery
    traffic.stop();
    p.lost = traffic.wait_all_done(traffic.last_sent() + timeout + slack);
    p.req_to = traffic.next_request_id();
    p.sig_to = traffic.next_signal_id();
    std::cout << "  " << p.name << ": " << p.note << "\n" << std::flush;
    phases.push_back(p);
    if (!setup_ok) break;
  }
  auto stats = g->stats();
  g->stop();
  int a_status = a->stop(scaled(30s));
  int b_status = b->stop(scaled(30s));
  std::vector<EventLog> logs = {read_events(env.dir() + "/replier-a.events"),
                                read_events(env.dir() + "/replier-b.events")};

  std::printf("\n%-16s %6s %6s  %-20s %4s %4s %5s %5s %6s  %-25s %4s %4s  %9s\n", "fault", "sent",
              "ok", "failed (code:n)", "lost", "dup", "wrong", "twice", "ran503",
              "signals sent/pub/exp/recv", "sdup", "reco", "recovery");
  bool ok = setup_ok;
  for (const auto& p : phases) ok = report(p, traffic, logs) && ok;
  int burst_received = count_in(logs[0].burst, 1, kBurstSignals + 1);
  std::printf(
      "\nburst signals received by the slow slot: %d/%d; requester: %llu reconnects, %llu stray "
      "responses; repliers exited %d, %d\n",
      burst_received, kBurstSignals, static_cast<unsigned long long>(stats.reconnects),
      static_cast<unsigned long long>(stats.stray_responses), a_status, b_status);
  if (args.flag("keep")) {
    env.keep();
    std::printf("logs in %s\n", env.dir().c_str());
  }
  if (!ok) {
    env.keep();
    std::printf("FAILED: lost, duplicated or wrong answers, or no recovery; logs in %s\n",
                env.dir().c_str());
    return 1;
  }
  std::printf("PASSED: nothing lost or duplicated\n");
  return 0;
}

}  // namespace gilmour::chaos
