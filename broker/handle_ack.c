/* handle_ack.c: ACK and NACK.
 *
 * The delivery is found by id (the 1.2 ack header) or by message-id (1.0/1.1, narrowed
 * by subscription when given). In client mode the effect is cumulative. Inside a
 * transaction only the delivery's tag is remembered; COMMIT settles it.
 */
#include "internal.h"

#include <stdlib.h>

static delivery *lookup(conn *c, const stomp_frame *f)
{
    const char *id = stomp_frame_header(f, "id", NULL);
    if (id && c->version == STOMP_V12) {
        char *end;
        if (*id < '0' || *id > '9')
            return NULL;
        unsigned long long tag = strtoull(id, &end, 10);
        return *end ? NULL : sub__find_tag(c, tag);
    }
    const char *msgid = stomp_frame_header(f, "message-id", NULL);
    if (!msgid)
        msgid = id;
    if (!msgid)
        return NULL;
    return sub__find_msgid(c, msgid, stomp_frame_header(f, "subscription", NULL));
}

broker_err handle__ack(conn *c, const stomp_frame *f)
{
    broker *b = c->b;
    int nack = f->cmd == STOMP_CMD_NACK;
    if (nack && c->version == STOMP_V10) {
        conn__set_error(c, "NACK is not part of STOMP 1.0");
        return BROKER_E_PROTOCOL;
    }
    if (!stomp_frame_header(f, "id", NULL) && !stomp_frame_header(f, "message-id", NULL)) {
        conn__set_error(c, "%s without an id", nack ? "NACK" : "ACK");
        return BROKER_E_PROTOCOL;
    }
    delivery *d = lookup(c, f);
    if (!d) {
        conn__set_error(c, "%s of an unknown message", nack ? "NACK" : "ACK");
        return BROKER_E_NOTFOUND;
    }
    const char *txid = stomp_frame_header(f, "transaction", NULL);
    if (txid) {
        tx *t = tx__find(c, txid);
        if (!t) {
            conn__set_error(c, "unknown transaction");
            return BROKER_E_NOTFOUND;
        }
        broker_err rc = tx__add_ack(c, t, d->tag, nack);
        return rc ? rc : handle__receipt(c, f, 0);
    }
    uint64_t w = b->writes;
    sub__settle(b, d, nack);
    return handle__receipt(c, f, b->writes != w);
}
