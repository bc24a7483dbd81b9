// Fuzz target for the envelope decoder (the engine's untrusted input) and
// the glob matcher. Built as a libFuzzer target with clang
// (-DGILMOUR_BUILD_FUZZERS=ON), and otherwise linked with replay_main.cpp as
// a replay driver that ctest runs over the corpus in tests/fuzz/corpus/envelope.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "codec.hpp"
#include "gilmour/error_record.hpp"
#include "topic.hpp"

namespace {

// Equal values of the same JSON types throughout (1 and 1u compare equal).
bool same_types(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.type() != b.type() || a.size() != b.size()) return false;
  if (a.is_object()) {
    for (auto it = a.begin(); it != a.end(); ++it) {
      auto other = b.find(it.key());
      if (other == b.end() || !same_types(*it, *other)) return false;
    }
  } else if (a.is_array()) {
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!same_types(a[i], b[i])) return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  gilmour::detail::EnvelopeExtras extras;
  auto m = gilmour::detail::decode_envelope(input, nullptr, &extras);
  if (m) {
    // Whatever decodes re-encodes, with the extension fields it carried
    // (deadline budget, trace id), to something that decodes the same.
    auto reencoded = gilmour::detail::encode_envelope(m->data(), m->code(), m->sender(),
                                                      extras.budget_ms, extras.trace_id);
    gilmour::detail::EnvelopeExtras extras_again;
    auto again = gilmour::detail::decode_envelope(reencoded, nullptr, &extras_again);
    if (!again) __builtin_trap();
    if (again->code() != m->code() || again->sender() != m->sender()) __builtin_trap();
    if (extras_again.budget_ms != extras.budget_ms || extras_again.trace_id != extras.trace_id)
      __builtin_trap();
    // What a failing handler leads to: typed access, then an error record
    // dumped and enveloped (this path once recursed without bound).
    gilmour::ErrorRecord r;
    try {
      r.backtrace = m->data().get<std::string>();
    } catch (const std::exception& e) {
      r.backtrace = e.what();
    }
    r.request_data = m->to_json();
    r.sender = m->sender();
    auto wire = gilmour::detail::encode_envelope_text(r.dump(), 500, "fuzz");
    if (!gilmour::detail::decode_envelope(wire)) __builtin_trap();
  }
  // The large-string fast path must decode exactly what the parser does:
  // compare both on every input it accepts (the size threshold waived).
  if (auto plain = gilmour::detail::split_plain_data(input, 0);
      plain && gilmour::detail::nesting_within(input, gilmour::detail::kMaxDepth + 1)) {
    auto whole = nlohmann::json::parse(input.begin(), input.end(), nullptr, false);
    auto rest = nlohmann::json::parse(plain->rest, nullptr, false);
    if (whole.is_discarded() != rest.is_discarded()) __builtin_trap();
    if (!whole.is_discarded()) {
      rest["data"] = std::string(plain->text);
      if (whole != rest) __builtin_trap();
    }
  }
  // The one-pass decoder must decode exactly what the parser does, types of
  // numbers included, on every input it accepts.
  gilmour::detail::EnvelopeExtras fast_extras;
  if (auto fast = gilmour::detail::decode_common_envelope(input, &fast_extras)) {
    gilmour::detail::EnvelopeExtras parsed_extras;
    auto parsed = gilmour::detail::parse_envelope(input, nullptr, &parsed_extras);
    if (!parsed || !(*parsed == *fast) || !same_types(parsed->data(), fast->data()))
      __builtin_trap();
    if (parsed_extras.budget_ms != fast_extras.budget_ms ||
        parsed_extras.trace_id != fast_extras.trace_id)
      __builtin_trap();
  }
  // Split the input into a pattern and a text for the glob matcher.
  auto nl = input.find('\n');
  if (nl != std::string_view::npos) {
    (void)gilmour::detail::glob_match(input.substr(0, nl), input.substr(nl + 1));
  }
  return 0;
}
