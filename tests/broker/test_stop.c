/* test_stop.c: a clean stop loses nothing. 10,000 receipted 1 KiB messages wait in a SQLite
 * queue; an auto-ack consumer reads them slowly; the broker stops meanwhile. The consumer
 * must get every message queued for it, then an ERROR saying the server is shutting down,
 * then the end of the stream; whatever it did not get is still in the queue after a
 * restart. Before, auto-ack deliveries counted as acknowledged once queued on the
 * connection and the stop cut every connection at once: hundreds were lost on every run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "store_sqlite.h"
#include "testlib.h"

#define N 10000

static char path[160];

static void remove_db(void)
{
    static const char *const suffix[] = { "", "-wal", "-shm", "-lock" };
    char p[200];
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        unlink(p);
    }
}

static tb *start(void)
{
    broker_options o;
    broker_options_init(&o);
    o.store = store_sqlite_backend();
    o.store_path = path;
    o.stop_timeout_ms = 30000; /* the slow reader must be able to finish */
    tb *t = tb_start(&o);
    assert_non_null(t);
    return t;
}

typedef struct reader {
    tc *c;
    unsigned char seen[N];
    int got, dups, errors, bad;
    char last_error[128];
} reader;

/* Count the MESSAGEs (body: the message number) and ERRORs until the end of the stream,
 * reading slowly: a millisecond every five frames. */
static void *read_slowly(void *arg)
{
    reader *r = arg;
    tframe f;
    int n = 0, rc;
    while ((rc = tc_read(r->c, &f, 20000)) == 0) {
        if (strcmp(f.cmd, "MESSAGE") == 0) {
            int k = atoi(f.body);
            if (k < 0 || k >= N)
                r->bad++;
            else if (r->seen[k]++)
                r->dups++;
            else
                r->got++;
        } else if (strcmp(f.cmd, "ERROR") == 0) {
            r->errors++;
            snprintf(r->last_error, sizeof r->last_error, "%s", f.body);
        }
        tf_free(&f);
        if (++n % 5 == 0)
            usleep(1000);
    }
    if (rc != -2)
        r->bad++; /* a timeout, not the end of the stream */
    shutdown(r->c->fd, SHUT_RDWR); /* as a client does at the end: the broker sees it close */
    return NULL;
}

static void test_stop_loses_nothing(void **state)
{
    (void)state;
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/stompd-stop-%d.db", dir && *dir ? dir : "/tmp",
             (int)getpid());
    remove_db();
    tb *t = start();
    tc *p = tc_open(tb_port(t), "accept-version:1.2\n");
    char body[1024];
    for (int i = 0; i < N; i++) {
        int n = snprintf(body, sizeof body, "%d ", i);
        memset(body + n, 'x', sizeof body - (size_t)n - 1);
        body[sizeof body - 1] = '\0';
        TC_SENDF(p, "SEND\ndestination:/queue/stop\nreceipt:%d\n\n%s", i, body);
    }
    tframe f;
    for (int i = 0; i < N; i++) {
        assert_true(tc_is(p, "RECEIPT", &f));
        tf_free(&f);
    }
    tc_close(p);
    reader *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(r->c);
    /* A small window: what the consumer has not read stays with the broker. */
    int small = 65536;
    assert_int_equal(setsockopt(r->c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    TC_SENDF(r->c, "SUBSCRIBE\nid:s\ndestination:/queue/stop\nack:auto\n\n");
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, read_slowly, r), 0);
    usleep(200 * 1000); /* the stop finds most of the queue on its way or not yet sent */
    assert_int_equal(tb_stop(t), 0);
    pthread_join(th, NULL);
    tc_close(r->c);
    assert_int_equal(r->bad, 0);
    assert_int_equal(r->errors, 1);
    assert_string_equal(r->last_error, "the server is shutting down");
    int before = r->got;
    /* After a restart the rest is still there, and nothing the consumer had. */
    t = start();
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:/queue/stop\nack:auto\n\n");
    while (r->got < N && tc_read(c, &f, 2000) == 0) {
        if (strcmp(f.cmd, "MESSAGE") == 0) {
            int k = atoi(f.body);
            assert_true(k >= 0 && k < N);
            if (r->seen[k]++)
                r->dups++;
            else
                r->got++;
        }
        tf_free(&f);
    }
    print_message("before the stop %d, after the restart %d, twice %d\n", before,
                  r->got - before, r->dups);
    assert_int_equal(r->got, N);
    assert_int_equal(tc_read(c, &f, 300), -1); /* nothing more */
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
    free(r);
    remove_db();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_loses_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
