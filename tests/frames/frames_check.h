/* frames_check.h: shared by the frames tests. parse_check() parses a byte string in one
 * feed, one byte at a time and split in two at every offset, asserts that every run gives
 * the same events, frames and error, and hands back the one-feed result for exact checks.
 * Include after cmocka.h; everything here is static. */
#ifndef FRAMES_CHECK_H
#define FRAMES_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stomp.h"

/* A string literal that may hold NULs, as (pointer, length). */
#define S(lit) (lit), (sizeof(lit) - 1)

/* No expected error offset. */
#define NOOFF UINT64_MAX

typedef struct rec_header {
    char *name;
    size_t name_len;
    char *value;
    size_t value_len;
} rec_header;

/* One event, with a deep copy of its frame. */
typedef struct rec_event {
    stomp_event ev;
    uint64_t end; /* stream offset just past the event's last byte (FRAME, HEARTBEAT) */
    stomp_command cmd;
    char *cmd_name;
    size_t cmd_len;
    rec_header *headers;
    size_t nheaders;
    char *body;
    size_t body_len;
} rec_event;

typedef struct parse_result {
    rec_event *ev;
    size_t n, cap;
    int failed;       /* the run ended with STOMP_EV_ERROR */
    stomp_err err;    /* stomp_parser_error() after the error, STOMP_OK otherwise */
    uint64_t err_off; /* its offset */
    uint64_t tail;    /* bytes consumed after the last FRAME/HEARTBEAT (no error) */
} parse_result;

typedef struct parse_opts {
    stomp_version version;
    unsigned flags;
    const stomp_limits *limits; /* NULL: defaults */
    int switch_version;         /* start at 1.0, take version and flags after the 1st frame */
    stomp_realloc_fn alloc;     /* NULL: libc */
    void *alloc_ctx;
} parse_opts;

static inline stomp_limits limits_make(size_t cmd, size_t line, size_t nh, size_t hbytes,
                                       size_t body)
{
    stomp_limits l = { cmd, line, nh, hbytes, body };
    return l;
}

static inline void *check_dup(const void *p, size_t n)
{
    char *d = malloc(n + 1);
    assert_non_null(d);
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

static inline void result_init(parse_result *r)
{
    memset(r, 0, sizeof *r);
}

static inline void result_free(parse_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        rec_event *e = &r->ev[i];
        for (size_t j = 0; j < e->nheaders; j++) {
            free(e->headers[j].name);
            free(e->headers[j].value);
        }
        free(e->headers);
        free(e->cmd_name);
        free(e->body);
    }
    free(r->ev);
    memset(r, 0, sizeof *r);
}

static inline rec_event *result_push(parse_result *r, stomp_event ev, uint64_t end)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 8;
        rec_event *nev = realloc(r->ev, cap * sizeof *nev);
        assert_non_null(nev);
        r->ev = nev;
        r->cap = cap;
    }
    rec_event *e = &r->ev[r->n++];
    memset(e, 0, sizeof *e);
    e->ev = ev;
    e->end = end;
    return e;
}

/* Copy a parsed frame, checking the invariants the header promises about it. */
static inline void record_frame(rec_event *e, const stomp_frame *f)
{
    assert_non_null(f);
    assert_non_null(f->cmd_name);
    assert_int_equal(f->cmd_name[f->cmd_len], '\0');
    assert_int_equal(f->cmd, stomp_command_lookup(f->cmd_name, f->cmd_len));
    e->cmd = f->cmd;
    e->cmd_name = check_dup(f->cmd_name, f->cmd_len);
    e->cmd_len = f->cmd_len;
    e->nheaders = f->nheaders;
    if (f->nheaders) {
        assert_non_null(f->headers);
        e->headers = calloc(f->nheaders, sizeof *e->headers);
        assert_non_null(e->headers);
    }
    for (size_t i = 0; i < f->nheaders; i++) {
        const stomp_header *h = &f->headers[i];
        assert_non_null(h->name);
        assert_non_null(h->value);
        assert_int_equal(h->name[h->name_len], '\0');
        assert_int_equal(h->value[h->value_len], '\0');
        assert_null(memchr(h->value, '\0', h->value_len));
        e->headers[i].name = check_dup(h->name, h->name_len);
        e->headers[i].name_len = h->name_len;
        e->headers[i].value = check_dup(h->value, h->value_len);
        e->headers[i].value_len = h->value_len;
    }
    assert_non_null(f->body);
    assert_int_equal(f->body[f->body_len], '\0');
    e->body = check_dup(f->body, f->body_len);
    e->body_len = f->body_len;
}

/* Parse data fed in the chunks that end at cuts[0] < cuts[1] < ... (the last chunk ends
 * at len), recording every event. */
static inline void run_chunks(const parse_opts *o, const char *data, size_t len,
                              const size_t *cuts, size_t ncuts, parse_result *r)
{
    stomp_parser p;
    uint64_t total = 0, last_end = 0;
    size_t start = 0;

    result_init(r);
    stomp_parser_init(&p, o->limits, o->alloc, o->alloc_ctx);
    if (!o->switch_version)
        stomp_parser_set_version(&p, o->version, o->flags);
    for (size_t c = 0; c <= ncuts && !r->failed; c++) {
        size_t stop = c < ncuts ? cuts[c] : len;
        const char *chunk = data + start;
        size_t clen = stop - start, pos = 0;
        start = stop;
        while (pos < clen) {
            size_t consumed = (size_t)-1;
            stomp_event ev = stomp_parser_feed(&p, chunk + pos, clen - pos, &consumed);
            assert_true(consumed <= clen - pos);
            pos += consumed;
            total += consumed;
            if (ev == STOMP_EV_NEED_MORE) {
                /* every byte is used when no event is found */
                assert_int_equal(pos, clen);
                assert_null(stomp_parser_frame(&p));
                break;
            }
            if (ev == STOMP_EV_ERROR) {
                r->failed = 1;
                r->err = stomp_parser_error(&p, &r->err_off);
                assert_int_not_equal(r->err, STOMP_OK);
                assert_null(stomp_parser_frame(&p));
                result_push(r, ev, total);
                /* the error sticks until reset */
                size_t again = 0;
                assert_int_equal(stomp_parser_feed(&p, data, len, &again), STOMP_EV_ERROR);
                assert_int_equal(again, 0);
                assert_int_equal(stomp_parser_feed(&p, data, 0, &again), STOMP_EV_ERROR);
                uint64_t off2 = 0;
                assert_int_equal(stomp_parser_error(&p, &off2), r->err);
                assert_true(off2 == r->err_off);
                break;
            }
            /* a frame or heart-beat ends on a byte of this call: NUL or LF */
            assert_true(consumed > 0);
            rec_event *e = result_push(r, ev, total);
            last_end = total;
            if (ev == STOMP_EV_FRAME) {
                assert_int_equal(chunk[pos - 1], '\0');
                record_frame(e, stomp_parser_frame(&p));
                if (o->switch_version && r->n == 1)
                    stomp_parser_set_version(&p, o->version, o->flags);
            } else {
                assert_int_equal(ev, STOMP_EV_HEARTBEAT);
                assert_int_equal(chunk[pos - 1], '\n');
                assert_null(stomp_parser_frame(&p));
            }
        }
    }
    if (!r->failed) {
        assert_int_equal(total, len);
        assert_int_equal(stomp_parser_error(&p, NULL), STOMP_OK);
        r->tail = total - last_end;
    }
    stomp_parser_free(&p);
}

/* NULL if events x and y are the same, else what differs (static text). */
static inline const char *event_diff(const rec_event *x, const rec_event *y)
{
    if (x->ev != y->ev)
        return "event kind";
    if (x->ev == STOMP_EV_ERROR)
        return NULL;
    if (x->end != y->end)
        return "event end offset";
    if (x->ev != STOMP_EV_FRAME)
        return NULL;
    if (x->cmd != y->cmd || x->cmd_len != y->cmd_len ||
        memcmp(x->cmd_name, y->cmd_name, x->cmd_len) != 0)
        return "command";
    if (x->nheaders != y->nheaders)
        return "number of headers";
    for (size_t j = 0; j < x->nheaders; j++) {
        const rec_header *h = &x->headers[j], *k = &y->headers[j];
        if (h->name_len != k->name_len || memcmp(h->name, k->name, h->name_len) != 0)
            return "header name";
        if (h->value_len != k->value_len || memcmp(h->value, k->value, h->value_len) != 0)
            return "header value";
    }
    if (x->body_len != y->body_len || memcmp(x->body, y->body, x->body_len) != 0)
        return "body";
    return NULL;
}

/* NULL if a and b are the same, else what differs (static text). */
static inline const char *result_diff(const parse_result *a, const parse_result *b)
{
    if (a->n != b->n)
        return "number of events";
    if (a->failed != b->failed || a->err != b->err)
        return "error code";
    if (a->failed && a->err_off != b->err_off)
        return "error offset";
    if (!a->failed && a->tail != b->tail)
        return "bytes pending after the last event";
    for (size_t i = 0; i < a->n; i++) {
        const char *d = event_diff(&a->ev[i], &b->ev[i]);
        if (d)
            return d;
    }
    return NULL;
}

/* Parse data in one feed, then one byte at a time, then split in two at every offset
 * (with edge > 0: only the offsets within edge bytes of either end, and every 509th in
 * between, for inputs too large to split everywhere); assert every run matches the first.
 * r receives the one-feed result (result_free it). */
static inline void parse_check_edges(const parse_opts *o, const char *data, size_t len,
                                     size_t edge, parse_result *r)
{
    parse_result other;
    const char *d;

    run_chunks(o, data, len, NULL, 0, r);

    size_t *cuts = malloc((len ? len : 1) * sizeof *cuts);
    assert_non_null(cuts);
    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    run_chunks(o, data, len, cuts, len ? len - 1 : 0, &other);
    d = result_diff(r, &other);
    result_free(&other);
    if (d)
        fail_msg("one byte at a time differs from one feed: %s", d);

    for (size_t i = 1; i < len; i++) {
        if (edge && i > edge && i + edge < len && i % 509 != 0)
            continue;
        cuts[0] = i;
        run_chunks(o, data, len, cuts, 1, &other);
        d = result_diff(r, &other);
        result_free(&other);
        if (d)
            fail_msg("split at offset %zu differs from one feed: %s", i, d);
    }
    free(cuts);
}

/* parse_check_edges() splitting at every offset. */
static inline void parse_check(const parse_opts *o, const char *data, size_t len,
                               parse_result *r)
{
    parse_check_edges(o, data, len, 0, r);
}

/* Events of r as letters: F frame, H heart-beat, E error. */
static inline void expect_events(const parse_result *r, const char *kinds)
{
    char got[256];
    size_t n = 0;
    for (size_t i = 0; i < r->n && n + 1 < sizeof got; i++)
        got[n++] = r->ev[i].ev == STOMP_EV_FRAME ? 'F'
                   : r->ev[i].ev == STOMP_EV_HEARTBEAT ? 'H'
                   : r->ev[i].ev == STOMP_EV_ERROR ? 'E'
                                                   : '?';
    got[n] = '\0';
    assert_string_equal(got, kinds);
}

/* Event i is a frame with this command, body and exactly these nh headers, given as
 * name, value pairs of C strings, in wire order. */
static inline void expect_frame(const parse_result *r, size_t i, stomp_command cmd,
                                const char *cmd_name, const char *body, size_t body_len,
                                size_t nh, ...)
{
    va_list ap;
    assert_true(i < r->n);
    const rec_event *e = &r->ev[i];
    assert_int_equal(e->ev, STOMP_EV_FRAME);
    assert_int_equal(e->cmd, cmd);
    assert_string_equal(e->cmd_name, cmd_name);
    assert_int_equal(e->cmd_len, strlen(cmd_name));
    assert_int_equal(e->nheaders, nh);
    va_start(ap, nh);
    for (size_t j = 0; j < nh; j++) {
        const char *name = va_arg(ap, const char *);
        const char *value = va_arg(ap, const char *);
        assert_int_equal(e->headers[j].name_len, strlen(name));
        assert_string_equal(e->headers[j].name, name);
        assert_int_equal(e->headers[j].value_len, strlen(value));
        assert_string_equal(e->headers[j].value, value);
    }
    va_end(ap);
    assert_int_equal(e->body_len, body_len);
    if (body_len)
        assert_memory_equal(e->body, body, body_len);
}

/* The run ended with this error at this offset (NOOFF: offset not checked). */
static inline void expect_error(const parse_result *r, stomp_err err, uint64_t off)
{
    assert_true(r->failed);
    assert_true(r->n > 0);
    assert_int_equal(r->ev[r->n - 1].ev, STOMP_EV_ERROR);
    if (r->err != err)
        fail_msg("error %d (%s), expected %d (%s)", (int)r->err, stomp_strerror(r->err),
                 (int)err, stomp_strerror(err));
    if (off != NOOFF && r->err_off != off)
        fail_msg("error offset %llu, expected %llu", (unsigned long long)r->err_off,
                 (unsigned long long)off);
}

/* The run ended without error, with no partial frame pending. */
static inline void expect_clean(const parse_result *r)
{
    if (r->failed)
        fail_msg("unexpected error %d (%s) at offset %llu", (int)r->err,
                 stomp_strerror(r->err), (unsigned long long)r->err_off);
    assert_int_equal(r->tail, 0);
}

#endif
