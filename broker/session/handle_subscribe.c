/* handle_subscribe.c: SUBSCRIBE and UNSUBSCRIBE.
 *
 * A subscription id is unique per connection (1.0 clients that give none get the
 * destination as id, so UNSUBSCRIBE by destination finds it). The prefetch window comes
 * from prefetch-count or activemq.prefetchSize, default and ceiling from the options.
 * exclusive:true or activemq.exclusive:true asks for an exclusive consumer of a queue,
 * browser:true for a queue browser, selector for a message selector (compiled here: a
 * malformed one is an ERROR naming its position), activemq.noLocal:true or no-local:true
 * for a topic subscriber that does not get its own connection's messages. A destination
 * may be a wildcard pattern (route/wild.h), but not for an exclusive consumer or a
 * browser, which name one queue. On a topic in a client ack mode the window holds
 * messages back until acks make room (route/window.c), by count and, with Artemis's
 * consumer-window-size, by bytes.
 * Removing a subscription returns its unacked messages to their queue. A SUBSCRIBE that
 * names a durable subscription (durable_id.c) consumes its backlog queue instead
 * (route/durable.c); an UNSUBSCRIBE that names one removes it for good.
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

/* The ack header: ACK_* or -1 (an ERROR set). */
static int ack_mode(conn *c, const stomp_frame *f)
{
    const char *ack = stomp_frame_header(f, "ack", NULL);
    if (!ack || strcmp(ack, "auto") == 0)
        return ACK_AUTO;
    if (strcmp(ack, "client") == 0)
        return ACK_CLIENT;
    if (strcmp(ack, "client-individual") == 0)
        return ACK_INDIVIDUAL;
    conn__set_error(c, "unknown ack mode");
    return -1;
}

/* The prefetch window: 0 (an ERROR set) or at least 1. */
static size_t prefetch(conn *c, const stomp_frame *f)
{
    const broker_options *o = &c->b->o;
    size_t window = o->default_prefetch;
    const char *pf = stomp_frame_header(f, "prefetch-count", NULL);
    if (!pf)
        pf = stomp_frame_header(f, "activemq.prefetchSize", NULL);
    if (pf) {
        if (parse_count(pf, &window) != 0) {
            conn__set_error(c, "malformed prefetch-count");
            return 0;
        }
        if (window == 0)
            window = o->default_prefetch;
    }
    if (window > o->max_unacked)
        window = o->max_unacked;
    return window ? window : 1;
}

/* The SUBSCRIBE headers that ask for a kind of queue subscription: (header, SUB_ flag,
 * what it makes). */
static const struct kind {
    const char *header;
    int flag;
    const char *what;
} kinds[] = {
    { "exclusive", SUB_EXCLUSIVE, "exclusive consumers" },
    { "activemq.exclusive", SUB_EXCLUSIVE, "exclusive consumers" },
    { "browser", SUB_BROWSER, "queue browsers" },
};

/* noLocal: SUB_NO_LOCAL, 0, or -1 (an ERROR set: not true or false, or on a queue). */
static int no_local(conn *c, const stomp_frame *f, const char *dname, size_t dlen)
{
    static const char *const names[] = { "activemq.noLocal", "no-local" };
    int flag = 0;
    for (size_t i = 0; i < 2; i++) {
        const char *v = stomp_frame_header(f, names[i], NULL);
        if (!v || strcmp(v, "false") == 0)
            continue;
        if (strcmp(v, "true") != 0) {
            conn__set_error(c, "SUBSCRIBE header %s:%.64s is not true or false", names[i], v);
            return -1;
        }
        if (!dest__is_topic(dname, dlen)) {
            conn__set_error(c, "%s:true is for topics: a queue message goes to one consumer "
                            "whoever sent it", names[i]);
            return -1;
        }
        flag = SUB_NO_LOCAL;
    }
    return flag;
}

/* The SUB_ flags the headers ask for, or -1 (an ERROR set: a value other than true or
 * false, such a subscription to a topic or a wildcard, or a browser that is also
 * exclusive). */
static int sub_flags(conn *c, const stomp_frame *f, const char *dname, size_t dlen)
{
    int flags = no_local(c, f, dname, dlen);
    if (flags < 0)
        return -1;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const char *v = stomp_frame_header(f, kinds[i].header, NULL);
        if (!v || strcmp(v, "false") == 0)
            continue;
        if (strcmp(v, "true") != 0) {
            conn__set_error(c, "SUBSCRIBE header %s:%.64s is not true or false",
                            kinds[i].header, v);
            return -1;
        }
        if (dest__is_topic(dname, dlen)) {
            conn__set_error(c, "%s are for queues, not the topic %.*s", kinds[i].what,
                            (int)(dlen > 100 ? 100 : dlen), dname);
            return -1;
        }
        if (wild__is_pattern(dname, dlen)) {
            conn__set_error(c, "%s name one queue, not the wildcard %.*s", kinds[i].what,
                            (int)(dlen > 100 ? 100 : dlen), dname);
            return -1;
        }
        flags |= kinds[i].flag;
    }
    if ((flags & (SUB_EXCLUSIVE | SUB_BROWSER)) == (SUB_EXCLUSIVE | SUB_BROWSER)) {
        conn__set_error(c, "a queue browser cannot be an exclusive consumer");
        return -1;
    }
    return flags;
}

/* The selector header compiled: 0 with *out (NULL when there is none, or it is blank, as
 * JMS says), or -1 (an ERROR set that names the position). */
static int selector(conn *c, const stomp_frame *f, sel **out)
{
    size_t len;
    const char *text = stomp_frame_header(f, "selector", &len);
    *out = NULL;
    if (!text || strspn(text, " \t\r\n\f") == len)
        return 0;
    size_t pos;
    char why[160];
    *out = sel__compile(text, len, &pos, why, sizeof why);
    if (*out)
        return 0;
    if (!pos)
        conn__set_error(c, "out of memory");
    else
        conn__set_error(c, "malformed selector at position %zu: %s", pos, why);
    return -1;
}

/* A wildcard destination must be well formed: 0, or -1 (an ERROR set). */
static int pattern_ok(conn *c, const char *dname, size_t dlen)
{
    const char *why = wild__is_pattern(dname, dlen) ? wild__check(dname, dlen) : NULL;
    if (!why)
        return 0;
    conn__set_error(c, "SUBSCRIBE destination %.*s: %s", (int)(dlen > 100 ? 100 : dlen), dname,
                    why);
    return -1;
}

/* Artemis's consumer-window-size: a topic subscription's byte window into *out (-1: none;
 * 0: one message at a time, as a window of one byte gives). 0, or -1 (an ERROR set: not a number, or a queue). */
static int byte_window(conn *c, const stomp_frame *f, const char *dname, size_t dlen,
                       size_t *out)
{
    const char *v = stomp_frame_header(f, "consumer-window-size", NULL);
    if (!v || strcmp(v, "-1") == 0)
        return 0;
    if (parse_count(v, out) != 0) {
        conn__set_error(c, "SUBSCRIBE header consumer-window-size:%.32s is not a number of "
                           "bytes or -1", v);
        return -1;
    }
    if (!dest__is_topic(dname, dlen)) {
        conn__set_error(c, "SUBSCRIBE header consumer-window-size is not supported for the "
                           "queue %.*s: byte windows are for topic subscriptions",
                        (int)(dlen > 100 ? 100 : dlen), dname);
        return -1;
    }
    if (*out == 0)
        *out = 1;
    return 0;
}

/* The durable subscription f names (durable_id.c): 1 with *di, 0 for none, -1 (an ERROR
 * set: not a topic, or a name the broker keeps for itself). */
static int durable_check(conn *c, const stomp_frame *f, const char *dname, size_t dlen,
                         durable_ident *di)
{
    int dur = handle__durable_ident(c, f, 1, di);
    if (dur < 0)
        return -1;
    if (!dur && durable__reserved(dname, dlen)) {
        headers__reserved(dname, dlen, c->errmsg, sizeof c->errmsg);
        return -1;
    }
    if (dur && !dest__is_topic(dname, dlen)) {
        conn__set_error(c, "SUBSCRIBE header %s asks for a durable topic subscription: %.*s is "
                        "not a topic", di->header, (int)(dlen > 100 ? 100 : dlen), dname);
        return -1;
    }
    return dur;
}

/* Subscribe to the backlog of the durable subscription di, created on the topic dname when
 * there is none; selector (owned) and noLocal are its definition. */
static broker_err subscribe_durable(conn *c, const stomp_frame *f, const durable_ident *di,
                                    const char *dname, size_t dlen, const char *id,
                                    size_t idlen, int mode, size_t window, int flags, sel *sl,
                                    size_t wbytes)
{
    broker *b = c->b;
    if (wbytes) {
        sel__free(sl);
        conn__set_error(c, "SUBSCRIBE header consumer-window-size is not supported on a "
                           "durable subscription: its messages come from its queue");
        return BROKER_E_PROTOCOL;
    }
    const char *seltext = sl ? stomp_frame_header(f, "selector", NULL) : NULL;
    uint64_t w = commit__writes(b);
    durable *d;
    broker_err rc = durable__subscribe(b, di->client_id, di->name, dname, dlen, sl, seltext,
                                       (flags & SUB_NO_LOCAL) != 0, &d, c->errmsg,
                                       sizeof c->errmsg);
    if (rc != BROKER_OK) {
        sel__free(sl);
        return rc;
    }
    size_t qlen;
    const char *q = durable__queue(d, &qlen);
    sub *s = sub__subscribe(b, &c->ep, q, qlen, id, idlen, mode, window, 0, NULL);
    if (!s)
        return BROKER_E_NOMEM; /* the subscription stays, collecting */
    durable__attach(b, d, s);
    return receipt__send(c, f, commit__writes(b) != w);
}

broker_err handle__subscribe(conn *c, const stomp_frame *f)
{
    broker *b = c->b;
    broker_err rc;
    size_t dlen, idlen;
    const char *dname = stomp_frame_header(f, "destination", &dlen);
    if (!dname || !dlen) {
        conn__set_error(c, "SUBSCRIBE without a destination");
        return BROKER_E_PROTOCOL;
    }
    if (headers__subscribe_refused(f, c->errmsg, sizeof c->errmsg) ||
        pattern_ok(c, dname, dlen) != 0)
        return BROKER_E_PROTOCOL;
    durable_ident di;
    int dur = durable_check(c, f, dname, dlen, &di);
    if (dur < 0)
        return BROKER_E_PROTOCOL;
    rc = permit__subscribe(c, dname, dlen);
    if (rc != BROKER_OK)
        return rc;
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
    if ((dname[1] == 't' || dname[1] == 'r') &&
        (rc = tempq__subscribe(b, &c->ep, &dname, &dlen, id, c->errmsg, sizeof c->errmsg)))
        return rc;
    int mode = ack_mode(c, f);
    size_t window = mode < 0 ? 0 : prefetch(c, f);
    int flags = window ? sub_flags(c, f, dname, dlen) : -1;
    sel *sl = NULL;
    if (flags < 0 || selector(c, f, &sl) != 0)
        return BROKER_E_PROTOCOL;
    size_t wbytes = 0;
    if (byte_window(c, f, dname, dlen, &wbytes) != 0) {
        sel__free(sl);
        return BROKER_E_PROTOCOL;
    }
    if (dur)
        return subscribe_durable(c, f, &di, dname, dlen, id, idlen, mode, window, flags, sl,
                                 wbytes);
    sub *s = sub__subscribe(b, &c->ep, dname, dlen, id, idlen, mode, window, flags, sl);
    if (!s) {
        sel__free(sl);
        return BROKER_E_NOMEM;
    }
    s->wbytes_max = wbytes;
    return receipt__send(c, f, 0);
}

broker_err handle__unsubscribe(conn *c, const stomp_frame *f)
{
    broker *b = c->b;
    durable_ident di;
    int dur = handle__durable_ident(c, f, 0, &di);
    if (dur < 0)
        return BROKER_E_PROTOCOL;
    if (dur) { /* removed for good, its live subscriber (on this connection) with it */
        uint64_t w = commit__writes(b);
        broker_err rc =
            durable__remove(b, &c->ep, di.client_id, di.name, c->errmsg, sizeof c->errmsg);
        return rc != BROKER_OK ? rc : receipt__send(c, f, commit__writes(b) != w);
    }
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
        if (!s)
            s = sub__find(&c->ep, dname); /* 1.0: the id is the destination as given */
    }
    if (!s) {
        conn__set_error(c, "no such subscription");
        return BROKER_E_NOTFOUND;
    }
    uint64_t w = commit__writes(b);
    sub__unsubscribe(b, s);
    return receipt__send(c, f, commit__writes(b) != w);
}
