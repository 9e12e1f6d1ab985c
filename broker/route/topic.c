/* topic.c: topic fan-out: a message published to a /topic/ destination reaches every
 * current subscriber, in order, and nothing is stored.
 *
 * The shared part of the MESSAGE is encoded once per protocol version and referenced by
 * every subscriber of that version; only the per-subscription head differs. A subscriber
 * that cannot keep up (output over max_output_bytes, or too many unacked messages in a
 * client ack mode) gets an ERROR rather than unbounded memory.
 */
#include "core.h"

static void deliver_inproc(broker *b, sub *s, bmsg *m, const char *msgid)
{
    broker_message view = { m->dest, msgid, m->body, m->body_len, 0, m->hdrs, m->hdrs_len };
    /* In-process delivery is a callback: it cannot fail. */
    broker_err rc = sub__deliver(b, s, NULL, 0, m->seq, 0, &view);
    (void)rc;
}

static void deliver_remote(broker *b, sub *s, bmsg *m, const char *msgid)
{
    endpoint *ep = s->ep;
    if (!ep->open)
        return;
    if (ep->ops->queued(ep) >= b->o.max_output_bytes) {
        ep->ops->fail(ep, BROKER_E_LIMIT, "slow consumer: output queue over its limit");
        return;
    }
    if (s->ack_mode != ACK_AUTO && s->nunacked >= b->o.max_unacked) {
        ep->ops->fail(ep, BROKER_E_LIMIT, "too many unacknowledged messages");
        return;
    }
    stomp_version v = ep->version;
    if (!m->enc[v]) {
        stomp_err err;
        m->enc[v] = msg__encode(v, m->dest, m->dest_len, msgid, 0, m->hdrs, m->hdrs_len,
                                m->body, m->body_len, NULL, NULL, &err);
        if (!m->enc[v]) {
            /* SENDs are checked for what every version can carry: memory ran out. */
            ep->ops->fail(ep, BROKER_E_NOMEM, "out of memory");
            return;
        }
    }
    if (sub__deliver(b, s, m->enc[v], 0, m->seq, 0, NULL) != BROKER_OK)
        ep->ops->fail(ep, BROKER_E_NOMEM, "out of memory");
}

void topic__fan_out(broker *b, dest_t *d, bmsg *m)
{
    char msgid[32];
    m->seq = ++b->route.topic_seq;
    msgid[0] = 't';
    msgid[1 + msg__u64(msgid + 1, m->seq)] = '\0';
    d->busy++;
    for (sub *s = d->head; s; s = s->dnext) {
        if (s->dead)
            continue;
        d->n_out++;
        if (s->ep)
            deliver_remote(b, s, m, msgid);
        else
            deliver_inproc(b, s, m, msgid);
    }
    d->busy--;
    dest__sweep(d);
}
