/* test_lifecycle.c: what happens to a queue message that comes back, over real sockets, on
 * the memory and the SQLite store: after max_deliveries attempts (NACKs, or consumers that
 * went away) it moves to its dead-letter queue with headers that say why, in the same batch
 * as its removal (a restart finds it there and only there); a NACK with requeue:false
 * dead-letters at once; dead_letter "none" drops; a message in a dead-letter queue stays
 * there; a NACKed message comes back only after the redelivery delay, while the queue's
 * other messages flow. An exclusive consumer gets a queue's every message, and the next
 * takes over in order. Priorities order a queue; expired messages are never delivered;
 * delayed ones wait.
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
#include <unistd.h>

#include "store_sqlite.h"
#include "testlib.h"

typedef struct fixture {
    tb_store st; /* memory, or a SQLite file */
    broker_policy policy;
    uint32_t heartbeat_in_ms; /* 0: the default */
    int ticking;              /* the broker's clock moves 1 ms every time it is read */
} fixture;

/* The wall clock plus one more ms at every read: time passes between any two reads. */
static uint64_t ticking_clock(void *ctx)
{
    static uint64_t reads;
    (void)ctx;
    return (uint64_t)time(NULL) * 1000 + ++reads;
}

/* The broker's clock for message times (delays, expiry): ms of the wall clock. Waits are
 * measured on it, not on the monotonic clock: each clock is cut to whole ms at a different
 * point, so across the two a due delay could look one ms short. */
static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state, int sqlite)
{
    fixture *fx = calloc(1, sizeof *fx);
    tb_store_init(&fx->st, sqlite, "lifecycle");
    broker_options o;
    broker_options_init(&o);
    fx->policy = o.policy;
    fx->policy.redelivery_delay = 0; /* tests of the delay set their own */
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
    tb_store_remove(&fx->st);
    free(fx);
    return 0;
}

static tb *start(const fixture *fx)
{
    broker_options o;
    broker_options_init(&o);
    o.policy = fx->policy;
    if (fx->heartbeat_in_ms)
        o.heartbeat_in_ms = fx->heartbeat_in_ms;
    if (fx->ticking)
        o.clock = ticking_clock;
    tb_store_use(&fx->st, &o);
    tb *t = tb_start(&o);
    assert_non_null(t);
    return t;
}

static tc *consumer(tb *t, const char *dest)
{
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:%s\nack:client-individual\nreceipt:r\n\n", dest);
    tframe f;
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    return c;
}

static void send_receipted(tb *t, const char *dest, const char *extra, const char *body)
{
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    TC_SENDF(c, "SEND\ndestination:%s\n%sreceipt:sent\n\n%s", dest, extra, body);
    tframe f;
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    tc_close(c);
}

/* The next MESSAGE on c: its body must be body; its ack id into ack. */
static void next_message(tc *c, tframe *f, const char *body, char *ack, size_t cap)
{
    assert_true(tc_is(c, "MESSAGE", f));
    assert_string_equal(f->body, body);
    snprintf(ack, cap, "%s", tf_header(f, "ack"));
}

/* c receives nothing within ms. */
static void quiet(tc *c, int ms)
{
    tframe f;
    int rc = tc_read(c, &f, ms);
    if (rc == 0) {
        fail_msg("unexpected %s: %s", f.cmd, f.body);
        tf_free(&f);
    }
}

static void expect_dead_letter(tframe *f, const char *from, const char *reason,
                               const char *count, const char *msgid)
{
    assert_string_equal(tf_header(f, "original-destination"), from);
    assert_string_equal(tf_header(f, "dead-letter-reason"), reason);
    assert_string_equal(tf_header(f, "delivery-count"), count);
    assert_string_equal(tf_header(f, "original-message-id"), msgid);
    const char *at = tf_header(f, "dead-letter-time");
    assert_non_null(at);
    long long ms = atoll(at);
    long long now = (long long)time(NULL) * 1000;
    assert_true(ms > now - 600000 && ms < now + 600000); /* ms since the epoch, not seconds */
    assert_null(tf_header(f, "redelivered"));
}

/* The poison loop: NACKed three times with max_deliveries 3, the message is delivered
 * exactly three times, then found in /queue/DLQ.poison with the application's headers and
 * the dead-letter ones; nothing is left in /queue/poison, also after a restart. */
static void test_poison_message_ends_in_dlq(void **state)
{
    fixture *fx = *state;
    fx->policy.max_deliveries = 3;
    tb *t = start(fx);
    send_receipted(t, "/queue/poison", "app:7\n", "bad");
    tc *c = consumer(t, "/queue/poison");
    tframe f;
    char ack[32], msgid[32] = "";
    for (int i = 0; i < 3; i++) {
        next_message(c, &f, "bad", ack, sizeof ack);
        if (i == 0)
            snprintf(msgid, sizeof msgid, "%s", tf_header(&f, "message-id"));
        assert_string_equal(tf_header(&f, "message-id"), msgid);
        if (i > 0)
            assert_string_equal(tf_header(&f, "redelivered"), "true");
        tf_free(&f);
        TC_SENDF(c, "NACK\nid:%s\n\n", ack);
    }
    quiet(c, 300);
    tc_close(c);
    broker_stats st;
    tb_stats(t, &st);
    assert_int_equal(st.dead_lettered, 1);
    assert_int_equal(st.redeliveries, 2);
    if (fx->st.sqlite) {
        assert_int_equal(tb_stop(t), 0);
        t = start(fx);
    }
    c = consumer(t, "/queue/DLQ.poison");
    next_message(c, &f, "bad", ack, sizeof ack);
    expect_dead_letter(&f, "/queue/poison", "max-deliveries", "3", msgid);
    assert_string_equal(tf_header(&f, "app"), "7");
    assert_string_equal(tf_header(&f, "destination"), "/queue/DLQ.poison");
    tf_free(&f);
    TC_SENDF(c, "ACK\nid:%s\n\n", ack);
    tc_close(c);
    c = consumer(t, "/queue/poison");
    quiet(c, 300);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

/* NACK requeue:false dead-letters at once (reason rejected, one delivery); requeue:true is a
 * plain NACK; any other value is an ERROR that names it, and the message stays unsettled. */
static void test_nack_requeue_false_rejects(void **state)
{
    fixture *fx = *state;
    tb *t = start(fx);
    send_receipted(t, "/queue/rj", "", "one");
    tc *c = consumer(t, "/queue/rj");
    tframe f;
    char ack[32], msgid[32];
    next_message(c, &f, "one", ack, sizeof ack);
    snprintf(msgid, sizeof msgid, "%s", tf_header(&f, "message-id"));
    tf_free(&f);
    TC_SENDF(c, "NACK\nid:%s\nrequeue:true\n\n", ack);
    next_message(c, &f, "one", ack, sizeof ack);
    tf_free(&f);
    TC_SENDF(c, "NACK\nid:%s\nrequeue:false\nreceipt:gone\n\n", ack);
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    quiet(c, 200);
    TC_SENDF(c, "SUBSCRIBE\nid:d\ndestination:/queue/DLQ.rj\n\n");
    next_message(c, &f, "one", ack, sizeof ack);
    expect_dead_letter(&f, "/queue/rj", "rejected", "2", msgid);
    tf_free(&f);
    send_receipted(t, "/queue/rj", "", "two");
    next_message(c, &f, "two", ack, sizeof ack);
    tf_free(&f);
    TC_SENDF(c, "NACK\nid:%s\nrequeue:no\n\n", ack);
    assert_true(tc_is(c, "ERROR", &f));
    assert_string_equal(f.body, "NACK header requeue:no is not true or false");
    tf_free(&f);
    tc_close(c);
    c = consumer(t, "/queue/rj"); /* "two" was not settled: it comes back */
    next_message(c, &f, "two", ack, sizeof ack);
    assert_string_equal(tf_header(&f, "redelivered"), "true");
    tf_free(&f);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

/* A consumer that goes away without acking fails a delivery too: with max_deliveries 2 the
 * second such loss moves the message. dead_letter names a shared queue. */
static void test_orphaned_deliveries_count(void **state)
{
    fixture *fx = *state;
    fx->policy.max_deliveries = 2;
    fx->policy.dead_letter = "/queue/all-dead";
    tb *t = start(fx);
    send_receipted(t, "/queue/orph", "", "m");
    tframe f;
    char ack[32];
    for (int i = 0; i < 2; i++) {
        tc *c = consumer(t, "/queue/orph");
        next_message(c, &f, "m", ack, sizeof ack);
        tf_free(&f);
        tc_close(c);
    }
    tc *c = consumer(t, "/queue/all-dead");
    next_message(c, &f, "m", ack, sizeof ack);
    assert_string_equal(tf_header(&f, "dead-letter-reason"), "max-deliveries");
    assert_string_equal(tf_header(&f, "delivery-count"), "2");
    tf_free(&f);
    /* The shared dead-letter queue is one: its own messages are never dead-lettered. */
    for (int i = 0; i < 3; i++) {
        TC_SENDF(c, "NACK\nid:%s\n\n", ack);
        next_message(c, &f, "m", ack, sizeof ack);
        assert_string_equal(tf_header(&f, "original-destination"), "/queue/orph");
        tf_free(&f);
    }
    tc_close(c);
    c = consumer(t, "/queue/orph");
    quiet(c, 200);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

/* dead_letter "none": dead letters are dropped, and counted. */
static void test_dead_letters_dropped(void **state)
{
    fixture *fx = *state;
    fx->policy.max_deliveries = 1;
    fx->policy.dead_letter = "none";
    tb *t = start(fx);
    send_receipted(t, "/queue/drop", "", "x");
    tc *c = consumer(t, "/queue/drop");
    tframe f;
    char ack[32];
    next_message(c, &f, "x", ack, sizeof ack);
    tf_free(&f);
    TC_SENDF(c, "NACK\nid:%s\nreceipt:n\n\n", ack);
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    quiet(c, 200);
    tc_close(c);
    broker_stats st;
    tb_stats(t, &st);
    assert_int_equal(st.dead_dropped, 1);
    assert_int_equal(st.dead_lettered, 0);
    c = consumer(t, "/queue/DLQ.drop");
    quiet(c, 200);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

/* A NACKed message waits its delay (here 400 ms, then 800 ms) while the queue's next
 * message is delivered; it is not back before the delay has passed. Only lower bounds are
 * asserted: a slow machine makes it later, never earlier. */
static void test_redelivery_waits_for_its_delay(void **state)
{
    fixture *fx = *state;
    fx->policy.redelivery_delay = 400;
    fx->policy.redelivery_backoff = 2;
    tb *t = start(fx);
    send_receipted(t, "/queue/slow", "", "a");
    send_receipted(t, "/queue/slow", "", "b");
    tc *c = consumer(t, "/queue/slow");
    tframe f;
    char ack[32], ack_b[32];
    next_message(c, &f, "a", ack, sizeof ack);
    tf_free(&f);
    long long nacked = wall_ms();
    TC_SENDF(c, "NACK\nid:%s\n\n", ack);
    next_message(c, &f, "b", ack_b, sizeof ack_b); /* b does not wait for a */
    tf_free(&f);
    next_message(c, &f, "a", ack, sizeof ack);
    assert_true(wall_ms() - nacked >= 400);
    assert_string_equal(tf_header(&f, "redelivered"), "true");
    tf_free(&f);
    nacked = wall_ms();
    TC_SENDF(c, "NACK\nid:%s\n\n", ack);
    next_message(c, &f, "a", ack, sizeof ack);
    assert_true(wall_ms() - nacked >= 800); /* doubled */
    tf_free(&f);
    TC_SENDF(c, "ACK\nid:%s\n\nACK\nid:%s\n\n", ack, ack_b);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

/* A delayed message survives a restart and still waits (SQLite; the memory store keeps
 * nothing across one). */
static void test_delay_survives_restart(void **state)
{
    fixture *fx = *state;
    if (!fx->st.sqlite)
        skip();
    fx->policy.redelivery_delay = 1500;
    tb *t = start(fx);
    send_receipted(t, "/queue/later", "", "z");
    tc *c = consumer(t, "/queue/later");
    tframe f;
    char ack[32];
    next_message(c, &f, "z", ack, sizeof ack);
    tf_free(&f);
    long long nacked = wall_ms();
    TC_SENDF(c, "NACK\nid:%s\nreceipt:n\n\n", ack);
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
    t = start(fx);
    c = consumer(t, "/queue/later");
    next_message(c, &f, "z", ack, sizeof ack);
    assert_true(wall_ms() - nacked >= 1500);
    tf_free(&f);
    TC_SENDF(c, "ACK\nid:%s\n\n", ack);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

static tc *subscriber(tb *t, const char *dest, const char *extra)
{
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:%s\nack:client-individual\n"
                "prefetch-count:100\n%sreceipt:r\n\n", dest, extra);
    tframe f;
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    return c;
}

/* The oldest exclusive consumer gets every message, the others nothing; when it goes, its
 * unacked messages go at once, in order, to the next exclusive one (redelivery_delay does
 * not apply), and with no exclusive consumer left the queue is shared again. */
static void test_exclusive_consumer_takes_over_in_order(void **state)
{
    fixture *fx = *state;
    fx->policy.redelivery_delay = 60000; /* a failover must not wait for it */
    tb *t = start(fx);
    tc *a = subscriber(t, "/queue/ex", "exclusive:true\n");
    tc *plain = subscriber(t, "/queue/ex", "");
    tc *next = subscriber(t, "/queue/ex", "activemq.exclusive:true\n");
    char body[16], ack[32];
    tframe f;
    for (int i = 0; i < 10; i++) {
        snprintf(body, sizeof body, "m%d", i);
        send_receipted(t, "/queue/ex", "", body);
    }
    for (int i = 0; i < 10; i++) {
        snprintf(body, sizeof body, "m%d", i);
        next_message(a, &f, body, ack, sizeof ack);
        tf_free(&f);
        if (i < 5)
            TC_SENDF(a, "ACK\nid:%s\n\n", ack);
    }
    quiet(plain, 200);
    quiet(next, 1);
    tc_close(a); /* m5..m9 unacked */
    for (int i = 5; i < 10; i++) {
        snprintf(body, sizeof body, "m%d", i);
        next_message(next, &f, body, ack, sizeof ack);
        assert_string_equal(tf_header(&f, "redelivered"), "true");
        tf_free(&f);
        TC_SENDF(next, "ACK\nid:%s\n\n", ack);
    }
    send_receipted(t, "/queue/ex", "", "m10");
    next_message(next, &f, "m10", ack, sizeof ack);
    tf_free(&f);
    TC_SENDF(next, "ACK\nid:%s\nreceipt:done\n\n", ack);
    assert_true(tc_is(next, "RECEIPT", &f));
    tf_free(&f);
    quiet(plain, 200);
    tc_close(next);
    send_receipted(t, "/queue/ex", "", "m11");
    next_message(plain, &f, "m11", ack, sizeof ack);
    tf_free(&f);
    tc_close(plain);
    assert_int_equal(tb_stop(t), 0);
}

/* Priorities 0-9: higher first, FIFO within one, also after a restart (SQLite). */
static void test_priority_order(void **state)
{
    fixture *fx = *state;
    tb *t = start(fx);
    static const char *const sent[][2] = {
        { "p1", "priority:1\n" }, { "p9a", "priority:9\n" }, { "p4", "" },
        { "p9b", "priority:9\n" }, { "p0", "priority:0\n" }, { "p4b", "priority:4\n" },
    };
    for (size_t i = 0; i < 6; i++)
        send_receipted(t, "/queue/prio", sent[i][1], sent[i][0]);
    if (fx->st.sqlite) {
        assert_int_equal(tb_stop(t), 0);
        t = start(fx);
    }
    static const char *const want[] = { "p9a", "p9b", "p4", "p4b", "p1", "p0" };
    tc *c = consumer(t, "/queue/prio");
    tframe f;
    char ack[32];
    for (size_t i = 0; i < 6; i++) {
        next_message(c, &f, want[i], ack, sizeof ack);
        tf_free(&f);
        TC_SENDF(c, "ACK\nid:%s\n\n", ack);
    }
    quiet(c, 200);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

/* The dead letter of an expired message, read from /queue/DLQ.<name>. */
static void expect_expired(tb *t, const char *queue, const char *body)
{
    char dlq[64];
    snprintf(dlq, sizeof dlq, "/queue/DLQ.%s", queue + 7);
    tc *d = consumer(t, dlq);
    tframe f;
    char ack[32];
    next_message(d, &f, body, ack, sizeof ack);
    assert_string_equal(tf_header(&f, "dead-letter-reason"), "expired");
    assert_string_equal(tf_header(&f, "original-destination"), queue);
    assert_string_equal(tf_header(&f, "delivery-count"), "0");
    tf_free(&f);
    TC_SENDF(d, "ACK\nid:%s\n\n", ack);
    tc_close(d);
}

/* An expired message is never delivered: expires in the past, expiration (relative), the
 * queue's ttl and the cap max_ttl all end in the dead-letter queue (reason expired); a
 * message that has not expired is delivered; expired = drop only counts them. */
static void test_expired_never_delivered(void **state)
{
    fixture *fx = *state;
    fx->policy.max_ttl = 0;
    tb *t = start(fx);
    send_receipted(t, "/queue/exp", "expires:1000\n", "long ago");
    send_receipted(t, "/queue/exp", "expiration:1\n", "soon");
    char far[64];
    snprintf(far, sizeof far, "expires:%lld\n", ((long long)time(NULL) + 3600) * 1000);
    send_receipted(t, "/queue/exp", far, "later");
    usleep(20000);
    tc *c = consumer(t, "/queue/exp");
    tframe f;
    char ack[32];
    next_message(c, &f, "later", ack, sizeof ack);
    assert_non_null(tf_header(&f, "expires"));
    tf_free(&f);
    TC_SENDF(c, "ACK\nid:%s\n\n", ack);
    quiet(c, 200);
    tc_close(c);
    tc *d = consumer(t, "/queue/DLQ.exp");
    next_message(d, &f, "long ago", ack, sizeof ack);
    assert_string_equal(tf_header(&f, "dead-letter-reason"), "expired");
    tf_free(&f);
    next_message(d, &f, "soon", ack, sizeof ack);
    assert_string_equal(tf_header(&f, "delivery-count"), "0");
    tf_free(&f);
    tc_close(d);
    broker_stats st;
    tb_stats(t, &st);
    assert_int_equal(st.expired, 2);
    assert_int_equal(tb_stop(t), 0);
}

/* A queue's ttl gives plain messages an expiry; max_ttl caps a longer one. Both are seen
 * only after they passed (lower bounds). */
static void test_ttl_and_max_ttl(void **state)
{
    fixture *fx = *state;
    fx->policy.ttl = 150;
    tb *t = start(fx);
    long long sent = wall_ms();
    send_receipted(t, "/queue/ttl", "", "plain");
    expect_expired(t, "/queue/ttl", "plain");
    assert_true(wall_ms() - sent >= 150);
    assert_int_equal(tb_stop(t), 0);
    fx->policy.ttl = 0;
    fx->policy.max_ttl = 150;
    t = start(fx);
    char far[64];
    snprintf(far, sizeof far, "expires:%lld\n", ((long long)time(NULL) + 3600) * 1000);
    sent = wall_ms();
    send_receipted(t, "/queue/cap", far, "capped");
    expect_expired(t, "/queue/cap", "capped");
    assert_true(wall_ms() - sent >= 150);
    assert_int_equal(tb_stop(t), 0);
}

/* expired = drop: expired messages are counted, not dead-lettered. */
static void test_expired_dropped(void **state)
{
    fixture *fx = *state;
    fx->policy.expired = BROKER_EXPIRED_DROP;
    tb *t = start(fx);
    send_receipted(t, "/queue/xd", "expires:1000\n", "gone");
    send_receipted(t, "/queue/xd", "", "kept");
    tc *c = consumer(t, "/queue/xd");
    tframe f;
    char ack[32];
    next_message(c, &f, "kept", ack, sizeof ack);
    tf_free(&f);
    tc_close(c);
    c = consumer(t, "/queue/DLQ.xd");
    quiet(c, 300);
    tc_close(c);
    broker_stats st;
    tb_stats(t, &st);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.dead_lettered, 0);
    assert_int_equal(tb_stop(t), 0);
}

/* AMQ_SCHEDULED_DELAY, x-delay and delay hold a message back; the queue's other messages
 * go first; with SQLite the delay outlasts a restart. */
static void test_delayed_delivery(void **state)
{
    fixture *fx = *state;
    tb *t = start(fx);
    long long sent = wall_ms();
    send_receipted(t, "/queue/dl", "AMQ_SCHEDULED_DELAY:600\n", "amq");
    send_receipted(t, "/queue/dl", "x-delay:300\n", "x");
    send_receipted(t, "/queue/dl", "", "now");
    if (fx->st.sqlite) {
        assert_int_equal(tb_stop(t), 0);
        t = start(fx);
    }
    tc *c = consumer(t, "/queue/dl");
    tframe f;
    char ack[32];
    next_message(c, &f, "now", ack, sizeof ack);
    tf_free(&f);
    next_message(c, &f, "x", ack, sizeof ack);
    assert_true(wall_ms() - sent >= 300);
    tf_free(&f);
    next_message(c, &f, "amq", ack, sizeof ack);
    assert_true(wall_ms() - sent >= 600);
    assert_null(tf_header(&f, "redelivered"));
    tf_free(&f);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

/* A SEND on a fresh connection that must be refused: the ERROR's text. */
static void send_refused(tb *t, const char *dest, const char *body, const char *want)
{
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    TC_SENDF(c, "SEND\ndestination:%s\nreceipt:r\n\n%s", dest, body);
    tframe f;
    assert_true(tc_is(c, "ERROR", &f));
    assert_string_equal(f.body, want);
    tf_free(&f);
    tc_close(c);
}

/* overflow = reject: a SEND past max_length or max_bytes is an ERROR; an ACK makes room;
 * the count outlasts a restart (SQLite). */
static void test_queue_limit_reject(void **state)
{
    fixture *fx = *state;
    fx->policy.max_length = 2;
    fx->policy.overflow = BROKER_OVERFLOW_REJECT;
    tb *t = start(fx);
    send_receipted(t, "/queue/lim", "", "a");
    send_receipted(t, "/queue/lim", "", "b");
    if (fx->st.sqlite) {
        assert_int_equal(tb_stop(t), 0);
        t = start(fx);
    }
    send_refused(t, "/queue/lim", "c", "queue /queue/lim is full (max_length 2)");
    tc *c = consumer(t, "/queue/lim");
    tframe f;
    char ack[32];
    next_message(c, &f, "a", ack, sizeof ack);
    tf_free(&f);
    send_refused(t, "/queue/lim", "c", "queue /queue/lim is full (max_length 2)");
    TC_SENDF(c, "ACK\nid:%s\nreceipt:k\n\n", ack);
    assert_int_equal(tc_expect(c, "RECEIPT", &f), 0); /* "b" may come first */
    tf_free(&f);
    send_receipted(t, "/queue/lim", "", "c");
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
    fx->policy.max_length = 0;
    fx->policy.max_bytes = 40;
    t = start(fx);
    send_refused(t, "/queue/big", "0123456789012345678901234567890123456789x",
                 "queue /queue/big is full (max_bytes 40): the message alone is larger");
    assert_int_equal(tb_stop(t), 0);
}

/* overflow = drop-head: the head goes to the dead-letter queue (reason overflow). */
static void test_queue_limit_drop_head(void **state)
{
    fixture *fx = *state;
    fx->policy.max_length = 2;
    fx->policy.overflow = BROKER_OVERFLOW_DROP_HEAD;
    tb *t = start(fx);
    send_receipted(t, "/queue/dh", "", "a");
    send_receipted(t, "/queue/dh", "", "b");
    send_receipted(t, "/queue/dh", "", "c");
    tc *c = consumer(t, "/queue/dh");
    tframe f;
    char ack[32];
    next_message(c, &f, "b", ack, sizeof ack);
    tf_free(&f);
    next_message(c, &f, "c", ack, sizeof ack);
    tf_free(&f);
    /* Both delivered and unacked: nothing can be dropped for a third. */
    send_refused(t, "/queue/dh", "d",
                 "queue /queue/dh is full (max_length 2): no message of it can be dropped "
                 "(every one is delivered and not acknowledged)");
    tc_close(c);
    c = consumer(t, "/queue/DLQ.dh");
    next_message(c, &f, "a", ack, sizeof ack);
    assert_string_equal(tf_header(&f, "dead-letter-reason"), "overflow");
    tf_free(&f);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

/* overflow = block: the producer's SEND is held (no RECEIPT) while another queue's flows;
 * its heart-beats sent meanwhile are not held against it; an ACK lets the SEND in. Inside a
 * transaction a full queue fails the COMMIT. */
static void test_queue_limit_block(void **state)
{
    fixture *fx = *state;
    fx->policy.max_length = 1;
    fx->heartbeat_in_ms = 300;
    tb *t = start(fx);
    send_receipted(t, "/queue/bl", "", "one");
    tc *p = tc_open(tb_port(t), "accept-version:1.2\nheart-beat:300,0\n");
    assert_non_null(p);
    TC_SENDF(p, "SEND\ndestination:/queue/bl\nreceipt:two\n\ntwo");
    send_receipted(t, "/queue/other", "", "flows");
    tframe f;
    for (int i = 0; i < 6; i++) { /* 1.2 s held: four times the heart-beat grace */
        assert_int_equal(tc_send_raw(p, "\n", 1), 0);
        assert_int_equal(tc_read(p, &f, 200), -1);
    }
    tc *c = consumer(t, "/queue/bl");
    char ack[32];
    next_message(c, &f, "one", ack, sizeof ack);
    tf_free(&f);
    TC_SENDF(c, "ACK\nid:%s\n\n", ack);
    assert_true(tc_is(p, "RECEIPT", &f));
    assert_string_equal(tf_header(&f, "receipt-id"), "two");
    tf_free(&f);
    next_message(c, &f, "two", ack, sizeof ack);
    tf_free(&f);
    TC_SENDF(p, "BEGIN\ntransaction:t\n\n");
    TC_SENDF(p, "SEND\ndestination:/queue/bl\ntransaction:t\n\nx");
    TC_SENDF(p, "SEND\ndestination:/queue/other\ntransaction:t\n\ny");
    TC_SENDF(p, "COMMIT\ntransaction:t\n\n");
    assert_true(tc_is(p, "ERROR", &f));
    assert_string_equal(f.body, "transaction t failed and nothing of it was applied: queue "
                                "/queue/bl is full: a transaction does not wait for room");
    tf_free(&f);
    tc_close(p);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

/* browser:true shows the ready messages in delivery order, then browser:end, and takes
 * nothing: a consumer gets them all afterwards. A delivered, unacked message is not shown. */
static void test_queue_browser(void **state)
{
    fixture *fx = *state;
    tb *t = start(fx);
    send_receipted(t, "/queue/br", "", "a");
    send_receipted(t, "/queue/br", "priority:9\nx-k:v\n", "b");
    send_receipted(t, "/queue/br", "", "c");
    send_receipted(t, "/queue/br", "", "d");
    tc *held = subscriber(t, "/queue/br", "");
    tframe f;
    char ack[32];
    next_message(held, &f, "b", ack, sizeof ack); /* prefetch 100: it holds all four */
    tf_free(&f);
    tc_close(held); /* back in the queue, at its head */
    if (fx->st.sqlite) {
        assert_int_equal(tb_stop(t), 0);
        t = start(fx);
    }
    tc *br = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(br);
    TC_SENDF(br, "SUBSCRIBE\nid:b\ndestination:/queue/br\nbrowser:true\nack:client\n\n");
    static const char *const want[] = { "b", "a", "c", "d" };
    for (int i = 0; i < 4; i++) {
        next_message(br, &f, want[i], ack, sizeof ack);
        assert_null(tf_header(&f, "ack")); /* nothing to acknowledge */
        assert_null(tf_header(&f, "browser"));
        if (i == 0)
            assert_string_equal(tf_header(&f, "x-k"), "v");
        tf_free(&f);
    }
    assert_true(tc_is(br, "MESSAGE", &f));
    assert_string_equal(tf_header(&f, "browser"), "end");
    assert_string_equal(tf_header(&f, "subscription"), "b");
    assert_int_equal(f.body_len, 0);
    tf_free(&f);
    quiet(br, 200);
    TC_SENDF(br, "SUBSCRIBE\nid:t\ndestination:/topic/br\nbrowser:true\n\n");
    assert_true(tc_is(br, "ERROR", &f));
    assert_string_equal(f.body, "queue browsers are for queues, not the topic /topic/br");
    tf_free(&f);
    tc_close(br);
    tc *c = consumer(t, "/queue/br");
    for (int i = 0; i < 4; i++) {
        next_message(c, &f, want[i], ack, sizeof ack);
        tf_free(&f);
    }
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

/* Unacked messages returned together come back in their order after the delay, even when
 * the clock moves while they are returned (they were requeued newest first, each with its
 * own time, and came back reversed). */
static void test_returned_together_keep_order(void **state)
{
    fixture *fx = *state;
    fx->policy.redelivery_delay = 50;
    fx->ticking = 1;
    tb *t = start(fx);
    static const char *const bodies[] = { "m0", "m1", "m2", "m3" };
    for (int i = 0; i < 4; i++)
        send_receipted(t, "/queue/order", "", bodies[i]);
    tc *c = subscriber(t, "/queue/order", "");
    tframe f;
    char ack[32];
    for (int i = 0; i < 4; i++) {
        next_message(c, &f, bodies[i], ack, sizeof ack);
        tf_free(&f);
    }
    tc_close(c);
    c = subscriber(t, "/queue/order", "");
    for (int i = 0; i < 4; i++) {
        next_message(c, &f, bodies[i], ack, sizeof ack);
        tf_free(&f);
    }
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

#define BOTH(fn)                                                                               \
    cmocka_unit_test_setup_teardown(fn, setup_memory, teardown),                               \
        cmocka_unit_test_setup_teardown(fn, setup_sqlite, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_poison_message_ends_in_dlq),
        BOTH(test_nack_requeue_false_rejects),
        BOTH(test_orphaned_deliveries_count),
        BOTH(test_dead_letters_dropped),
        BOTH(test_redelivery_waits_for_its_delay),
        BOTH(test_delay_survives_restart),
        BOTH(test_exclusive_consumer_takes_over_in_order),
        BOTH(test_priority_order),
        BOTH(test_expired_never_delivered),
        BOTH(test_ttl_and_max_ttl),
        BOTH(test_expired_dropped),
        BOTH(test_delayed_delivery),
        BOTH(test_queue_limit_reject),
        BOTH(test_queue_limit_drop_head),
        BOTH(test_queue_limit_block),
        BOTH(test_queue_browser),
        BOTH(test_returned_together_keep_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
