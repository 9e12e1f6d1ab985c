/* slab.c: mapping, keeping and unmapping the slabs of slab.h (taking and giving back records
 * is inline there). A slab is mapped where the system puts it when that is aligned (it
 * usually is: the system places each new mapping just below the last), else from a mapping
 * twice its size, trimmed to the aligned half.
 */
#include "slab.h"

#include <stdlib.h>
#include <sys/mman.h>

static void *map_aligned(void)
{
    const size_t z = STORE__SLAB_SIZE;
    char *p = mmap(NULL, z, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (((uintptr_t)p & (z - 1)) == 0)
        return p;
    (void)munmap(p, z);
    p = mmap(NULL, 2 * z, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    size_t lead = (z - ((uintptr_t)p & (z - 1))) & (z - 1);
    if (lead)
        (void)munmap(p, lead);
    (void)munmap(p + lead + z, z - lead);
    return p + lead;
}

static void unmap(store__slabs *a, store__slab *sl)
{
    (void)munmap(sl, STORE__SLAB_SIZE);
    a->mapped -= STORE__SLAB_SIZE;
}

static void unlink_room(store__slabs *a, store__slab *sl)
{
    if (sl->prev)
        sl->prev->next = sl->next;
    else
        a->room[sl->size >> 3] = sl->next;
    if (sl->next)
        sl->next->prev = sl->prev;
    sl->prev = sl->next = NULL;
}

store__slab *store__slab_grow(store__slabs *a, size_t size)
{
    store__slab *sl = a->kept;
    if (sl) {
        a->kept = sl->next;
        a->nkept--;
    } else {
        if (!(sl = map_aligned()))
            return NULL;
        a->mapped += STORE__SLAB_SIZE;
    }
    *sl = (store__slab){ .prev = NULL, .next = a->room[size >> 3], .free = NULL, .used = 0,
                         .top = sizeof *sl, .size = (uint32_t)size };
    if (sl->next)
        sl->next->prev = sl;
    a->room[size >> 3] = sl;
    return sl;
}

static int by_address(const void *x, const void *y)
{
    uintptr_t a = (uintptr_t) * (store__slab *const *)x, b = (uintptr_t) * (store__slab *const *)y;
    return (a > b) - (a < b);
}

/* Unmap the kept slabs but the last `keep` by address, each run of adjacent ones with one
 * munmap: unmapping one slab from the middle of the system's merged mapping splits it and
 * flushes the TLB each time, about 60 us a call under load, where a run costs one call. */
static void release_kept(store__slabs *a, size_t keep)
{
    store__slab *v[STORE__SLAB_KEEP + STORE__SLAB_BATCH + 1];
    size_t n = 0;
    for (store__slab *sl = a->kept; sl && n < sizeof v / sizeof *v; sl = sl->next)
        v[n++] = sl;
    if (n <= keep)
        return;
    qsort(v, n, sizeof *v, by_address);
    for (size_t i = 0, j; i < n - keep; i = j) {
        for (j = i + 1; j < n - keep && (char *)v[j] == (char *)v[j - 1] + STORE__SLAB_SIZE; j++)
            ;
        (void)munmap(v[i], (j - i) * STORE__SLAB_SIZE);
        a->mapped -= (j - i) * STORE__SLAB_SIZE;
    }
    a->kept = NULL;
    for (size_t i = n; i-- > n - keep;) {
        v[i]->next = a->kept;
        a->kept = v[i];
    }
    a->nkept = keep;
}

void store__slab_emptied(store__slabs *a, store__slab *sl)
{
    /* A size's only slab stays, reset: a queue that keeps emptying does not map and unmap. */
    if (!sl->prev && !sl->next) {
        sl->free = NULL;
        sl->top = sizeof *sl;
        return;
    }
    unlink_room(a, sl);
    sl->next = a->kept;
    a->kept = sl;
    if (++a->nkept > STORE__SLAB_KEEP + STORE__SLAB_BATCH)
        release_kept(a, STORE__SLAB_KEEP);
}

void store__slab_trim(store__slabs *a)
{
    release_kept(a, 0);
    for (size_t c = 0; c < STORE__SLAB_CLASSES; c++) {
        for (store__slab *sl = a->room[c], *next; sl; sl = next) {
            next = sl->next;
            if (sl->used == 0) {
                unlink_room(a, sl);
                unmap(a, sl);
            }
        }
    }
}
