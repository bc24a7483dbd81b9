// The envelope decoder's fast path: one pass over the common shape of a
// payload, building the data value directly. Anything it is not sure of is
// left to the full parser (decode_envelope), which decides and explains.
#include <algorithm>
#include <cstdint>
#include <utility>

#include "codec.hpp"
#include "json_scan.hpp"

namespace gilmour::detail {

namespace {

// Digits of an integer this path reads itself; longer ones (which may not fit
// 64 bits, and which nlohmann then reads as a double) go to the parser.
constexpr std::size_t kMaxDigits = 18;

class CommonShape {
 public:
  explicit CommonShape(std::string_view t) noexcept : t_(t) {}

  std::optional<Message> decode(EnvelopeExtras* extras) {
    if (!take('{')) return std::nullopt;
    Message m;
    EnvelopeExtras found;
    bool seen_data = false, seen_code = false, seen_sender = false, seen_budget = false,
         seen_trace = false;
    if (!take('}')) {
      do {
        std::string_view key;
        if (!member_key(&key)) return std::nullopt;
        if (key == "data") {
          if (!once(&seen_data) || !value(&m.data(), 1)) return std::nullopt;
        } else if (key == "code") {
          // null or 0 is 200; anything else but 1-999 is the parser's to refuse.
          std::int64_t c = 0;
          if (!once(&seen_code) || !(null() || integer(&c)) || c < 0 || c > 999)
            return std::nullopt;
          if (c != 0) m.set_code(static_cast<int>(c));
        } else if (key == "sender") {
          std::string_view s;
          if (!once(&seen_sender)) return std::nullopt;
          if (!null()) {
            if (!plain_string(&s)) return std::nullopt;
            m.set_sender(std::string(s));
          }
        } else if (key == "budget_ms") {
          // An unsigned integer counts; null or a signed one (-0 too) is ignored.
          std::int64_t b = -1;
          bool negative = false;
          if (!once(&seen_budget) || !(null() || integer(&b, &negative))) return std::nullopt;
          if (b >= 0 && !negative) {
            found.budget_ms = std::min(b, static_cast<std::int64_t>(kMaxBudgetMs));
          }
        } else if (key == "trace_id") {
          std::string_view s;
          if (!once(&seen_trace) || !(null() || plain_string(&s))) return std::nullopt;
          if (s.size() <= kMaxTraceId) found.trace_id = std::string(s);
        } else {
          return std::nullopt;  // an unknown member: the parser validates and ignores it
        }
      } while (next_member('}'));
      if (!take('}')) return std::nullopt;
    }
    if (scan::skip_space(t_, i_) != t_.size()) return std::nullopt;
    if (extras) *extras = std::move(found);
    return m;
  }

 private:
  // `depth` counts the containers around the value, the envelope included,
  // as nesting_within does; deeper than kMaxDepth + 1 is the parser's to refuse.
  bool value(nlohmann::json* out, std::size_t depth) {
    i_ = scan::skip_space(t_, i_);
    if (i_ >= t_.size()) return false;
    switch (t_[i_]) {
      case '"': {
        std::string_view s;
        if (!plain_string(&s)) return false;
        *out = std::string(s);
        return true;
      }
      case '{': {
        if (depth + 1 > kMaxDepth + 1 || !take('{')) return false;
        *out = nlohmann::json::object();
        auto& object = out->get_ref<nlohmann::json::object_t&>();
        if (take('}')) return true;
        do {
          std::string_view key;
          nlohmann::json v;
          if (!member_key(&key) || !value(&v, depth + 1)) return false;
          object[std::string(key)] = std::move(v);  // a repeated key: the last wins, as in nlohmann
        } while (next_member('}'));
        return take('}');
      }
      case '[': {
        if (depth + 1 > kMaxDepth + 1 || !take('[')) return false;
        *out = nlohmann::json::array();
        auto& array = out->get_ref<nlohmann::json::array_t&>();
        if (take(']')) return true;
        do {
          array.emplace_back();
          if (!value(&array.back(), depth + 1)) return false;
        } while (next_member(']'));
        return take(']');
      }
      case 't':
        return literal("true", out, true);
      case 'f':
        return literal("false", out, false);
      case 'n':
        return literal("null", out, nullptr);
      default: {
        // nlohmann reads a non-negative integer as unsigned, a negative one as signed.
        std::int64_t n = 0;
        bool negative = false;
        if (!integer(&n, &negative)) return false;
        if (!negative) {
          *out = static_cast<std::uint64_t>(n);
        } else {
          *out = n;
        }
        return true;
      }
    }
  }

  // `-?(0|[1-9][0-9]*)` of at most kMaxDigits digits, not followed by a
  // fraction or an exponent (a double is the parser's).
  // `negative` (optional) tells -0 from 0, which nlohmann reads as signed.
  bool integer(std::int64_t* out, bool* negative_out = nullptr) noexcept {
    bool negative = i_ < t_.size() && t_[i_] == '-';
    std::size_t j = negative ? i_ + 1 : i_;
    const std::size_t first = j;
    while (j < t_.size() && t_[j] >= '0' && t_[j] <= '9') ++j;
    const std::size_t digits = j - first;
    if (digits == 0 || digits > kMaxDigits || (t_[first] == '0' && digits > 1)) return false;
    if (j < t_.size() && (t_[j] == '.' || t_[j] == 'e' || t_[j] == 'E')) return false;
    std::int64_t n = 0;  // at most 18 digits: no overflow
    for (std::size_t k = first; k < j; ++k) n = n * 10 + (t_[k] - '0');
    i_ = j;
    *out = negative ? -n : n;
    if (negative_out) *negative_out = negative;
    return true;
  }

  template <typename T>
  bool literal(std::string_view word, nlohmann::json* out, T v) {
    if (t_.compare(i_, word.size(), word) != 0) return false;
    i_ += word.size();
    *out = v;
    return true;
  }

  // `null`, consumed; false (nothing consumed) for anything else.
  bool null() noexcept {
    i_ = scan::skip_space(t_, i_);
    if (t_.compare(i_, 4, "null") != 0) return false;
    i_ += 4;
    return true;
  }

  bool plain_string(std::string_view* out) noexcept {
    i_ = scan::skip_space(t_, i_);
    if (i_ >= t_.size() || t_[i_] != '"') return false;
    bool plain = false;
    std::size_t end = scan::skip_string(t_, i_, &plain);
    if (end == scan::kNone || !plain) return false;
    *out = t_.substr(i_ + 1, end - i_ - 2);
    i_ = end;
    return true;
  }

  // A plain key and its colon.
  bool member_key(std::string_view* key) noexcept {
    if (!plain_string(key)) return false;
    i_ = scan::skip_space(t_, i_);
    if (i_ >= t_.size() || t_[i_] != ':') return false;
    ++i_;
    return true;
  }

  // A comma before another member, consumed; false at `end` (not consumed)
  // or at anything else (which take() then refuses).
  bool next_member(char end) noexcept {
    i_ = scan::skip_space(t_, i_);
    if (i_ >= t_.size() || t_[i_] == end || t_[i_] != ',') return false;
    ++i_;
    return true;
  }

  // `c`, consumed; false (nothing consumed) for anything else.
  bool take(char c) noexcept {
    i_ = scan::skip_space(t_, i_);
    if (i_ >= t_.size() || t_[i_] != c) return false;
    ++i_;
    return true;
  }

  static bool once(bool* seen) noexcept {
    if (*seen) return false;  // a repeated member: the parser keeps the last
    *seen = true;
    return true;
  }

  std::string_view t_;
  std::size_t i_ = 0;
};

}  // namespace

std::optional<Message> decode_common_envelope(std::string_view payload, EnvelopeExtras* extras) {
  return CommonShape(payload).decode(extras);
}

}  // namespace gilmour::detail
