// EngineOptions::max_payload on every backend: too big to send is an
// InvalidArgument, too big a response becomes a 500, too big a message
// received is dropped before decoding and counted, and the engine serves on.
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "support/backend_test.hpp"

namespace gilmour::test {
namespace {

using PayloadLimit = BackendTest;
constexpr std::size_t kLimit = 64 * 1024;

TEST_P(PayloadLimit, OutgoingOverTheLimitThrows) {
  auto& g = started(test_options().set_max_payload(kLimit));
  const std::string big(kLimit, 'x');  // the envelope around it is bigger still
  EXPECT_THROW(g.signal(unique_topic("big"), big), InvalidArgument);
  EXPECT_THROW((void)g.request(unique_topic("big"), big), InvalidArgument);
  EXPECT_EQ(g.stats().signals_sent, 0u);
  EXPECT_EQ(g.stats().requests_sent, 0u);
}

TEST_P(PayloadLimit, ResponseOverTheLimitIsA500) {
  auto& server = started(test_options().set_max_payload(kLimit));
  auto& client = started();
  auto topic = unique_topic("bigreply");
  subs_.push_back(server.reply_to(
      topic, [](const Request&, Response& res) { res.set_data(std::string(kLimit, 'y')); }));
  auto m = client.request_sync(topic, 0);
  EXPECT_EQ(m.code(), 500);
  EXPECT_NE(m.error_text().find("exceeds max_payload"), std::string::npos) << m.error_text();
}

TEST_P(PayloadLimit, IncomingOverTheLimitIsDroppedAndCounted) {
  auto& server = started(test_options().set_max_payload(kLimit));
  auto topic = unique_topic("bigin");
  Counter handled;
  subs_.push_back(server.reply_to(topic, [&](const Request&, Response& res) {
    handled.add();
    res.set_data("ok");
  }));
  auto& client = started();  // default limit: it may send this much
  auto dropped = client.request(topic, std::string(kLimit, 'z'), {scaled(500ms)});
  EXPECT_EQ(dropped.get().code(), 499);
  EXPECT_TRUE(eventually([&] { return server.stats().oversized_dropped > 0; }, 5s));
  EXPECT_EQ(server.stats().oversized_dropped, 1u);
  EXPECT_EQ(server.stats().malformed_dropped, 0u);
  // Still serving.
  EXPECT_EQ(client.request_sync(topic, 0).data<std::string>(), "ok");
  EXPECT_EQ(handled.value(), 1u);
}

TEST_P(PayloadLimit, LimitIsValidated) {
  expect_invalid_engine_options(*world_, {test_options().set_max_payload(0),
                                          test_options().set_max_payload(std::size_t{1} << 40)});
}

INSTANTIATE_TEST_SUITE_P(Backends, PayloadLimit, ::testing::ValuesIn(backend_kinds()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace gilmour::test
