/* session.c: the session layer's entry points for the broker: a new connection for each
 * accepted socket, the layer's step of the tick (login answers, teardown, resuming paused
 * conns), and closing everything at stop.
 *
 * A connection over max_connections is accepted, told why in an ERROR frame and closed,
 * so the client sees a reason rather than a reset.
 */
#include "core.h"

#include <stdlib.h>

void session__accept(broker *b, uv_stream_t *server, int kind)
{
    int over = b->stats.connections >= b->o.max_connections;
    conn *c = conn__new(b, net__transport(kind));
    if (!c) {
        net__drop(b, server);
        return;
    }
    if (net__stream_accept(&c->io, server) != 0) {
        conn__close(c);
        return;
    }
    c->policy_only = kind == LISTEN_POLICY;
    if (over) {
        b->stats.connections_refused++;
        if (kind != LISTEN_STOMP && kind != LISTEN_TLS && kind != LISTEN_UNIX) {
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

void session__tick(broker *b)
{
    login__run(b);
    while (b->sess.doomed) {
        conn *c = b->sess.doomed;
        b->sess.doomed = c->next_doomed;
        c->doomed = 0;
        conn__detach(c);
        conn__maybe_close(c);
    }
    if (b->resume_wanted) {
        /* Cleared while stopping too (nothing is resumed then): a wish left standing keeps
         * the tick busy, and the loop would spin until the last connection is gone. */
        b->resume_wanted = 0;
        if (!b->stopping)
            for (conn *c = b->sess.paused, *n; c; c = n) {
                n = c->pnext;
                conn__resume(c);
            }
    }
}

int session__busy(const broker *b)
{
    return b->sess.doomed || b->resume_wanted || login__pending(b);
}

void session__close_all(broker *b)
{
    for (conn *c = b->sess.conns; c; c = c->next) {
        if (c->refusing)
            conn__close(c); /* nothing queued for it: its refusal needs no waiting */
        else
            conn__fail(c, BROKER_E_STATE, NULL, "the server is shutting down");
    }
}

int session__idle(const broker *b)
{
    return !b->sess.conns && !b->sess.doomed && !b->sess.auth_outstanding;
}

void session__free(broker *b)
{
    free(b->sess.rbuf);
    b->sess.rbuf = NULL;
}
