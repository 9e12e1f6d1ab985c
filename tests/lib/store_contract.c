/* store_contract.c: the store contract cases (see store_contract.h): enqueue, FIFO per
 * queue, pending until commit, take, ack, requeue to the head with its count, batches that
 * land whole or not at all, many queues, 1 MiB binary bodies, header blocks with every byte
 * value, ids unique across reopen, taken messages counted as delivered after a reopen; and
 * (version 7) priority order, delayed messages, expiry, queue sizes and browsing, each
 * across a reopen on a persistent backend; (version 8) listing queues by name prefix.
 *
 * Commit completion is awaited by running the loop; a commit that reports STORE_OK must
 * not have called its callback yet (never inside the call that registered it). A take that
 * answers STORE_E_AGAIN is followed, as the broker does, by a commit and the same take.
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

/* A take as the broker makes it: after STORE_E_AGAIN, commit and take again (once). */
static store_err take_rc(ctx *c, const char *q, size_t qlen, store_msg *m)
{
    store_err rc = c->fx->ops->take(c->s, q, qlen, m);
    if (rc == STORE_E_AGAIN) {
        commit(c);
        rc = c->fx->ops->take(c->s, q, qlen, m);
    }
    return rc;
}

static store_msg take(ctx *c, const char *q)
{
    store_msg m;
    memset(&m, 0, sizeof m);
    assert_int_equal(take_rc(c, q, strlen(q), &m), STORE_OK);
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
    assert_int_equal(take_rc(c, q, strlen(q), &m), STORE_E_EMPTY);
}

static void test_empty(void **state)
{
    ctx *c = *state;
    empty(c, "q");
    assert_int_equal(c->fx->ops->depth(c->s, "q", 1), 0);
    commit(c); /* an empty batch is fine */
    assert_int_equal(c->fx->ops->version, STORE_OPS_VERSION);
    assert_non_null(c->fx->ops->name);
    assert_string_equal(c->fx->ops->last_error(c->s), "");
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
    assert_int_equal(take_rc(c, "nope", 4, &m), STORE_E_EMPTY);
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
    /* Taken but unacked messages are ready again, counted as delivered once; acked ones
     * are gone; ids go on. */
    take_body(c, "p", "kept", 1);
    take_body(c, "p", "taken", 1);
    take_body(c, "p", "uncommitted-later", 0);
    empty(c, "p");
    uint64_t next = put(c, "p", "after");
    assert_true(next > gone);
    commit(c);
}

/* Requeue counts and positions survive a reopen; so does everything after an ack of all. */
static void test_reopen_counts_and_ids(void **state)
{
    ctx *c = *state;
    put(c, "k", "one");
    put(c, "k", "two");
    commit(c);
    store_msg m1 = take(c, "k");
    assert_int_equal(c->fx->ops->requeue(c->s, m1.id), STORE_OK);
    m1 = take(c, "k");
    assert_int_equal(m1.redeliveries, 1);
    assert_int_equal(c->fx->ops->requeue(c->s, m1.id), STORE_OK);
    commit(c);
    c->fx->ops->close(c->s);
    open_store(c, 0);
    take_body(c, "k", "one", 2);
    store_msg m2 = take(c, "k");
    assert_int_equal(m2.redeliveries, 0);
    assert_int_equal(c->fx->ops->ack(c->s, m2.id), STORE_OK);
    commit(c);
    c->fx->ops->close(c->s);
    open_store(c, 0);
    /* "one" was taken at the close: once more. Then the file is empty, ids still go on. */
    store_msg m3 = take(c, "k");
    assert_int_equal(m3.redeliveries, 3);
    assert_int_equal(c->fx->ops->ack(c->s, m3.id), STORE_OK);
    commit(c);
    c->fx->ops->close(c->s);
    open_store(c, 0);
    empty(c, "k");
    assert_true(put(c, "k", "later") > m2.id);
    commit(c);
}

/* A batch lands whole or not at all: writes not committed before a close are all gone. */
static void test_batch_all_or_nothing(void **state)
{
    ctx *c = *state;
    put(c, "t", "base");
    commit(c);
    store_msg m = take(c, "t");
    assert_int_equal(c->fx->ops->requeue(c->s, m.id), STORE_OK);
    commit(c);
    m = take(c, "t");
    /* One batch, never committed: an ack and two sends. */
    assert_int_equal(c->fx->ops->ack(c->s, m.id), STORE_OK);
    put(c, "t", "tx1");
    put(c, "t2", "tx2");
    c->fx->ops->close(c->s);
    open_store(c, 0);
    uint64_t n, bytes;
    c->fx->ops->queue_size(c->s, "t", 1, store_hash_name("t", 1), &n, &bytes);
    assert_int_equal(n, 1); /* the lost batch's ack and sends are not counted */
    assert_int_equal(bytes, 4 + 4);
    c->fx->ops->queue_size(c->s, "t2", 2, store_hash_name("t2", 2), &n, &bytes);
    assert_int_equal(n, 0);
    m = take(c, "t");
    assert_int_equal(m.body_len, 4);
    assert_memory_equal(m.body, "base", 4);
    assert_int_equal(m.redeliveries, 2); /* its ack was lost with the batch */
    empty(c, "t");
    empty(c, "t2");
    /* The same batch committed: all of it. */
    assert_int_equal(c->fx->ops->ack(c->s, m.id), STORE_OK);
    put(c, "t", "tx1");
    put(c, "t2", "tx2");
    commit(c);
    c->fx->ops->close(c->s);
    open_store(c, 0);
    take_body(c, "t", "tx1", 0);
    empty(c, "t");
    take_body(c, "t2", "tx2", 0);
}

/* Header blocks are opaque bytes: every byte value, NULs included, comes back exactly. */
static void test_header_bytes(void **state)
{
    ctx *c = *state;
    char hdr[512];
    for (int i = 0; i < 512; i++)
        hdr[i] = (char)(i & 0xff);
    uint64_t id;
    assert_int_equal(c->fx->ops->enqueue(c->s, "hb", 2, hdr, sizeof hdr, "b", 1, &id),
                     STORE_OK);
    /* A queue name with odd bytes too (not NUL-terminated by the caller). */
    const char qn[] = { 'q', '\0', (char)0xff, ':', '\n' };
    assert_int_equal(c->fx->ops->enqueue(c->s, qn, sizeof qn, hdr, 1, "", 0, &id), STORE_OK);
    commit(c);
    if (c->fx->persistent) {
        c->fx->ops->close(c->s);
        open_store(c, 0);
    }
    store_msg m = take(c, "hb");
    assert_int_equal(m.headers_len, sizeof hdr);
    assert_memory_equal(m.headers, hdr, sizeof hdr);
    assert_int_equal(m.body_len, 1);
    assert_memory_equal(m.body, "b", 1);
    assert_int_equal(take_rc(c, qn, sizeof qn, &m), STORE_OK);
    assert_int_equal(m.queue_len, sizeof qn);
    assert_memory_equal(m.queue, qn, sizeof qn);
    assert_int_equal(m.headers_len, 1);
    assert_int_equal(m.headers[0], 0);
    assert_int_equal(m.body_len, 0);
    assert_int_equal(take_rc(c, "q", 1, &m), STORE_E_EMPTY); /* a prefix is another queue */
}

/* Many queues at once, written interleaved: each keeps its own FIFO. */
static void test_many_queues(void **state)
{
    ctx *c = *state;
    enum { NQ = 500, PER = 4 };
    char q[32], body[32];
    for (int k = 0; k < PER; k++)
        for (int i = 0; i < NQ; i++) {
            snprintf(q, sizeof q, "/queue/many-%d", i);
            snprintf(body, sizeof body, "%d:%d", i, k);
            put(c, q, body);
        }
    commit(c);
    for (int i = NQ - 1; i >= 0; i--) {
        snprintf(q, sizeof q, "/queue/many-%d", i);
        assert_int_equal(c->fx->ops->depth(c->s, q, strlen(q)), PER);
        for (int k = 0; k < PER; k++) {
            snprintf(body, sizeof body, "%d:%d", i, k);
            store_msg m = take(c, q);
            assert_int_equal(m.body_len, strlen(body));
            assert_memory_equal(m.body, body, m.body_len);
            assert_int_equal(c->fx->ops->ack(c->s, m.id), STORE_OK);
        }
        empty(c, q);
    }
    commit(c);
}

/* resident() follows what is held: more after a megabyte is enqueued, less once acked. */
static void test_resident(void **state)
{
    ctx *c = *state;
    size_t before = c->fx->ops->resident(c->s);
    assert_true(before > 0);
    size_t n = 1u << 20;
    char *big = calloc(1, n);
    assert_non_null(big);
    uint64_t id;
    assert_int_equal(c->fx->ops->enqueue(c->s, "res", 3, NULL, 0, big, n, &id), STORE_OK);
    free(big);
    assert_true(c->fx->ops->resident(c->s) >= before + n);
    commit(c);
    store_msg m = take(c, "res");
    assert_int_equal(c->fx->ops->ack(c->s, m.id), STORE_OK);
    commit(c);
    assert_true(c->fx->ops->resident(c->s) < before + n);
}

/* Version 3: the hashed enqueue and take are the same queue as the plain ones. */
static void test_hashed_same_queue(void **state)
{
    ctx *c = *state;
    assert_true(c->fx->ops->version >= 3);
    const char *q = "hashed.queue.name";
    size_t ql = strlen(q);
    uint64_t h = store_hash_name(q, ql), id1 = 0, id2 = 0;
    assert_int_not_equal(h, store_hash_name(q, ql - 1));
    assert_int_equal(c->fx->ops->enqueue_hashed(c->s, q, ql, h, NULL, 0, "one", 3, &id1),
                     STORE_OK);
    assert_int_equal(c->fx->ops->enqueue(c->s, q, ql, NULL, 0, "two", 3, &id2), STORE_OK);
    assert_true(id2 > id1);
    commit(c);
    store_msg m;
    store_err rc = c->fx->ops->take_hashed(c->s, q, ql, h, &m);
    if (rc == STORE_E_AGAIN) {
        commit(c);
        rc = c->fx->ops->take_hashed(c->s, q, ql, h, &m);
    }
    assert_int_equal(rc, STORE_OK);
    assert_int_equal(m.id, id1);
    assert_memory_equal(m.body, "one", 3);
    take_body(c, q, "two", 0);
    assert_int_equal(c->fx->ops->take_hashed(c->s, q, ql, h, &m), STORE_E_EMPTY);
    /* "a" and "a\0" are different names with different hashes. */
    assert_int_not_equal(store_hash_name("a", 1), store_hash_name("a\0", 2));
}

/* Version 4: a message of the open batch can be taken back, as if never enqueued. */
static void test_cancel(void **state)
{
    ctx *c = *state;
    assert_true(c->fx->ops->version >= 4);
    uint64_t a = put(c, "x", "a");
    uint64_t b = put(c, "x", "b");
    uint64_t only = put(c, "lone", "z"); /* a queue with nothing else */
    put(c, "x", "c");
    assert_int_equal(c->fx->ops->cancel(c->s, b), STORE_OK);
    assert_int_equal(c->fx->ops->cancel(c->s, b), STORE_E_NOTFOUND);
    assert_int_equal(c->fx->ops->cancel(c->s, only), STORE_OK);
    assert_int_equal(c->fx->ops->cancel(c->s, 999999), STORE_E_NOTFOUND);
    uint64_t d = put(c, "x", "d");
    assert_true(d > b); /* ids are never reused */
    commit(c);
    assert_int_equal(c->fx->ops->cancel(c->s, a), STORE_E_NOTFOUND); /* committed */
    if (c->fx->persistent) {
        /* What was taken back never reached the file. */
        c->fx->ops->close(c->s);
        open_store(c, 0);
    }
    take_body(c, "x", "a", 0);
    take_body(c, "x", "c", 0);
    take_body(c, "x", "d", 0);
    empty(c, "x");
    empty(c, "lone");
    assert_int_equal(c->fx->ops->depth(c->s, "lone", 4), 0);
}

/* Version 5: take_at at time now, for a queue named q. */
static store_err take_at_rc(ctx *c, const char *q, uint64_t now, store_msg *m)
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

static void take_at_body(ctx *c, const char *q, uint64_t now, const char *body, uint32_t redel)
{
    store_msg m;
    assert_int_equal(take_at_rc(c, q, now, &m), STORE_OK);
    assert_int_equal(m.body_len, strlen(body));
    assert_memory_equal(m.body, body, m.body_len);
    assert_int_equal(m.redeliveries, redel);
}

static uint64_t next_due(ctx *c, const char *q, uint64_t now)
{
    return c->fx->ops->next_due(c->s, q, strlen(q), store_hash_name(q, strlen(q)), now);
}

/* Version 5: a message requeued with a time is not handed out before it, then goes to the
 * head of its queue; messages due together keep their id order; the time is written. */
static void test_requeue_at(void **state)
{
    ctx *c = *state;
    const store_ops *o = c->fx->ops;
    assert_true(o->version >= 5);
    put(c, "w", "a");
    put(c, "w", "b");
    put(c, "w", "c");
    commit(c);
    store_msg a = take(c, "w"), b = take(c, "w");
    assert_int_equal(o->requeue_at(c->s, a.id, 1000), STORE_OK);
    assert_int_equal(o->requeue_at(c->s, b.id, 500), STORE_OK);
    assert_int_equal(o->requeue_at(c->s, b.id, 500), STORE_E_NOTFOUND); /* not taken */
    commit(c);
    assert_int_equal(next_due(c, "w", 100), 500);
    take_at_body(c, "w", 100, "c", 0); /* the only one due */
    store_msg n;
    assert_int_equal(take_at_rc(c, "w", 100, &n), STORE_E_EMPTY);
    take_at_body(c, "w", 500, "b", 1);
    assert_int_equal(next_due(c, "w", 500), 1000);
    assert_int_equal(next_due(c, "w", 1000), 0);
    /* Due, it goes before what was waiting: d arrives, then a is due. */
    put(c, "w", "d");
    commit(c);
    take_at_body(c, "w", 2000, "a", 1);
    take_at_body(c, "w", 2000, "d", 0);
    /* Two due at the same time come back in id order; time 0 is a plain requeue. */
    put(c, "v", "e");
    put(c, "v", "f");
    put(c, "v", "g");
    commit(c);
    store_msg e = take(c, "v"), f = take(c, "v"), g = take(c, "v");
    assert_int_equal(o->requeue_at(c->s, f.id, 700), STORE_OK);
    assert_int_equal(o->requeue_at(c->s, e.id, 700), STORE_OK);
    assert_int_equal(o->requeue_at(c->s, g.id, 0), STORE_OK);
    commit(c);
    store_msg m;
    assert_int_equal(take_at_rc(c, "v", 10, &m), STORE_OK);
    assert_memory_equal(m.body, "g", 1);
    assert_int_equal(o->ack(c->s, m.id), STORE_OK);
    commit(c);
    assert_int_equal(next_due(c, "v", 10), 700);
    if (c->fx->persistent) {
        /* The times survive a restart. */
        o->close(c->s);
        open_store(c, 0);
        assert_int_equal(next_due(c, "v", 10), 700);
        assert_int_equal(take_at_rc(c, "v", 10, &m), STORE_E_EMPTY);
    }
    take_at_body(c, "v", 700, "e", 1);
    take_at_body(c, "v", 700, "f", 1);
    assert_int_equal(take_at_rc(c, "v", UINT64_MAX, &m), STORE_E_EMPTY);
}

/* Version 6: get shows a taken message as take did, and only a taken one. */
static void test_get(void **state)
{
    ctx *c = *state;
    const store_ops *o = c->fx->ops;
    assert_true(o->version >= 6);
    uint64_t a = put(c, "g", "first");
    store_msg m;
    assert_int_equal(o->get(c->s, a, &m), STORE_E_NOTFOUND); /* pending */
    commit(c);
    assert_int_equal(o->get(c->s, a, &m), STORE_E_NOTFOUND); /* ready */
    put(c, "g", "second");
    commit(c);
    store_msg t = take(c, "g");
    assert_int_equal(o->requeue(c->s, t.id), STORE_OK);
    t = take(c, "g");
    memset(&m, 0, sizeof m);
    assert_int_equal(o->get(c->s, a, &m), STORE_OK);
    assert_int_equal(m.id, a);
    assert_int_equal(m.queue_len, 1);
    assert_memory_equal(m.queue, "g", 1);
    assert_int_equal(m.headers_len, 4);
    assert_memory_equal(m.headers, "h\0v\0", 4);
    assert_int_equal(m.body_len, 5);
    assert_memory_equal(m.body, "first", 5);
    assert_int_equal(m.redeliveries, 1);
    assert_int_equal(o->get(c->s, 999999, &m), STORE_E_NOTFOUND);
    assert_int_equal(o->ack(c->s, a), STORE_OK);
    assert_int_equal(o->get(c->s, a, &m), STORE_E_NOTFOUND); /* acked */
    commit(c);
    take_body(c, "g", "second", 0);
}

/* ---- version 7 ---- */

/* Close and open again, on a backend whose data survives that. */
static void reopen_if_persistent(ctx *c)
{
    if (!c->fx->persistent)
        return;
    c->fx->ops->close(c->s);
    open_store(c, 0);
}

static uint64_t put_attrs(ctx *c, const char *q, const char *body, uint8_t prio,
                          uint64_t not_before, uint64_t expires)
{
    store_attrs a = { prio, not_before, expires };
    uint64_t id = 0;
    assert_int_equal(c->fx->ops->enqueue_attrs(c->s, q, strlen(q), store_hash_name(q, strlen(q)),
                                               "h\0v\0", 4, body, strlen(body), &a, &id),
                     STORE_OK);
    return id;
}

/* take_at's answer must be body, with that count and priority. */
static store_msg take_at_is(ctx *c, const char *q, uint64_t now, const char *body,
                            uint32_t redel, uint8_t prio)
{
    store_msg m;
    memset(&m, 0, sizeof m);
    assert_int_equal(take_at_rc(c, q, now, &m), STORE_OK);
    assert_int_equal(m.body_len, strlen(body));
    assert_memory_equal(m.body, body, m.body_len);
    assert_int_equal(m.redeliveries, redel);
    assert_int_equal(m.priority, prio);
    return m;
}

static void size_is(ctx *c, const char *q, uint64_t count, uint64_t bytes)
{
    uint64_t n = 99, b = 99;
    c->fx->ops->queue_size(c->s, q, strlen(q), store_hash_name(q, strlen(q)), &n, &b);
    assert_int_equal(n, count);
    assert_int_equal(b, bytes);
}

/* Highest priority first, FIFO within one; enqueue's messages have 4; a requeued message
 * goes to the head of its own priority, not before higher ones; the order survives a
 * reopen, messages taken at the close coming back at their place. */
static void test_priority_order(void **state)
{
    ctx *c = *state;
    const store_ops *o = c->fx->ops;
    assert_true(o->version >= 7);
    store_attrs bad = { STORE_PRIORITY_MAX + 1, 0, 0 };
    uint64_t id;
    assert_int_equal(o->enqueue_attrs(c->s, "p", 1, store_hash_name("p", 1), NULL, 0, "x", 1,
                                      &bad, &id),
                     STORE_E_INVALID);
    put(c, "p", "d1");
    put_attrs(c, "p", "l1", 1, 0, 0);
    put_attrs(c, "p", "h1", 9, 0, 0);
    put_attrs(c, "p", "d2", STORE_PRIORITY_DEFAULT, 0, 0);
    assert_int_equal(o->enqueue_attrs(c->s, "p", 1, store_hash_name("p", 1), "", 0, "z1", 2,
                                      NULL, &id),
                     STORE_OK); /* no attributes: those of enqueue */
    put_attrs(c, "p", "h2", 9, 0, 0);
    put_attrs(c, "p", "z0", 0, 0, 0);
    commit(c);
    reopen_if_persistent(c);
    store_msg d1 = take_at_is(c, "p", 1, "h1", 0, 9);
    assert_int_equal(o->ack(c->s, d1.id), STORE_OK);
    take_at_is(c, "p", 1, "h2", 0, 9); /* still taken at the close below */
    d1 = take_at_is(c, "p", 1, "d1", 0, 4);
    store_msg d2 = take_at_is(c, "p", 1, "d2", 0, 4);
    put_attrs(c, "p", "h3", 9, 0, 0);
    commit(c);
    assert_int_equal(o->requeue(c->s, d2.id), STORE_OK);
    assert_int_equal(o->requeue(c->s, d1.id), STORE_OK);
    commit(c);
    reopen_if_persistent(c);
    if (c->fx->persistent)
        take_at_is(c, "p", 1, "h2", 1, 9);
    take_at_is(c, "p", 1, "h3", 0, 9);
    take_at_is(c, "p", 1, "d1", 1, 4);
    take_at_is(c, "p", 1, "d2", 1, 4);
    take_at_is(c, "p", 1, "z1", 0, 4);
    take_at_is(c, "p", 1, "l1", 0, 1);
    take_at_is(c, "p", 1, "z0", 0, 0);
    store_msg m;
    assert_int_equal(take_at_rc(c, "p", 1, &m), STORE_E_EMPTY);
    commit(c);
}

/* A message enqueued with a time waits for it, then takes its place by id in its priority
 * (not at the head: it was never handed out); next_due tells when; times survive a reopen. */
static void test_delayed_enqueue(void **state)
{
    ctx *c = *state;
    put_attrs(c, "d", "late", 4, 1000, 0);
    put(c, "d", "b");
    put(c, "d", "c");
    put_attrs(c, "d", "urgent-late", 8, 500, 0);
    commit(c);
    assert_int_equal(next_due(c, "d", 10), 500);
    size_is(c, "d", 4, 4 * 4 + 4 + 1 + 1 + 11);
    store_msg m = take_at_is(c, "d", 10, "b", 0, 4);
    assert_int_equal(c->fx->ops->ack(c->s, m.id), STORE_OK);
    commit(c);
    reopen_if_persistent(c);
    assert_int_equal(next_due(c, "d", 10), 500);
    take_at_is(c, "d", 600, "urgent-late", 0, 8);
    assert_int_equal(next_due(c, "d", 600), 1000);
    take_at_is(c, "d", 1000, "late", 0, 4); /* before c: its id is lower */
    take_at_is(c, "d", 1000, "c", 0, 4);
    assert_int_equal(take_at_rc(c, "d", UINT64_MAX, &m), STORE_E_EMPTY);
    assert_int_equal(next_due(c, "d", 1000), 0);
    commit(c);
}

/* Expired messages are not handed out by take_at (STORE_E_EXPIRED while one is first) but
 * by take_expired, earliest expiry first across queues, waiting ones too; next_expiry says
 * when; an expiry still to come changes nothing; it all survives a reopen. */
static void test_expiry(void **state)
{
    ctx *c = *state;
    const store_ops *o = c->fx->ops;
    assert_int_equal(o->next_expiry(c->s), 0);
    put_attrs(c, "x", "e1", 4, 0, 100);
    put_attrs(c, "x", "n1", 4, 0, 0);
    put_attrs(c, "y", "e2", 4, 0, 50);
    put_attrs(c, "y", "w1", 4, 500, 60);
    commit(c);
    assert_int_equal(o->next_expiry(c->s), 50);
    store_msg m = take_at_is(c, "x", 10, "e1", 0, 4);
    assert_int_equal(m.expires, 100);
    assert_int_equal(o->requeue(c->s, m.id), STORE_OK);
    assert_int_equal(o->take_expired(c->s, 40, &m), STORE_E_EMPTY);
    commit(c);
    reopen_if_persistent(c);
    assert_int_equal(o->next_expiry(c->s), 50);
    assert_int_equal(take_at_rc(c, "x", 100, &m), STORE_E_EXPIRED);
    assert_int_equal(o->take_expired(c->s, 100, &m), STORE_OK);
    assert_memory_equal(m.body, "e2", 2);
    assert_memory_equal(m.queue, "y", 1);
    assert_int_equal(m.expires, 50);
    assert_int_equal(o->ack(c->s, m.id), STORE_OK);
    assert_int_equal(o->take_expired(c->s, 100, &m), STORE_OK);
    assert_memory_equal(m.body, "w1", 2); /* waiting, expired all the same */
    assert_int_equal(o->ack(c->s, m.id), STORE_OK);
    assert_int_equal(o->take_expired(c->s, 100, &m), STORE_OK);
    assert_memory_equal(m.body, "e1", 2);
    assert_int_equal(m.redeliveries, 1);
    uint64_t e1 = m.id;
    assert_int_equal(o->take_expired(c->s, 100, &m), STORE_E_EMPTY);
    assert_int_equal(o->next_expiry(c->s), 0); /* e1 is taken */
    /* Requeued, it is back where it was: first, and expired. */
    assert_int_equal(o->requeue(c->s, e1), STORE_OK);
    assert_int_equal(o->next_expiry(c->s), 100);
    assert_int_equal(take_at_rc(c, "x", 100, &m), STORE_E_EXPIRED);
    assert_int_equal(o->take_expired(c->s, 1000, &m), STORE_OK);
    assert_int_equal(m.id, e1);
    assert_int_equal(o->get(c->s, e1, &m), STORE_OK);
    assert_int_equal(m.expires, 100);
    assert_int_equal(o->ack(c->s, e1), STORE_OK);
    take_at_is(c, "x", 100, "n1", 0, 4);
    assert_int_equal(take_at_rc(c, "x", 100, &m), STORE_E_EMPTY);
    commit(c);
    /* take and take_hashed use no time: they hand out an expired message like any other. */
    put_attrs(c, "x", "old", 4, 0, 5);
    commit(c);
    take_body(c, "x", "old", 0);
    assert_int_equal(o->next_expiry(c->s), 0);
}

/* A queue's size counts its messages not acked, in every state, and their bytes. */
static void test_queue_size(void **state)
{
    ctx *c = *state;
    const store_ops *o = c->fx->ops;
    size_is(c, "s", 0, 0);
    put(c, "s", "abc"); /* a header block of 4 bytes, a body of 3 */
    size_is(c, "s", 1, 7);
    uint64_t later = put_attrs(c, "s", "later", 4, 1000, 0);
    uint64_t gone = put(c, "s", "gone");
    assert_int_equal(o->cancel(c->s, gone), STORE_OK);
    size_is(c, "s", 2, 7 + 9);
    commit(c);
    size_is(c, "s", 2, 16);
    store_msg abc = take(c, "s");
    size_is(c, "s", 2, 16);
    put_attrs(c, "s", "big", 9, 0, 77);
    commit(c);
    reopen_if_persistent(c);
    size_is(c, "s", 3, 16 + 7);
    store_msg m = take(c, "s");
    assert_memory_equal(m.body, "big", 3);
    assert_int_equal(o->ack(c->s, m.id), STORE_OK);
    size_is(c, "s", 2, 16);
    commit(c);
    if (c->fx->persistent)
        reopen_if_persistent(c); /* "abc", taken at the close, is back */
    else
        assert_int_equal(o->requeue(c->s, abc.id), STORE_OK);
    size_is(c, "s", 2, 16);
    take_body(c, "s", "abc", 1);
    take_body(c, "s", "later", 0);
    (void)later;
    size_is(c, "s", 2, 16);
    size_is(c, "none", 0, 0);
}

/* browse from a zeroed cursor to STORE_E_EMPTY: the bodies in order, in out (joined by
 * spaces), n at most. */
static void browse_all(ctx *c, const char *q, uint64_t now, store_cursor *cur, char *out,
                       size_t n)
{
    store_msg m;
    store_err rc;
    out[0] = '\0';
    while ((rc = c->fx->ops->browse(c->s, q, strlen(q), store_hash_name(q, strlen(q)), cur, now,
                                    &m)) == STORE_OK) {
        size_t len = strlen(out);
        snprintf(out + len, n - len, "%s%.*s", len ? " " : "", (int)m.body_len, m.body);
    }
    assert_int_equal(rc, STORE_E_EMPTY);
}

/* browse reads the ready messages in delivery order without taking them; a message stays
 * seen once whatever happens behind the cursor. */
static void test_browse(void **state)
{
    ctx *c = *state;
    const store_ops *o = c->fx->ops;
    put(c, "b", "a");
    put(c, "b", "b");
    put_attrs(c, "b", "h", 9, 0, 0);
    put_attrs(c, "b", "z", 0, 0, 0);
    put_attrs(c, "b", "w", 4, 1000, 0);
    put_attrs(c, "b", "x", 4, 0, 5); /* expired at 10: shown, expires says so */
    commit(c);
    store_cursor cur;
    char seen[128];
    memset(&cur, 0, sizeof cur);
    browse_all(c, "b", 10, &cur, seen, sizeof seen);
    assert_string_equal(seen, "h a b x z");
    assert_int_equal(c->fx->ops->depth(c->s, "b", 1), 6);
    reopen_if_persistent(c);
    /* Half way, the one given last is taken and requeued, another taken, one added. */
    memset(&cur, 0, sizeof cur);
    store_msg m;
    uint64_t h = store_hash_name("b", 1);
    assert_int_equal(o->browse(c->s, "b", 1, h, &cur, 10, &m), STORE_OK);
    assert_memory_equal(m.body, "h", 1);
    assert_int_equal(o->browse(c->s, "b", 1, h, &cur, 10, &m), STORE_OK);
    assert_memory_equal(m.body, "a", 1);
    assert_int_equal(m.priority, 4);
    store_msg t = take(c, "b");
    assert_memory_equal(t.body, "h", 1);
    t = take(c, "b");
    assert_memory_equal(t.body, "a", 1);
    assert_int_equal(o->requeue(c->s, t.id), STORE_OK);
    put_attrs(c, "b", "y", 1, 0, 0);
    commit(c);
    browse_all(c, "b", 1000, &cur, seen, sizeof seen);
    assert_string_equal(seen, "b w x y z"); /* w is due at 1000: ready, by its id */
    browse_all(c, "none", 10, &cur, seen, sizeof seen);
    assert_string_equal(seen, "");
    take_at_is(c, "b", 1000, "a", 1, 4);
}

/* ---- version 8 ---- */

typedef struct listing {
    const char *prefix;
    char names[8][16];
    int n;
} listing;

static void list_one(void *arg, const char *name, size_t len, uint64_t hash)
{
    listing *l = arg;
    assert_int_equal(hash, store_hash_name(name, len));
    if (len < strlen(l->prefix) || memcmp(name, l->prefix, strlen(l->prefix)) != 0)
        return;
    assert_true(l->n < 8 && len < 16);
    memcpy(l->names[l->n], name, len);
    l->names[l->n++][len] = '\0';
}

/* The names listed with prefix, sorted, space-separated, into out. */
static void list_queues(ctx *c, const char *prefix, char *out, size_t cap)
{
    listing l = { .prefix = prefix, .n = 0 };
    c->fx->ops->queues(c->s, list_one, &l);
    qsort(l.names, (size_t)l.n, sizeof l.names[0], (int (*)(const void *, const void *))strcmp);
    out[0] = '\0';
    for (int i = 0; i < l.n; i++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? " " : "", l.names[i]);
}

/* Queues are listed by prefix while they hold a message in any state; an emptied queue is
 * gone from the list (and stays gone across a reopen), one left holding messages stays. */
static void test_queues_listed(void **state)
{
    ctx *c = *state;
    const store_ops *o = c->fx->ops;
    char seen[128];
    assert_true(o->version >= 8);
    list_queues(c, "", seen, sizeof seen);
    assert_string_equal(seen, "");
    put(c, "tmp/a", "1");
    put(c, "tmp/b", "2");
    put(c, "other", "3");
    list_queues(c, "tmp/", seen, sizeof seen); /* pending ones count */
    assert_string_equal(seen, "tmp/a tmp/b");
    commit(c);
    list_queues(c, "", seen, sizeof seen);
    assert_string_equal(seen, "other tmp/a tmp/b");
    store_msg m = take(c, "tmp/a");
    list_queues(c, "tmp/a", seen, sizeof seen); /* taken */
    assert_string_equal(seen, "tmp/a");
    assert_int_equal(o->ack(c->s, m.id), STORE_OK);
    commit(c);
    list_queues(c, "tmp/", seen, sizeof seen);
    assert_string_equal(seen, "tmp/b");
    list_queues(c, "tmp/bb", seen, sizeof seen);
    assert_string_equal(seen, "");
    if (!c->fx->persistent)
        return;
    o->close(c->s);
    open_store(c, 0);
    list_queues(c, "", seen, sizeof seen);
    assert_string_equal(seen, "other tmp/b");
}

int store_contract_run(const store_fixture *fx)
{
    current = fx;
    const struct CMUnitTest every[] = {
        cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_until_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_and_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_and_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requeue_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queues_independent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_mixes_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_queues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resident, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hashed_same_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requeue_at, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priority_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delayed_enqueue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_browse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queues_listed, setup, teardown),
        /* Only for backends whose data survives a close: */
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_counts_and_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_all_or_nothing, setup, teardown),
    };
    size_t n = sizeof every / sizeof every[0];
    if (!fx->persistent)
        n -= 3; /* the reopen cases ask nothing of a store that keeps nothing */
    return _cmocka_run_group_tests(fx->name, every, n, NULL, NULL);
}
