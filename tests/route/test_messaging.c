/* test_messaging.c: destinations and delivery over loopback sockets: queues and topics,
 * headers and bodies carried exactly, round-robin and prefetch, every ack mode, NACK and
 * redelivery, unacked messages returned on disconnect and unsubscribe.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "testlib.h"

#define V12 "accept-version:1.2\n"

static tc *open12(tb *t)
{
    tc *c = tc_open(tb_port(t), V12);
    assert_non_null(c);
    return c;
}

/* Send and wait for the receipt, so ordering across connections is known. */
static void sync_send(tc *c, const char *frame_without_receipt_end, const char *body)
{
    TC_SENDF(c, "%sreceipt:sync\n\n%s", frame_without_receipt_end, body);
    tframe f;
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
}

static void expect_body(tc *c, const char *body, tframe *f)
{
    assert_true(tc_is(c, "MESSAGE", f));
    assert_int_equal(f->body_len, strlen(body));
    assert_memory_equal(f->body, body, strlen(body));
}

static void test_queue_roundtrip(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    tc *p = open12(t), *c = open12(t);
    /* Sent before anyone subscribes: waits in the queue. */
    sync_send(p, "SEND\ndestination:/queue/a\nx-custom:v1\ncontent-type:text/plain\n"
                 "transaction-like:no\n", "first");
    TC_SENDF(c, "SUBSCRIBE\nid:sub-1\ndestination:/queue/a\n\n");
    tframe f;
    expect_body(c, "first", &f);
    assert_string_equal(tf_header(&f, "destination"), "/queue/a");
    assert_string_equal(tf_header(&f, "subscription"), "sub-1");
    assert_string_equal(tf_header(&f, "x-custom"), "v1");
    assert_string_equal(tf_header(&f, "content-type"), "text/plain");
    assert_string_equal(tf_header(&f, "content-length"), "5");
    assert_non_null(tf_header(&f, "message-id"));
    assert_null(tf_header(&f, "receipt"));
    assert_null(tf_header(&f, "redelivered"));
    assert_null(tf_header(&f, "ack")); /* auto mode */
    tf_free(&f);
    /* Binary body with NULs, exactly as sent. */
    const char bin[] = "SEND\ndestination:/queue/a\ncontent-length:5\n\na\0b\0c\0";
    assert_int_equal(tc_send_raw(p, bin, sizeof bin - 1), 0);
    assert_true(tc_is(c, "MESSAGE", &f));
    assert_int_equal(f.body_len, 5);
    assert_memory_equal(f.body, "a\0b\0c", 5);
    tf_free(&f);
    tc_close(p);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

static void test_topic_fanout(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    tc *a = open12(t), *b = tc_open(tb_port(t), "accept-version:1.1\n"),
       *c = tc_open(tb_port(t), "");
    TC_SENDF(a, "SUBSCRIBE\nid:1\ndestination:/topic/news\nreceipt:r\n\n");
    TC_SENDF(b, "SUBSCRIBE\nid:2\ndestination:/topic/news\nreceipt:r\n\n");
    TC_SENDF(c, "SUBSCRIBE\ndestination:/topic/news\nreceipt:r\n\n");
    tframe f;
    assert_true(tc_is(a, "RECEIPT", &f));
    tf_free(&f);
    assert_true(tc_is(b, "RECEIPT", &f));
    tf_free(&f);
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    tc *p = open12(t);
    for (int i = 0; i < 3; i++)
        TC_SENDF(p, "SEND\ndestination:/topic/news\nk:a\\cb\n\nm%d", i);
    for (int i = 0; i < 3; i++) {
        char want[16];
        snprintf(want, sizeof want, "m%d", i);
        expect_body(a, want, &f);
        assert_string_equal(tf_header(&f, "subscription"), "1");
        assert_string_equal(tf_header(&f, "k"), "a\\cb"); /* escaped in 1.2 */
        tf_free(&f);
        expect_body(b, want, &f);
        assert_string_equal(tf_header(&f, "subscription"), "2");
        tf_free(&f);
        expect_body(c, want, &f);
        /* 1.0 without an id: the destination stands in for it. */
        assert_string_equal(tf_header(&f, "subscription"), "/topic/news");
        assert_string_equal(tf_header(&f, "k"), "a:b"); /* raw in 1.0 */
        tf_free(&f);
    }
    /* Nothing is stored for a topic: a late subscriber sees only new messages. */
    tc *late = open12(t);
    TC_SENDF(late, "SUBSCRIBE\nid:9\ndestination:/topic/news\nreceipt:r\n\n");
    assert_true(tc_is(late, "RECEIPT", &f));
    tf_free(&f);
    TC_SENDF(p, "SEND\ndestination:/topic/news\n\nnew");
    expect_body(late, "new", &f);
    tf_free(&f);
    expect_body(c, "new", &f);
    tf_free(&f);
    /* UNSUBSCRIBE by destination (1.0). */
    TC_SENDF(c, "UNSUBSCRIBE\ndestination:/topic/news\nreceipt:u\n\n");
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    tc_close(a);
    tc_close(b);
    tc_close(c);
    tc_close(p);
    tc_close(late);
    assert_int_equal(tb_stop(t), 0);
}

static void test_round_robin_and_prefetch(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    tc *a = open12(t), *b = open12(t), *p = open12(t);
    TC_SENDF(a, "SUBSCRIBE\nid:a\ndestination:/queue/rr\nack:client-individual\n"
             "prefetch-count:2\nreceipt:r\n\n");
    TC_SENDF(b, "SUBSCRIBE\nid:b\ndestination:/queue/rr\nack:client-individual\n"
             "activemq.prefetchSize:2\nreceipt:r\n\n");
    tframe f;
    assert_true(tc_is(a, "RECEIPT", &f));
    tf_free(&f);
    assert_true(tc_is(b, "RECEIPT", &f));
    tf_free(&f);
    for (int i = 0; i < 6; i++)
        TC_SENDF(p, "SEND\ndestination:/queue/rr\n\n%d", i);
    sync_send(p, "SEND\ndestination:/topic/flush\n", "");
    /* Each gets two (its window), alternating. */
    char ida[2][32], idb[2][32];
    for (int i = 0; i < 2; i++) {
        assert_true(tc_is(a, "MESSAGE", &f));
        assert_int_equal(f.body[0] - '0', 2 * i);
        snprintf(ida[i], sizeof ida[i], "%s", tf_header(&f, "ack"));
        tf_free(&f);
        assert_true(tc_is(b, "MESSAGE", &f));
        assert_int_equal(f.body[0] - '0', 2 * i + 1);
        snprintf(idb[i], sizeof idb[i], "%s", tf_header(&f, "ack"));
        tf_free(&f);
    }
    /* Window full: nothing more until an ACK. */
    assert_int_equal(tc_read(a, &f, 200), -1);
    TC_SENDF(a, "ACK\nid:%s\n\n", ida[0]);
    expect_body(a, "4", &f);
    tf_free(&f);
    TC_SENDF(b, "ACK\nid:%s\n\n", idb[1]);
    expect_body(b, "5", &f);
    tf_free(&f);
    tc_close(a);
    tc_close(b);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

static void test_client_ack_cumulative(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    tc *p = open12(t);
    for (int i = 0; i < 3; i++)
        TC_SENDF(p, "SEND\ndestination:/queue/c\n\n%d", i);
    sync_send(p, "SEND\ndestination:/queue/c\n", "3");
    tc *c = open12(t);
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:/queue/c\nack:client\n\n");
    tframe f;
    char third[32];
    for (int i = 0; i < 4; i++) {
        assert_true(tc_is(c, "MESSAGE", &f));
        if (i == 2)
            snprintf(third, sizeof third, "%s", tf_header(&f, "ack"));
        tf_free(&f);
    }
    /* ACK of the third acknowledges the first three; the fourth comes back. */
    TC_SENDF(c, "ACK\nid:%s\nreceipt:a\n\n", third);
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    tc_close(c);
    c = open12(t);
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:/queue/c\nack:client\n\n");
    expect_body(c, "3", &f);
    assert_string_equal(tf_header(&f, "redelivered"), "true");
    assert_string_equal(tf_header(&f, "redelivery-count"), "1");
    tf_free(&f);
    assert_int_equal(tc_read(c, &f, 200), -1);
    tc_close(c);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

static void test_individual_ack_nack_redelivery(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    tc *p = open12(t);
    TC_SENDF(p, "SEND\ndestination:/queue/n\n\nA");
    sync_send(p, "SEND\ndestination:/queue/n\n", "B");
    tc *c = open12(t);
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:/queue/n\nack:client-individual\n\n");
    tframe f;
    char a_id[32], b_id[32];
    expect_body(c, "A", &f);
    snprintf(a_id, sizeof a_id, "%s", tf_header(&f, "ack"));
    tf_free(&f);
    expect_body(c, "B", &f);
    snprintf(b_id, sizeof b_id, "%s", tf_header(&f, "ack"));
    tf_free(&f);
    /* ACK B only, NACK A: A comes back, redelivered. */
    TC_SENDF(c, "ACK\nid:%s\n\n", b_id);
    TC_SENDF(c, "NACK\nid:%s\n\n", a_id);
    expect_body(c, "A", &f);
    assert_string_equal(tf_header(&f, "redelivered"), "true");
    snprintf(a_id, sizeof a_id, "%s", tf_header(&f, "ack"));
    tf_free(&f);
    /* Acking an id twice is an unknown id. */
    TC_SENDF(c, "ACK\nid:%s\n\n", a_id);
    TC_SENDF(c, "ACK\nid:%s\n\n", a_id);
    assert_true(tc_is(c, "ERROR", &f));
    tf_free(&f);
    tc_close(c);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

/* The RECEIPT for a frame goes out before any frame its effect causes: a NACK's RECEIPT
 * before the redelivered MESSAGE, an ACK's before the MESSAGE the freed window lets in. */
static void test_receipt_before_caused_messages(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.policy.redelivery_delay = 0; /* the NACKed message is back at once, before B */
    tb *t = tb_start(&o);
    tc *p = open12(t);
    TC_SENDF(p, "SEND\ndestination:/queue/nr\n\nA");
    sync_send(p, "SEND\ndestination:/queue/nr\n", "B");
    tc *c = open12(t);
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:/queue/nr\nack:client-individual\n"
                "prefetch-count:1\n\n");
    tframe f;
    char id[32];
    expect_body(c, "A", &f);
    snprintf(id, sizeof id, "%s", tf_header(&f, "ack"));
    tf_free(&f);
    TC_SENDF(c, "NACK\nid:%s\nreceipt:n1\n\n", id);
    assert_true(tc_is(c, "RECEIPT", &f));
    assert_string_equal(tf_header(&f, "receipt-id"), "n1");
    tf_free(&f);
    expect_body(c, "A", &f);
    assert_string_equal(tf_header(&f, "redelivered"), "true");
    snprintf(id, sizeof id, "%s", tf_header(&f, "ack"));
    tf_free(&f);
    TC_SENDF(c, "ACK\nid:%s\nreceipt:a1\n\n", id);
    assert_true(tc_is(c, "RECEIPT", &f));
    assert_string_equal(tf_header(&f, "receipt-id"), "a1");
    tf_free(&f);
    expect_body(c, "B", &f);
    tf_free(&f);
    tc_close(c);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

static void test_ack_by_message_id_v11(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    tc *p = open12(t);
    sync_send(p, "SEND\ndestination:/queue/m\n", "x");
    tc *c = tc_open(tb_port(t), "accept-version:1.1\n");
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:/queue/m\nack:client-individual\n\n");
    tframe f;
    expect_body(c, "x", &f);
    assert_null(tf_header(&f, "ack")); /* 1.2 only */
    char mid[32];
    snprintf(mid, sizeof mid, "%s", tf_header(&f, "message-id"));
    tf_free(&f);
    TC_SENDF(c, "ACK\nmessage-id:%s\nsubscription:s\nreceipt:a\n\n", mid);
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    tc_close(c);
    /* Acked: nothing is redelivered. */
    c = open12(t);
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:/queue/m\n\n");
    assert_int_equal(tc_read(c, &f, 200), -1);
    tc_close(c);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

static void test_unacked_return_on_unsubscribe(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    tc *p = open12(t);
    sync_send(p, "SEND\ndestination:/queue/u\n", "one");
    tc *c = open12(t);
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:/queue/u\nack:client\n\n");
    tframe f;
    expect_body(c, "one", &f);
    tf_free(&f);
    TC_SENDF(c, "UNSUBSCRIBE\nid:s\nreceipt:u\n\n");
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    TC_SENDF(c, "SUBSCRIBE\nid:s2\ndestination:/queue/u\nack:auto\n\n");
    expect_body(c, "one", &f);
    assert_string_equal(tf_header(&f, "redelivered"), "true");
    assert_string_equal(tf_header(&f, "subscription"), "s2");
    tf_free(&f);
    tc_close(c);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

static void test_auto_ack_not_redelivered(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    tc *p = open12(t);
    sync_send(p, "SEND\ndestination:/queue/auto\n", "once");
    tc *c = open12(t);
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:/queue/auto\n\n");
    tframe f;
    expect_body(c, "once", &f);
    tf_free(&f);
    tc_close(c);
    c = open12(t);
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:/queue/auto\n\n");
    assert_int_equal(tc_read(c, &f, 200), -1);
    tc_close(c);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

static void test_many_frames_in_one_write(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    tc *c = open12(t);
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:/queue/bulk\n\n");
    static char big[200000];
    size_t n = 0;
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "SEND\ndestination:/queue/bulk\n\n%d%c",
                              i, 0);
    assert_int_equal(tc_send_raw(c, big, n), 0);
    tframe f;
    for (int i = 0; i < 1000; i++) {
        char want[16];
        snprintf(want, sizeof want, "%d", i);
        expect_body(c, want, &f);
        tf_free(&f);
    }
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

/* Regression: a queue SEND and the first SUBSCRIBE to that queue in one read (one batch)
 * must still deliver once the batch is committed. */
static void test_send_then_subscribe_same_turn(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    tc *c = open12(t);
    const char both[] = "SEND\ndestination:/queue/same-turn\n\nearly\0"
                        "SUBSCRIBE\nid:s\ndestination:/queue/same-turn\n\n\0";
    assert_int_equal(tc_send_raw(c, both, sizeof both - 1), 0);
    tframe f;
    expect_body(c, "early", &f);
    tf_free(&f);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_roundtrip),
        cmocka_unit_test(test_topic_fanout),
        cmocka_unit_test(test_round_robin_and_prefetch),
        cmocka_unit_test(test_client_ack_cumulative),
        cmocka_unit_test(test_individual_ack_nack_redelivery),
        cmocka_unit_test(test_receipt_before_caused_messages),
        cmocka_unit_test(test_ack_by_message_id_v11),
        cmocka_unit_test(test_unacked_return_on_unsubscribe),
        cmocka_unit_test(test_auto_ack_not_redelivered),
        cmocka_unit_test(test_many_frames_in_one_write),
        cmocka_unit_test(test_send_then_subscribe_same_turn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
