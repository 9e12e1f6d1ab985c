/* test_index.c: the in-memory index of store/index.h: records by id (bucket collisions, growth
 * across doublings, removal while walking, shrinking as records go), queues by name (lengths,
 * embedded bytes, growth), the record lists, the heap (order, entries removed from the middle
 * through the index their objects track), and growth failing at its k-th allocation
 * (unchanged, usable, no leak).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"

#include "failalloc.h"

typedef struct rec {
    store__idlink il;
    store__dlink dl;
    int visits;
} rec;

typedef struct qrec {
    store__qlink ql;
    char name[24];
    size_t len;
    int visits;
} qrec;

#define REC(l) store__container_of((l), rec, il)
#define QREC(l) store__container_of((l), qrec, ql)

/* Smallest power of two >= n, at least first. */
static size_t want_cap(size_t n, size_t first)
{
    size_t c = first;
    while (c < n)
        c *= 2;
    return c;
}

static size_t count_ids_walk(const store__idhash *h)
{
    size_t k = 0;
    for (store__idlink *l = store__ids_first(h); l; l = store__ids_next(h, l))
        k++;
    return k;
}

static size_t count_queues_walk(const store__qhash *h)
{
    size_t k = 0;
    for (store__qlink *l = store__queues_first(h); l; l = store__queues_next(h, l))
        k++;
    return k;
}

/* ---- records by id ---- */

static void test_ids_empty(void **state)
{
    (void)state;
    store__idhash h = {0};
    assert_null(store__ids_find(&h, 0));
    assert_null(store__ids_find(&h, 42));
    assert_null(store__ids_first(&h));
    assert_int_equal(store__ids_reserve(&h, 0), STORE_OK);
    assert_int_equal(h.cap, 0);
    assert_int_equal(store__ids_reserve(&h, 1), STORE_OK);
    assert_int_equal(h.cap, 64);
    assert_int_equal(h.n, 0);
    assert_null(store__ids_find(&h, 42));
    assert_null(store__ids_first(&h));
    /* An impossible count fails without touching the table. */
    store__idlink **b = h.b;
    assert_int_equal(store__ids_reserve(&h, SIZE_MAX), STORE_E_NOMEM);
    assert_ptr_equal(h.b, b);
    assert_int_equal(h.cap, 64);
    store__ids_destroy(&h, offsetof(rec, il));
    assert_null(h.b);
    assert_int_equal(h.cap, 0);
    assert_int_equal(h.n, 0);
}

static uint64_t spread_id(size_t i)
{
    /* Sequential ids plus the extremes and a few scattered ones. */
    if (i == 0)
        return 0;
    if (i == 1)
        return UINT64_MAX;
    if (i % 7 == 0)
        return (uint64_t)i * 0xd1b54a32d192ed03ull;
    return (uint64_t)i;
}

static void test_ids_many(void **state)
{
    (void)state;
    enum { N = 10000 };
    rec *r = calloc(N, sizeof *r);
    assert_non_null(r);
    store__idhash h = {0};
    for (size_t i = 0; i < N; i++) {
        r[i].il.id = spread_id(i);
        assert_null(store__ids_find(&h, r[i].il.id));
        assert_int_equal(store__ids_reserve(&h, 1), STORE_OK);
        store__ids_insert(&h, &r[i].il);
        assert_int_equal(h.n, i + 1);
        /* Doubling from 64 until one record per bucket: 64 .. 16384. */
        assert_int_equal(h.cap, want_cap(i + 1, 64));
        assert_ptr_equal(store__ids_find(&h, r[i].il.id), &r[i].il);
    }
    assert_int_equal(h.cap, 16384);
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal(store__ids_find(&h, r[i].il.id), &r[i].il);
    assert_null(store__ids_find(&h, (uint64_t)N + 1000));
    assert_null(store__ids_find(&h, UINT64_MAX - 1));
    assert_int_equal(count_ids_walk(&h), N);

    /* Remove the odd ones: the even ones stay, the odd ones are gone. */
    for (size_t i = 1; i < N; i += 2)
        store__ids_remove(&h, &r[i].il);
    assert_int_equal(h.n, N / 2);
    for (size_t i = 0; i < N; i++) {
        if (i % 2)
            assert_null(store__ids_find(&h, r[i].il.id));
        else
            assert_ptr_equal(store__ids_find(&h, r[i].il.id), &r[i].il);
    }
    assert_int_equal(count_ids_walk(&h), N / 2);

    /* Put them back (no growth needed: the buckets stay). */
    size_t cap = h.cap;
    for (size_t i = 1; i < N; i += 2) {
        assert_int_equal(store__ids_reserve(&h, 1), STORE_OK);
        store__ids_insert(&h, &r[i].il);
    }
    assert_int_equal(h.cap, cap);
    assert_int_equal(h.n, N);
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal(store__ids_find(&h, r[i].il.id), &r[i].il);

    /* Reserving many at once jumps several doublings in one step. */
    assert_int_equal(store__ids_reserve(&h, 50000), STORE_OK);
    assert_int_equal(h.cap, 65536);
    assert_int_equal(h.n, N);
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal(store__ids_find(&h, r[i].il.id), &r[i].il);

    for (size_t i = 0; i < N; i++)
        store__ids_remove(&h, &r[i].il);
    assert_int_equal(h.n, 0);
    assert_null(store__ids_first(&h));
    /* Records are not malloc blocks here: destroy sees an empty table, frees the buckets. */
    store__ids_destroy(&h, offsetof(rec, il));
    free(r);
}

/* Two records a bucket (store__ids_reserve_at with shift 1, as the memory store keeps its
 * sequential ids): growth waits until the buckets hold two each, chains stay short, every
 * record is found and walked, removals and shrinking follow the same rule. */
static size_t longest_chain(const store__idhash *h)
{
    size_t most = 0;
    for (size_t i = 0; i < h->cap; i++) {
        size_t k = 0;
        for (const store__idlink *l = h->b[i]; l; l = l->next)
            k++;
        if (k > most)
            most = k;
    }
    return most;
}

static size_t buckets_used(const store__idhash *h)
{
    size_t k = 0;
    for (size_t i = 0; i < h->cap; i++)
        k += h->b[i] != NULL;
    return k;
}

/* Sequential ids (every store's) spread over the buckets: as many ids as buckets leave no
 * chain longer than two and at least three in four buckets used; twice as many fill every
 * bucket with chains of at most three. The bits from the middle of the product used before
 * left 7,126 of 16,384 buckets used, in chains of up to three (five at twice as many). */
static void test_ids_sequential_spread(void **state)
{
    (void)state;
    enum { N = 32768 };
    rec *r = calloc(N, sizeof *r);
    assert_non_null(r);
    store__idhash h = {0};
    assert_int_equal(store__ids_reserve(&h, N / 2), STORE_OK);
    assert_int_equal(h.cap, N / 2);
    for (size_t i = 0; i < N; i++) {
        r[i].il.id = 7 + i;
        store__ids_insert(&h, &r[i].il);
        if (i + 1 == N / 2) {
            assert_true(longest_chain(&h) <= 2);
            assert_true(buckets_used(&h) >= N / 2 * 3 / 4);
        }
    }
    assert_int_equal(buckets_used(&h), N / 2);
    assert_true(longest_chain(&h) <= 3);
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal(store__ids_find(&h, r[i].il.id), &r[i].il);
    free(h.b);
    free(r);
}

static void test_ids_two_a_bucket(void **state)
{
    (void)state;
    enum { N = 20000 };
    rec *r = calloc(N, sizeof *r);
    assert_non_null(r);
    store__idhash h = {0};
    for (size_t i = 0; i < N; i++) {
        r[i].il.id = i + 1;
        assert_int_equal(store__ids_reserve_at(&h, 1, 1), STORE_OK);
        store__ids_insert(&h, &r[i].il);
        /* 128 records in 64 buckets; the 129th doubles them. */
        assert_int_equal(h.cap, want_cap((i + 2) / 2, 64));
    }
    assert_int_equal(h.cap, 16384);
    assert_true(longest_chain(&h) <= 2);
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal(store__ids_find(&h, r[i].il.id), &r[i].il);
    assert_null(store__ids_find(&h, (uint64_t)N + 1));
    assert_int_equal(count_ids_walk(&h), N);

    /* Remove the odd ones, then the rest in id order: the array shrinks to a quarter once
     * an eighth of its room (two a bucket) is used. */
    for (size_t i = 1; i < N; i += 2)
        store__ids_remove(&h, &r[i].il);
    for (size_t i = 0; i < N; i++) {
        if (i % 2)
            assert_null(store__ids_find(&h, r[i].il.id));
        else
            assert_ptr_equal(store__ids_find(&h, r[i].il.id), &r[i].il);
    }
    assert_int_equal(count_ids_walk(&h), N / 2);
    size_t i = 0;
    for (; h.n > 16384 * 2 / 8 + 1; i += 2) {
        store__ids_remove(&h, &r[i].il);
        store__ids_shrink_at(&h, 1);
        assert_int_equal(h.cap, 16384);
    }
    store__ids_remove(&h, &r[i].il);
    i += 2;
    store__ids_shrink_at(&h, 1);
    assert_int_equal(h.n, 16384 * 2 / 8);
    assert_int_equal(h.cap, 4096);
    for (size_t k = i; k < N; k += 2)
        assert_ptr_equal(store__ids_find(&h, r[k].il.id), &r[k].il);
    assert_int_equal(count_ids_walk(&h), h.n);

    /* Many at once: room for n + 9000 at two a bucket is 8192 buckets, not 16384. */
    assert_int_equal(store__ids_reserve_at(&h, 9000, 1), STORE_OK);
    assert_int_equal(h.cap, 8192);
    /* Emptied, it keeps room for STORE__IDS_SHRINK_MIN records: half as many buckets. */
    for (size_t k = i; k < N; k += 2) {
        store__ids_remove(&h, &r[k].il);
        store__ids_shrink_at(&h, 1);
        assert_true(h.cap * 2 >= STORE__IDS_SHRINK_MIN);
    }
    assert_int_equal(h.n, 0);
    assert_int_equal(h.cap, STORE__IDS_SHRINK_MIN / 2);
    store__ids_destroy(&h, offsetof(rec, il));
    free(r);
}

static void test_ids_collisions(void **state)
{
    (void)state;
    enum { K = 6 };
    store__idhash h = {0};
    assert_int_equal(store__ids_reserve(&h, 1), STORE_OK);
    assert_int_equal(h.cap, 64);
    /* K ids in the same bucket of a 64-bucket table. */
    rec r[K];
    memset(r, 0, sizeof r);
    size_t slot = store__ids_slot(&h, 1000);
    size_t k = 0;
    for (uint64_t id = 1000; k < K; id++)
        if (store__ids_slot(&h, id) == slot)
            r[k++].il.id = id;
    for (size_t i = 0; i < K; i++)
        store__ids_insert(&h, &r[i].il);
    assert_int_equal(h.n, K);
    size_t chain = 0;
    for (store__idlink *l = h.b[slot]; l; l = l->next)
        chain++;
    assert_int_equal(chain, K);
    for (size_t i = 0; i < K; i++)
        assert_ptr_equal(store__ids_find(&h, r[i].il.id), &r[i].il);
    /* A colliding id that is not linked. */
    uint64_t absent = r[K - 1].il.id + 1;
    while (store__ids_slot(&h, absent) != slot)
        absent++;
    assert_null(store__ids_find(&h, absent));

    /* Remove from the middle, the head (last inserted) and the tail (first inserted). */
    store__ids_remove(&h, &r[2].il);
    store__ids_remove(&h, &r[K - 1].il);
    store__ids_remove(&h, &r[0].il);
    assert_int_equal(h.n, K - 3);
    assert_null(store__ids_find(&h, r[2].il.id));
    assert_null(store__ids_find(&h, r[K - 1].il.id));
    assert_null(store__ids_find(&h, r[0].il.id));
    assert_ptr_equal(store__ids_find(&h, r[1].il.id), &r[1].il);
    assert_ptr_equal(store__ids_find(&h, r[3].il.id), &r[3].il);
    assert_ptr_equal(store__ids_find(&h, r[4].il.id), &r[4].il);

    /* Grow across several doublings with the survivors linked: they move and stay found. */
    assert_int_equal(store__ids_reserve(&h, 1000), STORE_OK);
    assert_int_equal(h.cap, 1024);
    assert_ptr_equal(store__ids_find(&h, r[1].il.id), &r[1].il);
    assert_ptr_equal(store__ids_find(&h, r[3].il.id), &r[3].il);
    assert_ptr_equal(store__ids_find(&h, r[4].il.id), &r[4].il);
    assert_null(store__ids_find(&h, r[0].il.id));
    assert_int_equal(count_ids_walk(&h), K - 3);
    store__ids_remove(&h, &r[1].il);
    store__ids_remove(&h, &r[3].il);
    store__ids_remove(&h, &r[4].il);
    assert_int_equal(h.n, 0);
    store__ids_destroy(&h, offsetof(rec, il));
}

static void test_ids_remove_while_walking(void **state)
{
    (void)state;
    enum { N = 3000 };
    store__idhash h = {0};
    for (size_t i = 0; i < N; i++) {
        rec *r = calloc(1, sizeof *r);
        assert_non_null(r);
        r->il.id = i * 3 + 1;
        assert_int_equal(store__ids_reserve(&h, 1), STORE_OK);
        store__ids_insert(&h, &r->il);
    }
    /* Pass 1: remove and free every record with an even id while walking. */
    size_t visited = 0;
    for (store__idlink *l = store__ids_first(&h), *n; l; l = n) {
        n = store__ids_next(&h, l);
        rec *r = REC(l);
        assert_int_equal(r->visits, 0);
        r->visits++;
        visited++;
        if (l->id % 2 == 0) {
            store__ids_remove(&h, l);
            free(r);
        }
    }
    assert_int_equal(visited, N);
    assert_int_equal(h.n, N / 2);
    for (size_t i = 0; i < N; i++) {
        uint64_t id = i * 3 + 1;
        store__idlink *l = store__ids_find(&h, id);
        if (id % 2 == 0) {
            assert_null(l);
        } else {
            assert_non_null(l);
            assert_int_equal(REC(l)->visits, 1);
        }
    }
    /* Pass 2: remove and free all the rest; each one still visited exactly once. */
    visited = 0;
    for (store__idlink *l = store__ids_first(&h), *n; l; l = n) {
        n = store__ids_next(&h, l);
        rec *r = REC(l);
        assert_int_equal(l->id % 2, 1);
        assert_int_equal(r->visits, 1);
        r->visits++;
        visited++;
        store__ids_remove(&h, l);
        free(r);
    }
    assert_int_equal(visited, N / 2);
    assert_int_equal(h.n, 0);
    assert_null(store__ids_first(&h));
    store__ids_destroy(&h, offsetof(rec, il));
}

static void test_ids_destroy_frees_records(void **state)
{
    (void)state;
    store__idhash h = {0};
    for (uint64_t id = 1; id <= 500; id++) {
        rec *r = calloc(1, sizeof *r);
        assert_non_null(r);
        r->il.id = id;
        assert_int_equal(store__ids_reserve(&h, 1), STORE_OK);
        store__ids_insert(&h, &r->il);
    }
    assert_int_equal(h.n, 500);
    /* Under the sanitizer a record left behind is a leak report. */
    store__ids_destroy(&h, offsetof(rec, il));
    assert_null(h.b);
    assert_int_equal(h.cap, 0);
    assert_int_equal(h.n, 0);
    assert_null(store__ids_find(&h, 1));
}

/* Removing down to an eighth of the buckets shrinks them to a quarter (not below
 * STORE__IDS_SHRINK_MIN); every record left is still found, and the walk sees each once. */
static void test_ids_shrink(void **state)
{
    (void)state;
    enum { N = 40000 };
    rec *r = calloc(N, sizeof *r);
    assert_non_null(r);
    store__idhash h = {0};
    for (size_t i = 0; i < N; i++) {
        r[i].il.id = spread_id(i);
        assert_int_equal(store__ids_reserve(&h, 1), STORE_OK);
        store__ids_insert(&h, &r[i].il);
    }
    assert_int_equal(h.cap, 65536);
    size_t i = 0;
    for (; h.n > 65536 / 8 + 1; i++) {
        store__ids_remove(&h, &r[i].il);
        store__ids_shrink(&h);
        assert_int_equal(h.cap, 65536);
    }
    store__ids_remove(&h, &r[i++].il);
    store__ids_shrink(&h);
    assert_int_equal(h.n, 65536 / 8);
    assert_int_equal(h.cap, 16384);
    for (size_t k = 0; k < N; k++) {
        if (k < i)
            assert_null(store__ids_find(&h, r[k].il.id));
        else
            assert_ptr_equal(store__ids_find(&h, r[k].il.id), &r[k].il);
    }
    assert_int_equal(count_ids_walk(&h), h.n);
    for (; i < N; i++) {
        store__ids_remove(&h, &r[i].il);
        store__ids_shrink(&h);
        assert_true(h.cap >= STORE__IDS_SHRINK_MIN);
    }
    assert_int_equal(h.n, 0);
    assert_true(h.cap < 4 * STORE__IDS_SHRINK_MIN);
    store__ids_destroy(&h, offsetof(rec, il));
    free(r);
}

/* ---- queues by name ---- */

typedef struct name {
    const char *p;
    size_t len;
} name;

static void test_queues_names(void **state)
{
    (void)state;
    static const name names[] = {
        {"", 0},        {"a", 1},         {"a\0", 2},           {"a\0b", 3},
        {"ab", 2},      {"abc", 3},       {"\0", 1},            {"\0\0", 2},
        {"a\xff", 2},   {"/queue/x", 8},  {"/queue/x\0y", 10},  {"/queue/x\ny", 10},
    };
    enum { K = sizeof names / sizeof names[0] };
    qrec q[K];
    memset(q, 0, sizeof q);
    store__qhash h = {0};
    assert_null(store__queues_find(&h, "a", 1, store_hash_name("a", 1)));
    for (size_t i = 0; i < K; i++) {
        /* The queue owns its name bytes, as a backend's queue does. */
        memcpy(q[i].name, names[i].p, names[i].len);
        q[i].len = names[i].len;
        uint64_t hash = store_hash_name(q[i].name, q[i].len);
        assert_null(store__queues_find(&h, q[i].name, q[i].len, hash));
        assert_int_equal(store__queues_reserve(&h, 1), STORE_OK);
        store__queues_insert(&h, &q[i].ql, q[i].name, q[i].len, hash);
        assert_int_equal(q[i].ql.hash, hash);
        assert_ptr_equal(q[i].ql.name, q[i].name);
        assert_int_equal(q[i].ql.len, q[i].len);
    }
    assert_int_equal(h.n, K);
    assert_int_equal(h.cap, 16);
    /* Looked up through other buffers: exact bytes and exact length select one queue. */
    for (size_t i = 0; i < K; i++) {
        char buf[24];
        memcpy(buf, names[i].p, names[i].len);
        store__qlink *l =
            store__queues_find(&h, buf, names[i].len, store_hash_name(buf, names[i].len));
        assert_ptr_equal(l, &q[i].ql);
    }
    static const name absent[] = {
        {"b", 1}, {"a\0\0", 3}, {"abcd", 4}, {"/queue/", 7}, {"/queue/x\0", 9}, {"\0\0\0", 3},
        {"A", 1},
    };
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
        assert_null(store__queues_find(&h, absent[i].p, absent[i].len,
                                       store_hash_name(absent[i].p, absent[i].len)));
    assert_int_equal(count_queues_walk(&h), K);

    /* Removing "a\0" leaves "a" and "a\0b". */
    store__queues_remove(&h, &q[2].ql);
    assert_int_equal(h.n, K - 1);
    assert_null(store__queues_find(&h, "a\0", 2, store_hash_name("a\0", 2)));
    assert_ptr_equal(store__queues_find(&h, "a", 1, store_hash_name("a", 1)), &q[1].ql);
    assert_ptr_equal(store__queues_find(&h, "a\0b", 3, store_hash_name("a\0b", 3)), &q[3].ql);
    for (size_t i = 0; i < K; i++)
        if (i != 2)
            store__queues_remove(&h, &q[i].ql);
    assert_int_equal(h.n, 0);
    assert_null(store__queues_first(&h));
    store__queues_destroy(&h, offsetof(qrec, ql));
}

static void test_queues_collisions(void **state)
{
    (void)state;
    enum { K = 5 };
    store__qhash h = {0};
    assert_int_equal(store__queues_reserve(&h, 1), STORE_OK);
    assert_int_equal(h.cap, 16);
    qrec q[K];
    memset(q, 0, sizeof q);
    /* K names sharing a bucket of a 16-bucket table. */
    size_t k = 0;
    size_t slot = (size_t)store_hash_name("c0", 2) & 15;
    for (int i = 0; k < K; i++) {
        char buf[24];
        int len = snprintf(buf, sizeof buf, "c%d", i);
        if (((size_t)store_hash_name(buf, (size_t)len) & 15) == slot) {
            memcpy(q[k].name, buf, (size_t)len);
            q[k].len = (size_t)len;
            k++;
        }
    }
    for (size_t i = 0; i < K; i++)
        store__queues_insert(&h, &q[i].ql, q[i].name, q[i].len,
                             store_hash_name(q[i].name, q[i].len));
    size_t chain = 0;
    for (store__qlink *l = h.b[slot]; l; l = l->next)
        chain++;
    assert_int_equal(chain, K);
    for (size_t i = 0; i < K; i++)
        assert_ptr_equal(store__queues_find(&h, q[i].name, q[i].len,
                                            store_hash_name(q[i].name, q[i].len)),
                         &q[i].ql);
    store__queues_remove(&h, &q[2].ql);     /* middle */
    store__queues_remove(&h, &q[K - 1].ql); /* head */
    store__queues_remove(&h, &q[0].ql);     /* tail */
    for (size_t i = 0; i < K; i++) {
        store__qlink *l =
            store__queues_find(&h, q[i].name, q[i].len, store_hash_name(q[i].name, q[i].len));
        if (i == 1 || i == 3)
            assert_ptr_equal(l, &q[i].ql);
        else
            assert_null(l);
    }
    assert_int_equal(h.n, 2);
    store__queues_remove(&h, &q[1].ql);
    store__queues_remove(&h, &q[3].ql);
    store__queues_destroy(&h, offsetof(qrec, ql));
}

static void test_queues_growth_and_walk(void **state)
{
    (void)state;
    enum { N = 2000 };
    store__qhash h = {0};
    qrec **q = calloc(N, sizeof *q);
    assert_non_null(q);
    for (size_t i = 0; i < N; i++) {
        q[i] = calloc(1, sizeof *q[i]);
        assert_non_null(q[i]);
        q[i]->len = (size_t)snprintf(q[i]->name, sizeof q[i]->name, "/queue/%zu", i);
        assert_int_equal(store__queues_reserve(&h, 1), STORE_OK);
        store__queues_insert(&h, &q[i]->ql, q[i]->name, q[i]->len,
                             store_hash_name(q[i]->name, q[i]->len));
        /* Doubling from 16: 16 .. 2048. */
        assert_int_equal(h.cap, want_cap(i + 1, 16));
    }
    assert_int_equal(h.cap, 2048);
    assert_int_equal(h.n, N);
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal(store__queues_find(&h, q[i]->name, q[i]->len,
                                            store_hash_name(q[i]->name, q[i]->len)),
                         &q[i]->ql);
    /* "/queue/1" is a prefix of "/queue/10": each is found by its own length only. */
    assert_ptr_equal(store__queues_find(&h, "/queue/10", 8, store_hash_name("/queue/10", 8)),
                     &q[1]->ql);
    assert_null(store__queues_find(&h, "/queue/2000", 11, store_hash_name("/queue/2000", 11)));

    /* Walk, freeing the even-numbered queues as we go: every queue visited exactly once. */
    size_t visited = 0;
    for (store__qlink *l = store__queues_first(&h), *n; l; l = n) {
        n = store__queues_next(&h, l);
        qrec *r = QREC(l);
        assert_int_equal(r->visits, 0);
        r->visits++;
        visited++;
        size_t i = (size_t)strtoul(r->name + 7, NULL, 10);
        assert_ptr_equal(q[i], r);
        if (i % 2 == 0) {
            store__queues_remove(&h, l);
            q[i] = NULL;
            free(r);
        }
    }
    assert_int_equal(visited, N);
    assert_int_equal(h.n, N / 2);
    for (size_t i = 1; i < N; i += 2) {
        assert_int_equal(q[i]->visits, 1);
        assert_ptr_equal(store__queues_find(&h, q[i]->name, q[i]->len,
                                            store_hash_name(q[i]->name, q[i]->len)),
                         &q[i]->ql);
    }
    assert_int_equal(count_queues_walk(&h), N / 2);
    assert_null(store__queues_find(&h, "/queue/0", 8, store_hash_name("/queue/0", 8)));
    /* Destroy frees the remaining queues (one malloc block each) and the buckets. */
    store__queues_destroy(&h, offsetof(qrec, ql));
    assert_null(h.b);
    assert_int_equal(h.cap, 0);
    assert_int_equal(h.n, 0);
    free(q);
}

/* ---- record lists ---- */

/* The list's elements head to tail into out (at most max); checks the back links agree. */
static size_t list_order(const store__dlist *l, store__dlink **out, size_t max)
{
    size_t n = 0;
    store__dlink *prev = NULL;
    for (store__dlink *e = l->head; e; e = e->next) {
        assert_true(n < max);
        assert_ptr_equal(e->prev, prev);
        out[n++] = e;
        prev = e;
    }
    assert_ptr_equal(l->tail, prev);
    return n;
}

static void test_lists(void **state)
{
    (void)state;
    rec r[5];
    memset(r, 0, sizeof r);
    store__dlink *a = &r[0].dl, *b = &r[1].dl, *c = &r[2].dl, *d = &r[3].dl, *e = &r[4].dl;
    store__dlist l = {NULL, NULL};
    store__dlink *o[8];

    assert_int_equal(list_order(&l, o, 8), 0);
    store__list_append(&l, a);
    assert_ptr_equal(l.head, a);
    assert_ptr_equal(l.tail, a);
    assert_null(a->prev);
    assert_null(a->next);

    store__list_append(&l, b);
    store__list_prepend(&l, c);
    store__list_append(&l, d);
    store__list_prepend(&l, e);
    assert_int_equal(list_order(&l, o, 8), 5);
    assert_ptr_equal(o[0], e);
    assert_ptr_equal(o[1], c);
    assert_ptr_equal(o[2], a);
    assert_ptr_equal(o[3], b);
    assert_ptr_equal(o[4], d);
    assert_ptr_equal(store__container_of(o[2], rec, dl), &r[0]);
    assert_ptr_equal(store__entry(l.tail, rec, dl), &r[3]);
    assert_null(store__entry((store__dlink *)NULL, rec, dl));

    /* Middle, head, tail. */
    store__list_unlink(&l, a);
    assert_null(a->prev);
    assert_null(a->next);
    store__list_unlink(&l, e);
    assert_null(e->prev);
    assert_null(e->next);
    store__list_unlink(&l, d);
    assert_null(d->prev);
    assert_null(d->next);
    assert_int_equal(list_order(&l, o, 8), 2);
    assert_ptr_equal(o[0], c);
    assert_ptr_equal(o[1], b);

    /* Unlinked elements go back on, at either end. */
    store__list_prepend(&l, d);
    store__list_append(&l, a);
    assert_int_equal(list_order(&l, o, 8), 4);
    assert_ptr_equal(o[0], d);
    assert_ptr_equal(o[1], c);
    assert_ptr_equal(o[2], b);
    assert_ptr_equal(o[3], a);

    /* Move an element to the tail (a requeue): unlink then append. */
    store__list_unlink(&l, c);
    store__list_append(&l, c);
    assert_int_equal(list_order(&l, o, 8), 4);
    assert_ptr_equal(o[0], d);
    assert_ptr_equal(o[1], b);
    assert_ptr_equal(o[2], a);
    assert_ptr_equal(o[3], c);

    store__list_unlink(&l, b);
    store__list_unlink(&l, d);
    store__list_unlink(&l, c);
    assert_ptr_equal(l.head, a);
    assert_ptr_equal(l.tail, a);
    store__list_unlink(&l, a);
    assert_null(l.head);
    assert_null(l.tail);

    /* Prepend into an empty list sets both ends. */
    store__list_prepend(&l, b);
    assert_ptr_equal(l.head, b);
    assert_ptr_equal(l.tail, b);
    store__list_unlink(&l, b);
    assert_int_equal(list_order(&l, o, 8), 0);
}

/* ---- the heap ---- */

typedef struct hobj {
    uint64_t key;
    uint32_t pos;
} hobj;

/* Every object in h says where it is, and every entry is no less than its parent. */
static void check_heap(const store__heap *h)
{
    for (size_t i = 0; i < h->n; i++) {
        assert_int_equal(((const hobj *)h->e[i].p)->pos, i);
        if (i > 0) {
            const store__heapent *up = &h->e[(i - 1) / 2];
            assert_true(up->key < h->e[i].key ||
                        (up->key == h->e[i].key && up->tie <= h->e[i].tie));
        }
    }
}

static void test_heap(void **state)
{
    (void)state;
    enum { N = 500 };
    static hobj o[N];
    store__heap h = {0};
    store__heap_track(&h, offsetof(hobj, pos));
    size_t acct = 0;
    assert_int_equal(store__heap_reserve(&h, N, &acct), STORE_OK);
    assert_true(h.cap >= N);
    assert_int_equal(acct, h.cap * sizeof *h.e);
    for (size_t i = 0; i < N; i++) {
        o[i].key = (i * 7919) % 101; /* many equal keys: the tie orders them */
        store__heap_push(&h, o[i].key, i, &o[i]);
    }
    check_heap(&h);
    /* Every third object leaves from wherever it is. */
    for (size_t i = 0; i < N; i += 3) {
        store__heap_remove(&h, o[i].pos);
        assert_int_equal(o[i].pos, STORE__NOPOS);
        check_heap(&h);
    }
    uint64_t last_key = 0, last_tie = 0;
    size_t popped = 0;
    for (const store__heapent *t; (t = store__heap_top(&h)) != NULL; popped++) {
        assert_true(t->key > last_key || (t->key == last_key && t->tie >= last_tie));
        assert_int_not_equal(t->tie % 3, 0);
        last_key = t->key;
        last_tie = t->tie;
        hobj *x = t->p;
        store__heap_pop(&h);
        assert_int_equal(x->pos, STORE__NOPOS);
        check_heap(&h);
    }
    assert_int_equal(popped, N - (N + 2) / 3);
    store__heap_free(&h, &acct);
    assert_int_equal(acct, 0);
    assert_null(h.e);
}

/* ---- growth failure ---- */

#ifndef FAILALLOC_SKIP
/* Reserve with the allocator armed: only index.c's allocations are counted. */
static store_err ids_reserve_armed(store__idhash *h, size_t more)
{
    failalloc_armed = 1;
    store_err err = store__ids_reserve(h, more);
    failalloc_armed = 0;
    return err;
}

static store_err queues_reserve_armed(store__qhash *h, size_t more)
{
    failalloc_armed = 1;
    store_err err = store__queues_reserve(h, more);
    failalloc_armed = 0;
    return err;
}

/* Every record in r[0..n) is found, the walk sees exactly n, and each chain is as saved. */
static void check_ids(const store__idhash *h, rec **r, size_t n, store__idlink **next)
{
    assert_int_equal(h->n, n);
    for (size_t i = 0; i < n; i++) {
        assert_ptr_equal(store__ids_find(h, r[i]->il.id), &r[i]->il);
        if (next)
            assert_ptr_equal(r[i]->il.next, next[i]);
    }
    assert_int_equal(count_ids_walk(h), n);
}

static void test_ids_grow_failure(void **state)
{
    (void)state;
    /* 600 single reserves (grows at 1, 65, 129, 257, 513: caps 64 .. 1024), then one reserve
     * for 3000 more (1024 -> 4096 in one allocation): 6 allocations in all. */
    enum { N = 600, BIG = 3000, ALLOCS = 6 };
    rec **r = calloc(N, sizeof *r);
    store__idlink **next = calloc(N, sizeof *next);
    assert_non_null(r);
    assert_non_null(next);
    long rounds = 0;
    for (long k = 1;; k++) {
        long live0 = failalloc_live;
        store__idhash h = {0};
        failalloc_fail_at = k;
        failalloc_seen = 0;
        int failed = 0;
        for (size_t i = 0; i <= N; i++) {
            size_t more = i < N ? 1 : BIG;
            for (size_t j = 0; j < i; j++)
                next[j] = r[j]->il.next;
            store__idlink **b = h.b;
            size_t cap = h.cap;
            store_err err = ids_reserve_armed(&h, more);
            if (err != STORE_OK) {
                assert_int_equal(err, STORE_E_NOMEM);
                assert_int_equal(failed, 0);
                assert_int_equal(failalloc_seen, k);
                failed = 1;
                /* Unchanged: same buckets, same chains, everything found. */
                assert_ptr_equal(h.b, b);
                assert_int_equal(h.cap, cap);
                check_ids(&h, r, i, next);
                /* Still usable: the next attempt (not failing) grows. */
                err = ids_reserve_armed(&h, more);
                assert_int_equal(err, STORE_OK);
            }
            assert_true(h.n + more <= h.cap);
            if (i < N) {
                r[i] = malloc(sizeof *r[i]);
                assert_non_null(r[i]);
                memset(r[i], 0, sizeof *r[i]);
                r[i]->il.id = (uint64_t)i * 5 + 7;
                store__ids_insert(&h, &r[i]->il);
            }
        }
        assert_int_equal(h.cap, 4096);
        check_ids(&h, r, N, NULL);
        store__ids_destroy(&h, offsetof(rec, il));
        assert_int_equal(failalloc_live, live0); /* no leak, failed or not */
        rounds++;
        if (!failed) {
            /* k passed the last allocation: the run needed exactly ALLOCS. */
            assert_int_equal(failalloc_seen, ALLOCS);
            assert_int_equal(k, ALLOCS + 1);
            break;
        }
    }
    assert_int_equal(rounds, ALLOCS + 1);
    failalloc_fail_at = 0;
    free(next);
    free(r);
}

static void check_queues(const store__qhash *h, qrec **q, size_t n, store__qlink **next)
{
    assert_int_equal(h->n, n);
    for (size_t i = 0; i < n; i++) {
        assert_ptr_equal(store__queues_find(h, q[i]->name, q[i]->len,
                                            store_hash_name(q[i]->name, q[i]->len)),
                         &q[i]->ql);
        if (next)
            assert_ptr_equal(q[i]->ql.next, next[i]);
    }
    assert_int_equal(count_queues_walk(h), n);
}

static void test_queues_grow_failure(void **state)
{
    (void)state;
    /* 300 single reserves (caps 16 .. 512: 6 grows), then 1000 more (512 -> 2048): 7. */
    enum { N = 300, BIG = 1000, ALLOCS = 7 };
    qrec **q = calloc(N, sizeof *q);
    store__qlink **next = calloc(N, sizeof *next);
    assert_non_null(q);
    assert_non_null(next);
    long rounds = 0;
    for (long k = 1;; k++) {
        long live0 = failalloc_live;
        store__qhash h = {0};
        failalloc_fail_at = k;
        failalloc_seen = 0;
        int failed = 0;
        for (size_t i = 0; i <= N; i++) {
            size_t more = i < N ? 1 : BIG;
            for (size_t j = 0; j < i; j++)
                next[j] = q[j]->ql.next;
            store__qlink **b = h.b;
            size_t cap = h.cap;
            store_err err = queues_reserve_armed(&h, more);
            if (err != STORE_OK) {
                assert_int_equal(err, STORE_E_NOMEM);
                assert_int_equal(failed, 0);
                assert_int_equal(failalloc_seen, k);
                failed = 1;
                assert_ptr_equal(h.b, b);
                assert_int_equal(h.cap, cap);
                check_queues(&h, q, i, next);
                err = queues_reserve_armed(&h, more);
                assert_int_equal(err, STORE_OK);
            }
            assert_true(h.n + more <= h.cap);
            if (i < N) {
                q[i] = malloc(sizeof *q[i]);
                assert_non_null(q[i]);
                memset(q[i], 0, sizeof *q[i]);
                /* Names with an embedded NUL, varying lengths. */
                q[i]->len = (size_t)snprintf(q[i]->name, sizeof q[i]->name, "q%zu", i) + 2;
                q[i]->name[q[i]->len - 1] = 'z';
                store__queues_insert(&h, &q[i]->ql, q[i]->name, q[i]->len,
                                     store_hash_name(q[i]->name, q[i]->len));
            }
        }
        assert_int_equal(h.cap, 2048);
        check_queues(&h, q, N, NULL);
        store__queues_destroy(&h, offsetof(qrec, ql));
        assert_int_equal(failalloc_live, live0);
        rounds++;
        if (!failed) {
            assert_int_equal(failalloc_seen, ALLOCS);
            assert_int_equal(k, ALLOCS + 1);
            break;
        }
    }
    assert_int_equal(rounds, ALLOCS + 1);
    failalloc_fail_at = 0;
    free(next);
    free(q);
}
#else
static void test_ids_grow_failure(void **state)
{
    (void)state;
    skip(); /* sanitizer builds bring their own malloc */
}

static void test_queues_grow_failure(void **state)
{
    (void)state;
    skip();
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_empty),
        cmocka_unit_test(test_ids_many),
        cmocka_unit_test(test_ids_collisions),
        cmocka_unit_test(test_ids_remove_while_walking),
        cmocka_unit_test(test_ids_destroy_frees_records),
        cmocka_unit_test(test_ids_shrink),
        cmocka_unit_test(test_ids_two_a_bucket),
        cmocka_unit_test(test_ids_sequential_spread),
        cmocka_unit_test(test_queues_names),
        cmocka_unit_test(test_queues_collisions),
        cmocka_unit_test(test_queues_growth_and_walk),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_heap),
        cmocka_unit_test(test_ids_grow_failure),
        cmocka_unit_test(test_queues_grow_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
