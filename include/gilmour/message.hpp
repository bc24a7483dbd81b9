/// @file gilmour/message.hpp
/// Message: the envelope every Gilmour payload travels in, and status codes.
///
/// On the wire a message is `{"data":<any JSON>,"code":<int>,"sender":"<id>"}`
/// (see docs/protocol.md). `data` is any nlohmann::json value; typed access
/// goes through nlohmann's to_json/from_json, so users send their own structs:
///
/// @code
///   struct Order { std::string item; int qty; };
///   NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Order, item, qty)
///   gilmour::Message m{Order{"book", 2}};
///   Order o = m.data<Order>();
/// @endcode
///
/// Thread safety: a Message is a plain value; distinct objects may be used from
/// different threads, one object is not synchronised.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "gilmour/export.hpp"

namespace gilmour {

/// HTTP-style status codes used by gilmour-cpp. Handlers may set any code;
/// these are the ones the library itself produces.
namespace code {
inline constexpr int kOk = 200;            ///< success
inline constexpr int kBadRequest = 400;    ///< conventional: the handler rejected the input
inline constexpr int kNotFound = 404;      ///< confirm_subscribers: nobody listens on the topic
inline constexpr int kTimeout = 499;       ///< client or server timeout ("Execution timed out")
inline constexpr int kHandlerError = 500;  ///< the handler threw; data is the error text
inline constexpr int kUnavailable = 503;   ///< could not be sent: backend down or engine stopped
inline constexpr int kRubyTimeout = 504;   ///< Ruby Gilmour's server timeout; read as a timeout
}  // namespace code

/// The envelope: data, code and sender.
class GILMOUR_API Message {
 public:
  /// A null payload with code 200 and no sender.
  Message() = default;
  /// A message carrying `data` with code 200.
  Message(nlohmann::json data, int code = code::kOk,
          std::string sender = {})  // NOLINT(google-explicit-constructor)
      : data_(std::move(data)), code_(code), sender_(std::move(sender)) {}

  /// The payload as JSON.
  const nlohmann::json& data() const noexcept { return data_; }
  /// The payload as JSON, modifiable.
  nlohmann::json& data() noexcept { return data_; }
  /// The payload converted with nlohmann's from_json.
  /// @throws nlohmann::json::exception when the payload does not convert to T.
  template <typename T>
  T data() const {
    return data_.get<T>();
  }
  /// HTTP-style status code; 200 unless set.
  int code() const noexcept { return code_; }
  /// The sender id: unique per request or signal. Meaningless on a response.
  const std::string& sender() const noexcept { return sender_; }

  /// Replaces the payload.
  Message& set_data(nlohmann::json data) {
    data_ = std::move(data);
    return *this;
  }
  /// Sets the status code.
  Message& set_code(int c) noexcept {
    code_ = c;
    return *this;
  }
  /// Sets the sender id.
  Message& set_sender(std::string s) {
    sender_ = std::move(s);
    return *this;
  }
  /// True when code() < 300.
  bool ok() const noexcept { return code_ < 300; }
  /// True for the two timeout codes, 499 (ours, Go) and 504 (Ruby).
  bool timed_out() const noexcept { return code_ == code::kTimeout || code_ == code::kRubyTimeout; }
  /// True for 404: sent with confirm_subscribers and nobody listened.
  bool no_listeners() const noexcept { return code_ == code::kNotFound; }
  /// True for 503: not sent or not answered because the backend was down or
  /// the engine stopping; the service may be fine.
  bool unavailable() const noexcept { return code_ == code::kUnavailable; }
  /// The error text of a failed message: `data` when it is a string, else its JSON.
  std::string error_text() const;

  /// The wire form: `{"data":...,"code":...,"sender":"..."}`, keys in that
  /// order, invalid UTF-8 replaced rather than thrown on.
  std::string to_json() const;

  friend bool operator==(const Message& a, const Message& b) {
    return a.code_ == b.code_ && a.sender_ == b.sender_ && a.data_ == b.data_;
  }

 private:
  nlohmann::json data_;
  int code_ = code::kOk;
  std::string sender_;
};

}  // namespace gilmour
