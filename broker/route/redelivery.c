/* redelivery.c: what happens to a queue message that comes back from its consumer (a NACK,
 * or its consumer went away without acking): per its queue's policy it goes to its
 * dead-letter queue, or back to its queue to be delivered again after the redelivery delay.
 * The timer that dispatches queues again when their delayed messages are due lives here.
 *
 * A dead letter is a copy of the message in the dead-letter queue, enqueued in the same
 * store batch as the ack that removes the original: both happen, or neither. Its headers
 * say why (dead-letter-reason: max-deliveries or rejected), from where
 * (original-destination, original-message-id), when (dead-letter-time, ms since the Unix
 * epoch) and after how many deliveries (delivery-count). A message already in a
 * dead-letter queue is never dead-lettered again.
 *
 * The timer: a heap of (due, queue), each queue pinned while it has an entry; a queue keeps
 * only its earliest due time (due_at), later entries are stale and skipped.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

/* ---- dead letters -------------------------------------------------------------------- */

static const char *const dl_names[] = { "original-destination", "dead-letter-reason",
                                        "delivery-count", "dead-letter-time",
                                        "original-message-id" };
enum { NDL = sizeof dl_names / sizeof dl_names[0] };

static int is_dl_name(const char *name)
{
    for (size_t i = 0; i < NDL; i++)
        if (strcmp(name, dl_names[i]) == 0)
            return 1;
    return 0;
}

static char *put_pair(char *o, const char *name, const char *v, size_t vlen)
{
    size_t n = strlen(name) + 1;
    memcpy(o, name, n);
    memcpy(o + n, v, vlen);
    o[n + vlen] = '\0';
    return o + n + vlen + 1;
}

/* The dead letter's header block: ours first, then the message's own except earlier
 * dead-letter headers (a message dead-lettered again says only its latest move). The caller
 * frees it. NULL when out of memory. */
static char *dl_block(const store_msg *m, const char *reason, uint32_t deliveries,
                      uint64_t now, size_t *len)
{
    char count[24], time[24], id[24];
    size_t count_len = msg__u64(count, deliveries);
    size_t time_len = msg__u64(time, now);
    size_t id_len = msg__u64(id, m->id);
    /* A durable subscription's message: it came from its topic, not from the backlog. */
    const char *hdrs = m->headers, *from = m->queue;
    size_t hlen = m->headers_len, flen = m->queue_len;
    if (durable__is_backlog(from, flen))
        durable__split(&hdrs, &hlen, &from, &flen);
    size_t cap = m->headers_len + m->queue_len + strlen(reason) + count_len + time_len +
                 id_len + 2 * NDL;
    for (size_t i = 0; i < NDL; i++)
        cap += strlen(dl_names[i]);
    char *blk = malloc(cap), *o = blk;
    if (!blk)
        return NULL;
    o = put_pair(o, dl_names[0], from, flen);
    o = put_pair(o, dl_names[1], reason, strlen(reason));
    o = put_pair(o, dl_names[2], count, count_len);
    o = put_pair(o, dl_names[3], time, time_len);
    o = put_pair(o, dl_names[4], id, id_len);
    for (const char *p = hdrs, *end = hdrs + hlen; p < end;) {
        size_t nl = strlen(p) + 1, vl = strlen(p + nl) + 1;
        if (!is_dl_name(p)) {
            memcpy(o, p, nl + vl);
            o += nl + vl;
        }
        p += nl + vl;
    }
    *len = (size_t)(o - blk);
    return blk;
}

/* Move taken message m, delivered so many times, to the dead-letter queue p names (or
 * drop it when p drops them or m is in a dead-letter queue already): the copy (with m's
 * priority, no expiry) and the ack go in the open batch together. 0, or -1 (nothing
 * changed). */
int queue__dead_letter(broker *b, const store_msg *m, const broker_policy *p,
                       const char *reason, uint32_t deliveries)
{
    size_t cap = m->queue_len + 16 + (p->dead_letter ? strlen(p->dead_letter) : 0);
    char *name = malloc(cap);
    if (!name)
        return -1;
    size_t nlen = policy__is_dead_letter_queue(b, m->queue, m->queue_len)
                      ? 0
                      : policy__dead_letter(p, m->queue, m->queue_len, name, cap);
    broker_err rc = BROKER_OK;
    if (nlen) {
        size_t hlen;
        char *hdrs = dl_block(m, reason, deliveries, broker__now_ms(b), &hlen);
        msg_attrs a = { 0, 0, (uint8_t)m->priority, 0 };
        rc = hdrs ? queue__enqueue(b, name, nlen, store_hash_name(name, nlen), hdrs, hlen,
                                   m->body, m->body_len, &a, NULL)
                  : BROKER_E_NOMEM;
        free(hdrs);
    }
    if (rc == BROKER_OK) {
        broker__log(b, BROKER_LOG_DEBUG, BROKER_EV_STORE, 0, "message %llu of %.*s %s%.*s (%s)",
                    (unsigned long long)m->id, (int)m->queue_len, m->queue,
                    nlen ? "dead-lettered to " : "dropped", (int)nlen, name, reason);
        /* Before the ack: m is the store's and may go with it. */
        dest_t *from = dest__find(b, m->queue, m->queue_len,
                                  store_hash_name(m->queue, m->queue_len));
        if (from)
            from->n_dead++;
        if (b->st->ack(b->store, m->id) == STORE_OK) /* it is taken: cannot fail */
            commit__dirty(b);
        if (nlen)
            b->stats.dead_lettered++;
        else
            b->stats.dead_dropped++;
    }
    free(name);
    return rc == BROKER_OK ? 0 : -1;
}

int queue__return(broker *b, uint64_t id, int why, uint64_t now)
{
    store_msg m;
    if (b->st->get(b->store, id, &m) != STORE_OK)
        return 0;
    const broker_policy *p = policy__for(b, m.queue, m.queue_len);
    uint32_t attempts = m.redeliveries + 1;
    if (why == RETURN_ORPHAN && b->stopping)
        why = RETURN_UNSENT; /* the broker stops: no fault of the message or its consumer */
    /* A rejected message leaves (from a dead-letter queue: dropped); one out of attempts
     * too, unless it is in a dead-letter queue already. */
    const char *reason = NULL;
    if (why == RETURN_REJECT)
        reason = "rejected";
    else if (why != RETURN_UNSENT && p->max_deliveries && attempts >= p->max_deliveries &&
             !policy__is_dead_letter_queue(b, m.queue, m.queue_len))
        reason = "max-deliveries";
    if (reason && queue__dead_letter(b, &m, p, reason, attempts) == 0)
        return 1;
    uint64_t delay = why == RETURN_UNSENT || why == RETURN_FAILOVER
                         ? 0
                         : policy__redelivery_delay(p, attempts);
    if (b->st->requeue_at(b->store, id, delay ? now + delay : 0) == STORE_OK)
        commit__dirty(b);
    b->stats.redeliveries++;
    return 0;
}

/* ---- expiry ------------------------------------------------------------------------- */

/* Expired messages handled per timer run: a large backlog is worked off over several loop
 * turns, other work in between. */
#define EXPIRE_BATCH 1024
#define EXPIRE_RETRY_MS 50

/* Take out up to EXPIRE_BATCH messages expired at now: each is dead-lettered or dropped
 * per its queue's policy. 1 when there may be more now, 0 when there are none, -1 when one
 * could not be moved (it is back in its queue, for a later try). */
static int expire_some(broker *b, uint64_t now)
{
    for (int n = 0; n < EXPIRE_BATCH; n++) {
        store_msg m;
        if (b->st->take_expired(b->store, now, &m) != STORE_OK)
            return 0;
        const broker_policy *p = policy__for(b, m.queue, m.queue_len);
        size_t bytes = m.headers_len + m.body_len;
        /* Its queue may have stopped at it: dispatch again (found now: the ack frees m). */
        dest_t *d = dest__find(b, m.queue, m.queue_len, store_hash_name(m.queue, m.queue_len));
        if (p->expired == BROKER_EXPIRED_DROP) {
            if (b->st->ack(b->store, m.id) == STORE_OK)
                commit__dirty(b);
        } else if (queue__dead_letter(b, &m, p, "expired", m.redeliveries) != 0) {
            if (b->st->requeue_at(b->store, m.id, 0) == STORE_OK)
                commit__dirty(b);
            return -1;
        }
        b->stats.expired++;
        if (b->store_counted)
            broker__mem_sub(b, bytes);
        if (d)
            dest__schedule(b, d);
    }
    return 1;
}

static void expiry_run(broker *b, uint64_t now)
{
    if (b->stopping)
        return;
    int more = expire_some(b, now);
    uint64_t next = more > 0 ? now : more < 0 ? now + 1000 : b->st->next_expiry(b->store);
    /* Due but not handed out: its batch is still being committed. Look again shortly
     * rather than spin. */
    if (!more && next && next <= now)
        next = now + EXPIRE_RETRY_MS;
    if (next)
        queue__expiry_at(b, next);
}

/* ---- the timer ------------------------------------------------------------------------ */

static void on_timer(uv_timer_t *t);

/* The timer runs for the earliest entry, if any. */
static void arm(broker *b, uint64_t now)
{
    route_state *r = &b->route;
    const store__heapent *top = store__heap_top(&r->due);
    if (!top) {
        uv_timer_stop(&r->timer);
        r->timer_at = 0;
        return;
    }
    if (r->timer_at == top->key)
        return;
    r->timer_at = top->key;
    uv_timer_start(&r->timer, on_timer, top->key > now ? top->key - now : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
    broker *b = t->data;
    route_state *r = &b->route;
    uint64_t now = broker__now_ms(b);
    const store__heapent *top;
    r->timer_at = 0;
    int expiry = 0;
    while ((top = store__heap_top(&r->due)) && top->key <= now) {
        dest_t *d = top->p;
        if (!d) {
            expiry |= r->expiry_at == top->key;
            store__heap_pop(&r->due);
            continue;
        }
        if (d->due_at == top->key) {
            d->due_at = 0;
            dest__schedule(b, d);
        }
        store__heap_pop(&r->due);
        d->pins--;
        dest__release(b, d);
    }
    if (expiry) {
        r->expiry_at = 0;
        expiry_run(b, now);
    }
    arm(b, now);
}

void queue__wake_at(broker *b, dest_t *d, uint64_t due, uint64_t now)
{
    route_state *r = &b->route;
    if (d->due_at && d->due_at <= due)
        return;
    if (store__heap_reserve(&r->due, r->due.n + 1, NULL) != STORE_OK) {
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0,
                    "out of memory: delayed messages of %s wait for the next dispatch",
                    d->name);
        return;
    }
    store__heap_push(&r->due, due, r->due_seq++, d);
    d->due_at = due;
    d->pins++;
    arm(b, now);
}

void queue__expiry_at(broker *b, uint64_t at)
{
    route_state *r = &b->route;
    if (r->expiry_at && r->expiry_at <= at)
        return;
    if (store__heap_reserve(&r->due, r->due.n + 1, NULL) != STORE_OK) {
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0,
                    "out of memory: expired messages wait for the next expiry check");
        return;
    }
    store__heap_push(&r->due, at, r->due_seq++, NULL);
    r->expiry_at = at;
    arm(b, broker__now_ms(b));
}

void queue__timer_init(broker *b)
{
    uv_timer_init(b->loop, &b->route.timer);
    b->route.timer.data = b;
    /* Delayed messages alone do not keep the loop alive: their consumers do. */
    uv_unref((uv_handle_t *)&b->route.timer);
}

static void on_timer_closed(uv_handle_t *h)
{
    broker__handle_closed(h->data);
}

void queue__timer_close(broker *b)
{
    uv_timer_stop(&b->route.timer);
    uv_close((uv_handle_t *)&b->route.timer, on_timer_closed);
}

void queue__timer_free(broker *b)
{
    route_state *r = &b->route;
    store__heap_free(&r->due, NULL); /* the dests go with route__free */
    memset(&r->due, 0, sizeof r->due);
}
