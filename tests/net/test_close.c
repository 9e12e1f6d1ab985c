/* test_close.c: a connection closed by the broker loses nothing it was sent. The peer may
 * still be sending (and the broker no longer reading) when the broker ends the connection:
 * closing a socket with unread input resets it, and a reset destroys what the peer had not
 * read yet. So the broker ends its side (FIN after everything written), reads and drops
 * what the peer still sends, and closes once the peer ended too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testlib.h"

#define MESSAGES 20000

/* A subscriber falls 20 MB behind a topic (more than the socket buffers hold); then it
 * sends a bad frame and keeps sending: every MESSAGE queued before the ERROR and the ERROR
 * itself still arrive, and then the end of the stream, not a reset. */
static void test_error_reaches_a_peer_still_sending(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.error_linger_ms = 60000; /* only the peer's end closes it */
    tb *t = tb_start(&o);
    tc *c = tc_connect(tb_port(t));
    tframe f;
    TC_SENDF(c, "CONNECT\naccept-version:1.2\n\n");
    assert_true(tc_is(c, "CONNECTED", &f));
    tf_free(&f);
    TC_SENDF(c, "SUBSCRIBE\nid:1\ndestination:/topic/close\nreceipt:s\n\n");
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    tc *p = tc_open(tb_port(t), "accept-version:1.2\n");
    char body[1000];
    memset(body, 'm', sizeof body);
    for (int i = 0; i < MESSAGES; i++)
        TC_SENDF(p, "SEND\ndestination:/topic/close\n\n%.*s", (int)sizeof body, body);
    TC_SENDF(p, "SEND\ndestination:/topic/other\nreceipt:all\n\n");
    assert_true(tc_is(p, "RECEIPT", &f)); /* every SEND above was routed */
    tf_free(&f);
    /* The bad frame, then more input than the broker will read. */
    assert_int_equal(tc_send(c, "FOO\n\n"), 0);
    static char junk[65536];
    memset(junk, 'j', sizeof junk);
    size_t sent = 0;
    for (int i = 0; i < 200; i++) {
        ssize_t n = send(c->fd, junk, sizeof junk, MSG_DONTWAIT);
        if (n > 0)
            sent += (size_t)n;
        else
            usleep(5000);
    }
    assert_true(sent > sizeof junk);
    int messages = 0, errors = 0, rc;
    while ((rc = tc_read(c, &f, TL_TIMEOUT_MS)) == 0) {
        if (strcmp(f.cmd, "MESSAGE") == 0)
            messages++;
        else if (strcmp(f.cmd, "ERROR") == 0)
            errors++;
        tf_free(&f);
    }
    assert_int_equal(rc, -2); /* the end of the stream */
    if (messages != MESSAGES || errors != 1)
        fail_msg("got %d of %d MESSAGEs and %d ERROR", messages, MESSAGES, errors);
    tc_close(c);
    tc_close(p);
    assert_int_equal(tb_stop(t), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_reaches_a_peer_still_sending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
