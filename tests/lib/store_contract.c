/* store_contract.c: the store contract cases (see store_contract.h).
 *
 * Commit completion is awaited by running the loop; a commit that reports STORE_OK must
 * not have called its callback yet (never inside the call that registered it).
 */
#include "store_contract.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

typedef struct ctx {
    const store_fixture *fx;
    uv_loop_t loop;
    store *s;
} ctx;

static const store_fixture *current;

typedef struct done {
    int called;
    store_err status;
} done;

static void on_commit(void *arg, store_err status)
{
    done *d = arg;
    d->called++;
    d->status = status;
}

static void commit(ctx *c)
{
    done d = { 0, STORE_OK };
    store_err rc = c->fx->ops->commit(c->s, on_commit, &d);
    if (rc == STORE_DONE) {
        assert_int_equal(d.called, 0);
        return;
    }
    assert_int_equal(rc, STORE_OK);
    assert_int_equal(d.called, 0);
    while (!d.called)
        uv_run(&c->loop, UV_RUN_ONCE);
    assert_int_equal(d.called, 1);
    assert_int_equal(d.status, STORE_OK);
}

static void open_store(ctx *c, int fresh)
{
    store_options o;
    memset(&o, 0, sizeof o);
    c->fx->options(&o, &c->loop, fresh);
    assert_int_equal(c->fx->ops->open(&o, &c->s), STORE_OK);
}

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    c->fx = current;
    if (uv_loop_init(&c->loop) != 0)
        return -1;
    open_store(c, 1);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    c->fx->ops->close(c->s);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&c->loop);
    free(c);
    return rc == 0 ? 0 : -1;
}

static uint64_t put(ctx *c, const char *q, const char *body)
{
    uint64_t id = 0;
    assert_int_equal(c->fx->ops->enqueue(c->s, q, strlen(q), "h\0v\0", 4, body, strlen(body),
                                         &id),
                     STORE_OK);
    return id;
}

static store_msg take(ctx *c, const char *q)
{
    store_msg m;
    memset(&m, 0, sizeof m);
    assert_int_equal(c->fx->ops->take(c->s, q, strlen(q), &m), STORE_OK);
    return m;
}

static void take_body(ctx *c, const char *q, const char *body, uint32_t redel)
{
    store_msg m = take(c, q);
    assert_int_equal(m.body_len, strlen(body));
    assert_memory_equal(m.body, body, m.body_len);
    assert_int_equal(m.redeliveries, redel);
}

static void empty(ctx *c, const char *q)
{
    store_msg m;
    assert_int_equal(c->fx->ops->take(c->s, q, strlen(q), &m), STORE_E_EMPTY);
}

static void test_empty(void **state)
{
    ctx *c = *state;
    empty(c, "q");
    assert_int_equal(c->fx->ops->depth(c->s, "q", 1), 0);
    commit(c); /* an empty batch is fine */
    assert_true(c->fx->ops->version >= 1);
    assert_non_null(c->fx->ops->name);
}

static void test_pending_until_commit(void **state)
{
    ctx *c = *state;
    put(c, "q", "a");
    empty(c, "q");
    assert_int_equal(c->fx->ops->depth(c->s, "q", 1), 0);
    commit(c);
    assert_int_equal(c->fx->ops->depth(c->s, "q", 1), 1);
    store_msg m = take(c, "q");
    assert_int_equal(m.queue_len, 1);
    assert_memory_equal(m.queue, "q", 1);
    assert_int_equal(m.headers_len, 4);
    assert_memory_equal(m.headers, "h\0v\0", 4);
    assert_int_equal(c->fx->ops->depth(c->s, "q", 1), 0);
    assert_int_equal(c->fx->ops->ack(c->s, m.id), STORE_OK);
    commit(c);
}

static void test_fifo_and_ids(void **state)
{
    ctx *c = *state;
    uint64_t prev = 0;
    char body[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(body, sizeof body, "m%d", i);
        uint64_t id = put(c, "fifo", body);
        assert_true(id > prev);
        prev = id;
    }
    commit(c);
    for (int i = 0; i < 1000; i++) {
        snprintf(body, sizeof body, "m%d", i);
        store_msg m = take(c, "fifo");
        assert_int_equal(m.body_len, strlen(body));
        assert_memory_equal(m.body, body, m.body_len);
        assert_int_equal(c->fx->ops->ack(c->s, m.id), STORE_OK);
    }
    empty(c, "fifo");
    commit(c);
}

static void test_binary_and_large(void **state)
{
    ctx *c = *state;
    size_t n = 1u << 20;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i * 7);
    uint64_t id;
    assert_int_equal(c->fx->ops->enqueue(c->s, "bin", 3, NULL, 0, big, n, &id), STORE_OK);
    assert_int_equal(c->fx->ops->enqueue(c->s, "bin", 3, NULL, 0, "", 0, &id), STORE_OK);
    commit(c);
    store_msg m = take(c, "bin");
    assert_int_equal(m.body_len, n);
    assert_memory_equal(m.body, big, n);
    assert_int_equal(m.headers_len, 0);
    store_msg m2 = take(c, "bin");
    assert_int_equal(m2.body_len, 0);
    free(big);
}

static void test_ack_rules(void **state)
{
    ctx *c = *state;
    uint64_t id = put(c, "a", "x");
    /* Not taken yet (not even committed): not ackable. */
    assert_int_equal(c->fx->ops->ack(c->s, id), STORE_E_NOTFOUND);
    commit(c);
    assert_int_equal(c->fx->ops->ack(c->s, id), STORE_E_NOTFOUND);
    assert_int_equal(c->fx->ops->requeue(c->s, id), STORE_E_NOTFOUND);
    store_msg m = take(c, "a");
    assert_int_equal(m.id, id);
    assert_int_equal(c->fx->ops->ack(c->s, id), STORE_OK);
    assert_int_equal(c->fx->ops->ack(c->s, id), STORE_E_NOTFOUND);
    assert_int_equal(c->fx->ops->ack(c->s, id + 1000), STORE_E_NOTFOUND);
    commit(c);
    empty(c, "a");
}

static void test_requeue_order(void **state)
{
    ctx *c = *state;
    put(c, "r", "1");
    put(c, "r", "2");
    put(c, "r", "3");
    commit(c);
    store_msg a = take(c, "r"), b = take(c, "r");
    /* Returned newest first: the original order is restored at the head. */
    assert_int_equal(c->fx->ops->requeue(c->s, b.id), STORE_OK);
    assert_int_equal(c->fx->ops->requeue(c->s, a.id), STORE_OK);
    assert_int_equal(c->fx->ops->depth(c->s, "r", 1), 3);
    take_body(c, "r", "1", 1);
    take_body(c, "r", "2", 1);
    take_body(c, "r", "3", 0);
    commit(c);
}

static void test_queues_independent(void **state)
{
    ctx *c = *state;
    put(c, "x", "for-x");
    put(c, "y", "for-y");
    put(c, "xy", "for-xy");
    commit(c);
    take_body(c, "y", "for-y", 0);
    empty(c, "y");
    take_body(c, "xy", "for-xy", 0);
    take_body(c, "x", "for-x", 0);
    store_msg m;
    uint64_t id;
    assert_int_equal(c->fx->ops->take(c->s, "nope", 4, &m), STORE_E_EMPTY);
    assert_int_equal(c->fx->ops->enqueue(c->s, "", 0, NULL, 0, "b", 1, &id), STORE_E_INVALID);
}

static void test_batch_mixes_writes(void **state)
{
    ctx *c = *state;
    put(c, "m", "old");
    commit(c);
    store_msg m = take(c, "m");
    /* One batch: an ack and two enqueues, committed together. */
    assert_int_equal(c->fx->ops->ack(c->s, m.id), STORE_OK);
    put(c, "m", "new1");
    put(c, "m", "new2");
    empty(c, "m");
    commit(c);
    take_body(c, "m", "new1", 0);
    take_body(c, "m", "new2", 0);
}

static void test_reopen(void **state)
{
    ctx *c = *state;
    if (!c->fx->persistent) {
        skip();
        return;
    }
    uint64_t a = put(c, "p", "kept");
    put(c, "p", "taken");
    uint64_t gone = put(c, "p", "acked");
    put(c, "p", "uncommitted-later");
    commit(c);
    take_body(c, "p", "kept", 0);
    (void)a;
    store_msg t = take(c, "p");
    store_msg g = take(c, "p");
    assert_int_equal(g.id, gone);
    assert_int_equal(c->fx->ops->ack(c->s, g.id), STORE_OK);
    commit(c);
    (void)t;
    c->fx->ops->close(c->s);
    open_store(c, 0);
    /* Taken but unacked messages are ready again; acked ones are gone; ids go on. */
    take_body(c, "p", "kept", 0);
    take_body(c, "p", "taken", 0);
    take_body(c, "p", "uncommitted-later", 0);
    empty(c, "p");
    uint64_t next = put(c, "p", "after");
    assert_true(next > gone);
    commit(c);
}

int store_contract_run(const store_fixture *fx)
{
    current = fx;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_until_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_and_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_and_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requeue_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queues_independent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_mixes_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
    };
    return _cmocka_run_group_tests(fx->name, tests, sizeof tests / sizeof tests[0], NULL,
                                   NULL);
}
