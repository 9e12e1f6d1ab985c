/* core.h: the broker object, and the services every layer of the library uses.
 *
 * broker/ is layered. At the bottom, net/ (listeners, transports, output queues) and
 * route/ (destinations, subscriptions, deliveries, the commit cycle with the store); above
 * them session/ (one connection's STOMP state and the frame handlers); on top broker.c (the
 * public API and the tick). A layer calls only the layers below it: route reaches a
 * connection only through the endpoint it is given (route/route.h), net only through its
 * stream callbacks and accept callback (net/net.h). The services here (logging, waking the
 * tick, memory accounting, counting handles) call nothing above them; each layer keeps its
 * state in its own part of the broker (net, route, sess).
 */
#ifndef BROKER_CORE_H
#define BROKER_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "admin/admin.h"
#include "broker.h"
#include "net/net.h"
#include "route/route.h"
#include "session/session.h"
#include "stomp.h"
#include "store.h"

struct broker {
    uv_loop_t *loop;
    broker_options o;
    const store_ops *st;
    store *store;
    int store_counted; /* the store cannot report its resident bytes: count message bytes */
    broker_stats stats;
    /* The tick (broker.c) runs after every poll; the idle handle keeps the poll from
     * blocking while the tick has work. */
    uv_idle_t idle;
    uv_check_t check;
    int idle_on;
    int core_closing;
    int stopping, stopped;
    broker_stop_cb stop_cb;
    void *stop_arg;
    int handles_open; /* idle + check + the route's timer + listeners */
    size_t npaused;    /* conns not read because of memory or their own output (the session
                          layer's paused list) */
    int resume_wanted; /* the tick should look at the paused conns again */
    net_state net;
    route_state route;
    session_state sess;
    admin_state admin;
};

/* One log record (see broker_log_fn); conn_id 0 when it concerns no connection. */
void broker__log(broker *b, broker_log_level lvl, broker_event ev, uint64_t conn_id,
                 const char *fmt, ...) PRINTF_LIKE(5, 6);
/* Make sure the tick runs soon (work was queued for it). */
void broker__kick(broker *b);
/* Bytes of messages, output, transactions and held receipts: counted against
 * max_memory. Going back under the limit wakes paused producers. */
void broker__mem_add(broker *b, size_t n);
void broker__mem_sub(broker *b, size_t n);
int broker__over_memory(const broker *b);
/* The same, leaving out mine (bytes the asker itself holds): what others hold decides
 * whether it may go on, so a frame bigger than the limit can still complete. */
int broker__over_memory_without(const broker *b, size_t mine);
/* The time for message times (delays, expiry): ms since the Unix epoch, the clock a
 * persistent store keeps across restarts (broker_options.clock when set). */
uint64_t broker__now_ms(const broker *b);
/* One of the broker's handles (core or listener) closed: the last one during a stop
 * completes it. */
void broker__handle_closed(broker *b);

#endif
