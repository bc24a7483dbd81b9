/// @file gilmour/error_record.hpp
/// ErrorRecord: what the engine reports when a response with code >= 300 is
/// produced or a slot handler fails (see docs/operations.md).
///
/// Wire form (field names of Go Gilmour v5, filled as named):
/// @code{.json}
/// {"topic":"echo","request_data":"<request envelope as JSON text>",
///  "user_data":"","sender":"<request sender>","multi_process":false,
///  "timestamp":"2016-02-23T06:55:12Z","backtrace":"<error text>","code":500}
/// @endcode
///
/// Thread safety: a plain value.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "gilmour/export.hpp"

namespace gilmour {

/// One error record: a failed request or signal, or a health problem.
struct GILMOUR_API ErrorRecord {
  std::string topic;           ///< the topic the failing request or signal was sent to
  std::string request_data;    ///< the request envelope as JSON text
  std::string user_data;       ///< implementation-dependent extra information
  std::string sender;          ///< the request's sender
  bool multi_process = false;  ///< true when not about one request (the health bulletin's records)
  std::string timestamp;       ///< RFC 3339, UTC, e.g. 2016-02-23T06:55:12Z
  nlohmann::json backtrace;    ///< the error text (a string) or any JSON detail
  int code = 500;              ///< the failure's status code (>= 300)

  /// The record as JSON (nlohmann sorts keys).
  nlohmann::json to_json() const;
  /// The record as JSON text, keys in the wire order above.
  std::string dump() const;
  /// Reads a record; returns false (leaving `out` unspecified) when `j` is not
  /// an object with the fields above of the right types.
  static bool from_json(const nlohmann::json& j, ErrorRecord& out);
  /// The current time as RFC 3339 UTC with seconds precision.
  static std::string now_timestamp();
};

}  // namespace gilmour
