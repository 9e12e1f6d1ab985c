/* stats.c: what the management API sees of destinations: the table walked in place, each
 * dest's counters (kept on the data path by plain increments: n_in where a SEND finds its
 * dest, n_out where a message is handed out, n_dead where one is dead-lettered) with the
 * store's sizes, rates from a timer, browsing and forgetting a destination.
 *
 * Queue dests stay in the table once created (their counters with them) until deleted
 * here; topic dests go with their last subscriber.
 */
#include "core.h"

#include <stdlib.h>

dest_t *route__dest_first(broker *b)
{
    store__qlink *l = store__queues_first(&b->route.dests);
    while (l && store__container_of(l, dest_t, link)->unlisted)
        l = store__queues_next(&b->route.dests, l);
    return l ? store__container_of(l, dest_t, link) : NULL;
}

dest_t *route__dest_next(broker *b, dest_t *d)
{
    store__qlink *l = store__queues_next(&b->route.dests, &d->link);
    while (l && store__container_of(l, dest_t, link)->unlisted)
        l = store__queues_next(&b->route.dests, l);
    return l ? store__container_of(l, dest_t, link) : NULL;
}

size_t route__dest_count(const broker *b)
{
    size_t n = 0;
    for (dest_t *d = route__dest_first((broker *)b); d; d = route__dest_next((broker *)b, d))
        n++;
    return n;
}

dest_t *route__dest_named(broker *b, const char *name, size_t len)
{
    dest_t *d = dest__find(b, name, len, store_hash_name(name, len));
    return d && !d->unlisted ? d : NULL;
}

void route__dest_view(broker *b, dest_t *d, route_dest_view *v)
{
    *v = (route_dest_view){ .name = d->name, .name_len = d->link.len, .is_topic = d->is_topic,
                            .in = d->n_in, .out = d->n_out, .dead = d->n_dead,
                            .rate_in = d->rate_in, .rate_out = d->rate_out };
    for (sub *s = d->head; s; s = s->dnext) {
        if (s->dead)
            continue;
        if (s->browser)
            v->browsers++;
        else
            v->consumers++;
        v->exclusive += s->exclusive != 0;
        v->unacked += s->nunacked;
    }
    if (d->is_topic) {
        v->durable = durable__count(b, d->name, d->link.len);
        return;
    }
    v->is_dead_letter = policy__is_dead_letter_queue(b, d->name, d->link.len);
    v->depth = b->st->depth(b->store, d->name, d->link.len);
    b->st->queue_size(b->store, d->name, d->link.len, d->link.hash, &v->messages, &v->bytes);
}

void route__rates(broker *b, double secs)
{
    if (secs <= 0)
        return;
    for (dest_t *d = route__dest_first(b); d; d = route__dest_next(b, d)) {
        d->rate_in = (double)(d->n_in - d->last_in) / secs;
        d->rate_out = (double)(d->n_out - d->last_out) / secs;
        d->last_in = d->n_in;
        d->last_out = d->n_out;
    }
}

broker_err route__dest_delete(broker *b, dest_t *d)
{
    if (d->nsubs || d->drain)
        return BROKER_E_STATE;
    d->unlisted = 1;
    dest__release(b, d);
    return BROKER_OK;
}

size_t route__browse(broker *b, const char *name, size_t len, size_t max, route_browse_fn fn,
                     void *arg)
{
    store_cursor cur = { { 0 } };
    uint64_t hash = store_hash_name(name, len), now = broker__now_ms(b);
    size_t n = 0;
    while (n < max) {
        store_msg m;
        if (b->st->browse(b->store, name, len, hash, &cur, now, &m) != STORE_OK)
            break;
        fn(arg, &m);
        n++;
    }
    return n;
}
