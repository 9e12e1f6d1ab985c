/* store_contract_match.c: the store contract's version 8 cases (see store_contract.h):
 * take_match hands out the first ready message a consumer's match accepts and leaves the
 * others in their order; a scan asks about each message once (new messages only on the
 * next call), starts over after a requeue or a delayed message becoming due, follows
 * priority, stops before an expired match, and (persistent) reads past a window of the
 * file; queues lists every queue that holds a message.
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

typedef struct mctx {
    const store_fixture *fx;
    uv_loop_t loop;
    store *s;
} mctx;

static const store_fixture *current;

static void on_commit(void *arg, store_err status)
{
    int *called = arg;
    assert_int_equal(status, STORE_OK);
    (*called)++;
}

static void commit(mctx *c)
{
    int called = 0;
    store_err rc = c->fx->ops->commit(c->s, on_commit, &called);
    if (rc == STORE_DONE)
        return;
    assert_int_equal(rc, STORE_OK);
    while (!called)
        uv_run(&c->loop, UV_RUN_ONCE);
}

static void open_store(mctx *c, int fresh)
{
    store_options o;
    memset(&o, 0, sizeof o);
    c->fx->options(&o, &c->loop, fresh);
    assert_int_equal(c->fx->ops->open(&o, &c->s), STORE_OK);
}

static int setup(void **state)
{
    mctx *c = calloc(1, sizeof *c);
    c->fx = current;
    if (uv_loop_init(&c->loop) != 0)
        return -1;
    open_store(c, 1);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    mctx *c = *state;
    c->fx->ops->close(c->s);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&c->loop);
    free(c);
    return rc == 0 ? 0 : -1;
}

/* A message of queue q with body and the header block "c\0<color>\0". */
static uint64_t put(mctx *c, const char *q, const char *color, const char *body, uint8_t prio,
                    uint64_t not_before, uint64_t expires)
{
    char hdrs[32];
    size_t hlen = (size_t)snprintf(hdrs, sizeof hdrs, "c%c%s", 0, color) + 1;
    store_attrs a = { prio, not_before, expires };
    uint64_t id = 0;
    assert_int_equal(c->fx->ops->enqueue_attrs(c->s, q, strlen(q), store_hash_name(q, strlen(q)),
                                               hdrs, hlen, body, strlen(body), &a, &id),
                     STORE_OK);
    return id;
}

/* The match: the header block's color is want; every call counted. */
typedef struct want {
    const char *color;
    int asked;
    int agains; /* STORE_E_AGAIN answers: the message found is asked again after the commit */
} want;

static int match_color(void *arg, const store_msg *m)
{
    want *w = arg;
    w->asked++;
    return m->headers_len > 2 && strcmp(m->headers + 2, w->color) == 0;
}

static store_err take_match_rc(mctx *c, const char *q, uint64_t now, store_scan *sc, want *w,
                               store_msg *m)
{
    const store_ops *o = c->fx->ops;
    uint64_t h = store_hash_name(q, strlen(q));
    store_err rc = o->take_match(c->s, q, strlen(q), h, now, sc, match_color, w, m);
    if (rc == STORE_E_AGAIN) {
        w->agains++;
        commit(c);
        rc = o->take_match(c->s, q, strlen(q), h, now, sc, match_color, w, m);
    }
    return rc;
}

/* The next match must be body. */
static store_msg match_is(mctx *c, const char *q, uint64_t now, store_scan *sc, want *w,
                          const char *body)
{
    store_msg m;
    memset(&m, 0, sizeof m);
    assert_int_equal(take_match_rc(c, q, now, sc, w, &m), STORE_OK);
    assert_int_equal(m.body_len, strlen(body));
    assert_memory_equal(m.body, body, m.body_len);
    return m;
}

static void take_is(mctx *c, const char *q, uint64_t now, const char *body)
{
    store_msg m;
    const store_ops *o = c->fx->ops;
    uint64_t h = store_hash_name(q, strlen(q));
    store_err rc = o->take_at(c->s, q, strlen(q), h, now, &m);
    if (rc == STORE_E_AGAIN) {
        commit(c);
        rc = o->take_at(c->s, q, strlen(q), h, now, &m);
    }
    assert_int_equal(rc, STORE_OK);
    assert_int_equal(m.body_len, strlen(body));
    assert_memory_equal(m.body, body, m.body_len);
}

/* Two consumers with different matches take theirs; what neither wants stays, in order,
 * for a plain take. */
static void test_match_takes_first_match(void **state)
{
    mctx *c = *state;
    put(c, "q", "red", "r1", 4, 0, 0);
    put(c, "q", "blue", "b1", 4, 0, 0);
    put(c, "q", "green", "g1", 4, 0, 0);
    put(c, "q", "red", "r2", 4, 0, 0);
    put(c, "q", "blue", "b2", 4, 0, 0);
    put(c, "q", "green", "g2", 4, 0, 0);
    commit(c);
    store_scan sr, sb;
    memset(&sr, 0, sizeof sr);
    memset(&sb, 0, sizeof sb);
    want r = { "red", 0, 0 }, b = { "blue", 0, 0 };
    match_is(c, "q", 10, &sb, &b, "b1");
    match_is(c, "q", 10, &sr, &r, "r1");
    match_is(c, "q", 10, &sr, &r, "r2");
    match_is(c, "q", 10, &sb, &b, "b2");
    store_msg m;
    assert_int_equal(take_match_rc(c, "q", 10, &sr, &r, &m), STORE_E_EMPTY);
    assert_int_equal(take_match_rc(c, "q", 10, &sb, &b, &m), STORE_E_EMPTY);
    take_is(c, "q", 10, "g1");
    take_is(c, "q", 10, "g2");
    assert_int_equal(take_match_rc(c, "none", 10, &sr, &r, &m), STORE_E_EMPTY);
}

/* A scan asks about each message once: a second call after new messages asks only about
 * them, also when another consumer took the message it stopped at. */
static void test_match_asks_once(void **state)
{
    mctx *c = *state;
    for (int i = 0; i < 100; i++)
        put(c, "q", "green", "g", 4, 0, 0);
    put(c, "q", "red", "r1", 4, 0, 0);
    commit(c);
    store_scan sc;
    memset(&sc, 0, sizeof sc);
    want r = { "red", 0, 0 };
    match_is(c, "q", 10, &sc, &r, "r1");
    assert_int_equal(r.asked, 101);
    store_msg m;
    assert_int_equal(take_match_rc(c, "q", 10, &sc, &r, &m), STORE_E_EMPTY);
    assert_int_equal(r.asked, 101);
    put(c, "q", "green", "g", 4, 0, 0);
    put(c, "q", "red", "r2", 4, 0, 0);
    commit(c);
    match_is(c, "q", 10, &sc, &r, "r2");
    assert_int_equal(r.asked, 103);
    /* Plain takes remove what the scan passed, the one before its place included. */
    for (int i = 0; i < 101; i++)
        take_is(c, "q", 10, "g");
    put(c, "q", "red", "r3", 4, 0, 0);
    commit(c);
    match_is(c, "q", 10, &sc, &r, "r3");
    assert_int_equal(r.asked, 104);
}

/* A requeued message (to the head) and a delayed one that becomes due are found: the scan
 * starts over once. */
static void test_match_after_requeue_and_delay(void **state)
{
    mctx *c = *state;
    const store_ops *o = c->fx->ops;
    put(c, "q", "green", "g1", 4, 0, 0);
    put(c, "q", "red", "r1", 4, 0, 0);
    put(c, "q", "red", "late", 4, 500, 0);
    put(c, "q", "green", "g2", 4, 0, 0);
    commit(c);
    store_scan sc;
    memset(&sc, 0, sizeof sc);
    want r = { "red", 0, 0 };
    store_msg m = match_is(c, "q", 10, &sc, &r, "r1");
    store_msg none;
    assert_int_equal(take_match_rc(c, "q", 10, &sc, &r, &none), STORE_E_EMPTY);
    assert_int_equal(o->requeue(c->s, m.id), STORE_OK);
    m = match_is(c, "q", 10, &sc, &r, "r1");
    assert_int_equal(m.redeliveries, 1);
    assert_int_equal(o->ack(c->s, m.id), STORE_OK);
    assert_int_equal(take_match_rc(c, "q", 10, &sc, &r, &none), STORE_E_EMPTY);
    match_is(c, "q", 500, &sc, &r, "late");
    assert_int_equal(take_match_rc(c, "q", 500, &sc, &r, &none), STORE_E_EMPTY);
    take_is(c, "q", 500, "g1");
    take_is(c, "q", 500, "g2");
}

/* Priority first, FIFO within a priority; a higher priority message that arrives after the
 * scan passed the lower ones is found. */
static void test_match_priority(void **state)
{
    mctx *c = *state;
    put(c, "q", "red", "r4", 4, 0, 0);
    put(c, "q", "green", "g9", 9, 0, 0);
    put(c, "q", "red", "r7", 7, 0, 0);
    commit(c);
    store_scan sc;
    memset(&sc, 0, sizeof sc);
    want r = { "red", 0, 0 };
    match_is(c, "q", 10, &sc, &r, "r7");
    put(c, "q", "red", "r8", 8, 0, 0);
    put(c, "q", "red", "r0", 0, 0, 0);
    commit(c);
    match_is(c, "q", 10, &sc, &r, "r8");
    match_is(c, "q", 10, &sc, &r, "r4");
    match_is(c, "q", 10, &sc, &r, "r0");
    take_is(c, "q", 10, "g9");
}

/* An expired match is not handed out: STORE_E_EXPIRED, and after take_expired the scan
 * goes on with the next. */
static void test_match_expired(void **state)
{
    mctx *c = *state;
    const store_ops *o = c->fx->ops;
    put(c, "q", "red", "old", 4, 0, 5);
    put(c, "q", "red", "new", 4, 0, 0);
    commit(c);
    store_scan sc;
    memset(&sc, 0, sizeof sc);
    want r = { "red", 0, 0 };
    store_msg m;
    assert_int_equal(take_match_rc(c, "q", 10, &sc, &r, &m), STORE_E_EXPIRED);
    assert_int_equal(o->take_expired(c->s, 10, &m), STORE_OK);
    assert_memory_equal(m.body, "old", 3);
    assert_int_equal(o->ack(c->s, m.id), STORE_OK);
    match_is(c, "q", 10, &sc, &r, "new");
}

/* Persistent: after a reopen the messages are in the file; a match beyond a window of
 * them is found, and what the scan passed is still there in order. */
static void test_match_reads_the_file(void **state)
{
    mctx *c = *state;
    for (int i = 0; i < 3000; i++)
        put(c, "q", "green", "g", 4, 0, 0);
    put(c, "q", "red", "r", 4, 0, 0);
    commit(c);
    c->fx->ops->close(c->s);
    open_store(c, 0);
    store_scan sc;
    memset(&sc, 0, sizeof sc);
    want r = { "red", 0, 0 };
    match_is(c, "q", 10, &sc, &r, "r");
    assert_int_equal(r.asked, 3001 + r.agains);
    for (int i = 0; i < 3000; i++)
        take_is(c, "q", 10, "g");
    store_msg m;
    assert_int_equal(take_match_rc(c, "q", 10, &sc, &r, &m), STORE_E_EMPTY);
}

static void collect(void *arg, const char *name, size_t len, uint64_t hash)
{
    char *out = arg;
    assert_int_equal(hash, store_hash_name(name, len));
    assert_int_equal(name[len], '\0');
    strcat(out, name);
    strcat(out, " ");
}

/* queues names every queue that holds a message, in any state. */
static void test_queues(void **state)
{
    mctx *c = *state;
    const store_ops *o = c->fx->ops;
    char seen[128] = "";
    o->queues(c->s, collect, seen);
    assert_string_equal(seen, "");
    put(c, "a.x", "red", "1", 4, 0, 0);
    commit(c);
    put(c, "a.y", "red", "2", 4, 0, 0); /* pending */
    put(c, "b", "red", "3", 4, 1000, 0); /* waiting, once committed */
    o->queues(c->s, collect, seen);
    assert_int_equal(strlen(seen), strlen("a.x a.y b "));
    assert_non_null(strstr(seen, "a.x "));
    assert_non_null(strstr(seen, "a.y "));
    assert_non_null(strstr(seen, "b "));
    commit(c);
    store_msg m;
    uint64_t h = store_hash_name("a.x", 3);
    store_err rc = o->take_at(c->s, "a.x", 3, h, 10, &m);
    if (rc == STORE_E_AGAIN) {
        commit(c);
        rc = o->take_at(c->s, "a.x", 3, h, 10, &m);
    }
    assert_int_equal(rc, STORE_OK);
    seen[0] = '\0';
    o->queues(c->s, collect, seen);
    assert_non_null(strstr(seen, "a.x ")); /* taken: still held */
    assert_int_equal(o->ack(c->s, m.id), STORE_OK);
    commit(c);
    seen[0] = '\0';
    o->queues(c->s, collect, seen);
    assert_null(strstr(seen, "a.x "));
}

int store_contract_run_match(const store_fixture *fx)
{
    current = fx;
    const struct CMUnitTest every[] = {
        cmocka_unit_test_setup_teardown(test_match_takes_first_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_asks_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_after_requeue_and_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_priority, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queues, setup, teardown),
        /* Only for backends with a file: */
        cmocka_unit_test_setup_teardown(test_match_reads_the_file, setup, teardown),
    };
    size_t n = sizeof every / sizeof every[0] - (fx->persistent ? 0 : 1);
    char name[128];
    snprintf(name, sizeof name, "%s (version 8)", fx->name);
    return _cmocka_run_group_tests(name, every, n, NULL, NULL);
}
