// Least privilege on a shared Redis: services run as Redis 6+ ACL users
// holding exactly the permissions docs/security.md lists, and a command the
// user may not run fails that one operation with the server's reason while
// the engine keeps serving.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "integration/redis_fixture.hpp"

namespace gilmour::test {
namespace {

using Acl = RedisTest;

/// `ACL SETUSER name on >password rules...` on `s`, as the default user.
void set_user(const RedisServer& s, const std::string& name, const std::string& password,
              const std::vector<std::string>& rules) {
  RawRedis raw(RawTarget{s.host(), s.port(), "", ""});
  std::vector<std::string> cmd{"ACL", "SETUSER", name, "reset", "on", ">" + password};
  cmd.insert(cmd.end(), rules.begin(), rules.end());
  auto r = raw.command(cmd);
  ASSERT_TRUE(r && r->type == REDIS_REPLY_STATUS) << (r ? r->str : "no reply");
}

/// Options of `user` on `s`, with the per-request response scheme (the one
/// that works with channel permissions; see docs/security.md).
redis::Options as_user(const RedisServer& s, const std::string& user, const std::string& pw) {
  auto o = redis::Options::from_url("redis://" + user + ":" + pw +
                                    "@127.0.0.1:" + std::to_string(s.port()));
  o.connect_timeout = scaled(2s);
  o.command_timeout = scaled(2s);
  return o;
}

EngineOptions per_request() {
  auto o = test_options();
  o.response_scheme = ResponseScheme::kPerRequest;
  return o;
}

TEST_F(Acl, ServicesRunWithTheDocumentedPermissionsOnly) {
  auto s = own_server();
  ASSERT_TRUE(s);
  auto topic = unique_topic("acl.orders");
  const std::string group = "orders-workers";
  // The replier: docs/security.md, "A service that replies".
  set_user(*s, "orders", "orders-pw",
           {"resetchannels",
            "resetkeys",
            "-@all",
            "+ping",
            "+subscribe",
            "+unsubscribe",
            "+publish",
            "+set",
            "+hset",
            "+hdel",
            "+lpush",
            "+ltrim",
            "&gilmour.request." + topic,
            "&gilmour.response.*",
            "&gilmour.health.*",
            "&gilmour.stats.*",
            "&gilmour.error",
            "~*" + group,
            "~gilmour.known_host.health",
            "~gilmour.errorqueue"});
  // The caller: docs/security.md, "A service that calls".
  set_user(*s, "web", "web-pw",
           {"resetchannels", "resetkeys", "-@all", "+ping", "+subscribe", "+unsubscribe",
            "+publish", "&gilmour.request." + topic, "&gilmour.response.*"});

  auto ro = per_request().set_health_check(true);
  auto& orders = started_with(as_user(*s, "orders", "orders-pw"), ro);
  auto sub = orders.reply_to(
      topic,
      [](const Request& r, Response& res) {
        if (r.data().is_string()) throw std::runtime_error("bad order");
        res.set_data(r.data()["n"].get<int>() * 2);
      },
      HandlerOptions{}.set_group(group));
  auto& web = started_with(as_user(*s, "web", "web-pw"), per_request());

  auto ok = web.request_sync(topic, {{"n", 21}});
  ASSERT_EQ(ok.code(), 200) << ok.error_text();
  EXPECT_EQ(ok.data().get<int>(), 42);
  // A failing handler: answered 500 and its error record published (PUBLISH
  // gilmour.error is in the replier's permissions).
  auto failed = web.request_sync(topic, "not an order");
  EXPECT_EQ(failed.code(), 500);
  // Health registration went through HSET on the permitted key.
  RawRedis raw(RawTarget{s->host(), s->port(), "", ""});
  auto known = raw.command({"HLEN", "gilmour.known_host.health"});
  ASSERT_TRUE(known && known->type == REDIS_REPLY_INTEGER);
  EXPECT_EQ(known->integer, 1);
  EXPECT_EQ(orders.stats().publish_failures, 0u);
  EXPECT_EQ(web.stats().publish_failures, 0u);
}

TEST_F(Acl, AForbiddenTopicFailsThatRequestAndTheEngineKeepsServing) {
  auto s = own_server();
  ASSERT_TRUE(s);
  auto allowed = unique_topic("acl.allowed");
  auto forbidden = unique_topic("acl.forbidden");
  set_user(*s, "web", "web-pw",
           {"resetchannels", "resetkeys", "-@all", "+ping", "+subscribe", "+unsubscribe",
            "+publish", "&gilmour.request." + allowed, "&gilmour.response.*"});
  auto& server = started(test_options(), s.get());
  auto sub = server.reply_to(allowed, [](const Request&, Response& res) { res.set_data("yes"); });
  auto& web = started_with(as_user(*s, "web", "web-pw"), per_request());

  auto denied = web.request_sync(forbidden, 1, RequestOptions{}.set_timeout(scaled(30s)));
  EXPECT_EQ(denied.code(), code::kUnavailable);
  EXPECT_NE(denied.error_text().find("NOPERM"), std::string::npos) << denied.error_text();
  EXPECT_EQ(denied.error_text().find("web-pw"), std::string::npos) << denied.error_text();
  // The connection survived the refusal: the next request is answered.
  auto m = web.request_sync(allowed, 1);
  EXPECT_EQ(m.code(), 200) << m.error_text();
  EXPECT_EQ(web.stats().reconnects, 0u);
}

TEST_F(Acl, EnginePatternNeedsItsLiteralPatternAndSaysSo) {
  auto s = own_server();
  ASSERT_TRUE(s);
  set_user(*s, "web", "web-pw",
           {"resetchannels", "resetkeys", "-@all", "+ping", "+subscribe", "+psubscribe",
            "+unsubscribe", "+punsubscribe", "+publish", "&gilmour.response.*"});
  // PSUBSCRIBE patterns are compared literally with the ACL's: the engine's
  // own gilmour.response.<id>.* is not covered by &gilmour.response.*.
  Gilmour g(redis::make_backend(as_user(*s, "web", "web-pw")), test_options());
  try {
    g.start();
    FAIL() << "start() succeeded without permission for the response pattern";
  } catch (const ConnectionError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("NOPERM"), std::string::npos) << what;
    EXPECT_EQ(what.find("web-pw"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace gilmour::test
