/* test_sub.c: sub.c's bookkeeping of deliveries, driven through the route layer with an
 * endpoint of the test's own (no connection, no socket) on a broker with the memory store:
 * auto-ack deliveries are acknowledged as their bytes are written, and exactly those never
 * written go back to their queue when the endpoint is done, to be dispatched again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core.h"

typedef struct fake {
    endpoint ep; /* first: the route layer's pointer is the fake's */
    uint64_t ends[8];
    int pushed;
    char frame[4096];
} fake;

static uint64_t f_push(endpoint *e, const char *head, size_t head_len, const char *ack,
                       size_t ack_len, sbuf *shared)
{
    (void)head;
    (void)ack;
    fake *f = (fake *)e;
    uint64_t end = (f->pushed ? f->ends[f->pushed - 1] : 0) + head_len + ack_len + shared->len;
    assert_true(f->pushed < 8);
    f->ends[f->pushed++] = end;
    return end;
}

/* A MESSAGE written in place: the fake keeps only where it ends. */
static char *f_frame_open(endpoint *e, size_t max)
{
    fake *f = (fake *)e;
    assert_true(max <= sizeof f->frame);
    return f->frame;
}

static uint64_t f_frame_close(endpoint *e, size_t used)
{
    fake *f = (fake *)e;
    if (!used)
        return 0;
    uint64_t end = (f->pushed ? f->ends[f->pushed - 1] : 0) + used;
    assert_true(f->pushed < 8);
    f->ends[f->pushed++] = end;
    return end;
}

static size_t f_queued(const endpoint *e)
{
    (void)e;
    return 0;
}

static void f_fail(endpoint *e, broker_err code, const char *msg)
{
    (void)e;
    (void)code;
    fail_msg("the endpoint failed: %s", msg);
}

static void f_committed(endpoint *e, uint64_t epoch, int ok, const char *why)
{
    (void)e;
    (void)epoch;
    (void)ok;
    (void)why;
}

static const endpoint_ops fake_ops = { f_push,      f_queued,     f_fail,
                                       f_committed, f_frame_open, f_frame_close };

static void turns(uv_loop_t *loop, int n)
{
    for (int i = 0; i < n; i++)
        uv_run(loop, UV_RUN_NOWAIT);
}

static void on_stopped(broker *b, void *arg)
{
    (void)b;
    *(int *)arg = 1;
}

static void stop_and_free(uv_loop_t *loop, broker *b)
{
    int stopped = 0;
    assert_int_equal(broker_stop(b, on_stopped, &stopped), BROKER_OK);
    for (int i = 0; i < 1000 && !stopped; i++)
        uv_run(loop, UV_RUN_NOWAIT);
    assert_true(stopped);
    broker_free(b);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* Three auto-ack MESSAGEs queued, the first two written: those two are acknowledged, and
 * when the endpoint is done only the third goes back. The list of unwritten deliveries
 * kept a link from its new head to a delivery already settled and recycled, and the
 * return walked into it: acknowledged messages were "requeued" again and the recycled
 * delivery freed twice. */
static void test_auto_ack_partly_written(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    broker *b;
    assert_int_equal(broker_create(&loop, NULL, &b), BROKER_OK);
    fake f = { 0 };
    route__endpoint_init(&f.ep, &fake_ops);
    f.ep.open = 1;
    f.ep.version = STOMP_V12;
    assert_non_null(sub__subscribe(b, &f.ep, "/queue/w", 8, "s", 1, ACK_AUTO, 100, 0, NULL));
    for (int i = 0; i < 3; i++)
        assert_int_equal(broker_publish(b, "/queue/w", NULL, 0, "m", 1), BROKER_OK);
    turns(&loop, 4); /* committed, then dispatched to the endpoint at the tick */
    assert_int_equal(f.pushed, 3);
    route__endpoint_written(b, &f.ep, f.ends[1]);
    route__endpoint_close(b, &f.ep);
    route__endpoint_done(b, &f.ep);
    broker_stats st;
    broker_get_stats(b, &st);
    assert_int_equal(st.redeliveries, 1);
    assert_int_equal(b->st->depth(b->store, "/queue/w", 8), 1);
    stop_and_free(&loop, b);
}

/* The message that goes back reaches another subscriber with room at the next tick. It
 * waited for anything else to happen on its queue (a SEND, an ACK, a new subscriber):
 * with producers idle, for ever. */
static void test_returned_message_dispatched(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    broker *b;
    assert_int_equal(broker_create(&loop, NULL, &b), BROKER_OK);
    fake f = { 0 }, g = { 0 };
    route__endpoint_init(&f.ep, &fake_ops);
    route__endpoint_init(&g.ep, &fake_ops);
    f.ep.open = g.ep.open = 1;
    f.ep.version = g.ep.version = STOMP_V12;
    assert_non_null(sub__subscribe(b, &f.ep, "/queue/w", 8, "s", 1, ACK_AUTO, 100, 0, NULL));
    for (int i = 0; i < 2; i++)
        assert_int_equal(broker_publish(b, "/queue/w", NULL, 0, "m", 1), BROKER_OK);
    turns(&loop, 4);
    assert_int_equal(f.pushed, 2);
    assert_non_null(sub__subscribe(b, &g.ep, "/queue/w", 8, "s", 1, ACK_AUTO, 100, 0, NULL));
    turns(&loop, 4);
    assert_int_equal(g.pushed, 0); /* nothing ready: both are f's */
    route__endpoint_written(b, &f.ep, f.ends[0]);
    /* As a connection goes: detached at a tick, done once its socket closed, later. */
    route__endpoint_close(b, &f.ep);
    turns(&loop, 4);
    route__endpoint_done(b, &f.ep);
    turns(&loop, 4);
    assert_int_equal(g.pushed, 1);
    assert_int_equal(b->st->depth(b->store, "/queue/w", 8), 0);
    route__endpoint_written(b, &g.ep, g.ends[0]);
    route__endpoint_close(b, &g.ep);
    route__endpoint_done(b, &g.ep);
    stop_and_free(&loop, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auto_ack_partly_written),
        cmocka_unit_test(test_returned_message_dispatched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
