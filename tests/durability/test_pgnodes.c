/* test_pgnodes.c: two stompd processes on one PostgreSQL database act as one broker for
 * queues (a private server, tests/lib/pgtest.h, started once for the program).
 *
 * Shared: a producer on node A sends N receipted messages to a queue with consumers on both
 * nodes; every message is delivered exactly once, and both nodes delivered some.
 * Killed: node A is killed with SIGKILL while its consumer holds messages it has not acked;
 * after A's lease (short here: pg_lease) they come back on node B with redelivered:true,
 * and every receipted message reaches B's consumer, none twice there.
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

#include "pgtest.h"
#include "testlib.h"

#define LEASE "pg_lease=1500"

static pgtest pg;
static int ndb;

typedef struct node {
    pid_t pid;
    int port;
    int out; /* the read end of its stdout */
} node;

/* Start stompd on database conninfo; 0, or -1 (printed). */
static int node_start(node *n, const char *conninfo)
{
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    char exe[256], spec[300];
    snprintf(exe, sizeof exe, "%s/stompd", build);
    snprintf(spec, sizeof spec, "postgres:%s", conninfo);
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    n->pid = fork();
    if (n->pid < 0)
        return -1;
    if (n->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(exe, exe, "--port", "0", "--store", spec, "--set", LEASE, "--log-level",
              "warning", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    n->out = fds[0];
    char buf[512];
    size_t len = 0;
    long long end = tl_now_ms() + 20000;
    while (tl_now_ms() < end && len < sizeof buf - 1) {
        struct pollfd p = { n->out, POLLIN, 0 };
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t r = read(n->out, buf + len, sizeof buf - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = '\0';
        const char *at = strstr(buf, "listening on ");
        const char *nl = at ? strchr(at, '\n') : NULL;
        if (nl) {
            const char *colon = nl;
            while (colon > at && *colon != ':')
                colon--;
            n->port = atoi(colon + 1);
            return n->port > 0 ? 0 : -1;
        }
    }
    fprintf(stderr, "stompd did not start: %s\n", buf);
    return -1;
}

/* Stop it: SIGTERM (a clean stop) or SIGKILL; wait for it. */
static void node_stop(node *n, int sig)
{
    if (n->pid <= 0)
        return;
    kill(n->pid, sig);
    int st;
    while (waitpid(n->pid, &st, 0) < 0 && errno == EINTR)
        ;
    close(n->out);
    n->pid = 0;
}

typedef struct ctx {
    char conninfo[256];
    node a, b;
} ctx;

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    char db[32];
    snprintf(db, sizeof db, "nodes%d", ++ndb);
    if (!c || pgtest_createdb(&pg, db, c->conninfo, sizeof c->conninfo) != 0)
        return -1;
    if (node_start(&c->a, c->conninfo) != 0 || node_start(&c->b, c->conninfo) != 0)
        return -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    node_stop(&c->a, SIGTERM);
    node_stop(&c->b, SIGTERM);
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

/* Send n messages numbered from 0 with receipts, 100 in flight at most; every receipt
 * comes back. */
static void produce(tc *p, int n)
{
    tframe f;
    for (int w = 0; w < n; w += 100) {
        for (int i = w; i < w + 100 && i < n; i++)
            TC_SENDF(p, "SEND\ndestination:/queue/work\nreceipt:%d\n\n%d", i, i);
        for (int i = w; i < w + 100 && i < n; i++) {
            assert_int_equal(tc_expect(p, "RECEIPT", &f), 0);
            tf_free(&f);
        }
    }
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
    node_stop(&c->a, SIGKILL);
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
    };
    int failed = cmocka_run_group_tests_name("stompd nodes on postgres", tests, NULL, NULL);
    pgtest_stop(&pg);
    return failed ? 1 : 0;
}
