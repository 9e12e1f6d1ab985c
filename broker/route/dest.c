/* dest.c: destinations: the table by name and each one's subscriber list, and wildcard
 * dests (named by a pattern, wild.h) with their links to the queues they match.
 *
 * A topic dest exists while something uses it (subscribers, a pending dispatch); so does a
 * wildcard dest and a temporary queue's reply queue; any other queue dest from its first
 * SEND or SUBSCRIBE until an administrator deletes it (and nothing uses it), so its
 * counters last. Queue contents live in the store, not here. Subscriber lists may be walked
 * while user callbacks run: removal during a walk (busy > 0) only marks the subscription
 * dead and the walk's end sweeps it. A wildcard dest is in the broker's trie for its kind
 * while it exists; a wildcard queue dest is linked to every queue its pattern matches that
 * has a dest or messages in the store (queues that appear later are linked as they get a
 * dest).
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

int dest__link(dest_t *q, dest_t *w)
{
    dest_t *two[2] = { q, w };
    for (int i = 0; i < 2; i++) {
        dest_t *x = two[i];
        if (x->nlinks < x->links_cap)
            continue;
        size_t cap = x->links_cap ? x->links_cap * 2 : 4;
        dest_t **nl = realloc(x->links, cap * sizeof *nl);
        if (!nl)
            return -1;
        x->links = nl;
        x->links_cap = cap;
    }
    q->links[q->nlinks++] = w;
    w->links[w->nlinks++] = q;
    return 0;
}

static void unlink_one(dest_t *x, const dest_t *other)
{
    for (size_t i = 0; i < x->nlinks; i++) {
        if (x->links[i] == other) {
            x->links[i] = x->links[--x->nlinks];
            return;
        }
    }
}

typedef struct link_ctx {
    dest_t *q;
    int failed;
} link_ctx;

static void link_matched(void *arg, dest_t *w)
{
    link_ctx *c = arg;
    if (!c->failed && dest__link(c->q, w) != 0)
        c->failed = 1;
}

/* Undo d's links (each other side released when nothing else holds it). */
static void unlink_all(broker *b, dest_t *d)
{
    while (d->nlinks) {
        dest_t *o = d->links[--d->nlinks];
        unlink_one(o, d);
        dest__release(b, o);
    }
}

static void free_dest(dest_t *d)
{
    queue__drain_free(d);
    free(d->links);
    free(d);
}

/* A new wildcard dest: into its trie; a queue pattern links the queues it matches: those
 * with a dest, and those holding messages in the store (given a dest now). */
static int wild_init(broker *b, dest_t *d);

/* A new queue dest: linked to the wildcard queue dests whose pattern matches it. A
 * temporary queue's reply queue is its owner's alone: no pattern reaches it. */
static int link_new_queue(broker *b, dest_t *d)
{
    if (d->is_topic || d->is_wild || !b->route.wild_queues.n ||
        route__private(d->name, d->link.len))
        return 0;
    link_ctx c = { d, 0 };
    wild__match(&b->route.wild_queues, d->name, d->link.len, link_matched, &c);
    return c.failed ? -1 : 0;
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
    d->is_wild = wild__is_pattern(name, len);
    memcpy(d->name, name, len);
    store__queues_insert(&b->route.dests, &d->link, d->name, len, hash);
    if ((d->is_wild ? wild_init(b, d) : link_new_queue(b, d)) != 0) {
        d->pins++; /* not freed inside the unlinking */
        unlink_all(b, d);
        if (d->wnode)
            wild__remove(d->is_topic ? &b->route.wild_topics : &b->route.wild_queues, d);
        store__queues_remove(&b->route.dests, &d->link);
        free_dest(d);
        return NULL;
    }
    return d;
}

typedef struct store_queues_ctx {
    broker *b;
    dest_t *w;
    int failed;
} store_queues_ctx;

static void link_store_queue(void *arg, const char *name, size_t len, uint64_t hash)
{
    store_queues_ctx *c = arg;
    if (c->failed || dest__is_topic(name, len) || wild__is_pattern(name, len) ||
        route__private(name, len) || dest__find(c->b, name, len, hash))
        return;
    /* Not linked yet: a new dest links itself to every matching pattern, w among them. */
    if (!wild__matches(c->w->name, c->w->link.len, name, len))
        return;
    if (!dest__get(c->b, name, len, hash))
        c->failed = 1;
}

static int wild_init(broker *b, dest_t *d)
{
    wild_trie *t = d->is_topic ? &b->route.wild_topics : &b->route.wild_queues;
    if (wild__add(t, d) != BROKER_OK)
        return -1;
    if (d->is_topic)
        return 0;
    for (store__qlink *l = store__queues_first(&b->route.dests); l;
         l = store__queues_next(&b->route.dests, l)) {
        dest_t *q = store__container_of(l, dest_t, link);
        if (q != d && !q->is_topic && !q->is_wild && !route__private(q->name, q->link.len) &&
            wild__matches(d->name, d->link.len, q->name, q->link.len) && dest__link(q, d) != 0)
            return -1;
    }
    store_queues_ctx c = { b, d, 0 };
    d->pins++; /* the new dests link to it: it stays */
    b->st->queues(b->store, link_store_queue, &c);
    d->pins--;
    return c.failed ? -1 : 0;
}

typedef struct any_ctx {
    int n;
} any_ctx;

static void count_match(void *arg, dest_t *w)
{
    (void)w;
    ((any_ctx *)arg)->n++;
}

dest_t *dest__for_wild(broker *b, const char *name, size_t len, uint64_t hash)
{
    any_ctx c = { 0 };
    wild__match(&b->route.wild_queues, name, len, count_match, &c);
    return c.n ? dest__get(b, name, len, hash) : NULL;
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
    if (d->nsubs || d->busy || d->has_dead || d->on_dispatch || d->on_touched || d->pins ||
        (d->nlinks && !d->is_wild))
        return;
    if (!d->is_topic && !d->is_wild && !d->unlisted && !tempq__is_reply(d->name, d->link.len))
        return; /* a queue keeps its counters for the management views (stats.c) */
    store__queues_remove(&b->route.dests, &d->link);
    if (d->is_wild) {
        d->pins++; /* not freed again while its queues are released */
        wild__remove(d->is_topic ? &b->route.wild_topics : &b->route.wild_queues, d);
        unlink_all(b, d);
    }
    free_dest(d);
}

void dest__schedule(broker *b, dest_t *d)
{
    /* A queue's wildcard consumers take from it too. */
    for (size_t i = 0; i < d->nlinks && !d->is_wild; i++)
        dest__schedule(b, d->links[i]);
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
    d->nfiltered += s->selector || s->no_local;
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
    d->nfiltered -= s->selector || s->no_local;
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
        free_dest(d);
    }
    free(b->route.dests.b);
    memset(&b->route.dests, 0, sizeof b->route.dests);
    wild__free(&b->route.wild_topics);
    wild__free(&b->route.wild_queues);
}
