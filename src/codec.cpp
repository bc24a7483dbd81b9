#include "codec.hpp"

namespace gilmour::detail {

std::string dump_json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string encode_envelope_text(std::string_view data_text, int code, std::string_view sender) {
  std::string out;
  std::string s = dump_json(nlohmann::json(std::string(sender)));
  out.reserve(data_text.size() + s.size() + 40);
  out += "{\"data\":";
  out += data_text;
  out += ",\"code\":";
  out += std::to_string(code);
  out += ",\"sender\":";
  out += s;
  out += '}';
  return out;
}

std::string encode_envelope(const nlohmann::json& data, int code, std::string_view sender) {
  return encode_envelope_text(dump_json(data), code, sender);
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

std::optional<Message> decode_envelope(std::string_view payload, DecodeError* why) {
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
  return m;
}

}  // namespace gilmour::detail
