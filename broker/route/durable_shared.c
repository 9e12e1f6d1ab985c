/* durable_shared.c: durable topic subscriptions on a store several nodes share (the
 * PostgreSQL store, route.dur_shared). The store keeps the registry (store_postgres.h:
 * each subscription's identity, definition and live node) and tells this broker of every
 * change the other nodes make; this file keeps the broker's list (durable.c) in step and
 * cuts a local subscriber that lost its subscription: removed on another node, or its
 * identity live on another node (a second subscriber gets the ERROR one node gives once
 * the database has answered, before its RECEIPT). What is kept for a subscription is
 * enqueued by the node that publishes (durable.c), into a backlog that only its live node
 * consumes (the store claims it there); a topic message from another node is never kept
 * again here.
 */
#include "core.h"

#include <stdio.h>
#include <string.h>

/* The store names the backlogs as durable.h does. */
_Static_assert(STORE_POSTGRES_BACKLOG_LEN == DURABLE_QUEUE_LEN &&
                   sizeof STORE_POSTGRES_BACKLOG == sizeof DURABLE_QUEUE,
               "the store's backlog names are the broker's /durable-sub/<n>");

static durable *by_record(const broker *b, uint64_t id)
{
    for (durable *d = b->route.durables; d; d = d->next)
        if (d->record == id)
            return d;
    return NULL;
}

/* d's subscriber here (if any) is let go with an ERROR: why, then "durable subscription
 * NAME of client-id CID" in the text. The store no longer counts it as live here. */
static void cut(durable *d, const char *why)
{
    sub *s = d->live;
    if (!s)
        return;
    d->live = NULL;
    s->dur = NULL;
    if (!s->ep)
        return;
    char msg[300];
    snprintf(msg, sizeof msg, "durable subscription %.64s of client-id %.64s %s", d->name,
             d->client_id, why);
    s->ep->ops->fail(s->ep, BROKER_E_STATE, msg);
}

/* d leaves the list (and is freed). */
static void drop(broker *b, durable *d)
{
    durable **pp = &b->route.durables;
    while (*pp != d)
        pp = &(*pp)->next;
    *pp = d->next;
    b->route.ndurable--;
    durable__free_one(d);
}

/* A subscription of the registry joins the list. */
static void join(broker *b, const store_postgres_durable *sd)
{
    sel *s = NULL;
    if (sd->selector) {
        size_t pos;
        char why[160];
        if (!(s = sel__compile(sd->selector, strlen(sd->selector), &pos, why, sizeof why))) {
            broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0,
                        "durable subscription %s of client-id %s: its selector does not "
                        "compile: %s", sd->name, sd->client_id, pos ? why : "out of memory");
            return;
        }
    }
    durable *d = durable__new(sd->client_id, sd->name, sd->topic, sd->topic_len, sd->selector,
                              sd->no_local, sd->id);
    if (!d) {
        sel__free(s);
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0,
                    "out of memory: durable subscription %s of client-id %s not known here",
                    sd->name, sd->client_id);
        return;
    }
    d->selector = s;
    d->remote_live = sd->live == 2;
    durable__add(b, d);
}

void durable__shared_event(void *arg, int event, const store_postgres_durable *sd)
{
    broker *b = arg;
    durable *d = by_record(b, sd->id);
    switch (event) {
    case STORE_POSTGRES_DURABLE_PUT:
        if (d) {
            d->remote_live = sd->live == 2;
            return;
        }
        /* Made here at the same time as on another node: the registry kept the other. */
        if ((d = durable__find(b, sd->client_id, sd->name)) != NULL) {
            cut(d, "was made on another node at the same time: SUBSCRIBE again");
            drop(b, d);
        }
        join(b, sd);
        return;
    case STORE_POSTGRES_DURABLE_GONE:
        if (!d)
            return;
        cut(d, "was removed on another node");
        drop(b, d);
        return;
    case STORE_POSTGRES_DURABLE_LOST:
        if (d)
            cut(d, "already has a live subscriber");
        return;
    default:
        return;
    }
}

static void start_one(void *arg, const store_postgres_durable *sd)
{
    broker *b = arg;
    if (!durable__find(b, sd->client_id, sd->name))
        join(b, sd);
}

void durable__shared_start(broker *b)
{
    store_postgres_durable_each(b->store, start_one, b);
}

void durable__shared_live(broker *b, durable *d, int live)
{
    int w = store_postgres_durable_live(b->store, d->record, live);
    /* A receipt waits for it: the SUBSCRIBE's for the database's answer; a plain
     * UNSUBSCRIBE's until another node may take the subscription. */
    if (w > 0)
        commit__dirty(b);
    else if (w < 0)
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0,
                    "out of memory: durable subscription %s of client-id %s not consumed here",
                    d->name, d->client_id);
}
