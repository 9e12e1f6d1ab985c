/* window.c: prefetch windows of topic subscriptions in the client ack modes. A subscriber
 * with as many unacked messages as its window (prefetch-count), or with unacked bytes up to
 * its byte window (consumer-window-size; a message is always let through when nothing is
 * unacked), gets no more: the topic's messages wait for it here, in order, holding a
 * reference to the shared message, and go out as ACKs (or NACKs) make room. What waits
 * counts with the connection's queued output against max_output_bytes: past it the
 * subscriber is a slow consumer and gets an ERROR, as it would with nothing held.
 */
#include "core.h"

#include <stdlib.h>

struct topic_held {
    topic_held *next;
    bmsg *m;
};

static size_t msg_size(const bmsg *m)
{
    return m->hdrs_len + m->body_len;
}

static int full(const sub *s, size_t size)
{
    if (s->nunacked >= s->window)
        return 1;
    return s->wbytes_max && s->nunacked && s->wbytes + size > s->wbytes_max;
}

int window__hold(broker *b, sub *s, bmsg *m)
{
    size_t size = msg_size(m);
    if (!s->hhead && !full(s, size))
        return 0;
    endpoint *ep = s->ep;
    if (ep->ops->queued(ep) + s->held_bytes + size >= b->o.max_output_bytes) {
        ep->ops->fail(ep, BROKER_E_LIMIT, "slow consumer: messages held for a full prefetch "
                                          "window over the output limit");
        return 1;
    }
    topic_held *h = malloc(sizeof *h);
    if (!h) {
        ep->ops->fail(ep, BROKER_E_NOMEM, "out of memory");
        return 1;
    }
    m->refs++;
    h->m = m;
    h->next = NULL;
    if (s->htail)
        s->htail->next = h;
    else
        s->hhead = h;
    s->htail = h;
    s->held_bytes += size;
    return 1;
}

void window__sent(sub *s, const bmsg *m)
{
    if (s->ack_mode == ACK_AUTO || !s->utail)
        return;
    s->utail->wsize = msg_size(m);
    s->wbytes += s->utail->wsize;
}

void window__drain(broker *b, sub *s)
{
    while (s->hhead && !s->dead && s->ep && s->ep->open && !full(s, msg_size(s->hhead->m))) {
        topic_held *h = s->hhead;
        s->hhead = h->next;
        if (!s->hhead)
            s->htail = NULL;
        s->held_bytes -= msg_size(h->m);
        topic__send_to(b, s, h->m);
        bmsg__unref(h->m);
        free(h);
    }
}

void window__free(sub *s)
{
    while (s->hhead) {
        topic_held *h = s->hhead;
        s->hhead = h->next;
        bmsg__unref(h->m);
        free(h);
    }
    s->htail = NULL;
    s->held_bytes = 0;
}
