/* test_pgdurable.c: the PostgreSQL store holds no durable topic subscriptions: a durable
 * SUBSCRIBE (any dialect) or UNSUBSCRIBE gets an ERROR naming its header and the store, and
 * a plain topic subscription on the same broker still works (a private server,
 * tests/lib/pgtest.h, for the program).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "pgtest.h"
#include "store_postgres.h"
#include "testlib.h"

static pgtest pg;

static void refused(tb *t, const char *connect_extra, const char *frame, const char *want)
{
    tc *c = tc_open(tb_port(t), connect_extra);
    assert_non_null(c);
    tframe f;
    assert_int_equal(tc_send(c, frame), 0);
    assert_true(tc_is(c, "ERROR", &f));
    if (strcmp(f.body, want) != 0)
        fail_msg("got: %s\nwant: %s", f.body, want);
    tf_free(&f);
    tc_close(c);
}

static void test_durable_refused(void **state)
{
    (void)state;
    char conninfo[256];
    assert_int_equal(pgtest_createdb(&pg, "pgdurable", conninfo, sizeof conninfo), 0);
    broker_options o;
    broker_options_init(&o);
    o.store = store_postgres_backend();
    o.store_path = conninfo;
    tb *t = tb_start(&o);
    assert_non_null(t);
    refused(t, "accept-version:1.2\nclient-id:c\n",
            "SUBSCRIBE\nid:1\ndestination:/topic/t\nactivemq.subscriptionName:n\n\n",
            "SUBSCRIBE header activemq.subscriptionName is not supported on the postgres "
            "store: durable topic subscriptions are kept by the memory and sqlite stores");
    refused(t, "accept-version:1.2\n",
            "SUBSCRIBE\nid:1\ndestination:/topic/t\ndurable:true\nauto-delete:false\n\n",
            "SUBSCRIBE header durable is not supported on the postgres store: durable topic "
            "subscriptions are kept by the memory and sqlite stores");
    refused(t, "accept-version:1.2\n", "UNSUBSCRIBE\nid:1\npersistent:true\n\n",
            "UNSUBSCRIBE header persistent is not supported on the postgres store: durable "
            "topic subscriptions are kept by the memory and sqlite stores");
    /* A plain topic subscription is unaffected. */
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    tframe f;
    TC_SENDF(c, "SUBSCRIBE\nid:1\ndestination:/topic/t\nreceipt:s\n\n");
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    TC_SENDF(c, "SEND\ndestination:/topic/t\n\nhello");
    assert_true(tc_is(c, "MESSAGE", &f));
    assert_memory_equal(f.body, "hello", 5);
    tf_free(&f);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (pgtest_start(&pg) != 0) {
        fprintf(stderr, "test_pgdurable: cannot start a private PostgreSQL: %s\n", pg.err);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durable_refused),
    };
    int failed = cmocka_run_group_tests_name("durable subscriptions on postgres", tests, NULL,
                                             NULL);
    pgtest_stop(&pg);
    return failed ? 1 : 0;
}
