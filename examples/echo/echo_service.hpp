// The echo service of the Gilmour talk: answers "Pong " + data on topic "echo".
#pragma once

#include <gilmour/gilmour.hpp>
#include <string>
#include <utility>

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
        // Built in one buffer of the answer's size: a large request costs
        // one more copy of its data, not two or a doubled string.
        const std::string text = d.is_string() ? std::string() : d.dump();
        const std::string& body = d.is_string() ? d.get_ref<const std::string&>() : text;
        std::string answer;
        answer.reserve(5 + body.size());
        answer += "Pong ";
        answer += body;
        res.set_data(std::move(answer));
      },
      opts);
}

}  // namespace examples
