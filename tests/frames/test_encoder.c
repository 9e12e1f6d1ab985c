/* test_encoder.c: the frame encoder and stomp_escape(): exact bytes per version (escaping,
 * none in CONNECT/CONNECTED, content-length, LF line ends, bare NUL), frames that cannot be
 * written, output buffers too small, and encode-then-parse round trips in every version. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "frames_check.h"

#define H(n, v) { (n), sizeof(n) - 1, (v), sizeof(v) - 1 }
#define NH(a) (sizeof(a) / sizeof((a)[0]))

static stomp_frame make_frame(stomp_command cmd, stomp_header *h, size_t nh, const char *body,
                              size_t body_len)
{
    stomp_frame f;
    memset(&f, 0, sizeof f);
    f.cmd = cmd;
    f.cmd_name = stomp_command_name(cmd);
    f.cmd_len = strlen(f.cmd_name);
    f.headers = h;
    f.nheaders = nh;
    f.body = body;
    f.body_len = body_len;
    return f;
}

#define GUARD 32

/* f encodes in v to exactly want (len bytes); the size agrees, every cap from 0 up to the
 * size works or fails with STOMP_E_NOMEM, and nothing is written past cap. */
static void expect_encoding(const stomp_frame *f, stomp_version v, unsigned flags,
                            const char *want, size_t len)
{
    stomp_err err = STOMP_E_FAILED;
    size_t size = stomp_encoded_size(f, v, flags, &err);
    if (size != len) {
        fail_msg("stomp_encoded_size %zu (err %d), expected %zu", size, (int)err, len);
    }
    char *buf = malloc(len + GUARD);
    assert_non_null(buf);
    for (size_t cap = 0; cap <= len + GUARD; cap++) {
        if (cap > 3 && cap + 3 < len && cap % 7 != 0)
            continue;
        memset(buf, 0xAA, len + GUARD);
        err = STOMP_OK;
        size_t n = stomp_encode(f, v, flags, buf, cap, &err);
        if (cap < len) {
            assert_int_equal(n, 0);
            assert_int_equal(err, STOMP_E_NOMEM);
        } else {
            assert_int_equal(n, len);
            if (memcmp(buf, want, len) != 0) {
                char shown[512];
                size_t k = 0;
                for (size_t i = 0; i < len && k + 5 < sizeof shown; i++) {
                    unsigned char ch = (unsigned char)buf[i];
                    if (ch >= 0x20 && ch < 0x7f)
                        shown[k++] = (char)ch;
                    else
                        k += (size_t)snprintf(shown + k, sizeof shown - k, "<%02x>", ch);
                }
                shown[k] = '\0';
                fail_msg("encoded bytes differ; got: %s", shown);
            }
        }
        for (size_t i = cap; i < len + GUARD; i++)
            assert_int_equal((unsigned char)buf[i], 0xAA);
    }
    free(buf);
}

static void expect_unencodable(const stomp_frame *f, stomp_version v)
{
    char buf[256];
    stomp_err err = STOMP_OK;
    assert_int_equal(stomp_encoded_size(f, v, 0, &err), 0);
    assert_int_equal(err, STOMP_E_UNENCODABLE);
    err = STOMP_OK;
    assert_int_equal(stomp_encode(f, v, 0, buf, sizeof buf, &err), 0);
    assert_int_equal(err, STOMP_E_UNENCODABLE);
}

/* --- exact bytes --------------------------------------------------------------------- */

static void test_send_v12(void **state)
{
    (void)state;
    stomp_header h[] = { H("destination", "/queue/a"), H("k", "a:b\\c\nd\re"),
                         H("x:y\\\n\r", "v") };
    stomp_frame f = make_frame(STOMP_CMD_SEND, h, NH(h), "hello", 5);
    expect_encoding(&f, STOMP_V12, 0,
                    S("SEND\ndestination:/queue/a\nk:a\\cb\\\\c\\nd\\re\n"
                      "x\\cy\\\\\\n\\r:v\ncontent-length:5\n\nhello\0"));
}

static void test_send_v11(void **state)
{
    (void)state;
    /* 1.1 escapes \n \c \\ and has no \r */
    stomp_header h[] = { H("destination", "/queue/a"), H("k", "a:b\\c\nd"), H("x:y", "") };
    stomp_frame f = make_frame(STOMP_CMD_SEND, h, NH(h), "hello", 5);
    expect_encoding(&f, STOMP_V11, 0,
                    S("SEND\ndestination:/queue/a\nk:a\\cb\\\\c\\nd\nx\\cy:\n"
                      "content-length:5\n\nhello\0"));
}

static void test_send_v10(void **state)
{
    (void)state;
    /* 1.0 escapes nothing; a ':' in a value is harmless (the first one splits) */
    stomp_header h[] = { H("destination", "/queue/a"), H("k", "a:b\\c\\n") };
    stomp_frame f = make_frame(STOMP_CMD_SEND, h, NH(h), "hello", 5);
    expect_encoding(&f, STOMP_V10, 0,
                    S("SEND\ndestination:/queue/a\nk:a:b\\c\\n\ncontent-length:5\n\nhello\0"));
}

static void test_connect_frames_not_escaped(void **state)
{
    (void)state;
    stomp_header c[] = { H("accept-version", "1.0,1.1,1.2"), H("host", "h\\ost:x"),
                         H("login", "a\\cb") };
    stomp_header d[] = { H("version", "1.2"), H("session", "s:1\\x"),
                         H("heart-beat", "0,0") };
    for (int v = STOMP_V10; v <= STOMP_V12; v++) {
        stomp_frame f = make_frame(STOMP_CMD_CONNECT, c, NH(c), NULL, 0);
        expect_encoding(&f, (stomp_version)v, 0,
                        S("CONNECT\naccept-version:1.0,1.1,1.2\nhost:h\\ost:x\nlogin:a\\cb\n"
                          "\n\0"));
        f = make_frame(STOMP_CMD_STOMP, c, NH(c), NULL, 0);
        expect_encoding(&f, (stomp_version)v, 0,
                        S("STOMP\naccept-version:1.0,1.1,1.2\nhost:h\\ost:x\nlogin:a\\cb\n"
                          "\n\0"));
        f = make_frame(STOMP_CMD_CONNECTED, d, NH(d), NULL, 0);
        expect_encoding(&f, (stomp_version)v, 0,
                        S("CONNECTED\nversion:1.2\nsession:s:1\\x\nheart-beat:0,0\n\n\0"));
    }
}

static void test_content_length(void **state)
{
    (void)state;
    stomp_header h[] = { H("content-length", "99"), H("destination", "/q"),
                         H("content-length", "7") };
    /* the caller's content-length is dropped; the encoder writes the true one */
    stomp_frame f = make_frame(STOMP_CMD_SEND, h, NH(h), "abc", 3);
    expect_encoding(&f, STOMP_V12, 0, S("SEND\ndestination:/q\ncontent-length:3\n\nabc\0"));
    f = make_frame(STOMP_CMD_SEND, h, NH(h), "", 0);
    expect_encoding(&f, STOMP_V12, 0, S("SEND\ndestination:/q\n\n\0"));
    f = make_frame(STOMP_CMD_SEND, h, NH(h), NULL, 0);
    expect_encoding(&f, STOMP_V12, 0, S("SEND\ndestination:/q\n\n\0"));
    expect_encoding(&f, STOMP_V12, STOMP_ENC_ALWAYS_LENGTH,
                    S("SEND\ndestination:/q\ncontent-length:0\n\n\0"));

    /* binary bodies: NULs inside, length decides */
    stomp_header m[] = { H("destination", "/q"), H("message-id", "1"),
                         H("subscription", "0") };
    f = make_frame(STOMP_CMD_MESSAGE, m, NH(m), "a\0b\0", 4);
    expect_encoding(&f, STOMP_V11, 0,
                    S("MESSAGE\ndestination:/q\nmessage-id:1\nsubscription:0\n"
                      "content-length:4\n\na\0b\0\0"));
    expect_encoding(&f, STOMP_V11, STOMP_ENC_ALWAYS_LENGTH,
                    S("MESSAGE\ndestination:/q\nmessage-id:1\nsubscription:0\n"
                      "content-length:4\n\na\0b\0\0"));

    stomp_header e[] = { H("message", "bad frame") };
    f = make_frame(STOMP_CMD_ERROR, e, NH(e), "line\n", 5);
    expect_encoding(&f, STOMP_V10, 0,
                    S("ERROR\nmessage:bad frame\ncontent-length:5\n\nline\n\0"));
    f = make_frame(STOMP_CMD_ERROR, e, NH(e), NULL, 0);
    expect_encoding(&f, STOMP_V10, 0, S("ERROR\nmessage:bad frame\n\n\0"));

    /* a longer body: the length is written in full */
    size_t big = 1234567;
    char *body = malloc(big);
    assert_non_null(body);
    memset(body, 0, big);
    f = make_frame(STOMP_CMD_SEND, NULL, 0, body, big);
    stomp_err err = STOMP_OK;
    size_t size = stomp_encoded_size(&f, STOMP_V12, 0, &err);
    assert_int_equal(size, strlen("SEND\ncontent-length:1234567\n\n") + big + 1);
    char *out = malloc(size);
    assert_non_null(out);
    assert_int_equal(stomp_encode(&f, STOMP_V12, 0, out, size, &err), size);
    assert_memory_equal(out, "SEND\ncontent-length:1234567\n\n", 29);
    assert_int_equal(out[size - 1], '\0');
    free(out);
    free(body);
}

static void test_no_headers(void **state)
{
    (void)state;
    stomp_frame f = make_frame(STOMP_CMD_DISCONNECT, NULL, 0, NULL, 0);
    for (int v = STOMP_V10; v <= STOMP_V12; v++)
        expect_encoding(&f, (stomp_version)v, 0, S("DISCONNECT\n\n\0"));
    stomp_header r[] = { H("receipt-id", "77") };
    f = make_frame(STOMP_CMD_RECEIPT, r, NH(r), NULL, 0);
    expect_encoding(&f, STOMP_V12, 0, S("RECEIPT\nreceipt-id:77\n\n\0"));
}

static void test_unknown_command(void **state)
{
    (void)state;
    /* an unknown command is written as named */
    stomp_header h[] = { H("k", "a:b") };
    stomp_frame f = make_frame(STOMP_CMD_UNKNOWN, h, NH(h), "x", 1);
    f.cmd_name = "FOO";
    f.cmd_len = 3;
    expect_encoding(&f, STOMP_V12, 0, S("FOO\nk:a\\cb\ncontent-length:1\n\nx\0"));
    /* with no name, or a name that breaks the command line, it cannot be written */
    f.cmd_name = NULL;
    f.cmd_len = 0;
    expect_unencodable(&f, STOMP_V12);
    f.cmd_name = "FO\nO";
    f.cmd_len = 4;
    expect_unencodable(&f, STOMP_V12);
}

static void test_unencodable(void **state)
{
    (void)state;
    stomp_header lf[] = { H("destination", "/q"), H("k", "a\nb") };
    stomp_header cr[] = { H("k", "a\rb") };
    stomp_header colon_name[] = { H("a:b", "v") };
    stomp_header lf_name[] = { H("a\nb", "v") };
    stomp_frame f;

    /* 1.0 has no escapes: LF and CR cannot be written, nor ':' in a name */
    f = make_frame(STOMP_CMD_SEND, lf, NH(lf), NULL, 0);
    expect_unencodable(&f, STOMP_V10);
    f = make_frame(STOMP_CMD_SEND, cr, NH(cr), NULL, 0);
    expect_unencodable(&f, STOMP_V10);
    f = make_frame(STOMP_CMD_SEND, colon_name, NH(colon_name), NULL, 0);
    expect_unencodable(&f, STOMP_V10);
    f = make_frame(STOMP_CMD_MESSAGE, lf_name, NH(lf_name), "x", 1);
    expect_unencodable(&f, STOMP_V10);

    /* CONNECT and CONNECTED are never escaped, in any version */
    for (int v = STOMP_V10; v <= STOMP_V12; v++) {
        f = make_frame(STOMP_CMD_CONNECTED, lf, NH(lf), NULL, 0);
        expect_unencodable(&f, (stomp_version)v);
        f = make_frame(STOMP_CMD_CONNECTED, cr, NH(cr), NULL, 0);
        expect_unencodable(&f, (stomp_version)v);
        f = make_frame(STOMP_CMD_CONNECT, lf, NH(lf), NULL, 0);
        expect_unencodable(&f, (stomp_version)v);
        f = make_frame(STOMP_CMD_CONNECT, colon_name, NH(colon_name), NULL, 0);
        expect_unencodable(&f, (stomp_version)v);
        f = make_frame(STOMP_CMD_CONNECTED, colon_name, NH(colon_name), NULL, 0);
        expect_unencodable(&f, (stomp_version)v);
    }

    /* 1.1 has no escape for CR: a value ending in CR would not come back */
    f = make_frame(STOMP_CMD_SEND, cr, NH(cr), NULL, 0);
    expect_unencodable(&f, STOMP_V11);

    /* what no parser can read back: a NUL in a header, an empty name */
    stomp_header nul[] = { H("k", "a\0b") };
    stomp_header empty[] = { H("", "v") };
    for (int v = STOMP_V10; v <= STOMP_V12; v++) {
        f = make_frame(STOMP_CMD_SEND, nul, NH(nul), NULL, 0);
        expect_unencodable(&f, (stomp_version)v);
        f = make_frame(STOMP_CMD_SEND, empty, NH(empty), NULL, 0);
        expect_unencodable(&f, (stomp_version)v);
    }

    /* the same headers are fine where escaping exists */
    f = make_frame(STOMP_CMD_SEND, lf, NH(lf), NULL, 0);
    expect_encoding(&f, STOMP_V11, 0, S("SEND\ndestination:/q\nk:a\\nb\n\n\0"));
    f = make_frame(STOMP_CMD_SEND, cr, NH(cr), NULL, 0);
    expect_encoding(&f, STOMP_V12, 0, S("SEND\nk:a\\rb\n\n\0"));
    f = make_frame(STOMP_CMD_SEND, colon_name, NH(colon_name), NULL, 0);
    expect_encoding(&f, STOMP_V11, 0, S("SEND\na\\cb:v\n\n\0"));
}

static void test_escape(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t in_len;
        stomp_version v;
        stomp_command cmd;
        const char *out;
    } cases[] = {
        { S("a:b\\c\nd\re"), STOMP_V12, STOMP_CMD_SEND, "a\\cb\\\\c\\nd\\re" },
        { S("a:b\\c\nd"), STOMP_V11, STOMP_CMD_MESSAGE, "a\\cb\\\\c\\nd" },
        { S("a:b\\c\nd\re"), STOMP_V10, STOMP_CMD_SEND, "a:b\\c\nd\re" },
        { S("a:b\\c"), STOMP_V12, STOMP_CMD_CONNECT, "a:b\\c" },
        { S("a:b\\c"), STOMP_V12, STOMP_CMD_CONNECTED, "a:b\\c" },
        { S("a:b\\c"), STOMP_V11, STOMP_CMD_CONNECTED, "a:b\\c" },
        { S("plain-text 123"), STOMP_V12, STOMP_CMD_MESSAGE, "plain-text 123" },
        { S("\\\\::\n\n"), STOMP_V12, STOMP_CMD_ACK, "\\\\\\\\\\c\\c\\n\\n" },
        { S(""), STOMP_V12, STOMP_CMD_SEND, "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        size_t want = strlen(cases[i].out);
        memset(out, 0xAA, sizeof out);
        assert_int_equal(stomp_escaped_len(cases[i].in, cases[i].in_len, cases[i].v,
                                           cases[i].cmd),
                         want);
        assert_int_equal(stomp_escape(cases[i].in, cases[i].in_len, cases[i].v, cases[i].cmd,
                                      out),
                         want);
        assert_memory_equal(out, cases[i].out, want);
        assert_int_equal((unsigned char)out[want], 0xAA);
    }
    /* a partial length stops where told */
    char out[8];
    assert_int_equal(stomp_escaped_len("a:b", 1, STOMP_V12, STOMP_CMD_SEND), 1);
    assert_int_equal(stomp_escape("a:b", 2, STOMP_V12, STOMP_CMD_SEND, out), 3);
    assert_memory_equal(out, "a\\c", 3);
}

/* stomp_header_fits() is the rule stomp_encoded_size() applies to each header. */
static void test_header_fits(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t len;
    } texts[] = {
        { S("") }, { S("plain") }, { S("a:b") }, { S("a\\b") }, { S("a\nb") },
        { S("a\rb") }, { S("a\r") }, { S("a\0b") }, { S("\r\n") }, { S(":") },
    };
    static const stomp_command cmds[] = { STOMP_CMD_SEND, STOMP_CMD_MESSAGE,
                                          STOMP_CMD_CONNECT, STOMP_CMD_STOMP,
                                          STOMP_CMD_CONNECTED, STOMP_CMD_ERROR };
    size_t nt = sizeof texts / sizeof texts[0];
    for (size_t c = 0; c < NH(cmds); c++)
        for (int v = STOMP_V10; v <= STOMP_V12; v++)
            for (size_t i = 0; i < nt; i++)
                for (size_t j = 0; j < nt; j++) {
                    stomp_header h = { texts[i].s, texts[i].len, texts[j].s, texts[j].len };
                    stomp_frame f = make_frame(cmds[c], &h, 1, NULL, 0);
                    stomp_err err = STOMP_OK;
                    int sized = stomp_encoded_size(&f, (stomp_version)v, 0, &err) != 0;
                    assert_int_equal(stomp_header_fits(h.name, h.name_len, h.value,
                                                       h.value_len, (stomp_version)v, cmds[c]),
                                     sized);
                }
    /* the rules spelled out */
    assert_true(stomp_header_fits(S("a"), S("x:y"), STOMP_V10, STOMP_CMD_MESSAGE));
    assert_false(stomp_header_fits(S("a:b"), S("v"), STOMP_V10, STOMP_CMD_MESSAGE));
    assert_true(stomp_header_fits(S("a:b"), S("v"), STOMP_V11, STOMP_CMD_MESSAGE));
    assert_false(stomp_header_fits(S("a:b"), S("v"), STOMP_V12, STOMP_CMD_CONNECTED));
    assert_false(stomp_header_fits(S("a"), S("x\ny"), STOMP_V10, STOMP_CMD_MESSAGE));
    assert_true(stomp_header_fits(S("a"), S("x\ny"), STOMP_V11, STOMP_CMD_MESSAGE));
    assert_false(stomp_header_fits(S("a"), S("x\ry"), STOMP_V11, STOMP_CMD_MESSAGE));
    assert_true(stomp_header_fits(S("a"), S("x\ry"), STOMP_V12, STOMP_CMD_MESSAGE));
    assert_false(stomp_header_fits(S("a"), S("x\0y"), STOMP_V12, STOMP_CMD_MESSAGE));
    assert_false(stomp_header_fits(S(""), S("v"), STOMP_V12, STOMP_CMD_MESSAGE));
    assert_true(stomp_header_fits(S("a"), S(""), STOMP_V10, STOMP_CMD_SEND));
}

/* --- round trips --------------------------------------------------------------------- */

/* Encode f in v, parse it back in v (every chunking), and compare. */
static void round_trip(const stomp_frame *f, stomp_version v, unsigned flags)
{
    stomp_err err = STOMP_OK;
    size_t size = stomp_encoded_size(f, v, flags, &err);
    assert_true(size > 0);
    char *buf = malloc(size);
    assert_non_null(buf);
    assert_int_equal(stomp_encode(f, v, flags, buf, size, &err), size);

    parse_opts o = { .version = v };
    parse_result r;
    parse_check_edges(&o, buf, size, size > 3000 ? 300 : 0, &r);
    expect_events(&r, "F");
    expect_clean(&r);
    assert_int_equal(r.ev[0].end, size);
    const rec_event *e = &r.ev[0];
    assert_int_equal(e->cmd, f->cmd);
    assert_string_equal(e->cmd_name, f->cmd_name);

    size_t j = 0, lengths = 0;
    for (size_t i = 0; i < e->nheaders; i++) {
        const rec_header *h = &e->headers[i];
        if (strcmp(h->name, "content-length") == 0) {
            char want[32];
            snprintf(want, sizeof want, "%zu", f->body_len);
            assert_string_equal(h->value, want);
            lengths++;
            continue;
        }
        while (j < f->nheaders && strcmp(f->headers[j].name, "content-length") == 0)
            j++;
        assert_true(j < f->nheaders);
        assert_int_equal(h->name_len, f->headers[j].name_len);
        assert_memory_equal(h->name, f->headers[j].name, h->name_len);
        assert_int_equal(h->value_len, f->headers[j].value_len);
        assert_memory_equal(h->value, f->headers[j].value, h->value_len);
        j++;
    }
    while (j < f->nheaders && strcmp(f->headers[j].name, "content-length") == 0)
        j++;
    assert_int_equal(j, f->nheaders);
    assert_int_equal(lengths, f->body_len > 0 || (flags & STOMP_ENC_ALWAYS_LENGTH) ? 1 : 0);
    assert_int_equal(e->body_len, f->body_len);
    if (f->body_len)
        assert_memory_equal(e->body, f->body, f->body_len);
    result_free(&r);
    free(buf);
}

static void test_round_trip(void **state)
{
    (void)state;
    static const char bin[] = "\0\1\2\0\n\r\n\0\xff";
    stomp_header a12[] = { H("destination", "/queue/a"), H("weird", "a:b\\c\nd\re\r\n"),
                           H("x:y\\\r\n", "v"), H("e", "") };
    stomp_header a11[] = { H("destination", "/queue/a"), H("weird", "a:b\\c\nd\n"),
                           H("x:y\\\n", "v"), H("content-length", "0") };
    stomp_header a10[] = { H("destination", "/queue/a"), H("k", "a:b\\c\\n::"),
                           H("content-length", "x") };
    stomp_header msg[] = { H("destination", "/queue/a"), H("message-id", "m-1"),
                           H("subscription", "0"), H("ack", "a\\1"), H("same", "1"),
                           H("same", "2") };
    stomp_header conn[] = { H("accept-version", "1.0,1.1,1.2"), H("host", "/"),
                            H("login", "a\\b:c"), H("passcode", "\\n") };
    stomp_header connd[] = { H("version", "1.2"), H("session", "s\\1"),
                             H("server", "stompd/0.1.0"), H("heart-beat", "0,0") };
    stomp_header err[] = { H("message", "bad\\frame"), H("receipt-id", "r:1") };
    stomp_header ack[] = { H("id", "a\\cb"), H("transaction", "t:1") };
    stomp_header sub[] = { H("id", "0"), H("destination", "/topic/x"), H("ack", "client") };

    size_t big_len = 5000;
    char *big = malloc(big_len);
    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)(i * 7);

    struct {
        stomp_frame f;
        stomp_version min;
    } cases[] = {
        { make_frame(STOMP_CMD_SEND, a12, NH(a12), bin, sizeof bin - 1), STOMP_V12 },
        { make_frame(STOMP_CMD_SEND, a11, NH(a11), "hello\0world", 11), STOMP_V11 },
        { make_frame(STOMP_CMD_SEND, a10, NH(a10), bin, sizeof bin - 1), STOMP_V10 },
        { make_frame(STOMP_CMD_SEND, a10, NH(a10), NULL, 0), STOMP_V10 },
        { make_frame(STOMP_CMD_MESSAGE, msg, NH(msg), big, big_len), STOMP_V10 },
        { make_frame(STOMP_CMD_MESSAGE, msg, NH(msg), "", 0), STOMP_V10 },
        { make_frame(STOMP_CMD_CONNECT, conn, NH(conn), NULL, 0), STOMP_V10 },
        { make_frame(STOMP_CMD_STOMP, conn, NH(conn), NULL, 0), STOMP_V10 },
        { make_frame(STOMP_CMD_CONNECTED, connd, NH(connd), NULL, 0), STOMP_V10 },
        { make_frame(STOMP_CMD_ERROR, err, NH(err), "details\n\0more", 13), STOMP_V10 },
        { make_frame(STOMP_CMD_ACK, ack, NH(ack), NULL, 0), STOMP_V10 },
        { make_frame(STOMP_CMD_NACK, ack, NH(ack), NULL, 0), STOMP_V10 },
        { make_frame(STOMP_CMD_SUBSCRIBE, sub, NH(sub), NULL, 0), STOMP_V10 },
        { make_frame(STOMP_CMD_UNSUBSCRIBE, sub, 1, NULL, 0), STOMP_V10 },
        { make_frame(STOMP_CMD_BEGIN, ack + 1, 1, NULL, 0), STOMP_V10 },
        { make_frame(STOMP_CMD_COMMIT, ack + 1, 1, NULL, 0), STOMP_V10 },
        { make_frame(STOMP_CMD_ABORT, ack + 1, 1, NULL, 0), STOMP_V10 },
        { make_frame(STOMP_CMD_RECEIPT, err + 1, 1, NULL, 0), STOMP_V10 },
        { make_frame(STOMP_CMD_DISCONNECT, NULL, 0, NULL, 0), STOMP_V10 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int v = STOMP_V10; v <= STOMP_V12; v++) {
            print_message("frame %zu, version %d\n", i, v);
            if (v < (int)cases[i].min) {
                /* these headers need escapes the version does not have */
                expect_unencodable(&cases[i].f, (stomp_version)v);
                continue;
            }
            round_trip(&cases[i].f, (stomp_version)v, 0);
            round_trip(&cases[i].f, (stomp_version)v, STOMP_ENC_ALWAYS_LENGTH);
        }
    }
    free(big);
}

/* Frames the encoder writes back to back parse as the same sequence. */
static void test_stream_of_frames(void **state)
{
    (void)state;
    stomp_header m[] = { H("destination", "/q"), H("k", "a\nb") };
    stomp_frame fs[] = {
        make_frame(STOMP_CMD_MESSAGE, m, NH(m), "x\0y", 3),
        make_frame(STOMP_CMD_RECEIPT, m, 1, NULL, 0),
        make_frame(STOMP_CMD_MESSAGE, m, NH(m), "", 0),
    };
    char buf[512];
    size_t n = 0;
    stomp_err err;
    for (size_t i = 0; i < NH(fs); i++) {
        size_t w = stomp_encode(&fs[i], STOMP_V12, 0, buf + n, sizeof buf - n, &err);
        assert_true(w > 0);
        assert_int_equal(buf[n + w - 1], '\0');
        n += w;
        /* a heart-beat between frames */
        buf[n++] = '\n';
    }
    parse_opts o = { .version = STOMP_V12 };
    parse_result r;
    parse_check(&o, buf, n, &r);
    expect_events(&r, "FHFHFH");
    expect_frame(&r, 0, STOMP_CMD_MESSAGE, "MESSAGE", S("x\0y"), 3, "destination", "/q", "k",
                 "a\nb", "content-length", "3");
    expect_frame(&r, 2, STOMP_CMD_RECEIPT, "RECEIPT", "", 0, 1, "destination", "/q");
    expect_frame(&r, 4, STOMP_CMD_MESSAGE, "MESSAGE", "", 0, 2, "destination", "/q", "k",
                 "a\nb");
    expect_clean(&r);
    result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_v12),
        cmocka_unit_test(test_send_v11),
        cmocka_unit_test(test_send_v10),
        cmocka_unit_test(test_connect_frames_not_escaped),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_no_headers),
        cmocka_unit_test(test_unknown_command),
        cmocka_unit_test(test_unencodable),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_header_fits),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_stream_of_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
