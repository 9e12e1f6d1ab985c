/* durable.h: durable topic subscriptions (durable.c), part of route.h: the reserved names
 * of their queues, and what session and the rest of route call.
 */
#ifndef BROKER_ROUTE_DURABLE_H
#define BROKER_ROUTE_DURABLE_H

/* ---- durable topic subscriptions (durable.c) ------------------------------------------ */

/* Names under /durable-sub are the broker's own: the backlog queue of each durable
 * subscription (/durable-sub/<n>) and the record of them all (/durable-subs). Clients
 * neither SEND nor SUBSCRIBE to them, and no wildcard reaches them. */
#define DURABLE_RESERVED "/durable-sub"
#define DURABLE_RESERVED_LEN 12
#define DURABLE_QUEUE "/durable-sub/"
#define DURABLE_QUEUE_LEN 13
#define DURABLE_REGISTRY "/durable-subs"
#define DURABLE_REGISTRY_LEN 13
static inline int durable__reserved(const char *name, size_t len)
{
    return len >= DURABLE_RESERVED_LEN && name[1] == 'd' &&
           memcmp(name, DURABLE_RESERVED, DURABLE_RESERVED_LEN) == 0;
}
static inline int durable__is_backlog(const char *name, size_t len)
{
    return len > DURABLE_QUEUE_LEN && name[1] == 'd' &&
           memcmp(name, DURABLE_QUEUE, DURABLE_QUEUE_LEN) == 0;
}
/* A name no wildcard queue subscription reaches: a temporary queue's, or the broker's. */
static inline int route__private(const char *name, size_t len)
{
    return tempq__is_reply(name, len) || durable__reserved(name, len);
}
/* A durable subscription (durable.c; durable_shared.c on a store several nodes share). */
struct durable {
    durable *next;
    char *client_id, *name, *topic;
    char *seltext; /* NULL: no selector */
    size_t topic_len;
    int is_wild, no_local;
    int remote_live; /* shared: its live subscriber is on another node */
    sel *selector;
    uint64_t record; /* its record's store id (shared: its id in the store's registry) */
    sub *live;       /* its subscriber, or NULL while it is away */
    uint64_t queue_hash;
    size_t queue_len;
    char queue[40]; /* DURABLE_QUEUE and the record id */
};
/* The list's members: by identity (or NULL); a new one (on no list; NULL without memory;
 * record: its store id); one joins the list; one freed (on no list). */
durable *durable__find(const broker *b, const char *client_id, const char *name);
durable *durable__new(const char *client_id, const char *name, const char *topic, size_t tlen,
                      const char *seltext, int no_local, uint64_t record);
void durable__add(broker *b, durable *d);
void durable__free_one(durable *d);

/* ---- durable subscriptions several nodes share (durable_shared.c) ----
 * With the PostgreSQL store (route.dur_shared) the store keeps the registry every node
 * shares (store_postgres.h) instead of the record queue: durable.c asks it where it would
 * write a record, and these follow what it reports. */
/* A change of the store's registry (a store_postgres_durable_cb). */
void durable__shared_event(void *arg, int event, const store_postgres_durable *sd);
/* When the broker starts: the registry as the store read it. */
void durable__shared_start(broker *b);
/* The store has (live 1) or no longer has (0) d's live subscriber here. */
void durable__shared_live(broker *b, durable *d, int live);

/* The durable subscription (client_id, name) of ep on topic (a name or a wildcard pattern),
 * created (and recorded in the store's open batch) when there is none: *out. selector
 * (may be NULL; its text in seltext) and no_local filter what it keeps; the subscription
 * owns selector on success. An ERROR text in buf: the identity is in use by a live
 * subscriber, or it exists with another topic, selector or noLocal. */
broker_err durable__subscribe(broker *b, const char *client_id, const char *name,
                              const char *topic, size_t tlen, sel *selector,
                              const char *seltext, int no_local, durable **out, char *buf,
                              size_t cap) BROKER_WUR;
/* Its backlog queue's name (borrowed, valid while it exists). */
const char *durable__queue(const durable *dur, size_t *len);
/* s (a subscription to the backlog queue) is its live subscriber until it goes
 * (sub__unsubscribe calls durable__attach_end). */
void durable__attach(broker *b, durable *dur, sub *s);
void durable__attach_end(broker *b, durable *dur);
/* Remove the durable subscription (client_id, name) for good: its backlog is emptied and
 * its record removed. BROKER_E_NOTFOUND when there is none, BROKER_E_STATE when another
 * connection than ep consumes it (ERROR text in buf either way). */
broker_err durable__remove(broker *b, const endpoint *ep, const char *client_id,
                           const char *name, char *buf, size_t cap) BROKER_WUR;
/* A topic message: into the backlog of every durable subscription whose topic matches and
 * whose selector and noLocal let it through (*stored set to 1 when one did: a receipt
 * waits for the commit). hdrs: the SEND's header block. */
broker_err durable__publish(broker *b, const char *topic, size_t tlen, const char *hdrs,
                            size_t hlen, const char *body, size_t blen, const msg_attrs *a,
                            const endpoint *from, int *stored) BROKER_WUR;
/* A dispatch of the record queue: the records of removed subscriptions go. */
void durable__dispatch(broker *b, dest_t *d);
/* The backlog message's MESSAGE destination (its topic) and the rest of its header block. */
void durable__split(const char **hdrs, size_t *hlen, const char **dest, size_t *dlen);
/* Durable subscriptions on the topic named so (exactly, not by pattern). */
size_t durable__count(const broker *b, const char *topic, size_t len);
/* What the management API shows of a durable subscription; every pointer is borrowed from
 * it, valid while it exists. selector: NULL without one. active: a subscriber consumes it. */
typedef struct durable_view {
    const char *client_id, *name, *topic, *selector, *queue;
    size_t topic_len, queue_len;
    int is_wild, no_local, active;
} durable_view;
/* The durable subscriptions in no particular order; NULL after the last. */
const durable *durable__first(const broker *b);
const durable *durable__next(const durable *dur);
void durable__view(const durable *dur, durable_view *v);
/* The subscription whose backlog queue is named so, or NULL. */
const durable *durable__of_queue(const broker *b, const char *name, size_t len);
/* When the broker starts: the durable subscriptions recorded in the store come back, and
 * backlogs without a record are emptied. */
void durable__start(broker *b);
void durable__free(broker *b);
/* The queue named so is emptied and no longer dispatched (tempq.c). */
void tempq__purge_queue(broker *b, const char *name, size_t len);

#endif
