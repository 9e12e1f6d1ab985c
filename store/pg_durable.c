/* pg_durable.c: durable topic subscriptions shared by the nodes of one database.
 *
 * The registry is the table stompd_durable (schema 4): one row per subscription, (id,
 * queue, client_id, name, topic, selector, no_local, live_node), unique by (client_id, name)
 * and by queue, the backlog STORE_POSTGRES_BACKLOG "<id>". Every node mirrors it in memory
 * (s->durs, by id): read at open, then kept up to date through the notifications of
 * channel stompd_durable ("<node>:<id>": that row changed), each read (OP_DUR_GET) in the
 * node's next commit, and read whole (OP_DUR_LOAD) after a reconnection or whenever an
 * answer was lost. The broker hears of each change (store_postgres_durables).
 * Writes go in the open batch as any other: a new row (OP_DUR_NEW; when another node's
 * row has its identity the insert does nothing and the subscription is GONE here), a
 * removal with its backlog's rows on every node (OP_DUR_DROP), and the live node:
 *   OP_DUR_LIVE    live_node becomes this node if it was none, this node, or a node whose
 *                  lease ran out; else the broker hears LOST (its subscriber is refused)
 *   OP_DUR_UNLIVE  live_node back to none (the subscriber went)
 * Each of these notifies the other nodes; the reap of dead nodes (pg_int.h) clears their
 * live nodes and notifies too.
 * Messages. While this node is a subscription's live node (held, from the commit that
 * granted it), its backlog is an ordinary queue of this node: what is enqueued here is
 * held here, and take claims what other nodes put in free. Otherwise an enqueue to the
 * backlog goes in free (OP_ENQ_FREE: owner 0, forgotten once committed; the statement
 * notifies stompd_free if some node is its live node), and claims of it are refused;
 * whatever this node still holds of it (ready when the subscriber went, returned by it
 * later, claimed or enqueued before) is given back (OP_RELEASE), so the live node claims
 * everything in the order of the rows. Answers are kept on the batch's operations and
 * acted on when the batch is settled: nothing changes on an answer of a transaction that
 * did not commit.
 */
#include "pg_int.h"

#include <stdio.h>
#include <string.h>

typedef struct pdur {
    uint64_t id;
    int64_t live_node; /* the registry's, as last read or answered */
    uint8_t creating;  /* its OP_DUR_NEW is in a batch, not settled */
    uint8_t want;      /* the broker's subscriber of it is here */
    uint8_t held;      /* this node is its live node (granted, committed) */
    uint8_t seen;      /* in the snapshot being applied */
    uint8_t no_local;
    unsigned asking;   /* its OP_DUR_LIVEs in batches, not settled */
    char *client_id, *name, *topic, *selector; /* selector NULL: none */
    size_t topic_len;
} pdur;

/* The columns of a durable statement's answer (pg_stmt.c). */
enum { D_ID, D_FLAG, D_CID, D_NAME, D_TOPIC, D_SEL, D_NOLOCAL, D_LIVE, D__COLS };

/* ---- the mirror, by id ---- */

static size_t lower(const store *s, uint64_t id)
{
    size_t lo = 0, hi = s->ndur;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->durs[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static pdur *find(const store *s, uint64_t id)
{
    size_t i = lower(s, id);
    return i < s->ndur && s->durs[i]->id == id ? s->durs[i] : NULL;
}

static void dur_free(pdur *d)
{
    if (!d)
        return;
    free(d->client_id);
    free(d->name);
    free(d->topic);
    free(d->selector);
    free(d);
}

static char *dup_n(const char *p, size_t n)
{
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, p, n);
        c[n] = '\0';
    }
    return c;
}

/* A new entry (in no mirror), or NULL without memory. sel NULL: none. */
static pdur *dur_make(uint64_t id, const char *cid, size_t cidl, const char *name, size_t nl,
                      const char *topic, size_t tl, const char *sel, size_t sl, int no_local)
{
    pdur *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->id = id;
    d->client_id = dup_n(cid, cidl);
    d->name = dup_n(name, nl);
    d->topic = dup_n(topic, tl);
    d->selector = sel ? dup_n(sel, sl) : NULL;
    d->topic_len = tl;
    d->no_local = no_local != 0;
    if (!d->client_id || !d->name || !d->topic || (sel && !d->selector)) {
        dur_free(d);
        return NULL;
    }
    return d;
}

/* d's definition in one block (caller owns, release with free), or NULL. */
static store_postgres_durable *def_copy(const pdur *d)
{
    size_t c = strlen(d->client_id) + 1, n = strlen(d->name) + 1, t = d->topic_len + 1;
    size_t l = d->selector ? strlen(d->selector) + 1 : 0;
    store_postgres_durable *v = malloc(sizeof *v + c + n + t + l);
    if (!v)
        return NULL;
    char *p = (char *)(v + 1);
    *v = (store_postgres_durable){ .id = d->id, .client_id = memcpy(p, d->client_id, c),
                                   .name = memcpy(p + c, d->name, n),
                                   .topic = memcpy(p + c + n, d->topic, t),
                                   .topic_len = d->topic_len,
                                   .selector = l ? memcpy(p + c + n + t, d->selector, l) : NULL,
                                   .no_local = d->no_local };
    return v;
}

/* d joins the mirror: 0, or -1 without memory. */
static int insert(store *s, pdur *d)
{
    if (s->ndur == s->dur_cap) {
        size_t cap = s->dur_cap ? s->dur_cap * 2 : 16;
        pdur **n = realloc(s->durs, cap * sizeof *n);
        if (!n)
            return -1;
        s->durs = n;
        s->dur_cap = cap;
    }
    size_t i = lower(s, d->id);
    memmove(&s->durs[i + 1], &s->durs[i], (s->ndur - i) * sizeof *s->durs);
    s->durs[i] = d;
    s->ndur++;
    return 0;
}

/* d leaves the mirror (not freed). */
static void unlink_dur(store *s, const pdur *d)
{
    size_t i = lower(s, d->id);
    if (i < s->ndur && s->durs[i] == d) {
        memmove(&s->durs[i], &s->durs[i + 1], (s->ndur - i - 1) * sizeof *s->durs);
        s->ndur--;
    }
}

static void view(const store *s, const pdur *d, store_postgres_durable *v)
{
    *v = (store_postgres_durable){ d->id, d->client_id, d->name, d->topic, d->topic_len,
                                   d->selector, d->no_local,
                                   d->live_node == 0 ? 0 : d->live_node == s->node ? 1 : 2 };
}

static void emit(store *s, int event, const pdur *d)
{
    if (!s->dur_cb)
        return;
    store_postgres_durable v;
    view(s, d, &v);
    s->dur_cb(s->dur_arg, event, &v);
}

static void emit_id(store *s, int event, uint64_t id)
{
    if (!s->dur_cb)
        return;
    store_postgres_durable v = { .id = id, .client_id = "", .name = "", .topic = "" };
    s->dur_cb(s->dur_arg, event, &v);
}

/* ---- operations ---- */

static pop *push(store *s, int kind, uint64_t id, void *ptr)
{
    if (pg_reserve_ops(s->open, 1) != 0)
        return NULL;
    return pg_push_op(s->open, kind, (int64_t)id, ptr);
}

/* The registry is read whole in the open batch (once). */
static void reload(store *s)
{
    if (s->dur_loading)
        return;
    if (push(s, OP_DUR_LOAD, 0, NULL))
        s->dur_loading = 1;
    else
        pg__set_err(s, "out of memory: the durable subscriptions are read again later");
}

static int ask_live(store *s, pdur *d)
{
    if (!push(s, OP_DUR_LIVE, d->id, NULL))
        return -1;
    d->asking++;
    return 0;
}

/* ---- holding a backlog ---- */

/* This node is d's live node: its backlog is held here, and claimed. */
static void hold(store *s, pdur *d)
{
    char name[48];
    size_t n = pg__backlog_name(name, sizeof name, d->id);
    pqueue *q = pg__get_queue(s, name, n, store_hash_name(name, n));
    if (!q) {
        pg__set_err(s, "out of memory: durable subscription %llu not consumed here",
                    (unsigned long long)d->id);
        return;
    }
    d->held = 1;
    if (!q->held) {
        q->held = 1;
        q->pins++;
    }
    pg__undry(s, q);
}

/* Subscription id is no longer held here: what the backlog holds goes back; unlive: the
 * registry is told that it has no live node (this node was it). */
static void unhold(store *s, uint64_t id, int unlive)
{
    pdur *d = find(s, id);
    if (d)
        d->held = 0;
    char name[48];
    size_t n = pg__backlog_name(name, sizeof name, id);
    pqueue *q = find_queue(s, name, n, store_hash_name(name, n));
    if (q && q->held) {
        q->held = 0;
        pg__release_backlog(s, q);
        q->pins--;
        pg__queue_drop_unused(s, q);
    }
    if (unlive && !push(s, OP_DUR_UNLIVE, id, NULL))
        pg__set_err(s, "out of memory: durable subscription %llu stays live on this node",
                    (unsigned long long)id);
}

/* d is gone from the registry: forgotten here, the broker told; purge: its backlog's rows
 * that this node may have put in since are deleted. */
static void gone(store *s, pdur *d, int purge)
{
    uint64_t id = d->id;
    if (d->held)
        unhold(s, id, 0);
    unlink_dur(s, d);
    dur_free(d);
    if (purge && !push(s, OP_DUR_DROP, id, NULL))
        pg__set_err(s, "out of memory: the backlog of removed durable subscription %llu stays",
                    (unsigned long long)id);
    emit_id(s, STORE_POSTGRES_DURABLE_GONE, id);
}

/* ---- the broker's calls ---- */

void store_postgres_durables(store *s, store_postgres_durable_cb cb, void *arg)
{
    s->dur_cb = cb;
    s->dur_arg = arg;
}

void store_postgres_durable_each(store *s, void (*fn)(void *arg, const store_postgres_durable *d),
                                 void *arg)
{
    for (size_t i = 0; i < s->ndur; i++) {
        store_postgres_durable v;
        view(s, s->durs[i], &v);
        fn(arg, &v);
    }
}

store_err store_postgres_durable_create(store *s, const store_postgres_durable *in,
                                        uint64_t *id)
{
    if (!s || !in || !in->client_id || !in->name || !in->topic || !in->topic_len ||
        in->topic_len >= (1u << 30) || strlen(in->client_id) >= (1u << 30) ||
        strlen(in->name) >= (1u << 30) || (in->selector && strlen(in->selector) >= (1u << 30)) ||
        s->next_id >= (uint64_t)INT64_MAX / 2)
        return STORE_E_INVALID;
    uint64_t nid = s->next_id;
    const char *sel = in->selector;
    pdur *d = dur_make(nid, in->client_id, strlen(in->client_id), in->name, strlen(in->name),
                       in->topic, in->topic_len, sel, sel ? strlen(sel) : 0, in->no_local);
    /* The statement's parameters: a copy of its own, the entry may go first. */
    store_postgres_durable *p = d ? def_copy(d) : NULL;
    if (!p || pg_reserve_ops(s->open, 1) != 0 || insert(s, d) != 0) {
        dur_free(d);
        free(p);
        return STORE_E_NOMEM;
    }
    d->creating = 1;
    pg_push_op(s->open, OP_DUR_NEW, (int64_t)nid, p);
    s->next_id += 1u << PG_NODE_BITS;
    *id = nid;
    return STORE_OK;
}

store_err store_postgres_durable_remove(store *s, uint64_t id)
{
    if (pg_reserve_ops(s->open, 1) != 0)
        return STORE_E_NOMEM;
    pop *o = pg_push_op(s->open, OP_DUR_DROP, (int64_t)id, NULL);
    o->prio = 1; /* a removal: the other nodes hear of it */
    pdur *d = find(s, id);
    if (d) {
        if (d->held)
            unhold(s, id, 0);
        unlink_dur(s, d);
        dur_free(d);
    }
    return STORE_OK;
}

int store_postgres_durable_live(store *s, uint64_t id, int live)
{
    pdur *d = find(s, id);
    if (!d)
        return 0;
    if (live) {
        d->want = 1;
        if (d->held || d->asking)
            return 0;
        return ask_live(s, d) == 0 ? 1 : -1;
    }
    d->want = 0;
    if (!d->held)
        return 0; /* asked: the answer is let go when it comes (settle_live) */
    unhold(s, id, 1);
    return 1;
}

/* ---- answers ---- */

static int answered(int kind)
{
    return kind == OP_DUR_NEW || kind == OP_DUR_LIVE || kind == OP_DUR_GET ||
           kind == OP_DUR_LOAD;
}

static int64_t col64(const store *s, const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8)
        return -1;
    return (int64_t)pg__get64(PQgetvalue(r, row, col));
}

static int64_t col32(const store *s, const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 4)
        return -1;
    const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
    return (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}

void pg__dur_answer(store *s, PGresult *r)
{
    pbatch *b = s->fly;
    while (b && s->dur_next < b->nops && !answered(b->ops[s->dur_next].kind))
        s->dur_next++;
    if (!b || s->dur_next >= b->nops) {
        PQclear(r);
        return;
    }
    pop *o = &b->ops[s->dur_next++];
    if (o->kind == OP_DUR_GET || o->kind == OP_DUR_LOAD) {
        o->ptr = r;
        return;
    }
    if (PQntuples(r) == 1) {
        o->redeliveries = 1;
        o->not_before = col64(s, r, 0, D_FLAG) > 0;
        o->ord = col32(s, r, 0, D_LIVE); /* LIVE: the live node before it; -1: no row */
    }
    PQclear(r);
}

void pg__dur_lost(store *s)
{
    pbatch *b = s->fly;
    for (size_t i = 0; b && i < b->nops; i++) {
        pop *o = &b->ops[i];
        if (o->kind == OP_DUR_NEW || o->kind == OP_DUR_LIVE) {
            o->redeliveries = 0;
        } else if (o->kind == OP_DUR_GET || o->kind == OP_DUR_LOAD) {
            PQclear(o->ptr);
            o->ptr = NULL;
        }
    }
    s->dur_next = 0;
}

/* A row of the registry (columns D_*, its id in D_ID) as this node now knows it. */
static void put_row(store *s, const PGresult *r, int row)
{
    uint64_t id = (uint64_t)col64(s, r, row, D_ID);
    int64_t live = col32(s, r, row, D_LIVE);
    pdur *d = find(s, id);
    if (!d) {
        int has_sel = !PQgetisnull(r, row, D_SEL);
        int nl = PQgetlength(r, row, D_NOLOCAL) == 1 && PQgetvalue(r, row, D_NOLOCAL)[0];
        d = dur_make(id, PQgetvalue(r, row, D_CID), (size_t)PQgetlength(r, row, D_CID),
                     PQgetvalue(r, row, D_NAME), (size_t)PQgetlength(r, row, D_NAME),
                     PQgetvalue(r, row, D_TOPIC), (size_t)PQgetlength(r, row, D_TOPIC),
                     has_sel ? PQgetvalue(r, row, D_SEL) : NULL,
                     has_sel ? (size_t)PQgetlength(r, row, D_SEL) : 0, nl);
        if (!d || !d->topic_len || insert(s, d) != 0) {
            dur_free(d);
            pg__set_err(s, "out of memory, or a malformed row: durable subscription %llu not "
                           "known here", (unsigned long long)id);
            return;
        }
        d->live_node = live < 0 ? 0 : live;
        d->seen = 1;
        emit(s, STORE_POSTGRES_DURABLE_PUT, d);
        return;
    }
    d->seen = 1;
    int64_t was = d->live_node;
    d->live_node = live < 0 ? 0 : live;
    if (d->held && d->live_node != s->node) {
        /* Taken over: this node's lease ran out (the others took it for dead). */
        unhold(s, id, 0);
        if (d->want) {
            d->want = 0;
            emit_id(s, STORE_POSTGRES_DURABLE_LOST, id);
        }
    }
    if (was != d->live_node)
        emit(s, STORE_POSTGRES_DURABLE_PUT, d);
}

static void settle_new(store *s, pop *o, int ok)
{
    pdur *d = find(s, (uint64_t)o->key);
    free(o->ptr);
    o->ptr = NULL;
    if (!d || !d->creating)
        return; /* removed meanwhile */
    d->creating = 0;
    if (ok && o->redeliveries && o->not_before)
        return; /* in the registry */
    if (ok && !o->redeliveries) {
        reload(s); /* the answer was lost with the connection: the registry tells */
        return;
    }
    /* Not added: another node's subscription has its identity, or the batch failed. */
    gone(s, d, 1);
    if (ok)
        reload(s);
}

static void settle_live(store *s, pop *o, int ok)
{
    pdur *d = find(s, (uint64_t)o->key);
    if (!d)
        return; /* removed meanwhile */
    if (d->asking)
        d->asking--;
    if (!ok || !o->redeliveries) {
        /* Failed, or its answer lost: ask again while it is still wanted. */
        if ((d->want || d->held) && ask_live(s, d) != 0)
            pg__set_err(s, "out of memory: durable subscription %llu not asked for",
                        (unsigned long long)d->id);
        return;
    }
    if (o->not_before) { /* granted */
        d->live_node = s->node;
        if (d->want && !d->held)
            hold(s, d);
        else if (!d->want && !d->held && !d->asking && !push(s, OP_DUR_UNLIVE, d->id, NULL))
            pg__set_err(s, "out of memory: durable subscription %llu stays live here",
                        (unsigned long long)d->id);
        return;
    }
    if (o->ord < 0) { /* no such row: removed */
        gone(s, d, 1);
        return;
    }
    d->live_node = o->ord;
    if (d->held)
        unhold(s, d->id, 0);
    if (d->want && !d->asking) {
        d->want = 0;
        emit_id(s, STORE_POSTGRES_DURABLE_LOST, d->id);
    }
}

static void settle_get(store *s, pop *o, int ok)
{
    PGresult *r = o->ptr;
    o->ptr = NULL;
    if (!ok || !r || PQntuples(r) != 1) {
        PQclear(r);
        reload(s);
        return;
    }
    if (col64(s, r, 0, D_FLAG) > 0) {
        put_row(s, r, 0);
    } else {
        pdur *d = find(s, (uint64_t)o->key);
        if (d && !d->creating)
            gone(s, d, 1);
    }
    PQclear(r);
}

static void settle_load(store *s, pop *o, int ok)
{
    PGresult *r = o->ptr;
    o->ptr = NULL;
    if (!ok || !r) {
        PQclear(r);
        reload(s);
        return;
    }
    for (size_t i = 0; i < s->ndur; i++)
        s->durs[i]->seen = 0;
    for (int row = 0; row < PQntuples(r); row++)
        put_row(s, r, row);
    PQclear(r);
    for (size_t i = 0; i < s->ndur;) {
        pdur *d = s->durs[i];
        if (!d->seen && !d->creating)
            gone(s, d, 1); /* moves the later ones down */
        else
            i++;
    }
}

void pg__dur_settle(store *s, pbatch *b, int ok)
{
    for (size_t i = 0; i < b->nops; i++) {
        pop *o = &b->ops[i];
        switch (o->kind) {
        case OP_DUR_NEW:
            settle_new(s, o, ok);
            break;
        case OP_DUR_LIVE:
            settle_live(s, o, ok);
            break;
        case OP_DUR_GET:
            settle_get(s, o, ok);
            break;
        case OP_DUR_LOAD:
            settle_load(s, o, ok);
            break;
        case OP_DUR_UNLIVE: {
            /* Failed: the registry still names this node; tell it again. */
            const pdur *d = find(s, (uint64_t)o->key);
            if (!ok && d && !d->held && !d->asking && !push(s, OP_DUR_UNLIVE, d->id, NULL))
                pg__set_err(s, "out of memory: durable subscription %llu stays live here",
                            (unsigned long long)d->id);
            break;
        }
        case OP_DUR_DROP:
            if (!ok && o->prio)
                reload(s); /* a removal that failed: the subscription is still there */
            break;
        default:
            continue;
        }
        o->kind = OP_ACK; /* done with */
        o->key = 0;
    }
}

/* ---- notifications, reconnection ---- */

void pg__dur_notified(store *s, const char *payload)
{
    char *end;
    unsigned long long node = strtoull(payload, &end, 10);
    if (end == payload || *end != ':' || (int64_t)node == s->node)
        return;
    const char *p = end + 1;
    unsigned long long id = strtoull(p, &end, 10);
    if (end == p || *end || !id || s->dur_loading)
        return;
    const pbatch *b = s->open;
    for (size_t i = 0; i < b->nops; i++)
        if (b->ops[i].kind == OP_DUR_GET && b->ops[i].key == (int64_t)id)
            return; /* asked already */
    if (!push(s, OP_DUR_GET, id, NULL)) {
        reload(s);
        return;
    }
    if (s->wake)
        s->wake(s->wake_arg, NULL, 0, 0);
}

void pg__dur_reconnected(store *s)
{
    /* Notifications may have been missed; this node's lease may have run out meanwhile. */
    reload(s);
    for (size_t i = 0; i < s->ndur; i++) {
        pdur *d = s->durs[i];
        if (d->held && !d->asking && ask_live(s, d) != 0)
            pg__set_err(s, "out of memory: durable subscription %llu not asked for",
                        (unsigned long long)d->id);
    }
    if (s->wake)
        s->wake(s->wake_arg, NULL, 0, 0);
}

/* ---- open, close ---- */

store_err pg__dur_open(store *s)
{
    if (!PQsendQueryParams(s->conn,
                           "SELECT id, 1::bigint, client_id, name, topic, selector, no_local,"
                           " live_node FROM stompd_durable",
                           0, NULL, NULL, NULL, NULL, 1)) {
        pg__set_err(s, "durable subscriptions: %s", PQerrorMessage(s->conn));
        return STORE_E_IO;
    }
    store_err err = STORE_OK;
    PGresult *r;
    while ((r = PQgetResult(s->conn)) != NULL) {
        if (err == STORE_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
            pg__set_err(s, "durable subscriptions: %s", PQresultErrorMessage(r));
            err = STORE_E_IO;
        } else if (err == STORE_OK && PQnfields(r) == D__COLS) {
            for (int row = 0; row < PQntuples(r); row++)
                put_row(s, r, row);
            if (s->ndur < (size_t)PQntuples(r)) {
                pg__set_err(s, "durable subscriptions: out of memory");
                err = STORE_E_NOMEM;
            }
        }
        PQclear(r);
    }
    return err;
}

void pg__dur_free(store *s)
{
    for (int k = 0; k < 2; k++) {
        pbatch *b = &s->bat[k];
        for (size_t i = 0; i < b->nops; i++) {
            pop *o = &b->ops[i];
            if (o->kind == OP_DUR_NEW)
                free(o->ptr);
            else if (o->kind == OP_DUR_GET || o->kind == OP_DUR_LOAD)
                PQclear(o->ptr);
            else
                continue;
            o->ptr = NULL;
            o->kind = OP_ACK;
            o->key = 0;
        }
    }
    for (size_t i = 0; i < s->ndur; i++)
        dur_free(s->durs[i]);
    free(s->durs);
    s->durs = NULL;
    s->ndur = s->dur_cap = 0;
}
