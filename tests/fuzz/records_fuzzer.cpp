// Fuzz target for what the tools and the bulletin read from other processes
// and operators: error records (gilmour.error / gilmour.errorqueue, read by
// `gilmour errors`), stats replies (gilmour.stats.<ident>, read by `gilmour
// stats`) and Redis URLs (every --redis). The first byte picks the parser.
// Built like envelope_fuzzer.cpp: a libFuzzer target with clang, otherwise
// linked with replay_main.cpp and run over tests/fuzz/corpus/records.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "codec.hpp"
#include "gilmour/backends/redis.hpp"
#include "gilmour/error.hpp"
#include "gilmour/error_record.hpp"
#include "gilmour/stats.hpp"

namespace {

/// Parses JSON as the engine does: refuses too deep nesting first.
nlohmann::json parse_wire_json(std::string_view text) {
  if (!gilmour::detail::nesting_within(text, gilmour::detail::kMaxDepth)) return nullptr;
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

void error_record(std::string_view text) {
  auto j = parse_wire_json(text);
  gilmour::ErrorRecord r;
  if (!gilmour::ErrorRecord::from_json(j, r)) return;
  // A record that parsed prints and re-parses to the same fields.
  auto again_json = parse_wire_json(r.dump());
  gilmour::ErrorRecord again;
  if (!gilmour::ErrorRecord::from_json(again_json, again)) __builtin_trap();
  if (again.code != r.code || again.topic != r.topic || again.sender != r.sender) __builtin_trap();
}

void stats_reply(std::string_view text) {
  auto j = parse_wire_json(text);
  try {
    auto s = gilmour::stats_from_json(j);
    (void)gilmour::to_prometheus(s, "fuzz");
    // What was read prints back to the same counters.
    if (gilmour::stats_from_json(gilmour::to_json(s)).requests_sent != s.requests_sent)
      __builtin_trap();
  } catch (const nlohmann::json::exception&) {
  }
}

void redis_url(std::string_view text) {
  (void)gilmour::redis::redact_url(text);
  try {
    auto o = gilmour::redis::Options::from_url(text);
    (void)o.describe();
  } catch (const gilmour::InvalidArgument&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      error_record(rest);
      break;
    case 1:
      stats_reply(rest);
      break;
    default:
      redis_url(rest);
      break;
  }
  return 0;
}
