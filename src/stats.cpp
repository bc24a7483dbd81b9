#include "gilmour/stats.hpp"

namespace gilmour {

namespace {

/// Every counter: its field, and the help text of its Prometheus counter.
/// The one list the JSON and Prometheus renderings are made from.
struct Field {
  const char* name;
  std::uint64_t Stats::*member;
  const char* help;
};

constexpr Field kFields[] = {
    {"requests_sent", &Stats::requests_sent, "Requests published by this engine."},
    {"responses_received", &Stats::responses_received, "Responses that completed a request."},
    {"requests_handled", &Stats::requests_handled,
     "Requests taken by this engine's reply handlers (expired_dropped included)."},
    {"responses_sent", &Stats::responses_sent, "Responses published by this engine."},
    {"signals_sent", &Stats::signals_sent, "Signals published."},
    {"signals_received", &Stats::signals_received, "Slot handler invocations."},
    {"lock_lost", &Stats::lock_lost, "Messages another exclusion group member took."},
    {"handler_errors", &Stats::handler_errors, "Handlers that threw."},
    {"server_timeouts", &Stats::server_timeouts, "Handlers that passed their deadline."},
    {"client_timeouts", &Stats::client_timeouts, "Requests completed with 499 by their timeout."},
    {"no_listeners", &Stats::no_listeners, "Requests and signals nobody heard (404)."},
    {"publish_failures", &Stats::publish_failures, "Publishes the backend could not perform."},
    {"malformed_dropped", &Stats::malformed_dropped, "Wire payloads dropped as malformed."},
    {"oversized_dropped", &Stats::oversized_dropped,
     "Wire payloads dropped for exceeding max_payload."},
    {"stray_responses", &Stats::stray_responses, "Responses for requests no longer waited on."},
    {"errors_reported", &Stats::errors_reported, "Error records handed to the backend."},
    {"reconnects", &Stats::reconnects, "Backend reconnections."},
    {"slow_inline", &Stats::slow_inline, "Inline handlers that ran past inline_warn_threshold."},
    {"overloaded", &Stats::overloaded,
     "Requests and signals refused at max_outstanding or max_outstanding_bytes."},
    {"requests_failed_at_stop", &Stats::requests_failed_at_stop,
     "Requests stop() completed with 503 shutting down."},
    {"signals_dropped_at_stop", &Stats::signals_dropped_at_stop,
     "Signals stop() ended before they were published."},
    {"slow_consumer_dropped", &Stats::slow_consumer_dropped,
     "Requests answered 503 and signals dropped because their handler's queue was full."},
    {"lock_deferred", &Stats::lock_deferred,
     "Exclusion lock attempts delayed by a handler with a full queue."},
    {"requests_refused_at_stop", &Stats::requests_refused_at_stop,
     "Queued requests answered 503 by stop()."},
    {"inbound_dropped_at_stop", &Stats::inbound_dropped_at_stop,
     "Queued slot invocations dropped by stop()."},
    {"expired_dropped", &Stats::expired_dropped,
     "Requests dropped unrun: their requester's deadline had passed."},
};

std::string escape_label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

nlohmann::json to_json(const Stats& stats) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& f : kFields) j[f.name] = stats.*f.member;
  return j;
}

Stats stats_from_json(const nlohmann::json& j) {
  Stats s;
  if (!j.is_object()) return s;
  for (const auto& f : kFields) {
    auto it = j.find(f.name);
    if (it != j.end() && it->is_number_unsigned()) s.*f.member = it->get<std::uint64_t>();
  }
  return s;
}

std::string to_prometheus(const Stats& stats, std::string_view ident) {
  std::string labels = ident.empty() ? "" : "{ident=\"" + escape_label(ident) + "\"}";
  std::string out;
  for (const auto& f : kFields) {
    std::string metric = std::string("gilmour_") + f.name + "_total";
    out += "# HELP " + metric + " " + f.help + "\n";
    out += "# TYPE " + metric + " counter\n";
    out += metric + labels + " " + std::to_string(stats.*f.member) + "\n";
  }
  return out;
}

}  // namespace gilmour
