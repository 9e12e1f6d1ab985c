/* sqlite_int.h: the SQLite backend's internals, shared by its files (store_sqlite.c and the
 * sqlite_*.c beside it): records, queues, write operations, batches and the store itself.
 *
 * Two connections, each used by one thread at a time. The writer belongs to the loop thread
 * only inside open and close; otherwise only the commit work (a libuv pool thread) touches
 * it, one commit at a time, handed over by uv_queue_work and back by its after callback.
 * The reader belongs to the loop thread and only runs short, indexed reads (paging); WAL
 * lets it read while the writer commits, so the loop never waits for a sync. All other state
 * lives on the loop thread. The helpers inline here are on the path of every message.
 */
#ifndef STORE_SQLITE_INT_H
#define STORE_SQLITE_INT_H

#include "index.h"
#include "store_sqlite.h"

#include <assert.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* How far (in message ids) a queue's recorded front runs ahead of its takes. */
#define LOOKAHEAD STORE_SQLITE_LOOKAHEAD

enum { REC_PENDING, REC_READY, REC_WAITING, REC_TAKEN };

typedef struct squeue squeue;

typedef struct srec {
    store__idlink link; /* in the id index; link.id is the message id */
    store__dlink on;    /* on a batch's pending list or its queue's window */
    squeue *q;
    int64_t ord;
    uint64_t not_before; /* WAITING: not handed out before this (the caller's clock) */
    uint32_t redeliveries;
    int state;
    size_t hlen, blen;
    char data[]; /* header block, body, NUL */
} srec;

struct squeue {
    store__qlink link; /* in the name index; names name[] */
    store__dlist win;  /* the window: ready records in memory, in queue order */
    store__heap waiting; /* requeued with a time not yet due (by time, then id): in memory,
                          * below the frontier, not in the window */
    size_t nwaiting;
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
    uint64_t not_before;   /* REQUEUE */
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

/* The writer's prepared statements (their SQL is in sqlite_batch.c). */
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

struct store {
    uv_loop_t *loop;
    sqlite3 *wdb; /* writer: see the top of this file for who may touch it when */
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

#define REC_SIZE(r) (sizeof *(r) + (r)->hlen + (r)->blen + 1)
#define QUEUE_SIZE(q) (sizeof *(q) + (q)->link.len + 1)

static inline int64_t add_sat(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* Run a statement that returns no rows and reset it: SQLITE_OK or the failure. */
static inline int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    (void)sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* ---- the indexes (index.h) ---- */

static inline srec *find_rec(const store *s, uint64_t id)
{
    return store__entry(store__ids_find(&s->ids, id), srec, link);
}

/* The record at the head of q's window, or NULL. */
static inline srec *win_head(const squeue *q)
{
    return store__entry(q->win.head, srec, on);
}

static inline squeue *find_queue(const store *s, const char *name, size_t len, uint64_t h)
{
    return store__entry(store__queues_find(&s->queues, name, len, h), squeue, link);
}

/* ---- the open batch ---- */

/* Room for n more operations, so a write either records all its operations or none. */
static inline int reserve_ops(batch *b, size_t n)
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

/* Record an operation in b; the caller reserved room for it. */
static inline void push_op(batch *b, int kind, int64_t key, int64_t ord, uint32_t redeliveries,
                           const void *ptr)
{
    assert(b->nops < b->cap);
    op *o = &b->ops[b->nops++];
    o->kind = kind;
    o->key = key;
    o->ord = ord;
    o->redeliveries = redeliveries;
    o->not_before = 0;
    o->ptr = ptr;
}

/* ---- store_sqlite.c: errors and queues ---- */

/* Set the text last_error reports. */
void sqlite__set_err(store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Set it to "what: <db's message>" (db NULL: out of memory); returns STORE_E_IO. */
store_err sqlite__db_err(store *s, sqlite3 *db, const char *what);
/* A new queue in the index (the caller reserved room there), NULL without memory. */
squeue *sqlite__queue_add(store *s, const char *name, size_t len, uint64_t h, int64_t qid);
/* Forget q if nothing of it is left in memory or the file; the caller reserved one op. */
void sqlite__queue_drop_unused(store *s, squeue *q);

/* ---- sqlite_schema.c: the file ---- */

/* Lock, open, migrate and load opts->path into a fresh s; on failure s->err says why. */
store_err sqlite__open_file(store *s, const store_options *opts) STORE_WUR;
/* Finalize every statement, close both connections and the lock file (after any open). */
void sqlite__close_file(store *s);

/* ---- sqlite_batch.c: the group commit ---- */

/* Prepare the writer's statements (s->w) and set s->max_row. */
store_err sqlite__batch_prepare(store *s) STORE_WUR;
/* uv_queue_work's work: apply s->fly in one transaction on the writer (pool thread). */
void sqlite__commit_work(uv_work_t *req);
/* Its after callback (loop thread): settle s->fly, then call the batch's callback. */
void sqlite__commit_done(uv_work_t *req, int status);
/* Write meta key = v with the writer's W_META statement: SQLITE_OK or the failure. */
int sqlite__write_meta(store *s, const char *key, int64_t v);

/* ---- sqlite_page.c: the window ---- */

/* Prepare the paging statement (s->page) on the reader. */
store_err sqlite__page_prepare(store *s) STORE_WUR;
/* Read up to a window of q's spilled messages into its (empty) window. */
store_err sqlite__page_in(store *s, squeue *q, uint64_t now) STORE_WUR;
/* Room for one more waiting record of q (its heap's growth counted in s->bytes). */
store_err sqlite__wait_room(store *s, squeue *q) STORE_WUR;
/* A record whose commit completed joins its queue's window, or (freed) stays in the file. */
void sqlite__make_ready(store *s, srec *r);

/* ---- sqlite_recover.c: redelivery after a crash or a close ---- */

/* Put front (if higher than any sent) for q in the open batch. -1: out of memory. */
int sqlite__front_push(store *s, squeue *q, int64_t front);
/* After b's commit: its fronts are durable, or (failed) as if never sent. */
void sqlite__fronts_done(store *s, const batch *b, int failed);
/* The last transaction of a clean close; best effort, nothing to report. */
void sqlite__close_cleanly(store *s);

#endif
