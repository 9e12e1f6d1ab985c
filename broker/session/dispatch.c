/* dispatch.c: frame dispatch by command, and the one place a handler's failure becomes
 * an ERROR frame and a close.
 *
 * Handlers return a broker_err and may leave a message in c->errmsg; nothing else in the
 * broker sends ERROR for a frame. Before CONNECT succeeded only CONNECT/STOMP is accepted.
 */
#include "core.h"

static broker_err reject(conn *c, const char *why)
{
    conn__set_error(c, "%s", why);
    return BROKER_E_PROTOCOL;
}

void dispatch__frame(conn *c, const stomp_frame *f)
{
    broker_err rc;
    c->errmsg[0] = '\0';
    if (c->state == CS_CONNECTING) {
        if (f->cmd == STOMP_CMD_CONNECT || f->cmd == STOMP_CMD_STOMP)
            rc = handle__connect(c, f);
        else
            rc = reject(c, "the first frame must be CONNECT or STOMP");
    } else {
        switch (f->cmd) {
        case STOMP_CMD_SEND: rc = handle__send(c, f); break;
        case STOMP_CMD_SUBSCRIBE: rc = handle__subscribe(c, f); break;
        case STOMP_CMD_UNSUBSCRIBE: rc = handle__unsubscribe(c, f); break;
        case STOMP_CMD_ACK:
        case STOMP_CMD_NACK: rc = handle__ack(c, f); break;
        case STOMP_CMD_BEGIN: rc = handle__begin(c, f); break;
        case STOMP_CMD_COMMIT: rc = handle__commit(c, f); break;
        case STOMP_CMD_ABORT: rc = handle__abort(c, f); break;
        case STOMP_CMD_DISCONNECT: rc = handle__disconnect(c, f); break;
        case STOMP_CMD_CONNECT:
        case STOMP_CMD_STOMP: rc = reject(c, "already connected"); break;
        case STOMP_CMD_UNKNOWN: rc = reject(c, "unknown command"); break;
        default: rc = reject(c, "a client may not send this frame"); break;
        }
    }
    if (rc != BROKER_OK) {
        if (rc == BROKER_E_NOMEM && !c->errmsg[0])
            conn__set_error(c, "out of memory");
        conn__fail(c, rc, f, c->errmsg[0] ? c->errmsg : broker_strerror(rc));
    }
}
