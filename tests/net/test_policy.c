/* test_policy.c: the Flash socket policy file (policy.c) on a STOMP port and on a policy
 * port: the exact document (NUL included) for default and configured domains and ports,
 * a request arriving in pieces, the off switch, and STOMP unaffected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testlib.h"

static const char req[] = "<policy-file-request/>"; /* sizeof: with its NUL */

#define HEAD                                                                                \
    "<?xml version=\"1.0\"?>\n"                                                               \
    "<!DOCTYPE cross-domain-policy SYSTEM \"/xml/dtds/cross-domain-policy.dtd\">\n"           \
    "<cross-domain-policy>\n"                                                                \
    "<site-control permitted-cross-domain-policies=\"master-only\"/>\n"
#define TAIL "</cross-domain-policy>\n"

/* Everything the broker sends until it closes: caller frees; *len excludes our NUL. */
static char *read_to_close(tc *c, size_t *len)
{
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    for (;;) {
        struct pollfd pf = { c->fd, POLLIN, 0 };
        assert_true(poll(&pf, 1, TL_TIMEOUT_MS) > 0);
        ssize_t k = recv(c->fd, buf + n, cap - n, 0);
        if (k <= 0)
            break;
        n += (size_t)k;
        assert_true(n < cap);
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void expect_policy(int port, const char *want, int split)
{
    tc *c = tc_connect(port);
    assert_non_null(c);
    if (split) {
        assert_int_equal(tc_send_raw(c, req, 9), 0);
        usleep(50 * 1000);
        assert_int_equal(tc_send_raw(c, req + 9, sizeof req - 9), 0);
    } else {
        assert_int_equal(tc_send_raw(c, req, sizeof req), 0);
    }
    size_t n;
    char *got = read_to_close(c, &n);
    assert_int_equal(n, strlen(want) + 1); /* and the NUL that ends it */
    assert_string_equal(got, want);
    assert_int_equal(got[n - 1], '\0');
    free(got);
    tc_close(c);
}

static void stomp_still_works(tb *t)
{
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    tframe f;
    assert_int_equal(tc_send(c, "SEND\ndestination:/queue/p\nreceipt:r\n\nx"), 0);
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    tc_close(c);
}

static void test_stomp_port_default(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    assert_non_null(t);
    char want[1024];
    snprintf(want, sizeof want,
             HEAD "<allow-access-from domain=\"*\" to-ports=\"%d\"/>\n" TAIL, tb_port(t));
    expect_policy(tb_port(t), want, 0);
    expect_policy(tb_port(t), want, 1);
    stomp_still_works(t);
    broker_stats st;
    tb_stats(t, &st);
    assert_int_equal(st.errors_sent, 0);
    assert_int_equal(tb_stop(t), 0);
}

static void test_configured(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.policy_domains = "a.example, *.b.example";
    o.policy_ports = "61613-61614";
    tb *t = tb_start(&o);
    assert_non_null(t);
    expect_policy(tb_port(t),
                  HEAD "<allow-access-from domain=\"a.example\" to-ports=\"61613-61614\"/>\n"
                       "<allow-access-from domain=\"*.b.example\" to-ports=\"61613-61614\"/>\n"
                  TAIL, 0);
    assert_int_equal(tb_stop(t), 0);
}

static void test_off_switch(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.flash_policy = 0;
    o.connect_timeout_ms = 300;
    tb *t = tb_start(&o);
    assert_non_null(t);
    tc *c = tc_connect(tb_port(t));
    assert_non_null(c);
    assert_int_equal(tc_send_raw(c, req, sizeof req), 0);
    size_t n;
    char *got = read_to_close(c, &n);
    /* Not answered with a policy: read as STOMP, the NUL in the command line is
     * refused at once (not after the CONNECT timeout). */
    assert_memory_equal(got, "ERROR\n", 6);
    assert_non_null(strstr(got, "malformed command line"));
    assert_null(strstr(got, "no CONNECT frame"));
    assert_null(strstr(got, "cross-domain-policy"));
    free(got);
    tc_close(c);
    stomp_still_works(t);
    assert_int_equal(tb_stop(t), 0);
}

static void listen_policy(broker *b, void *arg)
{
    int *port = arg;
    if (broker_listen_policy(b, "127.0.0.1", 0, port) != BROKER_OK)
        *port = -1;
}

static void test_policy_port(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.flash_policy = 0; /* the STOMP port's switch; a policy port always answers */
    tb *t = tb_start(&o);
    assert_non_null(t);
    int pport = 0;
    tb_call(t, listen_policy, &pport);
    assert_true(pport > 0);
    char want[1024];
    snprintf(want, sizeof want,
             HEAD "<allow-access-from domain=\"*\" to-ports=\"%d\"/>\n" TAIL, tb_port(t));
    expect_policy(pport, want, 0);
    expect_policy(pport, want, 1);
    /* Anything else on a policy port: closed without a byte. */
    tc *c = tc_connect(pport);
    assert_non_null(c);
    assert_int_equal(tc_send(c, "CONNECT\naccept-version:1.2\n\n"), 0);
    size_t n;
    char *got = read_to_close(c, &n);
    assert_int_equal(n, 0);
    free(got);
    tc_close(c);
    broker_stats st;
    tb_stats(t, &st);
    assert_int_equal(st.errors_sent, 0);
    assert_int_equal(st.frames_in, 0);
    stomp_still_works(t);
    assert_int_equal(tb_stop(t), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stomp_port_default),
        cmocka_unit_test(test_configured),
        cmocka_unit_test(test_off_switch),
        cmocka_unit_test(test_policy_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
