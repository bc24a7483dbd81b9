#include "engine/response_route.hpp"

namespace gilmour::detail {

namespace {

/// One PSUBSCRIBE `<prefix>*` for the engine's life: nothing per request.
class EnginePattern final : public ResponseRoute {
 public:
  explicit EnginePattern(std::string prefix) : ResponseRoute(std::move(prefix)) {}
  void open(Backend& b, Done done) override { b.subscribe(prefix() + "*", true, std::move(done)); }
  void close(Backend& b) override {
    b.unsubscribe(prefix() + "*", true, [](const Status&) {});
  }
  void prepare(Backend&, std::uint64_t, Done ready) override { ready(Status()); }
  void release(Backend&, std::uint64_t) override {}
};

/// A SUBSCRIBE per request, confirmed before the publish (as Go and Ruby do).
class PerRequest final : public ResponseRoute {
 public:
  explicit PerRequest(std::string prefix) : ResponseRoute(std::move(prefix)) {}
  void open(Backend&, Done done) override { done(Status()); }
  void close(Backend&) override {}
  void prepare(Backend& b, std::uint64_t seq, Done ready) override {
    b.subscribe(channel(seq), false, std::move(ready));
  }
  void release(Backend& b, std::uint64_t seq) override {
    b.unsubscribe(channel(seq), false, [](const Status&) {});
  }
};

}  // namespace

std::unique_ptr<ResponseRoute> make_response_route(ResponseScheme scheme, std::string prefix) {
  if (scheme == ResponseScheme::kPerRequest) return std::make_unique<PerRequest>(std::move(prefix));
  return std::make_unique<EnginePattern>(std::move(prefix));
}

}  // namespace gilmour::detail
