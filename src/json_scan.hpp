// Byte-level JSON scanning shared by the codec's fast paths: whitespace and
// strings, without building values. Nothing here validates a whole document.
#pragma once

#include <cstddef>
#include <string_view>

namespace gilmour::detail::scan {

inline constexpr std::size_t kNone = std::string_view::npos;

inline bool space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/// The first index at or after `i` that is not JSON whitespace.
inline std::size_t skip_space(std::string_view t, std::size_t i) noexcept {
  while (i < t.size() && space(t[i])) ++i;
  return i;
}

/// One past the closing quote of the string that opens at t[i]; kNone when
/// the text ends first. `plain` (optional) says whether the string holds only
/// printable ASCII: no escape, no control character and no byte that UTF-8
/// would need checked, so that its bytes are its value.
inline std::size_t skip_string(std::string_view t, std::size_t i, bool* plain) noexcept {
  bool only_plain = true;
  for (++i; i < t.size(); ++i) {
    auto c = static_cast<unsigned char>(t[i]);
    if (c == '"') {
      if (plain) *plain = only_plain;
      return i + 1;
    }
    if (c == '\\') {
      only_plain = false;
      ++i;  // the escaped character, whatever it is
    } else if (c < 0x20 || c >= 0x80) {
      only_plain = false;
    }
  }
  return kNone;
}

}  // namespace gilmour::detail::scan
