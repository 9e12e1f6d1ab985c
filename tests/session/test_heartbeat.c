/* test_heartbeat.c: heart-beats. The rules first, on the pure planner with made-up times
 * (no waiting, exact to the millisecond): when an EOL is due, when a silent client is
 * ended. Then over loopback sockets: negotiation and its bounds, the gap between every two
 * beats of an idle session, and the moment a silent client is closed. Socket tests assert
 * bounds with slack for a busy machine, never exact times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "testlib.h"

static void connect_raw(tc *c, const char *frame, tframe *f)
{
    assert_int_equal(tc_send(c, frame), 0);
    assert_int_equal(tc_read(c, f, TL_TIMEOUT_MS), 0);
}

static void still_serving(tb *t)
{
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    tframe f;
    assert_int_equal(tc_send(c, "SEND\ndestination:/topic/x\nreceipt:alive\n\nhi"), 0);
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    tc_close(c);
}

/* ---- the planner ---- */

static hb_plan plan(uint32_t out, uint32_t in, uint64_t last_write, uint64_t last_rx,
                    int writing, uint64_t now)
{
    hb_clock k = { out, in, 200, last_write, last_rx, writing };
    hb_plan p;
    heartbeat__plan(&k, now, &p);
    return p;
}

/* An EOL is due a tenth before the interval after the last write, whatever that write
 * carried: after a beat the next one is due one interval on, not two. */
static void test_plan_send(void **state)
{
    (void)state;
    hb_plan p = plan(1000, 0, 5000, 0, 0, 5000);
    assert_false(p.send);
    assert_int_equal(p.wait, 900);
    p = plan(1000, 0, 5000, 0, 0, 5899);
    assert_false(p.send);
    assert_int_equal(p.wait, 1);
    p = plan(1000, 0, 5000, 0, 0, 5900);
    assert_true(p.send);
    assert_int_equal(p.wait, 900);
    /* The beat just sent is the last write: the following one 900 ms after it. */
    p = plan(1000, 0, 5900, 0, 0, 6800);
    assert_true(p.send);
    /* A late timer sends at once. */
    p = plan(1000, 0, 5000, 0, 0, 7777);
    assert_true(p.send);
    assert_int_equal(p.wait, 900);
    /* Output on its way is data: no beat, look again an interval on. */
    p = plan(1000, 0, 5000, 0, 1, 6000);
    assert_false(p.send);
    assert_int_equal(p.wait, 900);
    /* The lead is at most a second. */
    p = plan(60000, 0, 0, 0, 0, 58999);
    assert_false(p.send);
    p = plan(60000, 0, 0, 0, 0, 59000);
    assert_true(p.send);
    /* Tiny intervals still send. */
    p = plan(1, 0, 10, 0, 0, 11);
    assert_true(p.send);
    assert_int_equal(p.wait, 1);
}

/* A client may be silent exactly twice its interval (grace 200 %), not a millisecond more. */
static void test_plan_expire(void **state)
{
    (void)state;
    hb_plan p = plan(0, 1000, 0, 3000, 0, 3000);
    assert_false(p.expire);
    assert_int_equal(p.wait, 2000);
    p = plan(0, 1000, 0, 3000, 0, 4999);
    assert_false(p.expire);
    assert_int_equal(p.wait, 1);
    p = plan(0, 1000, 0, 3000, 0, 5000);
    assert_true(p.expire);
    /* Both directions: the timer looks again at the earlier of the two. */
    p = plan(1000, 1000, 3000, 3000, 0, 3100);
    assert_false(p.send);
    assert_false(p.expire);
    assert_int_equal(p.wait, 800);
    p = plan(10000, 300, 3000, 3000, 0, 3100);
    assert_int_equal(p.wait, 500);
    /* Neither: nothing to do, ever. */
    p = plan(0, 0, 0, 0, 0, 123);
    assert_int_equal(p.wait, 0);
    assert_false(p.send || p.expire);
}

/* ---- over sockets ---- */

static void test_heartbeat_server_sends(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.heartbeat_out_ms = 20;
    tb *t = tb_start(&o);
    tc *c = tc_connect(tb_port(t));
    tframe f;
    connect_raw(c, "CONNECT\naccept-version:1.1\nheart-beat:0,30\n\n", &f);
    assert_string_equal(tf_header(&f, "heart-beat"), "20,10000");
    tf_free(&f);
    assert_true(tc_wait_heartbeats(c, 3, TL_TIMEOUT_MS));
    tc_close(c);
    /* 1.0 sessions get none. */
    c = tc_connect(tb_port(t));
    connect_raw(c, "CONNECT\nheart-beat:0,30\n\n", &f);
    assert_string_equal(tf_header(&f, "heart-beat"), "0,0");
    tf_free(&f);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

static void test_heartbeat_client_timeout(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.heartbeat_in_ms = 500;
    tb *t = tb_start(&o);
    tc *c = tc_connect(tb_port(t));
    tframe f;
    connect_raw(c, "CONNECT\naccept-version:1.2\nheart-beat:500,0\n\n", &f);
    assert_string_equal(f.cmd, "CONNECTED");
    tf_free(&f);
    /* Client heart-beats keep the session alive well past the allowed silence (twice the
     * interval, 1 s): beats 50 ms apart for 1.5 s. A beat would have to be held up for the
     * whole second by the machine's load before the broker could call the client silent,
     * where 10 ms beats against a 60 ms allowance failed on a busy machine. */
    for (int i = 0; i < 30; i++) {
        assert_int_equal(tc_send_raw(c, "\n", 1), 0);
        usleep(50000);
    }
    assert_int_equal(tc_send(c, "SEND\ndestination:/topic/a\nreceipt:ok\n\n"), 0);
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    /* Then silence: ERROR and close. */
    assert_true(tc_is(c, "ERROR", &f));
    tf_free(&f);
    assert_true(tc_closed(c, TL_TIMEOUT_MS));
    tc_close(c);
    still_serving(t);
    assert_int_equal(tb_stop(t), 0);
}

/* Heart-beat bounds: a client may not make us send more often than heartbeat_out_ms, nor
 * make us expect its beats more often than heartbeat_in_ms. */
static void test_heartbeat_bounds(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.heartbeat_out_ms = 50;
    o.heartbeat_in_ms = 1000;
    tb *t = tb_start(&o);
    tc *c = tc_connect(tb_port(t));
    tframe f;
    connect_raw(c, "CONNECT\naccept-version:1.2\nheart-beat:5,1\n\n", &f);
    /* Per the spec the client now sends every max(5, 1000) and we every max(50, 1). */
    assert_string_equal(tf_header(&f, "heart-beat"), "50,1000");
    tf_free(&f);
    /* Silent for far longer than twice its own 5 ms offer: still fine. */
    usleep(100000);
    assert_int_equal(tc_send(c, "SEND\ndestination:/topic/a\nreceipt:alive\n\n"), 0);
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

/* An idle session gets a beat before every interval has passed since the last one: the
 * gap between every two beats stays under the interval (slack for a busy machine). */
static void test_beat_gaps(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.heartbeat_out_ms = 500;
    tb *t = tb_start(&o);
    tc *c = tc_connect(tb_port(t));
    tframe f;
    connect_raw(c, "CONNECT\naccept-version:1.2\nheart-beat:0,500\n\n", &f);
    long long connected = tl_now_ms();
    assert_string_equal(tf_header(&f, "heart-beat"), "500,10000");
    tf_free(&f);
    long long at[8];
    assert_int_equal(tc_beat_times(c, at, 8, 10000), 8);
    long long prev = connected, worst = 0;
    for (int i = 0; i < 8; i++) {
        if (at[i] - prev > worst)
            worst = at[i] - prev;
        prev = at[i];
    }
    /* Due every 450 ms; the interval is 500; 250 ms more for the machine. */
    if (worst > 750)
        fail_msg("a gap of %lld ms between heart-beats (interval 500 ms)", worst);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

/* A client that falls silent is closed once silent twice its interval, counted from the
 * last byte it sent: not earlier, and not a check period later. Its last beat comes half
 * an interval after CONNECT, between two of the checks a periodic timer would make. */
static void test_silent_client_closed_at_twice(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.heartbeat_in_ms = 1000;
    tb *t = tb_start(&o);
    tc *c = tc_connect(tb_port(t));
    tframe f;
    connect_raw(c, "CONNECT\naccept-version:1.2\nheart-beat:1000,0\n\n", &f);
    assert_string_equal(tf_header(&f, "heart-beat"), "1000,1000");
    tf_free(&f);
    usleep(510 * 1000);
    long long beat = tl_now_ms();
    assert_int_equal(tc_send_raw(c, "\n", 1), 0);
    assert_true(tc_is(c, "ERROR", &f));
    long long after = tl_now_ms() - beat;
    assert_string_equal(f.body, "heart-beat timeout: nothing received");
    tf_free(&f);
    if (after < 2000 || after > 2300)
        fail_msg("closed after %lld ms of silence (allowed: 2000 ms)", after);
    assert_true(tc_closed(c, TL_TIMEOUT_MS));
    tc_close(c);
    still_serving(t);
    assert_int_equal(tb_stop(t), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_send),
        cmocka_unit_test(test_plan_expire),
        cmocka_unit_test(test_heartbeat_server_sends),
        cmocka_unit_test(test_heartbeat_client_timeout),
        cmocka_unit_test(test_heartbeat_bounds),
        cmocka_unit_test(test_beat_gaps),
        cmocka_unit_test(test_silent_client_closed_at_twice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
