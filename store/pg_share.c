/* pg_share.c: several stompd nodes on one database, each a store of this backend.
 *
 * Every row of stompd_msg has an owner: the node (stompd_node, its number) that holds it in
 * memory and alone hands it out, or 0: free. A node's enqueues are its own; it holds them
 * as a single node does, so one node alone costs nothing more. Rows move between nodes in
 * the batches the broker commits anyway:
 *   claim    take found its queue empty in memory: up to PG_CLAIM_MAX free rows of it,
 *            FOR UPDATE SKIP LOCKED (two nodes never claim one row), join the store when
 *            the batch commits; take answered STORE_E_AGAIN meanwhile. A claim that found
 *            nothing leaves the queue dry: no claim until rows of it are freed (a
 *            notification), or PG_POLL_MS later while other nodes are alive.
 *   want     a claim also notifies stompd_want; a node holding ready messages of that
 *            queue releases half of them (owner 0) and notifies stompd_free.
 *   lease    every lease/4 the node renews its row; a renewal also frees the rows of nodes
 *            whose lease ran out (counted as delivered once more up to their band's bound),
 *            so a node killed with -9 gives back what it held within a lease and a renewal.
 * A durable subscription's backlog (pg_durable.c) is claimed only by its live node, and
 * never wished for: what another node holds of it is given back whole, not by halves, so
 * that the live node claims it in order.
 * Everything the store starts by itself (a release, a renewal) is an operation put in the
 * open batch, and the broker is asked to commit it (store_options.wake with no queue);
 * a queue that may now have messages is woken (wake with its name). A store opened
 * without wake neither renews nor polls: it is a single node.
 */
#include "pg_int.h"

#include <string.h>

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void wake_queue(store *s, pqueue *q)
{
    if (s->wake)
        s->wake(s->wake_arg, q->name, q->link.len, q->link.hash);
}

static void wake_commit(store *s)
{
    if (s->wake)
        s->wake(s->wake_arg, NULL, 0, 0);
}

/* q's claim found nothing: no claim until a wake-up. The mark pins q, so that a queue
 * with no message left keeps it. */
static void set_dry(pqueue *q)
{
    q->dry = 1;
    if (!q->dry_pin) {
        q->dry_pin = 1;
        q->pins++;
    }
}

/* q may have free rows: take again (an empty q unpinned stays until its next use). */
void pg__undry(store *s, pqueue *q)
{
    q->dry = 0;
    if (q->dry_pin) {
        q->dry_pin = 0;
        q->pins--;
    }
    wake_queue(s, q);
}

store_err pg__claim(store *s, const char *name, size_t len, uint64_t h, uint64_t now)
{
    pqueue *q = find_queue(s, name, len, h);
    if (q && q->claiming)
        return STORE_E_AGAIN;
    if (pg_is_backlog(name, len) && !(q && q->held))
        return STORE_E_EMPTY; /* its live node's to claim */
    /* Alone, a queue this node has not seen can have free rows only after some were freed. */
    if (q ? q->dry : s->alone && !s->maybe_free)
        return STORE_E_EMPTY;
    if (!q && !(q = pg__get_queue(s, name, len, h)))
        return STORE_E_NOMEM;
    if (pg_reserve_ops(s->open, 1) != 0) {
        pg__queue_drop_unused(s, q);
        return STORE_E_NOMEM;
    }
    pop *o = pg_push_op(s->open, OP_CLAIM, PG_CLAIM_MAX, q);
    o->not_before = now > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : now;
    q->pins++;
    q->claiming = 1;
    q->freed = 0;
    return STORE_E_AGAIN;
}

/* A claimed row joins the store: at its band's tail when its place is there, else through
 * the waiting heap, which puts it where its (ord, id) says (redelivered: at the head). */
static store_err join_claimed(store *s, const PGresult *res, int row)
{
    store__rec *r = pg__row_rec(s, res, row);
    if (!r)
        return STORE_E_NOMEM;
    pqueue *q = r->q;
    const store__rec *tail = store__entry(q->o.band[r->prio].list.tail, store__rec, on);
    int at_tail = !r->not_before && !r->redeliveries &&
                  (!tail || tail->ord < r->ord || (tail->ord == r->ord && tail->link.id < r->link.id));
    uint64_t nb = r->not_before;
    if (!at_tail && !nb)
        r->not_before = 1; /* due at once, joins by promote */
    store_err err = pg__add_loaded(s, r);
    if (err != STORE_OK) {
        store__rec_free(&s->pool, r);
        pg__queue_drop_unused(s, q);
        return err;
    }
    r->not_before = nb;
    if (q->backlog && !q->held) {
        /* Claimed while this node was the live node: no longer. */
        if (pg__give_back(s, r) != 0)
            s->orphans = 1; /* no memory: the next batch frees it */
        return STORE_OK;
    }
    if (q->dry_pin) {
        q->dry_pin = 0;
        q->pins--;
    }
    q->dry = 0;
    return STORE_OK;
}

int pg__give_back(store *s, store__rec *r)
{
    if (pg_reserve_ops(s->open, 1) != 0)
        return -1;
    pg__ghost(s, r);
    pg_push_op(s->open, OP_RELEASE, 0, r);
    return 0;
}

/* The claims' rows join (ok), or are dropped: the rows stay free in the database. */
static void settle_claimed(store *s, int ok)
{
    for (size_t i = 0; i < s->nclaimed; i++) {
        PGresult *res = s->claimed[i];
        for (int row = 0; ok && row < PQntuples(res); row++)
            if (join_claimed(s, res, row) != STORE_OK)
                s->orphans = 1; /* no memory for it: the next batch frees it */
        PQclear(res);
    }
    s->nclaimed = 0;
}

/* After a renewal: other nodes came or went; rows were freed (some node died). */
static void settle_lease(store *s)
{
    int was_alone = s->alone;
    s->alone = s->lease_others == 0;
    if (s->lease_freed)
        s->maybe_free = 1;
    if ((!was_alone || s->alone) && !s->lease_freed)
        return;
    for (store__qlink *l = store__queues_first(&s->queues); l;
         l = store__queues_next(&s->queues, l)) {
        pqueue *q = store__container_of(l, pqueue, link);
        if (q->claiming) {
            q->freed = 1;
        } else if (q->dry || (was_alone && !s->alone)) {
            pg__undry(s, q);
        }
    }
}

void pg__share_settle(store *s, pbatch *b, int ok)
{
    /* Releases first: a claim of the same batch may have taken the row back. */
    for (size_t i = 0; i < b->nops; i++) {
        pop *o = &b->ops[i];
        if (o->kind != OP_RELEASE)
            continue;
        store__rec *r = o->ptr;
        if (ok) {
            pg__forget(s, r);
        } else {
            pqueue *q = r->q;
            r->state = STORE__PENDING;
            int room = store__heap_reserve(&q->o.waiting, q->o.waiting.n + 1, &s->bytes) ==
                       STORE_OK;
            uint64_t nb = r->not_before;
            r->not_before = 1;
            if (room)
                store__order_wait(&q->o, r);
            else
                store__order_append(&q->o, r); /* no memory: out of order, not lost */
            r->not_before = nb;
            store__expiry_add(&s->expiry, r);
            if (q->backlog && !q->held)
                (void)pg__give_back(s, r); /* again; without memory it stays here */
        }
        o->kind = OP_ACK; /* done with (settle_ops skips it) */
    }
    settle_claimed(s, ok);
    if (ok && b->orphans)
        s->orphans = 0;
    for (size_t i = 0; i < b->nops; i++) {
        pop *o = &b->ops[i];
        if (o->kind == OP_LEASE) {
            s->lease_queued = 0;
            if (ok)
                settle_lease(s);
        }
        if (o->kind != OP_CLAIM)
            continue;
        pqueue *q = o->ptr;
        q->claiming = 0;
        /* Nothing came and nothing was freed meanwhile: no claim until a wake-up. */
        if (!store__order_count(&q->o) && !q->freed)
            set_dry(q);
        q->freed = 0;
        q->pins--;
        o->kind = OP_ACK;
        pg__queue_drop_unused(s, q);
    }
}

/* Another node wants messages of q: give it half of those ready here, from the tail of
 * the lowest band (what this node would hand out last). */
static void release_half(store *s, pqueue *q)
{
    size_t n = store__order_count(&q->o) - q->o.waiting.n;
    size_t give = (n + 1) / 2;
    if (!give || pg_reserve_ops(s->open, give) != 0)
        return;
    size_t done = 0;
    for (int p = 0; p < STORE__PRIORITIES && done < give; p++) {
        while (done < give && q->o.band[p].list.tail) {
            store__rec *r = store__entry(q->o.band[p].list.tail, store__rec, on);
            pg__ghost(s, r);
            pg_push_op(s->open, OP_RELEASE, 0, r);
            done++;
        }
    }
    if (done)
        wake_commit(s);
}

void pg__release_backlog(store *s, pqueue *q)
{
    store__rec *r;
    while ((r = store__order_first(&q->o)) != NULL && pg__give_back(s, r) == 0)
        ;
    const store__heapent *t;
    while ((t = store__heap_top(&q->o.waiting)) != NULL && pg__give_back(s, t->p) == 0)
        ;
}

/* The queue named by hex, or NULL (none here, or not a name this node could have). */
static pqueue *queue_of_hex(store *s, const char *hex)
{
    char name[4000];
    size_t n = strlen(hex);
    if (n % 2 || n / 2 > sizeof name || !n)
        return NULL;
    for (size_t i = 0; i < n / 2; i++) {
        int a = hexval(hex[2 * i]), b = hexval(hex[2 * i + 1]);
        if (a < 0 || b < 0)
            return NULL;
        name[i] = (char)(a << 4 | b);
    }
    return find_queue(s, name, n / 2, store_hash_name(name, n / 2));
}

static void freed(store *s, pqueue *q)
{
    if (q->claiming) {
        q->freed = 1;
    } else if (q->dry) {
        pg__undry(s, q);
    }
}

void pg__notified(store *s, const char *channel, const char *payload, int pid)
{
    if (pid == s->be_pid || s->closing)
        return; /* this node's own */
    if (strcmp(channel, "stompd_topic") == 0) {
        pg__topic_notified(s, payload);
        return;
    }
    if (strcmp(channel, "stompd_durable") == 0) {
        pg__dur_notified(s, payload);
        return;
    }
    int want = strcmp(channel, "stompd_want") == 0;
    if (!want && strcmp(channel, "stompd_free") != 0)
        return;
    if (!want && !payload[0]) {
        /* A node stopped: all its rows are free. */
        s->maybe_free = 1;
        for (store__qlink *l = store__queues_first(&s->queues); l;
             l = store__queues_next(&s->queues, l))
            freed(s, store__container_of(l, pqueue, link));
        return;
    }
    pqueue *q = queue_of_hex(s, payload);
    if (!q) {
        s->maybe_free |= !want;
        return;
    }
    if (want && q->backlog) {
        if (!q->held) { /* a straggler: everything goes, so that order is kept */
            size_t before = s->open->nops;
            pg__release_backlog(s, q);
            if (s->open->nops != before)
                wake_commit(s);
        }
    } else if (want) {
        release_half(s, q);
    } else {
        freed(s, q);
    }
}

void pg__share_reconnected(store *s)
{
    /* Notifications may have been missed while the connection was down. */
    for (store__qlink *l = store__queues_first(&s->queues); l;
         l = store__queues_next(&s->queues, l))
        freed(s, store__container_of(l, pqueue, link));
    pg__dur_reconnected(s);
}

/* ---- the timer ---- */

static void on_tick(uv_timer_t *t)
{
    store *s = t->data;
    uint64_t now = uv_now(s->loop);
    if (!s->lease_queued && pg_reserve_ops(s->open, 1) == 0) {
        pg_push_op(s->open, OP_LEASE, 0, NULL);
        s->lease_queued = 1;
        wake_commit(s);
    }
    if (s->alone || now - s->polled_at < PG_POLL_MS)
        return;
    s->polled_at = now;
    for (store__qlink *l = store__queues_first(&s->queues); l;
         l = store__queues_next(&s->queues, l)) {
        pqueue *q = store__container_of(l, pqueue, link);
        if (q->dry)
            pg__undry(s, q);
    }
}

static void free_timer(uv_handle_t *h)
{
    free(h);
}

store_err pg__share_start(store *s)
{
    if (!s->wake)
        return STORE_OK;
    if (!(s->tick = malloc(sizeof *s->tick)))
        return STORE_E_NOMEM;
    (void)uv_timer_init(s->loop, s->tick);
    s->tick->data = s;
    uint64_t every = s->lease_ms / 4 < PG_POLL_MS ? s->lease_ms / 4 : PG_POLL_MS;
    (void)uv_timer_start(s->tick, on_tick, every ? every : 1, every ? every : 1);
    uv_unref((uv_handle_t *)s->tick);
    return STORE_OK;
}

void pg__share_stop(store *s)
{
    if (s->tick) {
        uv_close((uv_handle_t *)s->tick, free_timer);
        s->tick = NULL;
    }
}
