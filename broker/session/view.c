/* view.c: what the management API sees of connections, and its one action on them.
 *
 * Read-only walks over the broker's list of conns; the counters are kept in place (bytes
 * read where a read lands, bytes written by the stream). Closing a connection goes through
 * conn__fail, the one ERROR path, so the client is told why.
 */
#include "core.h"

#include <stdio.h>

static conn *listed(conn *c)
{
    while (c && (c->detached || c->doomed))
        c = c->next;
    return c;
}

conn *session__conn_first(broker *b)
{
    return listed(b->sess.conns);
}

conn *session__conn_next(conn *c)
{
    return listed(c->next);
}

conn *session__conn_find(broker *b, uint64_t id)
{
    for (conn *c = session__conn_first(b); c; c = session__conn_next(c))
        if (c->id == id)
            return c;
    return NULL;
}

static void peer_name(const conn *c, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[64] = "?";
    int port = 0;
    snprintf(out, cap, "?");
    if (uv_tcp_getpeername(&c->io.tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_UNIX) {
        snprintf(out, cap, "unix");
    } else if (ss.ss_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *)&ss, ip, sizeof ip);
        port = ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
        snprintf(out, cap, "[%s]:%d", ip, port);
    } else {
        uv_ip4_name((const struct sockaddr_in *)&ss, ip, sizeof ip);
        port = ntohs(((const struct sockaddr_in *)&ss)->sin_port);
        snprintf(out, cap, "%s:%d", ip, port);
    }
}

void session__conn_view(const conn *c, session_conn_view *v)
{
    static const char *const states[] = { "connecting", "open", "closing" };
    static const char *const versions[] = { "1.0", "1.1", "1.2" };
    *v = (session_conn_view){ .id = c->id, .login = c->login, .transport = c->io.tp->name,
                              .state = states[c->state],
                              .version = c->state == CS_CONNECTING ? NULL
                                                                   : versions[c->ep.version],
                              .since = c->since, .bytes_in = c->bytes_in,
                              .bytes_out = c->io.written, .subscriptions = c->ep.nsubs };
    peer_name(c, v->peer, sizeof v->peer);
}

const sub *session__conn_subs(const conn *c)
{
    return c->ep.subs;
}

void session__conn_kill(conn *c, const char *why)
{
    conn__fail(c, BROKER_E_STATE, NULL, why);
}
