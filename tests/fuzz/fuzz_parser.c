/* fuzz_parser.c: libFuzzer target for the frames/ codec.
 *
 * An input is 4 setting bytes (see fuzz_settings.h) followed by a byte stream. The stream
 * is parsed in one feed and again in chunks: both must give the same frames, heart-beats
 * and errors. Every frame is checked against the header's promises, encoded for its
 * session's version and parsed back unchanged, and delivered as the SEND of a MESSAGE in
 * the session's version and parsed back. Optionally the stream is parsed once more with
 * an allocator that fails, which must end in STOMP_E_NOMEM or change nothing.
 * Built with -DSTOMP_FUZZ_REPLAY it gets a main() that replays files or directories.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stomp.h"
#include "fuzz_settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, msg)                                                                   \
    do {                                                                                   \
        if (!(cond))                                                                       \
            fail(__LINE__, #cond, msg);                                                    \
    } while (0)

static _Noreturn void fail(int line, const char *cond, const char *msg)
{
    fprintf(stderr, "fuzz_parser.c:%d: %s: %s\n", line, msg, cond);
    abort();
}

/* ---- an allocator that counts, can fail its Nth call, and catches leaks ---- */

typedef struct alloc_ctx {
    size_t calls;   /* allocations and resizes so far */
    size_t fail_at; /* fail this call (1-based); 0 never */
    bool refused;
    size_t live_blocks, live_bytes, peak_bytes;
} alloc_ctx;

typedef union block_head {
    size_t size;
    max_align_t align;
} block_head;

static void *counting_realloc(void *ctx, void *ptr, size_t size)
{
    alloc_ctx *a = ctx;
    block_head *old = ptr ? (block_head *)ptr - 1 : NULL;
    if (size == 0) {
        if (old) {
            CHECK(a->live_blocks > 0 && a->live_bytes >= old->size, "freeing unknown memory");
            a->live_blocks--;
            a->live_bytes -= old->size;
            free(old);
        }
        return NULL;
    }
    if (++a->calls == a->fail_at) {
        a->refused = true;
        return NULL;
    }
    if (size > SIZE_MAX - sizeof(block_head))
        return NULL;
    size_t old_size = old ? old->size : 0;
    block_head *b = realloc(old, sizeof(block_head) + size);
    if (!b)
        return NULL;
    b->size = size;
    if (!old)
        a->live_blocks++;
    a->live_bytes = a->live_bytes - old_size + size;
    if (a->live_bytes > a->peak_bytes)
        a->peak_bytes = a->live_bytes;
    return b + 1;
}

/* ---- growable byte buffer; event logs are serialized into one ---- */

typedef struct bytes {
    unsigned char *p;
    size_t len, cap;
} bytes;

static void bytes_put(bytes *b, const void *src, size_t n)
{
    if (n == 0)
        return;
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        CHECK(p != NULL, "out of memory in the harness");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u64(bytes *b, uint64_t v) { bytes_put(b, &v, sizeof v); }

static void put_str(bytes *b, const char *s, size_t n)
{
    put_u64(b, n);
    bytes_put(b, s, n);
}

static uint64_t get_u64(const unsigned char **p)
{
    uint64_t v;
    memcpy(&v, *p, sizeof v);
    *p += sizeof v;
    return v;
}

/* Records: 'F' pos cmd cmd_name nheaders (name value)* body | 'H' pos | 'E' err offset.
 * pos is the stream offset just after the event; strings are length then bytes. */
typedef struct evlog {
    bytes b;
    size_t last; /* start of the last record */
} evlog;

static void log_frame(evlog *lg, const stomp_frame *f, uint64_t pos)
{
    lg->last = lg->b.len;
    bytes_put(&lg->b, "F", 1);
    put_u64(&lg->b, pos);
    put_u64(&lg->b, (uint64_t)f->cmd);
    put_str(&lg->b, f->cmd_name, f->cmd_len);
    put_u64(&lg->b, f->nheaders);
    for (size_t i = 0; i < f->nheaders; i++) {
        put_str(&lg->b, f->headers[i].name, f->headers[i].name_len);
        put_str(&lg->b, f->headers[i].value, f->headers[i].value_len);
    }
    put_str(&lg->b, f->body, f->body_len);
}

static void log_heartbeat(evlog *lg, uint64_t pos)
{
    lg->last = lg->b.len;
    bytes_put(&lg->b, "H", 1);
    put_u64(&lg->b, pos);
}

static void log_error(evlog *lg, stomp_err err, uint64_t offset)
{
    lg->last = lg->b.len;
    bytes_put(&lg->b, "E", 1);
    put_u64(&lg->b, (uint64_t)err);
    put_u64(&lg->b, offset);
}

static void dump_str(const unsigned char **p)
{
    uint64_t n = get_u64(p);
    fputc('"', stderr);
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (*p)[i];
        if (i == 80) {
            fprintf(stderr, "...(%" PRIu64 " bytes)", n);
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            fputc(c, stderr);
        else
            fprintf(stderr, "\\x%02x", c);
    }
    fputc('"', stderr);
    *p += n;
}

static void dump_log(const char *title, const evlog *lg)
{
    fprintf(stderr, "-- %s\n", title);
    const unsigned char *p = lg->b.p, *end = p ? p + lg->b.len : NULL;
    while (p && p < end) {
        unsigned char type = *p++;
        if (type == 'F') {
            uint64_t pos = get_u64(&p), cmd = get_u64(&p);
            fprintf(stderr, "  FRAME end=%" PRIu64 " cmd=%" PRIu64 " ", pos, cmd);
            dump_str(&p);
            uint64_t n = get_u64(&p);
            for (uint64_t i = 0; i < n; i++) {
                fputs("\n    ", stderr);
                dump_str(&p);
                fputc(':', stderr);
                dump_str(&p);
            }
            fputs("\n    body ", stderr);
            dump_str(&p);
            fputc('\n', stderr);
        } else if (type == 'H') {
            fprintf(stderr, "  HEARTBEAT end=%" PRIu64 "\n", get_u64(&p));
        } else {
            uint64_t err = get_u64(&p), off = get_u64(&p);
            fprintf(stderr, "  ERROR %s at %" PRIu64 "\n", stomp_strerror((stomp_err)err), off);
        }
    }
}

/* ---- what every parsed frame must satisfy ---- */

static bool is_connect_family(stomp_command c)
{
    return c == STOMP_CMD_CONNECT || c == STOMP_CMD_STOMP || c == STOMP_CMD_CONNECTED;
}

static bool may_have_body(stomp_command c)
{
    return c == STOMP_CMD_SEND || c == STOMP_CMD_MESSAGE || c == STOMP_CMD_ERROR;
}

static bool is_content_length(const stomp_header *h)
{
    return h->name_len == 14 && memcmp(h->name, "content-length", 14) == 0;
}

static bool same(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static void check_frame(const stomp_frame *f, const stomp_limits *lim)
{
    CHECK((unsigned)f->cmd < STOMP_CMD__COUNT, "command out of range");
    CHECK(f->cmd_name != NULL && f->cmd_len > 0, "empty command name");
    CHECK(f->cmd_name[f->cmd_len] == '\0', "command name not NUL-terminated");
    CHECK(memchr(f->cmd_name, '\0', f->cmd_len) == NULL, "NUL inside the command");
    CHECK(f->cmd_len <= lim->max_command, "command longer than max_command");
    CHECK(stomp_command_lookup(f->cmd_name, f->cmd_len) == f->cmd, "cmd disagrees with name");
    if (f->cmd != STOMP_CMD_UNKNOWN)
        CHECK(strcmp(stomp_command_name(f->cmd), f->cmd_name) == 0, "cmd name mismatch");

    CHECK(f->nheaders <= lim->max_headers, "more headers than max_headers");
    CHECK(f->nheaders == 0 || f->headers != NULL, "headers missing");
    /* Decoded text is never longer than what was on the wire. */
    uint64_t block = f->cmd_len + 1;
    for (size_t i = 0; i < f->nheaders; i++) {
        const stomp_header *h = &f->headers[i];
        CHECK(h->name != NULL && h->name_len > 0, "empty header name");
        CHECK(h->value != NULL, "header value missing");
        CHECK(h->name[h->name_len] == '\0', "header name not NUL-terminated");
        CHECK(h->value[h->value_len] == '\0', "header value not NUL-terminated");
        CHECK(memchr(h->name, '\0', h->name_len) == NULL, "NUL in a header name");
        CHECK(memchr(h->value, '\0', h->value_len) == NULL, "NUL in a header value");
        CHECK(h->name_len + 1 + h->value_len <= lim->max_header_line,
              "header line longer than max_header_line");
        block += h->name_len + 1 + h->value_len + 1;
        /* The first header of a name is the one stomp_frame_header() returns. */
        size_t first = 0;
        while (!same(f->headers[first].name, f->headers[first].name_len, h->name, h->name_len))
            first++;
        size_t vlen = SIZE_MAX;
        const char *v = stomp_frame_header(f, h->name, &vlen);
        CHECK(v != NULL, "stomp_frame_header missed a header");
        CHECK(same(v, vlen, f->headers[first].value, f->headers[first].value_len),
              "stomp_frame_header did not return the first value");
    }
    CHECK(block <= lim->max_header_bytes, "header block larger than max_header_bytes");

    CHECK(f->body != NULL, "body missing");
    CHECK(f->body[f->body_len] == '\0', "body not NUL-terminated");
    CHECK(f->body_len <= lim->max_body, "body larger than max_body");
    size_t cl_len = 0;
    const char *cl = stomp_frame_header(f, "content-length", &cl_len);
    if (cl && may_have_body(f->cmd)) {
        /* The first content-length decides the body, byte for byte. */
        bool digits = cl_len > 0 && cl_len < 19;
        uint64_t n = 0;
        for (size_t i = 0; digits && i < cl_len; i++) {
            digits = cl[i] >= '0' && cl[i] <= '9';
            n = n * 10 + (uint64_t)(cl[i] - '0');
        }
        if (digits)
            CHECK(n == f->body_len, "body length differs from content-length");
    } else if (f->cmd != STOMP_CMD_UNKNOWN) {
        CHECK(memchr(f->body, '\0', f->body_len) == NULL, "NUL in a body without length");
    }
}

/* ---- encode, parse back, compare ---- */

/* Escaping and the added content-length make a frame longer: parse it back unhindered. */
static const stomp_limits roundtrip_limits = { 1u << 20, 1u << 24, 1u << 16, 1u << 26,
                                               1u << 26 };

/* What cannot be written so that a parser of v reads it back: a CR, LF or NUL in the
 * command; a NUL in a header; where nothing is escaped (1.0, and CONNECT/STOMP/CONNECTED
 * in every version) a CR or LF in a header or a ':' in a header name; in 1.1, which has no
 * escape for it, a CR in a header. content-length headers are not written, so never count. */
static bool has_any(const char *s, size_t len, const char *set)
{
    for (; *set; set++)
        if (memchr(s, *set, len))
            return true;
    return false;
}

/* Can (s, len) not be written where escaped (or not) in version v? */
static bool cannot_write(const char *s, size_t len, bool escaped, stomp_version v, bool is_name)
{
    if (memchr(s, '\0', len))
        return true;
    const char *bad = !escaped ? "\r\n" : v == STOMP_V11 ? "\r" : "";
    return has_any(s, len, bad) || (!escaped && is_name && memchr(s, ':', len));
}

static bool expect_unencodable(const stomp_frame *f, stomp_version v)
{
    if (memchr(f->cmd_name, '\0', f->cmd_len) || has_any(f->cmd_name, f->cmd_len, "\r\n"))
        return true;
    bool escaped = v != STOMP_V10 && !is_connect_family(f->cmd);
    for (size_t i = 0; i < f->nheaders; i++) {
        const stomp_header *h = &f->headers[i];
        if (is_content_length(h))
            continue;
        if (cannot_write(h->name, h->name_len, escaped, v, true) ||
            cannot_write(h->value, h->value_len, escaped, v, false))
            return true;
    }
    return false;
}

static void compare_round_trip(const stomp_frame *a, const stomp_frame *b, unsigned eflags)
{
    CHECK(a->cmd == b->cmd, "round trip changed the command");
    CHECK(same(a->cmd_name, a->cmd_len, b->cmd_name, b->cmd_len),
          "round trip changed the command name");
    size_t i = 0, j = 0, ncl = 0;
    const stomp_header *cl = NULL;
    for (;;) {
        while (i < a->nheaders && is_content_length(&a->headers[i]))
            i++;
        while (j < b->nheaders && is_content_length(&b->headers[j])) {
            cl = &b->headers[j++];
            ncl++;
        }
        if (i == a->nheaders || j == b->nheaders)
            break;
        const stomp_header *x = &a->headers[i++], *y = &b->headers[j++];
        CHECK(same(x->name, x->name_len, y->name, y->name_len),
              "round trip changed a header name");
        CHECK(same(x->value, x->value_len, y->value, y->value_len),
              "round trip changed a header value");
    }
    CHECK(i == a->nheaders && j == b->nheaders, "round trip changed the header count");
    char want[24];
    int wlen = snprintf(want, sizeof want, "%zu", a->body_len);
    if (a->body_len > 0 || (eflags & STOMP_ENC_ALWAYS_LENGTH))
        CHECK(ncl == 1 && same(cl->value, cl->value_len, want, (size_t)wlen),
              "encoder wrote a wrong content-length");
    else
        CHECK(ncl == 0 || (ncl == 1 && same(cl->value, cl->value_len, "0", 1)),
              "encoder wrote a wrong content-length for an empty body");
    CHECK(same(a->body, a->body_len, b->body, b->body_len), "round trip changed the body");
}

static void round_trip(const stomp_frame *f, stomp_version v, unsigned pflags, unsigned eflags,
                       stomp_parser *rt)
{
    stomp_err err = STOMP_OK;
    size_t n = stomp_encoded_size(f, v, eflags, &err);
    bool unencodable = expect_unencodable(f, v);
    if (n == 0) {
        CHECK(err != STOMP_OK, "stomp_encoded_size failed without an error");
        CHECK(unencodable, "encoder refused a frame it can write");
        char small[16];
        err = STOMP_OK;
        CHECK(stomp_encode(f, v, eflags, small, sizeof small, &err) == 0 && err != STOMP_OK,
              "stomp_encode wrote an unencodable frame");
        return;
    }
    CHECK(!unencodable, "encoder accepted a frame it cannot write faithfully");
    CHECK(n > f->cmd_len + 2 + f->body_len, "stomp_encoded_size too small");

    /* Exactly sized buffers, so the sanitizer sees any write past cap. */
    char *out = malloc(n - 1);
    CHECK(out != NULL, "out of memory in the harness");
    err = STOMP_OK;
    CHECK(stomp_encode(f, v, eflags, out, n - 1, &err) == 0 && err == STOMP_E_NOMEM,
          "stomp_encode ignored a short buffer");
    free(out);
    out = malloc(n);
    CHECK(out != NULL, "out of memory in the harness");
    err = STOMP_OK;
    CHECK(stomp_encode(f, v, eflags, out, n, &err) == n, "stomp_encode disagrees with size");
    CHECK(out[n - 1] == '\0', "encoded frame does not end with NUL");
    CHECK(memcmp(out, f->cmd_name, f->cmd_len) == 0 && out[f->cmd_len] == '\n',
          "encoded frame does not start with its command line");

    stomp_parser_reset(rt);
    stomp_parser_set_version(rt, v, pflags);
    size_t used = 0;
    stomp_event ev = stomp_parser_feed(rt, out, n, &used);
    if (ev != STOMP_EV_FRAME || used != n) {
        fprintf(stderr, "event %d, used %zu of %zu, error %s\n", (int)ev, used, n,
                stomp_strerror(stomp_parser_error(rt, NULL)));
        fwrite(out, 1, n, stderr);
        fputc('\n', stderr);
        fail(__LINE__, "ev == STOMP_EV_FRAME && used == n", "encoded frame does not parse back");
    }
    const stomp_frame *back = stomp_parser_frame(rt);
    CHECK(back != NULL, "no frame after STOMP_EV_FRAME");
    check_frame(back, &roundtrip_limits);
    compare_round_trip(f, back, eflags);
    free(out);
}

/* ---- the frame as the SEND of a delivered MESSAGE ---- */

/* The headers a MESSAGE carries on: what stomp_header_forwarded() must say, spelled out. */
static bool forwarded(const stomp_header *h)
{
    static const char *const own[] = { "receipt", "transaction", "content-length",
                                       "destination", "message-id", "subscription",
                                       "ack", "redelivered", "redelivery-count" };
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (same(h->name, h->name_len, own[i], strlen(own[i])))
            return false;
    return true;
}

static void check_delivered(const stomp_frame *back, const stomp_frame *f,
                            const stomp_message *m, const char *sub, size_t sub_len,
                            const char *ack, size_t ack_len)
{
    char count[16], length[24];
    int cl = snprintf(count, sizeof count, "%u", (unsigned)m->redeliveries);
    int ll = snprintf(length, sizeof length, "%zu", m->body_len);
    const char *want[][2] = {
        { "subscription", sub }, { "ack", ack }, { "destination", m->destination },
        { "message-id", m->message_id }, { "redelivered", "true" },
        { "redelivery-count", count },
    };
    size_t want_len[] = { sub_len, ack_len, m->destination_len, m->message_id_len, 4,
                          (size_t)cl };
    size_t j = 0;
    for (size_t k = 0; k < 6; k++) {
        if ((k == 1 && !ack) || (k >= 4 && !m->redeliveries))
            continue;
        CHECK(j < back->nheaders, "delivered MESSAGE lost a header");
        const stomp_header *h = &back->headers[j++];
        CHECK(same(h->name, h->name_len, want[k][0], strlen(want[k][0])) &&
                  same(h->value, h->value_len, want[k][1], want_len[k]),
              "delivered MESSAGE changed a header it sets");
    }
    for (size_t i = 0; i < f->nheaders; i++) {
        const stomp_header *h = &f->headers[i];
        if (!forwarded(h))
            continue;
        CHECK(j < back->nheaders, "delivered MESSAGE lost a forwarded header");
        const stomp_header *g = &back->headers[j++];
        CHECK(same(h->name, h->name_len, g->name, g->name_len) &&
                  same(h->value, h->value_len, g->value, g->value_len),
              "delivered MESSAGE changed a forwarded header");
    }
    CHECK(j + 1 == back->nheaders && is_content_length(&back->headers[j]) &&
              same(back->headers[j].value, back->headers[j].value_len, length, (size_t)ll),
          "delivered MESSAGE does not end its headers with its content-length");
    CHECK(same(back->body, back->body_len, f->body, f->body_len),
          "delivered MESSAGE changed the body");
}

/* f as the SEND of a MESSAGE delivered in version v: the shared part from f and from its
 * packed headers is the same bytes, and head plus shared part parse back to the same
 * message; or both refuse it, because the destination, the id or a forwarded header
 * cannot be written in v. Its own "id" and "ack" headers serve as the subscriber's. */
static void message_round_trip(const stomp_frame *f, stomp_version v, stomp_parser *rt)
{
    stomp_message m = { "/queue/fuzz", 11, "m-1", 3, (uint32_t)f->nheaders, f, NULL, 0,
                        f->body, f->body_len };
    const char *d = stomp_frame_header(f, "destination", &m.destination_len);
    m.destination = d ? d : m.destination;
    m.destination_len = d ? m.destination_len : 11;
    const char *id = stomp_frame_header(f, "message-id", &m.message_id_len);
    m.message_id = id ? id : m.message_id;
    m.message_id_len = id ? m.message_id_len : 3;
    size_t sub_len = 1, ack_len = 0;
    const char *sub = stomp_frame_header(f, "id", &sub_len);
    sub = sub ? sub : "0";
    const char *ack = stomp_frame_header(f, "ack", &ack_len);

    bool escaped = v != STOMP_V10, refuse = false;
    for (size_t i = 0; i < f->nheaders; i++)
        refuse |= forwarded(&f->headers[i]) &&
                  (cannot_write(f->headers[i].name, f->headers[i].name_len, escaped, v, true) ||
                   cannot_write(f->headers[i].value, f->headers[i].value_len, escaped, v,
                                false));
    refuse |= cannot_write(m.destination, m.destination_len, escaped, v, false) ||
              cannot_write(m.message_id, m.message_id_len, escaped, v, false);
    bool head_refused = cannot_write(sub, sub_len, escaped, v, false) ||
                        (ack && cannot_write(ack, ack_len, escaped, v, false));

    size_t plen = stomp_pack_headers(f, NULL);
    char *packed = malloc(plen ? plen : 1);
    CHECK(packed != NULL, "out of memory in the harness");
    CHECK(stomp_pack_headers(f, packed) == plen, "stomp_pack_headers disagrees with its size");
    stomp_message pm = m;
    pm.send = NULL;
    pm.packed = packed;
    pm.packed_len = plen;

    size_t hs = stomp_message_head_size(sub, sub_len, ack, ack_len, v);
    CHECK((hs == 0) == head_refused, "stomp_message_head_size wrong about what fits");
    size_t bound = stomp_message_bound(&m), pbound = stomp_message_bound(&pm);
    char *out = malloc(hs + bound), *again = malloc(pbound);
    CHECK(out != NULL && again != NULL, "out of memory in the harness");
    stomp_err err = STOMP_OK, perr = STOMP_OK;
    size_t n = stomp_message_encode(&m, v, out + hs, bound, &err);
    size_t pn = stomp_message_encode(&pm, v, again, pbound, &perr);
    CHECK(n == pn && err == perr && (n == 0 || memcmp(out + hs, again, n) == 0),
          "a MESSAGE from packed headers differs from one from the SEND");
    if (refuse || n == 0) {
        CHECK(refuse && n == 0 && err == STOMP_E_UNENCODABLE,
              "stomp_message_encode wrong about what fits");
    } else if (hs > 0) {
        CHECK(stomp_message_encode(&pm, v, again, n - 1, &perr) == 0 && perr == STOMP_E_NOMEM,
              "stomp_message_encode ignored a short buffer");
        CHECK(stomp_message_head(sub, sub_len, ack, ack_len, v, out) == hs,
              "stomp_message_head disagrees with its size");
        stomp_parser_reset(rt);
        stomp_parser_set_version(rt, v, 0);
        size_t used = 0;
        CHECK(stomp_parser_feed(rt, out, hs + n, &used) == STOMP_EV_FRAME && used == hs + n,
              "delivered MESSAGE does not parse back");
        const stomp_frame *back = stomp_parser_frame(rt);
        CHECK(back->cmd == STOMP_CMD_MESSAGE, "delivered MESSAGE is not a MESSAGE");
        check_delivered(back, f, &m, sub, sub_len, ack, ack_len);
    }
    free(out);
    free(again);
    free(packed);
}

/* ---- one pass over the stream ---- */

typedef struct chunker {
    unsigned mode, param;
    uint32_t rng;
    size_t split;
} chunker;

static chunker chunker_make(unsigned mode, unsigned param, size_t len)
{
    chunker c = { mode, param, 0, 0 };
    c.rng = (uint32_t)((param + 1) * 2654435761u) ^ (uint32_t)len;
    if (c.rng == 0)
        c.rng = 1;
    if (mode == CHUNK_SPLIT)
        c.split = len ? (size_t)((uint64_t)param * 2654435761u % (len + 1)) : 0;
    return c;
}

/* Size of the next chunk; may be 0 (an empty feed), the caller clamps it. */
static size_t chunk_next(chunker *c, size_t left)
{
    switch (c->mode) {
    case CHUNK_BYTES:
        return 1;
    case CHUNK_FIXED:
        return c->param + 1;
    case CHUNK_RANDOM:
        c->rng ^= c->rng << 13;
        c->rng ^= c->rng >> 17;
        c->rng ^= c->rng << 5;
        return c->rng % (c->param + 2);
    case CHUNK_SPLIT: {
        size_t n = c->split;
        c->split = SIZE_MAX;
        return n;
    }
    default:
        return left;
    }
}

typedef struct pass {
    stomp_parser *p;
    const settings *st;
    stomp_parser *rt; /* round trip each frame through it; NULL: don't */
    bool trim_each_feed;
    evlog log;
} pass;

static void on_error(pass *ps, const uint8_t *data, size_t len, size_t pos, size_t fed)
{
    uint64_t off = UINT64_MAX;
    stomp_err e = stomp_parser_error(ps->p, &off);
    CHECK(e != STOMP_OK && (unsigned)e < STOMP_E__COUNT, "error event without an error");
    CHECK(e != STOMP_E_FAILED && e != STOMP_E_UNENCODABLE, "wrong error code from the parser");
    CHECK(e == STOMP_E_NOMEM || off < fed, "error offset outside the bytes fed");
    CHECK(stomp_strerror(e) != NULL && stomp_strerror(e)[0] != '\0', "no error message");
    CHECK(stomp_parser_frame(ps->p) == NULL, "frame after an error");
    log_error(&ps->log, e, e == STOMP_E_NOMEM ? 0 : off);
    size_t used = 0;
    stomp_event ev = stomp_parser_feed(ps->p, (const char *)data + pos, len - pos, &used);
    CHECK(ev == STOMP_EV_ERROR, "parser went on after an error");
    CHECK(stomp_parser_error(ps->p, NULL) != STOMP_OK, "error forgotten");
}

static void run_pass(pass *ps, const uint8_t *data, size_t len, chunker *ck)
{
    const settings *st = ps->st;
    stomp_version v = st->switch_version ? STOMP_V10 : st->version;
    stomp_parser_set_version(ps->p, v, st->pflags);
    size_t pos = 0;
    while (pos < len) {
        size_t n = chunk_next(ck, len - pos);
        size_t end = pos + (n < len - pos ? n : len - pos);
        for (;;) {
            size_t avail = end - pos, used = SIZE_MAX;
            stomp_event ev = stomp_parser_feed(ps->p, (const char *)data + pos, avail, &used);
            CHECK(used <= avail, "consumed more than it was given");
            pos += used;
            if (ev == STOMP_EV_ERROR) {
                on_error(ps, data, len, pos, end);
                return;
            } else if (ev == STOMP_EV_NEED_MORE) {
                CHECK(used == avail, "NEED_MORE left bytes unconsumed");
                CHECK(stomp_parser_frame(ps->p) == NULL, "frame after NEED_MORE");
            } else if (ev == STOMP_EV_HEARTBEAT) {
                CHECK(used > 0, "heart-beat from no bytes");
                CHECK(stomp_parser_frame(ps->p) == NULL, "frame after a heart-beat");
                log_heartbeat(&ps->log, pos);
            } else {
                CHECK(ev == STOMP_EV_FRAME, "unknown event");
                CHECK(used > 0, "frame from no bytes");
                const stomp_frame *f = stomp_parser_frame(ps->p);
                CHECK(f != NULL, "no frame after STOMP_EV_FRAME");
                check_frame(f, &st->limits);
                log_frame(&ps->log, f, pos);
                if (ps->rt) {
                    round_trip(f, v, st->pflags, st->eflags, ps->rt);
                    message_round_trip(f, st->version, ps->rt);
                }
                if (v != st->version) {
                    v = st->version;
                    stomp_parser_set_version(ps->p, v, st->pflags);
                }
                if (st->trim)
                    stomp_parser_trim(ps->p);
            }
            /* Trimming mid-frame must be a no-op; between frames it must lose nothing. */
            if (ps->trim_each_feed)
                stomp_parser_trim(ps->p);
            if (ev == STOMP_EV_NEED_MORE || pos == end)
                break;
        }
    }
}

/* Between frames, every LF or CRLF is a heart-beat, reported as soon as it is read. */
static void check_heartbeats(const evlog *lg, const uint8_t *data, size_t len)
{
    const unsigned char *p = lg->b.p, *end = p ? p + lg->b.len : NULL;
    uint64_t prev = 0; /* stream offset after the previous event */
    for (;;) {
        uint64_t want = 0;
        if (prev < len && data[prev] == '\n')
            want = prev + 1;
        else if (prev + 1 < len && data[prev] == '\r' && data[prev + 1] == '\n')
            want = prev + 2;
        if (!p || p == end) {
            CHECK(want == 0, "heart-beat not reported");
            return;
        }
        unsigned char type = *p++;
        if (type == 'E')
            return;
        uint64_t pos = get_u64(&p);
        CHECK((type == 'H') == (want != 0) && (want == 0 || pos == want),
              "heart-beat reported wrongly");
        if (type == 'F') {
            p += sizeof(uint64_t);
            p += get_u64(&p);
            uint64_t n = get_u64(&p);
            for (uint64_t i = 0; i < 2 * n + 1; i++)
                p += get_u64(&p);
        }
        prev = pos;
    }
}

static void compare_logs(const evlog *a, const evlog *b, const char *what)
{
    if (a->b.len == b->b.len && (a->b.len == 0 || memcmp(a->b.p, b->b.p, a->b.len) == 0))
        return;
    dump_log("one feed", a);
    dump_log(what, b);
    fail(__LINE__, "logs equal", what);
}

/* With a failing allocator: the same events, or the same up to one that ends in NOMEM. */
static void compare_alloc_fail(const evlog *ref, const evlog *got, bool refused)
{
    const unsigned char *last = got->b.p ? got->b.p + got->last : NULL;
    if (last && last[0] == 'E') {
        uint64_t err;
        memcpy(&err, last + 1, sizeof err);
        if (err == STOMP_E_NOMEM) {
            CHECK(refused, "STOMP_E_NOMEM while every allocation succeeded");
            CHECK(got->last <= ref->b.len &&
                      (got->last == 0 || memcmp(ref->b.p, got->b.p, got->last) == 0),
                  "events before an allocation failure differ");
            return;
        }
    }
    compare_logs(ref, got, "after a refused allocation");
}

/* The parser's memory is bounded by its limits: the frame being assembled at most twice
 * over (geometric growth), a generous 64 bytes per header slot, and a small reserve. */
static void check_memory(const alloc_ctx *a, const stomp_limits *l)
{
    CHECK(a->live_blocks == 0 && a->live_bytes == 0, "parser leaked memory");
    uint64_t bound = 2 * ((uint64_t)l->max_header_bytes + l->max_body + 8) +
                     2 * (uint64_t)l->max_headers * 64 + 1024;
    CHECK(a->peak_bytes <= bound, "parser memory not bounded by its limits");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    const settings st = settings_read(data);
    data += 4;
    size -= 4;

    stomp_parser rt;
    stomp_parser_init(&rt, &roundtrip_limits, NULL, NULL);

    /* Pass 1: one feed (re-fed after each event), with round trips. */
    alloc_ctx a1 = { 0, 0, false, 0, 0, 0 };
    stomp_parser p;
    stomp_parser_init(&p, &st.limits, counting_realloc, &a1);
    pass one = { &p, &st, &rt, false, { { NULL, 0, 0 }, 0 } };
    chunker whole = chunker_make(CHUNK_ONE, 0, size);
    run_pass(&one, data, size, &whole);
    check_heartbeats(&one.log, data, size);

    /* Pass 2: the same parser after a reset, fed in chunks. */
    stomp_parser_reset(&p);
    pass two = { &p, &st, NULL, st.trim, { { NULL, 0, 0 }, 0 } };
    chunker ck = chunker_make(st.chunk_mode, st.chunk_param, size);
    run_pass(&two, data, size, &ck);
    compare_logs(&one.log, &two.log, "chunked");
    stomp_parser_free(&p);
    check_memory(&a1, &st.limits);
    free(two.log.b.p);

    /* Pass 3: a fresh parser whose allocator fails once. */
    if (st.alloc_fail) {
        alloc_ctx a3 = { 0, st.fail_at, false, 0, 0, 0 };
        stomp_parser_init(&p, &st.limits, counting_realloc, &a3);
        pass three = { &p, &st, NULL, false, { { NULL, 0, 0 }, 0 } };
        whole = chunker_make(CHUNK_ONE, 0, size);
        run_pass(&three, data, size, &whole);
        compare_alloc_fail(&one.log, &three.log, a3.refused);
        stomp_parser_free(&p);
        check_memory(&a3, &st.limits);
        free(three.log.b.p);
    }

    free(one.log.b.p);
    stomp_parser_free(&rt);
    return 0;
}

#ifdef STOMP_FUZZ_REPLAY
#include <dirent.h>

static int replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        perror(path);
        return 1;
    }
    bytes b = { NULL, 0, 0 };
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
        bytes_put(&b, buf, n);
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        perror(path);
        free(b.p);
        return 1;
    }
    (void)LLVMFuzzerTestOneInput(b.p ? b.p : (const uint8_t *)"", b.len);
    free(b.p);
    return 0;
}

/* Replay every file named, or every file in the directories named. */
int main(int argc, char **argv)
{
    int failures = 0, count = 0;
    for (int i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        if (!d) {
            failures += replay_file(argv[i]);
            count++;
            continue;
        }
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            size_t len = strlen(argv[i]) + strlen(e->d_name) + 2;
            char *path = malloc(len);
            CHECK(path != NULL, "out of memory in the harness");
            snprintf(path, len, "%s/%s", argv[i], e->d_name);
            failures += replay_file(path);
            count++;
            free(path);
        }
        closedir(d);
    }
    printf("%d inputs replayed, %d unreadable\n", count, failures);
    return failures != 0;
}
#endif
