/* sqlite_take.c: the SQLite backend hands messages out: waiting ones that are due join their
 * bands, the highest band with a ready message gives its first, within the delivery bound
 * of that band (sqlite_recover.c); a requeued message goes back to the head of its band.
 *
 * A band's first is the least of its list head and its heap top (order.h); every record on
 * its list comes before every row of the band that is in the file only (sqlite_page.c), so
 * the file is read only when the list is empty. Due waiting records are promoted without a
 * write: the file still has them waiting, and a restart finds them due and promotes them
 * the same way (by id, or to the head of their band if they were requeued).
 */
#include "sqlite_int.h"

void sqlite__fill(store_msg *out, const store__rec *r)
{
    const squeue *q = r->q;
    store__rec_fill(out, r, q->name, q->link.len);
}

/* The waiting heap's top is q's earliest waiting message once the schedule in the file has
 * nothing before it: read the schedule until that holds. */
static store_err sched_fill(store *s, squeue *q)
{
    store_err err = STORE_OK;
    while (err == STORE_OK && q->sched_spilled) {
        const store__heapent *t = store__heap_top(&q->o.waiting);
        if (t && !key_after(t->key, t->tie, q->sched_nb, q->sched_id))
            break;
        uint64_t spilled = q->sched_spilled, nb = q->sched_nb, id = q->sched_id;
        err = sqlite__sched_page_in(s, q);
        if (spilled == q->sched_spilled && nb == q->sched_nb && id == q->sched_id)
            break;
    }
    return err;
}

store_err sqlite__promote(store *s, squeue *q, uint64_t now)
{
    store_err err = sched_fill(s, q);
    const store__heapent *t = store__heap_top(&q->o.waiting);
    if (!t || t->key > now)
        return err;
    int64_t limit[STORE__PRIORITIES];
    for (int p = 0; p < STORE__PRIORITIES; p++)
        limit[p] = band_limit(q, p);
    size_t waiting = q->o.waiting.n;
    store_err perr = store__order_promote(&q->o, now, limit, &s->bytes);
    q->reorders += waiting - q->o.waiting.n; /* joined their bands: scans start over */
    return err != STORE_OK ? err : perr;
}

store_err sqlite__band_first(store *s, squeue *q, int p, store__rec **out)
{
    const store__band *ob = &q->o.band[p];
    sband *b = &q->band[p];
    store_err err = STORE_OK;
    while (err == STORE_OK && !ob->list.head && b->spilled) {
        uint64_t spilled = b->spilled, front = b->front_id;
        err = sqlite__page_in(s, q, p);
        if (spilled == b->spilled && front == b->front_id)
            break;
    }
    /* With the list empty and rows still in the file, the heap's top may not be first. */
    if (err != STORE_OK && !ob->list.head && b->spilled) {
        *out = NULL;
        return err;
    }
    *out = store__band_first(ob);
    return STORE_OK;
}

/* The first record of q's order, highest band with messages in memory or the file first. */
static store_err first_ready(store *s, squeue *q, store__rec **out)
{
    *out = NULL;
    for (unsigned m = q->o.mask | q->spill_mask; m;) {
        int p = 31 - __builtin_clz(m);
        store_err err = sqlite__band_first(s, q, p, out);
        if (err != STORE_OK || *out)
            return err;
        m &= ~(1u << p) & (q->o.mask | q->spill_mask);
    }
    return STORE_OK;
}

store_err sqlite__take(store *s, squeue *q, uint64_t now, int expiry, store_msg *out)
{
    store_err perr = sqlite__promote(s, q, now);
    store__rec *r;
    store_err err = first_ready(s, q, &r);
    if (err != STORE_OK)
        return err;
    if (!r)
        return perr != STORE_OK ? perr : STORE_E_EMPTY;
    if (expiry && r->expires && r->expires <= now)
        return STORE_E_EXPIRED;
    sband *b = &q->band[r->prio];
    if (r->ord > b->front_durable) {
        /* Not yet recorded as deliverable: record it, hand it out after that commit. */
        if (r->ord > b->front_sent &&
            sqlite__front_push(s, q, r->prio, add_sat(r->ord, LOOKAHEAD)) != 0)
            return STORE_E_NOMEM;
        return STORE_E_AGAIN;
    }
    store__order_remove(&q->o, r);
    mem_out(q, r);
    store__expiry_drop(&s->expiry, r);
    r->state = STORE__TAKEN;
    if (r->ord > b->tmax)
        b->tmax = r->ord;
    /* Raise the front before takes reach it; without memory for that, a later take waits. */
    if (add_sat(b->tmax, LOOKAHEAD / 2) > b->front_sent)
        (void)sqlite__front_push(s, q, r->prio, add_sat(b->tmax, LOOKAHEAD));
    sqlite__fill(out, r);
    return STORE_OK;
}

store_err sqlite__requeue(store *s, store__rec *r, uint64_t not_before)
{
    squeue *q = r->q;
    if (reserve_ops(s->open, 1) != 0)
        return STORE_E_NOMEM;
    if (not_before &&
        store__heap_reserve(&q->o.waiting, q->o.waiting.n + q->nlate + 1, &s->bytes) != STORE_OK)
        return STORE_E_NOMEM;
    /* Below its band's first, within its band (unreachable in practice). */
    int64_t was = r->ord;
    if (store__order_place(&q->o, r, band_limit(q, r->prio)) != STORE_OK ||
        r->ord < band_lo(r->prio)) {
        r->ord = was;
        return STORE_E_INVALID;
    }
    if (r->redeliveries < UINT32_MAX)
        r->redeliveries++;
    push_op(s->open, OP_REQUEUE, (int64_t)r->link.id, r->ord, r->redeliveries, NULL);
    op *o = &s->open->ops[s->open->nops - 1];
    o->not_before = not_before;
    o->flags = r->not_before ? OPF_SCHED : 0; /* its row's time until now */
    r->not_before = not_before;
    q->reorders++;
    if (not_before) {
        store__order_wait(&q->o, r);
        sqlite__sched_note(q, r);
    } else {
        store__order_prepend(&q->o, r);
    }
    mem_in(q, r);
    store__expiry_add(&s->expiry, r);
    return STORE_OK;
}
