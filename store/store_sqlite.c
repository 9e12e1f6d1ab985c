/* store_sqlite.c: the SQLite backend of store.h: queues that survive a restart. This file
 * holds its ops table and entry points (open, close, enqueue, ack, cancel, commit, depth,
 * queue_size, resident), the queues' lifetime in memory, their message counts and the error
 * text last_error reports.
 *
 * The other jobs have their own files: sqlite_int.h (the shared types, and which thread may
 * touch which connection), sqlite_schema.c (the file: schema, migrations, open, load),
 * sqlite_batch.c (the group commit), sqlite_page.c (records between memory and the file),
 * sqlite_take.c (handing out, requeueing), sqlite_expire.c (expiry), sqlite_browse.c
 * (browsing), sqlite_recover.c (redelivery after a crash or a close), sqlite_vfs.c (the
 * writer's WAL writes gathered until a sync).
 *
 * A queue's order is that of order.h: by priority band, then (ord, id): a fresh message gets
 * ord = id (above every other of its band); a requeued one keeps its ord if that is already
 * below its band's first, else takes one below. A restart reads the same order back, and
 * messages taken but not acked come back where they were taken from. A queue's count and
 * bytes are kept in memory as its messages come and go, never written per batch: open counts
 * the messages from the index, and takes the bytes a clean close wrote (after a crash, or a
 * run with a failed commit, it adds them up from the rows; see sqlite_schema.c).
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
    store__ids_remove(&s->qids, &q->byqid);
    store__order_free(&q->o, &s->bytes);
    s->bytes -= QUEUE_SIZE(q);
    free(q);
}

squeue *sqlite__queue_add(store *s, const char *name, size_t len, uint64_t h, int64_t qid)
{
    squeue *q = calloc(1, sizeof *q + len + 1);
    if (!q)
        return NULL;
    memcpy(q->name, name, len);
    store__order_init(&q->o);
    for (int p = 0; p < STORE__PRIORITIES; p++) {
        sband *b = &q->band[p];
        b->front_ord = b->front_durable = b->front_sent = INT64_MIN;
        b->crash_front = b->tmax = INT64_MIN;
    }
    /* Priority 4 may hand out the next LOOKAHEAD ids at once (the row carries that). */
    sband *b4 = &q->band[STORE_PRIORITY_DEFAULT];
    b4->front_durable = b4->front_sent = add_sat((int64_t)s->next_id, LOOKAHEAD);
    q->byqid.id = (uint64_t)qid;
    store__ids_insert(&s->qids, &q->byqid);
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
    if (q->nrecs || q->pins || q->spill_mask || q->sched_spilled)
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
    push_op(s->open, OP_QDEL, QID(q), 0, 0, NULL);
    s->open->ops[s->open->nops - 1].flags = (uint8_t)q->fronts;
    unlink_queue(s, q);
}

void sqlite__rec_free(store *s, store__rec *r)
{
    squeue *q = r->q;
    store__ids_remove(&s->ids, &r->link);
    q->nrecs--;
    if (r->expires)
        s->nexpiring--;
    s->bytes -= STORE__REC_SIZE(r);
    store__rec_free(&s->pool, r);
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
        store__order_free(&store__container_of(l, squeue, link)->o, NULL);
    store__ids_destroy(&s->ids, offsetof(store__rec, link));
    store__queues_destroy(&s->queues, offsetof(squeue, link));
    free(s->qids.b);
    store__heap_free(&s->expiry, NULL);
    free(s->browsed);
    free(s->bat[0].ops);
    free(s->bat[1].ops);
    store__pool_drain(&s->pool);
    free(s);
}

/* Everything one enqueue into q may need, reserved before anything changes: operations (the
 * queue's row, the insert, a front), the id index, room in the heaps it may join. */
static store_err enqueue_room(store *s, squeue *q, const store_attrs *a)
{
    if (reserve_ops(s->open, 3) != 0 || store__ids_reserve(&s->ids, 1) != STORE_OK)
        return STORE_E_NOMEM;
    if (a->expires &&
        store__heap_reserve(&s->expiry, s->nexpiring + 1, &s->bytes) != STORE_OK)
        return STORE_E_NOMEM;
    if (a->not_before &&
        store__heap_reserve(&q->o.waiting, q->o.waiting.n + q->nlate + 1, &s->bytes) != STORE_OK)
        return STORE_E_NOMEM;
    return STORE_OK;
}

/* A new record of q, pending in the open batch, with the band's first front when the band
 * had nothing ahead of it. Room reserved. */
static void enqueue_rec(store *s, squeue *q, store__rec *r)
{
    batch *b = s->open;
    sband *sb = &q->band[r->prio];
    /* Each batch writing to a queue (re)writes its row: the row then never depends on an
     * earlier batch having succeeded. */
    if (q->row_seq != s->open_seq) {
        q->row_seq = s->open_seq;
        push_op(b, OP_QNEW, QID(q), q->band[STORE_PRIORITY_DEFAULT].front_sent, 0, q);
    }
    r->link.id = s->next_id++;
    r->ord = band_base(r->prio) + (int64_t)r->link.id;
    /* Nothing of the band before it that a crash could count: it may be handed out as soon
     * as it is committed, with a front LOOKAHEAD ids ahead (as takes keep it). */
    if (!sb->npending && !sb->spilled && !q->o.band[r->prio].n && sb->front_sent < r->ord)
        (void)sqlite__front_push(s, q, r->prio, add_sat(r->ord, LOOKAHEAD));
    sb->npending++;
    if (r->not_before)
        q->nlate++;
    if (r->expires)
        s->nexpiring++;
    store__ids_insert(&s->ids, &r->link);
    s->bytes += STORE__REC_SIZE(r);
    q->nrecs++;
    q->count++;
    q->bytes += ROW_SIZE(r);
    store__list_append(&b->recs, &r->on);
    b->max_id = r->link.id;
    push_op(b, OP_ENQ, (int64_t)r->link.id, r->ord, 0, r);
}

static store_err sq_enqueue_attrs(store *s, const char *queue, size_t queue_len, uint64_t h,
                                  const char *headers, size_t headers_len, const char *body,
                                  size_t body_len, const store_attrs *a, uint64_t *id)
{
    static const store_attrs plain = { STORE_PRIORITY_DEFAULT, 0, 0 };
    if (!a)
        a = &plain;
    if (!queue_len || a->priority > STORE_PRIORITY_MAX)
        return STORE_E_INVALID;
    if (headers_len > SIZE_MAX / 4 || body_len > SIZE_MAX / 4)
        return STORE_E_NOMEM;
    /* The file keeps times as signed 64-bit integers, and ids within half a band's ords. */
    if (s->next_id >= (uint64_t)(BAND_SPAN / 2) || a->not_before > (uint64_t)INT64_MAX ||
        a->expires > (uint64_t)INT64_MAX)
        return STORE_E_INVALID;
    /* Refused here rather than failing the whole batch at commit (SQLITE_TOOBIG). */
    if (headers_len + body_len > s->max_row)
        return STORE_E_INVALID;
    squeue *q = find_queue(s, queue, queue_len, h);
    int fresh = !q;
    if (fresh && (store__queues_reserve(&s->queues, 1) != STORE_OK ||
                  store__ids_reserve(&s->qids, 1) != STORE_OK ||
                  !(q = sqlite__queue_add(s, queue, queue_len, h, s->next_qid))))
        return STORE_E_NOMEM;
    store__rec *r = NULL;
    if (enqueue_room(s, q, a) == STORE_OK)
        r = store__rec_new(&s->pool, q, headers, headers_len, body, body_len);
    if (!r) {
        if (fresh)
            unlink_queue(s, q);
        return STORE_E_NOMEM;
    }
    if (fresh)
        s->next_qid++;
    r->prio = a->priority;
    r->not_before = a->not_before;
    r->expires = a->expires;
    enqueue_rec(s, q, r);
    *id = r->link.id;
    return STORE_OK;
}

static store_err sq_enqueue_hashed(store *s, const char *queue, size_t queue_len, uint64_t h,
                                   const char *headers, size_t headers_len, const char *body,
                                   size_t body_len, uint64_t *id)
{
    return sq_enqueue_attrs(s, queue, queue_len, h, headers, headers_len, body, body_len, NULL,
                            id);
}

static store_err sq_enqueue(store *s, const char *queue, size_t queue_len, const char *headers,
                            size_t headers_len, const char *body, size_t body_len, uint64_t *id)
{
    return sq_enqueue_hashed(s, queue, queue_len, store_hash_name(queue, queue_len), headers,
                             headers_len, body, body_len, id);
}

static store_err sq_take_at(store *s, const char *queue, size_t queue_len, uint64_t h,
                            uint64_t now, store_msg *out)
{
    squeue *q = find_queue(s, queue, queue_len, h);
    return q ? sqlite__take(s, q, now, 1, out) : STORE_E_EMPTY;
}

static store_err sq_take_hashed(store *s, const char *queue, size_t queue_len, uint64_t h,
                                store_msg *out)
{
    squeue *q = find_queue(s, queue, queue_len, h);
    return q ? sqlite__take(s, q, UINT64_MAX, 0, out) : STORE_E_EMPTY;
}

static store_err sq_take(store *s, const char *queue, size_t queue_len, store_msg *out)
{
    return sq_take_hashed(s, queue, queue_len, store_hash_name(queue, queue_len), out);
}

static uint64_t sq_next_due(store *s, const char *queue, size_t queue_len, uint64_t h,
                            uint64_t now)
{
    squeue *q = find_queue(s, queue, queue_len, h);
    /* Rows still only in the file may be waiting too: the schedule is read as needed. */
    if (!q || sqlite__promote(s, q, now) != STORE_OK)
        return 0;
    return store__order_next_due(&q->o, now);
}

static store_err sq_ack(store *s, uint64_t id)
{
    store__rec *r = find_rec(s, id);
    if (!r || r->state != STORE__TAKEN)
        return STORE_E_NOTFOUND;
    squeue *q = r->q;
    /* Two slots: the delete, and maybe the queue's removal. */
    if (reserve_ops(s->open, 2) != 0)
        return STORE_E_NOMEM;
    store__rec *ghost = NULL;
    if ((r->flags & REC_OOO) && !(ghost = malloc(sizeof *ghost)))
        return STORE_E_NOMEM;
    push_op(s->open, OP_ACK, (int64_t)r->link.id, (int64_t)ROW_SIZE(r), 0, NULL);
    op *o = &s->open->ops[s->open->nops - 1];
    o->flags = (uint8_t)((r->not_before ? OPF_SCHED : 0) | (r->expires ? OPF_EXPIRY : 0));
    o->not_before = (uint64_t)QID(q);
    q->count--;
    q->bytes -= ROW_SIZE(r);
    if (ghost)
        sqlite__ghost_replace(s, r, ghost);
    else
        sqlite__rec_free(s, r);
    sqlite__queue_drop_unused(s, q);
    return STORE_OK;
}

static store_err sq_get(store *s, uint64_t id, store_msg *out)
{
    const store__rec *r = find_rec(s, id);
    if (!r || r->state != STORE__TAKEN)
        return STORE_E_NOTFOUND;
    sqlite__fill(out, r);
    return STORE_OK;
}

static store_err sq_requeue_at(store *s, uint64_t id, uint64_t not_before)
{
    store__rec *r = find_rec(s, id);
    if (!r || r->state != STORE__TAKEN)
        return STORE_E_NOTFOUND;
    if (not_before > (uint64_t)INT64_MAX)
        return STORE_E_INVALID;
    return sqlite__requeue(s, r, not_before);
}

static store_err sq_requeue(store *s, uint64_t id)
{
    return sq_requeue_at(s, id, 0);
}

/* A pending record of the open batch leaves it: its ENQ operation goes (the batch's others
 * keep their order, so runs of inserts and deletes stay runs), and so does the record. */
static store_err sq_cancel(store *s, uint64_t id)
{
    store__rec *r = find_rec(s, id);
    batch *b = s->open;
    if (!r || r->state != STORE__PENDING)
        return STORE_E_NOTFOUND;
    size_t i = b->nops;
    while (i > 0 && !(b->ops[i - 1].kind == OP_ENQ && b->ops[i - 1].ptr == r))
        i--;
    if (i == 0)
        return STORE_E_NOTFOUND; /* pending, but in the batch being committed */
    squeue *q = r->q;
    memmove(&b->ops[i - 1], &b->ops[i], (b->nops - i) * sizeof *b->ops);
    b->nops--;
    store__list_unlink(&b->recs, &r->on);
    b->max_id = b->recs.tail ? store__container_of(b->recs.tail, store__rec, on)->link.id : 0;
    q->count--;
    q->bytes -= ROW_SIZE(r);
    q->band[r->prio].npending--;
    if (r->not_before)
        q->nlate--;
    sqlite__rec_free(s, r);
    sqlite__queue_drop_unused(s, q); /* room: the ENQ operation just left */
    return STORE_OK;
}

/* Each message is a row of its own, naming one body row (id: the first message's) that the
 * batch writes once. The records in memory each keep a copy of the body, as any message read
 * from the file does: memory holds what the windows hold, the file each body once. */
static store_err sq_enqueue_shared(store *s, store_target *t, size_t n, const char *headers,
                                   size_t headers_len, const char *body, size_t body_len)
{
    if (!n)
        return STORE_E_INVALID;
    store_err err = STORE_OK;
    size_t i = 0;
    for (; i < n && err == STORE_OK; i++)
        err = sq_enqueue_attrs(s, t[i].queue, t[i].queue_len, t[i].hash, headers, headers_len,
                               body, body_len, t[i].attrs, &t[i].id);
    if (err != STORE_OK) {
        for (size_t j = 0; j + 1 < i; j++)
            (void)sq_cancel(s, t[j].id);
        return err;
    }
    /* Each enqueue's operation is the last it pushed. */
    batch *b = s->open;
    for (size_t k = 0, o = b->nops; k < n && o > 0; o--)
        if (b->ops[o - 1].kind == OP_ENQ && b->ops[o - 1].key == (int64_t)t[n - 1 - k].id) {
            b->ops[o - 1].not_before = t[0].id;
            k++;
        }
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
    if (!q)
        return 0;
    size_t n = store__order_count(&q->o) + (size_t)q->sched_spilled;
    for (int p = 0; p < STORE__PRIORITIES; p++)
        n += (size_t)q->band[p].spilled;
    return n;
}

static void sq_queue_size(store *s, const char *queue, size_t queue_len, uint64_t h,
                          uint64_t *count, uint64_t *bytes)
{
    squeue *q = find_queue(s, queue, queue_len, h);
    *count = q ? q->count : 0;
    *bytes = q ? q->bytes : 0;
}

static store_err sq_take_expired(store *s, uint64_t now, store_msg *out)
{
    return sqlite__take_expired(s, now, out);
}

static uint64_t sq_next_expiry(store *s)
{
    return sqlite__next_expiry(s);
}

static store_err sq_browse(store *s, const char *queue, size_t queue_len, uint64_t h,
                           store_cursor *cur, uint64_t now, store_msg *out)
{
    squeue *q = find_queue(s, queue, queue_len, h);
    return q ? sqlite__browse(s, q, cur, now, out) : STORE_E_EMPTY;
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
    store__expiry_init(&s->expiry);
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
    size_t n = sizeof *s - sizeof s->pool + s->bytes + /* pool: order.h */
               (s->ids.cap + s->queues.cap + s->qids.cap) * sizeof(void *) +
               (s->bat[0].cap + s->bat[1].cap) * sizeof(op);
    int cur = 0, hi = 0;
    if (s->rdb && sqlite3_db_status(s->rdb, SQLITE_DBSTATUS_CACHE_USED, &cur, &hi, 0) ==
                      SQLITE_OK && cur > 0)
        n += (size_t)cur;
    return n;
}

static store_err sq_take_match(store *s, const char *queue, size_t queue_len, uint64_t h,
                               uint64_t now, store_scan *scan, store_match_fn match, void *arg,
                               store_msg *out)
{
    squeue *q = find_queue(s, queue, queue_len, h);
    return q ? sqlite__take_match(s, q, now, scan, match, arg, out) : STORE_E_EMPTY;
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
    .enqueue_attrs = sq_enqueue_attrs,
    .take_expired = sq_take_expired,
    .next_expiry = sq_next_expiry,
    .queue_size = sq_queue_size,
    .browse = sq_browse,
    .take_match = sq_take_match,
    .queues = sqlite__queues,
    .enqueue_shared = sq_enqueue_shared,
};

const store_ops *store_sqlite_backend(void)
{
    return &sqlite_ops;
}
