// Wire tests on a real redis-server: the exact channels and envelopes our
// engine publishes, the exclusion lock keys, and foreign peers written with
// raw hiredis that speak like the Go and Ruby libraries byte for byte.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <set>

#include "integration/redis_fixture.hpp"

namespace gilmour::test {
namespace {

using Wire = RedisTest;

TEST_F(Wire, GoldenRequestReplyAndSignalEnvelopes) {
  auto topic = unique_topic("golden");
  auto cap = std::make_unique<RawSubscriber>(target(), "gilmour.*", true);
  ASSERT_TRUE(cap->ok()) << cap->error();
  auto& server = started();
  auto& client = started();
  auto sub = server.reply_to(topic, [](const Request& r, Response& res) {
    res.set_data(nlohmann::json{{"echo", r.data()}});
  });
  auto m = client.request_sync(topic, nlohmann::json{{"x", 1}});
  ASSERT_EQ(m.code(), 200) << m.error_text();

  auto got = cap->wait_for(2);
  ASSERT_GE(got.size(), 2u);
  // 1. The request: gilmour.request.T, sender = <engine-id>.<sequence>.
  EXPECT_EQ(got[0].first, "gilmour.request." + topic);
  std::string s = sender_of(got[0].second);
  ASSERT_EQ(s.rfind(client.id() + ".", 0), 0u) << got[0].second;
  EXPECT_EQ(got[0].second, R"({"data":{"x":1},"code":200,"sender":")" + s + R"("})");
  // 2. The response: gilmour.response.S, sender "gilmour.response.S".
  EXPECT_EQ(got[1].first, "gilmour.response." + s);
  EXPECT_EQ(got[1].second,
            R"({"data":{"echo":{"x":1}},"code":200,"sender":"gilmour.response.)" + s + R"("})");
  // 3. The exclusion lock of the default group: value "1", lock_ttl (120 s).
  RawRedis raw(target());
  EXPECT_EQ(raw.get(s + "_default"), "1");
  auto ttl = raw.ttl(s + "_default");
  EXPECT_GT(ttl, 110);
  EXPECT_LE(ttl, 120);

  // A signal to a grouped slot: envelope on gilmour.slot.T and the group's lock.
  auto slot_topic = unique_topic("golden-slot");
  Latch ran;
  auto slot = server.slot(slot_topic, [&](const Request&) { ran.open(); }, {"workers"});
  client.signal(slot_topic, "hi");
  ASSERT_TRUE(ran.wait());
  got = cap->wait_for(3);
  ASSERT_GE(got.size(), 3u);
  EXPECT_EQ(got[2].first, "gilmour.slot." + slot_topic);
  std::string s2 = sender_of(got[2].second);
  ASSERT_EQ(s2.rfind(client.id() + ".", 0), 0u);
  EXPECT_EQ(got[2].second, R"({"data":"hi","code":200,"sender":")" + s2 + R"("})");
  EXPECT_EQ(raw.get(s2 + "workers"), "1");
  ttl = raw.ttl(s2 + "workers");
  EXPECT_GT(ttl, 110);
  EXPECT_LE(ttl, 120);
  EXPECT_EQ(cap->snapshot().size(), 3u);  // nothing else: no error record, no extra reply
}

TEST_F(Wire, HandlerErrorIsPublishedOnGilmourError) {
  auto topic = unique_topic("err");
  auto cap = std::make_unique<RawSubscriber>(target(), "gilmour.error", false);
  ASSERT_TRUE(cap->ok());
  auto& server = started();
  auto sub =
      server.reply_to(topic, [](const Request&, Response&) { throw std::runtime_error("boom"); });
  auto m = started().request_sync(topic, 1);
  EXPECT_EQ(m.code(), 500);
  auto got = cap->wait_for(1);
  ASSERT_EQ(got.size(), 1u);
  auto j = nlohmann::json::parse(got[0].second);
  EXPECT_EQ(j["code"], 500);
  EXPECT_EQ(j["data"]["topic"], topic);
  EXPECT_EQ(j["data"]["backtrace"], "boom");
  EXPECT_EQ(j["data"]["code"], 500);
}

// (a) A Go requester: UUID sender, SUBSCRIBE gilmour.response.<uuid> before
// publishing, reads our reply.
TEST_F(Wire, GoStyleRequesterGetsOurReply) {
  auto topic = unique_topic("go-req");
  auto& server = started();
  auto sub = server.reply_to(topic, [](const Request& r, Response& res) {
    res.set_data("pong:" + r.data<std::string>());
  });
  std::string uuid = go_uuid();
  ASSERT_EQ(uuid.size(), 36u);
  RawSubscriber reply(target(), "gilmour.response." + uuid, false);
  ASSERT_TRUE(reply.ok());
  RawRedis raw(target());
  EXPECT_EQ(raw.publish("gilmour.request." + topic,
                        R"({"data":"ping","code":200,"sender":")" + uuid + R"("})"),
            1);
  auto got = reply.wait_for(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, "gilmour.response." + uuid);
  EXPECT_EQ(got[0].second,
            R"({"data":"pong:ping","code":200,"sender":"gilmour.response.)" + uuid + R"("})");
  EXPECT_EQ(raw.get(uuid + "_default"), "1");  // our lock value (Go stores the key)
  // Ruby: code 0, 32-hex sender.
  std::string ruby = "0123456789abcdef0123456789abcdef";
  RawSubscriber reply2(target(), "gilmour.response." + ruby, false);
  raw.publish("gilmour.request." + topic, R"({"data":"r","code":0,"sender":")" + ruby + R"("})");
  got = reply2.wait_for(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].second,
            R"({"data":"pong:r","code":200,"sender":"gilmour.response.)" + ruby + R"("})");
}

/// A foreign replier written like Go's: it listens on gilmour.request.T,
/// takes `SET <S><group> <S><group> NX EX 600` itself and, when it wins,
/// publishes the response on gilmour.response.<S>. `answer` builds the
/// response envelope from the request's data and sender.
class ForeignReplier {
 public:
  using Answer = std::function<std::string(const nlohmann::json& data, const std::string& sender)>;
  ForeignReplier(RawTarget t, const std::string& topic, std::string group, Answer answer)
      : cmd_(t),
        group_(std::move(group)),
        answer_(std::move(answer)),
        sub_(t, "gilmour.request." + topic, false,
             [this](const std::string&, const std::string& payload) { on_request(payload); }) {}
  bool ok() const { return cmd_.ok() && sub_.ok(); }
  std::size_t handled() {
    std::lock_guard<std::mutex> lock(mu_);
    return handled_.size();
  }
  std::vector<int> handled_ints() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<int> out;
    for (auto& d : handled_) {
      if (d.is_number_integer()) out.push_back(d.get<int>());
    }
    return out;
  }

 private:
  void on_request(const std::string& payload) {  // the subscriber's reader thread
    auto j = nlohmann::json::parse(payload, nullptr, false);
    if (j.is_discarded()) return;
    std::string s = j["sender"].get<std::string>();
    std::string key = s + group_;
    auto won = cmd_.command({"SET", key, key, "NX", "EX", "600"});
    if (!won || won->type != REDIS_REPLY_STATUS) return;  // nil: someone else has it
    {
      std::lock_guard<std::mutex> lock(mu_);
      handled_.push_back(j["data"]);
    }
    cmd_.publish("gilmour.response." + s, answer_(j["data"], s));
  }
  RawRedis cmd_;  // used on the reader thread only
  std::string group_;
  Answer answer_;
  std::mutex mu_;
  std::vector<nlohmann::json> handled_;
  RawSubscriber sub_;  // last: its thread starts once everything else exists
};

// (b) A Go replier answers our engine's request.
TEST_F(Wire, GoStyleReplierAnswersOurRequest) {
  auto topic = unique_topic("go-rep");
  ForeignReplier peer(target(), topic, "_default",
                      [](const nlohmann::json& d, const std::string& s) {
                        return R"({"data":)" + nlohmann::json("go:" + d.get<std::string>()).dump() +
                               R"(,"code":200,"sender":"gilmour.response.)" + s + R"("})";
                      });
  ASSERT_TRUE(peer.ok());
  auto& client = started();
  auto m = client.request_sync(topic, "hello");
  ASSERT_EQ(m.code(), 200) << m.error_text();
  EXPECT_EQ(m.data<std::string>(), "go:hello");
  EXPECT_EQ(peer.handled(), 1u);
}

// (c) A foreign peer and our engine in one exclusion group: every request is
// answered exactly once in total.
TEST_F(Wire, SharedExclusionGroupWithForeignPeer) {
  constexpr int kRequests = 300;
  auto topic = unique_topic("shared");
  ForeignReplier peer(target(), topic, "g", [](const nlohmann::json& d, const std::string& s) {
    return R"({"data":)" + d.dump() + R"(,"code":200,"sender":"gilmour.response.)" + s + R"("})";
  });
  ASSERT_TRUE(peer.ok());
  auto& ours = started();
  std::mutex mu;
  std::vector<int> ours_handled;
  auto sub = ours.reply_to(topic,
                           [&](const Request& r, Response& res) {
                             std::lock_guard<std::mutex> lock(mu);
                             ours_handled.push_back(r.data<int>());
                             res.set_data(r.data<int>());
                           },
                           {"g"});
  auto& client = started();
  // Half one at a time (each request a fresh race for the lock; in a burst
  // the synchronous foreign peer falls behind and our engine wins nearly
  // all), half as a burst.
  std::vector<std::future<Message>> fs;
  for (int i = 0; i < kRequests; ++i) {
    fs.push_back(client.request(topic, i));
    if (i < kRequests / 2) fs.back().wait();
  }
  for (int i = 0; i < kRequests; ++i) {
    auto m = fs[i].get();
    ASSERT_EQ(m.code(), 200) << i << " " << m.error_text();
    EXPECT_EQ(m.data<int>(), i);
  }
  std::map<int, int> count;
  for (int i : peer.handled_ints()) ++count[i];
  {
    std::lock_guard<std::mutex> lock(mu);
    for (int i : ours_handled) ++count[i];
  }
  ASSERT_EQ(count.size(), static_cast<std::size_t>(kRequests));
  for (auto& [i, n] : count) EXPECT_EQ(n, 1) << "request " << i;
  // A late second answer would show up as a stray response.
  EXPECT_EQ(client.stats().stray_responses, 0u);
  std::cout << "[ shared group ] foreign peer handled " << peer.handled() << ", ours "
            << ours_handled.size() << " of " << kRequests << "\n";
}

// (d) Ruby-style response envelopes: code 0 and null read as 200; 504 is a
// timeout; a fresh random sender on the response is ignored.
TEST_F(Wire, RubyStyleResponseCodes) {
  auto topic = unique_topic("ruby");
  ForeignReplier peer(target(), topic, "_default", [](const nlohmann::json& d, const std::string&) {
    std::string kind = d.get<std::string>();
    std::string code = kind == "zero" ? "0" : kind == "null" ? "null" : "504";
    std::string data = kind == "504" ? R"("Execution timed out")" : R"("ok")";
    return R"({"data":)" + data + R"(,"code":)" + code +
           R"(,"sender":"f3e2d1c0b9a8f3e2d1c0b9a8f3e2d1c0"})";
  });
  ASSERT_TRUE(peer.ok());
  auto& client = started();
  auto zero = client.request_sync(topic, "zero");
  EXPECT_EQ(zero.code(), 200);
  EXPECT_EQ(zero.data<std::string>(), "ok");
  EXPECT_TRUE(zero.ok());
  auto null = client.request_sync(topic, "null");
  EXPECT_EQ(null.code(), 200);
  EXPECT_TRUE(null.ok());
  auto t = client.request_sync(topic, "504");
  EXPECT_EQ(t.code(), 504);
  EXPECT_TRUE(t.timed_out());
  EXPECT_FALSE(t.ok());
}

TEST_F(Wire, MalformedPayloadsOnRequestAndSlotChannels) {
  auto topic = unique_topic("malformed");
  auto& g = started();
  Counter slot_hits;
  auto slot = g.slot(topic, [&](const Request&) { slot_hits.add(); });
  auto reply = g.reply_to(topic, [](const Request& r, Response& res) { res.set_data(r.data()); });
  auto before = g.stats().malformed_dropped;
  RawRedis raw(target());
  const std::vector<std::string> bad = {"garbage",
                                        "{",
                                        "[]",
                                        "42",
                                        R"({"code":"200"})",
                                        R"({"data":1,"code":1.5,"sender":"x"})",
                                        R"({"data":1,"sender":["x"]})",
                                        std::string("\0\1\2", 3)};
  for (auto& b : bad) {
    EXPECT_EQ(raw.publish("gilmour.request." + topic, b), 1);
    EXPECT_EQ(raw.publish("gilmour.slot." + topic, b), 1);
  }
  // A valid signal from the same connection arrives after all of them.
  raw.publish("gilmour.slot." + topic, R"({"data":1,"code":200,"sender":"barrier"})");
  ASSERT_TRUE(slot_hits.wait_for(1));
  EXPECT_EQ(g.stats().malformed_dropped - before, bad.size() * 2);
  auto m = started().request_sync(topic, "still here");
  EXPECT_EQ(m.code(), 200);
  EXPECT_EQ(m.data<std::string>(), "still here");
  EXPECT_EQ(slot_hits.value(), 1u);
}

TEST_F(Wire, PerRequestSchemeSubscribesAndUnsubscribesEachResponseChannel) {
  auto topic = unique_topic("per-request");
  auto& server = started();
  auto sub = server.reply_to(
      topic, [](const Request& r, Response& res) { res.set_data(r.data<int>() + 1); });
  auto o = test_options();
  o.response_scheme = ResponseScheme::kPerRequest;
  auto& client = started(o);
  auto cap = std::make_unique<RawSubscriber>(target(), "gilmour.request." + topic, false);
  std::vector<std::future<Message>> fs;
  for (int i = 0; i < 50; ++i) fs.push_back(client.request(topic, i));
  for (int i = 0; i < 50; ++i) {
    auto m = fs[i].get();
    ASSERT_EQ(m.code(), 200);
    EXPECT_EQ(m.data<int>(), i + 1);
  }
  auto got = cap->wait_for(50);
  ASSERT_EQ(got.size(), 50u);
  // Every response channel was unsubscribed once answered; a later request on
  // the same connection orders after those UNSUBSCRIBEs.
  EXPECT_EQ(client.request_sync(topic, 0).code(), 200);
  RawRedis raw(target());
  for (auto& [ch, payload] : got) {
    EXPECT_EQ(raw.numsub("gilmour.response." + sender_of(payload)), 0) << payload;
  }
}

TEST_F(Wire, HealthRegistrationAndPing) {
  auto o = test_options();
  o.health_check = true;
  auto& g = started(o);
  auto topic = unique_topic("listed");
  auto sub = g.slot(topic, [](const Request&) {});
  RawRedis raw(target());
  bool found = false;
  for (auto& [field, value] : raw.hash_get_all("gilmour.known_host.health")) {
    if (field == g.health_ident()) found = value == "true";
  }
  EXPECT_TRUE(found);
  // The health monitor pings gilmour.health.<ident> like any requester.
  std::string uuid = go_uuid();
  RawSubscriber reply(target(), "gilmour.response." + uuid, false);
  raw.publish("gilmour.health." + g.health_ident(),
              R"({"data":"ping","code":200,"sender":")" + uuid + R"("})");
  auto got = reply.wait_for(1);
  ASSERT_EQ(got.size(), 1u);
  auto j = nlohmann::json::parse(got[0].second);
  EXPECT_EQ(j["code"], 200);
  EXPECT_EQ(j["data"], nlohmann::json::array({"gilmour.slot." + topic}));
  EXPECT_EQ(raw.get(uuid + "exclusive"), "1");
  // Ruby's health bulletin: data "ping", code 0, a 32-hex sender.
  const std::string ruby = "0123456789abcdef0123456789abcdef";
  RawSubscriber ruby_reply(target(), "gilmour.response." + ruby, false);
  raw.publish("gilmour.health." + g.health_ident(),
              R"({"data":"ping","code":0,"sender":")" + ruby + R"("})");
  auto got_ruby = ruby_reply.wait_for(1);
  ASSERT_EQ(got_ruby.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(got_ruby[0].second)["code"], 200);
  g.stop();
  found = false;
  for (auto& [field, value] : raw.hash_get_all("gilmour.known_host.health")) {
    if (field == g.health_ident()) found = true;
  }
  EXPECT_FALSE(found) << "HDEL on a clean stop";
}

}  // namespace
}  // namespace gilmour::test
