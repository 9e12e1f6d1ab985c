/* order.h: the message records both backends keep in memory, and the order a queue hands them
 * out in: ten priority bands (highest first), each in (ord, id) order, beside a heap of the
 * queue's records waiting for their time; and the store-wide heap of records by expiry time.
 *
 * A record is in one place at a time, named by its state: PENDING (on a backend's list of
 * its batch), READY (on its band's list), MID (in its band's heap: it joined between others),
 * WAITING (in its queue's heap, by (not_before, id)), TAKEN (in no order), GHOST (a backend's
 * marker for a row whose record is gone; no data). Facts that always hold: a band's list is
 * sorted by (ord, id); a band's first record is the lesser of its list head and its heap top;
 * bit p of mask is set iff band p holds a record. A fresh message has ord = id; one that goes
 * to the head of its band takes an ord below the band's first (store__order_place). Heaps
 * grow only in reserve calls made before a change, so every change here succeeds. What is on
 * the path of every message is inline here; the rest is in order.c.
 */
#ifndef STORE_ORDER_H
#define STORE_ORDER_H

#include "index.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define STORE__PRIORITIES (STORE_PRIORITY_MAX + 1)

enum { STORE__PENDING, STORE__READY, STORE__MID, STORE__WAITING, STORE__TAKEN, STORE__GHOST };

typedef struct store__rec {
    store__idlink link;  /* in the id index; link.id is the message id */
    store__dlink on;     /* on its band's list or a backend's list of a batch */
    void *q;             /* its queue (the backend's type) */
    int64_t ord;         /* place in its band: (ord, id) ascending */
    uint64_t not_before; /* not handed out by take_at before this (0: at once) */
    uint64_t expires;    /* expired from this time on (0: never) */
    uint32_t hpos;       /* index in the band's or waiting heap (STORE__NOPOS: none) */
    uint32_t xpos;       /* index in the store's expiry heap (STORE__NOPOS: none) */
    uint32_t hlen, blen; /* each at most STORE__REC_MAXLEN */
    uint32_t redeliveries;
    uint8_t prio;
    uint8_t state;
    uint8_t flags;       /* the backend's */
    char data[];         /* header block, body, NUL */
} store__rec;

#define STORE__REC_SIZE(r) (sizeof(store__rec) + (r)->hlen + (r)->blen + 1)

/* The longest header block, and the longest body, a record holds: larger is out of memory. */
#define STORE__REC_MAXLEN ((size_t)UINT32_MAX / 4)

typedef struct store__band {
    store__dlist list; /* ready, in (ord, id) order */
    store__heap mid;   /* ready records that joined between others, by (ord, id) */
    size_t n;          /* records on the list and in the heap */
} store__band;

typedef struct store__order {
    store__band band[STORE__PRIORITIES];
    store__heap waiting; /* by (not_before, id) */
    unsigned mask;       /* bit p: band p holds a record */
} store__order;

/* Records given back, kept by allocation size for the next records of that size: a queue's
 * messages tend to share a size, and malloc's general path (a record outlives its small
 * per-thread cache as soon as a queue holds a few) costs about 170 instructions each way.
 * Sizes are rounded as malloc does (store__pool_class); records up to STORE__POOL_CLASSES * 16
 * bytes are kept, at most STORE__POOL_MAX bytes in all, so a drained backlog goes back to
 * the system. Like malloc's own free lists, what is kept is not counted as resident: it
 * would hold a broker with a small max_memory paused. Zeroed to begin. */
#define STORE__POOL_CLASSES 256
#define STORE__POOL_MAX (512 * 1024)

typedef struct store__pool {
    store__rec *spare[STORE__POOL_CLASSES]; /* chained through q */
    size_t bytes;                           /* kept */
} store__pool;

/* The size class of a record of total size n (STORE__POOL_CLASSES and up: not kept): the
 * chunk malloc takes for it, n plus malloc's 8-byte header rounded up to 16, in 16-byte
 * units. A record of class c asks for the whole chunk but its header (STORE__POOL_ASK):
 * asking for n rounded up to 16 instead took a chunk 16 bytes larger for half of all sizes. */
static inline size_t store__pool_class(size_t n)
{
    return (n + 8 + 15) >> 4;
}

#define STORE__POOL_ASK(c) (((c) << 4) - 8)

/* Make r (STORE__REC_SIZE bytes for these lengths, each at most STORE__REC_MAXLEN) a record
 * of queue q (caller's type) with a copy of the header block and body: PENDING, on no list,
 * in no heap, redeliveries 0, ord 0, priority 4. */
static inline void store__rec_init(store__rec *r, void *q, const void *headers, size_t hlen,
                                   const void *body, size_t blen)
{
    *r = (store__rec){ .q = q, .hpos = STORE__NOPOS, .xpos = STORE__NOPOS,
                       .prio = STORE_PRIORITY_DEFAULT, .state = STORE__PENDING,
                       .hlen = (uint32_t)hlen, .blen = (uint32_t)blen };
    if (hlen)
        memcpy(r->data, headers, hlen);
    if (blen)
        memcpy(r->data + hlen, body, blen);
    r->data[hlen + blen] = '\0';
}

/* A record made by store__rec_init. NULL without memory (or for lengths above
 * STORE__REC_MAXLEN). Give it back with store__rec_free. */
static inline store__rec *store__rec_new(store__pool *pool, void *q, const void *headers,
                                         size_t hlen, const void *body, size_t blen)
{
    if (hlen > STORE__REC_MAXLEN || blen > STORE__REC_MAXLEN)
        return NULL;
    size_t c = store__pool_class(sizeof(store__rec) + hlen + blen + 1);
    store__rec *r;
    if (c < STORE__POOL_CLASSES && pool->spare[c]) {
        r = pool->spare[c];
        pool->spare[c] = (store__rec *)r->q;
        pool->bytes -= c << 4;
    } else if (!(r = malloc(STORE__POOL_ASK(c)))) {
        return NULL;
    }
    store__rec_init(r, q, headers, hlen, body, blen);
    return r;
}

/* r's memory is kept for a record of its size, or freed. */
static inline void store__rec_free(store__pool *pool, store__rec *r)
{
    size_t c = store__pool_class(STORE__REC_SIZE(r));
    if (c < STORE__POOL_CLASSES && pool->bytes + (c << 4) <= STORE__POOL_MAX) {
        r->q = pool->spare[c];
        pool->spare[c] = r;
        pool->bytes += c << 4;
        return;
    }
    free(r);
}

/* Free every record kept. */
void store__pool_drain(store__pool *pool);

/* Fill a take's answer from r. The pointers are borrowed from r. */
static inline void store__rec_fill(store_msg *out, const store__rec *r, const char *queue,
                                   size_t queue_len)
{
    out->id = r->link.id;
    out->queue = queue;
    out->queue_len = queue_len;
    out->headers = r->data;
    out->headers_len = r->hlen;
    out->body = r->data + r->hlen;
    out->body_len = r->blen;
    out->redeliveries = r->redeliveries;
    out->priority = r->prio;
    out->expires = r->expires;
}

/* ---- a queue's order ---- */

void store__order_init(store__order *o);
/* Free the heaps (their bytes off *acct); the records are the caller's. */
void store__order_free(store__order *o, size_t *acct);
/* Records in the order: ready and waiting. */
size_t store__order_count(const store__order *o);

/* The band's first record (least (ord, id)), or NULL. */
static inline store__rec *store__band_first(const store__band *b)
{
    store__rec *l = store__entry(b->list.head, store__rec, on);
    const store__heapent *t = store__heap_top(&b->mid);
    if (!t)
        return l;
    store__rec *m = t->p;
    return l && (l->ord < m->ord || (l->ord == m->ord && l->link.id < m->link.id)) ? l : m;
}

/* The first record of the highest band that holds one, or NULL. */
static inline store__rec *store__order_first(const store__order *o)
{
    return o->mask ? store__band_first(&o->band[31 - __builtin_clz(o->mask)]) : NULL;
}

/* r's band counts one record more, or less (its bit in mask follows). */
static inline void store__band_in(store__order *o, const store__rec *r)
{
    if (o->band[r->prio].n++ == 0)
        o->mask |= 1u << r->prio;
}

static inline void store__band_out(store__order *o, const store__rec *r)
{
    if (--o->band[r->prio].n == 0)
        o->mask &= ~(1u << r->prio);
}

/* r (on no list, in no heap) joins its band at the tail: READY. Its (ord, id) is above every
 * record of the band. */
static inline void store__order_append(store__order *o, store__rec *r)
{
    store__list_append(&o->band[r->prio].list, &r->on);
    r->state = STORE__READY;
    store__band_in(o, r);
}
/* Give r an ord below its band's first and below limit (the least ord of the band's ready
 * messages that are not in memory, INT64_MAX when none), or keep its own if that is lower.
 * STORE_E_INVALID when no lower ord is left (unreachable in practice). */
store_err store__order_place(const store__order *o, store__rec *r, int64_t limit) STORE_WUR;
/* r (placed) becomes its band's first: READY, at the head of the list. */
void store__order_prepend(store__order *o, store__rec *r);
/* r waits in the queue's heap until not_before: WAITING. Room reserved. */
void store__order_wait(store__order *o, store__rec *r);
/* Take r (MID or WAITING) out of the order (store__order_remove's less common half). */
void store__order_unheap(store__order *o, store__rec *r);

/* Take r (READY, MID or WAITING) out of the order; its state is the caller's to set. */
static inline void store__order_remove(store__order *o, store__rec *r)
{
    if (r->state != STORE__READY) {
        store__order_unheap(o, r);
        return;
    }
    store__list_unlink(&o->band[r->prio].list, &r->on);
    store__band_out(o, r);
}
/* Records waiting and due at now join their bands: one never handed out (redeliveries 0)
 * at the place its (ord, id) gives it, one that went back to its queue at the head of its
 * band (several of those in the order of their times, then ids). limit[p] as for
 * store__order_place. STORE_E_NOMEM (some stay waiting) when a band's heap cannot grow. */
store_err store__order_promote(store__order *o, uint64_t now, const int64_t *limit,
                               size_t *acct) STORE_WUR;
/* A limit for store__order_promote that holds nothing back. */
extern const int64_t store__no_limit[STORE__PRIORITIES];
/* The earliest not_before of the waiting records, if later than now; else 0. */
uint64_t store__order_next_due(const store__order *o, uint64_t now);
/* The first record of band p after (ord, id) in its order, or NULL. found: the record whose
 * id is id, or NULL; while it is still at (ord, id) on that band's list of the order owned
 * by q, the search goes on from it, else it walks the list from its head (and in every
 * case looks through the band's heap). */
store__rec *store__order_after(const store__order *o, const void *q, int p,
                               const store__rec *found, int64_t ord, uint64_t id);

/* ---- browsing: a store_cursor (zeroed to begin) ---- */

/* The next record of o (the order of queue q) after the cursor, the cursor moved past it;
 * NULL at the end. Waiting records due at now join their bands first (acct as for
 * store__order_promote). find(arg, id): the store's record of that id, or NULL. What
 * memory and PostgreSQL's browse share. */
const store__rec *store__order_browse(store__order *o, const void *q, store_cursor *cur,
                                      uint64_t now, size_t *acct,
                                      store__rec *(*find)(void *arg, uint64_t id), void *arg);

/* The band to go on in, and the (ord, id) after which: the highest band from its start
 * for a cursor not begun. */
void store__cursor_read(const store_cursor *c, int *p, int64_t *ord, uint64_t *id);
/* The message at (ord, id) of band p was given. */
void store__cursor_write(store_cursor *c, int p, int64_t ord, uint64_t id);

/* ---- a store's records by expiry ---- */

void store__expiry_init(store__heap *x);

/* r (with an expiry, room reserved) joins; a record without one does not. */
static inline void store__expiry_add(store__heap *x, store__rec *r)
{
    if (r->expires)
        store__heap_push(x, r->expires, r->link.id, r);
}

/* r leaves, if it is in. */
static inline void store__expiry_drop(store__heap *x, store__rec *r)
{
    if (r->xpos != STORE__NOPOS)
        store__heap_remove(x, r->xpos);
}

#endif
