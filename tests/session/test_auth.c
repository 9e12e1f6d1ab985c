/* test_auth.c: broker_options.authenticate and authenticate_async over real sockets: the
 * hook sees the login and passcode of CONNECT/STOMP (NULL when absent); an accepted login
 * gets CONNECTED; a refused one gets ERROR "Authentication failed" only after
 * auth_fail_delay_ms, nothing sent behind it is processed, the refusal is counted in the
 * stats, and a broker stopped while a refusal waits closes cleanly. An asynchronous check
 * answered later (from a timer) holds back the frames pipelined behind the CONNECT until
 * it is accepted; a client gone, a CONNECT timeout or a broker stop while the check is
 * pending leave the late answer harmless, and the stop waits for it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
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

/* ---- asynchronous checks ------------------------------------------------------------ */

/* An embedder whose check answers after delay_ms, from a timer on the broker's loop.
 * Fields are written on the broker's thread: read them after tb_stop or via tb_call. */
typedef struct later {
    broker *b;
    uv_loop_t *loop;
    uint64_t delay_ms;
    int answer_inline; /* answer inside the hook instead */
    int calls, answered;
    int abandoned;              /* broker_auth_abandoned() just before the last answer */
    uint64_t messages_in_before; /* broker stats just before the last answer */
    uint64_t sessions_before;    /* conns open just before the last answer */
} later;

typedef struct pending {
    uv_timer_t timer;
    broker_auth *req;
    later *l;
    int accept;
} pending;

static void on_pending_closed(uv_handle_t *h)
{
    free(h->data);
}

static void answer(later *l, broker_auth *req, int accept)
{
    broker_stats st;
    broker_get_stats(l->b, &st);
    l->messages_in_before = st.messages_in;
    l->sessions_before = st.connections;
    l->abandoned = broker_auth_abandoned(req);
    l->answered++;
    broker_auth_done(req, accept);
}

static void on_answer_due(uv_timer_t *t)
{
    pending *p = t->data;
    answer(p->l, p->req, p->accept);
    uv_close((uv_handle_t *)&p->timer, on_pending_closed);
}

static void check_later(void *ctx, broker_auth *req, const char *login, const char *passcode)
{
    later *l = ctx;
    l->calls++;
    int accept = login && passcode && strcmp(login, "alice") == 0 &&
                 strcmp(passcode, "secret") == 0;
    pending *p = l->answer_inline ? NULL : calloc(1, sizeof *p);
    if (!p) {
        answer(l, req, accept);
        return;
    }
    p->req = req;
    p->l = l;
    p->accept = accept;
    uv_timer_init(l->loop, &p->timer);
    p->timer.data = p;
    uv_timer_start(&p->timer, on_answer_due, l->delay_ms, 0);
}

static void grab_broker(broker *b, void *arg)
{
    later *l = arg;
    l->b = b;
    l->loop = broker_loop(b);
}

static tb *start_later(later *l, uint64_t delay_ms, uint32_t fail_delay_ms,
                       uint32_t connect_timeout_ms)
{
    broker_options o;
    broker_options_init(&o);
    o.authenticate_async = check_later;
    o.auth_ctx = l;
    o.auth_fail_delay_ms = fail_delay_ms;
    o.connect_timeout_ms = connect_timeout_ms;
    l->delay_ms = delay_ms;
    tb *t = tb_start(&o);
    assert_non_null(t);
    tb_call(t, grab_broker, l);
    return t;
}

typedef struct snap {
    later *from;
    later copy;
} snap;

static void copy_later(broker *b, void *arg)
{
    (void)b;
    snap *s = arg;
    s->copy = *s->from;
}

/* A copy of *l taken on the broker's thread. */
static later snapshot(tb *t, later *l)
{
    snap s = { l, { 0 } };
    tb_call(t, copy_later, &s);
    return s.copy;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000 * 1000 };
    nanosleep(&ts, NULL);
}

/* Poll (on the broker's thread) until l->answered reaches n. */
static void wait_answered(tb *t, later *l, int n)
{
    for (int i = 0; i < 500; i++) {
        later now = snapshot(t, l);
        if (now.answered >= n)
            return;
        sleep_ms(10);
    }
    fail_msg("the check was never answered");
}

static void wait_no_connections(tb *t)
{
    broker_stats st;
    for (int i = 0; i < 500; i++) {
        tb_stats(t, &st);
        if (st.connections == 0)
            return;
        sleep_ms(10);
    }
    fail_msg("connections still open: %llu", (unsigned long long)st.connections);
}

/* CONNECT as alice with passcode, then a SEND and a SUBSCRIBE, in one write. */
static void send_pipelined(tc *c, const char *passcode)
{
    static const char head[] = "CONNECT\naccept-version:1.2\nlogin:alice\npasscode:";
    static const char rest[] = "\n\n\0SEND\ndestination:/queue/behind\nreceipt:r1\n\nhello\0"
                               "SUBSCRIBE\ndestination:/queue/behind\nid:s\nreceipt:r2\n\n";
    char buf[512];
    size_t len = 0, plen = strlen(passcode);
    memcpy(buf, head, sizeof head - 1);
    len += sizeof head - 1;
    memcpy(buf + len, passcode, plen);
    len += plen;
    memcpy(buf + len, rest, sizeof rest); /* with the NUL ending the SUBSCRIBE */
    len += sizeof rest;
    assert_int_equal(tc_send_raw(c, buf, len), 0);
}

static void test_async_pipelined_after_accept(void **state)
{
    (void)state;
    later l = { 0 };
    tb *t = start_later(&l, 300, 300, 10000);
    tc *c = tc_connect(tb_port(t));
    assert_non_null(c);
    double t0 = now_ms();
    send_pipelined(c, "secret");
    tframe f;
    assert_true(tc_is(c, "CONNECTED", &f));
    tf_free(&f);
    assert_true(now_ms() - t0 >= 300 * 0.9);
    assert_true(tc_is(c, "RECEIPT", &f));
    assert_string_equal(tf_header(&f, "receipt-id"), "r1");
    tf_free(&f);
    assert_int_equal(tc_expect(c, "MESSAGE", &f), 0);
    assert_memory_equal(f.body, "hello", 5);
    tf_free(&f);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
    assert_int_equal(l.calls, 1);
    assert_int_equal(l.answered, 1);
    /* Nothing behind the CONNECT had been processed before the answer. */
    assert_int_equal(l.messages_in_before, 0);
    assert_false(l.abandoned);
}

static void test_async_answered_inline(void **state)
{
    (void)state;
    later l = { .answer_inline = 1 };
    tb *t = start_later(&l, 0, 300, 10000);
    tc *c = tc_connect(tb_port(t));
    assert_non_null(c);
    send_pipelined(c, "secret");
    tframe f;
    assert_true(tc_is(c, "CONNECTED", &f));
    tf_free(&f);
    assert_true(tc_is(c, "RECEIPT", &f));
    assert_string_equal(tf_header(&f, "receipt-id"), "r1");
    tf_free(&f);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
    assert_int_equal(l.answered, 1);
}

static void test_async_refused(void **state)
{
    (void)state;
    later l = { 0 };
    tb *t = start_later(&l, 200, 300, 10000);
    tc *c = tc_connect(tb_port(t));
    assert_non_null(c);
    double t0 = now_ms();
    send_pipelined(c, "wrong");
    tframe f;
    assert_int_equal(tc_read(c, &f, TL_TIMEOUT_MS), 0);
    assert_string_equal(f.cmd, "ERROR");
    assert_string_equal(tf_header(&f, "message"), "Authentication failed");
    tf_free(&f);
    assert_true(now_ms() - t0 >= (200 + 300) * 0.9);
    assert_true(tc_closed(c, TL_TIMEOUT_MS));
    tc_close(c);
    broker_stats st;
    tb_stats(t, &st);
    assert_int_equal(st.auth_failures, 1);
    assert_int_equal(st.messages_in, 0);
    assert_int_equal(tb_stop(t), 0);
}

static void test_async_client_gone(void **state)
{
    (void)state;
    later l = { 0 };
    tb *t = start_later(&l, 300, 300, 10000);
    tc *c = tc_connect(tb_port(t));
    assert_non_null(c);
    send_pipelined(c, "secret");
    tc_close(c); /* gone before the answer */
    wait_answered(t, &l, 1);
    wait_no_connections(t);
    /* The broker goes on serving. */
    c = tc_open(tb_port(t), "login:alice\npasscode:secret\n");
    assert_non_null(c);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
    assert_int_equal(l.answered, 2);
}

static void test_async_connect_timeout(void **state)
{
    (void)state;
    later l = { 0 };
    tb *t = start_later(&l, 600, 300, 150);
    tc *c = tc_connect(tb_port(t));
    assert_non_null(c);
    send_pipelined(c, "secret");
    tframe f;
    assert_int_equal(tc_read(c, &f, TL_TIMEOUT_MS), 0);
    assert_string_equal(f.cmd, "ERROR");
    assert_string_equal(tf_header(&f, "message"), "login not checked within the connect timeout");
    tf_free(&f);
    assert_true(tc_closed(c, TL_TIMEOUT_MS));
    tc_close(c);
    wait_no_connections(t);
    /* The answer comes to a connection freed long ago. */
    wait_answered(t, &l, 1);
    later now = snapshot(t, &l);
    assert_true(now.abandoned);
    assert_int_equal(now.messages_in_before, 0);
    assert_int_equal(tb_stop(t), 0);
}

static void test_async_stop_waits(void **state)
{
    (void)state;
    later l = { 0 };
    tb *t = start_later(&l, 400, 300, 10000);
    tc *c = tc_connect(tb_port(t));
    assert_non_null(c);
    send_pipelined(c, "secret");
    for (int i = 0; i < 500 && snapshot(t, &l).calls == 0; i++)
        sleep_ms(10);
    assert_int_equal(snapshot(t, &l).calls, 1);
    assert_int_equal(tb_stop(t), 0); /* the loop closes only if the timer was closed too */
    assert_int_equal(l.answered, 1);
    assert_true(l.abandoned);
    assert_true(tc_closed(c, TL_TIMEOUT_MS));
    tc_close(c);
}

static int always(void *ctx, const char *login, const char *passcode)
{
    (void)ctx;
    (void)login;
    (void)passcode;
    return 0;
}

static void test_both_hooks_invalid(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    broker_options o;
    broker_options_init(&o);
    o.authenticate = always;
    o.authenticate_async = check_later;
    broker *b = NULL;
    assert_int_equal(broker_create(&loop, &o, &b), BROKER_E_INVALID);
    assert_null(b);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_delay),
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_refused_after_delay),
        cmocka_unit_test(test_absent_login_is_null),
        cmocka_unit_test(test_stop_while_refusal_waits),
        cmocka_unit_test(test_async_pipelined_after_accept),
        cmocka_unit_test(test_async_answered_inline),
        cmocka_unit_test(test_async_refused),
        cmocka_unit_test(test_async_client_gone),
        cmocka_unit_test(test_async_connect_timeout),
        cmocka_unit_test(test_async_stop_waits),
        cmocka_unit_test(test_both_hooks_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
