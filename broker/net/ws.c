/* ws.c: STOMP over WebSocket (RFC 6455) under a stream, through net_transport.
 *
 * Phases: HTTP (the opening request, read by ws_http.c; refusals are HTTP responses and
 * no session), OPEN (wslay frames the socket; the owner sees a plain byte stream), END
 * (the response or close went out; nothing more reaches the owner). The owner keeps its
 * limits, output queue and backpressure exactly as over TCP.
 *
 * In: every text and binary message payload, fragmented or not, is appended to one byte
 * stream handed to the owner's read callback, so a STOMP frame may span messages and a
 * message may hold several frames. wslay runs without buffering; socket bytes are pulled
 * only while the owner reads and at most as many as its read buffer has room for (a
 * payload is never larger than the bytes that carried it), so pausing the owner pauses the
 * socket. Message size
 * (ws_max_message, 1009) and UTF-8 of text messages (1007) are checked here.
 *
 * Out: the output queue records where each frame ends (this transport asks it to), so
 * each frame becomes one message (text when it is valid UTF-8, else binary) and each
 * heart-beat a message holding "\n"; a frame split across two writes waits in a carry
 * buffer. The owner's write completes when the socket write carrying its messages does:
 * backpressure is unchanged.
 *
 * Closing: the owner closes the transport once; a close frame (1000, or 1001 when
 * aborted) goes out unless one already did, then the socket closes when the peer's close
 * frame or EOF arrived, or after error_linger_ms. The two handles here (socket, timer)
 * close as one: net__on_closed runs after both closed. A WebSocket that fails (a protocol
 * error, a refused handshake) ends the owner's input with UV_ECONNABORTED.
 */
#include "core.h"
#include "net/ws_http.h"

#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

enum { WS_HTTP, WS_OPEN, WS_END };

typedef struct ws {
    net_stream *s;
    int phase;
    ws_req *req;
    wslay_event_context_ptr ctx;
    char *raw; /* socket bytes not yet fed to http-parser or wslay */
    size_t raw_cap, raw_off, raw_len;
    char *wbuf; /* the socket write in flight (or being built) */
    size_t wlen, wcap;
    uv_write_t wreq;
    uv_timer_t timer; /* closing: linger; otherwise: deferred work (kick) */
    int handles;
    unsigned want_read : 1, sock_reading : 1, writing : 1, carries : 1, owner_waiting : 1,
        eof : 1, eof_told : 1, dead : 1, closing : 1, finishing : 1, failed : 1;
    int sock_err; /* the read error behind eof, or UV_EOF */
    uint64_t pos; /* stream offset of the next output byte handed to ws_write */
    char *carry;  /* the start of a frame whose end a later write brings */
    size_t carry_len, carry_cap;
    /* incoming message */
    uint8_t iop, ifin;
    int itext;
    uint64_t ilen;
    net_utf8 iutf;
} ws;

static void ws_process(ws *w);

/* The WebSocket is done (failed, refused or gone): the owner's input ends, abruptly. */
static void broke(ws *w)
{
    w->s->cb->read(w->s, UV_ECONNABORTED);
}
static void ws_pump(ws *w);
static void ws_maybe_finish(ws *w);

/* ---- buffers ------------------------------------------------------------------------ */

static int append(char **buf, size_t *len, size_t *cap, const void *p, size_t n)
{
    if (*len + n > *cap) {
        size_t ncap = *cap ? *cap : 4096;
        while (ncap < *len + n) {
            if (ncap > SIZE_MAX / 2)
                return -1;
            ncap *= 2;
        }
        char *nb = realloc(*buf, ncap);
        if (!nb)
            return -1;
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
    return 0;
}

/* ---- socket ------------------------------------------------------------------------- */

static void on_sock_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    ws *w = ((net_stream *)h->data)->tp_state;
    if (w->raw_off == w->raw_len) {
        w->raw_off = w->raw_len = 0;
    } else if (w->raw_off) {
        memmove(w->raw, w->raw + w->raw_off, w->raw_len - w->raw_off);
        w->raw_len -= w->raw_off;
        w->raw_off = 0;
    }
    *buf = uv_buf_init(w->raw + w->raw_len, (unsigned)(w->raw_cap - w->raw_len));
}

static void on_sock_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Read the socket while someone wants its bytes and raw has room: the handshake, the
 * owner, or (closing) the peer's close frame. */
static void update_reading(ws *w)
{
    int want = !w->dead && !w->eof && !w->finishing && w->raw_off + w->raw_cap > w->raw_len &&
               ((w->phase == WS_HTTP && !w->closing) ||
                (w->phase == WS_OPEN && (w->want_read || w->closing)));
    if (want && !w->sock_reading) {
        if (net__sock_read_start(w->s, on_sock_alloc, on_sock_read) == 0)
            w->sock_reading = 1;
    } else if (!want && w->sock_reading) {
        net__sock_read_stop(w->s);
        w->sock_reading = 0;
    }
}

static void on_sock_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    ws *w = ((net_stream *)s->data)->tp_state;
    if (nread == 0)
        return;
    if (nread == UV_ENOBUFS) {
        /* raw is full of bytes the owner cannot take yet: resumed by ws_process. */
        net__sock_read_stop(s->data);
        w->sock_reading = 0;
        return;
    }
    if (nread < 0) {
        net__sock_read_stop(s->data);
        w->sock_reading = 0;
        w->eof = 1;
        w->sock_err = (int)nread;
    } else {
        w->raw_len += (size_t)nread;
    }
    ws_process(w);
}

static void on_write(uv_write_t *req, int status);

/* Write wbuf (nothing else may be in flight). */
static void start_write(ws *w)
{
    uv_buf_t b = uv_buf_init(w->wbuf, (unsigned)w->wlen);
    w->wreq.data = w;
    if (net__sock_write(w->s, &w->wreq, &b, 1, on_write) != 0) {
        w->dead = 1;
        w->wlen = 0;
        if (!w->closing)
            broke(w);
        return;
    }
    w->writing = 1;
    w->carries = w->owner_waiting;
    w->owner_waiting = 0;
}

static void on_timer(uv_timer_t *t);

/* Deferred work at the next turn: never call back into the owner inside its own call. */
static void kick(ws *w)
{
    if (!w->closing && !w->finishing)
        uv_timer_start(&w->timer, on_timer, 0, 0);
}

static void on_timer(uv_timer_t *t)
{
    ws *w = t->data;
    if (w->closing) {
        /* The peer did not finish the close handshake in time. */
        w->dead = 1;
        ws_maybe_finish(w);
        return;
    }
    if (w->owner_waiting && !w->writing) {
        /* The owner's last write held only part of a frame: nothing to send yet. */
        w->owner_waiting = 0;
        net__on_written(w->s, 0);
    }
    ws_process(w);
}

static void on_write(uv_write_t *req, int status)
{
    ws *w = req->data;
    int carried = w->carries;
    w->writing = 0;
    w->carries = 0;
    w->wlen = 0;
    if (status < 0)
        w->dead = 1;
    if (carried)
        net__on_written(w->s, status);
    else if (status < 0 && !w->closing)
        broke(w);
    ws_pump(w);
    ws_maybe_finish(w);
}

/* ---- wslay callbacks ------------------------------------------------------------------ */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user)
{
    (void)flags;
    ws *w = user;
    size_t n = w->raw_len - w->raw_off;
    if (n > len)
        n = len;
    if (!w->closing && !w->failed) {
        if (!w->want_read) {
            n = 0;
        } else {
            /* Never pull more than the owner can take: payload <= the bytes carrying it. */
            uv_buf_t room;
            w->s->cb->alloc(w->s, &room);
            if (n > room.len)
                n = room.len;
        }
    }
    if (n == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    memcpy(buf, w->raw + w->raw_off, n);
    w->raw_off += n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    (void)flags;
    ws *w = user;
    if (append(&w->wbuf, &w->wlen, &w->wcap, data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

/* Fail the WebSocket: close frame with code, no more input, the owner's input ends. */
static void ws_fail(ws *w, uint16_t code, const char *reason)
{
    if (w->failed)
        return;
    w->failed = 1;
    broker__log(w->s->b, BROKER_LOG_WARN, BROKER_EV_WEBSOCKET, w->s->id,
                "WebSocket closed (%u): %s", code, reason);
    (void)wslay_event_queue_close(w->ctx, code, (const uint8_t *)reason, strlen(reason));
    wslay_event_shutdown_read(w->ctx);
    if (!w->closing)
        broke(w);
}

static void on_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
    (void)ctx;
    ws *w = user;
    w->iop = arg->opcode;
    w->ifin = arg->fin;
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) {
        w->itext = arg->opcode == WSLAY_TEXT_FRAME;
        w->ilen = 0;
        w->iutf = (net_utf8){ 0, 0x80, 0xBF };
    }
    if (arg->opcode < 8 && w->ilen + arg->payload_length > w->s->b->o.ws_max_message)
        ws_fail(w, WSLAY_CODE_MESSAGE_TOO_BIG, "message too big");
}

static void on_frame_chunk(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_chunk_arg *arg, void *user)
{
    (void)ctx;
    ws *w = user;
    if (w->iop >= 8 || w->failed)
        return; /* control frames are wslay's */
    w->ilen += arg->data_length;
    if (w->itext && !net__utf8_feed(&w->iutf, arg->data, arg->data_length)) {
        ws_fail(w, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA, "text message is not UTF-8");
        return;
    }
    if (w->closing || !arg->data_length)
        return;
    net_stream *st = w->s;
    uv_buf_t room;
    st->cb->alloc(st, &room);
    if (arg->data_length > room.len) {
        ws_fail(w, WSLAY_CODE_INTERNAL_SERVER_ERROR, "read buffer overrun");
        return;
    }
    memcpy(room.base, arg->data, arg->data_length);
    st->cb->read(st, (ssize_t)arg->data_length);
}

static void on_frame_end(wslay_event_context_ptr ctx, void *user)
{
    (void)ctx;
    ws *w = user;
    if (w->iop < 8 && w->ifin && w->itext && w->iutf.need)
        ws_fail(w, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA, "text message is not UTF-8");
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .on_frame_recv_start_callback = on_frame_start,
    .on_frame_recv_chunk_callback = on_frame_chunk,
    .on_frame_recv_end_callback = on_frame_end,
};

/* ---- the opening handshake ---------------------------------------------------------- */

static void http_step(ws *w)
{
    net_stream *st = w->s;
    if (w->raw_off == w->raw_len) {
        if (w->eof)
            broke(w); /* gone before finishing its request */
        return;
    }
    size_t used = 0;
    int hs = ws_http__feed(w->req, w->raw + w->raw_off, w->raw_len - w->raw_off, &used);
    w->raw_off += used;
    if (hs == WS_HTTP_MORE) {
        if (w->eof)
            broke(w); /* gone before finishing its request */
        return;
    }
    char *resp = NULL;
    size_t rlen = 0;
    const char *proto = NULL, *why = NULL;
    int rc = ws_http__respond(w->req, &st->b->o, &resp, &rlen, &proto, &why);
    free(w->req);
    w->req = NULL;
    if (rc < 0 || append(&w->wbuf, &w->wlen, &w->wcap, resp, rlen) != 0) {
        free(resp);
        w->phase = WS_END;
        broker__log(st->b, BROKER_LOG_ERROR, BROKER_EV_WEBSOCKET, st->id,
                    "out of memory in the handshake");
        broke(w);
        return;
    }
    free(resp);
    if (rc == 1) {
        w->phase = WS_OPEN;
        broker__log(st->b, BROKER_LOG_DEBUG, BROKER_EV_WEBSOCKET, st->id, "WebSocket open (%s)",
                    proto ? proto : "no subprotocol");
    } else {
        w->phase = WS_END;
        /* Files and misses of the web page are not handshakes. */
        if (strcmp(why, "file") != 0 && strcmp(why, "not found") != 0)
            broker__log(st->b, BROKER_LOG_INFO, BROKER_EV_WEBSOCKET, st->id,
                        "WebSocket handshake refused: %s", why);
        broke(w);
    }
    start_write(w);
}

/* ---- input ------------------------------------------------------------------------- */

static void ws_process(ws *w)
{
    net_stream *st = w->s;
    if (w->finishing)
        return;
    if (w->phase == WS_HTTP && !w->closing)
        http_step(w);
    if (w->phase == WS_OPEN) {
        while (w->raw_off < w->raw_len && wslay_event_want_read(w->ctx) &&
               (w->want_read || w->closing || w->failed)) {
            size_t before = w->raw_off;
            if (wslay_event_recv(w->ctx) != 0) {
                ws_fail(w, WSLAY_CODE_INTERNAL_SERVER_ERROR, "out of memory");
                break;
            }
            if (w->raw_off == before)
                break;
        }
        if (!w->closing && !w->eof_told) {
            if (wslay_event_get_close_received(w->ctx)) {
                /* The peer's close: its end of input. wslay answers the close. */
                w->eof_told = 1;
                st->cb->read(st, UV_EOF);
            } else if (!wslay_event_want_read(w->ctx) && !w->failed) {
                w->failed = 1; /* wslay refused a frame and queued its close */
                broker__log(st->b, BROKER_LOG_WARN, BROKER_EV_WEBSOCKET, st->id,
                            "WebSocket protocol error, closed (%u)",
                            wslay_event_get_status_code_sent(w->ctx));
                broke(w);
            } else if (w->eof && w->raw_off == w->raw_len) {
                w->eof_told = 1;
                st->cb->read(st, w->sock_err);
            }
        }
        ws_pump(w);
    } else if (w->phase == WS_END) {
        w->raw_off = w->raw_len = 0; /* nothing after a refusal is read */
    }
    update_reading(w);
    ws_maybe_finish(w);
}

/* ---- output ------------------------------------------------------------------------ */

static void ws_pump(ws *w)
{
    if (w->writing || w->dead || w->finishing || w->phase != WS_OPEN)
        return;
    if (wslay_event_want_write(w->ctx) && wslay_event_send(w->ctx) != 0) {
        w->dead = 1;
        w->wlen = 0;
        if (!w->closing)
            broke(w);
        return;
    }
    if (w->wlen)
        start_write(w);
    else if (w->owner_waiting)
        kick(w);
}

static int queue_msg(ws *w, const char *p, size_t n)
{
    struct wslay_event_msg m = {
        .opcode = net__utf8_valid((const uint8_t *)p, n) ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME,
        .msg = (const uint8_t *)p,
        .msg_length = n,
    };
    return wslay_event_queue_msg(w->ctx, &m);
}

/* Queue the frames in bufs as messages: each ends where the output queue says (ws->pos
 * counts the bytes seen so far); the start of a frame whose end is not here yet waits in
 * the carry buffer. */
static int ws_write(net_stream *s, const uv_buf_t *bufs, unsigned nbufs)
{
    ws *w = s->tp_state;
    if (!w || w->phase != WS_OPEN || w->dead || w->failed || w->closing ||
        wslay_event_get_close_sent(w->ctx) || wslay_event_get_close_received(w->ctx))
        return UV_EPIPE; /* no session (yet) or the WebSocket is closing */
    for (unsigned k = 0; k < nbufs; k++) {
        const char *p = bufs[k].base;
        size_t len = bufs[k].len, off = 0;
        while (off < len) {
            uint64_t end;
            int ends_here = outq__frame_end(&s->out, &end) && end - w->pos <= len - off;
            size_t used = ends_here ? (size_t)(end - w->pos) : len - off;
            int rc = 0;
            if (ends_here && !w->carry_len) {
                rc = queue_msg(w, p + off, used);
            } else {
                rc = append(&w->carry, &w->carry_len, &w->carry_cap, p + off, used);
                if (rc == 0 && ends_here) {
                    rc = queue_msg(w, w->carry, w->carry_len);
                    w->carry_len = 0;
                }
            }
            if (rc != 0)
                return UV_ENOMEM;
            if (ends_here)
                outq__frame_taken(&s->out);
            off += used;
            w->pos += used;
        }
    }
    w->owner_waiting = 1;
    ws_pump(w);
    return 0;
}

/* ---- net_transport ------------------------------------------------------------------ */

static void ws_init(net_stream *s)
{
    uv_tcp_init(s->b->loop, &s->tcp);
    s->tcp.data = s;
    s->tp_state = NULL;
}

static void free_ws(ws *w)
{
    if (w->ctx)
        wslay_event_context_free(w->ctx);
    free(w->req);
    free(w->raw);
    free(w->wbuf);
    free(w->carry);
    free(w);
}

static int ws_accept(net_stream *s, uv_stream_t *server)
{
    int rc = uv_accept(server, (uv_stream_t *)&s->tcp);
    if (rc != 0)
        return rc;
    uv_tcp_nodelay(&s->tcp, 1);
    if (s->tp->tls && (rc = net__tls_attach(s, server)) != 0)
        return rc;
    ws *w = calloc(1, sizeof *w);
    if (!w)
        return UV_ENOMEM;
    w->s = s;
    w->raw_cap = s->b->o.read_buffer;
    w->raw = malloc(w->raw_cap);
    w->req = malloc(sizeof *w->req);
    if (!w->raw || !w->req ||
        wslay_event_context_server_init(&w->ctx, &callbacks, w) != 0) {
        w->ctx = NULL;
        free_ws(w);
        return UV_ENOMEM;
    }
    ws_http__init(w->req);
    wslay_event_config_set_no_buffering(w->ctx, 1);
    wslay_event_config_set_max_recv_msg_length(w->ctx, s->b->o.ws_max_message);
    uv_timer_init(s->b->loop, &w->timer);
    w->timer.data = w;
    w->handles = 2;
    s->tp_state = w;
    return 0;
}

static int ws_read_start(net_stream *s)
{
    ws *w = s->tp_state;
    if (!w)
        return UV_EINVAL;
    w->want_read = 1;
    update_reading(w);
    /* Bytes already read wait in raw: take them at the next turn, not in this call. */
    if (w->raw_off < w->raw_len)
        kick(w);
    return 0;
}

static void ws_read_stop(net_stream *s)
{
    ws *w = s->tp_state;
    if (!w)
        return;
    w->want_read = 0;
    update_reading(w);
}

static void handle_done(ws *w)
{
    if (--w->handles > 0)
        return;
    net_stream *s = w->s;
    s->tp_state = NULL;
    free_ws(w);
    net__on_closed(s);
}

static void on_sock_closed(uv_handle_t *h)
{
    net_stream *s = h->data;
    if (s->tp_state)
        handle_done(s->tp_state);
    else
        net__on_closed(s); /* accept failed: no state */
}

static void on_timer_closed(uv_handle_t *h)
{
    handle_done(h->data);
}

static void ws_maybe_finish(ws *w)
{
    if (!w->closing || w->finishing || w->writing)
        return;
    int done = w->dead || w->eof || w->phase != WS_OPEN ||
               (!wslay_event_want_write(w->ctx) &&
                (wslay_event_get_close_received(w->ctx) || w->failed));
    if (!done)
        return;
    w->finishing = 1;
    if (w->sock_reading) {
        net__sock_read_stop(w->s);
        w->sock_reading = 0;
    }
    uv_timer_stop(&w->timer);
    net__sock_close(w->s, on_sock_closed);
    uv_close((uv_handle_t *)&w->timer, on_timer_closed);
}

static void ws_close(net_stream *s, int abort)
{
    ws *w = s->tp_state;
    if (!w) {
        if (!uv_is_closing((uv_handle_t *)&s->tcp))
            net__sock_close(s, on_sock_closed);
        return;
    }
    if (w->closing) {
        /* A graceful close took too long: end it now. */
        if (abort) {
            w->dead = 1;
            ws_maybe_finish(w);
        }
        return;
    }
    w->closing = 1;
    w->owner_waiting = 0;
    uv_timer_stop(&w->timer);
    if (w->phase == WS_OPEN && !w->dead && !wslay_event_get_close_sent(w->ctx) &&
        !w->failed) {
        uint16_t code = abort ? WSLAY_CODE_GOING_AWAY : WSLAY_CODE_NORMAL_CLOSURE;
        (void)wslay_event_queue_close(w->ctx, code, NULL, 0);
    }
    ws_pump(w);
    uint64_t linger = s->b->o.error_linger_ms ? s->b->o.error_linger_ms : 1;
    uv_timer_start(&w->timer, on_timer, linger, 0);
    /* Keep reading for the peer's close frame (and to answer nothing else). */
    ws_process(w);
}

static const net_transport ws_ops = {
    .name = "websocket",
    .track_frames = 1,
    .init = ws_init,
    .accept = ws_accept,
    .read_start = ws_read_start,
    .read_stop = ws_read_stop,
    .write = ws_write,
    .close = ws_close,
};

static const net_transport wss_ops = {
    .name = "wss",
    .track_frames = 1,
    .tls = 1,
    .init = ws_init,
    .accept = ws_accept,
    .read_start = ws_read_start,
    .read_stop = ws_read_stop,
    .write = ws_write,
    .close = ws_close,
};

const net_transport *net__ws(void)
{
    return &ws_ops;
}

const net_transport *net__wss(void)
{
    return &wss_ops;
}
