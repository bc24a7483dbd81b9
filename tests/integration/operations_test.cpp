// Operations on every backend: error policies on the wire, error records,
// health registration and pings, the health bulletin, stats.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <future>
#include <regex>

#include "support/backend_test.hpp"

namespace gilmour::test {
namespace {

class OperationsTest : public BackendTest {
 protected:
  /// A server answering `topic` by throwing "boom", with the given policy.
  Gilmour& failing_server(const std::string& topic, EngineOptions o) {
    auto& g = started(std::move(o));
    subs_.push_back(
        g.reply_to(topic, [](const Request&, Response&) { throw std::runtime_error("boom"); }));
    return g;
  }
};

void expect_record(const nlohmann::json& j, const std::string& topic, int code,
                   const std::string& backtrace) {
  ErrorRecord r;
  ASSERT_TRUE(ErrorRecord::from_json(j, r)) << j.dump();
  // Exact field set and types.
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.size(), 8u) << j.dump();
  EXPECT_TRUE(j.at("topic").is_string());
  EXPECT_TRUE(j.at("request_data").is_string());
  EXPECT_TRUE(j.at("user_data").is_string());
  EXPECT_TRUE(j.at("sender").is_string());
  EXPECT_TRUE(j.at("multi_process").is_boolean());
  EXPECT_TRUE(j.at("timestamp").is_string());
  EXPECT_TRUE(j.at("code").is_number_integer());
  EXPECT_EQ(r.topic, topic);
  EXPECT_EQ(r.code, code);
  EXPECT_EQ(r.backtrace, backtrace);
  EXPECT_EQ(r.user_data, "");
  EXPECT_FALSE(r.multi_process);
  EXPECT_TRUE(std::regex_match(r.timestamp, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
      << r.timestamp;
  // request_data is the request envelope as JSON text, with the sender.
  auto req = nlohmann::json::parse(r.request_data);
  EXPECT_EQ(req.at("sender"), r.sender);
  EXPECT_EQ(req.at("code"), 200);
  EXPECT_FALSE(r.sender.empty());
}

TEST_P(OperationsTest, PublishPolicyPutsEnvelopedRecordOnGilmourError) {
  auto topic = unique_topic("pub");
  auto cap = world_->capture("gilmour.error");
  auto o = test_options();
  o.error_policy = ErrorPolicy::kPublish;
  auto& server = failing_server(topic, o);
  auto m = started().request_sync(topic, "x");
  ASSERT_EQ(m.code(), 500);
  auto got = cap->wait_for(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, "gilmour.error");
  auto env = nlohmann::json::parse(got[0].second);
  // Enveloped: data, code, sender, in that order.
  EXPECT_EQ(got[0].second.rfind("{\"data\":{", 0), 0u) << got[0].second;
  // The record's keys in the documented order (not nlohmann's sorted order).
  std::size_t at = 0;
  for (auto key : {"topic", "request_data", "user_data", "sender", "multi_process", "timestamp",
                   "backtrace", "code"}) {
    auto next = got[0].second.find('"' + std::string(key) + "\":", at);
    ASSERT_NE(next, std::string::npos) << key << " out of order in " << got[0].second;
    at = next;
  }
  EXPECT_EQ(env.at("code"), 500);
  EXPECT_TRUE(env.at("sender").is_string());
  expect_record(env.at("data"), topic, 500, "boom");
  EXPECT_EQ(nlohmann::json::parse(env.at("data").at("request_data").get<std::string>()).at("data"),
            "x");
  EXPECT_EQ(server.stats().errors_reported, 1u);
  EXPECT_TRUE(world_->list_range("gilmour.errorqueue").empty());
}

TEST_P(OperationsTest, QueuePolicyPushesAndTrims) {
  auto topic = unique_topic("queue");
  auto queue = unique_topic("errq");
  auto cap = world_->capture("gilmour.error");
  auto o = test_options();
  o.error_policy = ErrorPolicy::kQueue;
  o.error_queue = queue;
  o.error_queue_max = 3;
  auto& server = failing_server(topic, o);
  auto& client = started();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(client.request_sync(topic, i).code(), 500);
  // The record is pushed after the response is published, and no event
  // tells the test when the push is done: poll the list, each probe being a
  // 1 ms request through the engines' loops (bounded to ~5 s).
  for (int i = 0; i < 500; ++i) {
    auto l = world_->list_range(queue);
    if (l.size() == 3 &&
        nlohmann::json::parse(l[0]).at("request_data").get<std::string>().find("\"data\":4") !=
            std::string::npos) {
      break;
    }
    client.request_sync(unique_topic("barrier"), 0, {1ms});
  }
  EXPECT_EQ(server.stats().errors_reported, 5u);
  auto list = world_->list_range(queue);
  ASSERT_EQ(list.size(), 3u);  // LTRIM 0 max-1
  // LPUSH: newest first; the records are bare (not enveloped).
  for (std::size_t i = 0; i < list.size(); ++i) {
    auto rec = nlohmann::json::parse(list[i]);
    expect_record(rec, topic, 500, "boom");
    auto req = nlohmann::json::parse(rec.at("request_data").get<std::string>());
    EXPECT_EQ(req.at("data"), static_cast<int>(4 - i));
  }
  EXPECT_TRUE(cap->snapshot().empty());
}

TEST_P(OperationsTest, IgnorePolicyReportsNothingButTheHookSeesIt) {
  auto topic = unique_topic("ignore");
  auto cap = world_->capture("gilmour.error");
  std::promise<ErrorRecord> hooked;
  auto o = test_options();
  o.error_policy = ErrorPolicy::kIgnore;
  o.error_hook = [&](const ErrorRecord& r) { hooked.set_value(r); };
  auto& server = failing_server(topic, o);
  EXPECT_EQ(started().request_sync(topic, 1).code(), 500);
  auto r = hooked.get_future().get();
  EXPECT_EQ(r.code, 500);
  EXPECT_EQ(r.topic, topic);
  // A published error on another engine is the barrier for "nothing appeared".
  auto o2 = test_options();
  auto& other = failing_server(topic + ".pub", o2);
  EXPECT_EQ(started().request_sync(topic + ".pub", 1).code(), 500);
  auto got = cap->wait_for(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(got[0].second).at("data").at("topic"), topic + ".pub");
  EXPECT_EQ(server.stats().errors_reported, 0u);
  EXPECT_TRUE(world_->list_range("gilmour.errorqueue").empty());
  EXPECT_EQ(other.stats().errors_reported, 1u);
}

TEST_P(OperationsTest, PolicyCanChangeAtRunTimeAndChannelIsConfigurable) {
  auto topic = unique_topic("switch");
  auto channel = unique_topic("errors");
  auto cap = world_->capture(channel);
  auto o = test_options();
  o.error_policy = ErrorPolicy::kIgnore;
  o.error_channel = channel;
  auto& server = failing_server(topic, o);
  auto& client = started();
  EXPECT_EQ(client.request_sync(topic, 1).code(), 500);
  server.set_error_policy(parse_error_policy("publish"));
  EXPECT_EQ(server.error_policy(), ErrorPolicy::kPublish);
  EXPECT_EQ(client.request_sync(topic, 2).code(), 500);
  auto got = cap->wait_for(1);
  ASSERT_EQ(got.size(), 1u);
  auto rec = nlohmann::json::parse(got[0].second).at("data");
  EXPECT_EQ(nlohmann::json::parse(rec.at("request_data").get<std::string>()).at("data"), 2);
  EXPECT_EQ(to_string(ErrorPolicy::kQueue), "queue");
  EXPECT_EQ(parse_error_policy(""), ErrorPolicy::kIgnore);  // Go's name for ignore
}

TEST_P(OperationsTest, TimeoutsAndFailingSlotsAreReported) {
  auto topic = unique_topic("ops");
  auto cap = world_->capture("gilmour.error");
  auto& server = started();
  Latch release;
  auto s1 = server.reply_to(topic + ".slow", [&](const Request&, Response&) { release.wait(); },
                            {"", 50ms});
  auto s2 =
      server.slot(topic + ".throws", [](const Request&) { throw std::logic_error("bad slot"); });
  auto s3 = server.slot(topic + ".hangs", [&](const Request&) { release.wait(); }, {"", 50ms});
  auto s4 = server.reply_to(
      topic + ".code", [](const Request&, Response& res) { res.set_data("teapot").set_code(418); });
  auto& client = started();
  EXPECT_EQ(client.request_sync(topic + ".slow", 1).code(), 499);
  client.signal(topic + ".throws", 2);
  client.signal(topic + ".hangs", 3);
  EXPECT_EQ(client.request_sync(topic + ".code", 4).code(), 418);
  auto got = cap->wait_for(4);
  release.open();
  ASSERT_EQ(got.size(), 4u);
  std::map<std::string, std::pair<int, nlohmann::json>> by_topic;
  for (auto& [ch, payload] : got) {
    auto rec = nlohmann::json::parse(payload).at("data");
    by_topic[rec.at("topic")] = {rec.at("code"), rec.at("backtrace")};
  }
  EXPECT_EQ(by_topic[topic + ".slow"].first, 499);
  EXPECT_EQ(by_topic[topic + ".slow"].second, "Execution timed out");
  EXPECT_EQ(by_topic[topic + ".throws"].first, 500);
  EXPECT_EQ(by_topic[topic + ".throws"].second, "bad slot");
  EXPECT_EQ(by_topic[topic + ".hangs"].first, 499);
  EXPECT_EQ(by_topic[topic + ".code"].first, 418);
  EXPECT_EQ(by_topic[topic + ".code"].second, "teapot");
  auto st = server.stats();
  EXPECT_EQ(st.server_timeouts, 2u);
  EXPECT_EQ(st.handler_errors, 1u);
  server.stop();  // the handlers return before `release` goes out of scope
}

TEST_P(OperationsTest, HealthIdentRegisteredAnsweredAndRemovedOnStop) {
  auto o = test_options();
  o.health_check = true;
  auto topic = unique_topic("svc");
  auto g = std::make_unique<Gilmour>(world_->backend(), o);
  auto r = g->reply_to(topic, [](const Request&, Response&) {});
  auto s = g->slot(topic + ".events.*", [](const Request&) {});
  g->start();
  const std::string ident = g->health_ident();
  EXPECT_TRUE(std::regex_match(ident, std::regex(R"(.+-pid-\d+-uuid-[0-9a-f-]{36})"))) << ident;
  auto hosts = world_->hash_get_all("gilmour.known_host.health");
  EXPECT_NE(std::find(hosts.begin(), hosts.end(), std::make_pair(ident, std::string("true"))),
            hosts.end());
  // Ping as Ruby's health bulletin does: data "ping", code 0.
  auto& client = started();
  auto m = client.request_sync("gilmour.health." + ident, "ping");
  ASSERT_EQ(m.code(), 200) << m.error_text();
  auto channels = m.data().get<std::vector<std::string>>();
  std::sort(channels.begin(), channels.end());
  EXPECT_EQ(channels, (std::vector<std::string>{"gilmour.request." + topic,
                                                "gilmour.slot." + topic + ".events.*"}));
  EXPECT_TRUE(g->stop());
  hosts = world_->hash_get_all("gilmour.known_host.health");
  for (auto& [k, v] : hosts) EXPECT_NE(k, ident);
}

TEST_P(OperationsTest, EnableHealthCheckWhileRunning) {
  auto& g = started();
  auto hosts = world_->hash_get_all("gilmour.known_host.health");
  for (auto& [k, v] : hosts) EXPECT_NE(k, g.health_ident());
  g.enable_health_check();
  auto m = started().request_sync("gilmour.health." + g.health_ident(), "ping");
  EXPECT_EQ(m.code(), 200);
  EXPECT_TRUE(m.data().is_array());
}

TEST_P(OperationsTest, BulletinPrunesADeadProcessAndReportsEssentialTopics) {
  // A process that died without cleaning up: its hash entry stays, nobody
  // answers its pings (the state SIGKILL leaves; the Redis-only test below
  // kills a real process).
  const std::string ghost = "ghost-host-pid-1-uuid-" + unique_topic("x");
  world_->hash_set("gilmour.known_host.health", ghost, "true");
  auto o = test_options();
  o.health_check = true;
  auto alive_topic = unique_topic("alive");
  auto svc = std::make_unique<Gilmour>(world_->backend(), o);
  auto r = svc->reply_to(alive_topic, [](const Request&, Response&) {});
  svc->start();

  auto cap = world_->capture("gilmour.error");
  auto& monitor = started();
  HealthBulletinOptions bo;
  bo.interval = 50ms;
  bo.timeout = 500ms;
  bo.retries = 3;
  auto missing = unique_topic("essential");
  bo.essential_topics = {alive_topic, missing};
  HealthBulletin bulletin(monitor, bo);
  auto r1 = bulletin.check();
  EXPECT_TRUE(r1.dead.empty());
  EXPECT_EQ(r1.essential_unheard, std::vector<std::string>{missing});
  bool saw_svc = false;
  for (auto& p : r1.processes) {
    if (p.ident == svc->health_ident()) {
      saw_svc = p.responded;
      EXPECT_EQ(p.channels, std::vector<std::string>{"gilmour.request." + alive_topic});
    }
    if (p.ident == ghost) {
      EXPECT_FALSE(p.responded);
      EXPECT_EQ(p.failures, 1);
    }
  }
  EXPECT_TRUE(saw_svc);
  EXPECT_EQ(bulletin.check().dead.size(), 0u);
  auto r3 = bulletin.check();
  EXPECT_EQ(r3.dead, std::vector<std::string>{ghost});  // third failure in a row
  auto hosts = world_->hash_get_all("gilmour.known_host.health");
  for (auto& [k, v] : hosts) EXPECT_NE(k, ghost);
  bool has_svc = false;
  for (auto& [k, v] : hosts) has_svc |= k == svc->health_ident();
  EXPECT_TRUE(has_svc);
  // Records: 3 x essential (404) + 1 dead process.
  auto got = cap->wait_for(4);
  ASSERT_EQ(got.size(), 4u);
  int dead_records = 0, essential_records = 0;
  for (auto& [ch, payload] : got) {
    auto rec = nlohmann::json::parse(payload).at("data");
    if (rec.at("topic") == "gilmour.health." + ghost) ++dead_records;
    if (rec.at("topic") == missing && rec.at("code") == 404) ++essential_records;
  }
  EXPECT_EQ(dead_records, 1);
  EXPECT_EQ(essential_records, 3);
  svc->stop();
}

TEST_P(OperationsTest, BulletinOptionsAreChecked) {
  auto& g = started();
  HealthBulletinOptions bo;
  bo.retries = 0;
  EXPECT_THROW(HealthBulletin(g, bo), InvalidArgument);
  bo = {};
  bo.essential_topics = {""};
  EXPECT_THROW(HealthBulletin(g, bo), InvalidArgument);
  bo = {};
  bo.interval = 0ms;
  EXPECT_THROW(HealthBulletin(g, bo), InvalidArgument);
}

TEST_P(OperationsTest, StatsCountTraffic) {
  auto topic = unique_topic("stats");
  auto& server = started();
  Counter slots;
  auto r = server.reply_to(topic, [](const Request& q, Response& res) { res.set_data(q.data()); });
  auto s = server.slot(topic, [&](const Request&) { slots.add(); });
  auto& client = started();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(client.request_sync(topic, i).code(), 200);
  client.signal(topic, 1);
  ASSERT_TRUE(slots.wait_for(1));
  auto cs = client.stats();
  auto ss = server.stats();
  EXPECT_EQ(cs.requests_sent, 3u);
  EXPECT_EQ(cs.responses_received, 3u);
  EXPECT_EQ(cs.signals_sent, 1u);
  EXPECT_EQ(ss.requests_handled, 3u);
  EXPECT_EQ(ss.responses_sent, 3u);
  EXPECT_EQ(ss.signals_received, 1u);
  EXPECT_EQ(ss.malformed_dropped, 0u);
}

#ifdef GILMOUR_ECHO_SERVER
/// Starts gilmour-echo-server on Redis; returns its pid and health ident.
std::pair<pid_t, std::string> spawn_echo_server(const std::string& url) {
  int fds[2];
  if (::pipe(fds) != 0) return {-1, ""};
  pid_t pid = ::fork();
  if (pid == 0) {
    die_with_parent();
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execl(GILMOUR_ECHO_SERVER, GILMOUR_ECHO_SERVER, "--redis", url.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  // Its readiness line names the ident: "... (group G, health: IDENT)".
  std::string out;
  char buf[512];
  ssize_t n;
  while (out.find(")\n") == std::string::npos && (n = ::read(fds[0], buf, sizeof buf)) > 0) {
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(R"(, health: ([^)]+)\))"))) return {pid, ""};
  return {pid, m[1]};
}

/// Tests that need separate processes sharing one Redis.
class OperationsRedisTest : public OperationsTest {};

TEST_P(OperationsRedisTest, BulletinDetectsAProcessKilledWithSigkill) {
  auto* server = shared_redis();
  ASSERT_NE(server, nullptr);
  // Not a structured binding: C++17 lambdas (clang) cannot capture one.
  auto [pid, spawned_ident] = spawn_echo_server(server->url());
  const std::string ident = spawned_ident;
  ASSERT_GT(pid, 0);
  ASSERT_FALSE(ident.empty());
  auto& monitor = started();
  std::mutex mu;
  std::condition_variable cv;
  std::vector<HealthReport> reports;
  HealthBulletinOptions bo;
  bo.interval = 100ms;
  bo.timeout = 300ms;
  bo.retries = 3;
  bo.on_report = [&](const HealthReport& r) {
    std::lock_guard<std::mutex> lock(mu);
    reports.push_back(r);
    cv.notify_all();
  };
  HealthBulletin bulletin(monitor, bo);
  auto first = bulletin.check();
  bool alive = false;
  for (auto& p : first.processes) alive |= p.ident == ident && p.responded;
  EXPECT_TRUE(alive);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  auto killed_at = std::chrono::steady_clock::now();
  bulletin.start();
  std::unique_lock<std::mutex> lock(mu);
  auto dead = [&] {
    for (auto& r : reports) {
      if (std::find(r.dead.begin(), r.dead.end(), ident) != r.dead.end()) return true;
    }
    return false;
  };
  // Within interval x retries (plus the ping timeouts and slack).
  ASSERT_TRUE(cv.wait_for(lock, 5s, dead));
  EXPECT_LT(std::chrono::steady_clock::now() - killed_at,
            bo.retries * (bo.interval + bo.timeout) + 2s);
  lock.unlock();
  bulletin.stop();
  for (auto& [k, v] : world_->hash_get_all("gilmour.known_host.health")) EXPECT_NE(k, ident);
}
INSTANTIATE_TEST_SUITE_P(RedisOnly, OperationsRedisTest, ::testing::Values("redis"),
                         [](const auto& info) { return info.param; });
#endif

TEST_P(OperationsTest, StatsAnsweredOnGilmourStatsIdentWithHealthChecks) {
  auto& g = started(test_options().set_health_check(true));
  auto topic = unique_topic("counted");
  auto r = g.reply_to(topic, [](const Request&, Response& res) { res.set_data(1); });
  auto& client = started();
  ASSERT_EQ(client.request_sync(topic, 0).code(), 200);
  auto m = client.request_sync("gilmour.stats." + g.health_ident(), nullptr);
  ASSERT_EQ(m.code(), 200) << m.error_text();
  EXPECT_EQ(m.data().at("ident"), g.health_ident());
  auto s = stats_from_json(m.data().at("stats"));
  EXPECT_EQ(s.requests_handled, 2u);  // the request, and this stats request (counted on arrival)
  // Internal handlers are not listed as topics in health answers.
  auto ping = client.request_sync("gilmour.health." + g.health_ident(), "ping");
  EXPECT_EQ(ping.data(), nlohmann::json::array({"gilmour.request." + topic}));
  // Without health checks, nobody answers.
  auto& quiet = started();
  auto none = client.request_sync("gilmour.stats." + quiet.health_ident(), nullptr,
                                  RequestOptions{}.set_confirm_subscribers());
  EXPECT_TRUE(none.no_listeners());
}

INSTANTIATE_TEST_SUITE_P(Backends, OperationsTest, ::testing::ValuesIn(backend_kinds()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace gilmour::test
