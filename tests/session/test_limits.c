/* test_limits.c: every configurable limit hit over loopback sockets: an ERROR with a
 * message, a close, a counter, and the broker still serving everyone else.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testlib.h"

static tc *open12(tb *t)
{
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    return c;
}

static void expect_error_close(tc *c)
{
    tframe f;
    assert_int_equal(tc_expect(c, "ERROR", &f), 0);
    assert_non_null(tf_header(&f, "message"));
    tf_free(&f);
    assert_true(tc_closed(c, TL_TIMEOUT_MS));
    tc_close(c);
}

static void still_serving(tb *t)
{
    tc *c = open12(t);
    tframe f;
    TC_SENDF(c, "SEND\ndestination:/queue/alive\nreceipt:ok\n\nx");
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    tc_close(c);
}

static void finish(tb *t, uint64_t breaches)
{
    still_serving(t);
    broker_stats st;
    tb_stats(t, &st);
    assert_int_equal(st.limit_breaches, breaches);
    assert_int_equal(tb_stop(t), 0);
}

static char *repeat(char ch, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, ch, n);
    s[n] = '\0';
    return s;
}

static void test_frame_limits(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.limits.max_body = 100;
    o.limits.max_header_line = 200;
    o.limits.max_headers = 8;
    o.limits.max_header_bytes = 1000;
    tb *t = tb_start(&o);
    char *big = repeat('b', 101), *longh = repeat('h', 300);
    tc *c = open12(t);
    TC_SENDF(c, "SEND\ndestination:/queue/l\n\n%s", big);
    expect_error_close(c);
    c = open12(t);
    TC_SENDF(c, "SEND\ndestination:/queue/l\ncontent-length:101\n\n%s", big);
    expect_error_close(c);
    c = open12(t);
    TC_SENDF(c, "SEND\ndestination:/queue/l\nx:%s\n\n", longh);
    expect_error_close(c);
    c = open12(t);
    TC_SENDF(c, "SEND\ndestination:/queue/l\na:1\nb:1\nc:1\nd:1\ne:1\nf:1\ng:1\nh:1\ni:1\n\n");
    expect_error_close(c);
    /* Header block: 6 lines of 190 bytes, each allowed, together over 1000. */
    char *v = repeat('v', 188);
    c = open12(t);
    TC_SENDF(c, "SEND\ndestination:/queue/l\na:%s\nb:%s\nc:%s\nd:%s\ne:%s\nf:%s\n\n", v, v, v, v,
          v, v);
    expect_error_close(c);
    free(v);
    free(big);
    free(longh);
    finish(t, 5);
}

static void test_tighter_before_connect(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.connect_limits.max_header_line = 40;
    tb *t = tb_start(&o);
    char *h = repeat('v', 60);
    tc *c = tc_connect(tb_port(t));
    TC_SENDF(c, "CONNECT\naccept-version:1.2\nlogin:%s\n\n", h);
    expect_error_close(c);
    /* The same header is fine once connected. */
    c = open12(t);
    TC_SENDF(c, "SEND\ndestination:/topic/x\nlogin:%s\nreceipt:r\n\n", h);
    tframe f;
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    tc_close(c);
    free(h);
    finish(t, 1);
}

static void test_max_connections(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.max_connections = 2;
    tb *t = tb_start(&o);
    tc *a = open12(t), *b = open12(t);
    tc *c = tc_connect(tb_port(t));
    assert_non_null(c);
    expect_error_close(c);
    tc_close(b);
    /* A slot frees up once the broker saw b go. */
    tc *d = NULL;
    for (int i = 0; i < 100 && !d; i++) {
        usleep(10000);
        d = tc_open(tb_port(t), "accept-version:1.2\n");
    }
    assert_non_null(d);
    tc_close(d);
    tc_close(a);
    broker_stats st;
    tb_stats(t, &st);
    assert_true(st.connections_refused >= 1);
    assert_int_equal(tb_stop(t), 0);
}

static void test_max_subscriptions(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.max_subscriptions = 2;
    tb *t = tb_start(&o);
    tc *c = open12(t);
    TC_SENDF(c, "SUBSCRIBE\nid:1\ndestination:/queue/a\n\n");
    TC_SENDF(c, "SUBSCRIBE\nid:2\ndestination:/queue/b\n\n");
    TC_SENDF(c, "SUBSCRIBE\nid:3\ndestination:/queue/c\n\n");
    expect_error_close(c);
    finish(t, 1);
}

static void test_max_unacked(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.max_unacked = 3;
    tb *t = tb_start(&o);
    /* Queues: the prefetch window is capped at max_unacked. */
    tc *c = open12(t), *p = open12(t);
    TC_SENDF(c, "SUBSCRIBE\nid:1\ndestination:/queue/u\nack:client\nprefetch-count:50\n"
             "receipt:r\n\n");
    tframe f;
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    for (int i = 0; i < 5; i++)
        TC_SENDF(p, "SEND\ndestination:/queue/u\n\n%d", i);
    for (int i = 0; i < 3; i++) {
        assert_true(tc_is(c, "MESSAGE", &f));
        tf_free(&f);
    }
    assert_int_equal(tc_read(c, &f, 200), -1);
    tc_close(c);
    /* Topics: the window is capped the same way; at it, the subscriber gets no more (and
     * no ERROR) until it acks. */
    c = open12(t);
    TC_SENDF(c, "SUBSCRIBE\nid:1\ndestination:/topic/u\nack:client\nprefetch-count:50\n"
             "receipt:r\n\n");
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    for (int i = 0; i < 4; i++)
        TC_SENDF(p, "SEND\ndestination:/topic/u\n\n%d", i);
    char ack[32] = "";
    for (int i = 0; i < 3; i++) {
        assert_true(tc_is(c, "MESSAGE", &f));
        snprintf(ack, sizeof ack, "%s", tf_header(&f, "ack"));
        tf_free(&f);
    }
    assert_int_equal(tc_read(c, &f, 200), -1);
    TC_SENDF(c, "ACK\nid:%s\n\n", ack);
    assert_true(tc_is(c, "MESSAGE", &f));
    assert_string_equal(f.body, "3");
    tf_free(&f);
    tc_close(c);
    tc_close(p);
    finish(t, 0);
}

static void test_transaction_limits(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.max_tx_frames = 3;
    o.max_transactions = 2;
    tb *t = tb_start(&o);
    tc *c = open12(t);
    TC_SENDF(c, "BEGIN\ntransaction:a\n\n");
    for (int i = 0; i < 4; i++)
        TC_SENDF(c, "SEND\ndestination:/queue/t\ntransaction:a\n\n%d", i);
    expect_error_close(c);
    c = open12(t);
    TC_SENDF(c, "BEGIN\ntransaction:a\n\n");
    TC_SENDF(c, "BEGIN\ntransaction:b\n\n");
    TC_SENDF(c, "BEGIN\ntransaction:c\n\n");
    expect_error_close(c);
    finish(t, 2);
}

static void test_slow_topic_consumer(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.output_high_water = 16 * 1024;
    o.max_output_bytes = 64 * 1024;
    o.error_linger_ms = 100;
    tb *t = tb_start(&o);
    tc *slow = open12(t);
    int small = 4096;
    setsockopt(slow->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    TC_SENDF(slow, "SUBSCRIBE\nid:1\ndestination:/topic/firehose\nreceipt:r\n\n");
    tframe f;
    assert_true(tc_is(slow, "RECEIPT", &f));
    tf_free(&f);
    tc *p = open12(t);
    char *body = repeat('x', 8192);
    broker_stats st = { 0 };
    for (int i = 0; i < 4000 && st.limit_breaches == 0; i++) {
        TC_SENDF(p, "SEND\ndestination:/topic/firehose\nreceipt:r\n\n%s", body);
        assert_true(tc_is(p, "RECEIPT", &f));
        tf_free(&f);
        if (i % 50 == 0)
            tb_stats(t, &st);
    }
    tb_stats(t, &st);
    assert_int_equal(st.limit_breaches, 1);
    /* The broker drops it after error_linger_ms even though it never reads (reading
     * everything queued in the kernel through a tiny window would take long). */
    for (int i = 0; i < 500 && st.connections > 1; i++) {
        usleep(10000);
        tb_stats(t, &st);
    }
    assert_int_equal(st.connections, 1);
    tc_close(slow);
    tc_close(p);
    free(body);
    finish(t, 1);
}

static void test_memory_limit_pauses_producer(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.max_memory = 64 * 1024;
    tb *t = tb_start(&o);
    tc *p = open12(t);
    char *body = repeat('m', 1000);
    size_t n = 0, cap = 300 * 1100;
    char *all = malloc(cap);
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(all + n, cap - n, "SEND\ndestination:/queue/mem\n%s\n%s%c",
                              i == 299 ? "receipt:last\n" : "", body, 0);
    assert_int_equal(tc_send_raw(p, all, n), 0);
    tc *c = open12(t);
    /* Wait until the producer is paused, then drain. */
    broker_stats st = { 0 };
    for (int i = 0; i < 500 && !st.reads_paused; i++) {
        usleep(10000);
        tb_stats(t, &st);
    }
    assert_true(st.reads_paused >= 1);
    TC_SENDF(c, "SUBSCRIBE\nid:1\ndestination:/queue/mem\n\n");
    tframe f;
    for (int i = 0; i < 300; i++) {
        assert_true(tc_is(c, "MESSAGE", &f));
        assert_int_equal(f.body_len, 1000);
        tf_free(&f);
    }
    assert_true(tc_is(p, "RECEIPT", &f));
    tf_free(&f);
    tc_close(c);
    tc_close(p);
    free(all);
    free(body);
    finish(t, 0);
}

/* Over max_memory no SEND is taken in: a new connection's SEND waits (its body in the
 * socket, not in the broker) and gets its RECEIPT only once consumers made room; what
 * the parser holds counts against the limit. */
static void test_memory_limit_holds_new_senders(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.max_memory = 64 * 1024;
    tb *t = tb_start(&o);
    tc *p = open12(t);
    char *body = repeat('m', 1000);
    for (int i = 0; i < 200; i++)
        TC_SENDF(p, "SEND\ndestination:/queue/full\n\n%s", body);
    broker_stats st = { 0 };
    for (int i = 0; i < 500 && !st.reads_paused; i++) {
        usleep(10000);
        tb_stats(t, &st);
    }
    assert_true(st.reads_paused >= 1);
    /* A new producer with a 1 MiB message while the broker is over its limit. */
    tc *q = open12(t);
    char *big = repeat('b', 1 << 20);
    assert_int_equal(tc_sendf(q, "SEND\ndestination:/queue/big\nreceipt:big\n\n%s", big), 0);
    tframe f;
    assert_int_equal(tc_read(q, &f, 300), -1); /* no RECEIPT while over the limit */
    tb_stats(t, &st);
    /* The limit, plus at most what one read and one frame in the making hold. */
    if (st.memory > o.max_memory + 4 * o.read_buffer)
        fail_msg("memory %llu over a limit of %zu", (unsigned long long)st.memory, o.max_memory);
    /* Consumers make room: the held SEND is taken in, receipted, and delivered. */
    tc *c = open12(t);
    TC_SENDF(c, "SUBSCRIBE\nid:1\ndestination:/queue/full\n\n");
    TC_SENDF(c, "SUBSCRIBE\nid:2\ndestination:/queue/big\n\n");
    int small = 0, large = 0;
    for (int i = 0; i < 201; i++) {
        if (!tc_is(c, "MESSAGE", &f))
            fail_msg("message %d of 201 missing", i);
        if (f.body_len == 1000)
            small++;
        else if (f.body_len == 1 << 20)
            large++;
        tf_free(&f);
    }
    assert_int_equal(small, 200);
    assert_int_equal(large, 1);
    assert_true(tc_is(q, "RECEIPT", &f));
    assert_string_equal(tf_header(&f, "receipt-id"), "big");
    tf_free(&f);
    tc_close(c);
    tc_close(q);
    tc_close(p);
    free(big);
    free(body);
    finish(t, 0);
}

static void *stop_thread(void *arg)
{
    return (void *)(intptr_t)tb_stop(arg);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

/* A stop that frees the memory a paused producer was waiting for must not leave the tick
 * wanting to resume it: nothing is resumed while stopping, and the loop spun (one core at
 * 100 %) until the last connection was gone, here while the producer keeps its side open. */
static void test_stop_with_paused_producer_does_not_spin(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.max_memory = 8 * 1024;
    o.stop_timeout_ms = 3000;
    tb *t = tb_start(&o);
    tc *p = open12(t);
    char *body = repeat('s', 1000);
    TC_SENDF(p, "BEGIN\ntransaction:big\n\n");
    for (int i = 0; i < 20; i++)
        TC_SENDF(p, "SEND\ndestination:/queue/spin\ntransaction:big\n\n%s", body);
    broker_stats st = { 0 };
    for (int i = 0; i < 500 && !st.reads_paused; i++) {
        usleep(10000);
        tb_stats(t, &st);
    }
    assert_true(st.reads_paused >= 1);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stop_thread, t), 0);
    /* The stop drops the transaction, then waits for the producer to close its side. */
    tframe f;
    assert_int_equal(tc_expect(p, "ERROR", &f), 0);
    tf_free(&f);
    double cpu = cpu_seconds();
    usleep(500 * 1000);
    cpu = cpu_seconds() - cpu;
    tc_close(p);
    void *rc;
    pthread_join(th, &rc);
    assert_int_equal((intptr_t)rc, 0);
    free(body);
    print_message("CPU while the stop waited 0.5 s: %.3f s\n", cpu);
    assert_true(cpu < 0.2);
}

static void test_high_water_keeps_queue_messages(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.output_high_water = 8 * 1024;
    o.max_unacked = 100000;
    tb *t = tb_start(&o);
    tc *slow = open12(t), *fast = open12(t), *p = open12(t);
    int small = 4096;
    setsockopt(slow->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    TC_SENDF(slow, "SUBSCRIBE\nid:1\ndestination:/queue/hw\nack:client\nprefetch-count:100000\n"
                "receipt:r\n\n");
    tframe f;
    assert_true(tc_is(slow, "RECEIPT", &f));
    tf_free(&f);
    char *body = repeat('q', 1024);
    for (int i = 0; i < 2000; i++)
        TC_SENDF(p, "SEND\ndestination:/queue/hw\n\n%s", body);
    TC_SENDF(p, "SEND\ndestination:/topic/none\nreceipt:sent\n\n");
    assert_true(tc_is(p, "RECEIPT", &f));
    tf_free(&f);
    /* The slow consumer took only what fits under its high-water mark; once it goes,
     * its unacked messages come back, so the fast one sees every message. */
    TC_SENDF(fast, "SUBSCRIBE\nid:1\ndestination:/queue/hw\n\n");
    tc_close(slow);
    for (int i = 0; i < 2000; i++) {
        assert_true(tc_is(fast, "MESSAGE", &f));
        tf_free(&f);
    }
    assert_int_equal(tc_read(fast, &f, 200), -1);
    tc_close(fast);
    tc_close(p);
    free(body);
    finish(t, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_limits),
        cmocka_unit_test(test_tighter_before_connect),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_max_subscriptions),
        cmocka_unit_test(test_max_unacked),
        cmocka_unit_test(test_transaction_limits),
        cmocka_unit_test(test_slow_topic_consumer),
        cmocka_unit_test(test_memory_limit_pauses_producer),
        cmocka_unit_test(test_memory_limit_holds_new_senders),
        cmocka_unit_test(test_stop_with_paused_producer_does_not_spin),
        cmocka_unit_test(test_high_water_keeps_queue_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
