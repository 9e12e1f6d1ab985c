/* store.h: the queue storage interface the broker reaches every backend through.
 *
 * A backend is a versioned table of functions (store_ops): new methods are only ever
 * appended at the end and STORE_OPS_VERSION grows with them, so a caller checks the version
 * before using a newer slot; an optional slot may be NULL (it says so), checked as well.
 * Every backend passes the contract suite in tests/lib/store_contract.c unchanged (run on
 * each by tests/store/test_store_contract.c). Version 10 (enqueue_shared) lets one message go
 * into several queues with its body held once (durable topic subscriptions): the memory
 * backend shares one counted body, the SQLite backend one row of its body table (schema 5);
 * PostgreSQL leaves it NULL.
 *
 * Model. A store holds named queues of messages. A message is (id, queue, header block,
 * body, redelivery count, priority, expiry); the header block is opaque bytes to the store.
 * Each message is in exactly one state:
 *   pending   enqueued, its commit has not completed: invisible to store_ops.take
 *   waiting   committed with a time before which take_at does not hand it out (enqueue_attrs'
 *             not_before, or requeue_at's), in no order yet
 *   ready     committed, in its queue's order: the highest priority first (0-9; enqueue's
 *             messages have 4), within a priority FIFO by id, requeued ones at the head of
 *             their priority
 *   taken     handed out by take (or take_expired), waiting for ack (removed) or requeue
 *             (back to ready or waiting)
 * A waiting message becomes ready when take_at (or next_due, browse) finds it due: one never
 * handed out (redeliveries 0) at the place its id gives it in its priority, one that was
 * requeued at the head of its priority, before messages that were ready. A message can have
 * an expiry (enqueue_attrs): from that time on, take_at does not hand it out; take_expired
 * does (version 7).
 * All writes (enqueue, ack, requeue) made between two commits form one batch that the
 * commit makes durable atomically: all of it or none. The broker groups the writes of one
 * loop turn into one batch (group commit); a STOMP transaction is applied within one turn,
 * so its effects land in one batch.
 * Message ids are unique and increasing for the life of the data: a persistent backend
 * never reuses an id after reopening.
 * Redelivery: a message taken and neither acked nor requeued when a persistent store is
 * closed comes back after reopening with redeliveries + 1. After a crash (no close) every
 * message that take, take_hashed or take_at may have handed out comes back with
 * redeliveries + 1; the backend records a bound ahead of the takes for each priority of each
 * queue (a take jumps ahead in id order only to another priority, whose own bound covers
 * it), so a few messages of each priority near its delivery position that were never handed
 * out may be counted too (never one that was missed). A message handed out by take_expired
 * went to the caller, not to a consumer: the bound does not cover it, and after a crash it
 * comes back (still expired) with its count as it was.
 * Single-threaded: every call is made on the thread that owns the store (the loop thread);
 * a backend may run commit work on other threads but completes on the owner's loop.
 */
#ifndef STORE_H
#define STORE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define STORE_WUR __attribute__((warn_unused_result))
#else
#define STORE_WUR
#endif

typedef enum store_err {
    STORE_OK = 0,
    STORE_DONE,        /* commit: the batch is already durable; the callback will NOT run */
    STORE_E_EMPTY,     /* take: no ready message in that queue */
    STORE_E_NOTFOUND,  /* ack/requeue: no taken message with that id */
    STORE_E_NOMEM,     /* an allocation failed; the store is unchanged */
    STORE_E_IO,        /* the backend's storage failed */
    STORE_E_BUSY,      /* commit: a commit is already in flight; retry after it completes */
    STORE_E_INVALID,   /* bad argument (e.g. empty queue name) */
    STORE_E_AGAIN,     /* take: the head may be handed out only after the next commit
                        * completes (ops version 2; see take) */
    STORE_E_EXPIRED,   /* take_at: the next message has expired; hand it out with
                        * take_expired (ops version 7) */
    STORE_E__COUNT
} store_err;

/* A readable, static message for a code. Never NULL. */
const char *store_strerror(store_err err);

/* A message handed out by take. Every pointer is borrowed from the store, valid until the
 * message is acked or requeued, or the store is closed. */
typedef struct store_msg {
    uint64_t id;
    const char *queue;
    size_t queue_len;
    const char *headers; /* opaque header block as given to enqueue */
    size_t headers_len;
    const char *body;
    size_t body_len;
    uint32_t redeliveries; /* times this message went back to its queue */
    /* ---- version 7 ---- */
    uint8_t priority; /* 0-9 (enqueue_attrs); enqueue's messages have 4 */
    uint64_t expires; /* expired from this time on (enqueue_attrs); 0: never */
} store_msg;

/* A message's attributes at enqueue_attrs (ops version 7). */
typedef struct store_attrs {
    uint8_t priority;    /* 0-9, higher first; enqueue's messages have STORE_PRIORITY_DEFAULT */
    uint64_t not_before; /* take_at does not hand it out before this time (0: at once) */
    uint64_t expires;    /* 0: never; else the time from which it is expired */
} store_attrs;

#define STORE_PRIORITY_DEFAULT 4
#define STORE_PRIORITY_MAX 9

/* Where a browse of a queue is (ops version 7): the caller's, zeroed before the first call,
 * opaque. */
typedef struct store_cursor {
    uint64_t pos[4];
} store_cursor;

typedef struct store_options {
    uv_loop_t *loop;   /* the owner's loop: completions run on it */
    const char *path;  /* backend-specific location; NULL for the memory backend */
    int sync_full;     /* persistent backends: survive power loss, not only a killed process */
    /* Optional (ops version 2): when open fails, a backend that knows why writes a
     * NUL-terminated reason here (truncated to reason_size). NULL/0: no reason wanted. */
    char *reason;
    size_t reason_size;
    /* Optional, for a backend several processes share (postgres): zero when unused.
     * lease_ms: how long this process's claims outlive it (0: the backend's default).
     * wake: called on the owner's loop, never inside a store call: with a queue, that
     * queue may have messages take would now hand out (another process gave some up):
     * take again; with queue NULL, the backend put writes of its own in the open batch:
     * commit (it makes progress only through commits). */
    unsigned lease_ms;
    void (*wake)(void *arg, const char *queue, size_t queue_len, uint64_t hash);
    void *wake_arg;
} store_options;

typedef struct store store; /* one open store: backend-specific */

/* The hash of a queue name that every backend indexes by, and that callers of the version
 * 3 functions pass in, so a name is hashed once per message for the broker's tables and
 * the store's. Eight bytes per step; the length is mixed in, so "a" and "a\0" differ. */
static inline uint64_t store_hash_name(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 32);
}

/* Commit completion, run on the owner's loop, never inside the commit call. status is
 * STORE_OK or STORE_E_IO (then the batch is lost: pending messages are dropped). */
typedef void (*store_commit_cb)(void *arg, store_err status);

/* A consumer's scan of one queue for take_match (ops version 8): the caller's, zeroed
 * before the first call (and to start over), opaque. One per (consumer, queue). */
typedef struct store_scan {
    uint64_t gen;                           /* the queue's order changes it has seen */
    uint64_t begun;                         /* bit p: it has a place in band p */
    int64_t ord[STORE_PRIORITY_MAX + 1];    /* per band: everything up to (ord, id) was */
    uint64_t id[STORE_PRIORITY_MAX + 1];    /* passed (rejected, or taken) */
    uint64_t hint[STORE_PRIORITY_MAX + 1];  /* a message at or before that place, to go on
                                               from */
} store_scan;

/* Does the consumer want message m (ops version 8)? m is borrowed for the call; the
 * function must not call the store. */
typedef int (*store_match_fn)(void *arg, const store_msg *m);

/* One queue of enqueue_shared (ops version 10): what the caller gives, and the id it gets. */
typedef struct store_target {
    const char *queue;
    size_t queue_len;
    uint64_t hash;           /* store_hash_name(queue, queue_len) */
    const store_attrs *attrs; /* NULL: enqueue's (priority 4, no time) */
    uint64_t id;             /* out: the new message's id */
} store_target;

#define STORE_OPS_VERSION 10u

typedef struct store_ops {
    unsigned version; /* STORE_OPS_VERSION the backend was written for */
    const char *name; /* "memory", "sqlite" */

    /* Open a store. *out: caller owns, release with close. */
    store_err (*open)(const store_options *opts, store **out) STORE_WUR;
    /* Release everything. No commit may be in flight. */
    void (*close)(store *s);

    /* Add a message to the tail of queue (created on first use). The data is copied.
     * *id receives the new id. The message is pending until the next commit completes. */
    store_err (*enqueue)(store *s, const char *queue, size_t queue_len, const char *headers,
                         size_t headers_len, const char *body, size_t body_len,
                         uint64_t *id) STORE_WUR;
    /* Hand out the ready message at the head of queue: *out is borrowed (see store_msg).
     * STORE_E_EMPTY when there is none. A persistent backend records how far a queue may
     * have been handed out before it hands a message out (see "Redelivery" above): when
     * the head lies beyond what is recorded it returns STORE_E_AGAIN, has put the record
     * in the open batch, and the caller commits and takes again once that completed. */
    store_err (*take)(store *s, const char *queue, size_t queue_len, store_msg *out) STORE_WUR;
    /* Remove a taken message for good (a write). */
    store_err (*ack)(store *s, uint64_t id) STORE_WUR;
    /* Put a taken message back at the head of its queue with redeliveries + 1 (a write);
     * it is ready again at once. Each requeue goes in front of the whole queue, so a
     * caller returning several messages requeues them newest first to keep their order. */
    store_err (*requeue)(store *s, uint64_t id) STORE_WUR;
    /* Make every write since the last commit durable, atomically. Returns STORE_DONE when
     * that is already so (cb not called), STORE_OK when cb will run later on the loop, or an
     * error (cb not called, batch still open). At most one commit in flight. */
    store_err (*commit)(store *s, store_commit_cb cb, void *arg) STORE_WUR;
    /* Ready messages in queue (0 for an unknown queue). */
    size_t (*depth)(store *s, const char *queue, size_t queue_len);

    /* ---- version 2 ---- */
    /* Bytes the store holds in memory now (records, windows, caches): what it costs the
     * process, not the size of its queues. */
    size_t (*resident)(store *s);
    /* Text of the last failure (a commit that reported STORE_E_IO, a take that could not
     * read); "" when none. Borrowed, valid until the next call on s. Never NULL. */
    const char *(*last_error)(store *s);

    /* ---- version 3 ---- */
    /* enqueue and take with hash = store_hash_name(queue, queue_len) computed by the
     * caller; otherwise exactly as enqueue and take. */
    store_err (*enqueue_hashed)(store *s, const char *queue, size_t queue_len, uint64_t hash,
                                const char *headers, size_t headers_len, const char *body,
                                size_t body_len, uint64_t *id) STORE_WUR;
    store_err (*take_hashed)(store *s, const char *queue, size_t queue_len, uint64_t hash,
                             store_msg *out) STORE_WUR;

    /* ---- version 4 ---- */
    /* Take back a message enqueued in the open batch (pending, its commit not begun), as if
     * it had never been enqueued: a STOMP transaction whose later SEND fails leaves none of
     * its messages. STORE_E_NOTFOUND when id is not such a message (nothing changes). */
    store_err (*cancel)(store *s, uint64_t id) STORE_WUR;

    /* ---- version 5: time ---- */
    /* As requeue, but the message is not handed out by take_at before not_before (a time
     * on the caller's clock, ms: the one it passes to take_at; persistent stores keep it,
     * so use a clock that survives restarts, such as the Unix time). When it is due it
     * goes to the head of its queue, before messages that were waiting; several due
     * together keep their id order. not_before 0: requeue. */
    store_err (*requeue_at)(store *s, uint64_t id, uint64_t not_before) STORE_WUR;
    /* As take_hashed, handing out only messages due at now. (take and take_hashed hand
     * out a waiting message whatever its time and an expired one as any other: for callers
     * that use no time.) Version 7: when the first message of the queue's order is expired
     * at now (expires <= now) it answers STORE_E_EXPIRED and hands out nothing: the message
     * keeps its place until take_expired hands it out (take_expired at the same now reaches
     * it: it hands out every expired message, earliest expiry first), then take_at goes on
     * with the next. */
    store_err (*take_at)(store *s, const char *queue, size_t queue_len, uint64_t hash,
                         uint64_t now, store_msg *out) STORE_WUR;
    /* The earliest not_before of queue's messages not due at now; 0 when there is none
     * (when to take_at again). */
    uint64_t (*next_due)(store *s, const char *queue, size_t queue_len, uint64_t hash,
                         uint64_t now);

    /* ---- version 6 ---- */
    /* The taken message id, as take handed it out (*out borrowed the same way): what a
     * caller that kept only the id needs to copy it elsewhere (a dead-letter queue) before
     * acking it. STORE_E_NOTFOUND when id is not a taken message. Not a write. */
    store_err (*get)(store *s, uint64_t id, store_msg *out) STORE_WUR;

    /* ---- version 7: priority, delay, expiry, sizes, browsing ---- */
    /* As enqueue_hashed, with attributes a (NULL: those of enqueue: priority 4, no time).
     * Priority above STORE_PRIORITY_MAX: STORE_E_INVALID. With not_before, the message is
     * waiting once committed and takes its place by id when take_at finds it due (see the
     * model above); its expiry is kept with it and reported in store_msg.expires. */
    store_err (*enqueue_attrs)(store *s, const char *queue, size_t queue_len, uint64_t hash,
                               const char *headers, size_t headers_len, const char *body,
                               size_t body_len, const store_attrs *a, uint64_t *id) STORE_WUR;
    /* Hand out (taken, *out borrowed as take's) one message of any queue, ready or waiting,
     * whose expires is nonzero and <= now: the earliest (expires, id) of all. STORE_E_EMPTY
     * when there is none. The caller acks it (typically after enqueueing a copy in a
     * dead-letter queue in the same batch) or requeues it. Not a delivery: see "Redelivery".
     * A persistent backend finds it through an index of the file: no queue is read into
     * memory for it. */
    store_err (*take_expired)(store *s, uint64_t now, store_msg *out) STORE_WUR;
    /* The earliest expires of the messages take_expired can hand out (committed, not
     * taken); 0 when none (or when it could not be read: see last_error). One timer at
     * this time is enough: a commit or requeue can only bring it earlier, so ask again
     * after those. */
    uint64_t (*next_expiry)(store *s);
    /* The queue's messages not yet acked (pending, waiting, ready, taken) in *count, and
     * the bytes of their header blocks and bodies in *bytes; 0 and 0 for an unknown queue.
     * Kept as the messages come and go, and as the file has them after a restart or a
     * crash (a persistent backend may add them up from its file at the open after a crash);
     * after a failed commit it follows memory (acks that did not reach the file are counted
     * as done) until the next open. */
    void (*queue_size)(store *s, const char *queue, size_t queue_len, uint64_t hash,
                       uint64_t *count, uint64_t *bytes);
    /* Read the queue's ready messages in delivery order without taking them: *cur zeroed
     * for the first call; each call gives the next one (*out borrowed until the next call on
     * s, which may also move or free what it points at; redeliveries, priority and expires
     * as they are now: an expired message is shown, expires tells), STORE_E_EMPTY after the
     * last. Waiting messages due at now count as ready. A message ready when the browse
     * began and ready all along is seen exactly once; one that became ready since may or
     * may not be seen, never twice. Not a write; a persistent backend reads the file one
     * indexed row at a time, never a whole queue. */
    store_err (*browse)(store *s, const char *queue, size_t queue_len, uint64_t hash,
                        store_cursor *cur, uint64_t now, store_msg *out) STORE_WUR;

    /* ---- version 8: selectors and wildcards ---- */
    /* As take_at, but hand out the first ready message in the queue's order that match
     * accepts, leaving the ones before it where they are: what a consumer with a selector
     * takes. The scan remembers how far the consumer looked, band by band: a call goes on
     * after the last message it passed (match is not asked again about one it rejected),
     * so draining a queue with a selector reads each message once per consumer, not the
     * whole queue per take. New messages join their band's tail, after every place; when
     * the order changes before a place (a requeue, a waiting message becoming due) the scan
     * starts over from the head, once. STORE_E_EXPIRED when the first message match accepts
     * is expired at now (nothing taken; the scan stays before it, so after take_expired the
     * next call goes on from there); STORE_E_AGAIN as take (a persistent backend records
     * the bound up to the message first: after a crash, messages the scan passed below that
     * bound come back with redeliveries + 1). STORE_E_EMPTY when no ready message matches.
     * A persistent backend reads the file's rows of a band into memory as the scan passes
     * them, a window at a time. */
    store_err (*take_match)(store *s, const char *queue, size_t queue_len, uint64_t hash,
                            uint64_t now, store_scan *scan, store_match_fn match, void *arg,
                            store_msg *out) STORE_WUR;
    /* Call fn once for each queue that holds a message (pending, waiting, ready or taken),
     * with its name (borrowed for the call, NUL-terminated) and store_hash_name(); fn must
     * not call the store. What a wildcard consumer's queues are found with. */
    void (*queues)(store *s, void (*fn)(void *arg, const char *name, size_t len, uint64_t hash),
                   void *arg);

    /* ---- version 9 ---- */
    /* Optional (NULL: nothing to do). The owner is stopping and will close the store after
     * its last commit: stop what the backend does on the loop by itself (timers, watching
     * for other processes), so that its handles are closed before the owner's loop ends.
     * Commits still work. */
    void (*quiesce)(store *s);

    /* ---- version 10: one body for many queues ---- */
    /* Optional (NULL: enqueue_attrs once per queue). One message, the same header block and
     * body, into each of the n queues of t (each with its own attributes): n messages as n
     * calls of enqueue_attrs would make them (ids t[i].id, increasing; each taken, acked,
     * requeued, expired, browsed, matched and cancelled on its own), but the body is held
     * once for all of them and goes with the last of them. All or nothing: on an error none
     * is enqueued. queue_size counts the body in each queue (what each queue holds); the
     * memory backend's resident counts it once. n 0: STORE_E_INVALID. */
    store_err (*enqueue_shared)(store *s, store_target *t, size_t n, const char *headers,
                                size_t headers_len, const char *body,
                                size_t body_len) STORE_WUR;
} store_ops;

/* The memory backend: fast, nothing survives close. Borrowed, static, never NULL. */
const store_ops *store_memory_backend(void);

#ifdef __cplusplus
}
#endif
#endif
