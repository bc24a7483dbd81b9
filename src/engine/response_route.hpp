// How a requester receives its responses (EngineOptions::response_scheme),
// as a strategy: the requester calls the same four steps whatever the
// scheme, and each scheme does what it needs on the backend. I/O thread only.
// Not installed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "gilmour/backend.hpp"
#include "gilmour/options.hpp"

namespace gilmour::detail {

class ResponseRoute {
 public:
  using Done = std::function<void(const Status&)>;
  virtual ~ResponseRoute() = default;

  /// At start(): subscribes what every request shares.
  virtual void open(Backend& b, Done done) = 0;
  /// At stop(): undoes open().
  virtual void close(Backend& b) = 0;
  /// Before request `seq` is published: `ready` runs (on the I/O thread)
  /// once its response can be received, with an error when it cannot.
  virtual void prepare(Backend& b, std::uint64_t seq, Done ready) = 0;
  /// After request `seq` completed, however it completed.
  virtual void release(Backend& b, std::uint64_t seq) = 0;

  /// The channel request `seq`'s response arrives on.
  std::string channel(std::uint64_t seq) const { return prefix_ + std::to_string(seq); }
  /// `gilmour.response.<engine-id>.`: every response channel starts so.
  const std::string& prefix() const noexcept { return prefix_; }

 protected:
  explicit ResponseRoute(std::string prefix) : prefix_(std::move(prefix)) {}

 private:
  std::string prefix_;
};

/// The route for `scheme`; response channels are `prefix` + sequence.
std::unique_ptr<ResponseRoute> make_response_route(ResponseScheme scheme, std::string prefix);

}  // namespace gilmour::detail
