/* dest.c: destinations: the table by name and each one's subscriber list.
 *
 * A topic dest exists while something uses it (subscribers, a pending dispatch); a queue
 * dest from its first SEND or SUBSCRIBE until an administrator deletes it (and nothing
 * uses it), so its counters last; queue contents live in the store, not here. Subscriber
 * lists may be walked while user callbacks run: removal during a walk (busy > 0) only
 * marks the subscription dead and the walk's end sweeps it.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

int dest__is_topic(const char *name, size_t len)
{
    return len >= 7 && memcmp(name, "/topic/", 7) == 0;
}

dest_t *dest__find(broker *b, const char *name, size_t len, uint64_t hash)
{
    return store__entry(store__queues_find(&b->route.dests, name, len, hash), dest_t, link);
}

dest_t *dest__get(broker *b, const char *name, size_t len, uint64_t hash)
{
    dest_t *d = dest__find(b, name, len, hash);
    if (d)
        return d;
    if (store__queues_reserve(&b->route.dests, 1) != STORE_OK)
        return NULL;
    d = calloc(1, sizeof *d + len + 1);
    if (!d)
        return NULL;
    d->is_topic = dest__is_topic(name, len);
    memcpy(d->name, name, len);
    store__queues_insert(&b->route.dests, &d->link, d->name, len, hash);
    return d;
}

void dest__sweep(dest_t *d)
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
}

void dest__release(broker *b, dest_t *d)
{
    if (d->nsubs || d->busy || d->has_dead || d->on_dispatch || d->on_touched || d->pins)
        return;
    if (!d->is_topic && !d->unlisted)
        return; /* a queue keeps its counters for the management views (stats.c) */
    store__queues_remove(&b->route.dests, &d->link);
    free(d);
}

void dest__schedule(broker *b, dest_t *d)
{
    if (d->is_topic || d->on_dispatch)
        return;
    d->on_dispatch = 1;
    d->next_dispatch = b->route.dispatch_list;
    b->route.dispatch_list = d;
    broker__kick(b);
}

void dest__touch(broker *b, dest_t *d)
{
    if (d->on_touched)
        return;
    d->on_touched = 1;
    d->next_touched = b->route.touched;
    b->route.touched = d;
}

void dest__add_sub(broker *b, dest_t *d, sub *s)
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
    d->nexclusive += s->exclusive != 0;
    d->nbrowsers += s->browser != 0;
    b->stats.subscriptions++;
    dest__schedule(b, d);
    /* Messages of a batch not yet committed may be for this queue although it had no
     * dest when they were sent: look again once that batch (and the next) completed. */
    if (!d->is_topic && !commit__idle(b)) {
        dest__touch(b, d);
        commit__again(b);
    }
}

void dest__unlink_sub(broker *b, sub *s)
{
    dest_t *d = s->d;
    if (d->cursor == s)
        d->cursor = s->dnext;
    d->nsubs--;
    d->nexclusive -= s->exclusive != 0;
    d->nbrowsers -= s->browser != 0;
    b->stats.subscriptions--;
    s->dead = 1;
    d->has_dead = 1;
    dest__sweep(d);
    if (d->nsubs)
        dest__schedule(b, d);
    dest__release(b, d);
}

void dest__free_all(broker *b)
{
    for (store__qlink *l = store__queues_first(&b->route.dests), *n; l; l = n) {
        n = store__queues_next(&b->route.dests, l);
        dest_t *d = store__container_of(l, dest_t, link);
        for (sub *s = d->head, *sn; s; s = sn) {
            sn = s->dnext;
            sub__free(s);
        }
        queue__drain_free(d);
        free(d);
    }
    free(b->route.dests.b);
    memset(&b->route.dests, 0, sizeof b->route.dests);
}
