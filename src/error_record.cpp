#include "gilmour/error_record.hpp"

#include <ctime>

#include "codec.hpp"

namespace gilmour {

nlohmann::json ErrorRecord::to_json() const { return nlohmann::json::parse(dump()); }

std::string ErrorRecord::dump() const {
  nlohmann::ordered_json j;
  j["topic"] = topic;
  j["request_data"] = request_data;
  j["user_data"] = user_data;
  j["sender"] = sender;
  j["multi_process"] = multi_process;
  j["timestamp"] = timestamp;
  j["backtrace"] = backtrace;
  j["code"] = code;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool ErrorRecord::from_json(const nlohmann::json& j, ErrorRecord& out) {
  if (!j.is_object()) return false;
  auto str = [&](const char* key, std::string& dst) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return false;
    dst = it->get<std::string>();
    return true;
  };
  if (!str("topic", out.topic) || !str("request_data", out.request_data) ||
      !str("sender", out.sender) || !str("timestamp", out.timestamp)) {
    return false;
  }
  str("user_data", out.user_data);
  auto it = j.find("multi_process");
  out.multi_process = it != j.end() && it->is_boolean() && it->get<bool>();
  it = j.find("backtrace");
  out.backtrace = it != j.end() ? *it : nlohmann::json();
  it = j.find("code");
  if (it == j.end() || !it->is_number_integer()) return false;
  out.code = it->get<int>();
  return true;
}

std::string ErrorRecord::now_timestamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace gilmour
