/* test_policy.c: which policy a destination gets (the most specific matching rule, else
 * the broker-wide one), the names of dead-letter queues, and the redelivery delays with
 * back-off and cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core.h"

static broker_policy_rule rules[] = {
    { "/queue/orders.>", { .max_deliveries = 1 } },
    { "/queue/orders.*", { .max_deliveries = 2 } },
    { "/queue/orders.eu.*", { .max_deliveries = 3 } },
    { "/queue/orders.eu.paris", { .max_deliveries = 4 } },
    { "/queue/*.eu.paris", { .max_deliveries = 5 } },
    { "plain", { .max_deliveries = 6 } },
    { "/queue/orders.>", { .max_deliveries = 7 } }, /* the same pattern again: the first wins */
};

static uint32_t limit_of(const broker *b, const char *name)
{
    return policy__for(b, name, strlen(name))->max_deliveries;
}

static void on_stopped(broker *b, void *arg)
{
    (void)b;
    *(int *)arg = 1;
}

static void with_broker(void (*fn)(broker *b))
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    broker_options o;
    broker_options_init(&o);
    o.policies = rules;
    o.npolicies = sizeof rules / sizeof rules[0];
    broker *b;
    assert_int_equal(broker_create(&loop, &o, &b), BROKER_OK);
    fn(b);
    int stopped = 0;
    assert_int_equal(broker_stop(b, on_stopped, &stopped), BROKER_OK);
    for (int i = 0; i < 1000 && !stopped; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(stopped);
    broker_free(b);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void most_specific(broker *b)
{
    assert_int_equal(limit_of(b, "/queue/orders.eu.paris"), 4); /* exact beats all */
    /* More literal elements win, then '*' over '>'. */
    assert_int_equal(limit_of(b, "/queue/orders.eu.lyon"), 3);
    assert_int_equal(limit_of(b, "/queue/orders.us"), 2);   /* '*' is one element */
    assert_int_equal(limit_of(b, "/queue/orders.us.ny"), 1); /* only '>' spans two */
    assert_int_equal(limit_of(b, "/queue/books.eu.paris"), 5);
    assert_int_equal(limit_of(b, "plain"), 6);
    /* No match: the broker-wide policy (default 10 attempts). */
    assert_int_equal(limit_of(b, "/queue/orders"), 10); /* '>' needs one element at least */
    assert_int_equal(limit_of(b, "plainer"), 10);
    assert_int_equal(limit_of(b, "/queue/orders.eu.paris.x.y.z"), 1);
    assert_int_equal(limit_of(b, "/topic/orders.us"), 10);
}

static void test_most_specific_rule_wins(void **state)
{
    (void)state;
    with_broker(most_specific);
}

static void test_rule_without_pattern_refused(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    broker_options o;
    broker_options_init(&o);
    broker_policy_rule bad[] = { { "/queue/a", { 0 } }, { NULL, { 0 } } };
    o.policies = bad;
    o.npolicies = 2;
    broker *b = NULL;
    assert_int_equal(broker_create(&loop, &o, &b), BROKER_E_INVALID);
    assert_null(b);
    o.policies = NULL;
    assert_int_equal(broker_create(&loop, &o, &b), BROKER_E_INVALID);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void dlq_is(const broker_policy *p, const char *name, const char *want)
{
    char out[64];
    size_t n = policy__dead_letter(p, name, strlen(name), out, sizeof out);
    if (!want) {
        assert_int_equal(n, 0);
        return;
    }
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
}

static void test_dead_letter_names(void **state)
{
    (void)state;
    broker_policy p = { 0 };
    dlq_is(&p, "/queue/orders", "/queue/DLQ.orders");
    dlq_is(&p, "orders", "DLQ.orders");
    dlq_is(&p, "/queue/", "DLQ./queue/"); /* no name after the prefix */
    dlq_is(&p, "/queue/a.very.long.name.that.will.not.fit.into.sixty.four.bytes", NULL);
    p.dead_letter = "/queue/all-dead";
    dlq_is(&p, "/queue/orders", "/queue/all-dead");
    p.dead_letter = "none";
    dlq_is(&p, "/queue/orders", NULL);
}

static void test_redelivery_delays(void **state)
{
    (void)state;
    broker_policy p = { .redelivery_delay = 1000,
                        .redelivery_backoff = 2.0,
                        .redelivery_delay_max = 5000 };
    assert_int_equal(policy__redelivery_delay(&p, 1), 1000);
    assert_int_equal(policy__redelivery_delay(&p, 2), 2000);
    assert_int_equal(policy__redelivery_delay(&p, 3), 4000);
    assert_int_equal(policy__redelivery_delay(&p, 4), 5000); /* capped */
    assert_int_equal(policy__redelivery_delay(&p, 4000000000u), 5000);
    p.redelivery_backoff = 0.5; /* below 1: no back-off */
    assert_int_equal(policy__redelivery_delay(&p, 3), 1000);
    p.redelivery_delay = 0;
    p.redelivery_backoff = 3;
    assert_int_equal(policy__redelivery_delay(&p, 5), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_most_specific_rule_wins),
        cmocka_unit_test(test_rule_without_pattern_refused),
        cmocka_unit_test(test_dead_letter_names),
        cmocka_unit_test(test_redelivery_delays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
