/* test_expiry.c: a queue message expires when its time comes, also on a queue nobody
 * consumes and also when its time came while its commit was still under way, on the memory
 * and the SQLite store.
 *
 * The broker's clock is the test's (broker_options.clock), moved by the test; the store is
 * the real one behind a wrapper that holds a commit back (not yet asked of the store) until
 * the test lets it through, so the expiry check runs before the message is committed
 * whatever the machine's speed: what a slow SQLite commit does, here on either store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_sqlite.h"
#include "testlib.h"

#define T0 1800000000000ull /* the broker's clock at the start, ms */
#define TTL 50

typedef struct fixture {
    tb_store st; /* memory, or a SQLite file */
} fixture;

/* Set before the broker starts; then read and written on its thread only (tb_call). */
static const store_ops *real; /* the store under the wrapper */
static store_ops held_ops;    /* real's, commits held back while hold is set */
static int hold;
static store *held_s; /* a commit held back (not yet asked of the store), if any */
static store_commit_cb held_cb;
static void *held_arg;
static uint64_t clock_now;       /* the broker's clock */
static uint64_t expiry_asked_at; /* the latest now take_expired was asked at */

static uint64_t test_clock(void *ctx)
{
    (void)ctx;
    return clock_now;
}

/* While hold is set a commit is only noted: for the broker it is under way, for the store
 * not yet asked (its writes are not committed, as in a slow commit). */
static store_err held_commit(store *s, store_commit_cb cb, void *arg)
{
    if (!hold)
        return real->commit(s, cb, arg);
    held_s = s;
    held_cb = cb;
    held_arg = arg;
    return STORE_OK;
}

static store_err noted_take_expired(store *s, uint64_t now, store_msg *out)
{
    if (now > expiry_asked_at)
        expiry_asked_at = now;
    return real->take_expired(s, now, out);
}

static int setup(void **state, int sqlite)
{
    fixture *fx = calloc(1, sizeof *fx);
    tb_store_init(&fx->st, sqlite, "expiry");
    *state = fx;
    return 0;
}

static int setup_memory(void **state)
{
    return setup(state, 0);
}

static int setup_sqlite(void **state)
{
    return setup(state, 1);
}

static int teardown(void **state)
{
    fixture *fx = *state;
    tb_store_remove(&fx->st);
    free(fx);
    return 0;
}

/* A broker on fx's store behind the wrapper; /queue/slow has ttl TTL. */
static tb *start(const fixture *fx)
{
    broker_options o;
    broker_options_init(&o);
    o.policy.redelivery_delay = 0;
    static broker_policy_rule rule = { "/queue/slow", { 0 } };
    rule.policy = o.policy;
    rule.policy.ttl = TTL;
    o.policies = &rule;
    o.npolicies = 1;
    o.clock = test_clock;
    tb_store_use(&fx->st, &o);
    real = o.store ? o.store : store_memory_backend();
    held_ops = *real;
    held_ops.commit = held_commit;
    held_ops.take_expired = noted_take_expired;
    o.store = &held_ops;
    hold = 0;
    held_cb = NULL;
    clock_now = T0;
    expiry_asked_at = 0;
    tb *t = tb_start(&o);
    assert_non_null(t);
    return t;
}

static void set_hold(broker *b, void *arg)
{
    (void)b;
    (void)arg;
    hold = 1;
}

static void set_clock(broker *b, void *arg)
{
    (void)b;
    clock_now = *(uint64_t *)arg;
}

/* Let commits through again, the one held back first (its completion comes on the loop,
 * as any commit's: here at once when the store completed it at once). */
static void release(broker *b, void *arg)
{
    (void)b;
    (void)arg;
    hold = 0;
    if (!held_cb)
        return;
    store_commit_cb cb = held_cb;
    held_cb = NULL;
    store_err rc = real->commit(held_s, cb, held_arg);
    if (rc != STORE_OK)
        cb(held_arg, rc == STORE_DONE ? STORE_OK : rc);
}

static void read_asked(broker *b, void *arg)
{
    (void)b;
    *(uint64_t *)arg = expiry_asked_at;
}

/* Wait (bounded) until take_expired was asked at now or later. */
static void wait_expiry_asked(tb *t, uint64_t now)
{
    long long end = tl_now_ms() + TL_TIMEOUT_MS;
    uint64_t at = 0;
    while (tb_call(t, read_asked, &at), at < now && tl_now_ms() < end)
        usleep(1000);
    assert_true(at >= now);
}

/* Wait (bounded) until n messages came in / expired. */
static void wait_stat(tb *t, size_t field, uint64_t n)
{
    long long end = tl_now_ms() + TL_TIMEOUT_MS;
    uint64_t v;
    for (;;) {
        broker_stats st;
        tb_stats(t, &st);
        memcpy(&v, (const char *)&st + field, sizeof v);
        if (v >= n || tl_now_ms() >= end)
            break;
        usleep(1000);
    }
    assert_int_equal(v, n);
}

/* A message whose ttl passes while its commit is under way, on a queue with no consumer:
 * it is dead-lettered once the commit completed, without a consumer coming. (With a commit
 * completing later, as SQLite's do, the expiry timer used to be left unarmed: the check at
 * its time found nothing committed, and nothing looked again after the commit, so the
 * message stayed until a consumer came.)
 * Then the same for a message whose commit was not held back. */
static void test_expires_after_slow_commit(void **state)
{
    fixture *fx = *state;
    tb *t = start(fx);
    tb_call(t, set_hold, NULL);
    tc *p = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(p);
    TC_SENDF(p, "SEND\ndestination:/queue/slow\n\nold");
    wait_stat(t, offsetof(broker_stats, messages_in), 1);
    uint64_t later = T0 + 10 * TTL;
    tb_call(t, set_clock, &later);
    wait_expiry_asked(t, later); /* its time came: checked while the commit is held */
    tb_call(t, release, NULL);
    wait_stat(t, offsetof(broker_stats, expired), 1);
    /* Not held: expires at its time too. */
    TC_SENDF(p, "SEND\ndestination:/queue/slow\nreceipt:r\n\nnext");
    tframe f;
    assert_true(tc_is(p, "RECEIPT", &f));
    tf_free(&f);
    uint64_t after = later + 10 * TTL;
    tb_call(t, set_clock, &after);
    wait_stat(t, offsetof(broker_stats, expired), 2);
    tc *d = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(d);
    TC_SENDF(d, "SUBSCRIBE\nid:d\ndestination:/queue/DLQ.slow\n\n");
    assert_true(tc_is(d, "MESSAGE", &f));
    assert_string_equal(f.body, "old");
    assert_string_equal(tf_header(&f, "dead-letter-reason"), "expired");
    tf_free(&f);
    assert_true(tc_is(d, "MESSAGE", &f));
    assert_string_equal(f.body, "next");
    tf_free(&f);
    tc_close(d);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

#define BOTH(fn)                                                                               \
    cmocka_unit_test_setup_teardown(fn, setup_memory, teardown),                               \
        cmocka_unit_test_setup_teardown(fn, setup_sqlite, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_expires_after_slow_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
