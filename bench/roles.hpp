// The processes of the issue-9 suite (gilmour_bench --role NAME ...). A
// server-like role prints "READY" once it serves and runs until killed; a
// measuring role prints one RESULT line (bench_common.hpp) and exits.
// Every role takes --port (the bench redis-server); NATS roles take --nats.
#pragma once

#include "bench_common.hpp"

namespace gilmour::bench {

// Library roles (roles_engine.cpp).
int role_replier(const Args& a);    // --mode default|inline [--sleep-ms --workers --group
                                    //  --lock-delay-ms --max-pending]
int role_requester(const Args& a);  // --mode --inflight (--seconds --warmup | --count)
int role_signaller(const Args& a);  // --seconds --window
int role_slot(const Args& a);       // --mode; RESULT once signals stop arriving
int role_idle(const Args& a);       // --slots N --handlers N

// Raw hiredis floor (roles_raw.cpp).
int role_raw_replier(const Args& a);
int role_raw_requester(const Args& a);  // --inflight --seconds --warmup
int role_raw_signaller(const Args& a);  // --seconds --window
int role_raw_slot(const Args& a);

// NATS core reference (roles_nats.cpp); both fail with a message when the
// bench was built without libnats.
bool nats_built();
int role_nats_replier(const Args& a);
int role_nats_requester(const Args& a);  // --inflight --seconds --warmup

/// How long a slot waits after the last signal before it reports.
inline constexpr auto kQuietAfterLast = std::chrono::milliseconds(700);

}  // namespace gilmour::bench
