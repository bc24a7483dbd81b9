// One synchronous Redis command on a fresh connection, for the fault
// injections and figures of the chaos and soak runs (CONFIG SET, CLIENT
// KILL, INFO, DBSIZE), independent of the backend under test.
//
// Thread safety: thread-safe (each call has its own connection).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace gilmour::chaos {

/// Runs `args` on 127.0.0.1:`port`; the reply as text (an integer in
/// decimal, a status or bulk string as is), or nullopt on a connection
/// error, an error reply or no reply within `timeout` (`error` then says why
/// when given).
std::optional<std::string> redis_command(int port, const std::vector<std::string>& args,
                                         std::chrono::milliseconds timeout,
                                         std::string* error = nullptr);

/// A `name:value` field of an INFO reply, or "" when absent.
std::string info_field(const std::string& info, const std::string& name);

}  // namespace gilmour::chaos
