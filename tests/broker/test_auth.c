/* test_auth.c: broker_options.authenticate over real sockets: the callback sees the login
 * and passcode of CONNECT/STOMP (NULL when absent); an accepted login gets CONNECTED; a
 * refused one gets ERROR "Authentication failed" only after auth_fail_delay_ms, nothing
 * sent behind it is processed, the refusal is counted in the stats, and a broker stopped
 * while a refusal waits closes cleanly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "testlib.h"

typedef struct seen {
    int calls;
    char login[32], passcode[32];
    int login_null, passcode_null;
} seen;

/* Accepts alice/secret only; remembers the last call (read after tb_stop). */
static int check_login(void *ctx, const char *login, const char *passcode)
{
    seen *s = ctx;
    s->calls++;
    s->login_null = login == NULL;
    s->passcode_null = passcode == NULL;
    snprintf(s->login, sizeof s->login, "%s", login ? login : "");
    snprintf(s->passcode, sizeof s->passcode, "%s", passcode ? passcode : "");
    return login && passcode && strcmp(login, "alice") == 0 && strcmp(passcode, "secret") == 0
               ? 0
               : -1;
}

static tb *start(seen *s, uint32_t delay_ms)
{
    broker_options o;
    broker_options_init(&o);
    o.authenticate = check_login;
    o.auth_ctx = s;
    o.auth_fail_delay_ms = delay_ms;
    tb *t = tb_start(&o);
    assert_non_null(t);
    return t;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void test_default_delay(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    assert_null(o.authenticate);
    assert_int_equal(o.auth_fail_delay_ms, 1000);
}

static void test_accepted(void **state)
{
    (void)state;
    seen s = { 0 };
    tb *t = start(&s, 300);
    tc *c = tc_open(tb_port(t), "accept-version:1.2\nlogin:alice\npasscode:secret\n");
    assert_non_null(c);
    tframe f;
    assert_int_equal(tc_send(c, "SEND\ndestination:/queue/a\nreceipt:r\n\nx"), 0);
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    tc_close(c);
    broker_stats st;
    tb_stats(t, &st);
    assert_int_equal(st.auth_failures, 0);
    assert_int_equal(tb_stop(t), 0);
    assert_int_equal(s.calls, 1);
    assert_string_equal(s.login, "alice");
    assert_string_equal(s.passcode, "secret");
}

static void refused(tb *t, const char *connect, uint32_t delay_ms)
{
    tc *c = tc_connect(tb_port(t));
    assert_non_null(c);
    double t0 = now_ms();
    assert_int_equal(tc_send(c, connect), 0);
    /* Right behind the refused CONNECT: must not be processed. */
    assert_int_equal(tc_send(c, "SEND\ndestination:/queue/sneak\n\nno"), 0);
    tframe f;
    assert_int_equal(tc_read(c, &f, TL_TIMEOUT_MS), 0);
    double took = now_ms() - t0;
    assert_string_equal(f.cmd, "ERROR");
    assert_string_equal(tf_header(&f, "message"), "Authentication failed");
    tf_free(&f);
    assert_true(took >= delay_ms * 0.9);
    assert_true(tc_closed(c, TL_TIMEOUT_MS));
    tc_close(c);
}

static void test_refused_after_delay(void **state)
{
    (void)state;
    seen s = { 0 };
    tb *t = start(&s, 300);
    refused(t, "CONNECT\naccept-version:1.2\nlogin:alice\npasscode:wrong\n\n", 300);
    refused(t, "STOMP\naccept-version:1.1\nlogin:mallory\npasscode:secret\n\n", 300);
    broker_stats st;
    tb_stats(t, &st);
    assert_int_equal(st.auth_failures, 2);
    /* The SENDs behind the refusals never reached the queue. */
    tc *c = tc_open(tb_port(t), "accept-version:1.2\nlogin:alice\npasscode:secret\n");
    assert_non_null(c);
    assert_int_equal(tc_send(c, "SUBSCRIBE\ndestination:/queue/sneak\nid:1\n\n"), 0);
    tframe f;
    assert_int_equal(tc_read(c, &f, 300), -1);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
    assert_int_equal(s.calls, 3);
    assert_string_equal(s.login, "alice");
}

static void test_absent_login_is_null(void **state)
{
    (void)state;
    seen s = { 0 };
    tb *t = start(&s, 0);
    refused(t, "CONNECT\n\n", 0);
    assert_int_equal(tb_stop(t), 0);
    assert_int_equal(s.calls, 1);
    assert_true(s.login_null);
    assert_true(s.passcode_null);
}

static void test_stop_while_refusal_waits(void **state)
{
    (void)state;
    seen s = { 0 };
    tb *t = start(&s, 60000);
    tc *c = tc_connect(tb_port(t));
    assert_int_equal(tc_send(c, "CONNECT\nlogin:x\npasscode:y\n\n"), 0);
    broker_stats st;
    for (int i = 0; i < 500; i++) {
        tb_stats(t, &st);
        if (st.auth_failures == 1)
            break;
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    assert_int_equal(st.auth_failures, 1);
    double t0 = now_ms();
    assert_int_equal(tb_stop(t), 0);
    assert_true(now_ms() - t0 < 5000);
    assert_true(tc_closed(c, TL_TIMEOUT_MS));
    tc_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_delay),
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_refused_after_delay),
        cmocka_unit_test(test_absent_login_is_null),
        cmocka_unit_test(test_stop_while_refusal_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
