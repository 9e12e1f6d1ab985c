/* sub.c: subscriptions, deliveries and their settlement (ack, nack, return).
 *
 * A subscription in client or client-individual mode keeps its unacked deliveries in
 * delivery order; each is also findable by its per-connection tag (the 1.2 ack id). Auto
 * mode keeps nothing. Settling a queue delivery is a store write (ack or requeue); a topic
 * delivery has nothing stored and is simply forgotten.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deliveries are recycled through a per-broker free list (bounded), so steady-state
 * client-ack traffic, topic fan-out included, allocates none. */
#define DELIVERY_CACHE 4096

static delivery *delivery_new(broker *b)
{
    delivery *d = b->dfree;
    if (d) {
        b->dfree = d->next;
        b->ndfree--;
        return d;
    }
    return malloc(sizeof *d);
}

static void delivery_free(broker *b, delivery *d)
{
    if (b->ndfree >= DELIVERY_CACHE) {
        free(d);
        return;
    }
    d->next = b->dfree;
    b->dfree = d;
    b->ndfree++;
}

void sub__free_cache(broker *b)
{
    while (b->dfree) {
        delivery *d = b->dfree;
        b->dfree = d->next;
        free(d);
    }
    b->ndfree = 0;
}

sub *sub__new(broker *b, conn *c, const char *id, size_t id_len, int ack_mode, size_t window,
              stomp_version v)
{
    sub *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->b = b;
    s->c = c;
    s->ack_mode = ack_mode;
    s->window = window;
    s->id = malloc(id_len + 1);
    size_t el = stomp_escaped_len(id, id_len, v, STOMP_CMD_MESSAGE);
    s->prefix_len = 8 + 13 + el + 1;
    s->prefix = malloc(s->prefix_len);
    if (!s->id || !s->prefix) {
        sub__free(s);
        return NULL;
    }
    memcpy(s->id, id, id_len);
    s->id[id_len] = '\0';
    s->id_len = id_len;
    char *o = s->prefix;
    memcpy(o, "MESSAGE\nsubscription:", 21);
    o += 21;
    o += stomp_escape(id, id_len, v, STOMP_CMD_MESSAGE, o);
    *o = '\n';
    return s;
}

void sub__free(sub *s)
{
    while (s->uhead) {
        delivery *d = s->uhead;
        s->uhead = d->next;
        free(d);
    }
    free(s->id);
    free(s->prefix);
    free(s);
}

int sub__has_room(broker *b, sub *s)
{
    if (s->dead)
        return 0;
    conn *c = s->c;
    if (!c)
        return 1;
    if (c->state != CS_OPEN)
        return 0;
    if (c->out.queued >= b->o.output_high_water) {
        c->out_blocked = 1;
        return 0;
    }
    return s->ack_mode == ACK_AUTO || s->nunacked < s->window;
}

broker_err sub__deliver(broker *b, sub *s, sbuf *shared, int is_queue, uint64_t msg_num,
                        size_t bytes, const broker_message *inproc)
{
    if (!s->c) {
        b->stats.messages_out++;
        s->cb(s->cb_arg, inproc);
        return BROKER_OK;
    }
    conn *c = s->c;
    delivery *d = NULL;
    char ackh[48] = "";
    size_t alen = 0;
    if (s->ack_mode != ACK_AUTO) {
        d = delivery_new(b);
        if (!d)
            return BROKER_E_NOMEM;
        d->tag = ++c->next_tag;
        if (c->version == STOMP_V12) {
            memcpy(ackh, "ack:", 4);
            alen = 4 + msg__u64(ackh + 4, d->tag);
            ackh[alen++] = '\n';
        }
    }
    if (outq__push_prefixed(&c->out, s->prefix, s->prefix_len, ackh, alen, shared) != 0) {
        if (d)
            delivery_free(b, d);
        return BROKER_E_NOMEM;
    }
    broker__mem_add(b, s->prefix_len + alen + shared->len);
    b->stats.frames_out++;
    b->stats.messages_out++;
    conn__want_flush(c);
    if (d) {
        d->s = s;
        d->msg_num = msg_num;
        d->is_queue = is_queue;
        d->bytes = bytes;
        d->next = NULL;
        d->prev = s->utail;
        if (s->utail)
            s->utail->next = d;
        else
            s->uhead = d;
        s->utail = d;
        s->nunacked++;
        conn__track_delivery(c, d);
    }
    return BROKER_OK;
}

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
    if (s->c)
        conn__untrack_delivery(s->c, d);
}

static void settle_one(broker *b, delivery *d, int nack)
{
    sub *s = d->s;
    unlink_delivery(s, d);
    if (d->is_queue) {
        store_err se = nack ? b->st->requeue(b->store, d->msg_num)
                            : b->st->ack(b->store, d->msg_num);
        if (se == STORE_OK)
            commit__dirty(b);
        else
            broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0, "settling message %llu failed: %s",
                        (unsigned long long)d->msg_num, store_strerror(se));
        if (nack)
            b->stats.redeliveries++;
        else
            broker__mem_sub(b, d->bytes);
    }
    delivery_free(b, d);
}

void sub__settle(broker *b, delivery *d, int nack)
{
    sub *s = d->s;
    if (s->ack_mode == ACK_CLIENT) {
        /* Cumulative: everything delivered up to d. Walk backwards so requeued messages
         * keep their order at the head of the queue. */
        while (d) {
            delivery *p = d->prev;
            settle_one(b, d, nack);
            d = p;
        }
    } else {
        settle_one(b, d, nack);
    }
    if (!s->d->is_topic)
        router__schedule(b, s->d);
}

void sub__return_unacked(broker *b, sub *s)
{
    while (s->utail)
        settle_one(b, s->utail, 1);
}

delivery *sub__find_tag(conn *c, uint64_t tag)
{
    if (!c->dtab_cap)
        return NULL;
    size_t k = (size_t)((tag * 0x9e3779b97f4a7c15ull) >> 32) & (c->dtab_cap - 1);
    for (delivery *d = c->dtab[k]; d; d = d->hnext)
        if (d->tag == tag)
            return d;
    return NULL;
}

delivery *sub__find_msgid(conn *c, const char *msgid, const char *subid)
{
    int is_queue = msgid[0] != 't';
    const char *digits = is_queue ? msgid : msgid + 1;
    if (*digits < '0' || *digits > '9')
        return NULL;
    char *end;
    unsigned long long num = strtoull(digits, &end, 10);
    if (*end)
        return NULL;
    /* Linear in the unacked window of the connection's subscriptions: bounded by
     * max_unacked per subscription. */
    for (sub *s = c->subs_head; s; s = s->cnext) {
        if (subid && strcmp(s->id, subid) != 0)
            continue;
        for (delivery *d = s->uhead; d; d = d->next)
            if (d->msg_num == num && d->is_queue == is_queue)
                return d;
    }
    return NULL;
}
