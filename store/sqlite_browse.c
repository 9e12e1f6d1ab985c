/* sqlite_browse.c: the SQLite backend's browse: a queue's ready messages in delivery order,
 * read without taking them and without reading a queue into memory.
 *
 * Band by band from the highest, the band's records in memory (its list and heap, order.h)
 * and its rows in the file only (after its frontier, sqlite_page.c) are merged by (ord, id).
 * The file is read with the paging statement from the cursor's place, one row per call; the
 * row given out is copied into s->browsed, lent out until the next browse (or close). The
 * cursor: pos[0] = 1 + the band of the last message given (0: not begun), pos[1] and pos[2]
 * its (ord, id). A message that stays ready keeps its band and (ord, id), so it is met once;
 * one requeued meanwhile goes before its band's first, which the cursor has passed.
 */
#include "sqlite_int.h"

/* Stand R_PAGE on the first row of band p in the file only after (ord, id): 1, or 0 when
 * there is none, or -1 when the read failed. */
static int file_after(store *s, squeue *q, int p, int64_t ord, uint64_t id)
{
    const sband *b = &q->band[p];
    if (!b->spilled)
        return 0;
    if (!ord_after(ord, id, b->front_ord, b->front_id)) {
        ord = b->front_ord;
        id = b->front_id;
    }
    sqlite3_stmt *st = s->r[R_PAGE];
    int rc;
    if (sqlite__bind_page(s, q, p, ord, id, -1) != SQLITE_OK)
        return -1;
    /* Rows in memory out of order, or ghosts, are given (or not) from memory; rows with a
     * time are waiting (in the schedule), not ready. */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (!sqlite3_column_int64(st, C_NB) &&
            !find_rec(s, (uint64_t)sqlite3_column_int64(st, C_ID)))
            return 1;
    (void)sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* The row R_PAGE stands on, copied into s->browsed. */
static store_err lend_row(store *s, squeue *q, store_msg *out)
{
    store__rec *r = sqlite__row_rec(s, q, s->r[R_PAGE]);
    (void)sqlite3_reset(s->r[R_PAGE]);
    if (!r)
        return STORE_E_NOMEM;
    if (s->browsed)
        s->bytes -= STORE__REC_SIZE(s->browsed);
    free(s->browsed);
    s->browsed = r;
    s->bytes += STORE__REC_SIZE(r);
    sqlite__fill(out, r);
    return STORE_OK;
}

/* The next message of band p after (ord, id), from memory or the file, into out; *at: its
 * ord. */
static store_err band_next(store *s, squeue *q, int p, int64_t ord, uint64_t id,
                           store_msg *out, int64_t *at)
{
    const store__rec *m = store__order_after(&q->o, q, p, find_rec(s, id), ord, id);
    int f = file_after(s, q, p, ord, id);
    if (f < 0)
        return sqlite__db_err(s, s->rdb, "read");
    sqlite3_stmt *st = s->r[R_PAGE];
    if (f && (!m || ord_after(m->ord, m->link.id, sqlite3_column_int64(st, C_ORD),
                              (uint64_t)sqlite3_column_int64(st, C_ID)))) {
        *at = sqlite3_column_int64(st, C_ORD);
        return lend_row(s, q, out);
    }
    if (f)
        (void)sqlite3_reset(st);
    if (!m)
        return STORE_E_EMPTY;
    *at = m->ord;
    sqlite__fill(out, m);
    return STORE_OK;
}

store_err sqlite__browse(store *s, squeue *q, store_cursor *cur, uint64_t now, store_msg *out)
{
    /* Due messages are ready: promoted first (what cannot be shows in a later call). */
    store_err perr = sqlite__promote(s, q, now);
    (void)perr;
    int p;
    int64_t ord;
    uint64_t id;
    store__cursor_read(cur, &p, &ord, &id);
    for (; p >= 0; p--, ord = INT64_MIN, id = 0) {
        int64_t at = 0;
        store_err err = band_next(s, q, p, ord, id, out, &at);
        if (err == STORE_E_EMPTY)
            continue;
        if (err == STORE_OK)
            store__cursor_write(cur, p, at, out->id);
        return err;
    }
    return STORE_E_EMPTY;
}
