// The echo service of the Gilmour talk: answers "Pong " + data on topic "echo".
#pragma once

#include <gilmour/gilmour.hpp>
#include <string>

namespace examples {

inline gilmour::Subscription serve_echo(gilmour::Gilmour& g) {
  return g.reply_to("echo", [](const gilmour::Request& req, gilmour::Response& res) {
    const auto& d = req.data();
    res.set_data("Pong " + (d.is_string() ? d.get<std::string>() : d.dump()));
  });
}

}  // namespace examples
