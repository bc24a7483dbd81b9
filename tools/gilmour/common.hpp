// Shared pieces of the `gilmour` command: exit codes, the Redis URL and
// engine set-up, stop signals, and the formatting of data and times.
//
// Uses only the public headers of gilmour-cpp.
#pragma once

#include <chrono>
#include <functional>
#include <gilmour/gilmour.hpp>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace gilmour::cli {

/// Exit codes, the same for every command (see docs/cli.md).
enum Exit : int {
  kExitOk = 0,
  kExitFailed = 1,       ///< the remote outcome was a failure (code >= 300, a dead process...)
  kExitUsage = 2,        ///< invalid arguments or a malformed URL
  kExitUnreachable = 3,  ///< Redis could not be reached (or refused us)
  kExitInterrupted = 130,
};

/// A failure the command reports on stderr (`gilmour: <what>`) before
/// exiting with `code`.
class Failure : public std::runtime_error {
 public:
  Failure(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

/// Options common to every command.
struct Global {
  std::string url;  ///< --redis, else $GILMOUR_REDIS_URL, else kDefaultUrl
  int connect_timeout_ms = 2000;
  bool verbose = false;
};

inline constexpr const char* kDefaultUrl = "redis://127.0.0.1:6379";

/// Engine options for a command: quiet logger (warnings on stderr, debug
/// with --verbose), short connect timeout, error records ignored (commands
/// that serve topics set their own policy).
EngineOptions engine_options(const Global& g);

/// An engine on the global URL, not started.
/// @throws Failure(kExitUsage) for a malformed URL (password redacted).
std::unique_ptr<Gilmour> make_engine(const Global& g, EngineOptions options);

/// start(), with connection failures turned into Failure(kExitUnreachable).
void start_engine(Gilmour& engine, const Global& g);

/// Reads `DATA`: JSON when it parses as JSON, else the string itself;
/// `-` reads standard input; `as_string` forces a string.
nlohmann::json parse_data(const std::string& text, bool as_string = false);

/// Compact JSON, invalid UTF-8 replaced.
std::string dump(const nlohmann::json& j);
/// A string as itself, anything else as compact JSON.
std::string text_of(const nlohmann::json& j);

/// RFC 3339 UTC with milliseconds: 2026-11-29T09:30:00.123Z.
std::string timestamp(std::chrono::system_clock::time_point t);

/// "request" / "signal" / "response" ... and the topic, from a channel name.
struct ChannelInfo {
  std::string kind;   ///< request, signal, response, health, error, message
  std::string topic;  ///< the topic (request/signal), the sender (response), else the channel
};
ChannelInfo classify_channel(std::string_view channel);

/// The topics a process listens on, from its channel names, for display:
/// `echo`, `item.* (slot)`.
std::string describe_channel(std::string_view channel);

/// Stop requests: SIGINT/SIGTERM (handled by a thread; the signals are
/// blocked in every thread), or the command itself (count reached).
///
/// Before the first call to graceful(true) a signal exits at once with 130;
/// afterwards the first signal requests a stop and the second exits at once.
namespace stop {
/// Blocks SIGINT/SIGTERM and starts the waiting thread. Call first in main().
void install();
/// Whether a signal asks for a graceful stop (see above).
void graceful(bool on);
void request();
bool requested();
/// Waits until a stop is requested or `d` passed; true when requested.
bool wait_for(std::chrono::milliseconds d);
void wait();
/// True when a signal (not the command) requested the stop.
bool by_signal();
}  // namespace stop

}  // namespace gilmour::cli
