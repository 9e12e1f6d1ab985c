/* store_postgres.h: the PostgreSQL backend of store.h (durable queues in a PostgreSQL
 * database, reached with libpq).
 *
 * Reached like any backend through store_postgres_backend(); store_options.path is a libpq
 * connection string ("host=/run/postgresql dbname=stompd", "postgresql://u@h/db"). Open and
 * close talk to the database synchronously (they run before the loop starts and after it has
 * finished its work); everything between runs on the loop without waiting: each commit is
 * one pipelined transaction, and a lost connection is re-established in the background while
 * the commit waits. Open reports its reason through store_options.reason, failures later
 * through last_error. Several stores (stompd nodes) may share a database: each registers
 * as a node with a lease and they share queues (pg_share.c).
 */
#ifndef STORE_POSTGRES_H
#define STORE_POSTGRES_H

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How far (in message ids) the recorded delivery bound of a priority of a queue runs ahead
 * of its takes: after a crash, at most this many messages beyond the last one handed out
 * in each priority of each queue come back counted as redelivered. */
#define STORE_POSTGRES_LOOKAHEAD 8192

/* The longest pause between two attempts to reconnect, ms (it starts at 50 and doubles). */
#define STORE_POSTGRES_RECONNECT_MAX_MS 2000

/* A node's lease when store_options.lease_ms is 0, ms: a node that stops renewing it (killed,
 * cut off from the database) gives back the messages it held this long after its last
 * renewal (plus up to a quarter of it, the other nodes' renewal period). */
#define STORE_POSTGRES_LEASE_MS 10000

/* The PostgreSQL backend. Borrowed, static, never NULL. */
const store_ops *store_postgres_backend(void);

/* ---- topics across nodes (pg_topic.c) ----
 * Besides store_ops, a store of this backend carries topic messages to the other nodes on
 * its database: store_postgres_publish puts one in the open batch, its commit notifies every
 * node listening, and each other node's callback gets it, in the order of the commits (and
 * within a batch, of the publishes). Nothing of it is durable: a node whose connection is
 * down meanwhile misses what was published then. */

/* How long a topic message too large for a notification stays in stompd_topic for the
 * other nodes to read, ms (deleted by the next such publish after that). */
#define STORE_POSTGRES_TOPIC_KEEP_MS 60000
/* The most bytes of topic messages waiting for commits (the database unreachable): a
 * publish beyond it is refused (STORE_E_BUSY). */
#define STORE_POSTGRES_TOPIC_BACKLOG (64u << 20)

/* A topic message. Borrowed pointers. expires: 0 or the time it expires (the broker's). */
typedef struct store_postgres_topic {
    const char *dest;
    size_t dest_len;
    const char *headers; /* the broker's header block, opaque */
    size_t headers_len;
    const char *body;
    size_t body_len;
    uint64_t expires;
} store_postgres_topic;

/* Called on the owner's loop, never inside a store call; m is borrowed for the call. */
typedef void (*store_postgres_topic_cb)(void *arg, const store_postgres_topic *m);

/* Deliver the other nodes' topic messages to cb (NULL: no longer). s must be of this
 * backend. */
void store_postgres_topics(store *s, store_postgres_topic_cb cb, void *arg);
/* Send m to the other nodes with the next commit (the caller commits). STORE_OK,
 * STORE_E_NOMEM, STORE_E_BUSY (over STORE_POSTGRES_TOPIC_BACKLOG), STORE_E_INVALID. */
store_err store_postgres_publish(store *s, const store_postgres_topic *m) STORE_WUR;

/* ---- durable topic subscriptions across nodes (pg_durable.c) ----
 * The registry of durable subscriptions is a table every node reads (stompd_durable): each
 * node mirrors it in memory, hears of the others' changes by notification and reads them
 * in its next commit. A subscription's backlog is the queue STORE_POSTGRES_BACKLOG "<id>"
 * (the broker's /durable-sub/<n>); which node consumes it is the registry's live node, at
 * most one. A backlog message enqueued on a node that is not its live node goes in free
 * (no node holds it in memory; the live node claims it, in order); on the live node it is
 * held as any message of its own. A node is the live node of a subscription from the
 * commit of store_postgres_durable_live(.., 1) on, if no other live node had it (else
 * STORE_POSTGRES_DURABLE_LOST), until its (.., 0) or its lease runs out. */
#define STORE_POSTGRES_BACKLOG "/durable-sub/"
#define STORE_POSTGRES_BACKLOG_LEN 13

typedef struct store_postgres_durable {
    uint64_t id;       /* its backlog is STORE_POSTGRES_BACKLOG "<id>" */
    const char *client_id, *name; /* NUL-terminated */
    const char *topic; /* a name or a pattern, topic_len bytes, NUL-terminated */
    size_t topic_len;
    const char *selector; /* NUL-terminated; NULL: none */
    int no_local;
    int live;          /* its live subscriber: 0 none, 1 on this node, 2 on another node */
} store_postgres_durable;

enum {
    STORE_POSTGRES_DURABLE_PUT,  /* d exists as given (new, or its live node changed) */
    STORE_POSTGRES_DURABLE_GONE, /* d->id was removed (only d->id is set) */
    STORE_POSTGRES_DURABLE_LOST  /* this node is not d->id's live node (refused, or taken
                                    over after this node's lease ran out); only d->id set */
};
/* Called on the owner's loop, never inside a store call; d is borrowed for the call, and
 * the callback must not call the store. */
typedef void (*store_postgres_durable_cb)(void *arg, int event, const store_postgres_durable *d);

/* Tell cb about changes of the registry (NULL: no longer). s must be of this backend. */
void store_postgres_durables(store *s, store_postgres_durable_cb cb, void *arg);
/* Call fn for each subscription of the registry as this node knows it (what open read,
 * and the changes since): how the broker starts. fn must not call the store. */
void store_postgres_durable_each(store *s,
                                 void (*fn)(void *arg, const store_postgres_durable *d),
                                 void *arg);
/* A new subscription (d->id and d->live ignored) in the open batch: its id in *id.
 * (client_id, name) is unique in the registry: when another node made one first, the
 * commit does not add this one and cb hears GONE for it. STORE_E_NOMEM, STORE_E_INVALID. */
store_err store_postgres_durable_create(store *s, const store_postgres_durable *d,
                                        uint64_t *id) STORE_WUR;
/* Remove subscription id for good, its backlog with it on every node (the open batch). */
store_err store_postgres_durable_remove(store *s, uint64_t id) STORE_WUR;
/* This node has (live 1) or no longer has (0) the live subscriber of id. 1 when it put a
 * write in the open batch (a receipt waits for its commit), 0 when none was needed, -1
 * without memory. */
int store_postgres_durable_live(store *s, uint64_t id, int live);

typedef struct store_postgres_counts {
    uint64_t round_trips; /* pipelines sent (one Sync each: a round trip to the database) */
    uint64_t topics_in;   /* topic messages from other nodes handed to the callback */
    uint64_t topics_lost; /* ... that could not be (a row read too late, no memory) */
} store_postgres_counts;
/* s's counters since open. s must be of this backend. */
void store_postgres_stats(const store *s, store_postgres_counts *out);

#ifdef __cplusplus
}
#endif
#endif
