// The raw hiredis floor's replier step, shared by gilmour_bench (roles_raw)
// and gilmour_bench_response_scheme: for one request message, SET
// <sender>_default NX EX 600 on `cmd`, and when the lock is won PUBLISH the
// response on gilmour.response.<sender>. No JSON library, no thread hand-off.
#pragma once

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

namespace gilmour::bench {

/// `message` is a pub/sub "message" reply ([kind, channel, payload]); one
/// without a sender is ignored.
void raw_lock_then_respond(redisAsyncContext* cmd, const redisReply* message);

}  // namespace gilmour::bench
