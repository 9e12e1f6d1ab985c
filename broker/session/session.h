/* session.h: the session layer: one connection's STOMP state: its parser and read buffer,
 * CONNECT and login, heart-beats, receipts, transactions, the frame handlers (one
 * handle_<family>.c per frame family) and the one place a failure becomes an ERROR frame.
 *
 * A conn sits on a net_stream (net/net.h: bytes in and out) and is an endpoint for route
 * (route/route.h: deliveries in, settlements out). Everything runs on the loop thread;
 * objects with handles are freed only in close callbacks, and the teardown of a conn is
 * deferred to the broker's tick (a safe point no handler is on the stack of).
 */
#ifndef BROKER_SESSION_H
#define BROKER_SESSION_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "broker.h"
#include "net/net.h"
#include "route/route.h"
#include "stomp.h"

#ifndef PRINTF_LIKE
#if defined(__GNUC__) || defined(__clang__)
#define PRINTF_LIKE(a, b) __attribute__((format(printf, a, b)))
#else
#define PRINTF_LIKE(a, b)
#endif
#endif

typedef struct conn conn;

/* A destination a SEND was granted on under ACL generation gen (permit.c). */
struct permit_slot {
    char *name; /* NULL: empty */
    size_t len;
    uint32_t gen;
};

/* CONNECTING: only CONNECT/STOMP accepted, tight limits, the CONNECT timer running.
 * OPEN: the session is negotiated. CLOSING: reading stopped; output and held receipts
 * drain, then the handles close. */
enum { CS_CONNECTING, CS_OPEN, CS_CLOSING };

/* A RECEIPT waiting for the commit of batch epoch (or for an earlier held one). */
typedef struct held {
    struct held *next;
    uint64_t epoch;
    size_t len;
    char rid[];
} held;

typedef struct txop {
    struct txop *next;
    int kind; /* STOMP_CMD_SEND, _ACK, _NACK */
    int settle; /* ACK and NACK: SETTLE_ACK, _NACK or _REJECT */
    bmsg *m;
    uint64_t tag;
    uint64_t id; /* at COMMIT, a queue SEND's store id until the commit is decided */
} txop;

typedef struct tx {
    struct tx *next;
    txop *head, *tail;
    size_t nops, bytes;
    char id[];
} tx;

struct conn {
    broker *b;
    net_stream io; /* the socket below */
    endpoint ep;   /* what route sees (its version is the session's) */
    conn *prev, *next;  /* the broker's list */
    conn *pprev, *pnext; /* the list of conns not read (paused_mem, _out or _queue) */
    conn *next_doomed;  /* the broker's teardown list */
    /* deadline: the CONNECT timeout, a login check's timeout or refusal delay, the linger
     * after an ERROR; hb_timer: heart-beats, both ways (heartbeat.c). */
    uv_timer_t deadline, hb_timer;
    int handles_open;
    int state;
    unsigned doomed : 1, detached : 1, closing_handles : 1, abort : 1, graceful : 1,
        paused_mem : 1, paused_out : 1, policy_done : 1, policy_only : 1,
        refusing : 1, /* a refused login waits out its delay (login.c) */
        held_send : 1, /* a complete SEND waits in the parser for memory or room (input.c) */
        paused_queue : 1, /* ... for room in a full queue (overflow block) */
        wait_queue : 1;   /* handle_send: the SEND was not taken, its queue is full */
    stomp_parser parser;
    size_t parser_mem; /* what the parser holds, counted against max_memory */
    /* Input bytes [roff, rlen) of rbuf. During a read rbuf is the broker's shared read
     * buffer; between reads it is the stash (or NULL): the unconsumed tail, kept only while
     * the conn is paused between frames (or a Flash policy request is incomplete). */
    char *rbuf;
    size_t roff, rlen;
    char *stash;
    uint64_t id;
    tx *txs;
    size_t ntx;
    held *held_head, *held_tail;
    uint32_t hb_out, hb_in; /* negotiated intervals, ms (0 = none) */
    uint64_t last_rx; /* loop time (ms) bytes last arrived */
    char errmsg[200];
    const char *err_hdr_name, *err_hdr_value; /* one extra ERROR header (static strings) */
    broker_auth *auth; /* a login check waiting for its answer: read and parse nothing */
    char *login;       /* the login the authenticate hook accepted (NULL: none); the ACL's
                          and the management views' */
    char *client_id;   /* CONNECT's client-id (NULL: none): durable subscriptions' owner */
    struct permit_slot *permits; /* cached SEND decisions under an ACL (permit.c) */
    const struct permit_slot *permit_last; /* the last one used (compared first) */
    /* For the management views (view.c). */
    uint64_t since;    /* accepted at, ms since the Unix epoch */
    uint64_t bytes_in; /* read from the socket */
};

/* The session layer's part of the broker. */
typedef struct session_state {
    conn *conns;
    conn *paused; /* conns not read for memory or their own output: resumed at the tick */
    conn *doomed;
    uint64_t next_conn_id;
    char *rbuf; /* the read buffer every conn reads into (o.read_buffer bytes), lazily */
    broker_auth *auth_ready; /* answered logins to apply at the tick */
    size_t auth_outstanding; /* login records not freed yet: a stop waits for them */
} session_state;

/* ---- the layer's entry points (session.c), for the broker ---- */

/* net's accept callback: a new conn for a socket on a listener of this kind. */
void session__accept(broker *b, uv_stream_t *server, int kind);
/* The tick: apply login answers, tear down failed conns, resume paused ones. */
void session__tick(broker *b);
int session__busy(const broker *b); /* the tick has session work left */
/* Stop: every conn not closing yet gets an ERROR after what is queued for it, and closes
 * once that is written (within stop_timeout_ms). */
void session__close_all(broker *b);
int session__idle(const broker *b); /* no conn and no login record left */
void session__free(broker *b);

/* ---- the management views (view.c) ---- */

/* What the management API shows of a connection: strings borrowed from the conn (peer is
 * a copy), valid until the next loop turn. version is NULL before CONNECT succeeded. */
typedef struct session_conn_view {
    uint64_t id;
    char peer[80];
    const char *login, *transport, *state, *version;
    uint64_t since; /* ms since the Unix epoch */
    uint64_t bytes_in, bytes_out;
    size_t subscriptions;
} session_conn_view;

/* The open conns (not those being torn down), newest first; NULL after the last. */
conn *session__conn_first(broker *b);
conn *session__conn_next(conn *c);
conn *session__conn_find(broker *b, uint64_t id);
void session__conn_view(const conn *c, session_conn_view *v);
/* Its subscriptions, newest first (route's list: sub.enext). */
const sub *session__conn_subs(const conn *c);
/* Close c with an ERROR whose message is why (an administrator's action). */
void session__conn_kill(conn *c, const char *why);

/* ---- connections (conn.c, input.c) ---- */

/* A conn over transport tp, handles initialised; NULL if out of memory. */
conn *conn__new(broker *b, const net_transport *tp);
int conn__start(conn *c); /* after accept: read, CONNECT timer */
/* What net tells a conn (input.c): room for a read, bytes read or the end of input. */
void conn__on_alloc(conn *c, uv_buf_t *buf);
void conn__on_read(conn *c, ssize_t nread);
/* Process input already read (after a pause or a login answer), then read on. */
void conn__resume(conn *c);
/* Set why c is not read (memory, its own output, a full queue); keeps the paused list and
 * count. */
void conn__set_paused(conn *c, int mem, int out, int queue);
/* Queue a whole frame encoded for the session's version. */
broker_err conn__send_frame(conn *c, const stomp_frame *f) BROKER_WUR;
/* The one place turning a failure into ERROR + close: message text, the offending frame
 * (for receipt-id; may be NULL). Safe to call anywhere, any number of times. */
void conn__fail(conn *c, broker_err code, const stomp_frame *f, const char *msg);
/* End gracefully: stop reading, write what is queued (held receipts too), then close. */
void conn__end(conn *c);
/* Close without an ERROR (peer went away, write failed, broker stopping). */
void conn__close(conn *c);
/* Teardown at the broker's tick, then close once output drained. */
void conn__detach(conn *c);
void conn__maybe_close(conn *c);
void conn__set_error(conn *c, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Stop reading (CLOSING, or a login check pending). */
void conn__stop_reading(conn *c);
/* Arm the deadline timer with cb after ms (replacing whatever it was armed for). */
void conn__deadline(conn *c, uv_timer_cb cb, uint64_t ms);

/* ---- heart-beats (heartbeat.c) ---- */

/* Negotiate from CONNECT's heart-beat header (NULL: none) for version v: our offer goes in
 * *sx, *sy (for CONNECTED); the intervals in c. BROKER_E_PROTOCOL when malformed. */
broker_err heartbeat__negotiate(conn *c, stomp_version v, const char *hdr, uint32_t *sx,
                                uint32_t *sy) BROKER_WUR;
void heartbeat__start(conn *c); /* the session is open */
void heartbeat__stop(conn *c);

/* What the heart-beat timer does at time now (all times in loop ms). A pure function of
 * its arguments, so the rules can be tested without waiting. */
typedef struct hb_plan {
    int send;      /* write an EOL now: nothing was written for (almost) the interval */
    int expire;    /* the client was silent longer than allowed: end the session */
    uint64_t wait; /* when to look again, ms from now (0: never) */
} hb_plan;
typedef struct hb_clock {
    uint32_t out, in;   /* negotiated intervals (0: none) */
    uint32_t grace_pct; /* allowed client silence, % of in */
    uint64_t last_write, last_rx;
    int writing;        /* output is queued or being written */
} hb_clock;
void heartbeat__plan(const hb_clock *k, uint64_t now, hb_plan *p);

/* ---- receipts (receipt.c) ---- */

/* RECEIPT for the frame f's receipt header (if any), now or, needs_commit, once the store
 * committed the current batch; later receipts wait behind held ones. */
broker_err receipt__send(conn *c, const stomp_frame *f, int needs_commit) BROKER_WUR;
broker_err receipt__queue(conn *c, const char *rid, size_t len, int needs_commit) BROKER_WUR;
/* Commits up to epoch completed (ok) or failed: held receipts go out, or the session ends. */
void receipt__committed(conn *c, uint64_t epoch, int ok, const char *why);
void receipt__drop(conn *c); /* the session ended: held receipts will never go out */
int receipt__holding(const conn *c);

/* ---- logins (login.c) ---- */

/* CONNECT was accepted by the protocol: check the login (if there is a hook) and begin the
 * session (send CONNECTED), refuse it, or wait for an asynchronous answer. */
broker_err login__check(conn *c, const stomp_frame *f, stomp_version v, uint32_t sx,
                        uint32_t sy) BROKER_WUR;
/* The session begins: CONNECTED, then the negotiated version and limits. */
broker_err login__begin(conn *c, stomp_version v, uint32_t sx, uint32_t sy) BROKER_WUR;
/* Answers that came in (at the tick); a conn going away forgets its record. */
void login__run(broker *b);
/* A check not tied to a conn (the management API's HTTP Basic logins), through
 * authenticate_async: done(arg, accepted) runs at the tick, never inside this call, unless
 * login__forget(*out) came first. */
broker_err login__ask(broker *b, const char *login, const char *passcode,
                      void (*done)(void *arg, int accepted), void *arg,
                      broker_auth **out) BROKER_WUR;
void login__forget(broker_auth *r);
void login__abandon(conn *c);
int login__pending(const broker *b);

/* ---- permissions (permit.c) ---- */

/* The session's login for the ACL (copied; NULL: none). */
broker_err permit__set_login(conn *c, const char *login) BROKER_WUR;
/* May the session SEND to / SUBSCRIBE to dest? BROKER_OK, or BROKER_E_DENIED with the
 * ERROR text set and the refusal logged. */
broker_err permit__send(conn *c, const char *dest, size_t dlen) BROKER_WUR;
broker_err permit__subscribe(conn *c, const char *dest, size_t dlen) BROKER_WUR;
void permit__free(conn *c); /* at teardown */

/* ---- frames (dispatch.c, handle_*.c; transactions in handle_tx.c) ---- */

void dispatch__frame(conn *c, const stomp_frame *f);
broker_err handle__connect(conn *c, const stomp_frame *f) BROKER_WUR;
broker_err handle__send(conn *c, const stomp_frame *f) BROKER_WUR;
broker_err handle__subscribe(conn *c, const stomp_frame *f) BROKER_WUR;
/* The durable subscription a SUBSCRIBE (subscribe 1) or UNSUBSCRIBE names (durable_id.c):
 * 1 with *out (borrowed from f and c), 0 when it names none, -1 (an ERROR set). */
typedef struct durable_ident {
    const char *client_id, *name;
    const char *header; /* the header that asked for it */
} durable_ident;
int handle__durable_ident(conn *c, const stomp_frame *f, int subscribe, durable_ident *out);
broker_err handle__unsubscribe(conn *c, const stomp_frame *f) BROKER_WUR;
broker_err handle__ack(conn *c, const stomp_frame *f) BROKER_WUR;
broker_err handle__begin(conn *c, const stomp_frame *f) BROKER_WUR;
broker_err handle__commit(conn *c, const stomp_frame *f) BROKER_WUR;
broker_err handle__abort(conn *c, const stomp_frame *f) BROKER_WUR;
broker_err handle__disconnect(conn *c, const stomp_frame *f) BROKER_WUR;
tx *tx__find(conn *c, const char *id);
/* Buffer a SEND / an ACK or NACK (by delivery tag) in t. LIMIT when t is full. */
broker_err tx__add_send(conn *c, tx *t, const stomp_frame *f, const char *dest,
                        size_t dlen, const msg_attrs *a) BROKER_WUR;
broker_err tx__add_ack(conn *c, tx *t, uint64_t tag, int how) BROKER_WUR; /* SETTLE_* */
void tx__free_all(conn *c);

#endif
