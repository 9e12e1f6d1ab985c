/* durable.c: durable topic subscriptions. One is identified by (client-id, name) and keeps,
 * while its subscriber is away, the messages of its topic (a name or a wildcard pattern)
 * that its selector and noLocal let through, in a queue of the store: its backlog,
 * /durable-sub/<n>, n the store id of its record. The records are messages of the queue
 * /durable-subs whose header block holds client-id, name, topic, selector and no-local
 * (a SUBSCRIBE's receipt waits for its commit). A live subscriber consumes the backlog as
 * any queue (ack modes, windows, redelivery, the policy whose pattern matches
 * /durable-sub/<n>).
 *
 * When the broker starts the records are read back (browse: nothing is taken) and
 * backlogs without a record are emptied. Removing a subscription empties its backlog and
 * takes its record out: cancelled while still in the open batch; else a tombstone record
 * (gone:<id>) joins the open batch, so the removal is durable when the UNSUBSCRIBE's
 * receipt goes out, and both are taken and acked at a later dispatch of the record queue
 * (a start skips tombstoned records and takes them out then).
 * The header block of a backlog message begins with the pair destination:<topic> (a SEND's
 * block never holds destination): its MESSAGE's destination is the topic it was sent to.
 * With no durable subscription, nothing here runs on the topic path.
 * On a store several nodes share (route.dur_shared: PostgreSQL) the store's registry takes
 * the record queue's place: a record is a row of it (its id names the backlog), a removal
 * deletes it and the backlog on every node, and which node consumes the backlog is the
 * store's to decide (durable_shared.c).
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

durable *durable__find(const broker *b, const char *client_id, const char *name)
{
    for (durable *d = b->route.durables; d; d = d->next)
        if (strcmp(d->client_id, client_id) == 0 && strcmp(d->name, name) == 0)
            return d;
    return NULL;
}

void durable__free_one(durable *d)
{
    sel__free(d->selector);
    free(d->client_id);
    free(d->name);
    free(d->topic);
    free(d->seltext);
    free(d);
}

durable *durable__new(const char *client_id, const char *name, const char *topic,
                        size_t tlen, const char *seltext, int no_local, uint64_t record)
{
    durable *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->client_id = strdup(client_id);
    d->name = strdup(name);
    d->topic = malloc(tlen + 1);
    d->seltext = seltext ? strdup(seltext) : NULL;
    if (!d->client_id || !d->name || !d->topic || (seltext && !d->seltext)) {
        durable__free_one(d);
        return NULL;
    }
    memcpy(d->topic, topic, tlen);
    d->topic[tlen] = '\0';
    d->topic_len = tlen;
    d->is_wild = wild__is_pattern(topic, tlen);
    d->no_local = no_local;
    d->record = record;
    d->queue_len = (size_t)snprintf(d->queue, sizeof d->queue, "%s%llu", DURABLE_QUEUE,
                                    (unsigned long long)record);
    d->queue_hash = store_hash_name(d->queue, d->queue_len);
    return d;
}

void durable__add(broker *b, durable *d)
{
    d->next = b->route.durables;
    b->route.durables = d;
    b->route.ndurable++;
}

/* Room in the scratch buffer: 0, or -1 without memory. */
static int reserve(route_state *r, size_t need)
{
    if (need <= r->dur_buf_cap)
        return 0;
    char *nb = realloc(r->dur_buf, need);
    if (!nb)
        return -1;
    r->dur_buf = nb;
    r->dur_buf_cap = need;
    return 0;
}

static size_t put_pair(char *o, const char *name, const char *value)
{
    size_t n = strlen(name) + 1, v = strlen(value) + 1;
    memcpy(o, name, n);
    memcpy(o + n, value, v);
    return n + v;
}

/* Record d's definition in the open batch: its id becomes d's record. */
static broker_err record(broker *b, const char *client_id, const char *name, const char *topic,
                         const char *seltext, int no_local, uint64_t *id)
{
    route_state *r = &b->route;
    if (r->dur_shared) { /* in the registry the nodes share */
        store_postgres_durable sd = { 0, client_id, name, topic, strlen(topic), seltext,
                                      no_local, 0 };
        store_err se = store_postgres_durable_create(b->store, &sd, id);
        if (se != STORE_OK)
            return se == STORE_E_NOMEM ? BROKER_E_NOMEM : BROKER_E_STORE;
        commit__dirty(b);
        return BROKER_OK;
    }
    const char *sl = seltext ? seltext : "";
    size_t need = 64 + strlen(client_id) + strlen(name) + strlen(topic) + strlen(sl);
    if (reserve(r, need) != 0)
        return BROKER_E_NOMEM;
    char *o = r->dur_buf;
    size_t n = put_pair(o, "client-id", client_id);
    n += put_pair(o + n, "name", name);
    n += put_pair(o + n, "topic", topic);
    if (seltext)
        n += put_pair(o + n, "selector", sl);
    n += put_pair(o + n, "no-local", no_local ? "true" : "false");
    store_err se = b->st->enqueue_hashed(b->store, DURABLE_REGISTRY, DURABLE_REGISTRY_LEN,
                                         store_hash_name(DURABLE_REGISTRY, DURABLE_REGISTRY_LEN),
                                         o, n, "", 0, id);
    if (se != STORE_OK)
        return se == STORE_E_NOMEM ? BROKER_E_NOMEM : BROKER_E_STORE;
    commit__dirty(b);
    return BROKER_OK;
}

static int same_def(const durable *d, const char *topic, size_t tlen, const char *seltext,
                    int no_local)
{
    const char *a = d->seltext ? d->seltext : "", *c = seltext ? seltext : "";
    return d->topic_len == tlen && memcmp(d->topic, topic, tlen) == 0 && strcmp(a, c) == 0 &&
           d->no_local == no_local;
}

broker_err durable__subscribe(broker *b, const char *client_id, const char *name,
                              const char *topic, size_t tlen, sel *selector,
                              const char *seltext, int no_local, durable **out, char *buf,
                              size_t cap)
{
    durable *d = durable__find(b, client_id, name);
    if (d && d->live) {
        snprintf(buf, cap, "durable subscription %.64s of client-id %.64s already has a "
                 "live subscriber", name, client_id);
        return BROKER_E_STATE;
    }
    if (d && !same_def(d, topic, tlen, seltext, no_local)) {
        snprintf(buf, cap, "durable subscription %.64s of client-id %.64s is on %.64s with "
                 "another selector or noLocal: UNSUBSCRIBE it for good first", name,
                 client_id, d->topic);
        return BROKER_E_STATE;
    }
    if (d) {
        sel__free(selector); /* the same text: the one it has */
        *out = d;
        return BROKER_OK;
    }
    uint64_t id;
    broker_err rc = record(b, client_id, name, topic, seltext, no_local, &id);
    if (rc != BROKER_OK)
        return rc;
    d = durable__new(client_id, name, topic, tlen, seltext, no_local, id);
    if (!d && b->route.dur_shared) {
        if (store_postgres_durable_remove(b->store, id) != STORE_OK)
            broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0,
                        "out of memory: durable subscription %s of client-id %s stays", name,
                        client_id);
        return BROKER_E_NOMEM;
    }
    if (!d) {
        if (b->st->cancel(b->store, id) != STORE_OK)
            broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0,
                        "durable subscription record %llu stays: out of memory",
                        (unsigned long long)id);
        return BROKER_E_NOMEM;
    }
    d->selector = selector;
    durable__add(b, d);
    *out = d;
    return BROKER_OK;
}

const char *durable__queue(const durable *d, size_t *len)
{
    *len = d->queue_len;
    return d->queue;
}

void durable__attach(broker *b, durable *d, sub *s)
{
    d->live = s;
    s->dur = d;
    if (b->route.dur_shared)
        durable__shared_live(b, d, 1);
}

void durable__attach_end(broker *b, durable *d)
{
    d->live = NULL;
    if (b->route.dur_shared)
        durable__shared_live(b, d, 0);
}

/* Take record id out of the record queue at its next dispatch (after the commit under
 * way): 0, or -1 without memory. */
static int take_out_later(broker *b, uint64_t id)
{
    route_state *r = &b->route;
    if (r->ndur_gone == r->dur_gone_cap) {
        size_t cap = r->dur_gone_cap ? r->dur_gone_cap * 2 : 8;
        uint64_t *n = realloc(r->dur_gone, cap * sizeof *n);
        if (!n)
            return -1;
        r->dur_gone = n;
        r->dur_gone_cap = cap;
    }
    if (!r->dur_records) {
        uint64_t h = store_hash_name(DURABLE_REGISTRY, DURABLE_REGISTRY_LEN);
        r->dur_records = dest__get(b, DURABLE_REGISTRY, DURABLE_REGISTRY_LEN, h);
        if (!r->dur_records)
            return -1;
        r->dur_records->pins++;
    }
    r->dur_gone[r->ndur_gone++] = id;
    dest__touch(b, r->dur_records);
    commit__again(b);
    return 0;
}

/* The record of a removed subscription goes. Still in the open batch: cancelled with it.
 * Else a tombstone (gone:<id>) joins the open batch, so the removal is as durable as the
 * receipt that waits for it, and both records are taken out later. */
static void forget_record(broker *b, uint64_t id)
{
    if (b->st->cancel(b->store, id) == STORE_OK)
        return;
    char blk[40];
    size_t n = (size_t)snprintf(blk, sizeof blk, "gone%c%llu", '\0', (unsigned long long)id) + 1;
    uint64_t tid = 0;
    store_err se = b->st->enqueue_hashed(b->store, DURABLE_REGISTRY, DURABLE_REGISTRY_LEN,
                                         store_hash_name(DURABLE_REGISTRY, DURABLE_REGISTRY_LEN),
                                         blk, n, "", 0, &tid);
    if (se == STORE_OK)
        commit__dirty(b);
    if (se != STORE_OK || take_out_later(b, id) != 0 || take_out_later(b, tid) != 0)
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0,
                    "durable subscription record %llu: %s", (unsigned long long)id,
                    se != STORE_OK ? store_strerror(se) : "out of memory: it stays");
}

broker_err durable__remove(broker *b, const endpoint *ep, const char *client_id,
                           const char *name, char *buf, size_t cap)
{
    durable *d = durable__find(b, client_id, name);
    if (!d) {
        snprintf(buf, cap, "no durable subscription %.64s of client-id %.64s", name,
                 client_id);
        return BROKER_E_NOTFOUND;
    }
    if ((d->live && d->live->ep != ep) || d->remote_live) {
        snprintf(buf, cap, "durable subscription %.64s of client-id %.64s has a live "
                 "subscriber on another connection", name, client_id);
        return BROKER_E_STATE;
    }
    if (d->live)
        sub__unsubscribe(b, d->live);
    durable **pp = &b->route.durables;
    while (*pp != d)
        pp = &(*pp)->next;
    *pp = d->next;
    b->route.ndurable--;
    if (b->route.dur_shared) {
        /* The store deletes its backlog on every node, what this node holds of it too. */
        if (store_postgres_durable_remove(b->store, d->record) == STORE_OK)
            commit__dirty(b);
        else
            broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0,
                        "out of memory: durable subscription %s of client-id %s comes back "
                        "at the next start", name, client_id);
    } else {
        tempq__purge_queue(b, d->queue, d->queue_len);
        forget_record(b, d->record);
    }
    durable__free_one(d);
    return BROKER_OK;
}

static int is_record(void *arg, const store_msg *m)
{
    return m->id == *(const uint64_t *)arg;
}

void durable__dispatch(broker *b, dest_t *d)
{
    route_state *r = &b->route;
    while (r->ndur_gone) {
        uint64_t id = r->dur_gone[r->ndur_gone - 1];
        store_scan scan;
        memset(&scan, 0, sizeof scan);
        store_msg sm;
        store_err se = b->st->take_match(b->store, d->name, d->link.len, d->link.hash,
                                         broker__now_ms(b), &scan, is_record, &id, &sm);
        if (se == STORE_E_AGAIN) {
            dest__touch(b, d);
            commit__dirty(b);
            return;
        }
        if (se == STORE_E_EMPTY && r->dur_retries++ < 3) {
            dest__touch(b, d); /* its commit was under way: look after the next one */
            commit__again(b);
            return;
        }
        if (se == STORE_OK && b->st->ack(b->store, sm.id) == STORE_OK)
            commit__dirty(b);
        else if (se != STORE_OK)
            broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0,
                        "durable subscription record %llu not found: %s",
                        (unsigned long long)id, store_strerror(se));
        r->dur_retries = 0;
        r->ndur_gone--;
    }
}

/* Is there room in d's backlog under its policy's limits? */
static int room(broker *b, const durable *d, size_t bytes)
{
    char why[256];
    int q = queue__room(b, d->queue, d->queue_len, NULL, bytes, why, sizeof why);
    if (q == QUEUE_ROOM)
        return 1;
    broker__log(b, BROKER_LOG_WARN, BROKER_EV_STORE, 0,
                "durable subscription %s of client-id %s is full: a message of %s is not "
                "kept for it", d->name, d->client_id, d->topic);
    return 0;
}

static int wants(const durable *d, const char *topic, size_t tlen, const char *hdrs,
                 size_t hlen, const msg_attrs *a, const endpoint *from)
{
    if (d->is_wild ? !wild__matches(d->topic, d->topic_len, topic, tlen)
                   : d->topic_len != tlen || memcmp(d->topic, topic, tlen) != 0)
        return 0;
    if (d->no_local && d->live && d->live->ep && d->live->ep == from)
        return 0;
    return !d->selector || filter__durable(d->selector, hdrs, hlen, topic, tlen, a->priority);
}

/* Room for n backlogs in r->dur_to: 0, or -1 without memory. */
static int reserve_to(route_state *r, size_t n)
{
    if (n <= r->dur_to_cap)
        return 0;
    size_t cap = r->dur_to_cap ? r->dur_to_cap * 2 : 8;
    store_target *t = realloc(r->dur_to, cap * sizeof *t);
    if (t)
        r->dur_to = t;
    store_attrs *sa = t ? realloc(r->dur_attrs, cap * sizeof *sa) : NULL;
    if (!sa)
        return -1;
    r->dur_attrs = sa;
    r->dur_to_cap = cap;
    return 0;
}

/* The message goes into every backlog that wants it and has room. With more than one and a
 * store that can (ops version 10), its body is stored once for all of them; otherwise one
 * copy each. */
broker_err durable__publish(broker *b, const char *topic, size_t tlen, const char *hdrs,
                            size_t hlen, const char *body, size_t blen, const msg_attrs *a,
                            const endpoint *from, int *stored)
{
    route_state *r = &b->route;
    size_t blk = 12 + tlen + 1 + hlen, n = 0;
    int shared = b->st->version >= 10 && b->st->enqueue_shared;
    for (durable *d = r->durables; d; d = d->next) {
        if (!wants(d, topic, tlen, hdrs, hlen, a, from))
            continue;
        if (!n) {
            if (reserve(r, blk) != 0)
                return BROKER_E_NOMEM;
            memcpy(r->dur_buf, "destination", 12);
            memcpy(r->dur_buf + 12, topic, tlen);
            r->dur_buf[12 + tlen] = '\0';
            memcpy(r->dur_buf + 13 + tlen, hdrs, hlen);
        }
        if (r->limits && !room(b, d, blk + blen))
            continue;
        if (shared && reserve_to(r, n + 1) != 0)
            return BROKER_E_NOMEM;
        if (shared) {
            r->dur_to[n++] = (store_target){ d->queue, d->queue_len, d->queue_hash, NULL, 0 };
            continue;
        }
        n++;
        broker_err rc = queue__enqueue(b, d->queue, d->queue_len, d->queue_hash, r->dur_buf,
                                       blk, body, blen, a, NULL);
        if (rc != BROKER_OK)
            return rc;
        *stored = 1;
    }
    if (!shared || !n)
        return BROKER_OK;
    broker_err rc = n == 1 ? queue__enqueue(b, r->dur_to[0].queue, r->dur_to[0].queue_len,
                                            r->dur_to[0].hash, r->dur_buf, blk, body, blen, a,
                                            NULL)
                           : queue__enqueue_shared(b, r->dur_to, r->dur_attrs, n, r->dur_buf,
                                                   blk, body, blen, a);
    if (rc == BROKER_OK)
        *stored = 1;
    return rc;
}

void durable__split(const char **hdrs, size_t *hlen, const char **dest, size_t *dlen)
{
    const char *h = *hdrs;
    if (*hlen < 13 || memcmp(h, "destination", 12) != 0)
        return;
    const char *v = h + 12;
    const char *e = memchr(v, '\0', *hlen - 12);
    if (!e)
        return;
    *dest = v;
    *dlen = (size_t)(e - v);
    *hlen -= (size_t)(e + 1 - h);
    *hdrs = e + 1;
}

size_t durable__count(const broker *b, const char *topic, size_t len)
{
    size_t n = 0;
    for (const durable *d = b->route.durables; d; d = d->next)
        n += d->topic_len == len && memcmp(d->topic, topic, len) == 0;
    return n;
}

const durable *durable__first(const broker *b)
{
    return b->route.durables;
}

const durable *durable__next(const durable *d)
{
    return d->next;
}

void durable__view(const durable *d, durable_view *v)
{
    *v = (durable_view){ .client_id = d->client_id, .name = d->name, .topic = d->topic,
                         .selector = d->seltext, .queue = d->queue,
                         .topic_len = d->topic_len, .queue_len = d->queue_len,
                         .is_wild = d->is_wild, .no_local = d->no_local,
                         .active = d->live != NULL || d->remote_live };
}

const durable *durable__of_queue(const broker *b, const char *name, size_t len)
{
    for (const durable *d = b->route.durables; d; d = d->next)
        if (d->queue_len == len && memcmp(d->queue, name, len) == 0)
            return d;
    return NULL;
}

/* A record read back at the start: its subscription joins the list. */
static void restore(broker *b, const store_msg *m)
{
    const char *cid = msg__block_header(m->headers, m->headers_len, "client-id");
    const char *name = msg__block_header(m->headers, m->headers_len, "name");
    const char *topic = msg__block_header(m->headers, m->headers_len, "topic");
    const char *seltext = msg__block_header(m->headers, m->headers_len, "selector");
    const char *nl = msg__block_header(m->headers, m->headers_len, "no-local");
    if (!cid || !name || !topic || durable__find(b, cid, name))
        return;
    sel *s = NULL;
    if (seltext) {
        size_t pos;
        char why[160];
        if (!(s = sel__compile(seltext, strlen(seltext), &pos, why, sizeof why))) {
            broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0,
                        "durable subscription %s of client-id %s: its selector does not "
                        "compile: %s", name, cid, pos ? why : "out of memory");
            return;
        }
    }
    durable *d = durable__new(cid, name, topic, strlen(topic), seltext, nl && !strcmp(nl, "true"),
                         m->id);
    if (!d) {
        sel__free(s);
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0,
                    "out of memory: durable subscription %s of client-id %s not restored",
                    name, cid);
        return;
    }
    d->selector = s;
    durable__add(b, d);
}

typedef struct orphans {
    broker *b;
    char (*names)[40];
    size_t n, cap;
} orphans;

/* A backlog queue of the store with no subscription: to empty. */
static void collect(void *arg, const char *name, size_t len, uint64_t hash)
{
    orphans *o = arg;
    (void)hash;
    if (!durable__is_backlog(name, len) || len >= 40)
        return;
    for (durable *d = o->b->route.durables; d; d = d->next)
        if (d->queue_len == len && memcmp(d->queue, name, len) == 0)
            return;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 8;
        char (*n)[40] = realloc(o->names, cap * sizeof *n);
        if (!n)
            return;
        o->names = n;
        o->cap = cap;
    }
    memcpy(o->names[o->n], name, len);
    o->names[o->n++][len] = '\0';
}

/* The record ids the tombstones name (pass 0), then the subscriptions of the records
 * without one (pass 1); tombstones and the records they name are taken out later. */
static void read_records(broker *b, int pass, uint64_t **gone, size_t *ngone)
{
    store_cursor cur;
    memset(&cur, 0, sizeof cur);
    store_msg m;
    uint64_t h = store_hash_name(DURABLE_REGISTRY, DURABLE_REGISTRY_LEN);
    uint64_t now = broker__now_ms(b);
    while (b->st->browse(b->store, DURABLE_REGISTRY, DURABLE_REGISTRY_LEN, h, &cur, now, &m) ==
           STORE_OK) {
        const char *g = msg__block_header(m.headers, m.headers_len, "gone");
        if (pass == 0 && g) {
            uint64_t *n = realloc(*gone, (*ngone + 1) * sizeof *n);
            if (n) {
                *gone = n;
                n[(*ngone)++] = strtoull(g, NULL, 10);
            }
            (void)take_out_later(b, m.id); /* without memory: at a later start */
            continue;
        }
        if (pass == 0 || g)
            continue;
        size_t i = 0;
        while (i < *ngone && (*gone)[i] != m.id)
            i++;
        if (i < *ngone)
            (void)take_out_later(b, m.id);
        else
            restore(b, &m);
    }
}

void durable__start(broker *b)
{
    uint64_t *gone = NULL;
    size_t ngone = 0;
    if (b->route.dur_shared) {
        durable__shared_start(b);
    } else {
        read_records(b, 0, &gone, &ngone);
        read_records(b, 1, &gone, &ngone);
    }
    free(gone);
    orphans o = { b, NULL, 0, 0 };
    b->st->queues(b->store, collect, &o);
    for (size_t i = 0; i < o.n; i++)
        tempq__purge_queue(b, o.names[i], strlen(o.names[i]));
    free(o.names);
    if (b->route.ndurable)
        broker__log(b, BROKER_LOG_INFO, BROKER_EV_STORE, 0,
                    "%zu durable subscriptions restored", b->route.ndurable);
}

void durable__free(broker *b)
{
    route_state *r = &b->route;
    while (r->durables) {
        durable *d = r->durables;
        r->durables = d->next;
        durable__free_one(d);
    }
    r->ndurable = 0;
    free(r->dur_gone);
    free(r->dur_buf);
    free(r->dur_to);
    free(r->dur_attrs);
    r->dur_gone = NULL;
    r->dur_buf = NULL;
    r->dur_to = NULL;
    r->dur_attrs = NULL;
    r->dur_to_cap = 0;
    r->ndur_gone = r->dur_gone_cap = r->dur_buf_cap = 0;
    r->dur_records = NULL;
}
