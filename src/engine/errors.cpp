// Error records: made from a failed request or slot, reported through the
// hook and the policy.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "codec.hpp"
#include "engine/engine_util.hpp"
#include "engine_impl.hpp"
#include "gilmour/error.hpp"
#include "topic.hpp"

namespace gilmour::detail {

namespace {

std::string topic_of_channel(const std::string& channel) {
  for (auto prefix : {kRequestPrefix, kSlotPrefix}) {
    if (channel.compare(0, prefix.size(), prefix) == 0) return channel.substr(prefix.size());
  }
  return channel;
}

}  // namespace

ErrorRecord Engine::make_record(const Request::Impl& req, int code,
                                nlohmann::json backtrace) const {
  ErrorRecord r;
  r.topic = topic_of_channel(req.channel);
  r.request_data = req.message->to_json();
  r.sender = req.message->sender();
  r.timestamp = ErrorRecord::now_timestamp();
  r.backtrace = std::move(backtrace);
  r.code = code;
  return r;
}

void Engine::report_error(ErrorRecord record) {
  log_->debug("gilmour: error {} on {}", record.code, record.topic);
  if (opts_.error_hook) {
    auto hook = opts_.error_hook;
    auto copy = std::make_shared<ErrorRecord>(record);
    executor_->submit(
        [hook, copy, log = log_] { call_logged(log, "error hook", [&] { hook(*copy); }); });
  }
  if (policy_.load() == ErrorPolicy::kIgnore) return;
  if (io_.on_io_thread()) {
    publish_error(record);
  } else {
    io_.post(
        [self = shared_from_this(), record = std::move(record)] { self->publish_error(record); });
  }
}

void Engine::publish_error(const ErrorRecord& record) {
  auto on_done = [self = shared_from_this()](const Status& s) {
    if (!s) {
      self->counters_.publish_failures.fetch_add(1, std::memory_order_relaxed);
      self->log_->warn("gilmour: error record not reported: {}", s.message());
    }
  };
  switch (policy_.load()) {
    case ErrorPolicy::kPublish:
      counters_.errors_reported.fetch_add(1, std::memory_order_relaxed);
      backend_->publish(opts_.error_channel,
                        encode_envelope_text(record.dump(), record.code, make_uuid()),
                        [on_done](const Status& s, std::int64_t) { on_done(s); });
      break;
    case ErrorPolicy::kQueue:
      counters_.errors_reported.fetch_add(1, std::memory_order_relaxed);
      backend_->list_push_trim(opts_.error_queue, record.dump(),
                               static_cast<std::int64_t>(opts_.error_queue_max), on_done);
      break;
    case ErrorPolicy::kIgnore:
      break;
  }
}

}  // namespace gilmour::detail
