/* queue.c: queues: a SEND to any destination that is not a topic goes into the store, and
 * each stored message is dispatched to exactly one subscriber.
 *
 * Enqueueing is a store write in the open batch; the queue is dispatched once that batch
 * committed (commit.c), never before. Dispatch is round robin among the subscribers with
 * room (prefetch window, output below the high-water mark), FIFO per queue. An auto-ack
 * delivery is acknowledged once its bytes were written to the connection's socket; one
 * that never is (the connection or the broker stopped first) goes back to its queue.
 */
#include "core.h"

/* Inlined into both enqueues: the plain one costs what it did before shared bodies. */
#define HOT static inline __attribute__((always_inline))

/* The store's attributes for a message to the queue named so: its own, with the queue's
 * ttl and max_ttl applied. 0 when they are a plain message's (priority 4, at once, never
 * expires): the plain enqueue does. */
HOT int store_attrs_for(const broker *b, const char *dname, size_t dlen, const msg_attrs *a,
                        store_attrs *sa)
{
    uint64_t expires = a ? a->expires : 0, delay = a ? a->delay : 0;
    uint8_t priority = a ? a->priority : 4;
    if (!expires && !delay && priority == 4 && !b->route.ttls)
        return 0; /* the common case: no policy lookup */
    const broker_policy *p = policy__for(b, dname, dlen);
    if (!expires && !delay && priority == 4 && !p->ttl && !p->max_ttl)
        return 0;
    uint64_t now = broker__now_ms(b);
    if (!expires && p->ttl)
        expires = now + p->ttl;
    if (p->max_ttl && (!expires || expires > now + p->max_ttl))
        expires = now + p->max_ttl;
    *sa = (store_attrs){ .priority = priority,
                         .not_before = delay ? now + delay : 0,
                         .expires = expires };
    return 1;
}

/* The broker's side of a message the store took into queue dname: bytes more in the
 * store, its commit, its expiry timer, the queue's counters (what queue__enqueue does
 * inline: the path of every message). */
static void enqueued(broker *b, const char *dname, size_t dlen, uint64_t hash, size_t bytes,
                     uint64_t expires)
{
    if (b->store_counted)
        broker__mem_add(b, bytes);
    commit__dirty(b);
    if (expires)
        queue__expiry_at(b, expires);
    /* The queue's dest is made at its first message and kept (its counters): after that
     * the look-up finds it, as it always did for a queue with subscribers. */
    dest_t *d = dest__find(b, dname, dlen, hash);
    if (!d)
        d = dest__get(b, dname, dlen, hash);
    if (d) {
        d->n_in++;
        dest__touch(b, d);
    }
}

static broker_err enqueue_failed(broker *b, store_err se)
{
    broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0, "enqueue failed: %s",
                store_strerror(se));
    return se == STORE_E_NOMEM ? BROKER_E_NOMEM : BROKER_E_STORE;
}

broker_err queue__enqueue(broker *b, const char *dname, size_t dlen, uint64_t hash,
                          const char *hdrs, size_t hlen, const char *body, size_t blen,
                          const msg_attrs *a, uint64_t *idp)
{
    uint64_t id;
    store_attrs sa;
    int with = store_attrs_for(b, dname, dlen, a, &sa);
    store_err se = with ? b->st->enqueue_attrs(b->store, dname, dlen, hash, hdrs, hlen, body,
                                               blen, &sa, &id)
                        : b->st->enqueue_hashed(b->store, dname, dlen, hash, hdrs, hlen, body,
                                                blen, &id);
    if (se != STORE_OK)
        return enqueue_failed(b, se);
    if (b->store_counted)
        broker__mem_add(b, hlen + blen);
    if (idp)
        *idp = id;
    commit__dirty(b);
    if (with && sa.expires)
        queue__expiry_at(b, sa.expires);
    /* The queue's dest is made at its first message and kept (its counters): after that
     * the look-up finds it, as it always did for a queue with subscribers. */
    dest_t *d = dest__find(b, dname, dlen, hash);
    if (!d)
        d = dest__get(b, dname, dlen, hash);
    if (d) {
        d->n_in++;
        dest__touch(b, d);
    }
    return BROKER_OK;
}

broker_err queue__enqueue_shared(broker *b, store_target *t, store_attrs *sa, size_t n,
                                 const char *hdrs, size_t hlen, const char *body, size_t blen,
                                 const msg_attrs *a)
{
    for (size_t i = 0; i < n; i++)
        t[i].attrs = store_attrs_for(b, t[i].queue, t[i].queue_len, a, &sa[i]) ? &sa[i] : NULL;
    store_err se = b->st->enqueue_shared(b->store, t, n, hdrs, hlen, body, blen);
    if (se != STORE_OK)
        return enqueue_failed(b, se);
    /* Bytes as given back: per message (a store with enqueue_shared has resident anyway). */
    for (size_t i = 0; i < n; i++)
        enqueued(b, t[i].queue, t[i].queue_len, t[i].hash, hlen + blen,
                 t[i].attrs ? t[i].attrs->expires : 0);
    return BROKER_OK;
}

/* The subscriber the next message goes to: round robin among those with room, or only the
 * oldest exclusive one when there is one. */
static sub *next_with_room(broker *b, dest_t *d)
{
    if (d->nexclusive) {
        sub *s = d->head;
        while (s && (s->dead || !s->exclusive))
            s = s->dnext;
        return s && sub__has_room(b, s) ? s : NULL;
    }
    sub *start = d->cursor ? d->cursor : d->head;
    sub *s = start;
    if (!s)
        return NULL;
    do {
        if (sub__has_room(b, s))
            return s;
        s = s->dnext ? s->dnext : d->head;
    } while (s != start);
    return NULL;
}

broker_err queue__hand_over(broker *b, dest_t *d, sub *s, const store_msg *sm, size_t bytes,
                            int taken)
{
    char msgid[32];
    msgid[msg__u64(msgid, sm->id)] = '\0';
    const char *dname = d->name, *hdrs = sm->headers;
    size_t dlen = d->link.len, hlen = sm->headers_len;
    if (durable__is_backlog(dname, dlen))
        durable__split(&hdrs, &hlen, &dname, &dlen);
    if (!s->ep) {
        broker_message view = { dname, msgid, sm->body, sm->body_len, sm->redeliveries,
                                hdrs, hlen };
        return sub__deliver(b, s, d, NULL, taken, sm->id, bytes, &view);
    }
    stomp_message m = { dname, dlen, msgid, strlen(msgid), sm->redeliveries, NULL, hdrs,
                        hlen, sm->body, sm->body_len };
    broker_err rc;
    if (stomp_message_bound(&m) <= OUTQ_COPY_MAX) {
        /* Small enough to be copied anyway: encoded straight into the output. */
        rc = sub__deliver_msg(b, s, d, &m, taken, sm->id, bytes);
    } else {
        stomp_err err;
        sbuf *enc = msg__encode(s->ep->version, &m, &err);
        rc = enc ? sub__deliver(b, s, d, enc, taken, sm->id, bytes, NULL)
                 : err == STOMP_E_UNENCODABLE ? BROKER_E_PROTOCOL : BROKER_E_NOMEM;
        sbuf__unref(enc);
    }
    if (rc == BROKER_E_PROTOCOL)
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0,
                    "message %s of %s cannot be carried in STOMP 1.%d", msgid, d->name,
                    (int)s->ep->version);
    return rc;
}

/* Take the next message of d that is due for s and hand it over: 1 when one was taken
 * (delivered or not), 0 when d has nothing due now (the timer is set for what waits). */
static int dispatch_one(broker *b, dest_t *d, sub *s, uint64_t now)
{
    store_msg sm;
    store_err se = b->st->take_at(b->store, d->name, d->link.len, d->link.hash, now, &sm);
    if (se == STORE_E_AGAIN) {
        /* The store records the delivery bound first: dispatch after that commit. */
        dest__touch(b, d);
        commit__dirty(b);
        return 0;
    }
    if (se == STORE_E_EXPIRED) {
        /* Its head expired: the expiry run takes it out, then dispatches d again. */
        queue__expiry_at(b, now);
        return 0;
    }
    if (se != STORE_OK) {
        uint64_t due = se == STORE_E_EMPTY
                           ? b->st->next_due(b->store, d->name, d->link.len, d->link.hash, now)
                           : 0;
        if (due)
            queue__wake_at(b, d, due, now);
        return 0;
    }
    d->cursor = s->dnext ? s->dnext : d->head;
    size_t bytes = b->store_counted ? sm.headers_len + sm.body_len : 0;
    broker_err rc = queue__hand_over(b, d, s, &sm, bytes, 1);
    if (rc != BROKER_OK) {
        (void)queue__return(b, sm.id, RETURN_UNSENT, 0);
        if (s->ep)
            s->ep->ops->fail(s->ep, rc,
                             rc == BROKER_E_NOMEM
                                 ? "out of memory"
                                 : "a queued message cannot be carried in this STOMP version");
    } else {
        d->n_out++;
        if (!s->ep) {
            /* In-process: the callback had it. A connection's auto-ack delivery is
             * acknowledged once its bytes are written (route__endpoint_written). */
            if (b->st->ack(b->store, sm.id) == STORE_OK)
                commit__dirty(b);
            broker__mem_sub(b, bytes);
        }
    }
    return 1;
}

void queue__dispatch(broker *b, dest_t *d)
{
    if (d->drain)
        queue__drain_step(b, d);
    if (d->is_topic || b->stopping)
        return;
    if (d->purge) {
        tempq__purge(b, d);
        return;
    }
    if (d == b->route.dur_records) {
        durable__dispatch(b, d);
        return;
    }
    uint64_t now = broker__now_ms(b);
    d->busy++;
    if (d->nbrowsers)
        queue__browse(b, d, now);
    if (d->nfiltered || d->is_wild) {
        if (d->is_wild)
            queue__dispatch_wild(b, d, now);
        else
            queue__dispatch_select(b, d, now);
        d->busy--;
        dest__sweep(d);
        return;
    }
    while (d->nsubs) {
        sub *s = next_with_room(b, d);
        if (!s || !dispatch_one(b, d, s, now))
            break;
    }
    d->busy--;
    dest__sweep(d);
}
