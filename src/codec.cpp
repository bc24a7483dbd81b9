#include "codec.hpp"

#include <algorithm>

#include "json_scan.hpp"

namespace gilmour::detail {

namespace {

// Serializes `j` onto the end of `out`: what json::dump does, without its
// intermediate string, so a large payload is written once instead of twice.
// nlohmann's serializer is in its detail namespace; the version is the one
// Debian packages (3.11), and the golden-bytes tests pin the output.
void append_json(std::string& out, const nlohmann::json& j) {
  nlohmann::detail::serializer<nlohmann::json> writer(
      nlohmann::detail::output_adapter<char, std::string>(out), ' ',
      nlohmann::json::error_handler_t::replace);
  writer.dump(j, false, false, 0);
}

// The envelope after its data: code, sender, then the optional fields.
void append_envelope_tail(std::string& out, int code, std::string_view sender,
                          std::int64_t budget_ms, std::string_view trace_id) {
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
}

// Room for everything but the data, which is sized by the caller.
constexpr std::size_t kEnvelopeOverhead = 80;

using scan::kNone;
using scan::skip_space;
using scan::skip_string;

// One past the value that starts at t[i] (a string, a bracketed value or a
// scalar), without validating it; kNone when the text ends first.
std::size_t skip_value(std::string_view t, std::size_t i) noexcept {
  if (i >= t.size()) return kNone;
  if (t[i] == '"') return skip_string(t, i, nullptr);
  std::size_t depth = 0;
  while (i < t.size()) {
    char c = t[i];
    if (c == '"') {
      i = skip_string(t, i, nullptr);
      if (i == kNone) return kNone;
      continue;
    }
    if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      if (depth == 0) return i;  // the end of the enclosing object
      if (--depth == 0) return i + 1;
    } else if (depth == 0 && (c == ',' || scan::space(c))) {
      return i;
    }
    ++i;
  }
  return depth == 0 ? i : kNone;
}

}  // namespace

std::string dump_json(const nlohmann::json& j) {
  std::string out;
  append_json(out, j);
  return out;
}

void append_json_string(std::string& out, std::string_view s) {
  bool plain = std::all_of(s.begin(), s.end(),
                           [](char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; });
  if (!plain) {
    append_json(out, nlohmann::json(std::string(s)));
    return;
  }
  out += '"';
  out += s;
  out += '"';
}

std::string encode_envelope_text(std::string_view data_text, int code, std::string_view sender,
                                 std::int64_t budget_ms, std::string_view trace_id) {
  std::string out;
  out.reserve(data_text.size() + sender.size() + trace_id.size() + kEnvelopeOverhead);
  out += "{\"data\":";
  out += data_text;
  append_envelope_tail(out, code, sender, budget_ms, trace_id);
  return out;
}

std::string encode_envelope(const nlohmann::json& data, int code, std::string_view sender,
                            std::int64_t budget_ms, std::string_view trace_id) {
  // A string, the usual large payload, is sized exactly (plus its quotes) so
  // that the buffer never doubles; other values grow as they are written.
  const std::size_t data_size =
      data.is_string() ? data.get_ref<const std::string&>().size() + 2 : 0;
  std::string out;
  out.reserve(data_size + sender.size() + trace_id.size() + kEnvelopeOverhead);
  out += "{\"data\":";
  append_json(out, data);
  append_envelope_tail(out, code, sender, budget_ms, trace_id);
  return out;
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

std::optional<PlainData> split_plain_data(std::string_view t, std::size_t min_size) {
  if (t.size() < min_size) return std::nullopt;
  std::size_t i = skip_space(t, 0);
  if (i >= t.size() || t[i] != '{') return std::nullopt;
  PlainData out;
  out.rest = "{";
  bool have_data = false;
  i = skip_space(t, i + 1);
  if (i < t.size() && t[i] == '}') return std::nullopt;  // {}: no data
  while (true) {
    // A key without escapes, so that comparing its bytes is comparing it.
    if (i >= t.size() || t[i] != '"') return std::nullopt;
    const std::size_t key_at = i;
    bool plain_key = false;
    const std::size_t key_end = skip_string(t, i, &plain_key);
    if (key_end == kNone || !plain_key) return std::nullopt;
    i = skip_space(t, key_end);
    if (i >= t.size() || t[i] != ':') return std::nullopt;
    const std::size_t value_at = skip_space(t, i + 1);
    if (t.substr(key_at, key_end - key_at) == "\"data\"") {
      bool plain = false;
      if (have_data || value_at >= t.size() || t[value_at] != '"') return std::nullopt;
      i = skip_string(t, value_at, &plain);
      if (i == kNone || !plain) return std::nullopt;
      out.text = t.substr(value_at + 1, i - value_at - 2);
      have_data = true;
    } else {
      i = skip_value(t, value_at);
      if (i == kNone) return std::nullopt;
      if (out.rest.size() > 1) out.rest += ',';
      out.rest.append(t.substr(key_at, i - key_at));
    }
    i = skip_space(t, i);
    if (i >= t.size()) return std::nullopt;
    if (t[i] == '}') break;
    if (t[i] != ',') return std::nullopt;
    i = skip_space(t, i + 1);
  }
  if (!have_data || skip_space(t, i + 1) != t.size()) return std::nullopt;
  out.rest += '}';
  return out;
}

std::optional<Message> decode_envelope(std::string_view payload, DecodeError* why,
                                       EnvelopeExtras* extras) {
  if (payload.size() > kMaxPayload) {
    if (why) why->reason = "payload too large";
    return std::nullopt;
  }
  // The usual envelope is read in one pass; the parser takes everything else.
  if (auto m = decode_common_envelope(payload, extras)) return m;
  return parse_envelope(payload, why, extras);
}

std::optional<Message> parse_envelope(std::string_view payload, DecodeError* why,
                                      EnvelopeExtras* extras) {
  auto fail = [&](const char* reason) -> std::optional<Message> {
    if (why) why->reason = reason;
    return std::nullopt;
  };
  // The envelope itself is one level.
  if (!nesting_within(payload, kMaxDepth + 1)) return fail("nested too deep");
  auto plain = split_plain_data(payload);
  const std::string_view text = plain ? std::string_view(plain->rest) : payload;
  auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) return fail("not JSON");
  if (!j.is_object()) return fail("not a JSON object");
  if (plain) j["data"] = std::string(plain->text);  // the one copy of a large string
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
