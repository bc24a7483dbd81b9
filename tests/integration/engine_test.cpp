// The engine suite, run on every backend: signal/slot, wildcards, exclusion
// groups, request/reply, timeouts, nesting, stop(), bad arguments.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "support/backend_test.hpp"
#include "support/timing.hpp"

namespace gilmour::test {
namespace {

struct Order {
  std::string item;
  int qty = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Order, item, qty)

using EngineTest = BackendTest;

TEST_P(EngineTest, SignalReachesEverySlot) {
  auto topic = unique_topic("sig");
  Counter hits;
  std::vector<Subscription> subs;
  for (int i = 0; i < 3; ++i) {
    auto& g = started();
    for (int k = 0; k < 2; ++k) {
      subs.push_back(g.slot(topic, [&](const Request& r) {
        EXPECT_EQ(r.data<std::string>(), "hello");
        EXPECT_EQ(r.topic(), topic);
        hits.add();
      }));
    }
  }
  auto& sender = started();
  std::promise<SignalResult> res;
  sender.signal(topic, "hello", [&](const SignalResult& r) { res.set_value(r); });
  auto r = res.get_future().get();
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.receivers, 3);  // one subscription per engine
  ASSERT_TRUE(hits.wait_for(6));
  EXPECT_EQ(hits.value(), 6u);
}

TEST_P(EngineTest, WildcardSlotsMatchLikePsubscribe) {
  auto base = unique_topic("item");
  auto& g = started();
  std::mutex mu;
  std::multiset<std::string> got;
  Counter hits;
  auto sub = g.slot(base + ".buy.*", [&](const Request& r) {
    std::lock_guard<std::mutex> lock(mu);
    got.insert(r.channel());
    EXPECT_EQ(r.topic(), base + ".buy.*");
    hits.add();
  });
  auto& s = started();
  s.signal(base + ".buy.500", 1);
  s.signal(base + ".sell.1", 2);   // no match
  s.signal(base + ".buy.x.y", 3);  // '*' spans dots, as in Redis
  s.signal(base + ".buy", 4);      // no match
  ASSERT_TRUE(hits.wait_for(2));
  // A signal that must match acts as a barrier for the ones that must not.
  s.signal(base + ".buy.last", 5);
  ASSERT_TRUE(hits.wait_for(3));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(got, (std::multiset<std::string>{"gilmour.slot." + base + ".buy.500",
                                             "gilmour.slot." + base + ".buy.x.y",
                                             "gilmour.slot." + base + ".buy.last"}));
}

TEST_P(EngineTest, GroupExclusivityFiveEnginesThousandMessages) {
  constexpr int kEngines = 5, kMessages = 1000;
  auto slot_topic = unique_topic("grp-slot");
  auto reply_topic = unique_topic("grp-reply");
  std::mutex mu;
  std::map<int, int> slot_a, slot_b, ungrouped, replies;
  Counter slot_hits, reply_hits;
  std::vector<Subscription> subs;
  for (int i = 0; i < kEngines; ++i) {
    auto o = test_options();
    o.worker_threads = 2;
    auto& g = started(o);
    auto count = [&](std::map<int, int>& m) {
      return [&](const Request& r) {
        std::lock_guard<std::mutex> lock(mu);
        ++m[r.data<int>()];
        slot_hits.add();
      };
    };
    subs.push_back(g.slot(slot_topic, count(slot_a), {"group-a"}));
    subs.push_back(g.slot(slot_topic, count(slot_b), {"group-b"}));
    if (i < 2) subs.push_back(g.slot(slot_topic, count(ungrouped)));
    subs.push_back(g.reply_to(reply_topic, [&](const Request& r, Response& res) {
      {
        std::lock_guard<std::mutex> lock(mu);
        ++replies[r.data<int>()];
      }
      reply_hits.add();
      res.set_data(r.data<int>() * 2);
    }));
  }
  auto& client = started();
  std::vector<std::future<Message>> futures;
  for (int m = 0; m < kMessages; ++m) {
    client.signal(slot_topic, m);
    futures.push_back(client.request(reply_topic, m));
  }
  for (int m = 0; m < kMessages; ++m) {
    auto resp = futures[m].get();
    ASSERT_EQ(resp.code(), 200) << resp.error_text();
    EXPECT_EQ(resp.data<int>(), m * 2);
  }
  // group-a, group-b: once each; ungrouped: once per engine that has one (2).
  ASSERT_TRUE(slot_hits.wait_for(kMessages * 4));
  ASSERT_TRUE(reply_hits.wait_for(kMessages));
  // Every lock loser has reported back once the winners all ran.
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(slot_a.size(), static_cast<std::size_t>(kMessages));
  ASSERT_EQ(slot_b.size(), static_cast<std::size_t>(kMessages));
  ASSERT_EQ(replies.size(), static_cast<std::size_t>(kMessages));
  for (int m = 0; m < kMessages; ++m) {
    EXPECT_EQ(slot_a[m], 1) << m;
    EXPECT_EQ(slot_b[m], 1) << m;
    EXPECT_EQ(ungrouped[m], 2) << m;
    EXPECT_EQ(replies[m], 1) << m;
  }
  EXPECT_EQ(slot_hits.value(), static_cast<std::size_t>(kMessages * 4));
  // No extra invocation arrives late: 4 per message in all, and the losers'
  // count accounts for the rest (each engine's group handlers saw each message).
  std::uint64_t lost = 0;
  for (auto& e : engines_) lost += e->stats().lock_lost;
  EXPECT_LE(lost, static_cast<std::uint64_t>(kMessages * (kEngines - 1) * 3));
}

#ifdef __linux__
/// Write system calls this process has made so far (/proc/self/io).
std::uint64_t write_syscalls() {
  std::ifstream io("/proc/self/io");
  std::string key;
  std::uint64_t value = 0;
  while (io >> key >> value) {
    if (key == "syscw:") return value;
  }
  return 0;
}

// A slot invocation on the pool ends without a hop back to the I/O thread:
// its deadline timer is left to the loop's next iteration (a no-op if it
// fires first), so the worker never wakes the loop (no eventfd write).
TEST_P(EngineTest, SlotCompletionDoesNotWakeTheIoThread) {
  if (GetParam() != "inproc") GTEST_SKIP() << "the Redis backend's liveness traffic writes too";
  auto o = test_options();
  auto exec = std::make_shared<CountingExecutor>(3);
  o.executor = exec;
  auto& g = started(o);
  auto topic = unique_topic("quiet");
  Counter running;
  Latch gate;
  subs_.push_back(g.slot(
      topic,
      [&](const Request&) {
        running.add();
        gate.wait();
      },
      HandlerOptions{}.set_timeout(60s)));
  g.signal(topic, 1);
  g.signal(topic, 2);
  ASSERT_TRUE(running.wait_for(2));
  ASSERT_GT(write_syscalls(), 0u) << "/proc/self/io counts no writes here";
  auto tasks = exec->finished.value();
  auto before = write_syscalls();
  gate.open();
  ASSERT_TRUE(exec->finished.wait_for(tasks + 2));
  EXPECT_EQ(write_syscalls(), before) << "a finished slot woke the I/O thread";
  EXPECT_EQ(g.stats().signals_received, 2u);
}
#endif

// The engine's own pool gets the messages of one read (here: one drained
// batch of the in-process bus's deliveries) in one hand-off: by the time
// the first handler runs, every message of the batch has been dispatched.
TEST_P(EngineTest, OneReadBatchIsHandedToThePoolAtOnce) {
  if (GetParam() != "inproc") GTEST_SKIP() << "a Redis read is cut at hiredis's buffer size";
  auto& g = started();
  auto& client = started();
  auto topic = unique_topic("batch");
  constexpr std::size_t kN = 500;
  // An inline slot holds g's I/O thread while the batch piles up.
  Latch hold;
  Counter holding;
  subs_.push_back(g.slot(
      topic + ".hold",
      [&](const Request&) {
        holding.add();
        hold.wait();
      },
      HandlerOptions{}.set_inline_delivery()));
  std::atomic<std::int64_t> seen_first{-1};
  Counter handled;
  subs_.push_back(g.slot(topic + ".work", [&](const Request&) {
    std::int64_t none = -1;
    seen_first.compare_exchange_strong(none, static_cast<std::int64_t>(g.stats().signals_received));
    handled.add();
  }));
  client.signal(topic + ".hold", 0);
  ASSERT_TRUE(holding.wait_for(1));
  Counter delivered;
  for (std::size_t i = 0; i < kN; ++i) {
    client.signal(topic + ".work", i, [&](const SignalResult&) { delivered.add(); });
  }
  ASSERT_TRUE(delivered.wait_for(kN));  // all queued for g's I/O thread
  hold.open();
  ASSERT_TRUE(handled.wait_for(kN));
  // The hold signal, and the whole batch.
  EXPECT_EQ(seen_first.load(), static_cast<std::int64_t>(kN + 1));
}

TEST_P(EngineTest, OrderedSlotsRunOneAtATimeInOrder) {
  auto topic = unique_topic("ordered");
  auto& g = started();
  std::mutex mu;
  std::vector<int> seen;
  std::atomic<int> running{0}, max_running{0};
  Counter hits;
  HandlerOptions o;
  o.ordered = true;
  auto sub = g.slot(
      topic,
      [&](const Request& r) {
        int now = ++running;
        int prev = max_running.load();
        while (now > prev && !max_running.compare_exchange_weak(prev, now)) {
        }
        // Widen the window in which unordered invocations would overlap.
        for (int k = 0; k < 200; ++k) std::this_thread::yield();
        {
          std::lock_guard<std::mutex> lock(mu);
          seen.push_back(r.data<int>());
        }
        --running;
        hits.add();
      },
      o);
  auto& s = started();
  constexpr int kN = 300;
  for (int i = 0; i < kN; ++i) s.signal(topic, i);
  ASSERT_TRUE(hits.wait_for(kN));
  EXPECT_EQ(max_running.load(), 1);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(seen.size(), static_cast<std::size_t>(kN));
  for (int i = 0; i < kN; ++i) EXPECT_EQ(seen[i], i);
}

TEST_P(EngineTest, ReplyRoundTripWithTypedData) {
  auto topic = unique_topic("order");
  auto& server = started();
  auto sub = server.reply_to(topic, [](const Request& r, Response& res) {
    auto o = r.data<Order>();
    o.qty *= 10;
    res.set_data(o);
  });
  auto& client = started();
  auto m = client.request(topic, Order{"book", 2}).get();
  ASSERT_EQ(m.code(), 200) << m.error_text();
  auto o = m.data<Order>();
  EXPECT_EQ(o.item, "book");
  EXPECT_EQ(o.qty, 20);

  // Callback form runs on a worker with the same answer.
  std::promise<Message> p;
  client.request(topic, Order{"pen", 1}, [&](Message mm) { p.set_value(std::move(mm)); });
  EXPECT_EQ(p.get_future().get().data<Order>().qty, 10);
  // Blocking form.
  EXPECT_EQ(client.request_sync(topic, Order{"ink", 3}).data<Order>().qty, 30);
}

TEST_P(EngineTest, EchoAsInTheTalk) {
  auto& server = started();
  auto topic = unique_topic("echo");
  auto sub = server.reply_to(topic, [](const Request& r, Response& res) {
    res.set_data("Pong " + r.data<std::string>());
  });
  auto m = started().request_sync(topic, "hello?");
  EXPECT_EQ(m.code(), 200);
  EXPECT_EQ(m.data<std::string>(), "Pong hello?");
}

TEST_P(EngineTest, PerRequestResponseSchemeInteroperates) {
  auto topic = unique_topic("per-request");
  auto& server = started();
  auto sub = server.reply_to(
      topic, [](const Request& r, Response& res) { res.set_data(r.data<int>() + 1); });
  auto o = test_options();
  o.response_scheme = ResponseScheme::kPerRequest;
  auto& client = started(o);
  std::vector<std::future<Message>> fs;
  for (int i = 0; i < 50; ++i) fs.push_back(client.request(topic, i));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(fs[i].get().data<int>(), i + 1);
  // Timeouts and 404s work the same way.
  EXPECT_EQ(client.request_sync(topic + ".none", 1, {50ms}).code(), 499);
  EXPECT_EQ(client.request_sync(topic + ".none", 1, {scaled(5s), true}).code(), 404);
  EXPECT_EQ(client.stats().responses_received, 50u);
}

TEST_P(EngineTest, HandlerOptionsTimeoutDefaultsToTheEngines) {
  auto topic = unique_topic("engine-deadline");
  auto o = test_options();
  o.handler_timeout = 50ms;
  auto& server = started(o);
  Latch release;
  auto sub = server.reply_to(topic, [&](const Request&, Response&) { release.wait(); });
  EXPECT_EQ(started().request_sync(topic, 1).code(), 499);
  release.open();
  server.stop();  // the handler returns before `release` goes out of scope
}

TEST_P(EngineTest, StopHonoursItsDrainDeadline) {
  auto& g = started();
  auto topic = unique_topic("stuck");
  Latch entered;
  // Shared: the stuck handler outlives stop() and may outlive this test body.
  auto release = std::make_shared<Latch>();
  Counter after;
  auto sub = g.slot(topic, [&entered, release](const Request&) {
    entered.open();
    release->wait(30s);
  });
  auto later = g.slot(topic + ".later", [&](const Request&) { after.add(); });
  g.signal(topic, 1);
  ASSERT_TRUE(entered.wait());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(g.stop(100ms));  // a handler was still running
  EXPECT_LT(std::chrono::steady_clock::now() - t0, scaled(5s));
  EXPECT_FALSE(sub.active());
  EXPECT_FALSE(later.active());
  release->open();
}

TEST_P(EngineTest, ForeverTimeoutsDoNotOverflow) {
  auto& g = started();
  auto topic = unique_topic("forever");
  Latch release;
  auto sub = g.reply_to(topic,
                        [&](const Request&, Response& res) {
                          release.wait();
                          res.set_data("fine");
                        },
                        {"", std::chrono::milliseconds::max()});
  RequestOptions ro;
  ro.timeout = std::chrono::milliseconds::max();
  auto f = g.request(topic, 1, ro);
  EXPECT_EQ(f.wait_for(100ms), std::future_status::timeout);  // not a 499 at once
  release.open();
  EXPECT_EQ(f.get().code(), 200);
}

TEST_P(EngineTest, DeferredHandleStatesAndRespondAfterStop) {
  auto& g = started();
  auto topic = unique_topic("defer-state");
  std::promise<Response::Deferred> held;
  auto sub = g.reply_to(topic, [&](const Request&, Response& res) {
    auto d = res.defer();
    EXPECT_TRUE(d.valid());
    held.set_value(d);
  });
  EXPECT_FALSE(Response::Deferred().valid());
  auto f = g.request(topic, 1);
  auto d = held.get_future().get();
  g.stop(50ms);
  EXPECT_EQ(f.get().code(), 503);       // the waiting request completes at stop
  EXPECT_FALSE(d.respond("too late"));  // nothing can be sent any more
}

TEST_P(EngineTest, ThrowingCallbacksAreContained) {
  auto& g = started();
  auto topic = unique_topic("cb-throws");
  auto sub = g.reply_to(topic, [](const Request&, Response& res) { res.set_data(1); });
  Counter calls;
  g.signal(topic, 1, [&](const SignalResult&) {
    calls.add();
    throw std::runtime_error("user bug in a signal callback");
  });
  g.request(topic, 1, [&](Message) {
    calls.add();
    throw std::runtime_error("user bug in a request callback");
  });
  ASSERT_TRUE(calls.wait_for(2));
  EXPECT_EQ(g.request_sync(topic, 2).code(), 200);  // still serving
}

TEST_P(EngineTest, HandlerExceptionAnswers500WithText) {
  auto& server = started();
  auto topic = unique_topic("boom");
  auto sub = server.reply_to(
      topic, [](const Request&, Response&) { throw std::runtime_error("disk on fire"); });
  auto m = started().request_sync(topic, 1);
  EXPECT_EQ(m.code(), 500);
  EXPECT_EQ(m.data<std::string>(), "disk on fire");
  EXPECT_EQ(server.stats().handler_errors, 1u);
  // A typed-data conversion failure is a handler error too.
  auto sub2 = server.reply_to(
      topic + ".typed", [](const Request& r, Response& res) { res.set_data(r.data<Order>().qty); });
  auto m2 = started().request_sync(topic + ".typed", "not an order");
  EXPECT_EQ(m2.code(), 500);
}

TEST_P(EngineTest, ServerTimeoutAnswers499AndDropsTheLateReply) {
  auto& server = started();
  auto topic = unique_topic("slow");
  Latch release, returned;
  auto sub = server.reply_to(topic,
                             [&](const Request&, Response& res) {
                               release.wait();
                               res.set_data("too late");
                               returned.open();
                             },
                             {"", 100ms});
  auto& client = started();
  auto m = client.request_sync(topic, 1);
  EXPECT_EQ(m.code(), 499);
  EXPECT_EQ(m.data<std::string>(), "Execution timed out");
  release.open();
  ASSERT_TRUE(returned.wait());
  // The handler returned after its deadline; exactly one response went out.
  auto cap = world_->capture("gilmour.response.*", true);
  auto m2 = client.request_sync(topic + "-probe", 1, {50ms});  // nothing listens
  EXPECT_EQ(m2.code(), 499);
  EXPECT_EQ(server.stats().responses_sent, 1u);
  EXPECT_EQ(server.stats().server_timeouts, 1u);
  EXPECT_TRUE(cap->snapshot().empty());
  EXPECT_EQ(client.stats().stray_responses, 0u);
}

TEST_P(EngineTest, ClientTimeoutCompletesWith499Once) {
  auto& server = started();
  auto topic = unique_topic("silent");
  std::vector<Response::Deferred> held;
  std::mutex mu;
  auto sub = server.reply_to(topic, [&](const Request&, Response& res) {
    std::lock_guard<std::mutex> lock(mu);
    held.push_back(res.defer());  // never answers in time
  });
  auto& client = started();
  Counter calls;
  std::promise<Message> p;
  client.request(topic, 1,
                 [&](Message m) {
                   calls.add();
                   if (calls.value() == 1) p.set_value(std::move(m));
                 },
                 {150ms});
  auto m = p.get_future().get();
  EXPECT_EQ(m.code(), 499);
  EXPECT_TRUE(m.timed_out());
  // Answer now: the response arrives after the timeout and is ignored. (The
  // server's deadline is the requester's budget too, so its own 499 may be
  // the late answer instead: respond() may return false.)
  // On a loaded machine the request can reach the server after its budget:
  // it is then dropped unrun (expired_dropped) and there is no late answer.
  ASSERT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return !held.empty() || server.stats().expired_dropped > 0;
  }));
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_LE(held.size(), 1u);
    if (!held.empty()) held[0].respond("late");
  }
  // A later request is a barrier: the stray answer has been processed before it.
  auto sub2 = server.reply_to(topic + ".b", [](const Request&, Response& r) { r.set_data(1); });
  EXPECT_EQ(client.request_sync(topic + ".b", 0).code(), 200);
  EXPECT_EQ(calls.value(), 1u);
  // The 499 is the client's own, or the server's when its deadline (the same
  // budget) fired first: either way the request completed once.
  EXPECT_LE(client.stats().client_timeouts, 1u);
}

TEST_P(EngineTest, DeferredResponseFromAnotherThread) {
  auto& server = started();
  auto topic = unique_topic("deferred");
  std::vector<std::thread> threads;
  std::mutex mu;
  auto sub = server.reply_to(topic, [&](const Request& r, Response& res) {
    auto d = res.defer();
    int v = r.data<int>();
    std::lock_guard<std::mutex> lock(mu);
    threads.emplace_back([d, v]() mutable { d.respond(v + 1, 201); });
  });
  auto& client = started();
  auto m = client.request_sync(topic, 41);
  EXPECT_EQ(m.code(), 201);
  EXPECT_EQ(m.data<int>(), 42);
  // Abandoning a deferred response answers 500.
  auto sub2 =
      server.reply_to(topic + ".drop", [](const Request&, Response& res) { auto d = res.defer(); });
  auto m2 = client.request_sync(topic + ".drop", 1);
  EXPECT_EQ(m2.code(), 500);
  EXPECT_EQ(m2.data<std::string>(), "response abandoned");
  std::lock_guard<std::mutex> lock(mu);
  for (auto& t : threads) t.join();
}

TEST_P(EngineTest, RequestInsideAHandlerWithOneWorker) {
  auto o = test_options();
  o.worker_threads = 1;
  auto& g = started(o);
  auto inner = unique_topic("inner");
  auto outer = unique_topic("outer");
  auto s1 =
      g.reply_to(inner, [](const Request& r, Response& res) { res.set_data(r.data<int>() + 1); });
  auto s2 = g.reply_to(outer, [&](const Request& r, Response& res) {
    // Blocking request to a handler of the same engine, on its only worker.
    auto m = g.request_sync(inner, r.data<int>());
    res.set_data(m.data<int>() * 2).set_code(m.code());
  });
  std::vector<std::future<Message>> fs;
  for (int i = 0; i < 8; ++i) fs.push_back(g.request(outer, i));
  for (int i = 0; i < 8; ++i) {
    auto m = fs[i].get();
    ASSERT_EQ(m.code(), 200) << m.error_text();
    EXPECT_EQ(m.data<int>(), (i + 1) * 2);
  }
}

TEST_P(EngineTest, StopDrainsRunningHandlers) {
  auto& server = started();
  auto topic = unique_topic("drain");
  Latch entered, release;
  auto sub = server.reply_to(topic, [&](const Request&, Response& res) {
    entered.open();
    release.wait();
    res.set_data("finished");
  });
  auto& client = started();
  auto reply = client.request(topic, 1);
  ASSERT_TRUE(entered.wait());
  auto stopped = std::async(std::launch::async, [&] { return server.stop(scaled(5s)); });
  // stop() is waiting for the handler.
  EXPECT_EQ(stopped.wait_for(100ms), std::future_status::timeout);
  release.open();
  EXPECT_TRUE(stopped.get());
  auto m = reply.get();
  EXPECT_EQ(m.code(), 200);
  EXPECT_EQ(m.data<std::string>(), "finished");
  // Stopped: takes no new messages.
  auto m2 = client.request_sync(topic, 2, {scaled(10s), true});
  EXPECT_EQ(m2.code(), 404);
  EXPECT_FALSE(server.running());
  EXPECT_THROW(server.request_sync(topic, 1), InvalidState);
}

TEST_P(EngineTest, RequestsRacingStopAllComplete) {
  auto topic = unique_topic("race-stop");
  auto& server = started();
  auto sub =
      server.reply_to(topic, [](const Request& r, Response& res) { res.set_data(r.data()); });
  auto& client = started();
  Counter completed;
  std::atomic<std::size_t> issued{0};
  std::atomic<bool> go{true};
  std::thread spammer([&] {
    while (go.load()) {
      // At most 256 outstanding, as a well-behaved client: the race with
      // stop() is what is tested here, not an unbounded flood.
      if (issued.load() >= completed.value() + 256) {
        completed.wait_for(issued.load() - 255, 10ms);
        continue;
      }
      try {
        client.request(topic, 1, [&](Message m) {
          EXPECT_TRUE(m.code() == 200 || m.code() == 503 || m.code() == 499) << m.code();
          completed.add();
        });
        ++issued;
      } catch (const InvalidState&) {
        break;  // stopped: refused up front, no callback owed
      }
    }
  });
  EXPECT_TRUE(completed.wait_for(50));  // a flood of posts does not starve the loop's I/O
  client.stop();
  go = false;
  spammer.join();
  // Every accepted request completed exactly once.
  ASSERT_TRUE(completed.wait_for(issued.load()));
  EXPECT_EQ(completed.value(), issued.load());
}

TEST_P(EngineTest, ConfirmSubscribersAnswers404AtOnce) {
  auto& client = started();
  auto topic = unique_topic("nobody");
  RequestOptions o;
  o.confirm_subscribers = true;
  o.timeout = scaled(60s);  // must not wait for it
  auto start = std::chrono::steady_clock::now();
  auto m = client.request_sync(topic, 1, o);
  EXPECT_EQ(m.code(), 404);
  EXPECT_EQ(m.data<std::string>(), "No active listeners for: " + topic);
  EXPECT_LT(std::chrono::steady_clock::now() - start, scaled(30s));
  std::promise<SignalResult> p;
  client.signal(topic, 1, [&](const SignalResult& r) { p.set_value(r); }, {true});
  auto r = p.get_future().get();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.receivers, 0);
  EXPECT_EQ(client.stats().no_listeners, 2u);
}

TEST_P(EngineTest, CancelledSubscriptionStopsDelivery) {
  auto& g = started();
  auto topic = unique_topic("cancel");
  Counter hits;
  auto sub = g.slot(topic, [&](const Request&) { hits.add(); });
  auto& s = started();
  s.signal(topic, 1);
  ASSERT_TRUE(hits.wait_for(1));
  EXPECT_TRUE(sub.active());
  sub.cancel();
  sub.cancel();  // idempotent
  EXPECT_FALSE(sub.active());
  // Another slot on a fresh topic is a barrier.
  Counter barrier;
  auto other = g.slot(topic + ".b", [&](const Request&) { barrier.add(); });
  s.signal(topic, 2);
  s.signal(topic + ".b", 0);
  ASSERT_TRUE(barrier.wait_for(1));
  EXPECT_EQ(hits.value(), 1u);
  // Replies: after cancel, the topic can be registered again.
  auto r1 = g.reply_to(topic + ".r", [](const Request&, Response& res) { res.set_data(1); });
  EXPECT_THROW(g.reply_to(topic + ".r", [](const Request&, Response&) {}), InvalidArgument);
  r1.cancel();
  auto r2 = g.reply_to(topic + ".r", [](const Request&, Response& res) { res.set_data(2); });
  EXPECT_EQ(s.request_sync(topic + ".r", 0).data<int>(), 2);
}

TEST_P(EngineTest, MalformedPayloadsAreDroppedCountedAndServingGoesOn) {
  auto& g = started();
  auto topic = unique_topic("bad");
  Counter hits;
  auto sub = g.slot(topic, [&](const Request&) { hits.add(); });
  auto rsub = g.reply_to(topic, [](const Request& r, Response& res) { res.set_data(r.data()); });
  for (const char* bad :
       {"not json", "[1,2,3]", "{\"data\":1,\"code\":\"x\",\"sender\":\"s\"}",
        "{\"data\":1,\"code\":200,\"sender\":5}", "{\"data\":1}", "\xff\xfe", ""}) {
    world_->publish("gilmour.slot." + topic, bad);
    world_->publish("gilmour.request." + topic, bad);
  }
  // Ruby-style code 0 and missing code read as 200.
  world_->publish("gilmour.slot." + topic, R"({"data":"ok","code":0,"sender":"ruby1"})");
  world_->publish("gilmour.slot." + topic, R"({"data":"ok","sender":"ruby2"})");
  ASSERT_TRUE(hits.wait_for(2));
  auto m = started().request_sync(topic, "still serving");
  EXPECT_EQ(m.data<std::string>(), "still serving");
  EXPECT_EQ(g.stats().malformed_dropped, 14u);
  EXPECT_EQ(hits.value(), 2u);
}

// Regression: a request whose data was nested 100k deep (one PUBLISH of
// ~200 kB) crashed the server with a stack overflow when its handler failed,
// because the error record dumped the request recursively.
TEST_P(EngineTest, DeeplyNestedPayloadIsDroppedNotACrash) {
  auto& g = started();
  auto topic = unique_topic("deep");
  Counter slot_hits;
  auto sub = g.slot(topic, [&](const Request& r) {
    (void)r.data<std::string>();  // throws on anything but a string: an error record
    slot_hits.add();
  });
  auto rsub = g.reply_to(topic, [](const Request& r, Response& res) {
    res.set_data(r.data<std::string>());  // fails the same way on deep data
  });
  auto nested = [](std::size_t depth, char open, char close) {
    return std::string(depth, open) + std::string(depth, close);
  };
  auto envelope = [](const std::string& data) {
    return R"({"data":)" + data + R"(,"code":200,"sender":"attacker"})";
  };
  auto before = g.stats().malformed_dropped;
  // ~100k deep (the tester's crash), 1M deep (2 MB), and unterminated.
  for (auto deep :
       {nested(100000, '[', ']'), nested(1000000, '[', ']'), std::string(100000, '[')}) {
    world_->publish("gilmour.slot." + topic, envelope(deep));
    world_->publish("gilmour.request." + topic, envelope(deep));
  }
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += R"({"a":)";
  objects += "1" + std::string(100000, '}');
  world_->publish("gilmour.request." + topic, envelope(objects));
  // Brackets inside strings do not count; the deepest accepted data fails
  // its handler, and the error record is written without trouble.
  world_->publish("gilmour.slot." + topic, envelope(R"("[[[[[[[[[[")"));
  world_->publish("gilmour.slot." + topic, envelope(nested(256, '[', ']')));
  auto m = g.request_sync(topic, nlohmann::json::parse(nested(256, '[', ']')));
  EXPECT_EQ(m.code(), 500);
  ASSERT_TRUE(slot_hits.wait_for(1));
  EXPECT_EQ(g.request_sync(topic, "still serving").data<std::string>(), "still serving");
  EXPECT_EQ(g.stats().malformed_dropped - before, 7u);
  EXPECT_GE(g.stats().handler_errors, 2u);
}

// ------------------------------------------------------------ API v2

static_assert(!std::is_move_constructible_v<Gilmour> && !std::is_move_assignable_v<Gilmour>,
              "a Gilmour is referred to by compositions and bulletins: it must not move");

TEST_P(EngineTest, RequestWithBracedOptionsIsTheFutureForm) {
  auto& g = started();
  auto topic = unique_topic("braces");
  auto sub = g.reply_to(topic, [](const Request& r, Response& res) { res.set_data(r.data()); });
  std::future<Message> f = g.request(topic, "x", {});
  EXPECT_EQ(f.get().data<std::string>(), "x");
  auto m =
      g.request(topic, 2, RequestOptions{}.set_timeout(scaled(5s)).set_confirm_subscribers()).get();
  EXPECT_EQ(m.data<int>(), 2);
  // The callback form takes any callable.
  std::promise<Message> p;
  g.request(topic, 3, [&](Message r) { p.set_value(std::move(r)); });
  EXPECT_EQ(p.get_future().get().data<int>(), 3);
}

TEST_P(EngineTest, NoListenersAndUnavailableAreCodesNotStrings) {
  auto& g = started();
  auto topic = unique_topic("nobody");
  auto m = g.request(topic, 1, RequestOptions{}.set_confirm_subscribers()).get();
  EXPECT_TRUE(m.no_listeners());
  std::promise<SignalResult> p;
  g.signal(
      topic, 1, [&](const SignalResult& r) { p.set_value(r); },
      SignalOptions{}.set_confirm_subscribers());
  auto r = p.get_future().get();
  EXPECT_TRUE(r.no_listeners());
  EXPECT_FALSE(r.unavailable());
  EXPECT_EQ(r.status.code(), StatusCode::kNoListeners);
  EXPECT_STREQ(to_string(r.status.code()), "no listeners");
}

TEST_P(EngineTest, HandlersCannotBeAddedToAStoppedEngine) {
  auto& g = started();
  g.stop();
  EXPECT_THROW((void)g.slot("t", [](const Request&) {}), InvalidState);
  EXPECT_THROW((void)g.reply_to("t", [](const Request&, Response&) {}), InvalidState);
}

TEST_P(EngineTest, DrainWaitsForRunningInvocations) {
  auto& g = started();
  auto topic = unique_topic("drain");
  std::promise<void> entered, release;
  auto released = release.get_future().share();
  std::atomic<bool> finished{false};
  std::atomic<int> calls{0};
  auto sub = g.slot(topic, [&](const Request&) {
    if (calls.fetch_add(1) == 0) {
      entered.set_value();
      released.wait();
      finished = true;
    }
  });
  g.signal(topic, 1);
  entered.get_future().wait();
  // Running: a short drain gives up, and the handler takes nothing new.
  EXPECT_FALSE(sub.drain(50ms));
  EXPECT_FALSE(sub.active());
  EXPECT_FALSE(finished.load());
  release.set_value();
  EXPECT_TRUE(sub.drain(scaled(30s)));
  EXPECT_TRUE(finished.load());  // drain returned only once the handler had
  // Delivery stopped: a signal after the drain reaches nobody here.
  Counter other;
  auto probe = g.slot(topic, [&](const Request&) { other.add(); });
  g.signal(topic, 2);
  ASSERT_TRUE(other.wait_for(1));
  EXPECT_EQ(calls.load(), 1);
}

TEST_P(EngineTest, DrainFromItsOwnHandlerThrows) {
  auto& g = started();
  auto topic = unique_topic("selfdrain");
  Subscription sub;
  std::promise<std::string> what;
  sub = g.reply_to(topic, [&](const Request&, Response& res) {
    try {
      sub.drain(1s);
      what.set_value("no exception");
    } catch (const InvalidState& e) {
      what.set_value(e.what());
    }
    res.set_data("ok");
  });
  EXPECT_EQ(g.request_sync(topic, 1).code(), 200);
  EXPECT_NE(what.get_future().get().find("own handler"), std::string::npos);
}

// ------------------------------------------------------------ inline delivery

TEST_P(EngineTest, InlineReplyRunsOnTheIoThreadAndAnswers) {
  auto& server = started();
  auto& client = started();
  auto topic = unique_topic("inline");
  auto sub = server.reply_to(
      topic,
      [&](const Request& r, Response& res) {
        // request_sync refuses the I/O thread: this proves where it runs.
        bool on_io = false;
        try {
          (void)server.request_sync(topic + ".x", 1);
        } catch (const InvalidState&) {
          on_io = true;
        }
        res.set_data(nlohmann::json{{"echo", r.data()}, {"on_io", on_io}});
      },
      HandlerOptions{}.set_inline_delivery());
  constexpr int kN = 200;
  std::vector<std::future<Message>> fs;
  for (int i = 0; i < kN; ++i) fs.push_back(client.request(topic, i, {}));
  for (int i = 0; i < kN; ++i) {
    auto m = fs[i].get();
    ASSERT_EQ(m.code(), 200) << m.error_text();
    EXPECT_EQ(m.data().at("echo"), i);
    EXPECT_TRUE(m.data().at("on_io").get<bool>());
  }
  EXPECT_EQ(server.stats().responses_sent, static_cast<std::uint64_t>(kN));
}

TEST_P(EngineTest, InlineSlotsInAGroupRunOncePerSignalAcrossEngines) {
  auto topic = unique_topic("inline.group");
  Counter hits;
  std::mutex mu;
  std::map<int, int> seen;
  for (int i = 0; i < 3; ++i) {
    subs_.push_back(started().slot(
        topic,
        [&](const Request& r) {
          {
            std::lock_guard<std::mutex> lock(mu);
            ++seen[r.data<int>()];
          }
          hits.add();
        },
        HandlerOptions{}.set_group("g").set_inline_delivery()));
  }
  auto& sender = started();
  constexpr int kN = 100;
  for (int i = 0; i < kN; ++i) sender.signal(topic, i);
  ASSERT_TRUE(hits.wait_for(kN));
  // A barrier: one more signal on a fresh topic arrives after any duplicate.
  Counter barrier;
  subs_.push_back(started().slot(topic + ".end", [&](const Request&) { barrier.add(); }));
  sender.signal(topic + ".end", 0);
  ASSERT_TRUE(barrier.wait_for(1));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kN));
  for (auto& [k, n] : seen) EXPECT_EQ(n, 1) << "signal " << k;
}

TEST_P(EngineTest, InlineHandlerMayDeferAndItsDeadlineStillHolds) {
  auto& g = started();
  auto topic = unique_topic("inline.defer");
  std::vector<std::thread> answerers;
  auto later = g.reply_to(
      topic,
      [&](const Request& r, Response& res) {
        auto d = res.defer();
        answerers.emplace_back([d, v = r.data<int>()]() mutable { d.respond(v * 2); });
      },
      HandlerOptions{}.set_inline_delivery());
  std::vector<Response::Deferred> kept;
  auto never = g.reply_to(
      topic + ".never", [&](const Request&, Response& res) { kept.push_back(res.defer()); },
      HandlerOptions{}.set_inline_delivery().set_timeout(100ms));
  EXPECT_EQ(g.request_sync(topic, 21).data<int>(), 42);
  auto m = g.request_sync(topic + ".never", 1, RequestOptions{}.set_timeout(scaled(30s)));
  EXPECT_EQ(m.code(), 499);
  for (auto& t : answerers) t.join();
  EXPECT_EQ(g.stats().server_timeouts, 1u);
}

TEST_P(EngineTest, SlowInlineHandlersAreCounted) {
  auto& g = started(test_options().set_inline_warn_threshold(1ms));
  auto topic = unique_topic("inline.slow");
  auto sub = g.reply_to(
      topic,
      [](const Request&, Response& res) {
        // Busy for a while (not a sleep: the point is to hold the I/O thread).
        auto until = std::chrono::steady_clock::now() + 20ms;
        while (std::chrono::steady_clock::now() < until) {
        }
        res.set_data("done");
      },
      HandlerOptions{}.set_inline_delivery());
  EXPECT_EQ(g.request_sync(topic, 1).data<std::string>(), "done");
  EXPECT_EQ(g.stats().slow_inline, 1u);
}

TEST_P(EngineTest, InlineCallbackRunsOnTheIoThread) {
  auto& g = started();
  auto topic = unique_topic("inline.cb");
  auto sub = g.reply_to(topic, [](const Request& r, Response& res) { res.set_data(r.data()); });
  std::promise<std::pair<int, bool>> p;
  g.request(
      topic, 7,
      [&](Message m) {
        bool on_io = false;
        try {
          (void)g.request_sync(topic, 1);
        } catch (const InvalidState&) {
          on_io = true;
        }
        p.set_value({m.data<int>(), on_io});
      },
      RequestOptions{}.set_inline_callback());
  auto [v, on_io] = p.get_future().get();
  EXPECT_EQ(v, 7);
  EXPECT_TRUE(on_io);
}

TEST_P(EngineTest, BadArgumentsThrowDocumentedExceptions) {
  auto& g = engine();
  auto noop_reply = [](const Request&, Response&) {};
  EXPECT_THROW(g.reply_to("a.*", noop_reply), InvalidArgument);
  EXPECT_THROW(g.reply_to("", noop_reply), InvalidArgument);
  EXPECT_THROW(g.reply_to("a", nullptr), InvalidArgument);
  EXPECT_THROW(g.slot("", [](const Request&) {}), InvalidArgument);
  EXPECT_THROW(g.slot("a", nullptr), InvalidArgument);
  EXPECT_THROW(g.slot("a", [](const Request&) {}, {"", -1ms}), InvalidArgument);
  auto ok = g.reply_to("dup", noop_reply);
  EXPECT_THROW(g.reply_to("dup", noop_reply), InvalidArgument);
  auto other_group = g.reply_to("dup", noop_reply, {"other"});  // another group is fine
  EXPECT_THROW(g.request_sync("x", 1), InvalidState);           // not started
  EXPECT_THROW(g.signal("x", 1), InvalidState);
  EXPECT_THROW(parse_error_policy("loud"), InvalidArgument);
  EXPECT_THROW(Gilmour(nullptr), InvalidArgument);
  EngineOptions bad = test_options();
  bad.request_timeout = 0ms;
  EXPECT_THROW(Gilmour(world_->backend(), bad), InvalidArgument);
  g.start();
  EXPECT_THROW(g.start(), InvalidState);
  EXPECT_THROW(g.request_sync("a.*", 1), InvalidArgument);
  EXPECT_THROW(g.request_sync("", 1), InvalidArgument);
  EXPECT_THROW(g.request_sync("a", 1, {-5ms}), InvalidArgument);
  EXPECT_THROW(g.signal("a.*", 1), InvalidArgument);
  EXPECT_THROW(g.request("a", 1, ReplyCallback{}), InvalidArgument);
}

TEST_P(EngineTest, StopFromOwnHandlerThrowsAndDestructorStops) {
  auto topic = unique_topic("self-stop");
  std::promise<bool> threw;
  {
    Gilmour g(world_->backend(), test_options());
    auto sub = g.slot(topic, [&](const Request&) {
      try {
        g.stop();
        threw.set_value(false);
      } catch (const InvalidState&) {
        threw.set_value(true);
      }
    });
    g.start();
    g.signal(topic, 1);
    EXPECT_TRUE(threw.get_future().get());
  }  // destructor stops cleanly
}

// Topics with whitespace, control characters or NUL are refused by every
// call that takes a topic, before anything is sent; `*` only in slots.
TEST_P(EngineTest, InvalidTopicsAreRejectedBeforeAnythingIsSent) {
  using namespace std::string_literals;
  auto prefix = unique_topic("bad");
  auto slots = world_->capture("gilmour.slot." + prefix + "*", true);
  auto requests = world_->capture("gilmour.request." + prefix + "*", true);
  const std::vector<std::string> bad = {
      prefix + " x",
      prefix + "\tx",
      prefix + "\nx",
      prefix + "\rx",
      prefix + "\0x"s,
      prefix + "\x01",
      prefix + "\x1b",
      prefix + "\x7f",
      " " + prefix,
      prefix + " ",
      "",
  };
  auto& g = engine();
  auto noop_reply = [](const Request&, Response&) {};
  auto noop_slot = [](const Request&) {};
  auto is_invalid = [](auto&& call) {
    try {
      call();
    } catch (const InvalidArgument&) {
      return true;
    } catch (...) {
      return false;
    }
    return false;
  };
  for (const auto& t : bad) {
    auto shown = ::testing::PrintToString(t);
    EXPECT_TRUE(is_invalid([&] { auto s = g.slot(t, noop_slot); })) << shown;
    EXPECT_TRUE(is_invalid([&] { auto s = g.reply_to(t, noop_reply); })) << shown;
    EXPECT_TRUE(is_invalid([&] { (void)compose::request(g, t); })) << shown;
    HealthBulletinOptions ho;
    ho.essential_topics = {prefix, t};
    EXPECT_TRUE(is_invalid([&] { HealthBulletin b(g, ho); })) << shown;
  }
  // Before start(), the topic is checked before the engine's state.
  EXPECT_TRUE(is_invalid([&] { g.signal(prefix + " x", 1); }));
  EXPECT_TRUE(is_invalid([&] { g.request_sync(prefix + " x", 1); }));
  g.start();
  for (const auto& t : bad) {
    auto shown = ::testing::PrintToString(t);
    EXPECT_TRUE(is_invalid([&] { g.signal(t, 1); })) << shown;
    EXPECT_TRUE(is_invalid([&] { g.signal(t, 1, [](const SignalResult&) {}); })) << shown;
    EXPECT_TRUE(is_invalid([&] { g.request(t, 1, [](Message) {}); })) << shown;
    EXPECT_TRUE(is_invalid([&] { (void)g.request(t, 1); })) << shown;
    EXPECT_TRUE(is_invalid([&] { g.request_sync(t, 1); })) << shown;
    EXPECT_TRUE(is_invalid([&] { (void)g.listener_count(t); })) << shown;
    EXPECT_TRUE(is_invalid([&] { auto s = g.slot(t, noop_slot); })) << shown;
    EXPECT_TRUE(is_invalid([&] { auto s = g.reply_to(t, noop_reply); })) << shown;
  }
  // `*`: a slot pattern, but neither a reply, signal, request nor essential topic.
  auto pattern = g.slot(prefix + ".*", noop_slot);
  EXPECT_TRUE(is_invalid([&] { auto s = g.reply_to(prefix + ".*", noop_reply); }));
  EXPECT_TRUE(is_invalid([&] { g.signal(prefix + ".*", 1); }));
  EXPECT_TRUE(is_invalid([&] { (void)compose::request(g, prefix + ".*"); }));
  HealthBulletinOptions ho;
  ho.essential_topics = {prefix + ".*"};
  EXPECT_TRUE(is_invalid([&] { HealthBulletin b(g, ho); }));
  // The message says what is wrong with which topic.
  try {
    g.signal(prefix + "\nfake", 1);
    ADD_FAILURE() << "no exception";
  } catch (const InvalidArgument& e) {
    std::string what = e.what();
    EXPECT_EQ(what.rfind("gilmour: signal(): topic ", 0), 0u) << what;
    EXPECT_NE(what.find("contains whitespace"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
  // Nothing was published: only the sentinels below arrive.
  g.signal(prefix + ".ok", 1);
  auto echo = g.reply_to(prefix + ".ok", [](const Request&, Response& res) { res.set_data(1); });
  EXPECT_EQ(g.request_sync(prefix + ".ok", 1).code(), 200);
  auto got_slots = slots->wait_for(1);
  auto got_requests = requests->wait_for(1);
  ASSERT_EQ(got_slots.size(), 1u);
  EXPECT_EQ(got_slots[0].first, "gilmour.slot." + prefix + ".ok");
  ASSERT_EQ(got_requests.size(), 1u);
  EXPECT_EQ(got_requests[0].first, "gilmour.request." + prefix + ".ok");
}

INSTANTIATE_TEST_SUITE_P(Backends, EngineTest, ::testing::ValuesIn(backend_kinds()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace gilmour::test
