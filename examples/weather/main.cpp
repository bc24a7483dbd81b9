// gilmour-weather [--redis URL] [CITY CITY]
//
// The weather composition of the Gilmour talk, on bundled sample data:
//
//   weather.fetch | weather.group | ((weather.min & weather.max) & (weather.min & weather.max))
//
// weather.fetch returns the raw hourly readings of the requested cities,
// weather.group groups them into one series per city, and each min/max step
// picks its city's series through its with-object ({"city": ...}, merged into
// the grouped object it receives). Prints the minimum and maximum temperature
// of each city with the hour it occurred. Cities: pune, mumbai, delhi
// (default: pune mumbai). Exits 1 when any step fails.
#include <iostream>
#include <string>
#include <vector>

#include "common/cli.hpp"

namespace {

using json = nlohmann::json;
using gilmour::Request;
using gilmour::Response;

/// Bundled sample data: one day of hourly temperatures (°C), hours 0..23.
const json& sample_readings() {
  static const json data = {
      {"pune", {21, 20, 20, 19, 19, 18, 19, 21, 23, 26, 28, 30,
                31, 32, 33, 32, 31, 29, 27, 25, 24, 23, 22, 21}},
      {"mumbai", {27, 27, 26, 26, 26, 25, 26, 27, 28, 29, 30, 31,
                  32, 32, 33, 32, 31, 30, 29, 29, 28, 28, 27, 27}},
      {"delhi", {14, 13, 12, 12, 11, 11, 12, 14, 17, 20, 23, 25,
                 27, 28, 29, 29, 28, 26, 23, 20, 18, 17, 16, 15}},
  };
  return data;
}

std::vector<gilmour::Subscription> serve_weather(gilmour::Gilmour& g) {
  std::vector<gilmour::Subscription> subs;
  // ["pune", ...] -> [{"city": c, "hour": h, "temp": t}, ...]; 404 for an unknown city.
  subs.push_back(g.reply_to("weather.fetch", [](const Request& req, Response& res) {
    json readings = json::array();
    for (const auto& city : req.data()) {
      auto name = city.get<std::string>();
      if (!sample_readings().contains(name)) {
        res.set_data("no data for city " + name).set_code(gilmour::code::kNotFound);
        return;
      }
      const auto& temps = sample_readings()[name];
      for (std::size_t h = 0; h < temps.size(); ++h) {
        readings.push_back({{"city", name}, {"hour", h}, {"temp", temps[h]}});
      }
    }
    res.set_data(std::move(readings));
  }));
  // Readings -> {"<city>": [{"hour": h, "temp": t}, ...], ...}.
  subs.push_back(g.reply_to("weather.group", [](const Request& req, Response& res) {
    json groups = json::object();
    for (const auto& r : req.data()) {
      groups[r.at("city").get<std::string>()].push_back(
          {{"hour", r.at("hour")}, {"temp", r.at("temp")}});
    }
    res.set_data(std::move(groups));
  }));
  // {"<city>": series, ..., "city": "<city>"} -> {"city", "stat", "temp", "hour"}.
  auto extreme = [](const char* stat, bool want_max) {
    return [stat, want_max](const Request& req, Response& res) {
      const auto& d = req.data();
      if (!d.is_object() || !d.contains("city") || !d.contains(d["city"].get<std::string>())) {
        res.set_data("expected grouped series and a city").set_code(gilmour::code::kBadRequest);
        return;
      }
      auto city = d["city"].get<std::string>();
      const json* best = nullptr;
      for (const auto& p : d[city]) {
        int t = p.at("temp").get<int>();
        if (!best ||
            (want_max ? t > best->at("temp").get<int>() : t < best->at("temp").get<int>())) {
          best = &p;
        }
      }
      if (!best) {
        res.set_data("empty series for " + city).set_code(gilmour::code::kBadRequest);
        return;
      }
      res.set_data(
          {{"city", city}, {"stat", stat}, {"temp", best->at("temp")}, {"hour", best->at("hour")}});
    };
  };
  subs.push_back(g.reply_to("weather.min", extreme("min", false)));
  subs.push_back(g.reply_to("weather.max", extreme("max", true)));
  return subs;
}

}  // namespace

int main(int argc, char** argv) {
  auto cli = examples::parse_cli(argc, argv);
  if (examples::has_flag(cli, "--help") || (cli.args.size() != 0 && cli.args.size() != 2)) {
    std::cerr << "usage: gilmour-weather [--redis URL] [CITY CITY]   (pune, mumbai, delhi)\n";
    return examples::has_flag(cli, "--help") ? 0 : 2;
  }
  std::vector<std::string> cities =
      cli.args.empty() ? std::vector<std::string>{"pune", "mumbai"} : cli.args;
  try {
    gilmour::Gilmour services(examples::make_backend(cli));
    auto subs = serve_weather(services);
    services.start();
    gilmour::Gilmour client(examples::make_backend(cli));
    client.start();

    namespace c = gilmour::compose;
    gilmour::RequestOptions opts;
    opts.timeout = std::chrono::seconds(5);
    opts.confirm_subscribers = true;
    auto step = [&](const char* topic, json with = nullptr) {
      return c::request(client, topic, std::move(with), opts);
    };
    auto min_max = [&](const std::string& city) {
      return c::parallel(
          {step("weather.min", {{"city", city}}), step("weather.max", {{"city", city}})});
    };
    auto weather = step("weather.fetch") | step("weather.group") |
                   c::parallel({min_max(cities[0]), min_max(cities[1])});
    std::cout << "composition: " << weather.describe() << "\n";

    gilmour::ExecuteOptions run;
    run.timeout = std::chrono::seconds(10);
    gilmour::Message result = weather.execute(cities, run).get();

    int status = 0;
    if (result.code() != gilmour::code::kOk) {
      std::cerr << "gilmour-weather: error " << result.code() << ": " << result.error_text()
                << "\n";
      status = 1;
    } else {
      for (const auto& group : result.data()) {
        const auto& lo = group.at(0);
        const auto& hi = group.at(1);
        std::cout << lo.at("city").get<std::string>() << ": min " << lo.at("temp").get<int>()
                  << " C at " << lo.at("hour").get<int>() << ":00, max " << hi.at("temp").get<int>()
                  << " C at " << hi.at("hour").get<int>() << ":00\n";
      }
    }
    client.stop();
    services.stop();
    return status;
  } catch (const std::exception& e) {
    std::cerr << "gilmour-weather: " << e.what() << "\n";
    return 1;
  }
}
