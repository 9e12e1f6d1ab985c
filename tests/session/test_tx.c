/* test_tx.c: transactions over loopback sockets: SEND/ACK/NACK take effect only at
 * COMMIT, ABORT and disconnect discard, unknown and duplicate ids are errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "testlib.h"

static tc *open12(tb *t)
{
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    return c;
}

static void receipt(tc *c, const char *id)
{
    tframe f;
    assert_true(tc_is(c, "RECEIPT", &f));
    assert_string_equal(tf_header(&f, "receipt-id"), id);
    tf_free(&f);
}

static void test_send_on_commit_only(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    tc *c = open12(t), *p = open12(t);
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:/queue/tx\n\n");
    TC_SENDF(c, "SUBSCRIBE\nid:t\ndestination:/topic/tx\nreceipt:sub\n\n");
    receipt(c, "sub");
    TC_SENDF(p, "BEGIN\ntransaction:t1\n\n");
    TC_SENDF(p, "SEND\ndestination:/queue/tx\ntransaction:t1\n\nq1");
    TC_SENDF(p, "SEND\ndestination:/topic/tx\ntransaction:t1\n\nt1");
    TC_SENDF(p, "SEND\ndestination:/queue/tx\ntransaction:t1\nreceipt:in-tx\n\nq2");
    receipt(p, "in-tx");
    tframe f;
    assert_int_equal(tc_read(c, &f, 200), -1); /* nothing before COMMIT */
    TC_SENDF(p, "COMMIT\ntransaction:t1\nreceipt:done\n\n");
    receipt(p, "done");
    const char *want[] = { "q1", "t1", "q2" };
    int seen[3] = { 0, 0, 0 };
    for (int i = 0; i < 3; i++) {
        assert_true(tc_is(c, "MESSAGE", &f));
        for (int k = 0; k < 3; k++)
            if (f.body_len == 2 && memcmp(f.body, want[k], 2) == 0)
                seen[k]++;
        assert_null(tf_header(&f, "transaction"));
        tf_free(&f);
    }
    assert_int_equal(seen[0] + seen[1] + seen[2], 3);
    assert_int_equal(seen[0] * seen[1] * seen[2], 1);
    /* The transaction is gone after COMMIT. */
    TC_SENDF(p, "COMMIT\ntransaction:t1\n\n");
    assert_true(tc_is(p, "ERROR", &f));
    tf_free(&f);
    tc_close(c);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

static void test_abort_and_disconnect_discard(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    tc *p = open12(t);
    TC_SENDF(p, "BEGIN\ntransaction:a\n\n");
    TC_SENDF(p, "SEND\ndestination:/queue/ab\ntransaction:a\n\nnever");
    TC_SENDF(p, "ABORT\ntransaction:a\nreceipt:ab\n\n");
    receipt(p, "ab");
    TC_SENDF(p, "BEGIN\ntransaction:b\n\n");
    TC_SENDF(p, "SEND\ndestination:/queue/ab\ntransaction:b\n\nnever either");
    TC_SENDF(p, "DISCONNECT\nreceipt:bye\n\n");
    receipt(p, "bye");
    tc_close(p);
    tc *c = open12(t);
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:/queue/ab\n\n");
    tframe f;
    assert_int_equal(tc_read(c, &f, 200), -1);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

static void test_ack_nack_in_tx(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    tc *p = open12(t);
    TC_SENDF(p, "SEND\ndestination:/queue/ta\n\nA");
    TC_SENDF(p, "SEND\ndestination:/queue/ta\nreceipt:s\n\nB");
    receipt(p, "s");
    tc *c = open12(t);
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:/queue/ta\nack:client-individual\n\n");
    tframe f;
    char a[32], b[32];
    assert_true(tc_is(c, "MESSAGE", &f));
    snprintf(a, sizeof a, "%s", tf_header(&f, "ack"));
    tf_free(&f);
    assert_true(tc_is(c, "MESSAGE", &f));
    snprintf(b, sizeof b, "%s", tf_header(&f, "ack"));
    tf_free(&f);
    TC_SENDF(c, "BEGIN\ntransaction:x\n\n");
    TC_SENDF(c, "ACK\nid:%s\ntransaction:x\n\n", a);
    TC_SENDF(c, "NACK\nid:%s\ntransaction:x\nreceipt:n\n\n", b);
    receipt(c, "n");
    assert_int_equal(tc_read(c, &f, 200), -1); /* the NACK waits for COMMIT */
    TC_SENDF(c, "COMMIT\ntransaction:x\n\n");
    assert_true(tc_is(c, "MESSAGE", &f));
    assert_memory_equal(f.body, "B", 1);
    assert_string_equal(tf_header(&f, "redelivered"), "true");
    tf_free(&f);
    tc_close(c);
    /* A was acked at COMMIT; B (unacked again) comes back once more. */
    c = open12(t);
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:/queue/ta\n\n");
    assert_true(tc_is(c, "MESSAGE", &f));
    assert_memory_equal(f.body, "B", 1);
    tf_free(&f);
    assert_int_equal(tc_read(c, &f, 200), -1);
    tc_close(c);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

static void test_tx_errors(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        { "BEGIN\ntransaction:d\n\n", "BEGIN\ntransaction:d\n\n" }, /* duplicate */
        { "BEGIN\n\n", NULL },                                        /* no id */
        { "ABORT\ntransaction:zz\n\n", NULL },
        { "SEND\ndestination:/queue/q\ntransaction:zz\n\n", NULL },
    };
    tb *t = tb_start(NULL);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tc *c = open12(t);
        for (int k = 0; k < 2 && bad[i][k]; k++)
            TC_SENDF(c, "%s", bad[i][k]);
        tframe f;
        assert_true(tc_is(c, "ERROR", &f));
        tf_free(&f);
        assert_true(tc_closed(c, TL_TIMEOUT_MS));
        tc_close(c);
    }
    assert_int_equal(tb_stop(t), 0);
}

/* A store that refuses every message for a queue whose name starts with /queue/fail: the
 * memory backend otherwise. */
static store_ops failing;

static int refused(const char *q, size_t len)
{
    return len >= 11 && memcmp(q, "/queue/fail", 11) == 0;
}

static store_err failing_enqueue(store *s, const char *q, size_t len, const char *h, size_t hl,
                                 const char *body, size_t bl, uint64_t *id)
{
    if (refused(q, len))
        return STORE_E_IO;
    return store_memory_backend()->enqueue(s, q, len, h, hl, body, bl, id);
}

static store_err failing_enqueue_hashed(store *s, const char *q, size_t len, uint64_t hash,
                                        const char *h, size_t hl, const char *body, size_t bl,
                                        uint64_t *id)
{
    if (refused(q, len))
        return STORE_E_IO;
    return store_memory_backend()->enqueue_hashed(s, q, len, hash, h, hl, body, bl, id);
}

/* A COMMIT whose second SEND fails leaves nothing: not the SEND before it, not its ACK;
 * the client gets an ERROR naming the transaction. */
static void test_commit_all_or_nothing(void **state)
{
    (void)state;
    failing = *store_memory_backend();
    failing.enqueue = failing_enqueue;
    failing.enqueue_hashed = failing_enqueue_hashed;
    broker_options o;
    broker_options_init(&o);
    o.store = &failing;
    tb *t = tb_start(&o);
    tc *p = open12(t);
    TC_SENDF(p, "SEND\ndestination:/queue/acked\nreceipt:s\n\nm");
    receipt(p, "s");
    tc *c = open12(t);
    TC_SENDF(c, "SUBSCRIBE\nid:1\ndestination:/queue/acked\nack:client-individual\n\n");
    tframe f;
    assert_true(tc_is(c, "MESSAGE", &f));
    char ack[32];
    snprintf(ack, sizeof ack, "%s", tf_header(&f, "ack"));
    tf_free(&f);
    TC_SENDF(c, "BEGIN\ntransaction:t1\n\n");
    TC_SENDF(c, "SEND\ndestination:/queue/ok\ntransaction:t1\n\none");
    TC_SENDF(c, "ACK\nid:%s\ntransaction:t1\n\n", ack);
    TC_SENDF(c, "SEND\ndestination:/queue/fail\ntransaction:t1\n\ntwo");
    TC_SENDF(c, "SEND\ndestination:/queue/ok\ntransaction:t1\n\nthree");
    TC_SENDF(c, "COMMIT\ntransaction:t1\nreceipt:c\n\n");
    assert_true(tc_is(c, "ERROR", &f));
    assert_string_equal(f.body, "transaction t1 failed and nothing of it was applied: the "
                                "store refused a message");
    assert_string_equal(tf_header(&f, "receipt-id"), "c");
    tf_free(&f);
    tc_close(c);
    /* Nothing of t1: /queue/ok is empty, the unacked message comes back. */
    c = open12(t);
    TC_SENDF(c, "SUBSCRIBE\nid:1\ndestination:/queue/ok\n\n");
    TC_SENDF(c, "SUBSCRIBE\nid:2\ndestination:/queue/acked\n\n");
    assert_true(tc_is(c, "MESSAGE", &f));
    assert_string_equal(tf_header(&f, "subscription"), "2");
    assert_string_equal(tf_header(&f, "redelivered"), "true");
    tf_free(&f);
    assert_int_equal(tc_read(c, &f, 300), -1);
    tc_close(c);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_on_commit_only),
        cmocka_unit_test(test_abort_and_disconnect_discard),
        cmocka_unit_test(test_ack_nack_in_tx),
        cmocka_unit_test(test_tx_errors),
        cmocka_unit_test(test_commit_all_or_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
