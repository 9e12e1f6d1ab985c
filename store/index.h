/* index.h: the containers of the store and of the broker: a hash by 64-bit id (a backend's
 * records by message id, the broker's deliveries by ack tag), a hash by name (a backend's
 * queues, the broker's destinations) and doubly linked lists threaded through records.
 *
 * All intrusive: a backend embeds a store__idlink and a store__dlink in its record and a
 * store__qlink in its queue, and gets its own struct back with store__container_of (or
 * store__entry, NULL-safe). The hashes own only their bucket arrays; the linked objects stay
 * the backend's. Invariants: a bucket count is 0 or a power of two; every linked object is
 * on exactly one chain, the one its key selects; ids are unique; a qlink's name stays valid
 * while it is linked. Inserting never allocates: reserve first, so a failed write leaves the
 * index as it was. Lookups, inserts, removals and list steps are inline: they are on the path
 * of every message.
 */
#ifndef STORE_INDEX_H
#define STORE_INDEX_H

#include "store.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The outer struct of a member pointer p (never NULL). */
#define store__container_of(p, type, member) \
    ((type *)(void *)((char *)(p) - offsetof(type, member)))

typedef struct store__idlink {
    struct store__idlink *next; /* chain; owned by the index */
    uint64_t id;                /* the key: set before insert, fixed while linked */
} store__idlink;

typedef struct store__idhash {
    store__idlink **b;
    size_t cap, n; /* buckets (0 or a power of two), linked records */
} store__idhash;

typedef struct store__qlink {
    struct store__qlink *next; /* chain; owned by the index */
    /* The key, set by store__queues_insert: hash is store_hash_name(name, len); name is
     * borrowed, valid while linked (usually the queue's own name). */
    uint64_t hash;
    const char *name;
    size_t len;
} store__qlink;

typedef struct store__qhash {
    store__qlink **b;
    size_t cap, n;
} store__qhash;

/* A NULL-safe store__container_of: the outer struct of p, or NULL when p is NULL. */
static inline void *store__outer(void *p, size_t off)
{
    return p ? (char *)p - off : NULL;
}
#define store__entry(p, type, member) ((type *)store__outer((p), offsetof(type, member)))

/* ---- record lists (pending, ready, window): intrusive, doubly linked ---- */

typedef struct store__dlink {
    struct store__dlink *prev, *next; /* both NULL when on no list */
} store__dlink;

typedef struct store__dlist {
    store__dlink *head, *tail; /* both NULL or both set */
} store__dlist;

/* Take e off the list l it is on. */
static inline void store__list_unlink(store__dlist *l, store__dlink *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        l->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        l->tail = e->prev;
    e->prev = e->next = NULL;
}

/* Put e (on no list) at the tail of l. */
static inline void store__list_append(store__dlist *l, store__dlink *e)
{
    e->next = NULL;
    e->prev = l->tail;
    if (l->tail)
        l->tail->next = e;
    else
        l->head = e;
    l->tail = e;
}

/* Put e (on no list) at the head of l. */
static inline void store__list_prepend(store__dlist *l, store__dlink *e)
{
    e->prev = NULL;
    e->next = l->head;
    if (l->head)
        l->head->prev = e;
    else
        l->tail = e;
    l->head = e;
}

/* ---- a min-heap by (key, tie): what is due next (delayed messages, expiry) ---- */

/* The index a tracked object holds while it is in no heap (a heap holds fewer entries). */
#define STORE__NOPOS UINT32_MAX

typedef struct store__heapent {
    uint64_t key, tie; /* ordered by key, then tie */
    void *p;
} store__heapent;

typedef struct store__heap {
    store__heapent *e;
    size_t n, cap;
    /* 0, or 1 + the offset of a uint32_t in each entry's object p that the heap keeps equal
     * to the entry's index (STORE__NOPOS once it leaves), so an entry can be removed from the
     * middle (store__heap_track). */
    size_t track;
} store__heap;

/* Keep each object's index at offset off of it (set before the first push). */
static inline void store__heap_track(store__heap *h, size_t off)
{
    h->track = off + 1;
}

/* Room for `want` entries in all: STORE_OK or STORE_E_NOMEM (the heap unchanged; also when
 * want reaches STORE__NOPOS). Growth is added to *acct (bytes held), when acct is not NULL. */
store_err store__heap_reserve(store__heap *h, size_t want, size_t *acct) STORE_WUR;
/* Add (room reserved). */
void store__heap_push(store__heap *h, uint64_t key, uint64_t tie, void *p);
/* The least entry, or NULL when empty. Borrowed: valid until the next push or pop. */
static inline const store__heapent *store__heap_top(const store__heap *h)
{
    return h->n ? &h->e[0] : NULL;
}
/* Remove the least entry (the heap is not empty). */
void store__heap_pop(store__heap *h);
/* Remove entry i (< n): with tracking, the index its object holds. */
void store__heap_remove(store__heap *h, size_t i);
/* Free the entries (their bytes are taken off *acct when not NULL); h is left empty. */
void store__heap_free(store__heap *h, size_t *acct);

/* ---- records by id ---- */

/* Ids are sequential: the multiply by 2^64 / golden ratio spreads them, and a table of 2^k
 * buckets (cap at least 2) takes the product's top k bits, where consecutive ids land
 * evenly on every bucket (bits from the middle of the product left three in four buckets
 * empty at a million ids, in chains of up to seven). */
static inline size_t store__ids_slot(const store__idhash *h, uint64_t id)
{
    return (size_t)((id * 0x9e3779b97f4a7c15ull) >> (64 - __builtin_ctzll(h->cap)));
}

/* Grow (rehashing) so that `more` records fit, at most 2^shift of them a bucket.
 * STORE_E_NOMEM leaves h unchanged. */
store_err store__ids_grow_at(store__idhash *h, size_t more, unsigned shift) STORE_WUR;

static inline STORE_WUR store_err store__ids_grow(store__idhash *h, size_t more)
{
    return store__ids_grow_at(h, more, 0);
}

/* Room for `more` inserts without allocating, at most 2^shift records a bucket: STORE_OK or
 * STORE_E_NOMEM. One hash keeps one shift all its life. Sequential ids spread evenly, so
 * shift 1 makes chains of two where 0 makes chains of one: half the bucket array's bytes per
 * record for one more link followed per lookup. */
static inline STORE_WUR store_err store__ids_reserve_at(store__idhash *h, size_t more,
                                                        unsigned shift)
{
    return h->n + more <= h->cap << shift ? STORE_OK : store__ids_grow_at(h, more, shift);
}

static inline STORE_WUR store_err store__ids_reserve(store__idhash *h, size_t more)
{
    return store__ids_reserve_at(h, more, 0);
}

/* Link l (its id set, not linked, unique). The caller has reserved room. */
static inline void store__ids_insert(store__idhash *h, store__idlink *l)
{
    store__idlink **pp = &h->b[store__ids_slot(h, l->id)];
    l->next = *pp;
    *pp = l;
    h->n++;
}

/* The record with this id, or NULL. Borrowed: valid while linked. */
static inline store__idlink *store__ids_find(const store__idhash *h, uint64_t id)
{
    if (!h->cap)
        return NULL;
    for (store__idlink *l = h->b[store__ids_slot(h, id)]; l; l = l->next)
        if (l->id == id)
            return l;
    return NULL;
}

/* Unlink l, which must be linked in h. */
static inline void store__ids_remove(store__idhash *h, store__idlink *l)
{
    store__idlink **pp = &h->b[store__ids_slot(h, l->id)];
    while (*pp != l)
        pp = &(*pp)->next;
    *pp = l->next;
    h->n--;
}

/* The records' array never shrinks below room for this many records (as many buckets at one
 * record a bucket). */
#define STORE__IDS_SHRINK_MIN 4096

void store__ids_shrink_now(store__idhash *h);

/* After removals: a quarter of the buckets once at most an eighth of what they hold (2^shift
 * records each, as reserved) is used (then at most half of the smaller array is, so the next
 * growth is far off); without memory the array stays as it is. Ends a walk. */
static inline void store__ids_shrink_at(store__idhash *h, unsigned shift)
{
    if ((h->cap / 4) << shift >= STORE__IDS_SHRINK_MIN && h->n <= (h->cap << shift) / 8)
        store__ids_shrink_now(h);
}

static inline void store__ids_shrink(store__idhash *h)
{
    store__ids_shrink_at(h, 0);
}

/* Walk every record: first, then next(l) until NULL. next reads only l's key and chain, so
 * the caller may free l once next(l) is taken; inserting or removing others ends the walk. */
store__idlink *store__ids_first(const store__idhash *h);
store__idlink *store__ids_next(const store__idhash *h, const store__idlink *l);

/* Free every linked record (each one malloc block with its idlink at offset off), then the
 * bucket array; h is left empty. */
void store__ids_destroy(store__idhash *h, size_t off);

/* ---- queues by name ---- */

store_err store__queues_grow(store__qhash *h, size_t more) STORE_WUR;

static inline STORE_WUR store_err store__queues_reserve(store__qhash *h, size_t more)
{
    return h->n + more <= h->cap ? STORE_OK : store__queues_grow(h, more);
}

/* Link l under name[0..len) (borrowed, valid while linked; no queue of that name linked),
 * whose store_hash_name is hash. Room reserved. */
static inline void store__queues_insert(store__qhash *h, store__qlink *l, const char *name,
                                        size_t len, uint64_t hash)
{
    l->hash = hash;
    l->name = name;
    l->len = len;
    store__qlink **pp = &h->b[(size_t)hash & (h->cap - 1)];
    l->next = *pp;
    *pp = l;
    h->n++;
}

/* The queue named name[0..len) whose hash is hash, or NULL. */
static inline store__qlink *store__queues_find(const store__qhash *h, const char *name,
                                               size_t len, uint64_t hash)
{
    if (!h->cap)
        return NULL;
    for (store__qlink *l = h->b[(size_t)hash & (h->cap - 1)]; l; l = l->next)
        if (l->hash == hash && l->len == len && memcmp(l->name, name, len) == 0)
            return l;
    return NULL;
}

static inline void store__queues_remove(store__qhash *h, store__qlink *l)
{
    store__qlink **pp = &h->b[(size_t)l->hash & (h->cap - 1)];
    while (*pp != l)
        pp = &(*pp)->next;
    *pp = l->next;
    h->n--;
}

/* As store__ids_first / store__ids_next. */
store__qlink *store__queues_first(const store__qhash *h);
store__qlink *store__queues_next(const store__qhash *h, const store__qlink *l);

/* As store__ids_destroy. */
void store__queues_destroy(store__qhash *h, size_t off);

#endif
