#include "gilmour/message.hpp"

#include "codec.hpp"

namespace gilmour {

std::string Message::error_text() const {
  if (data_.is_string()) return data_.get<std::string>();
  return detail::dump_json(data_);
}

std::string Message::to_json() const { return detail::encode_envelope(data_, code_, sender_); }

}  // namespace gilmour
