// Topic and channel naming, glob matching, ids.
#pragma once

#include <string>
#include <string_view>

namespace gilmour::detail {

inline constexpr std::string_view kRequestPrefix = "gilmour.request.";
inline constexpr std::string_view kSlotPrefix = "gilmour.slot.";
inline constexpr std::string_view kResponsePrefix = "gilmour.response.";
inline constexpr std::string_view kHealthPrefix = "gilmour.health.";
/// Our extension: `gilmour.stats.<ident>` answers the process's Stats.
inline constexpr std::string_view kStatsPrefix = "gilmour.stats.";
inline constexpr std::string_view kHealthHash = "gilmour.known_host.health";
inline constexpr std::string_view kDefaultGroup = "_default";
inline constexpr std::string_view kHealthGroup = "exclusive";

/// `gilmour.request.T`, or T itself when it already starts with `gilmour.`.
std::string request_channel(std::string_view topic);
/// `gilmour.slot.T`, or T itself when it already starts with `gilmour.`.
std::string slot_channel(std::string_view topic);
bool has_wildcard(std::string_view topic) noexcept;
/// The one check of a topic handed to the API (slot, reply_to, signal,
/// request, listener_count, compose::request, HealthBulletin). Throws
/// gilmour::InvalidArgument, with `what` ("slot()") in the message, when the
/// topic is empty, holds whitespace, a control character (< 0x20, 0x7f) or
/// NUL, or holds `*` and `allow_wildcard` is false. Other bytes (UTF-8
/// included) are accepted, and so is a topic that starts with `gilmour.`.
void validate_topic(std::string_view topic, const char* what, bool allow_wildcard);
/// Redis glob matching (`*`, `?`, `[a-z]`, `[^x]`, `\` escapes), as PSUBSCRIBE.
bool glob_match(std::string_view pattern, std::string_view text) noexcept;
/// A random RFC 4122 version 4 UUID.
std::string make_uuid();
/// `<hostname>-pid-<pid>-uuid-<uuid>`.
std::string make_process_ident();

}  // namespace gilmour::detail
