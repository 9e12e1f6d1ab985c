/* sqlite_page.c: the SQLite backend's window: the ready messages of each queue kept in memory,
 * filled by commits as they complete and, once a queue's backlog went to the file only, by
 * reading it back a page at a time on the reader connection (loop thread).
 *
 * Queue order is (ord, id) (see store_sqlite.c), so the window is sorted by (ord, id) and a
 * restart reads the same order back. Per queue, the ready messages are the window (in
 * memory) followed by `spilled` more in the file only, all above the frontier (front_ord,
 * front_id: the last record brought into memory); every message at or below the frontier is
 * in memory (window, waiting for its time, or taken) or acked. A row read back whose time
 * (requeue_at) is still to come waits in the queue's heap, outside the window. Pending messages are only in memory; paging never
 * reads them early because it is bounded by the largest id whose commit has completed
 * (committed_max).
 */
#include "sqlite_int.h"

store_err sqlite__page_prepare(store *s)
{
    if (sqlite3_prepare_v3(s->rdb,
                           "SELECT id, ord, redeliveries, headers, body, not_before FROM msg"
                           " WHERE queue = ?1 AND (ord, id) > (?2, ?3) AND id <= ?4"
                           " ORDER BY ord, id LIMIT ?5",
                           -1, SQLITE_PREPARE_PERSISTENT, &s->page, NULL) != SQLITE_OK)
        return sqlite__db_err(s, s->rdb, "prepare");
    return STORE_OK;
}

/* Committed: each record joins its queue's window, or stays only in the file if the window
 * is full or older messages of the queue are already only in the file (order). */
void sqlite__make_ready(store *s, srec *r)
{
    squeue *q = r->q;
    if (q->spilled == 0 && q->nwin < STORE_SQLITE_WINDOW &&
        (q->nwin == 0 || q->win_bytes + r->hlen + r->blen <= STORE_SQLITE_WINDOW_BYTES)) {
        r->state = REC_READY;
        store__list_append(&q->win, &r->on);
        q->nwin++;
        q->win_bytes += r->hlen + r->blen;
        q->front_ord = r->ord;
        q->front_id = r->link.id;
        return;
    }
    q->spilled++;
    store__ids_remove(&s->ids, &r->link);
    q->nrecs--;
    s->bytes -= REC_SIZE(r);
    free(r);
}

store_err sqlite__wait_room(store *s, squeue *q)
{
    return store__heap_reserve(&q->waiting, q->waiting.n + 1, &s->bytes);
}

/* r (in memory, not on a list) waits for its time: into q's heap. The caller reserved. */
static void wait_for(squeue *q, srec *r)
{
    r->state = REC_WAITING;
    store__heap_push(&q->waiting, r->not_before, r->link.id, r);
    q->nwaiting++;
}

/* Read up to a window of q's spilled messages into its window; those not due at now (a
 * time of requeue_at) into its heap of waiting records. */
store_err sqlite__page_in(store *s, squeue *q, uint64_t now)
{
    sqlite3_stmt *st = s->page;
    size_t want = STORE_SQLITE_WINDOW;
    if (want > q->spilled)
        want = (size_t)q->spilled;
    if (store__ids_reserve(&s->ids, want) != STORE_OK)
        return STORE_E_NOMEM;
    int rc;
    if ((rc = sqlite3_bind_int64(st, 1, q->qid)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, 2, q->front_ord)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, 3, (sqlite3_int64)q->front_id)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, 4, (sqlite3_int64)s->committed_max)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, 5, (sqlite3_int64)want)) != SQLITE_OK)
        return sqlite__db_err(s, s->rdb, "read");
    store_err err = STORE_OK;
    size_t got = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t nb = (uint64_t)sqlite3_column_int64(st, 5);
        if (nb > now && sqlite__wait_room(s, q) != STORE_OK) {
            err = STORE_E_NOMEM;
            break;
        }
        const void *h = sqlite3_column_blob(st, 3);
        size_t hlen = (size_t)sqlite3_column_bytes(st, 3);
        const void *body = sqlite3_column_blob(st, 4);
        size_t blen = (size_t)sqlite3_column_bytes(st, 4);
        srec *r = NULL;
        /* SQLite returns NULL for a non-empty blob only when it ran out of memory. */
        if ((h || !hlen) && (body || !blen))
            r = malloc(sizeof *r + hlen + blen + 1);
        if (!r) {
            err = STORE_E_NOMEM;
            break;
        }
        r->q = q;
        r->link.id = (uint64_t)sqlite3_column_int64(st, 0);
        r->ord = sqlite3_column_int64(st, 1);
        sqlite3_int64 red = sqlite3_column_int64(st, 2);
        r->redeliveries = red < 0 ? 0 : red > UINT32_MAX ? UINT32_MAX : (uint32_t)red;
        /* Possibly handed out before a crash: counted as a delivery (sqlite_recover.c). */
        if (r->ord <= q->crash_front && r->redeliveries < UINT32_MAX)
            r->redeliveries++;
        r->not_before = nb;
        r->hlen = hlen;
        r->blen = blen;
        store__copy_msg(r->data, h, hlen, body, blen);
        store__ids_insert(&s->ids, &r->link);
        s->bytes += REC_SIZE(r);
        if (nb > now) {
            wait_for(q, r);
        } else {
            r->state = REC_READY;
            store__list_append(&q->win, &r->on);
            q->nwin++;
            q->win_bytes += hlen + blen;
        }
        q->nrecs++;
        q->spilled--;
        q->front_ord = r->ord;
        q->front_id = r->link.id;
        got++;
        if (q->win_bytes >= STORE_SQLITE_WINDOW_BYTES)
            break;
    }
    if (err == STORE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = sqlite__db_err(s, s->rdb, "read");
    (void)sqlite3_reset(st); /* ends the read transaction: the WAL may be checkpointed past it */
    /* The file has fewer than counted: only if something else changed it. Believe the file. */
    if (err == STORE_OK && got < want && q->win_bytes < STORE_SQLITE_WINDOW_BYTES)
        q->spilled = 0;
    return err;
}
