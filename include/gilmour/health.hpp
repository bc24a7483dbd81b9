/// @file gilmour/health.hpp
/// HealthBulletin: the monitor that tells which Gilmour processes are alive
/// and whether every essential topic has a listener.
///
/// Every engine with health checks on (EngineOptions::health_check or
/// Gilmour::enable_health_check()) registers `<hostname>-pid-<pid>-uuid-<uuid>`
/// in the hash `gilmour.known_host.health` and answers requests on
/// `gilmour.health.<ident>` with the channels it listens on. The bulletin
/// reads the hash every `interval`, pings each process with `timeout`; a
/// process that fails `retries` rounds in a row is reported dead and pruned
/// from the hash. Essential topics with no listener are reported each round.
/// Reports go to the log, to `on_report`, and as error records through the
/// engine's error policy. Works with Ruby and Go processes in the same hash.
///
/// @code
///   gilmour::Gilmour g(gilmour::redis::make_backend("127.0.0.1:6379"));
///   g.start();
///   gilmour::HealthBulletinOptions o;
///   o.essential_topics = {"echo"};
///   gilmour::HealthBulletin bulletin(g, o);
///   bulletin.start();                 // or: auto report = bulletin.check();
/// @endcode
///
/// Thread safety: check(), start() and stop() may be called from any thread
/// (rounds never overlap). `on_report` runs on the bulletin's thread (or the
/// thread calling check()). The engine must outlive the bulletin.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gilmour/engine.hpp"
#include "gilmour/export.hpp"

namespace gilmour {

struct HealthReport;

/// Settings of a HealthBulletin.
struct HealthBulletinOptions {
  /// Time between rounds.
  std::chrono::milliseconds interval{std::chrono::seconds(60)};
  /// How long a ping may take.
  std::chrono::milliseconds timeout{std::chrono::seconds(1)};
  /// Failed rounds in a row after which a process is declared dead.
  int retries = 3;
  /// Remove dead processes from the hash.
  bool prune = true;
  /// Topics that must have a listener (`echo` means `gilmour.request.echo`;
  /// a name starting with `gilmour.` is taken as the channel itself).
  std::vector<std::string> essential_topics;
  /// Called with each round's report.
  std::function<void(const HealthReport&)> on_report;
};

/// What one round found.
struct HealthReport {
  /// One registered process, as this round saw it.
  struct Process {
    std::string ident;                  ///< `<hostname>-pid-<pid>-uuid-<uuid>`
    bool responded = false;             ///< answered this round's ping
    int failures = 0;                   ///< failed rounds in a row
    std::vector<std::string> channels;  ///< what it listens on (when it answered)
    std::string error;                  ///< why the last ping failed
  };
  std::vector<Process> processes;              ///< every process in the hash this round
  std::vector<std::string> dead;               ///< declared dead this round (pruned if prune)
  std::vector<std::string> essential_unheard;  ///< essential topics with no listener
  std::string timestamp;                       ///< RFC 3339 UTC
  /// True when no process was declared dead and every essential topic has a listener.
  bool healthy() const noexcept { return dead.empty() && essential_unheard.empty(); }
};

/// The health monitor; see the file comment.
class GILMOUR_API HealthBulletin {
 public:
  /// @throws InvalidArgument for a non-positive interval/timeout/retries or an
  ///         invalid essential topic (empty, or holding `*`, whitespace, a
  ///         control character or NUL).
  HealthBulletin(Gilmour& engine, HealthBulletinOptions options);
  ~HealthBulletin();
  HealthBulletin(const HealthBulletin&) = delete;
  HealthBulletin& operator=(const HealthBulletin&) = delete;

  /// Runs one round now and returns its report. The engine must be running.
  HealthReport check();
  /// Runs a round every interval on a thread of the bulletin's own.
  void start();
  /// Stops the thread (waits for a running round). Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gilmour
