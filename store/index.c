/* index.c: the growing, walking and freeing of the hashes of index.h (the hot half is inline
 * there), and the heap.
 *
 * Owns the bucket arrays; destroy also frees the linked objects. Growth doubles (records from
 * 64 buckets, queues from 16) until the wanted count fits one per bucket and rehashes in one
 * pass (a hash may hold up to 2^shift records a bucket instead: store__ids_reserve_at); on
 * failure the old array stays in place, untouched. The records' array shrinks to a
 * quarter once an eighth of it is used (store__ids_shrink), so a drained backlog does not
 * keep its buckets.
 */
#include "index.h"

#include <stdbool.h>
#include <stdlib.h>

/* Bucket count after doubling from cap (or starting at first) until need fits; 0 on overflow. */
static size_t grown_cap(size_t cap, size_t first, size_t need)
{
    size_t ncap = first;
    if (cap)
        ncap = cap <= SIZE_MAX / 2 ? cap * 2 : 0;
    while (ncap && ncap < need)
        ncap = ncap <= SIZE_MAX / 2 ? ncap * 2 : 0;
    return ncap;
}

/* Every record into a fresh array of ncap buckets; false (h untouched) without memory. */
static bool ids_rehash(store__idhash *h, size_t ncap)
{
    store__idlink **nb = ncap ? calloc(ncap, sizeof *nb) : NULL;
    if (!nb)
        return false;
    store__idlink **old = h->b;
    size_t ocap = h->cap;
    h->b = nb;
    h->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        for (store__idlink *l = old[i], *n; l; l = n) {
            n = l->next;
            size_t k = store__ids_slot(h, l->id);
            l->next = nb[k];
            nb[k] = l;
        }
    }
    free(old);
    return true;
}

store_err store__ids_grow_at(store__idhash *h, size_t more, unsigned shift)
{
    if (more > SIZE_MAX - h->n)
        return STORE_E_NOMEM;
    size_t need = h->n + more;
    need = (need >> shift) + ((need & (((size_t)1 << shift) - 1)) != 0);
    return ids_rehash(h, grown_cap(h->cap, 64, need)) ? STORE_OK : STORE_E_NOMEM;
}

void store__ids_shrink_now(store__idhash *h)
{
    (void)ids_rehash(h, h->cap / 4); /* without memory the larger array simply stays */
}

static store__idlink *ids_scan(const store__idhash *h, size_t from)
{
    for (size_t i = from; i < h->cap; i++)
        if (h->b[i])
            return h->b[i];
    return NULL;
}

store__idlink *store__ids_first(const store__idhash *h)
{
    return ids_scan(h, 0);
}

store__idlink *store__ids_next(const store__idhash *h, const store__idlink *l)
{
    return l->next ? l->next : ids_scan(h, store__ids_slot(h, l->id) + 1);
}

void store__ids_destroy(store__idhash *h, size_t off)
{
    for (store__idlink *l = store__ids_first(h), *n; l; l = n) {
        n = store__ids_next(h, l);
        free((char *)l - off);
    }
    free(h->b);
    h->b = NULL;
    h->cap = h->n = 0;
}

store_err store__queues_grow(store__qhash *h, size_t more)
{
    if (more > SIZE_MAX - h->n)
        return STORE_E_NOMEM;
    size_t ncap = grown_cap(h->cap, 16, h->n + more);
    store__qlink **nb = ncap ? calloc(ncap, sizeof *nb) : NULL;
    if (!nb)
        return STORE_E_NOMEM;
    for (size_t i = 0; i < h->cap; i++) {
        for (store__qlink *l = h->b[i], *n; l; l = n) {
            n = l->next;
            size_t k = (size_t)l->hash & (ncap - 1);
            l->next = nb[k];
            nb[k] = l;
        }
    }
    free(h->b);
    h->b = nb;
    h->cap = ncap;
    return STORE_OK;
}

static store__qlink *queues_scan(const store__qhash *h, size_t from)
{
    for (size_t i = from; i < h->cap; i++)
        if (h->b[i])
            return h->b[i];
    return NULL;
}

store__qlink *store__queues_first(const store__qhash *h)
{
    return queues_scan(h, 0);
}

store__qlink *store__queues_next(const store__qhash *h, const store__qlink *l)
{
    return l->next ? l->next : queues_scan(h, ((size_t)l->hash & (h->cap - 1)) + 1);
}

void store__queues_destroy(store__qhash *h, size_t off)
{
    for (store__qlink *l = store__queues_first(h), *n; l; l = n) {
        n = store__queues_next(h, l);
        free((char *)l - off);
    }
    free(h->b);
    h->b = NULL;
    h->cap = h->n = 0;
}

/* ---- the heap ---- */

static int heap_less(const store__heapent *a, const store__heapent *b)
{
    return a->key < b->key || (a->key == b->key && a->tie < b->tie);
}

/* Put x at index i, telling its object where it is. */
static void heap_set(store__heap *h, size_t i, store__heapent x)
{
    h->e[i] = x;
    if (h->track)
        *(uint32_t *)(void *)((char *)x.p + h->track - 1) = (uint32_t)i;
}

static void sift_up(store__heap *h, size_t i, store__heapent x)
{
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!heap_less(&x, &h->e[up]))
            break;
        heap_set(h, i, h->e[up]);
        i = up;
    }
    heap_set(h, i, x);
}

static void sift_down(store__heap *h, size_t i, store__heapent x)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && heap_less(&h->e[c + 1], &h->e[c]))
            c++;
        if (!heap_less(&h->e[c], &x))
            break;
        heap_set(h, i, h->e[c]);
        i = c;
    }
    heap_set(h, i, x);
}

store_err store__heap_reserve(store__heap *h, size_t want, size_t *acct)
{
    if (want <= h->cap)
        return STORE_OK;
    if (want >= STORE__NOPOS)
        return STORE_E_NOMEM;
    size_t ncap = h->cap ? h->cap : 8;
    while (ncap < want && ncap <= SIZE_MAX / 2)
        ncap *= 2;
    if (ncap >= STORE__NOPOS)
        ncap = STORE__NOPOS - 1;
    if (ncap < want || ncap > SIZE_MAX / sizeof *h->e)
        return STORE_E_NOMEM;
    store__heapent *ne = realloc(h->e, ncap * sizeof *ne);
    if (!ne)
        return STORE_E_NOMEM;
    if (acct)
        *acct += (ncap - h->cap) * sizeof *ne;
    h->e = ne;
    h->cap = ncap;
    return STORE_OK;
}

void store__heap_push(store__heap *h, uint64_t key, uint64_t tie, void *p)
{
    store__heapent x = { key, tie, p };
    sift_up(h, h->n++, x);
}

void store__heap_remove(store__heap *h, size_t i)
{
    if (h->track)
        *(uint32_t *)(void *)((char *)h->e[i].p + h->track - 1) = STORE__NOPOS;
    store__heapent x = h->e[--h->n];
    if (i == h->n)
        return;
    /* The last entry fills the hole: it goes up or down from there. */
    if (i > 0 && heap_less(&x, &h->e[(i - 1) / 2]))
        sift_up(h, i, x);
    else
        sift_down(h, i, x);
}

void store__heap_pop(store__heap *h)
{
    store__heap_remove(h, 0);
}

void store__heap_free(store__heap *h, size_t *acct)
{
    if (acct)
        *acct -= h->cap * sizeof *h->e;
    free(h->e);
    h->e = NULL;
    h->n = h->cap = 0;
}
