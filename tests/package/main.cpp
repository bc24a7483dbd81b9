// Uses the installed headers and library: one request over the in-process bus,
// and the headers' version matches the library's.
#include <gilmour/gilmour.hpp>
#include <iostream>

int main() {
  if (gilmour::version() != GILMOUR_VERSION) {
    std::cerr << "headers " GILMOUR_VERSION ", library " << gilmour::version() << "\n";
    return 1;
  }
  gilmour::Gilmour g(gilmour::inproc::make_backend());
  auto sub = g.reply_to("add", [](const gilmour::Request& r, gilmour::Response& res) {
    res.set_data(r.data<int>() + 1);
  });
  g.start();
  auto m = g.request_sync("add", 41);
  std::cout << "package consumer (gilmour " << gilmour::version() << "): " << m.data<int>() << "\n";
  return m.data<int>() == 42 ? 0 : 1;
}
