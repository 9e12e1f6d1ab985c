/* order.c: a queue's order of records and a store's records by expiry (see order.h).
 *
 * Heap keys: a band's heap is keyed by (ord, id), ord mapped to an unsigned key that keeps its
 * order; the waiting heap by (not_before, id); the expiry heap by (expires, id). Every record
 * tracks its index in the heap that holds it (hpos, xpos), so it can leave from the middle.
 */
#include "order.h"

#include <string.h>

/* An ord as a heap key: the sign bit flipped keeps the order of signed values. */
static uint64_t ord_key(int64_t ord)
{
    return (uint64_t)ord ^ (1ull << 63);
}

/* (a's ord, a's id) < (ord, id) */
static int before(const store__rec *a, int64_t ord, uint64_t id)
{
    return a->ord < ord || (a->ord == ord && a->link.id < id);
}

/* ---- a queue's order ---- */

void store__order_init(store__order *o)
{
    memset(o, 0, sizeof *o);
    for (int p = 0; p < STORE__PRIORITIES; p++)
        store__heap_track(&o->band[p].mid, offsetof(store__rec, hpos));
    store__heap_track(&o->waiting, offsetof(store__rec, hpos));
}

void store__order_free(store__order *o, size_t *acct)
{
    for (int p = 0; p < STORE__PRIORITIES; p++)
        store__heap_free(&o->band[p].mid, acct);
    store__heap_free(&o->waiting, acct);
}

size_t store__order_count(const store__order *o)
{
    size_t n = o->waiting.n;
    for (int p = 0; p < STORE__PRIORITIES; p++)
        n += o->band[p].n;
    return n;
}

store_err store__order_place(const store__order *o, store__rec *r, int64_t limit)
{
    const store__rec *first = store__band_first(&o->band[r->prio]);
    int64_t bound = first && first->ord < limit ? first->ord : limit;
    if (r->ord < bound)
        return STORE_OK;
    if (bound == INT64_MIN)
        return STORE_E_INVALID;
    r->ord = bound - 1;
    return STORE_OK;
}

void store__order_prepend(store__order *o, store__rec *r)
{
    store__list_prepend(&o->band[r->prio].list, &r->on);
    r->state = STORE__READY;
    store__band_in(o, r);
}

void store__order_wait(store__order *o, store__rec *r)
{
    store__heap_push(&o->waiting, r->not_before, r->link.id, r);
    r->state = STORE__WAITING;
}

void store__order_unheap(store__order *o, store__rec *r)
{
    if (r->state == STORE__WAITING) {
        store__heap_remove(&o->waiting, r->hpos);
        return;
    }
    store__heap_remove(&o->band[r->prio].mid, r->hpos);
    store__band_out(o, r);
}

/* Can r join its band at the tail of the list: above the list's tail and below every ready
 * message not in memory? */
static int joins_at_tail(const store__band *b, const store__rec *r, int64_t limit)
{
    const store__rec *tail = store__entry(b->list.tail, store__rec, on);
    return r->ord < limit && (!tail || before(tail, r->ord, r->link.id));
}

/* r (never handed out, due) joins its band where its (ord, id) puts it. The caller reserved
 * room in the band's heap unless it joins at the tail. */
static void join(store__order *o, store__rec *r, int64_t limit)
{
    store__band *b = &o->band[r->prio];
    if (joins_at_tail(b, r, limit)) {
        store__order_append(o, r);
        return;
    }
    store__heap_push(&b->mid, ord_key(r->ord), r->link.id, r);
    r->state = STORE__MID;
    store__band_in(o, r);
}

store_err store__order_promote(store__order *o, uint64_t now, const int64_t *limit,
                               size_t *acct)
{
    store__dlist heads = { NULL, NULL };
    store_err err = STORE_OK;
    const store__heapent *t;
    while ((t = store__heap_top(&o->waiting)) && t->key <= now) {
        store__rec *r = t->p;
        store__band *b = &o->band[r->prio];
        int joins = r->redeliveries == 0;
        if (joins && !joins_at_tail(b, r, limit[r->prio]) &&
            (err = store__heap_reserve(&b->mid, b->mid.n + 1, acct)) != STORE_OK)
            break; /* it waits on: the next call tries again */
        store__heap_pop(&o->waiting);
        if (joins)
            join(o, r, limit[r->prio]);
        else
            store__list_append(&heads, &r->on); /* popped by (time, id) */
    }
    /* From the last popped, so that the first popped ends first. Without a lower ord left
     * (unreachable in practice) the lowest there is keeps it first, its id deciding ties. */
    while (heads.tail) {
        store__rec *r = store__container_of(heads.tail, store__rec, on);
        store__list_unlink(&heads, &r->on);
        if (store__order_place(o, r, limit[r->prio]) != STORE_OK)
            r->ord = INT64_MIN;
        store__order_prepend(o, r);
    }
    return err;
}

uint64_t store__order_next_due(const store__order *o, uint64_t now)
{
    const store__heapent *t = store__heap_top(&o->waiting);
    return t && t->key > now ? t->key : 0;
}

/* (a's ord, a's id) > (ord, id) */
static int after(const store__rec *a, int64_t ord, uint64_t id)
{
    return a->ord > ord || (a->ord == ord && a->link.id > id);
}

store__rec *store__order_after(const store__order *o, const void *q, int p,
                               const store__rec *found, int64_t ord, uint64_t id)
{
    const store__band *b = &o->band[p];
    int on_list = found && found->q == q && found->state == STORE__READY && found->prio == p &&
                  found->ord == ord;
    const store__dlink *l = on_list ? found->on.next : b->list.head;
    while (!on_list && l && !after(store__container_of(l, store__rec, on), ord, id))
        l = l->next;
    store__rec *best = l ? store__container_of(l, store__rec, on) : NULL;
    /* The band's heap is small (records that joined between others): look at each. */
    for (size_t i = 0; i < b->mid.n; i++) {
        store__rec *m = b->mid.e[i].p;
        if (after(m, ord, id) && (!best || before(m, best->ord, best->link.id)))
            best = m;
    }
    return best;
}

const int64_t store__no_limit[STORE__PRIORITIES] = {
    INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX,
    INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX,
};

/* ---- browsing ---- */

const store__rec *store__order_browse(store__order *o, const void *q, store_cursor *cur,
                                      uint64_t now, size_t *acct,
                                      store__rec *(*find)(void *arg, uint64_t id), void *arg)
{
    store_err perr = store__order_promote(o, now, store__no_limit, acct);
    (void)perr; /* what could not be promoted shows in a later call */
    int p;
    int64_t ord;
    uint64_t id;
    store__cursor_read(cur, &p, &ord, &id);
    for (; p >= 0; p--, ord = INT64_MIN, id = 0) {
        const store__rec *r = store__order_after(o, q, p, find(arg, id), ord, id);
        if (r) {
            store__cursor_write(cur, p, r->ord, r->link.id);
            return r;
        }
    }
    return NULL;
}

/* pos[0]: 1 + the band of the last message given (0: not begun); pos[1], pos[2]: its
 * (ord, id). */
void store__cursor_read(const store_cursor *c, int *p, int64_t *ord, uint64_t *id)
{
    int begun = c->pos[0] != 0 && c->pos[0] <= STORE__PRIORITIES;
    *p = begun ? (int)c->pos[0] - 1 : STORE__PRIORITIES - 1;
    *ord = begun ? (int64_t)c->pos[1] : INT64_MIN;
    *id = begun ? c->pos[2] : 0;
}

void store__cursor_write(store_cursor *c, int p, int64_t ord, uint64_t id)
{
    c->pos[0] = (uint64_t)p + 1;
    c->pos[1] = (uint64_t)ord;
    c->pos[2] = id;
}

/* ---- records kept for reuse ---- */

void store__pool_drain(store__pool *pool)
{
    for (size_t c = 0; c < STORE__POOL_CLASSES; c++) {
        while (pool->spare[c]) {
            store__rec *r = pool->spare[c];
            pool->spare[c] = (store__rec *)r->q;
            free(r);
        }
    }
    pool->bytes = 0;
}

/* ---- a store's records by expiry ---- */

void store__expiry_init(store__heap *x)
{
    store__heap_track(x, offsetof(store__rec, xpos));
}

