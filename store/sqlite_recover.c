/* sqlite_recover.c: the SQLite backend's redelivery across restarts: the per-queue bound of
 * handed-out messages (front) that makes a crash recoverable without a write per take, and
 * the last transaction of a clean close that counts what was handed out.
 *
 * Taking is not a write per message; instead each queue row keeps a bound `front`: every
 * message ever handed out has ord <= front in the file. take hands out a message only when
 * its ord is within the durable front; otherwise it puts a raised front (ord + LOOKAHEAD) in
 * the open batch and answers STORE_E_AGAIN. Takes raise the front ahead of time (when they
 * come within LOOKAHEAD / 2 of it), so in a steady flow no take waits, and a new queue
 * starts with its front LOOKAHEAD ids ahead. The meta key "open" is 1 while a store is open
 * and 0 after a clean close (which writes the taken messages back with redeliveries + 1).
 * Opening a file still marked open means a crash: every message with ord <= its queue's
 * front comes back with redeliveries + 1 (paged in with the bump): all that were handed out,
 * and at most LOOKAHEAD ids beyond them that were not. A clean close after such an open
 * writes those counts down before marking the file closed. Open reads the mark and each
 * queue's crash bound (sqlite_schema.c); paging applies the bump (sqlite_page.c).
 */
#include "sqlite_int.h"

/* ---- fronts (loop thread) ---- */

int sqlite__front_push(store *s, squeue *q, int64_t front)
{
    if (front <= q->front_sent)
        return 0;
    if (reserve_ops(s->open, 1) != 0)
        return -1;
    push_op(s->open, OP_FRONT, q->qid, front, 0, q);
    q->fpins++;
    q->front_sent = front;
    q->front_open = front;
    q->fop_seq = s->open_seq;
    return 0;
}

/* Durable once b committed; after a failure, what was sent is back to what is durable, plus
 * what the open batch sends again. A queue kept only by its pins may go now. */
void sqlite__fronts_done(store *s, const batch *b, int failed)
{
    for (size_t i = 0; i < b->nops; i++) {
        if (b->ops[i].kind != OP_FRONT)
            continue;
        squeue *q = (squeue *)b->ops[i].ptr;
        q->fpins--;
        if (!failed) {
            if (b->ops[i].ord > q->front_durable)
                q->front_durable = b->ops[i].ord;
        } else {
            q->front_sent = q->front_durable;
            if (q->fop_seq == s->open_seq && q->front_open > q->front_sent)
                q->front_sent = q->front_open;
        }
        if (!q->fpins && !q->nrecs && !q->spilled && reserve_ops(s->open, 1) == 0)
            sqlite__queue_drop_unused(s, q);
    }
}

/* ---- close (loop thread; no commit in flight, so the writer is ours) ---- */

/* Write r's position and a redelivery count red to its row. */
static int write_rec_count(store *s, const srec *r, uint32_t red)
{
    sqlite3_stmt *st = s->w[W_REQUEUE];
    int rc;
    uint64_t nb = r->state == REC_WAITING ? r->not_before : 0;
    if ((rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)r->link.id)) == SQLITE_OK &&
        (rc = sqlite3_bind_int64(st, 2, r->ord)) == SQLITE_OK &&
        (rc = sqlite3_bind_int64(st, 3, red)) == SQLITE_OK &&
        (rc = sqlite3_bind_int64(st, 4, (sqlite3_int64)nb)) == SQLITE_OK)
        rc = step_done(st);
    return rc;
}

/* After a crash, messages counted as possibly delivered keep that count once the file is
 * marked closed: those in memory are written with theirs, those still only in the file get
 * it in place. */
static int keep_crash_counts(store *s)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->wdb,
                                "UPDATE msg SET redeliveries = redeliveries + 1 WHERE queue = ?1"
                                " AND ord <= ?2 AND (ord, id) > (?3, ?4)",
                                -1, &st, NULL);
    for (const store__qlink *l = store__queues_first(&s->queues); rc == SQLITE_OK && l;
         l = store__queues_next(&s->queues, l)) {
        const squeue *q = store__container_of(l, const squeue, link);
        if (q->crash_front == INT64_MIN)
            continue;
        for (const store__dlink *e = q->win.head; rc == SQLITE_OK && e; e = e->next) {
            const srec *r = store__container_of(e, const srec, on);
            if (r->ord <= q->crash_front)
                rc = write_rec_count(s, r, r->redeliveries);
        }
        if (rc == SQLITE_OK && q->spilled &&
            (rc = sqlite3_bind_int64(st, 1, q->qid)) == SQLITE_OK &&
            (rc = sqlite3_bind_int64(st, 2, q->crash_front)) == SQLITE_OK &&
            (rc = sqlite3_bind_int64(st, 3, q->front_ord)) == SQLITE_OK &&
            (rc = sqlite3_bind_int64(st, 4, (sqlite3_int64)q->front_id)) == SQLITE_OK)
            rc = step_done(st);
    }
    (void)sqlite3_finalize(st);
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
    const batch *b = s->open;
    for (size_t i = 0; rc == SQLITE_OK && i < b->nops; i++) {
        const op *o = &b->ops[i];
        if (o->kind == OP_ACK) {
            sqlite3_stmt *st = s->w[W_BUMP];
            if ((rc = sqlite3_bind_int64(st, 1, o->key)) == SQLITE_OK)
                rc = step_done(st);
        } else if (o->kind == OP_REQUEUE) {
            const srec *r = find_rec(s, (uint64_t)o->key);
            if (r && (r->state == REC_READY || r->state == REC_WAITING))
                rc = write_rec_count(s, r, r->redeliveries);
        }
    }
    for (const store__idlink *l = store__ids_first(&s->ids); rc == SQLITE_OK && l;
         l = store__ids_next(&s->ids, l)) {
        const srec *r = store__container_of(l, const srec, link);
        if (r->state != REC_TAKEN)
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
