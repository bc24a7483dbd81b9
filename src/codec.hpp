// The envelope codec: the one place wire payloads are parsed and written.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "gilmour/message.hpp"

namespace gilmour::detail {

/// Largest payload the decoder accepts: the ceiling of EngineOptions::max_payload
/// (the engine drops bigger ones, counted, before decoding).
inline constexpr std::size_t kMaxPayload = std::size_t{64} * 1024 * 1024;

/// Deepest nesting of arrays and objects the engine accepts in a payload.
/// Deeper ones are dropped as malformed before they are parsed: nlohmann's
/// parser takes any depth, but dumping, copying or comparing a value recurses
/// once per level, so a ~200 kB payload nested 100k deep would overflow a
/// worker's stack the first time it is written into an error record.
inline constexpr std::size_t kMaxDepth = 256;

/// True when no array or object in the JSON text `text` is nested deeper than
/// `limit` (a linear scan that ignores brackets inside strings; it does not
/// validate the text).
bool nesting_within(std::string_view text, std::size_t limit) noexcept;

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
/// The same, with `data_text` already JSON text (written as is, so a value
/// dumped with its keys in a chosen order keeps that order).
std::string encode_envelope_text(std::string_view data_text, int code, std::string_view sender);

/// JSON text of `j`, replacing invalid UTF-8 instead of throwing.
std::string dump_json(const nlohmann::json& j);

}  // namespace gilmour::detail
