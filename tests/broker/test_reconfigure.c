/* test_reconfigure.c: broker_reconfigure on a running broker, and the listeners that are
 * not HOST:PORT (broker_listen_unix, broker_listen_fd), over real sockets.
 * - A new limit applies to an open connection's next frame; a new policy to the next SEND;
 *   the connection stays open throughout.
 * - A bad policy changes nothing (atomic), TLS cannot be turned on, a stopping broker
 *   refuses.
 * - A unix socket gets its mode, serves STOMP, and its file goes at the stop; a socket
 *   handed over by descriptor serves STOMP; a descriptor that is not a listening socket is
 *   refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "testlib.h"

typedef struct call {
    broker_options o;
    broker_err rc;
    char why[256];
    int fd, port;
    const char *path;
} call;

static void do_reconfigure(broker *b, void *arg)
{
    call *c = arg;
    c->rc = broker_reconfigure(b, &c->o, c->why, sizeof c->why);
}

static tc *open12(tb *t)
{
    tc *c = tc_open(tb_port(t), "accept-version:1.2\n");
    assert_non_null(c);
    return c;
}

static void receipt(tc *c, const char *frame)
{
    assert_int_equal(tc_send(c, frame), 0);
    tframe f;
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
}

static void test_limits_and_policies_apply_live(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.max_subscriptions = 1;
    tb *t = tb_start(&o);
    tc *c = open12(t);
    receipt(c, "SUBSCRIBE\nid:1\ndestination:/queue/a\nreceipt:1\n\n");

    call k;
    k.o = o;
    k.o.max_subscriptions = 2;
    static broker_policy_rule rule;
    rule.pattern = "/queue/full.*";
    rule.policy = o.policy;
    rule.policy.max_length = 1;
    rule.policy.overflow = BROKER_OVERFLOW_REJECT;
    k.o.policies = &rule;
    k.o.npolicies = 1;
    tb_call(t, do_reconfigure, &k);
    assert_int_equal(k.rc, BROKER_OK);
    /* The open connection may now take a second subscription, not a third. */
    receipt(c, "SUBSCRIBE\nid:2\ndestination:/queue/b\nreceipt:2\n\n");
    tc *p = open12(t);
    receipt(p, "SEND\ndestination:/queue/full.x\nreceipt:s1\n\none");
    assert_int_equal(tc_send(p, "SEND\ndestination:/queue/full.x\nreceipt:s2\n\ntwo"), 0);
    tframe f;
    assert_true(tc_is(p, "ERROR", &f));
    assert_non_null(strstr(tf_header(&f, "message"), "is full"));
    tf_free(&f);
    tc_close(p);

    /* A bad policy (a topic as dead-letter queue): nothing changes, max_subscriptions
     * included. */
    k.o.max_subscriptions = 3;
    rule.policy.dead_letter = "/topic/dead";
    tb_call(t, do_reconfigure, &k);
    assert_int_equal(k.rc, BROKER_E_INVALID);
    assert_string_equal(k.why, "bad policy");
    assert_int_equal(tc_send(c, "SUBSCRIBE\nid:3\ndestination:/queue/c\n\n"), 0);
    assert_true(tc_is(c, "ERROR", &f));
    assert_string_equal(tf_header(&f, "message"), "too many subscriptions on this connection");
    tf_free(&f);
    tc_close(c);

    /* A broker without TLS stays without: the TLS fields are not taken. */
    rule.policy.dead_letter = NULL;
    k.o.tls_cert = "/nonexistent.pem";
    tb_call(t, do_reconfigure, &k);
    assert_int_equal(k.rc, BROKER_OK);
    assert_int_equal(tb_stop(t), 0);
}

static void do_listen_unix(broker *b, void *arg)
{
    call *c = arg;
    c->rc = broker_listen_unix(b, c->path, 0600);
}

static void do_listen_fd(broker *b, void *arg)
{
    call *c = arg;
    c->rc = broker_listen_fd(b, c->fd, &c->port);
}

static int unix_connect(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    assert_true(strlen(path) < sizeof sa.sun_path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* CONNECT on a raw socket: 1 when CONNECTED came back. */
static int stomp_hello(int fd)
{
    static const char hello[] = "CONNECT\naccept-version:1.2\nhost:x\n\n";
    if (write(fd, hello, sizeof hello) != (ssize_t)sizeof hello)
        return 0;
    char buf[512];
    struct timeval tv = { 10, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    return n > 9 && memcmp(buf, "CONNECTED", 9) == 0;
}

static void test_unix_and_fd_listeners(void **state)
{
    (void)state;
    tb *t = tb_start(NULL);
    char dir[] = "/tmp/test_reconfigure.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/s.sock", dir);
    call k = { .path = path };
    tb_call(t, do_listen_unix, &k);
    assert_int_equal(k.rc, BROKER_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    int u = unix_connect(path);
    assert_true(stomp_hello(u));
    close(u);
    /* The same path again: a live socket is not taken over. */
    tb_call(t, do_listen_unix, &k);
    assert_int_equal(k.rc, BROKER_E_LISTEN);

    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(l, (struct sockaddr *)&sin, sizeof sin), 0);
    k.fd = l;
    tb_call(t, do_listen_fd, &k); /* bound, not listening: refused, still ours */
    assert_int_equal(k.rc, BROKER_E_INVALID);
    assert_int_equal(listen(l, 16), 0);
    tb_call(t, do_listen_fd, &k);
    assert_int_equal(k.rc, BROKER_OK);
    socklen_t len = sizeof sin;
    assert_int_equal(getsockname(l, (struct sockaddr *)&sin, &len), 0);
    assert_int_equal(k.port, ntohs(sin.sin_port));
    tc *c = tc_open(k.port, "accept-version:1.2\n");
    assert_non_null(c);
    tc_close(c);

    assert_int_equal(tb_stop(t), 0);
    assert_int_equal(stat(path, &st), -1); /* removed at the stop */
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_and_policies_apply_live),
        cmocka_unit_test(test_unix_and_fd_listeners),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
