/* test_embed.c: the embedding API: two brokers in one process (separate threads, and two
 * on one loop), in-process publish/subscribe without sockets, IPv6 listening, argument
 * and state errors, and a clean loop after stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "testlib.h"

static void test_two_brokers_two_threads(void **state)
{
    (void)state;
    tb *t1 = tb_start(NULL), *t2 = tb_start(NULL);
    assert_non_null(t1);
    assert_non_null(t2);
    assert_int_not_equal(tb_port(t1), tb_port(t2));
    tc *a = tc_open(tb_port(t1), "accept-version:1.2\n");
    tc *b = tc_open(tb_port(t2), "accept-version:1.2\n");
    TC_SENDF(a, "SEND\ndestination:/queue/same\nreceipt:r\n\none");
    TC_SENDF(b, "SEND\ndestination:/queue/same\nreceipt:r\n\ntwo");
    tframe f;
    assert_true(tc_is(a, "RECEIPT", &f));
    tf_free(&f);
    assert_true(tc_is(b, "RECEIPT", &f));
    tf_free(&f);
    /* Each broker has its own queue of the same name. */
    TC_SENDF(a, "SUBSCRIBE\nid:1\ndestination:/queue/same\n\n");
    TC_SENDF(b, "SUBSCRIBE\nid:1\ndestination:/queue/same\n\n");
    assert_true(tc_is(a, "MESSAGE", &f));
    assert_memory_equal(f.body, "one", 3);
    tf_free(&f);
    assert_true(tc_is(b, "MESSAGE", &f));
    assert_memory_equal(f.body, "two", 3);
    tf_free(&f);
    assert_int_equal(tc_read(a, &f, 100), -1);
    tc_close(a);
    tc_close(b);
    broker_stats s1, s2;
    tb_stats(t1, &s1);
    tb_stats(t2, &s2);
    assert_int_equal(s1.messages_in, 1);
    assert_int_equal(s2.messages_in, 1);
    assert_int_equal(tb_stop(t1), 0);
    assert_int_equal(tb_stop(t2), 0);
}

/* The log callback gets each record's level, connection id and event as fields: the id
 * is the one CONNECTED named in its session header, and the text does not repeat it. */
static void test_log_records_are_structured(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    assert_non_null(t);
    tc *c = tc_connect(tb_port(t));
    assert_non_null(c);
    TC_SENDF(c, "CONNECT\naccept-version:1.2\n\n");
    tframe f;
    assert_true(tc_is(c, "CONNECTED", &f));
    unsigned long long id = 0;
    assert_int_equal(sscanf(tf_header(&f, "session"), "session-%llu", &id), 1);
    tf_free(&f);
    TC_SENDF(c, "FOO\n\n");
    assert_true(tc_is(c, "ERROR", &f));
    tf_free(&f);
    assert_true(tc_closed(c, TL_TIMEOUT_MS));
    tc_close(c);
    tb_record r;
    assert_true(tb_log_find(t, BROKER_EV_CONN_ERROR, &r));
    assert_int_equal(r.level, BROKER_LOG_WARN);
    assert_int_equal(r.conn_id, id);
    assert_string_equal(r.text, "unknown command");
    assert_true(tb_log_find(t, BROKER_EV_LISTEN, &r));
    assert_int_equal(r.conn_id, 0);
    char want[64];
    snprintf(want, sizeof want, "listening on 127.0.0.1:%d", tb_port(t));
    assert_string_equal(r.text, want);
    assert_string_equal(broker_event_name(BROKER_EV_CONN_ERROR), "conn-error");
    assert_string_equal(broker_event_name(BROKER_EV__COUNT), "unknown");
    assert_int_equal(tb_stop(t), 0);
}

/* A record is one line, as broker.h promises, even when it names what a peer sent: a
 * destination with an escaped line break came into the text as it was, so an embedder
 * writing records to a file got a forged second line. Control characters are \xNN. */
static void test_log_text_is_one_line(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    assert_non_null(t);
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    TC_SENDF(c, "SEND\ndestination:/queue/a\\n2026-01-01T00:00:00.000Z info\\r\n\nx");
    tframe f;
    assert_true(tc_is(c, "ERROR", &f));
    tf_free(&f);
    assert_true(tc_closed(c, TL_TIMEOUT_MS));
    tc_close(c);
    tb_record r;
    assert_true(tb_log_find(t, BROKER_EV_CONN_ERROR, &r));
    assert_null(strchr(r.text, '\n'));
    assert_null(strchr(r.text, '\r'));
    assert_non_null(strstr(r.text, "/queue/a\\x0a2026-01-01T00:00:00.000Z info\\x0d"));
    assert_int_equal(tb_stop(t), 0);
}

/* ---- in-process, on the test's own loop ---- */

typedef struct got {
    int n;
    char last[64];
    char hdr[64];
    int in_call; /* set while broker_subscribe runs: the callback must not see it */
    int bad;
} got;

static void on_msg(void *arg, const broker_message *m)
{
    got *g = arg;
    if (g->in_call)
        g->bad = 1;
    g->n++;
    snprintf(g->last, sizeof g->last, "%.*s", (int)m->body_len, (const char *)m->body);
    const char *h = broker_message_header(m, "x-k");
    snprintf(g->hdr, sizeof g->hdr, "%s", h ? h : "");
}

static int stopped;

static void on_stop(broker *b, void *arg)
{
    (void)b;
    (void)arg;
    stopped++;
}

static void test_inproc_pubsub_two_on_one_loop(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    broker *b1, *b2;
    assert_int_equal(broker_create(&loop, NULL, &b1), BROKER_OK);
    assert_int_equal(broker_create(&loop, NULL, &b2), BROKER_OK);
    broker_header h[] = { { "x-k", "v" }, { "receipt", "dropped" } };
    /* Queue: published before anyone listens, delivered once subscribed. */
    assert_int_equal(broker_publish(b1, "/queue/in", h, 2, "q1", 2), BROKER_OK);
    got g1 = { 0 }, g2 = { 0 }, gt = { 0 };
    broker_sub *s1, *s2, *st;
    g1.in_call = 1;
    assert_int_equal(broker_subscribe(b1, "/queue/in", on_msg, &g1, &s1), BROKER_OK);
    g1.in_call = 0;
    assert_int_equal(broker_subscribe(b2, "/queue/in", on_msg, &g2, &s2), BROKER_OK);
    assert_int_equal(broker_subscribe(b1, "/topic/in", on_msg, &gt, &st), BROKER_OK);
    assert_int_equal(g1.n, 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(g1.n, 1);
    assert_string_equal(g1.last, "q1");
    assert_string_equal(g1.hdr, "v");
    assert_int_equal(g1.bad, 0);
    assert_int_equal(g2.n, 0); /* the other broker's queue is separate */
    assert_int_equal(broker_publish(b1, "/topic/in", NULL, 0, "t1", 2), BROKER_OK);
    assert_int_equal(gt.n, 1);
    assert_string_equal(gt.last, "t1");
    broker_unsubscribe(st);
    assert_int_equal(broker_publish(b1, "/topic/in", NULL, 0, "t2", 2), BROKER_OK);
    assert_int_equal(gt.n, 1);
    broker_stats s;
    broker_get_stats(b1, &s);
    assert_int_equal(s.messages_in, 3);
    assert_int_equal(s.messages_out, 2);
    assert_int_equal(s.subscriptions, 1);
    /* Argument and state errors. */
    assert_int_equal(broker_publish(b1, "", NULL, 0, NULL, 0), BROKER_E_INVALID);
    assert_int_equal(broker_listen(b1, "not-an-ip", 0, NULL), BROKER_E_ADDRESS);
    int port6 = -1;
    broker_err rc6 = broker_listen(b2, "::1", 0, &port6);
    if (rc6 == BROKER_OK) {
        assert_true(port6 > 0);
        /* The same port again is taken. */
        assert_int_equal(broker_listen(b1, "::1", port6, NULL), BROKER_E_LISTEN);
    }
    broker_unsubscribe(s2);
    stopped = 0;
    assert_int_equal(broker_stop(b1, on_stop, NULL), BROKER_OK);
    assert_int_equal(broker_stop(b1, on_stop, NULL), BROKER_E_STATE);
    assert_int_equal(broker_stop(b2, on_stop, NULL), BROKER_OK);
    assert_int_equal(stopped, 0); /* never inside the call */
    assert_int_equal(broker_publish(b1, "/queue/in", NULL, 0, "x", 1), BROKER_E_STATE);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(stopped, 2);
    broker_free(b1);
    broker_free(b2);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void pub_fn(broker *b, void *arg)
{
    int *rc = arg;
    broker_header h = { "x-from", "inproc" };
    *rc = broker_publish(b, "/topic/mix", &h, 1, "hello", 5);
}

static void test_inproc_and_socket_share_queue(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    TC_SENDF(c, "SUBSCRIBE\nid:1\ndestination:/topic/mix\nreceipt:r\n\n");
    tframe f;
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    int rc = -1;
    tb_call(t, pub_fn, &rc);
    assert_int_equal(rc, BROKER_OK);
    assert_true(tc_is(c, "MESSAGE", &f));
    assert_string_equal(tf_header(&f, "x-from"), "inproc");
    assert_memory_equal(f.body, "hello", 5);
    tf_free(&f);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_brokers_two_threads),
        cmocka_unit_test(test_log_records_are_structured),
        cmocka_unit_test(test_log_text_is_one_line),
        cmocka_unit_test(test_inproc_pubsub_two_on_one_loop),
        cmocka_unit_test(test_inproc_and_socket_share_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
