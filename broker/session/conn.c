/* conn.c: one client connection's life: creation on a stream, output of whole frames,
 * failure (the one ERROR path), and teardown.
 *
 * Teardown is split so nothing is freed under a caller: failing marks the conn and queues
 * it for the tick; the tick detaches it (subscriptions, transactions, login record); the
 * stream and timers close once output drained (or at once when aborted); the struct is
 * freed when the last of them closed. The conn is what route sees as an endpoint and what
 * net tells about its stream: both tables of callbacks are here.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static conn *of_stream(net_stream *s)
{
    return store__container_of(s, conn, io);
}

static conn *of_endpoint(const endpoint *e)
{
    return store__container_of(e, conn, ep);
}

/* ---- what net tells the conn ---------------------------------------------------------- */

static void on_written(net_stream *s, int status)
{
    conn *c = of_stream(s);
    broker *b = c->b;
    if (status < 0) {
        conn__close(c);
        conn__maybe_close(c);
        return;
    }
    route__endpoint_written(b, &c->ep, s->written);
    if (c->state == CS_CLOSING) {
        conn__maybe_close(c);
        return;
    }
    size_t queued = net__queued(s);
    if (c->paused_out && queued <= b->o.output_high_water / 2) {
        b->resume_wanted = 1;
        broker__kick(b);
    }
    if (queued < b->o.output_high_water)
        route__endpoint_drained(b, &c->ep);
}

static void on_handle_closed(conn *c)
{
    if (--c->handles_open > 0)
        return;
    broker *b = c->b;
    route__endpoint_done(b, &c->ep);
    stomp_parser_free(&c->parser);
    broker__mem_sub(b, c->parser_mem);
    free(c->stash);
    if (c->prev)
        c->prev->next = c->next;
    else
        b->sess.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    b->stats.connections--;
    permit__free(c);
    free(c->client_id);
    free(c);
    broker__kick(b); /* a stop may be waiting for the last conn */
}

static void on_timer_closed(uv_handle_t *h);

/* The deadline bounded the stream's graceful close; it goes once the stream is gone. */
static void on_stream_closed(net_stream *s)
{
    conn *c = of_stream(s);
    if (!uv_is_closing((uv_handle_t *)&c->deadline))
        uv_close((uv_handle_t *)&c->deadline, on_timer_closed);
    on_handle_closed(c);
}

static void on_alloc(net_stream *s, uv_buf_t *buf)
{
    conn__on_alloc(of_stream(s), buf);
}

static void on_read(net_stream *s, ssize_t nread)
{
    conn__on_read(of_stream(s), nread);
}

static const net_stream_cbs stream_cbs = {
    .alloc = on_alloc,
    .read = on_read,
    .written = on_written,
    .closed = on_stream_closed,
};

/* ---- what route asks of the conn -------------------------------------------------------- */

static uint64_t ep_push(endpoint *e, const char *head, size_t head_len, const char *ack,
                        size_t ack_len, sbuf *shared)
{
    net_stream *s = &of_endpoint(e)->io;
    if (net__push_frame(s, head, head_len, ack, ack_len, shared) != 0)
        return 0;
    return net__queued_end(s);
}

static char *ep_frame_open(endpoint *e, size_t max)
{
    return net__frame_open(&of_endpoint(e)->io, max);
}

static uint64_t ep_frame_close(endpoint *e, size_t used)
{
    net_stream *s = &of_endpoint(e)->io;
    net__frame_close(s, used);
    return used ? net__queued_end(s) : 0;
}

static size_t ep_queued(const endpoint *e)
{
    return net__queued(&of_endpoint(e)->io);
}

static void ep_fail(endpoint *e, broker_err code, const char *msg)
{
    conn__fail(of_endpoint(e), code, NULL, msg);
}

static void ep_committed(endpoint *e, uint64_t epoch, int ok, const char *why)
{
    receipt__committed(of_endpoint(e), epoch, ok, why);
}

static const endpoint_ops endpoint_table = {
    .push = ep_push,
    .frame_open = ep_frame_open,
    .frame_close = ep_frame_close,
    .queued = ep_queued,
    .fail = ep_fail,
    .committed = ep_committed,
};

/* ---- life ---------------------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h)
{
    on_handle_closed(h->data);
}

conn *conn__new(broker *b, const net_transport *tp)
{
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->b = b;
    c->id = ++b->sess.next_conn_id;
    net__stream_init(b, &c->io, tp, &stream_cbs, c->id);
    route__endpoint_init(&c->ep, &endpoint_table);
    uv_timer_init(b->loop, &c->deadline);
    uv_timer_init(b->loop, &c->hb_timer);
    c->deadline.data = c;
    c->hb_timer.data = c;
    c->handles_open = 3; /* the stream and two timers */
    stomp_parser_init(&c->parser, &b->o.connect_limits, NULL, NULL);
    /* CONNECT comes before any version is agreed: it is read as 1.0. */
    stomp_parser_set_version(&c->parser, STOMP_V10,
                             b->o.allow_non_utf8_10 ? 0 : STOMP_PARSE_UTF8);
    c->state = CS_CONNECTING;
    c->since = broker__now_ms(b);
    c->next = b->sess.conns;
    if (b->sess.conns)
        b->sess.conns->prev = c;
    b->sess.conns = c;
    b->stats.connections++;
    b->stats.connections_total++;
    return c;
}

void conn__deadline(conn *c, uv_timer_cb cb, uint64_t ms)
{
    uv_timer_start(&c->deadline, cb, ms, 0);
}

static void on_connect_timeout(uv_timer_t *t)
{
    conn *c = t->data;
    if (c->state != CS_CONNECTING)
        return;
    if (c->policy_only)
        conn__close(c); /* a policy port speaks no STOMP: no ERROR frame */
    else
        conn__fail(c, BROKER_E_LIMIT, NULL, "no CONNECT frame within the connect timeout");
}

int conn__start(conn *c)
{
    c->last_rx = uv_now(c->b->loop);
    if (net__read_start(&c->io) != 0)
        return -1;
    if (c->b->o.connect_timeout_ms)
        conn__deadline(c, on_connect_timeout, c->b->o.connect_timeout_ms);
    return 0;
}

void conn__set_error(conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
    va_end(ap);
}

void conn__stop_reading(conn *c)
{
    net__read_stop(&c->io);
}

broker_err conn__send_frame(conn *c, const stomp_frame *f)
{
    stomp_err err;
    size_t n = stomp_encoded_size(f, c->ep.version, 0, &err);
    if (n == 0)
        return BROKER_E_PROTOCOL;
    char *p = net__frame(&c->io, n);
    if (!p)
        return BROKER_E_NOMEM;
    if (stomp_encode(f, c->ep.version, 0, p, n, &err) != n)
        return BROKER_E_PROTOCOL; /* cannot happen: sized above */
    c->b->stats.frames_out++;
    return BROKER_OK;
}

/* ---- failure and teardown ------------------------------------------------------------- */

static void doom(conn *c)
{
    broker *b = c->b;
    if (c->doomed || c->detached)
        return;
    c->doomed = 1;
    c->next_doomed = b->sess.doomed;
    b->sess.doomed = c;
    broker__kick(b);
}

/* A closing conn's output could not be flushed, or its peer did not end, in time: the
 * peer is not reading. */
static void on_linger(uv_timer_t *t)
{
    conn *c = t->data;
    c->abort = 1;
    if (c->closing_handles)
        net__close(&c->io, 1);
    else
        conn__maybe_close(c);
}

/* CLOSING from now on: nothing more is read; the deadline bounds the wait for output (the
 * stop timeout while the broker stops). */
static void begin_closing(conn *c)
{
    broker *b = c->b;
    c->state = CS_CLOSING;
    c->ep.open = 0;
    conn__stop_reading(c);
    heartbeat__stop(c);
    conn__deadline(c, on_linger, b->stopping ? b->o.stop_timeout_ms : b->o.error_linger_ms);
    doom(c);
}

/* The ERROR frame for a failure: message, content-type, the extra header, receipt-id. */
static void send_error(conn *c, const stomp_frame *f, const char *msg)
{
    stomp_header h[4];
    size_t nh = 0;
    size_t mlen = strlen(msg);
    h[nh++] = (stomp_header){ "message", 7, msg, mlen };
    h[nh++] = (stomp_header){ "content-type", 12, "text/plain", 10 };
    if (c->err_hdr_name)
        h[nh++] = (stomp_header){ c->err_hdr_name, strlen(c->err_hdr_name), c->err_hdr_value,
                                  strlen(c->err_hdr_value) };
    size_t rlen = 0;
    const char *rid = f ? stomp_frame_header(f, "receipt", &rlen) : NULL;
    if (rid)
        h[nh++] = (stomp_header){ "receipt-id", 10, rid, rlen };
    stomp_frame ef = { .cmd = STOMP_CMD_ERROR, .headers = h, .nheaders = nh, .body = msg,
                       .body_len = mlen };
    if (conn__send_frame(c, &ef) != BROKER_OK) {
        /* The receipt-id could not be written in this version: send the rest. */
        ef.nheaders = rid ? nh - 1 : nh;
        if (!rid || conn__send_frame(c, &ef) != BROKER_OK)
            c->abort = 1;
    }
}

void conn__fail(conn *c, broker_err code, const stomp_frame *f, const char *msg)
{
    broker *b = c->b;
    if (c->state == CS_CLOSING)
        return;
    b->stats.errors_sent++;
    if (code == BROKER_E_LIMIT)
        b->stats.limit_breaches++;
    /* A stop tells every client: not worth a line each; a refusal by the ACL had its
     * own (acl-refused, with login and peer). */
    broker_log_level lvl = code == BROKER_E_NOMEM                              ? BROKER_LOG_ERROR
                           : code == BROKER_E_STATE || code == BROKER_E_DENIED ? BROKER_LOG_DEBUG
                                                                                : BROKER_LOG_WARN;
    broker__log(b, lvl, BROKER_EV_CONN_ERROR, c->id, "%s", msg);
    /* Receipts waiting for a commit will not be sent: the ERROR ends the session. */
    receipt__drop(c);
    send_error(c, f, msg);
    begin_closing(c);
}

void conn__end(conn *c)
{
    if (c->state == CS_CLOSING)
        return;
    c->graceful = 1;
    begin_closing(c);
}

void conn__close(conn *c)
{
    c->abort = 1;
    if (c->state != CS_CLOSING) {
        c->state = CS_CLOSING;
        c->ep.open = 0;
        conn__stop_reading(c);
    }
    if (!c->detached)
        doom(c);
    else
        conn__maybe_close(c);
}

void conn__detach(conn *c)
{
    broker *b = c->b;
    if (c->detached)
        return;
    c->detached = 1;
    login__abandon(c);
    conn__stop_reading(c);
    route__endpoint_close(b, &c->ep);
    tx__free_all(c);
    if (!c->graceful)
        receipt__drop(c);
    conn__set_paused(c, 0, 0, 0);
}

void conn__maybe_close(conn *c)
{
    if (c->closing_handles || !c->detached)
        return;
    if (!c->abort && (net__queued(&c->io) || receipt__holding(c)))
        return;
    c->closing_handles = 1;
    receipt__drop(c);
    net__close(&c->io, c->abort);
    uv_close((uv_handle_t *)&c->hb_timer, on_timer_closed);
    /* The deadline stays to bound a graceful close (on_stream_closed closes it). */
    if (c->abort)
        uv_close((uv_handle_t *)&c->deadline, on_timer_closed);
}
