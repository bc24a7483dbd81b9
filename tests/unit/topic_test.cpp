#include "topic.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "gilmour/error.hpp"

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

/// The message validate_topic() throws for `topic`, or "" when it accepts it.
std::string rejection(std::string_view topic, bool allow_wildcard) {
  try {
    validate_topic(topic, "test()", allow_wildcard);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

TEST(TopicValidation, AcceptsOrdinaryTopics) {
  for (std::string_view t : {"echo", "item.buy.1", "a-b_c:d/e", "gilmour.health.host-pid-1-uuid-x",
                             "gilmour.error", "caf\xc3\xa9", "x", "a\\b", "[abc]?"}) {
    EXPECT_EQ(rejection(t, false), "") << t;
    EXPECT_EQ(rejection(t, true), "") << t;
  }
  // Wildcards only where allowed (slots, gilmour listen's gilmour.* slots).
  EXPECT_EQ(rejection("item.*", true), "");
  EXPECT_EQ(rejection("gilmour.*", true), "");
  EXPECT_EQ(rejection("gilmour.response.*", true), "");
}

TEST(TopicValidation, RejectsEmptyAndWildcard) {
  EXPECT_EQ(rejection("", true), "gilmour: test(): empty topic");
  EXPECT_EQ(rejection("", false), "gilmour: test(): empty topic");
  EXPECT_EQ(rejection("a.*", false), "gilmour: test(): topic \"a.*\" may not contain '*'");
}

TEST(TopicValidation, RejectsWhitespaceControlCharactersAndNul) {
  using namespace std::string_literals;
  for (const std::string& t : {"a b"s, " a"s, "a "s, "a\tb"s, "a\nb"s, "a\rb"s, "a\vb"s, "a\fb"s,
                               "a\0b"s, "\0"s, "a\x01"s, "a\x1b[31m"s, "a\x1f"s, "a\x7f"s}) {
    for (bool wildcard : {false, true}) {
      auto why = rejection(t, wildcard);
      EXPECT_NE(why, "") << "accepted " << ::testing::PrintToString(t);
      EXPECT_EQ(why.rfind("gilmour: test(): topic \"", 0), 0u) << why;
      EXPECT_NE(why.find("may not contain whitespace or control characters"), std::string::npos)
          << why;
    }
  }
}

TEST(TopicValidation, MessageNamesTheCharacterAndEscapesIt) {
  EXPECT_EQ(rejection("a b", true),
            "gilmour: test(): topic \"a b\" contains a space at offset 1 (topics may not contain "
            "whitespace or control characters)");
  auto nl = rejection("log\nINFO fake", true);
  EXPECT_NE(nl.find("\"log\\nINFO fake\" contains whitespace at offset 3"), std::string::npos)
      << nl;
  EXPECT_EQ(nl.find('\n'), std::string::npos) << "the raw newline is not echoed";
  using namespace std::string_literals;
  auto nul = rejection("a\0b"s, true);
  EXPECT_NE(nul.find("\"a\\x00b\" contains a NUL byte at offset 1"), std::string::npos) << nul;
  auto esc = rejection("a\x1b", true);
  EXPECT_NE(esc.find("\"a\\x1b\" contains a control character at offset 1"), std::string::npos)
      << esc;
  auto del = rejection("a\x7f", true);
  EXPECT_NE(del.find("\\x7f"), std::string::npos) << del;
  // Long topics are cut in the message.
  auto longer = rejection(std::string(500, 'x') + " ", true);
  EXPECT_LT(longer.size(), 400u);
}

}  // namespace
}  // namespace gilmour::detail
