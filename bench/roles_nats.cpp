// NATS core request/reply, a reference line: a replier subscribed to the
// subject answers on the message's reply subject; the requester keeps
// --inflight requests out with one wildcard inbox subscription (the same
// shape as the raw Redis floor). Client defaults, or --mode asap.
#include <cstdio>

#include "roles.hpp"

#ifdef GILMOUR_BENCH_NATS
#include <nats/nats.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#endif

namespace gilmour::bench {

#ifdef GILMOUR_BENCH_NATS
namespace {

constexpr const char* kSubject = "bench.echo";
constexpr std::string_view kBody = R"({"data":{"n":1},"code":200})";

/// --mode asap: natsOptions_SetSendAsap (each publish written at once rather
/// than buffered for the flusher thread); otherwise the client's defaults.
natsConnection* nats_connect(const Args& a) {
  natsOptions* opts = nullptr;
  natsConnection* nc = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  if (s == NATS_OK) s = natsOptions_SetURL(opts, a.str("nats").c_str());
  if (s == NATS_OK && a.str("mode") == "asap") s = natsOptions_SetSendAsap(opts, true);
  if (s == NATS_OK) s = natsConnection_Connect(&nc, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK) {
    std::fprintf(stderr, "nats: cannot connect to %s: %s\n", a.str("nats").c_str(),
                 natsStatus_GetText(s));
    std::_Exit(1);  // nothing to clean up yet
  }
  return nc;
}

void on_request(natsConnection* nc, natsSubscription*, natsMsg* msg, void*) {
  const char* reply = natsMsg_GetReply(msg);
  if (reply) natsConnection_Publish(nc, reply, natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
  natsMsg_Destroy(msg);
}

struct NatsRequester {
  natsConnection* nc = nullptr;
  Window w;
  std::string inbox = "bench.inbox." + std::to_string(::getpid()) + ".";
  std::uint64_t seq = 0;
  std::vector<Clock::time_point> starts = std::vector<Clock::time_point>(1024);

  void publish() {
    std::uint64_t s = ++seq;
    starts[s & 1023] = Clock::now();
    std::string reply = inbox + std::to_string(s);
    natsConnection_PublishRequest(nc, kSubject, reply.c_str(), kBody.data(),
                                  static_cast<int>(kBody.size()));
  }
  static void on_response(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto* self = static_cast<NatsRequester*>(closure);
    std::string_view subject = natsMsg_GetSubject(msg);
    auto s =
        std::strtoull(std::string(subject.substr(subject.rfind('.') + 1)).c_str(), nullptr, 10);
    natsMsg_Destroy(msg);
    self->w.record(self->starts[s & 1023], true);
    if (!self->w.stop.load()) self->publish();
  }
};

}  // namespace

bool nats_built() { return true; }

int role_nats_replier(const Args& a) {
  natsConnection* nc = nats_connect(a);
  natsSubscription* sub = nullptr;
  if (natsConnection_Subscribe(&sub, nc, kSubject, on_request, nullptr) != NATS_OK ||
      natsConnection_Flush(nc) != NATS_OK) {
    std::fprintf(stderr, "nats: cannot subscribe\n");
    return 1;
  }
  say_ready();
  serve_forever();
}

int role_nats_requester(const Args& a) {
  auto* rq = new NatsRequester;  // lives until _exit
  rq->nc = nats_connect(a);
  natsSubscription* sub = nullptr;
  std::string pattern = rq->inbox + "*";
  if (natsConnection_Subscribe(&sub, rq->nc, pattern.c_str(), NatsRequester::on_response, rq) !=
          NATS_OK ||
      natsConnection_Flush(rq->nc) != NATS_OK) {
    std::fprintf(stderr, "nats: cannot subscribe\n");
    return 1;
  }
  auto inflight = static_cast<int>(a.num("inflight", 1));
  for (int i = 0; i < inflight; ++i) rq->publish();
  natsConnection_Flush(rq->nc);
  measure_and_report(rq->w, a);
  std::_Exit(0);  // the client's threads still run
}

#else

bool nats_built() { return false; }

namespace {
int no_nats() {
  std::fprintf(stderr, "built without libnats (install libnats-dev and reconfigure)\n");
  return 2;
}
}  // namespace

int role_nats_replier(const Args&) { return no_nats(); }
int role_nats_requester(const Args&) { return no_nats(); }

#endif

}  // namespace gilmour::bench
