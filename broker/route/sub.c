/* sub.c: subscriptions, deliveries and their settlement (ack, nack, return), and the
 * endpoints they belong to.
 *
 * A subscription in client or client-individual mode keeps its unacked deliveries in
 * delivery order; each is also findable by its endpoint's tag (the 1.2 ack id). Auto mode
 * keeps nothing. Settling a queue delivery is a store write (ack or requeue); a topic
 * delivery has nothing stored and is simply forgotten.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deliveries are recycled through a per-broker free list (bounded), so steady-state
 * client-ack traffic, topic fan-out included, allocates none. */
#define DELIVERY_CACHE 4096

static delivery *delivery_new(broker *b)
{
    delivery *d = b->route.dfree;
    if (d) {
        b->route.dfree = d->next;
        b->route.ndfree--;
        return d;
    }
    return malloc(sizeof *d);
}

static void delivery_free(broker *b, delivery *d)
{
    if (b->route.ndfree >= DELIVERY_CACHE) {
        free(d);
        return;
    }
    d->next = b->route.dfree;
    b->route.dfree = d;
    b->route.ndfree++;
}

void sub__free_cache(broker *b)
{
    while (b->route.dfree) {
        delivery *d = b->route.dfree;
        b->route.dfree = d->next;
        free(d);
    }
    b->route.ndfree = 0;
}

/* ---- endpoints ---------------------------------------------------------------------- */

void route__endpoint_init(endpoint *e, const endpoint_ops *ops)
{
    memset(e, 0, sizeof *e);
    e->ops = ops;
    e->version = STOMP_V10;
}

void route__endpoint_close(broker *b, endpoint *e)
{
    e->open = 0;
    while (e->subs)
        sub__unsubscribe(b, e->subs);
    tempq__endpoint_close(b, e);
    commit__unwait(b, e);
    free(e->tags.b);
    memset(&e->tags, 0, sizeof e->tags);
}

void route__endpoint_written(broker *b, endpoint *e, uint64_t written)
{
    while (e->sent_head && e->sent_head->end <= written) {
        delivery *d = e->sent_head;
        e->sent_head = d->next;
        /* route__endpoint_done walks back from the tail: the new head links to nothing. */
        if (e->sent_head)
            e->sent_head->prev = NULL;
        else
            e->sent_tail = NULL;
        if (b->st->ack(b->store, d->msg_num) == STORE_OK)
            commit__dirty(b);
        broker__mem_sub(b, d->bytes);
        dest_t *q = d->q;
        delivery_free(b, d);
        if (q->purge)
            dest__schedule(b, q); /* its last message may have gone */
        q->pins--;
        dest__release(b, q);
    }
}

void route__endpoint_done(broker *b, endpoint *e)
{
    /* Newest first: each requeue goes to the head of its queue, so order is kept. The
     * queue is dispatched again: its other subscribers may have room now. */
    while (e->sent_tail) {
        delivery *d = e->sent_tail;
        e->sent_tail = d->prev;
        (void)queue__return(b, d->msg_num, RETURN_UNSENT, 0);
        dest_t *q = d->q;
        delivery_free(b, d);
        dest__schedule(b, q);
        q->pins--;
        dest__release(b, q);
    }
    e->sent_head = NULL;
}

/* An auto-ack queue delivery of q waits on the endpoint's sent list for its bytes to go
 * out. */
static void sent(endpoint *e, delivery *d, dest_t *q, uint64_t msg_num, size_t bytes,
                 uint64_t end)
{
    d->s = NULL;
    d->q = q;
    q->pins++;
    d->msg_num = msg_num;
    d->is_queue = 1;
    d->bytes = bytes;
    d->end = end;
    d->next = NULL;
    d->prev = e->sent_tail;
    if (e->sent_tail)
        e->sent_tail->next = d;
    else
        e->sent_head = d;
    e->sent_tail = d;
}

void route__endpoint_drained(broker *b, endpoint *e)
{
    if (!e->blocked)
        return;
    e->blocked = 0;
    for (sub *s = e->subs; s; s = s->enext)
        if (!s->d->is_topic)
            dest__schedule(b, s->d);
}

/* ---- subscriptions ------------------------------------------------------------------ */

/* A new subscription on no list yet. id is copied; the head of its deliveries is encoded
 * for version v (the caller checked that v can carry the id). */
static sub *sub_new(broker *b, endpoint *ep, const char *id, size_t id_len, int ack_mode,
                    size_t window, stomp_version v)
{
    sub *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->b = b;
    s->ep = ep;
    s->ack_mode = ack_mode;
    s->window = window;
    s->id = malloc(id_len + 1);
    s->head_len = stomp_message_head_size(id, id_len, NULL, 0, v);
    s->head = s->head_len ? malloc(s->head_len) : NULL;
    if (!s->id || !s->head ||
        stomp_message_head(id, id_len, NULL, 0, v, s->head) != s->head_len) {
        sub__free(s);
        return NULL;
    }
    memcpy(s->id, id, id_len);
    s->id[id_len] = '\0';
    s->id_len = id_len;
    return s;
}

sub *sub__subscribe(broker *b, endpoint *ep, const char *dname, size_t dlen, const char *id,
                    size_t id_len, int ack_mode, size_t window, int flags, sel *selector)
{
    int browser = (flags & SUB_BROWSER) != 0;
    sub *s = sub_new(b, ep, id, id_len, browser ? ACK_AUTO : ack_mode, window, ep->version);
    if (!s)
        return NULL;
    s->exclusive = (flags & SUB_EXCLUSIVE) != 0;
    s->browser = browser;
    s->no_local = (flags & SUB_NO_LOCAL) != 0;
    dest_t *d = dest__get(b, dname, dlen, store_hash_name(dname, dlen));
    if (!d) {
        sub__free(s);
        return NULL;
    }
    s->selector = selector; /* the subscription's from here on */
    s->eprev = NULL;
    s->enext = ep->subs;
    if (ep->subs)
        ep->subs->eprev = s;
    ep->subs = s;
    ep->nsubs++;
    dest__add_sub(b, d, s);
    return s;
}

sub *sub__subscribe_inproc(broker *b, const char *dname, broker_message_cb cb, void *arg)
{
    char id[32];
    int n = snprintf(id, sizeof id, "inproc-%llu", (unsigned long long)++b->route.inproc_seq);
    sub *s = sub_new(b, NULL, id, (size_t)n, ACK_AUTO, b->o.max_unacked, STOMP_V12);
    if (!s)
        return NULL;
    s->cb = cb;
    s->cb_arg = arg;
    size_t dlen = strlen(dname);
    dest_t *d = dest__get(b, dname, dlen, store_hash_name(dname, dlen));
    if (!d) {
        sub__free(s);
        return NULL;
    }
    /* Queue dispatch happens at the tick, so cb never runs inside this call. */
    dest__add_sub(b, d, s);
    return s;
}

static void return_unacked(broker *b, sub *s);

void sub__unsubscribe(broker *b, sub *s)
{
    if (s->dur) { /* its durable subscription keeps collecting */
        durable__attach_end(b, s->dur);
        s->dur = NULL;
    }
    return_unacked(b, s);
    endpoint *ep = s->ep;
    if (ep) {
        if (s->eprev)
            s->eprev->enext = s->enext;
        else
            ep->subs = s->enext;
        if (s->enext)
            s->enext->eprev = s->eprev;
        ep->nsubs--;
        s->ep = NULL;
    }
    dest__unlink_sub(b, s);
}

sub *sub__find(const endpoint *ep, const char *id)
{
    for (sub *s = ep->subs; s; s = s->enext)
        if (strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

sub *sub__find_dest(const endpoint *ep, const char *dname, size_t dlen)
{
    for (sub *s = ep->subs; s; s = s->enext)
        if (s->d->link.len == dlen && memcmp(s->d->name, dname, dlen) == 0)
            return s;
    return NULL;
}

void sub__free(sub *s)
{
    window__free(s);
    while (s->uhead) {
        delivery *d = s->uhead;
        s->uhead = d->next;
        free(d);
    }
    sel__free(s->selector);
    free(s->scan);
    free(s->id);
    free(s->head);
    free(s);
}

/* ---- delivering --------------------------------------------------------------------- */

int sub__has_room(broker *b, sub *s)
{
    if (s->dead || s->browser)
        return 0;
    endpoint *ep = s->ep;
    if (!ep)
        return 1;
    if (!ep->open)
        return 0;
    if (ep->ops->queued(ep) >= b->o.output_high_water) {
        ep->blocked = 1;
        return 0;
    }
    return s->ack_mode == ACK_AUTO || s->nunacked < s->window;
}

/* Remember d (of queue q for a queue message), queued to s's endpoint, until it is
 * settled. */
static void track(sub *s, delivery *d, dest_t *q, uint64_t msg_num, int is_queue, size_t bytes)
{
    d->s = s;
    d->q = q;
    d->msg_num = msg_num;
    d->is_queue = is_queue;
    d->bytes = bytes;
    d->wsize = 0;
    d->next = NULL;
    d->prev = s->utail;
    if (s->utail)
        s->utail->next = d;
    else
        s->uhead = d;
    s->utail = d;
    s->nunacked++;
    store__ids_insert(&s->ep->tags, &d->link); /* room reserved by sub__deliver */
}

/* Queue one MESSAGE on ep: head, then the ack line (may be empty), then the shared part, or
 * m encoded in place for ep's version when shared is NULL (one copy of the body, straight
 * into the output). The stream offset past it, or 0 with *rc set (nothing queued). */
static uint64_t push(endpoint *ep, const char *head, size_t head_len, const char *ack,
                     size_t ack_len, sbuf *shared, const stomp_message *m, broker_err *rc)
{
    *rc = BROKER_E_NOMEM;
    if (shared)
        return ep->ops->push(ep, head, head_len, ack, ack_len, shared);
    size_t bound = stomp_message_bound(m);
    char *p = bound < SIZE_MAX / 2 ? ep->ops->frame_open(ep, head_len + ack_len + bound)
                                   : NULL;
    if (!p)
        return 0;
    memcpy(p, head, head_len);
    memcpy(p + head_len, ack, ack_len);
    stomp_err err;
    size_t n = stomp_message_encode(m, ep->version, p + head_len + ack_len, bound, &err);
    if (!n) {
        ep->ops->frame_close(ep, 0);
        if (err == STOMP_E_UNENCODABLE)
            *rc = BROKER_E_PROTOCOL;
        return 0;
    }
    return ep->ops->frame_close(ep, head_len + ack_len + n);
}

/* sub__deliver and sub__deliver_msg: the MESSAGE is shared, or m written in place. */
static broker_err deliver(broker *b, sub *s, dest_t *q, sbuf *shared, const stomp_message *m,
                          int is_queue, uint64_t msg_num, size_t bytes)
{
    endpoint *ep = s->ep;
    delivery *d = NULL;
    char ack[STOMP_ACK_LINE_MAX];
    size_t ack_len = 0;
    if (s->ack_mode == ACK_AUTO) {
        /* A queue message is settled once written: until then it may go back. */
        if (is_queue && !(d = delivery_new(b)))
            return BROKER_E_NOMEM;
    } else {
        if (store__ids_reserve(&ep->tags, 1) != STORE_OK || !(d = delivery_new(b)))
            return BROKER_E_NOMEM;
        d->link.id = ++ep->next_tag;
        /* 1.2 names the delivery's ack id after the subscription's head. */
        if (ep->version == STOMP_V12)
            ack_len = stomp_message_ack_line(d->link.id, ack);
    }
    broker_err rc;
    uint64_t end = push(ep, s->head, s->head_len, ack, ack_len, shared, m, &rc);
    if (!end) {
        if (d)
            delivery_free(b, d);
        return rc;
    }
    b->stats.frames_out++;
    b->stats.messages_out++;
    if (d && s->ack_mode == ACK_AUTO)
        sent(ep, d, q ? q : s->d, msg_num, bytes, end);
    else if (d)
        track(s, d, q ? q : s->d, msg_num, is_queue, bytes);
    return BROKER_OK;
}

broker_err sub__deliver(broker *b, sub *s, dest_t *q, sbuf *shared, int is_queue,
                        uint64_t msg_num, size_t bytes, const broker_message *inproc)
{
    if (!s->ep) {
        b->stats.messages_out++;
        s->cb(s->cb_arg, inproc);
        return BROKER_OK;
    }
    return deliver(b, s, q, shared, NULL, is_queue, msg_num, bytes);
}

broker_err sub__deliver_msg(broker *b, sub *s, dest_t *q, const stomp_message *m,
                            int is_queue, uint64_t msg_num, size_t bytes)
{
    return deliver(b, s, q, NULL, m, is_queue, msg_num, bytes);
}

/* ---- settling ----------------------------------------------------------------------- */

static void unlink_delivery(sub *s, delivery *d)
{
    if (d->prev)
        d->prev->next = d->next;
    else
        s->uhead = d->next;
    if (d->next)
        d->next->prev = d->prev;
    else
        s->utail = d->prev;
    s->nunacked--;
    s->wbytes -= d->wsize;
    if (s->ep)
        store__ids_remove(&s->ep->tags, &d->link);
}

/* Settle d: ack it, or return it to its queue (why: RETURN_*). */
static void settle_one(broker *b, delivery *d, int ack, int why, uint64_t now)
{
    sub *s = d->s;
    unlink_delivery(s, d);
    if (d->is_queue) {
        int gone = 1;
        store_err se = STORE_OK;
        if (!ack)
            gone = queue__return(b, d->msg_num, why, now);
        else if ((se = b->st->ack(b->store, d->msg_num)) == STORE_OK)
            commit__dirty(b);
        if (se != STORE_OK)
            broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0,
                        "settling message %llu failed: %s", (unsigned long long)d->msg_num,
                        store_strerror(se));
        if (gone)
            broker__mem_sub(b, d->bytes);
        /* A queue a wildcard matched: its own consumers may take what came back. */
        if (!ack && d->q != s->d)
            dest__schedule(b, d->q);
    }
    delivery_free(b, d);
}

void sub__settle(broker *b, delivery *d, int how, int after_commit)
{
    sub *s = d->s;
    int ack = how == SETTLE_ACK, why = how == SETTLE_REJECT ? RETURN_REJECT : RETURN_NACK;
    uint64_t now = ack ? 0 : broker__now_ms(b); /* one time for all: their order is kept */
    if (s->ack_mode == ACK_CLIENT) {
        /* Cumulative: everything delivered up to d. Walk backwards so requeued messages
         * keep their order at the head of the queue. */
        while (d) {
            delivery *p = d->prev;
            settle_one(b, d, ack, why, now);
            d = p;
        }
    } else {
        settle_one(b, d, ack, why, now);
    }
    if (s->d->is_topic) {
        window__drain(b, s);
        return;
    }
    if (after_commit && !commit__idle(b)) {
        dest__touch(b, s->d);
        commit__again(b);
    } else {
        dest__schedule(b, s->d);
    }
}

/* Every unacked delivery of s back to its queue, newest first, so order is kept. An
 * exclusive consumer's come back at once: the next one takes over in order. */
static void return_unacked(broker *b, sub *s)
{
    uint64_t now = broker__now_ms(b); /* one time for all: their order is kept */
    while (s->utail)
        settle_one(b, s->utail, 0, s->exclusive ? RETURN_FAILOVER : RETURN_ORPHAN, now);
}

delivery *sub__find_tag(const endpoint *ep, uint64_t tag)
{
    return store__entry(store__ids_find(&ep->tags, tag), delivery, link);
}

delivery *sub__find_msgid(const endpoint *ep, const char *msgid, const char *subid)
{
    int is_queue = msgid[0] != 't';
    const char *digits = is_queue ? msgid : msgid + 1;
    if (*digits < '0' || *digits > '9')
        return NULL;
    char *end;
    unsigned long long num = strtoull(digits, &end, 10);
    if (*end)
        return NULL;
    /* Linear in the unacked window of the endpoint's subscriptions: bounded by
     * max_unacked per subscription. */
    for (sub *s = ep->subs; s; s = s->enext) {
        if (subid && strcmp(s->id, subid) != 0)
            continue;
        for (delivery *d = s->uhead; d; d = d->next)
            if (d->msg_num == num && d->is_queue == is_queue)
                return d;
    }
    return NULL;
}
