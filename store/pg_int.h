/* pg_int.h: the PostgreSQL backend's shared types (store_postgres.c, pg_conn.c, pg_stmt.c,
 * pg_share.c, pg_schema.c).
 *
 * Every message this node owns is in memory (records of order.h: its own enqueues, what it
 * claimed, and at open every row no node owned; pg_share.c), and the database is its
 * durable copy: each commit sends the open batch's writes as one pipeline on
 * a non-blocking connection watched by the loop (uv_poll on PQsocket), ending in one Sync,
 * so the batch is one implicit transaction. Two batches take turns: while one is in flight
 * (s->fly), writes fill the other (s->open).
 * A lost connection fails nothing: the batch in flight stays in flight, the store reconnects
 * (after a growing pause) and asks the database whether the batch's number reached
 * stompd_state.batch (committed before the loss) or not (sent again). Only a statement the
 * database refuses on a live connection fails a batch (STORE_E_IO).
 * Facts that always hold: a record is PENDING on exactly one batch's recs list, or in its
 * queue's order, or TAKEN, or GHOST (named by a RELEASE operation of one batch); a queue is freed only when it has no record and no FRONT operation
 * of a batch names it (pins).
 */
#ifndef STORE_PG_INT_H
#define STORE_PG_INT_H

#include "order.h"
#include "pg_lib.h"
#include "store.h"
#include "store_postgres.h"

#include <assert.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* In ords: a node's ids (and so its fresh ords) are 1 << PG_NODE_BITS apart. */
#define LOOKAHEAD ((int64_t)STORE_POSTGRES_LOOKAHEAD << PG_NODE_BITS)

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
    /* Sharing with other nodes (pg_share.c): a claim of it is in a batch; the last claim
     * found nothing free (no claim until a wake-up); rows were freed while it claimed. */
    uint8_t claiming, dry, freed;
    uint8_t dry_pin;   /* dry holds one of pins */
    /* A durable subscription's backlog (pg_durable.c): its name says so; this node is its
     * live node (then held holds one of pins), so it holds its messages. */
    uint8_t backlog, held;
    char name[]; /* NUL-terminated, link.len bytes before the NUL */
} pqueue;

enum { OP_ENQ, OP_ACK, OP_REQUEUE, OP_FRONT, OP_CLAIM, OP_RELEASE, OP_LEASE, OP_TOPIC,
       OP_TOPIC_BIG, OP_FETCH, OP_ENQ_FREE, OP_DUR_NEW, OP_DUR_LIVE, OP_DUR_UNLIVE,
       OP_DUR_DROP, OP_DUR_GET, OP_DUR_LOAD };

/* A record's flags (store__rec.flags): enqueued free (OP_ENQ_FREE): forgotten once its
 * batch commits, for the backlog's live node to claim. */
#define PG_REC_FREE 1

/* One write of a batch. ENQ: ptr is the pending record. ACK: key is the id. REQUEUE: key,
 * ord, redeliveries, not_before as the row now has them. FRONT: ptr is the queue (pinned),
 * prio, ord the bound. CLAIM: ptr is the queue (pinned), key how many rows at most,
 * not_before the time they must be due by. RELEASE: ptr is the record (GHOST: out of its
 * order, given back to the other nodes by this batch). LEASE: the node's lease renewed.
 * TOPIC: ptr the records of topic messages (malloc'd; key bytes of ord), not_before the
 * publish number; TOPIC_BIG: one record, by reference. FETCH: key the stompd_topic row to
 * read (pg_topic.c). ENQ_FREE: as ENQ, the row owned by no node (a backlog this node is not
 * the live node of). DUR_*: key the subscription's id (pg_durable.c); NEW: ptr its
 * statement's parameters (a store_postgres_durable at the head of a malloc'd block); GET and LOAD: ptr the answer (a PGresult) once it
 * came; NEW and LIVE: redeliveries 1 once answered, not_before the answer. */
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
    int orphans;       /* it frees the node's rows no record holds (pg__send_orphans) */
    store_commit_cb cb;
    void *arg;
} pbatch;

/* The connection: down (a timer will connect), connecting (PQconnectPoll), setting up
 * (session, statements, LISTEN, the committed batch number: one pipeline), ready. */
enum { PG_DOWN, PG_CONNECTING, PG_SETUP, PG_READY };

/* The prepared statements (their SQL is in pg_conn.c). */
enum { P_INS, P_DEL, P_REQ, P_FRONT, P_STATE, P_INS_MANY, P_DEL_MANY, P_CLAIM, P_WANT,
       P_RELEASE, P_LEASE, P_ORPHANS, P_TOPIC, P_TOPIC_BIG, P_TOPIC_GET, P_INS_FREE,
       P_DUR_NEW, P_DUR_LIVE, P_DUR_UNLIVE, P_DUR_DROP, P_DUR_GET, P_DUR_LOAD, P_DUR_NOTIFY,
       P__COUNT };

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
    uint64_t db_batch; /* setup: this node's batch number as the database has it */
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

    /* Nodes (pg_share.c). */
    int64_t node;       /* this node's number in stompd_node (1..PG_NODES_MAX) */
    uint64_t lease_ms;
    int alone;          /* the last renewal saw no other live node */
    int maybe_free;     /* rows were freed: queues not in memory may have some */
    int lease_queued;   /* a LEASE operation is in the open batch */
    int quiet;          /* quiesced: no timer, no watching while idle */
    int orphans;        /* a claim of a batch lost with its connection may have committed */
    uint64_t lease_others, lease_freed; /* the last lease's answer */
    uint64_t polled_at; /* when dry queues were last woken (loop time) */
    int be_pid;         /* the server process of the connection (its own notifications) */
    void (*wake)(void *arg, const char *queue, size_t len, uint64_t hash);
    void *wake_arg;
    uv_timer_t *tick;   /* renews the lease, wakes dry queues; unreferenced */
    PGresult **claimed; /* the rows the flying batch's claims returned */
    size_t nclaimed, claimed_cap;

    /* Topics across nodes (pg_topic.c). */
    store_postgres_topic_cb topic_cb;
    void *topic_arg;
    uint64_t topic_seq;     /* publishes numbered, so that no two payloads are equal */
    size_t topic_backlog;   /* bytes of records in the batches */
    struct ptopic_in *tin_head, *tin_tail; /* received, in order, not yet delivered */
    uint64_t round_trips, topics_in, topics_lost;

    /* Durable subscriptions (pg_durable.c). */
    struct pdur **durs;     /* the registry as this node knows it, by id */
    size_t ndur, dur_cap;
    store_postgres_durable_cb dur_cb;
    void *dur_arg;
    int dur_loading;        /* an OP_DUR_LOAD is in the open batch */
    size_t dur_next;        /* the flying batch's next DUR op waiting for its answer */
};

/* libpq through the store's loaded library (pg_lib.h): s is the store in scope. */
#define PQbackendPID(...) (s->lib.PQbackendPID(__VA_ARGS__))
#define PQfreemem(...) (s->lib.PQfreemem(__VA_ARGS__))
#define PQnfields(...) (s->lib.PQnfields(__VA_ARGS__))
#define PQnotifies(...) (s->lib.PQnotifies(__VA_ARGS__))
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
#define PQgetisnull(...) (s->lib.PQgetisnull(__VA_ARGS__))
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
#define PQserverVersion(...) (s->lib.PQserverVersion(__VA_ARGS__))
#define PQsocket(...) (s->lib.PQsocket(__VA_ARGS__))
#define PQstatus(...) (s->lib.PQstatus(__VA_ARGS__))

/* Node numbers live in the low bits of message ids, so ids are unique across nodes. */
#define PG_NODE_BITS 16
#define PG_NODES_MAX ((1 << PG_NODE_BITS) - 1)
/* The database's clock in ms: leases are compared on one clock, whatever the nodes' say. */
#define PG_NOW_MS "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
/* SQL: CTEs dead (nodes whose lease ran out, deleted; "AND id <> $1" may follow), st (their
 * id counters kept), r (their rows freed, each counted as delivered once more when its
 * band's bound covers it, as after a crash; r lists their queues) and dl (the durable
 * subscriptions they were the live node of have none). */
#define PG_REAP_SQL(cond)                                                                   \
    "WITH dead AS (DELETE FROM stompd_node WHERE lease_until < " PG_NOW_MS cond            \
    " RETURNING id, next_id),"                                                             \
    " st AS (UPDATE stompd_state SET next_id = greatest(next_id,"                          \
    " (SELECT max(next_id) FROM dead)) WHERE EXISTS (SELECT 1 FROM dead)),"                \
    " r AS (UPDATE stompd_msg AS m SET owner = 0, redeliveries ="                          \
    " m.redeliveries + (SELECT count(*) FROM stompd_front AS f"                            \
    " WHERE f.queue = m.queue AND f.prio = m.prio AND m.ord <= f.value"                    \
    " AND m.redeliveries < 2147483647)::integer"                                           \
    " WHERE m.owner IN (SELECT id FROM dead) RETURNING m.queue),"                         \
    " dl AS (UPDATE stompd_durable SET live_node = 0 WHERE live_node IN"                   \
    " (SELECT id FROM dead) RETURNING id)"
/* SQL: what the other nodes hear of dl's subscriptions (their live node is gone): a
 * count. */
#define PG_REAP_NOTIFY "(SELECT count(pg_notify('stompd_durable', '0:' || id)) FROM dl)"

/* Every session of the store turns JIT compilation off: its statements are short, but the
 * planner may cost one over jit_above_cost (the lease's, with a large backlog not yet
 * analyzed), and compiling it then blocks the connection for hundreds of ms (each second:
 * the lease is renewed that often). Servers before 11 have no JIT (nor the setting). */
#define PG_SET_JIT "SET jit TO off"
#define PG_HAS_JIT(c) (PQserverVersion(c) >= 110000)

/* A claim takes at most this many rows of a queue. */
#define PG_CLAIM_MAX 256
/* A queue whose claim found nothing is claimed again at most this often (ms) while other
 * nodes are alive, and at once when a node frees rows of it. */
#define PG_POLL_MS 1000

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

/* Connect, create or migrate the schema, register as a node (freeing dead nodes' rows),
 * claim every free row and read this node's in. s->err says why not. */
store_err pg__open_db(store *s) STORE_WUR;
/* The last transaction of a clean close (best effort: every row given back, the node
 * gone), then let go of the connection. */
void pg__close_db(store *s);
/* The row layout the load reads, for pg_conn.c and pg_schema.c. */
store__rec *pg__row_rec(store *s, const PGresult *res, int row);

/* The record r (READY or WAITING, of no batch) leaves its queue's order and the expiry
 * heap: it is given back (OP_RELEASE, GHOST) and forgotten once its batch commits. */
void pg__ghost(store *s, store__rec *r);
/* r leaves the store for good (acked, cancelled, released, or its batch failed). */
void pg__forget(store *s, store__rec *r);

/* ---- pg_share.c: several nodes on one database ---- */

/* take found nothing ready in q (created if needed): put a claim in the open batch when
 * one is due. STORE_E_AGAIN when a claim is in a batch (take again after the commit),
 * STORE_E_EMPTY when none is due, STORE_E_NOMEM. */
store_err pg__claim(store *s, const char *name, size_t len, uint64_t h,
                    uint64_t now) STORE_WUR;
/* The flying batch is settled: its claims' rows join the store (ok), its releases are
 * forgotten (ok) or back in their queues; dry queues are marked. */
void pg__share_settle(store *s, pbatch *b, int ok);
/* A notification arrived (channel, payload: the hex of a queue's name, or empty). */
void pg__notified(store *s, const char *channel, const char *payload, int pid);
/* Start the lease timer (after open). STORE_E_NOMEM. */
store_err pg__share_start(store *s) STORE_WUR;
void pg__share_stop(store *s);
/* The connection was set up again: every dry queue is worth a claim. */
void pg__share_reconnected(store *s);
/* q may have free rows: it is claimed at its next take, which it is woken for. */
void pg__undry(store *s, pqueue *q);
/* What this node holds of backlog q (ready or waiting) goes back (pg__give_back). */
void pg__release_backlog(store *s, pqueue *q);

/* ---- pg_topic.c: topics across nodes ---- */

/* An OP_TOPIC or OP_TOPIC_BIG, an OP_FETCH as a statement: 0 or -1. */
int pg__send_topic(store *s, const pop *o);
int pg__send_fetch(store *s, const pop *o);
/* A notification of channel stompd_topic. */
void pg__topic_notified(store *s, const char *payload);
/* A fetch's row (id, at_ms, data) arrived. */
void pg__topic_fetched(store *s, const PGresult *r);
/* b is settled: its topic buffers are freed, its fetches done (found or not). */
void pg__topic_settle(store *s, pbatch *b, int ok);
/* Deliver what is complete at the head of the received messages (from the poll callback,
 * never inside a store call). */
void pg__topic_drain(store *s);
/* At close: everything of topics freed. */
void pg__topic_free(store *s);

/* ---- pg_durable.c: durable subscriptions across nodes ---- */

/* Does the queue name name a backlog? */
static inline int pg_is_backlog(const char *name, size_t len)
{
    return len > STORE_POSTGRES_BACKLOG_LEN && name[1] == 'd' &&
           memcmp(name, STORE_POSTGRES_BACKLOG, STORE_POSTGRES_BACKLOG_LEN) == 0;
}
/* The backlog of subscription id, in out (48 bytes are enough): its length. */
static inline size_t pg__backlog_name(char *out, size_t cap, uint64_t id)
{
    return (size_t)snprintf(out, cap, "%s%llu", STORE_POSTGRES_BACKLOG, (unsigned long long)id);
}
/* At open (blocking, in its transaction): backlog rows of no subscription deleted, the
 * registry read. STORE_E_IO or STORE_E_NOMEM with s->err. */
store_err pg__dur_open(store *s) STORE_WUR;
/* A DUR op as its statements: 0 or -1. */
int pg__send_dur(store *s, const pop *o);
/* A durable statement's answer (8 columns) for the flying batch's next DUR op: kept. */
void pg__dur_answer(store *s, PGresult *r);
/* b is settled: the registry follows its answers (ok), or what it asked is asked again. */
void pg__dur_settle(store *s, pbatch *b, int ok);
/* A notification of channel stompd_durable. */
void pg__dur_notified(store *s, const char *payload);
/* The connection was set up again: the registry is read again, live claims asserted. */
void pg__dur_reconnected(store *s);
/* The answers the flying batch got on a lost connection are dropped. */
void pg__dur_lost(store *s);
/* r (READY or WAITING, of a backlog this node is not the live node of) goes back to the
 * database for the live node (OP_RELEASE). 0, or -1 without memory (it stays). */
int pg__give_back(store *s, store__rec *r);
/* Everything of the registry freed (close). */
void pg__dur_free(store *s);

/* ---- pg_stmt.c: statements ---- */

typedef struct pg_stmt {
    const char *name, *sql;
    int n;
    Oid types[10];
} pg_stmt;
extern const pg_stmt pg__stmts[P__COUNT];
/* One prepared statement with binary parameters and results. 0, or -1. */
int pg__send_stmt(store *s, int st, const char *const *v, const int *len);
/* The operations from b->ops[i] on as one statement; *used: how many it took. 0 or -1. */
int pg__send_next(store *s, const pbatch *b, size_t i, size_t *used);
/* The statement that gives back this node's rows no record in memory holds. 0 or -1. */
int pg__send_orphans(store *s);

/* ---- pg_conn.c: the connection on the loop ---- */

/* Prepare the statements on a fresh (blocking) connection: 0, or -1 (s->err says why). */
int pg__prepare(store *s);
/* Start watching the connection on the loop (pipeline mode, non-blocking). STORE_E_IO. */
store_err pg__attach(store *s) STORE_WUR;
/* Send s->fly now if the connection is ready (else it goes once it is). */
void pg__send_fly(store *s);
/* Quiesced: the connection is no longer watched while idle. */
void pg__quiesce(store *s);
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
