/* test_memory_release.c: the memory backend gives memory back once a backlog drains: its id
 * index (two records a bucket) shrinks with its records (resident() drops back near an empty
 * store's figure), and its empty record slabs are unmapped, so the memory goes back to the
 * system. And the memory backend's record sizes at their bounds: lengths past 32 bits
 * refused, the largest slab record and the smallest malloc'd one kept whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "slab.h"
#include "store.h"

enum { N = 200000 };

static void fill(const store_ops *ops, store *s, int n)
{
    char body[100];
    memset(body, 'b', sizeof body);
    for (int i = 0; i < n; i++) {
        uint64_t id;
        assert_int_equal(ops->enqueue(s, "q", 1, "h:1\n", 4, body, sizeof body, &id), STORE_OK);
    }
    assert_int_equal(ops->commit(s, NULL, NULL), STORE_DONE);
}

static void drain(const store_ops *ops, store *s, int n)
{
    for (int i = 0; i < n; i++) {
        store_msg m;
        assert_int_equal(ops->take(s, "q", 1, &m), STORE_OK);
        assert_int_equal(ops->ack(s, m.id), STORE_OK);
    }
    assert_int_equal(ops->commit(s, NULL, NULL), STORE_DONE);
}

static void test_drained_backlog_returns_memory(void **state)
{
    (void)state;
    const store_ops *ops = store_memory_backend();
    store_options o;
    memset(&o, 0, sizeof o);
    store *s = NULL;
    assert_int_equal(ops->open(&o, &s), STORE_OK);
    size_t empty = ops->resident(s);
    fill(ops, s, N);
    size_t full = ops->resident(s);
    /* Each record (its header, 4 B of headers, 100 B of body) and its id bucket. */
    assert_true(full > empty + (size_t)N * 104);
    /* The id index holds two records a bucket: 131,072 buckets (5.2 B a record) here, where
     * one a bucket took 262,144 (10.5 B). */
    assert_true(full <= empty + (size_t)N * (store__slab_recsize(4, 100) + 6) + 4096);
    drain(ops, s, N);
    size_t drained = ops->resident(s);
    /* Without the index shrinking, 256 Ki buckets (2 MiB) stayed. */
    assert_true(drained <= empty + 64 * 1024);

    /* Again, with some messages left: the index holds what is left and finds each one. */
    fill(ops, s, N);
    drain(ops, s, N - 1000);
    assert_true(ops->resident(s) <= empty + 1000 * 256 + 64 * 1024);
    drain(ops, s, 1000);
    store_msg m;
    assert_int_equal(ops->take(s, "q", 1, &m), STORE_E_EMPTY);
    ops->close(s);
}

/* A record keeps its lengths in 32 bits: a longer header block or body is refused as out of
 * memory before a byte of it is read, and the store is as it was. */
static void test_oversized_refused(void **state)
{
    (void)state;
    const store_ops *ops = store_memory_backend();
    store_options o;
    memset(&o, 0, sizeof o);
    store *s = NULL;
    assert_int_equal(ops->open(&o, &s), STORE_OK);
    size_t empty = ops->resident(s);
    char b[1] = { 'b' };
    uint64_t id;
    assert_int_equal(ops->enqueue(s, "q", 1, "", 0, b, STORE__REC_MAXLEN + 1, &id),
                     STORE_E_NOMEM);
    assert_int_equal(ops->enqueue(s, "q", 1, b, STORE__REC_MAXLEN + 1, b, 1, &id),
                     STORE_E_NOMEM);
    store_target t = { .queue = "q", .queue_len = 1, .hash = store_hash_name("q", 1) };
    assert_int_equal(ops->enqueue_shared(s, &t, 1, "", 0, b, STORE__REC_MAXLEN + 1),
                     STORE_E_NOMEM);
    assert_int_equal(ops->commit(s, NULL, NULL), STORE_DONE);
    assert_int_equal(ops->depth(s, "q", 1), 0);
    assert_int_equal(ops->resident(s), empty);
    /* The largest record a slab takes, and the smallest that comes from malloc: both kept
     * whole, and one left queued at close is freed (ASan's leak check). */
    enum { BIG = STORE__SLAB_LARGEST + 8 };
    static char body[BIG];
    size_t fits = STORE__SLAB_LARGEST - sizeof(store__rec) - 1;
    assert_int_equal(store__slab_recsize(0, fits), STORE__SLAB_LARGEST);
    assert_true(store__slab_recsize(0, fits + 1) > STORE__SLAB_LARGEST);
    for (size_t len = fits; len <= fits + 1; len++) {
        memset(body, (int)('a' + len - fits), len);
        assert_int_equal(ops->enqueue(s, "q", 1, "", 0, body, len, &id), STORE_OK);
    }
    assert_int_equal(ops->commit(s, NULL, NULL), STORE_DONE);
    store_msg m;
    assert_int_equal(ops->take(s, "q", 1, &m), STORE_OK);
    assert_int_equal(m.body_len, fits);
    memset(body, 'a', fits);
    assert_memory_equal(m.body, body, fits);
    assert_int_equal(m.body[fits], '\0');
    assert_int_equal(ops->ack(s, m.id), STORE_OK);
    assert_int_equal(ops->take(s, "q", 1, &m), STORE_OK);
    assert_int_equal(m.body_len, fits + 1);
    memset(body, 'b', fits + 1);
    assert_memory_equal(m.body, body, fits + 1);
    assert_int_equal(m.body[fits + 1], '\0');
    ops->close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drained_backlog_returns_memory),
        cmocka_unit_test(test_oversized_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
