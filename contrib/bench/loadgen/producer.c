/* producer.c: SEND frames, paced three ways: stream (as fast as the window of outstanding
 * receipts and the socket allow: queue, persistent, topic), timed (one frame per timer
 * tick: latency) and rounds (the next message once every subscriber had the previous one:
 * conns). Every body starts with the producer, its sequence number and the send time. */
#include <string.h>
#include <unistd.h>

#include "loadgen.h"

/* Ready, messages left, the run started and the window of outstanding receipts not full. */
bool producer__can_send(const struct conn *c)
{
    if (c->state != CS_READY || c->seq >= R.o.messages || !atomic_load(&R.go))
        return false;
    if (R.o.sc == SC_RPC)
        return c->awaiting < R.window;
    if (R.window > 0 && c->outstanding >= R.window)
        return false;
    return true;
}

/* One SEND for the next sequence number, ts its send time (0 when nobody measures it); a
 * receipt every receipt_every frames and on the last one. */
static void append_send(struct conn *c, int64_t ts)
{
    uint64_t i = c->seq;
    bool receipt = (R.receipt_every > 0 && (i + 1) % (uint64_t)R.receipt_every == 0) ||
                   i + 1 == R.o.messages;
    char *p = conn__reserve(c, c->prefix_len + 42 + R.o.size);
    memcpy(p, c->prefix, c->prefix_len);
    p += c->prefix_len;
    if (R.o.priorities) { /* the prefix ends with "priority:" */
        *p++ = (char)('0' + i % 10);
        *p++ = '\n';
    }
    if (receipt) {
        memcpy(p, "receipt:r", 9);
        p = put_dec(p + 9, i);
        *p++ = '\n';
        c->outstanding++;
    }
    *p++ = '\n';
    p = put_hex(p, (uint64_t)c->pid, 4);
    p = put_hex(p, i, 12);
    p = put_hex(p, (uint64_t)ts, 16);
    memcpy(p, R.pad, R.o.size - BODY_MIN);
    p += R.o.size - BODY_MIN;
    *p++ = '\0';
    c->out_len = (size_t)(p - c->out);
    c->seq++;
    if (R.o.sc == SC_RPC)
        c->awaiting++;
}

/* Sends what the pacing allows now. Stream: fill up to OUT_HWM while the window allows,
 * write, repeat while writable. Rounds: the next round's message if the last one is
 * complete. Timed: only writes what is queued; the timer sends. */
void producer__pump(struct conn *c)
{
    if (R.pmode == PM_STREAM) {
        for (;;) {
            bool more = producer__can_send(c);
            while (more && conn__pending(c) < OUT_HWM) {
                append_send(c, 0);
                more = producer__can_send(c);
            }
            if (!conn__flush(c) || !c->writable || !more)
                break;
        }
    } else if (R.pmode == PM_ROUNDS) {
        /* one message per round, once every subscriber had the previous one */
        if (producer__can_send(c) && atomic_load(&R.rounds_done) == c->seq) {
            uint64_t r = c->seq;
            int64_t t = now_ns();
            R.round_sent_ns[r] = t;
            append_send(c, t);
        }
        (void)conn__flush(c);
    } else {
        (void)conn__flush(c);
    }
}

/* Done once every message was sent and every receipt came back: the broker has them all. */
void producer__check_done(struct conn *c)
{
    if (!c->done && c->seq >= R.o.messages && c->outstanding == 0) {
        c->done = true;
        atomic_fetch_add(&R.producers_done, 1);
    }
}

/* The latency timer ticked (n times, if late). */
void producer__on_timer(struct worker *w)
{
    uint64_t n;
    if (read(w->tfd, &n, sizeof n) != (ssize_t)sizeof n)
        return;
    for (int i = 0; i < w->nproducers; i++) {
        struct conn *c = w->producers[i];
        if (c->fd < 0)
            continue;
        /* a late tick sends what is due, one frame each, each with its own timestamp */
        for (uint64_t k = 0; k < n && producer__can_send(c); k++) {
            append_send(c, now_ns());
            if (!conn__flush(c))
                break;
        }
    }
}
