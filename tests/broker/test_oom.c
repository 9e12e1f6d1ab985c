/* test_oom.c: out of memory closes one connection, never the process. A scripted session
 * runs with the broker thread's k-th allocation failing, for every k until the session
 * needs no more; afterwards the broker must serve a new connection and stop cleanly.
 *
 * The failing allocator replaces malloc for this program (glibc's own entry points do the
 * work) and fails only on the armed broker thread; libuv is given the real allocator so
 * only broker code sees failures. Sanitizer builds bring their own malloc: skipped there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#include "failalloc.h"

#ifndef FAILALLOC_SKIP
static void arm(broker *b, void *arg)
{
    (void)b;
    failalloc_seen = 0;
    failalloc_fail_at = *(long *)arg + 1; /* arg: allocations that succeed first */
    failalloc_armed = 1;
}

static void disarm(broker *b, void *arg)
{
    (void)b;
    failalloc_armed = 0;
    *(long *)arg = failalloc_seen;
}

/* The session: every step tolerates an ERROR or a close (that is the allowed outcome);
 * a missing answer without a close is a failure (a hang). Returns 0 if it ran to the end,
 * 1 if the broker ended it. */
static int session(int port)
{
    tc *c = tc_connect(port);
    if (!c)
        return 1;
    static const char *const steps[] = {
        "CONNECT\naccept-version:1.2\n\n",
        "SUBSCRIBE\nid:q\ndestination:/queue/oom\nack:client-individual\nreceipt:1\n\n",
        "SUBSCRIBE\nid:t\ndestination:/topic/oom\nack:client\nreceipt:2\n\n",
        "SEND\ndestination:/queue/oom\nx-h:1\nreceipt:3\n\nqueue body",
        "SEND\ndestination:/topic/oom\nreceipt:4\n\ntopic body",
        "BEGIN\ntransaction:x\nreceipt:5\n\n",
        "SEND\ndestination:/queue/oom\ntransaction:x\nreceipt:6\n\nin tx",
        "COMMIT\ntransaction:x\nreceipt:7\n\n",
        "UNSUBSCRIBE\nid:t\nreceipt:8\n\n",
        "DISCONNECT\nreceipt:9\n\n",
    };
    int ended = 0;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0] && !ended; i++) {
        if (tc_send(c, steps[i]) != 0) {
            ended = 1;
            break;
        }
        /* Read until this step's answer (CONNECTED or its RECEIPT); MESSAGEs may come
         * in between. */
        for (;;) {
            tframe f;
            int r = tc_read(c, &f, TL_TIMEOUT_MS);
            assert_int_not_equal(r, -1); /* no answer and no close: a hang */
            if (r == -2) {
                ended = 1;
                break;
            }
            int is_error = strcmp(f.cmd, "ERROR") == 0;
            int answer = strcmp(f.cmd, "CONNECTED") == 0 || strcmp(f.cmd, "RECEIPT") == 0;
            if (strcmp(f.cmd, "MESSAGE") == 0 && tf_header(&f, "ack")) {
                char ack[96];
                snprintf(ack, sizeof ack, "ACK\nid:%s\n\n", tf_header(&f, "ack"));
                if (tc_send(c, ack) != 0)
                    ended = 1;
            }
            tf_free(&f);
            if (is_error) {
                assert_true(tc_closed(c, TL_TIMEOUT_MS));
                ended = 1;
                break;
            }
            if (answer)
                break;
        }
    }
    if (!ended)
        assert_true(tc_closed(c, TL_TIMEOUT_MS));
    tc_close(c);
    return ended;
}

static void drain_queue(tb *t)
{
    /* Leave the queue empty for the next round: take whatever is there. */
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    assert_int_equal(tc_send(c, "SUBSCRIBE\nid:d\ndestination:/queue/oom\n\n"), 0);
    tframe f;
    while (tc_read(c, &f, 100) == 0)
        tf_free(&f);
    tc_close(c);
}

static void test_every_allocation_fails_once(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    assert_non_null(t);
    long total = -1;
    int rounds = 0;
    for (long k = 0;; k++) {
        tb_call(t, arm, &k);
        int ended = session(tb_port(t));
        long used;
        tb_call(t, disarm, &used);
        drain_queue(t);
        rounds++;
        if (k >= used && !ended) {
            total = used;
            break;
        }
        assert_true(k < 100000);
    }
    assert_true(total > 10);
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    assert_int_equal(tc_send(c, "SEND\ndestination:/queue/alive\nreceipt:ok\n\nx"), 0);
    tframe f;
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    tc_close(c);
    print_message("%d rounds, %ld allocations in a full session\n", rounds, total);
    assert_int_equal(tb_stop(t), 0);
}

int main(void)
{
    uv_replace_allocator(__libc_malloc, __libc_realloc, __libc_calloc, __libc_free);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_allocation_fails_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
#else
static void test_skipped_under_sanitizer(void **state)
{
    (void)state;
    skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_skipped_under_sanitizer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
