/* slab.h: the memory backend's records, carved from slabs: 64 KiB blocks mapped from the
 * system, each cut into records of one size (a multiple of 8 bytes). A record costs its size
 * rounded up to 8, with no allocator header beside it, and the common case of taking and
 * giving back one is a few pointer moves (malloc and free cost about 300 instructions a
 * message when a backlog keeps the store growing).
 *
 * Invariants: a slab is aligned to its size, so a record's slab is its address rounded down;
 * a slab is on its size's list of slabs with room iff it has a free record or unused space;
 * a slab whose last record goes is left in place, reset, when it is its size's only slab, else
 * kept for any size; past STORE__SLAB_KEEP + STORE__SLAB_BATCH kept ones, all but
 * STORE__SLAB_KEEP are unmapped together (a run of adjacent slabs in one call). Records larger
 * than STORE__SLAB_LARGEST bytes come from malloc. Zeroed to begin.
 */
#ifndef STORE_SLAB_H
#define STORE_SLAB_H

#include "order.h"

#include <stddef.h>
#include <stdint.h>

#define STORE__SLAB_SIZE ((size_t)64 * 1024)
#define STORE__SLAB_LARGEST 4096
#define STORE__SLAB_CLASSES (STORE__SLAB_LARGEST / 8 + 1)
#define STORE__SLAB_KEEP 8
#define STORE__SLAB_BATCH 32 /* emptied slabs past the kept ones, unmapped together */

typedef struct store__slab {
    struct store__slab *prev, *next; /* on its size's list of slabs with room, or kept */
    void *free;                      /* records given back, chained through their first word */
    uint32_t used;                   /* records handed out */
    uint32_t top;                    /* offset of the first byte never handed out */
    uint32_t size;                   /* each record's */
    uint32_t pad;
} store__slab;

typedef struct store__slabs {
    store__slab *room[STORE__SLAB_CLASSES]; /* by size / 8: the slabs with room */
    store__slab *kept;                      /* empty, for any size; chained through next */
    size_t nkept;
    size_t mapped; /* bytes of slabs mapped, kept ones included */
} store__slabs;

/* The bytes a record of these lengths takes from a slab (or from malloc). */
static inline size_t store__slab_recsize(size_t hlen, size_t blen)
{
    return (sizeof(store__rec) + hlen + blen + 1 + 7) & ~(size_t)7;
}

/* A fresh slab for size (NULL without memory), on its list. */
store__slab *store__slab_grow(store__slabs *a, size_t size);
/* sl has no record handed out left (and was on its size's list). */
void store__slab_emptied(store__slabs *a, store__slab *sl);

/* Memory for a record of n bytes (store__slab_recsize): NULL without memory. */
static inline void *store__slab_get(store__slabs *a, size_t n)
{
    if (n > STORE__SLAB_LARGEST)
        return malloc(n);
    store__slab *sl = a->room[n >> 3];
    if (!sl && !(sl = store__slab_grow(a, n)))
        return NULL;
    void *p = sl->free;
    if (p) {
        memcpy(&sl->free, p, sizeof sl->free);
    } else {
        p = (char *)sl + sl->top;
        sl->top += (uint32_t)n;
    }
    sl->used++;
    if (!sl->free && sl->top + n > STORE__SLAB_SIZE) { /* full: off the list */
        a->room[n >> 3] = sl->next;
        if (sl->next)
            sl->next->prev = NULL;
        sl->next = NULL;
    }
    return p;
}

/* Give back p, a record of n bytes from store__slab_get. */
static inline void store__slab_put(store__slabs *a, void *p, size_t n)
{
    if (n > STORE__SLAB_LARGEST) {
        free(p);
        return;
    }
    store__slab *sl = (store__slab *)((uintptr_t)p & ~(uintptr_t)(STORE__SLAB_SIZE - 1));
    if (!sl->free && sl->top + n > STORE__SLAB_SIZE) { /* was full: back on the list */
        sl->prev = NULL;
        sl->next = a->room[n >> 3];
        if (sl->next)
            sl->next->prev = sl;
        a->room[n >> 3] = sl;
    }
    memcpy(p, &sl->free, sizeof sl->free);
    sl->free = p;
    if (--sl->used == 0)
        store__slab_emptied(a, sl);
}

/* Unmap the kept slabs and every slab with no record in it. */
void store__slab_trim(store__slabs *a);

#endif
