/* sqlite_batch.c: the SQLite backend's group commit: every write between two commits is an
 * operation in the open batch; a commit applies the batch in one transaction on a libuv pool
 * thread and settles it back on the loop (records become ready, or are dropped if it failed).
 *
 * Two batches take turns: while one is in flight (s->fly), new writes fill the other, so the
 * loop never waits for a sync. The worker touches only the writer connection, the batch, and
 * fields of its records and queues that do not change while the batch is in flight.
 * The commit keeps statements few: runs of enqueues go INS_ROWS to an INSERT, runs of acks
 * of consecutive ids (a FIFO consumer's) as one ranged DELETE. Inserts are OR ROLLBACK: any
 * failure fails the whole batch anyway, and that spares SQLite a statement journal (a copy
 * of every page a multi-row INSERT changes, spilled to a temporary file past 64 KiB: more
 * bytes per message than the WAL gets).
 */
#include "sqlite_int.h"

#include <stdio.h>

#define ROW "(?,?,?,?,?,?)"
#define ROW8 ROW "," ROW "," ROW "," ROW "," ROW "," ROW "," ROW "," ROW
enum { INS_ROWS = 16, INS_COLS = 6 };

static const char *const writer_sql[W__COUNT] = {
    [W_BEGIN] = "BEGIN IMMEDIATE",
    [W_COMMIT] = "COMMIT",
    [W_ROLLBACK] = "ROLLBACK",
    /* OR ROLLBACK: a failing insert ends the transaction at once (see the top of the file). */
    [W_INS_MSG] = "INSERT OR ROLLBACK INTO msg(id, queue, ord, redeliveries, headers, body)"
                  " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [W_DEL_MSG] = "DELETE FROM msg WHERE id = ?1",
    [W_REQUEUE] = "UPDATE msg SET ord = ?2, redeliveries = ?3, not_before = ?4 WHERE id = ?1",
    /* Each batch writing to a queue writes its row again (see sq_enqueue); REPLACE lets a
     * row of the same name left by a failed batch give way (see sqlite__queue_drop_unused). */
    [W_INS_QUEUE] = "INSERT OR REPLACE INTO queue(id, name, front) VALUES(?1, ?2, ?3)",
    [W_DEL_QUEUE] = "DELETE FROM queue WHERE id = ?1",
    [W_META] = "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)",
    [W_FRONT] = "UPDATE queue SET front = ?2 WHERE id = ?1",
    [W_BUMP] = "UPDATE msg SET redeliveries = redeliveries + 1 WHERE id = ?1",
    /* Only for ids that are all acked in the batch (see sqlite__commit_work). */
    [W_DEL_RANGE] = "DELETE FROM msg WHERE id BETWEEN ?1 AND ?2",
    /* INS_ROWS messages in one statement: a burst of SENDs costs fewer statement runs. */
    [W_INS_MSGS] = "INSERT OR ROLLBACK INTO msg(id, queue, ord, redeliveries, headers, body)"
                   " VALUES" ROW8 "," ROW8,
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

/* Bind the message of an OP_ENQ as the six values from parameter base + 1 on. */
static int bind_msg(sqlite3_stmt *st, int base, const op *o)
{
    const srec *r = o->ptr;
    int rc;
    /* r->data is never NULL, so an empty header block or body binds as an empty blob. */
    if ((rc = sqlite3_bind_int64(st, base + 1, (sqlite3_int64)r->link.id)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, base + 2, r->q->qid)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, base + 3, r->ord)) != SQLITE_OK ||
        (rc = sqlite3_bind_int64(st, base + 4, r->redeliveries)) != SQLITE_OK ||
        (rc = sqlite3_bind_blob64(st, base + 5, r->data, r->hlen, SQLITE_STATIC)) != SQLITE_OK)
        return rc;
    return sqlite3_bind_blob64(st, base + 6, r->data + r->hlen, r->blen, SQLITE_STATIC);
}

static int apply_op(store *s, const op *o)
{
    sqlite3_stmt *st;
    int rc;
    switch (o->kind) {
    case OP_ENQ:
        st = s->w[W_INS_MSG];
        rc = bind_msg(st, 0, o);
        if (rc == SQLITE_OK)
            rc = step_done(st);
        break;
    case OP_ACK:
        st = s->w[W_DEL_MSG];
        rc = sqlite3_bind_int64(st, 1, o->key);
        if (rc == SQLITE_OK)
            rc = step_done(st);
        break;
    case OP_REQUEUE:
        st = s->w[W_REQUEUE];
        if ((rc = sqlite3_bind_int64(st, 1, o->key)) != SQLITE_OK ||
            (rc = sqlite3_bind_int64(st, 2, o->ord)) != SQLITE_OK ||
            (rc = sqlite3_bind_int64(st, 3, o->redeliveries)) != SQLITE_OK ||
            (rc = sqlite3_bind_int64(st, 4, (sqlite3_int64)o->not_before)) != SQLITE_OK)
            break;
        rc = step_done(st);
        break;
    case OP_QNEW: {
        const squeue *q = o->ptr;
        st = s->w[W_INS_QUEUE];
        if ((rc = sqlite3_bind_int64(st, 1, q->qid)) != SQLITE_OK ||
            (rc = sqlite3_bind_blob64(st, 2, q->name, q->link.len, SQLITE_STATIC)) !=
                SQLITE_OK ||
            (rc = sqlite3_bind_int64(st, 3, o->ord)) != SQLITE_OK)
            break;
        rc = step_done(st);
        break;
    }
    case OP_FRONT:
        st = s->w[W_FRONT];
        if ((rc = sqlite3_bind_int64(st, 1, o->key)) != SQLITE_OK ||
            (rc = sqlite3_bind_int64(st, 2, o->ord)) != SQLITE_OK)
            break;
        rc = step_done(st);
        break;
    case OP_QDEL:
        st = s->w[W_DEL_QUEUE];
        rc = sqlite3_bind_int64(st, 1, o->key);
        if (rc == SQLITE_OK)
            rc = step_done(st);
        break;
    default:
        rc = SQLITE_MISUSE;
        break;
    }
    return rc;
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
        /* Acks of consecutive ids (a FIFO consumer's) go as one range: one statement. */
        while (b->ops[i].kind == OP_ACK && j + 1 < b->nops && b->ops[j + 1].kind == OP_ACK &&
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
        /* A run of INS_ROWS enqueues: one statement. */
        while (b->ops[i].kind == OP_ENQ && j + 1 < b->nops && j + 1 < i + INS_ROWS &&
               b->ops[j + 1].kind == OP_ENQ)
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
    }
    /* Fronts first: the queues they name stay until this. */
    sqlite__fronts_done(s, b, failed);
    /* Failed: the batch's messages are dropped; its acks and requeues stay done in memory
     * (the file still has them as they were, so a restart redelivers: at-least-once). */
    while (b->recs.head) {
        srec *r = store__container_of(b->recs.head, srec, on);
        store__list_unlink(&b->recs, &r->on);
        if (!failed) {
            sqlite__make_ready(s, r);
            continue;
        }
        squeue *q = r->q;
        store__ids_remove(&s->ids, &r->link);
        q->nrecs--;
        s->bytes -= REC_SIZE(r);
        free(r);
        /* Dropping the queue needs an operation slot; without one the queue just stays. */
        if (!q->nrecs && !q->spilled && reserve_ops(s->open, 1) == 0)
            sqlite__queue_drop_unused(s, q);
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
