/* core.c: the services every layer of the broker uses: options and their defaults, error
 * and event names, log records, waking the tick, memory accounting, statistics and the
 * count of open handles that ends a stop. Nothing here calls into a layer.
 */
#include "core.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void broker_options_init(broker_options *o)
{
    static const stomp_limits def = STOMP_LIMITS_DEFAULT_INIT;
    memset(o, 0, sizeof *o);
    o->server_name = "stompd/" STOMPD_VERSION;
    o->limits = def;
    o->connect_limits = (stomp_limits){ 64, 1024, 32, 8192, 4096 };
    o->max_connections = 16384;
    o->max_subscriptions = 256;
    o->max_unacked = 1024;
    o->default_prefetch = 100;
    o->max_tx_frames = 1024;
    o->max_transactions = 16;
    o->output_high_water = 1u << 20;
    o->max_output_bytes = 64u << 20;
    o->max_memory = (size_t)1 << 30;
    o->read_buffer = 64u << 10;
    o->connect_timeout_ms = 10000;
    o->heartbeat_out_ms = 1000;
    o->heartbeat_in_ms = 10000;
    o->heartbeat_grace_pct = 200;
    o->error_linger_ms = 2000;
    o->stop_timeout_ms = 5000;
    o->policy.max_deliveries = 10;
    o->policy.redelivery_delay = 1000;
    o->policy.redelivery_backoff = 2.0;
    o->policy.redelivery_delay_max = 60000;
    o->policy.max_delay = 86400000;
    o->log_level = BROKER_LOG_INFO;
    o->store_sync_full = 1;
    o->ws_path = "/ws";
    o->ws_max_message = (16u << 20) + (64u << 10);
    o->flash_policy = 1;
    o->policy_domains = "*";
    o->auth_fail_delay_ms = 1000;
    o->tls_min_version = 12;
    o->metrics_max_destinations = 1000;
}

const char *broker_strerror(broker_err err)
{
    switch (err) {
    case BROKER_OK: return "ok";
    case BROKER_E_NOMEM: return "out of memory";
    case BROKER_E_INVALID: return "invalid argument";
    case BROKER_E_ADDRESS: return "not an IPv4 or IPv6 address";
    case BROKER_E_LISTEN: return "cannot listen on that address";
    case BROKER_E_STATE: return "not allowed while the broker is stopping";
    case BROKER_E_STORE: return "the store failed";
    case BROKER_E_PROTOCOL: return "protocol error";
    case BROKER_E_LIMIT: return "over a configured limit";
    case BROKER_E_NOTFOUND: return "unknown id";
    case BROKER_E_TLS: return "TLS is not configured or its files are unusable";
    case BROKER_E_DENIED: return "permission denied";
    case BROKER_E__COUNT: break;
    }
    return "unknown error";
}

const char *broker_event_name(broker_event ev)
{
    static const char *const names[BROKER_EV__COUNT] = {
        [BROKER_EV_BROKER] = "broker",
        [BROKER_EV_LISTEN] = "listen",
        [BROKER_EV_ACCEPT] = "accept",
        [BROKER_EV_CONN_ERROR] = "conn-error",
        [BROKER_EV_AUTH_OK] = "auth-ok",
        [BROKER_EV_AUTH_REFUSED] = "auth-refused",
        [BROKER_EV_WEBSOCKET] = "websocket",
        [BROKER_EV_POLICY] = "policy",
        [BROKER_EV_STORE] = "store",
        [BROKER_EV_TLS] = "tls",
        [BROKER_EV_ACL_REFUSED] = "acl-refused",
        [BROKER_EV_ADMIN] = "admin",
    };
    return (unsigned)ev < BROKER_EV__COUNT ? names[ev] : "unknown";
}

void broker__log(broker *b, broker_log_level lvl, broker_event ev, uint64_t conn_id,
                 const char *fmt, ...)
{
    if (!b->o.log || lvl > b->o.log_level)
        return;
    char text[512], clean[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    /* Texts name what peers sent (destinations, headers, logins), which may hold line
     * breaks and other control characters: written as \xNN, a record stays one line. */
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && n + 5 < sizeof clean;
         p++) {
        if (*p < 0x20 || *p == 0x7f)
            n += (size_t)snprintf(clean + n, sizeof clean - n, "\\x%02x", *p);
        else
            clean[n++] = (char)*p;
    }
    clean[n] = '\0';
    b->o.log(b->o.log_ctx, lvl, conn_id, ev, clean);
}

static void on_idle(uv_idle_t *h)
{
    (void)h; /* exists only so the poll does not block while the tick has work */
}

void broker__kick(broker *b)
{
    if (!b->idle_on && !b->core_closing) {
        uv_idle_start(&b->idle, on_idle);
        b->idle_on = 1;
    }
}

void broker__mem_add(broker *b, size_t n)
{
    b->stats.memory += n;
}

void broker__mem_sub(broker *b, size_t n)
{
    b->stats.memory -= n < b->stats.memory ? n : b->stats.memory;
    /* A paused producer may go on once what others hold is under the limit: the tick
     * looks (each paused conn judges for itself, leaving out what it holds). */
    if (b->npaused && n && !b->resume_wanted) {
        b->resume_wanted = 1;
        broker__kick(b);
    }
}

/* What the store holds in memory, when it can say (else its bytes are in stats.memory). */
static size_t store_resident(const broker *b)
{
    return b->store_counted ? 0 : b->st->resident(b->store);
}

int broker__over_memory(const broker *b)
{
    return b->stats.memory + store_resident(b) > b->o.max_memory;
}

int broker__over_memory_without(const broker *b, size_t mine)
{
    size_t counted = b->stats.memory > mine ? b->stats.memory - mine : 0;
    return counted + store_resident(b) > b->o.max_memory;
}

uint64_t broker__now_ms(const broker *b)
{
    if (b->o.clock)
        return b->o.clock(b->o.clock_ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void broker__handle_closed(broker *b)
{
    if (--b->handles_open == 0 && b->stopping && !b->stopped) {
        b->stopped = 1;
        if (b->stop_cb)
            b->stop_cb(b, b->stop_arg);
    }
}

void broker_get_stats(const broker *b, broker_stats *out)
{
    *out = b->stats;
    out->memory += store_resident(b);
}
