#include "gilmour/backend.hpp"

namespace gilmour {

const char* to_string(StatusCode code) noexcept {
  switch (code) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kNotConnected:
      return "not connected";
    case StatusCode::kClosing:
      return "closing";
    case StatusCode::kTimeout:
      return "timeout";
    case StatusCode::kServerError:
      return "server error";
    case StatusCode::kNoListeners:
      return "no listeners";
    case StatusCode::kInvalid:
      return "invalid";
    case StatusCode::kInternal:
      return "internal";
    case StatusCode::kOverloaded:
      return "overloaded";
  }
  return "internal";
}

}  // namespace gilmour
