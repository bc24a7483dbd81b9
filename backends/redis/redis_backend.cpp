// Placeholder until the hiredis implementation lands.
#include "gilmour/backends/redis.hpp"
#include "gilmour/error.hpp"

namespace gilmour::redis {

std::shared_ptr<Backend> make_backend(Options) {
  throw InvalidState("gilmour::redis: the Redis backend is not implemented yet");
}

std::shared_ptr<Backend> make_backend(std::string_view url) {
  return make_backend(Options::from_url(url));
}

}  // namespace gilmour::redis
