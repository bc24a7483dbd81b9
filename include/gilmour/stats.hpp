/// @file gilmour/stats.hpp
/// Engine counters, readable in code (Gilmour::stats()), as JSON and in the
/// Prometheus text format. With health checks on, each process also answers
/// `gilmour.stats.<ident>` with its counters (docs/protocol.md).
///
/// Thread safety: Stats is a snapshot value.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "gilmour/export.hpp"

namespace gilmour {

/// A snapshot of an engine's counters since construction.
struct Stats {
  std::uint64_t requests_sent = 0;       ///< requests published by this engine
  std::uint64_t responses_received = 0;  ///< responses that completed a request
  std::uint64_t requests_handled = 0;    ///< requests taken by this engine's reply handlers
                                         ///< (expired_dropped ones included)
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
  std::uint64_t oversized_dropped = 0;   ///< wire payloads over EngineOptions::max_payload
  std::uint64_t stray_responses = 0;     ///< responses for requests no longer waited on
  std::uint64_t errors_reported = 0;     ///< error records handed to the backend (publish/queue);
                                         ///< a failed one also counts in publish_failures
  std::uint64_t reconnects = 0;          ///< backend reconnections
  std::uint64_t slow_inline = 0;         ///< inline handlers that ran past inline_warn_threshold
  std::uint64_t overloaded = 0;  ///< requests/signals refused: max_outstanding(_bytes) reached
  std::uint64_t requests_failed_at_stop =
      0;  ///< requests stop() completed with 503 "shutting down"
  std::uint64_t signals_dropped_at_stop = 0;  ///< signals stop() ended before they were published
  std::uint64_t slow_consumer_dropped = 0;    ///< requests answered 503 / signals dropped because
                                              ///< their handler's queue was full
  std::uint64_t lock_deferred = 0;  ///< group lock attempts a full handler delayed (load-aware
                                    ///< exclusion)
  std::uint64_t requests_refused_at_stop = 0;  ///< queued requests answered 503 by stop()
  std::uint64_t inbound_dropped_at_stop = 0;   ///< queued slot invocations stop() dropped
  std::uint64_t expired_dropped = 0;  ///< requests not run: the requester's deadline passed
                                      ///< while they were queued (not answered)
};

/// The counters as a JSON object, one member per field, named as the field.
GILMOUR_API nlohmann::json to_json(const Stats& stats);
/// Reads what to_json() wrote; absent or non-numeric members read as 0.
GILMOUR_API Stats stats_from_json(const nlohmann::json& j);

/// The counters in the Prometheus text exposition format (version 0.0.4):
/// one `gilmour_<field>_total` counter each, with its HELP and TYPE lines,
/// labelled `ident="<ident>"` when `ident` is not empty (quotes, backslashes
/// and newlines escaped).
GILMOUR_API std::string to_prometheus(const Stats& stats, std::string_view ident = {});

}  // namespace gilmour
