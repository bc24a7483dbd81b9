// The echo service of the Gilmour talk: answers "Pong " + data on topic "echo".
#pragma once

#include <gilmour/gilmour.hpp>
#include <string>

namespace examples {

/// Serves "echo" in exclusion group `group` (empty: "_default"; Go's stock
/// echo server uses "exclusive").
inline gilmour::Subscription serve_echo(gilmour::Gilmour& g, const std::string& group = "") {
  gilmour::HandlerOptions opts;
  opts.group = group;
  return g.reply_to(
      "echo",
      [](const gilmour::Request& req, gilmour::Response& res) {
        const auto& d = req.data();
        res.set_data("Pong " + (d.is_string() ? d.get<std::string>() : d.dump()));
      },
      opts);
}

}  // namespace examples
