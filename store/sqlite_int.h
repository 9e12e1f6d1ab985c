/* sqlite_int.h: the SQLite backend's internals, shared by its files (store_sqlite.c and the
 * sqlite_*.c beside it): queues and their priority bands, write operations, batches and the
 * store itself. Records are order.h's store__rec.
 *
 * Two connections, each used by one thread at a time. The writer belongs to the loop thread
 * only inside open and close; otherwise only the commit work (a libuv pool thread) touches
 * it, one commit at a time, handed over by uv_queue_work and back by its after callback.
 * The reader belongs to the loop thread and only runs short, indexed reads (paging, expiry,
 * browsing); WAL lets it read while the writer commits, so the loop never waits for a sync.
 * All other state lives on the loop thread. The helpers inline here are on the path of every
 * message.
 */
#ifndef STORE_SQLITE_INT_H
#define STORE_SQLITE_INT_H

#include "order.h"
#include "store_sqlite.h"

#include <assert.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* How far (in message ids) a band's recorded front runs ahead of its takes. */
#define LOOKAHEAD STORE_SQLITE_LOOKAHEAD

/* A band's ords: priority p's lie within BAND_SPAN / 2 of (4 - p) * BAND_SPAN (a fresh
 * message's is that plus its id, ids staying below BAND_SPAN / 2), so the file's one index
 * (queue, ord) holds a queue's bands one after the other, the highest priority first, and
 * priority 4's ords are what they were before priorities (a message's id, lower when
 * requeued). */
#define BAND_SPAN ((int64_t)1 << 56)

static inline int64_t band_base(int p)
{
    return (int64_t)(STORE_PRIORITY_DEFAULT - p) * BAND_SPAN;
}

/* The least ord of band p, and the least above it. */
static inline int64_t band_lo(int p)
{
    return band_base(p) - BAND_SPAN / 2;
}

static inline int64_t band_hi(int p)
{
    return band_base(p) + BAND_SPAN / 2;
}

/* The band an ord lies in (a priority, 0-9; an ord beyond them all counts as the nearest). */
static inline int band_of(int64_t ord)
{
    if (ord < band_lo(STORE_PRIORITY_MAX))
        return STORE_PRIORITY_MAX;
    if (ord >= band_hi(0))
        return 0;
    return STORE_PRIORITY_MAX - (int)((ord - band_lo(STORE_PRIORITY_MAX)) / BAND_SPAN);
}
#define WINDOW STORE_SQLITE_WINDOW
#define WINDOW_BYTES STORE_SQLITE_WINDOW_BYTES

/* store__rec.flags */
enum {
    /* Its row may lie after the frontier of the index it is in: read out of order by
     * expiry, or in the schedule (whose frontier can move back, see sqlite_page.c). A page
     * read that meets its row skips it; acked, it leaves a ghost until the ack is in the
     * file. Never cleared. */
    REC_OOO = 1,
    /* Read after a crash with its count raised (sqlite_recover.c). */
    REC_BUMPED = 2,
};

typedef struct squeue squeue;

/* One priority band of a queue: its part in the file and its bound of handed-out messages
 * (sqlite_recover.c). Its records in memory are in the queue's order (o.band[p]). */
typedef struct sband {
    uint64_t spilled;      /* its ready rows in the file only, after the frontier */
    int64_t front_ord;     /* the frontier: (ord, id) of the last row brought into memory */
    uint64_t front_id;
    size_t mem_bytes;      /* header block and body bytes of its records in the order */
    size_t npending;       /* its records enqueued, their commit not completed */
    int64_t front_durable; /* front as committed: takes stay at or below it */
    int64_t front_sent;    /* the largest front put in a batch (open or in flight) */
    int64_t front_open;    /* the largest front put in the open batch (fop_seq) */
    uint64_t fop_seq;      /* the batch front_open belongs to */
    int64_t crash_front;   /* after a crash: ord bound of possibly delivered messages */
    int64_t tmax;          /* the largest ord taken */
} sband;

struct squeue {
    store__qlink link;   /* in the name index; names name[] */
    store__idlink byqid; /* in the queue id index; byqid.id is the queue's row id */
    store__order o;      /* its ready and waiting records in memory */
    sband band[STORE__PRIORITIES];
    unsigned spill_mask;    /* bit p: band p has rows in the file only (spilled) */
    uint64_t sched_spilled; /* rows with a not_before in the file only, after sched_* */
    uint64_t sched_nb;      /* the schedule's frontier: (not_before, id) of the last such */
    uint64_t sched_id;      /* row brought into memory */
    size_t nlate;           /* pending records that will wait at commit (room in o.waiting) */
    size_t nrecs;           /* records in memory in any state (ghosts are no one's) */
    uint64_t count, bytes;  /* messages not acked, their header block and body bytes */
    uint64_t row_seq;       /* the last batch that writes the queue's row */
    size_t pins;            /* OP_FRONT operations naming it (open or in flight) */
    int fronts;             /* it has (or had) fronts of priorities other than 4 */
    uint64_t reorders;      /* requeues and promotions: take_match's scan generation */
    char name[];            /* NUL-terminated, link.len bytes before the NUL */
};

#define QID(q) ((int64_t)(q)->byqid.id)
#define QUEUE_SIZE(q) (sizeof *(q) + (q)->link.len + 1)

enum { OP_ENQ, OP_ACK, OP_REQUEUE, OP_QNEW, OP_QDEL, OP_FRONT };

/* op.flags of ACK and REQUEUE: the message's row has, before the operation, an entry in the
 * schedule (a not_before) or in expiry. An ACK also carries its queue's id (not_before) and
 * the message's size (ord): a clean close counts the bytes of what the open batch drops. */
enum { OPF_SCHED = 1, OPF_EXPIRY = 2 };

/* One write to replay in the commit transaction. The pointers stay valid while the batch is
 * open or in flight: a pending record cannot be taken or acked, a queue with a pending
 * record cannot be dropped, nor one that an OP_FRONT names (pins). */
typedef struct op {
    uint8_t kind;
    uint8_t flags;
    uint32_t redeliveries; /* REQUEUE; FRONT: the priority */
    uint64_t not_before;   /* REQUEUE; ENQ: the body row it names (enqueue_shared), or 0 */
    int64_t key; /* message id (ENQ, ACK, REQUEUE), queue id (QNEW, QDEL, FRONT) */
    int64_t ord; /* ord (REQUEUE), front (FRONT; QNEW: priority 4's), size (ACK) */
    const void *ptr; /* store__rec (ENQ), squeue (QNEW; FRONT: read on the loop thread only) */
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
    W_DEL_FRONTS,
    W_META,
    W_FRONT,
    W_FRONT4,
    W_BUMP,
    W_DEL_RANGE,
    W_INS_MSGS,
    W_SCHED_SET,
    W_SCHED_DEL,
    W_EXPIRY_SET,
    W_EXPIRY_DEL,
    W_INS_SHARED,
    W_INS_BODY,
    W__COUNT
};

/* The reader's statements (sqlite_page.c); each reads the columns of ROW_COLUMNS from msg
 * as m and expiry as e. */
enum { R_PAGE, R_SCHED, R_EXPIRY, R__COUNT };
enum { C_ID, C_ORD, C_RED, C_HEADERS, C_BODY, C_EXPIRES, C_NB, C_QUEUE };
#define ROW_COLUMNS \
    "m.id, m.ord, m.redeliveries, m.headers, CASE WHEN m.body_id IS NULL THEN m.body ELSE" \
    " (SELECT b.data FROM body AS b WHERE b.id = m.body_id) END, coalesce(e.expires, 0)," \
    " m.not_before, m.queue"
/* A message's size: what a queue's bytes count. */
#define ROW_SIZE(r) ((r)->hlen + (r)->blen)

struct store {
    uv_loop_t *loop;
    sqlite3 *wdb; /* writer: see the top of this file for who may touch it when */
    sqlite3 *rdb; /* reader: loop thread only */
    sqlite3_stmt *w[W__COUNT];
    sqlite3_stmt *r[R__COUNT]; /* on rdb */
    int lock_fd;

    store__idhash ids;   /* records and ghosts by message id */
    store__qhash queues; /* by name */
    store__idhash qids;  /* the same queues by row id */
    store__heap expiry;  /* records in memory, ready or waiting, with an expiry */
    size_t nexpiring;    /* records in memory with an expiry: room kept in expiry */
    size_t nghosts;
    /* Expiry rows of the file up to the cursor (expires, id) are in memory or gone; the
     * first row after it that is in the file only is xnext (when xnext_known; 0: none). */
    uint64_t xcur_exp, xcur_id;
    int xnext_known;
    uint64_t xnext_exp, xnext_id;
    store__rec *browsed; /* the last message browse read from the file (lent out) */

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
    size_t bytes;   /* records, ghosts, queues and heaps allocated (resident) */
    store__pool pool; /* records given back, for reuse */
    int unclean;    /* the file was not closed cleanly: crash fronts apply */
    int bytes_stale; /* a commit failed: the queues' bytes in memory are not the file's */
    int opened;     /* open completed: close may mark the file closed */
    sqlite3_vfs vfs; /* the writer's (sqlite_vfs.c), registered as vfs_name when FULL */
    char vfs_name[48];
    int vfs_registered;
    char err[512];
};

static inline int64_t add_sat(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* (a1, a2) > (b1, b2), the first members signed: the order of (ord, id). */
static inline int ord_after(int64_t a1, uint64_t a2, int64_t b1, uint64_t b2)
{
    return a1 > b1 || (a1 == b1 && a2 > b2);
}

/* The same for (not_before, id) and (expires, id). */
static inline int key_after(uint64_t a1, uint64_t a2, uint64_t b1, uint64_t b2)
{
    return a1 > b1 || (a1 == b1 && a2 > b2);
}

/* Run a statement that returns no rows and reset it: SQLITE_OK or the failure. */
static inline int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    (void)sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* ---- the indexes (index.h) ---- */

static inline store__rec *find_rec(const store *s, uint64_t id)
{
    return store__entry(store__ids_find(&s->ids, id), store__rec, link);
}

static inline squeue *find_queue(const store *s, const char *name, size_t len, uint64_t h)
{
    return store__entry(store__queues_find(&s->queues, name, len, h), squeue, link);
}

static inline squeue *find_qid(const store *s, int64_t qid)
{
    return store__entry(store__ids_find(&s->qids, (uint64_t)qid), squeue, byqid);
}

/* The least ord of band p's ready rows in the file only (after the frontier), or INT64_MAX
 * when it has none: what store__order_place and the promotion keep below. */
static inline int64_t band_limit(const squeue *q, int p)
{
    return q->band[p].spilled ? q->band[p].front_ord : INT64_MAX;
}

/* Band p's spilled count changed: its bit in spill_mask follows. */
static inline void spill_note(squeue *q, int p)
{
    if (q->band[p].spilled)
        q->spill_mask |= 1u << p;
    else
        q->spill_mask &= ~(1u << p);
}

/* r enters or leaves its queue's order: its band's bytes in memory follow. */
static inline void mem_in(squeue *q, const store__rec *r)
{
    q->band[r->prio].mem_bytes += r->hlen + r->blen;
}

static inline void mem_out(squeue *q, const store__rec *r)
{
    q->band[r->prio].mem_bytes -= r->hlen + r->blen;
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
    o->kind = (uint8_t)kind;
    o->flags = 0;
    o->key = key;
    o->ord = ord;
    o->redeliveries = redeliveries;
    o->not_before = 0;
    o->ptr = ptr;
}

/* ---- store_sqlite.c: errors, queues ---- */

/* Set the text last_error reports. */
void sqlite__set_err(store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Set it to "what: <db's message>" (db NULL: out of memory); returns STORE_E_IO. */
store_err sqlite__db_err(store *s, sqlite3 *db, const char *what);
/* A new queue in both indexes (the caller reserved room in each), NULL without memory. */
squeue *sqlite__queue_add(store *s, const char *name, size_t len, uint64_t h, int64_t qid);
/* Forget q if nothing of it is left in memory or the file; the caller reserved one op. */
void sqlite__queue_drop_unused(store *s, squeue *q);
/* A record in memory is freed (its message stays in the file, or is gone). */
void sqlite__rec_free(store *s, store__rec *r);

/* ---- sqlite_schema.c: the file ---- */

/* Lock, open, migrate and load opts->path into a fresh s; on failure s->err says why. */
store_err sqlite__open_file(store *s, const store_options *opts) STORE_WUR;
/* Finalize every statement, close both connections and the lock file (after any open). */
void sqlite__close_file(store *s);

/* ---- sqlite_vfs.c: the writer's VFS ---- */

/* Register s->vfs (the default VFS gathering WAL writes until a sync) as s->vfs_name. */
store_err sqlite__vfs_register(store *s) STORE_WUR;
/* Unregister it, once no connection uses it (no-op when not registered). */
void sqlite__vfs_unregister(store *s);

/* ---- sqlite_batch.c: the group commit ---- */

/* Prepare the writer's statements (s->w) and set s->max_row. */
store_err sqlite__batch_prepare(store *s) STORE_WUR;
/* uv_queue_work's work: apply s->fly in one transaction on the writer (pool thread). */
void sqlite__commit_work(uv_work_t *req);
/* Its after callback (loop thread): settle s->fly, then call the batch's callback. */
void sqlite__commit_done(uv_work_t *req, int status);
/* Write meta key = v with the writer's W_META statement: SQLITE_OK or the failure. */
int sqlite__write_meta(store *s, const char *key, int64_t v);

/* ---- sqlite_page.c: records between memory and the file ---- */

/* Prepare the reader's statements (s->r). */
store_err sqlite__page_prepare(store *s) STORE_WUR;
/* Bind the reader's R_PAGE for band p of q from (ord, id) on, at most limit rows (-1: no
 * limit): SQLITE_OK or the failure. */
int sqlite__bind_page(store *s, const squeue *q, int p, int64_t ord, uint64_t id, int64_t limit);
/* Read up to a window of band p's rows in the file only into its list. */
store_err sqlite__page_in(store *s, squeue *q, int p) STORE_WUR;
/* Read up to a window of q's rows with a not_before in the file only into its waiting heap. */
store_err sqlite__sched_page_in(store *s, squeue *q) STORE_WUR;
/* The row st stands on (ROW_COLUMNS) as a record of q, counted after a crash (PENDING, in
 * no index). NULL without memory. Release with free(). */
store__rec *sqlite__row_rec(store *s, squeue *q, sqlite3_stmt *st);
/* The same, in memory: in the id index (the caller reserved room there), on no list. */
store__rec *sqlite__load_row(store *s, squeue *q, sqlite3_stmt *st);
/* A record whose commit completed joins its queue's order, or (freed) stays in the file. */
void sqlite__make_ready(store *s, store__rec *r);
/* r (requeued with a time) waits: after the schedule's frontier it is read out of order. */
void sqlite__sched_note(squeue *q, store__rec *r);

/* ---- sqlite_take.c: handing out ---- */

/* Waiting records of q due at now join their bands (reading the schedule as needed). */
store_err sqlite__promote(store *s, squeue *q, uint64_t now) STORE_WUR;
/* The first ready record of band p (reading the band's next page when its list is empty);
 * *out NULL when the band has none. */
store_err sqlite__band_first(store *s, squeue *q, int p, store__rec **out) STORE_WUR;
/* take_at's work; expiry: refuse a first message expired at now (STORE_E_EXPIRED). */
store_err sqlite__take(store *s, squeue *q, uint64_t now, int expiry, store_msg *out) STORE_WUR;
/* requeue_at's work on the taken record r. */
store_err sqlite__requeue(store *s, store__rec *r, uint64_t not_before) STORE_WUR;
/* Fill out from r (its queue's name). */
void sqlite__fill(store_msg *out, const store__rec *r);

/* ---- sqlite_expire.c: expiry, ghosts ---- */

store_err sqlite__take_expired(store *s, uint64_t now, store_msg *out) STORE_WUR;
uint64_t sqlite__next_expiry(store *s);
/* r (with an expiry, maybe not) stays in the file only: the cursor and xnext follow. */
void sqlite__expiry_spilled(store *s, const store__rec *r);
/* A row with an expiry was read into memory: xnext may have been it. */
void sqlite__expiry_loaded(store *s, const store__rec *r);
/* The acked record r (REC_OOO) becomes a ghost, g (allocated by the caller) taking its
 * place in the id index; r is freed. */
void sqlite__ghost_replace(store *s, store__rec *r, store__rec *g);
/* A page read met the row of id: 1 when it is in memory or a ghost (a ghost is freed: the
 * frontier is past its row now), else 0. */
int sqlite__page_skip(store *s, uint64_t id);
/* After b's commit: the ghosts of its acks are no longer needed (unless it failed). */
void sqlite__ghosts_done(store *s, const batch *b, int failed);

/* ---- sqlite_browse.c ---- */

store_err sqlite__browse(store *s, squeue *q, store_cursor *cur, uint64_t now,
                         store_msg *out) STORE_WUR;

/* ---- sqlite_match.c ---- */

store_err sqlite__take_match(store *s, squeue *q, uint64_t now, store_scan *scan,
                             store_match_fn match, void *arg, store_msg *out) STORE_WUR;
void sqlite__queues(store *s, void (*fn)(void *arg, const char *name, size_t len,
                                         uint64_t hash),
                    void *arg);

/* ---- sqlite_recover.c: redelivery after a crash or a close ---- */

/* Put front (if higher than any sent) for band p of q in the open batch. -1: no memory. */
int sqlite__front_push(store *s, squeue *q, int p, int64_t front);
/* After b's commit: its fronts are durable, or (failed) as if never sent. */
void sqlite__fronts_done(store *s, const batch *b, int failed);
/* The last transaction of a clean close; best effort, nothing to report. */
void sqlite__close_cleanly(store *s);

#endif
