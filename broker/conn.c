/* conn.c: one client connection: read buffer and parser, output, timers, teardown.
 *
 * States: CONNECTING (only CONNECT/STOMP accepted, tight limits, CONNECT timer running),
 * OPEN (session negotiated), CLOSING (reading stopped; output and held receipts drain,
 * then the handles close). Teardown is split so nothing is freed under a caller: failing
 * marks the conn and queues it for the tick; the tick detaches it (subscriptions,
 * transactions); the handles close once output drained (or at once when aborted); the
 * struct is freed in the last close callback.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_rx_timer(uv_timer_t *t);

conn *conn__new(broker *b, const transport_ops *tp)
{
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->b = b;
    c->tp = tp;
    tp->init(c, b->loop);
    uv_timer_init(b->loop, &c->rx_timer);
    uv_timer_init(b->loop, &c->hb_timer);
    c->rx_timer.data = c;
    c->hb_timer.data = c;
    c->handles_open = c->tp->nhandles + 2;
    stomp_parser_init(&c->parser, &b->o.connect_limits, NULL, NULL);
    c->version = STOMP_V10;
    c->state = CS_CONNECTING;
    c->id = ++b->next_conn_id;
    c->next = b->conns;
    if (b->conns)
        b->conns->prev = c;
    b->conns = c;
    b->stats.connections++;
    b->stats.connections_total++;
    return c;
}

int conn__start(conn *c)
{
    c->last_rx = uv_now(c->b->loop);
    if (c->tp->read_start(c) != 0)
        return -1;
    c->reading = 1;
    if (c->b->o.connect_timeout_ms)
        uv_timer_start(&c->rx_timer, on_rx_timer, c->b->o.connect_timeout_ms, 0);
    return 0;
}

void conn__set_error(conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
    va_end(ap);
}

/* ---- reading -------------------------------------------------------------------------- */

/* Every conn reads into the broker's one buffer: the parser copies what it assembles, so
 * a conn keeps input bytes of its own only when it stops between frames (the stash). Those
 * go in front of the next read, which then continues them. */
void conn__alloc(conn *c, uv_buf_t *buf)
{
    broker *b = c->b;
    if (!b->rbuf) {
        b->rbuf = malloc(b->o.read_buffer);
        if (!b->rbuf) {
            *buf = uv_buf_init(NULL, 0); /* the read reports UV_ENOBUFS */
            return;
        }
    }
    size_t have = c->rlen - c->roff;
    if (have && c->rbuf != b->rbuf)
        memcpy(b->rbuf, c->rbuf + c->roff, have);
    *buf = uv_buf_init(b->rbuf + have, (unsigned)(b->o.read_buffer - have));
}

/* After input was processed: keep the unconsumed tail in the stash (sized to fit), or
 * drop the stash. Bytes of a closing conn are never read, so they are dropped. 0, or -1
 * when out of memory. */
static int keep_tail(conn *c)
{
    size_t left = c->rlen - c->roff;
    if (!left || c->state == CS_CLOSING) {
        /* Between frames: give back what a large frame made the parser hold. */
        stomp_parser_trim(&c->parser);
        free(c->stash);
        c->stash = c->rbuf = NULL;
        c->roff = c->rlen = 0;
        return 0;
    }
    if (c->rbuf == c->stash) {
        if (c->roff) {
            memmove(c->stash, c->stash + c->roff, left);
            c->roff = 0;
            c->rlen = left;
        }
        return 0;
    }
    char *s = realloc(c->stash, left);
    if (!s) {
        free(c->stash);
        c->stash = c->rbuf = NULL;
        c->roff = c->rlen = 0;
        return -1;
    }
    memcpy(s, c->rbuf + c->roff, left);
    c->stash = c->rbuf = s;
    c->roff = 0;
    c->rlen = left;
    return 0;
}

static void stop_reading(conn *c)
{
    if (c->reading) {
        c->tp->read_stop(c);
        c->reading = 0;
    }
}

static void pause_if_needed(conn *c, stomp_command cmd)
{
    broker *b = c->b;
    if (c->state == CS_CLOSING)
        return;
    /* A producer stops being read while the broker is over its memory limit (only after
     * a SEND: consumers must stay readable, their ACKs are what frees memory), and any
     * client while its own output is over the high-water mark (it is not reading). */
    if (!c->paused_mem && cmd == STOMP_CMD_SEND && broker__over_memory(b)) {
        c->paused_mem = 1;
        b->npaused++;
    }
    if (!c->paused_out && cmd != STOMP_CMD_ACK && cmd != STOMP_CMD_NACK &&
        c->out.queued > b->o.output_high_water) {
        c->paused_out = 1;
        b->npaused++;
    }
    if ((c->paused_mem || c->paused_out) && c->reading) {
        b->stats.reads_paused++;
        stop_reading(c);
    }
}

static broker_err parse_err_code(stomp_err e)
{
    switch (e) {
    case STOMP_E_COMMAND_TOO_LONG:
    case STOMP_E_LINE_TOO_LONG:
    case STOMP_E_TOO_MANY_HEADERS:
    case STOMP_E_HEADERS_TOO_LONG:
    case STOMP_E_BODY_TOO_LONG:
        return BROKER_E_LIMIT;
    case STOMP_E_NOMEM:
        return BROKER_E_NOMEM;
    default:
        return BROKER_E_PROTOCOL;
    }
}

static void process_input(conn *c)
{
    while (c->roff < c->rlen && c->state != CS_CLOSING && !c->paused_mem && !c->paused_out &&
           !c->auth) {
        size_t used = 0;
        stomp_event ev =
            stomp_parser_feed(&c->parser, c->rbuf + c->roff, c->rlen - c->roff, &used);
        c->roff += used;
        if (ev == STOMP_EV_FRAME) {
            const stomp_frame *f = stomp_parser_frame(&c->parser);
            stomp_command cmd = f->cmd;
            c->b->stats.frames_in++;
            dispatch__frame(c, f);
            pause_if_needed(c, cmd);
        } else if (ev == STOMP_EV_ERROR) {
            stomp_err e = stomp_parser_error(&c->parser, NULL);
            conn__fail(c, parse_err_code(e), NULL, stomp_strerror(e));
        } else if (ev == STOMP_EV_NEED_MORE) {
            break;
        }
    }
}

void conn__on_read(conn *c, ssize_t nread)
{
    if (nread == UV_ENOBUFS || nread == 0)
        return;
    if (nread < 0) {
        /* End of input: answer what was read (a half-closed client may still read), then
         * close once that is written. */
        if (nread != UV_EOF)
            conn__close(c);
        else
            conn__end(c);
        return;
    }
    /* conn__alloc put the stash (if any) in front of the bytes just read. */
    size_t have = c->rlen - c->roff;
    c->rbuf = c->b->rbuf;
    c->roff = 0;
    c->rlen = have + (size_t)nread;
    c->b->stats.bytes_in += (uint64_t)nread;
    c->last_rx = uv_now(c->b->loop);
    /* Flash asks for its socket policy on the STOMP port before connecting. */
    if (!(c->state == CS_CONNECTING && !c->policy_done && policy__intercept(c)))
        process_input(c);
    if (keep_tail(c) != 0)
        conn__close(c);
}

void conn__resume(conn *c)
{
    broker *b = c->b;
    if (c->paused_mem && !broker__over_memory(b)) {
        c->paused_mem = 0;
        b->npaused--;
    }
    if (c->paused_out && c->out.queued <= b->o.output_high_water / 2) {
        c->paused_out = 0;
        b->npaused--;
    }
    if (c->paused_mem || c->paused_out || c->state == CS_CLOSING)
        return;
    process_input(c);
    if (keep_tail(c) != 0) {
        conn__close(c);
        return;
    }
    if (!c->paused_mem && !c->paused_out && c->state != CS_CLOSING && !c->reading &&
        !c->auth) {
        if (c->tp->read_start(c) == 0)
            c->reading = 1;
        else
            conn__close(c);
    }
}

/* ---- writing -------------------------------------------------------------------------- */

void conn__want_flush(conn *c)
{
    if (c->on_flush || c->closing_handles)
        return;
    c->on_flush = 1;
    c->next_flush = c->b->flush_list;
    c->b->flush_list = c;
    broker__kick(c->b);
}

void conn__flush(conn *c)
{
    if (c->closing_handles || c->out.inflight)
        return;
    broker *b = c->b;
    size_t n = outq__start(&c->out, &b->iov, &b->iov_cap);
    if (n == 0) {
        if (c->out.npend)
            conn__close(c); /* out of memory for the iovec */
        return;
    }
    if (c->tp->write(c, b->iov, (unsigned)n) != 0) {
        broker__mem_sub(c->b, outq__done(&c->out));
        conn__close(c);
        return;
    }
    c->hb_wrote = 1;
}

void conn__on_written(conn *c, int status)
{
    broker *b = c->b;
    size_t n = outq__done(&c->out);
    broker__mem_sub(b, n);
    if (status < 0) {
        conn__close(c);
        conn__maybe_close(c);
        return;
    }
    b->stats.bytes_out += n;
    if (c->out.npend)
        conn__flush(c);
    if (c->state == CS_CLOSING) {
        conn__maybe_close(c);
        return;
    }
    if (c->paused_out && c->out.queued <= b->o.output_high_water / 2) {
        b->resume_wanted = 1;
        broker__kick(b);
    }
    if (c->out_blocked && c->out.queued < b->o.output_high_water) {
        c->out_blocked = 0;
        for (sub *s = c->subs_head; s; s = s->cnext)
            if (!s->d->is_topic)
                router__schedule(b, s->d);
    }
}

broker_err conn__send_frame(conn *c, const stomp_frame *f)
{
    stomp_err err;
    size_t n = stomp_encoded_size(f, c->version, 0, &err);
    if (n == 0)
        return BROKER_E_PROTOCOL;
    char *p = outq__reserve(&c->out, n);
    if (!p)
        return BROKER_E_NOMEM;
    if (stomp_encode(f, c->version, 0, p, n, &err) != n)
        return BROKER_E_PROTOCOL; /* cannot happen: sized above */
    broker__mem_add(c->b, n);
    c->b->stats.frames_out++;
    conn__want_flush(c);
    return BROKER_OK;
}

static broker_err send_receipt(conn *c, const char *rid, size_t len)
{
    stomp_header h = { "receipt-id", 10, rid, len };
    stomp_frame f = { .cmd = STOMP_CMD_RECEIPT, .headers = &h, .nheaders = 1 };
    return conn__send_frame(c, &f);
}

broker_err conn__receipt(conn *c, const char *rid, size_t len, int needs_commit)
{
    broker *b = c->b;
    /* Receipts leave in frame order: once one waits for a commit, later ones wait too. */
    if (!needs_commit && !c->held_head)
        return send_receipt(c, rid, len);
    held *h = malloc(sizeof *h + len + 1);
    if (!h)
        return BROKER_E_NOMEM;
    h->next = NULL;
    h->epoch = b->epoch;
    h->len = len;
    memcpy(h->rid, rid, len);
    h->rid[len] = '\0';
    broker__mem_add(b, sizeof *h + len);
    if (c->held_tail)
        c->held_tail->next = h;
    else
        c->held_head = h;
    c->held_tail = h;
    if (!c->on_held) {
        c->on_held = 1;
        c->hprev = NULL;
        c->hnext = b->held_conns;
        if (b->held_conns)
            b->held_conns->hprev = c;
        b->held_conns = c;
    }
    commit__dirty(b);
    return BROKER_OK;
}

static void unlink_held(conn *c)
{
    broker *b = c->b;
    if (!c->on_held)
        return;
    if (c->hprev)
        c->hprev->hnext = c->hnext;
    else
        b->held_conns = c->hnext;
    if (c->hnext)
        c->hnext->hprev = c->hprev;
    c->hprev = c->hnext = NULL;
    c->on_held = 0;
}

static void drop_held(conn *c)
{
    while (c->held_head) {
        held *h = c->held_head;
        c->held_head = h->next;
        broker__mem_sub(c->b, sizeof *h + h->len);
        free(h);
    }
    c->held_tail = NULL;
    unlink_held(c);
}

void conn__flush_held(conn *c, uint64_t done_epoch)
{
    while (c->held_head && c->held_head->epoch <= done_epoch) {
        held *h = c->held_head;
        c->held_head = h->next;
        if (!c->held_head)
            c->held_tail = NULL;
        broker_err rc = send_receipt(c, h->rid, h->len);
        broker__mem_sub(c->b, sizeof *h + h->len);
        free(h);
        if (rc != BROKER_OK) {
            conn__close(c);
            break;
        }
    }
    if (!c->held_head)
        unlink_held(c);
    if (c->state == CS_CLOSING)
        conn__maybe_close(c);
}

/* ---- failure and teardown ------------------------------------------------------------- */

void conn__fail(conn *c, broker_err code, const stomp_frame *f, const char *msg)
{
    broker *b = c->b;
    if (c->state == CS_CLOSING)
        return;
    c->state = CS_CLOSING;
    stop_reading(c);
    b->stats.errors_sent++;
    if (code == BROKER_E_LIMIT)
        b->stats.limit_breaches++;
    broker__log(b, code == BROKER_E_NOMEM ? BROKER_LOG_ERROR : BROKER_LOG_WARN,
                BROKER_EV_CONN_ERROR, c->id, "%s", msg);
    /* Receipts waiting for a commit will not be sent: the ERROR ends the session. */
    drop_held(c);
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
    uv_timer_stop(&c->hb_timer);
    uv_timer_start(&c->rx_timer, on_rx_timer, b->o.error_linger_ms, 0);
    broker__doom(b, c);
}

void conn__end(conn *c)
{
    if (c->state == CS_CLOSING)
        return;
    c->state = CS_CLOSING;
    c->graceful = 1;
    stop_reading(c);
    uv_timer_stop(&c->hb_timer);
    uv_timer_start(&c->rx_timer, on_rx_timer, c->b->o.error_linger_ms, 0);
    broker__doom(c->b, c);
}

void conn__close(conn *c)
{
    c->abort = 1;
    if (c->state != CS_CLOSING) {
        c->state = CS_CLOSING;
        stop_reading(c);
    }
    if (!c->detached)
        broker__doom(c->b, c);
    else
        conn__maybe_close(c);
}

void conn__detach(conn *c)
{
    broker *b = c->b;
    if (c->detached)
        return;
    c->detached = 1;
    handle__auth_abandon(c);
    stop_reading(c);
    while (c->subs_head)
        router__remove_sub(b, c->subs_head);
    free(c->dtab);
    c->dtab = NULL;
    c->dtab_cap = c->ndeliv = 0;
    tx__free_all(c);
    if (!c->graceful)
        drop_held(c);
    if (c->paused_mem)
        b->npaused--;
    if (c->paused_out)
        b->npaused--;
    c->paused_mem = c->paused_out = 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    conn__on_handle_closed(h->data);
}

void conn__maybe_close(conn *c)
{
    if (c->closing_handles || !c->detached)
        return;
    if (!c->abort && (c->out.queued || c->held_head))
        return;
    c->closing_handles = 1;
    drop_held(c);
    c->tp->close(c);
    uv_close((uv_handle_t *)&c->rx_timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->hb_timer, on_timer_closed);
}

void conn__on_handle_closed(conn *c)
{
    if (--c->handles_open > 0)
        return;
    broker *b = c->b;
    broker__mem_sub(b, c->out.queued);
    outq__free(&c->out);
    stomp_parser_free(&c->parser);
    free(c->stash);
    if (c->prev)
        c->prev->next = c->next;
    else
        b->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->on_flush) {
        conn **pp = &b->flush_list;
        while (*pp != c)
            pp = &(*pp)->next_flush;
        *pp = c->next_flush;
    }
    b->stats.connections--;
    free(c);
    broker__conn_freed(b);
}

/* ---- timers --------------------------------------------------------------------------- */

static void on_rx_timer(uv_timer_t *t)
{
    conn *c = t->data;
    if (c->state == CS_CLOSING) {
        /* The ERROR could not be flushed in time: the peer is not reading. */
        c->abort = 1;
        conn__maybe_close(c);
        return;
    }
    if (c->policy_only) {
        conn__close(c); /* a policy port speaks no STOMP: no ERROR frame */
        return;
    }
    if (c->state == CS_CONNECTING) {
        conn__fail(c, BROKER_E_LIMIT, NULL, "no CONNECT frame within the connect timeout");
        return;
    }
    uint64_t silent = uv_now(c->b->loop) - c->last_rx;
    uint64_t allowed = (uint64_t)c->hb_in * c->b->o.heartbeat_grace_pct / 100;
    if (c->hb_in && silent > allowed)
        conn__fail(c, BROKER_E_PROTOCOL, NULL, "heart-beat timeout: nothing received");
}

static void on_hb_timer(uv_timer_t *t)
{
    conn *c = t->data;
    if (c->state != CS_OPEN)
        return;
    if (!c->hb_wrote && !c->out.queued) {
        char *p = outq__reserve(&c->out, 1);
        if (!p) {
            conn__close(c);
            return;
        }
        *p = '\n';
        broker__mem_add(c->b, 1);
        conn__want_flush(c);
    }
    c->hb_wrote = 0;
}

void conn__start_heartbeats(conn *c)
{
    uv_timer_stop(&c->rx_timer);
    if (c->hb_in) {
        /* Check a few times per allowed silence so a dead peer is noticed promptly. */
        uint64_t every = c->hb_in / 2 ? c->hb_in / 2 : 1;
        uv_timer_start(&c->rx_timer, on_rx_timer, every, every);
    }
    if (c->hb_out) {
        /* A little before the agreed interval, so network jitter does not make us late. */
        uint64_t every = (uint64_t)c->hb_out * 9 / 10;
        if (!every)
            every = 1;
        uv_timer_start(&c->hb_timer, on_hb_timer, every, every);
    }
}

/* ---- delivery tags ------------------------------------------------------------------- */

static size_t tag_slot(uint64_t tag, size_t cap)
{
    return (size_t)((tag * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

void conn__track_delivery(conn *c, delivery *d)
{
    if (c->ndeliv >= c->dtab_cap) {
        size_t ncap = c->dtab_cap ? c->dtab_cap * 2 : 64;
        delivery **nt = calloc(ncap, sizeof *nt);
        if (nt) {
            for (size_t i = 0; i < c->dtab_cap; i++)
                for (delivery *x = c->dtab[i], *n; x; x = n) {
                    n = x->hnext;
                    size_t k = tag_slot(x->tag, ncap);
                    x->hnext = nt[k];
                    nt[k] = x;
                }
            free(c->dtab);
            c->dtab = nt;
            c->dtab_cap = ncap;
        } else if (!c->dtab_cap) {
            /* No table at all: the delivery stays findable by message-id only. */
            d->hnext = NULL;
            return;
        }
    }
    size_t k = tag_slot(d->tag, c->dtab_cap);
    d->hnext = c->dtab[k];
    c->dtab[k] = d;
    c->ndeliv++;
}

void conn__untrack_delivery(conn *c, delivery *d)
{
    if (!c->dtab_cap)
        return;
    delivery **pp = &c->dtab[tag_slot(d->tag, c->dtab_cap)];
    while (*pp && *pp != d)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = d->hnext;
        c->ndeliv--;
    }
}
