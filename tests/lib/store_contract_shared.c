/* store_contract_shared.c: the store contract's version 10 cases (see store_contract.h):
 * a message enqueue_shared puts into several queues is, in each, a message like any other:
 * pending until the commit, taken, acked, requeued, got, browsed, matched, expired (handed
 * out by take_expired, then copied elsewhere and acked, as dead-lettering does), delayed,
 * ordered by priority and cancelled on its own, with each queue's size counting the whole
 * body; all or nothing on a bad target; and (persistent) all of it across a reopen, with
 * the body there for the last holder after the others are acked. A backend without
 * enqueue_shared (it is optional) skips them.
 */
#include "store_contract.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sctx {
    const store_fixture *fx;
    uv_loop_t loop;
    store *s;
} sctx;

static const store_fixture *current;

static void on_commit(void *arg, store_err status)
{
    int *called = arg;
    assert_int_equal(status, STORE_OK);
    (*called)++;
}

static void commit(sctx *c)
{
    int called = 0;
    store_err rc = c->fx->ops->commit(c->s, on_commit, &called);
    if (rc == STORE_DONE)
        return;
    assert_int_equal(rc, STORE_OK);
    while (!called)
        uv_run(&c->loop, UV_RUN_ONCE);
}

static void open_store(sctx *c, int fresh)
{
    store_options o;
    memset(&o, 0, sizeof o);
    c->fx->options(&o, &c->loop, fresh);
    assert_int_equal(c->fx->ops->open(&o, &c->s), STORE_OK);
}

static void reopen(sctx *c)
{
    if (!c->fx->persistent)
        return;
    c->fx->ops->close(c->s);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    open_store(c, 0);
}

static int setup(void **state)
{
    sctx *c = calloc(1, sizeof *c);
    c->fx = current;
    if (uv_loop_init(&c->loop) != 0)
        return -1;
    open_store(c, 1);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    sctx *c = *state;
    c->fx->ops->close(c->s);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&c->loop);
    free(c);
    return rc == 0 ? 0 : -1;
}

static const char HDRS[] = "h\0v"; /* 4 bytes with the last NUL */
#define HLEN 4

/* body into the n queues names[], with attributes a[i] (a NULL: none); ids into ids[]. */
static store_err share(sctx *c, const char *const *names, size_t n, const store_attrs *a,
                       const char *body, uint64_t *ids)
{
    store_target t[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++)
        t[i] = (store_target){ names[i], strlen(names[i]),
                               store_hash_name(names[i], strlen(names[i])), a ? &a[i] : NULL,
                               0 };
    store_err rc = c->fx->ops->enqueue_shared(c->s, t, n, HDRS, HLEN, body, strlen(body));
    for (size_t i = 0; ids && i < n; i++)
        ids[i] = t[i].id;
    return rc;
}

static store_err take_rc(sctx *c, const char *q, uint64_t now, store_msg *m)
{
    const store_ops *o = c->fx->ops;
    uint64_t h = store_hash_name(q, strlen(q));
    store_err rc = o->take_at(c->s, q, strlen(q), h, now, m);
    if (rc == STORE_E_AGAIN) {
        commit(c);
        rc = o->take_at(c->s, q, strlen(q), h, now, m);
    }
    return rc;
}

/* The next message of q at now is id with body and the shared header block. */
static void take_is(sctx *c, const char *q, uint64_t now, uint64_t id, const char *body,
                    uint32_t red)
{
    store_msg m;
    assert_int_equal(take_rc(c, q, now, &m), STORE_OK);
    if (id)
        assert_int_equal(m.id, id);
    assert_int_equal(m.headers_len, HLEN);
    assert_memory_equal(m.headers, HDRS, HLEN);
    assert_int_equal(m.body_len, strlen(body));
    assert_memory_equal(m.body, body, m.body_len);
    assert_int_equal(m.redeliveries, red);
}

static void size_is(sctx *c, const char *q, uint64_t count, uint64_t bytes)
{
    uint64_t n = 99, b = 99;
    c->fx->ops->queue_size(c->s, q, strlen(q), store_hash_name(q, strlen(q)), &n, &b);
    assert_int_equal(n, count);
    assert_int_equal(b, bytes);
}

static void empty(sctx *c, const char *q)
{
    store_msg m;
    assert_int_equal(take_rc(c, q, 0, &m), STORE_E_EMPTY);
}

static const char *const ABC[] = { "/queue/sa", "/queue/sb", "/queue/sc" };

/* Take, ack, requeue and get each copy on its own; sizes count the body in each queue. */
static void test_shared_each_its_own(void **state)
{
    sctx *c = *state;
    uint64_t ids[3];
    assert_int_equal(share(c, ABC, 3, NULL, "payload", ids), STORE_OK);
    assert_true(ids[0] < ids[1] && ids[1] < ids[2]);
    empty(c, "/queue/sa"); /* pending */
    commit(c);
    for (int i = 0; i < 3; i++)
        size_is(c, ABC[i], 1, HLEN + 7);
    take_is(c, "/queue/sa", 0, ids[0], "payload", 0);
    assert_int_equal(c->fx->ops->ack(c->s, ids[0]), STORE_OK);
    commit(c);
    size_is(c, "/queue/sa", 0, 0);
    take_is(c, "/queue/sb", 0, ids[1], "payload", 0);
    assert_int_equal(c->fx->ops->requeue(c->s, ids[1]), STORE_OK);
    commit(c);
    reopen(c);
    take_is(c, "/queue/sb", 0, ids[1], "payload", 1);
    store_msg g;
    assert_int_equal(c->fx->ops->get(c->s, ids[1], &g), STORE_OK);
    assert_memory_equal(g.body, "payload", 7);
    assert_int_equal(c->fx->ops->ack(c->s, ids[1]), STORE_OK);
    commit(c);
    reopen(c);
    size_is(c, "/queue/sc", 1, HLEN + 7);
    take_is(c, "/queue/sc", 0, ids[2], "payload", 0); /* the last holder has the body */
    assert_int_equal(c->fx->ops->ack(c->s, ids[2]), STORE_OK);
    commit(c);
    reopen(c);
    for (int i = 0; i < 3; i++) {
        size_is(c, ABC[i], 0, 0);
        empty(c, ABC[i]);
    }
}

/* Priority, delay and expiry per queue; an expired copy goes to a dead-letter queue. */
static void test_shared_attrs(void **state)
{
    sctx *c = *state;
    const store_ops *o = c->fx->ops;
    store_attrs a[3] = { { 9, 0, 0 }, { 4, 0, 50 }, { 4, 100, 0 } };
    uint64_t ids[3];
    uint64_t plain = 0;
    assert_int_equal(o->enqueue_attrs(c->s, "/queue/sa", 9, store_hash_name("/queue/sa", 9),
                                      "", 0, "low", 3, NULL, &plain),
                     STORE_OK);
    assert_int_equal(share(c, ABC, 3, a, "body", ids), STORE_OK);
    commit(c);
    reopen(c);
    assert_int_equal(o->next_expiry(c->s), 50);
    store_msg m;
    assert_int_equal(o->take_expired(c->s, 60, &m), STORE_OK);
    assert_int_equal(m.id, ids[1]);
    assert_int_equal(m.body_len, 4);
    uint64_t dl = 0;
    assert_int_equal(o->enqueue_attrs(c->s, "/queue/DLQ.sb", 13,
                                      store_hash_name("/queue/DLQ.sb", 13), m.headers,
                                      m.headers_len, m.body, m.body_len, NULL, &dl),
                     STORE_OK);
    assert_int_equal(o->ack(c->s, m.id), STORE_OK);
    commit(c);
    reopen(c);
    take_is(c, "/queue/DLQ.sb", 0, dl, "body", 0);
    empty(c, "/queue/sb");
    assert_int_equal(take_rc(c, "/queue/sc", 99, &m), STORE_E_EMPTY);
    take_is(c, "/queue/sc", 100, ids[2], "body", 0);
    store_cursor cur;
    memset(&cur, 0, sizeof cur);
    assert_int_equal(o->browse(c->s, "/queue/sa", 9, store_hash_name("/queue/sa", 9), &cur, 0,
                               &m),
                     STORE_OK);
    assert_int_equal(m.id, ids[0]); /* priority 9 before the plain one */
    assert_memory_equal(m.body, "body", 4);
    take_is(c, "/queue/sa", 0, ids[0], "body", 0);
}

static int is_id(void *arg, const store_msg *m)
{
    return m->id == *(const uint64_t *)arg && m->body_len == 4 && !memcmp(m->body, "body", 4);
}

/* take_match sees the body; a cancel takes back one copy; a bad target enqueues none. */
static void test_shared_match_cancel_invalid(void **state)
{
    sctx *c = *state;
    const store_ops *o = c->fx->ops;
    uint64_t ids[3], more[3];
    assert_int_equal(share(c, ABC, 3, NULL, "body", ids), STORE_OK);
    assert_int_equal(share(c, ABC, 3, NULL, "gone", more), STORE_OK);
    assert_int_equal(o->cancel(c->s, more[0]), STORE_OK);
    assert_int_equal(o->cancel(c->s, more[1]), STORE_OK);
    commit(c);
    reopen(c);
    size_is(c, "/queue/sa", 1, HLEN + 4);
    size_is(c, "/queue/sc", 2, 2 * (HLEN + 4));
    store_scan sc;
    memset(&sc, 0, sizeof sc);
    store_msg m;
    uint64_t h = store_hash_name("/queue/sb", 9);
    store_err rc = o->take_match(c->s, "/queue/sb", 9, h, 0, &sc, is_id, &ids[1], &m);
    if (rc == STORE_E_AGAIN) {
        commit(c);
        rc = o->take_match(c->s, "/queue/sb", 9, h, 0, &sc, is_id, &ids[1], &m);
    }
    assert_int_equal(rc, STORE_OK);
    assert_int_equal(m.id, ids[1]);
    const char *const bad[] = { "/queue/sa", "" };
    assert_int_equal(share(c, bad, 2, NULL, "x", NULL), STORE_E_INVALID);
    assert_int_equal(share(c, bad, 0, NULL, "x", NULL), STORE_E_INVALID);
    commit(c);
    size_is(c, "/queue/sa", 1, HLEN + 4);
    take_is(c, "/queue/sc", 0, ids[2], "body", 0);
    take_is(c, "/queue/sc", 0, more[2], "gone", 0);
}

/* Many holders across reopens, acked in any order; a large body. */
static void test_shared_many_reopen(void **state)
{
    sctx *c = *state;
    const char *const q[5] = { "/queue/d1", "/queue/d2", "/queue/d3", "/queue/d4",
                               "/queue/d5" };
    size_t big = 200000;
    char *body = malloc(big + 1);
    assert_non_null(body);
    for (size_t i = 0; i < big; i++)
        body[i] = (char)('a' + i % 26);
    body[big] = '\0';
    uint64_t ids[5];
    assert_int_equal(share(c, q, 5, NULL, body, ids), STORE_OK);
    commit(c);
    for (int round = 0; round < 5; round++) {
        reopen(c);
        int i = (round * 3) % 5; /* 0 3 1 4 2 */
        for (int k = 0; k < 5; k++)
            size_is(c, q[k], 1, HLEN + big);
        take_is(c, q[i], 0, ids[i], body, 0);
        assert_int_equal(c->fx->ops->ack(c->s, ids[i]), STORE_OK);
        commit(c);
        size_is(c, q[i], 0, 0);
        /* keep the queue counted: a plain message in its place */
        uint64_t id;
        assert_int_equal(c->fx->ops->enqueue(c->s, q[i], strlen(q[i]), HDRS, HLEN, body, big,
                                             &id),
                         STORE_OK);
        commit(c);
    }
    reopen(c);
    for (int k = 0; k < 5; k++)
        take_is(c, q[k], 0, 0, body, 0);
    free(body);
}

int store_contract_run_shared(const store_fixture *fx)
{
    if (fx->ops->version < 10 || !fx->ops->enqueue_shared) {
        fprintf(stderr, "%s (version 10): no enqueue_shared, skipped\n", fx->name);
        return 0;
    }
    current = fx;
    const struct CMUnitTest every[] = {
        cmocka_unit_test_setup_teardown(test_shared_each_its_own, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_attrs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_match_cancel_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_many_reopen, setup, teardown),
    };
    char name[128];
    snprintf(name, sizeof name, "%s (version 10)", fx->name);
    return _cmocka_run_group_tests(name, every, sizeof every / sizeof every[0], NULL, NULL);
}
