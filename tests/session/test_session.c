/* test_session.c: connection and session rules over real loopback sockets: version
 * negotiation, the first frame, CONNECTED headers, receipts, DISCONNECT, ERROR handling
 * and the CONNECT timeout (heart-beats: test_heartbeat.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

static void connect_raw(tc *c, const char *frame, tframe *f)
{
    assert_int_equal(tc_send(c, frame), 0);
    assert_int_equal(tc_read(c, f, TL_TIMEOUT_MS), 0);
}

/* Another connection still gets full service after something went wrong. */
static void still_serving(tb *t)
{
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    tframe f;
    assert_int_equal(tc_send(c, "SEND\ndestination:/topic/x\nreceipt:alive\n\nhi"), 0);
    assert_true(tc_is(c, "RECEIPT", &f));
    assert_string_equal(tf_header(&f, "receipt-id"), "alive");
    tf_free(&f);
    tc_close(c);
}

static void test_v10_without_accept_version(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    assert_non_null(t);
    tc *c = tc_connect(tb_port(t));
    tframe f;
    connect_raw(c, "CONNECT\nlogin:a\npasscode:b\n\n", &f);
    assert_string_equal(f.cmd, "CONNECTED");
    /* Named all the same: 1.1 and 1.2 require it of servers, 1.0 clients skip it. */
    assert_string_equal(tf_header(&f, "version"), "1.0");
    assert_non_null(tf_header(&f, "session"));
    assert_non_null(tf_header(&f, "server"));
    assert_string_equal(tf_header(&f, "heart-beat"), "0,0");
    tf_free(&f);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

static void test_highest_common_version(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    tc *c = tc_connect(tb_port(t));
    tframe f;
    connect_raw(c, "STOMP\naccept-version:1.0,1.1,2.0\nhost:x\n\n", &f);
    assert_string_equal(f.cmd, "CONNECTED");
    assert_string_equal(tf_header(&f, "version"), "1.1");
    tf_free(&f);
    tc_close(c);
    c = tc_connect(tb_port(t));
    connect_raw(c, "CONNECT\naccept-version:1.2,1.0\n\n", &f);
    assert_string_equal(tf_header(&f, "version"), "1.2");
    tf_free(&f);
    tc_close(c);
    /* A client that asks for 1.0 by name is told it got 1.0. */
    c = tc_connect(tb_port(t));
    connect_raw(c, "CONNECT\naccept-version:1.0\n\n", &f);
    assert_string_equal(f.cmd, "CONNECTED");
    assert_string_equal(tf_header(&f, "version"), "1.0");
    assert_string_equal(tf_header(&f, "heart-beat"), "0,0");
    tf_free(&f);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

static void test_no_common_version(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    tc *c = tc_connect(tb_port(t));
    tframe f;
    connect_raw(c, "CONNECT\naccept-version:2.0,3.1\n\n", &f);
    assert_string_equal(f.cmd, "ERROR");
    assert_string_equal(tf_header(&f, "version"), "1.0,1.1,1.2");
    assert_non_null(tf_header(&f, "message"));
    tf_free(&f);
    assert_true(tc_closed(c, TL_TIMEOUT_MS));
    tc_close(c);
    still_serving(t);
    assert_int_equal(tb_stop(t), 0);
}

static void test_first_frame_not_connect(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    tc *c = tc_connect(tb_port(t));
    tframe f;
    connect_raw(c, "SEND\ndestination:/queue/a\nreceipt:r9\n\nx", &f);
    assert_string_equal(f.cmd, "ERROR");
    assert_non_null(tf_header(&f, "message"));
    assert_string_equal(tf_header(&f, "receipt-id"), "r9");
    tf_free(&f);
    assert_true(tc_closed(c, TL_TIMEOUT_MS));
    tc_close(c);
    still_serving(t);
    assert_int_equal(tb_stop(t), 0);
}

static void test_errors_close(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "CONNECT\naccept-version:1.2\n\n",         /* second CONNECT */
        "FROB\n\n",                                 /* unknown command */
        "SEND\n\nno destination",                   /* missing header */
        "SUBSCRIBE\ndestination:/queue/a\n\n",      /* no id in 1.2 */
        "ACK\nid:12345\n\n",                        /* unknown ack id */
        "ACK\nid:18446744073709551617\n\n",         /* more than 64 bits */
        "ACK\nid:1x\n\n",                           /* not a number */
        "COMMIT\ntransaction:nope\n\n",             /* unknown transaction */
        "UNSUBSCRIBE\nid:nope\n\n",                 /* unknown subscription */
        "MESSAGE\ndestination:/queue/a\n\n",        /* server frame */
        "SUBSCRIBE\nid:1\ndestination:/q\nack:sometimes\n\n",
        "CONNECTED\n\n",
    };
    tb *t = tb_start(NULL);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
        assert_non_null(c);
        tframe f;
        assert_int_equal(tc_send(c, bad[i]), 0);
        assert_true(tc_is(c, "ERROR", &f));
        assert_non_null(tf_header(&f, "message"));
        tf_free(&f);
        assert_true(tc_closed(c, TL_TIMEOUT_MS));
        tc_close(c);
    }
    still_serving(t);
    broker_stats st;
    tb_stats(t, &st);
    assert_true(st.errors_sent >= sizeof bad / sizeof bad[0]);
    assert_int_equal(tb_stop(t), 0);
}

/* An ack id is a number: with leading zeros it names the same delivery. */
static void test_ack_id_leading_zeros(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    tframe f;
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:/queue/z\nack:client-individual\n\n");
    TC_SENDF(c, "SEND\ndestination:/queue/z\n\nhello");
    assert_true(tc_is(c, "MESSAGE", &f));
    char id[64];
    snprintf(id, sizeof id, "0000000000000000000000%s", tf_header(&f, "ack"));
    tf_free(&f);
    TC_SENDF(c, "ACK\nid:%s\nreceipt:r1\n\n", id);
    assert_true(tc_is(c, "RECEIPT", &f));
    assert_string_equal(tf_header(&f, "receipt-id"), "r1");
    tf_free(&f);
    /* Acknowledged: the same id again names nothing. */
    TC_SENDF(c, "ACK\nid:%s\n\n", id);
    assert_true(tc_is(c, "ERROR", &f));
    tf_free(&f);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

static void test_malformed_input(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    tframe f;
    assert_int_equal(tc_send(c, "SEND\ndestination:/q\nbad header line\n\nx"), 0);
    assert_true(tc_is(c, "ERROR", &f));
    tf_free(&f);
    assert_true(tc_closed(c, TL_TIMEOUT_MS));
    tc_close(c);
    /* An undefined escape in 1.2 */
    c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_int_equal(tc_send(c, "SEND\ndestination:/q\\t\n\nx"), 0);
    assert_true(tc_is(c, "ERROR", &f));
    tf_free(&f);
    tc_close(c);
    still_serving(t);
    assert_int_equal(tb_stop(t), 0);
}

static void test_receipts_and_disconnect(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    tframe f;
    assert_int_equal(tc_send(c, "SUBSCRIBE\nid:s\ndestination:/topic/t\nreceipt:1\n\n"), 0);
    assert_int_equal(tc_send(c, "SEND\ndestination:/queue/q\nreceipt:2\n\nbody"), 0);
    assert_int_equal(tc_send(c, "UNSUBSCRIBE\nid:s\nreceipt:3\n\n"), 0);
    assert_int_equal(tc_send(c, "BEGIN\ntransaction:x\nreceipt:4\n\n"), 0);
    assert_int_equal(tc_send(c, "ABORT\ntransaction:x\nreceipt:5\n\n"), 0);
    /* Receipts come back in frame order even when one waits for the store. */
    for (int i = 1; i <= 5; i++) {
        char want[16];
        snprintf(want, sizeof want, "%d", i);
        assert_true(tc_is(c, "RECEIPT", &f));
        assert_string_equal(tf_header(&f, "receipt-id"), want);
        tf_free(&f);
    }
    /* DISCONNECT: the receipt is flushed, then the broker closes; frames after it are
     * ignored. */
    const char tail[] = "DISCONNECT\nreceipt:bye\n\n\0SEND\ndestination:/queue/q\n\nlost\0";
    assert_int_equal(tc_send_raw(c, tail, sizeof tail - 1), 0);
    assert_true(tc_is(c, "RECEIPT", &f));
    assert_string_equal(tf_header(&f, "receipt-id"), "bye");
    tf_free(&f);
    assert_true(tc_closed(c, TL_TIMEOUT_MS));
    tc_close(c);
    /* Only the first message reached the queue. */
    c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_int_equal(tc_send(c, "SUBSCRIBE\nid:a\ndestination:/queue/q\n\n"), 0);
    assert_true(tc_is(c, "MESSAGE", &f));
    assert_memory_equal(f.body, "body", 4);
    tf_free(&f);
    assert_int_equal(tc_send(c, "DISCONNECT\nreceipt:z\n\n"), 0);
    assert_true(tc_is(c, "RECEIPT", &f)); /* not the "lost" message */
    tf_free(&f);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

static void test_connect_timeout(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.connect_timeout_ms = 50;
    tb *t = tb_start(&o);
    tc *c = tc_connect(tb_port(t));
    tframe f;
    assert_true(tc_is(c, "ERROR", &f));
    tf_free(&f);
    assert_true(tc_closed(c, TL_TIMEOUT_MS));
    tc_close(c);
    broker_stats st;
    tb_stats(t, &st);
    assert_int_equal(st.limit_breaches, 1);
    assert_int_equal(tb_stop(t), 0);
}

static void test_eol_variants(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    tc *c = tc_connect(tb_port(t));
    const char in[] = "\r\n\nCONNECT\r\naccept-version:1.2\r\n\r\n\0\r\n\n"
                      "SEND\r\ndestination:/topic/a\r\nreceipt:crlf\r\n\r\n\0\n";
    assert_int_equal(tc_send_raw(c, in, sizeof in - 1), 0);
    tframe f;
    assert_true(tc_is(c, "CONNECTED", &f));
    tf_free(&f);
    assert_true(tc_is(c, "RECEIPT", &f));
    assert_string_equal(tf_header(&f, "receipt-id"), "crlf");
    tf_free(&f);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

static void test_peer_reset_is_harmless(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    for (int i = 0; i < 20; i++) {
        tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
        assert_non_null(c);
        assert_int_equal(tc_send(c, "SUBSCRIBE\nid:1\ndestination:/queue/r\nack:client\n\n"),
                         0);
        assert_int_equal(tc_send(c, "DISCONNECT\n\n"), 0);
        tc_close(c);
    }
    still_serving(t);
    assert_int_equal(tb_stop(t), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v10_without_accept_version),
        cmocka_unit_test(test_highest_common_version),
        cmocka_unit_test(test_no_common_version),
        cmocka_unit_test(test_first_frame_not_connect),
        cmocka_unit_test(test_errors_close),
        cmocka_unit_test(test_malformed_input),
        cmocka_unit_test(test_receipts_and_disconnect),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_eol_variants),
        cmocka_unit_test(test_ack_id_leading_zeros),
        cmocka_unit_test(test_peer_reset_is_harmless),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
