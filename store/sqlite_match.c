/* sqlite_match.c: the SQLite backend's take_match and queue list.
 *
 * take_match walks a queue's order with scan.c, band by band; a band whose list runs out
 * while rows remain in the file only reads its next window onto the list (sqlite_page.c),
 * so the records a scan passes stay in memory until they are taken. The record handed out
 * is taken as take's first is: within its band's recorded bound (a bound beyond it is put
 * in the open batch first: STORE_E_AGAIN), out of the order, its expiry and memory counts
 * following. The scan generation is the queue's reorders (requeues, promotions).
 */
#include "scan.h"
#include "sqlite_int.h"

typedef struct match_ctx {
    store *s;
    squeue *q;
} match_ctx;

static store__rec *ctx_find(void *arg, uint64_t id)
{
    return find_rec(((match_ctx *)arg)->s, id);
}

static store_err ctx_more(void *arg, int p, int *more)
{
    match_ctx *c = arg;
    sband *b = &c->q->band[p];
    *more = 0;
    if (!b->spilled)
        return STORE_OK;
    uint64_t spilled = b->spilled, front = b->front_id;
    store_err err = sqlite__page_in(c->s, c->q, p);
    *more = spilled != b->spilled || front != b->front_id;
    return err;
}

/* Hand out r (ready, of q), as sqlite__take hands out a band's first. */
static store_err take_rec(store *s, squeue *q, store__rec *r, store_scan *scan, store_msg *out)
{
    sband *b = &q->band[r->prio];
    if (r->ord > b->front_durable) {
        if (r->ord > b->front_sent &&
            sqlite__front_push(s, q, r->prio, add_sat(r->ord, LOOKAHEAD)) != 0)
            return STORE_E_NOMEM;
        return STORE_E_AGAIN;
    }
    store__scan_took(scan, r);
    store__order_remove(&q->o, r);
    mem_out(q, r);
    store__expiry_drop(&s->expiry, r);
    r->state = STORE__TAKEN;
    if (r->ord > b->tmax)
        b->tmax = r->ord;
    if (add_sat(b->tmax, LOOKAHEAD / 2) > b->front_sent)
        (void)sqlite__front_push(s, q, r->prio, add_sat(b->tmax, LOOKAHEAD));
    sqlite__fill(out, r);
    return STORE_OK;
}

store_err sqlite__take_match(store *s, squeue *q, uint64_t now, store_scan *scan,
                             store_match_fn match, void *arg, store_msg *out)
{
    store_err perr = sqlite__promote(s, q, now);
    match_ctx ctx = { s, q };
    store__scan_env env = { &q->o,    q,        q->o.mask | q->spill_mask, q->reorders,
                            ctx_find, ctx_more, sqlite__fill,              &ctx };
    store__rec *r;
    store_err err = store__scan(&env, scan, match, arg, &r);
    if (err != STORE_OK)
        return err;
    if (!r)
        return perr != STORE_OK ? perr : STORE_E_EMPTY;
    if (r->expires && r->expires <= now)
        return STORE_E_EXPIRED;
    return take_rec(s, q, r, scan, out);
}

void sqlite__queues(store *s, void (*fn)(void *arg, const char *name, size_t len,
                                         uint64_t hash),
                    void *arg)
{
    for (store__qlink *l = store__queues_first(&s->queues); l;
         l = store__queues_next(&s->queues, l))
        fn(arg, l->name, l->len, l->hash);
}
