/* commit.c: group commit. Every store write of a loop turn joins the open batch; the tick
 * commits it (one commit in flight at most). When a commit completes, the receipts held
 * for it go out and the queues it enqueued to are dispatched: nothing is acknowledged or
 * delivered before the store has it.
 *
 * Epochs: batch N collects while N-1 may be committing; done_epoch is the last completed.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

void commit__dirty(broker *b)
{
    b->writes++;
    if (!b->dirty) {
        b->dirty = 1;
        broker__kick(b);
    }
}

static void finished(broker *b, uint64_t epoch, store_err status)
{
    b->done_epoch = epoch;
    b->stats.commits++;
    char msg[300];
    if (status != STORE_OK) {
        const char *why = b->st->version >= 2 && b->st->last_error
                              ? b->st->last_error(b->store)
                              : "";
        snprintf(msg, sizeof msg, "the store failed to commit: %s",
                 why[0] ? why : store_strerror(status));
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0, "%s", msg);
    }
    for (conn *c = b->held_conns, *n; c; c = n) {
        n = c->hnext;
        /* Receipts of the lost batch are never sent: the ERROR ends the session. */
        if (status != STORE_OK && c->held_head && c->held_head->epoch <= epoch)
            conn__fail(c, BROKER_E_STORE, NULL, msg);
        else
            conn__flush_held(c, epoch);
    }
    /* Acks the commit made durable may have shrunk the store below the memory limit. */
    if (b->npaused && !b->store_counted && !broker__over_memory(b)) {
        b->resume_wanted = 1;
        broker__kick(b);
    }
    for (size_t i = 0; i < b->ninflight; i++) {
        dest_t *d = b->inflight[i];
        d->pins--;
        router__schedule(b, d);
        router__release(b, d);
    }
    b->ninflight = 0;
}

static void on_commit(void *arg, store_err status)
{
    broker *b = arg;
    b->commit_inflight = 0;
    finished(b, b->inflight_epoch, status);
    /* Cut the next batch now, not at the tick: the commit thread then works while this
     * turn dispatches what just became durable (its acks join the batch after). */
    commit__run(b);
    broker__kick(b);
    broker__maybe_finish_stop(b);
}

void commit__run(broker *b)
{
    if (!b->dirty || b->commit_inflight)
        return;
    size_t n = 0;
    for (dest_t *d = b->touched; d; d = d->next_touched)
        n++;
    if (n > b->inflight_cap) {
        dest_t **na = realloc(b->inflight, n * sizeof *na);
        if (!na) {
            broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0, "out of memory starting a commit");
            return; /* still dirty: the tick retries */
        }
        b->inflight = na;
        b->inflight_cap = n;
    }
    b->ninflight = 0;
    for (dest_t *d = b->touched, *next; d; d = next) {
        next = d->next_touched;
        d->on_touched = 0;
        d->pins++;
        b->inflight[b->ninflight++] = d;
    }
    b->touched = NULL;
    uint64_t epoch = b->epoch++;
    b->dirty = 0;
    store_err rc = b->st->commit(b->store, on_commit, b);
    if (rc == STORE_OK) {
        b->commit_inflight = 1;
        b->inflight_epoch = epoch;
    } else {
        finished(b, epoch, rc == STORE_DONE ? STORE_OK : rc);
    }
}
