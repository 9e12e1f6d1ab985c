/* sqlite_recover.c: the SQLite backend's redelivery across restarts: the bound of handed-out
 * messages (front) kept for each priority band of each queue, which makes a crash
 * recoverable without a write per take, and the last transaction of a clean close that
 * counts what was handed out.
 *
 * Taking is not a write per message; instead the file keeps for each band a bound (priority
 * 4's in its queue's row, as before priorities; the others in the table front(queue, prio,
 * value)): every message of that band that take, take_hashed or take_at ever handed out has
 * ord <= front in the file. A take hands out a message only when its ord is
 * within the band's durable front; otherwise it puts a raised front (ord + LOOKAHEAD) in the
 * open batch and answers STORE_E_AGAIN. Takes raise the front ahead of time (when they come
 * within LOOKAHEAD / 2 of it), so in a steady flow no take waits; a new queue's row starts
 * priority 4's front LOOKAHEAD ids ahead, and a message enqueued into a band with nothing
 * ahead of it (nothing pending, ready in memory or in the file only) puts a front LOOKAHEAD
 * ids past itself in its own batch, so it is deliverable as soon as it is committed.
 *
 * Why per band: within a band takes follow (ord, id), a fresh message's ord is its id, and a
 * requeued one goes below its band's first, so one bound per band is reached only by the
 * band's own takes. A take from a higher band jumps ahead in id order, but only in its own
 * band, whose own bound covers it; one front per queue would have to cover that jump, and
 * after a crash would count every older message of the lower bands as delivered.
 *
 * The meta key "open" is 1 while a store is open and 0 after a clean close (which writes the
 * taken messages back with redeliveries + 1). Opening a file still marked open means a
 * crash: every message of a band with ord <= that band's front comes back with redeliveries
 * + 1 (counted when read into memory, sqlite_page.c): all that were handed out, and of each
 * band at most LOOKAHEAD ids beyond them that were not (plus those of its waiting messages
 * that lie below the front: few). take_expired's hand-outs are not deliveries and are not
 * bounded here (store.h). A clean close after such an open writes those counts down before
 * marking the file closed. Open reads the mark and each band's crash bound (sqlite_schema.c).
 */
#include "sqlite_int.h"

#include <stdio.h>

/* ---- fronts (loop thread) ---- */

int sqlite__front_push(store *s, squeue *q, int p, int64_t front)
{
    sband *b = &q->band[p];
    if (front <= b->front_sent)
        return 0;
    if (reserve_ops(s->open, 1) != 0)
        return -1;
    push_op(s->open, OP_FRONT, QID(q), front, (uint32_t)p, q);
    q->pins++;
    q->fronts |= p != STORE_PRIORITY_DEFAULT;
    b->front_sent = front;
    b->front_open = front;
    b->fop_seq = s->open_seq;
    return 0;
}

/* Durable once b committed; after a failure, what was sent is back to what is durable plus
 * what the open batch sends, and the lost front goes again with the open batch (a message
 * enqueued with it counts on it; without memory for that, a later take waits). */
static void front_done(store *s, squeue *q, const op *o, int failed)
{
    int p = (int)o->redeliveries;
    sband *b = &q->band[p];
    if (!failed) {
        if (o->ord > b->front_durable)
            b->front_durable = o->ord;
        return;
    }
    b->front_sent = b->front_durable;
    if (b->fop_seq == s->open_seq && b->front_open > b->front_sent)
        b->front_sent = b->front_open;
    (void)sqlite__front_push(s, q, p, o->ord);
}

/* A queue kept only by its pins may go once they are gone. */
void sqlite__fronts_done(store *s, const batch *b, int failed)
{
    for (size_t i = 0; i < b->nops; i++) {
        const op *o = &b->ops[i];
        if (o->kind != OP_FRONT)
            continue;
        squeue *q = (squeue *)o->ptr;
        front_done(s, q, o, failed);
        q->pins--;
        if (!q->pins && reserve_ops(s->open, 1) == 0)
            sqlite__queue_drop_unused(s, q);
    }
}

/* ---- close (loop thread; no commit in flight, so the writer is ours) ---- */

/* Run st with one or two int64 parameters. */
static int run2(sqlite3_stmt *st, int64_t a, int n, int64_t b)
{
    int rc = sqlite3_bind_int64(st, 1, a);
    if (rc == SQLITE_OK && n > 1)
        rc = sqlite3_bind_int64(st, 2, b);
    return rc == SQLITE_OK ? step_done(st) : rc;
}

/* Write r's position, time and a redelivery count red to its row (and the schedule). */
static int write_rec_count(store *s, const store__rec *r, uint32_t red)
{
    const int64_t id = (int64_t)r->link.id;
    const int64_t nb = r->state == STORE__WAITING ? (int64_t)r->not_before : 0;
    sqlite3_stmt *st = s->w[W_REQUEUE];
    int rc;
    if ((rc = sqlite3_bind_int64(st, 1, id)) == SQLITE_OK &&
        (rc = sqlite3_bind_int64(st, 2, r->ord)) == SQLITE_OK &&
        (rc = sqlite3_bind_int64(st, 3, red)) == SQLITE_OK &&
        (rc = sqlite3_bind_int64(st, 4, nb)) == SQLITE_OK)
        rc = step_done(st);
    if (rc == SQLITE_OK)
        rc = nb ? run2(s->w[W_SCHED_SET], id, 2, nb) : run2(s->w[W_SCHED_DEL], id, 1, 0);
    return rc;
}

/* The counts of band p's rows in the file only, raised in place (st: one of the two UPDATEs
 * of keep_crash_counts, with its frontier). */
static int bump_file_rows(sqlite3_stmt *st, const squeue *q, int p, int64_t f1, uint64_t f2)
{
    int rc;
    if ((rc = sqlite3_bind_int64(st, 1, QID(q))) == SQLITE_OK &&
        (rc = sqlite3_bind_int64(st, 2, band_lo(p))) == SQLITE_OK &&
        (rc = sqlite3_bind_int64(st, 3, q->band[p].crash_front)) == SQLITE_OK &&
        (rc = sqlite3_bind_int64(st, 4, f1)) == SQLITE_OK &&
        (rc = sqlite3_bind_int64(st, 5, (sqlite3_int64)f2)) == SQLITE_OK)
        rc = step_done(st);
    return rc;
}

/* Each band's rows in the file only that a crash counts: ready ones after the band's
 * frontier, waiting ones after the schedule's. */
static int bump_queue(sqlite3_stmt *const *st, const squeue *q)
{
    int rc = SQLITE_OK;
    for (int p = 0; rc == SQLITE_OK && p < STORE__PRIORITIES; p++) {
        const sband *b = &q->band[p];
        if (b->crash_front == INT64_MIN)
            continue;
        if (b->spilled)
            rc = bump_file_rows(st[0], q, p, b->front_ord, b->front_id);
        if (rc == SQLITE_OK && q->sched_spilled)
            rc = bump_file_rows(st[1], q, p, (int64_t)q->sched_nb, q->sched_id);
    }
    return rc;
}

/* After a crash, messages counted as possibly delivered keep that count once the file is
 * marked closed: those still only in the file get it in place, then those in memory are
 * written with theirs (rows of records out of order lie among the first: they get their own
 * back). */
static int keep_crash_counts(store *s)
{
    sqlite3_stmt *st[2] = { NULL, NULL };
    int rc = sqlite3_prepare_v2(s->wdb,
                                "UPDATE msg SET redeliveries = redeliveries + 1 WHERE queue = ?1"
                                " AND ord >= ?2 AND ord <= ?3 AND (ord, id) > (?4, ?5)"
                                " AND not_before = 0",
                                -1, &st[0], NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->wdb,
                                "UPDATE msg SET redeliveries = redeliveries + 1 WHERE ord >= ?2"
                                " AND ord <= ?3 AND id IN (SELECT id FROM sched WHERE"
                                " queue = ?1 AND (not_before, id) > (?4, ?5))",
                                -1, &st[1], NULL);
    for (const store__qlink *l = store__queues_first(&s->queues); rc == SQLITE_OK && l;
         l = store__queues_next(&s->queues, l))
        rc = bump_queue(st, store__container_of(l, const squeue, link));
    for (const store__idlink *l = store__ids_first(&s->ids); rc == SQLITE_OK && l;
         l = store__ids_next(&s->ids, l)) {
        const store__rec *r = store__container_of(l, const store__rec, link);
        if ((r->flags & (REC_BUMPED | REC_OOO)) &&
            (r->state == STORE__READY || r->state == STORE__MID || r->state == STORE__WAITING))
            rc = write_rec_count(s, r, r->redeliveries);
    }
    (void)sqlite3_finalize(st[0]);
    (void)sqlite3_finalize(st[1]);
    return rc;
}

/* What the open batch did that a clean close keeps: a message whose ack is lost with it was
 * handed out (counted), a requeued one keeps its place and count. */
static int keep_open_batch(store *s)
{
    int rc = SQLITE_OK;
    const batch *b = s->open;
    for (size_t i = 0; rc == SQLITE_OK && i < b->nops; i++) {
        const op *o = &b->ops[i];
        if (o->kind == OP_ACK) {
            rc = run2(s->w[W_BUMP], o->key, 1, 0);
        } else if (o->kind == OP_REQUEUE) {
            const store__rec *r = find_rec(s, (uint64_t)o->key);
            if (r && (r->state == STORE__READY || r->state == STORE__MID ||
                      r->state == STORE__WAITING))
                rc = write_rec_count(s, r, r->redeliveries);
        }
    }
    return rc;
}

/* Each queue's bytes as the file has them once the open batch is dropped, under
 * "bytes/<queue id>" in meta, for the next open: none when they may be wrong (a commit
 * failed, or the batch acks the last messages of a queue already forgotten); that open
 * then counts them from the rows. */
static int keep_bytes(store *s)
{
    const batch *b = s->open;
    int rc = sqlite3_exec(s->wdb, "DELETE FROM meta WHERE key GLOB 'bytes/*'", NULL, NULL, NULL);
    int sure = !s->bytes_stale;
    for (size_t i = 0; sure && i < b->nops; i++) {
        const op *o = &b->ops[i];
        if (o->kind == OP_ENQ) {
            const store__rec *r = o->ptr;
            ((squeue *)r->q)->bytes -= ROW_SIZE(r);
        } else if (o->kind == OP_ACK) {
            squeue *q = find_qid(s, (int64_t)o->not_before);
            if (q)
                q->bytes += (uint64_t)o->ord;
            sure = q != NULL;
        }
    }
    char key[32];
    for (const store__qlink *l = store__queues_first(&s->queues); sure && rc == SQLITE_OK && l;
         l = store__queues_next(&s->queues, l)) {
        const squeue *q = store__container_of(l, const squeue, link);
        snprintf(key, sizeof key, "bytes/%lld", (long long)QID(q));
        rc = sqlite__write_meta(s, key, (int64_t)q->bytes);
    }
    return rc;
}

/* The last transaction of a clean close. The open batch is not committed (its enqueues are
 * lost), but every message handed out is counted as delivered: taken ones and those whose
 * ack or requeue was still in the batch go back with redeliveries + 1 at their position.
 * The id counter is kept (ids of messages never committed are not reused either) and the
 * file is marked closed. Best effort, close cannot fail: if this does not commit, the next
 * open sees a crash and counts every possibly delivered message instead. */
void sqlite__close_cleanly(store *s)
{
    if (!s->opened || step_done(s->w[W_BEGIN]) != SQLITE_OK)
        return;
    int rc = s->unclean ? keep_crash_counts(s) : SQLITE_OK;
    if (rc == SQLITE_OK)
        rc = keep_open_batch(s);
    if (rc == SQLITE_OK)
        rc = keep_bytes(s);
    for (const store__idlink *l = store__ids_first(&s->ids); rc == SQLITE_OK && l;
         l = store__ids_next(&s->ids, l)) {
        const store__rec *r = store__container_of(l, const store__rec, link);
        if (r->state != STORE__TAKEN)
            continue;
        rc = write_rec_count(s, r, r->redeliveries < UINT32_MAX ? r->redeliveries + 1 : UINT32_MAX);
    }
    if (rc == SQLITE_OK && s->next_id > s->stored_next_id)
        rc = sqlite__write_meta(s, "next_id", (int64_t)s->next_id);
    if (rc == SQLITE_OK)
        rc = sqlite__write_meta(s, "open", 0);
    if (rc == SQLITE_OK)
        rc = step_done(s->w[W_COMMIT]);
    if (rc != SQLITE_OK && !sqlite3_get_autocommit(s->wdb))
        (void)step_done(s->w[W_ROLLBACK]);
}
