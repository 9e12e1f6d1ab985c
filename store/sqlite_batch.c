/* sqlite_batch.c: the SQLite backend's group commit: every write between two commits is an
 * operation in the open batch; a commit applies the batch in one transaction on a libuv pool
 * thread and settles it back on the loop (records become ready, or are dropped if it failed).
 *
 * Two batches take turns: while one is in flight (s->fly), new writes fill the other, so the
 * loop never waits for a sync. The worker touches only the writer connection, the batch, and
 * fields of its records and queues that do not change while the batch is in flight.
 * The commit keeps statements few: runs of enqueues without a time or an expiry (whose rows
 * are all there is of them: the schedule and expiry tables are not touched) go INS_ROWS to
 * an INSERT, runs of acks of such messages with consecutive ids (a FIFO consumer's) as one
 * ranged DELETE. Inserts are OR ROLLBACK: any
 * failure fails the whole batch anyway, and that spares SQLite a statement journal (a copy
 * of every page a multi-row INSERT changes, spilled to a temporary file past 64 KiB: more
 * bytes per message than the WAL gets).
 */
#include "sqlite_int.h"

#include <stdio.h>

#define INS "INSERT OR ROLLBACK INTO msg(id, queue, ord, redeliveries, headers, body)"
#define ROW "(?,?,?,?,?,?)"
#define ROW8 ROW "," ROW "," ROW "," ROW "," ROW "," ROW "," ROW "," ROW
enum { INS_ROWS = 16, INS_COLS = 6 };

static const char *const writer_sql[W__COUNT] = {
    [W_BEGIN] = "BEGIN IMMEDIATE",
    [W_COMMIT] = "COMMIT",
    [W_ROLLBACK] = "ROLLBACK",
    /* OR ROLLBACK: a failing insert ends the transaction at once (see the top of the file). */
    [W_INS_MSG] = "INSERT OR ROLLBACK INTO msg(id, queue, ord, redeliveries, headers, body,"
                  " not_before) VALUES(?,?,?,?,?,?,?)",
    [W_DEL_MSG] = "DELETE FROM msg WHERE id = ?1",
    [W_REQUEUE] = "UPDATE msg SET ord = ?2, redeliveries = ?3, not_before = ?4 WHERE id = ?1",
    /* Each batch writing to a queue (re)writes its row: the row then never depends on an
     * earlier batch having succeeded. REPLACE lets a row of the same name left by a failed
     * batch give way (see sqlite__queue_drop_unused). */
    [W_INS_QUEUE] = "INSERT OR REPLACE INTO queue(id, name, front) VALUES(?1, ?2, ?3)",
    [W_DEL_QUEUE] = "DELETE FROM queue WHERE id = ?1",
    [W_DEL_FRONTS] = "DELETE FROM front WHERE queue = ?1",
    [W_META] = "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)",
    /* Priority 4's front lives in the queue's row (as before priorities), the others in
     * front (see sqlite_recover.c). */
    [W_FRONT] = "INSERT OR REPLACE INTO front(queue, prio, value) VALUES(?1, ?2, ?3)",
    [W_FRONT4] = "UPDATE queue SET front = ?2 WHERE id = ?1",
    [W_BUMP] = "UPDATE msg SET redeliveries = redeliveries + 1 WHERE id = ?1",
    /* Only for ids that are all acked in the batch (see sqlite__commit_work). */
    [W_DEL_RANGE] = "DELETE FROM msg WHERE id BETWEEN ?1 AND ?2",
    /* INS_ROWS messages in one statement: a burst of SENDs costs fewer statement runs. */
    [W_INS_MSGS] = INS " VALUES" ROW8 "," ROW8,
    /* The schedule and expiry tables hold only messages with a time or an expiry. */
    [W_SCHED_SET] = "INSERT OR REPLACE INTO sched(id, queue, not_before, prio)"
                    " SELECT id, queue, ?2, ?3 FROM msg WHERE id = ?1",
    [W_SCHED_DEL] = "DELETE FROM sched WHERE id = ?1",
    [W_EXPIRY_SET] = "INSERT OR REPLACE INTO expiry(id, expires) VALUES(?1, ?2)",
    [W_EXPIRY_DEL] = "DELETE FROM expiry WHERE id = ?1",
    /* A message of enqueue_shared: its body is the body row ?8, written by the first of
     * its messages the batch inserts (the others, or a cancel, may leave any of them out). */
    [W_INS_SHARED] = "INSERT OR ROLLBACK INTO msg(id, queue, ord, redeliveries, headers, body,"
                     " not_before, body_id) VALUES(?,?,?,?,?,?,?,?)",
    [W_INS_BODY] = "INSERT OR IGNORE INTO body(id, data) VALUES(?1, ?2)",
};

/* The commit's statements, and the largest row they can write. */
store_err sqlite__batch_prepare(store *s)
{
    int max_len = sqlite3_limit(s->wdb, SQLITE_LIMIT_LENGTH, -1);
    s->max_row = max_len > 1024 ? (size_t)max_len - 1024 : 0; /* room for the other columns */
    for (int i = 0; i < W__COUNT; i++)
        if (sqlite3_prepare_v3(s->wdb, writer_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->w[i],
                               NULL) != SQLITE_OK)
            return sqlite__db_err(s, s->wdb, "prepare");
    return STORE_OK;
}

int sqlite__write_meta(store *s, const char *key, int64_t v)
{
    sqlite3_stmt *st = s->w[W_META];
    int rc = sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, v);
    return rc == SQLITE_OK ? step_done(st) : rc;
}

/* ---- the commit work (pool thread: touches wdb, the batch, and immutable record fields) ---- */

/* Bind the message of an OP_ENQ as the INS_COLS values from parameter base + 1 on. */
static int bind_msg(sqlite3_stmt *st, int base, const op *o)
{
    const store__rec *r = o->ptr;
    const squeue *q = r->q;
    int rc;
    /* r->data is never NULL, so an empty header block or body binds as an empty blob. */
    if ((rc = sqlite3_bind_int64(st, base + 1, (sqlite3_int64)r->link.id)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, base + 2, QID(q))) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, base + 3, r->ord)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, base + 4, r->redeliveries)) != SQLITE_OK ||
        (rc = sqlite3_bind_blob64(st, base + 5, r->data, r->hlen, SQLITE_STATIC)) != SQLITE_OK)
        return rc;
    return sqlite3_bind_blob64(st, base + 6, r->data + r->hlen, r->blen, SQLITE_STATIC);
}

/* Run st with the int64 parameters v[0..n) from ?1 on. */
static int run_ints(sqlite3_stmt *st, const int64_t *v, int n)
{
    int rc = SQLITE_OK;
    for (int i = 0; rc == SQLITE_OK && i < n; i++)
        rc = sqlite3_bind_int64(st, i + 1, v[i]);
    return rc == SQLITE_OK ? step_done(st) : rc;
}

/* Message id's entries in the schedule (at not_before, or none: 0; had: it has one now) and
 * in expiry (at expires, or none), as its row (of ord) now says. */
static int set_times(store *s, int64_t id, int64_t ord, uint64_t not_before, int had,
                     uint64_t expires)
{
    int rc = SQLITE_OK;
    const int64_t sv[] = { id, (int64_t)not_before, band_of(ord) };
    const int64_t ev[] = { id, (int64_t)expires };
    if (not_before)
        rc = run_ints(s->w[W_SCHED_SET], sv, 3);
    else if (had)
        rc = run_ints(s->w[W_SCHED_DEL], &id, 1);
    if (rc == SQLITE_OK && expires)
        rc = run_ints(s->w[W_EXPIRY_SET], ev, 2);
    return rc;
}

/* The body row of a message of enqueue_shared, unless an earlier one of them wrote it. */
static int insert_body(store *s, const op *o)
{
    const store__rec *r = o->ptr;
    sqlite3_stmt *st = s->w[W_INS_BODY];
    int rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)o->not_before);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob64(st, 2, r->data + r->hlen, r->blen, SQLITE_STATIC);
    return rc == SQLITE_OK ? step_done(st) : rc;
}

/* An OP_ENQ of a message with any attributes: one row (naming its body row when it has
 * one), and its times. */
static int insert_one(store *s, const op *o)
{
    const store__rec *r = o->ptr;
    sqlite3_stmt *st = s->w[o->not_before ? W_INS_SHARED : W_INS_MSG];
    int rc = o->not_before ? insert_body(s, o) : SQLITE_OK;
    if (rc == SQLITE_OK)
        rc = bind_msg(st, 0, o);
    if (rc == SQLITE_OK && o->not_before &&
        ((rc = sqlite3_bind_zeroblob(st, 6, 0)) != SQLITE_OK ||
         (rc = sqlite3_bind_int64(st, 8, (sqlite3_int64)o->not_before)) != SQLITE_OK))
        return rc;
    if (rc == SQLITE_OK &&
        (rc = sqlite3_bind_int64(st, 7, (sqlite3_int64)r->not_before)) == SQLITE_OK)
        rc = step_done(st);
    if (rc == SQLITE_OK)
        rc = set_times(s, o->key, r->ord, r->not_before, 0, r->expires);
    return rc;
}

/* An OP_ACK: the row, and its entries in the schedule and expiry. */
static int delete_one(store *s, const op *o)
{
    int rc = run_ints(s->w[W_DEL_MSG], &o->key, 1);
    if (rc == SQLITE_OK && (o->flags & OPF_SCHED))
        rc = run_ints(s->w[W_SCHED_DEL], &o->key, 1);
    if (rc == SQLITE_OK && (o->flags & OPF_EXPIRY))
        rc = run_ints(s->w[W_EXPIRY_DEL], &o->key, 1);
    return rc;
}

/* An enqueue without a time or an expiry: its row is all there is of it. */
static int plain(const op *o)
{
    const store__rec *r = o->ptr;
    return o->kind == OP_ENQ && !r->not_before && !r->expires && !o->not_before;
}

/* An OP_QNEW: the queue's row. */
static int apply_qnew(store *s, const op *o)
{
    const squeue *q = o->ptr;
    sqlite3_stmt *st = s->w[W_INS_QUEUE];
    int rc;
    if ((rc = sqlite3_bind_int64(st, 1, o->key)) != SQLITE_OK ||
        (rc = sqlite3_bind_blob64(st, 2, q->name, q->link.len, SQLITE_STATIC)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, 3, o->ord)) != SQLITE_OK)
        return rc;
    return step_done(st);
}

static int apply_op(store *s, const op *o)
{
    switch (o->kind) {
    case OP_ENQ:
        return insert_one(s, o);
    case OP_ACK:
        return delete_one(s, o);
    case OP_REQUEUE: {
        const int64_t v[] = { o->key, o->ord, o->redeliveries, (int64_t)o->not_before };
        int rc = run_ints(s->w[W_REQUEUE], v, 4);
        return rc == SQLITE_OK
                   ? set_times(s, o->key, o->ord, o->not_before, o->flags & OPF_SCHED, 0)
                   : rc;
    }
    case OP_QNEW:
        return apply_qnew(s, o);
    case OP_FRONT: {
        const int64_t v[] = { o->key, o->redeliveries, o->ord }, v4[] = { o->key, o->ord };
        if (o->redeliveries == STORE_PRIORITY_DEFAULT)
            return run_ints(s->w[W_FRONT4], v4, 2);
        return run_ints(s->w[W_FRONT], v, 3);
    }
    case OP_QDEL: {
        int rc = run_ints(s->w[W_DEL_QUEUE], &o->key, 1);
        if (rc == SQLITE_OK && o->flags) /* it had fronts of other priorities */
            rc = run_ints(s->w[W_DEL_FRONTS], &o->key, 1);
        return rc;
    }
    default:
        return SQLITE_MISUSE;
    }
}

void sqlite__commit_work(uv_work_t *req)
{
    store *s = req->data;
    batch *b = s->fly;
    const char *what = "begin";
    int rc = step_done(s->w[W_BEGIN]);
    for (size_t i = 0; rc == SQLITE_OK && i < b->nops; i++) {
        what = "write";
        size_t j = i;
        /* Acks of plain messages of consecutive ids (a FIFO consumer's) go as one range: one
         * statement. */
        while (b->ops[i].kind == OP_ACK && !b->ops[i].flags && j + 1 < b->nops &&
               b->ops[j + 1].kind == OP_ACK && !b->ops[j + 1].flags &&
               b->ops[j + 1].key == b->ops[j].key + 1)
            j++;
        if (j > i) {
            sqlite3_stmt *st = s->w[W_DEL_RANGE];
            if ((rc = sqlite3_bind_int64(st, 1, b->ops[i].key)) == SQLITE_OK &&
                (rc = sqlite3_bind_int64(st, 2, b->ops[j].key)) == SQLITE_OK)
                rc = step_done(st);
            i = j;
            continue;
        }
        /* A run of INS_ROWS plain enqueues: one statement. */
        while (plain(&b->ops[i]) && j + 1 < b->nops && j + 1 < i + INS_ROWS &&
               plain(&b->ops[j + 1]))
            j++;
        if (j == i + INS_ROWS - 1) {
            sqlite3_stmt *st = s->w[W_INS_MSGS];
            for (size_t k = 0; rc == SQLITE_OK && k < INS_ROWS; k++)
                rc = bind_msg(st, (int)k * INS_COLS, &b->ops[i + k]);
            if (rc == SQLITE_OK)
                rc = step_done(st);
            i = j;
            continue;
        }
        rc = apply_op(s, &b->ops[i]);
    }
    if (rc == SQLITE_OK) {
        what = "write";
        if ((rc = sqlite__write_meta(s, "next_id", (int64_t)b->next_id)) == SQLITE_OK)
            rc = sqlite__write_meta(s, "next_qid", b->next_qid);
    }
    if (rc == SQLITE_OK) {
        what = "commit";
        rc = step_done(s->w[W_COMMIT]);
    }
    if (rc != SQLITE_OK) {
        b->failed = 1;
        snprintf(b->err, sizeof b->err, "%s: %s", what, sqlite3_errmsg(s->wdb));
        /* Nothing of the batch may stay: roll back whatever the failure left open. */
        if (!sqlite3_get_autocommit(s->wdb))
            (void)step_done(s->w[W_ROLLBACK]);
    }
    /* Blobs were bound SQLITE_STATIC: unbind before the records can be freed. */
    (void)sqlite3_clear_bindings(s->w[W_INS_MSG]);
    (void)sqlite3_clear_bindings(s->w[W_INS_MSGS]);
    (void)sqlite3_clear_bindings(s->w[W_INS_QUEUE]);
    (void)sqlite3_clear_bindings(s->w[W_INS_SHARED]);
    (void)sqlite3_clear_bindings(s->w[W_INS_BODY]);
}

/* ---- completion (loop thread) ---- */

static void batch_reset(batch *b)
{
    b->nops = 0;
    b->recs.head = b->recs.tail = NULL;
    b->max_id = 0;
    b->failed = 0;
    b->err[0] = '\0';
    b->cb = NULL;
    b->arg = NULL;
}

/* A record of a failed batch is dropped: the queue counts it no more. */
static void drop_pending(store *s, store__rec *r)
{
    squeue *q = r->q;
    q->count--;
    q->bytes -= ROW_SIZE(r);
    q->band[r->prio].npending--;
    if (r->not_before)
        q->nlate--;
    sqlite__rec_free(s, r);
    /* Dropping the queue needs an operation slot; without one the queue just stays. */
    if (reserve_ops(s->open, 1) == 0)
        sqlite__queue_drop_unused(s, q);
}

void sqlite__commit_done(uv_work_t *req, int status)
{
    store *s = req->data;
    batch *b = s->fly;
    int failed = b->failed || status != 0;
    if (failed) {
        if (b->failed)
            sqlite__set_err(s, "commit failed: %s", b->err);
        else
            sqlite__set_err(s, "commit failed: %s", uv_strerror(status));
        s->bytes_stale = 1; /* its acks are done in memory only: see sqlite_recover.c */
    }
    /* Fronts first: the queues they name stay until this. */
    sqlite__fronts_done(s, b, failed);
    sqlite__ghosts_done(s, b, failed);
    /* Failed: the batch's messages are dropped; its acks and requeues stay done in memory
     * (the file still has them as they were, so a restart redelivers: at-least-once). */
    while (b->recs.head) {
        store__rec *r = store__container_of(b->recs.head, store__rec, on);
        store__list_unlink(&b->recs, &r->on);
        if (failed)
            drop_pending(s, r);
        else
            sqlite__make_ready(s, r);
    }
    if (!failed) {
        if (b->max_id > s->committed_max)
            s->committed_max = b->max_id;
        s->stored_next_id = b->next_id;
    }
    store_commit_cb cb = b->cb;
    void *arg = b->arg;
    batch_reset(b);
    s->fly = NULL;
    /* Last: the callback may commit again or close the store. */
    if (cb)
        cb(arg, failed ? STORE_E_IO : STORE_OK);
}
