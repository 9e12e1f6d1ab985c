/* test_pgnodes.c: two or three stompd processes on one PostgreSQL database act as one
 * broker (a private server, tests/lib/pgtest.h, started once for the program).
 *
 * Shared: a producer on node A sends N receipted messages to a queue with consumers on both
 * nodes; every message is delivered exactly once, and both nodes delivered some.
 * Killed: node A is killed with SIGKILL while its consumer holds messages it has not acked;
 * after A's lease (short here: pg_lease) they come back on node B with redelivered:true,
 * and every receipted message reaches B's consumer, none twice there.
 * Three: producers on node A, consumers on B and C: each message exactly once; then C is
 * killed with SIGKILL mid-stream: every receipted message is delivered, and a message comes
 * twice only if C had it.
 * Topics: subscribers on three nodes (plain, wildcard, selector, noLocal) get every message
 * published on any node exactly once, in each producer's order, bodies over NOTIFY's
 * 8000 bytes included; what another client of the database notifies that no node could
 * have published is dropped.
 * Restart: the database is stopped (fast shutdown) while a producer sends with receipts; no
 * RECEIPT comes while it is down, and once it is back every receipted message is delivered
 * (duplicates are counted, not asserted: see test_db_restart).
 * Nodes are real processes on free ports (--port 0, read from their output), signalled only
 * by the pids this program got from fork. Bounds on time are generous: they only stop a
 * hung run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pgnode.h"
#include "pgtest.h"
#include "testlib.h"

/* Short, so that a killed node's messages come back soon; long where the database stops:
 * an outage longer than a lease lets another node take what a live node holds. */
#define LEASE "pg_lease=1500"
#define LEASE_LONG "pg_lease=60000"

static pgtest pg;
static int ndb;

typedef struct ctx {
    char db[32];
    char conninfo[256];
    pgnode a, b, c;
} ctx;

static int setup_n(void **state, int three, const char *lease)
{
    ctx *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    snprintf(c->db, sizeof c->db, "nodes%d", ++ndb);
    if (pgtest_createdb(&pg, c->db, c->conninfo, sizeof c->conninfo) != 0)
        return -1;
    if (pgnode_start(&c->a, c->conninfo, lease) != 0 ||
        pgnode_start(&c->b, c->conninfo, lease) != 0 ||
        (three && pgnode_start(&c->c, c->conninfo, lease) != 0))
        return -1;
    *state = c;
    return 0;
}

static int setup(void **state)
{
    return setup_n(state, 0, LEASE);
}

static int setup_long(void **state)
{
    return setup_n(state, 0, LEASE_LONG);
}

static int setup3(void **state)
{
    return setup_n(state, 1, LEASE);
}

static int teardown(void **state)
{
    ctx *c = *state;
    pgnode_stop(&c->a, SIGTERM);
    pgnode_stop(&c->b, SIGTERM);
    pgnode_stop(&c->c, SIGTERM);
    free(c);
    return 0;
}

static tc *consumer(int port)
{
    tc *c = tc_open(port, "accept-version:1.2\n");
    assert_non_null(c);
    TC_SENDF(c, "SUBSCRIBE\nid:1\ndestination:/queue/work\nack:client-individual\n\n");
    return c;
}

/* Send the messages numbered from..n-1 with receipts, 100 in flight at most; every
 * receipt comes back. */
static void produce_range(tc *p, int from, int n)
{
    tframe f;
    for (int w = from; w < n; w += 100) {
        for (int i = w; i < w + 100 && i < n; i++)
            TC_SENDF(p, "SEND\ndestination:/queue/work\nreceipt:%d\n\n%d", i, i);
        for (int i = w; i < w + 100 && i < n; i++) {
            assert_int_equal(tc_expect(p, "RECEIPT", &f), 0);
            tf_free(&f);
        }
    }
}

static void produce(tc *p, int n)
{
    produce_range(p, 0, n);
}

/* One MESSAGE from c within ms, acked when ack is set: its number, or -1 when none came. */
static int take_one(tc *c, int ms, int ack, int *redelivered)
{
    tframe f;
    if (tc_read(c, &f, ms) != 0)
        return -1;
    assert_string_equal(f.cmd, "MESSAGE");
    int k = atoi(f.body);
    const char *r = tf_header(&f, "redelivered");
    if (redelivered)
        *redelivered = r && strcmp(r, "true") == 0;
    if (ack)
        TC_SENDF(c, "ACK\nid:%s\n\n", tf_header(&f, "ack"));
    tf_free(&f);
    return k;
}

/* Consumers on both nodes, a producer on A: each message exactly once, both nodes busy. */
static void test_shared_queue(void **state)
{
    ctx *c = *state;
    enum { N = 3000 };
    /* Node B's consumer first: the messages are node A's (its producer's), so B gets some
     * only through the database (its claim, A giving half up). A's consumer comes once B
     * has one, so that no timing decides whether B gets any. */
    tc *cb = consumer(c->b.port);
    tc *p = tc_open(c->a.port, "accept-version:1.2\n");
    assert_non_null(p);
    produce(p, N);
    static unsigned char seen[N];
    memset(seen, 0, sizeof seen);
    int got = 0, dups = 0, on[2] = { 0, 0 };
    int k = take_one(cb, 20000, 1, NULL);
    assert_true(k >= 0 && k < N);
    seen[k] = 1;
    got = on[1] = 1;
    tc *ca = consumer(c->a.port);
    long long end = tl_now_ms() + 25000;
    while (got < N && tl_now_ms() < end) {
        for (int side = 0; side < 2; side++) {
            while ((k = take_one(side ? cb : ca, 20, 1, NULL)) >= 0) {
                assert_true(k < N);
                if (seen[k]++)
                    dups++;
                else
                    got++;
                on[side]++;
            }
        }
    }
    /* Nothing more arrives on either node. */
    assert_int_equal(take_one(ca, 300, 1, NULL), -1);
    assert_int_equal(take_one(cb, 300, 1, NULL), -1);
    printf("shared: %d messages, %d on node A, %d on node B\n", got, on[0], on[1]);
    assert_int_equal(got, N);
    assert_int_equal(dups, 0);
    assert_int_equal(on[0] + on[1], N);
    tc_close(ca);
    tc_close(cb);
    tc_close(p);
}

/* A node killed with unacked deliveries: they come back on the other node, redelivered. */
static void test_node_killed(void **state)
{
    ctx *c = *state;
    enum { N = 500 };
    tc *p = tc_open(c->a.port, "accept-version:1.2\n");
    assert_non_null(p);
    produce(p, N);
    tc_close(p);
    tc *ca = consumer(c->a.port);
    static unsigned char held[N], seen[N];
    memset(held, 0, sizeof held);
    memset(seen, 0, sizeof seen);
    int nheld = 0, k;
    while ((k = take_one(ca, 1000, 0, NULL)) >= 0) {
        assert_true(k < N && !held[k]);
        held[k] = 1;
        nheld++;
    }
    assert_true(nheld > 0); /* the prefetch window: delivered, never acked */
    pgnode_stop(&c->a, SIGKILL);
    tc_close(ca);
    tc *cb = consumer(c->b.port);
    int got = 0, dups = 0, back = 0, flagged = 0;
    long long end = tl_now_ms() + 20000;
    while (got < N && tl_now_ms() < end) {
        int red = 0;
        if ((k = take_one(cb, 100, 1, &red)) < 0)
            continue;
        assert_true(k < N);
        if (seen[k]++) {
            dups++;
            continue;
        }
        got++;
        if (held[k]) {
            back++;
            flagged += red;
        }
    }
    assert_int_equal(take_one(cb, 300, 1, NULL), -1);
    printf("killed: %d held unacked on node A, %d back on node B (%d redelivered), %d in all\n",
           nheld, back, flagged, got);
    assert_int_equal(got, N);
    assert_int_equal(dups, 0);
    assert_int_equal(back, nheld);
    assert_int_equal(flagged, nheld);
    tc_close(cb);
}

/* Three nodes: producers on A, consumers on B and C; C is killed with SIGKILL mid-stream
 * holding unacked messages. Every receipted message is delivered; one is delivered twice
 * only if C had it (held, or acked without the ACK committed), and every one C held comes
 * back to B flagged redelivered. */
static void test_three_nodes_kill(void **state)
{
    ctx *c = *state;
    enum { N = 2000, HALF = 1000, ON_C = 30 };
    static unsigned char on_b[N], on_c[N], held[N];
    memset(on_b, 0, sizeof on_b);
    memset(on_c, 0, sizeof on_c);
    memset(held, 0, sizeof held);
    tc *cb = consumer(c->b.port), *cc = consumer(c->c.port);
    tc *p1 = tc_open(c->a.port, "accept-version:1.2\n");
    tc *p2 = tc_open(c->a.port, "accept-version:1.2\n");
    assert_non_null(p1);
    assert_non_null(p2);
    produce_range(p1, 0, HALF / 2);
    produce_range(p2, HALF / 2, HALF);
    /* C takes ON_C and acks them, then holds what else comes without acking. */
    int k, got_c = 0, got_b = 0, nheld = 0;
    long long end = tl_now_ms() + 30000;
    while (got_c < ON_C && tl_now_ms() < end) {
        if ((k = take_one(cc, 50, 1, NULL)) >= 0) {
            assert_true(k < N && !on_c[k]);
            on_c[k] = 1;
            got_c++;
        }
        if ((k = take_one(cb, 10, 1, NULL)) >= 0) {
            assert_true(k < N && !on_b[k]);
            on_b[k] = 1;
            got_b++;
        }
    }
    assert_int_equal(got_c, ON_C);
    while ((k = take_one(cc, 300, 0, NULL)) >= 0) {
        assert_true(k < N && !on_c[k]);
        on_c[k] = held[k] = 1;
        nheld++;
    }
    pgnode_stop(&c->c, SIGKILL);
    tc_close(cc);
    produce_range(p1, HALF, HALF + HALF / 2);
    produce_range(p2, HALF + HALF / 2, N);
    int dups = 0, dups_not_c = 0, back = 0, flagged = 0, seen = 0;
    for (int i = 0; i < N; i++)
        seen += on_b[i] || (on_c[i] && !held[i]);
    end = tl_now_ms() + 40000;
    while (seen < N && tl_now_ms() < end) {
        int red = 0;
        if ((k = take_one(cb, 100, 1, &red)) < 0)
            continue;
        assert_true(k < N);
        if (on_b[k]++) {
            dups_not_c++; /* B twice */
            continue;
        }
        if (held[k]) {
            back++;
            flagged += red;
            seen++;
        } else if (on_c[k]) {
            dups++; /* acked on C, the ACK lost with C */
        } else {
            seen++;
        }
    }
    assert_int_equal(take_one(cb, 300, 1, NULL), -1);
    printf("three nodes: %d messages, %d acked on C, %d held on C when killed (%d back on B,"
           " %d redelivered), %d delivered again after an ACK on C\n",
           seen, ON_C, nheld, back, flagged, dups);
    assert_int_equal(seen, N); /* nothing receipted lost */
    assert_int_equal(dups_not_c, 0);
    assert_true(dups <= ON_C);
    assert_int_equal(back, nheld);
    assert_int_equal(flagged, nheld);
    tc_close(cb);
    tc_close(p1);
    tc_close(p2);
}

/* A topic subscription, confirmed by its RECEIPT (so that it exists before a publish). */
static tc *topic_sub(int port, const char *dest, const char *extra)
{
    tc *c = tc_open(port, "accept-version:1.2\n");
    assert_non_null(c);
    tframe f;
    TC_SENDF(c, "SUBSCRIBE\nid:1\ndestination:%s\n%sreceipt:s\n\n", dest, extra);
    assert_int_equal(tc_expect(c, "RECEIPT", &f), 0);
    tf_free(&f);
    return c;
}

enum { TN = 300, TBIG_EVERY = 50, TBIG = 12000, TWIN = 50 };

/* Message i of producer pr: every TBIG_EVERY-th a body of TBIG bytes, else a short one. */
static void topic_send(tc *p, int pr, int i, char *big)
{
    const char *parity = i % 2 ? "odd" : "even";
    if (i % TBIG_EVERY == 0) {
        memset(big, 'a' + (i + pr) % 26, TBIG);
        big[TBIG] = '\0';
        TC_SENDF(p, "SEND\ndestination:/topic/fan.x\nparity:%s\nreceipt:%d\n\n%d:%d:%s", parity,
                 i, pr, i, big);
    } else {
        TC_SENDF(p, "SEND\ndestination:/topic/fan.x\nparity:%s\nreceipt:%d\n\n%d:%d:", parity,
                 i, pr, i);
    }
}

/* Read subscriber c until it has want messages (bounded): each producer's in order, each
 * big body intact; nothing more comes. from_b: how many of producer 9 (node B's) came. */
static void topic_check(tc *c, int want, const char *who, int *from_b)
{
    int last[10], got = 0;
    for (int i = 0; i < 10; i++)
        last[i] = -1;
    *from_b = 0;
    long long end = tl_now_ms() + 40000;
    tframe f;
    while (got < want && tl_now_ms() < end) {
        if (tc_read(c, &f, 200) != 0)
            continue;
        assert_string_equal(f.cmd, "MESSAGE");
        int pr = -1, i = -1, n = 0;
        assert_int_equal(sscanf(f.body, "%d:%d:%n", &pr, &i, &n), 2);
        assert_true(pr >= 0 && pr < 10);
        if (i <= last[pr])
            fail_msg("%s: producer %d's message %d after %d", who, pr, i, last[pr]);
        last[pr] = i;
        size_t blen = f.body_len - (size_t)n;
        if (pr != 9 && i % TBIG_EVERY == 0) {
            assert_int_equal(blen, TBIG);
            for (size_t j = 0; j < blen; j++)
                assert_int_equal(f.body[n + (int)j], 'a' + (i + pr) % 26);
        } else {
            assert_int_equal(blen, 0);
        }
        *from_b += pr == 9;
        got++;
        tf_free(&f);
    }
    printf("topics: %s got %d of %d\n", who, got, want);
    assert_int_equal(got, want);
    assert_int_equal(tc_read(c, &f, 300), -1);
}

/* Topic fan-out over three nodes: producers 0 and 1 on node A, one on B (noLocal there);
 * subscribers on A, B (noLocal), C (plain, wildcard, selector). */
static void test_topics(void **state)
{
    ctx *c = *state;
    tc *sa = topic_sub(c->a.port, "/topic/fan.x", "");
    tc *sb = topic_sub(c->b.port, "/topic/fan.x", "no-local:true\n");
    tc *sc = topic_sub(c->c.port, "/topic/fan.x", "");
    tc *sw = topic_sub(c->c.port, "/topic/fan.*", "");
    tc *ss = topic_sub(c->c.port, "/topic/fan.x", "selector:parity = 'even'\n");
    tc *p[2] = { tc_open(c->a.port, "accept-version:1.2\n"),
                 tc_open(c->a.port, "accept-version:1.2\n") };
    assert_non_null(p[0]);
    assert_non_null(p[1]);
    static char big[TBIG + 1];
    tframe f;
    /* Node B's subscriber publishes too: noLocal keeps its own from it, not the others'.
     * First, while nothing else is published: its RECEIPT is the next frame it reads. */
    TC_SENDF(sb, "SEND\ndestination:/topic/fan.x\nparity:odd\nreceipt:b\n\n9:1:");
    assert_int_equal(tc_read(sb, &f, 10000), 0);
    assert_string_equal(f.cmd, "RECEIPT");
    tf_free(&f);
    /* Another client of the database notifies what no node published: a malformed header
     * block, and a queue's name. Every node drops both (the checks below count "9:0:"). */
    assert_int_equal(pgtest_exec(&pg, c->db, "NOTIFY stompd_topic,"
                                             " '99:1:DC90b3BpYy9mYW4ueAFoBDk6MDoACi9xdWV1"
                                             "ZS9mYW4ABDk6MDoA'"),
                     0);
    for (int w = 0; w < TN; w += TWIN) {
        for (int i = w; i < w + TWIN; i++)
            for (int pr = 0; pr < 2; pr++)
                topic_send(p[pr], pr, i, big);
        for (int pr = 0; pr < 2; pr++)
            for (int i = w; i < w + TWIN; i++) {
                assert_int_equal(tc_expect(p[pr], "RECEIPT", &f), 0);
                tf_free(&f);
            }
    }
    int from_b;
    topic_check(sa, 2 * TN + 1, "node A", &from_b);
    assert_int_equal(from_b, 1);
    topic_check(sb, 2 * TN, "node B (noLocal)", &from_b);
    assert_int_equal(from_b, 0);
    topic_check(sc, 2 * TN + 1, "node C", &from_b);
    assert_int_equal(from_b, 1);
    topic_check(sw, 2 * TN + 1, "node C (wildcard)", &from_b);
    assert_int_equal(from_b, 1);
    topic_check(ss, TN, "node C (selector)", &from_b);
    assert_int_equal(from_b, 0);
    tc *all[] = { sa, sb, sc, sw, ss, p[0], p[1] };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        tc_close(all[i]);
}

/* Receipts of sends from..to-1 that arrive within ms: set in got[], counted. A receipt of
 * any other number fails. */
static int receipts(tc *p, unsigned char *got, int from, int to, int ms)
{
    int n = 0;
    tframe f;
    long long end = tl_now_ms() + ms;
    while (tl_now_ms() < end) {
        if (tc_read(p, &f, 100) != 0)
            continue;
        assert_string_equal(f.cmd, "RECEIPT");
        int k = atoi(tf_header(&f, "receipt-id"));
        tf_free(&f);
        if (k < from || k >= to || got[k])
            fail_msg("unexpected receipt %d (waiting for %d..%d)", k, from, to - 1);
        got[k] = 1;
        n++;
    }
    return n;
}

/* The database stops (fast shutdown) while a producer on A sends with receipts to a
 * consumer on B: none of the sends made while it is down is receipted; once it is back,
 * each is, and every receipted message reaches B. */
static void test_db_restart(void **state)
{
    ctx *c = *state;
    enum { N = 600, BEFORE = 200, DOWN = 300, AFTER = 400 };
    static unsigned char rec[N], seen[N];
    memset(rec, 0, sizeof rec);
    memset(seen, 0, sizeof seen);
    tc *cb = consumer(c->b.port);
    tc *p = tc_open(c->a.port, "accept-version:1.2\n");
    assert_non_null(p);
    produce_range(p, 0, BEFORE);
    for (int i = 0; i < BEFORE; i++)
        rec[i] = 1;
    /* A window in flight as the database stops, then sends while it is down. */
    for (int i = BEFORE; i < DOWN; i++)
        TC_SENDF(p, "SEND\ndestination:/queue/work\nreceipt:%d\n\n%d", i, i);
    assert_int_equal(pgtest_pause(&pg), 0);
    int early = receipts(p, rec, BEFORE, DOWN, 500);
    for (int i = DOWN; i < AFTER; i++)
        TC_SENDF(p, "SEND\ndestination:/queue/work\nreceipt:%d\n\n%d", i, i);
    /* Paused: no receipt for what was sent while the database is down. */
    int paused = receipts(p, rec, BEFORE, DOWN, 2000);
    if (pgtest_resume(&pg) != 0)
        fail_msg("cannot start the database again: %s", pg.err);
    int outstanding = AFTER - BEFORE - early - paused, back = 0;
    long long end = tl_now_ms() + 60000;
    while (back < outstanding && tl_now_ms() < end)
        back += receipts(p, rec, BEFORE, AFTER, 200);
    printf("restart: %d receipted before the stop took effect, %d after, %d once it was back\n",
           early, paused, back);
    assert_int_equal(back, outstanding);
    produce_range(p, AFTER, N);
    for (int i = AFTER; i < N; i++)
        rec[i] = 1;
    int got = 0, dups = 0, dups_flagged = 0, k;
    end = tl_now_ms() + 40000;
    while (got < N && tl_now_ms() < end) {
        int red = 0;
        if ((k = take_one(cb, 100, 1, &red)) < 0)
            continue;
        assert_true(k >= 0 && k < N);
        if (seen[k]++) {
            dups++;
            dups_flagged += red;
        } else {
            got++;
        }
    }
    assert_int_equal(take_one(cb, 300, 1, NULL), -1);
    printf("restart: %d of %d delivered, %d twice (%d flagged redelivered)\n", got, N, dups,
           dups_flagged);
    assert_int_equal(got, N);
    /* Duplicates are counted, not asserted away: before the orphan release spared acks
     * waiting for their batch, one run in about ten delivered some twice (README). */
    tc_close(cb);
    tc_close(p);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (pgtest_start(&pg) != 0) {
        fprintf(stderr, "test_pgnodes: cannot start a private PostgreSQL: %s\n", pg.err);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_shared_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_three_nodes_kill, setup3, teardown),
        cmocka_unit_test_setup_teardown(test_topics, setup3, teardown),
        cmocka_unit_test_setup_teardown(test_db_restart, setup_long, teardown),
    };
    int failed = cmocka_run_group_tests_name("stompd nodes on postgres", tests, NULL, NULL);
    pgtest_stop(&pg);
    return failed ? 1 : 0;
}
