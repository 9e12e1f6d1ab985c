/* store_postgres.c: the PostgreSQL backend of store.h: its ops table, and the messages in
 * memory (pg_int.h says how memory and the database relate; pg_conn.c is the connection on
 * the loop, pg_schema.c open, schema and close).
 *
 * A queue's order is that of order.h: by priority band, then (ord, id): a fresh message gets
 * ord = id; a requeued one keeps its ord if that is already below its band's first, else
 * takes one below. Rows carry (prio, ord), so open reads the same order back.
 * Redelivery after a crash: each band of each queue has a delivery bound in stompd_front,
 * LOOKAHEAD ords ahead of its takes; a take beyond the committed bound answers STORE_E_AGAIN
 * with the raised bound in the open batch. Open after a crash counts every message at or
 * below its band's bound as delivered once more, then the bounds start afresh.
 */
#include "pg_int.h"
#include "scan.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void pg__set_err(store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    /* libpq's messages end in a newline and may hold more: one line. */
    size_t n = 0;
    for (char *p = s->err; *p; p++)
        if (*p == '\n' || *p == '\t' || *p == '\r')
            *p = ' ';
    n = strlen(s->err);
    while (n && s->err[n - 1] == ' ')
        s->err[--n] = '\0';
}

static void fill(store_msg *out, const store__rec *r)
{
    const pqueue *q = r->q;
    store__rec_fill(out, r, q->name, q->link.len);
}

void pg__queue_drop_unused(store *s, pqueue *q)
{
    if (q->nrecs || q->pins)
        return;
    store__order_free(&q->o, &s->bytes);
    store__queues_remove(&s->queues, &q->link);
    s->bytes -= sizeof *q + q->link.len + 1;
    free(q);
}

pqueue *pg__get_queue(store *s, const char *name, size_t len, uint64_t h)
{
    pqueue *q = find_queue(s, name, len, h);
    if (q)
        return q;
    if (store__queues_reserve(&s->queues, 1) != STORE_OK)
        return NULL;
    q = calloc(1, sizeof *q + len + 1);
    if (!q)
        return NULL;
    memcpy(q->name, name, len);
    store__order_init(&q->o);
    q->dry = s->alone && !s->maybe_free; /* nothing to claim: no node frees rows */
    q->backlog = (uint8_t)pg_is_backlog(name, len);
    for (int p = 0; p < STORE__PRIORITIES; p++)
        q->front_durable[p] = q->front_sent[p] = q->tmax[p] = INT64_MIN;
    store__queues_insert(&s->queues, &q->link, q->name, len, h);
    s->bytes += sizeof *q + len + 1;
    return q;
}

void pg__forget(store *s, store__rec *r)
{
    pqueue *q = r->q;
    store__ids_remove(&s->ids, &r->link);
    q->nrecs--;
    q->bytes -= r->hlen + r->blen;
    if (r->expires)
        s->nexpiring--;
    s->bytes -= STORE__REC_SIZE(r);
    store__rec_free(&s->pool, r);
    pg__queue_drop_unused(s, q);
}

/* The committed record r joins its queue's order (room reserved in the heaps). */
static void make_ready(store *s, store__rec *r)
{
    pqueue *q = r->q;
    if (r->not_before) {
        q->waits++;
        store__order_wait(&q->o, r);
    } else
        store__order_append(&q->o, r);
    store__expiry_add(&s->expiry, r);
}

store_err pg__add_loaded(store *s, store__rec *r)
{
    pqueue *q = r->q;
    if (store__ids_reserve(&s->ids, 1) != STORE_OK ||
        (r->not_before &&
         store__heap_reserve(&q->o.waiting, q->o.waiting.n + 1, &s->bytes) != STORE_OK) ||
        (r->expires && store__heap_reserve(&s->expiry, s->nexpiring + 1, &s->bytes) != STORE_OK))
        return STORE_E_NOMEM;
    store__ids_insert(&s->ids, &r->link);
    s->bytes += STORE__REC_SIZE(r);
    q->nrecs++;
    q->bytes += r->hlen + r->blen;
    if (r->expires)
        s->nexpiring++;
    make_ready(s, r);
    return STORE_OK;
}

/* Band p of q may be handed out up to front once this batch commits. -1: no memory. */
static int front_push(store *s, pqueue *q, int p, int64_t front)
{
    if (front <= q->front_sent[p])
        return 0;
    if (pg_reserve_ops(s->open, 1) != 0)
        return -1;
    pop *o = pg_push_op(s->open, OP_FRONT, 0, q);
    o->prio = (uint8_t)p;
    o->ord = front;
    q->front_sent[p] = front;
    q->pins++;
    return 0;
}

/* ---- store_ops ---- */

static void pg_close(store *s)
{
    if (!s)
        return;
    assert(!s->fly);
    s->closing = 1;
    if (s->gone)
        *s->gone = 1;
    pg__share_stop(s);
    pg__close_db(s);
    for (size_t i = 0; i < s->nclaimed; i++)
        PQclear(s->claimed[i]);
    free(s->claimed);
    pg__topic_free(s);
    pg__dur_free(s);
    for (store__qlink *l = store__queues_first(&s->queues); l;
         l = store__queues_next(&s->queues, l))
        store__order_free(&store__container_of(l, pqueue, link)->o, NULL);
    store__ids_destroy(&s->ids, offsetof(store__rec, link));
    store__queues_destroy(&s->queues, offsetof(pqueue, link));
    store__heap_free(&s->expiry, NULL);
    free(s->bat[0].ops);
    free(s->bat[1].ops);
    free(s->conninfo);
    store__pool_drain(&s->pool);
    pg__lib_close(&s->lib);
    free(s);
}

/* Room for one more record of q with attributes a (heaps it joins at commit, operations). */
static store_err enqueue_room(store *s, pqueue *q, const store_attrs *a)
{
    if (pg_reserve_ops(s->open, 2) != 0 || store__ids_reserve(&s->ids, 1) != STORE_OK)
        return STORE_E_NOMEM;
    if (a->not_before &&
        store__heap_reserve(&q->o.waiting, q->o.waiting.n + q->nlate + 1, &s->bytes) != STORE_OK)
        return STORE_E_NOMEM;
    if (a->expires && store__heap_reserve(&s->expiry, s->nexpiring + 1, &s->bytes) != STORE_OK)
        return STORE_E_NOMEM;
    return STORE_OK;
}

/* r (new, of q) is pending in the open batch; with nothing of its band ahead of it, the
 * band's bound goes LOOKAHEAD past it in the same batch, so it can be taken at once. A
 * message to a backlog this node is not the live node of goes in free (pg_durable.c). */
static void enqueue_rec(store *s, pqueue *q, store__rec *r)
{
    pbatch *b = s->open;
    int p = r->prio;
    if (q->backlog && !q->held)
        r->flags |= PG_REC_FREE;
    else if (!q->o.band[p].n && !q->npending[p] && q->front_sent[p] < r->ord)
        (void)front_push(s, q, p, pg_add_sat(r->ord, LOOKAHEAD)); /* room reserved */
    store__ids_insert(&s->ids, &r->link);
    s->bytes += STORE__REC_SIZE(r);
    q->nrecs++;
    q->bytes += r->hlen + r->blen;
    if (r->not_before)
        q->nlate++;
    if (r->expires)
        s->nexpiring++;
    q->npending[p]++;
    store__list_append(&b->recs, &r->on);
    pg_push_op(b, r->flags & PG_REC_FREE ? OP_ENQ_FREE : OP_ENQ, (int64_t)r->link.id, r);
}

static store_err pg_enqueue_attrs(store *s, const char *queue, size_t queue_len, uint64_t h,
                                  const char *headers, size_t headers_len, const char *body,
                                  size_t body_len, const store_attrs *a, uint64_t *id)
{
    static const store_attrs plain = { STORE_PRIORITY_DEFAULT, 0, 0 };
    if (!a)
        a = &plain;
    if (!queue_len || a->priority > STORE_PRIORITY_MAX)
        return STORE_E_INVALID;
    /* A bytea value holds at most 1 GiB; times and ids are signed 64-bit columns. */
    if (headers_len >= (1u << 30) || body_len >= (1u << 30) || queue_len >= (1u << 30) ||
        a->not_before > (uint64_t)INT64_MAX || a->expires > (uint64_t)INT64_MAX ||
        s->next_id >= (uint64_t)INT64_MAX / 2)
        return STORE_E_INVALID;
    pqueue *q = pg__get_queue(s, queue, queue_len, h);
    if (!q)
        return STORE_E_NOMEM;
    store__rec *r = NULL;
    if (enqueue_room(s, q, a) == STORE_OK)
        r = store__rec_new(&s->pool, q, headers, headers_len, body, body_len);
    if (!r) {
        pg__queue_drop_unused(s, q);
        return STORE_E_NOMEM;
    }
    r->link.id = s->next_id;
    s->next_id += 1u << PG_NODE_BITS; /* the low bits are the node's number */
    r->ord = (int64_t)r->link.id;
    r->prio = a->priority;
    r->not_before = a->not_before;
    r->expires = a->expires;
    enqueue_rec(s, q, r);
    *id = r->link.id;
    return STORE_OK;
}

static store_err pg_enqueue_hashed(store *s, const char *queue, size_t queue_len, uint64_t h,
                                   const char *headers, size_t headers_len, const char *body,
                                   size_t body_len, uint64_t *id)
{
    return pg_enqueue_attrs(s, queue, queue_len, h, headers, headers_len, body, body_len, NULL,
                            id);
}

static store_err pg_enqueue(store *s, const char *queue, size_t queue_len, const char *headers,
                            size_t headers_len, const char *body, size_t body_len, uint64_t *id)
{
    return pg_enqueue_hashed(s, queue, queue_len, store_hash_name(queue, queue_len), headers,
                             headers_len, body, body_len, id);
}

void pg__ghost(store *s, store__rec *r)
{
    store__order_remove(&((pqueue *)r->q)->o, r);
    store__expiry_drop(&s->expiry, r);
    r->state = STORE__GHOST;
}

/* r (ready or waiting) is handed out. */
static void take_out(store *s, store__rec *r, store_msg *out)
{
    store__order_remove(&((pqueue *)r->q)->o, r);
    store__expiry_drop(&s->expiry, r);
    r->state = STORE__TAKEN;
    fill(out, r);
}

static store_err hand_out(store *s, pqueue *q, store__rec *r, store_scan *scan,
                          store_msg *out);

/* take_at's work; expiry: refuse a first message expired at now. */
static store_err take(store *s, const char *queue, size_t queue_len, uint64_t h, uint64_t now,
                      int expiry, store_msg *out)
{
    pqueue *q = find_queue(s, queue, queue_len, h);
    if (!q)
        return pg__claim(s, queue, queue_len, h, now);
    store_err err = q->o.waiting.n ? store__order_promote(&q->o, now, store__no_limit, &s->bytes)
                                   : STORE_OK;
    store__rec *r = store__order_first(&q->o);
    if (!r && err == STORE_OK && !q->o.waiting.n)
        return pg__claim(s, queue, queue_len, h, now); /* nothing here: another node's? */
    if (!r)
        return err != STORE_OK ? err : STORE_E_EMPTY;
    if (expiry && r->expires && r->expires <= now)
        return STORE_E_EXPIRED;
    return hand_out(s, q, r, NULL, out);
}

/* r (ready, of q) is handed out within its band's recorded bound; a bound beyond it is put
 * in the open batch first (STORE_E_AGAIN). scan: take_match's, moved past r. */
static store_err hand_out(store *s, pqueue *q, store__rec *r, store_scan *scan,
                          store_msg *out)
{
    int p = r->prio;
    if (r->ord > q->front_durable[p]) {
        /* Not yet recorded as deliverable: record it, hand it out after that commit. */
        if (front_push(s, q, p, pg_add_sat(r->ord, LOOKAHEAD)) != 0)
            return STORE_E_NOMEM;
        return STORE_E_AGAIN;
    }
    if (scan)
        store__scan_took(scan, r);
    take_out(s, r, out);
    if (r->ord > q->tmax[p])
        q->tmax[p] = r->ord;
    /* Raise the bound before takes reach it; without memory for that, a later take waits. */
    if (pg_add_sat(q->tmax[p], LOOKAHEAD / 2) > q->front_sent[p])
        (void)front_push(s, q, p, pg_add_sat(q->tmax[p], LOOKAHEAD));
    return STORE_OK;
}

static store_err pg_take_at(store *s, const char *queue, size_t queue_len, uint64_t h,
                            uint64_t now, store_msg *out)
{
    return take(s, queue, queue_len, h, now, 1, out);
}

static store_err pg_take_hashed(store *s, const char *queue, size_t queue_len, uint64_t h,
                                store_msg *out)
{
    return take(s, queue, queue_len, h, UINT64_MAX, 0, out);
}

static store_err pg_take(store *s, const char *queue, size_t queue_len, store_msg *out)
{
    return pg_take_hashed(s, queue, queue_len, store_hash_name(queue, queue_len), out);
}

/* Not a delivery: no bound is needed (see store.h, "Redelivery"). */
static store_err pg_take_expired(store *s, uint64_t now, store_msg *out)
{
    const store__heapent *t = store__heap_top(&s->expiry);
    if (!t || t->key > now)
        return STORE_E_EMPTY;
    take_out(s, t->p, out);
    return STORE_OK;
}

static uint64_t pg_next_expiry(store *s)
{
    const store__heapent *t = store__heap_top(&s->expiry);
    return t ? t->key : 0;
}

static uint64_t pg_next_due(store *s, const char *queue, size_t queue_len, uint64_t h,
                            uint64_t now)
{
    pqueue *q = find_queue(s, queue, queue_len, h);
    return q ? store__order_next_due(&q->o, now) : 0;
}

static store_err pg_ack(store *s, uint64_t id)
{
    store__rec *r = find_rec(s, id);
    if (!r || r->state != STORE__TAKEN)
        return STORE_E_NOTFOUND;
    if (pg_reserve_ops(s->open, 1) != 0)
        return STORE_E_NOMEM;
    pg_push_op(s->open, OP_ACK, (int64_t)id, NULL);
    pg__forget(s, r);
    return STORE_OK;
}

static store_err pg_get(store *s, uint64_t id, store_msg *out)
{
    const store__rec *r = find_rec(s, id);
    if (!r || r->state != STORE__TAKEN)
        return STORE_E_NOTFOUND;
    fill(out, r);
    return STORE_OK;
}

static store_err pg_requeue_at(store *s, uint64_t id, uint64_t not_before)
{
    store__rec *r = find_rec(s, id);
    if (!r || r->state != STORE__TAKEN)
        return STORE_E_NOTFOUND;
    if (not_before > (uint64_t)INT64_MAX)
        return STORE_E_INVALID;
    pqueue *q = r->q;
    if (pg_reserve_ops(s->open, 1) != 0)
        return STORE_E_NOMEM;
    if (not_before &&
        store__heap_reserve(&q->o.waiting, q->o.waiting.n + q->nlate + 1, &s->bytes) != STORE_OK)
        return STORE_E_NOMEM;
    if (store__order_place(&q->o, r, INT64_MAX) != STORE_OK)
        return STORE_E_INVALID;
    if (r->redeliveries < UINT32_MAX)
        r->redeliveries++;
    r->not_before = not_before;
    q->requeues++;
    q->waits += not_before != 0;
    pop *o = pg_push_op(s->open, OP_REQUEUE, (int64_t)id, NULL);
    o->ord = r->ord;
    o->redeliveries = r->redeliveries;
    o->not_before = not_before;
    if (not_before)
        store__order_wait(&q->o, r);
    else
        store__order_prepend(&q->o, r);
    store__expiry_add(&s->expiry, r);
    /* A backlog this node is no longer the live node of: back for the live node, first in
     * its order (without memory it stays here until a wish for it). */
    if (q->backlog && !q->held)
        (void)pg__give_back(s, r);
    return STORE_OK;
}

static store_err pg_requeue(store *s, uint64_t id)
{
    return pg_requeue_at(s, id, 0);
}

/* A pending record of the open batch leaves it with its ENQ operation. */
static store_err pg_cancel(store *s, uint64_t id)
{
    store__rec *r = find_rec(s, id);
    pbatch *b = s->open;
    if (!r || r->state != STORE__PENDING)
        return STORE_E_NOTFOUND;
    size_t i = b->nops;
    while (i > 0 && !((b->ops[i - 1].kind == OP_ENQ || b->ops[i - 1].kind == OP_ENQ_FREE) &&
                      b->ops[i - 1].ptr == r))
        i--;
    if (i == 0)
        return STORE_E_NOTFOUND; /* pending, but in the batch being committed */
    memmove(&b->ops[i - 1], &b->ops[i], (b->nops - i) * sizeof *b->ops);
    b->nops--;
    store__list_unlink(&b->recs, &r->on);
    pqueue *q = r->q;
    q->npending[r->prio]--;
    if (r->not_before)
        q->nlate--;
    pg__forget(s, r);
    return STORE_OK;
}

static store_err pg_commit(store *s, store_commit_cb cb, void *arg)
{
    /* Even with nothing new, an earlier batch is not durable until its commit completes. */
    if (s->fly)
        return STORE_E_BUSY;
    pbatch *b = s->open;
    if (!b->nops)
        return STORE_DONE;
    b->cb = cb;
    b->arg = arg;
    b->seq = ++s->batch_seq;
    b->next_id = s->next_id;
    s->fly = b;
    s->open = b == &s->bat[0] ? &s->bat[1] : &s->bat[0];
    s->dur_loading = 0; /* a registry read is in the batch cut, not in the open one */
    pg__send_fly(s);
    return STORE_OK;
}

/* The batch's operations are done with: its queues are unpinned, its bounds are durable
 * (ok) or as if never sent. */
static void settle_ops(store *s, pbatch *b, int ok)
{
    for (size_t i = 0; i < b->nops; i++) {
        pop *o = &b->ops[i];
        if (o->kind != OP_FRONT)
            continue;
        pqueue *q = o->ptr;
        if (ok && o->ord > q->front_durable[o->prio])
            q->front_durable[o->prio] = o->ord;
        if (!ok)
            q->front_sent[o->prio] = q->front_durable[o->prio];
        q->pins--;
        pg__queue_drop_unused(s, q);
    }
    b->nops = 0;
}

void pg__fly_done(store *s, int ok)
{
    pbatch *b = s->fly;
    if (!ok)
        pg__set_err(s, "commit failed: %s", s->fail[0] ? s->fail : "the database refused it");
    /* Failed: its messages are dropped; its acks and requeues stay done in memory (the
     * database still has them as they were, so a restart redelivers: at-least-once). */
    while (b->recs.head) {
        store__rec *r = store__container_of(b->recs.head, store__rec, on);
        pqueue *q = r->q;
        store__list_unlink(&b->recs, &r->on);
        q->npending[r->prio]--;
        if (r->not_before)
            q->nlate--;
        if (!ok || (r->flags & PG_REC_FREE)) {
            pg__forget(s, r); /* failed; or free, for the live node of its backlog */
            continue;
        }
        make_ready(s, r);
        /* A backlog this node stopped being the live node of meanwhile: back. */
        if (q->backlog && !q->held)
            (void)pg__give_back(s, r);
    }
    pg__share_settle(s, b, ok);
    pg__topic_settle(s, b, ok);
    pg__dur_settle(s, b, ok);
    settle_ops(s, b, ok);
    /* What settling put in the open batch (releases, the registry's reads) goes with a
     * commit. */
    if (s->open->nops && s->wake)
        s->wake(s->wake_arg, NULL, 0, 0);
    store_commit_cb cb = b->cb;
    void *arg = b->arg;
    b->cb = NULL;
    b->arg = NULL;
    s->fly = NULL;
    s->fail[0] = '\0';
    /* Last: the callback may commit again or close the store. */
    if (cb)
        cb(arg, ok ? STORE_OK : STORE_E_IO);
}

static size_t pg_depth(store *s, const char *queue, size_t queue_len)
{
    pqueue *q = find_queue(s, queue, queue_len, store_hash_name(queue, queue_len));
    return q ? store__order_count(&q->o) : 0;
}

static void pg_queue_size(store *s, const char *queue, size_t queue_len, uint64_t h,
                          uint64_t *count, uint64_t *bytes)
{
    const pqueue *q = find_queue(s, queue, queue_len, h);
    *count = q ? q->nrecs : 0;
    *bytes = q ? q->bytes : 0;
}

static store__rec *scan_find(void *arg, uint64_t id);

static store_err pg_browse(store *s, const char *queue, size_t queue_len, uint64_t h,
                           store_cursor *cur, uint64_t now, store_msg *out)
{
    pqueue *q = find_queue(s, queue, queue_len, h);
    const store__rec *r = q ? store__order_browse(&q->o, q, cur, now, &s->bytes, scan_find, s)
                            : NULL;
    if (!r)
        return STORE_E_EMPTY;
    fill(out, r);
    return STORE_OK;
}

static size_t pg_resident(store *s)
{
    return sizeof *s - sizeof s->pool /* order.h */ + s->bytes + (s->ids.cap + s->queues.cap) * sizeof(void *) +
           (s->bat[0].cap + s->bat[1].cap) * sizeof(pop);
}

static const char *pg_last_error(store *s)
{
    return s->err;
}

static store_err pg_open(const store_options *opts, store **out)
{
    char *reason = opts ? opts->reason : NULL;
    size_t rsize = reason ? opts->reason_size : 0;
    if (rsize)
        reason[0] = '\0';
    if (!opts || !opts->loop || !opts->path || !out) {
        if (rsize)
            snprintf(reason, rsize, "a loop and a connection string are needed");
        return STORE_E_INVALID;
    }
    store *s = calloc(1, sizeof *s);
    if (!s || !(s->conninfo = strdup(opts->path))) {
        free(s);
        if (rsize)
            snprintf(reason, rsize, "out of memory");
        return STORE_E_NOMEM;
    }
    s->loop = opts->loop;
    s->sync_full = opts->sync_full;
    s->lease_ms = opts->lease_ms ? opts->lease_ms : STORE_POSTGRES_LEASE_MS;
    s->wake = opts->wake;
    s->wake_arg = opts->wake_arg;
    s->open = &s->bat[0];
    s->next_id = 1;
    store__expiry_init(&s->expiry);
    store_err err = pg__lib_open(&s->lib, s->err, sizeof s->err) == 0 ? pg__open_db(s)
                                                                      : STORE_E_IO;
    if (err == STORE_OK)
        err = pg__attach(s);
    if (err == STORE_OK && (err = pg__share_start(s)) != STORE_OK)
        pg__set_err(s, "out of memory");
    if (err != STORE_OK) {
        if (rsize)
            snprintf(reason, rsize, "%s", s->err[0] ? s->err : store_strerror(err));
        pg_close(s);
        return err;
    }
    s->err[0] = '\0';
    *out = s;
    return STORE_OK;
}

/* ---- version 8: take_match, queues ---- */

/* Changes whenever a record may have joined q's order before a scan's place: a requeue
 * (to the head of its band, or to wait), or a waiting record leaving the heap. */
static uint64_t scan_gen(const pqueue *q)
{
    return q->requeues + q->waits - q->o.waiting.n;
}

static store__rec *scan_find(void *arg, uint64_t id)
{
    return find_rec(arg, id);
}

static store_err pg_take_match(store *s, const char *queue, size_t queue_len, uint64_t h,
                               uint64_t now, store_scan *scan, store_match_fn match,
                               void *arg, store_msg *out)
{
    pqueue *q = find_queue(s, queue, queue_len, h);
    if (!q)
        return pg__claim(s, queue, queue_len, h, now); /* another node's, maybe */
    store_err perr = q->o.waiting.n ? store__order_promote(&q->o, now, store__no_limit, &s->bytes)
                                    : STORE_OK;
    store__scan_env env = { &q->o, q, q->o.mask, scan_gen(q), scan_find, NULL, fill, s };
    store__rec *r;
    store_err err = store__scan(&env, scan, match, arg, &r);
    if (err != STORE_OK)
        return err;
    if (!r && perr == STORE_OK && !q->o.waiting.n)
        return pg__claim(s, queue, queue_len, h, now); /* none here matches: claim more */
    if (!r)
        return perr != STORE_OK ? perr : STORE_E_EMPTY;
    if (r->expires && r->expires <= now)
        return STORE_E_EXPIRED;
    return hand_out(s, q, r, scan, out);
}

static void pg_queues(store *s, void (*fn)(void *arg, const char *name, size_t len,
                                           uint64_t hash),
                      void *arg)
{
    for (store__qlink *l = store__queues_first(&s->queues); l;
         l = store__queues_next(&s->queues, l))
        fn(arg, l->name, l->len, l->hash);
}

static const store_ops postgres_ops = {
    .version = STORE_OPS_VERSION,
    .name = "postgres",
    .open = pg_open,
    .close = pg_close,
    .enqueue = pg_enqueue,
    .take = pg_take,
    .ack = pg_ack,
    .requeue = pg_requeue,
    .commit = pg_commit,
    .depth = pg_depth,
    .resident = pg_resident,
    .last_error = pg_last_error,
    .enqueue_hashed = pg_enqueue_hashed,
    .take_hashed = pg_take_hashed,
    .cancel = pg_cancel,
    .requeue_at = pg_requeue_at,
    .take_at = pg_take_at,
    .next_due = pg_next_due,
    .get = pg_get,
    .enqueue_attrs = pg_enqueue_attrs,
    .take_expired = pg_take_expired,
    .next_expiry = pg_next_expiry,
    .queue_size = pg_queue_size,
    .browse = pg_browse,
    .take_match = pg_take_match,
    .queues = pg_queues,
    .quiesce = pg__quiesce,
};

const store_ops *store_postgres_backend(void)
{
    return &postgres_ops;
}
