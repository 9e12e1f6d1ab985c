/* sqlite_page.c: the SQLite backend's records between memory and the file. Commits put new
 * records in memory while there is room; past that, and after a restart, rows stay in the
 * file only and are read back a page at a time on the reader connection (loop thread).
 *
 * Two indexes of the file are read in order, each behind a frontier (the last row brought
 * into memory): a band's rows by (ord, id) (msg's index; rows with a not_before among them are
 * the schedule's, passed over), and a queue's waiting rows by (not_before, id) (the sched
 * table, sqlite_schema.c). Facts that always hold: every row at or before a frontier is in
 * memory or acked; after it, `spilled` (band) and `sched_spilled` (queue) count the rows in
 * the file only, and rows in memory read out of order (REC_OOO) or ghosts of acked ones
 * (sqlite_expire.c), which a page read passes over.
 * A band's rows come to it in order (a fresh one's ord is above all), but waiting rows come
 * in any order of time: one that lands before the schedule's frontier while the schedule's
 * window is full stays in the file only, the frontier moving back to just before it; so
 * every record of the schedule is marked REC_OOO (its row may be after the frontier).
 * Every record on a band's list comes before every row of the band in the file only: the
 * list takes rows from the file in order, and a commit appends to it only while nothing of
 * the band is in the file only. A window bounds what one band (and one queue's schedule)
 * keeps in memory. Pending messages are only in memory; paging never reads them early
 * because it is bounded by the largest id whose commit has completed (committed_max).
 */
#include "sqlite_int.h"

static const char *const reader_sql[R__COUNT] = {
    /* A band: its ords lie in [?2, ?7). */
    [R_PAGE] = "SELECT " ROW_COLUMNS " FROM msg AS m LEFT JOIN expiry AS e ON e.id = m.id"
               " WHERE m.queue = ?1 AND (m.ord, m.id) > (?3, ?4) AND m.ord >= ?2"
               " AND m.ord < ?7 AND m.id <= ?5 ORDER BY m.ord, m.id LIMIT ?6",
    [R_SCHED] = "SELECT " ROW_COLUMNS " FROM sched AS s JOIN msg AS m ON m.id = s.id"
                " LEFT JOIN expiry AS e ON e.id = m.id"
                " WHERE s.queue = ?1 AND (s.not_before, s.id) > (?2, ?3) AND s.id <= ?4"
                " ORDER BY s.not_before, s.id LIMIT ?5",
    [R_EXPIRY] = "SELECT " ROW_COLUMNS " FROM expiry AS e JOIN msg AS m ON m.id = e.id"
                 " WHERE (e.expires, e.id) > (?1, ?2) AND e.expires <= ?3 AND e.id <= ?4"
                 " ORDER BY e.expires, e.id",
};

store_err sqlite__page_prepare(store *s)
{
    for (int i = 0; i < R__COUNT; i++)
        if (sqlite3_prepare_v3(s->rdb, reader_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->r[i],
                               NULL) != SQLITE_OK)
            return sqlite__db_err(s, s->rdb, "prepare");
    return STORE_OK;
}

static uint32_t clamp32(sqlite3_int64 v)
{
    return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

store__rec *sqlite__row_rec(store *s, squeue *q, sqlite3_stmt *st)
{
    const void *h = sqlite3_column_blob(st, C_HEADERS);
    size_t hlen = (size_t)sqlite3_column_bytes(st, C_HEADERS);
    const void *body = sqlite3_column_blob(st, C_BODY);
    size_t blen = (size_t)sqlite3_column_bytes(st, C_BODY);
    /* SQLite returns NULL for a non-empty blob only when it ran out of memory. */
    if ((!h && hlen) || (!body && blen))
        return NULL;
    store__rec *r = store__rec_new(&s->pool, q, h, hlen, body, blen);
    if (!r)
        return NULL;
    r->link.id = (uint64_t)sqlite3_column_int64(st, C_ID);
    r->ord = sqlite3_column_int64(st, C_ORD);
    r->redeliveries = clamp32(sqlite3_column_int64(st, C_RED));
    r->prio = (uint8_t)band_of(r->ord);
    r->not_before = (uint64_t)sqlite3_column_int64(st, C_NB);
    r->expires = (uint64_t)sqlite3_column_int64(st, C_EXPIRES);
    /* Possibly handed out before a crash: counted as a delivery (sqlite_recover.c). */
    if (r->ord <= q->band[r->prio].crash_front && r->redeliveries < UINT32_MAX) {
        r->redeliveries++;
        r->flags |= REC_BUMPED;
    }
    return r;
}

store__rec *sqlite__load_row(store *s, squeue *q, sqlite3_stmt *st)
{
    if (sqlite3_column_int64(st, C_EXPIRES) &&
        store__heap_reserve(&s->expiry, s->nexpiring + 1, &s->bytes) != STORE_OK)
        return NULL;
    store__rec *r = sqlite__row_rec(s, q, st);
    if (!r)
        return NULL;
    store__ids_insert(&s->ids, &r->link);
    s->bytes += STORE__REC_SIZE(r);
    q->nrecs++;
    if (r->expires)
        s->nexpiring++;
    sqlite__expiry_loaded(s, r);
    return r;
}

/* A record read from the file joins q's order (band list or waiting heap). */
static void join_order(store *s, squeue *q, store__rec *r, int waiting)
{
    if (waiting)
        store__order_wait(&q->o, r);
    else
        store__order_append(&q->o, r);
    mem_in(q, r);
    store__expiry_add(&s->expiry, r);
}

/* Read rows from st (bound, LIMIT want) into q's order until the window is full. *read:
 * rows met; *full: stopped by the window's bytes. The frontier (*f1, *f2) follows every row
 * passed; *spilled counts down for each row read in. */
static store_err read_page(store *s, squeue *q, sqlite3_stmt *st, int waiting,
                           uint64_t *f1, uint64_t *f2, uint64_t *spilled, size_t *read,
                           int *full)
{
    store_err err = STORE_OK;
    int rc;
    *read = 0;
    *full = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t id = (uint64_t)sqlite3_column_int64(st, C_ID);
        uint64_t k = (uint64_t)sqlite3_column_int64(st, waiting ? C_NB : C_ORD);
        store__rec *r = NULL;
        /* A band's row with a time belongs to the schedule: passed over here. */
        int scheduled = !waiting && sqlite3_column_int64(st, C_NB) != 0;
        if (!scheduled && !sqlite__page_skip(s, id)) {
            if ((waiting && store__heap_reserve(&q->o.waiting, q->o.waiting.n + q->nlate + 1,
                                                &s->bytes) != STORE_OK) ||
                !(r = sqlite__load_row(s, q, st))) {
                err = STORE_E_NOMEM;
                break;
            }
            if (waiting)
                r->flags |= REC_OOO;
            join_order(s, q, r, waiting);
            (*spilled)--;
        }
        (*read)++;
        *f1 = k;
        *f2 = id;
        if (r && !waiting && q->band[r->prio].mem_bytes >= WINDOW_BYTES) {
            *full = 1;
            break;
        }
    }
    if (err == STORE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = sqlite__db_err(s, s->rdb, "read");
    (void)sqlite3_reset(st); /* ends the read transaction: the WAL may be checkpointed past it */
    return err;
}

/* Bind R_PAGE for band p of q from (ord, id) on, at most limit rows (-1: no limit). */
int sqlite__bind_page(store *s, const squeue *q, int p, int64_t ord, uint64_t id, int64_t limit)
{
    sqlite3_stmt *st = s->r[R_PAGE];
    int rc;
    if ((rc = sqlite3_bind_int64(st, 1, QID(q))) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, 2, band_lo(p))) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, 3, ord)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, 4, (sqlite3_int64)id)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, 5, (sqlite3_int64)s->committed_max)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, 6, limit)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, 7, band_hi(p))) != SQLITE_OK)
        return rc;
    return SQLITE_OK;
}

store_err sqlite__page_in(store *s, squeue *q, int p)
{
    sband *b = &q->band[p];
    sqlite3_stmt *st = s->r[R_PAGE];
    size_t want = b->spilled < WINDOW ? (size_t)b->spilled : WINDOW;
    if (store__ids_reserve(&s->ids, want) != STORE_OK)
        return STORE_E_NOMEM;
    if (sqlite__bind_page(s, q, p, b->front_ord, b->front_id, (int64_t)want) != SQLITE_OK)
        return sqlite__db_err(s, s->rdb, "read");
    uint64_t ord = (uint64_t)b->front_ord;
    size_t read;
    int full;
    store_err err = read_page(s, q, st, 0, &ord, &b->front_id, &b->spilled, &read, &full);
    b->front_ord = (int64_t)ord;
    /* The file has fewer than counted: only if something else changed it. Believe the file. */
    if (err == STORE_OK && !full && read < want)
        b->spilled = 0;
    spill_note(q, p);
    return err;
}

store_err sqlite__sched_page_in(store *s, squeue *q)
{
    sqlite3_stmt *st = s->r[R_SCHED];
    size_t want = q->sched_spilled < WINDOW ? (size_t)q->sched_spilled : WINDOW;
    if (store__ids_reserve(&s->ids, want) != STORE_OK)
        return STORE_E_NOMEM;
    int rc;
    if ((rc = sqlite3_bind_int64(st, 1, QID(q))) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)q->sched_nb)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, 3, (sqlite3_int64)q->sched_id)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, 4, (sqlite3_int64)s->committed_max)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, 5, (sqlite3_int64)want)) != SQLITE_OK)
        return sqlite__db_err(s, s->rdb, "read");
    size_t read;
    int full;
    store_err err = read_page(s, q, st, 1, &q->sched_nb, &q->sched_id, &q->sched_spilled,
                              &read, &full);
    if (err == STORE_OK && read < want)
        q->sched_spilled = 0;
    return err;
}

void sqlite__sched_note(squeue *q, store__rec *r)
{
    r->flags |= REC_OOO;
    /* Nothing in the file only: the frontier can move past it. */
    if (!q->sched_spilled && key_after(r->not_before, r->link.id, q->sched_nb, q->sched_id)) {
        q->sched_nb = r->not_before;
        q->sched_id = r->link.id;
    }
}

/* Can the committed record r stay in memory? While its window has room and it does not lie
 * after rows in the file only (the file's part stays after the memory's). */
static int keeps(const squeue *q, const store__rec *r)
{
    const sband *b = &q->band[r->prio];
    if (r->not_before)
        return q->o.waiting.n < WINDOW &&
               (!q->sched_spilled ||
                !key_after(r->not_before, r->link.id, q->sched_nb, q->sched_id));
    size_t n = q->o.band[r->prio].n;
    return !b->spilled && n < WINDOW &&
           (n == 0 || b->mem_bytes + r->hlen + r->blen <= WINDOW_BYTES);
}

/* r (waiting) stays in the file only: if it lies before the schedule's frontier, the frontier
 * moves back to just before it (the records in memory after that are all REC_OOO). */
static void sched_spill(squeue *q, const store__rec *r)
{
    q->sched_spilled++;
    if (!key_after(r->not_before, r->link.id, q->sched_nb, q->sched_id)) {
        q->sched_nb = r->not_before;
        q->sched_id = r->link.id - 1;
    }
}

void sqlite__make_ready(store *s, store__rec *r)
{
    squeue *q = r->q;
    sband *b = &q->band[r->prio];
    b->npending--;
    if (r->not_before)
        q->nlate--;
    if (!keeps(q, r)) {
        if (r->not_before) {
            sched_spill(q, r);
        } else {
            b->spilled++;
            spill_note(q, r->prio);
        }
        sqlite__expiry_spilled(s, r);
        sqlite__rec_free(s, r);
        return;
    }
    if (r->not_before) {
        sqlite__sched_note(q, r);
    } else {
        b->front_ord = r->ord;
        b->front_id = r->link.id;
    }
    join_order(s, q, r, r->not_before != 0);
}
