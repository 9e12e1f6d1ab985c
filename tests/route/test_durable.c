/* test_durable.c: the broker on a store whose commits complete later, on the loop (the
 * SQLite backend): receipts and deliveries wait for the commit, and what got a RECEIPT
 * survives a restart of the broker; unacked messages are redelivered after it.
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

static char path[128];

static tb *start(void)
{
    broker_options o;
    broker_options_init(&o);
    o.store = store_sqlite_backend();
    o.store_path = path;
    o.policy.redelivery_delay = 0; /* returned messages keep their place at once */
    tb *t = tb_start(&o);
    assert_non_null(t);
    return t;
}

static void remove_db(void)
{
    static const char *const suffix[] = { "", "-wal", "-shm", "-lock", "-journal" };
    char p[160];
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        unlink(p);
    }
}

static void fresh_path(void)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/stompd-test-%d.db", dir && *dir ? dir : "/tmp",
             (int)getpid());
    remove_db();
}

static void test_receipted_messages_survive_restart(void **state)
{
    (void)state;
    fresh_path();
    tb *t = start();
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    tframe f;
    for (int i = 0; i < 50; i++)
        TC_SENDF(c, "SEND\ndestination:/queue/d\nx-n:%d\n%s\nbody-%d", i,
              i == 49 ? "receipt:all\n" : "", i);
    assert_true(tc_is(c, "RECEIPT", &f));
    assert_string_equal(tf_header(&f, "receipt-id"), "all");
    tf_free(&f);
    /* Take two without acking, ack one. */
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:/queue/d\nack:client-individual\nprefetch-count:2\n\n");
    char ack0[32];
    assert_true(tc_is(c, "MESSAGE", &f));
    assert_memory_equal(f.body, "body-0", 6);
    snprintf(ack0, sizeof ack0, "%s", tf_header(&f, "ack"));
    tf_free(&f);
    assert_true(tc_is(c, "MESSAGE", &f));
    assert_memory_equal(f.body, "body-1", 6);
    tf_free(&f);
    TC_SENDF(c, "ACK\nid:%s\nreceipt:acked\n\n", ack0);
    /* The freed window may bring body-2 before the receipt (which waits for the commit). */
    assert_int_equal(tc_expect(c, "RECEIPT", &f), 0);
    tf_free(&f);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);

    /* Restarted: body-0 is gone; the unacked ones are ready again, in order. */
    t = start();
    c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:/queue/d\n\n");
    for (int i = 1; i < 50; i++) {
        char want[32];
        snprintf(want, sizeof want, "body-%d", i);
        assert_true(tc_is(c, "MESSAGE", &f));
        assert_int_equal(f.body_len, strlen(want));
        assert_memory_equal(f.body, want, f.body_len);
        tf_free(&f);
    }
    assert_int_equal(tc_read(c, &f, 200), -1);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
    remove_db();
}

/* With commits completing later, a NACK's RECEIPT still precedes the redelivery. */
static void test_nack_receipt_before_redelivery(void **state)
{
    (void)state;
    fresh_path();
    tb *t = start();
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    tframe f;
    TC_SENDF(c, "SEND\ndestination:/queue/nr\nreceipt:s\n\nA");
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:/queue/nr\nack:client-individual\n\n");
    for (int round = 1; round <= 3; round++) {
        assert_true(tc_is(c, "MESSAGE", &f));
        char id[32], rid[16];
        snprintf(id, sizeof id, "%s", tf_header(&f, "ack"));
        tf_free(&f);
        snprintf(rid, sizeof rid, "n%d", round);
        TC_SENDF(c, "NACK\nid:%s\nreceipt:%s\n\n", id, rid);
        assert_true(tc_is(c, "RECEIPT", &f));
        assert_string_equal(tf_header(&f, "receipt-id"), rid);
        tf_free(&f);
    }
    assert_true(tc_is(c, "MESSAGE", &f));
    assert_string_equal(tf_header(&f, "redelivery-count"), "3");
    tf_free(&f);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
    remove_db();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_receipted_messages_survive_restart),
        cmocka_unit_test(test_nack_receipt_before_redelivery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
