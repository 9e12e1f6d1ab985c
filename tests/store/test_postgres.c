/* test_postgres.c: what the PostgreSQL backend adds to the store contract, on a private
 * server (tests/lib/pgtest.h) started once for the program and stopped at its end: the
 * connection to the database cut (pg_terminate_backend) while a commit is in flight, while
 * idle, and under a broker with receipted SENDs: every commit completes once the store has
 * reconnected, and every message is there exactly once; a statement the database refuses
 * fails its batch (STORE_E_IO, last_error) and the store goes on; open refuses a schema newer
 * than the build and a server it cannot reach, saying why; a node's delivery bound is raised
 * in steps, not per take; two stores on one database share a queue (claim, want, release);
 * topic messages reach the other node in order, large ones by reference, in one round trip;
 * the store's sessions compile no statement (JIT off, even where the database asks for it);
 * open drops an index no statement reads;
 * stompd, which does not link libpq, loads it only for a PostgreSQL store and works with it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "pgtest.h"
#include "store_postgres.h"
#include "testlib.h"

static pgtest pg;

typedef struct ctx {
    uv_loop_t loop;
    store *s;
    char db[32];
    char conninfo[256];
    uv_timer_t keep; /* keeps the loop polling in test_two_nodes */
} ctx;

static const store_ops *ops(void)
{
    return store_postgres_backend();
}

static store_err open_store(ctx *c, store **out, char *why, size_t n)
{
    store_options o;
    memset(&o, 0, sizeof o);
    o.loop = &c->loop;
    o.path = c->conninfo;
    o.sync_full = 1;
    o.reason = why;
    o.reason_size = n;
    return ops()->open(&o, out);
}

static int setup(void **state)
{
    static unsigned ndb;
    ctx *c = calloc(1, sizeof *c);
    if (!c || uv_loop_init(&c->loop) != 0)
        return -1;
    snprintf(c->db, sizeof c->db, "pgt_%u", ++ndb);
    if (pgtest_createdb(&pg, c->db, c->conninfo, sizeof c->conninfo) != 0)
        return -1;
    char why[256];
    if (open_store(c, &c->s, why, sizeof why) != STORE_OK) {
        fprintf(stderr, "open: %s\n", why);
        return -1;
    }
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    if (c->s)
        ops()->close(c->s);
    if (c->keep.loop && !uv_is_closing((uv_handle_t *)&c->keep))
        uv_close((uv_handle_t *)&c->keep, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&c->loop);
    free(c);
    return rc == 0 ? 0 : -1;
}

typedef struct done {
    int called;
    store_err status;
} done;

static void on_commit(void *arg, store_err status)
{
    done *d = arg;
    d->called++;
    d->status = status;
}

/* A connection of the test's that holds stompd_node locked: a batch cannot commit. */
static PGconn *lock_state(ctx *c)
{
    PGconn *l = PQconnectdb(c->conninfo);
    assert_int_equal(PQstatus(l), CONNECTION_OK);
    PGresult *r = PQexec(l, "BEGIN; LOCK TABLE stompd_node IN ACCESS EXCLUSIVE MODE");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    return l;
}

static void unlock_state(PGconn *l)
{
    PGresult *r = PQexec(l, "COMMIT");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(l);
}

/* Commit and wait; cut: the store's connection is cut while the commit is in flight and
 * cannot have committed (stompd_node is locked until after the cut), so the store must
 * reconnect and send the batch again. The commit's outcome. */
static store_err commit_cut(ctx *c, int cut)
{
    done d = { 0, STORE_OK };
    PGconn *l = cut ? lock_state(c) : NULL;
    store_err rc = ops()->commit(c->s, on_commit, &d);
    if (rc == STORE_DONE)
        return STORE_OK;
    assert_int_equal(rc, STORE_OK);
    if (cut) {
        assert_int_equal(pgtest_terminate(&pg, c->db, "stompd"), 1);
        unlock_state(l);
    }
    while (!d.called)
        uv_run(&c->loop, UV_RUN_ONCE);
    assert_int_equal(d.called, 1);
    return d.status;
}

static void put(ctx *c, const char *q, int k)
{
    char body[32];
    uint64_t id;
    snprintf(body, sizeof body, "%d", k);
    assert_int_equal(ops()->enqueue(c->s, q, strlen(q), NULL, 0, body, strlen(body), &id),
                     STORE_OK);
}

static store_err take_rc(ctx *c, const char *q, store_msg *m)
{
    store_err rc = ops()->take(c->s, q, strlen(q), m);
    if (rc == STORE_E_AGAIN) {
        assert_int_equal(commit_cut(c, 0), STORE_OK);
        rc = ops()->take(c->s, q, strlen(q), m);
    }
    return rc;
}

/* Take every message of q: each body a number below n, seen[] counts them. */
static int drain(ctx *c, const char *q, unsigned char *seen, int n)
{
    store_msg m;
    int got = 0;
    while (take_rc(c, q, &m) == STORE_OK) {
        int k = atoi(m.body);
        assert_true(k >= 0 && k < n);
        seen[k]++;
        got++;
    }
    return got;
}

/* Batches of sends and acks, the connection cut during commits (the first or the second
 * of a round) and while idle (the next commit finds it gone): all commits complete, and
 * after a reopen the queue holds exactly the messages sent and not acked, each once. */
static void test_cut_mid_flow(void **state)
{
    ctx *c = *state;
    enum { ROUNDS = 12, PER = 200, N = ROUNDS * PER };
    int k = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < PER; i++)
            put(c, "cut", k++);
        assert_int_equal(commit_cut(c, r % 4 == 0), STORE_OK);
        assert_int_equal(pgtest_backends(&pg, c->db, "stompd"), 1);
        /* Ack as many as were sent in half a round (the queue's head). */
        for (int i = 0; i < PER / 2; i++) {
            store_msg m;
            assert_int_equal(take_rc(c, "cut", &m), STORE_OK);
            assert_int_equal(ops()->ack(c->s, m.id), STORE_OK);
        }
        assert_int_equal(commit_cut(c, r % 4 == 1), STORE_OK);
        if (r % 4 == 2) {
            assert_int_equal(pgtest_terminate(&pg, c->db, "stompd"), 1);
            assert_int_equal(pgtest_backends(&pg, c->db, "stompd"), 0);
        }
    }
    put(c, "other", 0); /* the last loss is in the past once a commit went through */
    assert_int_equal(commit_cut(c, 0), STORE_OK);
    assert_string_equal(ops()->last_error(c->s), "");
    ops()->close(c->s);
    c->s = NULL;
    assert_int_equal(open_store(c, &c->s, NULL, 0), STORE_OK);
    unsigned char *seen = calloc(N, 1);
    assert_int_equal(drain(c, "cut", seen, N), N / 2);
    /* Acked: the first half in FIFO order; still there: the rest, each once. */
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], i >= N / 2);
    free(seen);
}

/* A batch the database refuses fails with STORE_E_IO and a reason; its message is gone,
 * and the next batch commits. */
static void test_refused_batch(void **state)
{
    ctx *c = *state;
    assert_int_equal(pgtest_exec(&pg, c->db, "ALTER TABLE stompd_msg ADD CONSTRAINT small"
                                             " CHECK (length(body) < 4)"),
                     0);
    put(c, "r", 12345);
    assert_int_equal(commit_cut(c, 0), STORE_E_IO);
    assert_non_null(strstr(ops()->last_error(c->s), "commit failed"));
    assert_non_null(strstr(ops()->last_error(c->s), "small"));
    assert_int_equal(ops()->depth(c->s, "r", 1), 0);
    put(c, "r", 7);
    assert_int_equal(commit_cut(c, 0), STORE_OK);
    assert_int_equal(ops()->depth(c->s, "r", 1), 1);
}

/* The store's sessions, the first and one made again after a cut, run without JIT: with
 * jit_above_cost 0 on the database every statement would be compiled otherwise (a lease
 * statement compiled took hundreds of ms, each second). */
static void test_no_jit(void **state)
{
    ctx *c = *state;
    ops()->close(c->s);
    c->s = NULL;
    char sql[200];
    snprintf(sql, sizeof sql, "ALTER DATABASE \"%s\" SET jit_above_cost = 0", c->db);
    assert_int_equal(pgtest_exec(&pg, NULL, sql), 0);
    assert_int_equal(pgtest_exec(&pg, c->db, "CREATE EXTENSION pg_stat_statements"), 0);
    assert_int_equal(pgtest_exec(&pg, c->db, "SELECT pg_stat_statements_reset()"), 0);
    char why[256];
    assert_int_equal(open_store(c, &c->s, why, sizeof why), STORE_OK);
    for (int cut = 0; cut < 2; cut++) {
        put(c, "j", cut);
        assert_int_equal(commit_cut(c, cut), STORE_OK);
        store_msg m;
        assert_int_equal(take_rc(c, "j", &m), STORE_OK);
        assert_int_equal(ops()->ack(c->s, m.id), STORE_OK);
        assert_int_equal(commit_cut(c, 0), STORE_OK);
    }
    PGconn *q = PQconnectdb(c->conninfo);
    assert_int_equal(PQstatus(q), CONNECTION_OK);
    /* JIT is there to be used, the store's statements were seen, none was compiled. */
    PGresult *r = PQexec(q, "SELECT pg_jit_available(), count(*) FILTER (WHERE query LIKE"
                            " '%stompd_msg%'), coalesce(sum(jit_functions), 0)"
                            " FROM pg_stat_statements WHERE dbid = (SELECT oid FROM"
                            " pg_database WHERE datname = current_database())"
                            " AND query NOT LIKE '%pg_stat_statements%'");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "t");
    assert_true(atoi(PQgetvalue(r, 0, 1)) >= 3);
    assert_string_equal(PQgetvalue(r, 0, 2), "0");
    PQclear(r);
    PQfinish(q);
}

/* The one integer sql answers on the test's database. */
static int one_int(const ctx *c, const char *sql)
{
    PGconn *q = PQconnectdb(c->conninfo);
    assert_int_equal(PQstatus(q), CONNECTION_OK);
    PGresult *r = PQexec(q, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    int n = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(q);
    return n;
}

/* Open drops schema 1's index by (queue, prio, ord, id), which no statement reads: a
 * database an older build made keeps its messages and loses the index. */
static void test_order_index_dropped(void **state)
{
    ctx *c = *state;
    const char *has = "SELECT count(*) FROM pg_indexes WHERE indexname = 'stompd_msg_order'";
    assert_int_equal(one_int(c, has), 0);
    put(c, "o", 1);
    assert_int_equal(commit_cut(c, 0), STORE_OK);
    ops()->close(c->s);
    c->s = NULL;
    assert_int_equal(pgtest_exec(&pg, c->db, "CREATE INDEX stompd_msg_order ON"
                                             " stompd_msg(queue, prio, ord, id)"),
                     0);
    assert_int_equal(one_int(c, has), 1);
    char why[256];
    assert_int_equal(open_store(c, &c->s, why, sizeof why), STORE_OK);
    assert_int_equal(one_int(c, has), 0);
    assert_int_equal(ops()->depth(c->s, "o", 1), 1);
}

/* Open says why it cannot: a newer schema, no server. */
static void test_open_refusals(void **state)
{
    ctx *c = *state;
    store *other = NULL;
    char why[256];
    ops()->close(c->s);
    c->s = NULL;
    assert_int_equal(pgtest_exec(&pg, c->db, "UPDATE stompd_schema SET version = 99"), 0);
    assert_int_equal(open_store(c, &other, why, sizeof why), STORE_E_IO);
    assert_non_null(strstr(why, "schema version 99 is newer"));
    snprintf(c->conninfo, sizeof c->conninfo, "host=%s/none dbname=x", pg.dir);
    assert_int_equal(open_store(c, &other, why, sizeof why), STORE_E_IO);
    assert_non_null(strstr(why, "cannot connect"));
}

/* Commit store s (not cut) and wait: its outcome. */
static store_err commit_on(ctx *c, store *s)
{
    done d = { 0, STORE_OK };
    store_err rc = ops()->commit(s, on_commit, &d);
    if (rc == STORE_DONE)
        return STORE_OK;
    assert_int_equal(rc, STORE_OK);
    while (!d.called)
        uv_run(&c->loop, UV_RUN_ONCE);
    return d.status;
}

/* One node's delivery bound is recorded ahead of its takes in steps of thousands of
 * messages, not per take: draining 20000 messages asks for a few commits only. */
static void test_bound_steps(void **state)
{
    ctx *c = *state;
    enum { N = 20000 };
    for (int i = 0; i < N; i++)
        put(c, "b", i);
    assert_int_equal(commit_cut(c, 0), STORE_OK);
    int again = 0, got = 0;
    store_msg m;
    store_err rc;
    while ((rc = ops()->take(c->s, "b", 1, &m)) != STORE_E_EMPTY) {
        if (rc == STORE_E_AGAIN) {
            again++;
            assert_int_equal(commit_cut(c, 0), STORE_OK);
            continue;
        }
        assert_int_equal(rc, STORE_OK);
        assert_int_equal(ops()->ack(c->s, m.id), STORE_OK);
        got++;
    }
    assert_int_equal(got, N);
    assert_true(again <= N / (STORE_POSTGRES_LOOKAHEAD / 2) + 1);
}

/* Run the loop until cond(s, q) or a generous bound. */
static int wait_until(ctx *c, int (*cond)(store *s), store *s)
{
    long long end = tl_now_ms() + 10000;
    while (!cond(s) && tl_now_ms() < end)
        uv_run(&c->loop, UV_RUN_NOWAIT);
    return cond(s);
}

static int gave_up(store *s)
{
    return ops()->depth(s, "s", 1) < 10;
}

static void on_keep(uv_timer_t *t)
{
    (void)t;
}

/* Two stores (nodes) on one database: the second one's take on an empty queue claims
 * (nothing free: the first node owns its messages) and says it wants more; the first node
 * gives half of its ready messages up, and the second claims them. Each message is taken
 * by exactly one of them. */
static void test_two_nodes(void **state)
{
    ctx *c = *state;
    store *b = NULL;
    char why[256];
    assert_int_equal(open_store(c, &b, why, sizeof why), STORE_OK);
    /* The stores watch for notifications without keeping the loop alive (as in a broker,
     * whose listeners do): a timer keeps it polling here. */
    uv_timer_t *keep = &c->keep;
    assert_int_equal(uv_timer_init(&c->loop, keep), 0);
    assert_int_equal(uv_timer_start(keep, on_keep, 10, 10), 0);
    for (int i = 0; i < 10; i++)
        put(c, "s", i);
    assert_int_equal(commit_cut(c, 0), STORE_OK);
    store_msg m;
    assert_int_equal(ops()->take(b, "s", 1, &m), STORE_E_AGAIN);
    assert_int_equal(commit_on(c, b), STORE_OK);
    assert_int_equal(ops()->take(b, "s", 1, &m), STORE_E_EMPTY); /* dry until woken */
    assert_true(wait_until(c, gave_up, c->s));       /* the first node heard the wish */
    assert_int_equal(ops()->depth(c->s, "s", 1), 5);
    assert_int_equal(commit_cut(c, 0), STORE_OK);    /* the release, and its notification */
    /* Each further claim of b says it wants more, so a may give up more: take on both
     * until all ten were taken. */
    unsigned char seen[10] = { 0 };
    int on[2] = { 0, 0 };
    long long end = tl_now_ms() + 10000;
    while (on[0] + on[1] < 10 && tl_now_ms() < end) {
        uv_run(&c->loop, UV_RUN_NOWAIT);
        for (int side = 0; side < 2; side++) {
            store *n = side ? b : c->s;
            store_err rc = ops()->take(n, "s", 1, &m);
            if (rc == STORE_E_AGAIN)
                assert_int_equal(commit_on(c, n), STORE_OK);
            if (rc != STORE_OK)
                continue;
            seen[atoi(m.body)]++;
            assert_int_equal(ops()->ack(n, m.id), STORE_OK);
            on[side]++;
        }
        /* What a store puts in its batch by itself (a release) goes with a commit, as the
         * broker's commits would carry it. */
        assert_int_equal(commit_on(c, c->s), STORE_OK);
        assert_int_equal(commit_on(c, b), STORE_OK);
    }
    assert_int_equal(on[0] + on[1], 10);
    assert_true(on[1] >= 5); /* half of what a held, at least */
    assert_true(on[0] >= 1);
    assert_int_equal(commit_on(c, b), STORE_OK);
    assert_int_equal(commit_on(c, c->s), STORE_OK);
    for (int i = 0; i < 10; i++)
        assert_int_equal(seen[i], 1);
    ops()->close(b);
}

/* ---- topics across nodes (store_postgres_publish, store_postgres_topics) ---- */

typedef struct heard {
    int n;
    int order_ok;
    int last;
    size_t big; /* the length of the large body heard */
} heard;

static void on_topic(void *arg, const store_postgres_topic *m)
{
    heard *h = arg;
    char num[16] = "";
    memcpy(num, m->body, m->body_len < sizeof num - 1 ? m->body_len : sizeof num - 1);
    int k = atoi(num); /* the body is not NUL-terminated */
    if (k != h->last + 1 || m->dest_len != 8 || memcmp(m->dest, "/topic/t", 8) != 0 ||
        m->headers_len != 4 || memcmp(m->headers, "h\0v\0", 4) != 0 ||
        m->expires != (uint64_t)k)
        h->order_ok = 0;
    if (m->body_len > 8000)
        h->big = m->body_len;
    h->last = k;
    h->n++;
}

static void publish(store *s, int k, size_t len)
{
    static char body[20000];
    snprintf(body, sizeof body, "%d", k);
    size_t n = strlen(body);
    if (len > n)
        memset(body + n + 1, 'x', len - n - 1); /* "k\0xxx..." */
    store_postgres_topic m = { "/topic/t", 8, "h\0v\0", 4, body, len > n ? len : n,
                               (uint64_t)k };
    assert_int_equal(store_postgres_publish(s, &m), STORE_OK);
}

/* Node a publishes 200 topic messages (one of 20,000 bytes: by reference) in one commit,
 * one round trip; node b hears each once, in order, a none of its own. A row deleted
 * before b reads it is counted lost, and what came after it still arrives in order. */
static void test_topics(void **state)
{
    ctx *c = *state;
    store *b = NULL;
    char why[256];
    assert_int_equal(open_store(c, &b, why, sizeof why), STORE_OK);
    assert_int_equal(uv_timer_init(&c->loop, &c->keep), 0);
    assert_int_equal(uv_timer_start(&c->keep, on_keep, 10, 10), 0);
    heard ha = { 0, 1, 0, 0 }, hb = { 0, 1, 0, 0 };
    store_postgres_topics(c->s, on_topic, &ha);
    store_postgres_topics(b, on_topic, &hb);
    store_postgres_counts before, after;
    store_postgres_stats(c->s, &before);
    for (int k = 1; k <= 200; k++)
        publish(c->s, k, k == 100 ? 20000 : 0);
    assert_int_equal(commit_on(c, c->s), STORE_OK);
    store_postgres_stats(c->s, &after);
    assert_int_equal(after.round_trips - before.round_trips, 1);
    long long end = tl_now_ms() + 10000;
    while (hb.n < 200 && tl_now_ms() < end) {
        uv_run(&c->loop, UV_RUN_NOWAIT);
        assert_int_equal(commit_on(c, b), STORE_OK); /* carries b's read of the row */
    }
    assert_int_equal(hb.n, 200);
    assert_true(hb.order_ok);
    assert_int_equal(hb.big, 20000);
    assert_int_equal(ha.n, 0);
    /* The row of a large message gone before b reads it: lost, counted; the next one
     * still comes. */
    publish(c->s, 201, 20000);
    publish(c->s, 202, 0);
    assert_int_equal(commit_on(c, c->s), STORE_OK);
    assert_int_equal(pgtest_exec(&pg, c->db, "DELETE FROM stompd_topic"), 0);
    end = tl_now_ms() + 10000;
    store_postgres_stats(b, &after);
    while ((hb.n < 201 || after.topics_lost < 1) && tl_now_ms() < end) {
        uv_run(&c->loop, UV_RUN_NOWAIT);
        assert_int_equal(commit_on(c, b), STORE_OK);
        store_postgres_stats(b, &after);
    }
    assert_int_equal(after.topics_lost, 1);
    assert_int_equal(after.topics_in, 201);
    assert_int_equal(hb.n, 201);
    assert_int_equal(hb.last, 202);
    ops()->close(b);
}

/* ---- through a broker ---- */

/* SENDs with receipts in windows, the store's connection cut twice while receipts are
 * held, then a consumer: every receipted message arrives exactly once, before the marker
 * sent last. */
static void test_broker_cut(void **state)
{
    ctx *c = *state;
    enum { N = 3000, WINDOW = 100 };
    ops()->close(c->s);
    c->s = NULL;
    broker_options o;
    broker_options_init(&o);
    o.store = store_postgres_backend();
    o.store_path = c->conninfo;
    tb *t = tb_start(&o);
    assert_non_null(t);
    tc *p = tc_open(tb_port(t), "");
    assert_non_null(p);
    tframe f;
    for (int w = 0; w < N / WINDOW; w++) {
        for (int i = 0; i < WINDOW; i++)
            TC_SENDF(p, "SEND\ndestination:/queue/cut\nreceipt:%d\n\n%d", w * WINDOW + i,
                     w * WINDOW + i);
        if (w == 7 || w == 19)
            assert_true(pgtest_terminate(&pg, c->db, "stompd") >= 0);
        for (int i = 0; i < WINDOW; i++) {
            assert_int_equal(tc_expect(p, "RECEIPT", &f), 0);
            tf_free(&f);
        }
    }
    TC_SENDF(p, "SEND\ndestination:/queue/cut\nreceipt:end\n\nend");
    assert_int_equal(tc_expect(p, "RECEIPT", &f), 0);
    tf_free(&f);
    tc *s = tc_open(tb_port(t), "");
    assert_non_null(s);
    TC_SENDF(s, "SUBSCRIBE\nid:1\ndestination:/queue/cut\nack:auto\n\n");
    unsigned char seen[N] = { 0 };
    int got = 0, dups = 0;
    for (;;) {
        assert_int_equal(tc_expect(s, "MESSAGE", &f), 0);
        int end = strcmp(f.body, "end") == 0;
        int k = atoi(f.body);
        if (!end && k >= 0 && k < N && seen[k]++)
            dups++;
        else if (!end)
            got++;
        tf_free(&f);
        if (end)
            break;
        if (got == N / 2)
            assert_true(pgtest_terminate(&pg, c->db, "stompd") >= 0);
    }
    assert_int_equal(got, N);
    assert_int_equal(dups, 0);
    tc_close(p);
    tc_close(s);
    assert_int_equal(tb_stop(t), 0);
}

/* Start stompd with the store spec store: its pid in *pid and its port (0: it did not
 * start). Its stdout says where it listens. */
static int spawn_stompd(const char *store_spec, pid_t *pid)
{
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    char bin[256];
    snprintf(bin, sizeof bin, "%s/stompd", build);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    *pid = fork();
    assert_true(*pid >= 0);
    if (*pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execl(bin, bin, "--host", "127.0.0.1", "--port", "0", "--no-ws", "--store", store_spec,
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *out = fdopen(fds[0], "r");
    char line[512];
    int port = 0;
    while (!port && fgets(line, sizeof line, out)) {
        const char *at = strstr(line, "listening on 127.0.0.1:");
        if (at)
            port = atoi(at + strlen("listening on 127.0.0.1:"));
    }
    fclose(out);
    return port;
}

/* Does process pid have a libpq mapped? */
static int maps_libpq(pid_t pid)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, "/libpq.so") != NULL;
    fclose(f);
    return found;
}

static void stop_stompd(pid_t pid)
{
    int status;
    kill(pid, SIGTERM);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_stompd_loads_libpq(void **state)
{
    ctx *c = *state;
    ops()->close(c->s);
    c->s = NULL;
    pid_t mem;
    assert_true(spawn_stompd("memory", &mem) > 0);
    assert_false(maps_libpq(mem)); /* not for another store */
    stop_stompd(mem);
    char spec[300];
    snprintf(spec, sizeof spec, "postgres:%s", c->conninfo);
    pid_t pid;
    int port = spawn_stompd(spec, &pid);
    assert_true(port > 0);
    assert_true(maps_libpq(pid));
    tc *p = tc_open(port, "");
    assert_non_null(p);
    tframe f;
    TC_SENDF(p, "SEND\ndestination:/queue/d\nreceipt:r\n\nkept");
    assert_int_equal(tc_expect(p, "RECEIPT", &f), 0);
    tf_free(&f);
    TC_SENDF(p, "SUBSCRIBE\nid:1\ndestination:/queue/d\n\n");
    assert_int_equal(tc_expect(p, "MESSAGE", &f), 0);
    assert_string_equal(f.body, "kept");
    tf_free(&f);
    tc_close(p);
    stop_stompd(pid);
}

int main(void)
{
    if (pgtest_start(&pg) != 0) {
        fprintf(stderr, "test_postgres: cannot start a private PostgreSQL: %s\n", pg.err);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cut_mid_flow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_jit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_index_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_topics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stompd_loads_libpq, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("postgres store", tests, NULL, NULL);
    pgtest_stop(&pg);
    return failed ? 1 : 0;
}
