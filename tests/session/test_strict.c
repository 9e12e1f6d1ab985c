/* test_strict.c: the letter of STOMP 1.1 and 1.2 on a live session. An undefined escape
 * sequence is a fatal protocol error in 1.1 as in 1.2 (both specs say MUST), unless the
 * lenient_escapes option keeps it as written for old 1.1 clients; 1.0 has no escapes, so a
 * backslash is an ordinary byte there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "testlib.h"

/* A session of version v sends frame; it must get an ERROR with message want and close. */
static void fatal(tb *t, const char *v, const char *frame, const char *want)
{
    char extra[64];
    snprintf(extra, sizeof extra, "accept-version:%s\n", v);
    tc *c = tc_open(tb_port(t), extra);
    assert_non_null(c);
    tframe f;
    assert_int_equal(tc_send(c, frame), 0);
    assert_true(tc_is(c, "ERROR", &f));
    assert_string_equal(f.body, want);
    tf_free(&f);
    assert_true(tc_closed(c, TL_TIMEOUT_MS));
    tc_close(c);
}

static void test_undefined_escapes_fatal(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    const char *bad = "undefined escape sequence in header";
    fatal(t, "1.1", "SEND\ndestination:/topic/e\nk:a\\tb\n\nx", bad);
    fatal(t, "1.1", "SEND\ndestination:/topic/e\nk:a\\rb\n\nx", bad); /* \r is 1.2 only */
    fatal(t, "1.2", "SEND\ndestination:/topic/e\nk:a\\tb\n\nx", bad);
    fatal(t, "1.1", "SUBSCRIBE\nid:a\\x\ndestination:/topic/e\n\n", bad);
    /* 1.0 has no escapes: the backslash is carried as a byte. */
    tc *s = tc_open(tb_port(t), "");
    tc *p = tc_open(tb_port(t), "");
    tframe f;
    TC_SENDF(s, "SUBSCRIBE\ndestination:/topic/e\nreceipt:s\n\n");
    assert_true(tc_is(s, "RECEIPT", &f));
    tf_free(&f);
    TC_SENDF(p, "SEND\ndestination:/topic/e\nk:a\\tb\n\nx");
    assert_true(tc_is(s, "MESSAGE", &f));
    assert_string_equal(tf_header(&f, "k"), "a\\tb");
    tf_free(&f);
    tc_close(s);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

/* lenient_escapes: a 1.1 session's undefined escape is kept as written (a backslash and the
 * byte after it), and its subscribers get that backslash escaped as their version wants. */
static void test_lenient_escapes_option(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.lenient_escapes = 1;
    tb *t = tb_start(&o);
    tc *s = tc_open(tb_port(t), "accept-version:1.1\n");
    tc *p = tc_open(tb_port(t), "accept-version:1.1\n");
    tframe f;
    TC_SENDF(s, "SUBSCRIBE\nid:1\ndestination:/topic/l\nreceipt:s\n\n");
    assert_true(tc_is(s, "RECEIPT", &f));
    tf_free(&f);
    TC_SENDF(p, "SEND\ndestination:/topic/l\nk:a\\tb\nreceipt:r\n\nx");
    assert_true(tc_is(p, "RECEIPT", &f));
    tf_free(&f);
    assert_true(tc_is(s, "MESSAGE", &f));
    assert_string_equal(tf_header(&f, "k"), "a\\\\tb"); /* the backslash, escaped */
    tf_free(&f);
    /* 1.2 is strict whatever the option. */
    fatal(t, "1.2", "SEND\ndestination:/topic/l\nk:a\\tb\n\nx",
          "undefined escape sequence in header");
    tc_close(s);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

/* Commands and headers are UTF-8: an ERROR and a close otherwise, in every version by
 * default (1.0 and CONNECT can be let through with allow_non_utf8_10). */
static void test_utf8_headers(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    const char *bad = "command or header is not valid UTF-8";
    fatal(t, "1.2", "SEND\ndestination:/topic/u\nk:caf\xe9\n\nx", bad);
    fatal(t, "1.1", "SEND\ndestination:/topic/u\nk:\xed\xa0\x80\n\nx", bad);
    fatal(t, "1.0", "SEND\ndestination:/topic/u\nk:caf\xe9\n\nx", bad);
    /* A CONNECT with a Latin-1 login. */
    tc *c = tc_connect(tb_port(t));
    tframe f;
    assert_int_equal(tc_send(c, "CONNECT\nlogin:jos\xe9\n\n"), 0);
    assert_true(tc_is(c, "ERROR", &f));
    assert_string_equal(f.body, bad);
    tf_free(&f);
    tc_close(c);
    /* Well-formed UTF-8 travels unchanged. */
    tc *s = tc_open(tb_port(t), "accept-version:1.2\n");
    tc *p = tc_open(tb_port(t), "accept-version:1.2\n");
    TC_SENDF(s, "SUBSCRIBE\nid:1\ndestination:/topic/\xc3\xbc\nreceipt:s\n\n");
    assert_true(tc_is(s, "RECEIPT", &f));
    tf_free(&f);
    TC_SENDF(p, "SEND\ndestination:/topic/\xc3\xbc\nk:\xe2\x82\xac\n\nx");
    assert_true(tc_is(s, "MESSAGE", &f));
    assert_string_equal(tf_header(&f, "k"), "\xe2\x82\xac");
    tf_free(&f);
    tc_close(s);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);

    broker_options o;
    broker_options_init(&o);
    o.allow_non_utf8_10 = 1;
    t = tb_start(&o);
    c = tc_open(tb_port(t), "login:jos\xe9\n");
    assert_non_null(c); /* CONNECTED */
    TC_SENDF(c, "SEND\ndestination:/topic/u\nk:caf\xe9\nreceipt:r\n\nx");
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    tc_close(c);
    fatal(t, "1.2", "SEND\ndestination:/topic/u\nk:caf\xe9\n\nx", bad);
    assert_int_equal(tb_stop(t), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_undefined_escapes_fatal),
        cmocka_unit_test(test_lenient_escapes_option),
        cmocka_unit_test(test_utf8_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
