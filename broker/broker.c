/* broker.c: the public API of libbroker over its layers: options, create, listen, stop,
 * free, in-process publish and subscribe; and the tick.
 *
 * The tick (a check handle, run after every poll) is the safe point: conns failed during
 * the turn are torn down there, deferred queue dispatch runs, the turn's store writes are
 * committed and all output gathered during the turn is written, one write per connection.
 * An idle handle runs only while the tick has work, so the poll does not block meanwhile.
 */
#include "core.h"
#include "store_postgres.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tick_has_work(const broker *b)
{
    return session__busy(b) || route__busy(b) || b->net.flush_list || commit__pending(b);
}

static void finish_stop(broker *b);

static void on_core_closed(uv_handle_t *h)
{
    broker__handle_closed(h->data);
}

static void tick(broker *b)
{
    /* Bounded: each pass only handles work made by the previous one. */
    for (int pass = 0; pass < 4; pass++) {
        session__tick(b);
        route__tick(b);
        commit__run(b);
        if (!session__busy(b) && !route__busy(b))
            break;
    }
    net__flush_all(b);
    if (b->idle_on && !tick_has_work(b)) {
        uv_idle_stop(&b->idle);
        b->idle_on = 0;
    }
    finish_stop(b);
}

static void on_check(uv_check_t *h)
{
    tick(h->data);
}

/* Options a caller may leave out or set too low. */
static void fix_options(broker_options *o)
{
    if (!o->server_name)
        o->server_name = "stompd/" STOMPD_VERSION;
    if (o->heartbeat_grace_pct < 200)
        o->heartbeat_grace_pct = 200;
    if (o->read_buffer < 512)
        o->read_buffer = 512;
    if (!o->max_unacked)
        o->max_unacked = 1;
    if (!o->default_prefetch)
        o->default_prefetch = 1;
}

/* The store ops this broker calls: time (5), get (6), the lifecycle (7), take_match and
 * queues (8: selectors and wildcards on queues). */
#define STORE_OPS_NEEDED 8u

/* The store's word that a queue may have messages from elsewhere (dispatch it), or that
 * it put writes of its own in the open batch (commit). */
static void store_wake(void *arg, const char *queue, size_t len, uint64_t hash)
{
    broker *b = arg;
    if (b->stopping)
        return;
    if (!queue) {
        commit__again(b);
        return;
    }
    dest_t *d = dest__find(b, queue, len, hash);
    if (d)
        dest__schedule(b, d);
}

/* A topic message another node published. */
static void store_topic(void *arg, const store_postgres_topic *m)
{
    topic__remote(arg, m->dest, m->dest_len, m->headers, m->headers_len, m->body, m->body_len,
                  m->expires);
}

static broker_err open_store(broker *b)
{
    b->st = b->o.store ? b->o.store : store_memory_backend();
    char why[256] = "";
    store_options so = { b->loop, b->o.store_path, b->o.store_sync_full, why, sizeof why,
                         b->o.store_lease_ms, store_wake, b };
    if (b->st->version < STORE_OPS_NEEDED) {
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0,
                    "store %s: ops version %u, this broker needs %u or later", b->st->name,
                    b->st->version, STORE_OPS_NEEDED);
        return BROKER_E_STORE;
    }
    store_err se = b->st->open(&so, &b->store);
    if (se != STORE_OK) {
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0, "store %s: cannot open%s%s: %s",
                    b->st->name, b->o.store_path ? " " : "",
                    b->o.store_path ? b->o.store_path : "", why[0] ? why : store_strerror(se));
        return BROKER_E_STORE;
    }
    /* A store that reports its resident bytes is asked; one that cannot is counted by the
     * bytes of the messages it holds. */
    b->store_counted = !b->st->resident;
    /* Nodes sharing a PostgreSQL database share topics too. */
    if (b->st == store_postgres_backend()) {
        store_postgres_topics(b->store, store_topic, b);
        b->route.topic_share = 1;
        /* ... and durable subscriptions (route/durable_shared.c). */
        store_postgres_durables(b->store, durable__shared_event, b);
        b->route.dur_shared = 1;
    }
    return BROKER_OK;
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
    fix_options(&b->o);
    b->loop = loop;
    /* TLS first: a bad certificate touches no store. */
    broker_err rc = b->o.tls_cert ? net__tls_init(b) : BROKER_OK;
    if (rc != BROKER_OK) {
        free(b);
        return rc;
    }
    if (open_store(b) != BROKER_OK) {
        net__tls_free(b);
        free(b);
        return BROKER_E_STORE;
    }
    rc = route__init(b);
    if (rc != BROKER_OK) {
        b->st->close(b->store);
        net__tls_free(b);
        free(b);
        return rc;
    }
    net__init(b, session__accept);
    admin__init(b);
    uv_idle_init(loop, &b->idle);
    uv_check_init(loop, &b->check);
    b->idle.data = b;
    b->check.data = b;
    uv_check_start(&b->check, on_check);
    tempq__start(b);
    durable__start(b);
    /* The tick must not keep an otherwise idle loop alive (e.g. before any listen). */
    uv_unref((uv_handle_t *)&b->check);
    b->handles_open = 3; /* idle, check, the route's timer */
    *out = b;
    return BROKER_OK;
}

static broker_err listen_kind(broker *b, const char *host, int port, int kind, int verify,
                              int *bound_port)
{
    if (!b || !host || port < 0 || port > 65535)
        return BROKER_E_INVALID;
    if (b->stopping)
        return BROKER_E_STATE;
    if (kind == LISTEN_TLS || kind == LISTEN_WSS) {
        if (verify < BROKER_TLS_VERIFY_DEFAULT || verify > BROKER_TLS_VERIFY_REQUIRED)
            return BROKER_E_INVALID;
        if (!b->net.tls_ctx)
            return BROKER_E_TLS;
        if (verify == BROKER_TLS_VERIFY_DEFAULT)
            verify = b->o.tls_verify_client;
        if (verify != BROKER_TLS_VERIFY_NONE && !b->o.tls_ca)
            return BROKER_E_TLS;
    }
    return net__listen(b, host, port, kind, verify, bound_port);
}

broker_err broker_listen(broker *b, const char *host, int port, int *bound_port)
{
    return listen_kind(b, host, port, LISTEN_STOMP, 0, bound_port);
}

broker_err broker_listen_ws(broker *b, const char *host, int port, int *bound_port)
{
    return listen_kind(b, host, port, LISTEN_WS, 0, bound_port);
}

broker_err broker_listen_unix(broker *b, const char *path, int mode)
{
    if (!b || !path || mode < 0 || mode > 07777)
        return BROKER_E_INVALID;
    if (b->stopping)
        return BROKER_E_STATE;
    return net__listen_unix(b, path, mode);
}

broker_err broker_listen_fd(broker *b, int fd, int *bound_port)
{
    if (!b || fd < 0)
        return BROKER_E_INVALID;
    if (b->stopping)
        return BROKER_E_STATE;
    return net__listen_fd(b, fd, bound_port);
}

broker_err broker_listen_policy(broker *b, const char *host, int port, int *bound_port)
{
    return listen_kind(b, host, port, LISTEN_POLICY, 0, bound_port);
}

broker_err broker_listen_tls(broker *b, const char *host, int port, int verify,
                             int *bound_port)
{
    return listen_kind(b, host, port, LISTEN_TLS, verify, bound_port);
}

broker_err broker_listen_wss(broker *b, const char *host, int port, int verify,
                             int *bound_port)
{
    return listen_kind(b, host, port, LISTEN_WSS, verify, bound_port);
}

broker_err broker_tls_reload(broker *b)
{
    return b ? net__tls_reload(b) : BROKER_E_INVALID;
}

/* The fields broker_reconfigure takes (broker.h lists them). */
static void take_live(broker_options *n, const broker_options *o)
{
    n->limits = o->limits;
    n->connect_limits = o->connect_limits;
    n->max_connections = o->max_connections;
    n->max_subscriptions = o->max_subscriptions;
    n->max_unacked = o->max_unacked;
    n->default_prefetch = o->default_prefetch;
    n->max_tx_frames = o->max_tx_frames;
    n->max_transactions = o->max_transactions;
    n->output_high_water = o->output_high_water;
    n->max_output_bytes = o->max_output_bytes;
    n->max_memory = o->max_memory;
    n->connect_timeout_ms = o->connect_timeout_ms;
    n->heartbeat_out_ms = o->heartbeat_out_ms;
    n->heartbeat_in_ms = o->heartbeat_in_ms;
    n->heartbeat_grace_pct = o->heartbeat_grace_pct;
    n->error_linger_ms = o->error_linger_ms;
    n->stop_timeout_ms = o->stop_timeout_ms;
    n->lenient_escapes = o->lenient_escapes;
    n->allow_non_utf8_10 = o->allow_non_utf8_10;
    n->server_name = o->server_name;
    n->ws_origins = o->ws_origins;
    n->ws_max_message = o->ws_max_message;
    n->web_root = o->web_root;
    n->flash_policy = o->flash_policy;
    n->policy_domains = o->policy_domains;
    n->policy_ports = o->policy_ports;
    n->log_level = o->log_level;
    n->policy = o->policy;
    n->policies = o->policies;
    n->npolicies = o->npolicies;
    n->auth_fail_delay_ms = o->auth_fail_delay_ms;
    n->admin_open = o->admin_open;
    n->metrics_max_destinations = o->metrics_max_destinations;
    if (n->tls_cert) { /* a broker without TLS has no TLS listener to give it to */
        n->tls_cert = o->tls_cert;
        n->tls_key = o->tls_key;
        n->tls_ca = o->tls_ca;
        n->tls_verify_client = o->tls_verify_client;
        n->tls_login = o->tls_login;
        n->tls_min_version = o->tls_min_version;
        n->tls_ciphers = o->tls_ciphers;
        n->tls_ciphersuites = o->tls_ciphersuites;
    }
}

broker_err broker_reconfigure(broker *b, const broker_options *o, char *why, size_t cap)
{
    if (!b || !o || !why || !cap)
        return BROKER_E_INVALID;
    why[0] = '\0';
    if (b->stopping)
        return BROKER_E_STATE;
    broker_options n = b->o;
    take_live(&n, o);
    if (b->o.tls_cert && (!n.tls_cert || !n.tls_cert[0])) {
        snprintf(why, cap, "TLS is on: the certificate cannot be removed without a restart");
        return BROKER_E_TLS;
    }
    fix_options(&n);
    broker_policy_rule *rules;
    broker_err rc = route__copy_policies(&n, &rules);
    if (rc != BROKER_OK) {
        snprintf(why, cap, "%s", rc == BROKER_E_NOMEM ? "out of memory" : "bad policy");
        return rc;
    }
    struct ssl_ctx_st *ctx = NULL;
    if (b->net.tls_ctx && net__tls_build(&n, &ctx, why, cap) != BROKER_OK) {
        free(rules);
        return BROKER_E_TLS;
    }
    b->o = n;
    route__set_policies(b, rules, n.npolicies);
    if (ctx) { /* sessions hold a reference to the settings they began with */
        net__tls_free_ctx(b->net.tls_ctx);
        b->net.tls_ctx = ctx;
    }
    if (ctx)
        broker__log(b, BROKER_LOG_INFO, BROKER_EV_TLS, 0, "TLS certificate reloaded from %s",
                    n.tls_cert);
    broker__log(b, BROKER_LOG_INFO, BROKER_EV_BROKER, 0,
                "options reconfigured: %zu destination polic%s", n.npolicies,
                n.npolicies == 1 ? "y" : "ies");
    /* A higher memory or output limit may let paused connections go on. */
    b->resume_wanted = 1;
    broker__kick(b);
    return BROKER_OK;
}

broker_err broker_tls_check(const broker_options *o, char *why, size_t cap)
{
    struct ssl_ctx_st *ctx;
    if (!o || !why || !cap)
        return BROKER_E_INVALID;
    broker_err rc = net__tls_build(o, &ctx, why, cap);
    net__tls_free_ctx(ctx);
    return rc;
}

broker_err broker_listen_admin(broker *b, const char *host, int port, int *bound_port)
{
    if (!b || !host || port < 0 || port > 65535)
        return BROKER_E_INVALID;
    if (b->stopping)
        return BROKER_E_STATE;
    return admin__listen(b, host, port, 0, bound_port);
}

broker_err broker_listen_admin_tls(broker *b, const char *host, int port, int *bound_port)
{
    if (!b || !host || port < 0 || port > 65535)
        return BROKER_E_INVALID;
    if (b->stopping)
        return BROKER_E_STATE;
    return admin__listen(b, host, port, 1, bound_port);
}

/* Once every conn and login record is gone and the store has committed the last batch,
 * the core handles close; the last handle to close completes the stop. */
static void finish_stop(broker *b)
{
    if (!b->stopping || b->core_closing || !session__idle(b))
        return;
    if (commit__pending(b))
        commit__run(b);
    if (!commit__idle(b))
        return;
    b->core_closing = 1;
    if (b->st->version >= 8 && b->st->quiesce)
        b->st->quiesce(b->store);
    if (b->idle_on)
        uv_idle_stop(&b->idle);
    b->idle_on = 0;
    uv_close((uv_handle_t *)&b->idle, on_core_closed);
    uv_close((uv_handle_t *)&b->check, on_core_closed);
    queue__timer_close(b);
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
    net__close_listeners(b);
    admin__stop(b);
    session__close_all(b);
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
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_BROKER, 0,
                    "broker_free before the stop completed: ignored");
        return;
    }
    route__free(b);
    admin__free(b);
    acl__install(b, NULL);
    b->st->close(b->store);
    session__free(b);
    net__tls_free(b);
    net__free(b);
    free(b);
}

void broker_set_acl(broker *b, broker_acl *acl)
{
    acl__install(b, acl);
}

uv_loop_t *broker_loop(const broker *b)
{
    return b->loop;
}

broker_err broker_publish(broker *b, const char *dest, const broker_header *headers,
                          size_t nheaders, const void *body, size_t body_len)
{
    if (!b || !dest || !*dest || (nheaders && !headers) || (body_len && !body))
        return BROKER_E_INVALID;
    if (b->stopping)
        return BROKER_E_STATE;
    char why[256];
    msg_attrs a;
    if (headers__publish_check(b, dest, headers, nheaders, &a, why, sizeof why))
        return BROKER_E_INVALID;
    bmsg *m = bmsg__from_parts(dest, headers, nheaders, body, body_len);
    if (!m)
        return BROKER_E_NOMEM;
    m->attrs = a;
    int stored;
    broker_err rc = route__send(b, m, &stored);
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
    size_t len = strlen(dest);
    if ((wild__is_pattern(dest, len) && wild__check(dest, len)) || durable__reserved(dest, len))
        return BROKER_E_INVALID;
    sub *s = sub__subscribe_inproc(b, dest, cb, arg);
    if (!s)
        return BROKER_E_NOMEM;
    *out = s;
    return BROKER_OK;
}

void broker_unsubscribe(broker_sub *s)
{
    if (s)
        sub__unsubscribe(s->b, s);
}
