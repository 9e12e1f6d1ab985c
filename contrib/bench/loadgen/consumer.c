/* consumer.c: every MESSAGE checked and counted. The body must be well formed; the
 * (producer, sequence) bit in the group's bitmap tells a first delivery from a duplicate,
 * and a sequence below the last one seen from that producer is out of order. On a
 * client-individual subscription each message is ACKed by its ack header. rpc: a responder
 * sends each request back to its reply-to; the requester checks and counts the reply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

/* ACK or NACK f by its ack header: false (and the run fails) when it has none. */
static bool settle(struct conn *c, const stomp_frame *f, const char *cmd, int cmd_id)
{
    size_t alen;
    const char *ack = stomp_frame_header(f, "ack", &alen);
    if (!ack) {
        fail("MESSAGE without an ack header on a client-individual subscription");
        return false;
    }
    conn__append(c, cmd, strlen(cmd));
    conn__header(c, "id", ack, alen, cmd_id);
    conn__append(c, "\n", 2);
    return true;
}

/* --nack-all: a MESSAGE of a queue (not of its dead-letter queue) is NACKed, not counted. */
static bool nacked(struct conn *c, const stomp_frame *f)
{
    size_t slen;
    const char *sub = stomp_frame_header(f, "subscription", &slen);
    if (!R.o.nack_all || !sub || slen < 2 || atoi(sub + 1) >= R.ndests)
        return false;
    if (settle(c, f, "NACK\n", STOMP_CMD_NACK))
        atomic_fetch_add(&R.nacks, 1);
    return true;
}

/* The body's producer, sequence and send time, or false (counted as malformed). */
static bool well_formed(const stomp_frame *f, uint64_t *pid, uint64_t *seq, uint64_t *ts)
{
    if (f->body_len == R.o.size && get_hex(f->body, 4, pid) && get_hex(f->body + 4, 12, seq) &&
        get_hex(f->body + 16, 16, ts) && *pid < (uint64_t)R.o.producers &&
        *seq < R.o.messages &&
        (R.o.size <= BODY_MIN || f->body[f->body_len - 1] == R.pad[R.o.size - BODY_MIN - 1]))
        return true;
    if (atomic_fetch_add(&R.bad, 1) == 0) {
        char d[256];
        dump_bytes(d, sizeof d, f->body, f->body_len, 64);
        fprintf(stderr, "loadgen: first bad body (%zu bytes, expected %zu): %s\n", f->body_len,
                R.o.size, d);
    }
    return false;
}

/* The (group, producer, sequence) bit: true on the first delivery, a duplicate otherwise. */
static bool first_delivery(int group, uint64_t pid, uint64_t seq, struct rx_batch *b)
{
    size_t word = ((size_t)group * (size_t)R.o.producers + pid) * R.words + seq / 64;
    uint64_t mask = (uint64_t)1 << (seq % 64);
    uint64_t old = atomic_fetch_or(&R.bits[word], mask);
    if (old & mask) {
        atomic_fetch_add(&R.dup, 1);
        return false;
    }
    b->unique++;
    return true;
}

/* rpc: a responder answers each request with its body, sent to the request's reply-to,
 * which the broker must have rewritten to a /reply-queue/ name. */
static void respond(struct conn *c, const stomp_frame *f)
{
    size_t tlen;
    const char *to = stomp_frame_header(f, "reply-to", &tlen);
    if (!to || tlen <= 13 || memcmp(to, "/reply-queue/", 13) != 0) {
        fail("request with reply-to:%s on connection %d: not a /reply-queue/ name",
             to ? to : "(none)", c->idx);
        return;
    }
    char len[32];
    int n = snprintf(len, sizeof len, "%zu", f->body_len);
    conn__append(c, "SEND\n", 5);
    conn__header(c, "destination", to, tlen, STOMP_CMD_SEND);
    conn__header(c, "content-length", len, (size_t)n, STOMP_CMD_SEND);
    conn__append(c, "\n", 1);
    conn__append(c, f->body, f->body_len);
    conn__append(c, "", 1); /* the NUL */
}

/* rpc: a reply on requester c, under the subscription its reply-to made: its own request's
 * body, once. */
void consumer__on_reply(struct conn *c, const stomp_frame *f, struct rx_batch *b)
{
    uint64_t pid, seq, ts;
    size_t slen;
    const char *sub = stomp_frame_header(f, "subscription", &slen);
    if (!sub || slen != 13 || memcmp(sub, "/temp-queue/r", 13) != 0) {
        fail("reply on connection %d with subscription:%s, not /temp-queue/r", c->idx,
             sub ? sub : "(none)");
        return;
    }
    if (c->awaiting <= 0) {
        fail("a reply with no request outstanding on connection %d", c->idx);
        return;
    }
    c->awaiting--;
    b->received++;
    c->got++;
    if (!well_formed(f, &pid, &seq, &ts))
        return;
    if (pid != (uint64_t)c->pid) {
        if (atomic_fetch_add(&R.bad, 1) == 0)
            fprintf(stderr, "loadgen: requester %d got the reply to requester %d\n", c->pid,
                    (int)pid);
        return;
    }
    (void)first_delivery(0, pid, seq, b);
    if (c->last_reply != NONE && seq < c->last_reply)
        atomic_fetch_add(&R.ooo, 1);
    if (c->last_reply == NONE || seq > c->last_reply)
        c->last_reply = seq;
}

/* One MESSAGE on c: its first delivery is also a latency sample (latency) or one more
 * subscriber reached in its round (conns). */
void consumer__on_message(struct conn *c, const stomp_frame *f, struct rx_batch *b)
{
    uint64_t pid, seq, ts;
    if (nacked(c, f))
        return;
    if (R.o.sc == SC_RPC) { /* a responder: the requester counts the round trip */
        c->got++;
        if (!R.o.client_ack || settle(c, f, "ACK\n", STOMP_CMD_ACK))
            respond(c, f);
        return;
    }
    b->received++;
    c->got++;
    if (R.o.client_ack && !settle(c, f, "ACK\n", STOMP_CMD_ACK))
        return;
    if (!well_formed(f, &pid, &seq, &ts))
        return;
    if (R.o.selectors && c->group % 2) { /* its selector takes none of them */
        if (atomic_fetch_add(&R.bad, 1) == 0)
            fprintf(stderr, "loadgen: subscriber %d got a message its selector refuses\n",
                    c->group);
        return;
    }
    if (first_delivery(c->group, pid, seq, b)) {
        if (R.lat_ns)
            R.lat_ns[seq] = (uint64_t)(now_ns() - (int64_t)ts);
        if (R.round_got && atomic_fetch_add(&R.round_got[seq], 1) + 1 == (uint64_t)R.groups) {
            atomic_store(&R.round_done_ns[seq], now_ns());
            atomic_fetch_add(&R.rounds_done, 1);
        }
    }
    if (c->last[pid] != NONE && seq < c->last[pid])
        atomic_fetch_add(&R.ooo, 1);
    if (c->last[pid] == NONE || seq > c->last[pid])
        c->last[pid] = seq;
}

/* A read's deliveries into the run's counters; the one that completes the expected count
 * stamps the end of the timing. */
void consumer__publish(const struct rx_batch *b)
{
    if (!b->received)
        return;
    int64_t t = now_ns();
    atomic_fetch_add(&R.received, b->received);
    atomic_store(&R.t_last_rx, t);
    uint64_t before = atomic_fetch_add(&R.unique, b->unique);
    if (before < R.expected && before + b->unique >= R.expected)
        atomic_store(&R.t_last, t);
}
