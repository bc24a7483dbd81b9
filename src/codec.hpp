// The envelope codec: the one place wire payloads are parsed and written.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "gilmour/message.hpp"

namespace gilmour::detail {

/// Largest payload the engine accepts (bigger ones are dropped as malformed).
inline constexpr std::size_t kMaxPayload = std::size_t{64} * 1024 * 1024;

/// Why a payload was rejected, for logs.
struct DecodeError {
  std::string reason;
};

/// Parses `{"data":...,"code":...,"sender":"..."}` without throwing. A missing,
/// null or 0 code reads as 200; unknown fields are ignored; `sender` must be a
/// string when present. Anything else is an error.
std::optional<Message> decode_envelope(std::string_view payload, DecodeError* why = nullptr);

/// Writes the envelope, keys in the order data, code, sender.
std::string encode_envelope(const nlohmann::json& data, int code, std::string_view sender);

/// JSON text of `j`, replacing invalid UTF-8 instead of throwing.
std::string dump_json(const nlohmann::json& j);

}  // namespace gilmour::detail
