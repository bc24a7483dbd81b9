// The composition suite, run on every backend: each kind's semantics and
// failure paths, with-merging, nesting (every kind inside every other, three
// levels, checked against a reference evaluator), concurrency, the overall
// timeout, lambdas, unserved topics and bad arguments.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#ifdef __linux__
#include <pthread.h>
#endif

#include "support/backend_test.hpp"

namespace gilmour::test {
namespace {

namespace c = gilmour::compose;
using json = nlohmann::json;

/// Waits for `f` up to scaled(timeout); a test failure (and 0 code) when it does not come.
Message get(std::future<Message>& f, std::chrono::milliseconds timeout = 10s) {
  if (f.wait_for(scaled(timeout)) != std::future_status::ready) {
    ADD_FAILURE() << "composition did not complete in time";
    return Message("no result", 0);
  }
  return f.get();
}

Message run(const Composition& comp, json input, ExecuteOptions o = {}) {
  auto f = comp.execute(std::move(input), o);
  return get(f);
}

class CompositionTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    prefix_ = unique_topic("svc");
  }

  std::string topic(const std::string& name) const { return prefix_ + "." + name; }

  /// Serves `name` on the server engine; counts invocations per name.
  void serve(const std::string& name, std::function<void(const Request&, Response&)> fn) {
    if (!server_) server_ = &started();
    subs_.push_back(
        server_->reply_to(topic(name), [this, name, fn](const Request& r, Response& res) {
          {
            std::lock_guard<std::mutex> lock(mu_);
            ++calls_[name];
          }
          fn(r, res);
        }));
  }
  int calls(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_[name];
  }

  /// Arithmetic services: inc (x+1), dbl (x*2), fail (422), echo.
  void serve_arith() {
    serve("inc", [](const Request& r, Response& res) { res.set_data(r.data<int>() + 1); });
    serve("dbl", [](const Request& r, Response& res) { res.set_data(r.data<int>() * 2); });
    serve("fail", [](const Request&, Response& res) { res.set_data("no").set_code(422); });
    serve("echo", [](const Request& r, Response& res) { res.set_data(r.data()); });
  }
  Composition req(Gilmour& g, const std::string& name, json with = nullptr, RequestOptions o = {}) {
    return c::request(g, topic(name), std::move(with), o);
  }

  Gilmour* server_ = nullptr;
  std::string prefix_;
  std::mutex mu_;
  std::map<std::string, int> calls_;
};

Composition counted(std::atomic<int>& n) {
  return c::lambda([&n](Message m) {
    ++n;
    return m;
  });
}

TEST_P(CompositionTest, PipeChainsOutputsAndStopsAtTheFirstFailure) {
  serve_arith();
  auto& g = started();
  auto p = c::pipe({req(g, "inc"), req(g, "dbl"), req(g, "inc")});
  auto m = run(p, 3);
  ASSERT_EQ(m.code(), 200) << m.error_text();
  EXPECT_EQ(m.data(), 9);  // (3+1)*2+1
  EXPECT_TRUE(m.sender().empty());

  std::atomic<int> after{0};
  auto broken = c::pipe({req(g, "inc"), req(g, "fail"), counted(after), req(g, "dbl")});
  m = run(broken, 1);
  EXPECT_EQ(m.code(), 422);
  EXPECT_EQ(m.data(), "no");
  EXPECT_EQ(after.load(), 0);
  EXPECT_EQ(calls("dbl"), 1);  // only the first pipe's
  EXPECT_EQ(calls("fail"), 1);

  // A lambda's output feeds the next request; sugar builds one flat pipe.
  auto sugar =
      req(g, "inc") | c::lambda([](Message m) { return json(m.data<int>() * 10); }) | req(g, "inc");
  EXPECT_EQ(sugar.kind(), Composition::Kind::kPipe);
  EXPECT_EQ(sugar.steps().size(), 3u);
  EXPECT_EQ(run(sugar, 1).data(), 21);
}

TEST_P(CompositionTest, AndAndRunsWhileOkEachOnTheOriginalInput) {
  serve_arith();
  auto& g = started();
  auto m = run(c::andand({req(g, "inc"), req(g, "dbl")}), 5);
  ASSERT_EQ(m.code(), 200) << m.error_text();
  EXPECT_EQ(m.data(), 10);  // dbl(5): the original input, not inc's output

  std::atomic<int> after{0};
  m = run(c::andand({req(g, "inc"), req(g, "fail"), counted(after), req(g, "dbl")}), 5);
  EXPECT_EQ(m.code(), 422);
  EXPECT_EQ(after.load(), 0);
  EXPECT_EQ(calls("dbl"), 1);
}

TEST_P(CompositionTest, OrOrFallsThroughToTheFirstSuccess) {
  serve_arith();
  auto& g = started();
  std::atomic<int> after{0};
  auto fail500 = c::lambda([](Message) -> Message { throw std::runtime_error("boom"); });
  auto m = run(c::oror({req(g, "fail"), fail500, req(g, "inc"), counted(after)}), 5);
  ASSERT_EQ(m.code(), 200) << m.error_text();
  EXPECT_EQ(m.data(), 6);
  EXPECT_EQ(after.load(), 0);
  EXPECT_EQ(calls("fail"), 1);

  // All fail: the last failure.
  m = run(c::oror({fail500, req(g, "fail")}), 5);
  EXPECT_EQ(m.code(), 422);
  m = run(c::oror({req(g, "fail"), fail500}), 5);
  EXPECT_EQ(m.code(), 500);
  EXPECT_EQ(m.data(), "boom");
}

TEST_P(CompositionTest, BatchRunsEveryStepAndRecords) {
  serve_arith();
  auto& g = started();
  auto steps = std::vector<Composition>{req(g, "inc"), req(g, "fail"), req(g, "dbl")};
  auto m = run(c::batch(steps), 5);
  ASSERT_EQ(m.code(), 200) << m.error_text();
  EXPECT_EQ(m.data(), 10);  // the last step's outcome
  EXPECT_EQ(calls("inc"), 1);
  EXPECT_EQ(calls("fail"), 1);
  EXPECT_EQ(calls("dbl"), 1);

  m = run(c::batch(steps, true), 5);
  EXPECT_EQ(m.code(), 422);  // the highest
  EXPECT_EQ(m.data(), json::parse(R"([{"data":6,"code":200},{"data":"no","code":422},
                                      {"data":10,"code":200}])"));
  // Without recording, a failing last step is the result.
  m = run(c::batch({req(g, "inc"), req(g, "fail")}), 5);
  EXPECT_EQ(m.code(), 422);
}

TEST_P(CompositionTest, ParallelKeepsStepOrderAndTheHighestCode) {
  Latch fast_done;
  std::mutex order_mu;
  std::vector<std::string> finished;
  serve("slow", [&](const Request& r, Response& res) {
    EXPECT_TRUE(fast_done.wait(10s));  // released by the later step
    std::lock_guard<std::mutex> lock(order_mu);
    finished.push_back("slow");
    res.set_data("slow " + r.data<std::string>());
  });
  serve("fast", [&](const Request& r, Response& res) {
    {
      std::lock_guard<std::mutex> lock(order_mu);
      finished.push_back("fast");
    }
    res.set_data("fast " + r.data<std::string>());
    fast_done.open();
  });
  serve("fail", [](const Request&, Response& res) { res.set_data("no").set_code(503); });
  auto& g = started();
  auto m = run(c::parallel({req(g, "slow"), req(g, "fast"),
                            c::lambda([](Message m) { return m.set_data("local"); })}),
               "x");
  ASSERT_EQ(m.code(), 200) << m.error_text();
  EXPECT_EQ(m.data(), json::parse(R"(["slow x","fast x","local"])"));
  {
    std::lock_guard<std::mutex> lock(order_mu);
    EXPECT_EQ(finished, (std::vector<std::string>{"fast", "slow"}));
  }
  m = run(c::parallel({req(g, "fast"), req(g, "fail"),
                       c::lambda([](Message m) { return m.set_code(404); })}),
          "y");
  EXPECT_EQ(m.code(), 503);
  EXPECT_EQ(m.data(), json::parse(R"(["fast y","no","y"])"));
}

TEST_P(CompositionTest, WithMergesIntoObjectInputsOnly) {
  serve_arith();
  auto& g = started();
  auto step = req(g, "echo", {{"b", 2}, {"c", {{"deep", true}}}});
  EXPECT_EQ(run(step, {{"a", 1}, {"b", 1}, {"c", {{"x", 1}}}}).data(),
            json::parse(R"({"a":1,"b":2,"c":{"deep":true}})"));  // step's keys win, shallow
  EXPECT_EQ(run(step, "text").data(), "text");
  EXPECT_EQ(run(step, json::array({1, 2})).data(), json::array({1, 2}));
  EXPECT_EQ(run(step, json::object()).data(), json::parse(R"({"b":2,"c":{"deep":true}})"));
  // In a pipe, the with-object applies to the previous step's output.
  auto p = c::pipe({c::lambda([](Message) {
                      return json{{"from", "lambda"}};
                    }),
                    req(g, "echo", {{"to", "echo"}})});
  EXPECT_EQ(run(p, nullptr).data(), json::parse(R"({"from":"lambda","to":"echo"})"));
  EXPECT_EQ(step.describe(), topic("echo") + R"(+{"b":2,"c":{"deep":true}})");
}

TEST_P(CompositionTest, EmptyCompositionsAreDefined) {
  json in = {{"k", 1}};
  EXPECT_EQ(run(Composition(), in), Message(in));
  EXPECT_EQ(run(c::pipe({}), in), Message(in));
  EXPECT_EQ(run(c::andand({}), in), Message(in));
  EXPECT_EQ(run(c::oror({}), in), Message(in));
  EXPECT_EQ(run(c::batch({}), in), Message(in));
  EXPECT_EQ(run(c::batch({}, true), in), Message(json::array()));
  EXPECT_EQ(run(c::parallel({}), in), Message(json::array()));
  EXPECT_EQ(run(c::pipe({c::parallel({}), c::pipe({})}), in), Message(json::array()));
  EXPECT_EQ((Composition() | Composition()).steps().size(), 0u);
}

// ------------------------------------------------------------------ nesting

/// A test tree: leaves are lambdas or requests that wrap or fail; the
/// reference evaluator computes the documented result synchronously.
struct Spec {
  enum Type { kWrap, kFail, kThrow, kReqWrap, kReqFail, kGroup } type = kWrap;
  std::string tag;
  int code = 200;
  json with;  // kReqWrap
  Composition::Kind kind = Composition::Kind::kPipe;
  bool record = false;
  std::vector<Spec> steps;
};

Message reference(const Spec& s, const json& x) {
  using K = Composition::Kind;
  switch (s.type) {
    case Spec::kWrap:
      return Message(json{{"t", s.tag}, {"in", x}});
    case Spec::kFail:
      return Message("fail " + s.tag, s.code);
    case Spec::kThrow:
      return Message("throw " + s.tag, 500);
    case Spec::kReqWrap: {
      json in = x;
      if (in.is_object() && s.with.is_object()) in.update(s.with);
      return Message(json{{"t", "svc"}, {"in", in}});
    }
    case Spec::kReqFail:
      return Message("nope", 422);
    case Spec::kGroup:
      break;
  }
  Message last(x);
  switch (s.kind) {
    case K::kPipe:
      for (auto& st : s.steps) {
        last = reference(st, last.data());
        if (last.code() != 200) break;
      }
      return last;
    case K::kAndAnd:
      for (auto& st : s.steps) {
        last = reference(st, x);
        if (last.code() != 200) break;
      }
      return last;
    case K::kOrOr:
      for (auto& st : s.steps) {
        last = reference(st, x);
        if (last.code() == 200) break;
      }
      return last;
    case K::kBatch: {
      json rec = json::array();
      int max = 200;
      for (auto& st : s.steps) {
        last = reference(st, x);
        rec.push_back({{"data", last.data()}, {"code", last.code()}});
        max = std::max(max, last.code());
      }
      return s.record ? Message(rec, max) : last;
    }
    case K::kParallel: {
      json out = json::array();
      int max = 200;
      for (auto& st : s.steps) {
        auto m = reference(st, x);
        out.push_back(m.data());
        max = std::max(max, m.code());
      }
      return Message(out, max);
    }
    default:
      return Message("bad spec", 0);
  }
}

Composition build(const Spec& s, const std::function<Composition(const std::string&, json)>& req) {
  switch (s.type) {
    case Spec::kWrap:
      return c::lambda([tag = s.tag](Message m) { return json{{"t", tag}, {"in", m.data()}}; });
    case Spec::kFail:
      return c::lambda([tag = s.tag, code = s.code](Message m) {
        return m.set_data("fail " + tag).set_code(code);
      });
    case Spec::kThrow:
      return c::lambda(
          [tag = s.tag](Message) -> Message { throw std::runtime_error("throw " + tag); });
    case Spec::kReqWrap:
      return req("wrap", s.with);
    case Spec::kReqFail:
      return req("fail", nullptr);
    case Spec::kGroup:
      break;
  }
  std::vector<Composition> steps;
  for (auto& st : s.steps) steps.push_back(build(st, req));
  switch (s.kind) {
    case Composition::Kind::kAndAnd:
      return c::andand(std::move(steps));
    case Composition::Kind::kOrOr:
      return c::oror(std::move(steps));
    case Composition::Kind::kBatch:
      return c::batch(std::move(steps), s.record);
    case Composition::Kind::kParallel:
      return c::parallel(std::move(steps));
    default:
      return c::pipe(std::move(steps));
  }
}

Spec group(Composition::Kind k, std::vector<Spec> steps, bool record = false) {
  Spec s;
  s.type = Spec::kGroup;
  s.kind = k;
  s.record = record;
  s.steps = std::move(steps);
  return s;
}
Spec leaf(Spec::Type t, std::string tag, int code = 200, json with = nullptr) {
  Spec s;
  s.type = t;
  s.tag = std::move(tag);
  s.code = code;
  s.with = std::move(with);
  return s;
}

const std::vector<Composition::Kind> kKinds = {Composition::Kind::kPipe, Composition::Kind::kAndAnd,
                                               Composition::Kind::kOrOr, Composition::Kind::kBatch,
                                               Composition::Kind::kParallel};

TEST_P(CompositionTest, EveryKindNestsInEveryOtherThreeLevelsDeep) {
  serve("wrap", [](const Request& r, Response& res) {
    res.set_data({{"t", "svc"}, {"in", r.data()}});
  });
  serve("fail", [](const Request&, Response& res) { res.set_data("nope").set_code(422); });
  auto& g = started();
  auto req = [&](const std::string& name, json with) { return this->req(g, name, with); };

  std::vector<Spec> specs;
  // Every outer kind around every middle kind around every inner kind, with
  // successes and failures at each level so that each kind's branching shows.
  for (auto outer : kKinds) {
    for (auto middle : kKinds) {
      for (auto inner : kKinds) {
        for (int variant = 0; variant < 2; ++variant) {
          auto in = group(
              inner,
              {leaf(Spec::kWrap, "a"),
               variant ? leaf(Spec::kFail, "b", 404) : leaf(Spec::kReqWrap, "r", 200, {{"w", 1}}),
               leaf(Spec::kReqWrap, "c")},
              variant == 1);
          auto mid = group(middle,
                           {variant ? leaf(Spec::kReqFail, "f") : leaf(Spec::kWrap, "d"), in,
                            leaf(Spec::kThrow, "e")},
                           variant == 0);
          specs.push_back(group(outer, {mid, leaf(Spec::kReqWrap, "g", 200, {{"x", 2}}), mid}));
        }
      }
    }
  }
  // And random trees, with every leaf type, up to three levels.
  std::mt19937 rng(12345);
  std::function<Spec(int)> random_spec = [&](int depth) -> Spec {
    int pick = static_cast<int>(rng() % (depth > 0 ? 8 : 5));
    switch (pick) {
      case 0:
        return leaf(Spec::kWrap, std::to_string(rng() % 100));
      case 1:
        return leaf(Spec::kFail, std::to_string(rng() % 100), 400 + static_cast<int>(rng() % 3));
      case 2:
        return leaf(Spec::kThrow, std::to_string(rng() % 100));
      case 3:
        return leaf(Spec::kReqWrap, "", 200, rng() % 2 ? json{{"k", rng() % 10}} : json());
      case 4:
        return leaf(Spec::kReqFail, "");
      default: {
        std::vector<Spec> steps(rng() % 4);
        for (auto& s : steps) s = random_spec(depth - 1);
        return group(kKinds[rng() % kKinds.size()], std::move(steps), rng() % 2);
      }
    }
  };
  for (int i = 0; i < 150; ++i)
    specs.push_back(
        group(kKinds[i % kKinds.size()], {random_spec(2), random_spec(2), random_spec(2)}));

  std::vector<std::future<Message>> futures;
  std::vector<Message> expected;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    json input = i % 3 == 0 ? json{{"n", i}} : json(i);
    futures.push_back(build(specs[i], req).execute(input));
    expected.push_back(reference(specs[i], input));
  }
  for (std::size_t i = 0; i < specs.size(); ++i) {
    auto m = get(futures[i]);
    EXPECT_EQ(m.code(), expected[i].code())
        << "spec " << i << ": " << build(specs[i], req).describe();
    EXPECT_EQ(m.data(), expected[i].data())
        << "spec " << i << ": " << build(specs[i], req).describe();
  }
}

TEST_P(CompositionTest, WeatherShapeFromTheTalk) {
  serve("fetch", [](const Request&, Response& res) { res.set_data(json::array({3, 9, 1, 7})); });
  serve("group", [](const Request& r, Response& res) {
    auto v = r.data<std::vector<int>>();
    res.set_data(json::array({json(std::vector<int>(v.begin(), v.begin() + 2)),
                              json(std::vector<int>(v.begin() + 2, v.end()))}));
  });
  serve("min", [](const Request& r, Response& res) {
    auto v = r.data<std::vector<int>>();
    res.set_data(*std::min_element(v.begin(), v.end()));
  });
  serve("max", [](const Request& r, Response& res) {
    auto v = r.data<std::vector<int>>();
    res.set_data(*std::max_element(v.begin(), v.end()));
  });
  auto& g = started();
  auto pick = [](int i) { return c::lambda([i](Message m) { return json(m.data().at(i)); }); };
  auto minmax = [&] { return c::parallel({req(g, "min"), req(g, "max")}); };
  auto weather =
      req(g, "fetch") | req(g, "group") | c::parallel({pick(0) | minmax(), pick(1) | minmax()});
  auto m = run(weather, "pune");
  ASSERT_EQ(m.code(), 200) << m.error_text();
  EXPECT_EQ(m.data(), json::parse("[[3,9],[1,7]]"));
  EXPECT_EQ(weather.describe(), "(" + topic("fetch") + " | " + topic("group") +
                                    " | ((<lambda> | (" + topic("min") + " & " + topic("max") +
                                    ")) & (<lambda> | (" + topic("min") + " & " + topic("max") +
                                    "))))");
}

// -------------------------------------------------------------- concurrency

TEST_P(CompositionTest, ThousandConcurrentExecutionsAreIndependent) {
  serve_arith();
  auto& g = started();
  auto comp =
      req(g, "inc") | c::lambda([](Message m) { return json(m.data<int>() * 3); }) |
      c::parallel({req(g, "dbl"), req(g, "inc"), c::oror({req(g, "fail"), req(g, "echo")})});
  constexpr int kN = 1000;
  std::vector<std::future<Message>> futures;
  futures.reserve(kN);
  // From several threads at once.
  std::mutex mu;
  std::vector<std::thread> threads;
  std::vector<std::pair<int, std::future<Message>>> all;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kN; i += 4) {
        auto f = comp.execute(i);
        std::lock_guard<std::mutex> lock(mu);
        all.emplace_back(i, std::move(f));
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kN));
  for (auto& [i, f] : all) {
    auto m = get(f, 20s);
    ASSERT_EQ(m.code(), 200) << i << ": " << m.error_text();
    int y = (i + 1) * 3;
    ASSERT_EQ(m.data(), json::array({y * 2, y + 1, y})) << i;
  }
}

// ----------------------------------------------------------------- timeouts

TEST_P(CompositionTest, OverallTimeoutAnswers499AndStartsNoFurtherStep) {
  std::mutex mu;
  std::vector<Completion> held;
  std::atomic<int> after{0};
  auto hold = c::lambda([&](Message, Completion done) {
    std::lock_guard<std::mutex> lock(mu);
    held.push_back(std::move(done));
  });
  auto comp = c::pipe({hold, counted(after)});
  std::promise<Message> p;
  std::atomic<int> completions{0};
  // Local lambdas only: the engine given keeps the deadline on its loop.
  auto& g = started();
  comp.execute(
      "x",
      [&](Message m) {
        if (++completions == 1) p.set_value(std::move(m));
      },
      ExecuteOptions{}.set_timeout(50ms).set_engine(g));
  auto f = p.get_future();
  auto m = get(f);
  EXPECT_EQ(m.code(), 499);
  EXPECT_EQ(m.data(), "Execution timed out");
  // The late outcome arrives now, on this thread: it is ignored and the next
  // step does not start.
  std::vector<Completion> late;
  {
    std::lock_guard<std::mutex> lock(mu);
    late.swap(held);
  }
  ASSERT_EQ(late.size(), 1u);
  late[0](Message("late"));
  EXPECT_EQ(after.load(), 0);
  EXPECT_EQ(completions.load(), 1);

  // The same with parallel branches: none starts after the deadline.
  auto par = c::parallel({hold, c::pipe({hold, counted(after)})});
  m = run(par, "y", ExecuteOptions{}.set_timeout(30ms).set_engine(g));
  EXPECT_EQ(m.code(), 499);
  {
    std::lock_guard<std::mutex> lock(mu);
    late.swap(held);
  }
  for (auto& d : late) d(Message("late"));
  EXPECT_EQ(after.load(), 0);
  // A composition that finishes in time is unaffected by its timeout.
  EXPECT_EQ(run(c::lambda([](Message m) { return m; }), 7, {10s}).data(), 7);
}

// Every step carries the execution's trace id and is bounded by what is
// left of its deadline, request steps and requests made inside lambdas alike.
TEST_P(CompositionTest, StepsInheritTheExecutionsDeadlineAndTraceId) {
  serve("probe", [](const Request& r, Response& res) {
    res.set_data(json{{"remaining", r.remaining().count()}, {"trace", r.trace_id()}});
  });
  auto& g = started();
  auto minute = RequestOptions{}.set_timeout(std::chrono::minutes(1));
  auto from_lambda = c::lambda([&](Message) { return g.request_sync(topic("probe"), 1, minute); });
  auto comp =
      c::batch({req(g, "probe", nullptr, minute), req(g, "probe", nullptr, minute), from_lambda},
               /*record=*/true);
  auto budget = scaled(5s);
  auto m = run(comp, 1, {budget});
  ASSERT_EQ(m.code(), 200) << m.data().dump();
  ASSERT_EQ(m.data().size(), 3u);
  std::set<std::string> traces;
  for (const auto& step : m.data()) {
    const auto& d = step["data"];
    EXPECT_GT(d["remaining"].get<std::int64_t>(), 0) << step.dump();
    EXPECT_LE(d["remaining"].get<std::int64_t>(), budget.count()) << step.dump();
    traces.insert(d["trace"].get<std::string>());
  }
  EXPECT_EQ(traces.size(), 1u);  // one trace for the whole execution...
  auto again = run(comp, 1, {budget});
  EXPECT_NE(again.data()[0]["data"]["trace"], m.data()[0]["data"]["trace"]);  // ...each its own
}

#ifdef __linux__
// The deadline of a composition with a running engine is kept by that
// engine's loop (no process-wide thread); the 499 is delivered on a worker.
TEST_P(CompositionTest, DeadlineIsKeptOnTheEnginesLoop) {
  auto& g = started();
  auto comp =
      req(g, "nobody-serves-this", nullptr, RequestOptions{}.set_timeout(std::chrono::minutes(1)));
  std::promise<std::pair<int, std::string>> done;
  comp.execute(1,
               [&](Message m) {
                 char name[32] = {};
                 pthread_getname_np(pthread_self(), name, sizeof name);
                 done.set_value({m.code(), name});
               },
               {100ms});
  auto f = done.get_future();
  ASSERT_EQ(f.wait_for(scaled(10s)), std::future_status::ready);
  auto [code, thread] = f.get();
  EXPECT_EQ(code, 499);
  EXPECT_NE(thread, "gilmour-compose");
}

/// The names of this process's threads.
std::vector<std::string> thread_names() {
  std::vector<std::string> names;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) names.push_back(name);
  }
  return names;
}

// Without an engine to keep it (local lambdas only), the deadline holds
// between steps and the library starts no timer thread of its own.
TEST(CompositionDeadline, WithoutAnEngineNeedsNoThreadAndHoldsBetweenSteps) {
  std::atomic<int> after{0};
  auto timeout = 20ms;
  auto slow = c::lambda([timeout](Message m) {
    // Runs past the execution's deadline (a polling wait on the clock).
    auto until = std::chrono::steady_clock::now() + 2 * timeout;
    while (std::chrono::steady_clock::now() < until) std::this_thread::yield();
    return m;
  });
  auto m = run(c::pipe({slow, counted(after)}), 1, ExecuteOptions{}.set_timeout(timeout));
  EXPECT_EQ(m.code(), 499) << m.data().dump();
  EXPECT_EQ(after.load(), 0) << "a step started after the deadline";
  // The last step returning late completes with 499 as well.
  EXPECT_EQ(run(slow, 1, ExecuteOptions{}.set_timeout(timeout)).code(), 499);
  // In time: unaffected.
  EXPECT_EQ(run(counted(after), 7, ExecuteOptions{}.set_timeout(10s)).data(), 7);
  for (const auto& name : thread_names()) EXPECT_NE(name, "gilmour-compose");
}
#endif

// A composition executed by a handler continues that handler's trace and
// deadline.
TEST_P(CompositionTest, ExecutionInsideAHandlerContinuesItsTrace) {
  serve("probe", [](const Request& r, Response& res) {
    res.set_data(json{{"remaining", r.remaining().count()}, {"trace", r.trace_id()}});
  });
  auto& g = started();
  auto comp = c::lambda([](Message m) { return m; }) | req(g, "probe");
  serve("outer", [comp](const Request& r, Response& res) {
    auto d = res.defer();
    comp.execute(r.data(), [d, trace = r.trace_id()](Message m) mutable {
      m.data()["outer_trace"] = trace;
      d.respond(m);
    });
  });
  auto& client = started();
  auto budget = scaled(5s);
  auto m = client.request_sync(topic("outer"), 1, RequestOptions{}.set_timeout(budget));
  ASSERT_EQ(m.code(), 200) << m.error_text();
  EXPECT_EQ(m.data()["trace"], m.data()["outer_trace"]);
  EXPECT_EQ(m.data()["trace"].get<std::string>().rfind(client.id() + ".", 0), 0u);
  EXPECT_LE(m.data()["remaining"].get<std::int64_t>(), budget.count());
}

TEST_P(CompositionTest, OverallTimeoutIgnoresLateRequestsAndSendsNothingMore) {
  auto release = std::make_shared<Latch>();
  serve("slow", [release](const Request& r, Response& res) {
    auto d = res.defer();
    std::thread([release, d, v = r.data()]() mutable {
      release->wait(10s);
      d.respond(v);
    }).detach();
  });
  serve_arith();
  auto o = test_options();
  auto exec = std::make_shared<CountingExecutor>(2);
  o.executor = exec;
  auto& g = started(o);
  auto comp = req(g, "slow") | req(g, "inc");
  auto m = run(comp, 1, {50ms});
  EXPECT_EQ(m.code(), 499);
  EXPECT_EQ(g.stats().requests_sent, 1u);
  release->open();
  // The late response's callback is the client executor's only task; once it
  // has run, no further request was sent.
  ASSERT_TRUE(exec->finished.wait_for(1, 10s));
  EXPECT_EQ(g.stats().requests_sent, 1u);
  EXPECT_EQ(calls("inc"), 0);
}

TEST_P(CompositionTest, CompletesExactlyOnceWhenTimeoutsRaceCompletions) {
  constexpr int kN = 300;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Completion> held;
  auto hold = c::lambda([&](Message, Completion done) {
    {
      std::lock_guard<std::mutex> lock(mu);
      held.push_back(std::move(done));
    }
    cv.notify_one();
  });
  auto comp = c::pipe({hold, c::lambda([](Message m) { return m.set_data("done"); })});
  // Its loop keeps the deadlines; one worker delivers the 499s in order.
  auto o = test_options();
  o.worker_threads = 1;
  auto& g = started(o);
  std::vector<std::atomic<int>> counts(kN);
  Counter total;
  std::atomic<int> timed_out{0}, ok{0};
  // Completes the held steps as they come, racing the 1-3 ms deadlines.
  std::thread releaser([&] {
    int released = 0;
    while (released < kN) {
      std::vector<Completion> batch;
      {
        std::unique_lock<std::mutex> lock(mu);
        if (!cv.wait_for(lock, 10s, [&] { return !held.empty(); })) return;
        batch.swap(held);
      }
      for (auto& d : batch) d(Message("v"));
      released += static_cast<int>(batch.size());
    }
  });
  for (int i = 0; i < kN; ++i) {
    comp.execute(
        i,
        [&, i](Message m) {
          ++counts[i];
          (m.code() == 499 ? timed_out : ok)++;
          total.add();
        },
        ExecuteOptions{}.set_timeout(std::chrono::milliseconds(1 + i % 3)).set_engine(g));
  }
  releaser.join();
  ASSERT_TRUE(total.wait_for(kN));
  // A barrier on the engine's loop and its one worker: deadlines fire in
  // order, so once this later one has fired, every earlier one was handled.
  Completion parked;
  auto barrier = c::lambda([&](Message, Completion done) { parked = std::move(done); });
  EXPECT_EQ(run(barrier, 0, ExecuteOptions{}.set_timeout(10ms).set_engine(g)).code(), 499);
  parked = nullptr;
  EXPECT_EQ(total.value(), static_cast<std::size_t>(kN));
  for (int i = 0; i < kN; ++i) EXPECT_EQ(counts[i].load(), 1) << i;
  EXPECT_EQ(timed_out + ok, kN);
}

TEST_P(CompositionTest, UnservedTopicsTimeOutOrAnswer404) {
  auto& g = started();
  auto m = run(req(g, "nobody", nullptr, {100ms}), 1);
  EXPECT_EQ(m.code(), 499);
  EXPECT_EQ(m.data(), "Execution timed out");
  RequestOptions confirm;
  confirm.confirm_subscribers = true;
  m = run(c::pipe({req(g, "nobody", nullptr, confirm), c::lambda([](Message m) { return m; })}), 1);
  EXPECT_EQ(m.code(), 404);
  // oror falls through a missing service.
  m = run(c::oror({req(g, "nobody", nullptr, confirm),
                   c::lambda([](Message) { return json("fallback"); })}),
          1);
  EXPECT_EQ(m.code(), 200);
  EXPECT_EQ(m.data(), "fallback");
}

TEST_P(CompositionTest, StepsOnAnEngineThatIsNotRunningAnswer503) {
  auto& idle = engine();  // never started
  auto m = run(c::request(idle, topic("x")), 1);
  EXPECT_EQ(m.code(), 503);
  auto& g = started();
  g.stop();
  m = run(c::batch({c::request(g, topic("x")), c::request(idle, topic("y"))}, true), 1);
  EXPECT_EQ(m.code(), 503);
  EXPECT_EQ(m.data().size(), 2u);
}

TEST_P(CompositionTest, AStepWhoseEngineWasDestroyedAnswers503) {
  auto gone = std::make_unique<Gilmour>(world_->backend(), test_options());
  gone->start();
  auto comp = c::request(*gone, topic("x"));
  gone.reset();  // the composition outlives its engine: no dangling reference
  auto m = run(comp, 1);
  EXPECT_EQ(m.code(), 503);
}

TEST_P(CompositionTest, StoppingTheEngineMidwayCompletesEveryExecutionOnce) {
  auto& g = started();
  RequestOptions slow;
  slow.timeout = 10s;  // nobody serves these: only stop() ends them
  auto comp = c::batch({req(g, "nobody1", nullptr, slow), req(g, "nobody2", nullptr, slow)}, true);
  constexpr int kN = 50;
  std::vector<std::atomic<int>> counts(kN);
  Counter total;
  std::mutex mu;
  std::vector<Message> results;
  for (int i = 0; i < kN; ++i) {
    comp.execute(i, [&, i](Message m) {
      ++counts[i];
      {
        std::lock_guard<std::mutex> lock(mu);
        results.push_back(std::move(m));
      }
      total.add();
    });
  }
  g.stop();
  ASSERT_TRUE(total.wait_for(kN));
  std::lock_guard<std::mutex> lock(mu);
  for (auto& m : results) {
    // The first step answers 503 "engine stopped"; the second is refused by
    // the stopped engine (503) or lost in its shutdown (500 "abandoned").
    EXPECT_TRUE(m.code() == 503 || m.code() == 500) << m.code() << " " << m.data().dump();
  }
  for (int i = 0; i < kN; ++i) EXPECT_EQ(counts[i].load(), 1) << i;
}

TEST_P(CompositionTest, AStepWhoseCallbackIsLostStillCompletesTheExecution) {
  // An executor that drops every task: the engine loses the request callback.
  struct Dropping final : Executor {
    void submit(std::function<void()>) override {}
  };
  serve_arith();
  auto o = test_options();
  o.executor = std::make_shared<Dropping>();
  auto& g = started(o);
  std::atomic<int> after{0};
  auto m = run(c::pipe({req(g, "echo"), counted(after)}), 1);
  EXPECT_EQ(m.code(), 500);
  EXPECT_EQ(m.data(), "composition abandoned: a step never completed");
  EXPECT_EQ(after.load(), 0);
}

// ------------------------------------------------------------------ lambdas

TEST_P(CompositionTest, LambdaFormsAndFailures) {
  // Throwing: 500 with the text.
  auto m = run(c::lambda([](Message) -> Message { throw std::runtime_error("bad input"); }), 1);
  EXPECT_EQ(m.code(), 500);
  EXPECT_EQ(m.data(), "bad input");
  // Future form, including a future that holds an exception.
  m = run(c::lambda([](Message in) {
            return std::async(std::launch::async, [in] { return Message(in.data<int>() + 1); });
          }),
          1);
  EXPECT_EQ(m.data(), 2);
  m = run(c::lambda([](Message) {
            return std::async(std::launch::deferred,
                              []() -> Message { throw std::logic_error("later"); });
          }),
          1);
  EXPECT_EQ(m.code(), 500);
  EXPECT_EQ(m.data(), "later");
  // Async form: completed from another thread; only the first call counts.
  m = run(c::lambda([](Message in, Completion done) {
            std::thread([in, done] {
              done(Message(in.data<int>() * 7, 201));
              done(Message("again"));
            }).detach();
          }),
          3);
  EXPECT_EQ(m.code(), 201);
  EXPECT_EQ(m.data(), 21);
  // Dropped without a call: 500. Throwing after completing: the completion holds.
  m = run(c::lambda([](Message, Completion) {}), 1);
  EXPECT_EQ(m.code(), 500);
  m = run(c::lambda([](Message, Completion done) {
            done(Message("first"));
            throw std::runtime_error("ignored");
          }),
          1);
  EXPECT_EQ(m.code(), 200);
  EXPECT_EQ(m.data(), "first");
  // A plain function pointer and a std::function.
  Message (*fp)(Message) = [](Message x) { return x.set_code(202); };
  EXPECT_EQ(run(c::lambda(fp), 1).code(), 202);
  std::function<Message(Message)> sf = [](Message x) { return x; };
  EXPECT_EQ(run(c::lambda(sf), 5).data(), 5);
  // The callback form of execute.
  std::promise<Message> p;
  c::lambda([](Message x) { return x; }).execute(9, [&](Message r) { p.set_value(std::move(r)); });
  auto f = p.get_future();
  EXPECT_EQ(get(f).data(), 9);
}

TEST_P(CompositionTest, BadArgumentsThrowAtConstruction) {
  auto& g = engine();
  EXPECT_THROW(c::request(nullptr, "a"), InvalidArgument);
  EXPECT_THROW(c::request(g, ""), InvalidArgument);
  EXPECT_THROW(c::request(g, "a.*"), InvalidArgument);
  EXPECT_THROW(c::request(g, "a", json::array()), InvalidArgument);
  EXPECT_THROW(c::request(g, "a", RequestOptions{-1ms}), InvalidArgument);
  EXPECT_THROW(c::lambda(std::function<Message(Message)>{}), InvalidArgument);
  EXPECT_THROW(c::lambda(static_cast<Message (*)(Message)>(nullptr)), InvalidArgument);
  EXPECT_THROW(c::lambda(std::function<void(Message, Completion)>{}), InvalidArgument);
  auto comp = c::pipe({});
  EXPECT_THROW(comp.execute(1, Completion{}), InvalidArgument);
  EXPECT_THROW((void)comp.execute(1, ExecuteOptions{-1ms}), InvalidArgument);
  EXPECT_NO_THROW(c::request(g, "a", {{"k", 1}}));
}

INSTANTIATE_TEST_SUITE_P(Backends, CompositionTest, ::testing::ValuesIn(backend_kinds()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace gilmour::test
