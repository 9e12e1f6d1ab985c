/* handle_disconnect.c: DISCONNECT: the RECEIPT (after any held ones) is flushed, then the
 * connection closes; nothing after DISCONNECT is read.
 */
#include "core.h"

broker_err handle__disconnect(conn *c, const stomp_frame *f)
{
    broker_err rc = receipt__send(c, f, 0);
    if (rc != BROKER_OK)
        return rc;
    conn__end(c);
    return BROKER_OK;
}
