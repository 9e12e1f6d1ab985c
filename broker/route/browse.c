/* browse.c: queue browsers (SUBSCRIBE with browser:true, as ActiveMQ's). A browser gets a
 * copy of each message its queue holds ready, in delivery order, read through the store's
 * browse cursor (a persistent store reads its file a row at a time), then one MESSAGE with
 * the header browser:end and an empty body. Nothing is taken or removed, nothing needs an
 * ACK, and messages that arrive later may or may not be shown; none is shown twice. The
 * copies go out as the browser's output has room (below the high-water mark): a large queue
 * does not land in memory at once.
 */
#include "core.h"

/* The closing MESSAGE: browser:end, empty body. 0, or an error. */
static broker_err browse_end(broker *b, dest_t *d, sub *s)
{
    static const char end[] = "browser\0end";
    store_msg m = { 0 };
    m.headers = end;
    m.headers_len = sizeof end;
    m.body = "";
    return queue__hand_over(b, d, s, &m, 0, 0);
}

/* As much of s's browse as its output takes. */
static void browse_some(broker *b, dest_t *d, sub *s, uint64_t now)
{
    endpoint *ep = s->ep;
    while (!s->browse_done) {
        if (ep->ops->queued(ep) >= b->o.output_high_water) {
            ep->blocked = 1; /* dispatched again once it drained */
            return;
        }
        store_msg m;
        store_err se =
            b->st->browse(b->store, d->name, d->link.len, d->link.hash, &s->cursor, now, &m);
        broker_err rc;
        if (se != STORE_OK) {
            if (se != STORE_E_EMPTY)
                broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0,
                            "browsing %s stopped: %s", d->name, store_strerror(se));
            s->browse_done = 1;
            rc = browse_end(b, d, s);
        } else if (m.expires && m.expires <= now) {
            continue; /* never delivered, not shown either */
        } else {
            rc = queue__hand_over(b, d, s, &m, 0, 0);
        }
        if (rc != BROKER_OK) {
            s->browse_done = 1;
            ep->ops->fail(ep, rc, rc == BROKER_E_NOMEM ? "out of memory"
                                  : "a queued message cannot be carried in this STOMP version");
            return;
        }
    }
}

void queue__browse(broker *b, dest_t *d, uint64_t now)
{
    for (sub *s = d->head; s; s = s->dnext)
        if (s->browser && !s->dead && !s->browse_done && s->ep && s->ep->open)
            browse_some(b, d, s, now);
}
