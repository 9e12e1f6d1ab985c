/* make_golden.c: writes a golden store file of tests/store/golden/ with the SQLite backend of
 * the source tree it is built against, so that the file is exactly what that version of the
 * store wrote (see README.md there for how each file was made). It uses only the store
 * operations every version has (enqueue, take, ack, requeue, commit, close); built against a
 * tree with ops version 5 or later it also leaves a message waiting for its time
 * (requeue_at). The file is compacted afterwards (1 KiB pages, rollback journal) so it stays
 * small; its content is untouched.
 *
 * What it holds, closed cleanly:
 *   /queue/orders  o1 (headers "k\0v\0"; requeued twice, then taken at the close: 3),
 *                  o2 (requeued once: 1), o3 (headers "x\0y\0"); an enqueue never committed
 *   /queue/bin     one body with every byte value 0..255
 *   /queue/many    m1..m9 (m0 acked)
 *   /queue/gone    nothing (its only message acked: no row)
 *   /queue/wait    w, requeued until time 5000 (ops version 5 and later only)
 */
#include "store.h"
#include "store_sqlite.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uv_loop_t loop;
static const store_ops *ops;
static store *s;
static int done;

static void die(const char *what)
{
    fprintf(stderr, "make_golden: %s\n", what);
    exit(1);
}

static void on_commit(void *arg, store_err err)
{
    (void)arg;
    if (err != STORE_OK)
        die("commit failed");
    done = 1;
}

static void commit(void)
{
    done = 0;
    store_err err = ops->commit(s, on_commit, NULL);
    if (err == STORE_DONE)
        return;
    if (err != STORE_OK)
        die("commit");
    while (!done)
        uv_run(&loop, UV_RUN_ONCE);
}

static void put(const char *q, const char *h, size_t hlen, const char *b, size_t blen)
{
    uint64_t id;
    if (ops->enqueue(s, q, strlen(q), h, hlen, b, blen, &id) != STORE_OK)
        die("enqueue");
}

/* The next message of q (committing first when the store asks for it). */
static uint64_t take(const char *q)
{
    store_msg m;
    store_err err = ops->take(s, q, strlen(q), &m);
    if (err == STORE_E_AGAIN) {
        commit();
        err = ops->take(s, q, strlen(q), &m);
    }
    if (err != STORE_OK)
        die("take");
    return m.id;
}

static void check(store_err err, const char *what)
{
    if (err != STORE_OK)
        die(what);
}

static void fill(void)
{
    char bin[256], body[16];
    for (int i = 0; i < 256; i++)
        bin[i] = (char)i;
    put("/queue/orders", "k\0v\0", 4, "o1", 2);
    put("/queue/orders", "", 0, "o2", 2);
    put("/queue/orders", "x\0y\0", 4, "o3", 2);
    put("/queue/bin", "", 0, bin, sizeof bin);
    for (int i = 0; i < 10; i++) {
        snprintf(body, sizeof body, "m%d", i);
        put("/queue/many", "", 0, body, strlen(body));
    }
    put("/queue/gone", "", 0, "g", 1);
    commit();
    for (int i = 0; i < 2; i++)
        check(ops->requeue(s, take("/queue/orders")), "requeue");
    uint64_t o1 = take("/queue/orders");
    check(ops->requeue(s, take("/queue/orders")), "requeue");
    check(ops->ack(s, take("/queue/gone")), "ack");
    check(ops->ack(s, take("/queue/many")), "ack");
    commit();
#if STORE_OPS_VERSION >= 5
    put("/queue/wait", "", 0, "w", 1);
    commit();
    check(ops->requeue_at(s, take("/queue/wait"), 5000), "requeue_at");
    commit();
#endif
    put("/queue/orders", "", 0, "lost", 4); /* never committed: its id is not reused */
    (void)o1;                               /* taken at the close */
}

/* Rewrite the file with small pages and no WAL: the same rows, a few KiB. */
static void compact(const char *path)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA journal_mode = DELETE; PRAGMA page_size = 1024; VACUUM", NULL,
                     NULL, NULL) != SQLITE_OK)
        die(sqlite3_errmsg(db));
    sqlite3_close(db);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        die("usage: make_golden FILE (a new file)");
    uv_loop_init(&loop);
    ops = store_sqlite_backend();
    store_options o = { .loop = &loop, .path = argv[1] };
    if (ops->open(&o, &s) != STORE_OK)
        die("open");
    fill();
    ops->close(s);
    uv_loop_close(&loop);
    compact(argv[1]);
    return 0;
}
