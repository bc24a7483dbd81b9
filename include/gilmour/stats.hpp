/// @file gilmour/stats.hpp
/// Engine counters, readable in code (Gilmour::stats()).
///
/// Thread safety: Stats is a snapshot value.
#pragma once

#include <cstdint>

namespace gilmour {

/// A snapshot of an engine's counters since construction.
struct Stats {
  std::uint64_t requests_sent = 0;       ///< requests published by this engine
  std::uint64_t responses_received = 0;  ///< responses that completed a request
  std::uint64_t requests_handled = 0;    ///< requests this engine's reply handlers ran for
  std::uint64_t responses_sent = 0;      ///< responses published by this engine
  std::uint64_t signals_sent = 0;        ///< signals published
  std::uint64_t signals_received = 0;    ///< slot handler invocations
  std::uint64_t lock_lost = 0;           ///< messages another group member took
  std::uint64_t handler_errors = 0;      ///< handlers that threw
  std::uint64_t server_timeouts = 0;     ///< handlers that passed their deadline
  std::uint64_t client_timeouts = 0;     ///< requests completed with 499 by their timeout
  std::uint64_t no_listeners = 0;        ///< requests/signals with confirm that nobody heard (404)
  std::uint64_t publish_failures = 0;    ///< publishes the backend could not perform
  std::uint64_t malformed_dropped = 0;   ///< wire payloads that were not a valid envelope
  std::uint64_t stray_responses = 0;     ///< responses for requests no longer waited on
  std::uint64_t errors_reported = 0;     ///< error records handed to the backend (publish/queue);
                                         ///< a failed one also counts in publish_failures
  std::uint64_t reconnects = 0;          ///< backend reconnections
  std::uint64_t slow_inline = 0;         ///< inline handlers that ran past inline_warn_threshold
};

}  // namespace gilmour
