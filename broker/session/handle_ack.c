/* handle_ack.c: ACK and NACK.
 *
 * The delivery is found by id (the 1.2 ack header) or by message-id (1.0/1.1, narrowed
 * by subscription when given). In client mode the effect is cumulative. Inside a
 * transaction only the delivery's tag is remembered; COMMIT settles it. A NACK with
 * requeue:false (RabbitMQ's header) rejects: the message is dead-lettered at once.
 */
#include "core.h"

#include <string.h>

/* The headers ACK/NACK reads, found in one pass (the first of a repeated name wins). */
typedef struct ack_hdrs {
    const char *id, *msgid, *subid, *txid, *rid, *requeue;
    size_t rid_len;
} ack_hdrs;

static void scan(const stomp_frame *f, ack_hdrs *a)
{
    memset(a, 0, sizeof *a);
    for (size_t i = 0; i < f->nheaders; i++) {
        const stomp_header *h = &f->headers[i];
        switch (h->name_len) {
        case 2:
            if (!a->id && memcmp(h->name, "id", 2) == 0)
                a->id = h->value;
            break;
        case 7:
            if (!a->rid && memcmp(h->name, "receipt", 7) == 0) {
                a->rid = h->value;
                a->rid_len = h->value_len;
            } else if (!a->requeue && memcmp(h->name, "requeue", 7) == 0) {
                a->requeue = h->value;
            }
            break;
        case 10:
            if (!a->msgid && memcmp(h->name, "message-id", 10) == 0)
                a->msgid = h->value;
            break;
        case 11:
            if (!a->txid && memcmp(h->name, "transaction", 11) == 0)
                a->txid = h->value;
            break;
        case 12:
            if (!a->subid && memcmp(h->name, "subscription", 12) == 0)
                a->subid = h->value;
            break;
        default: break;
        }
    }
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A tag is decimal digits only; anything else (or more than 64 bits) names no delivery.
 * Nineteen digits cannot overflow: only a twentieth is checked. */
static int parse_tag(const char *s, uint64_t *out)
{
    if (!is_digit(*s))
        return -1;
    while (*s == '0' && is_digit(s[1]))
        s++;
    const char *p = s;
    uint64_t v = 0;
    while (is_digit(*p) && p - s < 19)
        v = v * 10 + (unsigned)(*p++ - '0');
    if (is_digit(*p)) {
        unsigned d = (unsigned)(*p++ - '0');
        if (v > UINT64_MAX / 10 || (v == UINT64_MAX / 10 && d > UINT64_MAX % 10))
            return -1;
        v = v * 10 + d;
    }
    if (*p)
        return -1;
    *out = v;
    return 0;
}

static delivery *lookup(conn *c, const ack_hdrs *a)
{
    if (a->id && c->ep.version == STOMP_V12) {
        uint64_t tag;
        return parse_tag(a->id, &tag) == 0 ? sub__find_tag(&c->ep, tag) : NULL;
    }
    const char *msgid = a->msgid ? a->msgid : a->id;
    if (!msgid)
        return NULL;
    return sub__find_msgid(&c->ep, msgid, a->subid);
}

broker_err handle__ack(conn *c, const stomp_frame *f)
{
    broker *b = c->b;
    int nack = f->cmd == STOMP_CMD_NACK;
    if (nack && c->ep.version == STOMP_V10) {
        conn__set_error(c, "NACK is not part of STOMP 1.0");
        return BROKER_E_PROTOCOL;
    }
    ack_hdrs a;
    scan(f, &a);
    int how = nack ? SETTLE_NACK : SETTLE_ACK;
    if (nack && a.requeue && strcmp(a.requeue, "true") != 0) {
        if (strcmp(a.requeue, "false") != 0) {
            conn__set_error(c, "NACK header requeue:%.64s is not true or false", a.requeue);
            return BROKER_E_PROTOCOL;
        }
        how = SETTLE_REJECT;
    }
    if (!a.id && !a.msgid) {
        conn__set_error(c, "%s without an id", nack ? "NACK" : "ACK");
        return BROKER_E_PROTOCOL;
    }
    delivery *d = lookup(c, &a);
    if (!d) {
        conn__set_error(c, "%s of an unknown message", nack ? "NACK" : "ACK");
        return BROKER_E_NOTFOUND;
    }
    int needs_commit = 0;
    if (a.txid) {
        tx *t = tx__find(c, a.txid);
        if (!t) {
            conn__set_error(c, "unknown transaction");
            return BROKER_E_NOTFOUND;
        }
        broker_err rc = tx__add_ack(c, t, d->link.id, how);
        if (rc != BROKER_OK)
            return rc;
    } else {
        uint64_t w = commit__writes(b);
        /* A receipt goes out before the MESSAGEs the settling lets in. */
        sub__settle(b, d, how, a.rid != NULL);
        needs_commit = commit__writes(b) != w;
    }
    return a.rid ? receipt__queue(c, a.rid, a.rid_len, needs_commit) : BROKER_OK;
}
