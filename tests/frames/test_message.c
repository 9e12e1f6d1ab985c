/* test_message.c: MESSAGE frames for delivery (frames/message.c): which SEND headers travel
 * on, packed headers, exact bytes of the head and the shared part per version, what a
 * version cannot carry, buffers too small, and head + shared part parsed back in every
 * version (every split point), from a parsed SEND and from its packed headers alike. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "frames_check.h"

#define H(n, v) { (n), sizeof(n) - 1, (v), sizeof(v) - 1 }
#define NH(a) (sizeof(a) / sizeof((a)[0]))
#define GUARD 32

static stomp_frame make_send(stomp_header *h, size_t nh, const char *body, size_t body_len)
{
    stomp_frame f = { STOMP_CMD_SEND, "SEND", 4, h, nh, body, body_len };
    return f;
}

static stomp_message make_msg(const char *dest, const char *id, uint32_t redeliveries,
                              const stomp_frame *send, const char *body, size_t body_len)
{
    stomp_message m = { dest, strlen(dest), id, strlen(id), redeliveries, send, NULL, 0,
                        body, body_len };
    return m;
}

/* m from its SEND's packed headers instead (caller frees *block). */
static stomp_message packed_msg(const stomp_message *m, char **block)
{
    size_t n = stomp_pack_headers(m->send, NULL);
    *block = malloc(n + 1);
    assert_non_null(*block);
    assert_int_equal(stomp_pack_headers(m->send, *block), n);
    stomp_message p = *m;
    p.send = NULL;
    p.packed = *block;
    p.packed_len = n;
    return p;
}

static void show_diff(const char *got, size_t len)
{
    char shown[1024];
    size_t k = 0;
    for (size_t i = 0; i < len && k + 5 < sizeof shown; i++) {
        unsigned char ch = (unsigned char)got[i];
        if (ch >= 0x20 && ch < 0x7f)
            shown[k++] = (char)ch;
        else
            k += (size_t)snprintf(shown + k, sizeof shown - k, "<%02x>", ch);
    }
    shown[k] = '\0';
    fail_msg("encoded bytes differ; got: %s", shown);
}

/* m encodes in v to exactly want; every cap from 0 up works or fails with STOMP_E_NOMEM
 * and writes nothing past cap; the bound is enough. */
static void expect_shared(const stomp_message *m, stomp_version v, const char *want,
                          size_t len)
{
    size_t bound = stomp_message_bound(m);
    assert_true(bound >= len);
    char *buf = malloc(bound + GUARD);
    assert_non_null(buf);
    stomp_err err = STOMP_E_FAILED;
    size_t n = stomp_message_encode(m, v, buf, bound, &err);
    if (n != len)
        fail_msg("encoded %zu bytes (err %d), expected %zu", n, (int)err, len);
    assert_int_equal(err, STOMP_OK);
    if (memcmp(buf, want, len) != 0)
        show_diff(buf, len);
    for (size_t cap = 0; cap <= len + GUARD; cap++) {
        memset(buf, 0xAA, len + GUARD);
        err = STOMP_OK;
        n = stomp_message_encode(m, v, buf, cap, &err);
        if (cap < len) {
            assert_int_equal(n, 0);
            assert_int_equal(err, STOMP_E_NOMEM);
        } else {
            assert_int_equal(n, len);
            assert_memory_equal(buf, want, len);
        }
        for (size_t i = cap; i < len + GUARD; i++)
            assert_int_equal((unsigned char)buf[i], 0xAA);
    }
    free(buf);
}

/* The same bytes from the SEND and from its packed headers. */
static void expect_both(const stomp_message *m, stomp_version v, const char *want, size_t len)
{
    expect_shared(m, v, want, len);
    char *block;
    stomp_message p = packed_msg(m, &block);
    expect_shared(&p, v, want, len);
    free(block);
}

static void expect_unencodable(const stomp_message *m, stomp_version v)
{
    char buf[1024];
    stomp_err err = STOMP_OK;
    assert_true(stomp_message_bound(m) <= sizeof buf);
    assert_int_equal(stomp_message_encode(m, v, buf, sizeof buf, &err), 0);
    assert_int_equal(err, STOMP_E_UNENCODABLE);
    if (m->send) {
        char *block;
        stomp_message p = packed_msg(m, &block);
        err = STOMP_OK;
        assert_int_equal(stomp_message_encode(&p, v, buf, sizeof buf, &err), 0);
        assert_int_equal(err, STOMP_E_UNENCODABLE);
        free(block);
    }
}

/* --- which headers travel on, packing ------------------------------------------------ */

static void test_forwarded(void **state)
{
    (void)state;
    static const char *const dropped[] = { "receipt", "transaction", "content-length",
                                           "destination", "message-id", "subscription",
                                           "ack", "redelivered", "redelivery-count" };
    static const char *const kept[] = { "content-type", "reply-to", "x", "",
                                        "acks", "Receipt", "destinatioN", "persistent",
                                        "message-ids", "content-lengths", "expires",
                                        "redelivery-counts", "priority", "correlation-id" };
    for (size_t i = 0; i < NH(dropped); i++)
        assert_false(stomp_header_forwarded(dropped[i], strlen(dropped[i])));
    for (size_t i = 0; i < NH(kept); i++)
        assert_true(stomp_header_forwarded(kept[i], strlen(kept[i])));
    /* the length given decides, not a terminator */
    assert_false(stomp_header_forwarded("ackx", 3));
    assert_true(stomp_header_forwarded("ack", 2));
}

static void test_pack(void **state)
{
    (void)state;
    stomp_header h[] = { H("destination", "/q"), H("content-type", "text/plain"),
                         H("receipt", "r1"), H("k", ""), H("transaction", "t"),
                         H("k", "second"), H("content-length", "3"), H("x:y", "a\nb") };
    stomp_frame f = make_send(h, NH(h), "abc", 3);
    static const char want[] = "content-type\0text/plain\0k\0\0k\0second\0x:y\0a\nb";
    size_t n = stomp_pack_headers(&f, NULL);
    assert_int_equal(n, sizeof want);
    char buf[sizeof want + GUARD];
    memset(buf, 0xAA, sizeof buf);
    assert_int_equal(stomp_pack_headers(&f, buf), n);
    assert_memory_equal(buf, want, n);
    assert_int_equal((unsigned char)buf[n], 0xAA);

    size_t vl = 99;
    const char *v = stomp_packed_header(buf, n, "k", &vl);
    assert_non_null(v);
    assert_int_equal(vl, 0); /* the first one */
    assert_string_equal(stomp_packed_header(buf, n, "content-type", NULL), "text/plain");
    v = stomp_packed_header(buf, n, "x:y", &vl);
    assert_int_equal(vl, 3);
    assert_memory_equal(v, "a\nb", 4);
    assert_null(stomp_packed_header(buf, n, "receipt", NULL));
    assert_null(stomp_packed_header(buf, n, "content", NULL));
    assert_null(stomp_packed_header(buf, n, "", NULL));
    /* a block cut short is read no further than its length */
    assert_null(stomp_packed_header(buf, n - 1, "x:y", NULL));
    assert_null(stomp_packed_header(buf, 5, "content-type", NULL));
    assert_null(stomp_packed_header(buf, 0, "k", NULL));

    /* nothing forwarded: an empty block */
    stomp_header only[] = { H("destination", "/q"), H("receipt", "r") };
    f = make_send(only, NH(only), NULL, 0);
    assert_int_equal(stomp_pack_headers(&f, NULL), 0);
    f = make_send(NULL, 0, NULL, 0);
    assert_int_equal(stomp_pack_headers(&f, NULL), 0);
}

/* --- exact bytes --------------------------------------------------------------------- */

static void test_plain_all_versions(void **state)
{
    (void)state;
    stomp_header h[] = { H("destination", "/queue/a"), H("content-type", "text/plain"),
                         H("receipt", "r-1"), H("priority", "4"),
                         H("content-length", "5") };
    stomp_frame f = make_send(h, NH(h), "hello", 5);
    stomp_message m = make_msg("/queue/a", "17", 0, &f, "hello", 5);
    for (int v = STOMP_V10; v <= STOMP_V12; v++)
        expect_both(&m, (stomp_version)v,
                    S("destination:/queue/a\nmessage-id:17\ncontent-type:text/plain\n"
                      "priority:4\ncontent-length:5\n\nhello\0"));
}

/* Values of every length up to 20 with one byte to escape at each place, and with none:
 * the word-at-a-time copy of plain values must leave every such byte to the escaper. */
static void test_escape_at_every_place(void **state)
{
    (void)state;
    for (size_t len = 1; len <= 20; len++) {
        for (size_t at = 0; at <= len; at++) { /* at == len: nothing to escape */
            char v[24], esc[48], want[256];
            size_t el = 0;
            for (size_t i = 0; i < len; i++) {
                v[i] = i == at ? ':' : (char)('a' + i);
                if (i == at) {
                    esc[el++] = '\\';
                    esc[el++] = 'c';
                } else {
                    esc[el++] = v[i];
                }
            }
            v[len] = '\0';
            esc[el] = '\0';
            stomp_header h[] = { { v, len, v, len } };
            stomp_frame f = make_send(h, 1, "x", 1);
            stomp_message m = make_msg(v, v, 0, &f, "x", 1);
            int n = snprintf(want, sizeof want,
                             "destination:%s\nmessage-id:%s\n%s:%s\ncontent-length:1\n\nx", esc,
                             esc, esc, esc);
            expect_both(&m, STOMP_V12, want, (size_t)n + 1);
        }
    }
}

static void test_redelivered_and_empty_body(void **state)
{
    (void)state;
    stomp_frame f = make_send(NULL, 0, NULL, 0);
    stomp_message m = make_msg("/queue/a", "t9", 3, &f, NULL, 0);
    expect_both(&m, STOMP_V12,
                S("destination:/queue/a\nmessage-id:t9\nredelivered:true\nredelivery-count:3\n"
                  "content-length:0\n\n\0"));
    m.redeliveries = UINT32_MAX;
    expect_both(&m, STOMP_V10,
                S("destination:/queue/a\nmessage-id:t9\nredelivered:true\n"
                  "redelivery-count:4294967295\ncontent-length:0\n\n\0"));
    /* a body with NULs: its length decides */
    m.redeliveries = 0;
    m.body = "\0a\0";
    m.body_len = 3;
    expect_both(&m, STOMP_V11,
                S("destination:/queue/a\nmessage-id:t9\ncontent-length:3\n\n\0a\0\0"));
}

static void test_escapes_per_version(void **state)
{
    (void)state;
    stomp_header h[] = { H("k", "a:b\\c"), H("x:y", "1"), H("n", "l1\nl2") };
    stomp_frame f = make_send(h, NH(h), "b", 1);
    stomp_message m = make_msg("/q:a\\b", "5", 0, &f, "b", 1);
    expect_both(&m, STOMP_V11,
                S("destination:/q\\ca\\\\b\nmessage-id:5\nk:a\\cb\\\\c\nx\\cy:1\nn:l1\\nl2\n"
                  "content-length:1\n\nb\0"));
    expect_both(&m, STOMP_V12,
                S("destination:/q\\ca\\\\b\nmessage-id:5\nk:a\\cb\\\\c\nx\\cy:1\nn:l1\\nl2\n"
                  "content-length:1\n\nb\0"));
    /* 1.0 escapes nothing: ':' and '\' in values are written as they are */
    f.nheaders = 1;
    expect_both(&m, STOMP_V10,
                S("destination:/q:a\\b\nmessage-id:5\nk:a:b\\c\ncontent-length:1\n\nb\0"));
    /* CR has an escape in 1.2 only */
    stomp_header cr[] = { H("k\r", "a\rb") };
    f = make_send(cr, NH(cr), NULL, 0);
    m = make_msg("/q\r", "5", 0, &f, NULL, 0);
    expect_both(&m, STOMP_V12,
                S("destination:/q\\r\nmessage-id:5\nk\\r:a\\rb\ncontent-length:0\n\n\0"));
}

static void test_head(void **state)
{
    (void)state;
    static const struct {
        const char *id;
        size_t id_len;
        const char *ack;
        stomp_version v;
        const char *want;
    } cases[] = {
        { S("0"), NULL, STOMP_V10, "MESSAGE\nsubscription:0\n" },
        { S("sub-1"), "42", STOMP_V12, "MESSAGE\nsubscription:sub-1\nack:42\n" },
        { S("a:b\\c"), NULL, STOMP_V10, "MESSAGE\nsubscription:a:b\\c\n" },
        { S("a:b\\c"), NULL, STOMP_V11, "MESSAGE\nsubscription:a\\cb\\\\c\n" },
        { S("a\nb"), "x:1", STOMP_V12, "MESSAGE\nsubscription:a\\nb\nack:x\\c1\n" },
        { S("a\rb"), NULL, STOMP_V12, "MESSAGE\nsubscription:a\\rb\n" },
        { S(""), "", STOMP_V11, "MESSAGE\nsubscription:\nack:\n" },
    };
    for (size_t i = 0; i < NH(cases); i++) {
        size_t want = strlen(cases[i].want);
        size_t ack_len = cases[i].ack ? strlen(cases[i].ack) : 0;
        char out[64];
        memset(out, 0xAA, sizeof out);
        assert_int_equal(stomp_message_head_size(cases[i].id, cases[i].id_len, cases[i].ack,
                                                 ack_len, cases[i].v),
                         want);
        assert_int_equal(stomp_message_head(cases[i].id, cases[i].id_len, cases[i].ack,
                                            ack_len, cases[i].v, out),
                         want);
        assert_memory_equal(out, cases[i].want, want);
        assert_int_equal((unsigned char)out[want], 0xAA);
    }
    /* what a version cannot carry gives no head at all */
    char out[64];
    assert_int_equal(stomp_message_head_size(S("a\nb"), NULL, 0, STOMP_V10), 0);
    assert_int_equal(stomp_message_head(S("a\nb"), NULL, 0, STOMP_V10, out), 0);
    assert_int_equal(stomp_message_head_size(S("a\rb"), NULL, 0, STOMP_V11), 0);
    assert_int_equal(stomp_message_head(S("a\rb"), NULL, 0, STOMP_V11, out), 0);
    assert_int_equal(stomp_message_head_size(S("a\0b"), NULL, 0, STOMP_V12), 0);
    assert_int_equal(stomp_message_head_size(S("0"), "a\nb", 3, STOMP_V10), 0);
    assert_int_equal(stomp_message_head(S("0"), "a\nb", 3, STOMP_V10, out), 0);
}

/* Decimal numbers: every digit count, and each side of every power of ten. */
static void test_u64(void **state)
{
    (void)state;
    uint64_t p = 1;
    for (int k = 0; k <= 20; k++) {
        uint64_t vals[] = { p - 1, p, p + 1, p * 7 + 3, UINT64_MAX - (uint64_t)k };
        for (size_t i = 0; i < NH(vals); i++) {
            char want[24], got[24];
            int wn = snprintf(want, sizeof want, "%llu", (unsigned long long)vals[i]);
            memset(got, 0xAA, sizeof got);
            assert_int_equal(stomp_u64(got, vals[i]), (size_t)wn);
            assert_memory_equal(got, want, (size_t)wn);
            assert_int_equal((unsigned char)got[wn], 0xAA);
        }
        if (k < 19)
            p *= 10;
    }
}

/* The ack line after a head made without ack gives the bytes of a head made with it. */
static void test_ack_line(void **state)
{
    (void)state;
    static const uint64_t acks[] = { 0, 7, 10, 99, 100, 123456789, UINT64_MAX };
    for (size_t i = 0; i < NH(acks); i++) {
        char digits[24];
        int dl = snprintf(digits, sizeof digits, "%llu", (unsigned long long)acks[i]);
        char want[80], got[80];
        size_t wn = stomp_message_head(S("s-1"), digits, (size_t)dl, STOMP_V12, want);
        size_t hn = stomp_message_head(S("s-1"), NULL, 0, STOMP_V12, got);
        memset(got + hn, 0xAA, sizeof got - hn);
        size_t an = stomp_message_ack_line(acks[i], got + hn);
        assert_true(an <= STOMP_ACK_LINE_MAX);
        assert_int_equal(hn + an, wn);
        assert_memory_equal(got, want, wn);
        assert_int_equal((unsigned char)got[wn], 0xAA);
    }
}

/* --- what a version cannot carry ----------------------------------------------------- */

static void test_unencodable(void **state)
{
    (void)state;
    stomp_frame none = make_send(NULL, 0, NULL, 0);
    /* a destination is never altered to fit */
    stomp_message m = make_msg("/q\nx", "1", 0, &none, NULL, 0);
    expect_unencodable(&m, STOMP_V10);
    m = make_msg("/q\rx", "1", 0, &none, NULL, 0);
    expect_unencodable(&m, STOMP_V10);
    expect_unencodable(&m, STOMP_V11);
    m.destination = "/q\0x";
    m.destination_len = 4;
    expect_unencodable(&m, STOMP_V12);
    /* nor is a message id */
    m = make_msg("/q", "1\n", 0, &none, NULL, 0);
    expect_unencodable(&m, STOMP_V10);

    /* a forwarded header is never dropped to fit */
    stomp_header lf[] = { H("a", "1"), H("k", "a\nb") };
    stomp_header cr[] = { H("k", "a\rb") };
    stomp_header colon[] = { H("a:b", "v") };
    stomp_header nul[] = { H("k", "a\0b") };
    stomp_header empty[] = { H("", "v") };
    stomp_frame f = make_send(lf, NH(lf), NULL, 0);
    m = make_msg("/q", "1", 0, &f, NULL, 0);
    expect_unencodable(&m, STOMP_V10);
    f = make_send(cr, NH(cr), NULL, 0);
    expect_unencodable(&m, STOMP_V10);
    expect_unencodable(&m, STOMP_V11);
    f = make_send(colon, NH(colon), NULL, 0);
    expect_unencodable(&m, STOMP_V10);
    for (int v = STOMP_V10; v <= STOMP_V12; v++) {
        f = make_send(nul, NH(nul), NULL, 0);
        expect_unencodable(&m, (stomp_version)v);
        f = make_send(empty, NH(empty), NULL, 0);
        expect_unencodable(&m, (stomp_version)v);
    }
    /* headers that do not travel on do not matter */
    stomp_header own[] = { H("receipt", "a\nb"), H("transaction", "t\r") };
    f = make_send(own, NH(own), NULL, 0);
    expect_both(&m, STOMP_V10, S("destination:/q\nmessage-id:1\ncontent-length:0\n\n\0"));

    /* a packed block cut short is refused, never read past its end */
    static const char block[] = "a\0b\0c\0d";
    m = make_msg("/q", "1", 0, NULL, NULL, 0);
    m.packed = block;
    m.packed_len = sizeof block - 1;
    expect_unencodable(&m, STOMP_V12);
    m.packed_len = 5;
    expect_unencodable(&m, STOMP_V12);
    m.packed_len = 4;
    expect_shared(&m, STOMP_V12, S("destination:/q\nmessage-id:1\na:b\ncontent-length:0\n\n\0"));
    /* an empty name in a block cannot be written either */
    m.packed = "\0v\0";
    m.packed_len = 3;
    expect_unencodable(&m, STOMP_V12);
}

static void test_bound(void **state)
{
    (void)state;
    /* every byte escaped, the widest numbers: the bound still holds, in every version */
    stomp_header h[] = { H("\\\\::", "\n\n\\\\"), H("receipt", "not counted but bounded") };
    stomp_frame f = make_send(h, NH(h), "xyz", 3);
    stomp_message m = make_msg("\\:\n\\", "\\\\", UINT32_MAX, &f, "xyz", 3);
    char *block;
    stomp_message p = packed_msg(&m, &block);
    for (int v = STOMP_V11; v <= STOMP_V12; v++) {
        char buf[512];
        stomp_err err;
        size_t n = stomp_message_encode(&m, (stomp_version)v, buf, sizeof buf, &err);
        assert_true(n > 0);
        assert_true(stomp_message_bound(&m) >= n);
        assert_true(stomp_message_bound(&p) >= n);
        assert_int_equal(stomp_message_encode(&p, (stomp_version)v, buf, sizeof buf, &err), n);
    }
    free(block);
    /* sizes that cannot be allocated give a bound that cannot be either */
    m.body_len = SIZE_MAX - 10;
    assert_int_equal(stomp_message_bound(&m), SIZE_MAX);
    m.body_len = 3;
    m.destination_len = SIZE_MAX / 2 + 1;
    assert_int_equal(stomp_message_bound(&m), SIZE_MAX);
}

/* --- round trips --------------------------------------------------------------------- */

typedef struct want_header {
    const char *name, *value;
    size_t value_len;
} want_header;

/* Head and shared part of m for v concatenated: one frame that the parser of v reads back
 * (every split point) with m's headers and body. */
static void round_trip(const stomp_message *m, const char *sub, const char *ack,
                       stomp_version v)
{
    size_t alen = ack ? strlen(ack) : 0;
    size_t hs = stomp_message_head_size(sub, strlen(sub), ack, alen, v);
    assert_true(hs > 0);
    size_t bound = stomp_message_bound(m);
    char *buf = malloc(hs + bound);
    assert_non_null(buf);
    assert_int_equal(stomp_message_head(sub, strlen(sub), ack, alen, v, buf), hs);
    stomp_err err = STOMP_E_FAILED;
    size_t n = stomp_message_encode(m, v, buf + hs, bound, &err);
    assert_true(n > 0);
    assert_int_equal(err, STOMP_OK);
    size_t total = hs + n;

    /* the same bytes from the packed headers, in an exactly sized buffer */
    if (m->send) {
        char *block;
        stomp_message p = packed_msg(m, &block);
        char *again = malloc(n);
        assert_non_null(again);
        assert_int_equal(stomp_message_encode(&p, v, again, n, &err), n);
        assert_memory_equal(again, buf + hs, n);
        free(again);
        free(block);
    }

    parse_opts o = { .version = v };
    parse_result r;
    parse_check_edges(&o, buf, total, total > 2000 ? 200 : 0, &r);
    expect_events(&r, "F");
    expect_clean(&r);
    const rec_event *e = &r.ev[0];
    assert_int_equal(e->cmd, STOMP_CMD_MESSAGE);
    size_t k = 0;
    want_header want[32];
    want[k++] = (want_header){ "subscription", sub, strlen(sub) };
    if (ack)
        want[k++] = (want_header){ "ack", ack, alen };
    want[k++] = (want_header){ "destination", m->destination, m->destination_len };
    want[k++] = (want_header){ "message-id", m->message_id, m->message_id_len };
    char count[16];
    if (m->redeliveries) {
        snprintf(count, sizeof count, "%u", (unsigned)m->redeliveries);
        want[k++] = (want_header){ "redelivered", "true", 4 };
        want[k++] = (want_header){ "redelivery-count", count, strlen(count) };
    }
    for (size_t i = 0; m->send && i < m->send->nheaders; i++) {
        const stomp_header *h = &m->send->headers[i];
        if (stomp_header_forwarded(h->name, h->name_len))
            want[k++] = (want_header){ h->name, h->value, h->value_len };
    }
    char length[24];
    snprintf(length, sizeof length, "%zu", m->body_len);
    want[k++] = (want_header){ "content-length", length, strlen(length) };
    assert_int_equal(e->nheaders, k);
    for (size_t i = 0; i < k; i++) {
        assert_string_equal(e->headers[i].name, want[i].name);
        assert_int_equal(e->headers[i].value_len, want[i].value_len);
        assert_memory_equal(e->headers[i].value, want[i].value, want[i].value_len);
    }
    assert_int_equal(e->body_len, m->body_len);
    if (m->body_len)
        assert_memory_equal(e->body, m->body, m->body_len);
    result_free(&r);
    free(buf);
}

static void test_round_trip(void **state)
{
    (void)state;
    static const char bin[] = "\0\1\2\0\n\r\n\0\xff";
    stomp_header plain[] = { H("destination", "/queue/a"), H("content-type", "text/plain"),
                             H("receipt", "r:1\n"), H("persistent", "true"),
                             H("same", "1"), H("same", "2"), H("content-length", "9") };
    stomp_header esc11[] = { H("k", "a:b\\c\nd"), H("x:y\\\n", ""), H("transaction", "t") };
    stomp_header esc12[] = { H("k", "a\rb\r"), H("\r\n:\\", "v\r\n"), H("ack", "dropped") };
    size_t big_len = 5000;
    char *big = malloc(big_len);
    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)(i * 7);
    stomp_frame fplain = make_send(plain, NH(plain), bin, sizeof bin - 1);
    stomp_frame f11 = make_send(esc11, NH(esc11), NULL, 0);
    stomp_frame f12 = make_send(esc12, NH(esc12), NULL, 0);
    stomp_frame fnone = make_send(NULL, 0, NULL, 0);
    struct {
        stomp_message m;
        stomp_version min;
    } cases[] = {
        { make_msg("/queue/a", "1", 0, &fplain, bin, sizeof bin - 1), STOMP_V10 },
        { make_msg("/queue/a", "t77", 2, &fplain, "", 0), STOMP_V10 },
        { make_msg("/topic/a:b\\c", "2", 0, &fnone, big, big_len), STOMP_V10 },
        { make_msg("/q\nx", "3", 1, &f11, "x\0y", 3), STOMP_V11 },
        { make_msg("/q", "4", UINT32_MAX, &f11, NULL, 0), STOMP_V11 },
        { make_msg("/q\r", "5", 0, &f12, "body", 4), STOMP_V12 },
        { make_msg("", "", 0, &fnone, NULL, 0), STOMP_V10 },
    };
    static const struct {
        const char *sub, *ack;
        stomp_version min;
    } heads[] = { { "0", NULL, STOMP_V10 }, { "sub:1", "77", STOMP_V10 },
                  { "s\\1\n", "a:\\", STOMP_V11 }, { "s\r", "9", STOMP_V12 } };
    for (size_t i = 0; i < NH(cases); i++) {
        for (int v = STOMP_V10; v <= STOMP_V12; v++) {
            print_message("message %zu, version %d\n", i, v);
            if (v < (int)cases[i].min) {
                expect_unencodable(&cases[i].m, (stomp_version)v);
                continue;
            }
            for (size_t j = 0; j < NH(heads); j++)
                if (v >= (int)heads[j].min)
                    round_trip(&cases[i].m, heads[j].sub, heads[j].ack, (stomp_version)v);
        }
    }
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forwarded),
        cmocka_unit_test(test_pack),
        cmocka_unit_test(test_plain_all_versions),
        cmocka_unit_test(test_escape_at_every_place),
        cmocka_unit_test(test_redelivered_and_empty_body),
        cmocka_unit_test(test_escapes_per_version),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_ack_line),
        cmocka_unit_test(test_u64),
        cmocka_unit_test(test_unencodable),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
