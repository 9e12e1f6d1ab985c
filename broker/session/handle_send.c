/* handle_send.c: SEND: to a transaction's buffer, a topic's subscribers, or a queue in the
 * store. A queued SEND's RECEIPT waits for the store commit of its batch. A SEND to a full
 * queue whose policy blocks is not taken: the session holds it (wait_queue) and tries it
 * again when the queue may have room. A /temp-queue/ destination or reply-to names the
 * connection's temporary queue (route/tempq.c): its broker-unique name goes on instead.
 */
#include "core.h"

#include <string.h>

static broker_err send_to(conn *c, const stomp_frame *f, const char *dest, size_t dlen,
                       int own, const char *txid, const char *rid, size_t rlen);

/* Equal names, by 8-byte words (the last one overlapping the one before it): this runs for
 * every SEND under an ACL. */
static inline int same_name(const char *a, const char *b, size_t n)
{
    uint64_t x, y;
    if (n < 8) {
        for (; n; n--)
            if (*a++ != *b++)
                return 0;
        return 1;
    }
    for (size_t i = 0; i + 8 < n; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y)
            return 0;
    }
    memcpy(&x, a + n - 8, 8);
    memcpy(&y, b + n - 8, 8);
    return x == y;
}

/* May this SEND go? The destination last granted is compared here, inline: a producer
 * sending to one destination pays a few instructions per message; permit.c decides the
 * rest (and caches it). */
static inline broker_err may_send(conn *c, const char *dest, size_t dlen)
{
    const route_state *r = &c->b->route;
    const struct permit_slot *s = c->permit_last;
    if (!r->acl || (s && s->len == dlen && s->gen == r->acl_gen && s->name &&
                    same_name(s->name, dest, dlen)))
        return BROKER_OK;
    return permit__send(c, dest, dlen);
}

broker_err handle__send(conn *c, const stomp_frame *f)
{
    /* The headers SEND needs, in one pass (the first of a repeated name wins). */
    const char *dest = NULL, *txid = NULL, *rid = NULL;
    size_t dlen = 0, rlen = 0;
    stomp_header *reply_to = NULL;
    for (size_t i = 0; i < f->nheaders; i++) {
        stomp_header *h = &f->headers[i];
        if (h->name_len == 11) {
            if (!dest && memcmp(h->name, "destination", 11) == 0) {
                dest = h->value;
                dlen = h->value_len;
            } else if (!txid && memcmp(h->name, "transaction", 11) == 0) {
                txid = h->value;
            }
        } else if (h->name_len == 7 && !rid && memcmp(h->name, "receipt", 7) == 0) {
            rid = h->value;
            rlen = h->value_len;
        } else if (h->name_len == 8 && !reply_to && memcmp(h->name, "reply-to", 8) == 0) {
            reply_to = h;
        }
    }
    if (!dest || !dlen) {
        conn__set_error(c, "SEND without a destination");
        return BROKER_E_PROTOCOL;
    }
    /* A temporary queue: its broker-unique name travels instead, for this SEND only. */
    const char *saved = NULL;
    size_t saved_len = 0;
    int own = tempq__is_temp(dest, dlen); /* the connection's own: no grant needed */
    if (reply_to || own) {
        if (reply_to) {
            saved = reply_to->value;
            saved_len = reply_to->value_len;
        }
        broker_err rc = tempq__send(c->b, &c->ep, reply_to, &dest, &dlen,
                                    c->b->o.default_prefetch);
        if (rc != BROKER_OK)
            return rc;
    }
    broker_err rc = send_to(c, f, dest, dlen, own, txid, rid, rlen);
    if (saved) {
        reply_to->value = saved;
        reply_to->value_len = saved_len;
    }
    return rc;
}

static broker_err send_to(conn *c, const stomp_frame *f, const char *dest, size_t dlen,
                       int own, const char *txid, const char *rid, size_t rlen)
{
    msg_attrs a;
    if (headers__send_check(c->b, f, dest, dlen, &a, c->errmsg, sizeof c->errmsg))
        return BROKER_E_PROTOCOL;
    /* Checked when sent, in a transaction too (not at COMMIT). */
    broker_err rc = own ? BROKER_OK : may_send(c, dest, dlen);
    if (rc != BROKER_OK)
        return rc;
    int stored = 0;
    if (txid) {
        tx *t = tx__find(c, txid);
        if (!t) {
            conn__set_error(c, "unknown transaction");
            return BROKER_E_NOTFOUND;
        }
        rc = tx__add_send(c, t, f, dest, dlen, &a);
    } else {
        /* Without a queue limit in any policy (the common case) there is always room. */
        switch (!c->b->route.limits ? QUEUE_ROOM
                                    : queue__room(c->b, dest, dlen, f, 0, c->errmsg,
                                                  sizeof c->errmsg)) {
        case QUEUE_WAIT:
            c->wait_queue = 1;
            return BROKER_OK;
        case QUEUE_FULL:
            return BROKER_E_LIMIT;
        default:
            break;
        }
        rc = route__send_frame(c->b, f, dest, dlen, &a, &c->ep, &stored);
    }
    if (rc != BROKER_OK || !rid)
        return rc;
    return receipt__queue(c, rid, rlen, stored);
}
