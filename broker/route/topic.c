/* topic.c: topic fan-out: a message published to a /topic/ destination reaches every
 * current subscriber whose selector and noLocal let it through (filter.c), in order, and
 * nothing is stored. Subscribers of wildcard topic dests whose pattern matches the name get
 * it too, under the same message-id: the patterns come from the broker's trie (wild.h), so
 * a SEND costs the name's elements, not the number of patterns.
 *
 * The shared part of the MESSAGE is encoded once per protocol version and referenced by
 * every subscriber of that version; only the per-subscription head differs. A subscriber
 * in a client ack mode whose prefetch window is full has its messages wait (window.c); one
 * that cannot keep up (output, and what waits, over max_output_bytes) gets an ERROR
 * rather than unbounded memory.
 * With the PostgreSQL store, topics span the nodes sharing its database: each message
 * published here also goes to the others through the store, and theirs reach the
 * subscribers here (the end of this file).
 */
#include "core.h"
#include "store_postgres.h"

#include <stdlib.h>
#include <string.h>

/* Inlined into each loop below: the plain fan-out costs what it did before filters. */
#define HOT static inline __attribute__((always_inline))

HOT void deliver_inproc(broker *b, sub *s, bmsg *m, const char *msgid)
{
    broker_message view = { m->dest, msgid, m->body, m->body_len, 0, m->hdrs, m->hdrs_len };
    /* In-process delivery is a callback: it cannot fail. */
    broker_err rc = sub__deliver(b, s, NULL, NULL, 0, m->seq, 0, &view);
    (void)rc;
}

/* The MESSAGE of m (numbered msgid) to s now, encoded for its version on first use. */
HOT void send_to(broker *b, sub *s, bmsg *m, const char *msgid)
{
    endpoint *ep = s->ep;
    stomp_version v = ep->version;
    if (!m->enc[v]) {
        stomp_err err;
        stomp_message sm = { m->dest, m->dest_len, msgid,     strlen(msgid), 0, NULL,
                             m->hdrs, m->hdrs_len, m->body,   m->body_len };
        m->enc[v] = msg__encode(v, &sm, &err);
        if (!m->enc[v]) {
            /* SENDs are checked for what every version can carry: memory ran out. */
            ep->ops->fail(ep, BROKER_E_NOMEM, "out of memory");
            return;
        }
    }
    if (sub__deliver(b, s, NULL, m->enc[v], 0, m->seq, 0, NULL) != BROKER_OK)
        ep->ops->fail(ep, BROKER_E_NOMEM, "out of memory");
    else if (s->ack_mode != ACK_AUTO)
        window__sent(s, m);
}

void topic__send_to(broker *b, sub *s, bmsg *m)
{
    char msgid[32];
    msgid[0] = 't';
    msgid[1 + msg__u64(msgid + 1, m->seq)] = '\0';
    send_to(b, s, m, msgid);
}

HOT void deliver_remote(broker *b, sub *s, bmsg *m, const char *msgid)
{
    endpoint *ep = s->ep;
    if (!ep->open)
        return;
    if (ep->ops->queued(ep) >= b->o.max_output_bytes) {
        ep->ops->fail(ep, BROKER_E_LIMIT, "slow consumer: output queue over its limit");
        return;
    }
    if (s->ack_mode != ACK_AUTO && window__hold(b, s, m))
        return;
    send_to(b, s, m, msgid);
}

/* d's subscribers that let m through (the caller holds d busy). */
static void fan_out_filtered(broker *b, dest_t *d, bmsg *m, const char *msgid)
{
    for (sub *s = d->head; s; s = s->dnext) {
        if (s->dead || !filter__topic(s, m, msgid))
            continue;
        if (s->ep)
            deliver_remote(b, s, m, msgid);
        else
            deliver_inproc(b, s, m, msgid);
    }
}

/* m's message-id: 't' and its number (given one now). */
HOT void number(broker *b, bmsg *m, char *msgid)
{
    m->seq = ++b->route.topic_seq;
    msgid[0] = 't';
    msgid[1 + msg__u64(msgid + 1, m->seq)] = '\0';
}

HOT void fan_out(broker *b, dest_t *d, bmsg *m, const char *msgid)
{
    if (d->nfiltered) {
        fan_out_filtered(b, d, m, msgid);
        return;
    }
    for (sub *s = d->head; s; s = s->dnext) {
        if (s->dead)
            continue;
        d->n_out++;
        if (s->ep)
            deliver_remote(b, s, m, msgid);
        else
            deliver_inproc(b, s, m, msgid);
    }
}

void topic__fan_out(broker *b, dest_t *d, bmsg *m)
{
    char msgid[32];
    number(b, m, msgid);
    d->busy++;
    fan_out(b, d, m, msgid);
    d->busy--;
    dest__sweep(d);
}

/* The dests a SEND reaches: its own and the matching patterns', each held busy (so a
 * callback that unsubscribes frees none of them under the walk). A few fit on the stack. */
#define FEW_DESTS 32
typedef struct reach {
    dest_t *few[FEW_DESTS];
    dest_t **all;
    size_t n, cap;
    int nomem;
} reach;

static void add_dest(void *arg, dest_t *d)
{
    reach *r = arg;
    if (r->n == r->cap) {
        size_t cap = r->cap * 2;
        dest_t **na = r->all == r->few ? malloc(cap * sizeof *na)
                                       : realloc(r->all, cap * sizeof *na);
        if (!na) {
            r->nomem = 1;
            return;
        }
        if (r->all == r->few)
            memcpy(na, r->few, sizeof r->few);
        r->all = na;
        r->cap = cap;
    }
    d->busy++;
    r->all[r->n++] = d;
}

broker_err topic__publish_wild(broker *b, dest_t *d, const char *dname, size_t dlen,
                               const stomp_frame *f, bmsg *m, const msg_attrs *a,
                               const endpoint *from)
{
    reach r = { .cap = FEW_DESTS };
    r.all = r.few;
    if (d)
        add_dest(&r, d);
    wild__match(&b->route.wild_topics, dname, dlen, add_dest, &r);
    broker_err rc = r.nomem ? BROKER_E_NOMEM : BROKER_OK;
    bmsg *own = NULL;
    if (r.n && rc == BROKER_OK && !m) {
        if (!(m = own = bmsg__from_frame(f, dname, dlen)))
            rc = BROKER_E_NOMEM;
        else
            m->attrs = *a, m->origin = from;
    }
    if (r.n && rc == BROKER_OK) {
        char msgid[32];
        number(b, m, msgid);
        for (size_t i = 0; i < r.n; i++)
            fan_out(b, r.all[i], m, msgid);
    }
    for (size_t i = 0; i < r.n; i++) {
        r.all[i]->busy--;
        dest__sweep(r.all[i]);
        dest__release(b, r.all[i]);
    }
    if (r.all != r.few)
        free(r.all);
    if (own)
        bmsg__unref(own);
    return rc;
}

/* ---- topics across nodes: the store carries them to the nodes sharing its database ---- */

/* m to the other nodes (when the store shares topics): with the next commit. A refusal
 * (memory, or the database unreachable for long) costs the other nodes this message, not
 * this node's subscribers. */
void topic__share(broker *b, const char *dname, size_t dlen, const char *hdrs, size_t hlen,
                  const char *body, size_t blen, uint64_t expires)
{
    if (!b->route.topic_share)
        return;
    store_postgres_topic t = { dname, dlen, hdrs, hlen, body, blen, expires };
    if (store_postgres_publish(b->store, &t) != STORE_OK) {
        b->route.topic_share_dropped++;
        return;
    }
    commit__again(b);
}

void topic__share_frame(broker *b, const stomp_frame *f, const char *dname, size_t dlen,
                        const msg_attrs *a)
{
    route_state *r = &b->route;
    size_t hlen;
    if (!r->topic_share)
        return;
    if (msg__header_block(f, &r->scratch, &r->scratch_cap, &hlen) != 0) {
        r->topic_share_dropped++;
        return;
    }
    topic__share(b, dname, dlen, r->scratch, hlen, f->body, f->body_len, a->expires);
}

/* A header block as msg__header_block makes it: "name\0value\0" pairs. */
static int block_ok(const char *h, size_t n)
{
    size_t nuls = 0;
    for (size_t i = 0; i < n; i++)
        nuls += h[i] == '\0';
    return nuls % 2 == 0 && (!n || h[n - 1] == '\0');
}

void topic__remote(broker *b, const char *dname, size_t dlen, const char *hdrs, size_t hlen,
                   const char *body, size_t blen, uint64_t expires)
{
    if (b->stopping)
        return;
    /* The database is trusted, but a notification can come from any of its clients. */
    if (!dest__is_topic(dname, dlen) || !block_ok(hdrs, hlen)) {
        b->route.topic_share_dropped++;
        return;
    }
    if (expires && expires <= broker__now_ms(b)) {
        b->stats.expired++;
        return;
    }
    dest_t *d = dest__find(b, dname, dlen, store_hash_name(dname, dlen));
    if (!d && !b->route.wild_topics.n)
        return; /* nobody here listens */
    bmsg *m = bmsg__from_block(dname, dlen, hdrs, hlen, body, blen);
    if (!m) {
        b->route.topic_share_dropped++;
        return;
    }
    m->attrs.expires = expires;
    if (d)
        d->n_in++;
    if (b->route.wild_topics.n) {
        if (topic__publish_wild(b, d, dname, dlen, NULL, m, &m->attrs, NULL) != BROKER_OK)
            b->route.topic_share_dropped++;
    } else {
        topic__fan_out(b, d, m);
    }
    bmsg__unref(m);
}
