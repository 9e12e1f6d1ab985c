/* sqlite_expire.c: the SQLite backend's expiry: take_expired and next_expiry, over records
 * in memory (the store's expiry heap) and rows in the file only (through the expiry table,
 * which holds only the messages with an expiry, by (expires, id)), and the ghosts that keep
 * a page read from reading back a row whose record was acked out of order.
 *
 * The file side is read in (expires, id) order from a cursor: every row with an expiry up to
 * the cursor is in memory or gone, so nothing before it is read twice. A row is in the file
 * only when its record is not in memory and it lies after the frontier of its index (see
 * sqlite_page.c); rows before it that are not in memory are acked (their delete not yet
 * committed). A row that a commit leaves in the file only while it lies before the cursor
 * moves the cursor back to it. xnext caches the first row in the file only after the cursor.
 *
 * A row handed out from the file lies after its frontier: its record is marked REC_OOO, and
 * a page read that meets it while it is in memory passes over it. When it is acked, a ghost
 * (a bare record, state GHOST) keeps its id in the index until the ack's commit completes
 * or a page read passes over the row; after a failed commit it stays until then (the row is
 * still in the file, and the ack is done in memory). So the window never reads it back.
 */
#include "sqlite_int.h"

#include <string.h>

/* ---- the cursor ---- */

void sqlite__expiry_spilled(store *s, const store__rec *r)
{
    if (!r->expires)
        return;
    if (!key_after(r->expires, r->link.id, s->xcur_exp, s->xcur_id)) {
        s->xcur_exp = r->expires;
        s->xcur_id = r->link.id - 1;
    }
    if (s->xnext_known &&
        (!s->xnext_exp || key_after(s->xnext_exp, s->xnext_id, r->expires, r->link.id))) {
        s->xnext_exp = r->expires;
        s->xnext_id = r->link.id;
    }
}

void sqlite__expiry_loaded(store *s, const store__rec *r)
{
    if (r->expires && r->expires == s->xnext_exp && r->link.id == s->xnext_id)
        s->xnext_known = 0;
}

/* Is the row st stands on in the file only (not in memory, after its frontier)? */
static int file_only(const store *s, sqlite3_stmt *st)
{
    uint64_t id = (uint64_t)sqlite3_column_int64(st, C_ID);
    const squeue *q = find_qid(s, sqlite3_column_int64(st, C_QUEUE));
    if (!q || find_rec(s, id))
        return 0;
    uint64_t nb = (uint64_t)sqlite3_column_int64(st, C_NB);
    if (nb)
        return q->sched_spilled && key_after(nb, id, q->sched_nb, q->sched_id);
    int64_t ord = sqlite3_column_int64(st, C_ORD);
    const sband *b = &q->band[band_of(ord)];
    return b->spilled && ord_after(ord, id, b->front_ord, b->front_id);
}

/* Step R_EXPIRY (rows expiring at or before bound) from the cursor, moving the cursor over
 * rows that are not in the file only. 1: it stands on the first that is (xnext), for the
 * caller to read and reset; 0: there is none; -1: the read failed (last_error says). */
static int file_first(store *s, uint64_t bound)
{
    sqlite3_stmt *st = s->r[R_EXPIRY];
    int rc;
    if ((rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)s->xcur_exp)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)s->xcur_id)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, 3, bound > INT64_MAX ? INT64_MAX : (sqlite3_int64)bound)) !=
            SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, 4, (sqlite3_int64)s->committed_max)) != SQLITE_OK) {
        (void)sqlite__db_err(s, s->rdb, "read");
        return -1;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t exp = (uint64_t)sqlite3_column_int64(st, C_EXPIRES);
        uint64_t id = (uint64_t)sqlite3_column_int64(st, C_ID);
        if (file_only(s, st)) {
            s->xnext_known = 1;
            s->xnext_exp = exp;
            s->xnext_id = id;
            return 1;
        }
        s->xcur_exp = exp;
        s->xcur_id = id;
    }
    (void)sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        (void)sqlite__db_err(s, s->rdb, "read");
        return -1;
    }
    if (bound >= (uint64_t)INT64_MAX) {
        s->xnext_known = 1;
        s->xnext_exp = 0;
    } else if (s->xnext_known && s->xnext_exp && s->xnext_exp <= bound) {
        s->xnext_known = 0; /* it was not where it was thought to be */
    }
    return 0;
}

/* Hand out the row R_EXPIRY stands on: read in as taken, out of order. */
static store_err take_row(store *s, store_msg *out)
{
    sqlite3_stmt *st = s->r[R_EXPIRY];
    squeue *q = find_qid(s, sqlite3_column_int64(st, C_QUEUE));
    store__rec *r = NULL;
    if (store__ids_reserve(&s->ids, 1) == STORE_OK)
        r = sqlite__load_row(s, q, st);
    (void)sqlite3_reset(st);
    if (!r)
        return STORE_E_NOMEM;
    r->state = STORE__TAKEN;
    r->flags |= REC_OOO;
    if (r->not_before)
        q->sched_spilled--;
    else
        q->band[r->prio].spilled--;
    spill_note(q, r->prio);
    s->xcur_exp = r->expires;
    s->xcur_id = r->link.id;
    s->xnext_known = 0;
    sqlite__fill(out, r);
    return STORE_OK;
}

store_err sqlite__take_expired(store *s, uint64_t now, store_msg *out)
{
    const store__heapent *t = store__heap_top(&s->expiry);
    int mem = t && t->key <= now;
    /* Nothing in the file only expires by now (as far as known): no read. */
    int f = 0;
    if (!s->xnext_known || (s->xnext_exp && s->xnext_exp <= now))
        f = file_first(s, now);
    if (f < 0)
        return STORE_E_IO;
    if (f && (!mem || key_after(t->key, t->tie, s->xnext_exp, s->xnext_id)))
        return take_row(s, out);
    if (f)
        (void)sqlite3_reset(s->r[R_EXPIRY]);
    if (!mem)
        return STORE_E_EMPTY;
    store__rec *r = t->p;
    squeue *q = r->q;
    store__order_remove(&q->o, r);
    mem_out(q, r);
    store__expiry_drop(&s->expiry, r);
    r->state = STORE__TAKEN;
    sqlite__fill(out, r);
    return STORE_OK;
}

uint64_t sqlite__next_expiry(store *s)
{
    if (!s->xnext_known) {
        int f = file_first(s, UINT64_MAX);
        if (f > 0)
            (void)sqlite3_reset(s->r[R_EXPIRY]);
    }
    const store__heapent *t = store__heap_top(&s->expiry);
    uint64_t mem = t ? t->key : 0;
    uint64_t file = s->xnext_known ? s->xnext_exp : 0;
    if (!mem || (file && file < mem))
        return file;
    return mem;
}

/* ---- ghosts ---- */

void sqlite__ghost_replace(store *s, store__rec *r, store__rec *g)
{
    memset(g, 0, sizeof *g);
    g->link.id = r->link.id;
    g->state = STORE__GHOST;
    g->hpos = g->xpos = STORE__NOPOS;
    sqlite__rec_free(s, r);
    /* r's slot in the index was just freed: no growth. */
    store__ids_insert(&s->ids, &g->link);
    s->bytes += sizeof *g;
    s->nghosts++;
}

static void ghost_free(store *s, store__rec *g)
{
    store__ids_remove(&s->ids, &g->link);
    s->bytes -= sizeof *g;
    s->nghosts--;
    free(g);
}

int sqlite__page_skip(store *s, uint64_t id)
{
    store__rec *r = find_rec(s, id);
    if (!r)
        return 0;
    if (r->state == STORE__GHOST)
        ghost_free(s, r);
    return 1;
}

void sqlite__ghosts_done(store *s, const batch *b, int failed)
{
    for (size_t i = 0; !failed && s->nghosts && i < b->nops; i++) {
        if (b->ops[i].kind != OP_ACK)
            continue;
        store__rec *g = find_rec(s, (uint64_t)b->ops[i].key);
        if (g && g->state == STORE__GHOST)
            ghost_free(s, g);
    }
}
