/* listen.c: listeners (IPv4 and IPv6) for STOMP over TCP, STOMP over WebSocket (either of
 * them over TLS too) and Flash policy requests; STOMP on unix-domain sockets; and sockets
 * handed over already listening (socket activation). Each accepted socket goes to the
 * owner's accept callback (net__init),
 * which takes it (net__stream_accept) or drops it (net__drop). Listener memory is freed in
 * its close callback; each open listener counts as a broker handle until then.
 */
#include "core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void on_listener_closed(uv_handle_t *h)
{
    listener *l = h->data;
    broker *b = l->b;
    if (l->path)
        (void)unlink(l->path);
    free(l->path);
    free(l);
    broker__handle_closed(b);
}

static void on_dropped_closed(uv_handle_t *h)
{
    free(h);
}

void net__drop(broker *b, uv_stream_t *server)
{
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t)
        return; /* it stays on the backlog: the next accept tries again */
    uv_tcp_init(b->loop, t);
    (void)uv_accept(server, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, on_dropped_closed);
    broker__log(b, BROKER_LOG_ERROR, BROKER_EV_ACCEPT, 0,
                "out of memory accepting a connection");
}

static void on_connection(uv_stream_t *server, int status)
{
    listener *l = server->data;
    broker *b = l->b;
    if (status < 0) {
        broker__log(b, BROKER_LOG_WARN, BROKER_EV_ACCEPT, 0, "accept: %s",
                    uv_strerror(status));
        return;
    }
    if (b->stopping)
        return;
    b->net.on_accept(b, server, l->kind);
}

static int parse_address(const char *host, int port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (strchr(host, ':'))
        return uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss);
    return uv_ip4_addr(host, port, (struct sockaddr_in *)ss);
}

static int bound_port_of(uv_tcp_t *tcp)
{
    struct sockaddr_storage got;
    int len = sizeof got;
    if (uv_tcp_getsockname(tcp, (struct sockaddr *)&got, &len) != 0)
        return 0;
    return ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                           : ((struct sockaddr_in *)&got)->sin_port);
}

const net_transport *net__transport(int kind)
{
    switch (kind) {
    case LISTEN_WS: return net__ws();
    case LISTEN_TLS: return net__tls();
    case LISTEN_WSS: return net__wss();
    case LISTEN_UNIX: return net__unix();
    default: return net__tcp();
    }
}

broker_err net__listen(broker *b, const char *host, int port, int kind, int verify,
                       int *bound_port)
{
    struct sockaddr_storage ss;
    if (parse_address(host, port, &ss) != 0)
        return BROKER_E_ADDRESS;
    listener *l = calloc(1, sizeof *l);
    if (!l)
        return BROKER_E_NOMEM;
    l->b = b;
    l->kind = kind;
    l->verify = verify;
    uv_tcp_init(b->loop, &l->tcp);
    l->tcp.data = l;
    b->handles_open++;
    int rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection);
    if (rc != 0) {
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_LISTEN, 0, "listen on %s:%d: %s", host,
                    port, uv_strerror(rc));
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
        return BROKER_E_LISTEN;
    }
    l->port = bound_port_of(&l->tcp);
    l->next = b->net.listeners;
    b->net.listeners = l;
    if (bound_port)
        *bound_port = l->port;
    static const char *const what[] = { "", " (WebSocket)", " (Flash policy)", " (TLS)",
                                        " (WebSocket over TLS)", "" };
    broker__log(b, BROKER_LOG_INFO, BROKER_EV_LISTEN, 0, "listening on %s:%d%s", host, l->port,
                what[kind]);
    return BROKER_OK;
}

/* l's handle is initialised (and counted): listen, or close it and say why. */
static broker_err start(listener *l, int rc, const char *addr)
{
    broker *b = l->b;
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection);
    if (rc != 0) {
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_LISTEN, 0, "listen on %s: %s", addr,
                    uv_strerror(rc));
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
        return BROKER_E_LISTEN;
    }
    l->next = b->net.listeners;
    b->net.listeners = l;
    broker__log(b, BROKER_LOG_INFO, BROKER_EV_LISTEN, 0, "listening on %s", addr);
    return BROKER_OK;
}

/* A socket file at path: 0 when there is none or it was left by a process that is gone
 * (removed), -1 with errno when it is something else or a live socket (EADDRINUSE). */
static int clear_stale(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISSOCK(st.st_mode)) {
        errno = EEXIST;
        return -1;
    }
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    int err = errno;
    close(fd);
    if (rc == 0 || err != ECONNREFUSED) {
        errno = rc == 0 ? EADDRINUSE : err;
        return -1;
    }
    return unlink(path);
}

broker_err net__listen_unix(broker *b, const char *path, int mode)
{
    struct sockaddr_un sa;
    char addr[sizeof sa.sun_path + 8];
    if (!*path || strlen(path) >= sizeof sa.sun_path)
        return BROKER_E_ADDRESS;
    snprintf(addr, sizeof addr, "unix:%s", path);
    if (clear_stale(path) != 0) {
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_LISTEN, 0, "listen on %s: %s", addr,
                    errno == EEXIST ? "a file that is not a socket is in the way"
                                    : strerror(errno));
        return BROKER_E_LISTEN;
    }
    listener *l = calloc(1, sizeof *l);
    char *copy = strdup(path);
    if (!l || !copy) {
        free(l);
        free(copy);
        return BROKER_E_NOMEM;
    }
    l->b = b;
    l->kind = LISTEN_UNIX;
    uv_pipe_init(b->loop, &l->pipe, 0);
    l->pipe.data = l;
    b->handles_open++;
    int rc = uv_pipe_bind(&l->pipe, path);
    if (rc == 0) {
        l->path = copy; /* ours now: removed at close */
        if (chmod(path, (mode_t)mode) != 0)
            rc = uv_translate_sys_error(errno);
    } else {
        free(copy);
    }
    return start(l, rc, addr);
}

broker_err net__listen_fd(broker *b, int fd, int *bound_port)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int on = 0;
    socklen_t olen = sizeof on;
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &olen) != 0 || !on)
        return BROKER_E_INVALID; /* not a listening socket */
    listener *l = calloc(1, sizeof *l);
    if (!l)
        return BROKER_E_NOMEM;
    l->b = b;
    char addr[64];
    int rc;
    if (ss.ss_family == AF_UNIX) {
        l->kind = LISTEN_UNIX;
        uv_pipe_init(b->loop, &l->pipe, 0);
        rc = uv_pipe_open(&l->pipe, fd);
        snprintf(addr, sizeof addr, "fd %d (unix)", fd);
    } else {
        l->kind = LISTEN_STOMP;
        uv_tcp_init(b->loop, &l->tcp);
        rc = uv_tcp_open(&l->tcp, fd);
        l->port = rc == 0 ? bound_port_of(&l->tcp) : 0;
        snprintf(addr, sizeof addr, "fd %d (port %d)", fd, l->port);
    }
    l->tcp.data = l;
    b->handles_open++;
    if (bound_port)
        *bound_port = l->port;
    return start(l, rc, addr);
}

void net__close_listeners(broker *b)
{
    while (b->net.listeners) {
        listener *l = b->net.listeners;
        b->net.listeners = l->next;
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
    }
}
