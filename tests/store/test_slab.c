/* test_slab.c: the record slabs of store/slab.h: records of one size share a slab, aligned,
 * 8-byte steps, without overlap; a record given back is the next one handed out; a slab
 * whose records all go is unmapped past the few kept, its size's only slab stays (reset),
 * and trim unmaps every empty one; records past the largest size come from malloc. ASan's
 * leak check in `make SANITIZE=1 check` holds the malloc'd ones to their frees.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "slab.h"

static void test_sizes(void **state)
{
    (void)state;
    /* The header, the lengths and a NUL, rounded up to 8. */
    assert_int_equal(store__slab_recsize(0, 0), (sizeof(store__rec) + 1 + 7) & ~(size_t)7);
    assert_int_equal(store__slab_recsize(3, 100) % 8, 0);
    assert_true(store__slab_recsize(3, 100) >= sizeof(store__rec) + 104);
    assert_true(store__slab_recsize(3, 100) < sizeof(store__rec) + 104 + 8);
}

static void test_carve_and_reuse(void **state)
{
    (void)state;
    store__slabs a;
    memset(&a, 0, sizeof a);
    const size_t n = store__slab_recsize(3, 100);
    enum { N = 1000 };
    char *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = store__slab_get(&a, n);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % 8, 0);
        memset(p[i], i & 0xff, n);
    }
    /* Records of one slab follow each other; each slab holds as many as fit. */
    size_t per = (STORE__SLAB_SIZE - sizeof(store__slab)) / n;
    assert_int_equal(a.mapped, ((N + per - 1) / per) * STORE__SLAB_SIZE);
    for (int i = 1; i < N; i++)
        if (i % (int)per)
            assert_ptr_equal(p[i], p[i - 1] + n);
    for (int i = 0; i < N; i++)
        for (size_t k = 0; k < n; k++)
            assert_int_equal((unsigned char)p[i][k], i & 0xff);
    /* A record given back is the next handed out, in a full slab or not. */
    store__slab_put(&a, p[5], n);
    assert_ptr_equal(store__slab_get(&a, n), p[5]);
    store__slab_put(&a, p[N - 1], n);
    assert_ptr_equal(store__slab_get(&a, n), p[N - 1]);
    /* Another size takes a slab of its own. */
    size_t before = a.mapped;
    char *q = store__slab_get(&a, n + 8);
    assert_int_equal(a.mapped, before + STORE__SLAB_SIZE);
    store__slab_put(&a, q, n + 8);
    /* Its only slab stays when it empties; trim unmaps it. */
    assert_int_equal(a.mapped, before + STORE__SLAB_SIZE);
    for (int i = 0; i < N; i++)
        store__slab_put(&a, p[i], n);
    /* Every slab is empty: the last of its size stays, the others are kept (as many as
     * STORE__SLAB_KEEP allows; the rest would be unmapped), besides the other size's slab. */
    size_t nslabs = (N + per - 1) / per;
    assert_true(nslabs >= 2 && nslabs - 1 <= STORE__SLAB_KEEP);
    assert_int_equal(a.nkept, nslabs - 1);
    assert_int_equal(a.mapped, (nslabs + 1) * STORE__SLAB_SIZE);
    store__slab_trim(&a);
    assert_int_equal(a.mapped, 0);
    assert_int_equal(a.nkept, 0);
    for (size_t c = 0; c < STORE__SLAB_CLASSES; c++)
        assert_null(a.room[c]);
}

static void test_kept_slab_serves_any_size(void **state)
{
    (void)state;
    store__slabs a;
    memset(&a, 0, sizeof a);
    const size_t n = 200;
    size_t per = (STORE__SLAB_SIZE - sizeof(store__slab)) / n;
    /* Two slabs of one size; emptying the first keeps it (the second is still there). */
    char **p = malloc((per + 1) * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i <= per; i++)
        p[i] = store__slab_get(&a, n);
    assert_int_equal(a.mapped, 2 * STORE__SLAB_SIZE);
    for (size_t i = 0; i < per; i++)
        store__slab_put(&a, p[i], n);
    assert_int_equal(a.nkept, 1);
    /* Another size gets the kept slab: nothing more is mapped. */
    char *q = store__slab_get(&a, 1000);
    assert_int_equal(a.nkept, 0);
    assert_int_equal(a.mapped, 2 * STORE__SLAB_SIZE);
    assert_ptr_equal((void *)((uintptr_t)q & ~(uintptr_t)(STORE__SLAB_SIZE - 1)),
                     (void *)((uintptr_t)p[0] & ~(uintptr_t)(STORE__SLAB_SIZE - 1)));
    store__slab_put(&a, q, 1000);
    store__slab_put(&a, p[per], n);
    store__slab_trim(&a);
    assert_int_equal(a.mapped, 0);
    free(p);
}

static void test_unmapped_past_the_kept(void **state)
{
    (void)state;
    store__slabs a;
    memset(&a, 0, sizeof a);
    const size_t n = 512;
    size_t per = (STORE__SLAB_SIZE - sizeof(store__slab)) / n;
    size_t nslabs = STORE__SLAB_KEEP + STORE__SLAB_BATCH + 4;
    size_t count = nslabs * per;
    char **p = malloc(count * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < count; i++)
        assert_non_null(p[i] = store__slab_get(&a, n));
    assert_int_equal(a.mapped, nslabs * STORE__SLAB_SIZE);
    /* The first slab emptied is the only one of its size with room: it stays, reset. Up to
     * STORE__SLAB_KEEP + STORE__SLAB_BATCH more are all kept: nothing is unmapped one slab
     * at a time while a backlog swings (each munmap splits the system's mapping and flushes
     * the TLB). */
    size_t i = 0;
    for (; i < (STORE__SLAB_KEEP + STORE__SLAB_BATCH + 1) * per; i++)
        store__slab_put(&a, p[i], n);
    assert_int_equal(a.nkept, STORE__SLAB_KEEP + STORE__SLAB_BATCH);
    assert_int_equal(a.mapped, nslabs * STORE__SLAB_SIZE);
    /* One more: all but STORE__SLAB_KEEP go together, the highest addresses stay. */
    for (; i < (STORE__SLAB_KEEP + STORE__SLAB_BATCH + 2) * per; i++)
        store__slab_put(&a, p[i], n);
    assert_int_equal(a.nkept, STORE__SLAB_KEEP);
    assert_int_equal(a.mapped, (nslabs - STORE__SLAB_BATCH - 1) * STORE__SLAB_SIZE);
    uintptr_t low = UINTPTR_MAX;
    for (store__slab *sl = a.kept; sl; sl = sl->next)
        low = (uintptr_t)sl < low ? (uintptr_t)sl : low;
    size_t above = 0;
    for (size_t s = 0; s < nslabs; s++) {
        uintptr_t at = (uintptr_t)p[s * per] & ~(uintptr_t)(STORE__SLAB_SIZE - 1);
        above += s >= 1 && s < STORE__SLAB_KEEP + STORE__SLAB_BATCH + 2 && at > low;
    }
    assert_int_equal(above, STORE__SLAB_KEEP - 1);
    /* The rest: two more kept. */
    for (; i < count; i++)
        store__slab_put(&a, p[i], n);
    assert_int_equal(a.nkept, STORE__SLAB_KEEP + 2);
    assert_int_equal(a.mapped, (STORE__SLAB_KEEP + 3) * STORE__SLAB_SIZE);
    store__slab_trim(&a);
    assert_int_equal(a.mapped, 0);
    assert_int_equal(a.nkept, 0);
    free(p);
}

static void test_large_from_malloc(void **state)
{
    (void)state;
    store__slabs a;
    memset(&a, 0, sizeof a);
    char *big = store__slab_get(&a, STORE__SLAB_LARGEST + 8);
    assert_non_null(big);
    memset(big, 'x', STORE__SLAB_LARGEST + 8);
    assert_int_equal(a.mapped, 0);
    char *edge = store__slab_get(&a, STORE__SLAB_LARGEST);
    assert_int_equal(a.mapped, STORE__SLAB_SIZE);
    store__slab_put(&a, edge, STORE__SLAB_LARGEST);
    store__slab_put(&a, big, STORE__SLAB_LARGEST + 8);
    store__slab_trim(&a);
    assert_int_equal(a.mapped, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_carve_and_reuse),
        cmocka_unit_test(test_kept_slab_serves_any_size),
        cmocka_unit_test(test_unmapped_past_the_kept),
        cmocka_unit_test(test_large_from_malloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
