/* store.c: the store alone, without sockets: how fast the SQLite backend moves messages, and
 * what an expiring backlog costs to clean. Never part of the tests.
 *
 *   build/bench/store fifo [N]     N messages of 1 KiB through one queue as the broker moves
 *                                  them: batches of 64 enqueues committed, then taken, acked
 *                                  and committed (default 400,000; sync normal)
 *   build/bench/store expiry [N]   a backlog of N messages of 1 KiB (default 1,000,000), one in
 *                                  four expiring, closed and opened again; then every
 *                                  expired one handed out by take_expired and acked, a commit
 *                                  every 1,000 (store ops version 7)
 *
 * Each prints one line: the scenario, the count, the seconds, the rate and the store's
 * resident bytes (at the end; for expiry also the most seen while cleaning). The database
 * lives in a temporary directory removed at the end.
 */
#include "store.h"
#include "store_sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { BODY = 1024, BATCH = 64 };

typedef struct bench {
    uv_loop_t loop;
    const store_ops *ops;
    store *s;
    char dir[64];
    char path[96];
    int done;
    char body[BODY];
} bench;

static void die(const char *what)
{
    fprintf(stderr, "store bench: %s\n", what);
    exit(1);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void on_commit(void *arg, store_err err)
{
    bench *b = arg;
    if (err != STORE_OK)
        die("commit failed");
    b->done = 1;
}

static void commit(bench *b)
{
    b->done = 0;
    store_err err = b->ops->commit(b->s, on_commit, b);
    if (err == STORE_DONE)
        return;
    if (err != STORE_OK)
        die("commit");
    while (!b->done)
        uv_run(&b->loop, UV_RUN_ONCE);
}

static void open_store(bench *b)
{
    store_options o = { .loop = &b->loop, .path = b->path };
    if (b->ops->open(&o, &b->s) != STORE_OK)
        die("open");
}

static void take_ack(bench *b)
{
    store_msg m;
    store_err err = b->ops->take(b->s, "q", 1, &m);
    if (err == STORE_E_AGAIN) {
        commit(b);
        err = b->ops->take(b->s, "q", 1, &m);
    }
    if (err != STORE_OK || b->ops->ack(b->s, m.id) != STORE_OK)
        die("take");
}

static void fifo(bench *b, long n)
{
    double t0 = now_s();
    for (long i = 0; i < n; i += BATCH) {
        uint64_t id;
        for (int k = 0; k < BATCH; k++)
            if (b->ops->enqueue(b->s, "q", 1, "h", 1, b->body, BODY, &id) != STORE_OK)
                die("enqueue");
        commit(b);
        for (int k = 0; k < BATCH; k++)
            take_ack(b);
        commit(b);
    }
    double secs = now_s() - t0;
    printf("scenario=fifo msgs=%ld secs=%.3f rate=%.0f resident=%zu\n", n, secs, (double)n / secs,
           b->ops->resident(b->s));
}

#if STORE_OPS_VERSION >= 7
static void expiry(bench *b, long n)
{
    long nexp = 0;
    for (long i = 0; i < n; i++) {
        store_attrs a = { STORE_PRIORITY_DEFAULT, 0, i % 4 == 3 ? 100 + (uint64_t)(i % 13) : 0 };
        uint64_t id;
        if (b->ops->enqueue_attrs(b->s, "q", 1, store_hash_name("q", 1), "h", 1, b->body, BODY,
                                  &a, &id) != STORE_OK)
            die("enqueue");
        nexp += a.expires != 0;
        if (i % 10000 == 9999)
            commit(b);
    }
    commit(b);
    b->ops->close(b->s);
    open_store(b);
    size_t peak = 0;
    long got = 0;
    store_msg m;
    double t0 = now_s();
    while (b->ops->take_expired(b->s, 1000, &m) == STORE_OK) {
        if (b->ops->ack(b->s, m.id) != STORE_OK)
            die("ack");
        if (++got % 1000 == 0)
            commit(b);
        size_t r = b->ops->resident(b->s);
        peak = r > peak ? r : peak;
    }
    commit(b);
    double secs = now_s() - t0;
    if (got != nexp)
        die("not every expired message was handed out");
    printf("scenario=expiry backlog=%ld expired=%ld secs=%.3f rate=%.0f resident_peak=%zu\n", n,
           got, secs, (double)got / secs, peak);
}
#endif

int main(int argc, char **argv)
{
    static bench b;
    const char *what = argc > 1 ? argv[1] : "fifo";
    long n = argc > 2 ? atol(argv[2]) : 0;
    const char *tmp = getenv("TMPDIR");
    snprintf(b.dir, sizeof b.dir, "%s/stompd-sb-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(b.dir))
        die("mkdtemp");
    snprintf(b.path, sizeof b.path, "%s/store.db", b.dir);
    memset(b.body, 'b', sizeof b.body);
    uv_loop_init(&b.loop);
    b.ops = store_sqlite_backend();
    open_store(&b);
    if (!strcmp(what, "fifo"))
        fifo(&b, n > 0 ? n : 400000);
#if STORE_OPS_VERSION >= 7
    else if (!strcmp(what, "expiry"))
        expiry(&b, n > 0 ? n : 1000000);
#endif
    else
        die("usage: store fifo|expiry [N]");
    b.ops->close(b.s);
    uv_loop_close(&b.loop);
    char p[160];
    static const char *const files[] = { "", "-wal", "-shm", "-lock" };
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", b.path, files[i]);
        unlink(p);
    }
    rmdir(b.dir);
    return 0;
}
