/* test_window.c: prefetch windows of topic subscriptions in client ack modes, over real
 * sockets: a subscriber at its window (prefetch-count) gets nothing more until it ACKs,
 * then the waiting messages in order, none lost or doubled, far past the 1,024 unacked
 * that once closed it; Artemis's consumer-window-size holds by bytes; what waits counts
 * against max_output_bytes (a slow consumer still gets an ERROR); a byte window on a
 * queue is refused.
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

static tc *open12(tb *t)
{
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    return c;
}

static void receipt(tc *c)
{
    tframe f;
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
}

static void quiet(tc *c, int ms)
{
    tframe f;
    if (tc_read(c, &f, ms) == 0) {
        fail_msg("unexpected %s: %s", f.cmd, f.body);
        tf_free(&f);
    }
}

/* The next MESSAGE's body must be body; its ack id into ack. */
static void next(tc *c, const char *body, char *ack, size_t cap)
{
    tframe f;
    assert_true(tc_is(c, "MESSAGE", &f));
    assert_string_equal(f.body, body);
    snprintf(ack, cap, "%s", tf_header(&f, "ack"));
    tf_free(&f);
}

static void test_count_window(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    assert_non_null(t);
    tc *s = open12(t), *p = open12(t);
    TC_SENDF(s, "SUBSCRIBE\nid:w\ndestination:/topic/w\nack:client-individual\n"
                "prefetch-count:2\nreceipt:r\n\n");
    receipt(s);
    for (int i = 0; i < 5; i++)
        TC_SENDF(p, "SEND\ndestination:/topic/w\n\nm%d", i);
    TC_SENDF(p, "SEND\ndestination:/topic/w\nreceipt:sent\n\nm5");
    receipt(p);
    char a0[32], a1[32], a[32], body[16];
    next(s, "m0", a0, sizeof a0);
    next(s, "m1", a1, sizeof a1);
    quiet(s, 150);
    TC_SENDF(s, "ACK\nid:%s\n\n", a1);
    next(s, "m2", a, sizeof a);
    quiet(s, 100);
    TC_SENDF(s, "ACK\nid:%s\n\n", a0);
    next(s, "m3", a0, sizeof a0);
    TC_SENDF(s, "ACK\nid:%s\n\n", a);
    TC_SENDF(s, "ACK\nid:%s\n\n", a0);
    next(s, "m4", a, sizeof a);
    next(s, "m5", a0, sizeof a0);
    TC_SENDF(s, "ACK\nid:%s\n\n", a);
    TC_SENDF(s, "ACK\nid:%s\n\n", a0);
    /* Far past max_unacked (1,024): every message arrives, in order, as acks come. */
    enum { N = 3000 };
    for (int i = 0; i < N; i++)
        TC_SENDF(p, "SEND\ndestination:/topic/w\n\nn%d", i);
    for (int i = 0; i < N; i++) {
        snprintf(body, sizeof body, "n%d", i);
        next(s, body, a, sizeof a);
        TC_SENDF(s, "ACK\nid:%s\n\n", a);
    }
    quiet(s, 100);
    broker_stats st;
    tb_stats(t, &st);
    assert_int_equal(st.errors_sent, 0);
    tc_close(s);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

/* consumer-window-size:100 with 60-byte bodies: one message at a time; client mode's
 * cumulative ACK opens it for the rest. */
static void test_byte_window(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    assert_non_null(t);
    tc *s = open12(t), *p = open12(t);
    TC_SENDF(s, "SUBSCRIBE\nid:w\ndestination:/topic/b\nack:client\nconsumer-window-size:100\n"
                "receipt:r\n\n");
    receipt(s);
    char big[4][61];
    for (int i = 0; i < 4; i++) {
        memset(big[i], 'a' + i, 60);
        big[i][60] = '\0';
        TC_SENDF(p, "SEND\ndestination:/topic/b\nreceipt:s%d\n\n%s", i, big[i]);
        receipt(p);
    }
    char a[32];
    next(s, big[0], a, sizeof a);
    quiet(s, 150);
    TC_SENDF(s, "ACK\nid:%s\n\n", a);
    next(s, big[1], a, sizeof a);
    quiet(s, 100);
    TC_SENDF(s, "ACK\nid:%s\n\n", a);
    next(s, big[2], a, sizeof a);
    TC_SENDF(s, "ACK\nid:%s\n\n", a);
    next(s, big[3], a, sizeof a);
    tc_close(s);
    /* On a queue it is refused, naming the header. */
    tc *q = open12(t);
    TC_SENDF(q, "SUBSCRIBE\nid:q\ndestination:/queue/b\nack:client\nconsumer-window-size:100\n\n");
    tframe f;
    assert_true(tc_is(q, "ERROR", &f));
    assert_non_null(strstr(tf_header(&f, "message"), "consumer-window-size"));
    tf_free(&f);
    tc_close(q);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

/* A subscriber that never acks: messages wait for it until they and its output pass
 * max_output_bytes; then it gets an ERROR, and the publisher is unaffected. */
static void test_slow_consumer_limit(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.max_output_bytes = 64 * 1024;
    tb *t = tb_start(&o);
    assert_non_null(t);
    tc *s = open12(t), *p = open12(t);
    TC_SENDF(s, "SUBSCRIBE\nid:w\ndestination:/topic/slow\nack:client\nprefetch-count:1\n"
                "receipt:r\n\n");
    receipt(s);
    static char body[1001];
    memset(body, 'x', 1000);
    for (int i = 0; i < 70; i++)
        TC_SENDF(p, "SEND\ndestination:/topic/slow\n\n%s", body);
    TC_SENDF(p, "SEND\ndestination:/topic/slow\nreceipt:end\n\n%s", body);
    receipt(p);
    tframe f;
    assert_true(tc_is(s, "MESSAGE", &f));
    tf_free(&f);
    assert_true(tc_is(s, "ERROR", &f));
    assert_non_null(strstr(tf_header(&f, "message"), "slow consumer"));
    tf_free(&f);
    tc_close(s);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_window),
        cmocka_unit_test(test_byte_window),
        cmocka_unit_test(test_slow_consumer_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
