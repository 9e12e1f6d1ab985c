/* handle_send.c: SEND: to a transaction's buffer, a topic's subscribers, or a queue in the
 * store. A queued SEND's RECEIPT waits for the store commit of its batch.
 */
#include "internal.h"

broker_err handle__send(conn *c, const stomp_frame *f)
{
    size_t dlen;
    const char *dest = stomp_frame_header(f, "destination", &dlen);
    if (!dest || !dlen) {
        conn__set_error(c, "SEND without a destination");
        return BROKER_E_PROTOCOL;
    }
    const char *txid = stomp_frame_header(f, "transaction", NULL);
    if (txid) {
        tx *t = tx__find(c, txid);
        if (!t) {
            conn__set_error(c, "unknown transaction");
            return BROKER_E_NOTFOUND;
        }
        broker_err rc = tx__add_send(c, t, f, dest, dlen);
        return rc ? rc : handle__receipt(c, f, 0);
    }
    int stored = 0;
    broker_err rc = router__send_frame(c->b, f, dest, dlen, &stored);
    if (rc != BROKER_OK)
        return rc;
    return handle__receipt(c, f, stored);
}
