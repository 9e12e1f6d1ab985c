/* stream.c: a connection's byte stream as its owner sees it: reading on and off, output
 * queued as whole frames, one write in flight, and closing.
 *
 * Output is gathered: queueing marks the stream for the tick, which writes everything a
 * turn queued in one write per stream. Queued bytes count against the broker's memory
 * until written. The owner hears of completed writes and of the end through its callbacks;
 * the stream is off the flush list before its owner is told it closed.
 */
#include "core.h"

#include <stdlib.h>

void net__init(broker *b, net_accept_fn on_accept)
{
    b->net.on_accept = on_accept;
}

void net__free(broker *b)
{
    free(b->net.iov);
    b->net.iov = NULL;
    b->net.iov_cap = 0;
}

void net__stream_init(broker *b, net_stream *s, const net_transport *tp,
                      const net_stream_cbs *cb, uint64_t id)
{
    s->b = b;
    s->tp = tp;
    s->cb = cb;
    s->id = id;
    s->out.track_frames = tp->track_frames;
    tp->init(s);
}

int net__stream_accept(net_stream *s, uv_stream_t *server)
{
    return s->tp->accept(s, server);
}

int net__read_start(net_stream *s)
{
    if (s->reading)
        return 0;
    int rc = s->tp->read_start(s);
    if (rc == 0)
        s->reading = 1;
    return rc;
}

void net__read_stop(net_stream *s)
{
    if (s->reading) {
        s->tp->read_stop(s);
        s->reading = 0;
    }
}

size_t net__queued(const net_stream *s)
{
    return s->out.queued;
}

uint64_t net__queued_end(const net_stream *s)
{
    return s->out.total;
}

void net__want_flush(net_stream *s)
{
    if (s->on_flush || s->closing)
        return;
    broker *b = s->b;
    s->on_flush = 1;
    s->next_flush = b->net.flush_list;
    b->net.flush_list = s;
    broker__kick(b);
}

char *net__frame(net_stream *s, size_t n)
{
    char *p = outq__frame(&s->out, n);
    if (p) {
        broker__mem_add(s->b, n);
        net__want_flush(s);
    }
    return p;
}

char *net__frame_open(net_stream *s, size_t max)
{
    return outq__frame_open(&s->out, max);
}

void net__frame_close(net_stream *s, size_t used)
{
    outq__frame_close(&s->out, used);
    if (used) {
        broker__mem_add(s->b, used);
        net__want_flush(s);
    }
}

int net__push_frame(net_stream *s, const char *a, size_t alen, const char *b, size_t blen,
                    sbuf *shared)
{
    if (outq__push_frame(&s->out, a, alen, b, blen, shared) != 0)
        return -1;
    broker__mem_add(s->b, alen + blen + shared->len);
    net__want_flush(s);
    return 0;
}

void net__flush(net_stream *s)
{
    if (s->closing || s->out.inflight)
        return;
    broker *b = s->b;
    size_t n = outq__start(&s->out, &b->net.iov, &b->net.iov_cap);
    if (n == 0) {
        if (s->out.npend)
            s->cb->written(s, UV_ENOMEM); /* no memory for the iovec */
        return;
    }
    if (s->tp->write(s, b->net.iov, (unsigned)n) != 0) {
        broker__mem_sub(b, outq__done(&s->out));
        s->cb->written(s, UV_EPIPE);
        return;
    }
    s->last_write = uv_now(b->loop);
}

void net__flush_all(broker *b)
{
    while (b->net.flush_list) {
        net_stream *s = b->net.flush_list;
        b->net.flush_list = s->next_flush;
        s->on_flush = 0;
        net__flush(s);
    }
}

void net__on_written(net_stream *s, int status)
{
    broker *b = s->b;
    size_t n = outq__done(&s->out);
    broker__mem_sub(b, n);
    if (status >= 0) {
        b->stats.bytes_out += n;
        s->written += n;
        if (s->out.npend)
            net__flush(s);
    }
    s->cb->written(s, status);
}

void net__close(net_stream *s, int abort)
{
    if (s->aborted || (s->closing && !abort))
        return;
    net__read_stop(s);
    s->closing = 1;
    s->aborted = abort != 0;
    s->tp->close(s, abort);
}

void net__on_closed(net_stream *s)
{
    broker *b = s->b;
    if (s->on_flush) {
        net_stream **pp = &b->net.flush_list;
        while (*pp != s)
            pp = &(*pp)->next_flush;
        *pp = s->next_flush;
        s->on_flush = 0;
    }
    broker__mem_sub(b, s->out.queued);
    outq__free(&s->out);
    s->cb->closed(s);
}
