/* testlib.c: the test broker thread and the blocking test client of testlib.h.
 *
 * The broker thread owns its loop; the test thread talks to it only through an async
 * handle (commands) and a mutex/condition pair (replies).
 */
#include "testlib.h"

#include "store_sqlite.h"

#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct tb {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uv_loop_t loop;
    uv_async_t async;
    broker *b;
    broker_options o;
    int port;
    int ready;    /* 1 started, -1 failed */
    int stop;     /* stop requested */
    void (*fn)(broker *, void *);
    void *fn_arg;
    int fn_done;
    int loop_rc;
    int warnings;
    tb_record log[TB_LOG_KEEP]; /* the first records logged, under mu */
    size_t nlog;
};

static void on_log(void *ctx, broker_log_level level, uint64_t conn_id, broker_event event,
                   const char *text)
{
    tb *t = ctx;
    if (level <= BROKER_LOG_WARN)
        t->warnings++;
    pthread_mutex_lock(&t->mu);
    if (t->nlog < TB_LOG_KEEP) {
        tb_record *r = &t->log[t->nlog++];
        r->level = level;
        r->conn_id = conn_id;
        r->event = event;
        snprintf(r->text, sizeof r->text, "%s", text);
    }
    pthread_mutex_unlock(&t->mu);
    if (getenv("TEST_LOG"))
        fprintf(stderr, "broker: conn=%llu %s: %s\n", (unsigned long long)conn_id,
                broker_event_name(event), text);
}

static void on_stopped(broker *b, void *arg)
{
    (void)b;
    tb *t = arg;
    uv_close((uv_handle_t *)&t->async, NULL);
}

static void on_async(uv_async_t *a)
{
    tb *t = a->data;
    pthread_mutex_lock(&t->mu);
    void (*fn)(broker *, void *) = t->fn;
    void *arg = t->fn_arg;
    int stop = t->stop;
    pthread_mutex_unlock(&t->mu);
    if (fn) {
        fn(t->b, arg);
        pthread_mutex_lock(&t->mu);
        t->fn = NULL;
        t->fn_done = 1;
        pthread_cond_broadcast(&t->cv);
        pthread_mutex_unlock(&t->mu);
    }
    if (stop == 1) {
        t->stop = 2;
        if (broker_stop(t->b, on_stopped, t) != BROKER_OK)
            uv_close((uv_handle_t *)&t->async, NULL);
    }
}

static void *thread_main(void *arg)
{
    tb *t = arg;
    int ok = uv_loop_init(&t->loop) == 0;
    ok = ok && broker_create(&t->loop, &t->o, &t->b) == BROKER_OK;
    ok = ok && broker_listen(t->b, "127.0.0.1", 0, &t->port) == BROKER_OK;
    if (ok) {
        uv_async_init(&t->loop, &t->async, on_async);
        t->async.data = t;
    }
    pthread_mutex_lock(&t->mu);
    t->ready = ok ? 1 : -1;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    if (!ok)
        return NULL;
    uv_run(&t->loop, UV_RUN_DEFAULT);
    broker_free(t->b);
    t->loop_rc = uv_loop_close(&t->loop);
    return NULL;
}

tb *tb_start(const broker_options *opts)
{
    tb *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    if (opts)
        t->o = *opts;
    else
        broker_options_init(&t->o);
    t->o.log = on_log;
    t->o.log_ctx = t;
    t->o.log_level = BROKER_LOG_DEBUG;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    if (pthread_create(&t->thread, NULL, thread_main, t) != 0) {
        free(t);
        return NULL;
    }
    pthread_mutex_lock(&t->mu);
    while (!t->ready)
        pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
    if (t->ready < 0) {
        pthread_join(t->thread, NULL);
        free(t);
        return NULL;
    }
    return t;
}

int tb_port(const tb *t)
{
    return t->port;
}

int tb_warnings(const tb *t)
{
    return t->warnings;
}

int tb_log_find(tb *t, broker_event event, tb_record *out)
{
    int found = 0;
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < t->nlog && !found; i++) {
        if (t->log[i].event == event) {
            *out = t->log[i];
            found = 1;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return found;
}

void tb_call(tb *t, void (*fn)(broker *b, void *arg), void *arg)
{
    pthread_mutex_lock(&t->mu);
    t->fn = fn;
    t->fn_arg = arg;
    t->fn_done = 0;
    uv_async_send(&t->async);
    while (!t->fn_done)
        pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
}

static void get_stats(broker *b, void *arg)
{
    broker_get_stats(b, arg);
}

void tb_stats(tb *t, broker_stats *out)
{
    tb_call(t, get_stats, out);
}

int tb_stop(tb *t)
{
    pthread_mutex_lock(&t->mu);
    t->stop = 1;
    uv_async_send(&t->async);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    int rc = t->loop_rc;
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
    return rc;
}

/* ---- client ---- */

long long tl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

tc *tc_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(0x7f000001);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    tc *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return NULL;
    }
    c->fd = fd;
    return c;
}

tc *tc_open(int port, const char *extra)
{
    tc *c = tc_connect(port);
    if (!c)
        return NULL;
    char frame[1024];
    snprintf(frame, sizeof frame, "CONNECT\nhost:localhost\n%s\n", extra ? extra : "");
    tframe f;
    if (tc_send(c, frame) != 0 || tc_read(c, &f, TL_TIMEOUT_MS) != 0) {
        tc_close(c);
        return NULL;
    }
    int ok = strcmp(f.cmd, "CONNECTED") == 0;
    tf_free(&f);
    if (!ok) {
        tc_close(c);
        return NULL;
    }
    return c;
}

int tc_send_raw(tc *c, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int tc_send(tc *c, const char *frame)
{
    return tc_send_raw(c, frame, strlen(frame) + 1);
}

int tc_sendf(tc *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *buf = NULL;
    int n = vasprintf(&buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    int rc = tc_send(c, buf);
    free(buf);
    return rc;
}

/* Read more bytes: 1 got some, 0 timeout, -1 closed. */
static int fill(tc *c, long long deadline)
{
    long long left = deadline - tl_now_ms();
    if (left <= 0)
        return 0;
    struct pollfd p = { c->fd, POLLIN, 0 };
    int r = poll(&p, 1, (int)left);
    if (r <= 0)
        return 0;
    if (c->len + 65536 > c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 131072;
        while (ncap < c->len + 65536)
            ncap *= 2;
        char *nb = realloc(c->buf, ncap);
        if (!nb)
            return -1;
        c->buf = nb;
        c->cap = ncap;
    }
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n <= 0)
        return -1;
    c->len += (size_t)n;
    return 1;
}

/* Try to cut one frame from the buffer: 1 done, 0 need more. */
static int cut(tc *c, tframe *f)
{
    if (!c->len)
        return 0;
    size_t i = 0;
    while (i < c->len && (c->buf[i] == '\n' || c->buf[i] == '\r')) {
        if (c->buf[i] == '\n')
            c->heartbeats++;
        i++;
    }
    memmove(c->buf, c->buf + i, c->len - i);
    c->len -= i;
    char *end = memmem(c->buf, c->len, "\n\n", 2);
    if (!end)
        return 0;
    size_t hdr_len = (size_t)(end - c->buf) + 2;
    /* content-length, if any */
    long long clen = -1;
    char *p = c->buf;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end + 1 - p));
        if (!nl)
            break;
        if ((size_t)(nl - p) > 15 && memcmp(p, "content-length:", 15) == 0 && clen < 0)
            clen = atoll(p + 15);
        p = nl + 1;
    }
    size_t total;
    if (clen >= 0) {
        if (c->len < hdr_len + (size_t)clen + 1)
            return 0;
        total = hdr_len + (size_t)clen + 1;
    } else {
        char *nul = memchr(c->buf + hdr_len, '\0', c->len - hdr_len);
        if (!nul)
            return 0;
        total = (size_t)(nul - c->buf) + 1;
        clen = (long long)(total - 1 - hdr_len);
    }
    memset(f, 0, sizeof *f);
    f->raw = malloc(total + 1);
    memcpy(f->raw, c->buf, total);
    f->raw[total] = '\0';
    memmove(c->buf, c->buf + total, c->len - total);
    c->len -= total;
    /* split command and headers in place */
    char *line = f->raw;
    char *hend = f->raw + hdr_len - 1; /* the blank line's LF */
    int first = 1;
    while (line < hend) {
        char *nl = memchr(line, '\n', (size_t)(hend - line + 1));
        *nl = '\0';
        if (first) {
            snprintf(f->cmd, sizeof f->cmd, "%s", line);
            first = 0;
        } else if (*line && f->nheaders < 128) {
            char *colon = strchr(line, ':');
            if (colon) {
                *colon = '\0';
                f->names[f->nheaders] = line;
                f->values[f->nheaders] = colon + 1;
                f->nheaders++;
            }
        }
        line = nl + 1;
    }
    f->body = f->raw + hdr_len;
    f->body_len = (size_t)clen;
    return 1;
}

int tc_read(tc *c, tframe *f, int timeout_ms)
{
    long long deadline = tl_now_ms() + timeout_ms;
    for (;;) {
        if (cut(c, f))
            return 0;
        int r = fill(c, deadline);
        if (r == 0)
            return -1;
        if (r < 0)
            return -2;
    }
}

int tc_expect(tc *c, const char *cmd, tframe *f)
{
    for (;;) {
        int r = tc_read(c, f, TL_TIMEOUT_MS);
        if (r != 0)
            return r;
        if (strcmp(f->cmd, cmd) == 0)
            return 0;
        tf_free(f);
    }
}

int tc_is(tc *c, const char *cmd, tframe *f)
{
    if (tc_read(c, f, TL_TIMEOUT_MS) != 0) {
        memset(f, 0, sizeof *f);
        return 0;
    }
    if (strcmp(f->cmd, cmd) != 0) {
        fprintf(stderr, "expected %s, got %s (message: %s)\n", cmd, f->cmd,
                tf_header(f, "message") ? tf_header(f, "message") : "-");
        return 0;
    }
    return 1;
}

int tc_closed(tc *c, int timeout_ms)
{
    long long deadline = tl_now_ms() + timeout_ms;
    for (;;) {
        tframe f;
        while (cut(c, &f))
            tf_free(&f);
        int r = fill(c, deadline);
        if (r == 0)
            return 0;
        if (r < 0)
            return 1;
    }
}

int tc_wait_heartbeats(tc *c, int n, int timeout_ms)
{
    long long deadline = tl_now_ms() + timeout_ms;
    for (;;) {
        tframe f;
        while (cut(c, &f))
            tf_free(&f);
        if (c->heartbeats >= n)
            return 1;
        if (fill(c, deadline) <= 0)
            return c->heartbeats >= n;
    }
}

int tc_beat_times(tc *c, long long *at, int n, int timeout_ms)
{
    long long deadline = tl_now_ms() + timeout_ms;
    int got = 0, seen = c->heartbeats;
    while (got < n) {
        tframe f;
        while (cut(c, &f))
            tf_free(&f);
        long long now = tl_now_ms();
        while (c->heartbeats > seen && got < n) {
            at[got++] = now;
            seen++;
        }
        if (got == n || fill(c, deadline) <= 0)
            break;
    }
    return got;
}

void tc_close(tc *c)
{
    if (!c)
        return;
    close(c->fd);
    free(c->buf);
    free(c);
}

const char *tf_header(const tframe *f, const char *name)
{
    for (int i = 0; i < f->nheaders; i++)
        if (strcmp(f->names[i], name) == 0)
            return f->values[i];
    return NULL;
}

void tf_free(tframe *f)
{
    free(f->raw);
    f->raw = NULL;
}

/* ---- the same tests on the memory and the SQLite store ---- */

void tb_store_init(tb_store *s, int sqlite, const char *tag)
{
    const char *dir = getenv("TMPDIR");
    s->sqlite = sqlite;
    snprintf(s->path, sizeof s->path, "%s/stompd-%s-%d.db", dir && *dir ? dir : "/tmp", tag,
             (int)getpid());
    tb_store_remove(s);
}

void tb_store_remove(const tb_store *s)
{
    static const char *const suffix[] = { "", "-wal", "-shm", "-lock", "-journal" };
    char p[160];
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s%s", s->path, suffix[i]);
        unlink(p);
    }
}

void tb_store_use(const tb_store *s, broker_options *o)
{
    if (s->sqlite) {
        o->store = store_sqlite_backend();
        o->store_path = s->path;
    }
}
