/* store_memory.c: the memory backend of store.h.
 *
 * One record per message (a store__rec of order.h: record header, header block and body
 * inline), carved from the slabs of slab.h. Records are found by id, queues by name, through the indexes of index.h; each
 * queue orders its records with order.h (priority bands, the heap of waiting records). A
 * record is in exactly one place: the store's pending list (enqueued, not committed), its
 * queue's order (ready or waiting), or none (taken); a committed record with an expiry that
 * is not taken is also in the store's expiry heap. A queue is freed once it has no record at
 * all. Commit completes synchronously (STORE_DONE): nothing here is durable, so a batch is
 * done when it is made. Nothing is in a file either, so every band's limit (order.h) is
 * INT64_MAX. `bytes` is the sum of the allocations it holds (records, queues, heaps, shared
 * bodies), for resident().
 * A message of enqueue_shared keeps its body in a shared, counted allocation (mbody) that
 * every one of its records names (MEM_SHARED: the record's body bytes are the pointer); the
 * last record to go frees it. resident counts that body once; each queue's bytes
 * (queue_size) count it in full, as that queue's.
 */
#include "order.h"
#include "scan.h"
#include "slab.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

typedef struct mqueue {
    store__qlink link; /* in the name index; names name[] */
    store__order o;    /* its ready and waiting records */
    size_t nrecs;      /* records of any state in this queue */
    size_t nlate;      /* pending records that will wait at commit: room kept in o.waiting */
    uint64_t requeues; /* records ever requeued, and ever put to wait: with o.waiting.n, */
    uint64_t waits;    /* the generation take_match's scans follow (scan_gen) */
    uint64_t bytes;    /* header block and body bytes of its records */
    char name[];       /* NUL-terminated, link.len bytes before the NUL */
} mqueue;

/* A body held once for the records of one enqueue_shared. */
typedef struct mbody {
    size_t refs; /* records naming it, and one while enqueue_shared runs */
    size_t len;
    char data[];
} mbody;

enum { MEM_SHARED = 1 }; /* store__rec.flags: the record's body is a pointer to an mbody */

struct store {
    store__idhash ids;
    store__qhash queues;
    store__dlist pending; /* enqueued, not committed, in id order */
    store__heap expiry;   /* committed records with an expiry, not taken */
    size_t nexpiring;     /* records with an expiry, any state: room kept in expiry */
    uint64_t next_id;
    size_t bytes; /* records, queues and heaps allocated */
    size_t peak;  /* the most `bytes` since memory was last given back (give_back) */
    size_t episode; /* the most `bytes` before the last give_back since the store was empty */
    store__slabs slabs; /* where the records are */
};

/* Memory goes back to the system once the store holds at most an eighth of its peak, and
 * once it holds nothing, if it held at least TRIM_MIN since it was last empty: a drained
 * backlog leaves the broker near its idle size, and a store that keeps emptying with less
 * than that in it never trims (each trim costs about what it returns, in page faults after). */
#define TRIM_MIN ((size_t)8 << 20)

/* Two records a bucket in the id index (store__ids_reserve_at): 4-8 bytes of bucket array per
 * record instead of 8-16, for one more link followed per lookup. */
#define IDS_SHIFT 1

/* No band has ready messages outside memory. */
static mqueue *find_queue(const store *s, const char *name, size_t len, uint64_t h)
{
    return store__entry(store__queues_find(&s->queues, name, len, h), mqueue, link);
}

static store__rec *find_rec(const store *s, uint64_t id)
{
    return store__entry(store__ids_find(&s->ids, id), store__rec, link);
}

static mbody *shared_body(const store__rec *r)
{
    mbody *b;
    memcpy(&b, r->data + r->hlen, sizeof b);
    return b;
}

static void fill(store_msg *out, const store__rec *r)
{
    const mqueue *q = r->q;
    store__rec_fill(out, r, q->name, q->link.len);
    if (r->flags & MEM_SHARED) {
        const mbody *b = shared_body(r);
        out->body = b->data;
        out->body_len = b->len;
    }
}

static void body_release(store *s, mbody *b)
{
    if (--b->refs)
        return;
    s->bytes -= sizeof *b + b->len;
    free(b);
}

static void drop_queue_if_unused(store *s, mqueue *q)
{
    if (q->nrecs)
        return;
    store__order_free(&q->o, &s->bytes);
    store__queues_remove(&s->queues, &q->link);
    s->bytes -= sizeof *q + q->link.len + 1;
    free(q);
}

/* The queue named queue, created (empty) if it does not exist. NULL without memory. */
static mqueue *get_queue(store *s, const char *queue, size_t queue_len, uint64_t h)
{
    mqueue *q = find_queue(s, queue, queue_len, h);
    if (q)
        return q;
    if (store__queues_reserve(&s->queues, 1) != STORE_OK)
        return NULL;
    q = calloc(1, sizeof *q + queue_len + 1);
    if (!q)
        return NULL;
    memcpy(q->name, queue, queue_len);
    store__order_init(&q->o);
    store__queues_insert(&s->queues, &q->link, q->name, queue_len, h);
    s->bytes += sizeof *q + queue_len + 1;
    return q;
}

/* The empty slabs, and the heap's free pages: malloc keeps the memory of freed heaps, large
 * records and shared bodies unless asked to trim. Costs about the size of the heap, paid once
 * per drop to an eighth of a peak, so at most once per 7/8 of a peak freed. Process-wide,
 * like malloc itself: an embedder's free memory is returned too. */
static void give_back(store *s)
{
    store__slab_trim(&s->slabs);
#ifdef __GLIBC__
    (void)malloc_trim(0);
#endif
    if (s->peak > s->episode)
        s->episode = s->peak;
    s->peak = s->bytes;
}

/* Shared record r of q goes: the rest of its body's bytes, and its hold on the body. */
static void shared_gone(store *s, mqueue *q, const store__rec *r)
{
    mbody *b = shared_body(r);
    q->bytes -= b->len - sizeof b;
    body_release(s, b);
}

/* A record leaves the store for good (acked or cancelled). */
static void forget(store *s, store__rec *r)
{
    mqueue *q = r->q;
    store__ids_remove(&s->ids, &r->link);
    q->nrecs--;
    q->bytes -= r->hlen + r->blen;
    if (r->flags & MEM_SHARED)
        shared_gone(s, q, r);
    if (r->expires)
        s->nexpiring--;
    size_t n = store__slab_recsize(r->hlen, r->blen);
    s->bytes -= n;
    store__slab_put(&s->slabs, r, n);
    drop_queue_if_unused(s, q);
    store__ids_shrink_at(&s->ids, IDS_SHIFT);
    if (s->peak >= TRIM_MIN && s->bytes <= s->peak / 8) {
        give_back(s);
    } else if (s->ids.n == 0) {
        if (s->episode >= TRIM_MIN && s->peak > 0)
            give_back(s);
        s->episode = 0;
    }
}

static store_err mem_open(const store_options *opts, store **out)
{
    (void)opts;
    store *s = calloc(1, sizeof *s);
    if (!s)
        return STORE_E_NOMEM;
    s->next_id = 1;
    store__expiry_init(&s->expiry);
    *out = s;
    return STORE_OK;
}

static void mem_close(store *s)
{
    if (!s)
        return;
    for (store__qlink *l = store__queues_first(&s->queues); l;
         l = store__queues_next(&s->queues, l))
        store__order_free(&store__container_of(l, mqueue, link)->o, NULL);
    for (store__idlink *l = store__ids_first(&s->ids), *next; l; l = next) {
        next = store__ids_next(&s->ids, l);
        store__rec *r = store__container_of(l, store__rec, link);
        if (r->flags & MEM_SHARED)
            body_release(s, shared_body(r));
        store__slab_put(&s->slabs, r, store__slab_recsize(r->hlen, r->blen));
    }
    free(s->ids.b);
    store__queues_destroy(&s->queues, offsetof(mqueue, link));
    store__heap_free(&s->expiry, NULL);
    store__slab_trim(&s->slabs);
    free(s);
}

/* Room for one more record of q with attributes a in the heaps it will join at commit. */
static store_err heap_room(store *s, mqueue *q, const store_attrs *a)
{
    if (a->not_before &&
        store__heap_reserve(&q->o.waiting, q->o.waiting.n + q->nlate + 1, &s->bytes) != STORE_OK)
        return STORE_E_NOMEM;
    if (a->expires &&
        store__heap_reserve(&s->expiry, s->nexpiring + 1, &s->bytes) != STORE_OK)
        return STORE_E_NOMEM;
    return STORE_OK;
}

static store_err mem_enqueue_attrs(store *s, const char *queue, size_t queue_len, uint64_t h,
                                   const char *headers, size_t headers_len, const char *body,
                                   size_t body_len, const store_attrs *a, uint64_t *id)
{
    static const store_attrs plain = { STORE_PRIORITY_DEFAULT, 0, 0 };
    if (!a)
        a = &plain;
    if (!queue_len || a->priority > STORE_PRIORITY_MAX)
        return STORE_E_INVALID;
    if (headers_len > STORE__REC_MAXLEN || body_len > STORE__REC_MAXLEN)
        return STORE_E_NOMEM;
    if (store__ids_reserve_at(&s->ids, 1, IDS_SHIFT) != STORE_OK)
        return STORE_E_NOMEM;
    mqueue *q = get_queue(s, queue, queue_len, h);
    if (!q)
        return STORE_E_NOMEM;
    size_t n = store__slab_recsize(headers_len, body_len);
    store__rec *r = NULL;
    if (heap_room(s, q, a) == STORE_OK)
        r = store__slab_get(&s->slabs, n);
    if (!r) {
        drop_queue_if_unused(s, q);
        return STORE_E_NOMEM;
    }
    store__rec_init(r, q, headers, headers_len, body, body_len);
    r->link.id = s->next_id++;
    r->ord = (int64_t)r->link.id;
    r->prio = a->priority;
    r->not_before = a->not_before;
    r->expires = a->expires;
    store__ids_insert(&s->ids, &r->link);
    s->bytes += n;
    if (s->bytes > s->peak)
        s->peak = s->bytes;
    q->nrecs++;
    q->bytes += headers_len + body_len;
    if (r->not_before)
        q->nlate++;
    if (r->expires)
        s->nexpiring++;
    store__list_append(&s->pending, &r->on);
    *id = r->link.id;
    return STORE_OK;
}

static store_err mem_enqueue_hashed(store *s, const char *queue, size_t queue_len, uint64_t h,
                                    const char *headers, size_t headers_len, const char *body,
                                    size_t body_len, uint64_t *id)
{
    return mem_enqueue_attrs(s, queue, queue_len, h, headers, headers_len, body, body_len, NULL,
                             id);
}

static store_err mem_enqueue(store *s, const char *queue, size_t queue_len, const char *headers,
                             size_t headers_len, const char *body, size_t body_len, uint64_t *id)
{
    return mem_enqueue_hashed(s, queue, queue_len, store_hash_name(queue, queue_len), headers,
                              headers_len, body, body_len, id);
}

/* r (ready or waiting) is handed out. */
static void take_out(store *s, store__rec *r, store_msg *out)
{
    store__order_remove(&((mqueue *)r->q)->o, r);
    store__expiry_drop(&s->expiry, r);
    r->state = STORE__TAKEN;
    fill(out, r);
}

/* take_at's work; expiry: refuse a first message expired at now. */
static store_err take(store *s, const char *queue, size_t queue_len, uint64_t h, uint64_t now,
                      int expiry, store_msg *out)
{
    mqueue *q = find_queue(s, queue, queue_len, h);
    if (!q)
        return STORE_E_EMPTY;
    store_err err = q->o.waiting.n ? store__order_promote(&q->o, now, store__no_limit, &s->bytes)
                                   : STORE_OK;
    store__rec *r = store__order_first(&q->o);
    if (!r)
        return err != STORE_OK ? err : STORE_E_EMPTY;
    if (expiry && r->expires && r->expires <= now)
        return STORE_E_EXPIRED;
    take_out(s, r, out);
    return STORE_OK;
}

static store_err mem_take_at(store *s, const char *queue, size_t queue_len, uint64_t h,
                             uint64_t now, store_msg *out)
{
    return take(s, queue, queue_len, h, now, 1, out);
}

static store_err mem_take_hashed(store *s, const char *queue, size_t queue_len, uint64_t h,
                                 store_msg *out)
{
    return take(s, queue, queue_len, h, UINT64_MAX, 0, out);
}

static store_err mem_take_expired(store *s, uint64_t now, store_msg *out)
{
    const store__heapent *t = store__heap_top(&s->expiry);
    if (!t || t->key > now)
        return STORE_E_EMPTY;
    take_out(s, t->p, out);
    return STORE_OK;
}

static uint64_t mem_next_expiry(store *s)
{
    const store__heapent *t = store__heap_top(&s->expiry);
    return t ? t->key : 0;
}

static uint64_t mem_next_due(store *s, const char *queue, size_t queue_len, uint64_t h,
                             uint64_t now)
{
    mqueue *q = find_queue(s, queue, queue_len, h);
    return q ? store__order_next_due(&q->o, now) : 0;
}

static store_err mem_take(store *s, const char *queue, size_t queue_len, store_msg *out)
{
    return mem_take_hashed(s, queue, queue_len, store_hash_name(queue, queue_len), out);
}

static store_err mem_ack(store *s, uint64_t id)
{
    store__rec *r = find_rec(s, id);
    if (!r || r->state != STORE__TAKEN)
        return STORE_E_NOTFOUND;
    forget(s, r);
    return STORE_OK;
}

static store_err mem_get(store *s, uint64_t id, store_msg *out)
{
    const store__rec *r = find_rec(s, id);
    if (!r || r->state != STORE__TAKEN)
        return STORE_E_NOTFOUND;
    fill(out, r);
    return STORE_OK;
}

static store_err mem_requeue_at(store *s, uint64_t id, uint64_t not_before)
{
    store__rec *r = find_rec(s, id);
    if (!r || r->state != STORE__TAKEN)
        return STORE_E_NOTFOUND;
    mqueue *q = r->q;
    if (not_before &&
        store__heap_reserve(&q->o.waiting, q->o.waiting.n + q->nlate + 1, &s->bytes) !=
            STORE_OK)
        return STORE_E_NOMEM;
    if (store__order_place(&q->o, r, INT64_MAX) != STORE_OK)
        return STORE_E_INVALID;
    if (r->redeliveries < UINT32_MAX)
        r->redeliveries++;
    r->not_before = not_before;
    q->requeues++;
    q->waits += not_before != 0;
    if (not_before)
        store__order_wait(&q->o, r);
    else
        store__order_prepend(&q->o, r);
    store__expiry_add(&s->expiry, r);
    return STORE_OK;
}

static store_err mem_requeue(store *s, uint64_t id)
{
    return mem_requeue_at(s, id, 0);
}

static store_err mem_cancel(store *s, uint64_t id)
{
    store__rec *r = find_rec(s, id);
    if (!r || r->state != STORE__PENDING)
        return STORE_E_NOTFOUND;
    store__list_unlink(&s->pending, &r->on);
    if (r->not_before)
        ((mqueue *)r->q)->nlate--;
    forget(s, r);
    return STORE_OK;
}

static store_err mem_enqueue_shared(store *s, store_target *t, size_t n, const char *headers,
                                    size_t headers_len, const char *body, size_t body_len)
{
    if (!n)
        return STORE_E_INVALID;
    if (body_len > STORE__REC_MAXLEN)
        return STORE_E_NOMEM;
    mbody *b = malloc(sizeof *b + body_len + 1);
    if (!b)
        return STORE_E_NOMEM;
    b->refs = 1; /* this call's: the body outlives a record cancelled below */
    b->len = body_len;
    if (body_len)
        memcpy(b->data, body, body_len);
    b->data[body_len] = '\0';
    s->bytes += sizeof *b + body_len;
    /* Each record is a plain one whose body is the pointer, then marked shared: the plain
     * enqueue stays as it was. */
    store_err err = STORE_OK;
    size_t i = 0;
    for (; i < n; i++) {
        err = mem_enqueue_attrs(s, t[i].queue, t[i].queue_len, t[i].hash, headers, headers_len,
                                (const char *)&b, sizeof b, t[i].attrs, &t[i].id);
        if (err != STORE_OK)
            break;
        store__rec *r = find_rec(s, t[i].id);
        r->flags = MEM_SHARED;
        b->refs++;
        ((mqueue *)r->q)->bytes += body_len - sizeof b;
    }
    if (err != STORE_OK) /* t[0..i) are in: take them back */
        for (size_t j = 0; j < i; j++)
            (void)mem_cancel(s, t[j].id);
    body_release(s, b);
    return err;
}

static store_err mem_commit(store *s, store_commit_cb cb, void *arg)
{
    (void)cb;
    (void)arg;
    /* Pending records become ready in enqueue order, so each band stays in id order; those
     * with a time wait for it. */
    while (s->pending.head) {
        store__rec *r = store__container_of(s->pending.head, store__rec, on);
        mqueue *q = r->q;
        store__list_unlink(&s->pending, &r->on);
        if (r->not_before) {
            q->nlate--;
            q->waits++;
            store__order_wait(&q->o, r);
        } else {
            store__order_append(&q->o, r);
        }
        store__expiry_add(&s->expiry, r);
    }
    return STORE_DONE;
}

static size_t mem_depth(store *s, const char *queue, size_t queue_len)
{
    mqueue *q = find_queue(s, queue, queue_len, store_hash_name(queue, queue_len));
    return q ? store__order_count(&q->o) : 0;
}

static void mem_queue_size(store *s, const char *queue, size_t queue_len, uint64_t h,
                           uint64_t *count, uint64_t *bytes)
{
    const mqueue *q = find_queue(s, queue, queue_len, h);
    *count = q ? q->nrecs : 0;
    *bytes = q ? q->bytes : 0;
}

static store__rec *scan_find(void *arg, uint64_t id);

static store_err mem_browse(store *s, const char *queue, size_t queue_len, uint64_t h,
                            store_cursor *cur, uint64_t now, store_msg *out)
{
    mqueue *q = find_queue(s, queue, queue_len, h);
    const store__rec *r = q ? store__order_browse(&q->o, q, cur, now, &s->bytes, scan_find, s)
                            : NULL;
    if (!r)
        return STORE_E_EMPTY;
    fill(out, r);
    return STORE_OK;
}

/* ---- version 8: take_match, queues ---- */

/* Changes whenever a record may have joined q's order before a scan's place: a requeue
 * (to the head of its band, or to wait), or a waiting record leaving the heap (due: it
 * joins its band where its place is; or expired). */
static uint64_t scan_gen(const mqueue *q)
{
    return q->requeues + q->waits - q->o.waiting.n;
}

static store__rec *scan_find(void *arg, uint64_t id)
{
    return find_rec(arg, id);
}

static store_err mem_take_match(store *s, const char *queue, size_t queue_len, uint64_t h,
                                uint64_t now, store_scan *scan, store_match_fn match,
                                void *arg, store_msg *out)
{
    mqueue *q = find_queue(s, queue, queue_len, h);
    if (!q)
        return STORE_E_EMPTY;
    store_err perr = q->o.waiting.n ? store__order_promote(&q->o, now, store__no_limit, &s->bytes)
                                    : STORE_OK;
    store__scan_env env = { &q->o, q, q->o.mask, scan_gen(q), scan_find, NULL, fill, s };
    store__rec *r;
    store_err err = store__scan(&env, scan, match, arg, &r);
    if (err != STORE_OK)
        return err;
    if (!r)
        return perr != STORE_OK ? perr : STORE_E_EMPTY;
    if (r->expires && r->expires <= now)
        return STORE_E_EXPIRED;
    store__scan_took(scan, r);
    take_out(s, r, out);
    return STORE_OK;
}

static void mem_queues(store *s, void (*fn)(void *arg, const char *name, size_t len,
                                            uint64_t hash),
                       void *arg)
{
    for (store__qlink *l = store__queues_first(&s->queues); l;
         l = store__queues_next(&s->queues, l))
        fn(arg, l->name, l->len, l->hash);
}

static size_t mem_resident(store *s)
{
    /* The slabs' lists and unused room are not counted, as malloc's free memory is not: they
     * would hold a broker with a small max_memory paused. */
    return s->bytes + (s->ids.cap + s->queues.cap) * sizeof(void *) + sizeof *s -
           sizeof s->slabs;
}

static const char *mem_last_error(store *s)
{
    (void)s;
    return "";
}

static const store_ops memory_ops = {
    .version = STORE_OPS_VERSION,
    .name = "memory",
    .open = mem_open,
    .close = mem_close,
    .enqueue = mem_enqueue,
    .take = mem_take,
    .ack = mem_ack,
    .requeue = mem_requeue,
    .commit = mem_commit,
    .depth = mem_depth,
    .resident = mem_resident,
    .last_error = mem_last_error,
    .enqueue_hashed = mem_enqueue_hashed,
    .take_hashed = mem_take_hashed,
    .cancel = mem_cancel,
    .requeue_at = mem_requeue_at,
    .take_at = mem_take_at,
    .next_due = mem_next_due,
    .get = mem_get,
    .enqueue_attrs = mem_enqueue_attrs,
    .take_expired = mem_take_expired,
    .next_expiry = mem_next_expiry,
    .queue_size = mem_queue_size,
    .browse = mem_browse,
    .take_match = mem_take_match,
    .queues = mem_queues,
    .enqueue_shared = mem_enqueue_shared,
};

const store_ops *store_memory_backend(void)
{
    return &memory_ops;
}
