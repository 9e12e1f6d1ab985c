/* internal.h: the broker's internal types and cross-file functions (<module>__<verb>).
 *
 * Ownership in one picture: broker owns conns (list), dests (hash by name) and the store.
 * A conn owns its subscriptions, transactions and held receipts; a subscription owns its
 * unacked deliveries. Everything runs on the loop thread; objects with handles are freed
 * only in close callbacks, and teardown of a conn is deferred to the broker's tick (a safe
 * point no handler is on the stack of).
 */
#ifndef BROKER_INTERNAL_H
#define BROKER_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "broker.h"
#include "stomp.h"
#include "store.h"

#if defined(__GNUC__) || defined(__clang__)
#define PRINTF_LIKE(a, b) __attribute__((format(printf, a, b)))
#else
#define PRINTF_LIKE(a, b)
#endif

typedef struct conn conn;
typedef struct broker_sub sub;
typedef struct dest dest_t;

/* ---- shared buffers (sbuf.c) ---------------------------------------------------------- */

/* A refcounted byte buffer: one encoded MESSAGE queued on many connections. Not atomic:
 * loop thread only. */
typedef struct sbuf {
    uint32_t refs;
    size_t len;
    char data[];
} sbuf;

sbuf *sbuf__new(size_t len); /* refs = 1; NULL when out of memory */
void sbuf__ref(sbuf *sb);
void sbuf__unref(sbuf *sb);

/* ---- output queue (outq.c) ------------------------------------------------------------ */

/* One queued piece: len bytes at off in sb (a shared MESSAGE part, or one of the queue's
 * own chunks); the entry holds one reference to sb. */
typedef struct oent {
    sbuf *sb;
    size_t off, len;
} oent;

/* Frames waiting to be written. Small frames (and small shared parts) are copied into
 * refcounted chunks that never move; big shared parts are referenced. "pend" collects
 * while "fl" is being written (one write in flight): appending never moves bytes a write
 * is reading. An idle queue holds no memory. */
typedef struct outq {
    oent *pend;
    size_t npend, pend_cap;
    oent *fl;
    size_t nfl, fl_cap;
    sbuf *chunk; /* where copied bytes go (chunk->len is its capacity); NULL: none yet */
    size_t chunk_used;
    sbuf *spare; /* a written full-size chunk kept for the next one (busy queues only) */
    size_t queued; /* bytes pending plus in flight */
    int inflight;
} outq;

/* Reserve n inline bytes at the end of the pending data: NULL when out of memory. */
char *outq__reserve(outq *q, size_t n);
/* Queue a reference to sb (taken here). -1 when out of memory (no reference taken). */
int outq__push_shared(outq *q, sbuf *sb) BROKER_WUR;
/* Shared parts up to this size are copied into the queue rather than referenced: for
 * small frames a copy is cheaper than a reference and an iovec of its own. */
#define OUTQ_COPY_MAX 2048
/* Queue bytes a then b (copied) followed by sb (copied up to OUTQ_COPY_MAX bytes, else
 * referenced): all or nothing. */
int outq__push_prefixed(outq *q, const char *a, size_t alen, const char *b, size_t blen,
                        sbuf *sb) BROKER_WUR;
/* Move pending entries in flight and fill *iov (grown as needed: an array the caller
 * keeps, needed only until the write call returns); returns the iov count (0: nothing). */
size_t outq__start(outq *q, uv_buf_t **iov, size_t *iov_cap);
/* The write in flight finished: release it. Returns the bytes it held. */
size_t outq__done(outq *q);
void outq__free(outq *q);

/* ---- transport (transport_tcp.c) ------------------------------------------------------- */

/* A byte-stream transport under a conn. Completions call back into conn.c:
 * conn__on_read, conn__on_written, conn__on_handle_closed. */
typedef struct transport_ops {
    void (*init)(conn *c, uv_loop_t *loop); /* handles initialised, owned by c */
    /* Take a pending connection from a listener. */
    int (*accept)(conn *c, uv_stream_t *server);
    int (*read_start)(conn *c);
    void (*read_stop)(conn *c);
    int (*write)(conn *c, const uv_buf_t *bufs, unsigned nbufs);
    void (*close)(conn *c); /* one conn__on_handle_closed per handle it owns */
    int nhandles;
} transport_ops;

const transport_ops *transport__tcp(void);
/* STOMP over WebSocket (transport_ws.c): HTTP upgrade, then one STOMP frame per message
 * out, messages as one byte stream in. */
const transport_ops *transport__ws(void);

/* ---- destinations and messages (router.c, message.c) ------------------------------------ */

struct dest {
    dest_t *hnext;
    dest_t *next_dispatch; /* broker's dispatch list */
    dest_t *next_touched;  /* broker's list of queues written in the open batch */
    uint64_t hash;
    int is_topic;
    sub *head, *tail; /* subscribers, in subscribe order */
    sub *cursor;      /* queues: round-robin position (next to try) */
    size_t nsubs;
    int busy;         /* iterations over the subscriber list in progress */
    int has_dead;     /* subscribers removed while busy, to sweep */
    int on_dispatch, on_touched;
    size_t pins; /* references from commits in flight */
    size_t name_len;
    char name[];
};

/* A message outside the store: topic messages, in-process publishes, transaction SENDs.
 * Header block: "name\0value\0" pairs. enc[v]: the encoded shared part for version v,
 * built on first use, shared by every subscriber of that version. */
typedef struct bmsg {
    uint32_t refs;
    uint64_t seq; /* topic message number */
    char *dest;
    size_t dest_len;
    char *hdrs;
    size_t hdrs_len;
    char *body;
    size_t body_len;
    sbuf *enc[3];
    char data[];
} bmsg;

/* Build a message from a SEND frame (headers filtered) or from publish arguments.
 * Caller owns, release with bmsg__unref(). NULL when out of memory. */
bmsg *bmsg__from_frame(const stomp_frame *f, const char *dest, size_t dest_len);
bmsg *bmsg__from_parts(const char *dest, const broker_header *h, size_t nh, const void *body,
                       size_t body_len);
void bmsg__unref(bmsg *m);

/* Header block of a SEND frame written into *buf (grown as needed): 0 or -1 (no memory). */
int msg__header_block(const stomp_frame *f, char **buf, size_t *cap, size_t *len) BROKER_WUR;
/* Encode the shared part of a MESSAGE (everything after the per-subscription prefix).
 * With scratch NULL the caller owns the result. Otherwise a result of at most
 * OUTQ_COPY_MAX bytes is written to *scratch (grown, *scratch_cap updated; refs stays 1),
 * borrowed until the next call: only for handing to outq, which copies such parts. Any
 * other result is the caller's. NULL when out of memory. */
sbuf *msg__encode(stomp_version v, const char *dest, size_t dest_len, const char *msgid,
                  uint32_t redeliveries, const char *hdrs, size_t hdrs_len, const char *body,
                  size_t body_len, sbuf **scratch, size_t *scratch_cap);
/* Decimal digits of v at o, no terminator: the count (at most 20). */
size_t msg__u64(char *o, uint64_t v);
/* First value of name in a header block, or NULL. */
const char *msg__block_header(const char *hdrs, size_t len, const char *name);

typedef struct delivery delivery;

/* Route a message to dest: topic fan-out now, queue into the store. m is borrowed.
 * For queues *stored is set to 1 (the caller's receipt must wait for the commit). */
broker_err router__send(broker *b, bmsg *m, int *stored) BROKER_WUR;
/* Same for a SEND frame without building a bmsg for queues. */
broker_err router__send_frame(broker *b, const stomp_frame *f, const char *dname, size_t dlen,
                              int *stored) BROKER_WUR;
dest_t *router__find(broker *b, const char *name, size_t len);
dest_t *router__get(broker *b, const char *name, size_t len); /* NULL: out of memory */
void router__release(broker *b, dest_t *d); /* free if nothing uses it */
void router__schedule(broker *b, dest_t *d); /* dispatch at the next tick */
void router__touch(broker *b, dest_t *d);    /* dispatch after the next commit */
void router__dispatch(broker *b, dest_t *d);
int router__is_topic(const char *name, size_t len);
void router__add_sub(broker *b, dest_t *d, sub *s);
void router__remove_sub(broker *b, sub *s); /* unlinks (or marks dead) and frees */
void router__free_all(broker *b);

/* ---- subscriptions and deliveries (sub.c) --------------------------------------------- */

enum { ACK_AUTO, ACK_CLIENT, ACK_INDIVIDUAL };

struct delivery {
    delivery *prev, *next; /* subscription's unacked list, in delivery order */
    delivery *hnext;       /* conn's tag hash chain */
    sub *s;
    uint64_t tag;      /* the 1.2 ack id, unique per connection */
    uint64_t msg_num;  /* store id (queue) or topic sequence */
    int is_queue;
    size_t bytes;      /* counted against broker memory (queue messages) */
};

struct broker_sub {
    broker *b;
    conn *c; /* NULL for in-process subscribers */
    dest_t *d;
    sub *dprev, *dnext; /* dest list */
    sub *cprev, *cnext; /* conn list */
    char *id;
    size_t id_len;
    int ack_mode;
    size_t window; /* prefetch */
    size_t nunacked;
    delivery *uhead, *utail;
    char *prefix; /* "MESSAGE\nsubscription:<id>\n" in the conn's version */
    size_t prefix_len;
    broker_message_cb cb;
    void *cb_arg;
    int dead;
};

/* Does s have room for one more queue message? */
int sub__has_room(broker *b, sub *s);
/* Hand one message to s. For queues msg is the taken store message (store_id set);
 * shared is the encoded part for s's version (borrowed; referenced if queued). */
broker_err sub__deliver(broker *b, sub *s, sbuf *shared, int is_queue, uint64_t msg_num,
                        size_t bytes, const broker_message *inproc) BROKER_WUR;
/* Return every unacked delivery of s to its queue (newest first, so order is kept). */
void sub__return_unacked(broker *b, sub *s);
/* Acknowledge (or, nack != 0, return) delivery d, cumulatively for client mode. */
void sub__settle(broker *b, delivery *d, int nack);
delivery *sub__find_tag(conn *c, uint64_t tag);
delivery *sub__find_msgid(conn *c, const char *msgid, const char *subid);
void sub__free(sub *s);
void sub__free_cache(broker *b); /* the recycled deliveries, at broker_free */
/* A new subscription (not yet on any list). id is copied; the prefix is encoded for
 * version v. NULL when out of memory. */
sub *sub__new(broker *b, conn *c, const char *id, size_t id_len, int ack_mode, size_t window,
              stomp_version v);

/* ---- connections (conn.c) ------------------------------------------------------------ */

enum { CS_CONNECTING, CS_OPEN, CS_CLOSING };

typedef struct held {
    struct held *next;
    uint64_t epoch;
    size_t len;
    char rid[];
} held;

typedef struct txop {
    struct txop *next;
    int kind; /* STOMP_CMD_SEND, _ACK, _NACK */
    bmsg *m;
    uint64_t tag;
} txop;

typedef struct tx {
    struct tx *next;
    txop *head, *tail;
    size_t nops, bytes;
    char id[];
} tx;

struct conn {
    broker *b;
    conn *prev, *next;  /* broker's list */
    conn *next_doomed;  /* broker's teardown list */
    conn *next_flush;   /* broker's list of conns with output to write */
    conn *hprev, *hnext; /* broker's list of conns with held receipts */
    const transport_ops *tp;
    void *tp_state; /* the transport's own state (WebSocket); NULL for TCP */
    uv_tcp_t tcp; /* the transport's stream (a WebSocket transport layers on it) */
    uv_write_t wreq;
    uv_timer_t rx_timer, hb_timer;
    int handles_open;
    int state;
    unsigned reading : 1, doomed : 1, detached : 1, closing_handles : 1, abort : 1,
        graceful : 1, paused_mem : 1, paused_out : 1, out_blocked : 1, on_held : 1,
        hb_wrote : 1, on_flush : 1, policy_done : 1, policy_only : 1;
    stomp_parser parser;
    stomp_version version;
    /* Input bytes [roff, rlen) of rbuf. During a read rbuf is the broker's shared read
     * buffer; between reads it is the stash (or NULL): the unconsumed tail, kept only while
     * the conn is paused between frames (or a Flash policy request is incomplete). */
    char *rbuf;
    size_t roff, rlen;
    char *stash;
    outq out;
    uint64_t id;
    sub *subs_head;
    size_t nsubs;
    delivery **dtab; /* tag hash */
    size_t dtab_cap, ndeliv;
    uint64_t next_tag;
    tx *txs;
    size_t ntx;
    held *held_head, *held_tail;
    uint32_t hb_out, hb_in; /* negotiated intervals, ms (0 = none) */
    uint64_t last_rx;
    char errmsg[200];
    const char *err_hdr_name, *err_hdr_value; /* one extra ERROR header (static strings) */
    broker_auth *auth; /* a login check waiting for its answer: read and parse nothing */
};

/* A conn over transport tp, handles initialised; NULL if out of memory. */
conn *conn__new(broker *b, const transport_ops *tp);
void conn__on_read(conn *c, ssize_t nread);
void conn__alloc(conn *c, uv_buf_t *buf);
void conn__on_written(conn *c, int status);
void conn__on_handle_closed(conn *c);
int conn__start(conn *c); /* after accept */

/* Queue a whole frame encoded for the session's version. */
broker_err conn__send_frame(conn *c, const stomp_frame *f) BROKER_WUR;
/* Queue RECEIPT now, or hold it until the store committed the current batch. */
broker_err conn__receipt(conn *c, const char *rid, size_t len, int needs_commit) BROKER_WUR;
/* Kick the writer if idle. */
void conn__flush(conn *c);
/* Output was queued: write it at the tick (gathers a turn's frames into one write). */
void conn__want_flush(conn *c);
/* The one place turning a failure into ERROR + close: message text, the offending frame
 * (for receipt-id; may be NULL). Safe to call anywhere, any number of times. */
void conn__fail(conn *c, broker_err code, const stomp_frame *f, const char *msg);
/* End gracefully: stop reading, write what is queued (held receipts too), then close. */
void conn__end(conn *c);
/* Close without an ERROR (peer went away, write failed, broker stopping). */
void conn__close(conn *c);
/* Teardown at the broker's tick. */
void conn__detach(conn *c);
void conn__maybe_close(conn *c);
void conn__resume(conn *c);
void conn__flush_held(conn *c, uint64_t done_epoch);
void conn__set_error(conn *c, const char *fmt, ...) PRINTF_LIKE(2, 3);
void conn__start_heartbeats(conn *c);
void conn__track_delivery(conn *c, delivery *d);
void conn__untrack_delivery(conn *c, delivery *d);

/* ---- frame handlers (handle_*.c) and dispatch (dispatch.c) ------------------------------ */

void dispatch__frame(conn *c, const stomp_frame *f);
broker_err handle__connect(conn *c, const stomp_frame *f) BROKER_WUR;
broker_err handle__send(conn *c, const stomp_frame *f) BROKER_WUR;
broker_err handle__subscribe(conn *c, const stomp_frame *f) BROKER_WUR;
broker_err handle__unsubscribe(conn *c, const stomp_frame *f) BROKER_WUR;
broker_err handle__ack(conn *c, const stomp_frame *f) BROKER_WUR;
broker_err handle__begin(conn *c, const stomp_frame *f) BROKER_WUR;
broker_err handle__commit(conn *c, const stomp_frame *f) BROKER_WUR;
broker_err handle__abort(conn *c, const stomp_frame *f) BROKER_WUR;
broker_err handle__disconnect(conn *c, const stomp_frame *f) BROKER_WUR;
/* Asynchronous logins (handle_connect.c): apply the answers that came in (at the tick);
 * forget a conn going away (at its teardown) so a late answer does not reach it. */
void handle__auth_run(broker *b);
void handle__auth_abandon(conn *c);
void tx__free_all(conn *c);
/* Receipt handling shared by handlers: after the frame's effect. */
broker_err handle__receipt(conn *c, const stomp_frame *f, int needs_commit) BROKER_WUR;

/* ---- the broker (broker.c, commit.c, listen.c) ----------------------------------------- */

enum { LISTEN_STOMP, LISTEN_WS, LISTEN_POLICY };

typedef struct listener {
    struct listener *next;
    broker *b;
    uv_tcp_t tcp;
    int port;
    int kind; /* LISTEN_* */
} listener;

/* Flash policy (policy.c). While a conn is CONNECTING and its first bytes may still be a
 * <policy-file-request/>: 1 if they are (answered, or waiting for the rest: do not parse),
 * 0 once they are not (sets policy_done). */
int policy__intercept(conn *c);

struct broker {
    uv_loop_t *loop;
    broker_options o;
    const store_ops *st;
    store *store;
    listener *listeners;
    conn *conns;
    conn *doomed;
    conn *flush_list;
    conn *held_conns;
    dest_t **dtab;
    size_t dtab_cap, ndests;
    dest_t *dispatch_list;
    dest_t *touched;        /* queues enqueued to in the open batch */
    dest_t **inflight;      /* queues enqueued to in the batch being committed */
    size_t ninflight, inflight_cap;
    uv_idle_t idle;   /* keeps the poll from blocking while the tick has work */
    uv_check_t check; /* the tick: runs after every poll */
    int idle_on;
    int stopping, stopped;
    broker_stop_cb stop_cb;
    void *stop_arg;
    int handles_open; /* idle + listeners */
    uint64_t epoch, done_epoch, inflight_epoch;
    int core_closing;
    uint64_t inproc_seq;
    int dirty, commit_inflight;
    uint64_t writes; /* store writes ever: handlers compare before/after */
    uint64_t next_conn_id, topic_seq;
    int resume_wanted;
    size_t npaused;
    broker_stats stats;
    delivery *dfree; /* recycled deliveries (sub.c) */
    size_t ndfree;
    char *scratch; /* header block of SENDs going straight to the store */
    char *rbuf;    /* the read buffer every conn reads into (o.read_buffer bytes), lazily */
    sbuf *encbuf;  /* queue MESSAGEs small enough to be copied are encoded here */
    size_t encbuf_cap;
    uv_buf_t *iov; /* the iovec of the write being started (any conn) */
    size_t iov_cap;
    size_t scratch_cap;
    int store_counted; /* the store cannot report its resident bytes: count message bytes */
    broker_auth *auth_ready;  /* answered logins to apply at the tick */
    size_t auth_outstanding;  /* login records not freed yet: a stop waits for them */
};

/* One log record (see broker_log_fn); conn_id 0 when it concerns no connection. */
void broker__log(broker *b, broker_log_level lvl, broker_event ev, uint64_t conn_id,
                 const char *fmt, ...) PRINTF_LIKE(5, 6);
void broker__kick(broker *b); /* make sure the tick runs soon */
void broker__doom(broker *b, conn *c);
void broker__conn_freed(broker *b);
void broker__handle_closed(broker *b);
void broker__mem_add(broker *b, size_t n);
void broker__mem_sub(broker *b, size_t n);
int broker__over_memory(const broker *b);
/* Store writes go through here so the batch is marked dirty. */
void commit__dirty(broker *b);
void commit__run(broker *b); /* at the tick */
void listen__close_all(broker *b);
void broker__maybe_finish_stop(broker *b);
tx *tx__find(conn *c, const char *id);
/* Buffer a SEND / an ACK or NACK (by delivery tag) in t. LIMIT when t is full. */
broker_err tx__add_send(conn *c, tx *t, const stomp_frame *f, const char *dest, size_t dlen) BROKER_WUR;
broker_err tx__add_ack(conn *c, tx *t, uint64_t tag, int nack) BROKER_WUR;

#endif
