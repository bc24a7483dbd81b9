// The envelope codec: the one place wire payloads are parsed and written.
#pragma once

#include <cstdint>
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

/// Our optional envelope fields (docs/protocol.md, "Deadlines and trace
/// ids"): Go and Ruby neither send nor read them.
struct EnvelopeExtras {
  /// `budget_ms`: how long the requester still waits, in ms, as of
  /// publishing; -1 = absent.
  std::int64_t budget_ms = -1;
  /// `trace_id`: empty = absent.
  std::string trace_id;
};

/// Largest `budget_ms` taken from the wire (larger ones are clamped to it,
/// ten years, so that adding it to a clock cannot overflow).
inline constexpr std::uint64_t kMaxBudgetMs = std::uint64_t{10} * 365 * 24 * 3600 * 1000;

/// Longest `trace_id` accepted from the wire (a longer one is ignored).
inline constexpr std::size_t kMaxTraceId = 128;

/// A payload whose `data` is a large string that JSON writes as is (printable
/// ASCII: no escape, nothing to validate): the string's bytes, and the
/// envelope's other members as a JSON object of their own.
struct PlainData {
  std::string_view text;  ///< the string's bytes, without quotes (in the payload)
  std::string rest;       ///< `{...}`: every member but data, as written
};

/// Payloads at least this large whose data is a plain string are decoded
/// without handing the string to the JSON parser, which holds three copies of
/// a string while it reads one (its token text, its token buffer, the value).
inline constexpr std::size_t kPlainDataMin = std::size_t{64} * 1024;

/// Splits `payload` as PlainData when it is a JSON object of at least
/// `min_size` bytes whose only "data" member is a plain string; nullopt for
/// anything else, which the full parser then decodes. The members other than
/// data are not validated here: parsing `rest` does that. Exposed for the
/// codec tests and the fuzz target, which compares both decodings.
std::optional<PlainData> split_plain_data(std::string_view payload,
                                          std::size_t min_size = kPlainDataMin);

/// Why a payload was rejected, for logs.
struct DecodeError {
  std::string reason;
};

/// Parses `{"data":...,"code":...,"sender":"..."}` without throwing. A missing,
/// null or 0 code reads as 200; unknown fields are ignored; `sender` must be a
/// string when present. Anything else is an error. With `extras`, also reads
/// `budget_ms` (a non-negative integer) and `trace_id` (a string of at most
/// kMaxTraceId bytes); a value of another type or range is ignored, as an
/// unknown field would be (the message is still served).
std::optional<Message> decode_envelope(std::string_view payload, DecodeError* why = nullptr,
                                       EnvelopeExtras* extras = nullptr);

/// decode_envelope() without its fast path: always nlohmann's parser (the
/// size bound is the caller's). Exposed for the fuzz target.
std::optional<Message> parse_envelope(std::string_view payload, DecodeError* why = nullptr,
                                      EnvelopeExtras* extras = nullptr);

/// decode_envelope()'s fast path: a payload of the usual shape (only the
/// envelope's own members, each once; strings of printable ASCII without
/// escapes; integers of at most 18 digits; no doubles) decoded in one pass,
/// building the data value directly. nullopt for anything else, valid or
/// not, which the full parser then decides. Exposed for the codec tests and
/// the fuzz target, which compares it with the parser on every input.
std::optional<Message> decode_common_envelope(std::string_view payload,
                                              EnvelopeExtras* extras = nullptr);

/// Writes the envelope, keys in the order data, code, sender, then
/// `budget_ms` when >= 0 and `trace_id` when not empty.
std::string encode_envelope(const nlohmann::json& data, int code, std::string_view sender,
                            std::int64_t budget_ms = -1, std::string_view trace_id = {});
/// The same, with `data_text` already JSON text (written as is, so a value
/// dumped with its keys in a chosen order keeps that order).
std::string encode_envelope_text(std::string_view data_text, int code, std::string_view sender,
                                 std::int64_t budget_ms = -1, std::string_view trace_id = {});

/// Appends `s` as a JSON string (quoted, escaped; invalid UTF-8 replaced).
/// Plain printable ASCII, as our own ids, is copied without a JSON value.
void append_json_string(std::string& out, std::string_view s);

/// JSON text of `j`, replacing invalid UTF-8 instead of throwing.
std::string dump_json(const nlohmann::json& j);

}  // namespace gilmour::detail
