/* test_tempq.c: temporary queues for request and reply over real sockets, on the memory and
 * the SQLite store: reply-to:/temp-queue/NAME becomes a broker-unique /reply-queue/ name
 * that only its connection consumes (each connection's NAME is its own), replies reach it
 * under the subscription /temp-queue/NAME or the owner's own SUBSCRIBE, another connection
 * is refused, and when the owner closes its queue is emptied: replies sent later and
 * replies left in it are dropped and counted. Queues a crash left in the SQLite file are
 * emptied when the broker starts.
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

typedef tb_store fixture;

static int setup(void **state, int sqlite)
{
    fixture *fx = calloc(1, sizeof *fx);
    tb_store_init(fx, sqlite, "tempq");
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
    tb_store_remove(fx);
    free(fx);
    return 0;
}

static tb *start(const fixture *fx)
{
    broker_options o;
    broker_options_init(&o);
    o.policy.redelivery_delay = 0;
    tb_store_use(fx, &o);
    tb *t = tb_start(&o);
    assert_non_null(t);
    return t;
}

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

/* The service: subscribed to /queue/svc. */
static tc *service(tb *t)
{
    tc *c = open12(t);
    TC_SENDF(c, "SUBSCRIBE\nid:svc\ndestination:/queue/svc\nreceipt:r\n\n");
    receipt(c);
    return c;
}

/* The service takes one request (body must be body) and answers it at its reply-to with
 * "re:" and the body; the reply name into reply. */
static void answer(tc *svc, const char *body, char *reply, size_t cap)
{
    tframe f;
    assert_true(tc_is(svc, "MESSAGE", &f));
    assert_string_equal(f.body, body);
    const char *to = tf_header(&f, "reply-to");
    assert_non_null(to);
    assert_int_equal(strncmp(to, "/reply-queue/", 13), 0);
    snprintf(reply, cap, "%s", to);
    TC_SENDF(svc, "SEND\ndestination:%s\nreceipt:a\n\nre:%s", to, body);
    tf_free(&f);
    receipt(svc);
}

/* c receives nothing within ms. */
static void quiet(tc *c, int ms)
{
    tframe f;
    if (tc_read(c, &f, ms) == 0) {
        fail_msg("unexpected %s: %s", f.cmd, f.body);
        tf_free(&f);
    }
}

/* Two clients use the same NAME: each gets a name of its own and only its own reply, as a
 * MESSAGE of the subscription /temp-queue/NAME whose destination is the reply name. */
static void test_request_reply(void **state)
{
    tb *t = start(*state);
    tc *svc = service(t);
    tc *a = open12(t), *b = open12(t);
    char ra[128], rb[128];
    TC_SENDF(a, "SEND\ndestination:/queue/svc\nreply-to:/temp-queue/r\nreceipt:s\n\nfrom-a");
    receipt(a);
    answer(svc, "from-a", ra, sizeof ra);
    TC_SENDF(b, "SEND\ndestination:/queue/svc\nreply-to:/temp-queue/r\nreceipt:s\n\nfrom-b");
    receipt(b);
    answer(svc, "from-b", rb, sizeof rb);
    assert_string_not_equal(ra, rb);
    tframe f;
    assert_true(tc_is(a, "MESSAGE", &f));
    assert_string_equal(f.body, "re:from-a");
    assert_string_equal(tf_header(&f, "subscription"), "/temp-queue/r");
    assert_string_equal(tf_header(&f, "destination"), ra);
    tf_free(&f);
    assert_true(tc_is(b, "MESSAGE", &f));
    assert_string_equal(f.body, "re:from-b");
    tf_free(&f);
    /* A second request reuses the name and the subscription. */
    TC_SENDF(a, "SEND\ndestination:/queue/svc\nreply-to:/temp-queue/r\n\nagain");
    char ra2[128];
    answer(svc, "again", ra2, sizeof ra2);
    assert_string_equal(ra, ra2);
    assert_true(tc_is(a, "MESSAGE", &f));
    assert_string_equal(f.body, "re:again");
    tf_free(&f);
    quiet(a, 100);
    quiet(b, 100);
    tc_close(a);
    tc_close(b);
    tc_close(svc);
    broker_stats st;
    tb_stats(t, &st);
    assert_int_equal(st.temp_dropped, 0);
    assert_int_equal(tb_stop(t), 0);
}

/* The owner's own SUBSCRIBE to /temp-queue/NAME (before or after its SEND) receives the
 * replies with its id and ack mode; a SEND to /temp-queue/NAME reaches it too. */
static void test_owner_subscribes(void **state)
{
    tb *t = start(*state);
    tc *svc = service(t);
    tc *a = open12(t);
    TC_SENDF(a, "SUBSCRIBE\nid:mine\ndestination:/temp-queue/x\nack:client-individual\n"
                "receipt:r\n\n");
    receipt(a);
    TC_SENDF(a, "SEND\ndestination:/queue/svc\nreply-to:/temp-queue/x\n\nq1");
    char r1[128];
    answer(svc, "q1", r1, sizeof r1);
    tframe f;
    assert_true(tc_is(a, "MESSAGE", &f));
    assert_string_equal(f.body, "re:q1");
    assert_string_equal(tf_header(&f, "subscription"), "mine");
    TC_SENDF(a, "ACK\nid:%s\n\n", tf_header(&f, "ack"));
    tf_free(&f);
    TC_SENDF(a, "SEND\ndestination:/temp-queue/x\n\nself");
    assert_true(tc_is(a, "MESSAGE", &f));
    assert_string_equal(f.body, "self");
    assert_string_equal(tf_header(&f, "destination"), r1);
    TC_SENDF(a, "ACK\nid:%s\n\n", tf_header(&f, "ack"));
    tf_free(&f);
    /* SEND first, SUBSCRIBE after: the SUBSCRIBE replaces the subscription the SEND made. */
    TC_SENDF(a, "SEND\ndestination:/queue/svc\nreply-to:/temp-queue/y\nreceipt:s\n\nq2");
    receipt(a);
    TC_SENDF(a, "SUBSCRIBE\nid:later\ndestination:/temp-queue/y\nreceipt:r\n\n");
    receipt(a);
    char r2[128];
    answer(svc, "q2", r2, sizeof r2);
    assert_true(tc_is(a, "MESSAGE", &f));
    assert_string_equal(f.body, "re:q2");
    assert_string_equal(tf_header(&f, "subscription"), "later");
    tf_free(&f);
    quiet(a, 100);
    tc_close(a);
    tc_close(svc);
    assert_int_equal(tb_stop(t), 0);
}

/* Another connection cannot subscribe to a reply name: an ERROR names it, and the owner
 * keeps its replies; a name that is not live is refused as well. */
static void test_others_refused(void **state)
{
    tb *t = start(*state);
    tc *svc = service(t);
    tc *a = open12(t);
    TC_SENDF(a, "SEND\ndestination:/queue/svc\nreply-to:/temp-queue/p\nreceipt:s\n\nq");
    receipt(a);
    tframe f;
    assert_true(tc_is(svc, "MESSAGE", &f));
    char name[128];
    snprintf(name, sizeof name, "%s", tf_header(&f, "reply-to"));
    tf_free(&f);
    tc *thief = open12(t);
    TC_SENDF(thief, "SUBSCRIBE\nid:t\ndestination:%s\n\n", name);
    assert_true(tc_is(thief, "ERROR", &f));
    assert_non_null(strstr(tf_header(&f, "message"), name));
    assert_non_null(strstr(tf_header(&f, "message"), "another connection"));
    tf_free(&f);
    tc_close(thief);
    thief = open12(t);
    TC_SENDF(thief, "SUBSCRIBE\nid:t\ndestination:/reply-queue/nothing-1\n\n");
    assert_true(tc_is(thief, "ERROR", &f));
    assert_non_null(strstr(tf_header(&f, "message"), "/reply-queue/nothing-1"));
    tf_free(&f);
    tc_close(thief);
    /* A wildcard queue pattern never reaches a reply queue: the thief's first message is the
     * marker sent after the answer, which went to its owner. */
    thief = open12(t);
    TC_SENDF(thief, "SUBSCRIBE\nid:w\ndestination:/*/>\nreceipt:w\n\n");
    receipt(thief);
    for (int i = 0; i < 10; i++)
        TC_SENDF(svc, "SEND\ndestination:%s\n\nanswer", name);
    for (int i = 0; i < 10; i++) {
        assert_true(tc_is(a, "MESSAGE", &f));
        assert_string_equal(f.body, "answer");
        tf_free(&f);
    }
    TC_SENDF(svc, "SEND\ndestination:/queue/marker\n\nmarker");
    assert_true(tc_is(thief, "MESSAGE", &f));
    assert_string_equal(f.body, "marker");
    tf_free(&f);
    tc_close(thief);
    tc_close(a);
    tc_close(svc);
    assert_int_equal(tb_stop(t), 0);
}

/* The owner closes with one reply delivered and unacked and one waiting behind its
 * window: both are dropped, and a reply sent afterwards is receipted and dropped (three
 * counted); nothing of the queue comes back after a restart. */
static void test_close_deletes(void **state)
{
    fixture *fx = *state;
    tb *t = start(fx);
    tc *svc = service(t);
    tc *a = open12(t);
    TC_SENDF(a, "SUBSCRIBE\nid:m\ndestination:/temp-queue/z\nack:client\nprefetch-count:1\n"
                "receipt:r\n\n");
    receipt(a);
    TC_SENDF(a, "SEND\ndestination:/queue/svc\nreply-to:/temp-queue/z\nreceipt:s\n\nq");
    receipt(a);
    char name[128];
    answer(svc, "q", name, sizeof name);
    TC_SENDF(svc, "SEND\ndestination:%s\nreceipt:a2\n\nsecond", name);
    receipt(svc);
    tframe f;
    assert_true(tc_is(a, "MESSAGE", &f));
    assert_string_equal(f.body, "re:q");
    tf_free(&f);
    tc_close(a);
    /* Once the queue is gone, a reply is dropped: the probe's SEND is receipted. */
    broker_stats st;
    for (int i = 0; i < 500; i++) {
        tb_stats(t, &st);
        if (st.connections == 1 && st.temp_dropped == 2)
            break;
        usleep(10000);
    }
    assert_int_equal(st.temp_dropped, 2);
    TC_SENDF(svc, "SEND\ndestination:%s\nreceipt:late\n\nlate", name);
    receipt(svc);
    tb_stats(t, &st);
    assert_int_equal(st.temp_dropped, 3);
    tc_close(svc);
    if (fx->sqlite) {
        assert_int_equal(tb_stop(t), 0);
        t = start(fx);
        tb_stats(t, &st);
        assert_int_equal(st.temp_dropped, 0); /* nothing left to empty */
    }
    assert_int_equal(tb_stop(t), 0);
}

static void on_commit(void *arg, store_err status)
{
    *(int *)arg = status == STORE_OK ? 1 : -1;
}

/* What a crash leaves: a reply queue with two messages in the file. */
static void leave_reply_queue(const fixture *fx)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    store_options so = { &loop, fx->path, 0, NULL, 0, 0, NULL, NULL };
    const store_ops *ops = store_sqlite_backend();
    store *s;
    assert_int_equal(ops->open(&so, &s), STORE_OK);
    static const char q[] = "/reply-queue/0000000000000000-1";
    uint64_t id;
    for (int i = 0; i < 2; i++)
        assert_int_equal(ops->enqueue(s, q, sizeof q - 1, "", 0, "x", 1, &id), STORE_OK);
    int done = 0;
    assert_int_equal(ops->commit(s, on_commit, &done), STORE_OK);
    while (!done)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(done, 1);
    ops->close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void count_queue(void *arg, const char *name, size_t len, uint64_t hash)
{
    (void)hash;
    if (len >= 13 && memcmp(name, "/reply-queue/", 13) == 0)
        (*(int *)arg)++;
}

static int reply_queues_in_file(const fixture *fx)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    store_options so = { &loop, fx->path, 0, NULL, 0, 0, NULL, NULL };
    const store_ops *ops = store_sqlite_backend();
    store *s;
    assert_int_equal(ops->open(&so, &s), STORE_OK);
    int n = 0;
    ops->queues(s, count_queue, &n);
    ops->close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return n;
}

static void test_crash_leftovers(void **state)
{
    fixture *fx = *state;
    leave_reply_queue(fx);
    assert_int_equal(reply_queues_in_file(fx), 1);
    tb *t = start(fx);
    tc *c = open12(t); /* the loop has run: the start's purge is under way or done */
    broker_stats st;
    for (int i = 0; i < 500; i++) {
        tb_stats(t, &st);
        if (st.temp_dropped == 2)
            break;
        usleep(10000);
    }
    assert_int_equal(st.temp_dropped, 2);
    TC_SENDF(c, "SEND\ndestination:/reply-queue/0000000000000000-1\nreceipt:s\n\nlate");
    receipt(c);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
    assert_int_equal(reply_queues_in_file(fx), 0);
}

#define BOTH(fn)                                                                               \
    cmocka_unit_test_setup_teardown(fn, setup_memory, teardown),                               \
        cmocka_unit_test_setup_teardown(fn, setup_sqlite, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_request_reply),
        BOTH(test_owner_subscribes),
        BOTH(test_others_refused),
        BOTH(test_close_deletes),
        cmocka_unit_test_setup_teardown(test_crash_leftovers, setup_sqlite, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
