/* router.c: destinations: topic fan-out and queue dispatch.
 *
 * A dest exists while something uses it (subscribers, a pending dispatch, a commit in
 * flight that enqueued to it); queue contents live in the store, not here. Subscriber
 * lists may be walked while user callbacks run: removal during a walk (busy > 0) only
 * marks the subscription dead and the walk's end sweeps it. Topic fan-out encodes the
 * shared part once per version and queues a reference on every subscriber.
 */
#include "internal.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every SEND to a queue looks its name up: eight bytes per step. */
static uint64_t hash_name(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 32);
}

int router__is_topic(const char *name, size_t len)
{
    return len >= 7 && memcmp(name, "/topic/", 7) == 0;
}

dest_t *router__find(broker *b, const char *name, size_t len)
{
    if (!b->dtab_cap)
        return NULL;
    uint64_t h = hash_name(name, len);
    for (dest_t *d = b->dtab[h & (b->dtab_cap - 1)]; d; d = d->hnext)
        if (d->hash == h && d->name_len == len && memcmp(d->name, name, len) == 0)
            return d;
    return NULL;
}

dest_t *router__get(broker *b, const char *name, size_t len)
{
    dest_t *d = router__find(b, name, len);
    if (d)
        return d;
    if (b->ndests >= b->dtab_cap) {
        size_t ncap = b->dtab_cap ? b->dtab_cap * 2 : 64;
        dest_t **nt = calloc(ncap, sizeof *nt);
        if (!nt)
            return NULL;
        for (size_t i = 0; i < b->dtab_cap; i++)
            for (dest_t *x = b->dtab[i], *n; x; x = n) {
                n = x->hnext;
                x->hnext = nt[x->hash & (ncap - 1)];
                nt[x->hash & (ncap - 1)] = x;
            }
        free(b->dtab);
        b->dtab = nt;
        b->dtab_cap = ncap;
    }
    d = calloc(1, sizeof *d + len + 1);
    if (!d)
        return NULL;
    d->hash = hash_name(name, len);
    d->is_topic = router__is_topic(name, len);
    d->name_len = len;
    memcpy(d->name, name, len);
    d->hnext = b->dtab[d->hash & (b->dtab_cap - 1)];
    b->dtab[d->hash & (b->dtab_cap - 1)] = d;
    b->ndests++;
    return d;
}

static void sweep(broker *b, dest_t *d)
{
    if (d->busy || !d->has_dead)
        return;
    d->has_dead = 0;
    for (sub *s = d->head, *n; s; s = n) {
        n = s->dnext;
        if (!s->dead)
            continue;
        if (s->dprev)
            s->dprev->dnext = s->dnext;
        else
            d->head = s->dnext;
        if (s->dnext)
            s->dnext->dprev = s->dprev;
        else
            d->tail = s->dprev;
        sub__free(s);
    }
    (void)b;
}

void router__release(broker *b, dest_t *d)
{
    if (d->nsubs || d->busy || d->has_dead || d->on_dispatch || d->on_touched || d->pins)
        return;
    dest_t **pp = &b->dtab[d->hash & (b->dtab_cap - 1)];
    while (*pp != d)
        pp = &(*pp)->hnext;
    *pp = d->hnext;
    b->ndests--;
    free(d);
}

void router__schedule(broker *b, dest_t *d)
{
    if (d->is_topic || d->on_dispatch)
        return;
    d->on_dispatch = 1;
    d->next_dispatch = b->dispatch_list;
    b->dispatch_list = d;
    broker__kick(b);
}

void router__touch(broker *b, dest_t *d)
{
    if (d->on_touched)
        return;
    d->on_touched = 1;
    d->next_touched = b->touched;
    b->touched = d;
}

void router__add_sub(broker *b, dest_t *d, sub *s)
{
    s->d = d;
    s->dnext = NULL;
    s->dprev = d->tail;
    if (d->tail)
        d->tail->dnext = s;
    else
        d->head = s;
    d->tail = s;
    d->nsubs++;
    b->stats.subscriptions++;
    router__schedule(b, d);
    /* Messages of a batch not yet committed may be for this queue although it had no
     * dest when they were sent: look again once that batch (and the next) completed. */
    if (!d->is_topic && (b->dirty || b->commit_inflight)) {
        router__touch(b, d);
        if (!b->dirty) {
            b->dirty = 1;
            broker__kick(b);
        }
    }
}

void router__remove_sub(broker *b, sub *s)
{
    dest_t *d = s->d;
    sub__return_unacked(b, s);
    if (s->c) {
        conn *c = s->c;
        if (s->cprev)
            s->cprev->cnext = s->cnext;
        else
            c->subs_head = s->cnext;
        if (s->cnext)
            s->cnext->cprev = s->cprev;
        c->nsubs--;
        s->c = NULL;
    }
    if (d->cursor == s)
        d->cursor = s->dnext;
    d->nsubs--;
    b->stats.subscriptions--;
    s->dead = 1;
    d->has_dead = 1;
    sweep(b, d);
    if (d->nsubs)
        router__schedule(b, d);
    router__release(b, d);
}

void router__free_all(broker *b)
{
    for (size_t i = 0; i < b->dtab_cap; i++)
        for (dest_t *d = b->dtab[i], *n; d; d = n) {
            n = d->hnext;
            for (sub *s = d->head, *sn; s; s = sn) {
                sn = s->dnext;
                sub__free(s);
            }
            free(d);
        }
    free(b->dtab);
    b->dtab = NULL;
    b->dtab_cap = b->ndests = 0;
    free(b->inflight);
    b->inflight = NULL;
}

/* ---- topics ------------------------------------------------------------------------- */

static void fan_out(broker *b, dest_t *d, bmsg *m)
{
    char msgid[32];
    m->seq = ++b->topic_seq;
    msgid[0] = 't';
    msgid[1 + msg__u64(msgid + 1, m->seq)] = '\0';
    d->busy++;
    for (sub *s = d->head; s; s = s->dnext) {
        if (s->dead)
            continue;
        conn *c = s->c;
        if (!c) {
            broker_message view = { m->dest, msgid, m->body, m->body_len, 0, m->hdrs,
                                    m->hdrs_len };
            /* In-process delivery is a callback: it cannot fail. */
            broker_err rc = sub__deliver(b, s, NULL, 0, m->seq, 0, &view);
            (void)rc;
            continue;
        }
        if (c->state != CS_OPEN)
            continue;
        if (c->out.queued >= b->o.max_output_bytes) {
            conn__fail(c, BROKER_E_LIMIT, NULL,
                       "slow consumer: output queue over its limit");
            continue;
        }
        if (s->ack_mode != ACK_AUTO && s->nunacked >= b->o.max_unacked) {
            conn__fail(c, BROKER_E_LIMIT, NULL, "too many unacknowledged messages");
            continue;
        }
        stomp_version v = c->version;
        if (!m->enc[v]) {
            m->enc[v] = msg__encode(v, m->dest, m->dest_len, msgid, 0, m->hdrs, m->hdrs_len,
                                    m->body, m->body_len, NULL, NULL);
            if (!m->enc[v]) {
                conn__fail(c, BROKER_E_NOMEM, NULL, "out of memory");
                continue;
            }
        }
        if (sub__deliver(b, s, m->enc[v], 0, m->seq, 0, NULL) != BROKER_OK)
            conn__fail(c, BROKER_E_NOMEM, NULL, "out of memory");
    }
    d->busy--;
    sweep(b, d);
}

/* ---- queues ------------------------------------------------------------------------- */

static broker_err enqueue(broker *b, const char *dname, size_t dlen, const char *hdrs,
                          size_t hlen, const char *body, size_t blen)
{
    uint64_t id;
    store_err se = b->st->enqueue(b->store, dname, dlen, hdrs, hlen, body, blen, &id);
    if (se != STORE_OK) {
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0, "enqueue failed: %s",
                    store_strerror(se));
        return se == STORE_E_NOMEM ? BROKER_E_NOMEM : BROKER_E_STORE;
    }
    if (b->store_counted)
        broker__mem_add(b, hlen + blen);
    commit__dirty(b);
    dest_t *d = router__find(b, dname, dlen);
    if (d)
        router__touch(b, d);
    return BROKER_OK;
}

broker_err router__send(broker *b, bmsg *m, int *stored)
{
    b->stats.messages_in++;
    if (router__is_topic(m->dest, m->dest_len)) {
        *stored = 0;
        dest_t *d = router__find(b, m->dest, m->dest_len);
        if (d)
            fan_out(b, d, m);
        return BROKER_OK;
    }
    *stored = 1;
    return enqueue(b, m->dest, m->dest_len, m->hdrs, m->hdrs_len, m->body, m->body_len);
}

broker_err router__send_frame(broker *b, const stomp_frame *f, const char *dname, size_t dlen,
                              int *stored)
{
    if (router__is_topic(dname, dlen)) {
        *stored = 0;
        dest_t *d = router__find(b, dname, dlen);
        if (!d) {
            b->stats.messages_in++;
            return BROKER_OK; /* nobody listening: a topic stores nothing */
        }
        bmsg *m = bmsg__from_frame(f, dname, dlen);
        if (!m)
            return BROKER_E_NOMEM;
        broker_err rc = router__send(b, m, stored);
        bmsg__unref(m);
        return rc;
    }
    /* Queue SENDs go straight to the store: no message object in between. */
    size_t hlen;
    if (msg__header_block(f, &b->scratch, &b->scratch_cap, &hlen) != 0)
        return BROKER_E_NOMEM;
    *stored = 1;
    b->stats.messages_in++;
    return enqueue(b, dname, dlen, b->scratch, hlen, f->body, f->body_len);
}

static sub *next_with_room(broker *b, dest_t *d)
{
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

void router__dispatch(broker *b, dest_t *d)
{
    if (d->is_topic || b->stopping)
        return;
    d->busy++;
    while (d->nsubs) {
        sub *s = next_with_room(b, d);
        if (!s)
            break;
        store_msg sm;
        store_err se = b->st->take(b->store, d->name, d->name_len, &sm);
        if (se == STORE_E_AGAIN) {
            /* The store records the delivery bound first: dispatch after that commit. */
            router__touch(b, d);
            commit__dirty(b);
            break;
        }
        if (se != STORE_OK)
            break;
        d->cursor = s->dnext ? s->dnext : d->head;
        char msgid[32];
        msgid[msg__u64(msgid, sm.id)] = '\0';
        size_t bytes = b->store_counted ? sm.headers_len + sm.body_len : 0;
        broker_err rc;
        if (!s->c) {
            broker_message view = { d->name, msgid, sm.body, sm.body_len, sm.redeliveries,
                                    sm.headers, sm.headers_len };
            rc = sub__deliver(b, s, NULL, 1, sm.id, bytes, &view);
        } else {
            sbuf *enc = msg__encode(s->c->version, d->name, d->name_len, msgid,
                                    sm.redeliveries, sm.headers, sm.headers_len, sm.body,
                                    sm.body_len, &b->encbuf, &b->encbuf_cap);
            rc = enc ? sub__deliver(b, s, enc, 1, sm.id, bytes, NULL) : BROKER_E_NOMEM;
            if (enc != b->encbuf)
                sbuf__unref(enc);
            else
                assert(enc->refs == 1); /* copied by the output queue, never referenced */
        }
        if (rc != BROKER_OK) {
            if (b->st->requeue(b->store, sm.id) == STORE_OK)
                commit__dirty(b);
            if (s->c)
                conn__fail(s->c, rc, NULL, "out of memory");
            continue;
        }
        if (s->ack_mode == ACK_AUTO) {
            /* Auto mode: acknowledged as it is handed to the connection. */
            if (b->st->ack(b->store, sm.id) == STORE_OK)
                commit__dirty(b);
            broker__mem_sub(b, bytes);
        }
    }
    d->busy--;
    sweep(b, d);
}
