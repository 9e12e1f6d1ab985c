/* listen.c: listeners (IPv4 and IPv6) and accepting connections: STOMP over TCP, STOMP
 * over WebSocket, and Flash policy ports (a conn that only answers <policy-file-request/>).
 *
 * A connection over max_connections is accepted, told why in an ERROR frame and closed,
 * so the client sees a reason rather than a reset. Listener memory is freed in its close
 * callback.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static void on_listener_closed(uv_handle_t *h)
{
    listener *l = h->data;
    broker *b = l->b;
    free(l);
    broker__handle_closed(b);
}

static void on_refused_closed(uv_handle_t *h)
{
    free(h);
}

static void on_connection(uv_stream_t *server, int status)
{
    listener *l = server->data;
    broker *b = l->b;
    if (status < 0) {
        broker__log(b, BROKER_LOG_WARN, BROKER_EV_ACCEPT, 0, "accept: %s", uv_strerror(status));
        return;
    }
    if (b->stopping)
        return;
    int over = b->stats.connections >= b->o.max_connections;
    conn *c = conn__new(b, l->kind == LISTEN_WS ? transport__ws() : transport__tcp());
    if (!c) {
        /* Out of memory: take the connection off the backlog and drop it. */
        uv_tcp_t *t = malloc(sizeof *t);
        if (!t)
            return;
        uv_tcp_init(b->loop, t);
        if (uv_accept(server, (uv_stream_t *)t) != 0) {
            uv_close((uv_handle_t *)t, on_refused_closed);
            return;
        }
        uv_close((uv_handle_t *)t, on_refused_closed);
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_ACCEPT, 0,
                    "out of memory accepting a connection");
        return;
    }
    if (c->tp->accept(c, server) != 0) {
        conn__close(c);
        return;
    }
    c->policy_only = l->kind == LISTEN_POLICY;
    if (over) {
        b->stats.connections_refused++;
        if (l->kind != LISTEN_STOMP) {
            /* No STOMP session to tell it in: just close. */
            conn__close(c);
            return;
        }
        conn__fail(c, BROKER_E_LIMIT, NULL, "too many connections");
        return;
    }
    if (conn__start(c) != 0)
        conn__close(c);
}

static broker_err listen_kind(broker *b, const char *host, int port, int kind,
                              int *bound_port)
{
    if (!b || !host || port < 0 || port > 65535)
        return BROKER_E_INVALID;
    if (b->stopping)
        return BROKER_E_STATE;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(host, ':')) {
        if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
            return BROKER_E_ADDRESS;
    } else if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0) {
        return BROKER_E_ADDRESS;
    }
    listener *l = calloc(1, sizeof *l);
    if (!l)
        return BROKER_E_NOMEM;
    l->b = b;
    l->kind = kind;
    uv_tcp_init(b->loop, &l->tcp);
    l->tcp.data = l;
    b->handles_open++;
    int rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection);
    if (rc != 0) {
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_LISTEN, 0, "listen on %s:%d: %s", host, port,
                    uv_strerror(rc));
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
        return BROKER_E_LISTEN;
    }
    struct sockaddr_storage got;
    int len = sizeof got;
    if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&got, &len) == 0)
        l->port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                  : ((struct sockaddr_in *)&got)->sin_port);
    l->next = b->listeners;
    b->listeners = l;
    if (bound_port)
        *bound_port = l->port;
    static const char *const what[] = { "", " (WebSocket)", " (Flash policy)" };
    broker__log(b, BROKER_LOG_INFO, BROKER_EV_LISTEN, 0, "listening on %s:%d%s", host, l->port,
                what[kind]);
    return BROKER_OK;
}

broker_err broker_listen(broker *b, const char *host, int port, int *bound_port)
{
    return listen_kind(b, host, port, LISTEN_STOMP, bound_port);
}

broker_err broker_listen_ws(broker *b, const char *host, int port, int *bound_port)
{
    return listen_kind(b, host, port, LISTEN_WS, bound_port);
}

broker_err broker_listen_policy(broker *b, const char *host, int port, int *bound_port)
{
    return listen_kind(b, host, port, LISTEN_POLICY, bound_port);
}

void listen__close_all(broker *b)
{
    while (b->listeners) {
        listener *l = b->listeners;
        b->listeners = l->next;
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
    }
}
