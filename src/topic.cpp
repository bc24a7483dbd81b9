#include "topic.hpp"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <random>

#include "gilmour/error.hpp"

namespace gilmour::detail {

namespace {
std::string prefixed(std::string_view prefix, std::string_view topic) {
  if (topic.substr(0, 8) == "gilmour.") return std::string(topic);
  std::string out;
  out.reserve(prefix.size() + topic.size());
  out.append(prefix).append(topic);
  return out;
}
}  // namespace

std::string request_channel(std::string_view topic) { return prefixed(kRequestPrefix, topic); }
std::string slot_channel(std::string_view topic) { return prefixed(kSlotPrefix, topic); }

bool has_wildcard(std::string_view topic) noexcept {
  return topic.find('*') != std::string_view::npos;
}

namespace {
/// `topic` quoted for an error message: printable ASCII as is, other bytes
/// below 0x20 or 0x7f escaped, at most 200 bytes.
std::string quoted(std::string_view topic) {
  constexpr std::size_t kMax = 200;
  std::string out = "\"";
  for (std::size_t i = 0; i < topic.size() && i < kMax; ++i) {
    auto c = static_cast<unsigned char>(topic[i]);
    switch (c) {
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '"':
      case '\\':
        out += '\\';
        out += static_cast<char>(c);
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  if (topic.size() > kMax) out += "...";
  out += '"';
  return out;
}
}  // namespace

void validate_topic(std::string_view topic, const char* what, bool allow_wildcard) {
  std::string where = std::string("gilmour: ") + what + ": ";
  if (topic.empty()) throw InvalidArgument(where + "empty topic");
  for (std::size_t i = 0; i < topic.size(); ++i) {
    auto c = static_cast<unsigned char>(topic[i]);
    if (c <= 0x20 || c == 0x7f) {
      const char* kind = c == ' '                   ? "a space"
                         : c == 0                   ? "a NUL byte"
                         : (c >= '\t' && c <= '\r') ? "whitespace"
                                                    : "a control character";
      throw InvalidArgument(where + "topic " + quoted(topic) + " contains " + kind + " at offset " +
                            std::to_string(i) +
                            " (topics may not contain whitespace or control characters)");
    }
  }
  if (!allow_wildcard && has_wildcard(topic)) {
    throw InvalidArgument(where + "topic " + quoted(topic) + " may not contain '*'");
  }
}

bool glob_match(std::string_view p, std::string_view s) noexcept {
  std::size_t pi = 0, si = 0;
  std::size_t star_p = std::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < p.size()) {
      char c = p[pi];
      if (c == '*') {
        while (pi < p.size() && p[pi] == '*') ++pi;
        if (pi == p.size()) return true;
        star_p = pi;
        star_s = si;
        continue;
      }
      if (c == '?') {
        ++pi;
        ++si;
        continue;
      }
      if (c == '[') {
        std::size_t q = pi + 1;
        bool negate = false;
        if (q < p.size() && p[q] == '^') {
          negate = true;
          ++q;
        }
        bool matched = false;
        while (q < p.size() && p[q] != ']') {
          if (p[q] == '\\' && q + 1 < p.size()) {
            ++q;
            if (p[q] == s[si]) matched = true;
          } else if (q + 2 < p.size() && p[q + 1] == '-') {
            char lo = p[q], hi = p[q + 2];
            if (lo > hi) std::swap(lo, hi);
            if (s[si] >= lo && s[si] <= hi) matched = true;
            q += 2;
          } else if (p[q] == s[si]) {
            matched = true;
          }
          ++q;
        }
        if (negate) matched = !matched;
        if (matched) {
          pi = q < p.size() ? q + 1 : q;
          ++si;
          continue;
        }
      } else {
        if (c == '\\' && pi + 1 < p.size()) c = p[pi + 1];
        if (c == s[si]) {
          pi += (p[pi] == '\\' && pi + 1 < p.size()) ? 2 : 1;
          ++si;
          continue;
        }
      }
    }
    if (star_p == std::string_view::npos) return false;
    pi = star_p;
    si = ++star_s;
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

std::string make_uuid() {
  thread_local std::mt19937_64 rng{std::random_device{}() ^
                                   (static_cast<std::uint64_t>(std::random_device{}()) << 32)};
  std::array<unsigned char, 16> b{};
  for (std::size_t i = 0; i < 16; i += 8) {
    std::uint64_t v = rng();
    for (std::size_t k = 0; k < 8; ++k) b[i + k] = static_cast<unsigned char>(v >> (8 * k));
  }
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);
  char out[37];
  std::snprintf(out, sizeof out,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return std::string(out, 36);
}

std::string make_process_ident() {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "localhost");
  return std::string(host) + "-pid-" + std::to_string(::getpid()) + "-uuid-" + make_uuid();
}

}  // namespace gilmour::detail
