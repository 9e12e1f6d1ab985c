/* route.h: the route layer: destinations, subscriptions, deliveries and their settlement,
 * topic fan-out, queue dispatch, messages outside the store, and the commit cycle with the
 * store (group commit).
 *
 * Route reaches a connection only through its endpoint (below), which the session layer
 * implements: route never calls session code by name. Everything runs on the loop thread.
 * Ownership: the broker owns dests (by name) and the store; a subscription belongs to its
 * endpoint's list and to its dest's list; a subscription owns its unacked deliveries.
 */
#ifndef BROKER_ROUTE_H
#define BROKER_ROUTE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "broker.h"
#include "index.h"
#include "net/outq.h"
#include "stomp.h"
#include "store.h"
#include "store_postgres.h"
#include "route/selector.h"
#include "route/wild.h"

typedef struct dest dest_t;
typedef struct broker_sub sub;
typedef struct delivery delivery;
typedef struct endpoint endpoint;
typedef struct bmsg bmsg;
typedef struct tempq tempq;
typedef struct topic_held topic_held;
typedef struct durable durable;

/* ---- endpoints: where deliveries go (implemented by session) ---------------------------- */

typedef struct endpoint_ops {
    /* Queue one MESSAGE frame: head, ack line, then shared (borrowed; referenced if
     * queued). Returns the stream offset just past the frame (its end: it is written once
     * route__endpoint_written reports that much), or 0 when out of memory (nothing
     * queued). */
    uint64_t (*push)(endpoint *e, const char *head, size_t head_len, const char *ack,
                     size_t ack_len, sbuf *shared);
    /* Output bytes queued and not yet written. */
    size_t (*queued)(const endpoint *e);
    /* End the connection with an ERROR frame (slow consumer, too many unacked messages,
     * out of memory). Safe inside any route call; the endpoint stays valid until
     * route__endpoint_close. */
    void (*fail)(endpoint *e, broker_err code, const char *msg);
    /* The store committed every batch up to epoch (ok), or failed that batch (!ok, why says
     * why): receipts held for those batches go out, or the session ends. Called with the
     * endpoint already off the commit's waiting list (commit__wait puts it back). */
    void (*committed)(endpoint *e, uint64_t epoch, int ok, const char *why);
    /* Write one MESSAGE frame in place: room for max bytes at the end of the output (NULL
     * when out of memory), then frame_close with the bytes used before anything else is
     * queued; it returns the stream offset just past the frame (0 when used is 0: nothing
     * queued). */
    char *(*frame_open)(endpoint *e, size_t max);
    uint64_t (*frame_close)(endpoint *e, size_t used);
} endpoint_ops;

/* Route's part of a connection, embedded in it. */
struct endpoint {
    const endpoint_ops *ops;
    stomp_version version; /* the session's: MESSAGEs are encoded for it */
    int open;              /* takes deliveries (the session is open, not closing) */
    sub *subs;             /* its subscriptions, newest first */
    size_t nsubs;
    store__idhash tags;    /* its unacked deliveries by tag (the 1.2 ack id) */
    uint64_t next_tag;
    delivery *sent_head, *sent_tail; /* auto-ack queue deliveries not yet written, by end */
    endpoint *wprev, *wnext; /* on the commit's waiting list */
    tempq *temps;          /* its temporary queues (tempq.c) */
    unsigned waiting : 1;
    unsigned blocked : 1;  /* a queue found its output full: dispatch again once it drains */
};

void route__endpoint_init(endpoint *e, const endpoint_ops *ops);
/* The connection goes away: every subscription removed (unacked messages back to their
 * queues), off the commit's list, tags freed. */
void route__endpoint_close(broker *b, endpoint *e);
/* Its output drained below the high-water mark: queues it could not take resume. */
void route__endpoint_drained(broker *b, endpoint *e);
/* Its stream wrote everything up to offset written: auto-ack deliveries that ended there
 * are settled (acknowledged in the store). */
void route__endpoint_written(broker *b, endpoint *e, uint64_t written);
/* Its stream is gone: auto-ack deliveries never written go back to their queues. */
void route__endpoint_done(broker *b, endpoint *e);

/* ---- destinations (dest.c) ------------------------------------------------------------ */

struct dest {
    store__qlink link;    /* in the broker's table by name; names name[] */
    dest_t *next_dispatch;  /* on the dispatch list */
    dest_t *next_touched;   /* on the list of queues written in the open batch */
    int is_topic;
    sub *head, *tail;     /* subscribers, in subscribe order */
    sub *cursor;          /* queues: round-robin position (next to try) */
    size_t nsubs;
    size_t nexclusive;    /* queues: exclusive subscribers among them */
    size_t nbrowsers;     /* queues: browsers among them (they take nothing) */
    int busy;             /* walks over the subscriber list in progress */
    int has_dead;         /* subscribers removed while busy, to sweep */
    int on_dispatch, on_touched;
    size_t pins;          /* references from commits in flight and the due timer */
    uint64_t due_at;      /* queues: dispatch again at this time (0: not planned) */
    int is_wild;          /* its name is a wildcard pattern (wild.h): its subscribers get
                             the messages of every destination the pattern matches */
    size_t nfiltered;     /* subscribers with a selector or noLocal */
    wild_node *wnode;     /* a pattern: its node in the broker's trie */
    /* A queue: the wildcard queue dests whose pattern matches it (it stays while there is
     * one). A wildcard queue dest: the queues its pattern matches, taken from in turn from
     * lcursor. Both sides hold each link. */
    dest_t **links;
    size_t nlinks, links_cap, lcursor;
    int purge;            /* a temporary queue whose owner left: emptied, not dispatched */
    /* Counters for the management views (stats.c), kept in place on the data path. */
    uint64_t n_in, n_out; /* messages sent to it / handed to subscribers */
    uint64_t n_dead;      /* queues: messages dead-lettered out of it */
    uint64_t last_in, last_out; /* the counters at the last rate tick */
    double rate_in, rate_out;   /* messages per second over the last rate tick */
    struct drain *drain;  /* queues: an administrator's purge or move under way */
    int unlisted;         /* deleted by an administrator: freed as soon as nothing uses it */
    char name[];          /* NUL-terminated, link.len bytes */
};

int dest__is_topic(const char *name, size_t len);
/* The dest named so, or NULL; hash is store__hash_name(name, len). */
dest_t *dest__find(broker *b, const char *name, size_t len, uint64_t hash);
/* The same, created when missing: NULL when out of memory. */
dest_t *dest__get(broker *b, const char *name, size_t len, uint64_t hash);
void dest__release(broker *b, dest_t *d); /* free it if nothing uses it */
void dest__schedule(broker *b, dest_t *d); /* queue dispatch at the next tick */
void dest__touch(broker *b, dest_t *d);    /* queue dispatch after the next commit */
void dest__add_sub(broker *b, dest_t *d, sub *s);
void dest__unlink_sub(broker *b, sub *s); /* off the dest (swept now or after the walk) */
void dest__sweep(dest_t *d);
void dest__free_all(broker *b);
/* A SEND to the queue named so, which has no dest: its dest if some wildcard queue
 * subscription's pattern matches it (created and linked), else NULL (also without memory:
 * the message waits in the store for a later look). */
dest_t *dest__for_wild(broker *b, const char *name, size_t len, uint64_t hash);

/* ---- messages outside the store (message.c) ------------------------------------------- */

/* What a SEND asks of its message besides its headers: priority 0-9 (default 4), a delay
 * before it may be delivered (ms), and when it expires (ms since the Unix epoch; 0: never).
 * given says which were set by a header. */
typedef struct msg_attrs {
    uint64_t expires;
    uint64_t delay;
    uint8_t priority;
    uint8_t given;
} msg_attrs;
enum { MSG_PRIORITY = 1 };
#define MSG_ATTRS_INIT { 0, 0, 4, 0 }

/* A topic message, an in-process publish or a SEND inside a transaction. Header block:
 * "name\0value\0" pairs. enc[v]: the shared part of its MESSAGE for version v, encoded on
 * first use, shared by every subscriber of that version. */
struct bmsg {
    uint32_t refs;
    uint64_t seq; /* topic message number */
    char *dest;
    size_t dest_len;
    char *hdrs;
    size_t hdrs_len;
    char *body;
    size_t body_len;
    sbuf *enc[3];
    msg_attrs attrs; /* queues: priority, delay, expiry (MSG_ATTRS_INIT unless set) */
    const endpoint *origin; /* the connection that sent it (noLocal), NULL: in-process */
    char data[];
};

/* From a SEND frame (its forwarded headers) or from publish arguments. Caller owns,
 * release with bmsg__unref(). NULL when out of memory. */
bmsg *bmsg__from_frame(const stomp_frame *f, const char *dest, size_t dest_len);
bmsg *bmsg__from_parts(const char *dest, const broker_header *h, size_t nh, const void *body,
                       size_t body_len);
/* From a header block (as msg__header_block makes). Same ownership. */
bmsg *bmsg__from_block(const char *dest, size_t dest_len, const char *hdrs, size_t hdrs_len,
                       const char *body, size_t body_len);
void bmsg__unref(bmsg *m);

/* Header block (packed, stomp_pack_headers) of a SEND written into *buf (grown as needed):
 * 0 or -1 (no memory). */
int msg__header_block(const stomp_frame *f, char **buf, size_t *cap, size_t *len) BROKER_WUR;
/* Encode the shared part of m's MESSAGE (everything after the per-subscription head) for
 * version v. Caller owns the result. NULL with *err: STOMP_E_NOMEM, or STOMP_E_UNENCODABLE
 * for a message v cannot carry (stored before such SENDs were refused). */
sbuf *msg__encode(stomp_version v, const stomp_message *m, stomp_err *err);
/* Decimal digits of v at o, no terminator: the count (at most 20). */
size_t msg__u64(char *o, uint64_t v);
/* First value of name in a header block, or NULL. */
const char *msg__block_header(const char *hdrs, size_t len, const char *name);

/* ---- subscriptions and deliveries (sub.c) --------------------------------------------- */

enum { ACK_AUTO, ACK_CLIENT, ACK_INDIVIDUAL };
/* How a delivery is settled: acknowledged, NACKed (back to its queue, or dead-lettered once
 * its policy's attempts are spent), or rejected (a NACK with requeue:false: dead-lettered
 * at once). */
enum { SETTLE_ACK, SETTLE_NACK, SETTLE_REJECT };

/* A message handed to an endpoint and not settled yet. Client modes: on its subscription's
 * unacked list, in delivery order, and in the endpoint's tags. Auto mode (queue messages
 * only): on the endpoint's sent list until its bytes are written, then acknowledged; s is
 * NULL there, as it may unsubscribe meanwhile. */
struct delivery {
    delivery *prev, *next; /* the unacked list, or the endpoint's sent list */
    store__idlink link;    /* in the endpoint's tags; link.id is the tag */
    sub *s;
    uint64_t msg_num;      /* store id (queue) or topic sequence */
    uint64_t end;          /* auto mode: the stream offset just past its MESSAGE */
    dest_t *q;             /* queues: the queue it came from (its subscription's dest, or
                              a queue a wildcard matched); auto mode: pinned while on the
                              sent list (the message goes back there if never written) */
    int is_queue;
    size_t bytes;          /* counted against broker memory (queue messages) */
    size_t wsize;          /* topics, client modes: its size in the byte window */
};

struct broker_sub {
    broker *b;
    endpoint *ep; /* NULL for in-process subscribers */
    dest_t *d;
    sub *dprev, *dnext; /* the dest's list */
    sub *eprev, *enext; /* the endpoint's list */
    char *id;
    size_t id_len;
    int ack_mode;
    size_t window; /* prefetch */
    size_t nunacked;
    delivery *uhead, *utail;
    char *head;    /* "MESSAGE\nsubscription:<id>\n" in the endpoint's version */
    size_t head_len;
    broker_message_cb cb;
    void *cb_arg;
    int dead;
    int exclusive; /* queues: gets every message while it is the oldest exclusive one */
    int browser;   /* queues: gets copies of the ready messages, then browser:end */
    int browse_done;
    store_cursor cursor; /* a browser's place in its queue */
    sel *selector;       /* the selector it was subscribed with (owned), or NULL */
    int no_local;        /* topics: not the messages its own connection sent */
    int dry;             /* during one dispatch: nothing ready matches its selector */
    store_scan *scan;    /* queues with a selector: its place (owned; allocated at first) */
    const dest_t *scan_q; /* the queue scan is for (a wildcard's move between queues) */
    topic_held *hhead, *htail; /* topics, client modes: messages waiting for room (window.c) */
    size_t held_bytes;
    size_t wbytes, wbytes_max; /* unacked bytes, and the byte window (0: none) */
    durable *dur;        /* the durable subscription it consumes (durable.c), or NULL */
};

/* Subscribe ep to the dest named so: ack mode, prefetch window, flags: SUB_EXCLUSIVE (a
 * queue that has such consumers delivers only to its oldest), SUB_BROWSER (a queue
 * browser: copies, nothing taken; auto ack). NULL: out of memory. */
enum { SUB_EXCLUSIVE = 1, SUB_BROWSER = 2, SUB_NO_LOCAL = 4 };
/* selector (may be NULL): the subscription owns it once this succeeds (else the caller
 * still does). SUB_NO_LOCAL: a topic subscriber that does not get its connection's own
 * messages. */
sub *sub__subscribe(broker *b, endpoint *ep, const char *dname, size_t dlen, const char *id,
                    size_t id_len, int ack_mode, size_t window, int flags, sel *selector);
/* An in-process subscription (auto ack; cb never runs inside this call). */
sub *sub__subscribe_inproc(broker *b, const char *dname, broker_message_cb cb, void *arg);
/* Remove s: its unacked messages go back to their queue; s is freed. */
void sub__unsubscribe(broker *b, sub *s);
sub *sub__find(const endpoint *ep, const char *id);
/* ep's first subscription to the dest named so, or NULL. */
sub *sub__find_dest(const endpoint *ep, const char *dname, size_t dlen);
/* Does s have room for one more queue message? */
int sub__has_room(broker *b, sub *s);
/* Hand one message to s. Queues: msg_num is the taken store message's id. shared is the
 * encoded part for s's version (borrowed; referenced if queued); inproc for in-process
 * subscribers. */
broker_err sub__deliver(broker *b, sub *s, dest_t *q, sbuf *shared, int is_queue,
                        uint64_t msg_num, size_t bytes,
                        const broker_message *inproc) BROKER_WUR;
/* The same for a connection's subscriber, with m encoded in place into its output for its
 * version (no shared part: one copy of the body). BROKER_E_PROTOCOL when that version
 * cannot carry m, BROKER_E_NOMEM; nothing delivered then. */
broker_err sub__deliver_msg(broker *b, sub *s, dest_t *q, const stomp_message *m,
                            int is_queue, uint64_t msg_num, size_t bytes) BROKER_WUR;
/* Settle delivery d (how: SETTLE_*), cumulatively in client mode. The queue is
 * dispatched again at the tick, or with after_commit once the store committed the settling
 * (a receipt for it goes out first, before any MESSAGE it lets in). */
void sub__settle(broker *b, delivery *d, int how, int after_commit);
delivery *sub__find_tag(const endpoint *ep, uint64_t tag);
delivery *sub__find_msgid(const endpoint *ep, const char *msgid, const char *subid);
void sub__free(sub *s);
void sub__free_cache(broker *b); /* the recycled deliveries, at broker_free */

/* ---- what a subscription lets through (filter.c) -------------------------------------- */

/* Does s want topic message m (msgid its message-id): not its own connection's under
 * noLocal, and its selector TRUE for it? */
int filter__topic(const sub *s, const bmsg *m, const char *msgid);
/* take_match's match for a queue subscriber: arg is a filter_queue. */
typedef struct filter_queue {
    const sub *s;
    const char *queue; /* the queue's name, NUL-terminated */
} filter_queue;
int filter__store(void *arg, const store_msg *m);
/* Does selector s accept a topic message (header block, topic, priority) before it has a
 * message-id (a durable subscription's, at publish)? */
int filter__durable(const sel *s, const char *hdrs, size_t hlen, const char *dest, size_t dlen,
                    uint8_t priority);

/* ---- policies (policy.c) ------------------------------------------------------------- */

/* The policy of the destination named so: the most specific matching rule's, or the
 * broker-wide one. Borrowed, valid for the broker's life. */
const broker_policy *policy__for(const broker *b, const char *name, size_t len);
/* The name of the dead-letter queue for name under p, written to out (cap bytes, not
 * terminated): its length, or 0 when dead letters are dropped (or the name does not fit). */
size_t policy__dead_letter(const broker_policy *p, const char *name, size_t len, char *out,
                           size_t cap);
/* The delay before delivery attempt attempt + 1, after attempt failed ones (>= 1). */
uint64_t policy__redelivery_delay(const broker_policy *p, uint32_t attempt);
/* Is the queue named so a dead-letter queue (its messages are never dead-lettered again):
 * a name whose last element begins "DLQ." after an optional "/queue/", or the dead_letter
 * queue of the broker-wide policy or of a rule? */
int policy__is_dead_letter_queue(const broker *b, const char *name, size_t len);
/* A bad rule or policy (no pattern, a dead_letter that is empty, a topic or a wildcard):
 * BROKER_E_INVALID, else BROKER_OK. */
broker_err policy__check(const broker_policy *p);

/* ---- a taken message comes back (redelivery.c) ------------------------------------------ */

/* Why: NACKed, its consumer went away without acking it (both count as a failed delivery),
 * the same for an exclusive consumer (counted, but back at once, for the next to take over
 * in order), rejected (dead-letter it now), or never written to its consumer (back at
 * once, not counted). */
enum { RETURN_NACK, RETURN_ORPHAN, RETURN_FAILOVER, RETURN_REJECT, RETURN_UNSENT };
/* Taken message id comes back: per its queue's policy it is dead-lettered (or dropped), or
 * requeued to be handed out again after the redelivery delay, counted from now
 * (broker__now_ms; messages returned together pass the same time, so those with the same
 * delay come back in their order). 1 when it left its queue (the broker no longer counts
 * its bytes), 0 when it went back. */
int queue__return(broker *b, uint64_t id, int why, uint64_t now);
/* Move taken message m, delivered so many times, to the dead-letter queue p names, in the
 * open batch with its ack (dropped instead when p drops dead letters or m is in a
 * dead-letter queue). reason: the dead-letter-reason header. 0, or -1 (nothing changed). */
int queue__dead_letter(broker *b, const store_msg *m, const broker_policy *p,
                       const char *reason, uint32_t deliveries);
/* Dispatch d again at due (ms on broker__now_ms's clock; now is the time now). */
void queue__wake_at(broker *b, dest_t *d, uint64_t due, uint64_t now);
/* Look for expired messages at time at (the timer's own entry: no queue). */
void queue__expiry_at(broker *b, uint64_t at);
void queue__timer_init(broker *b);

/* ---- queue limits (limit.c) ------------------------------------------------------------ */

enum { QUEUE_ROOM, QUEUE_WAIT, QUEUE_FULL };
/* Is there room in the queue named so for one more message under
 * its policy's max_length and max_bytes? Its size: f's packed headers and body, or bytes
 * when f is NULL. QUEUE_ROOM; QUEUE_WAIT (overflow block, or drop-head must wait for a
 * commit): hold the SEND and try again later; QUEUE_FULL (reject, or no room can be made):
 * the ERROR text is in buf. drop-head makes room by dead-lettering the queue's head with
 * reason overflow. Topics always have room. */
int queue__room(broker *b, const char *dname, size_t dlen, const stomp_frame *f, size_t bytes,
                char *buf, size_t cap);
void queue__timer_close(broker *b); /* at the end of a stop: the handle closes */
void queue__timer_free(broker *b);

/* ---- what route refuses (headers.c) ---------------------------------------------------- */

/* An ERROR text (written to buf) naming the first header that asks for a delivery
 * semantic this broker does not provide, or NULL when there is none. For a SEND (or a
 * publish) also a wildcard destination, a destination or forwarded header that STOMP 1.0
 * or 1.1 could not carry to a subscriber, a malformed priority, expiry or delay, and a
 * delay a topic or the queue's max_delay does not allow; *a gets the attributes. */
const char *headers__send_check(const broker *b, const stomp_frame *f, const char *dest,
                                size_t dlen, msg_attrs *a, char *buf, size_t cap);
const char *headers__publish_check(const broker *b, const char *dest, const broker_header *h,
                                   size_t n, msg_attrs *a, char *buf, size_t cap);
const char *headers__subscribe_refused(const stomp_frame *f, char *buf, size_t cap);
/* The ERROR text for a SEND (or publish, or policy name) to a destination with a wildcard
 * element (wild.h: '*', '>' or '#' between '.' or '/'), or NULL. */
const char *headers__wildcard(const char *name, size_t len, char *buf, size_t cap);
/* The ERROR text for a SEND or SUBSCRIBE to a name under DURABLE_RESERVED. */
const char *headers__reserved(const char *name, size_t len, char *buf, size_t cap);

/* ---- topic prefetch windows (window.c) ------------------------------------------------- */

/* A topic message for s (client or client-individual mode): 0 when it may go now; 1 when
 * it waits (s's window is full, or others wait before it), or s's endpoint was failed
 * (slow consumer, out of memory). */
int window__hold(broker *b, sub *s, bmsg *m);
/* m was just delivered to s: its size joins the byte window. */
void window__sent(sub *s, const bmsg *m);
/* Room was made (an ACK or NACK): what waits goes out while it fits. */
void window__drain(broker *b, sub *s);
void window__free(sub *s); /* what waits is dropped */
/* Send topic message m to s now (topic.c): an endpoint that cannot take it is failed. */
void topic__send_to(broker *b, sub *s, bmsg *m);

/* ---- temporary queues (tempq.c) -------------------------------------------------------- */

#define TEMPQ_LOCAL "/temp-queue/"
#define TEMPQ_LOCAL_LEN 12
#define TEMPQ_REPLY "/reply-queue/"
#define TEMPQ_REPLY_LEN 13
/* Does the name begin /temp-queue/ (a connection's own name) or /reply-queue/ (the
 * broker-unique name of a temporary queue), with something after it? */
static inline int tempq__is_temp(const char *name, size_t len)
{
    return len > TEMPQ_LOCAL_LEN && name[1] == 't' &&
           memcmp(name, TEMPQ_LOCAL, TEMPQ_LOCAL_LEN) == 0;
}
static inline int tempq__is_reply(const char *name, size_t len)
{
    return len > TEMPQ_REPLY_LEN && name[1] == 'r' &&
           memcmp(name, TEMPQ_REPLY, TEMPQ_REPLY_LEN) == 0;
}
/* A SEND of ep: a /temp-queue/ destination (*dest) becomes its reply name; a /temp-queue/
 * reply-to (reply_to, may be NULL) has its value pointed at the reply name (borrowed, valid
 * while ep is open: the caller puts the old value back after the SEND), and ep is
 * subscribed to it (auto ack, the temp-queue name as id, window) unless it already is.
 * BROKER_E_NOMEM, else BROKER_OK. */
broker_err tempq__send(broker *b, endpoint *ep, stomp_header *reply_to, const char **dest,
                       size_t *dlen, size_t window) BROKER_WUR;
/* A SUBSCRIBE of ep with this id: a /temp-queue/ name becomes its reply name (replacing
 * the subscription a SEND made for it); a /reply-queue/ name that is not ep's is refused
 * (the ERROR text in buf). */
broker_err tempq__subscribe(broker *b, endpoint *ep, const char **dname, size_t *dlen,
                            const char *id, char *buf, size_t cap) BROKER_WUR;
/* A message to the reply name given: 1 when no live temporary queue has it (the message
 * is dropped and counted), else 0. */
int tempq__drop(broker *b, const char *name, size_t len, uint64_t hash);
/* ep goes away: its temporary queues are no longer live and are emptied. */
void tempq__endpoint_close(broker *b, endpoint *ep);
/* A dispatch of a dest marked purge: take and ack what it holds. */
void tempq__purge(broker *b, dest_t *d);
/* When the broker starts, on its loop: draw the names' nonce, and empty the temporary
 * queues an earlier run left in the store. */
void tempq__start(broker *b);
void tempq__free(broker *b);

#include "route/durable.h"

/* ---- sending and dispatch (route.c, topic.c, queue.c) --------------------------------- */

/* Route a message: topic fan-out now, queue into the store. m is borrowed. *stored: 1 for a
 * queue (a receipt must wait for the commit). */
broker_err route__send(broker *b, bmsg *m, int *stored) BROKER_WUR;
/* Only for a queue (not a topic): into the open batch, *id its store id. A full queue
 * (queue__room: this never waits) is BROKER_E_LIMIT with the reason in why. */
broker_err route__send_queue(broker *b, bmsg *m, uint64_t *id, char *why,
                             size_t cap) BROKER_WUR;
/* Take back a message route__send_queue put in the open batch (a transaction failed
 * part-way): as if never sent. 0, or -1 when the store cannot (then it stays). */
int route__unsend(broker *b, const bmsg *m, uint64_t id) BROKER_WUR;
/* The same for a SEND frame, without building a bmsg for queues. */
broker_err route__send_frame(broker *b, const stomp_frame *f, const char *dname, size_t dlen,
                             const msg_attrs *a, const endpoint *from,
                             int *stored) BROKER_WUR;
void topic__fan_out(broker *b, dest_t *d, bmsg *m);
/* A topic SEND while wildcard topic subscriptions exist: d (the topic's dest, may be NULL)
 * and every wildcard dest matching the name get it, under one message-id. m (borrowed) or,
 * when NULL, a message built from f (attributes a, sent by from) only when someone gets
 * it. */
broker_err topic__publish_wild(broker *b, dest_t *d, const char *dname, size_t dlen,
                               const stomp_frame *f, bmsg *m, const msg_attrs *a,
                               const endpoint *from) BROKER_WUR;
/* Topics across nodes (the PostgreSQL store, route.topic_share): a message published here
 * goes to the other nodes too (topic__share: a header block; topic__share_frame: a SEND);
 * one from another node reaches this node's subscribers (topic__remote; with origin NULL,
 * so noLocal never holds it back). */
void topic__share(broker *b, const char *dname, size_t dlen, const char *hdrs, size_t hlen,
                  const char *body, size_t blen, uint64_t expires);
void topic__share_frame(broker *b, const stomp_frame *f, const char *dname, size_t dlen,
                        const msg_attrs *a);
void topic__remote(broker *b, const char *dname, size_t dlen, const char *hdrs, size_t hlen,
                   const char *body, size_t blen, uint64_t expires);
/* Enqueue to the queue named so, whose store_hash_name() is hash, with attributes a (NULL:
 * a plain message; the queue's ttl and max_ttl apply either way); *id (may be NULL)
 * receives the store id. */
broker_err queue__enqueue(broker *b, const char *dname, size_t dlen, uint64_t hash,
                          const char *hdrs, size_t hlen, const char *body, size_t blen,
                          const msg_attrs *a, uint64_t *id) BROKER_WUR;
/* queue__enqueue of one message into the n queues of t (queue, queue_len, hash set; attrs
 * are set here, pointing into sa, n of them) with its body stored once (store_ops
 * enqueue_shared: the caller checked the store has it); all or none. */
broker_err queue__enqueue_shared(broker *b, store_target *t, store_attrs *sa, size_t n,
                                 const char *hdrs, size_t hlen, const char *body, size_t blen,
                                 const msg_attrs *a) BROKER_WUR;
void queue__dispatch(broker *b, dest_t *d);
/* Dispatch a queue some of whose subscribers have a selector (select.c): each subscriber
 * with room takes the first ready message its selector accepts. */
void queue__dispatch_select(broker *b, dest_t *d, uint64_t now);
/* Dispatch a wildcard queue dest (select.c): its subscribers take, in turn, from the
 * queues its pattern matches that have a message for them, one queue after the other. */
void queue__dispatch_wild(broker *b, dest_t *d, uint64_t now);
/* Link queue q and wildcard queue dest w (both hold the link): 0, or -1 without memory. */
int dest__link(dest_t *q, dest_t *w);
/* Hand message sm of d to s (encoded for its version): taken, a message the store handed
 * out (settled by s's ack mode); else a copy (a browser's: nothing to settle). 0, or an
 * error (nothing delivered). */
broker_err queue__hand_over(broker *b, dest_t *d, sub *s, const store_msg *sm, size_t bytes,
                            int taken) BROKER_WUR;
/* Queue browsers of d (browse.c): each gets copies of the messages ready when it
 * subscribed, in delivery order, as its output has room, then a MESSAGE with browser:end. */
void queue__browse(broker *b, dest_t *d, uint64_t now);
/* The tick: dispatch every scheduled queue. */
void route__tick(broker *b);
int route__busy(const broker *b); /* queues wait for dispatch */
broker_err route__init(broker *b) BROKER_WUR; /* NOMEM, or INVALID for a bad rule */
void route__free(broker *b);
/* Check o's policy and policies and copy the rules (*out NULL when there are none):
 * INVALID for a bad one, NOMEM. Caller owns *out until route__set_policies. */
broker_err route__copy_policies(const broker_options *o, broker_policy_rule **out) BROKER_WUR;
/* Use rules (taking them; from route__copy_policies) from now on, with b->o.policy. */
void route__set_policies(broker *b, broker_policy_rule *rules, size_t n);

/* ---- the commit cycle (commit.c) ------------------------------------------------------- */

/* A store write joined the open batch. */
void commit__dirty(broker *b);
/* Cut a batch even without writes (a new subscriber looks at its queue again after the
 * commits under way). */
void commit__again(broker *b);
/* Commit the open batch unless one is in flight (at the tick, and when one completes). */
void commit__run(broker *b);
/* The epoch of the open batch: what a receipt waiting for the current writes waits for. */
uint64_t commit__epoch(const broker *b);
/* Store writes so far: a handler compares before and after to know if it wrote. */
uint64_t commit__writes(const broker *b);
/* ep holds something for a batch: tell it (ops->committed) when a commit completes. */
void commit__wait(broker *b, endpoint *ep);
void commit__unwait(broker *b, endpoint *ep);
int commit__idle(const broker *b); /* nothing written, nothing in flight */
int commit__pending(const broker *b); /* written, not yet committing */

/* ---- the management views and actions (stats.c, drain.c) ------------------------------ */

/* What the management API shows of a destination. Queues: messages and bytes are what the
 * store holds and has not had acknowledged (ready, waiting, delivered); depth the ready
 * ones; unacked what subscribers in a client ack mode hold. Topics: only consumers and
 * the counters. name is borrowed from the dest. */
typedef struct route_dest_view {
    const char *name;
    size_t name_len;
    int is_topic, is_dead_letter;
    uint64_t depth, messages, bytes, unacked;
    uint64_t consumers, browsers, exclusive;
    uint64_t durable; /* topics: durable subscriptions on exactly this name */
    uint64_t in, out, dead; /* since the dest was created: sent, handed out, dead-lettered */
    double rate_in, rate_out; /* per second, over the last rate tick */
} route_dest_view;

/* The destinations in the broker's table (queues from their first SEND or SUBSCRIBE,
 * topics while they have subscribers), in no particular order; NULL after the last. */
dest_t *route__dest_first(broker *b);
dest_t *route__dest_next(broker *b, dest_t *d);
size_t route__dest_count(const broker *b);
dest_t *route__dest_named(broker *b, const char *name, size_t len);
void route__dest_view(broker *b, dest_t *d, route_dest_view *v);
/* Recompute every dest's rates from its counters: secs since the last call. */
void route__rates(broker *b, double secs);
/* Forget a destination and its counters (its messages must be gone first). BROKER_E_STATE
 * while it has subscribers. */
broker_err route__dest_delete(broker *b, dest_t *d) BROKER_WUR;

/* The first max ready messages of the queue named so, in delivery order, each handed to fn
 * (borrowed for the call); nothing is taken. Returns how many. */
typedef void (*route_browse_fn)(void *arg, const store_msg *m);
size_t route__browse(broker *b, const char *name, size_t len, size_t max, route_browse_fn fn,
                     void *arg);

/* A drain takes every message of a queue that is not delivered: DRAIN_PURGE acknowledges
 * (removes) them; DRAIN_MOVE sends each dead letter back to its original-destination (the
 * dead-letter headers removed, its priority kept) and leaves those without one where they
 * were. It runs at the tick, across commits when the store asks (never inside the call
 * that starts it); fn gets how many were removed or moved, and how many were left. */
enum { DRAIN_PURGE, DRAIN_MOVE };
typedef void (*route_drain_fn)(void *arg, broker_err rc, uint64_t done, uint64_t kept);
typedef struct drain drain;
/* BROKER_E_STATE when that queue has a drain under way, BROKER_E_INVALID for a topic. */
broker_err route__drain(broker *b, const char *name, size_t len, int kind, route_drain_fn fn,
                        void *arg, drain **out) BROKER_WUR;
void route__drain_forget(drain *j); /* the asker went away: fn is not called */
/* Part of queue__dispatch: the dest's drain goes on (or ends). */
void queue__drain_step(broker *b, dest_t *d);
void queue__drain_free(dest_t *d); /* at broker_free */

/* The route layer's part of the broker. */
typedef struct route_state {
    store__qhash dests;  /* destinations by name */
    dest_t *dispatch_list; /* queues to dispatch at the tick */
    dest_t *touched;       /* queues enqueued to in the open batch */
    dest_t **inflight;     /* queues enqueued to in the batch being committed */
    size_t ninflight, inflight_cap;
    uint64_t epoch, done_epoch, inflight_epoch;
    int dirty, commit_inflight;
    uint64_t writes;     /* store writes ever */
    endpoint *waiters;   /* endpoints holding something for a batch */
    uint64_t topic_seq, inproc_seq;
    /* Topic messages go to the other nodes on the store's database too (topic.c). */
    int topic_share;
    uint64_t topic_share_dropped; /* not sent to, or not delivered from, other nodes */
    delivery *dfree;     /* recycled deliveries */
    size_t ndfree;
    char *scratch;       /* header block of SENDs going straight to the store */
    size_t scratch_cap;
    broker_policy_rule *rules; /* per-destination policies (a copy of the options') */
    size_t nrules;
    unsigned limits : 1; /* some policy sets max_length or max_bytes */
    unsigned ttls : 1;   /* some policy sets ttl or max_ttl */
    store__heap due;     /* (time, queue): queues to dispatch again when messages are due */
    uint64_t due_seq;
    uv_timer_t timer;    /* runs for the earliest entry of due */
    uint64_t timer_at;   /* the time it runs for (0: stopped) */
    uint64_t expiry_at;  /* the earliest expiry check planned (an entry of due with no
                            queue; 0: none) */
    wild_trie wild_topics; /* wildcard topic dests by pattern */
    wild_trie wild_queues; /* wildcard queue dests by pattern */
    store__qhash temps;  /* live temporary queues by reply name (tempq.c) */
    uint64_t temp_nonce, temp_seq;
    broker_acl *acl;       /* NULL: no ACL, everything allowed (acl.c) */
    uint32_t acl_gen;      /* changes with every broker_set_acl: cached decisions expire */
    durable *durables;     /* durable topic subscriptions (durable.c) */
    int dur_shared;        /* ... kept by the store for several nodes (durable_shared.c) */
    size_t ndurable;       /* how many: 0 keeps the topic path as it was */
    dest_t *dur_records;   /* the record queue's dest (pinned), NULL until needed */
    uint64_t *dur_gone;    /* records of removed subscriptions, still to take out */
    size_t ndur_gone, dur_gone_cap;
    unsigned dur_retries;  /* commits a record was not found after (bounded) */
    char *dur_buf;         /* the header block of a message for the backlogs */
    size_t dur_buf_cap;
    store_target *dur_to;  /* the backlogs one message goes to, and their attributes */
    store_attrs *dur_attrs;
    size_t dur_to_cap;
} route_state;

/* ---- permissions (acl.c) ---- */

/* The BROKER_PERM_* bits login (NULL: none) has on dest (a name or a pattern). */
unsigned acl__perms(const broker_acl *a, const char *login, const char *dest, size_t len);
/* Does some rule of a give login perm (on any pattern)? */
int acl__grants_any(const broker_acl *a, const char *login, unsigned perm);
/* Does the destination exist (subscribers, or a queue holding messages)? */
int acl__exists(broker *b, const char *name, size_t len);
/* Replace the broker's ACL (takes ownership; NULL: none), expiring cached decisions. */
void acl__install(broker *b, broker_acl *acl);

#endif
