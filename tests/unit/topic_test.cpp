#include "topic.hpp"

#include <gtest/gtest.h>

#include <set>

namespace gilmour::detail {
namespace {

TEST(Topic, ChannelNames) {
  EXPECT_EQ(request_channel("echo"), "gilmour.request.echo");
  EXPECT_EQ(slot_channel("item.buy.1"), "gilmour.slot.item.buy.1");
  // Go's rule: a topic already under gilmour. is the channel itself.
  EXPECT_EQ(request_channel("gilmour.health.host-pid-1"), "gilmour.health.host-pid-1");
  EXPECT_EQ(slot_channel("gilmour.error"), "gilmour.error");
}

TEST(Topic, GlobMatchesLikeRedis) {
  EXPECT_TRUE(glob_match("item.*", "item.x.buy"));
  EXPECT_TRUE(glob_match("item.*.buy", "item.x.buy"));
  EXPECT_FALSE(glob_match("item.*.buy", "item.x.sell"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("a?c", "abc"));
  EXPECT_FALSE(glob_match("a?c", "ac"));
  EXPECT_TRUE(glob_match("h[ae]llo", "hallo"));
  EXPECT_FALSE(glob_match("h[ae]llo", "hillo"));
  EXPECT_TRUE(glob_match("h[^e]llo", "hallo"));
  EXPECT_FALSE(glob_match("h[^e]llo", "hello"));
  EXPECT_TRUE(glob_match("h[a-c]llo", "hbllo"));
  EXPECT_TRUE(glob_match("a\\*b", "a*b"));
  EXPECT_FALSE(glob_match("a\\*b", "axb"));
  EXPECT_TRUE(glob_match("**a", "bba"));
  EXPECT_FALSE(glob_match("abc", "abcd"));
  EXPECT_TRUE(glob_match("gilmour.response.e1.*", "gilmour.response.e1.42"));
}

TEST(Topic, UuidsAreV4AndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto u = make_uuid();
    ASSERT_EQ(u.size(), 36u);
    EXPECT_EQ(u[14], '4');
    EXPECT_TRUE(seen.insert(u).second);
  }
  auto ident = make_process_ident();
  EXPECT_NE(ident.find("-pid-"), std::string::npos);
  EXPECT_NE(ident.find("-uuid-"), std::string::npos);
}

}  // namespace
}  // namespace gilmour::detail
