/* test_store_errors.c: store failures as the broker reports them, and the store's memory in
 * the broker's accounting. A store that cannot be opened stops broker_create with the
 * backend's reason in the log (missing directory, a file locked by another broker); a
 * commit that fails gives the SENDs waiting on it an ERROR, never a RECEIPT, and the broker
 * keeps serving; a backlog on the SQLite store costs its window, not its size. Each test
 * works in its own temporary directory and removes it.
 */
#include <dirent.h>
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

#include "store_sqlite.h"
#include "testlib.h"

typedef struct fx {
    char dir[64];
    char path[128];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/stompd-err-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/store.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *e;
        char p[400];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
                unlink(p);
            }
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- open failures: broker_create on a loop of the test's own ---- */

typedef struct logbuf {
    char text[2048];
} logbuf;

static void capture(void *ctx, broker_log_level level, uint64_t conn_id, broker_event event,
                    const char *text)
{
    logbuf *l = ctx;
    if (level == BROKER_LOG_ERROR)
        snprintf(l->text + strlen(l->text), sizeof l->text - strlen(l->text), "%s%s: %s\n",
                 conn_id ? "conn " : "", broker_event_name(event), text);
}

static broker_err create(uv_loop_t *loop, const char *path, logbuf *l, broker **b)
{
    broker_options o;
    broker_options_init(&o);
    o.store = store_sqlite_backend();
    o.store_path = path;
    o.log = capture;
    o.log_ctx = l;
    return broker_create(loop, &o, b);
}

static void stop_free(uv_loop_t *loop, broker *b)
{
    assert_int_equal(broker_stop(b, NULL, NULL), BROKER_OK);
    assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
    broker_free(b);
}

static void test_open_failures_say_why(void **state)
{
    fx *f = *state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    logbuf l = { "" };
    broker *b = NULL, *b2 = NULL;
    char missing[200];
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.db", f->dir);
    assert_int_equal(create(&loop, missing, &l, &b), BROKER_E_STORE);
    assert_null(b);
    assert_non_null(strstr(l.text, "store sqlite: cannot open "));
    assert_non_null(strstr(l.text, missing));
    assert_non_null(strstr(l.text, "No such file or directory"));

    /* A second broker on a file in use: refused, with the lock named. */
    l.text[0] = '\0';
    assert_int_equal(create(&loop, f->path, &l, &b), BROKER_OK);
    assert_int_equal(create(&loop, f->path, &l, &b2), BROKER_E_STORE);
    assert_null(b2);
    assert_non_null(strstr(l.text, "in use by another store"));
    stop_free(&loop, b);

    /* Someone else's database is refused, not altered. */
    char foreign[200];
    snprintf(foreign, sizeof foreign, "%s/foreign.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(foreign, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    l.text[0] = '\0';
    assert_int_equal(create(&loop, foreign, &l, &b), BROKER_E_STORE);
    assert_non_null(strstr(l.text, "not a stompd store"));
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- a failing commit ---- */

static tb *start(const char *path)
{
    broker_options o;
    broker_options_init(&o);
    o.store = store_sqlite_backend();
    o.store_path = path;
    o.store_sync_full = 0;
    tb *t = tb_start(&o);
    assert_non_null(t);
    return t;
}

static void test_failed_commit_errors_the_send(void **state)
{
    fx *f = *state;
    tb *t = start(f->path);
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    tframe fr;
    TC_SENDF(c, "SEND\ndestination:/queue/e\nreceipt:r0\n\nstored");
    assert_true(tc_is(c, "RECEIPT", &fr));
    tf_free(&fr);

    /* Another process holds the write lock: the commit fails after its busy timeout. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    TC_SENDF(c, "SEND\ndestination:/queue/e\nreceipt:r1\n\nlost");
    assert_int_equal(tc_expect(c, "ERROR", &fr), 0);
    /* The reason from SQLite, in 1.2 header escaping (a colon is \\c). */
    assert_string_equal(tf_header(&fr, "message"), "the store failed to commit\\c commit failed"
                                                   "\\c begin\\c database is locked");
    assert_null(tf_header(&fr, "receipt-id"));
    tf_free(&fr);
    assert_true(tc_closed(c, TL_TIMEOUT_MS));
    tc_close(c);
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);

    /* The broker goes on: a new SEND is stored and receipted; only stored ones come. */
    c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    TC_SENDF(c, "SEND\ndestination:/queue/e\nreceipt:r2\n\nafter");
    assert_true(tc_is(c, "RECEIPT", &fr));
    assert_string_equal(tf_header(&fr, "receipt-id"), "r2");
    tf_free(&fr);
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:/queue/e\n\n");
    assert_true(tc_is(c, "MESSAGE", &fr));
    assert_int_equal(fr.body_len, 6);
    assert_memory_equal(fr.body, "stored", 6);
    tf_free(&fr);
    assert_true(tc_is(c, "MESSAGE", &fr));
    assert_int_equal(fr.body_len, 5);
    assert_memory_equal(fr.body, "after", 5);
    tf_free(&fr);
    assert_int_equal(tc_read(c, &fr, 200), -1);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

/* ---- memory accounting ---- */

static uint64_t backlog_memory(const broker_options *o)
{
    tb *t = tb_start(o);
    assert_non_null(t);
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    static char body[4096];
    memset(body, 'x', sizeof body - 1);
    for (int i = 0; i < 2000; i++)
        TC_SENDF(c, "SEND\ndestination:/queue/m\n%s\n%s", i == 1999 ? "receipt:all\n" : "", body);
    tframe fr;
    assert_true(tc_is(c, "RECEIPT", &fr));
    tf_free(&fr);
    broker_stats st;
    tb_stats(t, &st);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
    return st.memory;
}

/* 8 MB of backlog: counted whole with the memory store, as its window with SQLite. */
static void test_memory_counts_resident_bytes(void **state)
{
    fx *f = *state;
    broker_options o;
    broker_options_init(&o);
    uint64_t mem = backlog_memory(&o);
    assert_true(mem >= 2000u * 4095u);
    o.store = store_sqlite_backend();
    o.store_path = f->path;
    o.store_sync_full = 0;
    uint64_t sq = backlog_memory(&o);
    assert_true(sq < 4u << 20);
    assert_true(sq >= STORE_SQLITE_WINDOW_BYTES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_failures_say_why, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_commit_errors_the_send, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_counts_resident_bytes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
