// The README's quick start, verbatim (CI builds and runs it; keep them equal).
#include <gilmour/gilmour.hpp>
#include <iostream>

int main() {
  // In-process here; gilmour::redis::make_backend("redis://127.0.0.1:6379") for Redis.
  gilmour::Gilmour server(gilmour::inproc::make_backend());
  auto echo = server.reply_to("echo",
                              [](const gilmour::Request& req, gilmour::Response& res) {
                                res.set_data("Pong " + req.data<std::string>());
                              },
                              {/*group=*/"echo-servers", /*timeout=*/std::chrono::seconds(5)});
  auto log = server.slot("item.buy.*", [](const gilmour::Request& req) {
    std::cout << req.channel() << " -> " << req.data().dump() << "\n";
  });
  server.start();

  gilmour::Gilmour client(gilmour::inproc::make_backend());
  client.start();
  gilmour::Message reply = client.request_sync("echo", "hello");  // blocking
  std::cout << reply.data<std::string>() << " (" << reply.code() << ")\n";
  std::future<gilmour::Message> f = client.request("echo", "again");  // future
  client.request("echo", "cb", [](gilmour::Message m) {               // callback
    std::cout << m.data<std::string>() << "\n";
  });
  std::cout << f.get().data<std::string>() << "\n";
  client.signal("item.buy.42", {{"item", "book"}, {"price", 500}});

  client.stop();  // graceful: running handlers finish first
  server.stop();
}
