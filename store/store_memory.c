/* store_memory.c: the memory backend of store.h.
 *
 * One allocation per message (record header, header block and body inline). Records are
 * found by id, queues by name, through the indexes of index.h. A record is in exactly one
 * place: the store's pending list (enqueued, not committed), its queue's ready list, its
 * queue's heap of waiting records (requeued with a time, by that time, then id), or none
 * (taken). Waiting records due at a take move to the head of the ready list. A queue is
 * freed once it has no record at all. Commit completes
 * synchronously (STORE_DONE): nothing here is durable, so a batch is done when it is made.
 * `bytes` is the sum of the allocations it holds (records and queues), for resident().
 */
#include "index.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

enum { REC_PENDING, REC_READY, REC_WAITING, REC_TAKEN };

typedef struct mqueue mqueue;

typedef struct mrec {
    store__idlink link; /* in the id index; link.id is the message id */
    store__dlink on;    /* on the pending list or its queue's ready list */
    mqueue *q;
    uint32_t redeliveries;
    int state;
    size_t hlen, blen;
    char data[]; /* header block, body, NUL */
} mrec;

struct mqueue {
    store__qlink link;  /* in the name index; names name[] */
    store__dlist ready; /* ready records, in order */
    store__heap waiting; /* records requeued with a time, not yet moved to ready */
    size_t depth;      /* records ready or waiting */
    size_t nrecs;      /* records of any state in this queue */
    char name[]; /* NUL-terminated, link.len bytes before the NUL */
};

struct store {
    store__idhash ids;
    store__qhash queues;
    store__dlist pending; /* enqueued, not committed, in id order */
    uint64_t next_id;
    size_t bytes; /* records and queues allocated */
};

static mqueue *find_queue(const store *s, const char *name, size_t len, uint64_t h)
{
    return store__entry(store__queues_find(&s->queues, name, len, h), mqueue, link);
}

static mrec *find_rec(const store *s, uint64_t id)
{
    return store__entry(store__ids_find(&s->ids, id), mrec, link);
}

static void drop_queue_if_unused(store *s, mqueue *q)
{
    if (q->nrecs)
        return;
    store__heap_free(&q->waiting, &s->bytes);
    store__queues_remove(&s->queues, &q->link);
    s->bytes -= sizeof *q + q->link.len + 1;
    free(q);
}

static store_err mem_open(const store_options *opts, store **out)
{
    (void)opts;
    store *s = calloc(1, sizeof *s);
    if (!s)
        return STORE_E_NOMEM;
    s->next_id = 1;
    *out = s;
    return STORE_OK;
}

static void mem_close(store *s)
{
    if (!s)
        return;
    for (store__qlink *l = store__queues_first(&s->queues); l;
         l = store__queues_next(&s->queues, l))
        store__heap_free(&store__container_of(l, mqueue, link)->waiting, NULL);
    store__ids_destroy(&s->ids, offsetof(mrec, link));
    store__queues_destroy(&s->queues, offsetof(mqueue, link));
    free(s);
}

static store_err mem_enqueue_hashed(store *s, const char *queue, size_t queue_len, uint64_t h,
                                    const char *headers, size_t headers_len, const char *body,
                                    size_t body_len, uint64_t *id)
{
    if (!queue_len)
        return STORE_E_INVALID;
    if (headers_len > SIZE_MAX / 4 || body_len > SIZE_MAX / 4)
        return STORE_E_NOMEM;
    if (store__ids_reserve(&s->ids, 1) != STORE_OK)
        return STORE_E_NOMEM;
    mqueue *q = find_queue(s, queue, queue_len, h);
    if (!q) {
        if (store__queues_reserve(&s->queues, 1) != STORE_OK)
            return STORE_E_NOMEM;
        q = calloc(1, sizeof *q + queue_len + 1);
        if (!q)
            return STORE_E_NOMEM;
        memcpy(q->name, queue, queue_len);
        store__queues_insert(&s->queues, &q->link, q->name, queue_len, h);
        s->bytes += sizeof *q + queue_len + 1;
    }
    mrec *r = malloc(sizeof *r + headers_len + body_len + 1);
    if (!r) {
        drop_queue_if_unused(s, q);
        return STORE_E_NOMEM;
    }
    r->q = q;
    r->link.id = s->next_id++;
    r->redeliveries = 0;
    r->state = REC_PENDING;
    r->hlen = headers_len;
    r->blen = body_len;
    store__copy_msg(r->data, headers, headers_len, body, body_len);
    store__ids_insert(&s->ids, &r->link);
    s->bytes += sizeof *r + headers_len + body_len + 1;
    q->nrecs++;
    store__list_append(&s->pending, &r->on);
    *id = r->link.id;
    return STORE_OK;
}

static store_err mem_enqueue(store *s, const char *queue, size_t queue_len, const char *headers,
                             size_t headers_len, const char *body, size_t body_len, uint64_t *id)
{
    return mem_enqueue_hashed(s, queue, queue_len, store_hash_name(queue, queue_len), headers,
                              headers_len, body, body_len, id);
}

/* Waiting records due at now go to the head of the ready list, oldest id first. */
static void promote_due(mqueue *q, uint64_t now)
{
    const store__heapent *top;
    store__dlist due = { NULL, NULL };
    while ((top = store__heap_top(&q->waiting)) && top->key <= now) {
        mrec *r = top->p;
        store__heap_pop(&q->waiting);
        r->state = REC_READY;
        /* Popped by (time, id): insert by id among those due together. */
        store__dlink *at = due.tail;
        while (at && store__container_of(at, mrec, on)->link.id > r->link.id)
            at = at->prev;
        if (!at) {
            store__list_prepend(&due, &r->on);
        } else {
            r->on.prev = at;
            r->on.next = at->next;
            if (at->next)
                at->next->prev = &r->on;
            else
                due.tail = &r->on;
            at->next = &r->on;
        }
    }
    while (due.tail) {
        store__dlink *l = due.tail;
        store__list_unlink(&due, l);
        store__list_prepend(&q->ready, l);
    }
}

static store_err mem_take_at(store *s, const char *queue, size_t queue_len, uint64_t h,
                             uint64_t now, store_msg *out)
{
    mqueue *q = find_queue(s, queue, queue_len, h);
    if (!q)
        return STORE_E_EMPTY;
    promote_due(q, now);
    if (!q->ready.head)
        return STORE_E_EMPTY;
    mrec *r = store__container_of(q->ready.head, mrec, on);
    store__list_unlink(&q->ready, &r->on);
    q->depth--;
    r->state = REC_TAKEN;
    store__fill_msg(out, r->link.id, q->name, q->link.len, r->data, r->hlen, r->blen,
                    r->redeliveries);
    return STORE_OK;
}

static store_err mem_take_hashed(store *s, const char *queue, size_t queue_len, uint64_t h,
                                 store_msg *out)
{
    return mem_take_at(s, queue, queue_len, h, UINT64_MAX, out);
}

static uint64_t mem_next_due(store *s, const char *queue, size_t queue_len, uint64_t h,
                             uint64_t now)
{
    mqueue *q = find_queue(s, queue, queue_len, h);
    const store__heapent *top = q ? store__heap_top(&q->waiting) : NULL;
    return top && top->key > now ? top->key : 0;
}

static store_err mem_take(store *s, const char *queue, size_t queue_len, store_msg *out)
{
    return mem_take_hashed(s, queue, queue_len, store_hash_name(queue, queue_len), out);
}

static store_err mem_ack(store *s, uint64_t id)
{
    mrec *r = find_rec(s, id);
    if (!r || r->state != REC_TAKEN)
        return STORE_E_NOTFOUND;
    store__ids_remove(&s->ids, &r->link);
    mqueue *q = r->q;
    q->nrecs--;
    s->bytes -= sizeof *r + r->hlen + r->blen + 1;
    free(r);
    drop_queue_if_unused(s, q);
    return STORE_OK;
}

static store_err mem_get(store *s, uint64_t id, store_msg *out)
{
    const mrec *r = find_rec(s, id);
    if (!r || r->state != REC_TAKEN)
        return STORE_E_NOTFOUND;
    store__fill_msg(out, r->link.id, r->q->name, r->q->link.len, r->data, r->hlen, r->blen,
                    r->redeliveries);
    return STORE_OK;
}

static store_err mem_requeue_at(store *s, uint64_t id, uint64_t not_before)
{
    mrec *r = find_rec(s, id);
    if (!r || r->state != REC_TAKEN)
        return STORE_E_NOTFOUND;
    mqueue *q = r->q;
    if (not_before) {
        if (store__heap_reserve(&q->waiting, q->waiting.n + 1, &s->bytes) != STORE_OK)
            return STORE_E_NOMEM;
        store__heap_push(&q->waiting, not_before, r->link.id, r);
        r->state = REC_WAITING;
    } else {
        store__list_prepend(&q->ready, &r->on);
        r->state = REC_READY;
    }
    if (r->redeliveries < UINT32_MAX)
        r->redeliveries++;
    q->depth++;
    return STORE_OK;
}

static store_err mem_requeue(store *s, uint64_t id)
{
    return mem_requeue_at(s, id, 0);
}

static store_err mem_cancel(store *s, uint64_t id)
{
    mrec *r = find_rec(s, id);
    if (!r || r->state != REC_PENDING)
        return STORE_E_NOTFOUND;
    store__list_unlink(&s->pending, &r->on);
    store__ids_remove(&s->ids, &r->link);
    mqueue *q = r->q;
    q->nrecs--;
    s->bytes -= sizeof *r + r->hlen + r->blen + 1;
    free(r);
    drop_queue_if_unused(s, q);
    return STORE_OK;
}

static store_err mem_commit(store *s, store_commit_cb cb, void *arg)
{
    (void)cb;
    (void)arg;
    /* Pending records become ready in enqueue order, so each queue stays FIFO by id. */
    while (s->pending.head) {
        mrec *r = store__container_of(s->pending.head, mrec, on);
        store__list_unlink(&s->pending, &r->on);
        r->state = REC_READY;
        store__list_append(&r->q->ready, &r->on);
        r->q->depth++;
    }
    return STORE_DONE;
}

static size_t mem_depth(store *s, const char *queue, size_t queue_len)
{
    mqueue *q = find_queue(s, queue, queue_len, store_hash_name(queue, queue_len));
    return q ? q->depth : 0;
}

static size_t mem_resident(store *s)
{
    return s->bytes + (s->ids.cap + s->queues.cap) * sizeof(void *) + sizeof *s;
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
};

const store_ops *store_memory_backend(void)
{
    return &memory_ops;
}
