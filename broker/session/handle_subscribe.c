/* handle_subscribe.c: SUBSCRIBE and UNSUBSCRIBE.
 *
 * A subscription id is unique per connection (1.0 clients that give none get the
 * destination as id, so UNSUBSCRIBE by destination finds it). The prefetch window comes
 * from prefetch-count or activemq.prefetchSize, default and ceiling from the options.
 * Removing a subscription returns its unacked messages to their queue.
 */
#include "core.h"

#include <string.h>

static int parse_count(const char *s, size_t *out)
{
    size_t v = 0;
    int digits = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || ++digits > 9)
            return -1;
        v = v * 10 + (size_t)(*s - '0');
    }
    if (!digits)
        return -1;
    *out = v;
    return 0;
}

broker_err handle__subscribe(conn *c, const stomp_frame *f)
{
    broker *b = c->b;
    size_t dlen, idlen;
    const char *dname = stomp_frame_header(f, "destination", &dlen);
    if (!dname || !dlen) {
        conn__set_error(c, "SUBSCRIBE without a destination");
        return BROKER_E_PROTOCOL;
    }
    if (headers__subscribe_refused(f, c->errmsg, sizeof c->errmsg) ||
        headers__wildcard(dname, dlen, c->errmsg, sizeof c->errmsg))
        return BROKER_E_PROTOCOL;
    const char *id = stomp_frame_header(f, "id", &idlen);
    if (!id) {
        if (c->ep.version != STOMP_V10) {
            conn__set_error(c, "SUBSCRIBE without an id");
            return BROKER_E_PROTOCOL;
        }
        id = dname;
        idlen = dlen;
    }
    if (!stomp_message_head_size(id, idlen, NULL, 0, c->ep.version)) {
        conn__set_error(c, "subscription id cannot be carried in a MESSAGE of this STOMP "
                           "version (a line break)");
        return BROKER_E_PROTOCOL;
    }
    if (sub__find(&c->ep, id)) {
        conn__set_error(c, "duplicate subscription id");
        return BROKER_E_PROTOCOL;
    }
    if (c->ep.nsubs >= b->o.max_subscriptions) {
        conn__set_error(c, "too many subscriptions on this connection");
        return BROKER_E_LIMIT;
    }
    int mode = ACK_AUTO;
    const char *ack = stomp_frame_header(f, "ack", NULL);
    if (!ack || strcmp(ack, "auto") == 0)
        mode = ACK_AUTO;
    else if (strcmp(ack, "client") == 0)
        mode = ACK_CLIENT;
    else if (strcmp(ack, "client-individual") == 0)
        mode = ACK_INDIVIDUAL;
    else {
        conn__set_error(c, "unknown ack mode");
        return BROKER_E_PROTOCOL;
    }
    size_t window = b->o.default_prefetch;
    const char *pf = stomp_frame_header(f, "prefetch-count", NULL);
    if (!pf)
        pf = stomp_frame_header(f, "activemq.prefetchSize", NULL);
    if (pf) {
        if (parse_count(pf, &window) != 0) {
            conn__set_error(c, "malformed prefetch-count");
            return BROKER_E_PROTOCOL;
        }
        if (window == 0)
            window = b->o.default_prefetch;
    }
    if (window > b->o.max_unacked)
        window = b->o.max_unacked;
    if (window == 0)
        window = 1;
    if (!sub__subscribe(b, &c->ep, dname, dlen, id, idlen, mode, window))
        return BROKER_E_NOMEM;
    return receipt__send(c, f, 0);
}

broker_err handle__unsubscribe(conn *c, const stomp_frame *f)
{
    broker *b = c->b;
    const char *id = stomp_frame_header(f, "id", NULL);
    sub *s = NULL;
    if (id) {
        s = sub__find(&c->ep, id);
    } else {
        size_t dlen;
        const char *dname = stomp_frame_header(f, "destination", &dlen);
        if (!dname) {
            conn__set_error(c, "UNSUBSCRIBE without an id");
            return BROKER_E_PROTOCOL;
        }
        s = sub__find_dest(&c->ep, dname, dlen);
    }
    if (!s) {
        conn__set_error(c, "no such subscription");
        return BROKER_E_NOTFOUND;
    }
    uint64_t w = commit__writes(b);
    sub__unsubscribe(b, s);
    return receipt__send(c, f, commit__writes(b) != w);
}
