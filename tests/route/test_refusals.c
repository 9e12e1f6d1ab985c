/* test_refusals.c: a header or destination name that asks for a delivery semantic the
 * broker does not provide gets an ERROR that names it, and nothing happens: no message is
 * stored or delivered, no subscription made. A malformed selector or wildcard pattern
 * gets an ERROR that says where; a SEND to a wildcard name is refused (it names many
 * destinations), and so is a durable subscription the broker cannot make (no client-id,
 * not a topic) and a name the broker keeps for itself. The same names with values that ask
 * for nothing special (browser:false, durable:false, expires:0, persistent on SEND) are fine.
 * The embedding API refuses the same with BROKER_E_INVALID.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "testlib.h"

/* Send frame on a fresh 1.2 session; expect an ERROR whose body is want. */
static void refused(tb *t, const char *frame, const char *want)
{
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    tframe f;
    assert_int_equal(tc_send(c, frame), 0);
    assert_true(tc_is(c, "ERROR", &f));
    if (strcmp(f.body, want) != 0)
        fail_msg("for %s\n got: %s\nwant: %s", frame, f.body, want);
    tf_free(&f);
    assert_true(tc_closed(c, TL_TIMEOUT_MS));
    tc_close(c);
}

/* The frame gets its RECEIPT (frame must ask for receipt:ok). */
static void accepted(tb *t, const char *frame)
{
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    tframe f;
    assert_int_equal(tc_send(c, frame), 0);
    if (!tc_is(c, "RECEIPT", &f))
        fail_msg("refused: %s", frame);
    tf_free(&f);
    tc_close(c);
}

#define NOT_PROVIDED ": this broker does not provide "

static void test_send_headers(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    refused(t, "SEND\ndestination:/queue/r\npriority:10\n\nx",
            "SEND header priority:10 is not a priority from 0 to 9");
    refused(t, "SEND\ndestination:/queue/r\npriority:high\n\nx",
            "SEND header priority:high is not a priority from 0 to 9");
    refused(t, "SEND\ndestination:/queue/r\nexpires:soon\n\nx",
            "SEND header expires:soon is not a number of ms");
    refused(t, "SEND\ndestination:/queue/r\nexpiration:-5\n\nx",
            "SEND header expiration:-5 is not a number of ms");
    refused(t, "SEND\ndestination:/queue/r\nAMQ_SCHEDULED_DELAY:1e3\n\nx",
            "SEND header AMQ_SCHEDULED_DELAY:1e3 is not a number of ms");
    refused(t, "SEND\ndestination:/topic/r\nx-delay:10\n\nx",
            "delayed delivery is for queues, not the topic /topic/r");
    refused(t, "SEND\ndestination:/queue/r\ndelay:86400001\n\nx",
            "a delay of 86400001 ms is over the maximum of 86400000 ms for /queue/r");
    refused(t, "SEND\ndestination:/queue/r\nAMQ_SCHEDULED_PERIOD:1000\n\nx",
            "SEND header AMQ_SCHEDULED_PERIOD is not supported" NOT_PROVIDED
            "scheduled delivery");
    /* Nothing of the refused SENDs reached the queue. */
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    TC_SENDF(c, "SUBSCRIBE\nid:s\ndestination:/queue/r\nreceipt:sub\n\n");
    tframe f;
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    assert_int_equal(tc_read(c, &f, 200), -1);
    tc_close(c);
    accepted(t, "SEND\ndestination:/queue/r2\nexpires:0\npersistent:true\nreceipt:ok\n\nx");
    accepted(t, "SEND\ndestination:/queue/r2\nx-priority-ish:1\nreceipt:ok\n\nx");
    assert_int_equal(tb_stop(t), 0);
}

static void test_subscribe_headers(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    refused(t, "SUBSCRIBE\nid:1\ndestination:/queue/s\nselector:type = 'a' AND\n\n",
            "malformed selector at position 15: expected a value, an identifier or '(', "
            "found the end of the selector");
    refused(t, "SUBSCRIBE\nid:1\ndestination:/queue/s\nselector:a = 'x\n\n",
            "malformed selector at position 5: malformed string (no closing quote)");
    refused(t, "SUBSCRIBE\nid:1\ndestination:/queue/s\nactivemq.noLocal:true\n\n",
            "activemq.noLocal:true is for topics: a queue message goes to one consumer "
            "whoever sent it");
    refused(t, "SUBSCRIBE\nid:1\ndestination:/topic/s\nno-local:yes\n\n",
            "SUBSCRIBE header no-local:yes is not true or false");
    refused(t, "SUBSCRIBE\nid:1\ndestination:/queue/s\nbrowser:maybe\n\n",
            "SUBSCRIBE header browser:maybe is not true or false");
    refused(t, "SUBSCRIBE\nid:1\ndestination:/queue/s\nbrowser:true\nexclusive:true\n\n",
            "a queue browser cannot be an exclusive consumer");
    /* Durable subscriptions exist (test_durable_sub.c); what they cannot be is refused. */
    refused(t, "SUBSCRIBE\nid:1\ndestination:/topic/s\nactivemq.subscriptionName:d\n\n",
            "SUBSCRIBE header activemq.subscriptionName needs a client-id (a CONNECT header): "
            "a durable subscription is named by client-id and name");
    refused(t, "SUBSCRIBE\nid:1\ndestination:/topic/s\ndurable:true\nauto-delete:true\n\n",
            "SUBSCRIBE header durable:true with auto-delete:true is not supported: a "
            "subscription deleted with its subscriber is not durable (send auto-delete:false)");
    refused(t, "SUBSCRIBE\nid:1\ndestination:/queue/s\nclient-id:c\n"
               "durable-subscription-name:d\n\n",
            "SUBSCRIBE header durable-subscription-name asks for a durable topic subscription: "
            "/queue/s is not a topic");
    refused(t, "SUBSCRIBE\nid:1\ndestination:/topic/s\nx-queue-name:q\n\n",
            "SUBSCRIBE header x-queue-name names a durable subscription: it needs durable:true");
    refused(t, "SUBSCRIBE\nid:1\ndestination:/topic/s\nsubscription-name:\nclient-id:c\n\n",
            "SUBSCRIBE header subscription-name is empty: it names a durable subscription");
    refused(t, "UNSUBSCRIBE\nid:1\npersistent:true\n\n",
            "no durable subscription 1 of client-id ");
    refused(t, "SUBSCRIBE\nid:1\ndestination:/durable-sub/1\n\n",
            "destination /durable-sub/1 is reserved: /durable-sub* names the broker's own "
            "queues of durable subscriptions");
    refused(t, "SEND\ndestination:/durable-subs\n\nx",
            "destination /durable-subs is reserved: /durable-sub* names the broker's own "
            "queues of durable subscriptions");
    refused(t, "SUBSCRIBE\nid:1\ndestination:/topic/s\nactivemq.exclusive:true\n\n",
            "exclusive consumers are for queues, not the topic /topic/s");
    refused(t, "SUBSCRIBE\nid:1\ndestination:/queue/s\nexclusive:yes\n\n",
            "SUBSCRIBE header exclusive:yes is not true or false");
    refused(t, "SUBSCRIBE\nid:1\ndestination:/queue/s\nx-message-ttl:100\n\n",
            "SUBSCRIBE header x-message-ttl is not supported" NOT_PROVIDED "message expiry");
    accepted(t, "SUBSCRIBE\nid:1\ndestination:/queue/s\nbrowser:false\ndurable:false\n"
                "exclusive:false\nreceipt:ok\n\n");
    accepted(t, "SUBSCRIBE\nid:1\ndestination:/queue/s\nselector:type = 'a'\nreceipt:ok\n\n");
    accepted(t, "SUBSCRIBE\nid:1\ndestination:/queue/s\nselector: \nreceipt:ok\n\n");
    accepted(t, "SUBSCRIBE\nid:1\ndestination:/topic/s\nactivemq.noLocal:true\nno-local:false\n"
                "receipt:ok\n\n");
    assert_int_equal(tb_stop(t), 0);
}

static void test_wildcard_names(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
#define TO_ONE " holds a wildcard: a message is sent to one destination, wildcards are for " \
               "SUBSCRIBE"
    refused(t, "SEND\ndestination:/topic/*.b\n\nx", "destination /topic/*.b" TO_ONE);
    refused(t, "SEND\ndestination:/queue/a.>\n\nx", "destination /queue/a.>" TO_ONE);
    refused(t, "SEND\ndestination:/queue/a/#\n\nx", "destination /queue/a/#" TO_ONE);
    refused(t, "SUBSCRIBE\nid:1\ndestination:/topic/a.>.b\n\n",
            "SUBSCRIBE destination /topic/a.>.b: the wildcard > (or #) must be the last "
            "element");
    refused(t, "SUBSCRIBE\nid:1\ndestination:/queue/a.*\nexclusive:true\n\n",
            "exclusive consumers name one queue, not the wildcard /queue/a.*");
    refused(t, "SUBSCRIBE\nid:1\ndestination:/queue/>\nbrowser:true\n\n",
            "queue browsers name one queue, not the wildcard /queue/>");
    accepted(t, "SUBSCRIBE\nid:1\ndestination:/topic/a.*\nreceipt:ok\n\n");
    accepted(t, "SUBSCRIBE\nid:1\ndestination:/queue/a.>\nreceipt:ok\n\n");
    accepted(t, "SUBSCRIBE\nid:1\ndestination:/topic/#\nreceipt:ok\n\n");
    /* A star inside a name element is just a character. */
    accepted(t, "SUBSCRIBE\nid:1\ndestination:/queue/a*b.c>d\nreceipt:ok\n\n");
    accepted(t, "SEND\ndestination:/queue/a*\nreceipt:ok\n\nx");
    assert_int_equal(tb_stop(t), 0);
}

/* A message may reach a subscriber of any version: a SEND whose destination or headers
 * STOMP 1.0 or 1.1 cannot carry is refused (before, they were dropped from its MESSAGEs). */
static void test_uncarriable_headers(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
#define CANNOT " cannot be carried to STOMP 1.0 and 1.1 subscribers (a line break, or a " \
               "colon in a header name)"
    refused(t, "SEND\ndestination:/queue/c\nx\\cy:v\n\nx", "header x:y" CANNOT);
    refused(t, "SEND\ndestination:/queue/c\nnote:a\\nb\n\nx", "header note" CANNOT);
    refused(t, "SEND\ndestination:/queue/c\nnote:a\\rb\n\nx", "header note" CANNOT);
    refused(t, "SEND\ndestination:/queue/c\\nd\n\nx", "destination /queue/c\nd" CANNOT);
    /* A colon in a value is fine everywhere (1.0 splits at the first one). */
    accepted(t, "SEND\ndestination:/queue/c:d\nnote:a:b\nreceipt:ok\n\nx");
    /* A subscription id its version cannot write in a MESSAGE. */
    tc *c = tc_open(tb_port(t), "");
    tframe f;
    assert_int_equal(tc_send(c, "SUBSCRIBE\nid:a\rb\ndestination:/queue/c\n\n"), 0);
    assert_true(tc_is(c, "ERROR", &f));
    assert_string_equal(f.body, "subscription id cannot be carried in a MESSAGE of this STOMP "
                                "version (a line break)");
    tf_free(&f);
    tc_close(c);
    assert_int_equal(tb_stop(t), 0);
}

static void on_message(void *arg, const broker_message *m)
{
    (void)arg;
    (void)m;
}

static void api_refusals(broker *b, void *arg)
{
    (void)arg;
    broker_header prio = { "priority", "15" };
    assert_int_equal(broker_publish(b, "/queue/p", &prio, 1, "x", 1), BROKER_E_INVALID);
    broker_header cron = { "AMQ_SCHEDULED_CRON", "* * * * *" };
    assert_int_equal(broker_publish(b, "/queue/p", &cron, 1, "x", 1), BROKER_E_INVALID);
    assert_int_equal(broker_publish(b, "/topic/p.*", NULL, 0, "x", 1), BROKER_E_INVALID);
    broker_sub *s = NULL;
    assert_int_equal(broker_subscribe(b, "/topic/p.>.q", on_message, NULL, &s),
                     BROKER_E_INVALID);
    assert_int_equal(broker_subscribe(b, "/durable-sub/1", on_message, NULL, &s),
                     BROKER_E_INVALID);
    assert_int_equal(broker_publish(b, "/durable-subs", NULL, 0, "x", 1), BROKER_E_INVALID);
    assert_int_equal(broker_subscribe(b, "/topic/p.q", on_message, NULL, &s), BROKER_OK);
    broker_unsubscribe(s);
    assert_int_equal(broker_subscribe(b, "/topic/p.>", on_message, NULL, &s), BROKER_OK);
    broker_unsubscribe(s);
    broker_header nl = { "x-note", "a\nb" };
    assert_int_equal(broker_publish(b, "/queue/p", &nl, 1, "x", 1), BROKER_E_INVALID);
    broker_header fine = { "x-note", "y" };
    assert_int_equal(broker_publish(b, "/queue/p", &fine, 1, "x", 1), BROKER_OK);
}

static void test_api_refusals(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    tb_call(t, api_refusals, NULL);
    assert_int_equal(tb_stop(t), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_headers),
        cmocka_unit_test(test_subscribe_headers),
        cmocka_unit_test(test_wildcard_names),
        cmocka_unit_test(test_uncarriable_headers),
        cmocka_unit_test(test_api_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
