/* test_sqlite.c: what only the SQLite backend has (the shared contract runs on it from
 * test_store_contract.c): the semantics again through its own entry points on a real file,
 * reopen, crash images, the delivery bound, locking, schema versions, migration from a
 * golden version-1 file, golden version-2 files (tests/store/golden_v2.db and
 * tests/store/golden/) and a version-3 one, paging, commits in flight, failed commits; and for
 * version 7 priority bands and the schedule beyond a window, expiry and browsing over a
 * backlog in the file (bounded memory), and a crash with priorities. Each test works in its
 * own temporary directory and removes it.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store.h"
#include "store_contract.h"
#include "store_sqlite.h"

typedef struct fx {
    uv_loop_t loop;
    char dir[64];
    char path[96];
    const store_ops *ops;
    store *s;
} fx;

typedef struct waiter {
    int done;
    store_err status;
} waiter;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/stompd-sq-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/store.db", f->dir);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->ops = store_sqlite_backend();
    *state = f;
    return 0;
}

/* Remove dir and the files in it (the database, its WAL and lock files). */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[400];
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->s)
        f->ops->close(f->s);
    remove_dir(f->dir);
    int rc = uv_loop_close(&f->loop);
    free(f);
    assert_int_equal(rc, 0);
    return 0;
}

static store *open_store(fx *f, int sync_full)
{
    store_options o = {.loop = &f->loop, .path = f->path, .sync_full = sync_full};
    char why[256];
    store *s = NULL;
    store_err err = store_sqlite_open(&o, &s, why, sizeof why);
    if (err != STORE_OK)
        fail_msg("open: %s: %s", store_strerror(err), why);
    return s;
}

static void reopen(fx *f)
{
    f->ops->close(f->s);
    f->s = open_store(f, 0);
}

static void on_commit(void *arg, store_err status)
{
    waiter *w = arg;
    w->done++;
    w->status = status;
}

/* Commit and run the loop until it completed. STORE_OK or the failure reported. */
static store_err commit_wait(fx *f)
{
    waiter w = {0};
    store_err err = f->ops->commit(f->s, on_commit, &w);
    if (err == STORE_DONE)
        return STORE_OK;
    if (err != STORE_OK)
        return err;
    while (!w.done)
        assert_int_equal(uv_run(&f->loop, UV_RUN_ONCE) >= 0, 1);
    assert_int_equal(w.done, 1);
    return w.status;
}

static uint64_t put(fx *f, const char *q, const char *body)
{
    uint64_t id = 0;
    assert_int_equal(f->ops->enqueue(f->s, q, strlen(q), "h", 1, body, strlen(body), &id),
                     STORE_OK);
    return id;
}

/* Take from q and check the body; returns the id. */
static uint64_t take_expect(fx *f, const char *q, const char *body, uint32_t redeliveries)
{
    store_msg m;
    assert_int_equal(f->ops->take(f->s, q, strlen(q), &m), STORE_OK);
    assert_int_equal(m.body_len, strlen(body));
    assert_memory_equal(m.body, body, m.body_len);
    assert_int_equal(m.queue_len, strlen(q));
    assert_memory_equal(m.queue, q, m.queue_len);
    assert_int_equal(m.redeliveries, redeliveries);
    return m.id;
}

static void expect_empty(fx *f, const char *q)
{
    store_msg m;
    assert_int_equal(f->ops->take(f->s, q, strlen(q), &m), STORE_E_EMPTY);
}

static size_t depth(fx *f, const char *q)
{
    return f->ops->depth(f->s, q, strlen(q));
}

/* q holds count messages of bytes bytes (header blocks and bodies). */
static void size_is(fx *f, const char *q, uint64_t count, uint64_t bytes)
{
    uint64_t n, b;
    f->ops->queue_size(f->s, q, strlen(q), store_hash_name(q, strlen(q)), &n, &b);
    assert_int_equal(n, count);
    assert_int_equal(b, bytes);
}

/* ---- contract semantics ---- */

static void test_enqueue_take_ack(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 0);
    assert_string_equal(f->ops->name, "sqlite");
    assert_int_equal(f->ops->version, STORE_OPS_VERSION);
    uint64_t id = 0;
    assert_int_equal(f->ops->enqueue(f->s, "", 0, "h", 1, "b", 1, &id), STORE_E_INVALID);
    /* More than a row can hold is refused up front (the data is not read). */
    assert_int_equal(f->ops->enqueue(f->s, "q", 1, "h", 1, "b", (size_t)2000000000, &id),
                     STORE_E_INVALID);
    assert_int_equal(f->ops->commit(f->s, on_commit, NULL), STORE_DONE);

    uint64_t a = put(f, "/queue/a", "one");
    assert_true(a > 0);
    expect_empty(f, "/queue/a"); /* pending */
    assert_int_equal(depth(f, "/queue/a"), 0);
    assert_int_equal(commit_wait(f), STORE_OK);
    assert_int_equal(depth(f, "/queue/a"), 1);
    assert_int_equal(depth(f, "/queue/none"), 0);
    expect_empty(f, "/queue/none");

    store_msg m;
    assert_int_equal(f->ops->take(f->s, "/queue/a", 8, &m), STORE_OK);
    assert_int_equal(m.id, a);
    assert_int_equal(m.headers_len, 1);
    assert_memory_equal(m.headers, "h", 1);
    assert_int_equal(m.redeliveries, 0);
    assert_int_equal(depth(f, "/queue/a"), 0);
    assert_int_equal(f->ops->ack(f->s, a + 100), STORE_E_NOTFOUND);
    assert_int_equal(f->ops->requeue(f->s, a + 100), STORE_E_NOTFOUND);
    assert_int_equal(f->ops->ack(f->s, a), STORE_OK);
    assert_int_equal(f->ops->ack(f->s, a), STORE_E_NOTFOUND);
    assert_int_equal(commit_wait(f), STORE_OK);
    expect_empty(f, "/queue/a");

    /* A ready (not taken) or pending message cannot be acked. */
    uint64_t b = put(f, "/queue/a", "two");
    assert_int_equal(f->ops->ack(f->s, b), STORE_E_NOTFOUND);
    assert_int_equal(commit_wait(f), STORE_OK);
    assert_int_equal(f->ops->ack(f->s, b), STORE_E_NOTFOUND);
    assert_int_equal(f->ops->requeue(f->s, b), STORE_E_NOTFOUND);
    assert_true(b > a);
}

static void test_fifo_per_queue(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 0);
    char body[32];
    for (int i = 0; i < 50; i++) {
        snprintf(body, sizeof body, "a%d", i);
        put(f, "qa", body);
        snprintf(body, sizeof body, "b%d", i);
        put(f, "qb", body);
        if (i % 7 == 0)
            assert_int_equal(commit_wait(f), STORE_OK);
    }
    assert_int_equal(commit_wait(f), STORE_OK);
    assert_int_equal(depth(f, "qa"), 50);
    for (int i = 0; i < 50; i++) {
        snprintf(body, sizeof body, "b%d", i);
        assert_int_equal(f->ops->ack(f->s, take_expect(f, "qb", body, 0)), STORE_OK);
        snprintf(body, sizeof body, "a%d", i);
        assert_int_equal(f->ops->ack(f->s, take_expect(f, "qa", body, 0)), STORE_OK);
    }
    expect_empty(f, "qa");
    expect_empty(f, "qb");
    assert_int_equal(commit_wait(f), STORE_OK);
}

static void test_requeue_to_head(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 0);
    put(f, "q", "m1");
    put(f, "q", "m2");
    put(f, "q", "m3");
    put(f, "q", "m4");
    assert_int_equal(commit_wait(f), STORE_OK);
    uint64_t i1 = take_expect(f, "q", "m1", 0);
    uint64_t i2 = take_expect(f, "q", "m2", 0);
    assert_int_equal(depth(f, "q"), 2);
    /* Newest first keeps the order; ready again at once, before any commit. */
    assert_int_equal(f->ops->requeue(f->s, i2), STORE_OK);
    assert_int_equal(f->ops->requeue(f->s, i1), STORE_OK);
    assert_int_equal(f->ops->requeue(f->s, i1), STORE_E_NOTFOUND);
    assert_int_equal(depth(f, "q"), 4);
    i1 = take_expect(f, "q", "m1", 1);
    assert_int_equal(f->ops->requeue(f->s, i1), STORE_OK);
    take_expect(f, "q", "m1", 2);
    take_expect(f, "q", "m2", 1);
    take_expect(f, "q", "m3", 0);
    take_expect(f, "q", "m4", 0);
    expect_empty(f, "q");
    assert_int_equal(commit_wait(f), STORE_OK);
}

static void test_batch_invisible_until_complete(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 1);
    put(f, "q", "x");
    put(f, "q", "y");
    waiter w = {0};
    assert_int_equal(f->ops->commit(f->s, on_commit, &w), STORE_OK);
    /* Never inside the call, and nothing visible until the callback ran. */
    assert_int_equal(w.done, 0);
    expect_empty(f, "q");
    assert_int_equal(depth(f, "q"), 0);
    while (!w.done)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(w.status, STORE_OK);
    assert_int_equal(depth(f, "q"), 2);
    take_expect(f, "q", "x", 0);
    take_expect(f, "q", "y", 0);
}

static void test_commit_in_flight(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 1);
    put(f, "q", "a");
    assert_int_equal(commit_wait(f), STORE_OK);
    uint64_t ia = take_expect(f, "q", "a", 0);

    put(f, "q", "b");
    waiter w1 = {0}, w2 = {0};
    assert_int_equal(f->ops->commit(f->s, on_commit, &w1), STORE_OK);
    /* Writes while the first batch is in flight go into the next one. */
    put(f, "q", "c");
    assert_int_equal(f->ops->ack(f->s, ia), STORE_OK);
    assert_int_equal(f->ops->commit(f->s, on_commit, &w2), STORE_E_BUSY);
    while (!w1.done)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(w1.status, STORE_OK);
    assert_int_equal(depth(f, "q"), 1);
    uint64_t ib = take_expect(f, "q", "b", 0);
    expect_empty(f, "q"); /* c is still pending */
    assert_int_equal(f->ops->commit(f->s, on_commit, &w2), STORE_OK);
    while (!w2.done)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(w2.status, STORE_OK);
    assert_int_equal(w1.done, 1);
    take_expect(f, "q", "c", 0);
    assert_int_equal(f->ops->commit(f->s, on_commit, NULL), STORE_DONE);

    /* After a restart: a acked, b and c were taken and not acked: ready again, counted. */
    reopen(f);
    assert_int_equal(depth(f, "q"), 2);
    assert_int_equal(take_expect(f, "q", "b", 1), ib);
    take_expect(f, "q", "c", 1);
}

static void test_many_queues(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 0);
    char name[32], body[32];
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 1000; i++) {
            snprintf(name, sizeof name, "/queue/%d", i);
            snprintf(body, sizeof body, "%d-%d", i, round);
            put(f, name, body);
        }
    assert_int_equal(commit_wait(f), STORE_OK);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < 1000; i++) {
            snprintf(name, sizeof name, "/queue/%d", i);
            assert_int_equal(depth(f, name), 3);
            for (int round = 0; round < 3; round++) {
                snprintf(body, sizeof body, "%d-%d", i, round);
                /* After the restart: back in their order, with their count (requeued
                 * once, then taken at the close). */
                uint64_t id = take_expect(f, name, body, pass == 0 ? 0 : 2);
                if (pass == 0)
                    assert_int_equal(f->ops->requeue(f->s, id), STORE_OK);
                else
                    assert_int_equal(f->ops->ack(f->s, id), STORE_OK);
                if (pass == 0) /* the requeued one is at the head again */
                    take_expect(f, name, body, 1);
            }
        }
        assert_int_equal(commit_wait(f), STORE_OK);
        if (pass == 0) { /* all taken, none acked: a restart brings all back */
            reopen(f);
        }
    }
    snprintf(name, sizeof name, "/queue/%d", 999);
    expect_empty(f, name);
    reopen(f);
    expect_empty(f, name);
    assert_int_equal(depth(f, name), 0);
}

static void test_big_binary_bodies(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 0);
    size_t n = 1u << 20;
    char *body = malloc(n);
    assert_non_null(body);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)(i * 7 + (i >> 9));
    body[0] = body[n / 2] = body[n - 1] = '\0';
    char hdr[512];
    for (int i = 0; i < 512; i++)
        hdr[i] = (char)(i & 0xff); /* every byte value, NULs included */
    uint64_t ids[3];
    for (int i = 0; i < 3; i++) {
        body[1] = (char)i;
        assert_int_equal(f->ops->enqueue(f->s, "bin", 3, hdr, sizeof hdr, body, n, &ids[i]),
                         STORE_OK);
    }
    /* Empty header block and body are kept empty. */
    uint64_t eid;
    assert_int_equal(f->ops->enqueue(f->s, "bin", 3, "", 0, "", 0, &eid), STORE_OK);
    assert_int_equal(commit_wait(f), STORE_OK);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < 3; i++) {
            store_msg m;
            assert_int_equal(f->ops->take(f->s, "bin", 3, &m), STORE_OK);
            assert_int_equal(m.id, ids[i]);
            body[1] = (char)i;
            assert_int_equal(m.body_len, n);
            assert_memory_equal(m.body, body, n);
            assert_int_equal(m.headers_len, sizeof hdr);
            assert_memory_equal(m.headers, hdr, sizeof hdr);
        }
        store_msg m;
        assert_int_equal(f->ops->take(f->s, "bin", 3, &m), STORE_OK);
        assert_int_equal(m.id, eid);
        assert_int_equal(m.headers_len, 0);
        assert_int_equal(m.body_len, 0);
        reopen(f); /* from the file this time */
    }
    free(body);
}

static void test_ids_unique_across_reopen(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 0);
    uint64_t last = 0;
    for (int round = 0; round < 4; round++) {
        uint64_t a = put(f, "q", "x");
        uint64_t b = put(f, "other", "y");
        assert_true(a > last);
        assert_true(b > a);
        last = b;
        assert_int_equal(commit_wait(f), STORE_OK);
        /* Everything acked: the file holds no message, ids must still not come back. */
        assert_int_equal(f->ops->ack(f->s, take_expect(f, "q", "x", 0)), STORE_OK);
        assert_int_equal(f->ops->ack(f->s, take_expect(f, "other", "y", 0)), STORE_OK);
        assert_int_equal(commit_wait(f), STORE_OK);
        if (round == 2) {
            /* An uncommitted id is not durable either way; it is never reused in this run. */
            last = put(f, "q", "lost");
        }
        reopen(f);
        expect_empty(f, "q");
    }
}

/* ---- persistence ---- */

static void test_reopen_restores_order(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 1);
    char body[16];
    for (int i = 0; i < 10; i++) {
        snprintf(body, sizeof body, "m%d", i);
        put(f, "q", body);
    }
    put(f, "r", "r0");
    assert_int_equal(commit_wait(f), STORE_OK);
    uint64_t i0 = take_expect(f, "q", "m0", 0);
    uint64_t i1 = take_expect(f, "q", "m1", 0);
    uint64_t i2 = take_expect(f, "q", "m2", 0);
    take_expect(f, "q", "m3", 0); /* taken, never acked */
    assert_int_equal(f->ops->ack(f->s, i0), STORE_OK);
    assert_int_equal(f->ops->requeue(f->s, i2), STORE_OK);
    assert_int_equal(f->ops->requeue(f->s, i1), STORE_OK);
    i1 = take_expect(f, "q", "m1", 1);
    assert_int_equal(f->ops->requeue(f->s, i1), STORE_OK);
    put(f, "q", "uncommitted");
    assert_int_equal(commit_wait(f), STORE_OK);
    put(f, "q", "never committed");

    reopen(f);
    assert_int_equal(depth(f, "q"), 10);
    assert_int_equal(depth(f, "r"), 1);
    take_expect(f, "q", "m1", 2);
    take_expect(f, "q", "m2", 1);
    take_expect(f, "q", "m3", 1); /* taken, not acked at the close: counted as delivered */
    for (int i = 4; i < 10; i++) {
        snprintf(body, sizeof body, "m%d", i);
        take_expect(f, "q", body, 0);
    }
    take_expect(f, "q", "uncommitted", 0);
    expect_empty(f, "q");
    take_expect(f, "r", "r0", 0);
}

static void test_second_open_fails(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 0);
    put(f, "q", "a");
    assert_int_equal(commit_wait(f), STORE_OK);
    store_options o = {.loop = &f->loop, .path = f->path, .sync_full = 0};
    store *s2 = NULL;
    char why[256];
    assert_int_equal(store_sqlite_open(&o, &s2, why, sizeof why), STORE_E_IO);
    assert_null(s2);
    assert_non_null(strstr(why, "in use"));
    assert_int_equal(f->ops->open(&o, &s2), STORE_E_IO);
    /* The first store is unharmed. */
    put(f, "q", "b");
    assert_int_equal(commit_wait(f), STORE_OK);
    take_expect(f, "q", "a", 0);
    take_expect(f, "q", "b", 0);
    /* Bad arguments. */
    store_options bad = {.loop = &f->loop, .path = NULL};
    assert_int_equal(store_sqlite_open(&bad, &s2, why, sizeof why), STORE_E_INVALID);
}

static void test_future_version_refused(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 0);
    put(f, "q", "a");
    assert_int_equal(commit_wait(f), STORE_OK);
    f->ops->close(f->s);
    f->s = NULL;

    /* An empty file got the current schema: version 5, WAL mode. */
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 5);
    assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);

    store_options o = {.loop = &f->loop, .path = f->path, .sync_full = 0};
    store *s = NULL;
    char why[256];
    assert_int_equal(store_sqlite_open(&o, &s, why, sizeof why), STORE_E_IO);
    assert_non_null(strstr(why, "newer"));

    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 5", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    f->s = open_store(f, 0);
    take_expect(f, "q", "a", 0);
}

static void test_foreign_files_refused(void **state)
{
    fx *f = *state;
    store_options o = {.loop = &f->loop, .path = f->path, .sync_full = 0};
    store *s = NULL;
    char why[256];

    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    for (int i = 0; i < 4096; i++)
        fputc(i * 31 & 0xff, fp);
    fclose(fp);
    assert_int_equal(store_sqlite_open(&o, &s, why, sizeof why), STORE_E_IO);
    assert_true(why[0] != '\0');
    assert_null(s);
    unlink(f->path);

    /* Another application's database is not touched. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    assert_int_equal(store_sqlite_open(&o, &s, why, sizeof why), STORE_E_IO);
    assert_non_null(strstr(why, "not a stompd store"));
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "delete"); /* untouched */
    assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* ---- paging ---- */

static void put_n(fx *f, const char *q, int from, int to)
{
    char body[32];
    for (int i = from; i < to; i++) {
        snprintf(body, sizeof body, "n%d", i);
        put(f, q, body);
    }
}

static void take_n(fx *f, const char *q, int from, int to)
{
    char body[32];
    for (int i = from; i < to; i++) {
        snprintf(body, sizeof body, "n%d", i);
        assert_int_equal(f->ops->ack(f->s, take_expect(f, q, body, 0)), STORE_OK);
    }
}

static void test_paging_fifo(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 0);
    const int W = STORE_SQLITE_WINDOW;
    int n = 3 * W + 17;
    put_n(f, "q", 0, n);
    assert_int_equal(commit_wait(f), STORE_OK);
    assert_int_equal(depth(f, "q"), (size_t)n);
    /* Take past the window while more arrive: they must queue behind the file's ones. */
    take_n(f, "q", 0, W + 5);
    put_n(f, "q", n, n + 10);
    assert_int_equal(commit_wait(f), STORE_OK);
    assert_int_equal(depth(f, "q"), (size_t)(n + 10 - W - 5));
    take_n(f, "q", W + 5, 2 * W);
    assert_int_equal(commit_wait(f), STORE_OK);

    /* A restart keeps only the counts in memory; the rest comes page by page. */
    reopen(f);
    assert_int_equal(depth(f, "q"), (size_t)(n + 10 - 2 * W));
    take_n(f, "q", 2 * W, n + 10);
    expect_empty(f, "q");
    assert_int_equal(depth(f, "q"), 0);
    assert_int_equal(commit_wait(f), STORE_OK);
}

static void test_paging_requeue_and_reopen(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 0);
    const int W = STORE_SQLITE_WINDOW;
    int n = 2 * W + 3;
    put_n(f, "q", 0, n);
    assert_int_equal(commit_wait(f), STORE_OK);
    /* Requeue more than a window's worth: they all go in front of the file's messages. */
    uint64_t *ids = malloc(sizeof *ids * (size_t)(W + 10));
    assert_non_null(ids);
    char body[32];
    for (int i = 0; i < W + 10; i++) {
        snprintf(body, sizeof body, "n%d", i);
        ids[i] = take_expect(f, "q", body, 0);
    }
    for (int i = W + 9; i >= 0; i--)
        assert_int_equal(f->ops->requeue(f->s, ids[i]), STORE_OK);
    assert_int_equal(depth(f, "q"), (size_t)n);
    assert_int_equal(commit_wait(f), STORE_OK);
    free(ids);
    reopen(f);
    assert_int_equal(depth(f, "q"), (size_t)n);
    for (int i = 0; i < n; i++) {
        snprintf(body, sizeof body, "n%d", i);
        assert_int_equal(f->ops->ack(f->s, take_expect(f, "q", body, i < W + 10 ? 1 : 0)),
                         STORE_OK);
    }
    expect_empty(f, "q");
    assert_int_equal(commit_wait(f), STORE_OK);
    reopen(f);
    expect_empty(f, "q");
}

static void test_paging_while_commit_in_flight(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 1);
    const int W = STORE_SQLITE_WINDOW;
    int n = 3 * W;
    put_n(f, "q", 0, n);
    assert_int_equal(commit_wait(f), STORE_OK);
    /* The next batch is in flight (and may even be in the file already) while the
     * consumer pages through the old ones: none of the new ones may show up early. */
    put_n(f, "q", n, n + 2 * W);
    waiter w = {0};
    assert_int_equal(f->ops->commit(f->s, on_commit, &w), STORE_OK);
    usleep(20000);
    take_n(f, "q", 0, n);
    if (!w.done)
        expect_empty(f, "q");
    while (!w.done)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(w.status, STORE_OK);
    assert_int_equal(depth(f, "q"), (size_t)(2 * W));
    take_n(f, "q", n, n + 2 * W);
    expect_empty(f, "q");
    assert_int_equal(commit_wait(f), STORE_OK);
}

/* ---- failures ---- */

static void test_failed_commit(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 0);
    put(f, "q", "kept");
    assert_int_equal(commit_wait(f), STORE_OK);
    assert_string_equal(f->ops->last_error(f->s), "");

    /* Another connection holds the write lock: the commit gives up after its busy
     * timeout, off the loop, and reports the failure. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    put(f, "q", "lost");
    put(f, "fresh", "lost too"); /* a queue born in the failing batch */
    waiter w = {0};
    assert_int_equal(f->ops->commit(f->s, on_commit, &w), STORE_OK);
    /* The next batch writes to that queue while the first is failing. */
    put(f, "fresh", "next batch");
    while (!w.done)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(w.status, STORE_E_IO);
    assert_true(f->ops->last_error(f->s)[0] != '\0');
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);

    /* The batch's messages are gone; the store keeps working. */
    assert_int_equal(depth(f, "q"), 1);
    assert_int_equal(depth(f, "fresh"), 0);
    take_expect(f, "q", "kept", 0);
    expect_empty(f, "q");
    expect_empty(f, "fresh");
    put(f, "fresh", "after");
    assert_int_equal(commit_wait(f), STORE_OK);
    reopen(f);
    size_is(f, "q", 1, 1 + 4); /* counted from the rows: the run had a failed commit */
    size_is(f, "fresh", 2, 1 + 10 + 1 + 5);
    take_expect(f, "q", "kept", 1);
    take_expect(f, "fresh", "next batch", 0);
    take_expect(f, "fresh", "after", 0);
    expect_empty(f, "fresh");
}

static void test_queue_dropped_and_recreated(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 0);
    for (int i = 0; i < 3; i++) {
        put(f, "q", "a");
        assert_int_equal(commit_wait(f), STORE_OK);
        assert_int_equal(f->ops->ack(f->s, take_expect(f, "q", "a", 0)), STORE_OK);
        /* The drop and the new queue of the same name land in one batch. */
        put(f, "q", "b");
        assert_int_equal(commit_wait(f), STORE_OK);
        reopen(f);
        assert_int_equal(depth(f, "q"), 1);
        assert_int_equal(f->ops->ack(f->s, take_expect(f, "q", "b", 0)), STORE_OK);
        assert_int_equal(commit_wait(f), STORE_OK);
        reopen(f);
        assert_int_equal(depth(f, "q"), 0);
    }
}

/* ---- redelivery after a crash ---- */

/* Copy path (and its -wal) to dst while the store is open and no commit is in flight: what
 * the disk holds if the process is killed now. */
static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    if (!in)
        return; /* no WAL file: nothing to copy */
    FILE *out = fopen(to, "wb");
    assert_non_null(out);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    assert_int_equal(fclose(in), 0);
    assert_int_equal(fclose(out), 0);
}

static void crash_image(fx *f, const char *name)
{
    char from[160], to[160];
    static const char *const suffix[] = { "", "-wal" };
    for (int i = 0; i < 2; i++) {
        snprintf(from, sizeof from, "%s%s", f->path, suffix[i]);
        snprintf(to, sizeof to, "%s/%s%s", f->dir, name, suffix[i]);
        copy_file(from, to);
    }
}

static void open_image(fx *f, const char *name)
{
    f->ops->close(f->s);
    snprintf(f->path, sizeof f->path, "%s/%s", f->dir, name);
    f->s = open_store(f, 0);
}

/* Killed with messages handed out: they come back counted; so do those within the
 * look-ahead of the delivery position (possibly handed out); those beyond do not. A clean
 * close counts only what was really handed out. */
static void test_crash_counts_possibly_delivered(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 0);
    const int L = STORE_SQLITE_LOOKAHEAD;
    uint64_t first = put(f, "q", "n0");
    put_n(f, "q", 1, L + 100);
    put(f, "idle", "never taken");
    assert_int_equal(commit_wait(f), STORE_OK);
    uint64_t i0 = take_expect(f, "q", "n0", 0);
    take_expect(f, "q", "n1", 0);
    assert_int_equal(f->ops->ack(f->s, i0), STORE_OK);
    assert_int_equal(commit_wait(f), STORE_OK);
    crash_image(f, "crash.db");
    open_image(f, "crash.db");
    /* n1 was handed out; n2.. lie within the bound recorded ahead of the takes. */
    char body[32];
    for (int i = 1; i < L + 100; i++) {
        if (i == 5) {
            /* A clean restart in between keeps those counts (in memory and in the file). */
            assert_int_equal(commit_wait(f), STORE_OK);
            reopen(f);
        }
        snprintf(body, sizeof body, "n%d", i);
        uint64_t want = (uint64_t)i + first <= first + (uint64_t)L ? 1 : 0;
        store_msg m;
        store_err rc = f->ops->take(f->s, "q", 1, &m);
        if (rc == STORE_E_AGAIN) {
            assert_int_equal(commit_wait(f), STORE_OK);
            rc = f->ops->take(f->s, "q", 1, &m);
        }
        assert_int_equal(rc, STORE_OK);
        assert_int_equal(m.body_len, strlen(body));
        assert_memory_equal(m.body, body, m.body_len);
        assert_int_equal(m.redeliveries, want);
        assert_int_equal(f->ops->ack(f->s, m.id), STORE_OK);
    }
    expect_empty(f, "q");
    /* Never taken from, but a new queue's bound starts LOOKAHEAD ids ahead: counted. */
    take_expect(f, "idle", "never taken", 1);
    assert_int_equal(commit_wait(f), STORE_OK);
    /* That run is closed cleanly: "idle" was taken, nothing else is counted. */
    put(f, "q", "fresh");
    assert_int_equal(commit_wait(f), STORE_OK);
    reopen(f);
    take_expect(f, "idle", "never taken", 2);
    take_expect(f, "q", "fresh", 0);
}

static int64_t bodies(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM body", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return n;
}

/* Shared bodies after a crash: the one all of whose messages were acked is gone with them
 * (same transaction), the one still named stays and is read; a body no row names (as a
 * damaged file might hold) is dropped by the open after the crash. */
static void test_crash_shared_bodies(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 0);
    store_target t[3] = { { "qa", 2, store_hash_name("qa", 2), NULL, 0 },
                          { "qb", 2, store_hash_name("qb", 2), NULL, 0 },
                          { "qc", 2, store_hash_name("qc", 2), NULL, 0 } };
    assert_int_equal(f->ops->enqueue_shared(f->s, t, 3, "", 0, "A", 1), STORE_OK);
    assert_int_equal(f->ops->enqueue_shared(f->s, t, 2, "", 0, "B", 1), STORE_OK);
    assert_int_equal(commit_wait(f), STORE_OK);
    assert_int_equal(bodies(f->path), 2);
    assert_int_equal(f->ops->ack(f->s, take_expect(f, "qa", "A", 0)), STORE_OK);
    assert_int_equal(f->ops->ack(f->s, take_expect(f, "qb", "A", 0)), STORE_OK);
    assert_int_equal(f->ops->ack(f->s, take_expect(f, "qc", "A", 0)), STORE_OK);
    assert_int_equal(f->ops->ack(f->s, take_expect(f, "qa", "B", 0)), STORE_OK);
    assert_int_equal(commit_wait(f), STORE_OK);
    crash_image(f, "crash.db");
    char img[160];
    snprintf(img, sizeof img, "%s/crash.db", f->dir);
    assert_int_equal(bodies(img), 1);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(img, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "INSERT INTO body(id, data) VALUES(999999, x'00')", NULL,
                                  NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    open_image(f, "crash.db");
    assert_int_equal(bodies(img), 1);
    store_msg m;
    store_err rc = f->ops->take(f->s, "qb", 2, &m);
    if (rc == STORE_E_AGAIN) {
        assert_int_equal(commit_wait(f), STORE_OK);
        rc = f->ops->take(f->s, "qb", 2, &m);
    }
    assert_int_equal(rc, STORE_OK);
    assert_int_equal(m.body_len, 1);
    assert_memory_equal(m.body, "B", 1);
    assert_int_equal(f->ops->ack(f->s, m.id), STORE_OK);
    assert_int_equal(commit_wait(f), STORE_OK);
    assert_int_equal(bodies(img), 0);
}

/* Take the next message of q, committing once when the delivery bound asks for it. */
static void take_bound(fx *f, const char *q, store_msg *m)
{
    store_err rc = f->ops->take(f->s, q, strlen(q), m);
    if (rc == STORE_E_AGAIN) {
        assert_int_equal(commit_wait(f), STORE_OK);
        rc = f->ops->take(f->s, q, strlen(q), m);
    }
    assert_int_equal(rc, STORE_OK);
}

/* With sync full the writer gathers the WAL's writes until SQLite syncs it: a commit of
 * more than the gathering holds (5 MiB) is in the file when it completes (a copy taken then
 * has all of it), whatever the piece sizes; two stores open at once each have their own
 * VFS, and closing one leaves the other's working. */
static void test_full_sync_commit_in_file(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 1);
    char other_path[160], why[256];
    snprintf(other_path, sizeof other_path, "%s/other.db", f->dir);
    store_options o = {.loop = &f->loop, .path = other_path, .sync_full = 1};
    store *other = NULL;
    assert_int_equal(store_sqlite_open(&o, &other, why, sizeof why), STORE_OK);
    const size_t n = 1u << 20;
    char *body = malloc(n);
    assert_non_null(body);
    uint64_t id;
    for (int i = 0; i < 5; i++) {
        for (size_t k = 0; k < n; k++)
            body[k] = (char)(k * 13 + (k >> 11) + (size_t)i);
        assert_int_equal(f->ops->enqueue(f->s, "big", 3, "h", 1, body, n, &id), STORE_OK);
    }
    put_n(f, "q", 0, 300);
    assert_int_equal(f->ops->enqueue(other, "o", 1, "h", 1, "x", 1, &id), STORE_OK);
    waiter w = {0};
    assert_int_equal(f->ops->commit(other, on_commit, &w), STORE_OK);
    assert_int_equal(commit_wait(f), STORE_OK);
    while (!w.done)
        assert_int_equal(uv_run(&f->loop, UV_RUN_ONCE) >= 0, 1);
    assert_int_equal(w.status, STORE_OK);
    crash_image(f, "crash.db");
    f->ops->close(other);
    put(f, "q", "after");
    assert_int_equal(commit_wait(f), STORE_OK);
    open_image(f, "crash.db");
    store_msg m;
    for (int i = 0; i < 5; i++) {
        for (size_t k = 0; k < n; k++)
            body[k] = (char)(k * 13 + (k >> 11) + (size_t)i);
        take_bound(f, "big", &m);
        assert_int_equal(m.body_len, n);
        assert_memory_equal(m.body, body, n);
    }
    free(body);
    char want[32];
    for (int i = 0; i < 300; i++) {
        snprintf(want, sizeof want, "n%d", i);
        take_bound(f, "q", &m);
        assert_int_equal(m.body_len, strlen(want));
        assert_memory_equal(m.body, want, m.body_len);
    }
    expect_empty(f, "q"); /* "after" came later than the copy */
}

/* Takes beyond the recorded bound wait for a commit (STORE_E_AGAIN), which records more. */
static void test_take_waits_for_bound(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 0);
    const int L = STORE_SQLITE_LOOKAHEAD;
    int n = L + 10;
    uint64_t first = put(f, "q", "n0");
    put_n(f, "q", 1, n);
    assert_int_equal(commit_wait(f), STORE_OK);
    int agains = 0;
    char body[32];
    for (int i = 0; i < n; i++) {
        store_msg m;
        store_err rc = f->ops->take(f->s, "q", 1, &m);
        if (rc == STORE_E_AGAIN) {
            /* Exactly at the bound a new queue started with. */
            assert_int_equal(first + (uint64_t)i, first + (uint64_t)L + 1);
            agains++;
            expect_empty(f, "other");
            assert_int_equal(f->ops->take(f->s, "q", 1, &m), STORE_E_AGAIN);
            assert_int_equal(commit_wait(f), STORE_OK);
            rc = f->ops->take(f->s, "q", 1, &m);
        }
        assert_int_equal(rc, STORE_OK);
        snprintf(body, sizeof body, "n%d", i);
        assert_memory_equal(m.body, body, m.body_len);
        assert_int_equal(f->ops->ack(f->s, m.id), STORE_OK);
    }
    assert_int_equal(agains, 1);
    assert_int_equal(commit_wait(f), STORE_OK);

    /* With commits between takes (the broker's steady state) the bound stays ahead. */
    put_n(f, "q", 0, 3 * L);
    assert_int_equal(commit_wait(f), STORE_OK);
    for (int i = 0; i < 3 * L; i++) {
        snprintf(body, sizeof body, "n%d", i);
        assert_int_equal(f->ops->ack(f->s, take_expect(f, "q", body, 0)), STORE_OK);
        if (i % 1000 == 999)
            assert_int_equal(commit_wait(f), STORE_OK);
    }
    assert_int_equal(commit_wait(f), STORE_OK);
}

/* A write that fails in the middle of a multi-row INSERT (a row the file already has) fails
 * the whole batch: rows inserted before it, the batch's ack, nothing of it stays. */
static void test_failed_write_keeps_nothing(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 0);
    put(f, "q", "a");
    put(f, "q", "b");
    assert_int_equal(commit_wait(f), STORE_OK);
    uint64_t a = take_expect(f, "q", "a", 0);
    assert_int_equal(commit_wait(f), STORE_OK); /* the delivery bound */
    assert_int_equal(f->ops->ack(f->s, a), STORE_OK);
    char body[32];
    uint64_t first = 0, last = 0;
    for (int i = 0; i < 40; i++) {
        snprintf(body, sizeof body, "lost %d", i);
        last = put(f, "q", body);
        if (!first)
            first = last;
    }
    /* Another connection takes an id of the batch (in a queue nobody has). */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char sql[160];
    snprintf(sql, sizeof sql,
             "INSERT INTO msg(id, queue, ord, redeliveries, headers, body)"
             " VALUES(%llu, 999, 0, 0, x'', x'')", (unsigned long long)(first + 5));
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(commit_wait(f), STORE_E_IO);
    assert_non_null(strstr(f->ops->last_error(f->s), "UNIQUE"));
    assert_int_equal(sqlite3_exec(db, "DELETE FROM msg WHERE queue = 999", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_stmt *st;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM msg WHERE id BETWEEN %llu AND %llu",
             (unsigned long long)first, (unsigned long long)last);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);

    /* The store keeps working; the lost ack leaves "a" in the file (at-least-once). */
    assert_int_equal(depth(f, "q"), 1);
    put(f, "q", "c");
    assert_int_equal(commit_wait(f), STORE_OK);
    reopen(f);
    assert_int_equal(depth(f, "q"), 3);
    take_expect(f, "q", "a", 0);
    take_expect(f, "q", "b", 0);
    take_expect(f, "q", "c", 0);
    expect_empty(f, "q");
}

/* ---- schema migration ---- */

/* A version-1 file exactly as that schema wrote it (the golden image, as SQL). */
static const char golden_v1[] =
    "PRAGMA journal_mode = WAL;"
    "CREATE TABLE queue(id INTEGER PRIMARY KEY, name BLOB NOT NULL UNIQUE);"
    "CREATE TABLE msg(id INTEGER PRIMARY KEY, queue INTEGER NOT NULL, ord INTEGER NOT NULL,"
    " redeliveries INTEGER NOT NULL, headers BLOB NOT NULL, body BLOB NOT NULL);"
    "CREATE INDEX msg_queue_ord ON msg(queue, ord);"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO queue VALUES(1, CAST('/queue/a' AS BLOB)), (2, CAST('/queue/b' AS BLOB));"
    "INSERT INTO msg VALUES(3, 1, 3, 0, CAST('h' AS BLOB) || x'00' || CAST('v' AS BLOB) || x'00',"
    " CAST('a1' AS BLOB));"
    "INSERT INTO msg VALUES(2, 1, 1, 2, x'', CAST('a0' AS BLOB));"
    "INSERT INTO msg VALUES(5, 2, 5, 0, x'', x'00ff00');"
    "INSERT INTO meta VALUES('next_id', 7), ('next_qid', 3);"
    "PRAGMA user_version = 1; PRAGMA application_id = 1398033745;";

static void test_migrate_from_v1(void **state)
{
    fx *f = *state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, golden_v1, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);

    f->s = open_store(f, 0);
    store_msg m;
    /* The migrated queues have no delivery bound yet: the first take records one. */
    assert_int_equal(f->ops->take(f->s, "/queue/a", 8, &m), STORE_E_AGAIN);
    assert_int_equal(commit_wait(f), STORE_OK);
    assert_int_equal(f->ops->take(f->s, "/queue/a", 8, &m), STORE_OK);
    assert_int_equal(m.body_len, 2);
    assert_memory_equal(m.body, "a0", 2); /* ord 1: requeued in front, count kept */
    assert_int_equal(m.redeliveries, 2);
    assert_int_equal(f->ops->ack(f->s, m.id), STORE_OK);
    assert_int_equal(f->ops->take(f->s, "/queue/a", 8, &m), STORE_OK);
    assert_int_equal(m.id, 3);
    assert_int_equal(m.headers_len, 4);
    assert_memory_equal(m.headers, "h\0v\0", 4);
    assert_memory_equal(m.body, "a1", 2);
    assert_int_equal(m.redeliveries, 0);
    assert_int_equal(f->ops->take(f->s, "/queue/b", 8, &m), STORE_E_AGAIN);
    assert_int_equal(commit_wait(f), STORE_OK);
    assert_int_equal(f->ops->take(f->s, "/queue/b", 8, &m), STORE_OK);
    assert_int_equal(m.body_len, 3);
    assert_memory_equal(m.body, "\0\xff\0", 3);
    uint64_t id = 0;
    assert_int_equal(f->ops->enqueue(f->s, "/queue/a", 8, "", 0, "new", 3, &id), STORE_OK);
    assert_int_equal(id, 7); /* ids go on from the old file's counter */
    assert_int_equal(commit_wait(f), STORE_OK);
    f->ops->close(f->s);
    f->s = NULL;

    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 5);
    assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    f->s = open_store(f, 0);
    take_expect(f, "/queue/a", "a1", 1); /* taken at the close */
    take_expect(f, "/queue/a", "new", 0);
}

/* A version-2 file as stompd wrote it (tests/store/golden_v2.db, from the top of the source
 * tree): closed cleanly with /queue/a holding a1 (requeued in front of a0, then taken at the
 * close), a0 (requeued) and a2, /queue/b one binary body, and id 5 used but never committed.
 * Opening it must read all of that back unchanged, whatever the current schema is. */
static void test_open_golden_v2(void **state)
{
    fx *f = *state;
    FILE *in = fopen("tests/store/golden_v2.db", "rb");
    assert_non_null(in);
    FILE *out = fopen(f->path, "wb");
    assert_non_null(out);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    assert_int_equal(fclose(in), 0);
    assert_int_equal(fclose(out), 0);

    f->s = open_store(f, 0);
    assert_int_equal(depth(f, "/queue/a"), 3);
    assert_int_equal(depth(f, "/queue/b"), 1);
    store_msg m;
    assert_int_equal(f->ops->take(f->s, "/queue/a", 8, &m), STORE_OK);
    assert_int_equal(m.id, 2);
    assert_int_equal(m.headers_len, 0);
    assert_memory_equal(m.body, "a1", 2);
    assert_int_equal(m.redeliveries, 2);
    assert_int_equal(f->ops->requeue(f->s, m.id), STORE_OK);
    uint64_t id = take_expect(f, "/queue/a", "a1", 3);
    assert_int_equal(f->ops->ack(f->s, id), STORE_OK);
    assert_int_equal(f->ops->take(f->s, "/queue/a", 8, &m), STORE_OK);
    assert_int_equal(m.id, 1);
    assert_int_equal(m.headers_len, 4);
    assert_memory_equal(m.headers, "h\0v\0", 4);
    assert_memory_equal(m.body, "a0", 2);
    assert_int_equal(m.redeliveries, 1);
    assert_int_equal(f->ops->ack(f->s, m.id), STORE_OK);
    assert_int_equal(f->ops->take(f->s, "/queue/a", 8, &m), STORE_OK);
    assert_int_equal(m.id, 3);
    assert_int_equal(m.headers_len, 4);
    assert_memory_equal(m.headers, "k\0w\0", 4);
    assert_int_equal(m.redeliveries, 0);
    assert_int_equal(f->ops->take(f->s, "/queue/b", 8, &m), STORE_OK);
    assert_int_equal(m.id, 4);
    assert_int_equal(m.body_len, 3);
    assert_memory_equal(m.body, "\0\xff\0", 3);
    assert_int_equal(f->ops->ack(f->s, m.id), STORE_OK);
    id = 0;
    assert_int_equal(f->ops->enqueue(f->s, "/queue/b", 8, "", 0, "new", 3, &id), STORE_OK);
    assert_int_equal(id, 6); /* 5 was used before the close, never stored: not reused */
    assert_int_equal(commit_wait(f), STORE_OK);
    reopen(f);
    take_expect(f, "/queue/a", "a2", 1); /* taken at the close */
    expect_empty(f, "/queue/a");
    take_expect(f, "/queue/b", "new", 0);
    expect_empty(f, "/queue/b");
}


/* ---- version 7: priority, delay and expiry against the file ---- */

static uint64_t put_attrs(fx *f, const char *q, const char *body, size_t len, uint8_t prio,
                          uint64_t not_before, uint64_t expires)
{
    store_attrs a = { prio, not_before, expires };
    uint64_t id = 0;
    assert_int_equal(f->ops->enqueue_attrs(f->s, q, strlen(q), store_hash_name(q, strlen(q)), "h",
                                           1, body, len ? len : strlen(body), &a, &id),
                     STORE_OK);
    return id;
}

/* take_at as the broker makes it (after STORE_E_AGAIN: commit, take again). */
static store_err take_at_rc(fx *f, const char *q, uint64_t now, store_msg *m)
{
    uint64_t h = store_hash_name(q, strlen(q));
    store_err rc = f->ops->take_at(f->s, q, strlen(q), h, now, m);
    if (rc == STORE_E_AGAIN) {
        assert_int_equal(commit_wait(f), STORE_OK);
        rc = f->ops->take_at(f->s, q, strlen(q), h, now, m);
    }
    return rc;
}

/* take_at must give body (compared up to its length) with that count; it is acked. */
static void take_at_ack(fx *f, const char *q, uint64_t now, const char *body, uint32_t red)
{
    store_msg m;
    assert_int_equal(take_at_rc(f, q, now, &m), STORE_OK);
    if (m.body_len < strlen(body) || memcmp(m.body, body, strlen(body)) != 0)
        fail_msg("took %.*s, wanted %s", (int)(m.body_len < 40 ? m.body_len : 40), m.body, body);
    assert_int_equal(m.redeliveries, red);
    assert_int_equal(f->ops->ack(f->s, m.id), STORE_OK);
}

/* Bands of several windows, most of them in the file, and a delayed message in the middle
 * of one: highest band first, each in id order, the delayed one at its id once due. */
static void test_priority_paging(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 0);
    const int W = STORE_SQLITE_WINDOW;
    char body[32];
    for (int i = 0; i < 3 * W; i++) {
        snprintf(body, sizeof body, "n%d", i);
        put_attrs(f, "q", body, 0, 4, 0, 0);
        if (i % 3 == 0) {
            snprintf(body, sizeof body, "h%d", i / 3);
            put_attrs(f, "q", body, 0, 7, 0, 0);
        }
        if (i == 2 * W + 7)
            put_attrs(f, "q", "late", 0, 4, 100, 0);
        if (i % 500 == 499)
            assert_int_equal(commit_wait(f), STORE_OK);
    }
    assert_int_equal(commit_wait(f), STORE_OK);
    assert_int_equal(depth(f, "q"), (size_t)(4 * W + 1));
    for (int i = 0; i < W / 2; i++) {
        snprintf(body, sizeof body, "h%d", i);
        take_at_ack(f, "q", 50, body, 0);
    }
    assert_int_equal(commit_wait(f), STORE_OK);
    reopen(f);
    for (int i = W / 2; i < W; i++) {
        snprintf(body, sizeof body, "h%d", i);
        take_at_ack(f, "q", 50, body, 0);
    }
    for (int i = 0; i < W; i++) {
        snprintf(body, sizeof body, "n%d", i);
        take_at_ack(f, "q", 50, body, 0);
    }
    assert_int_equal(commit_wait(f), STORE_OK);
    for (int i = W; i < 3 * W; i++) {
        snprintf(body, sizeof body, "n%d", i);
        take_at_ack(f, "q", 100, body, 0);
        if (i == 2 * W + 7)
            take_at_ack(f, "q", 100, "late", 0);
    }
    expect_empty(f, "q");
    assert_int_equal(commit_wait(f), STORE_OK);
}

/* Several windows of delayed messages, due in an order unlike their ids: the schedule is
 * read from the file a window at a time, next_due is always the earliest, each comes when
 * due, across a restart. */
static void test_schedule_paging(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 0);
    enum { N = 6 * STORE_SQLITE_WINDOW, BODY = 2048, BOUND = 8 << 20 };
    static char body[BODY];
    memset(body, 'b', sizeof body);
    size_t base = f->ops->resident(f->s);
    for (int i = 0; i < N; i++) {
        int at = (int)(((long)i * 7919) % N); /* a permutation of 0..N-1 */
        int len = snprintf(body, sizeof body, "d%d ", at);
        body[len] = 'b';
        put_attrs(f, "q", body, BODY, 4, 1000 + (uint64_t)at, 0);
        if (i % 500 == 499)
            assert_int_equal(commit_wait(f), STORE_OK);
    }
    assert_int_equal(commit_wait(f), STORE_OK);
    /* Committed in any order of time, they are not all kept in memory. */
    assert_true(f->ops->resident(f->s) < base + BOUND);
    reopen(f);
    const char *q = "q";
    uint64_t h = store_hash_name(q, 1);
    for (int at = 0; at < N; at++) {
        if (at == N / 2) {
            assert_int_equal(commit_wait(f), STORE_OK);
            reopen(f);
        }
        uint64_t now = 1000 + (uint64_t)at;
        assert_int_equal(f->ops->next_due(f->s, q, 1, h, now - 1), now);
        char want[16];
        snprintf(want, sizeof want, "d%d ", at);
        take_at_ack(f, q, now, want, 0);
        assert_true(f->ops->resident(f->s) < base + BOUND);
        store_msg m;
        assert_int_equal(take_at_rc(f, q, now, &m), STORE_E_EMPTY);
    }
    assert_int_equal(f->ops->next_due(f->s, q, 1, h, 0), 0);
    assert_int_equal(commit_wait(f), STORE_OK);
}

enum { EXP_N = 8000 };

/* In test_expiry_backlog: does message i expire? */
static int expiring(int i)
{
    return i % 4 == 3 || i >= EXP_N - 200;
}

/* Take the backlog's next messages at now (200) while its first is not expired: the next
 * ones that do not expire, in order, from *plain on. */
static void take_plain(fx *f, int *plain, int most)
{
    for (int k = 0; k < most; k++) {
        store_msg m;
        store_err rc = take_at_rc(f, "q", 200, &m);
        if (rc == STORE_E_EXPIRED || rc == STORE_E_EMPTY)
            return;
        assert_int_equal(rc, STORE_OK);
        while (expiring(*plain))
            (*plain)++;
        char want[16];
        snprintf(want, sizeof want, "n%d ", *plain);
        if (memcmp(m.body, want, strlen(want)) != 0)
            fail_msg("took %.12s, wanted %s", m.body, want);
        assert_int_equal(f->ops->ack(f->s, m.id), STORE_OK);
        (*plain)++;
    }
}

/* A backlog far larger than a window, with expiring messages among it and after it: each
 * expired one is handed out by take_expired, earliest expiry first, reading the file
 * through its expiry index: the memory held stays far below the backlog's size; taking the
 * backlog meanwhile stops at an expired first message and passes over the rows handed out,
 * acked or not; then the rest is FIFO. */
static void test_expiry_backlog(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 0);
    enum { N = EXP_N, BODY = 2048, BOUND = 8 << 20 };
    static char body[BODY];
    memset(body, 'b', sizeof body);
    int nexp = 0;
    for (int i = 0; i < N; i++) {
        int len = snprintf(body, sizeof body, "n%d ", i);
        body[len] = 'b';
        put_attrs(f, "q", body, BODY, 4, 0, expiring(i) ? 100 + (uint64_t)(i % 7) : 0);
        nexp += expiring(i);
        if (i % 1000 == 999)
            assert_int_equal(commit_wait(f), STORE_OK);
    }
    assert_int_equal(commit_wait(f), STORE_OK);
    reopen(f);
    size_t base = f->ops->resident(f->s);
    assert_int_equal(f->ops->next_expiry(f->s), 100);
    store_msg m;
    assert_int_equal(f->ops->take_expired(f->s, 99, &m), STORE_E_EMPTY);
    uint64_t last_exp = 0, last_id = 0;
    int got = 0, plain = 0;
    while (f->ops->take_expired(f->s, 200, &m) == STORE_OK) {
        assert_true(m.expires > last_exp || (m.expires == last_exp && m.id > last_id));
        last_exp = m.expires;
        last_id = m.id;
        assert_int_equal(f->ops->ack(f->s, m.id), STORE_OK);
        got++;
        if (got % 500 == 0) {
            /* Before the acks are committed, the backlog moves past some of those rows. */
            take_plain(f, &plain, 100);
            assert_int_equal(commit_wait(f), STORE_OK);
        }
        assert_true(f->ops->resident(f->s) < base + BOUND);
    }
    assert_int_equal(got, nexp);
    assert_int_equal(f->ops->next_expiry(f->s), 0);
    assert_int_equal(commit_wait(f), STORE_OK);
    reopen(f);
    take_plain(f, &plain, N);
    while (plain < N && expiring(plain))
        plain++;
    assert_int_equal(plain, N); /* every one that does not expire, once */
    expect_empty(f, "q");
    assert_int_equal(commit_wait(f), STORE_OK);
    uint64_t count, bytes;
    f->ops->queue_size(f->s, "q", 1, store_hash_name("q", 1), &count, &bytes);
    assert_int_equal(count, 0);
    assert_int_equal(bytes, 0);
}

/* browse reads a backlog far larger than a window from the file, in order, without keeping
 * it in memory; the queue is untouched. */
static void test_browse_backlog(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 0);
    enum { N = 4000, BODY = 4096, BOUND = 8 << 20 };
    static char body[BODY];
    memset(body, 'b', sizeof body);
    for (int i = 0; i < N; i++) {
        int len = snprintf(body, sizeof body, "%c%d ", i % 10 == 0 ? 'h' : 'n', i);
        body[len] = 'b';
        put_attrs(f, "q", body, BODY, i % 10 == 0 ? 6 : 4, 0, 0);
    }
    assert_int_equal(commit_wait(f), STORE_OK);
    reopen(f);
    take_at_ack(f, "q", 1, "h0 ", 0);
    size_t base = f->ops->resident(f->s);
    store_cursor cur;
    memset(&cur, 0, sizeof cur);
    store_msg m;
    uint64_t h = store_hash_name("q", 1);
    int seen = 0;
    char want[16];
    while (f->ops->browse(f->s, "q", 1, h, &cur, 1, &m) == STORE_OK) {
        /* the priority 6 ones (every tenth), then the others, each in id order */
        int i = seen < N / 10 - 1 ? (seen + 1) * 10 : (seen - (N / 10 - 1)) / 9 * 10 +
                                                       (seen - (N / 10 - 1)) % 9 + 1;
        snprintf(want, sizeof want, "%c%d ", i % 10 == 0 ? 'h' : 'n', i);
        if (m.body_len != BODY || memcmp(m.body, want, strlen(want)) != 0)
            fail_msg("browse %d: %.12s, wanted %s", seen, m.body, want);
        seen++;
        assert_true(f->ops->resident(f->s) < base + BOUND);
    }
    assert_int_equal(seen, N - 1);
    assert_int_equal(depth(f, "q"), (size_t)(N - 1));
    take_at_ack(f, "q", 1, "h10 ", 0);
    assert_int_equal(commit_wait(f), STORE_OK);
}

/* Killed with messages handed out in two priorities, the higher ones jumping ahead in id
 * order: every one that was handed out comes back counted; of the lower band, only those
 * within its own bound are counted too (not all older than the higher band's takes). */
static void test_crash_priorities(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 0);
    const int L = STORE_SQLITE_LOOKAHEAD;
    put_n(f, "q", 0, L + 100);
    char body[32];
    for (int i = 0; i < 10; i++) {
        snprintf(body, sizeof body, "x%d", i);
        put_attrs(f, "q", body, 0, 9, 0, 0);
    }
    assert_int_equal(commit_wait(f), STORE_OK);
    for (int i = 0; i < 10; i++) {
        snprintf(body, sizeof body, "x%d", i);
        store_msg m;
        assert_int_equal(take_at_rc(f, "q", 1, &m), STORE_OK);
        assert_memory_equal(m.body, body, m.body_len);
        if (i == 0)
            assert_int_equal(f->ops->ack(f->s, m.id), STORE_OK);
    }
    take_expect(f, "q", "n0", 0);
    take_expect(f, "q", "n1", 0);
    put_attrs(f, "q", "x10", 0, 9, 0, 0); /* after the takes: never handed out */
    assert_int_equal(commit_wait(f), STORE_OK);
    uint64_t count, bytes;
    f->ops->queue_size(f->s, "q", 1, store_hash_name("q", 1), &count, &bytes);
    crash_image(f, "crash.db");
    open_image(f, "crash.db");
    size_is(f, "q", count, bytes); /* counted from the file after the crash */
    for (int i = 1; i < 10; i++) {
        snprintf(body, sizeof body, "x%d", i);
        take_at_ack(f, "q", 1, body, 1);
    }
    take_at_ack(f, "q", 1, "x10", 1); /* within its band's bound: counted too */
    for (int i = 0; i < L + 100; i++) {
        snprintf(body, sizeof body, "n%d", i);
        take_at_ack(f, "q", 1, body, i <= L ? 1 : 0);
        if (i % 1000 == 999)
            assert_int_equal(commit_wait(f), STORE_OK);
    }
    expect_empty(f, "q");
    assert_int_equal(commit_wait(f), STORE_OK);
}

/* Expiry from the file only, waiting messages too, and a message committed into the file
 * with an expiry before what was already read: it is found all the same. */
static void test_expiry_file_order(void **state)
{
    fx *f = *state;
    f->s = open_store(f, 0);
    const int W = STORE_SQLITE_WINDOW;
    put_n(f, "q", 0, 2 * W);
    put_attrs(f, "q", "a", 0, 4, 0, 300);
    put_attrs(f, "q", "w", 0, 4, 10000, 200); /* waiting, and expired before it is due */
    assert_int_equal(commit_wait(f), STORE_OK);
    reopen(f); /* everything in the file only */
    assert_int_equal(f->ops->next_expiry(f->s), 200);
    store_msg m;
    assert_int_equal(f->ops->take_expired(f->s, 250, &m), STORE_OK);
    assert_memory_equal(m.body, "w", 1);
    assert_int_equal(f->ops->ack(f->s, m.id), STORE_OK);
    assert_int_equal(f->ops->take_expired(f->s, 250, &m), STORE_E_EMPTY);
    assert_int_equal(f->ops->next_expiry(f->s), 300);
    /* Behind what was read: an expiry of 150, committed into the file only. */
    put_attrs(f, "q", "b", 0, 4, 0, 150);
    put_attrs(f, "q", "c", 0, 4, 0, 260);
    assert_int_equal(commit_wait(f), STORE_OK);
    assert_int_equal(f->ops->next_expiry(f->s), 150);
    assert_int_equal(f->ops->take_expired(f->s, 250, &m), STORE_OK);
    assert_memory_equal(m.body, "b", 1);
    assert_int_equal(f->ops->ack(f->s, m.id), STORE_OK);
    assert_int_equal(f->ops->take_expired(f->s, 250, &m), STORE_E_EMPTY);
    assert_int_equal(f->ops->take_expired(f->s, 300, &m), STORE_OK);
    assert_memory_equal(m.body, "c", 1);
    assert_int_equal(f->ops->ack(f->s, m.id), STORE_OK);
    assert_int_equal(f->ops->take_expired(f->s, 300, &m), STORE_OK);
    assert_memory_equal(m.body, "a", 1);
    assert_int_equal(f->ops->ack(f->s, m.id), STORE_OK);
    assert_int_equal(f->ops->next_expiry(f->s), 0);
    assert_int_equal(f->ops->next_due(f->s, "q", 1, store_hash_name("q", 1), 0), 0);
    char body[32];
    for (int i = 0; i < 2 * W; i++) {
        snprintf(body, sizeof body, "n%d", i);
        take_at_ack(f, "q", 300, body, 0);
    }
    expect_empty(f, "q");
    assert_int_equal(commit_wait(f), STORE_OK);
    reopen(f);
    expect_empty(f, "q");
}

/* ---- golden files of older schemas (tests/store/golden, see its README.md) ---- */

/* Copy tests/store/golden/name (from the top of the source tree) to f->path and open it. */
static void open_golden(fx *f, const char *name)
{
    char from[128];
    snprintf(from, sizeof from, "tests/store/golden/%s", name);
    FILE *in = fopen(from, "rb");
    assert_non_null(in);
    FILE *out = fopen(f->path, "wb");
    assert_non_null(out);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    assert_int_equal(fclose(in), 0);
    assert_int_equal(fclose(out), 0);
    f->s = open_store(f, 0);
}


/* take gives id with that header block, body and count (priority 4, no expiry); acked. */
static void take_golden(fx *f, const char *q, uint64_t id, const char *h, size_t hlen,
                        const char *body, size_t blen, uint32_t red)
{
    store_msg m;
    assert_int_equal(f->ops->take(f->s, q, strlen(q), &m), STORE_OK);
    assert_int_equal(m.id, id);
    assert_int_equal(m.headers_len, hlen);
    assert_memory_equal(m.headers, h, hlen);
    assert_int_equal(m.body_len, blen);
    assert_memory_equal(m.body, body, blen);
    assert_int_equal(m.redeliveries, red);
    assert_int_equal(m.priority, STORE_PRIORITY_DEFAULT);
    assert_int_equal(m.expires, 0);
    assert_int_equal(f->ops->ack(f->s, m.id), STORE_OK);
}

/* What both golden files hold (make_golden.c), then the next id. */
static void check_golden(fx *f, uint64_t next_id)
{
    assert_int_equal(depth(f, "/queue/orders"), 3);
    assert_int_equal(depth(f, "/queue/many"), 9);
    assert_int_equal(depth(f, "/queue/gone"), 0);
    size_is(f, "/queue/orders", 3, 14);
    size_is(f, "/queue/bin", 1, 256);
    take_golden(f, "/queue/orders", 1, "k\0v\0", 4, "o1", 2, 3); /* taken at the close */
    take_golden(f, "/queue/orders", 2, "", 0, "o2", 2, 1);
    take_golden(f, "/queue/orders", 3, "x\0y\0", 4, "o3", 2, 0);
    expect_empty(f, "/queue/orders");
    char bin[256], body[16];
    for (int i = 0; i < 256; i++)
        bin[i] = (char)i;
    take_golden(f, "/queue/bin", 4, "", 0, bin, sizeof bin, 0);
    for (int i = 1; i < 10; i++) {
        snprintf(body, sizeof body, "m%d", i);
        take_golden(f, "/queue/many", 5 + (uint64_t)i, "", 0, body, 2, 0);
    }
    expect_empty(f, "/queue/many");
    assert_int_equal(put(f, "/queue/gone", "new"), next_id);
    assert_int_equal(commit_wait(f), STORE_OK);
    assert_int_equal(f->ops->ack(f->s, take_expect(f, "/queue/gone", "new", 0)), STORE_OK);
    assert_int_equal(commit_wait(f), STORE_OK);
}

/* The attributes of version 7 on a migrated file, across a reopen. */
static void attrs_on_golden(fx *f)
{
    put_attrs(f, "/queue/orders", "p4", 0, 4, 0, 0);
    put_attrs(f, "/queue/orders", "late", 0, 4, 100, 0);
    put_attrs(f, "/queue/orders", "exp", 0, 4, 0, 50);
    put_attrs(f, "/queue/orders", "p9", 0, 9, 0, 0);
    assert_int_equal(commit_wait(f), STORE_OK);
    reopen(f);
    size_is(f, "/queue/orders", 4, 2 + 4 + 3 + 2 + 4);
    assert_int_equal(f->ops->next_expiry(f->s), 50);
    take_at_ack(f, "/queue/orders", 60, "p9", 0);
    take_at_ack(f, "/queue/orders", 60, "p4", 0);
    store_msg m;
    assert_int_equal(take_at_rc(f, "/queue/orders", 60, &m), STORE_E_EXPIRED);
    assert_int_equal(f->ops->take_expired(f->s, 60, &m), STORE_OK);
    assert_memory_equal(m.body, "exp", 3);
    assert_int_equal(f->ops->ack(f->s, m.id), STORE_OK);
    assert_int_equal(take_at_rc(f, "/queue/orders", 60, &m), STORE_E_EMPTY);
    take_at_ack(f, "/queue/orders", 100, "late", 0);
    assert_int_equal(commit_wait(f), STORE_OK);
    reopen(f);
    size_is(f, "/queue/orders", 0, 0);
    expect_empty(f, "/queue/orders");
}

static void test_golden_schema2(void **state)
{
    fx *f = *state;
    open_golden(f, "schema2.db");
    check_golden(f, 17);
    attrs_on_golden(f);
}

/* Schema 3 adds a message waiting for its time (requeued once, due at 5000). */
static void test_golden_schema3(void **state)
{
    fx *f = *state;
    open_golden(f, "schema3.db");
    uint64_t h = store_hash_name("/queue/wait", 11);
    assert_int_equal(f->ops->next_due(f->s, "/queue/wait", 11, h, 0), 5000);
    size_is(f, "/queue/wait", 1, 1);
    store_msg m;
    assert_int_equal(take_at_rc(f, "/queue/wait", 4999, &m), STORE_E_EMPTY);
    take_at_ack(f, "/queue/wait", 5000, "w", 1);
    check_golden(f, 18);
    attrs_on_golden(f);
}

/* Schema 4, the last before bodies held once: the same, and shared messages after it. */
static void test_golden_schema4(void **state)
{
    fx *f = *state;
    open_golden(f, "schema4.db");
    take_at_ack(f, "/queue/wait", 5000, "w", 1);
    check_golden(f, 18);
    store_target t[2] = { { "/queue/s1", 9, store_hash_name("/queue/s1", 9), NULL, 0 },
                          { "/queue/s2", 9, store_hash_name("/queue/s2", 9), NULL, 0 } };
    assert_int_equal(f->ops->enqueue_shared(f->s, t, 2, "", 0, "both", 4), STORE_OK);
    assert_int_equal(commit_wait(f), STORE_OK);
    reopen(f);
    assert_int_equal(f->ops->ack(f->s, take_expect(f, "/queue/s2", "both", 0)), STORE_OK);
    assert_int_equal(f->ops->ack(f->s, take_expect(f, "/queue/s1", "both", 0)), STORE_OK);
    assert_int_equal(commit_wait(f), STORE_OK);
    attrs_on_golden(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_enqueue_take_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_per_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requeue_to_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_invisible_until_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_queues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_binary_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_unique_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_restores_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_open_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_future_version_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_files_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging_requeue_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging_while_commit_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_write_keeps_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_dropped_and_recreated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_counts_possibly_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_take_waits_for_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_shared_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_sync_commit_in_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_golden_v2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_golden_schema2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_golden_schema3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_golden_schema4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priority_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schedule_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_backlog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_file_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_browse_backlog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_priorities, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL) ? 1 : 0;
}
