/// @file gilmour/backends/redis.hpp
/// The Redis backend: hiredis's async API on the engine's libuv loop, one
/// subscriber connection and one pipelined command connection.
///
/// @code
///   auto opts = gilmour::redis::Options::from_url("redis://:secret@127.0.0.1:6379/0");
///   gilmour::Gilmour g(gilmour::redis::make_backend(opts));
///   g.start();  // ConnectionError: "... connect to 127.0.0.1:6379 failed: Connection refused"
/// @endcode
///
/// Connecting: open() connects both connections, AUTHs (`AUTH password`, or
/// `AUTH user password` with an ACL user) and SELECTs; the first failure is
/// reported (the engine's start() throws gilmour::ConnectionError with it).
///
/// Reconnection: when Redis goes away, pending operations of the lost
/// connection fail at once, the engine is told once (kDisconnected), and the
/// backend reconnects with capped exponential backoff, re-AUTHs, re-SELECTs,
/// re-subscribes every channel and pattern, then tells the engine once
/// (kReconnected). Commands issued while down fail at once with an error
/// status ("not connected to redis ..."); nothing is queued. A command
/// without a reply after `command_timeout` (counted from its write to the
/// socket) fails and resets its connection; an idle connection PINGs after
/// `idle_ping_interval`. Host names are resolved on libuv's thread pool,
/// never on the I/O thread. See docs/redis-backend.md (liveness).
///
/// Sentinel: with `sentinels` and `master_name` set (URL
/// `redis-sentinel://...`), the backend asks the sentinels in turn for the
/// master's address (`SENTINEL get-master-addr-by-name`), checks with `ROLE`
/// that the node it reached is a master, and follows failovers: it keeps a
/// connection to one sentinel subscribed to `+switch-master`, and after any
/// loss of the data node asks the sentinels again instead of retrying the
/// dead address. Reconnection then proceeds as above (kDisconnected, every
/// subscription restored on the new master, kReconnected).
///
/// Cluster: with `cluster_nodes` set (URL `redis-cluster://...`), the
/// backend reads the slot map (`CLUSTER SLOTS`) from the seeds, keeps one
/// command connection and one subscriber connection per master, sends each
/// keyed command (lock, health hash, error list) to the master owning the
/// key's slot (CRC16 with hash tags), follows `MOVED` (and refreshes the
/// map) and `ASK` (`ASKING` first) up to 5 redirections, and follows
/// failovers by refreshing the map until every slot's master answers.
/// Pub/sub: an exact channel is subscribed and published on the master
/// owning the channel's slot, patterns on the master of slot 0; a PUBLISH
/// that reports 0 receivers is counted again over every master (`PUBSUB
/// NUMSUB`), so that subscribers connected to other nodes (Go/Ruby peers)
/// count. See docs/redis-backend.md (Redis Cluster).
///
/// Errors: make_backend() and Options::from_url() throw InvalidArgument for
/// bad options; everything else is reported as a Status to the engine.
///
/// Secrets: no exception text, Status, log line or describe() of this backend
/// contains the password. URLs are quoted redacted (redact_url), and an error
/// reply of the server to AUTH has the password (should it echo it) replaced
/// by `***`.
///
/// Thread safety: Options is a plain value. A backend serves one engine and
/// is used only on that engine's I/O thread; it may be destroyed before it
/// was opened or after close() completed.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gilmour/backend.hpp"
#include "gilmour/export.hpp"

namespace gilmour::redis {

/// A TCP address: a host name or IP address and a port.
struct GILMOUR_API Endpoint {
  std::string host;  ///< host name or address (IPv6 without brackets)
  int port = 26379;  ///< TCP port (default: the Sentinel port)
};

/// Connection options.
struct GILMOUR_API Options {
  std::string host = "127.0.0.1";  ///< server host name or address
  int port = 6379;                 ///< server TCP port
  /// Unix socket path; when set, host and port are ignored.
  std::string unix_socket;
  /// Redis 6 ACL user; empty: `AUTH password` only.
  std::string user;
  /// Password; empty: no AUTH.
  std::string password;
  int db = 0;  ///< database number (SELECT) when not 0
  /// How long a connection attempt (connect, AUTH, SELECT) may take.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(5)};
  /// A command without a reply this long after it was written to the socket
  /// fails and the connection is reset (and reconnected). Time a command
  /// spends queued in this process before the write does not count.
  std::chrono::milliseconds command_timeout{std::chrono::seconds(5)};
  /// A connection that has read nothing for this long sends a PING; without
  /// an answer within command_timeout it is reset. A half-open connection
  /// (peer gone, or server stopped) is so found within
  /// idle_ping_interval + command_timeout (20 s by default). 0 disables the
  /// PING (TCP keepalive still runs). Default 15 s: one 14-byte PING per
  /// quarter minute per idle connection, below the idle timeouts of common
  /// NAT gateways and load balancers (minutes), so it also keeps them open.
  std::chrono::milliseconds idle_ping_interval{std::chrono::seconds(15)};
  /// Reconnect backoff: first delay, doubled up to the cap.
  std::chrono::milliseconds reconnect_min{std::chrono::milliseconds(50)};
  /// Reconnect backoff: the cap.
  std::chrono::milliseconds reconnect_max{std::chrono::seconds(2)};

  /// Sentinel mode when not empty: the sentinels to ask, in this order, for
  /// the address of `master_name`; host and port are then ignored (they are
  /// the sentinels' answer). Each connection attempt to a sentinel may take
  /// connect_timeout divided by the number of sentinels (at least 100 ms),
  /// so that asking all of them fits in connect_timeout.
  std::vector<Endpoint> sentinels;
  /// Sentinel mode: the name the sentinels monitor the master under.
  std::string master_name;
  /// Sentinel mode: the ACL user for the sentinels; empty: `AUTH password`.
  std::string sentinel_user;
  /// Sentinel mode: the sentinels' password (`requirepass` of the sentinel
  /// configuration); empty: the sentinels are not AUTHed. `user`/`password`
  /// are for the data nodes only: the two may differ.
  std::string sentinel_password;

  /// True when these options name sentinels (Sentinel mode).
  bool sentinel_mode() const noexcept { return !sentinels.empty(); }

  /// Cluster mode when not empty: seed nodes of a Redis Cluster, asked in
  /// this order for the slot map (`CLUSTER SLOTS`); host, port and db are
  /// then ignored (a cluster has only database 0). `user`/`password` are
  /// used for every node.
  std::vector<Endpoint> cluster_nodes;

  /// True when these options name cluster seed nodes (Cluster mode).
  bool cluster_mode() const noexcept { return !cluster_nodes.empty(); }

  /// Parses `redis://[[user]:password@]host[:port][/db]`,
  /// `unix:///path/to/socket[?db=N&password=P]`, a plain `host:port`, or
  /// `redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTER_NAME[?db=N]`
  /// (sentinel port default 26379), or
  /// `redis-cluster://[[user]:password@]host[:port][,host[:port]...]` (seed
  /// nodes, port default 6379, no database). In the sentinel form the userinfo is
  /// the data nodes' credentials; the sentinels' are given by the query
  /// parameters `sentinel_password=` and `sentinel_user=` (percent-encoded
  /// like every value). Query parameters `db`, `user`, `password` are
  /// accepted by every form.
  /// @throws InvalidArgument when the URL is malformed.
  static Options from_url(std::string_view url);
  /// `host:port` or the socket path, for logs; in Sentinel mode
  /// `MASTER_NAME via host:port,host:port` (the sentinels); in Cluster mode
  /// `cluster via host:port,host:port` (the seeds).
  std::string address() const;
  /// These options as a URL with the passwords replaced by `***`, for logs
  /// and messages: `redis://alice:***@host:6379/2`,
  /// `unix:///path?db=2&password=***`,
  /// `redis-sentinel://:***@h1:26379,h2:26379/mymaster?sentinel_password=***`,
  /// `redis-cluster://:***@h1:7000,h2:7001`. Never contains a password.
  std::string describe() const;
};

/// `url` with every password replaced by `***`, for logs and messages: the
/// userinfo's (`redis://user:***@host`, `redis://***@host`) and the values
/// of `password=` and `sentinel_password=` query parameters. Works on malformed URLs too (that is
/// what error texts quote): a password holding raw `/`, `?`, `@` or `&` is
/// hidden whole. Other parts are kept as written.
GILMOUR_API std::string redact_url(std::string_view url);

/// A Redis backend with these options.
/// @throws InvalidArgument for an invalid option (port, db, timeouts).
GILMOUR_API std::shared_ptr<Backend> make_backend(Options options = {});
/// Same as make_backend(Options::from_url(url)).
GILMOUR_API std::shared_ptr<Backend> make_backend(std::string_view url);

}  // namespace gilmour::redis
