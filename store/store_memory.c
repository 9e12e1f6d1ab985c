/* store_memory.c: the memory backend of store.h.
 *
 * One allocation per message (record header, header block and body inline). Records are
 * found by id through a chained hash; queues by name through another. A record is on
 * exactly one list: the store's pending list (enqueued, not committed), its queue's ready
 * list, or none (taken). A queue is freed once it has no record at all. Commit completes
 * synchronously (STORE_DONE): nothing here is durable, so a batch is done when it is made.
 * `bytes` is the sum of the allocations it holds (records and queues), for resident().
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>

enum { REC_PENDING, REC_READY, REC_TAKEN };

typedef struct mqueue mqueue;

typedef struct mrec {
    struct mrec *hnext;       /* id hash chain */
    struct mrec *prev, *next; /* pending list or queue ready list */
    mqueue *q;
    uint64_t id;
    uint32_t redeliveries;
    int state;
    size_t hlen, blen;
    char data[]; /* header block, body, NUL */
} mrec;

struct mqueue {
    mqueue *hnext;
    mrec *head, *tail; /* ready list */
    size_t depth;      /* records on the ready list */
    size_t nrecs;      /* records of any state in this queue */
    uint64_t hash;
    size_t name_len;
    char name[]; /* NUL-terminated */
};

struct store {
    mrec **ids;
    size_t ids_cap, nids; /* buckets (power of two), records */
    mqueue **queues;
    size_t q_cap, nq;
    mrec *pend_head, *pend_tail;
    uint64_t next_id;
    size_t bytes; /* records and queues allocated */
};

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static size_t id_slot(const store *s, uint64_t id)
{
    uint64_t h = id * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 32) & (s->ids_cap - 1);
}

static int grow_ids(store *s)
{
    size_t ncap = s->ids_cap ? s->ids_cap * 2 : 64;
    mrec **nb = calloc(ncap, sizeof *nb);
    if (!nb)
        return -1;
    mrec **old = s->ids;
    size_t ocap = s->ids_cap;
    s->ids = nb;
    s->ids_cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        for (mrec *r = old[i], *n; r; r = n) {
            n = r->hnext;
            size_t k = id_slot(s, r->id);
            r->hnext = nb[k];
            nb[k] = r;
        }
    }
    free(old);
    return 0;
}

static mrec *find_rec(const store *s, uint64_t id)
{
    if (!s->ids_cap)
        return NULL;
    for (mrec *r = s->ids[id_slot(s, id)]; r; r = r->hnext)
        if (r->id == id)
            return r;
    return NULL;
}

static void unhash_rec(store *s, mrec *r)
{
    mrec **pp = &s->ids[id_slot(s, r->id)];
    while (*pp != r)
        pp = &(*pp)->hnext;
    *pp = r->hnext;
    s->nids--;
}

static int grow_queues(store *s)
{
    size_t ncap = s->q_cap ? s->q_cap * 2 : 16;
    mqueue **nb = calloc(ncap, sizeof *nb);
    if (!nb)
        return -1;
    for (size_t i = 0; i < s->q_cap; i++) {
        for (mqueue *q = s->queues[i], *n; q; q = n) {
            n = q->hnext;
            size_t k = (size_t)q->hash & (ncap - 1);
            q->hnext = nb[k];
            nb[k] = q;
        }
    }
    free(s->queues);
    s->queues = nb;
    s->q_cap = ncap;
    return 0;
}

static mqueue *find_queue(const store *s, const char *name, size_t len, uint64_t h)
{
    if (!s->q_cap)
        return NULL;
    for (mqueue *q = s->queues[(size_t)h & (s->q_cap - 1)]; q; q = q->hnext)
        if (q->hash == h && q->name_len == len && memcmp(q->name, name, len) == 0)
            return q;
    return NULL;
}

static void drop_queue_if_unused(store *s, mqueue *q)
{
    if (q->nrecs)
        return;
    mqueue **pp = &s->queues[(size_t)q->hash & (s->q_cap - 1)];
    while (*pp != q)
        pp = &(*pp)->hnext;
    *pp = q->hnext;
    s->nq--;
    s->bytes -= sizeof *q + q->name_len + 1;
    free(q);
}

static void list_unlink(mrec **head, mrec **tail, mrec *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        *head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        *tail = r->prev;
    r->prev = r->next = NULL;
}

static void list_append(mrec **head, mrec **tail, mrec *r)
{
    r->next = NULL;
    r->prev = *tail;
    if (*tail)
        (*tail)->next = r;
    else
        *head = r;
    *tail = r;
}

static void list_prepend(mrec **head, mrec **tail, mrec *r)
{
    r->prev = NULL;
    r->next = *head;
    if (*head)
        (*head)->prev = r;
    else
        *tail = r;
    *head = r;
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
    for (size_t i = 0; i < s->ids_cap; i++)
        for (mrec *r = s->ids[i], *n; r; r = n) {
            n = r->hnext;
            free(r);
        }
    for (size_t i = 0; i < s->q_cap; i++)
        for (mqueue *q = s->queues[i], *n; q; q = n) {
            n = q->hnext;
            free(q);
        }
    free(s->ids);
    free(s->queues);
    free(s);
}

static store_err mem_enqueue(store *s, const char *queue, size_t queue_len, const char *headers,
                             size_t headers_len, const char *body, size_t body_len, uint64_t *id)
{
    if (!queue_len)
        return STORE_E_INVALID;
    if (headers_len > SIZE_MAX / 4 || body_len > SIZE_MAX / 4)
        return STORE_E_NOMEM;
    if (s->nids >= s->ids_cap && grow_ids(s) != 0)
        return STORE_E_NOMEM;
    uint64_t h = hash_bytes(queue, queue_len);
    mqueue *q = find_queue(s, queue, queue_len, h);
    if (!q) {
        if (s->nq >= s->q_cap && grow_queues(s) != 0)
            return STORE_E_NOMEM;
        q = calloc(1, sizeof *q + queue_len + 1);
        if (!q)
            return STORE_E_NOMEM;
        q->hash = h;
        q->name_len = queue_len;
        memcpy(q->name, queue, queue_len);
        size_t k = (size_t)h & (s->q_cap - 1);
        q->hnext = s->queues[k];
        s->queues[k] = q;
        s->nq++;
        s->bytes += sizeof *q + queue_len + 1;
    }
    mrec *r = malloc(sizeof *r + headers_len + body_len + 1);
    if (!r) {
        drop_queue_if_unused(s, q);
        return STORE_E_NOMEM;
    }
    r->q = q;
    r->id = s->next_id++;
    r->redeliveries = 0;
    r->state = REC_PENDING;
    r->hlen = headers_len;
    r->blen = body_len;
    if (headers_len)
        memcpy(r->data, headers, headers_len);
    if (body_len)
        memcpy(r->data + headers_len, body, body_len);
    r->data[headers_len + body_len] = '\0';
    size_t k = id_slot(s, r->id);
    r->hnext = s->ids[k];
    s->ids[k] = r;
    s->nids++;
    s->bytes += sizeof *r + headers_len + body_len + 1;
    q->nrecs++;
    list_append(&s->pend_head, &s->pend_tail, r);
    *id = r->id;
    return STORE_OK;
}

static store_err mem_take(store *s, const char *queue, size_t queue_len, store_msg *out)
{
    mqueue *q = find_queue(s, queue, queue_len, hash_bytes(queue, queue_len));
    if (!q || !q->head)
        return STORE_E_EMPTY;
    mrec *r = q->head;
    list_unlink(&q->head, &q->tail, r);
    q->depth--;
    r->state = REC_TAKEN;
    out->id = r->id;
    out->queue = q->name;
    out->queue_len = q->name_len;
    out->headers = r->data;
    out->headers_len = r->hlen;
    out->body = r->data + r->hlen;
    out->body_len = r->blen;
    out->redeliveries = r->redeliveries;
    return STORE_OK;
}

static store_err mem_ack(store *s, uint64_t id)
{
    mrec *r = find_rec(s, id);
    if (!r || r->state != REC_TAKEN)
        return STORE_E_NOTFOUND;
    unhash_rec(s, r);
    mqueue *q = r->q;
    q->nrecs--;
    s->bytes -= sizeof *r + r->hlen + r->blen + 1;
    free(r);
    drop_queue_if_unused(s, q);
    return STORE_OK;
}

static store_err mem_requeue(store *s, uint64_t id)
{
    mrec *r = find_rec(s, id);
    if (!r || r->state != REC_TAKEN)
        return STORE_E_NOTFOUND;
    r->state = REC_READY;
    if (r->redeliveries < UINT32_MAX)
        r->redeliveries++;
    list_prepend(&r->q->head, &r->q->tail, r);
    r->q->depth++;
    return STORE_OK;
}

static store_err mem_commit(store *s, store_commit_cb cb, void *arg)
{
    (void)cb;
    (void)arg;
    /* Pending records become ready in enqueue order, so each queue stays FIFO by id. */
    while (s->pend_head) {
        mrec *r = s->pend_head;
        list_unlink(&s->pend_head, &s->pend_tail, r);
        r->state = REC_READY;
        list_append(&r->q->head, &r->q->tail, r);
        r->q->depth++;
    }
    return STORE_DONE;
}

static size_t mem_depth(store *s, const char *queue, size_t queue_len)
{
    mqueue *q = find_queue(s, queue, queue_len, hash_bytes(queue, queue_len));
    return q ? q->depth : 0;
}

static size_t mem_resident(store *s)
{
    return s->bytes + (s->ids_cap + s->q_cap) * sizeof(void *) + sizeof *s;
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
};

const store_ops *store_memory_backend(void)
{
    return &memory_ops;
}
