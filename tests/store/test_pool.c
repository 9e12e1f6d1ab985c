/* test_pool.c: the record pool of store/order.h: a record given back is handed out again for
 * the next record of its size class (and only of it), with the new record's contents; no
 * more than STORE__POOL_MAX bytes are kept; records too large for a class are freed; drain
 * frees everything (ASan's leak check in `make SANITIZE=1 check` holds it to that).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "order.h"

static store__rec *rec(store__pool *p, const char *h, size_t blen)
{
    static char body[8192];
    memset(body, 'b', sizeof body);
    store__rec *r = store__rec_new(p, NULL, h, strlen(h), body, blen);
    assert_non_null(r);
    return r;
}

static void test_reuse_same_class(void **state)
{
    (void)state;
    store__pool p = { 0 };
    store__rec *a = rec(&p, "x:1\n", 100);
    a->redeliveries = 7;
    a->prio = 9;
    size_t size = STORE__REC_SIZE(a);
    store__rec_free(&p, a);
    size_t kept = p.bytes;
    /* What is kept is malloc's chunk: the size and an 8-byte header, rounded up to 16. */
    assert_true(kept >= size + 8 && kept < size + 8 + 16);
    assert_int_equal(kept % 16, 0);
    /* A record of the same size class gets a's memory, freshly set. */
    store__rec *b = rec(&p, "y:22\n", 99);
    assert_ptr_equal(b, a);
    assert_int_equal(p.bytes, 0);
    assert_int_equal(b->redeliveries, 0);
    assert_int_equal(b->prio, STORE_PRIORITY_DEFAULT);
    assert_int_equal(b->state, STORE__PENDING);
    assert_int_equal(b->hlen, 5);
    assert_int_equal(b->blen, 99);
    assert_memory_equal(b->data, "y:22\n", 5);
    assert_int_equal(b->data[5 + 99], '\0');
    /* Another class does not. */
    store__rec_free(&p, b);
    store__rec *c = rec(&p, "x:1\n", 400);
    assert_ptr_not_equal(c, b);
    assert_int_equal(p.bytes, kept);
    store__rec_free(&p, c);
    store__pool_drain(&p);
    assert_int_equal(p.bytes, 0);
    for (size_t i = 0; i < STORE__POOL_CLASSES; i++)
        assert_null(p.spare[i]);
}

static void test_bounded(void **state)
{
    (void)state;
    store__pool p = { 0 };
    enum { N = 2000 };
    store__rec **rs = malloc(N * sizeof *rs);
    assert_non_null(rs);
    for (int i = 0; i < N; i++)
        rs[i] = rec(&p, "h:v\n", 1000);
    for (int i = 0; i < N; i++)
        store__rec_free(&p, rs[i]);
    /* About 1 KiB each: the pool stops at its limit and frees the rest. */
    assert_true(p.bytes <= STORE__POOL_MAX);
    assert_true(p.bytes > STORE__POOL_MAX - 2048);
    /* Records past the largest class are never kept. */
    size_t before = p.bytes;
    store__rec_free(&p, rec(&p, "h:v\n", STORE__POOL_CLASSES * 16));
    assert_int_equal(p.bytes, before);
    store__pool_drain(&p);
    assert_int_equal(p.bytes, 0);
    free(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse_same_class),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
