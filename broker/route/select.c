/* select.c: dispatch of queues that plain round robin does not cover: a queue some of whose
 * subscribers have a selector, and a wildcard queue dest (a subscription to a pattern).
 *
 * A subscriber with a selector takes through the store's take_match with a scan of its own
 * (store.h): the first ready message its selector accepts, the others left where they are
 * for other consumers; its scan goes on from where it stopped, so each message is judged
 * once per subscriber, not once per delivery. A subscriber that finds nothing is passed
 * over ("dry") until the dispatch ends; a plain subscriber that finds nothing means the
 * queue has nothing. A wildcard queue dest hands its subscribers (round robin, as a queue
 * does) messages from the queues its pattern matches, one queue after the other (round
 * robin over the queues with a message for that subscriber). A wildcard subscriber with a
 * selector keeps one scan, started again when it moves to another queue.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

enum { TAKE_GOT, TAKE_NONE, TAKE_STOP };

/* Take for s from queue q: TAKE_GOT (sm), TAKE_NONE (nothing for s now; a due time is
 * planned), TAKE_STOP (dispatch later: after a commit, after the expiry run, or no
 * memory). */
static int take_for(broker *b, dest_t *q, sub *s, uint64_t now, store_msg *sm)
{
    store_err se;
    if (!s->selector) {
        se = b->st->take_at(b->store, q->name, q->link.len, q->link.hash, now, sm);
    } else {
        if (!s->scan || s->scan_q != q) {
            if (!s->scan && !(s->scan = malloc(sizeof *s->scan)))
                return TAKE_STOP;
            memset(s->scan, 0, sizeof *s->scan);
            s->scan_q = q;
        }
        filter_queue fq = { s, q->name };
        se = b->st->take_match(b->store, q->name, q->link.len, q->link.hash, now, s->scan,
                               filter__store, &fq, sm);
    }
    uint64_t due;
    switch (se) {
    case STORE_OK:
        return TAKE_GOT;
    case STORE_E_AGAIN: /* the store records the delivery bound first */
        dest__touch(b, q);
        commit__dirty(b);
        return TAKE_STOP;
    case STORE_E_EXPIRED: /* the expiry run takes it out, then dispatches q again */
        queue__expiry_at(b, now);
        return TAKE_STOP;
    case STORE_E_EMPTY:
        due = b->st->next_due(b->store, q->name, q->link.len, q->link.hash, now);
        if (due)
            queue__wake_at(b, q, due, now);
        return TAKE_NONE;
    default:
        return TAKE_STOP;
    }
}

/* Hand taken message sm of queue q to s (as queue.c's dispatch does). */
static void deliver(broker *b, dest_t *q, sub *s, const store_msg *sm)
{
    size_t bytes = b->store_counted ? sm->headers_len + sm->body_len : 0;
    broker_err rc = queue__hand_over(b, q, s, sm, bytes, 1);
    if (rc != BROKER_OK) {
        (void)queue__return(b, sm->id, RETURN_UNSENT, 0);
        if (s->ep)
            s->ep->ops->fail(s->ep, rc,
                             rc == BROKER_E_NOMEM
                                 ? "out of memory"
                                 : "a queued message cannot be carried in this STOMP version");
    } else if (!s->ep) {
        if (b->st->ack(b->store, sm->id) == STORE_OK)
            commit__dirty(b);
        broker__mem_sub(b, bytes);
    }
}

/* The subscriber of d to serve next: round robin among those with room that are not dry,
 * or only the oldest exclusive one. */
static sub *next_ready(broker *b, dest_t *d)
{
    if (d->nexclusive) {
        sub *s = d->head;
        while (s && (s->dead || !s->exclusive))
            s = s->dnext;
        return s && !s->dry && sub__has_room(b, s) ? s : NULL;
    }
    sub *start = d->cursor ? d->cursor : d->head, *s = start;
    if (!s)
        return NULL;
    do {
        if (!s->dry && sub__has_room(b, s))
            return s;
        s = s->dnext ? s->dnext : d->head;
    } while (s != start);
    return NULL;
}

static void clear_dry(dest_t *d)
{
    for (sub *s = d->head; s; s = s->dnext)
        s->dry = 0;
}

void queue__dispatch_select(broker *b, dest_t *d, uint64_t now)
{
    for (;;) {
        sub *s = next_ready(b, d);
        if (!s)
            break;
        store_msg sm;
        int r = take_for(b, d, s, now, &sm);
        if (r == TAKE_STOP || (r == TAKE_NONE && !s->selector))
            break;
        if (r == TAKE_NONE) {
            s->dry = 1;
            continue;
        }
        d->cursor = s->dnext ? s->dnext : d->head;
        deliver(b, d, s, &sm);
    }
    clear_dry(d);
}

/* One message for s from w's queues, from the one after the last served: TAKE_*. */
static int take_any(broker *b, dest_t *w, sub *s, uint64_t now)
{
    size_t n = w->nlinks;
    for (size_t k = 0; k < n; k++) {
        size_t i = (w->lcursor + k) % n;
        dest_t *q = w->links[i];
        store_msg sm;
        int r = take_for(b, q, s, now, &sm);
        if (r == TAKE_STOP)
            return r;
        if (r == TAKE_GOT) {
            w->lcursor = (i + 1) % n;
            w->cursor = s->dnext ? s->dnext : w->head;
            q->busy++; /* its dest stays through the delivery */
            deliver(b, q, s, &sm);
            q->busy--;
            dest__sweep(q);
            return r;
        }
    }
    return TAKE_NONE;
}

void queue__dispatch_wild(broker *b, dest_t *w, uint64_t now)
{
    while (w->nlinks) {
        sub *s = next_ready(b, w);
        if (!s)
            break;
        int r = take_any(b, w, s, now);
        if (r == TAKE_STOP || (r == TAKE_NONE && !s->selector))
            break;
        if (r == TAKE_NONE)
            s->dry = 1;
    }
    clear_dry(w);
}
