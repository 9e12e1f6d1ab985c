/* test_shared_body.c: a message enqueue_shared puts into 5 queues holds its body once, not 5
 * times: in the SQLite file one row of the body table (and no body bytes in the 5 message
 * rows) until the last of the 5 is acked, in the same commit as that ack, and none after a
 * crash image of a batch that had them; in the memory backend, resident grows by about one
 * body, where 5 plain enqueues grow it by 5.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "store_sqlite.h"

#define N 5
#define BODY 100000

static const char *const names[N] = { "/durable-sub/1", "/durable-sub/2", "/durable-sub/3",
                                      "/durable-sub/4", "/durable-sub/5" };

static void targets(store_target *t)
{
    for (int i = 0; i < N; i++)
        t[i] = (store_target){ names[i], strlen(names[i]),
                               store_hash_name(names[i], strlen(names[i])), NULL, 0 };
}

static char *make_body(void)
{
    char *b = malloc(BODY);
    assert_non_null(b);
    for (size_t i = 0; i < BODY; i++)
        b[i] = (char)(i * 7);
    return b;
}

static void on_commit(void *arg, store_err status)
{
    assert_int_equal(status, STORE_OK);
    (*(int *)arg)++;
}

static void commit(const store_ops *o, store *s, uv_loop_t *loop)
{
    int called = 0;
    store_err rc = o->commit(s, on_commit, &called);
    if (rc == STORE_DONE)
        return;
    assert_int_equal(rc, STORE_OK);
    while (!called)
        uv_run(loop, UV_RUN_ONCE);
}

static int64_t query(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return v;
}

/* Body bytes in the file: the body table's and the message rows'. */
static int64_t file_body_bytes(const char *path)
{
    return query(path, "SELECT (SELECT coalesce(sum(length(data)), 0) FROM body) +"
                       " (SELECT coalesce(sum(length(body)), 0) FROM msg)");
}

static void test_sqlite_one_body_row(void **state)
{
    (void)state;
    char dir[] = "/tmp/stompd-shared-XXXXXX", path[64], lock[80], wal[80], shm[80];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/s.db", dir);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    const store_ops *o = store_sqlite_backend();
    store_options opts = { .loop = &loop, .path = path };
    store *s;
    assert_int_equal(o->open(&opts, &s), STORE_OK);
    char *body = make_body();
    store_target t[N];
    targets(t);
    assert_int_equal(o->enqueue_shared(s, t, N, "k\0v", 4, body, BODY), STORE_OK);
    commit(o, s, &loop);
    assert_int_equal(query(path, "SELECT count(*) FROM body"), 1);
    assert_int_equal(query(path, "SELECT count(*) FROM msg"), N);
    assert_true(file_body_bytes(path) == BODY); /* 5 copies would be 500000 */
    for (int i = 0; i < N; i++) {
        store_msg m;
        assert_int_equal(o->take(s, names[i], strlen(names[i]), &m), STORE_OK);
        assert_int_equal(m.body_len, BODY);
        assert_memory_equal(m.body, body, BODY);
        assert_int_equal(o->ack(s, m.id), STORE_OK);
        commit(o, s, &loop);
        /* the body row goes with the last message, in that commit */
        assert_int_equal(query(path, "SELECT count(*) FROM body"), i + 1 < N ? 1 : 0);
    }
    o->close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(body);
    snprintf(lock, sizeof lock, "%s-lock", path);
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(shm, sizeof shm, "%s-shm", path);
    unlink(path);
    unlink(lock);
    unlink(wal);
    unlink(shm);
    rmdir(dir);
}

static size_t grown(const store_ops *o, store *s, int shared, const char *body)
{
    size_t before = o->resident(s);
    store_target t[N];
    targets(t);
    if (shared) {
        assert_int_equal(o->enqueue_shared(s, t, N, "k\0v", 4, body, BODY), STORE_OK);
    } else {
        for (int i = 0; i < N; i++)
            assert_int_equal(o->enqueue_hashed(s, t[i].queue, t[i].queue_len, t[i].hash, "k\0v",
                                               4, body, BODY, &t[i].id),
                             STORE_OK);
    }
    assert_int_equal(o->commit(s, NULL, NULL), STORE_DONE);
    size_t after = o->resident(s);
    for (int i = 0; i < N; i++) {
        uint64_t n, b;
        o->queue_size(s, t[i].queue, t[i].queue_len, t[i].hash, &n, &b);
        assert_int_equal(n, 1);
        assert_int_equal(b, 4 + BODY); /* each queue counts the whole message */
        store_msg m;
        assert_int_equal(o->take(s, t[i].queue, t[i].queue_len, &m), STORE_OK);
        assert_memory_equal(m.body, body, BODY);
        assert_int_equal(o->ack(s, m.id), STORE_OK);
    }
    assert_true(o->resident(s) < before + BODY / 10); /* the bodies are given back */
    return after - before;
}

static void test_memory_held_once(void **state)
{
    (void)state;
    const store_ops *o = store_memory_backend();
    store_options opts = { 0 };
    store *s;
    assert_int_equal(o->open(&opts, &s), STORE_OK);
    char *body = make_body();
    size_t plain = grown(o, s, 0, body), shared = grown(o, s, 1, body);
    assert_true(plain >= (size_t)N * BODY);
    assert_true(shared >= BODY && shared < 2 * BODY);
    o->close(s);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sqlite_one_body_row),
        cmocka_unit_test(test_memory_held_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL) ? 1 : 0;
}
