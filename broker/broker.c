/* broker.c: the broker object: options, lifecycle (create, stop, free), the tick, memory
 * accounting, logging, in-process publish/subscribe and stats.
 *
 * The tick (a check handle, run after every poll) is the safe point: conns failed during
 * the turn are detached there, deferred queue dispatch runs, the turn's store writes are
 * committed and all output gathered during the turn is written, one write per connection.
 * An idle handle runs only while the tick has work, so the poll does not block meanwhile.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    o->log_level = BROKER_LOG_INFO;
    o->store_sync_full = 1;
    o->ws_path = "/ws";
    o->ws_max_message = (16u << 20) + (64u << 10);
    o->flash_policy = 1;
    o->policy_domains = "*";
    o->auth_fail_delay_ms = 1000;
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
    };
    return (unsigned)ev < BROKER_EV__COUNT ? names[ev] : "unknown";
}

void broker__log(broker *b, broker_log_level lvl, broker_event ev, uint64_t conn_id,
                 const char *fmt, ...)
{
    if (!b->o.log || lvl > b->o.log_level)
        return;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    b->o.log(b->o.log_ctx, lvl, conn_id, ev, text);
}

static void tick(broker *b);

static void on_check(uv_check_t *h)
{
    tick(h->data);
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

void broker__doom(broker *b, conn *c)
{
    if (c->doomed || c->detached)
        return;
    c->doomed = 1;
    c->next_doomed = b->doomed;
    b->doomed = c;
    broker__kick(b);
}

void broker__mem_add(broker *b, size_t n)
{
    b->stats.memory += n;
}

void broker__mem_sub(broker *b, size_t n)
{
    int was_over = broker__over_memory(b);
    b->stats.memory -= n < b->stats.memory ? n : b->stats.memory;
    if (was_over && b->npaused && !broker__over_memory(b)) {
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

static void tick(broker *b)
{
    /* Bounded: each pass only handles work made by the previous one. */
    for (int pass = 0; pass < 4; pass++) {
        handle__auth_run(b);
        while (b->doomed) {
            conn *c = b->doomed;
            b->doomed = c->next_doomed;
            c->doomed = 0;
            conn__detach(c);
            conn__maybe_close(c);
        }
        if (b->resume_wanted && !b->stopping) {
            b->resume_wanted = 0;
            for (conn *c = b->conns; c; c = c->next)
                if (c->paused_mem || c->paused_out)
                    conn__resume(c);
        }
        while (b->dispatch_list) {
            dest_t *d = b->dispatch_list;
            b->dispatch_list = d->next_dispatch;
            d->on_dispatch = 0;
            router__dispatch(b, d);
            router__release(b, d);
        }
        commit__run(b);
        if (!b->doomed && !b->dispatch_list && !b->resume_wanted && !b->auth_ready)
            break;
    }
    while (b->flush_list) {
        conn *c = b->flush_list;
        b->flush_list = c->next_flush;
        c->on_flush = 0;
        conn__flush(c);
    }
    if (b->idle_on && !b->doomed && !b->dispatch_list && !b->flush_list &&
        !(b->dirty && !b->commit_inflight) && !b->resume_wanted && !b->auth_ready) {
        uv_idle_stop(&b->idle);
        b->idle_on = 0;
    }
    broker__maybe_finish_stop(b);
}

broker_err broker_create(uv_loop_t *loop, const broker_options *opts, broker **out)
{
    if (!loop || !out)
        return BROKER_E_INVALID;
    broker *b = calloc(1, sizeof *b);
    if (!b)
        return BROKER_E_NOMEM;
    if (opts)
        b->o = *opts;
    else
        broker_options_init(&b->o);
    if (b->o.authenticate && b->o.authenticate_async) {
        free(b);
        return BROKER_E_INVALID;
    }
    if (!b->o.server_name)
        b->o.server_name = "stompd/" STOMPD_VERSION;
    if (b->o.heartbeat_grace_pct < 200)
        b->o.heartbeat_grace_pct = 200;
    if (b->o.read_buffer < 512)
        b->o.read_buffer = 512;
    if (!b->o.max_unacked)
        b->o.max_unacked = 1;
    if (!b->o.default_prefetch)
        b->o.default_prefetch = 1;
    b->loop = loop;
    b->st = b->o.store ? b->o.store : store_memory_backend();
    char why[256] = "";
    store_options so = { loop, b->o.store_path, b->o.store_sync_full, why, sizeof why };
    store_err se = b->st->version < 1 ? STORE_E_INVALID : b->st->open(&so, &b->store);
    if (se != STORE_OK) {
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0, "store %s: cannot open%s%s: %s", b->st->name,
                    b->o.store_path ? " " : "", b->o.store_path ? b->o.store_path : "",
                    why[0] ? why : store_strerror(se));
        free(b);
        return BROKER_E_STORE;
    }
    /* A store that reports its resident bytes is asked; an older one is counted by the
     * bytes of the messages it holds. */
    b->store_counted = b->st->version < 2 || !b->st->resident;
    b->epoch = 1;
    uv_idle_init(loop, &b->idle);
    uv_check_init(loop, &b->check);
    b->idle.data = b;
    b->check.data = b;
    uv_check_start(&b->check, on_check);
    /* The tick must not keep an otherwise idle loop alive (e.g. before any listen). */
    uv_unref((uv_handle_t *)&b->check);
    b->handles_open = 2;
    *out = b;
    return BROKER_OK;
}

void broker__handle_closed(broker *b)
{
    if (--b->handles_open == 0 && b->stopping && !b->stopped) {
        b->stopped = 1;
        if (b->stop_cb)
            b->stop_cb(b, b->stop_arg);
    }
}

static void on_core_closed(uv_handle_t *h)
{
    broker__handle_closed(h->data);
}

void broker__maybe_finish_stop(broker *b)
{
    if (!b->stopping || b->core_closing || b->conns || b->doomed || b->auth_outstanding)
        return;
    if (b->dirty && !b->commit_inflight)
        commit__run(b);
    if (b->commit_inflight)
        return;
    b->core_closing = 1;
    if (b->idle_on)
        uv_idle_stop(&b->idle);
    b->idle_on = 0;
    uv_close((uv_handle_t *)&b->idle, on_core_closed);
    uv_close((uv_handle_t *)&b->check, on_core_closed);
}

void broker__conn_freed(broker *b)
{
    broker__maybe_finish_stop(b);
}

broker_err broker_stop(broker *b, broker_stop_cb cb, void *arg)
{
    if (!b)
        return BROKER_E_INVALID;
    if (b->stopping)
        return BROKER_E_STATE;
    b->stopping = 1;
    b->stop_cb = cb;
    b->stop_arg = arg;
    listen__close_all(b);
    for (conn *c = b->conns; c; c = c->next)
        conn__close(c);
    /* The tick finishes the job; make sure it runs even if nothing else is active. */
    uv_ref((uv_handle_t *)&b->check);
    broker__kick(b);
    return BROKER_OK;
}

void broker_free(broker *b)
{
    if (!b)
        return;
    if (!b->stopped) {
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_BROKER, 0, "broker_free before the stop completed: ignored");
        return;
    }
    router__free_all(b);
    sub__free_cache(b);
    b->st->close(b->store);
    free(b->scratch);
    free(b->rbuf);
    free(b->encbuf);
    free(b->iov);
    free(b);
}

uv_loop_t *broker_loop(const broker *b)
{
    return b->loop;
}

void broker_get_stats(const broker *b, broker_stats *out)
{
    *out = b->stats;
    out->memory += store_resident(b);
}

broker_err broker_publish(broker *b, const char *dest, const broker_header *headers,
                          size_t nheaders, const void *body, size_t body_len)
{
    if (!b || !dest || !*dest || (nheaders && !headers) || (body_len && !body))
        return BROKER_E_INVALID;
    if (b->stopping)
        return BROKER_E_STATE;
    bmsg *m = bmsg__from_parts(dest, headers, nheaders, body, body_len);
    if (!m)
        return BROKER_E_NOMEM;
    int stored;
    broker_err rc = router__send(b, m, &stored);
    bmsg__unref(m);
    return rc;
}

const char *broker_message_header(const broker_message *m, const char *name)
{
    return msg__block_header(m->hdr_block, m->hdr_len, name);
}

broker_err broker_subscribe(broker *b, const char *dest, broker_message_cb cb, void *arg,
                            broker_sub **out)
{
    if (!b || !dest || !*dest || !cb || !out)
        return BROKER_E_INVALID;
    if (b->stopping)
        return BROKER_E_STATE;
    char id[32];
    int n = snprintf(id, sizeof id, "inproc-%llu", (unsigned long long)++b->inproc_seq);
    sub *s = sub__new(b, NULL, id, (size_t)n, ACK_AUTO, b->o.max_unacked, STOMP_V12);
    if (!s)
        return BROKER_E_NOMEM;
    s->cb = cb;
    s->cb_arg = arg;
    dest_t *d = router__get(b, dest, strlen(dest));
    if (!d) {
        sub__free(s);
        return BROKER_E_NOMEM;
    }
    /* Queue dispatch happens at the tick, so cb never runs inside this call. */
    router__add_sub(b, d, s);
    *out = s;
    return BROKER_OK;
}

void broker_unsubscribe(broker_sub *s)
{
    if (s)
        router__remove_sub(s->b, s);
}
