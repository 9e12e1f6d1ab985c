/* store_sqlite.c: the SQLite backend of store.h: queues that survive a restart. This file
 * holds its ops table and entry points (open, close, enqueue, take, ack, requeue, commit,
 * depth, resident), the queues' lifetime in memory and the error text last_error reports.
 *
 * The other jobs have their own files: sqlite_int.h (the shared types, and which thread may
 * touch which connection), sqlite_schema.c (the file: schema, migrations, open, load),
 * sqlite_batch.c (the group commit), sqlite_page.c (the window of ready messages in memory),
 * sqlite_recover.c (redelivery after a crash or a close).
 *
 * Queue order is (ord, id): a fresh message gets ord = id (above every other); a requeued
 * one keeps its ord if that is already below the head's, else takes head's - 1. So the
 * window is sorted by (ord, id), a restart reads the same order back, and messages taken but
 * not acked come back where they were taken from.
 */
#include "sqlite_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void sqlite__set_err(store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
}

store_err sqlite__db_err(store *s, sqlite3 *db, const char *what)
{
    sqlite__set_err(s, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
    return STORE_E_IO;
}

/* ---- queues ---- */

static void unlink_queue(store *s, squeue *q)
{
    store__queues_remove(&s->queues, &q->link);
    s->bytes -= QUEUE_SIZE(q);
    store__heap_free(&q->waiting, &s->bytes);
    free(q);
}

/* A new queue, linked into the index. The caller has made room (store__queues_reserve). */
squeue *sqlite__queue_add(store *s, const char *name, size_t len, uint64_t h, int64_t qid)
{
    squeue *q = calloc(1, sizeof *q + len + 1);
    if (!q)
        return NULL;
    memcpy(q->name, name, len);
    q->qid = qid;
    q->front_ord = INT64_MIN;
    /* A new queue may hand out the next LOOKAHEAD ids at once (its row carries that). */
    q->front_durable = q->front_sent = add_sat((int64_t)s->next_id, LOOKAHEAD);
    q->crash_front = INT64_MIN;
    q->tmax = INT64_MIN;
    store__queues_insert(&s->queues, &q->link, q->name, len, h);
    s->bytes += QUEUE_SIZE(q);
    return q;
}

/* A queue with nothing left in memory or in the file is forgotten, here and (with the
 * batch) in the file. The caller reserved one operation. If that batch fails, the row stays
 * behind; a later queue of the same name replaces it, and open drops messages whose queue
 * row is gone (their acks were made, only not stored). */
void sqlite__queue_drop_unused(store *s, squeue *q)
{
    if (q->nrecs || q->spilled || q->fpins)
        return;
    /* Only a cancel empties a queue whose row the open batch writes: that write names q,
     * so it goes too. */
    if (q->row_seq == s->open_seq) {
        batch *b = s->open;
        size_t i = b->nops;
        while (i > 0 && !(b->ops[i - 1].kind == OP_QNEW && b->ops[i - 1].ptr == q))
            i--;
        if (i > 0) {
            memmove(&b->ops[i - 1], &b->ops[i], (b->nops - i) * sizeof *b->ops);
            b->nops--;
        }
    }
    push_op(s->open, OP_QDEL, q->qid, 0, 0, NULL);
    unlink_queue(s, q);
}

/* ---- store_ops ---- */

static void sq_close(store *s)
{
    if (!s)
        return;
    assert(!s->fly);
    sqlite__close_cleanly(s);
    sqlite__close_file(s);
    for (store__qlink *l = store__queues_first(&s->queues); l;
         l = store__queues_next(&s->queues, l))
        store__heap_free(&store__container_of(l, squeue, link)->waiting, NULL);
    store__ids_destroy(&s->ids, offsetof(srec, link));
    store__queues_destroy(&s->queues, offsetof(squeue, link));
    free(s->bat[0].ops);
    free(s->bat[1].ops);
    free(s);
}

static store_err sq_enqueue_hashed(store *s, const char *queue, size_t queue_len, uint64_t h,
                                   const char *headers, size_t headers_len, const char *body,
                                   size_t body_len, uint64_t *id)
{
    if (!queue_len)
        return STORE_E_INVALID;
    if (headers_len > SIZE_MAX / 4 || body_len > SIZE_MAX / 4)
        return STORE_E_NOMEM;
    if (s->next_id > (uint64_t)INT64_MAX)
        return STORE_E_INVALID; /* the file keeps ids as signed 64-bit integers */
    /* Refused here rather than failing the whole batch at commit (SQLITE_TOOBIG). */
    if (headers_len + body_len > s->max_row)
        return STORE_E_INVALID;
    batch *b = s->open;
    if (reserve_ops(b, 2) != 0)
        return STORE_E_NOMEM;
    if (store__ids_reserve(&s->ids, 1) != STORE_OK)
        return STORE_E_NOMEM;
    squeue *q = find_queue(s, queue, queue_len, h);
    int fresh = 0;
    if (!q) {
        if (store__queues_reserve(&s->queues, 1) != STORE_OK)
            return STORE_E_NOMEM;
        q = sqlite__queue_add(s, queue, queue_len, h, s->next_qid);
        if (!q)
            return STORE_E_NOMEM;
        fresh = 1;
    }
    srec *r = malloc(sizeof *r + headers_len + body_len + 1);
    if (!r) {
        if (fresh)
            unlink_queue(s, q);
        return STORE_E_NOMEM;
    }
    if (fresh)
        s->next_qid++;
    /* Each batch writing to a queue (re)writes its row: the row then never depends on an
     * earlier batch having succeeded. */
    if (q->row_seq != s->open_seq) {
        q->row_seq = s->open_seq;
        push_op(b, OP_QNEW, q->qid, q->front_sent, 0, q);
    }
    r->q = q;
    r->link.id = s->next_id++;
    r->ord = (int64_t)r->link.id;
    r->redeliveries = 0;
    r->state = REC_PENDING;
    r->hlen = headers_len;
    r->blen = body_len;
    store__copy_msg(r->data, headers, headers_len, body, body_len);
    store__ids_insert(&s->ids, &r->link);
    s->bytes += REC_SIZE(r);
    q->nrecs++;
    store__list_append(&b->recs, &r->on);
    b->max_id = r->link.id;
    push_op(b, OP_ENQ, (int64_t)r->link.id, r->ord, 0, r);
    *id = r->link.id;
    return STORE_OK;
}

static store_err sq_enqueue(store *s, const char *queue, size_t queue_len, const char *headers,
                            size_t headers_len, const char *body, size_t body_len, uint64_t *id)
{
    return sq_enqueue_hashed(s, queue, queue_len, store_hash_name(queue, queue_len), headers,
                             headers_len, body, body_len, id);
}

/* Waiting records of q due at now go to the head of the window, oldest id first; one that
 * would not be first in (ord, id) order there gets a place in front, written with the
 * batch so a restart reads the same order back. */
static store_err promote_due(store *s, squeue *q, uint64_t now)
{
    const store__heapent *top;
    store__dlist due = { NULL, NULL };
    size_t n = 0;
    while ((top = store__heap_top(&q->waiting)) && top->key <= now) {
        srec *r = top->p;
        store__heap_pop(&q->waiting);
        store__list_append(&due, &r->on); /* popped by (time, id): in id order per time */
        n++;
    }
    if (!n)
        return STORE_OK;
    if (reserve_ops(s->open, n) != 0) {
        /* They wait on (the heap has room for them): the next take tries again. */
        for (store__dlink *l = due.head; l; l = l->next) {
            srec *r = store__container_of(l, srec, on);
            store__heap_push(&q->waiting, r->not_before, r->link.id, r);
        }
        return STORE_E_NOMEM;
    }
    q->nwaiting -= n;
    /* Prepended from the last, so the first popped ends first. */
    while (due.tail) {
        srec *r = store__container_of(due.tail, srec, on);
        store__list_unlink(&due, &r->on);
        const srec *head = win_head(q);
        if (head && head->ord <= r->ord && head->ord > INT64_MIN) {
            r->ord = head->ord - 1;
            push_op(s->open, OP_REQUEUE, (int64_t)r->link.id, r->ord, r->redeliveries, NULL);
        }
        r->state = REC_READY;
        r->not_before = 0;
        store__list_prepend(&q->win, &r->on);
        q->nwin++;
        q->win_bytes += r->hlen + r->blen;
    }
    return STORE_OK;
}

/* The window has a head to hand out, reading the file as needed: rows waiting for their
 * time do not fill it, so reading goes on past them. */
static store_err fill_window(store *s, squeue *q, uint64_t now)
{
    store_err err = promote_due(s, q, now);
    while (err == STORE_OK && !q->win.head && q->spilled) {
        uint64_t before = q->spilled;
        err = sqlite__page_in(s, q, now);
        if (q->spilled == before)
            break;
    }
    /* A partial page is still usable; only an empty window is an error. */
    return q->win.head ? STORE_OK : err;
}

static store_err sq_take_at(store *s, const char *queue, size_t queue_len, uint64_t h,
                            uint64_t now, store_msg *out)
{
    squeue *q = find_queue(s, queue, queue_len, h);
    if (!q)
        return STORE_E_EMPTY;
    store_err err = fill_window(s, q, now);
    if (err != STORE_OK)
        return err;
    srec *r = win_head(q);
    if (!r)
        return STORE_E_EMPTY;
    if (r->ord > q->front_durable) {
        /* Not yet recorded as deliverable: record it, hand it out after that commit. */
        if (r->ord > q->front_sent && sqlite__front_push(s, q, add_sat(r->ord, LOOKAHEAD)) != 0)
            return STORE_E_NOMEM;
        return STORE_E_AGAIN;
    }
    store__list_unlink(&q->win, &r->on);
    q->nwin--;
    q->win_bytes -= r->hlen + r->blen;
    r->state = REC_TAKEN;
    if (r->ord > q->tmax)
        q->tmax = r->ord;
    /* Raise the front before takes reach it; without memory for that, a later take waits. */
    if (add_sat(q->tmax, LOOKAHEAD / 2) > q->front_sent)
        (void)sqlite__front_push(s, q, add_sat(q->tmax, LOOKAHEAD));
    store__fill_msg(out, r->link.id, q->name, q->link.len, r->data, r->hlen, r->blen,
                    r->redeliveries);
    return STORE_OK;
}

static store_err sq_take_hashed(store *s, const char *queue, size_t queue_len, uint64_t h,
                                store_msg *out)
{
    return sq_take_at(s, queue, queue_len, h, UINT64_MAX, out);
}

static uint64_t sq_next_due(store *s, const char *queue, size_t queue_len, uint64_t h,
                            uint64_t now)
{
    squeue *q = find_queue(s, queue, queue_len, h);
    if (!q)
        return 0;
    /* Rows still only in the file may be waiting too: read until something is due. */
    if (fill_window(s, q, now) != STORE_OK)
        return 0;
    const store__heapent *top = store__heap_top(&q->waiting);
    return top && top->key > now ? top->key : 0;
}

static store_err sq_take(store *s, const char *queue, size_t queue_len, store_msg *out)
{
    return sq_take_hashed(s, queue, queue_len, store_hash_name(queue, queue_len), out);
}

static store_err sq_ack(store *s, uint64_t id)
{
    srec *r = find_rec(s, id);
    if (!r || r->state != REC_TAKEN)
        return STORE_E_NOTFOUND;
    /* Two slots: the delete, and maybe the queue's removal. */
    if (reserve_ops(s->open, 2) != 0)
        return STORE_E_NOMEM;
    push_op(s->open, OP_ACK, (int64_t)r->link.id, 0, 0, NULL);
    store__ids_remove(&s->ids, &r->link);
    squeue *q = r->q;
    q->nrecs--;
    s->bytes -= REC_SIZE(r);
    free(r);
    sqlite__queue_drop_unused(s, q);
    return STORE_OK;
}

static store_err sq_get(store *s, uint64_t id, store_msg *out)
{
    const srec *r = find_rec(s, id);
    if (!r || r->state != REC_TAKEN)
        return STORE_E_NOTFOUND;
    store__fill_msg(out, r->link.id, r->q->name, r->q->link.len, r->data, r->hlen, r->blen,
                    r->redeliveries);
    return STORE_OK;
}

static store_err sq_requeue_at(store *s, uint64_t id, uint64_t not_before)
{
    srec *r = find_rec(s, id);
    if (!r || r->state != REC_TAKEN)
        return STORE_E_NOTFOUND;
    squeue *q = r->q;
    const srec *head = win_head(q);
    if (head && head->ord == INT64_MIN)
        return STORE_E_INVALID; /* no position left in front: unreachable in practice */
    if (reserve_ops(s->open, 1) != 0)
        return STORE_E_NOMEM;
    if (not_before && sqlite__wait_room(s, q) != STORE_OK)
        return STORE_E_NOMEM;
    if (r->redeliveries < UINT32_MAX)
        r->redeliveries++;
    if (head && head->ord <= r->ord)
        r->ord = head->ord - 1;
    push_op(s->open, OP_REQUEUE, (int64_t)r->link.id, r->ord, r->redeliveries, NULL);
    s->open->ops[s->open->nops - 1].not_before = not_before;
    r->not_before = not_before;
    if (not_before) {
        r->state = REC_WAITING;
        store__heap_push(&q->waiting, not_before, r->link.id, r);
        q->nwaiting++;
        return STORE_OK;
    }
    r->state = REC_READY;
    store__list_prepend(&q->win, &r->on);
    q->nwin++;
    q->win_bytes += r->hlen + r->blen;
    return STORE_OK;
}

static store_err sq_requeue(store *s, uint64_t id)
{
    return sq_requeue_at(s, id, 0);
}

/* A pending record of the open batch leaves it: its ENQ operation goes (the batch's others
 * keep their order, so runs of inserts and deletes stay runs), and so does the record. */
static store_err sq_cancel(store *s, uint64_t id)
{
    srec *r = find_rec(s, id);
    batch *b = s->open;
    if (!r || r->state != REC_PENDING)
        return STORE_E_NOTFOUND;
    size_t i = b->nops;
    while (i > 0 && !(b->ops[i - 1].kind == OP_ENQ && b->ops[i - 1].ptr == r))
        i--;
    if (i == 0)
        return STORE_E_NOTFOUND; /* pending, but in the batch being committed */
    memmove(&b->ops[i - 1], &b->ops[i], (b->nops - i) * sizeof *b->ops);
    b->nops--;
    store__list_unlink(&b->recs, &r->on);
    b->max_id = b->recs.tail ? store__container_of(b->recs.tail, srec, on)->link.id : 0;
    store__ids_remove(&s->ids, &r->link);
    squeue *q = r->q;
    q->nrecs--;
    s->bytes -= REC_SIZE(r);
    free(r);
    sqlite__queue_drop_unused(s, q); /* room: the ENQ operation just left */
    return STORE_OK;
}

static store_err sq_commit(store *s, store_commit_cb cb, void *arg)
{
    /* Even with nothing new, an earlier batch is not durable until its commit completes. */
    if (s->fly)
        return STORE_E_BUSY;
    batch *b = s->open;
    if (!b->nops)
        return STORE_DONE;
    b->cb = cb;
    b->arg = arg;
    b->next_id = s->next_id;
    b->next_qid = s->next_qid;
    s->fly = b;
    s->open = b == &s->bat[0] ? &s->bat[1] : &s->bat[0];
    s->open_seq++;
    s->work.data = s;
    int rc = uv_queue_work(s->loop, &s->work, sqlite__commit_work, sqlite__commit_done);
    if (rc != 0) {
        s->open = b;
        s->open_seq--;
        s->fly = NULL;
        b->cb = NULL;
        b->arg = NULL;
        sqlite__set_err(s, "commit: %s", uv_strerror(rc));
        return STORE_E_IO;
    }
    return STORE_OK;
}

static size_t sq_depth(store *s, const char *queue, size_t queue_len)
{
    squeue *q = find_queue(s, queue, queue_len, store_hash_name(queue, queue_len));
    return q ? q->nwin + q->nwaiting + (size_t)q->spilled : 0;
}

store_err store_sqlite_open(const store_options *opts, store **out, char *reason,
                            size_t reason_size)
{
    if (reason && reason_size)
        reason[0] = '\0';
    if (!opts || !opts->loop || !opts->path || !opts->path[0] || !out) {
        if (reason && reason_size)
            snprintf(reason, reason_size, "a loop and a path are needed");
        return STORE_E_INVALID;
    }
    store *s = calloc(1, sizeof *s);
    if (!s) {
        if (reason && reason_size)
            snprintf(reason, reason_size, "out of memory");
        return STORE_E_NOMEM;
    }
    s->loop = opts->loop;
    s->lock_fd = -1;
    s->open = &s->bat[0];
    s->open_seq = 1;
    store_err err = sqlite__open_file(s, opts);
    s->opened = err == STORE_OK;
    if (err != STORE_OK) {
        if (err == STORE_E_NOMEM && !s->err[0])
            sqlite__set_err(s, "out of memory");
        if (reason && reason_size)
            snprintf(reason, reason_size, "%s", s->err);
        sq_close(s);
        return err;
    }
    *out = s;
    return STORE_OK;
}

static store_err sq_open(const store_options *opts, store **out)
{
    return store_sqlite_open(opts, out, opts ? opts->reason : NULL, opts ? opts->reason_size : 0);
}

static const char *sq_last_error(store *s)
{
    return s->err;
}

/* Records, queues, their tables, the batches and the reader's page cache. The writer's
 * cache is not asked for (the commit thread may be using it); it is bounded by its
 * cache_size (SQLite's default: nothing here sets it). */
static size_t sq_resident(store *s)
{
    size_t n = sizeof *s + s->bytes + (s->ids.cap + s->queues.cap) * sizeof(void *) +
               (s->bat[0].cap + s->bat[1].cap) * sizeof(op);
    int cur = 0, hi = 0;
    if (s->rdb && sqlite3_db_status(s->rdb, SQLITE_DBSTATUS_CACHE_USED, &cur, &hi, 0) ==
                      SQLITE_OK && cur > 0)
        n += (size_t)cur;
    return n;
}

static const store_ops sqlite_ops = {
    .version = STORE_OPS_VERSION,
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .enqueue = sq_enqueue,
    .take = sq_take,
    .enqueue_hashed = sq_enqueue_hashed,
    .take_hashed = sq_take_hashed,
    .cancel = sq_cancel,
    .requeue_at = sq_requeue_at,
    .take_at = sq_take_at,
    .next_due = sq_next_due,
    .get = sq_get,
    .ack = sq_ack,
    .requeue = sq_requeue,
    .commit = sq_commit,
    .depth = sq_depth,
    .resident = sq_resident,
    .last_error = sq_last_error,
};

const store_ops *store_sqlite_backend(void)
{
    return &sqlite_ops;
}
