/* test_durable_sub.c: durable topic subscriptions over real sockets, on the memory and the
 * SQLite store, in each dialect (ActiveMQ, Artemis, RabbitMQ, Apollo): what is published
 * while the subscriber is away comes when it returns, in order, under the topic's name,
 * then live messages; removal per dialect ends the collecting; a second live subscriber
 * of the same identity is refused; selector, noLocal and wildcards decide what is kept;
 * the queue policies (limits, dead letters, TTL) apply by the pattern /durable-sub/>; and
 * on SQLite everything survives a restart of the broker, and a message kept for 5
 * subscriptions has its body in the file once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "store_sqlite.h"
#include "testlib.h"

typedef tb_store fixture;

static int setup(void **state, int sqlite)
{
    fixture *fx = calloc(1, sizeof *fx);
    tb_store_init(fx, sqlite, "dursub");
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

static tb *start_with(const fixture *fx, const broker_policy_rule *rules, size_t n)
{
    broker_options o;
    broker_options_init(&o);
    o.policy.redelivery_delay = 0;
    o.policies = rules;
    o.npolicies = n;
    tb_store_use(fx, &o);
    tb *t = tb_start(&o);
    assert_non_null(t);
    return t;
}

static tb *start(const fixture *fx)
{
    return start_with(fx, NULL, 0);
}

/* A 1.2 session with client-id cid (NULL: none). */
static tc *open_as(tb *t, const char *cid)
{
    char extra[128];
    snprintf(extra, sizeof extra, "accept-version:1.2\n%s%s%s", cid ? "client-id:" : "",
             cid ? cid : "", cid ? "\n" : "");
    tc *c = tc_open(tb_port(t), extra);
    assert_non_null(c);
    return c;
}

/* Send frame (which asks for receipt:r) and wait for that RECEIPT. */
static void receipted(tc *c, const char *frame)
{
    tframe f;
    assert_int_equal(tc_send(c, frame), 0);
    assert_true(tc_is(c, "RECEIPT", &f));
    assert_string_equal(tf_header(&f, "receipt-id"), "r");
    tf_free(&f);
}

static void publish(tc *p, const char *topic, const char *body)
{
    char frame[256];
    snprintf(frame, sizeof frame, "SEND\ndestination:%s\nreceipt:r\n\n%s", topic, body);
    receipted(p, frame);
}

/* The next frame is a MESSAGE with this body, destination and subscription. */
static void expect_msg(tc *c, const char *body, const char *dest, const char *sub)
{
    tframe f;
    assert_true(tc_is(c, "MESSAGE", &f));
    if (f.body_len != strlen(body) || memcmp(f.body, body, f.body_len) != 0)
        fail_msg("got body %.*s, want %s", (int)f.body_len, f.body, body);
    assert_string_equal(tf_header(&f, "destination"), dest);
    assert_string_equal(tf_header(&f, "subscription"), sub);
    tf_free(&f);
}

/* One dialect: CONNECT's client-id, SUBSCRIBE's extra headers (with id), and the
 * UNSUBSCRIBE headers that remove it for good. */
typedef struct dialect {
    const char *name, *cid, *sub, *remove;
} dialect;

static const dialect dialects[] = {
    { "activemq", "amq", "id:s1\nactivemq.subscriptionName:n1\n",
      "id:s1\nactivemq.subscriptionName:n1\n" },
    { "artemis", NULL, "id:s2\nclient-id:art\ndurable-subscription-name:n2\n",
      "id:s2\nclient-id:art\ndurable-subscription-name:n2\n" },
    { "artemis-short", "art2", "id:s3\nsubscription-name:n3\n", "id:s3\nsubscription-name:n3\n" },
    { "rabbitmq", "rmq", "id:s4\ndurable:true\nauto-delete:false\n",
      "id:s4\ndurable:true\nauto-delete:false\n" },
    { "rabbitmq-named", NULL, "id:s5\ndurable:true\nauto-delete:false\nx-queue-name:q5\n",
      "id:s5\ndurable:true\nx-queue-name:q5\n" },
    { "apollo", NULL, "id:s6\npersistent:true\n", "id:s6\npersistent:true\n" },
};

static void subscribe(tc *c, const dialect *d, const char *topic)
{
    char frame[256];
    snprintf(frame, sizeof frame, "SUBSCRIBE\ndestination:%s\n%sreceipt:r\n\n", topic, d->sub);
    receipted(c, frame);
}

/* The id header's value in d->sub. */
static void sub_id(const dialect *d, char *out, size_t cap)
{
    snprintf(out, cap, "%.*s", (int)strcspn(d->sub + 3, "\n"), d->sub + 3);
}

static void one_dialect(tb *t, tc *p, const dialect *d, const char *topic)
{
    char id[16], frame[256];
    sub_id(d, id, sizeof id);
    tc *c = open_as(t, d->cid);
    subscribe(c, d, topic);
    /* A plain UNSUBSCRIBE: the subscriber goes away, the subscription stays. */
    snprintf(frame, sizeof frame, "UNSUBSCRIBE\nid:%s\nreceipt:r\n\n", id);
    receipted(c, frame);
    tc_close(c);
    publish(p, topic, "m1");
    publish(p, topic, "m2");
    publish(p, topic, "m3");
    c = open_as(t, d->cid);
    subscribe(c, d, topic);
    expect_msg(c, "m1", topic, id);
    expect_msg(c, "m2", topic, id);
    expect_msg(c, "m3", topic, id);
    publish(p, topic, "live");
    expect_msg(c, "live", topic, id);
    /* Removed for good: what is published next is not kept. */
    snprintf(frame, sizeof frame, "UNSUBSCRIBE\n%sreceipt:r\n\n", d->remove);
    receipted(c, frame);
    publish(p, topic, "gone");
    subscribe(c, d, topic); /* a new one, empty */
    publish(p, topic, "fresh");
    expect_msg(c, "fresh", topic, id);
    snprintf(frame, sizeof frame, "UNSUBSCRIBE\n%sreceipt:r\n\n", d->remove);
    receipted(c, frame);
    tc_close(c);
}

static void test_dialects(void **state)
{
    tb *t = start(*state);
    tc *p = open_as(t, NULL);
    for (size_t i = 0; i < sizeof dialects / sizeof dialects[0]; i++) {
        char topic[64];
        snprintf(topic, sizeof topic, "/topic/%s", dialects[i].name);
        one_dialect(t, p, &dialects[i], topic);
    }
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

/* Two live subscribers of one identity: the second is refused, the first goes on. */
static void test_second_subscriber_refused(void **state)
{
    tb *t = start(*state);
    tc *a = open_as(t, "same"), *b = open_as(t, "same"), *p = open_as(t, NULL);
    subscribe(a, &dialects[0], "/topic/two");
    tframe f;
    TC_SENDF(b, "SUBSCRIBE\ndestination:/topic/two\nid:s1\nactivemq.subscriptionName:n1\n\n");
    assert_true(tc_is(b, "ERROR", &f));
    assert_string_equal(f.body, "durable subscription n1 of client-id same already has a live "
                                "subscriber");
    tf_free(&f);
    assert_true(tc_closed(b, TL_TIMEOUT_MS));
    publish(p, "/topic/two", "x");
    expect_msg(a, "x", "/topic/two", "s1");
    /* Removing it from another connection while it is live is refused too. */
    tc *r = open_as(t, "same");
    TC_SENDF(r, "UNSUBSCRIBE\nid:s1\nactivemq.subscriptionName:n1\n\n");
    assert_true(tc_is(r, "ERROR", &f));
    assert_string_equal(f.body, "durable subscription n1 of client-id same has a live "
                                "subscriber on another connection");
    tf_free(&f);
    tc_close(r);
    tc_close(b);
    tc_close(a);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

/* What the definition keeps: a wildcard topic, a selector, noLocal. */
static void test_selector_nolocal_wildcard(void **state)
{
    tb *t = start(*state);
    tc *c = open_as(t, "f"), *p = open_as(t, NULL);
    receipted(c, "SUBSCRIBE\ndestination:/topic/w.*\nid:s\nactivemq.subscriptionName:n\n"
                 "selector:k = 1\nactivemq.noLocal:true\nreceipt:r\n\n");
    receipted(c, "SEND\ndestination:/topic/w.c\nk:1\nreceipt:r\n\nown"); /* noLocal */
    receipted(p, "SEND\ndestination:/topic/w.a\nk:1\nreceipt:r\n\none");
    receipted(p, "SEND\ndestination:/topic/w.b\nk:2\nreceipt:r\n\ntwo");
    receipted(p, "SEND\ndestination:/topic/x\nk:1\nreceipt:r\n\nthree");
    receipted(p, "SEND\ndestination:/topic/w.d\nk:1\nreceipt:r\n\nfour");
    expect_msg(c, "one", "/topic/w.a", "s");
    expect_msg(c, "four", "/topic/w.d", "s");
    /* Another definition under the same identity is refused while it exists. */
    tframe f;
    tc *d = open_as(t, "f");
    TC_SENDF(d, "SUBSCRIBE\ndestination:/topic/other\nid:s\nactivemq.subscriptionName:n\n\n");
    assert_true(tc_is(d, "ERROR", &f));
    assert_string_equal(f.body, "durable subscription n of client-id f already has a live "
                                "subscriber");
    tf_free(&f);
    tc_close(d);
    receipted(c, "UNSUBSCRIBE\nid:s\nreceipt:r\n\n");
    d = open_as(t, "f");
    TC_SENDF(d, "SUBSCRIBE\ndestination:/topic/other\nid:s\nactivemq.subscriptionName:n\n\n");
    assert_true(tc_is(d, "ERROR", &f));
    assert_string_equal(f.body, "durable subscription n of client-id f is on /topic/w.* with "
                                "another selector or noLocal: UNSUBSCRIBE it for good first");
    tf_free(&f);
    tc_close(d);
    tc_close(c);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

/* A topic SEND inside a transaction is kept at its COMMIT (whose RECEIPT waits for the
 * store), one aborted is not. */
static void test_transaction(void **state)
{
    tb *t = start(*state);
    tc *c = open_as(t, "tx"), *p = open_as(t, NULL);
    subscribe(c, &dialects[0], "/topic/tx");
    receipted(c, "UNSUBSCRIBE\nid:s1\nreceipt:r\n\n");
    TC_SENDF(p, "BEGIN\ntransaction:a\n\n");
    TC_SENDF(p, "SEND\ndestination:/topic/tx\ntransaction:a\n\naborted");
    TC_SENDF(p, "ABORT\ntransaction:a\n\n");
    TC_SENDF(p, "BEGIN\ntransaction:b\n\n");
    TC_SENDF(p, "SEND\ndestination:/topic/tx\ntransaction:b\n\nt1");
    TC_SENDF(p, "SEND\ndestination:/topic/tx\ntransaction:b\n\nt2");
    receipted(p, "COMMIT\ntransaction:b\nreceipt:r\n\n");
    subscribe(c, &dialects[0], "/topic/tx");
    expect_msg(c, "t1", "/topic/tx", "s1");
    expect_msg(c, "t2", "/topic/tx", "s1");
    tc_close(c);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

/* On SQLite: subscriptions, their backlogs and removals survive a restart, and a
 * subscription whose subscriber never came back keeps collecting after it. */
static void test_restart(void **state)
{
    fixture *fx = *state;
    tb *t = start(fx);
    tc *c = open_as(t, "rs"), *p = open_as(t, NULL);
    subscribe(c, &dialects[0], "/topic/r1");
    receipted(c, "UNSUBSCRIBE\nid:s1\nreceipt:r\n\n");
    subscribe(c, &dialects[4], "/topic/r2");
    receipted(c, "UNSUBSCRIBE\nid:s5\nreceipt:r\n\n");
    subscribe(c, &dialects[5], "/topic/r3");
    receipted(c, "UNSUBSCRIBE\nid:s6\npersistent:true\nreceipt:r\n\n"); /* removed */
    tc_close(c);
    publish(p, "/topic/r1", "a1");
    publish(p, "/topic/r2", "b1");
    publish(p, "/topic/r3", "c1");
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);

    t = start(fx);
    p = open_as(t, NULL);
    publish(p, "/topic/r1", "a2");
    publish(p, "/topic/r2", "b2");
    publish(p, "/topic/r3", "c2");
    c = open_as(t, "rs");
    subscribe(c, &dialects[0], "/topic/r1");
    expect_msg(c, "a1", "/topic/r1", "s1");
    expect_msg(c, "a2", "/topic/r1", "s1");
    subscribe(c, &dialects[4], "/topic/r2");
    expect_msg(c, "b1", "/topic/r2", "s5");
    expect_msg(c, "b2", "/topic/r2", "s5");
    subscribe(c, &dialects[5], "/topic/r3"); /* removed before the restart: a new one */
    publish(p, "/topic/r3", "c3");
    expect_msg(c, "c3", "/topic/r3", "s6");
    tc_close(c);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

/* The queue policies apply to a durable subscription by the pattern /durable-sub/>:
 * max_length (reject: what does not fit is not kept for it), dead letters after
 * max_deliveries, and a TTL (an expired message is dead-lettered). */
static void test_policies(void **state)
{
    broker_options o;
    broker_options_init(&o);
    broker_policy_rule rule = { "/durable-sub/>", o.policy };
    rule.policy.max_length = 2;
    rule.policy.overflow = BROKER_OVERFLOW_REJECT;
    rule.policy.max_deliveries = 1;
    rule.policy.dead_letter = "/queue/dur-dlq";
    tb *t = start_with(*state, &rule, 1);
    tc *c = open_as(t, "pol"), *p = open_as(t, NULL);
    receipted(c, "SUBSCRIBE\ndestination:/topic/pl\nid:s\nactivemq.subscriptionName:n\n"
                 "ack:client-individual\nreceipt:r\n\n");
    receipted(c, "UNSUBSCRIBE\nid:s\nreceipt:r\n\n");
    publish(p, "/topic/pl", "p1");
    publish(p, "/topic/pl", "p2");
    publish(p, "/topic/pl", "p3"); /* over max_length: not kept */
    receipted(c, "SUBSCRIBE\ndestination:/topic/pl\nid:s\nactivemq.subscriptionName:n\n"
                 "ack:client-individual\nreceipt:r\n\n");
    tframe f;
    assert_true(tc_is(c, "MESSAGE", &f));
    assert_memory_equal(f.body, "p1", 2);
    char ack[64];
    snprintf(ack, sizeof ack, "%s", tf_header(&f, "ack"));
    tf_free(&f);
    expect_msg(c, "p2", "/topic/pl", "s");
    TC_SENDF(c, "NACK\nid:%s\nreceipt:r\n\n", ack); /* its one delivery spent: dead letter */
    assert_int_equal(tc_expect(c, "RECEIPT", &f), 0);
    tf_free(&f);
    TC_SENDF(c, "SUBSCRIBE\ndestination:/queue/dur-dlq\nid:d\n\n");
    assert_true(tc_is(c, "MESSAGE", &f));
    assert_memory_equal(f.body, "p1", 2);
    assert_string_equal(tf_header(&f, "destination"), "/queue/dur-dlq");
    assert_string_equal(tf_header(&f, "original-destination"), "/topic/pl");
    int ndest = 0;
    for (int i = 0; i < f.nheaders; i++)
        ndest += strcmp(f.names[i], "destination") == 0;
    assert_int_equal(ndest, 1);
    tf_free(&f);
    tc_close(c);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

static void test_ttl(void **state)
{
    broker_options o;
    broker_options_init(&o);
    broker_policy_rule rule = { "/durable-sub/>", o.policy };
    rule.policy.ttl = 1;
    rule.policy.dead_letter = "/queue/ttl-dlq";
    tb *t = start_with(*state, &rule, 1);
    tc *c = open_as(t, "ttl"), *p = open_as(t, NULL);
    subscribe(c, &dialects[0], "/topic/tt");
    receipted(c, "UNSUBSCRIBE\nid:s1\nreceipt:r\n\n");
    publish(p, "/topic/tt", "old");
    /* Its 1 ms passes while the subscriber is away: it is dead-lettered without its return. */
    TC_SENDF(p, "SUBSCRIBE\ndestination:/queue/ttl-dlq\nid:d\n\n");
    tframe f;
    assert_true(tc_is(p, "MESSAGE", &f));
    assert_memory_equal(f.body, "old", 3);
    assert_string_equal(tf_header(&f, "dead-letter-reason"), "expired");
    tf_free(&f);
    /* The subscriber returns: nothing was left for it; the first it gets is one sent now
     * (with an expiry of its own, an hour away). */
    subscribe(c, &dialects[0], "/topic/tt");
    char frame[128];
    snprintf(frame, sizeof frame, "SEND\ndestination:/topic/tt\nexpires:%lld\nreceipt:r\n\nnew",
             ((long long)time(NULL) + 3600) * 1000);
    receipted(p, frame);
    expect_msg(c, "new", "/topic/tt", "s1");
    tc_close(c);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

static int64_t file_int(const fixture *fx, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return v;
}

/* A message for 5 subscriptions away: one body row in the file (5 copies would be 5 rows'
 * worth of body bytes), gone once all 5 have it. */
static void test_body_once(void **state)
{
    fixture *fx = *state;
    tb *t = start(fx);
    char cid[16], body[4001], frame[4200];
    for (int i = 0; i < 5; i++) {
        snprintf(cid, sizeof cid, "b%d", i);
        tc *c = open_as(t, cid);
        subscribe(c, &dialects[0], "/topic/once");
        receipted(c, "UNSUBSCRIBE\nid:s1\nreceipt:r\n\n"); /* away, kept */
        tc_close(c);
    }
    memset(body, 'x', 4000);
    body[4000] = '\0';
    tc *p = open_as(t, NULL);
    snprintf(frame, sizeof frame, "SEND\ndestination:/topic/once\nreceipt:r\n\n%s", body);
    receipted(p, frame);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
    assert_int_equal(file_int(fx, "SELECT count(*) FROM body"), 1);
    assert_int_equal(file_int(fx, "SELECT (SELECT sum(length(data)) FROM body) +"
                                  " (SELECT sum(length(body)) FROM msg)"),
                     4000);
    t = start(fx);
    for (int i = 0; i < 5; i++) {
        snprintf(cid, sizeof cid, "b%d", i);
        tc *c = open_as(t, cid);
        subscribe(c, &dialects[0], "/topic/once");
        expect_msg(c, body, "/topic/once", "s1");
        receipted(c, "UNSUBSCRIBE\nid:s1\nactivemq.subscriptionName:n1\nreceipt:r\n\n");
        tc_close(c);
    }
    assert_int_equal(tb_stop(t), 0);
    assert_int_equal(file_int(fx, "SELECT count(*) FROM body"), 0);
}

#define BOTH(fn)                                                        \
    cmocka_unit_test_setup_teardown(fn, setup_memory, teardown),        \
        cmocka_unit_test_setup_teardown(fn, setup_sqlite, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_dialects),
        BOTH(test_second_subscriber_refused),
        BOTH(test_selector_nolocal_wildcard),
        BOTH(test_policies),
        BOTH(test_ttl),
        BOTH(test_transaction),
        cmocka_unit_test_setup_teardown(test_restart, setup_sqlite, teardown),
        cmocka_unit_test_setup_teardown(test_body_once, setup_sqlite, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
