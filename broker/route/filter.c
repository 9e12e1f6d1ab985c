/* filter.c: what a subscription lets through: noLocal (a topic subscriber does not get
 * the messages its own connection sent) and its selector, evaluated over the broker's view
 * of a message (selector.h's lookup): the header block the SEND carried, and the JMS fields
 * from the message itself: priority (4 when it has none), message-id, destination,
 * redelivered, the delivery mode from persistent:true. A header a selector names that the
 * block does not hold, but that every MESSAGE carries (destination, message-id,
 * redelivered), is read from the message too. Nothing here allocates.
 */
#include "core.h"

#include <string.h>

typedef struct view {
    const char *hdrs;
    size_t hlen;
    const char *dest;
    size_t dlen;
    const char *msgid;
    uint32_t redeliveries;
    uint8_t priority;
} view;

static const char *const digits[] = { "0", "1", "2", "3", "4", "5", "6", "7", "8", "9" };

static const char *field(const view *v, int f, size_t *vlen)
{
    switch (f) {
    case SEL_F_PRIORITY:
        *vlen = 1;
        return digits[v->priority <= 9 ? v->priority : 4];
    case SEL_F_MESSAGE_ID:
        *vlen = strlen(v->msgid);
        return v->msgid;
    case SEL_F_DESTINATION:
        *vlen = v->dlen;
        return v->dest;
    case SEL_F_REDELIVERED:
        *vlen = v->redeliveries ? 4 : 5;
        return v->redeliveries ? "true" : "false";
    default:
        return NULL;
    }
}

static const char *lookup(void *ctx, int f, const char *name, size_t nlen, size_t *vlen)
{
    const view *v = ctx;
    if (f == SEL_F_HEADER || f == SEL_F_DELIVERY_MODE) {
        const char *h = stomp_packed_header(v->hdrs, v->hlen, name, vlen);
        if (f == SEL_F_DELIVERY_MODE) {
            int p = h && strcmp(h, "true") == 0;
            *vlen = p ? 10 : 14;
            return p ? "PERSISTENT" : "NON_PERSISTENT";
        }
        if (h)
            return h;
        /* What every MESSAGE carries, though no SEND header holds it. */
        if (nlen == 11 && memcmp(name, "destination", 11) == 0)
            f = SEL_F_DESTINATION;
        else if (nlen == 10 && memcmp(name, "message-id", 10) == 0)
            f = SEL_F_MESSAGE_ID;
        else if (nlen == 11 && memcmp(name, "redelivered", 11) == 0)
            f = SEL_F_REDELIVERED;
        else
            return NULL;
    }
    return field(v, f, vlen);
}

int filter__topic(const sub *s, const bmsg *m, const char *msgid)
{
    if (s->no_local && s->ep && s->ep == m->origin)
        return 0;
    if (!s->selector)
        return 1;
    view v = { m->hdrs, m->hdrs_len, m->dest, m->dest_len, msgid, 0, m->attrs.priority };
    return sel__match(s->selector, lookup, &v);
}

int filter__store(void *arg, const store_msg *m)
{
    const filter_queue *fq = arg;
    char msgid[24];
    msgid[msg__u64(msgid, m->id)] = '\0';
    view v = { m->headers, m->headers_len, fq->queue, strlen(fq->queue), msgid,
               m->redeliveries, m->priority };
    return sel__match(fq->s->selector, lookup, &v);
}

int filter__durable(const sel *s, const char *hdrs, size_t hlen, const char *dest, size_t dlen,
                    uint8_t priority)
{
    /* Kept before it has a message-id: a selector on message-id sees "". */
    view v = { hdrs, hlen, dest, dlen, "", 0, priority };
    return sel__match(s, lookup, &v);
}
