/* commit.c: group commit. Every store write of a loop turn joins the open batch; the tick
 * commits it (one commit in flight at most). When a commit completes, the endpoints
 * waiting for it are told (their held receipts go out) and then the queues it enqueued to
 * are dispatched: nothing is acknowledged or delivered before the store has it.
 *
 * Epochs: batch N collects while N-1 may be committing; done_epoch is the last completed.
 * An endpoint waits on the list from its first held receipt until it holds none.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>

static void mark(broker *b)
{
    if (!b->route.dirty) {
        b->route.dirty = 1;
        broker__kick(b);
    }
}

void commit__dirty(broker *b)
{
    b->route.writes++;
    mark(b);
}

void commit__again(broker *b)
{
    mark(b);
}

uint64_t commit__epoch(const broker *b)
{
    return b->route.epoch;
}

uint64_t commit__writes(const broker *b)
{
    return b->route.writes;
}

int commit__idle(const broker *b)
{
    return !b->route.dirty && !b->route.commit_inflight;
}

int commit__pending(const broker *b)
{
    return b->route.dirty && !b->route.commit_inflight;
}

void commit__wait(broker *b, endpoint *ep)
{
    if (ep->waiting)
        return;
    ep->waiting = 1;
    ep->wprev = NULL;
    ep->wnext = b->route.waiters;
    if (b->route.waiters)
        b->route.waiters->wprev = ep;
    b->route.waiters = ep;
}

void commit__unwait(broker *b, endpoint *ep)
{
    if (!ep->waiting)
        return;
    if (ep->wprev)
        ep->wprev->wnext = ep->wnext;
    else
        b->route.waiters = ep->wnext;
    if (ep->wnext)
        ep->wnext->wprev = ep->wprev;
    ep->wprev = ep->wnext = NULL;
    ep->waiting = 0;
}

/* Tell every waiting endpoint. Each is taken off the list before it hears (it puts itself
 * back if it still holds something), so the walk sees each once. */
static void tell_waiters(broker *b, uint64_t epoch, int ok, const char *why)
{
    endpoint *list = b->route.waiters;
    b->route.waiters = NULL;
    for (endpoint *ep = list; ep; ep = ep->wnext)
        ep->waiting = 0;
    while (list) {
        endpoint *ep = list;
        list = ep->wnext;
        if (list)
            list->wprev = NULL;
        ep->wprev = ep->wnext = NULL;
        ep->ops->committed(ep, epoch, ok, why);
    }
}

static void finished(broker *b, uint64_t epoch, store_err status)
{
    route_state *r = &b->route;
    r->done_epoch = epoch;
    b->stats.commits++;
    char why[300] = "";
    if (status != STORE_OK) {
        const char *detail = b->st->last_error
                                 ? b->st->last_error(b->store)
                                 : "";
        snprintf(why, sizeof why, "the store failed to commit: %s",
                 detail[0] ? detail : store_strerror(status));
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0, "%s", why);
    }
    tell_waiters(b, epoch, status == STORE_OK, why);
    /* The messages it committed are take_expired's from now on: one whose time came while
     * the commit was under way was not found when the expiry check ran. Plan the check for
     * the earliest (at once when due; nothing when one earlier is planned already). */
    uint64_t next = b->st->next_expiry(b->store);
    if (next)
        queue__expiry_at(b, next);
    /* Acks the commit made durable may have shrunk the store below the memory limit. */
    if (b->npaused && !b->store_counted) {
        b->resume_wanted = 1;
        broker__kick(b);
    }
    for (size_t i = 0; i < r->ninflight; i++) {
        dest_t *d = r->inflight[i];
        d->pins--;
        dest__schedule(b, d);
        dest__release(b, d);
    }
    r->ninflight = 0;
}

static void on_commit(void *arg, store_err status)
{
    broker *b = arg;
    b->route.commit_inflight = 0;
    finished(b, b->route.inflight_epoch, status);
    /* Cut the next batch now, not at the tick: the commit thread then works while this
     * turn dispatches what just became durable (its acks join the batch after). */
    commit__run(b);
    broker__kick(b);
}

/* Pin the queues written in the open batch: they are dispatched when it completes. 0, or
 * -1 when out of memory (nothing changed). */
static int pin_touched(broker *b)
{
    route_state *r = &b->route;
    size_t n = 0;
    for (dest_t *d = r->touched; d; d = d->next_touched)
        n++;
    if (n > r->inflight_cap) {
        dest_t **na = realloc(r->inflight, n * sizeof *na);
        if (!na)
            return -1;
        r->inflight = na;
        r->inflight_cap = n;
    }
    r->ninflight = 0;
    for (dest_t *d = r->touched, *next; d; d = next) {
        next = d->next_touched;
        d->on_touched = 0;
        d->pins++;
        r->inflight[r->ninflight++] = d;
    }
    r->touched = NULL;
    return 0;
}

void commit__run(broker *b)
{
    route_state *r = &b->route;
    if (!r->dirty || r->commit_inflight)
        return;
    if (pin_touched(b) != 0) {
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0, "out of memory starting a commit");
        return; /* still dirty: the tick retries */
    }
    uint64_t epoch = r->epoch++;
    r->dirty = 0;
    store_err rc = b->st->commit(b->store, on_commit, b);
    if (rc == STORE_OK) {
        r->commit_inflight = 1;
        r->inflight_epoch = epoch;
    } else {
        finished(b, epoch, rc == STORE_DONE ? STORE_OK : rc);
    }
}
