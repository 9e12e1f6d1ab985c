/* input.c: a connection's input: the read buffer, the parse loop and pausing.
 *
 * Every conn reads into the broker's one buffer: the parser copies what it assembles, so a
 * conn keeps input bytes of its own only when it stops between frames (the stash). Those
 * go in front of the next read, which then continues them. A conn stops being read while
 * the broker is over its memory limit (producers only: their SENDs are what fills it),
 * while its own output is over the high-water mark (it is not reading what we write), and
 * while its login is being checked.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

void conn__on_alloc(conn *c, uv_buf_t *buf)
{
    broker *b = c->b;
    if (!b->sess.rbuf) {
        b->sess.rbuf = malloc(b->o.read_buffer);
        if (!b->sess.rbuf) {
            *buf = uv_buf_init(NULL, 0); /* the read reports UV_ENOBUFS */
            return;
        }
    }
    size_t have = c->rlen - c->roff;
    if (have && c->rbuf != b->sess.rbuf)
        memcpy(b->sess.rbuf, c->rbuf + c->roff, have);
    *buf = uv_buf_init(b->sess.rbuf + have, (unsigned)(b->o.read_buffer - have));
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
        net__queued(&c->io) > b->o.output_high_water) {
        c->paused_out = 1;
        b->npaused++;
    }
    if ((c->paused_mem || c->paused_out) && c->io.reading) {
        b->stats.reads_paused++;
        conn__stop_reading(c);
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

/* Flash asks for its socket policy on the STOMP port before connecting: 1 when the bytes
 * were the policy request's (answered, or its start: wait), 0 when they are STOMP. */
static int policy_intercepted(conn *c)
{
    if (c->state != CS_CONNECTING || c->policy_done)
        return 0;
    switch (net__policy(&c->io, c->rbuf + c->roff, c->rlen - c->roff, c->policy_only)) {
    case POLICY_WAIT:
        return 1;
    case POLICY_ANSWERED:
        c->policy_done = 1;
        c->roff = c->rlen;
        conn__end(c);
        return 1;
    case POLICY_CLOSE:
        c->policy_done = 1;
        conn__close(c);
        return 1;
    default:
        c->policy_done = 1;
        return 0;
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
    /* conn__on_alloc put the stash (if any) in front of the bytes just read. */
    size_t have = c->rlen - c->roff;
    c->rbuf = c->b->sess.rbuf;
    c->roff = 0;
    c->rlen = have + (size_t)nread;
    c->b->stats.bytes_in += (uint64_t)nread;
    c->last_rx = uv_now(c->b->loop);
    if (!policy_intercepted(c))
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
    if (c->paused_out && net__queued(&c->io) <= b->o.output_high_water / 2) {
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
    if (!c->paused_mem && !c->paused_out && c->state != CS_CLOSING && !c->io.reading &&
        !c->auth) {
        if (net__read_start(&c->io) != 0)
            conn__close(c);
    }
}
