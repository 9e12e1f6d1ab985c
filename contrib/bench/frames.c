/* frames.c: throughput of the frame codec. Parses SEND frames fed in socket-sized chunks
 * and encodes MESSAGE frames, with small and large bodies, and prints one table row each.
 * MESSAGE frames are encoded twice: whole with stomp_encode, and as a broker delivers them
 * (stomp_message_head + stomp_message_encode from packed headers).
 * Inputs are generated once, checked frame by frame before timing, and every timed run
 * must count the frames and body bytes it was given, so a row cannot report a bogus rate.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stomp.h"

typedef struct options {
    double seconds;   /* per row */
    size_t chunk;     /* bytes per feed, like one socket read */
    size_t input;     /* bytes of pre-generated SEND frames, parsed over and over */
    stomp_version version;
} options;

static _Noreturn void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("frames: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        die("clock_gettime: %s", strerror(errno));
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

/* Body byte j of frame i: varies with both, so a misplaced body does not compare equal. */
static char body_byte(size_t i, size_t j)
{
    return (char)('a' + (i * 7 + j) % 26);
}

static void fill_body(char *out, size_t i, size_t len)
{
    for (size_t j = 0; j < len; j++)
        out[j] = body_byte(i, j);
}

typedef struct row {
    const char *name;
    size_t frame_bytes; /* wire size of one frame */
    uint64_t frames;    /* in the whole run */
    double seconds;
    double fps, mbps;   /* medians over the slices */
} row;

/* A row's time is cut into slices and the median slice rate reported, so a moment of
 * competition for the CPU does not decide the figure. */
enum { SLICES = 10 };

typedef struct timer {
    double start, slice_start, slice_len;
    uint64_t frames, bytes; /* totals at slice_start */
    double fps[SLICES], bps[SLICES];
    int n;
} timer;

static timer timer_start(double seconds)
{
    timer t;
    memset(&t, 0, sizeof t);
    t.start = t.slice_start = now();
    t.slice_len = seconds / SLICES;
    return t;
}

/* Call with running totals; returns 0 once the last slice is over. */
static int timer_tick(timer *t, uint64_t frames, uint64_t bytes)
{
    double at = now(), dt = at - t->slice_start;
    if (dt < t->slice_len)
        return 1;
    t->fps[t->n] = (double)(frames - t->frames) / dt;
    t->bps[t->n] = (double)(bytes - t->bytes) / dt;
    t->n++;
    t->slice_start = at;
    t->frames = frames;
    t->bytes = bytes;
    return t->n < SLICES;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v)
{
    qsort(v, SLICES, sizeof *v, cmp_double);
    return (v[SLICES / 2 - 1] + v[SLICES / 2]) / 2;
}

static row timer_row(timer *t, const char *name, size_t frame_bytes, uint64_t frames)
{
    row r = { name, frame_bytes, frames, t->slice_start - t->start, 0, 0 };
    r.fps = median(t->fps);
    r.mbps = median(t->bps) / 1e6;
    return r;
}

/* ---- parsing ---- */

typedef struct send_input {
    char *buf;
    size_t len, nframes, body_len, frame_len;
} send_input;

/* SEND frames as a producer writes them, back to back, to at least want bytes. */
static send_input make_sends(size_t body_len, size_t want)
{
    send_input in = { NULL, 0, 0, body_len, 0 };
    char head[256];
    /* every frame has the same length: the receipt id is fixed-width */
    int hl = snprintf(head, sizeof head,
                      "SEND\ndestination:/queue/orders.eu\ncontent-type:application/json\n"
                      "receipt:r-%08zu\ncontent-length:%zu\n\n",
                      (size_t)0, body_len);
    in.frame_len = (size_t)hl + body_len + 1;
    in.nframes = (want + in.frame_len - 1) / in.frame_len;
    if (in.nframes == 0)
        in.nframes = 1;
    if (in.nframes > 99999999)
        die("input too large");
    in.len = in.nframes * in.frame_len;
    in.buf = xmalloc(in.len);
    char *o = in.buf;
    for (size_t i = 0; i < in.nframes; i++) {
        hl = snprintf(head, sizeof head,
                      "SEND\ndestination:/queue/orders.eu\ncontent-type:application/json\n"
                      "receipt:r-%08zu\ncontent-length:%zu\n\n",
                      i, body_len);
        memcpy(o, head, (size_t)hl);
        o += hl;
        fill_body(o, i, body_len);
        o += body_len;
        *o++ = '\0';
    }
    if ((size_t)(o - in.buf) != in.len)
        die("generated %zu bytes, expected %zu", (size_t)(o - in.buf), in.len);
    return in;
}

static void check_send(const stomp_frame *f, size_t i, const send_input *in, char *expect)
{
    char receipt[32];
    snprintf(receipt, sizeof receipt, "r-%08zu", i);
    const char *r = stomp_frame_header(f, "receipt", NULL);
    const char *d = stomp_frame_header(f, "destination", NULL);
    if (f->cmd != STOMP_CMD_SEND || f->nheaders != 4 || !r || strcmp(r, receipt) != 0 || !d ||
        strcmp(d, "/queue/orders.eu") != 0)
        die("frame %zu parsed wrongly", i);
    fill_body(expect, i, in->body_len);
    if (f->body_len != in->body_len || memcmp(f->body, expect, in->body_len) != 0)
        die("frame %zu: body differs", i);
}

/* Feed the whole input once in chunks; check every frame when expect is given.
 * Returns the frames seen; adds their body bytes to *body. */
static uint64_t parse_once(stomp_parser *p, const send_input *in, size_t chunk, char *expect,
                           uint64_t *body)
{
    uint64_t frames = 0;
    for (size_t off = 0; off < in->len;) {
        size_t n = in->len - off < chunk ? in->len - off : chunk;
        while (n > 0) {
            size_t used = 0;
            stomp_event ev = stomp_parser_feed(p, in->buf + off, n, &used);
            off += used;
            n -= used;
            if (ev == STOMP_EV_FRAME) {
                const stomp_frame *f = stomp_parser_frame(p);
                if (expect)
                    check_send(f, (size_t)frames, in, expect);
                *body += f->body_len;
                frames++;
            } else if (ev != STOMP_EV_NEED_MORE) {
                die("unexpected event %d (%s)", (int)ev,
                    stomp_strerror(stomp_parser_error(p, NULL)));
            }
        }
    }
    return frames;
}

static row bench_parse(const char *name, size_t body_len, unsigned flags, const options *o)
{
    send_input in = make_sends(body_len, o->input);
    stomp_parser p;
    stomp_parser_init(&p, NULL, NULL, NULL);
    stomp_parser_set_version(&p, o->version, flags);

    /* Untimed: every frame checked byte for byte (and caches warmed). */
    char *expect = xmalloc(body_len);
    uint64_t body = 0;
    if (parse_once(&p, &in, o->chunk, expect, &body) != in.nframes)
        die("%s: wrong frame count", name);
    free(expect);

    uint64_t frames = 0, passes = 0;
    body = 0;
    timer t = timer_start(o->seconds);
    do {
        frames += parse_once(&p, &in, o->chunk, NULL, &body);
        passes++;
    } while (timer_tick(&t, frames, passes * in.len));

    if (frames != passes * in.nframes || body != frames * body_len)
        die("%s: parsed %llu frames / %llu body bytes, expected %llu / %llu", name,
            (unsigned long long)frames, (unsigned long long)body,
            (unsigned long long)(passes * in.nframes),
            (unsigned long long)(passes * in.nframes * body_len));
    stomp_parser_free(&p);
    free(in.buf);
    return timer_row(&t, name, in.frame_len, frames);
}

/* ---- encoding ---- */

enum { MSG_RING = 256 };

typedef struct msg_input {
    stomp_frame frames[MSG_RING];
    stomp_header headers[MSG_RING][5];
    char ids[MSG_RING][32];
    char *body;
    size_t sizes[MSG_RING];
} msg_input;

/* MESSAGE frames as the broker builds them for delivery: one per message id. */
static void make_messages(msg_input *m, size_t body_len)
{
    m->body = xmalloc(body_len + 1);
    fill_body(m->body, 0, body_len);
    for (size_t i = 0; i < MSG_RING; i++) {
        snprintf(m->ids[i], sizeof m->ids[i], "ID:stompd-1a2b-%08zu", i);
        stomp_header *h = m->headers[i];
        const char *kv[5][2] = {
            { "destination", "/queue/orders.eu" },
            { "message-id", m->ids[i] },
            { "subscription", "sub-0" },
            { "ack", m->ids[i] },
            { "content-type", "application/json" },
        };
        for (size_t k = 0; k < 5; k++)
            h[k] = (stomp_header){ kv[k][0], strlen(kv[k][0]), kv[k][1], strlen(kv[k][1]) };
        m->frames[i] = (stomp_frame){ STOMP_CMD_MESSAGE, "MESSAGE", 7, h, 5, m->body, body_len };
    }
}

/* Encode each frame once and parse it back. */
static size_t check_messages(msg_input *m, stomp_version v)
{
    stomp_parser p;
    stomp_parser_init(&p, NULL, NULL, NULL);
    stomp_parser_set_version(&p, v, 0);
    size_t max = 0;
    for (size_t i = 0; i < MSG_RING; i++) {
        stomp_err err = STOMP_OK;
        size_t n = stomp_encoded_size(&m->frames[i], v, 0, &err);
        if (n == 0)
            die("encoded_size: %s", stomp_strerror(err));
        char *out = xmalloc(n);
        if (stomp_encode(&m->frames[i], v, 0, out, n, &err) != n)
            die("encode: %s", stomp_strerror(err));
        size_t used = 0;
        if (stomp_parser_feed(&p, out, n, &used) != STOMP_EV_FRAME || used != n)
            die("encoded MESSAGE does not parse back");
        const stomp_frame *f = stomp_parser_frame(&p);
        const char *id = stomp_frame_header(f, "message-id", NULL);
        if (f->cmd != STOMP_CMD_MESSAGE || f->nheaders != 6 || !id ||
            strcmp(id, m->ids[i]) != 0 || f->body_len != m->frames[i].body_len ||
            memcmp(f->body, m->body, f->body_len) != 0)
            die("encoded MESSAGE %zu differs", i);
        m->sizes[i] = n;
        if (n > max)
            max = n;
        free(out);
    }
    stomp_parser_free(&p);
    return max;
}

static row bench_encode(const char *name, size_t body_len, const options *o)
{
    msg_input *m = xmalloc(sizeof *m);
    make_messages(m, body_len);
    size_t cap = check_messages(m, o->version);
    char *out = xmalloc(cap);

    uint64_t frames = 0, bytes = 0;
    timer t = timer_start(o->seconds);
    do {
        for (size_t i = 0; i < MSG_RING; i++) {
            stomp_err err;
            const stomp_frame *f = &m->frames[i];
            /* what the broker does per delivery: size, then encode into a buffer that fits */
            size_t n = stomp_encoded_size(f, o->version, 0, &err);
            size_t w = stomp_encode(f, o->version, 0, out, n <= cap ? n : cap, &err);
            if (w != m->sizes[i] || out[w - 1] != '\0')
                die("%s: frame %zu encoded to %zu bytes, expected %zu", name, i, w,
                    m->sizes[i]);
            bytes += w;
        }
        frames += MSG_RING;
    } while (timer_tick(&t, frames, bytes));

    size_t frame_bytes = m->sizes[0];
    free(out);
    free(m->body);
    free(m);
    return timer_row(&t, name, frame_bytes, frames);
}

/* The same MESSAGE frames as a broker delivers them with stomp_message_*: the SEND's
 * headers packed (as a store keeps them), a head per subscriber, the shared part. */
static size_t deliver_one(const msg_input *m, size_t i, const char *packed, size_t packed_len,
                          stomp_version v, char *out, size_t cap)
{
    const char *id = m->ids[i];
    size_t id_len = strlen(id);
    stomp_message msg = { "/queue/orders.eu", 16, id, id_len, 0, NULL, packed, packed_len,
                          m->body, m->frames[i].body_len };
    size_t hs = stomp_message_head_size("sub-0", 5, id, id_len, v);
    if (hs == 0 || hs + stomp_message_bound(&msg) > cap ||
        stomp_message_head("sub-0", 5, id, id_len, v, out) != hs)
        die("delivery %zu does not fit", i);
    stomp_err err;
    size_t n = stomp_message_encode(&msg, v, out + hs, cap - hs, &err);
    if (n == 0)
        die("message_encode: %s", stomp_strerror(err));
    return hs + n;
}

static row bench_deliver(const char *name, size_t body_len, const options *o)
{
    msg_input *m = xmalloc(sizeof *m);
    make_messages(m, body_len);
    check_messages(m, o->version);
    stomp_header ct = { "content-type", 12, "application/json", 16 };
    stomp_frame send = { STOMP_CMD_SEND, "SEND", 4, &ct, 1, NULL, 0 };
    char packed[64];
    size_t packed_len = stomp_pack_headers(&send, packed);
    size_t cap = body_len + 1024;
    char *out = xmalloc(cap);

    /* Untimed: the same frame as stomp_encode's, headers in another order. */
    stomp_parser p;
    stomp_parser_init(&p, NULL, NULL, NULL);
    stomp_parser_set_version(&p, o->version, 0);
    for (size_t i = 0; i < MSG_RING; i++) {
        size_t n = deliver_one(m, i, packed, packed_len, o->version, out, cap), used = 0;
        if (n != m->sizes[i] || stomp_parser_feed(&p, out, n, &used) != STOMP_EV_FRAME ||
            used != n)
            die("%s: delivery %zu differs from the encoded MESSAGE", name, i);
        const stomp_frame *f = stomp_parser_frame(&p);
        for (size_t k = 0; k < 5; k++) {
            const stomp_header *want = &m->frames[i].headers[k];
            const char *got = stomp_frame_header(f, want->name, NULL);
            if (!got || strcmp(got, want->value) != 0)
                die("%s: delivery %zu: header %s differs", name, i, want->name);
        }
        if (f->nheaders != 6 || f->body_len != body_len ||
            memcmp(f->body, m->body, body_len) != 0)
            die("%s: delivery %zu differs", name, i);
    }
    stomp_parser_free(&p);

    uint64_t frames = 0, bytes = 0;
    timer t = timer_start(o->seconds);
    do {
        for (size_t i = 0; i < MSG_RING; i++) {
            size_t w = deliver_one(m, i, packed, packed_len, o->version, out, cap);
            if (w != m->sizes[i] || out[w - 1] != '\0')
                die("%s: frame %zu encoded to %zu bytes, expected %zu", name, i, w,
                    m->sizes[i]);
            bytes += w;
        }
        frames += MSG_RING;
    } while (timer_tick(&t, frames, bytes));

    size_t frame_bytes = m->sizes[0];
    free(out);
    free(m->body);
    free(m);
    return timer_row(&t, name, frame_bytes, frames);
}

/* ---- driver ---- */

static void print_row(row r)
{
    printf("%-22s %8zu %12llu %8.3f %14.0f %10.1f\n", r.name, r.frame_bytes,
           (unsigned long long)r.frames, r.seconds, r.fps, r.mbps);
    fflush(stdout);
}

static void usage(FILE *to)
{
    fputs("usage: frames [-t SECONDS] [-c CHUNK] [-i INPUT] [-v 1.0|1.1|1.2]\n"
          "  -t  seconds per row (default 1)\n"
          "  -c  bytes per parser feed (default 65536)\n"
          "  -i  bytes of SEND frames generated once and parsed repeatedly (default 1048576)\n"
          "  -v  protocol version of the session (default 1.2)\n",
          to);
}

static size_t parse_size(const char *s, const char *what)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v == 0 || v > SIZE_MAX / 4)
        die("bad %s: %s", what, s);
    return (size_t)v;
}

int main(int argc, char **argv)
{
    options o = { 1.0, 65536, 1u << 20, STOMP_V12 };
    int c;
    while ((c = getopt(argc, argv, "t:c:i:v:h")) != -1) {
        switch (c) {
        case 't': {
            char *end;
            o.seconds = strtod(optarg, &end);
            if (end == optarg || *end || !(o.seconds > 0 && o.seconds < 3600))
                die("bad seconds: %s", optarg);
            break;
        }
        case 'c': o.chunk = parse_size(optarg, "chunk"); break;
        case 'i': o.input = parse_size(optarg, "input size"); break;
        case 'v':
            if (strcmp(optarg, "1.0") == 0)
                o.version = STOMP_V10;
            else if (strcmp(optarg, "1.1") == 0)
                o.version = STOMP_V11;
            else if (strcmp(optarg, "1.2") == 0)
                o.version = STOMP_V12;
            else
                die("bad version: %s", optarg);
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    static const char *const vnames[] = { "1.0", "1.1", "1.2" };
    printf("frame codec, STOMP %s, %zu-byte feeds, %g s per row (rates: median of %d slices)\n",
           vnames[o.version], o.chunk, o.seconds, SLICES);
    printf("%-22s %8s %12s %8s %14s %10s\n", "", "frame B", "frames", "seconds", "frames/s",
           "MB/s");
    print_row(bench_parse("parse SEND 100 B", 100, 0, &o));
    print_row(bench_parse("parse SEND 4 KiB", 4096, 0, &o));
    print_row(bench_parse("parse 100 B, UTF-8", 100, STOMP_PARSE_UTF8, &o));
    print_row(bench_encode("encode MESSAGE 100 B", 100, &o));
    print_row(bench_encode("encode MESSAGE 4 KiB", 4096, &o));
    print_row(bench_deliver("message_encode 100 B", 100, &o));
    print_row(bench_deliver("message_encode 4 KiB", 4096, &o));
    return 0;
}
