/* durable_id.c: which durable topic subscription a SUBSCRIBE or UNSUBSCRIBE names, in the
 * dialects clients already send (the README's "Durable topic subscriptions"):
 *   ActiveMQ  activemq.subscriptionName:NAME, with client-id on CONNECT
 *   Artemis   durable-subscription-name:NAME (or durable-subscriber-name, or
 *             subscription-name), with client-id on the frame or on CONNECT
 *   RabbitMQ  durable:true (auto-delete:false): the name is x-queue-name, else the id;
 *             client-id on CONNECT when there is one
 *   Apollo    persistent:true: the name is the id; client-id on CONNECT when there is one
 * On UNSUBSCRIBE the same headers remove the subscription for good. A backend that holds
 * no durable subscriptions (one embedded, not memory, sqlite or postgres) refuses them here,
 * naming the header.
 */
#include "core.h"

#include <string.h>

/* The headers that name a subscription, in the order of precedence Artemis documents. */
static const char *const named[] = {
    "durable-subscriber-name",
    "durable-subscription-name",
    "activemq.subscriptionName",
    "subscription-name",
};

static int is_true(const stomp_frame *f, const char *name)
{
    const char *v = stomp_frame_header(f, name, NULL);
    return v && strcmp(v, "true") == 0;
}

/* (client-id, name) from a header that names the subscription: 1, or -1 (an ERROR set). */
static int by_name(conn *c, const stomp_frame *f, const char *cmd, const char *h,
                   const char *v, durable_ident *out)
{
    const char *fcid = stomp_frame_header(f, "client-id", NULL);
    const char *cid = fcid && *fcid ? fcid : c->client_id;
    if (!*v) {
        conn__set_error(c, "%s header %s is empty: it names a durable subscription", cmd, h);
        return -1;
    }
    if (!cid) {
        conn__set_error(c, "%s header %s needs a client-id (a CONNECT header): a durable "
                        "subscription is named by client-id and name", cmd, h);
        return -1;
    }
    *out = (durable_ident){ cid, v, h };
    return 1;
}

/* RabbitMQ's durable:true and Apollo's persistent:true: 1, 0 (neither), or -1. */
static int by_flag(conn *c, const stomp_frame *f, const char *cmd, int subscribe,
                   durable_ident *out)
{
    const char *xq = stomp_frame_header(f, "x-queue-name", NULL);
    int dur = is_true(f, "durable"), pers = is_true(f, "persistent");
    if (xq && !dur) {
        conn__set_error(c, "%s header x-queue-name names a durable subscription: it needs "
                        "durable:true", cmd);
        return -1;
    }
    if (!dur && !pers)
        return 0;
    const char *h = dur ? "durable" : "persistent";
    if (dur && subscribe && is_true(f, "auto-delete")) {
        conn__set_error(c, "SUBSCRIBE header durable:true with auto-delete:true is not "
                        "supported: a subscription deleted with its subscriber is not durable "
                        "(send auto-delete:false)");
        return -1;
    }
    const char *id = stomp_frame_header(f, "id", NULL);
    const char *name = xq && *xq ? xq : id;
    if (!name || !*name) {
        conn__set_error(c, "%s header %s:true names the durable subscription by the id "
                        "header%s: there is none", cmd, h, dur ? " or x-queue-name" : "");
        return -1;
    }
    *out = (durable_ident){ c->client_id ? c->client_id : "", name, h };
    return 1;
}

int handle__durable_ident(conn *c, const stomp_frame *f, int subscribe, durable_ident *out)
{
    const char *cmd = subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE";
    int r = 0;
    for (size_t i = 0; i < sizeof named / sizeof named[0] && !r; i++) {
        const char *v = stomp_frame_header(f, named[i], NULL);
        if (v)
            r = by_name(c, f, cmd, named[i], v, out);
    }
    if (!r)
        r = by_flag(c, f, cmd, subscribe, out);
    if (r > 0 && strcmp(c->b->st->name, "memory") != 0 &&
        strcmp(c->b->st->name, "sqlite") != 0 && strcmp(c->b->st->name, "postgres") != 0) {
        conn__set_error(c, "%s header %s is not supported on the %s store: durable topic "
                        "subscriptions are kept by the memory, sqlite and postgres stores",
                        cmd, out->header, c->b->st->name);
        return -1;
    }
    return r;
}
