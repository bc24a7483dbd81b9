#include "codec.hpp"

#include <algorithm>

namespace gilmour::detail {

std::string dump_json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void append_json_string(std::string& out, std::string_view s) {
  bool plain = std::all_of(s.begin(), s.end(),
                           [](char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; });
  if (!plain) {
    out += dump_json(nlohmann::json(std::string(s)));
    return;
  }
  out += '"';
  out += s;
  out += '"';
}

std::string encode_envelope_text(std::string_view data_text, int code, std::string_view sender,
                                 std::int64_t budget_ms, std::string_view trace_id) {
  std::string out;
  out.reserve(data_text.size() + sender.size() + trace_id.size() + 80);
  out += "{\"data\":";
  out += data_text;
  out += ",\"code\":";
  out += std::to_string(code);
  out += ",\"sender\":";
  append_json_string(out, sender);
  if (budget_ms >= 0) {
    out += ",\"budget_ms\":";
    out += std::to_string(budget_ms);
  }
  if (!trace_id.empty()) {
    out += ",\"trace_id\":";
    append_json_string(out, trace_id);
  }
  out += '}';
  return out;
}

std::string encode_envelope(const nlohmann::json& data, int code, std::string_view sender,
                            std::int64_t budget_ms, std::string_view trace_id) {
  return encode_envelope_text(dump_json(data), code, sender, budget_ms, trace_id);
}

bool nesting_within(std::string_view text, std::size_t limit) noexcept {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character, whatever it is
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > limit) return false;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return true;
}

std::optional<Message> decode_envelope(std::string_view payload, DecodeError* why,
                                       EnvelopeExtras* extras) {
  auto fail = [&](const char* reason) -> std::optional<Message> {
    if (why) why->reason = reason;
    return std::nullopt;
  };
  if (payload.size() > kMaxPayload) return fail("payload too large");
  // The envelope itself is one level.
  if (!nesting_within(payload, kMaxDepth + 1)) return fail("nested too deep");
  auto j = nlohmann::json::parse(payload.begin(), payload.end(), nullptr, false);
  if (j.is_discarded()) return fail("not JSON");
  if (!j.is_object()) return fail("not a JSON object");
  Message m;
  auto it = j.find("code");
  if (it != j.end() && !it->is_null()) {
    if (!it->is_number_integer()) return fail("code is not an integer");
    auto c = it->get<std::int64_t>();
    if (c < 0 || c > 999) return fail("code out of range");
    m.set_code(c == 0 ? code::kOk : static_cast<int>(c));
  }
  it = j.find("sender");
  if (it != j.end() && !it->is_null()) {
    if (!it->is_string()) return fail("sender is not a string");
    m.set_sender(it->get<std::string>());
  }
  it = j.find("data");
  if (it != j.end()) m.set_data(std::move(*it));
  if (extras) {
    it = j.find("budget_ms");
    if (it != j.end() && it->is_number_unsigned()) {
      extras->budget_ms = static_cast<std::int64_t>(
          std::min<std::uint64_t>(it->get<std::uint64_t>(), kMaxBudgetMs));
    }
    it = j.find("trace_id");
    if (it != j.end() && it->is_string() &&
        it->get_ref<const std::string&>().size() <= kMaxTraceId) {
      extras->trace_id = it->get<std::string>();
    }
  }
  return m;
}

}  // namespace gilmour::detail
