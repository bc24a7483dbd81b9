/// @file gilmour/backends/inproc.hpp
/// The in-process backend: Gilmour's semantics with no server.
///
/// Every engine whose backend was made from the same Bus sees the others'
/// messages, exactly as engines on one Redis do: channels and glob patterns,
/// exclusion locks with expiry, the health hash and the error list. It is the
/// embedded default for demos and for unit tests of services.
///
/// @code
///   auto bus = gilmour::inproc::make_bus();            // or default_bus()
///   gilmour::Gilmour server(gilmour::inproc::make_backend(bus));
///   gilmour::Gilmour client(gilmour::inproc::make_backend(bus));
/// @endcode
///
/// Thread safety: Bus is thread-safe. A backend serves one engine.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gilmour/backend.hpp"
#include "gilmour/export.hpp"

namespace gilmour::inproc {

/// The shared state of in-process engines (what a Redis server holds).
class GILMOUR_API Bus {
 public:
  Bus();
  ~Bus();
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;

  /// Inspection, for tests of services (the in-process `redis-cli`).
  std::optional<std::string> get(const std::string& key) const;
  /// HGETALL key: the field/value pairs (none for a missing key).
  std::vector<std::pair<std::string, std::string>> hash_get_all(const std::string& key) const;
  /// HSET key field value.
  void hash_set(const std::string& key, const std::string& field, const std::string& value);
  /// LRANGE key 0 -1.
  std::vector<std::string> list_range(const std::string& key) const;
  /// Number of subscriptions (channel and pattern) a PUBLISH on `channel` would reach.
  std::int64_t receivers(const std::string& channel) const;

  struct Impl;  ///< implementation detail
  /// The shared state, for the in-process backend; not for applications.
  const std::shared_ptr<Impl>& impl() const noexcept { return impl_; }

 private:
  std::shared_ptr<Impl> impl_;
};

/// The process-wide bus that make_backend() uses by default.
GILMOUR_API std::shared_ptr<Bus> default_bus();
/// A fresh, isolated bus.
GILMOUR_API std::shared_ptr<Bus> make_bus();
/// A backend on `bus`.
GILMOUR_API std::shared_ptr<Backend> make_backend(std::shared_ptr<Bus> bus = default_bus());

}  // namespace gilmour::inproc
