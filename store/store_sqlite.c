/* store_sqlite.c: the SQLite backend of store.h: queues that survive a restart.
 *
 * Two connections, each used by one thread at a time. The writer belongs to the loop thread
 * only inside open and close; otherwise only the commit work (a libuv pool thread) touches
 * it, one commit at a time, handed over by uv_queue_work and back by its after callback.
 * The reader belongs to the loop thread and only runs short, indexed reads (paging); WAL
 * lets it read while the writer commits, so the loop never waits for a sync. All other state
 * lives on the loop thread. Every write between two commits is recorded as an operation in
 * the open batch; a commit hands the batch to the worker, which applies it in one
 * transaction, while new writes fill the other batch. An flock on "<path>-lock" keeps other
 * processes out (SQLite's exclusive locking mode would lock out our own reader too).
 * The commit keeps statements few: runs of enqueues go INS_ROWS to an INSERT, runs of acks
 * of consecutive ids (a FIFO consumer's) as one ranged DELETE. Inserts are OR ROLLBACK: any
 * failure fails the whole batch anyway, and that spares SQLite a statement journal (a copy
 * of every page a multi-row INSERT changes, spilled to a temporary file past 64 KiB: more
 * bytes per message than the WAL gets).
 *
 * Queue order is (ord, id): a fresh message gets ord = id (above every other); a requeued
 * one keeps its ord if that is already below the head's, else takes head's - 1. So the
 * window is sorted by (ord, id), a restart reads the same order back, and messages taken but
 * not acked come back where they were taken from. Per queue, the ready messages are the
 * window (in memory) followed by `spilled` more in the file only, all above the frontier;
 * every message at or below the frontier is in memory (window or taken) or acked. Pending
 * messages are only in memory; paging never reads them early because it is bounded by the
 * largest id whose commit has completed (committed_max).
 *
 * Redelivery after a crash. Taking is not a write per message; instead each queue row keeps
 * a bound `front`: every message ever handed out has ord <= front in the file. take hands
 * out a message only when its ord is within the durable front; otherwise it puts a raised
 * front (ord + LOOKAHEAD) in the open batch and answers STORE_E_AGAIN. Takes raise the front
 * ahead of time (when they come within LOOKAHEAD / 2 of it), so in a steady flow no take
 * waits, and a new queue starts with its front LOOKAHEAD ids ahead. The meta key "open" is 1
 * while a store is open and 0 after a clean close (which writes the taken messages back with
 * redeliveries + 1). Opening a file still marked open means a crash: every message with
 * ord <= its queue's front comes back with redeliveries + 1 (paged in with the bump): all
 * that were handed out, and at most LOOKAHEAD ids beyond them that were not. A clean close
 * after such an open writes those counts down before marking the file closed.
 */
#include "store_sqlite.h"

#include "index.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* 'STMQ': marks a file as ours, so a foreign SQLite database is refused, not altered. */
#define APP_ID 0x53544d51

/* Page size of a new file. Rows of a kilobyte or so fit many to a page, so a commit writes
 * a few large pages rather than many small ones: far fewer writes per message. */
#define PAGE_SIZE 16384

/* WAL bytes before an automatic checkpoint. Larger than SQLite's default (1000 pages of
 * 4 KiB) so the copy back into the database (and its sync) is paid less often. */
#define WAL_CHECKPOINT_BYTES (32 << 20)

/* How far (in message ids) a queue's recorded front runs ahead of its takes. */
#define LOOKAHEAD STORE_SQLITE_LOOKAHEAD

enum { REC_PENDING, REC_READY, REC_TAKEN };

/* Forward migrations: migrations[i] takes the schema from version i to i + 1. Only ever
 * append. */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE queue(id INTEGER PRIMARY KEY, name BLOB NOT NULL UNIQUE);"
    "CREATE TABLE msg(id INTEGER PRIMARY KEY, queue INTEGER NOT NULL, ord INTEGER NOT NULL,"
    " redeliveries INTEGER NOT NULL, headers BLOB NOT NULL, body BLOB NOT NULL);"
    "CREATE INDEX msg_queue_ord ON msg(queue, ord);"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;",
    /* 1 -> 2: the bound of handed-out messages per queue (see the top of the file). */
    "ALTER TABLE queue ADD COLUMN front INTEGER NOT NULL DEFAULT 0;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

typedef struct squeue squeue;

typedef struct srec {
    store__idlink link; /* in the id index; link.id is the message id */
    store__dlink on;    /* on a batch's pending list or its queue's window */
    squeue *q;
    int64_t ord;
    uint32_t redeliveries;
    int state;
    size_t hlen, blen;
    char data[]; /* header block, body, NUL */
} srec;

struct squeue {
    store__qlink link; /* in the name index; names name[] */
    store__dlist win;  /* the window: ready records in memory, in queue order */
    size_t nwin;
    size_t win_bytes;  /* header block and body bytes of the window */
    uint64_t spilled;  /* ready records in the file only, after the window */
    int64_t front_ord; /* the frontier: (ord, id) of the last record brought into memory */
    uint64_t front_id;
    size_t nrecs;      /* records in memory in any state */
    int64_t qid;       /* row id in the queue table */
    uint64_t row_seq;  /* the last batch that writes the queue's row */
    int64_t front_durable; /* front as committed: takes stay at or below it */
    int64_t front_sent;    /* the largest front put in a batch (open or in flight) */
    int64_t front_open;    /* the largest front put in the open batch (fop_seq) */
    uint64_t fop_seq;      /* the batch front_open belongs to */
    int64_t crash_front;   /* after a crash: ord bound of possibly delivered messages */
    int64_t tmax;          /* the largest ord taken */
    size_t fpins;          /* OP_FRONT operations naming this queue (open or in flight) */
    char name[]; /* NUL-terminated, link.len bytes before the NUL */
};

enum { OP_ENQ, OP_ACK, OP_REQUEUE, OP_QNEW, OP_QDEL, OP_FRONT };

/* One write to replay in the commit transaction. The pointers stay valid while the batch is
 * open or in flight: a pending record cannot be taken or acked, a queue with a pending
 * record cannot be dropped, nor one that an OP_FRONT names (fpins). */
typedef struct op {
    int kind;
    uint32_t redeliveries; /* REQUEUE */
    int64_t key; /* message id (ENQ, ACK, REQUEUE), queue id (QNEW, QDEL, FRONT) */
    int64_t ord; /* ord (ENQ, REQUEUE), front (QNEW, FRONT) */
    const void *ptr; /* srec (ENQ), squeue (QNEW; FRONT: read on the loop thread only) */
} op;

typedef struct batch {
    op *ops;
    size_t nops, cap;
    store__dlist recs; /* its enqueued records, in id order */
    uint64_t max_id;   /* largest id enqueued in it, 0 when none */
    /* Counters as they were when the batch was cut, stored with it. */
    uint64_t next_id;
    int64_t next_qid;
    /* Written by the worker, read by the loop after the hand-back. */
    int failed;
    char err[256];
    store_commit_cb cb;
    void *arg;
} batch;

enum {
    W_BEGIN,
    W_COMMIT,
    W_ROLLBACK,
    W_INS_MSG,
    W_DEL_MSG,
    W_REQUEUE,
    W_INS_QUEUE,
    W_DEL_QUEUE,
    W_META,
    W_FRONT,
    W_BUMP,
    W_DEL_RANGE,
    W_INS_MSGS,
    W__COUNT
};

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
    [W_REQUEUE] = "UPDATE msg SET ord = ?2, redeliveries = ?3 WHERE id = ?1",
    /* Each batch writing to a queue writes its row again (see sq_enqueue); REPLACE lets a
     * row of the same name left by a failed batch give way (see drop_queue_if_unused). */
    [W_INS_QUEUE] = "INSERT OR REPLACE INTO queue(id, name, front) VALUES(?1, ?2, ?3)",
    [W_DEL_QUEUE] = "DELETE FROM queue WHERE id = ?1",
    [W_META] = "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)",
    [W_FRONT] = "UPDATE queue SET front = ?2 WHERE id = ?1",
    [W_BUMP] = "UPDATE msg SET redeliveries = redeliveries + 1 WHERE id = ?1",
    /* Only for ids that are all acked in the batch (see commit_work). */
    [W_DEL_RANGE] = "DELETE FROM msg WHERE id BETWEEN ?1 AND ?2",
    /* INS_ROWS messages in one statement: a burst of SENDs costs fewer statement runs. */
    [W_INS_MSGS] = "INSERT OR ROLLBACK INTO msg(id, queue, ord, redeliveries, headers, body)"
                   " VALUES" ROW8 "," ROW8,
};

struct store {
    uv_loop_t *loop;
    sqlite3 *wdb; /* writer: see the top of the file for who may touch it when */
    sqlite3 *rdb; /* reader: loop thread only */
    sqlite3_stmt *w[W__COUNT];
    sqlite3_stmt *page; /* on rdb */
    int lock_fd;

    store__idhash ids;
    store__qhash queues;

    batch bat[2];
    batch *open; /* collects writes */
    batch *fly;  /* being committed, NULL when none */
    uv_work_t work;

    uint64_t open_seq; /* number of the open batch */
    uint64_t next_id;
    uint64_t committed_max; /* largest id whose commit completed */
    uint64_t stored_next_id; /* next_id as the file has it */
    int64_t next_qid;
    size_t max_row; /* header block + body bytes one row can hold */
    size_t bytes;   /* records and queues allocated (resident) */
    int unclean;    /* the file was not closed cleanly: crash fronts apply */
    int opened;     /* open completed: close may mark the file closed */
    char err[512];
};

static void set_err(store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define REC_SIZE(r) (sizeof *(r) + (r)->hlen + (r)->blen + 1)
#define QUEUE_SIZE(q) (sizeof *(q) + (q)->link.len + 1)

static int64_t add_sat(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static void set_err(store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
}

static store_err db_err(store *s, sqlite3 *db, const char *what)
{
    set_err(s, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
    return STORE_E_IO;
}

/* ---- the indexes (index.h) ---- */

static srec *find_rec(const store *s, uint64_t id)
{
    return store__entry(store__ids_find(&s->ids, id), srec, link);
}

/* The record at the head of q's window, or NULL. */
static srec *win_head(const squeue *q)
{
    return store__entry(q->win.head, srec, on);
}

static squeue *find_queue(const store *s, const char *name, size_t len, uint64_t h)
{
    return store__entry(store__queues_find(&s->queues, name, len, h), squeue, link);
}

static void unlink_queue(store *s, squeue *q)
{
    store__queues_remove(&s->queues, &q->link);
    s->bytes -= QUEUE_SIZE(q);
    free(q);
}

/* A new queue, linked into the index. The caller has made room (store__queues_reserve). */
static squeue *add_queue(store *s, const char *name, size_t len, uint64_t h, int64_t qid)
{
    squeue *q = calloc(1, sizeof *q + len + 1);
    if (!q)
        return NULL;
    memcpy(q->name, name, len);
    q->qid = qid;
    q->front_ord = INT64_MIN;
    /* A new queue may hand out the next LOOKAHEAD ids at once (its row carries that). */
    q->front_durable = q->front_sent = add_sat((int64_t)s->next_id, LOOKAHEAD);
    q->crash_front = INT64_MIN;
    q->tmax = INT64_MIN;
    store__queues_insert(&s->queues, &q->link, q->name, len, h);
    s->bytes += QUEUE_SIZE(q);
    return q;
}

/* ---- batches ---- */

/* Room for n more operations, so a write either records all its operations or none. */
static int reserve_ops(batch *b, size_t n)
{
    if (b->cap - b->nops >= n)
        return 0;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap - b->nops < n)
        ncap *= 2;
    op *nops = realloc(b->ops, ncap * sizeof *nops);
    if (!nops)
        return -1;
    b->ops = nops;
    b->cap = ncap;
    return 0;
}

static void push_op(batch *b, int kind, int64_t key, int64_t ord, uint32_t redeliveries,
                    const void *ptr)
{
    assert(b->nops < b->cap);
    op *o = &b->ops[b->nops++];
    o->kind = kind;
    o->key = key;
    o->ord = ord;
    o->redeliveries = redeliveries;
    o->ptr = ptr;
}

/* A queue with nothing left in memory or in the file is forgotten, here and (with the
 * batch) in the file. The caller reserved one operation. If that batch fails, the row stays
 * behind; a later queue of the same name replaces it, and open drops messages whose queue
 * row is gone (their acks were made, only not stored). */
static void drop_queue_if_unused(store *s, squeue *q)
{
    if (q->nrecs || q->spilled || q->fpins)
        return;
    push_op(s->open, OP_QDEL, q->qid, 0, 0, NULL);
    unlink_queue(s, q);
}

/* Put front (if higher than any sent) for q in the open batch. -1: out of memory. */
static int push_front(store *s, squeue *q, int64_t front)
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

/* ---- the commit work (pool thread: touches wdb, the batch, and immutable record fields) ---- */

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    (void)sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int bind_meta(sqlite3_stmt *st, const char *key, int64_t v)
{
    int rc = sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, v);
    return rc == SQLITE_OK ? step_done(st) : rc;
}

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
            (rc = sqlite3_bind_int64(st, 3, o->redeliveries)) != SQLITE_OK)
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

static void commit_work(uv_work_t *req)
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
        sqlite3_stmt *m = s->w[W_META];
        if ((rc = bind_meta(m, "next_id", (int64_t)b->next_id)) == SQLITE_OK)
            rc = bind_meta(m, "next_qid", b->next_qid);
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

/* Committed: each record joins its queue's window, or stays only in the file if the window
 * is full or older messages of the queue are already only in the file (order). */
static void make_ready(store *s, srec *r)
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

static void commit_done(uv_work_t *req, int status)
{
    store *s = req->data;
    batch *b = s->fly;
    int failed = b->failed || status != 0;
    if (failed) {
        if (b->failed)
            set_err(s, "commit failed: %s", b->err);
        else
            set_err(s, "commit failed: %s", uv_strerror(status));
    }
    /* Fronts: durable now, or (failed) as if never sent. The queues stay until this. */
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
            drop_queue_if_unused(s, q);
    }
    /* Failed: the batch's messages are dropped; its acks and requeues stay done in memory
     * (the file still has them as they were, so a restart redelivers: at-least-once). */
    while (b->recs.head) {
        srec *r = store__container_of(b->recs.head, srec, on);
        store__list_unlink(&b->recs, &r->on);
        if (!failed) {
            make_ready(s, r);
            continue;
        }
        squeue *q = r->q;
        store__ids_remove(&s->ids, &r->link);
        q->nrecs--;
        s->bytes -= REC_SIZE(r);
        free(r);
        /* Dropping the queue needs an operation slot; without one the queue just stays. */
        if (!q->nrecs && !q->spilled && reserve_ops(s->open, 1) == 0)
            drop_queue_if_unused(s, q);
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

/* ---- paging (loop thread, reader connection) ---- */

/* Read up to a window of q's spilled messages into its window. */
static store_err page_in(store *s, squeue *q)
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
        return db_err(s, s->rdb, "read");
    store_err err = STORE_OK;
    size_t got = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
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
        /* Possibly handed out before a crash: counted as a delivery. */
        if (r->ord <= q->crash_front && r->redeliveries < UINT32_MAX)
            r->redeliveries++;
        r->state = REC_READY;
        r->hlen = hlen;
        r->blen = blen;
        store__copy_msg(r->data, h, hlen, body, blen);
        store__ids_insert(&s->ids, &r->link);
        s->bytes += REC_SIZE(r);
        store__list_append(&q->win, &r->on);
        q->nwin++;
        q->win_bytes += hlen + blen;
        q->nrecs++;
        q->spilled--;
        q->front_ord = r->ord;
        q->front_id = r->link.id;
        got++;
        if (q->win_bytes >= STORE_SQLITE_WINDOW_BYTES)
            break;
    }
    if (err == STORE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = db_err(s, s->rdb, "read");
    (void)sqlite3_reset(st); /* ends the read transaction: the WAL may be checkpointed past it */
    /* The file has fewer than counted: only if something else changed it. Believe the file. */
    if (err == STORE_OK && got < want && q->win_bytes < STORE_SQLITE_WINDOW_BYTES)
        q->spilled = 0;
    return err;
}

/* ---- store_ops ---- */

static int write_rec_count(store *s, const srec *r, uint32_t red)
{
    sqlite3_stmt *st = s->w[W_REQUEUE];
    int rc;
    if ((rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)r->link.id)) == SQLITE_OK &&
        (rc = sqlite3_bind_int64(st, 2, r->ord)) == SQLITE_OK &&
        (rc = sqlite3_bind_int64(st, 3, red)) == SQLITE_OK)
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
static void close_cleanly(store *s)
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
            if (r && r->state == REC_READY)
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
        rc = bind_meta(s->w[W_META], "next_id", (int64_t)s->next_id);
    if (rc == SQLITE_OK)
        rc = bind_meta(s->w[W_META], "open", 0);
    if (rc == SQLITE_OK)
        rc = step_done(s->w[W_COMMIT]);
    if (rc != SQLITE_OK && !sqlite3_get_autocommit(s->wdb))
        (void)step_done(s->w[W_ROLLBACK]);
}

static void sq_close(store *s)
{
    if (!s)
        return;
    assert(!s->fly);
    close_cleanly(s);
    if (s->page)
        (void)sqlite3_finalize(s->page);
    for (int i = 0; i < W__COUNT; i++)
        if (s->w[i])
            (void)sqlite3_finalize(s->w[i]);
    /* The reader first: the last connection to close checkpoints and removes the WAL. */
    if (s->rdb)
        (void)sqlite3_close(s->rdb);
    if (s->wdb)
        (void)sqlite3_close(s->wdb);
    if (s->lock_fd >= 0)
        (void)close(s->lock_fd);
    store__ids_destroy(&s->ids, offsetof(srec, link));
    store__queues_destroy(&s->queues, offsetof(squeue, link));
    free(s->bat[0].ops);
    free(s->bat[1].ops);
    free(s);
}

static store_err sq_enqueue(store *s, const char *queue, size_t queue_len, const char *headers,
                            size_t headers_len, const char *body, size_t body_len, uint64_t *id)
{
    if (!queue_len)
        return STORE_E_INVALID;
    if (headers_len > SIZE_MAX / 4 || body_len > SIZE_MAX / 4)
        return STORE_E_NOMEM;
    if (s->next_id > (uint64_t)INT64_MAX)
        return STORE_E_INVALID; /* the file keeps ids as signed 64-bit integers */
    /* Refused here rather than failing the whole batch at commit (SQLITE_TOOBIG). */
    if (headers_len + body_len > s->max_row)
        return STORE_E_INVALID;
    batch *b = s->open;
    if (reserve_ops(b, 2) != 0)
        return STORE_E_NOMEM;
    if (store__ids_reserve(&s->ids, 1) != STORE_OK)
        return STORE_E_NOMEM;
    uint64_t h = store__hash_name(queue, queue_len);
    squeue *q = find_queue(s, queue, queue_len, h);
    int fresh = 0;
    if (!q) {
        if (store__queues_reserve(&s->queues, 1) != STORE_OK)
            return STORE_E_NOMEM;
        q = add_queue(s, queue, queue_len, h, s->next_qid);
        if (!q)
            return STORE_E_NOMEM;
        fresh = 1;
    }
    srec *r = malloc(sizeof *r + headers_len + body_len + 1);
    if (!r) {
        if (fresh)
            unlink_queue(s, q);
        return STORE_E_NOMEM;
    }
    if (fresh)
        s->next_qid++;
    /* Each batch writing to a queue (re)writes its row: the row then never depends on an
     * earlier batch having succeeded. */
    if (q->row_seq != s->open_seq) {
        q->row_seq = s->open_seq;
        push_op(b, OP_QNEW, q->qid, q->front_sent, 0, q);
    }
    r->q = q;
    r->link.id = s->next_id++;
    r->ord = (int64_t)r->link.id;
    r->redeliveries = 0;
    r->state = REC_PENDING;
    r->hlen = headers_len;
    r->blen = body_len;
    store__copy_msg(r->data, headers, headers_len, body, body_len);
    store__ids_insert(&s->ids, &r->link);
    s->bytes += REC_SIZE(r);
    q->nrecs++;
    store__list_append(&b->recs, &r->on);
    b->max_id = r->link.id;
    push_op(b, OP_ENQ, (int64_t)r->link.id, r->ord, 0, r);
    *id = r->link.id;
    return STORE_OK;
}

static store_err sq_take(store *s, const char *queue, size_t queue_len, store_msg *out)
{
    squeue *q = find_queue(s, queue, queue_len, store__hash_name(queue, queue_len));
    if (!q)
        return STORE_E_EMPTY;
    if (!q->win.head && q->spilled) {
        store_err err = page_in(s, q);
        /* A partial page is still usable; only an empty window is an error. */
        if (err != STORE_OK && !q->win.head)
            return err;
    }
    srec *r = win_head(q);
    if (!r)
        return STORE_E_EMPTY;
    if (r->ord > q->front_durable) {
        /* Not yet recorded as deliverable: record it, hand it out after that commit. */
        if (r->ord > q->front_sent && push_front(s, q, add_sat(r->ord, LOOKAHEAD)) != 0)
            return STORE_E_NOMEM;
        return STORE_E_AGAIN;
    }
    store__list_unlink(&q->win, &r->on);
    q->nwin--;
    q->win_bytes -= r->hlen + r->blen;
    r->state = REC_TAKEN;
    if (r->ord > q->tmax)
        q->tmax = r->ord;
    /* Raise the front before takes reach it; without memory for that, a later take waits. */
    if (add_sat(q->tmax, LOOKAHEAD / 2) > q->front_sent)
        (void)push_front(s, q, add_sat(q->tmax, LOOKAHEAD));
    store__fill_msg(out, r->link.id, q->name, q->link.len, r->data, r->hlen, r->blen,
                    r->redeliveries);
    return STORE_OK;
}

static store_err sq_ack(store *s, uint64_t id)
{
    srec *r = find_rec(s, id);
    if (!r || r->state != REC_TAKEN)
        return STORE_E_NOTFOUND;
    /* Two slots: the delete, and maybe the queue's removal. */
    if (reserve_ops(s->open, 2) != 0)
        return STORE_E_NOMEM;
    push_op(s->open, OP_ACK, (int64_t)r->link.id, 0, 0, NULL);
    store__ids_remove(&s->ids, &r->link);
    squeue *q = r->q;
    q->nrecs--;
    s->bytes -= REC_SIZE(r);
    free(r);
    drop_queue_if_unused(s, q);
    return STORE_OK;
}

static store_err sq_requeue(store *s, uint64_t id)
{
    srec *r = find_rec(s, id);
    if (!r || r->state != REC_TAKEN)
        return STORE_E_NOTFOUND;
    squeue *q = r->q;
    const srec *head = win_head(q);
    if (head && head->ord == INT64_MIN)
        return STORE_E_INVALID; /* no position left in front: unreachable in practice */
    if (reserve_ops(s->open, 1) != 0)
        return STORE_E_NOMEM;
    r->state = REC_READY;
    if (r->redeliveries < UINT32_MAX)
        r->redeliveries++;
    if (head && head->ord <= r->ord)
        r->ord = head->ord - 1;
    push_op(s->open, OP_REQUEUE, (int64_t)r->link.id, r->ord, r->redeliveries, NULL);
    store__list_prepend(&q->win, &r->on);
    q->nwin++;
    q->win_bytes += r->hlen + r->blen;
    return STORE_OK;
}

static store_err sq_commit(store *s, store_commit_cb cb, void *arg)
{
    /* Even with nothing new, an earlier batch is not durable until its commit completes. */
    if (s->fly)
        return STORE_E_BUSY;
    batch *b = s->open;
    if (!b->nops)
        return STORE_DONE;
    b->cb = cb;
    b->arg = arg;
    b->next_id = s->next_id;
    b->next_qid = s->next_qid;
    s->fly = b;
    s->open = b == &s->bat[0] ? &s->bat[1] : &s->bat[0];
    s->open_seq++;
    s->work.data = s;
    int rc = uv_queue_work(s->loop, &s->work, commit_work, commit_done);
    if (rc != 0) {
        s->open = b;
        s->open_seq--;
        s->fly = NULL;
        b->cb = NULL;
        b->arg = NULL;
        set_err(s, "commit: %s", uv_strerror(rc));
        return STORE_E_IO;
    }
    return STORE_OK;
}

static size_t sq_depth(store *s, const char *queue, size_t queue_len)
{
    squeue *q = find_queue(s, queue, queue_len, store__hash_name(queue, queue_len));
    return q ? q->nwin + (size_t)q->spilled : 0;
}

/* ---- open ---- */

static int exec(store *s, const char *sql, const char *what)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->wdb, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        set_err(s, "%s: %s", what, msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return rc;
}

/* Run a one-value query on the writer. */
static int query_int(store *s, const char *sql, sqlite3_int64 *out, int *isnull)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->wdb, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            if (isnull)
                *isnull = sqlite3_column_type(st, 0) == SQLITE_NULL;
            *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            if (isnull)
                *isnull = 1;
            *out = 0;
            rc = SQLITE_OK;
        }
    }
    if (rc != SQLITE_OK)
        set_err(s, "%s: %s", sql, sqlite3_errmsg(s->wdb));
    (void)sqlite3_finalize(st);
    return rc;
}

static store_err take_lock(store *s, const char *path)
{
    size_t n = strlen(path);
    char *lp = malloc(n + sizeof "-lock");
    if (!lp)
        return STORE_E_NOMEM;
    memcpy(lp, path, n);
    memcpy(lp + n, "-lock", sizeof "-lock");
    store_err err = STORE_OK;
    s->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0) {
        set_err(s, "%s: %s", lp, strerror(errno));
        err = STORE_E_IO;
    } else if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            set_err(s, "%s is in use by another store (lock %s held)", path, lp);
        else
            set_err(s, "%s: lock: %s", lp, strerror(errno));
        err = STORE_E_IO;
    }
    free(lp);
    return err;
}

/* Is the file an empty database or a store this build can use? Only reads, so a file that
 * is refused is left exactly as it was. *ver: its schema version. */
static store_err check_file(store *s, sqlite3_int64 *ver)
{
    sqlite3_int64 app, ntables;
    /* The first read: a file that is not a database fails here. */
    if (query_int(s, "PRAGMA application_id", &app, NULL) != SQLITE_OK ||
        query_int(s, "PRAGMA user_version", ver, NULL) != SQLITE_OK ||
        query_int(s, "SELECT count(*) FROM sqlite_schema", &ntables, NULL) != SQLITE_OK)
        return STORE_E_IO;
    if ((app != 0 && app != APP_ID) || (app == 0 && ntables != 0) || *ver < 0) {
        set_err(s, "not a stompd store (another application's SQLite database)");
        return STORE_E_IO;
    }
    if (*ver > SCHEMA_VERSION) {
        set_err(s, "schema version %lld is newer than this build supports (%d): upgrade stompd",
                (long long)*ver, SCHEMA_VERSION);
        return STORE_E_IO;
    }
    return STORE_OK;
}

/* Bring the schema to SCHEMA_VERSION inside the open transaction. */
static store_err migrate(store *s)
{
    sqlite3_int64 ver;
    store_err err = check_file(s, &ver);
    if (err != STORE_OK)
        return err;
    for (sqlite3_int64 v = ver; v < SCHEMA_VERSION; v++)
        if (exec(s, migrations[v], "schema migration") != SQLITE_OK)
            return STORE_E_IO;
    if (ver < SCHEMA_VERSION) {
        char sql[96];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d; PRAGMA application_id = %d",
                 SCHEMA_VERSION, APP_ID);
        if (exec(s, sql, "schema version") != SQLITE_OK)
            return STORE_E_IO;
    }
    return STORE_OK;
}

static store_err load_meta(store *s)
{
    sqlite3_int64 v;
    int isnull;
    uint64_t next_id = 1;
    if (query_int(s, "SELECT value FROM meta WHERE key = 'next_id'", &v, &isnull) != SQLITE_OK)
        return STORE_E_IO;
    if (!isnull && v > 0)
        next_id = (uint64_t)v;
    if (query_int(s, "SELECT max(id) FROM msg", &v, &isnull) != SQLITE_OK)
        return STORE_E_IO;
    if (!isnull && v > 0 && (uint64_t)v >= next_id)
        next_id = (uint64_t)v + 1;
    s->next_id = next_id;
    s->stored_next_id = next_id;
    s->committed_max = next_id - 1;

    int64_t next_qid = 1;
    if (query_int(s, "SELECT value FROM meta WHERE key = 'next_qid'", &v, &isnull) != SQLITE_OK)
        return STORE_E_IO;
    if (!isnull && v > 0)
        next_qid = v;
    if (query_int(s, "SELECT max(id) FROM queue", &v, &isnull) != SQLITE_OK)
        return STORE_E_IO;
    if (!isnull && v >= next_qid)
        next_qid = v + 1;
    s->next_qid = next_qid;

    /* Still marked open: the last user did not close it (a crash). Mark it ours now. */
    if (query_int(s, "SELECT value FROM meta WHERE key = 'open'", &v, &isnull) != SQLITE_OK)
        return STORE_E_IO;
    s->unclean = !isnull && v != 0;
    if (exec(s, "INSERT OR REPLACE INTO meta(key, value) VALUES('open', 1)", "open") !=
        SQLITE_OK)
        return STORE_E_IO;
    return STORE_OK;
}

/* What load_queues works with: its statements on the writer, and the ids of queues that
 * have messages but no row (orphans), removed once the scan is over. */
typedef struct loader {
    sqlite3_stmt *counts; /* every queue id of msg with its message count */
    sqlite3_stmt *byid;   /* a queue row by id */
    sqlite3_stmt *del;    /* the messages of one queue */
    sqlite3_int64 *orphans;
    size_t norphans, orphans_cap;
} loader;

static store_err nomem(store *s)
{
    set_err(s, "out of memory");
    return STORE_E_NOMEM;
}

static int add_orphan(loader *ld, sqlite3_int64 qid)
{
    if (ld->norphans == ld->orphans_cap) {
        size_t ncap = ld->orphans_cap ? ld->orphans_cap * 2 : 8;
        sqlite3_int64 *no = realloc(ld->orphans, ncap * sizeof *no);
        if (!no)
            return -1;
        ld->orphans = no;
        ld->orphans_cap = ncap;
    }
    ld->orphans[ld->norphans++] = qid;
    return 0;
}

/* The queue of the row byid stands on (qid, holding n messages in the file) joins the
 * index with everything in the file only. Resets byid. */
static store_err load_queue(store *s, sqlite3_stmt *byid, sqlite3_int64 qid, sqlite3_int64 n)
{
    const char *name = sqlite3_column_blob(byid, 0);
    size_t len = (size_t)sqlite3_column_bytes(byid, 0);
    int64_t front = sqlite3_column_int64(byid, 1);
    if (len == 0 || n <= 0) {
        (void)sqlite3_reset(byid);
        return STORE_OK;
    }
    uint64_t h = store__hash_name(name, len);
    squeue *q = find_queue(s, name, len, h);
    if (q) { /* UNIQUE name: cannot happen; keep the first */
        (void)sqlite3_reset(byid);
        return STORE_OK;
    }
    if (store__queues_reserve(&s->queues, 1) != STORE_OK)
        return nomem(s);
    q = add_queue(s, name, len, h, qid);
    (void)sqlite3_reset(byid); /* only now: name points into its row */
    if (!q)
        return nomem(s);
    q->spilled = (uint64_t)n;
    q->front_durable = q->front_sent = front;
    q->crash_front = s->unclean ? front : INT64_MIN;
    return STORE_OK;
}

/* One pass over the message counts per queue: each queue with a row is loaded, the others
 * are noted as orphans (not removed during the scan). */
static store_err scan_queues(store *s, loader *ld)
{
    int rc;
    while ((rc = sqlite3_step(ld->counts)) == SQLITE_ROW) {
        sqlite3_int64 qid = sqlite3_column_int64(ld->counts, 0);
        sqlite3_int64 n = sqlite3_column_int64(ld->counts, 1);
        if ((rc = sqlite3_bind_int64(ld->byid, 1, qid)) != SQLITE_OK)
            break;
        rc = sqlite3_step(ld->byid);
        if (rc == SQLITE_DONE) {
            (void)sqlite3_reset(ld->byid);
            if (add_orphan(ld, qid) != 0)
                return nomem(s);
            continue;
        }
        if (rc != SQLITE_ROW)
            break;
        store_err err = load_queue(s, ld->byid, qid, n);
        if (err != STORE_OK)
            return err;
    }
    if (rc != SQLITE_DONE)
        return db_err(s, s->wdb, "load");
    (void)sqlite3_reset(ld->counts);
    return STORE_OK;
}

/* Queues with their message counts. One pass over the (queue, ord) index: no message body
 * is read. Drops queue rows without messages and messages without a queue row. */
static store_err load_queues(store *s)
{
    loader ld = {0};
    store_err err = STORE_OK;
    int rc = sqlite3_prepare_v2(s->wdb, "SELECT queue, count(*) FROM msg GROUP BY queue", -1,
                                &ld.counts, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->wdb, "SELECT name, front FROM queue WHERE id = ?1", -1,
                                &ld.byid, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->wdb, "DELETE FROM msg WHERE queue = ?1", -1, &ld.del, NULL);
    if (rc != SQLITE_OK)
        err = db_err(s, s->wdb, "load");
    if (err == STORE_OK)
        err = scan_queues(s, &ld);
    for (size_t i = 0; err == STORE_OK && i < ld.norphans; i++) {
        if ((rc = sqlite3_bind_int64(ld.del, 1, ld.orphans[i])) != SQLITE_OK ||
            (rc = step_done(ld.del)) != SQLITE_OK)
            err = db_err(s, s->wdb, "clean up");
    }
    if (err == STORE_OK &&
        exec(s, "DELETE FROM queue WHERE NOT EXISTS (SELECT 1 FROM msg WHERE msg.queue = queue.id)",
             "clean up") != SQLITE_OK)
        err = STORE_E_IO;
    free(ld.orphans);
    (void)sqlite3_finalize(ld.counts);
    (void)sqlite3_finalize(ld.byid);
    (void)sqlite3_finalize(ld.del);
    return err;
}

/* The writer connection, set up for our use: a file that is not a store we can use is
 * refused before anything is written to it. */
static store_err open_writer(store *s, const store_options *opts)
{
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(opts->path, &s->wdb, flags, NULL);
    if (rc != SQLITE_OK)
        return db_err(s, s->wdb, "open");
    (void)sqlite3_extended_result_codes(s->wdb, 1);
    if (sqlite3_db_readonly(s->wdb, "main") != 0) {
        set_err(s, "open: %s can only be opened read-only", opts->path);
        return STORE_E_IO;
    }
    sqlite3_int64 ver;
    store_err err = check_file(s, &ver);
    if (err != STORE_OK)
        return err;
    /* Only takes effect on a file without tables yet (before WAL mode is set). */
    char sql[200];
    snprintf(sql, sizeof sql, "PRAGMA page_size = %d", PAGE_SIZE);
    if (exec(s, sql, "open") != SQLITE_OK ||
        exec(s, "PRAGMA journal_mode = WAL", "open") != SQLITE_OK)
        return STORE_E_IO;
    sqlite3_int64 page_size;
    if (query_int(s, "PRAGMA page_size", &page_size, NULL) != SQLITE_OK)
        return STORE_E_IO;
    /* secure_delete off: acked messages are not overwritten with zeros (a second write of
     * every message; some builds turn it on by default). */
    snprintf(sql, sizeof sql,
             "PRAGMA synchronous = %s; PRAGMA wal_autocheckpoint = %lld;"
             " PRAGMA foreign_keys = OFF; PRAGMA busy_timeout = 2000; PRAGMA secure_delete = OFF",
             opts->sync_full ? "FULL" : "NORMAL",
             (long long)(WAL_CHECKPOINT_BYTES / (page_size > 0 ? page_size : 4096)));
    if (exec(s, sql, "open") != SQLITE_OK)
        return STORE_E_IO;
    return STORE_OK;
}

/* One write transaction: proves the file is writable and ours before anything is used,
 * brings its schema up to date and loads the counters and queues. */
static store_err load_file(store *s)
{
    if (exec(s, "BEGIN IMMEDIATE", "open") != SQLITE_OK)
        return STORE_E_IO;
    store_err err = migrate(s);
    if (err == STORE_OK)
        err = load_meta(s);
    if (err == STORE_OK)
        err = load_queues(s);
    if (err == STORE_OK && exec(s, "COMMIT", "open") != SQLITE_OK)
        err = STORE_E_IO;
    if (err != STORE_OK && !sqlite3_get_autocommit(s->wdb))
        (void)sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
    return err;
}

/* journal_mode must really be WAL: the reader relies on it to run beside the writer. */
static store_err check_wal(store *s, const char *path)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->wdb, "PRAGMA journal_mode", -1, &st, NULL);
    int wal = rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
              sqlite3_column_text(st, 0) &&
              strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    (void)sqlite3_finalize(st);
    if (!wal) {
        set_err(s, "open: %s cannot use WAL mode", path);
        return STORE_E_IO;
    }
    return STORE_OK;
}

/* The commit's statements, and the largest row they can write. */
static store_err prepare_writer(store *s)
{
    int max_len = sqlite3_limit(s->wdb, SQLITE_LIMIT_LENGTH, -1);
    s->max_row = max_len > 1024 ? (size_t)max_len - 1024 : 0; /* room for the other columns */
    for (int i = 0; i < W__COUNT; i++)
        if (sqlite3_prepare_v3(s->wdb, writer_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->w[i],
                               NULL) != SQLITE_OK)
            return db_err(s, s->wdb, "prepare");
    return STORE_OK;
}

/* The reader connection and its paging statement. */
static store_err open_reader(store *s, const char *path)
{
    int rc = sqlite3_open_v2(path, &s->rdb, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        return db_err(s, s->rdb, "open reader");
    (void)sqlite3_extended_result_codes(s->rdb, 1);
    (void)sqlite3_busy_timeout(s->rdb, 200);
    if (sqlite3_prepare_v3(s->rdb,
                           "SELECT id, ord, redeliveries, headers, body FROM msg"
                           " WHERE queue = ?1 AND (ord, id) > (?2, ?3) AND id <= ?4"
                           " ORDER BY ord, id LIMIT ?5",
                           -1, SQLITE_PREPARE_PERSISTENT, &s->page, NULL) != SQLITE_OK)
        return db_err(s, s->rdb, "prepare");
    return STORE_OK;
}

static store_err open_db(store *s, const store_options *opts)
{
    store_err err = open_writer(s, opts);
    if (err == STORE_OK)
        err = load_file(s);
    if (err == STORE_OK)
        err = check_wal(s, opts->path);
    if (err == STORE_OK)
        err = prepare_writer(s);
    if (err == STORE_OK)
        err = open_reader(s, opts->path);
    return err;
}

store_err store_sqlite_open(const store_options *opts, store **out, char *reason,
                            size_t reason_size)
{
    if (reason && reason_size)
        reason[0] = '\0';
    if (!opts || !opts->loop || !opts->path || !opts->path[0] || !out) {
        if (reason && reason_size)
            snprintf(reason, reason_size, "a loop and a path are needed");
        return STORE_E_INVALID;
    }
    store *s = calloc(1, sizeof *s);
    if (!s) {
        if (reason && reason_size)
            snprintf(reason, reason_size, "out of memory");
        return STORE_E_NOMEM;
    }
    s->loop = opts->loop;
    s->lock_fd = -1;
    s->open = &s->bat[0];
    s->open_seq = 1;
    store_err err = take_lock(s, opts->path);
    if (err == STORE_OK)
        err = open_db(s, opts);
    s->opened = err == STORE_OK;
    if (err != STORE_OK) {
        if (err == STORE_E_NOMEM && !s->err[0])
            set_err(s, "out of memory");
        if (reason && reason_size)
            snprintf(reason, reason_size, "%s", s->err);
        sq_close(s);
        return err;
    }
    *out = s;
    return STORE_OK;
}

static store_err sq_open(const store_options *opts, store **out)
{
    return store_sqlite_open(opts, out, opts ? opts->reason : NULL, opts ? opts->reason_size : 0);
}

static const char *sq_last_error(store *s)
{
    return s->err;
}

/* Records, queues, their tables, the batches and the reader's page cache. The writer's
 * cache is not asked for (the commit thread may be using it); it is bounded by its
 * cache_size (SQLite's default: nothing here sets it). */
static size_t sq_resident(store *s)
{
    size_t n = sizeof *s + s->bytes + (s->ids.cap + s->queues.cap) * sizeof(void *) +
               (s->bat[0].cap + s->bat[1].cap) * sizeof(op);
    int cur = 0, hi = 0;
    if (s->rdb && sqlite3_db_status(s->rdb, SQLITE_DBSTATUS_CACHE_USED, &cur, &hi, 0) ==
                      SQLITE_OK && cur > 0)
        n += (size_t)cur;
    return n;
}

static const store_ops sqlite_ops = {
    .version = STORE_OPS_VERSION,
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .enqueue = sq_enqueue,
    .take = sq_take,
    .ack = sq_ack,
    .requeue = sq_requeue,
    .commit = sq_commit,
    .depth = sq_depth,
    .resident = sq_resident,
    .last_error = sq_last_error,
};

const store_ops *store_sqlite_backend(void)
{
    return &sqlite_ops;
}
