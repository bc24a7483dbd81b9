// The floor: the same Redis commands as the library, issued with hiredis
// directly (no JSON library, no thread hand-off), in separate processes.
// - raw replier: SUBSCRIBE gilmour.request.<T>; per request SET <S>_default
//   NX EX 600 then PUBLISH gilmour.response.<S>; one libuv loop.
// - raw requester: PUBLISH gilmour.request.<T>, one PSUBSCRIBE
//   gilmour.response.raw.<pid>.*; one libuv loop.
// - raw signaller: pipelined PUBLISH (at most --window unanswered);
//   raw slot: SUBSCRIBE, counting messages. Both synchronous hiredis.
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <unistd.h>
#include <uv.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include "raw_replier.hpp"
#include "roles.hpp"

namespace gilmour::bench {
namespace {

constexpr const char* kRequestChannel = "gilmour.request.bench.raw";
constexpr const char* kSignalChannel = "gilmour.slot.bench.raw";
constexpr std::string_view kBody = R"({"data":{"n":1},"code":200,"sender":")";

int port_of(const Args& a) { return static_cast<int>(a.num("port", 6379)); }

redisAsyncContext* async_connect(uv_loop_t* loop, int port) {
  redisAsyncContext* ac = redisAsyncConnect("127.0.0.1", port);
  if (!ac || ac->err) {
    std::fprintf(stderr, "raw: cannot connect to port %d\n", port);
    std::_Exit(1);  // nothing to clean up yet
  }
  redisLibuvAttach(ac, loop);
  return ac;
}

redisContext* sync_connect(int port) {
  redisContext* c = redisConnect("127.0.0.1", port);
  if (!c || c->err) {
    std::fprintf(stderr, "raw: cannot connect to port %d\n", port);
    std::_Exit(1);  // nothing to clean up yet
  }
  return c;
}

bool is_message(const redisReply* r, const char* kind) {
  return r && r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
         std::strcmp(r->element[0]->str, kind) == 0;
}

// ------------------------------------------------------------ replier

struct RawReplier {
  uv_loop_t* loop = uv_default_loop();
  redisAsyncContext* sub = nullptr;
  redisAsyncContext* cmd = nullptr;

  static void on_request(redisAsyncContext*, void* reply, void* priv) {
    auto* self = static_cast<RawReplier*>(priv);
    auto* r = static_cast<redisReply*>(reply);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        std::strcmp(r->element[0]->str, "subscribe") == 0) {
      say_ready();
      return;
    }
    if (is_message(r, "message")) raw_lock_then_respond(self->cmd, r);
  }
};

// ------------------------------------------------------------ requester

struct RawRequester {
  uv_loop_t* loop = uv_default_loop();
  redisAsyncContext* sub = nullptr;
  redisAsyncContext* cmd = nullptr;
  Window w;
  int inflight = 1;
  std::uint64_t seq = 0;
  std::string prefix = "raw." + std::to_string(::getpid()) + ".";
  std::vector<Clock::time_point> starts = std::vector<Clock::time_point>(1024);

  void publish() {
    std::uint64_t s = ++seq;
    starts[s & 1023] = Clock::now();
    std::string payload(kBody);
    payload += prefix + std::to_string(s) + "\"}";
    const char* argv[] = {"PUBLISH", kRequestChannel, payload.data()};
    size_t len[] = {7, std::strlen(kRequestChannel), payload.size()};
    redisAsyncCommandArgv(cmd, nullptr, nullptr, 3, argv, len);
  }
  static void on_response(redisAsyncContext*, void* reply, void* priv) {
    auto* self = static_cast<RawRequester*>(priv);
    auto* r = static_cast<redisReply*>(reply);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        std::strcmp(r->element[0]->str, "psubscribe") == 0) {
      for (int i = 0; i < self->inflight; ++i) self->publish();
      return;
    }
    if (!is_message(r, "pmessage") || r->elements != 4) return;
    std::string_view channel(r->element[2]->str, r->element[2]->len);
    auto s =
        std::strtoull(std::string(channel.substr(channel.rfind('.') + 1)).c_str(), nullptr, 10);
    self->w.record(self->starts[s & 1023], true);
    if (!self->w.stop.load()) self->publish();
  }
};

}  // namespace

int role_raw_replier(const Args& a) {
  RawReplier rr;
  rr.sub = async_connect(rr.loop, port_of(a));
  rr.cmd = async_connect(rr.loop, port_of(a));
  const char* argv[] = {"SUBSCRIBE", kRequestChannel};
  redisAsyncCommandArgv(rr.sub, RawReplier::on_request, &rr, 2, argv, nullptr);
  uv_run(rr.loop, UV_RUN_DEFAULT);
  return 1;  // the loop only ends when a connection broke
}

int role_raw_requester(const Args& a) {
  auto* rq = new RawRequester;  // lives until _exit
  rq->inflight = static_cast<int>(a.num("inflight", 1));
  rq->sub = async_connect(rq->loop, port_of(a));
  rq->cmd = async_connect(rq->loop, port_of(a));
  std::string pattern = "gilmour.response." + rq->prefix + "*";
  const char* argv[] = {"PSUBSCRIBE", pattern.c_str()};
  redisAsyncCommandArgv(rq->sub, RawRequester::on_response, rq, 2, argv, nullptr);
  std::thread loop([rq] { uv_run(rq->loop, UV_RUN_DEFAULT); });
  loop.detach();
  measure_and_report(rq->w, a);
  std::_Exit(0);  // the loop thread still runs: no orderly teardown needed
}

int role_raw_signaller(const Args& a) {
  redisContext* c = sync_connect(port_of(a));
  std::string payload(kBody);
  payload += "raw.signaller\"}";
  auto window = static_cast<long>(a.num("window", 1000));
  auto append = [&] {
    redisAppendCommand(c, "PUBLISH %s %b", kSignalChannel, payload.data(), payload.size());
  };
  long sent = 0;
  long errors = 0;
  auto t0 = Clock::now();
  auto end = t0 + std::chrono::duration_cast<Clock::duration>(
                      std::chrono::duration<double>(a.num("seconds", 1)));
  for (long i = 0; i < window; ++i, ++sent) append();
  for (long pending = window; pending > 0; --pending) {
    void* reply = nullptr;
    if (redisGetReply(c, &reply) != REDIS_OK) {
      ++errors;
      break;
    }
    freeReplyObject(reply);
    if (Clock::now() < end) {
      append();
      ++sent;
      ++pending;
    }
  }
  double took = std::chrono::duration<double>(Clock::now() - t0).count();
  print_result({{"sent", static_cast<double>(sent)},
                {"rate", static_cast<double>(sent) / took},
                {"errors", static_cast<double>(errors)}});
  redisFree(c);
  return 0;
}

int role_raw_slot(const Args& a) {
  redisContext* c = sync_connect(port_of(a));
  auto* first = static_cast<redisReply*>(redisCommand(c, "SUBSCRIBE %s", kSignalChannel));
  if (!first) return 1;
  freeReplyObject(first);
  auto* counter = new DeliveryCounter;  // lives until _exit
  std::thread reader([c, counter] {
    void* reply = nullptr;
    while (redisGetReply(c, &reply) == REDIS_OK) {
      if (is_message(static_cast<redisReply*>(reply), "message")) counter->hit();
      freeReplyObject(reply);
    }
  });
  reader.detach();
  say_ready();
  counter->report_when_quiet(kQuietAfterLast,
                             std::chrono::seconds(static_cast<int>(a.num("give-up", 120))));
  std::_Exit(0);  // the reader is blocked in a read
}

}  // namespace gilmour::bench
