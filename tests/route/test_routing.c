/* test_routing.c: selectors, noLocal and wildcards over real sockets, on the memory and
 * the SQLite store: topic subscribers get only what their selector accepts; a noLocal
 * subscriber not its own connection's messages; wildcard topic subscriptions every
 * matching topic's messages (with the topic's name as destination); a queue consumer with
 * a selector the first ready message it accepts, the others left for other consumers in
 * their order; a wildcard queue consumer the messages of every matching queue, stored
 * before it subscribed (also after a restart) or after, one queue after the other.
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
    tb_store_init(fx, sqlite, "routing");
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

static tc *client(tb *t)
{
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    return c;
}

/* SUBSCRIBE on c with id and extra header lines, waiting for its RECEIPT. */
static void subscribe(tc *c, const char *id, const char *dest, const char *extra)
{
    TC_SENDF(c, "SUBSCRIBE\nid:%s\ndestination:%s\n%sreceipt:sub-%s\n\n", id, dest, extra, id);
    tframe f;
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
}

/* SEND on c, waiting for its RECEIPT (a queue message is then committed). */
static void sendr(tc *c, const char *dest, const char *extra, const char *body)
{
    TC_SENDF(c, "SEND\ndestination:%s\n%sreceipt:s\n\n%s", dest, extra, body);
    tframe f;
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
}

/* The next MESSAGE on c: body, subscription and destination as given; its ack id. */
static void expect(tc *c, const char *body, const char *subid, const char *dest, char *ack)
{
    tframe f;
    assert_true(tc_is(c, "MESSAGE", &f));
    if (strcmp(f.body, body) != 0)
        fail_msg("got %s, want %s", f.body, body);
    assert_string_equal(tf_header(&f, "subscription"), subid);
    assert_string_equal(tf_header(&f, "destination"), dest);
    if (ack)
        snprintf(ack, 32, "%s", tf_header(&f, "ack"));
    tf_free(&f);
}

/* c gets nothing more: a receipt round trip comes back first. */
static void nothing_more(tc *c)
{
    TC_SENDF(c, "DISCONNECT\nreceipt:bye\n\n");
    tframe f;
    assert_int_equal(tc_read(c, &f, TL_TIMEOUT_MS), 0);
    if (strcmp(f.cmd, "RECEIPT") != 0)
        fail_msg("unexpected %s: %s", f.cmd, f.body);
    tf_free(&f);
}

static void test_topic_selector(void **state)
{
    tb *t = start(*state);
    tc *red = client(t), *all = client(t), *num = client(t), *p = client(t);
    subscribe(red, "r", "/topic/cars", "selector:color = 'red' AND JMSPriority = 4\n");
    subscribe(all, "a", "/topic/cars", "");
    subscribe(num, "n", "/topic/cars", "selector:weight > 2500 OR type LIKE 'v%'\n");
    sendr(p, "/topic/cars", "color:red\nweight:3000\n", "1");
    sendr(p, "/topic/cars", "color:blue\ntype:van\n", "2");
    sendr(p, "/topic/cars", "", "3");
    sendr(p, "/topic/cars", "color:red\npriority:9\n", "4");
    expect(red, "1", "r", "/topic/cars", NULL);
    expect(all, "1", "a", "/topic/cars", NULL);
    expect(all, "2", "a", "/topic/cars", NULL);
    expect(all, "3", "a", "/topic/cars", NULL);
    expect(all, "4", "a", "/topic/cars", NULL);
    expect(num, "1", "n", "/topic/cars", NULL);
    expect(num, "2", "n", "/topic/cars", NULL);
    nothing_more(red);
    nothing_more(num);
    tc_close(red);
    tc_close(all);
    tc_close(num);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

static void test_no_local(void **state)
{
    tb *t = start(*state);
    tc *a = client(t), *b = client(t);
    subscribe(a, "own", "/topic/chat", "activemq.noLocal:true\n");
    subscribe(a, "all", "/topic/chat", "");
    subscribe(b, "nl", "/topic/chat", "no-local:true\n");
    tframe f;
    TC_SENDF(a, "SEND\ndestination:/topic/chat\nreceipt:r1\n\nfrom-a");
    expect(a, "from-a", "all", "/topic/chat", NULL); /* its own, on the plain one only */
    assert_true(tc_is(a, "RECEIPT", &f));
    tf_free(&f);
    expect(b, "from-a", "nl", "/topic/chat", NULL);
    sendr(b, "/topic/chat", "", "from-b"); /* not to b itself */
    expect(a, "from-b", "own", "/topic/chat", NULL);
    expect(a, "from-b", "all", "/topic/chat", NULL);
    /* A transaction's SEND is its connection's too. */
    TC_SENDF(a, "BEGIN\ntransaction:t\n\n");
    TC_SENDF(a, "SEND\ndestination:/topic/chat\ntransaction:t\n\ntx-a");
    TC_SENDF(a, "COMMIT\ntransaction:t\nreceipt:c\n\n");
    expect(a, "tx-a", "all", "/topic/chat", NULL);
    assert_true(tc_is(a, "RECEIPT", &f));
    tf_free(&f);
    expect(b, "tx-a", "nl", "/topic/chat", NULL);
    nothing_more(a);
    nothing_more(b);
    tc_close(a);
    tc_close(b);
    assert_int_equal(tb_stop(t), 0);
}

static void test_topic_wildcards(void **state)
{
    tb *t = start(*state);
    tc *one = client(t), *rest = client(t), *hash = client(t), *sel = client(t),
       *p = client(t);
    subscribe(one, "1", "/topic/px.*", "");
    subscribe(one, "1b", "/topic/px.*.eu", "");
    subscribe(rest, "2", "/topic/px.>", "");
    subscribe(hash, "3", "/topic/#", "");
    subscribe(sel, "4", "/topic/px.>", "selector:v > 10\n");
    sendr(p, "/topic/px.ibm", "v:5\n", "a");
    sendr(p, "/topic/px.ibm.eu", "v:50\n", "b");
    sendr(p, "/topic/px", "", "c");
    sendr(p, "/topic/px/ibm", "", "d"); /* another separator: not px.* */
    sendr(p, "/topic/other", "v:99\n", "e");
    expect(one, "a", "1", "/topic/px.ibm", NULL);
    expect(one, "b", "1b", "/topic/px.ibm.eu", NULL);
    expect(rest, "a", "2", "/topic/px.ibm", NULL);
    expect(rest, "b", "2", "/topic/px.ibm.eu", NULL);
    expect(hash, "a", "3", "/topic/px.ibm", NULL);
    expect(hash, "b", "3", "/topic/px.ibm.eu", NULL);
    expect(hash, "c", "3", "/topic/px", NULL);
    expect(hash, "d", "3", "/topic/px/ibm", NULL);
    expect(hash, "e", "3", "/topic/other", NULL);
    expect(sel, "b", "4", "/topic/px.ibm.eu", NULL);
    /* Unsubscribed, a pattern gets nothing more; the others still do. */
    TC_SENDF(rest, "UNSUBSCRIBE\nid:2\nreceipt:u\n\n");
    tframe f;
    assert_true(tc_is(rest, "RECEIPT", &f));
    tf_free(&f);
    sendr(p, "/topic/px.sun", "", "f");
    expect(one, "f", "1", "/topic/px.sun", NULL);
    expect(hash, "f", "3", "/topic/px.sun", NULL);
    nothing_more(one);
    nothing_more(rest);
    nothing_more(hash);
    nothing_more(sel);
    tc_close(one);
    tc_close(rest);
    tc_close(hash);
    tc_close(sel);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

static void test_queue_selector(void **state)
{
    tb *t = start(*state);
    tc *p = client(t);
    static const char *const colors[] = { "red", "blue", "green", "red", "blue", "red" };
    for (int i = 0; i < 6; i++) {
        char extra[32], body[32];
        snprintf(extra, sizeof extra, "color:%s\n", colors[i]);
        snprintf(body, sizeof body, "%s%d", colors[i], i);
        sendr(p, "/queue/sel", extra, body);
    }
    tc *red = client(t), *blue = client(t);
    char ack[32];
    subscribe(red, "r", "/queue/sel", "ack:client-individual\nselector:color='red'\n");
    subscribe(blue, "b", "/queue/sel", "ack:client-individual\nselector:color IN ('blue')\n");
    expect(red, "red0", "r", "/queue/sel", ack);
    expect(red, "red3", "r", "/queue/sel", NULL);
    expect(red, "red5", "r", "/queue/sel", NULL);
    expect(blue, "blue1", "b", "/queue/sel", NULL);
    expect(blue, "blue4", "b", "/queue/sel", NULL);
    /* NACKed, red0 comes back to its place and to the consumer whose selector takes it. */
    TC_SENDF(red, "NACK\nid:%s\n\n", ack);
    tframe f;
    assert_true(tc_is(red, "MESSAGE", &f));
    assert_string_equal(f.body, "red0");
    assert_string_equal(tf_header(&f, "redelivered"), "true");
    tf_free(&f);
    sendr(p, "/queue/sel", "color:blue\n", "blue6");
    expect(blue, "blue6", "b", "/queue/sel", NULL);
    /* Unsubscribed (red first), their unacked messages are back once the RECEIPT is. */
    TC_SENDF(red, "UNSUBSCRIBE\nid:r\nreceipt:u\n\n");
    assert_true(tc_is(red, "RECEIPT", &f));
    tf_free(&f);
    TC_SENDF(blue, "UNSUBSCRIBE\nid:b\nreceipt:u\n\n");
    assert_true(tc_is(blue, "RECEIPT", &f));
    tf_free(&f);
    nothing_more(red);
    nothing_more(blue);
    tc_close(red);
    tc_close(blue);
    /* What no selector took is there for a plain consumer; the unacked ones of the
     * unsubscribed consumers came back to the head, each consumer's in the order it got
     * them (red0 the last, redelivered), the last unsubscribed first. */
    tc *plain = client(t);
    subscribe(plain, "p", "/queue/sel", "");
    static const char *const left[] = { "blue1", "blue4", "blue6", "red3", "red5", "red0",
                                        "green2" };
    for (int i = 0; i < 7; i++) {
        assert_true(tc_is(plain, "MESSAGE", &f));
        assert_string_equal(f.body, left[i]);
        tf_free(&f);
    }
    nothing_more(plain);
    tc_close(plain);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

static void test_queue_wildcard(void **state)
{
    fixture *fx = *state;
    tb *t = start(fx);
    tc *p = client(t);
    sendr(p, "/queue/w.a", "", "a1");
    sendr(p, "/queue/w.a", "", "a2");
    sendr(p, "/queue/w.b", "", "b1");
    sendr(p, "/queue/w.b", "", "b2");
    sendr(p, "/queue/x.a", "", "x1");
    tc_close(p);
    if (fx->sqlite) { /* the queues are found in the file */
        assert_int_equal(tb_stop(t), 0);
        t = start(fx);
    }
    tc *c = client(t);
    char ack[32];
    subscribe(c, "w", "/queue/w.*", "ack:client\nprefetch-count:1\n");
    /* One queue after the other. */
    tframe f;
    char first[8] = "";
    for (int i = 0; i < 4; i++) {
        assert_true(tc_is(c, "MESSAGE", &f));
        const char *dest = tf_header(&f, "destination");
        char want[32];
        snprintf(want, sizeof want, "/queue/w.%c", f.body[0]);
        assert_string_equal(dest, want);
        if (i == 0)
            snprintf(first, sizeof first, "%c", f.body[0]);
        /* Alternating queues, each in its order. */
        char expect_body[32];
        char qc = (i % 2 == 0) ? first[0] : (first[0] == 'a' ? 'b' : 'a');
        snprintf(expect_body, sizeof expect_body, "%c%d", qc, i / 2 + 1);
        assert_string_equal(f.body, expect_body);
        snprintf(ack, sizeof ack, "%s", tf_header(&f, "ack"));
        tf_free(&f);
        TC_SENDF(c, "ACK\nid:%s\n\n", ack);
    }
    /* A queue that appears later, and a selector on a wildcard. */
    p = client(t);
    tc *s = client(t);
    subscribe(s, "ws", "/queue/w.>", "selector:n = 2\n");
    sendr(p, "/queue/w.c", "n:1\n", "c1");
    expect(c, "c1", "w", "/queue/w.c", ack);
    sendr(p, "/queue/w.d.e", "n:2\n", "d2");
    expect(s, "d2", "ws", "/queue/w.d.e", NULL);
    /* A NACKed message goes back to its queue and comes again. */
    TC_SENDF(c, "NACK\nid:%s\n\n", ack);
    assert_true(tc_is(c, "MESSAGE", &f));
    assert_string_equal(f.body, "c1");
    assert_string_equal(tf_header(&f, "redelivered"), "true");
    assert_string_equal(tf_header(&f, "destination"), "/queue/w.c");
    snprintf(ack, sizeof ack, "%s", tf_header(&f, "ack"));
    tf_free(&f);
    TC_SENDF(c, "ACK\nid:%s\n\n", ack);
    nothing_more(c);
    nothing_more(s);
    tc_close(c);
    tc_close(s);
    /* x.a was not the pattern's: it is still there. */
    c = client(t);
    subscribe(c, "x", "/queue/x.a", "");
    expect(c, "x1", "x", "/queue/x.a", NULL);
    nothing_more(c);
    tc_close(c);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

#define BOTH(fn)                                                                               \
    cmocka_unit_test_setup_teardown(fn, setup_memory, teardown),                               \
        cmocka_unit_test_setup_teardown(fn, setup_sqlite, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_topic_selector), BOTH(test_no_local),     BOTH(test_topic_wildcards),
        BOTH(test_queue_selector), BOTH(test_queue_wildcard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
