/* test_parser.c: the frame parser, rule by rule: command line, headers, blank line, body,
 * NUL, EOLs and heart-beats, content-length, header escaping per version, every limit at
 * its boundary, and a table of malformed inputs tagged with the spec clause they break.
 * Inputs go through parse_check(), so every chunking must agree. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>


#include "frames_check.h"

static const parse_opts V10 = { .version = STOMP_V10 };
static const parse_opts V11 = { .version = STOMP_V11 };
static const parse_opts V11_LENIENT = { .version = STOMP_V11,
                                         .flags = STOMP_PARSE_LENIENT_ESCAPES };
static const parse_opts V12 = { .version = STOMP_V12 };
static const parse_opts V12_LENIENT = { .version = STOMP_V12,
                                         .flags = STOMP_PARSE_LENIENT_ESCAPES };
static const parse_opts U10 = { .version = STOMP_V10, .flags = STOMP_PARSE_UTF8 };
static const parse_opts U11 = { .version = STOMP_V11, .flags = STOMP_PARSE_UTF8 };
static const parse_opts U12 = { .version = STOMP_V12, .flags = STOMP_PARSE_UTF8 };
static const parse_opts *const ALL_VERSIONS[] = { &V10, &V11, &V11_LENIENT, &V12 };
#define NVERSIONS (sizeof ALL_VERSIONS / sizeof ALL_VERSIONS[0])

/* --- command line, headers, blank line, body, NUL ------------------------------------ */

static void test_minimal_frame(void **state)
{
    (void)state;
    for (size_t v = 0; v < NVERSIONS; v++) {
        parse_result r;
        parse_check(ALL_VERSIONS[v], S("SEND\n\n\0"), &r);
        expect_events(&r, "F");
        expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", "", 0, 0);
        assert_int_equal(r.ev[0].end, 7);
        expect_clean(&r);
        result_free(&r);

        parse_check(ALL_VERSIONS[v], S("DISCONNECT\nreceipt:77\n\n\0"), &r);
        expect_events(&r, "F");
        expect_frame(&r, 0, STOMP_CMD_DISCONNECT, "DISCONNECT", "", 0, 1, "receipt", "77");
        expect_clean(&r);
        result_free(&r);
    }
}

static void test_every_command(void **state)
{
    (void)state;
    char buf[128];
    for (int c = STOMP_CMD_UNKNOWN + 1; c < STOMP_CMD__COUNT; c++) {
        const char *name = stomp_command_name((stomp_command)c);
        int n = snprintf(buf, sizeof buf, "%s\nk:v\nk2:v2\n\nbody%c", name, 0);
        assert_true(n > 0 && (size_t)n < sizeof buf);
        for (size_t v = 0; v < NVERSIONS; v++) {
            parse_result r;
            parse_check(ALL_VERSIONS[v], buf, (size_t)n, &r);
            expect_events(&r, "F");
            expect_frame(&r, 0, (stomp_command)c, name, S("body"), 2, "k", "v", "k2", "v2");
            assert_int_equal(r.ev[0].end, (uint64_t)n);
            expect_clean(&r);
            result_free(&r);
        }
    }
}

static void test_unknown_command(void **state)
{
    (void)state;
    parse_result r;

    parse_check(&V12, S("FOO\na:b\n\n\0"), &r);
    expect_events(&r, "F");
    expect_frame(&r, 0, STOMP_CMD_UNKNOWN, "FOO", "", 0, 1, "a", "b");
    result_free(&r);

    /* commands are case-sensitive */
    parse_check(&V12, S("send\n\nx\0"), &r);
    expect_frame(&r, 0, STOMP_CMD_UNKNOWN, "send", S("x"), 0);
    result_free(&r);

    parse_check(&V12, S("SENDX\n\n\0UNKNOWN\n\n\0S\n\n\0"), &r);
    expect_events(&r, "FFF");
    expect_frame(&r, 0, STOMP_CMD_UNKNOWN, "SENDX", "", 0, 0);
    expect_frame(&r, 1, STOMP_CMD_UNKNOWN, "UNKNOWN", "", 0, 0);
    expect_frame(&r, 2, STOMP_CMD_UNKNOWN, "S", "", 0, 0);
    expect_clean(&r);
    result_free(&r);

    /* bytes that are not letters are still a command line */
    parse_check(&V12, S("SEND FRAME\t\xc3\xa9\n\n\0"), &r);
    expect_frame(&r, 0, STOMP_CMD_UNKNOWN, "SEND FRAME\t\xc3\xa9", "", 0, 0);
    result_free(&r);
}

static void test_headers_kept_as_written(void **state)
{
    (void)state;
    parse_result r;
    /* no trimming, the first ':' splits, empty values are fine */
    parse_check(&V12, S("SEND\n a : b \nempty:\nk:b:c\nutf8:\xe2\x82\xac\n\n\0"), &r);
    expect_events(&r, "F");
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", "", 0, 4, " a ", " b ", "empty", "", "k",
                 "b:c", "utf8", "\xe2\x82\xac");
    expect_clean(&r);
    result_free(&r);
}

static void test_body_to_first_nul(void **state)
{
    (void)state;
    parse_result r;
    /* a body without content-length is text up to the first NUL; EOLs in it are kept */
    parse_check(&V12, S("SEND\ndestination:/q\n\nline 1\nline 2\r\n\n\0"), &r);
    expect_events(&r, "F");
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", S("line 1\nline 2\r\n\n"), 1, "destination",
                 "/q");
    expect_clean(&r);
    result_free(&r);

    /* the body may start with EOLs or look like headers */
    parse_check(&V12, S("SEND\n\n\nk:v\n\n\0"), &r);
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", S("\nk:v\n\n"), 0);
    result_free(&r);
}

static void test_back_to_back_frames(void **state)
{
    (void)state;
    parse_result r;
    /* the parser stops after each frame: the next one is not swallowed */
    parse_check(&V12, S("SEND\n\na\0SEND\nx:y\n\nb\0MESSAGE\n\nc\0"), &r);
    expect_events(&r, "FFF");
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", S("a"), 0);
    expect_frame(&r, 1, STOMP_CMD_SEND, "SEND", S("b"), 1, "x", "y");
    expect_frame(&r, 2, STOMP_CMD_MESSAGE, "MESSAGE", S("c"), 0);
    assert_int_equal(r.ev[0].end, 8);
    assert_int_equal(r.ev[1].end, 20);
    assert_int_equal(r.ev[2].end, 31);
    expect_clean(&r);
    result_free(&r);

    /* a partial frame after a complete one stays pending */
    parse_check(&V12, S("SEND\n\na\0SEND\nx:"), &r);
    expect_events(&r, "F");
    assert_false(r.failed);
    assert_int_equal(r.tail, 7);
    result_free(&r);
}

static void test_stops_after_frame(void **state)
{
    (void)state;
    static const char in[] = "SEND\n\na\0\nSEND\n\nb\0";
    stomp_parser p;
    size_t consumed = 0;

    stomp_parser_init(&p, NULL, NULL, NULL);
    assert_int_equal(stomp_parser_feed(&p, in, sizeof in - 1, &consumed), STOMP_EV_FRAME);
    assert_int_equal(consumed, 8);
    assert_non_null(stomp_parser_frame(&p));
    assert_int_equal(stomp_parser_feed(&p, in + 8, sizeof in - 1 - 8, &consumed),
                     STOMP_EV_HEARTBEAT);
    assert_int_equal(consumed, 1);
    assert_null(stomp_parser_frame(&p));
    assert_int_equal(stomp_parser_feed(&p, in + 9, sizeof in - 1 - 9, &consumed),
                     STOMP_EV_FRAME);
    assert_int_equal(consumed, 8);
    const stomp_frame *f = stomp_parser_frame(&p);
    assert_non_null(f);
    assert_int_equal(f->body_len, 1);
    assert_int_equal(f->body[0], 'b');
    /* nothing left: a zero-length feed needs more and consumes nothing */
    consumed = 99;
    assert_int_equal(stomp_parser_feed(&p, in, 0, &consumed), STOMP_EV_NEED_MORE);
    assert_int_equal(consumed, 0);
    assert_null(stomp_parser_frame(&p));
    assert_int_equal(stomp_parser_error(&p, NULL), STOMP_OK);
    stomp_parser_free(&p);
}

/* --- EOLs ---------------------------------------------------------------------------- */

static void test_crlf_line_ends(void **state)
{
    (void)state;
    for (size_t v = 0; v < NVERSIONS; v++) {
        parse_result r;
        /* CR before LF is stripped from command and header lines, never from the body */
        parse_check(ALL_VERSIONS[v], S("SEND\r\ndestination:/q\r\nk:v\r\n\r\nhi\r\n\0"), &r);
        expect_events(&r, "F");
        expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", S("hi\r\n"), 2, "destination", "/q", "k",
                     "v");
        expect_clean(&r);
        result_free(&r);

        /* LF and CRLF mixed in one frame */
        parse_check(ALL_VERSIONS[v], S("SEND\na:b\r\nc:d\n\r\n\0"), &r);
        expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", "", 0, 2, "a", "b", "c", "d");
        result_free(&r);

        /* CONNECT frames too */
        parse_check(ALL_VERSIONS[v], S("CONNECT\r\naccept-version:1.2\r\nhost:h\r\n\r\n\0"), &r);
        expect_frame(&r, 0, STOMP_CMD_CONNECT, "CONNECT", "", 0, 2, "accept-version", "1.2",
                     "host", "h");
        result_free(&r);

        /* content-length body after CRLF lines */
        parse_check(ALL_VERSIONS[v], S("SEND\r\ncontent-length:2\r\n\r\n\r\n\0"), &r);
        expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", S("\r\n"), 1, "content-length", "2");
        expect_clean(&r);
        result_free(&r);
    }
}

static void test_heartbeats(void **state)
{
    (void)state;
    for (size_t v = 0; v < NVERSIONS; v++) {
        parse_result r;
        parse_check(ALL_VERSIONS[v], S("\n"), &r);
        expect_events(&r, "H");
        assert_int_equal(r.ev[0].end, 1);
        expect_clean(&r);
        result_free(&r);

        parse_check(ALL_VERSIONS[v], S("\r\n"), &r);
        expect_events(&r, "H");
        assert_int_equal(r.ev[0].end, 2);
        expect_clean(&r);
        result_free(&r);

        /* one event per EOL */
        parse_check(ALL_VERSIONS[v], S("\n\r\n\n\r\n\r\n"), &r);
        expect_events(&r, "HHHHH");
        assert_int_equal(r.ev[0].end, 1);
        assert_int_equal(r.ev[1].end, 3);
        assert_int_equal(r.ev[2].end, 4);
        assert_int_equal(r.ev[3].end, 6);
        assert_int_equal(r.ev[4].end, 8);
        expect_clean(&r);
        result_free(&r);

        /* EOLs before, between and after frames */
        parse_check(ALL_VERSIONS[v], S("\n\nSEND\n\na\0\r\n\nSEND\n\nb\0\n"), &r);
        expect_events(&r, "HHFHHFH");
        expect_frame(&r, 2, STOMP_CMD_SEND, "SEND", S("a"), 0);
        expect_frame(&r, 5, STOMP_CMD_SEND, "SEND", S("b"), 0);
        expect_clean(&r);
        result_free(&r);

        /* a CR waiting for its LF is a partial heart-beat */
        parse_check(ALL_VERSIONS[v], S("\n\r"), &r);
        expect_events(&r, "H");
        assert_false(r.failed);
        assert_int_equal(r.tail, 1);
        result_free(&r);
    }
}

static void test_nul_followed_by_eols(void **state)
{
    (void)state;
    parse_result r;
    /* 1.2 Augmented BNF: frame = command EOL *(header EOL) EOL *OCTET NULL *(EOL) */
    parse_check(&V12, S("SEND\n\nx\0\n\nSEND\ncontent-length:1\n\ny\0\r\n\r\nSEND\n\nz\0"), &r);
    expect_events(&r, "FHHFHHF");
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", S("x"), 0);
    expect_frame(&r, 3, STOMP_CMD_SEND, "SEND", S("y"), 1, "content-length", "1");
    expect_frame(&r, 6, STOMP_CMD_SEND, "SEND", S("z"), 0);
    assert_int_equal(r.ev[0].end, 8);
    assert_int_equal(r.ev[1].end, 9);
    assert_int_equal(r.ev[2].end, 10);
    expect_clean(&r);
    result_free(&r);
}

/* --- content-length ------------------------------------------------------------------ */

static void test_content_length_body(void **state)
{
    (void)state;
    parse_result r;

    /* 1.2 Header content-length: the body is exactly that many octets, NULs included */
    parse_check(&V12, S("SEND\ncontent-length:5\n\na\0b\0c\0"), &r);
    expect_events(&r, "F");
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", S("a\0b\0c"), 1, "content-length", "5");
    assert_int_equal(r.ev[0].end, 29);
    expect_clean(&r);
    result_free(&r);

    parse_check(&V10, S("MESSAGE\ndestination:/q\ncontent-length:4\n\n\0\0\0\0\0"), &r);
    expect_frame(&r, 0, STOMP_CMD_MESSAGE, "MESSAGE", S("\0\0\0\0"), 2, "destination", "/q",
                 "content-length", "4");
    expect_clean(&r);
    result_free(&r);

    parse_check(&V11, S("ERROR\nmessage:m\ncontent-length:3\n\n\n\r\n\0\n"), &r);
    expect_events(&r, "FH");
    expect_frame(&r, 0, STOMP_CMD_ERROR, "ERROR", S("\n\r\n"), 2, "message", "m",
                 "content-length", "3");
    result_free(&r);

    parse_check(&V12, S("SEND\ncontent-length:0\n\n\0"), &r);
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", "", 0, 1, "content-length", "0");
    expect_clean(&r);
    result_free(&r);

    /* leading zeros are still a decimal number */
    parse_check(&V12, S("SEND\ncontent-length:007\n\nabc\0def\0"), &r);
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", S("abc\0def"), 1, "content-length", "007");
    expect_clean(&r);
    result_free(&r);

    /* content-length may come anywhere among the headers */
    parse_check(&V12, S("SEND\na:1\ncontent-length:2\nb:2\n\n\0\0\0"), &r);
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", S("\0\0"), 3, "a", "1", "content-length", "2",
                 "b", "2");
    expect_clean(&r);
    result_free(&r);
}

/* Commands that carry a body honour content-length; the rest read to the first NUL and
 * ignore it (clients send e.g. ACK with content-length and a bogus body). */
static void test_content_length_by_command(void **state)
{
    (void)state;
    char buf[128];
    for (int c = 0; c < STOMP_CMD__COUNT; c++) {
        const char *name = c == STOMP_CMD_UNKNOWN ? "FOO" : stomp_command_name((stomp_command)c);
        int honoured = c == STOMP_CMD_SEND || c == STOMP_CMD_MESSAGE || c == STOMP_CMD_ERROR ||
                       c == STOMP_CMD_UNKNOWN;
        for (size_t v = 0; v < NVERSIONS; v++) {
            parse_result r;
            int n = snprintf(buf, sizeof buf, "%s\ncontent-length:1\n\nab%c", name, 0);
            parse_check(ALL_VERSIONS[v], buf, (size_t)n, &r);
            if (honoured) {
                /* "SEND\ncontent-length:1\n\n" then 'a', and 'b' where the NUL belongs */
                expect_error(&r, STOMP_E_MISSING_NUL, strlen(name) + 19 + 1);
            } else {
                expect_events(&r, "F");
                expect_frame(&r, 0, (stomp_command)c, name, S("ab"), 1, "content-length", "1");
                expect_clean(&r);
            }
            result_free(&r);

            n = snprintf(buf, sizeof buf, "%s\ncontent-length:3\n\na%cb%c\n", name, 0, 0);
            parse_check(ALL_VERSIONS[v], buf, (size_t)n, &r);
            if (honoured) {
                expect_events(&r, "FH");
                expect_frame(&r, 0, (stomp_command)c, name, S("a\0b"), 1, "content-length", "3");
                expect_clean(&r);
            } else {
                /* body "a"; then "b\0\n" is a command line holding a NUL */
                expect_events(&r, "FE");
                expect_frame(&r, 0, (stomp_command)c, name, S("a"), 1, "content-length", "3");
                expect_error(&r, STOMP_E_BAD_COMMAND, (uint64_t)n - 2);
            }
            result_free(&r);

            /* a content-length that would be malformed or too big is ignored there */
            n = snprintf(buf, sizeof buf, "%s\ncontent-length:None\ncontent-length:%s\n\nNone%c",
                         name, "99999999999999999999999", 0);
            parse_check(ALL_VERSIONS[v], buf, (size_t)n, &r);
            if (honoured) {
                expect_error(&r, STOMP_E_BAD_CONTENT_LENGTH, strlen(name) + 1);
            } else {
                expect_frame(&r, 0, (stomp_command)c, name, S("None"), 2, "content-length",
                             "None", "content-length", "99999999999999999999999");
                expect_clean(&r);
            }
            result_free(&r);
        }
    }
}

static void test_content_length_first_wins(void **state)
{
    (void)state;
    parse_result r;
    /* 1.2 Repeated Header Entries: the first one is used */
    parse_check(&V12, S("SEND\ncontent-length:2\ncontent-length:5\n\na\0\0"), &r);
    expect_events(&r, "F");
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", S("a\0"), 2, "content-length", "2",
                 "content-length", "5");
    expect_clean(&r);
    result_free(&r);

    /* a later malformed repeat does not matter */
    parse_check(&V12, S("SEND\ncontent-length:1\ncontent-length:x\n\na\0"), &r);
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", S("a"), 2, "content-length", "1",
                 "content-length", "x");
    expect_clean(&r);
    result_free(&r);
}

static void test_repeated_headers(void **state)
{
    (void)state;
    static const char in[] = "SEND\nfoo:1\nbar:x\nfoo:2\nfoo:3\n\n";
    parse_result r;
    parse_check(&V12, in, sizeof in, &r);
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", "", 0, 4, "foo", "1", "bar", "x", "foo", "2",
                 "foo", "3");
    result_free(&r);

    stomp_parser p;
    size_t consumed, len = 0;
    stomp_parser_init(&p, NULL, NULL, NULL);
    assert_int_equal(stomp_parser_feed(&p, in, sizeof in, &consumed), STOMP_EV_FRAME);
    const stomp_frame *f = stomp_parser_frame(&p);
    assert_non_null(f);
    const char *val = stomp_frame_header(f, "foo", &len);
    assert_non_null(val);
    assert_string_equal(val, "1");
    assert_int_equal(len, 1);
    assert_string_equal(stomp_frame_header(f, "bar", NULL), "x");
    assert_null(stomp_frame_header(f, "fo", NULL));
    assert_null(stomp_frame_header(f, "foo2", NULL));
    assert_null(stomp_frame_header(f, "FOO", NULL));
    stomp_parser_free(&p);
}

/* --- escaping ------------------------------------------------------------------------ */

static void test_escapes_v12(void **state)
{
    (void)state;
    parse_result r;
    /* 1.2 Value Encoding: \r \n \c \\ in names and values */
    parse_check(&V12, S("SEND\na\\cb\\\\:x\\ny\\rz\\cw\\\\v\\\\\\c\nk:\\n\\n\\r\n\n\0"), &r);
    expect_events(&r, "F");
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", "", 0, 2, "a:b\\", "x\ny\rz:w\\v\\:", "k",
                 "\n\n\r");
    expect_clean(&r);
    result_free(&r);

    /* the same frame with CRLF line ends */
    parse_check(&V12, S("MESSAGE\r\nk:a\\r\\n\r\n\r\n\0"), &r);
    expect_frame(&r, 0, STOMP_CMD_MESSAGE, "MESSAGE", "", 0, 1, "k", "a\r\n");
    result_free(&r);
}

static void test_escapes_v11(void **state)
{
    (void)state;
    parse_result r;
    /* 1.1 Value Encoding: \n \c \\ only */
    parse_check(&V11, S("SEND\na\\cb:x\\ny\\cz\\\\w\n\n\0"), &r);
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", "", 0, 1, "a:b", "x\ny:z\\w");
    expect_clean(&r);
    result_free(&r);

    /* lenient: undefined escapes are kept as written, defined ones still decoded */
    parse_check(&V11_LENIENT, S("SEND\nk\\t:a\\rb\\tc\\nd\\\\\ne:x\\\n\n\0"), &r);
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", "", 0, 2, "k\\t", "a\\rb\\tc\nd\\", "e",
                 "x\\");
    expect_clean(&r);
    result_free(&r);
}

static void test_escapes_v10(void **state)
{
    (void)state;
    parse_result r;
    /* 1.0 has no escapes: every backslash is a plain byte */
    parse_check(&V10, S("SEND\na\\cb:x\\ny\\rz\\t\\\\\nk:\\\n\n\0"), &r);
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", "", 0, 2, "a\\cb", "x\\ny\\rz\\t\\\\", "k",
                 "\\");
    expect_clean(&r);
    result_free(&r);

    /* a fresh parser speaks 1.0 */
    stomp_parser p;
    size_t consumed;
    static const char in[] = "SEND\nk:a\\nb\n\n";
    stomp_parser_init(&p, NULL, NULL, NULL);
    assert_int_equal(stomp_parser_feed(&p, in, sizeof in, &consumed), STOMP_EV_FRAME);
    assert_string_equal(stomp_parser_frame(&p)->headers[0].value, "a\\nb");
    stomp_parser_free(&p);
}

static void test_no_escapes_in_connect(void **state)
{
    (void)state;
    static const char *const cmds[] = { "CONNECT", "STOMP", "CONNECTED" };
    static const stomp_command ids[] = { STOMP_CMD_CONNECT, STOMP_CMD_STOMP,
                                         STOMP_CMD_CONNECTED };
    char buf[128];
    for (size_t c = 0; c < 3; c++) {
        for (size_t v = 0; v < NVERSIONS; v++) {
            parse_result r;
            /* 1.2 Value Encoding: CONNECT and CONNECTED frames are not escaped, so even
             * undefined sequences are plain bytes there */
            int n = snprintf(buf, sizeof buf, "%s\nlogin:a\\cb\npasscode:x\\ty\\\nk\\n:\\r\n\n%c",
                             cmds[c], 0);
            parse_check(ALL_VERSIONS[v], buf, (size_t)n, &r);
            expect_events(&r, "F");
            expect_frame(&r, 0, ids[c], cmds[c], "", 0, 3, "login", "a\\cb", "passcode",
                         "x\\ty\\", "k\\n", "\\r");
            expect_clean(&r);
            result_free(&r);
        }
    }
}

static void test_version_switch(void **state)
{
    (void)state;
    /* CONNECT in 1.0, then the negotiated version applies to the next frames */
    stomp_parser p;
    size_t consumed;
    static const char c1[] = "CONNECT\naccept-version:1.2\nlogin:a\\nb\n\n";
    static const char c2[] = "SEND\nk:a\\nb\n\n";
    stomp_parser_init(&p, NULL, NULL, NULL);
    assert_int_equal(stomp_parser_feed(&p, c1, sizeof c1, &consumed), STOMP_EV_FRAME);
    assert_string_equal(stomp_frame_header(stomp_parser_frame(&p), "login", NULL), "a\\nb");
    stomp_parser_set_version(&p, STOMP_V12, 0);
    assert_int_equal(stomp_parser_feed(&p, c2, sizeof c2, &consumed), STOMP_EV_FRAME);
    assert_string_equal(stomp_frame_header(stomp_parser_frame(&p), "k", NULL), "a\nb");
    stomp_parser_set_version(&p, STOMP_V10, 0);
    assert_int_equal(stomp_parser_feed(&p, c2, sizeof c2, &consumed), STOMP_EV_FRAME);
    assert_string_equal(stomp_frame_header(stomp_parser_frame(&p), "k", NULL), "a\\nb");
    stomp_parser_free(&p);
}

/* --- errors -------------------------------------------------------------------------- */

static const stomp_limits TIGHT = { 8, 8, 2, 64, 4 };

typedef struct bad_case {
    const char *clause;
    const char *in;
    size_t len;
    const parse_opts *opts;
    stomp_err err;
    uint64_t off; /* stream offset of the offending byte */
} bad_case;

static const parse_opts T10 = { .version = STOMP_V10, .limits = &TIGHT };
static const parse_opts T12 = { .version = STOMP_V12, .limits = &TIGHT };
static const stomp_limits TIGHT_BODY = { 64, 100, 10, 1000, 4 };
static const parse_opts TB12 = { .version = STOMP_V12, .limits = &TIGHT_BODY };

#define BAD(clause, lit, opts, err, off) { clause, S(lit), opts, err, off }

static const bad_case bad_cases[] = {
    /* command line */
    BAD("1.2 Augmented BNF", "SE\0ND\n\n\0", &V12, STOMP_E_BAD_COMMAND, 2),
    BAD("1.2 Augmented BNF", "\0\n", &V12, STOMP_E_BAD_COMMAND, 0),
    BAD("1.2 Augmented BNF", "\n\0\n", &V10, STOMP_E_BAD_COMMAND, 1),
    BAD("1.2 Augmented BNF", "SEND\n\nx\0\0\n", &V12, STOMP_E_BAD_COMMAND, 8),
    BAD("1.2 Augmented BNF", "SEND\0\n\n", &V12, STOMP_E_BAD_COMMAND, 4),
    BAD("1.2 Augmented BNF", "\rSEND\n\n\0", &V12, STOMP_E_BAD_COMMAND, 1),
    /* a NUL is refused when it arrives, not when the line ends: a Flash policy request is
     * NUL-terminated and its sender waits for an answer */
    BAD("1.2 Augmented BNF", "<policy-file-request/>\0", &V10, STOMP_E_BAD_COMMAND, 22),
    BAD("1.2 Augmented BNF", "SEND\nk:v\0", &V12, STOMP_E_BAD_HEADER, 8),
    BAD("1.2 Augmented BNF", "\n\r\r\n", &V12, STOMP_E_BAD_COMMAND, 2),
    BAD("1.2 Size Limits", "ABORTS123\n\n\0", &T12, STOMP_E_COMMAND_TOO_LONG, 0),
    BAD("1.2 Size Limits", "\nABORTS123456\n\n\0", &T12, STOMP_E_COMMAND_TOO_LONG, 1),
    BAD("1.2 Size Limits", "ABORTS123\r\n\n\0", &T12, STOMP_E_COMMAND_TOO_LONG, 0),
    /* header lines */
    BAD("1.2 Augmented BNF", "SEND\nfoo\n\n\0", &V12, STOMP_E_BAD_HEADER, 5),
    BAD("1.2 Augmented BNF", "SEND\r\nk:v\r\nfoo\r\n\r\n\0", &V12, STOMP_E_BAD_HEADER, 11),
    BAD("1.2 Augmented BNF", "SEND\n:v\n\n\0", &V12, STOMP_E_BAD_HEADER, 5),
    BAD("1.2 Augmented BNF", "SEND\n:\n\n\0", &V10, STOMP_E_BAD_HEADER, 5),
    BAD("1.2 Augmented BNF", "SEND\na:b\0c\n\n\0", &V12, STOMP_E_BAD_HEADER, 8),
    BAD("1.2 Augmented BNF", "SEND\na\0:b\n\n\0", &V12, STOMP_E_BAD_HEADER, 6),
    BAD("1.2 Augmented BNF", "SEND\n\0\n", &V12, STOMP_E_BAD_HEADER, 5),
    BAD("1.2 Augmented BNF", "SEND\na:b\n\0\n", &V12, STOMP_E_BAD_HEADER, 9),
    BAD("1.2 Augmented BNF", "CONNECT\nfoo\n\n\0", &V12, STOMP_E_BAD_HEADER, 8),
    BAD("1.2 Size Limits", "SEND\nab:defghi\n\n\0", &T12, STOMP_E_LINE_TOO_LONG, 5),
    BAD("1.2 Size Limits", "SEND\nab:defghi\r\n\n\0", &T12, STOMP_E_LINE_TOO_LONG, 5),
    BAD("1.2 Size Limits", "SEND\na:1\nabcdefghijklmnop\n\n\0", &T12, STOMP_E_LINE_TOO_LONG, 9),
    BAD("1.2 Size Limits", "SEND\na:1\nb:2\nc:3\n\n\0", &T12, STOMP_E_TOO_MANY_HEADERS, 13),
    BAD("1.2 Size Limits", "SEND\na:1\na:1\na:1\n\n\0", &T10, STOMP_E_TOO_MANY_HEADERS, 13),
    /* escapes */
    BAD("1.2 Value Encoding", "SEND\na:x\\ty\n\n\0", &V12, STOMP_E_BAD_ESCAPE, 8),
    BAD("1.2 Value Encoding", "SEND\na:x\\\n\n\0", &V12, STOMP_E_BAD_ESCAPE, 8),
    BAD("1.2 Value Encoding", "SEND\na:x\\\r\n\n\0", &V12, STOMP_E_BAD_ESCAPE, 8),
    BAD("1.2 Value Encoding", "SEND\na\\tb:v\n\n\0", &V12, STOMP_E_BAD_ESCAPE, 6),
    BAD("1.2 Value Encoding", "SEND\na:\\N\n\n\0", &V12, STOMP_E_BAD_ESCAPE, 7),
    BAD("1.2 Value Encoding", "MESSAGE\nok:\\c\nk:\\x\n\n\0", &V12, STOMP_E_BAD_ESCAPE, 16),
    BAD("1.2 Value Encoding", "SEND\na:x\\ty\n\n\0", &V12_LENIENT, STOMP_E_BAD_ESCAPE, 8),
    BAD("1.1 Value Encoding", "SEND\na:x\\ry\n\n\0", &V11, STOMP_E_BAD_ESCAPE, 8),
    BAD("1.1 Value Encoding", "SEND\na:x\\ty\n\n\0", &V11, STOMP_E_BAD_ESCAPE, 8),
    BAD("1.1 Value Encoding", "SEND\na:x\\\n\n\0", &V11, STOMP_E_BAD_ESCAPE, 8),
    BAD("1.1 Value Encoding", "SEND\na\\r:x\n\n\0", &V11, STOMP_E_BAD_ESCAPE, 6),
    /* content-length */
    BAD("1.2 Header content-length", "SEND\ncontent-length:\n\n\0", &V12,
        STOMP_E_BAD_CONTENT_LENGTH, 5),
    BAD("1.2 Header content-length", "SEND\ncontent-length:-1\n\n\0", &V12,
        STOMP_E_BAD_CONTENT_LENGTH, 5),
    BAD("1.2 Header content-length", "SEND\ncontent-length:1x\n\na\0", &V12,
        STOMP_E_BAD_CONTENT_LENGTH, 5),
    BAD("1.2 Header content-length", "SEND\ncontent-length: 5\n\nabcde\0", &V12,
        STOMP_E_BAD_CONTENT_LENGTH, 5),
    BAD("1.2 Header content-length", "SEND\ncontent-length:5 \n\nabcde\0", &V12,
        STOMP_E_BAD_CONTENT_LENGTH, 5),
    BAD("1.2 Header content-length", "SEND\ncontent-length:+5\n\nabcde\0", &V12,
        STOMP_E_BAD_CONTENT_LENGTH, 5),
    BAD("1.2 Header content-length", "SEND\ncontent-length:0x5\n\nabcde\0", &V12,
        STOMP_E_BAD_CONTENT_LENGTH, 5),
    /* a decimal number too large for any integer is a declared length over max_body */
    BAD("1.2 Size Limits", "SEND\ncontent-length:99999999999999999999999\n\n\0", &V12,
        STOMP_E_BODY_TOO_LONG, 5),
    BAD("1.2 Size Limits", "SEND\ncontent-length:18446744073709551616\n\n\0", &V12,
        STOMP_E_BODY_TOO_LONG, 5),
    BAD("1.2 Header content-length", "MESSAGE\ncontent-length:x\n\n\0", &V10,
        STOMP_E_BAD_CONTENT_LENGTH, 8),
    BAD("1.2 Header content-length", "ERROR\ncontent-length:-0\n\n\0", &V11,
        STOMP_E_BAD_CONTENT_LENGTH, 6),
    BAD("1.2 Header content-length", "FOO\ncontent-length:one\n\n\0", &V12,
        STOMP_E_BAD_CONTENT_LENGTH, 4),
    BAD("1.2 Header content-length", "SEND\ncontent-length:1\n\nab\0", &V12,
        STOMP_E_MISSING_NUL, 24),
    BAD("1.2 Header content-length", "SEND\ncontent-length:0\n\n\n\0", &V12,
        STOMP_E_MISSING_NUL, 23),
    BAD("1.2 Header content-length", "SEND\r\ncontent-length:2\r\n\r\nab\r\n\0", &V12,
        STOMP_E_MISSING_NUL, 28),
    /* body size */
    BAD("1.2 Size Limits", "SEND\n\nabcde\0", &TB12, STOMP_E_BODY_TOO_LONG, 10),
    BAD("1.2 Size Limits", "SEND\n\nabcdefghij\0", &TB12, STOMP_E_BODY_TOO_LONG, 10),
    BAD("1.2 Size Limits", "ACK\ncontent-length:1\n\nabcde\0", &TB12, STOMP_E_BODY_TOO_LONG,
        26),
    BAD("1.2 Size Limits", "SEND\ncontent-length:5\n\n", &TB12, STOMP_E_BODY_TOO_LONG, 5),
    BAD("1.2 Size Limits", "SEND\nk:v\ncontent-length:5\n\nabcde\0", &TB12,
        STOMP_E_BODY_TOO_LONG, 9),
    BAD("1.2 Size Limits", "SEND\ncontent-length:18446744073709551615\n\n", &V12,
        STOMP_E_BODY_TOO_LONG, 5),
    /* UTF-8 (RFC 3629), checked with STOMP_PARSE_UTF8: at the offending line's first byte */
    BAD("1.2 Value Encoding", "SEND\nk:\xff\n\n\0", &U12, STOMP_E_BAD_UTF8, 5),
    BAD("1.2 Value Encoding", "SEND\nk:a\x80" "b\n\n\0", &U12, STOMP_E_BAD_UTF8, 5),
    BAD("1.2 Value Encoding", "SEND\nk:\xc0\x80\n\n\0", &U12, STOMP_E_BAD_UTF8, 5),
    BAD("1.2 Value Encoding", "SEND\nk:\xc1\xbf\n\n\0", &U11, STOMP_E_BAD_UTF8, 5),
    BAD("1.2 Value Encoding", "SEND\nk:\xe0\x80\x80\n\n\0", &U12, STOMP_E_BAD_UTF8, 5),
    BAD("1.2 Value Encoding", "SEND\nk:\xed\xa0\x80\n\n\0", &U12, STOMP_E_BAD_UTF8, 5),
    BAD("1.2 Value Encoding", "SEND\nk:\xf0\x80\x80\x80\n\n\0", &U12, STOMP_E_BAD_UTF8, 5),
    BAD("1.2 Value Encoding", "SEND\nk:\xf4\x90\x80\x80\n\n\0", &U12, STOMP_E_BAD_UTF8, 5),
    BAD("1.2 Value Encoding", "SEND\nk:\xf5\x80\x80\x80\n\n\0", &U12, STOMP_E_BAD_UTF8, 5),
    BAD("1.2 Value Encoding", "SEND\nk:\xe2\x82\n\n\0", &U12, STOMP_E_BAD_UTF8, 5),
    BAD("1.2 Value Encoding", "SEND\nk:\xe2\x82\r\n\n\0", &U12, STOMP_E_BAD_UTF8, 5),
    BAD("1.2 Value Encoding", "SEND\na:ok\nname-\xe9t\xe9:v\n\n\0", &U10, STOMP_E_BAD_UTF8,
        10),
    BAD("1.2 Value Encoding", "S\xc3ND\n\n\0", &U12, STOMP_E_BAD_UTF8, 0),
    BAD("1.2 Value Encoding", "CONNECT\nlogin:\xe9\n\n\0", &U10, STOMP_E_BAD_UTF8, 8),
    /* a long ASCII run before the bad byte (the eight-byte steps) */
    BAD("1.2 Value Encoding", "SEND\nk:0123456789abcdefghij\xbf\n\n\0", &U12, STOMP_E_BAD_UTF8,
        5),
    /* the first bad line wins over a later one */
    BAD("1.2 Value Encoding", "SEND\nk:\xff\nk\\t:v\n\n\0", &U12, STOMP_E_BAD_UTF8, 5),
    BAD("1.2 Value Encoding", "SEND\nk\\t:v\nk:\xff\n\n\0", &U12, STOMP_E_BAD_ESCAPE, 6),
};

/* With STOMP_PARSE_UTF8, every well-formed UTF-8 header passes unchanged; without it, any
 * byte does. */
static void test_utf8(void **state)
{
    (void)state;
    static const char ok[] = "SEND\nk\xc3\xa9:\xe2\x82\xac \xf0\x9d\x84\x9e \xed\x9f\xbf "
                             "\xee\x80\x80 \xf4\x8f\xbf\xbf \xc2\x80\n\n\0";
    const parse_opts *with[] = { &U10, &U11, &U12 };
    for (size_t v = 0; v < 3; v++) {
        parse_result r;
        parse_check(with[v], ok, sizeof ok - 1, &r);
        expect_events(&r, "F");
        expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", "", 0, 1, "k\xc3\xa9",
                     "\xe2\x82\xac \xf0\x9d\x84\x9e \xed\x9f\xbf \xee\x80\x80 "
                     "\xf4\x8f\xbf\xbf \xc2\x80");
        expect_clean(&r);
        result_free(&r);
    }
    static const char latin1[] = "SEND\nk:caf\xe9\n\n\0";
    parse_result r;
    parse_check(&V12, latin1, sizeof latin1 - 1, &r);
    expect_events(&r, "F");
    result_free(&r);
}

/* A line is scanned 16 bytes a step where the CPU allows: its first colon, an escape, a
 * non-ASCII byte, a NUL and its end are found wherever they fall in a step, also when the
 * whole head is in one feed (read in one go) and when it is not (line by line). */
static void test_scan_positions(void **state)
{
    (void)state;
    char in[128], name[80], pad[48];
    for (size_t k = 0; k < 40; k++) {
        memset(pad, 'a', k);
        pad[k] = '\0';
        parse_result r;
        /* the first colon ends the name, wherever it is; an escape after it is undone */
        snprintf(name, sizeof name, "h%s", pad);
        int n = snprintf(in, sizeof in, "SEND\n%s:x\\cy\xc3\xa9:z\n\n", name);
        parse_check(&U12, in, (size_t)n + 1, &r);
        expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", "", 0, 1, name, "x:y\xc3\xa9:z");
        result_free(&r);
        /* an escape in the name, k bytes in */
        n = snprintf(in, sizeof in, "SEND\n%s\\c:v\n\n", pad);
        snprintf(name, sizeof name, "%s:", pad);
        parse_check(&V12, in, (size_t)n + 1, &r);
        expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", "", 0, 1, name, "v");
        result_free(&r);
        /* an undefined escape k bytes into the value: fatal at its backslash */
        n = snprintf(in, sizeof in, "SEND\nk:%s\\t\n\n", pad);
        parse_check(&V12, in, (size_t)n + 1, &r);
        expect_error(&r, STOMP_E_BAD_ESCAPE, 7 + k);
        result_free(&r);
        /* a byte that is not UTF-8, k bytes in: the line fails at its first byte */
        n = snprintf(in, sizeof in, "SEND\nk:%s\xc3(\n\n", pad);
        parse_check(&U11, in, (size_t)n + 1, &r);
        expect_error(&r, STOMP_E_BAD_UTF8, 5);
        result_free(&r);
        /* a NUL k bytes into the value, then a CR LF line end */
        n = snprintf(in, sizeof in, "SEND\nk:%s", pad);
        memcpy(in + n, "\0\r\n\r\n", 6);
        parse_check(&V12, in, (size_t)n + 5, &r);
        expect_error(&r, STOMP_E_BAD_HEADER, 7 + k);
        result_free(&r);
        /* no colon at all */
        n = snprintf(in, sizeof in, "SEND\nk%s\r\n\r\n", pad);
        parse_check(&V12, in, (size_t)n + 1, &r);
        expect_error(&r, STOMP_E_BAD_HEADER, 5);
        result_free(&r);
    }
}

static void test_malformed_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        parse_result r;
        print_message("case %zu (%s)\n", i, c->clause);
        parse_check(c->opts, c->in, c->len, &r);
        expect_error(&r, c->err, c->off);
        result_free(&r);
    }
}

static void test_error_sticks_until_reset(void **state)
{
    (void)state;
    static const char bad[] = "SEND\nfoo\n\n";
    static const char good[] = "SEND\nk:v\n\nbody";
    stomp_parser p;
    size_t consumed;
    uint64_t off = 0;

    stomp_parser_init(&p, NULL, NULL, NULL);
    assert_int_equal(stomp_parser_error(&p, &off), STOMP_OK);
    assert_int_equal(stomp_parser_feed(&p, bad, sizeof bad, &consumed), STOMP_EV_ERROR);
    assert_int_equal(stomp_parser_error(&p, &off), STOMP_E_BAD_HEADER);
    for (int i = 0; i < 3; i++) {
        consumed = 99;
        assert_int_equal(stomp_parser_feed(&p, good, sizeof good, &consumed), STOMP_EV_ERROR);
        assert_int_equal(consumed, 0);
        assert_null(stomp_parser_frame(&p));
    }
    stomp_parser_reset(&p);
    assert_int_equal(stomp_parser_error(&p, NULL), STOMP_OK);
    assert_int_equal(stomp_parser_feed(&p, good, sizeof good, &consumed), STOMP_EV_FRAME);
    assert_int_equal(consumed, sizeof good);
    const stomp_frame *f = stomp_parser_frame(&p);
    assert_non_null(f);
    assert_int_equal(f->cmd, STOMP_CMD_SEND);
    assert_string_equal(stomp_frame_header(f, "k", NULL), "v");
    assert_string_equal(f->body, "body");

    /* offsets count from the reset */
    static const char bad2[] = "SEND\na:b\0\n";
    stomp_parser_reset(&p);
    assert_int_equal(stomp_parser_feed(&p, bad2, sizeof bad2 - 1, &consumed), STOMP_EV_ERROR);
    assert_int_equal(stomp_parser_error(&p, &off), STOMP_E_BAD_HEADER);
    assert_int_equal(off, 8);

    /* a reset in the middle of a frame forgets it */
    stomp_parser_reset(&p);
    assert_int_equal(stomp_parser_feed(&p, "SEND\nk:", 7, &consumed), STOMP_EV_NEED_MORE);
    stomp_parser_reset(&p);
    assert_int_equal(stomp_parser_feed(&p, good, sizeof good, &consumed), STOMP_EV_FRAME);
    assert_string_equal(stomp_frame_header(stomp_parser_frame(&p), "k", NULL), "v");
    stomp_parser_free(&p);
}

static void test_strings(void **state)
{
    (void)state;
    for (int e = 0; e < STOMP_E__COUNT; e++) {
        const char *m = stomp_strerror((stomp_err)e);
        assert_non_null(m);
        assert_true(strlen(m) > 0);
        assert_null(strchr(m, '\n'));
        for (int e2 = 0; e2 < e; e2++)
            assert_string_not_equal(m, stomp_strerror((stomp_err)e2));
    }
    assert_non_null(stomp_strerror(STOMP_E__COUNT));
    assert_non_null(stomp_strerror((stomp_err)-1));

    assert_string_equal(stomp_command_name(STOMP_CMD_UNKNOWN), "UNKNOWN");
    assert_int_equal(stomp_command_lookup("UNKNOWN", 7), STOMP_CMD_UNKNOWN);
    for (int c = 1; c < STOMP_CMD__COUNT; c++) {
        const char *name = stomp_command_name((stomp_command)c);
        size_t n = strlen(name);
        assert_int_equal(stomp_command_lookup(name, n), c);
        assert_int_equal(stomp_command_lookup(name, n - 1), STOMP_CMD_UNKNOWN);
        char lower[16];
        for (size_t i = 0; i <= n; i++)
            lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
        assert_int_equal(stomp_command_lookup(lower, n), STOMP_CMD_UNKNOWN);
    }
    /* the length decides, not a terminator */
    assert_int_equal(stomp_command_lookup("SENDX", 4), STOMP_CMD_SEND);
    assert_int_equal(stomp_command_lookup("SENDX", 5), STOMP_CMD_UNKNOWN);
    assert_int_equal(stomp_command_lookup("", 0), STOMP_CMD_UNKNOWN);
    assert_int_equal(stomp_command_lookup("CONNECTEDX", 10), STOMP_CMD_UNKNOWN);
}

/* --- limits at their boundaries ------------------------------------------------------ */

static void test_limit_command(void **state)
{
    (void)state;
    stomp_limits l = limits_make(5, 100, 10, 1000, 100);
    parse_opts o = { .version = STOMP_V12, .limits = &l };
    parse_result r;

    parse_check(&o, S("ABORT\n\n\0"), &r); /* 5 bytes: at the limit */
    expect_frame(&r, 0, STOMP_CMD_ABORT, "ABORT", "", 0, 0);
    result_free(&r);
    parse_check(&o, S("ABORT\r\n\r\n\0"), &r); /* the CR does not count */
    expect_frame(&r, 0, STOMP_CMD_ABORT, "ABORT", "", 0, 0);
    result_free(&r);
    parse_check(&o, S("COMMIT\n\n\0"), &r); /* 6 bytes */
    expect_error(&r, STOMP_E_COMMAND_TOO_LONG, 0);
    result_free(&r);
    parse_check(&o, S("\n\nCOMMIT\n\n\0"), &r); /* offsets count the heart-beats */
    expect_events(&r, "HHE");
    expect_error(&r, STOMP_E_COMMAND_TOO_LONG, 2);
    result_free(&r);

    /* the default: 64 */
    char buf[200];
    memset(buf, 'C', 64);
    memcpy(buf + 64, "\n\n", 3);
    parse_check(&V12, buf, 67, &r);
    expect_events(&r, "F");
    assert_int_equal(r.ev[0].cmd_len, 64);
    assert_int_equal(r.ev[0].cmd, STOMP_CMD_UNKNOWN);
    result_free(&r);
    memset(buf, 'C', 65);
    memcpy(buf + 65, "\n\n", 3);
    parse_check(&V12, buf, 68, &r);
    expect_error(&r, STOMP_E_COMMAND_TOO_LONG, 0);
    result_free(&r);
}

static void test_limit_header_line(void **state)
{
    (void)state;
    stomp_limits l = limits_make(64, 6, 10, 1000, 100);
    parse_opts o = { .version = STOMP_V12, .limits = &l };
    parse_result r;

    parse_check(&o, S("SEND\nab:def\n\n\0"), &r); /* 6 bytes: at the limit */
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", "", 0, 1, "ab", "def");
    result_free(&r);
    parse_check(&o, S("SEND\r\nab:def\r\n\r\n\0"), &r); /* CR not counted */
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", "", 0, 1, "ab", "def");
    result_free(&r);
    /* escapes count as written, before decoding */
    parse_check(&o, S("SEND\na:\\n\\c\n\n\0"), &r);
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", "", 0, 1, "a", "\n:");
    result_free(&r);
    parse_check(&o, S("SEND\na:\\n\\cd\n\n\0"), &r);
    expect_error(&r, STOMP_E_LINE_TOO_LONG, 5);
    result_free(&r);
    parse_check(&o, S("SEND\nab:defg\n\n\0"), &r); /* 7 bytes */
    expect_error(&r, STOMP_E_LINE_TOO_LONG, 5);
    result_free(&r);
    parse_check(&o, S("SEND\nk:v\nabcdefg:x\n\n\0"), &r); /* no ':' yet at the limit */
    expect_error(&r, STOMP_E_LINE_TOO_LONG, 9);
    result_free(&r);

    /* the default: 8 KiB */
    size_t n = 5 + 8192 + 3;
    char *buf = malloc(n + 1);
    assert_non_null(buf);
    memcpy(buf, "SEND\n", 5);
    memset(buf + 5, 'v', 8192);
    buf[6] = ':';
    memcpy(buf + 5 + 8192, "\n\n", 3);
    parse_check(&V12, buf, n, &r);
    expect_events(&r, "F");
    assert_int_equal(r.ev[0].headers[0].value_len, 8190);
    result_free(&r);
    memset(buf + 5, 'v', 8193);
    buf[6] = ':';
    memcpy(buf + 5 + 8193, "\n\n", 3);
    parse_check(&V12, buf, n + 1, &r);
    expect_error(&r, STOMP_E_LINE_TOO_LONG, 5);
    result_free(&r);
    free(buf);
}

static void test_limit_headers(void **state)
{
    (void)state;
    stomp_limits l = limits_make(64, 100, 3, 1000, 100);
    parse_opts o = { .version = STOMP_V12, .limits = &l };
    parse_result r;

    parse_check(&o, S("SEND\na:1\nb:2\na:3\n\n\0"), &r); /* 3 headers: at the limit */
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", "", 0, 3, "a", "1", "b", "2", "a", "3");
    result_free(&r);
    parse_check(&o, S("SEND\na:1\nb:2\na:3\nc:4\n\n\0"), &r);
    expect_error(&r, STOMP_E_TOO_MANY_HEADERS, 17);
    result_free(&r);
    /* content-length is a header like any other */
    parse_check(&o, S("SEND\na:1\nb:2\ncontent-length:1\n\nx\0"), &r);
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", "x", 1, 3, "a", "1", "b", "2",
                 "content-length", "1");
    result_free(&r);
    parse_check(&o, S("SEND\na:1\nb:2\nc:3\ncontent-length:1\n\nx\0"), &r);
    expect_error(&r, STOMP_E_TOO_MANY_HEADERS, 17);
    result_free(&r);

    /* the default: 128 */
    char *buf = malloc(5 + 129 * 6 + 3);
    assert_non_null(buf);
    for (size_t count = 128; count <= 129; count++) {
        size_t n = 0;
        memcpy(buf, "SEND\n", 5);
        n = 5;
        for (size_t i = 0; i < count; i++) {
            n += (size_t)sprintf(buf + n, "%03zu:x\n", i);
        }
        memcpy(buf + n, "\n", 2);
        n += 2;
        parse_check(&V12, buf, n, &r);
        if (count == 128) {
            expect_events(&r, "F");
            assert_int_equal(r.ev[0].nheaders, 128);
            assert_string_equal(r.ev[0].headers[127].name, "127");
        } else {
            expect_error(&r, STOMP_E_TOO_MANY_HEADERS, 5 + 128 * 6);
        }
        result_free(&r);
    }
    free(buf);
}

/* "SEND\n" + "a:1\n" + "b:2\n" + "\n": command line plus header block */
#define HB_FRAME "SEND\na:1\nb:2\n\n"
#define HB_FRAME_BYTES 14

static void test_limit_header_bytes(void **state)
{
    (void)state;
    stomp_limits l = limits_make(64, 100, 10, HB_FRAME_BYTES, 100);
    parse_opts o = { .version = STOMP_V12, .limits = &l };
    parse_result r;

    parse_check(&o, S(HB_FRAME "\0"), &r);
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", "", 0, 2, "a", "1", "b", "2");
    result_free(&r);
    /* the body does not count */
    parse_check(&o, S(HB_FRAME "0123456789012345678901234567890123456789\0"), &r);
    expect_events(&r, "F");
    result_free(&r);
    /* heart-beats before the frame do not count */
    parse_check(&o, S("\n\r\n" HB_FRAME "\0"), &r);
    expect_events(&r, "HHF");
    result_free(&r);

    l.max_header_bytes = HB_FRAME_BYTES - 1;
    parse_check(&o, S(HB_FRAME "\0"), &r);
    expect_error(&r, STOMP_E_HEADERS_TOO_LONG, HB_FRAME_BYTES - 1);
    result_free(&r);

    /* EOLs count: CRs too */
    l.max_header_bytes = HB_FRAME_BYTES + 4;
    parse_check(&o, S("SEND\r\na:1\r\nb:2\r\n\r\n\0"), &r);
    expect_events(&r, "F");
    result_free(&r);
    l.max_header_bytes = HB_FRAME_BYTES + 3;
    parse_check(&o, S("SEND\r\na:1\r\nb:2\r\n\r\n\0"), &r);
    expect_error(&r, STOMP_E_HEADERS_TOO_LONG, 16);
    result_free(&r);

    /* the default: 64 KiB. "SEND\n", then 8 header lines of 8191 bytes + LF: the last
     * line starts at 57349 and would end at 65541 */
    size_t cap = 5 + 8 * 8192 + 2;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t n = 0;
    memcpy(buf, "SEND\n", 5);
    n = 5;
    for (int i = 0; i < 8; i++) {
        memset(buf + n, 'a' + i, 8191);
        buf[n + 1] = ':';
        buf[n + 8191] = '\n';
        n += 8192;
    }
    memcpy(buf + n, "\n\0", 2);
    n += 2;
    parse_check_edges(&V12, buf, n, 200, &r);
    expect_error(&r, STOMP_E_HEADERS_TOO_LONG, 5 + 7 * 8192);
    result_free(&r);
    /* last line 6 bytes shorter: 65535 bytes, 65536 with the blank line */
    memcpy(buf + 65534, "\n\n\0", 3);
    parse_check_edges(&V12, buf, 65537, 200, &r);
    expect_events(&r, "F");
    assert_int_equal(r.ev[0].nheaders, 8);
    result_free(&r);
    /* one byte more: the blank line is the 65537th byte */
    memcpy(buf + 65534, "h\n\n\0", 4);
    parse_check_edges(&V12, buf, 65538, 200, &r);
    expect_error(&r, STOMP_E_HEADERS_TOO_LONG, 65536);
    result_free(&r);
    free(buf);
}

static void test_limit_body(void **state)
{
    (void)state;
    stomp_limits l = limits_make(64, 100, 10, 1000, 4);
    parse_opts o = { .version = STOMP_V12, .limits = &l };
    parse_result r;

    parse_check(&o, S("SEND\n\nabcd\0"), &r);
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", S("abcd"), 0);
    result_free(&r);
    parse_check(&o, S("SEND\n\nabcde\0"), &r);
    expect_error(&r, STOMP_E_BODY_TOO_LONG, 10);
    result_free(&r);
    parse_check(&o, S("SEND\ncontent-length:4\n\na\0\0d\0"), &r);
    expect_frame(&r, 0, STOMP_CMD_SEND, "SEND", S("a\0\0d"), 1, "content-length", "4");
    result_free(&r);
    /* declared over the limit: fails on the header block, before any body byte */
    parse_check(&o, S("SEND\ncontent-length:5\n\n"), &r);
    expect_error(&r, STOMP_E_BODY_TOO_LONG, 5);
    result_free(&r);
    /* frames that ignore content-length are still bounded by what they read */
    parse_check(&o, S("NACK\ncontent-length:1\n\nabcd\0"), &r);
    expect_frame(&r, 0, STOMP_CMD_NACK, "NACK", S("abcd"), 1, "content-length", "1");
    result_free(&r);
    parse_check(&o, S("NACK\ncontent-length:1\n\nabcde\0"), &r);
    expect_error(&r, STOMP_E_BODY_TOO_LONG, 27);
    result_free(&r);

    /* the default: 16 MiB, declared */
    parse_check(&V12, S("SEND\ncontent-length:16777216\n\n"), &r);
    expect_events(&r, "");
    assert_false(r.failed);
    result_free(&r);
    parse_check(&V12, S("SEND\ncontent-length:16777217\n\n"), &r);
    expect_error(&r, STOMP_E_BODY_TOO_LONG, 5);
    result_free(&r);
}

static void test_limit_body_default_read(void **state)
{
    (void)state;
    /* one feed only: a 16 MiB body split at every offset would be slow */
    size_t max = 16u * 1024 * 1024;
    size_t n = 6 + max + 2;
    char *buf = malloc(n);
    assert_non_null(buf);
    memcpy(buf, "SEND\n\n", 6);
    memset(buf + 6, 'b', max + 1);
    buf[6 + max + 1] = '\0';

    stomp_parser p;
    size_t consumed;
    uint64_t off;
    stomp_parser_init(&p, NULL, NULL, NULL);
    assert_int_equal(stomp_parser_feed(&p, buf, n, &consumed), STOMP_EV_ERROR);
    assert_int_equal(stomp_parser_error(&p, &off), STOMP_E_BODY_TOO_LONG);
    assert_int_equal(off, 6 + max);
    stomp_parser_reset(&p);
    buf[6 + max] = '\0';
    assert_int_equal(stomp_parser_feed(&p, buf, n, &consumed), STOMP_EV_FRAME);
    assert_int_equal(consumed, 6 + max + 1);
    assert_int_equal(stomp_parser_frame(&p)->body_len, max);
    stomp_parser_trim(&p);
    stomp_parser_free(&p);
    free(buf);
}

static void test_set_limits(void **state)
{
    (void)state;
    stomp_limits tight = limits_make(16, 16, 4, 64, 4);
    stomp_limits loose = limits_make(64, 100, 10, 1000, 100);
    stomp_parser p;
    size_t consumed;
    static const char big[] = "SEND\n\n0123456789";

    stomp_parser_init(&p, &tight, NULL, NULL);
    assert_int_equal(stomp_parser_feed(&p, big, sizeof big, &consumed), STOMP_EV_ERROR);
    assert_int_equal(stomp_parser_error(&p, NULL), STOMP_E_BODY_TOO_LONG);
    stomp_parser_reset(&p);
    stomp_parser_set_limits(&p, &loose);
    assert_int_equal(stomp_parser_feed(&p, big, sizeof big, &consumed), STOMP_EV_FRAME);
    assert_int_equal(stomp_parser_frame(&p)->body_len, 10);
    stomp_parser_set_limits(&p, &tight);
    assert_int_equal(stomp_parser_feed(&p, big, sizeof big, &consumed), STOMP_EV_ERROR);
    assert_int_equal(stomp_parser_error(&p, NULL), STOMP_E_BODY_TOO_LONG);
    stomp_parser_free(&p);
}

/* Limits changed in the middle of a frame bind from the next frame: the frame begun
 * under the old limits completes under them, and the same frame sent again is judged by
 * the new ones. Returns the event of finishing the first frame and, in *err, the error the
 * repeated frame got (STOMP_OK if none). */
static stomp_event tighten_mid_frame(const char *first, size_t n1, const stomp_limits *tight,
                                     const char *rest, size_t n2, stomp_err *err)
{
    stomp_parser p;
    size_t consumed;
    stomp_event ev;
    stomp_parser_init(&p, NULL, NULL, NULL);
    ev = stomp_parser_feed(&p, first, n1, &consumed);
    assert_int_equal(ev, STOMP_EV_NEED_MORE);
    stomp_parser_set_limits(&p, tight);
    ev = stomp_parser_feed(&p, rest, n2, &consumed);
    assert_int_equal(consumed, n2);
    *err = STOMP_OK;
    if (ev == STOMP_EV_FRAME) {
        stomp_event again = stomp_parser_feed(&p, first, n1, &consumed);
        if (again == STOMP_EV_NEED_MORE)
            again = stomp_parser_feed(&p, rest, n2, &consumed);
        if (again == STOMP_EV_ERROR)
            *err = stomp_parser_error(&p, NULL);
    }
    stomp_parser_free(&p);
    return ev;
}

static void test_tighten_body(void **state)
{
    (void)state;
    stomp_limits tight = STOMP_LIMITS_DEFAULT_INIT;
    stomp_err err;
    char buf[1100];
    /* 100 body bytes read, then max_body 10 */
    memcpy(buf, "SEND\n\n", 6);
    memset(buf + 6, 'x', sizeof buf - 7);
    buf[sizeof buf - 1] = '\0';
    tight.max_body = 10;
    assert_int_equal(tighten_mid_frame(buf, 106, &tight, buf + 106, sizeof buf - 106, &err),
                     STOMP_EV_FRAME);
    assert_int_equal(err, STOMP_E_BODY_TOO_LONG);
}

static void test_tighten_header_bytes(void **state)
{
    (void)state;
    stomp_limits tight = STOMP_LIMITS_DEFAULT_INIT;
    stomp_err err;
    /* 13 bytes of header block read, then max_header_bytes 8 */
    tight.max_header_bytes = 8;
    assert_int_equal(tighten_mid_frame(S("SEND\na:1\nb:2\n"), &tight, S("c:3\nd:4\n\n\0"),
                                       &err),
                     STOMP_EV_FRAME);
    assert_int_equal(err, STOMP_E_HEADERS_TOO_LONG);
}

static void test_tighten_header_line(void **state)
{
    (void)state;
    stomp_limits tight = STOMP_LIMITS_DEFAULT_INIT;
    stomp_err err;
    /* 12 bytes of a header line read, then max_header_line 4 */
    tight.max_header_line = 4;
    assert_int_equal(tighten_mid_frame(S("SEND\nabcdefghijkl"), &tight, S(":v\n\n\0"), &err),
                     STOMP_EV_FRAME);
    assert_int_equal(err, STOMP_E_LINE_TOO_LONG);
    /* and of the command line, then max_command 4 */
    tight = (stomp_limits)STOMP_LIMITS_DEFAULT_INIT;
    tight.max_command = 4;
    assert_int_equal(tighten_mid_frame(S("MESSAG"), &tight, S("E\n\n\0"), &err),
                     STOMP_EV_FRAME);
    assert_int_equal(err, STOMP_E_COMMAND_TOO_LONG);
}

/* Header count: 20 headers read (the table has grown past 16), then max_headers 5: the
 * frame still completes with all 40 headers, and the next one is refused at its 6th. */
static void test_tighten_headers(void **state)
{
    (void)state;
    stomp_limits tight = STOMP_LIMITS_DEFAULT_INIT;
    char first[1024], rest[1024];
    size_t n1 = 0, n2 = 0;
    stomp_err err;

    tight.max_headers = 5;
    n1 += (size_t)sprintf(first + n1, "SEND\n");
    for (int i = 0; i < 20; i++)
        n1 += (size_t)sprintf(first + n1, "h%02d:v\n", i);
    for (int i = 20; i < 40; i++)
        n2 += (size_t)sprintf(rest + n2, "h%02d:v\n", i);
    rest[n2++] = '\n';
    rest[n2++] = '\0';
    assert_int_equal(tighten_mid_frame(first, n1, &tight, rest, n2, &err), STOMP_EV_FRAME);
    assert_int_equal(err, STOMP_E_TOO_MANY_HEADERS);
}

static void test_trim(void **state)
{
    (void)state;
    stomp_parser p;
    size_t consumed;
    size_t n = 6 + 100000 + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memcpy(big, "SEND\n\n", 6);
    memset(big + 6, 'x', 100000);
    big[n - 1] = '\0';
    static const char small[] = "SEND\nk:v\n\nbody";

    stomp_parser_init(&p, NULL, NULL, NULL);
    stomp_parser_trim(&p); /* nothing held yet */
    assert_int_equal(stomp_parser_feed(&p, big, n, &consumed), STOMP_EV_FRAME);
    stomp_parser_trim(&p);
    assert_int_equal(stomp_parser_feed(&p, small, sizeof small, &consumed), STOMP_EV_FRAME);
    assert_string_equal(stomp_parser_frame(&p)->body, "body");
    /* in the middle of a frame, trimming keeps the partial frame */
    assert_int_equal(stomp_parser_feed(&p, small, 8, &consumed), STOMP_EV_NEED_MORE);
    stomp_parser_trim(&p);
    assert_int_equal(stomp_parser_feed(&p, small + 8, sizeof small - 8, &consumed),
                     STOMP_EV_FRAME);
    assert_string_equal(stomp_frame_header(stomp_parser_frame(&p), "k", NULL), "v");
    assert_string_equal(stomp_parser_frame(&p)->body, "body");
    /* after free the parser may be initialised and used again */
    stomp_parser_free(&p);
    stomp_parser_init(&p, NULL, NULL, NULL);
    assert_int_equal(stomp_parser_feed(&p, small, sizeof small, &consumed), STOMP_EV_FRAME);
    stomp_parser_free(&p);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_frame),
        cmocka_unit_test(test_every_command),
        cmocka_unit_test(test_unknown_command),
        cmocka_unit_test(test_headers_kept_as_written),
        cmocka_unit_test(test_body_to_first_nul),
        cmocka_unit_test(test_back_to_back_frames),
        cmocka_unit_test(test_stops_after_frame),
        cmocka_unit_test(test_crlf_line_ends),
        cmocka_unit_test(test_heartbeats),
        cmocka_unit_test(test_nul_followed_by_eols),
        cmocka_unit_test(test_content_length_body),
        cmocka_unit_test(test_content_length_by_command),
        cmocka_unit_test(test_content_length_first_wins),
        cmocka_unit_test(test_repeated_headers),
        cmocka_unit_test(test_escapes_v12),
        cmocka_unit_test(test_escapes_v11),
        cmocka_unit_test(test_escapes_v10),
        cmocka_unit_test(test_no_escapes_in_connect),
        cmocka_unit_test(test_version_switch),
        cmocka_unit_test(test_scan_positions),
        cmocka_unit_test(test_malformed_table),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_error_sticks_until_reset),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_limit_command),
        cmocka_unit_test(test_limit_header_line),
        cmocka_unit_test(test_limit_headers),
        cmocka_unit_test(test_limit_header_bytes),
        cmocka_unit_test(test_limit_body),
        cmocka_unit_test(test_limit_body_default_read),
        cmocka_unit_test(test_set_limits),
        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_tighten_header_line),
        cmocka_unit_test(test_tighten_body),
        cmocka_unit_test(test_tighten_header_bytes),
        cmocka_unit_test(test_tighten_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
