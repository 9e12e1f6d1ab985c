/* input.c: a connection's input: the read buffer, the parse loop and pausing.
 *
 * Every conn reads into the broker's one buffer: the parser copies what it assembles, so a
 * conn keeps input bytes of its own only when it stops between frames (the stash). Those
 * go in front of the next read, which then continues them. What the parser holds (a frame
 * being assembled, a big body half arrived) counts against max_memory. A conn stops being
 * read while its own output is over the high-water mark (it is not reading what we write),
 * while its login is being checked, and while the broker is over its memory limit if its
 * next frame is a SEND: a complete SEND then waits in the parser, not accepted, and a SEND
 * still arriving waits in the socket, so no SEND is taken in over the limit. Consumers go
 * on being read: their ACKs are what frees memory.
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
        /* Between frames: give back what a large frame made the parser hold (unless it
         * holds a SEND waiting for memory). */
        if (!c->held_send)
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

/* Count what the parser holds now against the broker's memory. */
static void account_parser(conn *c)
{
    size_t now = stomp_parser_memory(&c->parser);
    if (now > c->parser_mem)
        broker__mem_add(c->b, now - c->parser_mem);
    else if (now < c->parser_mem)
        broker__mem_sub(c->b, c->parser_mem - now);
    c->parser_mem = now;
}

void conn__set_paused(conn *c, int mem, int out, int queue)
{
    broker *b = c->b;
    int was = c->paused_mem || c->paused_out || c->paused_queue, now = mem || out || queue;
    c->paused_mem = mem != 0;
    c->paused_out = out != 0;
    c->paused_queue = queue != 0;
    if (now && !was) {
        c->pprev = NULL;
        c->pnext = b->sess.paused;
        if (b->sess.paused)
            b->sess.paused->pprev = c;
        b->sess.paused = c;
        b->npaused++;
    } else if (!now && was) {
        if (c->pprev)
            c->pprev->pnext = c->pnext;
        else
            b->sess.paused = c->pnext;
        if (c->pnext)
            c->pnext->pprev = c->pprev;
        c->pprev = c->pnext = NULL;
        b->npaused--;
    }
}

static void stop_for_pause(conn *c)
{
    if (c->io.reading) {
        c->b->stats.reads_paused++;
        conn__stop_reading(c);
    }
}

static void pause_for_memory(conn *c)
{
    conn__set_paused(c, 1, c->paused_out, c->paused_queue);
    stop_for_pause(c);
}

/* Over the memory limit (what others hold), a connection whose next frame is a SEND (its
 * command line read) is read no further until memory is available. */
static void pause_partial_send(conn *c)
{
    stomp_command cmd;
    if (!c->paused_mem && c->state != CS_CLOSING &&
        broker__over_memory_without(c->b, c->parser_mem) &&
        stomp_parser_busy(&c->parser, &cmd) && cmd == STOMP_CMD_SEND)
        pause_for_memory(c);
}

static void pause_if_needed(conn *c, stomp_command cmd)
{
    broker *b = c->b;
    if (c->state == CS_CLOSING)
        return;
    /* A producer stops being read while the broker is over its memory limit (only after
     * a SEND: consumers must stay readable, their ACKs are what frees memory), and any
     * client while its own output is over the high-water mark (it is not reading). */
    int mem = c->paused_mem || (cmd == STOMP_CMD_SEND && broker__over_memory(b));
    int out = c->paused_out || (cmd != STOMP_CMD_ACK && cmd != STOMP_CMD_NACK &&
                                net__queued(&c->io) > b->o.output_high_water);
    conn__set_paused(c, mem, out, c->paused_queue);
    if (mem || out)
        stop_for_pause(c);
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

/* A complete frame: dispatched now, or, a SEND while the broker is over its memory limit,
 * held in the parser (not accepted) until memory is available. 0, or -1 when held. */
static int take_frame(conn *c, const stomp_frame *f)
{
    if (f->cmd == STOMP_CMD_SEND && broker__over_memory_without(c->b, c->parser_mem)) {
        c->held_send = 1;
        pause_for_memory(c);
        return -1;
    }
    c->held_send = 0;
    c->wait_queue = 0;
    stomp_command cmd = f->cmd;
    dispatch__frame(c, f);
    if (c->wait_queue) {
        /* Its queue is full: held, and this producer is not read until there is room
         * (each commit's completion looks again: acks are what make room). */
        c->held_send = 1;
        conn__set_paused(c, c->paused_mem, c->paused_out, 1);
        stop_for_pause(c);
        return -1;
    }
    c->b->stats.frames_in++;
    pause_if_needed(c, cmd);
    return 0;
}

static void process_input(conn *c)
{
    if (c->held_send && c->state != CS_CLOSING &&
        take_frame(c, stomp_parser_frame(&c->parser)) != 0)
        return;
    while (c->roff < c->rlen && c->state != CS_CLOSING && !c->paused_mem && !c->paused_out &&
           !c->paused_queue && !c->auth) {
        size_t used = 0;
        stomp_event ev =
            stomp_parser_feed(&c->parser, c->rbuf + c->roff, c->rlen - c->roff, &used);
        c->roff += used;
        if (ev == STOMP_EV_FRAME) {
            if (take_frame(c, stomp_parser_frame(&c->parser)) != 0)
                break;
        } else if (ev == STOMP_EV_ERROR) {
            stomp_err e = stomp_parser_error(&c->parser, NULL);
            conn__fail(c, parse_err_code(e), NULL, stomp_strerror(e));
        } else if (ev == STOMP_EV_NEED_MORE) {
            pause_partial_send(c);
            break;
        }
    }
    account_parser(c);
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
    c->bytes_in += (uint64_t)nread;
    c->last_rx = uv_now(c->b->loop);
    if (!policy_intercepted(c))
        process_input(c);
    if (keep_tail(c) != 0)
        conn__close(c);
    account_parser(c);
}

void conn__resume(conn *c)
{
    broker *b = c->b;
    int mem = c->paused_mem && broker__over_memory_without(b, c->parser_mem);
    int out = c->paused_out && net__queued(&c->io) > b->o.output_high_water / 2;
    /* A SEND held for room in its queue is simply tried again (process_input). */
    conn__set_paused(c, mem, out, 0);
    if (c->paused_mem || c->paused_out || c->state == CS_CLOSING)
        return;
    process_input(c);
    if (keep_tail(c) != 0) {
        conn__close(c);
        return;
    }
    account_parser(c);
    if (!c->paused_mem && !c->paused_out && c->state != CS_CLOSING && !c->io.reading &&
        !c->auth) {
        if (net__read_start(&c->io) != 0)
            conn__close(c);
    }
}
