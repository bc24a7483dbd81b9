#include <gtest/gtest.h>

#include <gilmour/stats.hpp>

namespace gilmour {
namespace {

// Stats is only uint64_t counters: this is how many fields it has, so a field
// added to Stats but not to the table in src/stats.cpp fails here.
constexpr std::size_t kFieldCount = sizeof(Stats) / sizeof(std::uint64_t);

TEST(Stats, JsonRoundTripNamesEveryField) {
  Stats s;
  s.requests_sent = 3;
  s.slow_inline = 7;
  auto j = to_json(s);
  EXPECT_EQ(j.at("requests_sent"), 3);
  EXPECT_EQ(j.at("slow_inline"), 7);
  EXPECT_EQ(j.size(), kFieldCount);  // a field added to Stats must be added to the table
  auto back = stats_from_json(j);
  EXPECT_EQ(back.requests_sent, 3u);
  EXPECT_EQ(back.slow_inline, 7u);
  EXPECT_EQ(stats_from_json(nlohmann::json("junk")).requests_sent, 0u);
}

TEST(Stats, PrometheusTextFormat) {
  Stats s;
  s.responses_sent = 42;
  auto text = to_prometheus(s, "host-pid-1-uuid-\"x\"\n");
  EXPECT_NE(text.find("# HELP gilmour_responses_sent_total Responses published by this engine.\n"
                      "# TYPE gilmour_responses_sent_total counter\n"
                      "gilmour_responses_sent_total{ident=\"host-pid-1-uuid-\\\"x\\\"\\n\"} 42\n"),
            std::string::npos)
      << text;
  auto bare = to_prometheus(s);
  EXPECT_NE(bare.find("\ngilmour_responses_sent_total 42\n"), std::string::npos) << bare;
  // Every sample line is a counter with HELP and TYPE.
  std::size_t samples = 0, types = 0;
  for (std::size_t at = 0; (at = bare.find('\n', at)) != std::string::npos; ++at) {
    auto next = bare.substr(at + 1, 7);
    samples += next == "gilmour";
    types += next == "# TYPE ";
  }
  EXPECT_EQ(samples, kFieldCount);
  EXPECT_EQ(types, kFieldCount);
}

}  // namespace
}  // namespace gilmour
