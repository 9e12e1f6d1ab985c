/* admin.h: the management layer: an HTTP listener of its own serving JSON views of the
 * broker, a few actions, Prometheus metrics and the web console's files.
 *
 * It sits on top, beside broker.c: it reads route's destinations and session's
 * connections through the view functions those layers export (route/stats.c,
 * session/view.c) and acts through them (drains, closing a connection); nothing below
 * calls it. It is never on the data path: the counters it shows are kept in place by the
 * layers, and rates are computed here on a one-second timer. Every request logs in with
 * HTTP Basic through the broker's authenticate hooks; every action is logged.
 */
#ifndef BROKER_ADMIN_H
#define BROKER_ADMIN_H

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "broker.h"

typedef struct http_conn http_conn;

#define ADMIN_REMEMBERED 8       /* logins remembered at once */
#define ADMIN_REMEMBER_MS 60000  /* for this long after their check */

typedef struct admin_listener {
    struct admin_listener *next;
    broker *b;
    uv_tcp_t tcp;
    int port;
    int tls; /* HTTPS, with the broker's TLS settings */
} admin_listener;

/* The admin layer's part of the broker. */
typedef struct admin_state {
    admin_listener *listeners;
    http_conn *conns;       /* open HTTP connections */
    uv_timer_t timer;       /* the rate tick, once a listener is open */
    int timer_on;
    uint64_t started;       /* broker_create, ms since the Unix epoch */
    uint64_t last_tick;     /* loop time of the last rate tick */
    uint64_t last_in, last_out;
    double rate_in, rate_out; /* messages per second, broker-wide */
    uint64_t dropped_series; /* per-destination series /metrics left out, ever */
    /* The largest body buffer written lately, kept for the next large body: with 10,000
     * queues, touching megabytes of fresh pages cost more than writing the text. */
    char *spare;
    size_t spare_cap;
    /* Logins accepted lately: a digest of login and passcode (salted per broker), so a
     * console polling every few seconds costs one passcode check a minute, not one per
     * request. */
    struct {
        uint8_t digest[32];
        uint64_t until; /* loop time it is good until (0: empty) */
    } remembered[ADMIN_REMEMBERED];
    uint8_t salt[16];
} admin_state;

/* ---- the layer's entry points (http.c), for broker.c ---- */

void admin__init(broker *b);
broker_err admin__listen(broker *b, const char *host, int port, int tls,
                         int *bound_port) BROKER_WUR;
/* broker_stop: listeners, HTTP connections and the timer close (each counts as a broker
 * handle until its close callback). */
void admin__stop(broker *b);
/* broker_free: what the layer still holds after the stop. */
void admin__free(broker *b);

#endif
