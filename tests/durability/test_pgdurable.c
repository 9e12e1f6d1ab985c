/* test_pgdurable.c: durable topic subscriptions shared by three stompd nodes on one
 * PostgreSQL database (a private server, tests/lib/pgtest.h; nodes, tests/lib/pgnode.h).
 *
 * Away: a subscription made on node A, its subscriber away, messages published on B and C
 * (receipted); the subscriber comes back on C and gets each exactly once, each producer's
 * in order, then live messages from A. Live: the subscriber live on B, two producers on A:
 * every message once, in each producer's order, through the backlog (not the topic's
 * notification: none comes twice). Filters: selector and noLocal decided by the
 * publishing node (noLocal: the consuming connection's own messages). Removed: removed on B, A hears of it (the identity is
 * free there), nothing published after it is kept (no backlog row is left). Refused: a
 * second subscriber of a live identity on another node gets the ERROR one node gives.
 * Killed: the node of a live subscriber killed with SIGKILL; after its lease the
 * subscriber comes back on another node and gets what it had not acked, redelivered:true.
 * Restart: every node stopped cleanly and one started again: what was kept, and what the
 * subscriber held unacked (redelivered:true), comes back there.
 * Migration: a schema 3 database is migrated to 4 at open, its messages kept.
 * A node hears of a subscription made elsewhere within a notification and a commit: each
 * test first waits until a probe published on each node reaches the subscriber.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgnode.h"
#include "pgtest.h"
#include "store_postgres.h"
#include "testlib.h"

#define LEASE "pg_lease=1500"

static pgtest pg;
static int ndb;

typedef struct ctx {
    char db[32];
    char conninfo[256];
    pgnode n[3]; /* A, B, C */
} ctx;

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    snprintf(c->db, sizeof c->db, "pgdur%d", ++ndb);
    if (pgtest_createdb(&pg, c->db, c->conninfo, sizeof c->conninfo) != 0)
        return -1;
    for (int i = 0; i < 3; i++)
        if (pgnode_start(&c->n[i], c->conninfo, LEASE) != 0)
            return -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    for (int i = 0; i < 3; i++)
        pgnode_stop(&c->n[i], SIGTERM);
    free(c);
    return 0;
}

/* SUBSCRIBE to the durable subscription name of client-id cid on topic, with a receipt:
 * the connection once its RECEIPT came, or NULL after an ERROR (its text in err). */
static tc *dsub(int port, const char *cid, const char *name, const char *topic,
                const char *extra, char *err, size_t cap)
{
    tc *c = tc_open(port, "accept-version:1.2\n");
    assert_non_null(c);
    tframe f;
    TC_SENDF(c, "SUBSCRIBE\nid:1\ndestination:%s\nclient-id:%s\nactivemq.subscriptionName:%s\n"
                "ack:client-individual\nprefetch-count:50\n%sreceipt:s\n\n",
             topic, cid, name, extra);
    assert_int_equal(tc_read(c, &f, 10000), 0);
    if (strcmp(f.cmd, "RECEIPT") == 0) {
        tf_free(&f);
        return c;
    }
    assert_string_equal(f.cmd, "ERROR");
    snprintf(err, cap, "%s", f.body);
    tf_free(&f);
    tc_close(c);
    return NULL;
}

static void send_receipted(tc *p, const char *topic, const char *body)
{
    tframe f;
    TC_SENDF(p, "SEND\ndestination:%s\nreceipt:r\n\n%s", topic, body);
    assert_int_equal(tc_expect(p, "RECEIPT", &f), 0);
    tf_free(&f);
}

/* Probes published on the nodes in mask (bit i: node i) until the live subscriber s has
 * one from each: those nodes know the subscription. Probes are acked; bodies "probe:i". */
static void probe(ctx *c, tc *s, const char *topic, unsigned mask)
{
    tc *p[3] = { NULL, NULL, NULL };
    for (int i = 0; i < 3; i++)
        if (mask & (1u << i))
            assert_non_null(p[i] = tc_open(c->n[i].port, "accept-version:1.2\n"));
    unsigned got = 0;
    long long end = tl_now_ms() + 15000;
    while ((got & mask) != mask && tl_now_ms() < end) {
        char body[16];
        for (int i = 0; i < 3; i++)
            if ((mask & (1u << i)) && !(got & (1u << i))) {
                snprintf(body, sizeof body, "probe:%d", i);
                send_receipted(p[i], topic, body);
            }
        tframe f;
        while (tc_read(s, &f, 100) == 0) {
            assert_string_equal(f.cmd, "MESSAGE");
            assert_int_equal(strncmp(f.body, "probe:", 6), 0);
            got |= 1u << atoi(f.body + 6);
            TC_SENDF(s, "ACK\nid:%s\n\n", tf_header(&f, "ack"));
            tf_free(&f);
        }
    }
    assert_int_equal(got & mask, mask);
    for (int i = 0; i < 3; i++)
        if (p[i])
            tc_close(p[i]);
}

/* The subscriber goes away (a plain UNSUBSCRIBE: the subscription stays), after the probes
 * still coming are acked. */
static void away(tc *s)
{
    tframe f;
    while (tc_read(s, &f, 300) == 0) {
        assert_string_equal(f.cmd, "MESSAGE");
        assert_int_equal(strncmp(f.body, "probe:", 6), 0);
        TC_SENDF(s, "ACK\nid:%s\n\n", tf_header(&f, "ack"));
        tf_free(&f);
    }
    TC_SENDF(s, "UNSUBSCRIBE\nid:1\nreceipt:u\n\n");
    assert_int_equal(tc_expect(s, "RECEIPT", &f), 0);
    tf_free(&f);
    tc_close(s);
}

/* Read s until it has want messages "P:i" (P a letter, i from 0) of producers 'A'..'D'
 * (probes skipped): each producer's in order, none twice; acked. Nothing more comes. */
static void expect_all(tc *s, int want, int per_producer, const char *who)
{
    int next[4] = { 0, 0, 0, 0 }, got = 0;
    long long end = tl_now_ms() + 30000;
    tframe f;
    while (got < want && tl_now_ms() < end) {
        if (tc_read(s, &f, 200) != 0)
            continue;
        assert_string_equal(f.cmd, "MESSAGE");
        TC_SENDF(s, "ACK\nid:%s\n\n", tf_header(&f, "ack"));
        if (strncmp(f.body, "probe:", 6) == 0) {
            tf_free(&f);
            continue;
        }
        int p = f.body[0] - 'A', i = atoi(f.body + 2);
        assert_true(p >= 0 && p < 4 && f.body[1] == ':');
        if (i != next[p])
            fail_msg("%s: producer %c's message %d, expected %d", who, 'A' + p, i, next[p]);
        next[p]++;
        assert_true(next[p] <= per_producer);
        got++;
        tf_free(&f);
    }
    printf("%s: %d of %d\n", who, got, want);
    assert_int_equal(got, want);
    while (tc_read(s, &f, 300) == 0) {
        assert_string_equal(f.cmd, "MESSAGE");
        /* A probe may still come, nothing else. */
        assert_int_equal(strncmp(f.body, "probe:", 6), 0);
        tf_free(&f);
    }
}

/* Producers on nodes na and nb, named by the letters la and lb, send n each, receipted, in
 * windows of 50, interleaved. */
static void produce2(ctx *c, int na, char la, int nb, char lb, const char *topic, int n)
{
    tc *p[2] = { tc_open(c->n[na].port, "accept-version:1.2\n"),
                 tc_open(c->n[nb].port, "accept-version:1.2\n") };
    char who[2] = { la, lb };
    assert_non_null(p[0]);
    assert_non_null(p[1]);
    tframe f;
    for (int w = 0; w < n; w += 50) {
        for (int k = 0; k < 2; k++)
            for (int i = w; i < w + 50 && i < n; i++)
                TC_SENDF(p[k], "SEND\ndestination:%s\nreceipt:%d\n\n%c:%d", topic, i, who[k],
                         i);
        for (int k = 0; k < 2; k++)
            for (int i = w; i < w + 50 && i < n; i++) {
                assert_int_equal(tc_expect(p[k], "RECEIPT", &f), 0);
                tf_free(&f);
            }
    }
    tc_close(p[0]);
    tc_close(p[1]);
}

/* Made on A, away; published on B and C; back on C: each message once, in order. */
static void test_away(void **state)
{
    ctx *c = *state;
    enum { N = 300 };
    char err[256];
    tc *s = dsub(c->n[0].port, "cid", "away", "/topic/d.away", "", err, sizeof err);
    assert_non_null(s);
    probe(c, s, "/topic/d.away", 6); /* B and C know it */
    away(s);
    produce2(c, 1, 'B', 2, 'C', "/topic/d.away", N);
    s = dsub(c->n[2].port, "cid", "away", "/topic/d.away", "", err, sizeof err);
    if (!s)
        fail_msg("back on C: %s", err);
    expect_all(s, 2 * N, N, "away, back on C");
    /* Then live messages, from A. */
    tc *p = tc_open(c->n[0].port, "accept-version:1.2\n");
    assert_non_null(p);
    for (int i = 0; i < 10; i++) {
        char body[16];
        snprintf(body, sizeof body, "A:%d", i);
        send_receipted(p, "/topic/d.away", body);
    }
    expect_all(s, 10, 10, "live on C");
    tc_close(p);
    tc_close(s);
}

/* Live on B, two producers on A: every message once, each producer's in order. */
static void test_live(void **state)
{
    ctx *c = *state;
    enum { N = 400 };
    char err[256];
    tc *s = dsub(c->n[1].port, "cid", "live", "/topic/d.live", "", err, sizeof err);
    assert_non_null(s);
    probe(c, s, "/topic/d.live", 1); /* A knows it */
    produce2(c, 0, 'A', 0, 'B', "/topic/d.live", N);
    expect_all(s, 2 * N, N, "live on B, producers on A");
    tc_close(s);
}

/* Selector and noLocal across nodes: live on B with a selector and noLocal; what its own
 * connection publishes is not kept, what a producer on A publishes is, if the selector
 * lets it through (decided on A). */
static void test_filters(void **state)
{
    ctx *c = *state;
    char err[256];
    tc *s = dsub(c->n[1].port, "cid", "f", "/topic/d.f",
                 "no-local:true\nselector:parity IS NULL OR parity = 'even'\n", err,
                 sizeof err);
    if (!s)
        fail_msg("%s", err);
    probe(c, s, "/topic/d.f", 1);
    tc *p = tc_open(c->n[0].port, "accept-version:1.2\n");
    assert_non_null(p);
    tframe f;
    for (int i = 0; i < 20; i++) {
        /* Its own connection first: with noLocal, not kept (nor delivered). */
        TC_SENDF(s, "SEND\ndestination:/topic/d.f\nreceipt:own\n\nB:%d", i);
        TC_SENDF(p, "SEND\ndestination:/topic/d.f\nparity:%s\nreceipt:r\n\nA:%d",
                 i % 2 ? "odd" : "even", i / 2);
        assert_int_equal(tc_expect(p, "RECEIPT", &f), 0);
        tf_free(&f);
    }
    /* 10 even ones from A, numbered 0..9; no B:i. Its own RECEIPTs come among them. */
    int next = 0, receipts = 0;
    long long end = tl_now_ms() + 20000;
    while ((next < 10 || receipts < 20) && tl_now_ms() < end) {
        if (tc_read(s, &f, 200) != 0)
            continue;
        if (strcmp(f.cmd, "RECEIPT") == 0) {
            receipts++;
            tf_free(&f);
            continue;
        }
        assert_string_equal(f.cmd, "MESSAGE");
        TC_SENDF(s, "ACK\nid:%s\n\n", tf_header(&f, "ack"));
        if (strncmp(f.body, "probe:", 6) != 0) {
            assert_true(f.body[0] == 'A');
            assert_int_equal(atoi(f.body + 2), next);
            assert_string_equal(tf_header(&f, "parity"), "even");
            next++;
        }
        tf_free(&f);
    }
    assert_int_equal(next, 10);
    assert_int_equal(receipts, 20);
    while (tc_read(s, &f, 300) == 0) {
        assert_int_equal(strncmp(f.body, "probe:", 6), 0);
        tf_free(&f);
    }
    tc_close(p);
    tc_close(s);
}

/* Removed on B: A hears of it (the identity is free there for another topic), nothing
 * published afterwards is kept anywhere. */
static void test_removed(void **state)
{
    ctx *c = *state;
    char err[256];
    tc *s = dsub(c->n[0].port, "cid", "rm", "/topic/d.rm", "", err, sizeof err);
    assert_non_null(s);
    probe(c, s, "/topic/d.rm", 7);
    away(s);
    /* Refused on B until B heard that the subscriber left A (as on one node while it is
     * live on another connection). */
    tframe f;
    long long end = tl_now_ms() + 10000;
    for (;;) {
        tc *r = tc_open(c->n[1].port, "accept-version:1.2\nclient-id:cid\n");
        assert_non_null(r);
        TC_SENDF(r, "UNSUBSCRIBE\nid:1\nactivemq.subscriptionName:rm\nreceipt:gone\n\n");
        assert_int_equal(tc_read(r, &f, 10000), 0);
        int done = strcmp(f.cmd, "RECEIPT") == 0;
        if (!done)
            assert_string_equal(f.body, "durable subscription rm of client-id cid has a live "
                                        "subscriber on another connection");
        tf_free(&f);
        tc_close(r);
        if (done)
            break;
        assert_true(tl_now_ms() < end);
        usleep(20 * 1000);
    }
    /* On A the identity is free once A heard: SUBSCRIBE it on another topic. */
    end = tl_now_ms() + 10000;
    while (!(s = dsub(c->n[0].port, "cid", "rm", "/topic/d.other", "", err, sizeof err)) &&
           tl_now_ms() < end) {
        assert_non_null(strstr(err, "with another selector or noLocal"));
        usleep(50 * 1000);
    }
    assert_non_null(s);
    tc *p[3];
    for (int i = 0; i < 3; i++) {
        assert_non_null(p[i] = tc_open(c->n[i].port, "accept-version:1.2\n"));
        send_receipted(p[i], "/topic/d.rm", "A:0");
        tc_close(p[i]);
    }
    /* Nothing is kept: no row of any backlog remains (a node that had not heard yet kept
     * one for the removed subscription, and deletes it once it has). */
    long long rows = -1;
    end = tl_now_ms() + 10000;
    while ((rows = pgtest_value(&pg, c->db, "SELECT count(*) FROM stompd_msg")) != 0 &&
           tl_now_ms() < end)
        usleep(50 * 1000);
    assert_int_equal(rows, 0);
    assert_int_equal(pgtest_value(&pg, c->db, "SELECT count(*) FROM stompd_durable"), 1);
    assert_int_equal(tc_read(s, &f, 300), -1);
    tc_close(s);
}

/* A second subscriber of a live identity, on another node: the ERROR of one node. */
static void test_refused(void **state)
{
    ctx *c = *state;
    char err[256];
    tc *s = dsub(c->n[0].port, "cid", "one", "/topic/d.one", "", err, sizeof err);
    assert_non_null(s);
    probe(c, s, "/topic/d.one", 2); /* B knows it */
    assert_null(dsub(c->n[1].port, "cid", "one", "/topic/d.one", "", err, sizeof err));
    assert_string_equal(err, "durable subscription one of client-id cid already has a live "
                             "subscriber");
    /* The first one goes on. */
    tc *p = tc_open(c->n[1].port, "accept-version:1.2\n");
    assert_non_null(p);
    send_receipted(p, "/topic/d.one", "A:0");
    expect_all(s, 1, 1, "the first subscriber");
    tc_close(p);
    tc_close(s);
}

/* The node of a live subscriber killed: after its lease, on another node, the subscriber
 * gets every message it had not acked, those it held flagged redelivered; one comes twice
 * only if it was acked on the killed node. */
static void test_killed(void **state)
{
    ctx *c = *state;
    enum { N = 300, ACKED = 60 };
    static unsigned char acked[N], held[N], seen[N];
    memset(acked, 0, sizeof acked);
    memset(held, 0, sizeof held);
    memset(seen, 0, sizeof seen);
    char err[256];
    tc *s = dsub(c->n[1].port, "cid", "k", "/topic/d.k", "", err, sizeof err);
    assert_non_null(s);
    probe(c, s, "/topic/d.k", 1);
    tc *p = tc_open(c->n[0].port, "accept-version:1.2\n");
    assert_non_null(p);
    for (int i = 0; i < N; i++) {
        char body[16];
        snprintf(body, sizeof body, "A:%d", i);
        send_receipted(p, "/topic/d.k", body);
    }
    int nacked = 0, nheld = 0;
    tframe f;
    while (tc_read(s, &f, 500) == 0) {
        assert_string_equal(f.cmd, "MESSAGE");
        if (strncmp(f.body, "probe:", 6) == 0) {
            TC_SENDF(s, "ACK\nid:%s\n\n", tf_header(&f, "ack"));
        } else if (nacked < ACKED) {
            acked[atoi(f.body + 2)] = 1;
            nacked++;
            TC_SENDF(s, "ACK\nid:%s\n\n", tf_header(&f, "ack"));
        } else {
            held[atoi(f.body + 2)] = 1;
            nheld++;
        }
        tf_free(&f);
    }
    assert_int_equal(nacked, ACKED);
    assert_true(nheld > 0);
    pgnode_stop(&c->n[1], SIGKILL);
    tc_close(s);
    /* Refused while B's lease runs. */
    long long end = tl_now_ms() + 15000;
    while (!(s = dsub(c->n[2].port, "cid", "k", "/topic/d.k", "", err, sizeof err)) &&
           tl_now_ms() < end) {
        assert_non_null(strstr(err, "already has a live subscriber"));
        usleep(100 * 1000);
    }
    assert_non_null(s);
    int got = 0, dups = 0, back = 0, flagged = 0;
    end = tl_now_ms() + 20000;
    while (got < N - ACKED && tl_now_ms() < end) {
        if (tc_read(s, &f, 200) != 0)
            continue;
        assert_string_equal(f.cmd, "MESSAGE");
        TC_SENDF(s, "ACK\nid:%s\n\n", tf_header(&f, "ack"));
        if (strncmp(f.body, "probe:", 6) != 0) {
            int k = atoi(f.body + 2);
            const char *red = tf_header(&f, "redelivered");
            assert_true(k >= 0 && k < N && !seen[k]);
            seen[k] = 1;
            if (acked[k]) {
                dups++; /* acked on B, the ACK lost with it */
            } else {
                got++;
                back += held[k];
                flagged += held[k] && red && strcmp(red, "true") == 0;
            }
        }
        tf_free(&f);
    }
    printf("killed: %d acked on B, %d held there, %d back on C (%d redelivered), %d in all, "
           "%d acked ones again\n", ACKED, nheld, back, flagged, got, dups);
    assert_int_equal(got, N - ACKED);
    assert_int_equal(back, nheld);
    assert_int_equal(flagged, nheld);
    tc_close(s);
    tc_close(p);
}

/* A clean restart of every node: what was kept while the subscriber was away, and what it
 * held unacked when its node stopped (redelivered:true), comes back on a restarted node. */
static void test_restart(void **state)
{
    ctx *c = *state;
    char err[256];
    tc *s = dsub(c->n[0].port, "cid", "r", "/topic/d.r", "", err, sizeof err);
    assert_non_null(s);
    probe(c, s, "/topic/d.r", 2);
    tc *p = tc_open(c->n[1].port, "accept-version:1.2\n");
    assert_non_null(p);
    for (int i = 0; i < 10; i++) {
        char body[16];
        snprintf(body, sizeof body, "A:%d", i);
        send_receipted(p, "/topic/d.r", body);
    }
    tc_close(p);
    /* Held, never acked: 0..9 (probes acked). */
    int held = 0;
    tframe f;
    while (held < 10 && tc_read(s, &f, 10000) == 0) {
        assert_string_equal(f.cmd, "MESSAGE");
        if (strncmp(f.body, "probe:", 6) == 0)
            TC_SENDF(s, "ACK\nid:%s\n\n", tf_header(&f, "ack"));
        else
            assert_int_equal(atoi(f.body + 2), held++);
        tf_free(&f);
    }
    assert_int_equal(held, 10);
    for (int i = 0; i < 3; i++)
        pgnode_stop(&c->n[i], SIGTERM);
    tc_close(s);
    assert_int_equal(pgnode_start(&c->n[2], c->conninfo, LEASE), 0);
    assert_non_null(p = tc_open(c->n[2].port, "accept-version:1.2\n"));
    send_receipted(p, "/topic/d.r", "A:10");
    tc_close(p);
    s = dsub(c->n[2].port, "cid", "r", "/topic/d.r", "", err, sizeof err);
    if (!s)
        fail_msg("after the restart: %s", err);
    for (int i = 0; i <= 10; i++) {
        assert_int_equal(tc_expect(s, "MESSAGE", &f), 0);
        assert_int_equal(atoi(f.body + 2), i);
        const char *red = tf_header(&f, "redelivered");
        assert_int_equal(red && strcmp(red, "true") == 0, i < 10);
        TC_SENDF(s, "ACK\nid:%s\n\n", tf_header(&f, "ack"));
        tf_free(&f);
    }
    assert_int_equal(tc_read(s, &f, 300), -1);
    tc_close(s);
}

/* A database of schema 3 (before durable subscriptions) is migrated at open, its messages
 * kept; durable subscriptions work on it. */
static void test_migration(void **state)
{
    ctx *c = *state;
    for (int i = 0; i < 3; i++)
        pgnode_stop(&c->n[i], SIGTERM);
    tc *p = NULL;
    assert_int_equal(pgnode_start(&c->n[0], c->conninfo, LEASE), 0);
    assert_non_null(p = tc_open(c->n[0].port, "accept-version:1.2\n"));
    send_receipted(p, "/queue/kept", "kept");
    tc_close(p);
    pgnode_stop(&c->n[0], SIGTERM);
    /* Schema 3 is schema 4 without stompd_durable. */
    assert_int_equal(pgtest_exec(&pg, c->db, "DROP TABLE stompd_durable;"
                                              " UPDATE stompd_schema SET version = 3"), 0);
    assert_int_equal(pgnode_start(&c->n[0], c->conninfo, LEASE), 0);
    assert_int_equal(pgtest_value(&pg, c->db, "SELECT version FROM stompd_schema"), 4);
    char err[256];
    tc *s = dsub(c->n[0].port, "cid", "m", "/topic/d.m", "", err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    assert_non_null(p = tc_open(c->n[0].port, "accept-version:1.2\n"));
    send_receipted(p, "/topic/d.m", "A:0");
    expect_all(s, 1, 1, "migrated");
    tframe f;
    TC_SENDF(p, "SUBSCRIBE\nid:q\ndestination:/queue/kept\n\n");
    assert_int_equal(tc_expect(p, "MESSAGE", &f), 0);
    assert_memory_equal(f.body, "kept", 4);
    tf_free(&f);
    tc_close(p);
    tc_close(s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (pgtest_start(&pg) != 0) {
        fprintf(stderr, "test_pgdurable: cannot start a private PostgreSQL: %s\n", pg.err);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_away, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("durable subscriptions across nodes", tests, NULL,
                                             NULL);
    pgtest_stop(&pg);
    return failed ? 1 : 0;
}
