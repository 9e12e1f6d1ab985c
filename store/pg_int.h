/* pg_int.h: the PostgreSQL backend's shared types (store_postgres.c, pg_conn.c, pg_schema.c).
 *
 * Every message of every queue is in memory (records of order.h, read back at open), and the
 * database is its durable copy: each commit sends the open batch's writes as one pipeline on
 * a non-blocking connection watched by the loop (uv_poll on PQsocket), ending in one Sync,
 * so the batch is one implicit transaction. Two batches take turns: while one is in flight
 * (s->fly), writes fill the other (s->open).
 * A lost connection fails nothing: the batch in flight stays in flight, the store reconnects
 * (after a growing pause) and asks the database whether the batch's number reached
 * stompd_state.batch (committed before the loss) or not (sent again). Only a statement the
 * database refuses on a live connection fails a batch (STORE_E_IO).
 * Facts that always hold: a record is PENDING on exactly one batch's recs list, or in its
 * queue's order, or TAKEN; a queue is freed only when it has no record and no FRONT operation
 * of a batch names it (pins).
 */
#ifndef STORE_PG_INT_H
#define STORE_PG_INT_H

#include "order.h"
#include "pg_lib.h"
#include "store.h"
#include "store_postgres.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

#define LOOKAHEAD STORE_POSTGRES_LOOKAHEAD

typedef struct pqueue {
    store__qlink link; /* in the name index; names name[] */
    store__order o;    /* its ready and waiting records */
    size_t nrecs;      /* records of any state */
    size_t nlate;      /* pending records that will wait at commit: room kept in o.waiting */
    size_t npending[STORE__PRIORITIES]; /* pending records of each band */
    size_t pins;       /* FRONT operations naming it, in the open or the flying batch */
    uint64_t requeues; /* records ever requeued, and ever put to wait: with o.waiting.n, */
    uint64_t waits;    /* the generation take_match's scans follow (scan_gen) */
    uint64_t bytes;    /* header block and body bytes of its records */
    /* The delivery bound of each band (see store_postgres.c): as committed, and the largest
     * put in a batch; the largest ord taken. */
    int64_t front_durable[STORE__PRIORITIES];
    int64_t front_sent[STORE__PRIORITIES];
    int64_t tmax[STORE__PRIORITIES];
    char name[]; /* NUL-terminated, link.len bytes before the NUL */
} pqueue;

enum { OP_ENQ, OP_ACK, OP_REQUEUE, OP_FRONT };

/* One write of a batch. ENQ: ptr is the pending record. ACK: key is the id. REQUEUE: key,
 * ord, redeliveries, not_before as the row now has them. FRONT: ptr is the queue (pinned),
 * prio, ord the bound. */
typedef struct pop {
    uint8_t kind;
    uint8_t prio;
    uint32_t redeliveries;
    int64_t key;
    int64_t ord;
    uint64_t not_before;
    void *ptr;
} pop;

typedef struct pbatch {
    pop *ops;
    size_t nops, cap;
    store__dlist recs; /* its enqueued records, in id order */
    uint64_t seq;      /* its number, stored with it in stompd_state.batch */
    uint64_t next_id;  /* the id counter when it was cut, stored with it */
    store_commit_cb cb;
    void *arg;
} pbatch;

/* The connection: down (a timer will connect), connecting (PQconnectPoll), setting up (lock,
 * session, statements, the committed batch number: one pipeline), ready. */
enum { PG_DOWN, PG_CONNECTING, PG_SETUP, PG_READY };

/* The prepared statements (their SQL is in pg_conn.c). */
enum { P_INS, P_DEL, P_REQ, P_FRONT, P_STATE, P_INS_MANY, P_DEL_MANY, P__COUNT };

struct store {
    pg__lib lib; /* libpq's functions: PQname(...) below is s->lib.PQname(...) */
    uv_loop_t *loop;
    char *conninfo;
    int sync_full;
    PGconn *conn;
    uv_poll_t *poll;   /* on PQsocket(conn); freed in its close callback */
    uv_os_sock_t poll_fd;
    uv_timer_t *timer; /* reconnect; freed in its close callback */
    int state;
    int sync_out;  /* a pipeline Sync was sent and its results are not all read */
    int flushing;  /* output is waiting for the socket */
    int sent;      /* the flying batch went out on this connection */
    size_t nres;   /* results read since the last Sync */
    int bad;       /* a statement failed since the last Sync */
    int lock_ok;   /* setup: the advisory lock is ours */
    uint64_t db_batch; /* setup: stompd_state.batch as the database has it */
    unsigned backoff_ms;
    int closing;
    int *gone; /* set while a commit callback runs from the poll callback: close sets it */

    store__idhash ids;
    store__qhash queues;
    store__heap expiry;  /* committed records with an expiry, not taken */
    size_t nexpiring;    /* records with an expiry, any state: room kept in expiry */
    pbatch bat[2];
    pbatch *open, *fly;
    uint64_t next_id;
    uint64_t batch_seq; /* the last batch number given */
    size_t bytes;       /* records, queues and heaps allocated */
    store__pool pool;   /* records given back, for reuse (order.h) */
    char err[512];
    char fail[256];     /* the first statement failure of the batch in flight */
};

/* libpq through the store's loaded library (pg_lib.h): s is the store in scope. */
#define PQclear(...) (s->lib.PQclear(__VA_ARGS__))
#define PQconnectPoll(...) (s->lib.PQconnectPoll(__VA_ARGS__))
#define PQconnectStartParams(...) (s->lib.PQconnectStartParams(__VA_ARGS__))
#define PQconnectdbParams(...) (s->lib.PQconnectdbParams(__VA_ARGS__))
#define PQconsumeInput(...) (s->lib.PQconsumeInput(__VA_ARGS__))
#define PQenterPipelineMode(...) (s->lib.PQenterPipelineMode(__VA_ARGS__))
#define PQerrorMessage(...) (s->lib.PQerrorMessage(__VA_ARGS__))
#define PQexec(...) (s->lib.PQexec(__VA_ARGS__))
#define PQfinish(...) (s->lib.PQfinish(__VA_ARGS__))
#define PQflush(...) (s->lib.PQflush(__VA_ARGS__))
#define PQgetResult(...) (s->lib.PQgetResult(__VA_ARGS__))
#define PQgetlength(...) (s->lib.PQgetlength(__VA_ARGS__))
#define PQgetvalue(...) (s->lib.PQgetvalue(__VA_ARGS__))
#define PQisBusy(...) (s->lib.PQisBusy(__VA_ARGS__))
#define PQntuples(...) (s->lib.PQntuples(__VA_ARGS__))
#define PQpipelineSync(...) (s->lib.PQpipelineSync(__VA_ARGS__))
#define PQprepare(...) (s->lib.PQprepare(__VA_ARGS__))
#define PQresultErrorMessage(...) (s->lib.PQresultErrorMessage(__VA_ARGS__))
#define PQresultStatus(...) (s->lib.PQresultStatus(__VA_ARGS__))
#define PQsendPrepare(...) (s->lib.PQsendPrepare(__VA_ARGS__))
#define PQsendQueryParams(...) (s->lib.PQsendQueryParams(__VA_ARGS__))
#define PQsendQueryPrepared(...) (s->lib.PQsendQueryPrepared(__VA_ARGS__))
#define PQsetNoticeProcessor(...) (s->lib.PQsetNoticeProcessor(__VA_ARGS__))
#define PQsetSingleRowMode(...) (s->lib.PQsetSingleRowMode(__VA_ARGS__))
#define PQsetnonblocking(...) (s->lib.PQsetnonblocking(__VA_ARGS__))
#define PQsocket(...) (s->lib.PQsocket(__VA_ARGS__))
#define PQstatus(...) (s->lib.PQstatus(__VA_ARGS__))

/* The advisory lock that keeps a second store off the same database. */
#define PG_LOCK_KEY 0x53544d51

/* ---- the indexes ---- */

static inline store__rec *find_rec(const store *s, uint64_t id)
{
    return store__entry(store__ids_find(&s->ids, id), store__rec, link);
}

static inline pqueue *find_queue(const store *s, const char *name, size_t len, uint64_t h)
{
    return store__entry(store__queues_find(&s->queues, name, len, h), pqueue, link);
}

/* Room for n more operations in b: 0, or -1 without memory. */
static inline int pg_reserve_ops(pbatch *b, size_t n)
{
    if (b->cap - b->nops >= n)
        return 0;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap - b->nops < n)
        ncap *= 2;
    pop *nops = realloc(b->ops, ncap * sizeof *nops);
    if (!nops)
        return -1;
    b->ops = nops;
    b->cap = ncap;
    return 0;
}

/* Record an operation in b (room reserved); returns it for the caller to fill. */
static inline pop *pg_push_op(pbatch *b, int kind, int64_t key, void *ptr)
{
    assert(b->nops < b->cap);
    pop *o = &b->ops[b->nops++];
    *o = (pop){ .kind = (uint8_t)kind, .key = key, .ptr = ptr };
    return o;
}

static inline int64_t pg_add_sat(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* ---- store_postgres.c ---- */

void pg__set_err(store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The queue named name, created empty if missing. NULL without memory. */
pqueue *pg__get_queue(store *s, const char *name, size_t len, uint64_t h);
/* Forget q if no record and no operation names it. */
void pg__queue_drop_unused(store *s, pqueue *q);
/* A record read from the database (PENDING, in no index) joins the store as committed. */
store_err pg__add_loaded(store *s, store__rec *r) STORE_WUR;

/* ---- pg_schema.c: open and close (blocking: before the loop runs, and at its end) ---- */

/* Connect, lock, create or migrate the schema, read every message in. s->err says why not. */
store_err pg__open_db(store *s) STORE_WUR;
/* The last transaction of a clean close (best effort), then let go of the connection. */
void pg__close_db(store *s);
/* The row layout the load reads, for pg_conn.c and pg_schema.c. */
store__rec *pg__row_rec(store *s, const PGresult *res, int row);

/* ---- pg_conn.c: the connection on the loop ---- */

/* Prepare the statements on a fresh (blocking) connection: 0, or -1 (s->err says why). */
int pg__prepare(store *s);
/* Start watching the connection on the loop (pipeline mode, non-blocking). STORE_E_IO. */
store_err pg__attach(store *s) STORE_WUR;
/* Send s->fly now if the connection is ready (else it goes once it is). */
void pg__send_fly(store *s);
/* Stop watching: close the handles (freed in their close callbacks). */
void pg__detach(store *s);
/* The flying batch is settled: committed (ok) or failed; runs its callback last. */
void pg__fly_done(store *s, int ok);
/* libpq's notices (it prints them on stderr by default) are dropped: the library never
 * writes to stderr. */
void pg__quiet(store *s, PGconn *c);
/* Big-endian encoders for binary parameters. */
void pg__put64(char *p, uint64_t v);
void pg__put32(char *p, uint32_t v);
void pg__put16(char *p, uint16_t v);
uint64_t pg__get64(const char *p);

#endif
