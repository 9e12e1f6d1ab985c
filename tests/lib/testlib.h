/* testlib.h: helpers for broker tests: a broker running on its own loop in a thread of
 * its own, and a blocking client socket that sends raw bytes and reads whole frames.
 *
 * Every wait has a generous timeout; nothing asserts on timing beyond that.
 */
#ifndef TESTLIB_H
#define TESTLIB_H

#include <stddef.h>

#include "broker.h"

#define TL_TIMEOUT_MS 5000

/* ---- a broker in a thread ---- */
typedef struct tb tb;

/* Start a broker (opts NULL: defaults) listening on 127.0.0.1 port 0. NULL on failure. */
tb *tb_start(const broker_options *opts);
int tb_port(const tb *t);
/* Run fn(broker, arg) on the broker's thread and wait for it. */
void tb_call(tb *t, void (*fn)(broker *b, void *arg), void *arg);
void tb_stats(tb *t, broker_stats *out);
/* Stop the broker, join the thread, free. Returns the uv_loop_close() result (0 = clean). */
int tb_stop(tb *t);
/* Count of log lines at WARN or worse so far (read after tb_stop or via tb_call). */
int tb_warnings(const tb *t);

/* ---- the same tests on the memory and the SQLite store ---- */

/* The store a test runs on: memory, or a SQLite file of its own. */
typedef struct tb_store {
    int sqlite;
    char path[128]; /* $TMPDIR/stompd-TAG-PID.db */
} tb_store;

/* Pick the file for tag (and this process) and remove what an earlier run left of it. */
void tb_store_init(tb_store *s, int sqlite, const char *tag);
/* Remove the file and its companions (-wal, -shm, -lock, -journal). */
void tb_store_remove(const tb_store *s);
/* Point o at the store (nothing for memory). */
void tb_store_use(const tb_store *s, broker_options *o);

/* A log record as the broker gave it (the first TB_LOG_KEEP are kept). */
#define TB_LOG_KEEP 64
typedef struct tb_record {
    broker_log_level level;
    uint64_t conn_id;
    broker_event event;
    char text[200];
} tb_record;

/* The first record of this event so far: 1 (copied to *out) or 0. */
int tb_log_find(tb *t, broker_event event, tb_record *out);

/* ---- a blocking client ---- */
typedef struct tframe {
    char cmd[32];
    int nheaders;
    char *names[128];
    char *values[128];
    char *body;
    size_t body_len;
    char *raw; /* owned storage */
} tframe;

typedef struct tc {
    int fd;
    char *buf;
    size_t len, cap;
    int heartbeats; /* EOLs seen between frames */
} tc;

tc *tc_connect(int port); /* NULL on failure */
/* Connect and negotiate: extra is more CONNECT header lines ("" for none, each ending in
 * "\n"). Returns NULL unless CONNECTED came back. */
tc *tc_open(int port, const char *extra);
int tc_send_raw(tc *c, const void *data, size_t len);
/* Send a frame given without its NUL: "SEND\ndestination:/q\n\nbody". */
int tc_send(tc *c, const char *frame);
/* The same from a printf format, any length: 0 or -1. */
int tc_sendf(tc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* In a cmocka test: send a formatted frame and assert that it went out. */
#define TC_SENDF(c, ...) assert_int_equal(tc_sendf((c), __VA_ARGS__), 0)
/* Read one frame: 0, -1 timeout, -2 connection closed. */
int tc_read(tc *c, tframe *f, int timeout_ms);
/* Read frames until one with this command: 0 or <0 as tc_read (others are skipped). */
int tc_expect(tc *c, const char *cmd, tframe *f);
/* Wait until the broker closes the connection: 1 closed, 0 not within the timeout. */
int tc_closed(tc *c, int timeout_ms);
/* Wait until at least n heart-beat EOLs arrived: 1 yes, 0 no. */
int tc_wait_heartbeats(tc *c, int n, int timeout_ms);
/* The arrival times (tl_now_ms) of the next n heart-beat EOLs: how many came in time. */
int tc_beat_times(tc *c, long long *at, int n, int timeout_ms);
/* A monotonic clock in ms, for bounds on when things happen. */
long long tl_now_ms(void);
void tc_close(tc *c);

const char *tf_header(const tframe *f, const char *name);
void tf_free(tframe *f);

/* Read a frame and check its command; returns 1 if it matched (frame kept in f). */
int tc_is(tc *c, const char *cmd, tframe *f);

#endif
