/* pg_stmt.c: the PostgreSQL backend's statements and how a batch's operations become them:
 * one prepared statement with binary parameters and results per operation, or per run of
 * enqueues, acks or releases (binary arrays), so a batch of any size is a few statements.
 * The statements that share queues between nodes (claim, want, release, lease, orphans)
 * are here too; pg_share.c says when they are used.
 */
#include "pg_int.h"

#include <stdio.h>
#include <string.h>

/* Parameter types (pg_type oids), and those of their arrays. */
enum { T_BOOL = 16, T_BYTEA = 17, T_INT8 = 20, T_INT2 = 21, T_INT4 = 23, T_TEXT = 25 };
enum { T_BYTEA_A = 1001, T_INT2_A = 1005, T_INT4_A = 1007, T_INT8_A = 1016 };

/* The most operations one statement carries (a run of enqueues or acks). */
#define RUN_MAX 4096

/* The queues of the rows in CTE r, one notification each: their rows are free to claim. */
#define NOTIFY_FREED "SELECT count(pg_notify('stompd_free', q)) FROM" \
                     " (SELECT DISTINCT encode(queue, 'hex') AS q FROM r) AS f"
#define ROW_COLS "m.id, m.queue, m.prio, m.ord, m.redeliveries, m.not_before, m.expires," \
                 " m.headers, m.body"

static int send_claim(store *s, const pop *o);
static int send_lease(store *s);

const pg_stmt pg__stmts[P__COUNT] = {
    [P_INS] = { "stompd_ins",
                "INSERT INTO stompd_msg(id, queue, prio, ord, redeliveries, not_before,"
                " expires, headers, body, owner) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9,"
                " $10)",
                10, { T_INT8, T_BYTEA, T_INT2, T_INT8, T_INT4, T_INT8, T_INT8, T_BYTEA,
                      T_BYTEA, T_INT4 } },
    [P_DEL] = { "stompd_del", "DELETE FROM stompd_msg WHERE id = $1", 1, { T_INT8 } },
    [P_REQ] = { "stompd_req",
                "UPDATE stompd_msg SET ord = $2, redeliveries = $3, not_before = $4"
                " WHERE id = $1",
                4, { T_INT8, T_INT8, T_INT4, T_INT8 } },
    [P_FRONT] = { "stompd_front",
                  "INSERT INTO stompd_front(queue, prio, value) VALUES($1, $2, $3)"
                  " ON CONFLICT (queue, prio) DO UPDATE"
                  " SET value = greatest(stompd_front.value, excluded.value)",
                  3, { T_BYTEA, T_INT2, T_INT8 } },
    /* Each node its own row: nodes committing at once never wait on each other here. */
    [P_STATE] = { "stompd_state",
                  "UPDATE stompd_node SET batch = $1, next_id = greatest(next_id, $2)"
                  " WHERE id = $3",
                  3, { T_INT8, T_INT8, T_INT4 } },
    /* A run of enqueues, or of acks, as one statement over binary arrays. */
    [P_INS_MANY] = { "stompd_ins_many",
                     "INSERT INTO stompd_msg(id, queue, prio, ord, redeliveries, not_before,"
                     " expires, headers, body, owner) SELECT u.*, $10 FROM"
                     " unnest($1, $2, $3, $4, $5, $6, $7, $8, $9) AS u",
                     10, { T_INT8_A, T_BYTEA_A, T_INT2_A, T_INT8_A, T_INT4_A, T_INT8_A,
                           T_INT8_A, T_BYTEA_A, T_BYTEA_A, T_INT4 } },
    [P_DEL_MANY] = { "stompd_del_many", "DELETE FROM stompd_msg WHERE id = ANY($1)", 1,
                     { T_INT8_A } },
    /* Up to $2 free rows of queue $1 due at $3 become node $4's, in delivery order; rows
     * another node is claiming are skipped, not waited for. */
    [P_CLAIM] = { "stompd_claim",
                  "UPDATE stompd_msg AS m SET owner = $4 FROM (SELECT id FROM stompd_msg"
                  " WHERE queue = $1 AND owner = 0 AND not_before <= $3"
                  " ORDER BY prio DESC, ord, id LIMIT $2 FOR UPDATE SKIP LOCKED) AS c"
                  " WHERE m.id = c.id RETURNING " ROW_COLS,
                  4, { T_BYTEA, T_INT8, T_INT8, T_INT4 } },
    [P_WANT] = { "stompd_want", "SELECT pg_notify('stompd_want', $1)", 1, { T_TEXT } },
    [P_RELEASE] = { "stompd_release",
                    "WITH r AS (UPDATE stompd_msg SET owner = 0 WHERE id = ANY($1)"
                    " AND owner = $2 RETURNING queue) " NOTIFY_FREED,
                    2, { T_INT8_A, T_INT4 } },
    /* Renew node $1's lease for $2 ms (its row made again if it was taken for dead), free
     * the rows of nodes whose lease ran out (counted as delivered once more up to their
     * band's bound, as after a crash) and their durable subscriptions, and forget those
     * nodes. Answers how many other nodes are alive and how many queues got free rows
     * (and subscriptions lost their live node). */
    [P_LEASE] = { "stompd_lease",
                  PG_REAP_SQL(" AND id <> $1") ","
                  " me AS (INSERT INTO stompd_node(id, lease_until) VALUES($1, " PG_NOW_MS
                  " + $2) ON CONFLICT (id) DO UPDATE SET lease_until = excluded.lease_until"
                  " RETURNING id)"
                  " SELECT (SELECT count(*) FROM stompd_node WHERE id <> $1 AND lease_until >= "
                  PG_NOW_MS "), (" NOTIFY_FREED ") + " PG_REAP_NOTIFY,
                  2, { T_INT4, T_INT8 } },
    /* Node $1's rows that no record in memory holds ($2: every id it has). */
    [P_ORPHANS] = { "stompd_orphans",
                    "WITH r AS (UPDATE stompd_msg SET owner = 0 WHERE owner = $1"
                    " AND NOT (id = ANY($2)) RETURNING queue) " NOTIFY_FREED,
                    2, { T_INT4, T_INT8_A } },
    /* Topic messages to the other nodes (pg_topic.c): inline; by reference, the rows older
     * than $3 ms deleted; a row read. */
    [P_TOPIC] = { "stompd_topic", "SELECT pg_notify('stompd_topic', $1)", 1, { T_TEXT } },
    [P_TOPIC_BIG] = { "stompd_topic_big",
                      "WITH d AS (DELETE FROM stompd_topic WHERE at_ms < " PG_NOW_MS " - $3),"
                      " t AS (INSERT INTO stompd_topic(at_ms, data) VALUES(" PG_NOW_MS ", $2)"
                      " RETURNING id) SELECT pg_notify('stompd_topic', $1 || (SELECT id FROM t))",
                      3, { T_TEXT, T_BYTEA, T_INT8 } },
    [P_TOPIC_GET] = { "stompd_topic_get",
                      "SELECT id, at_ms, data FROM stompd_topic WHERE id = $1", 1, { T_INT8 } },
    /* A run of enqueues to backlogs this node is not the live node of (pg_durable.c): free
     * rows; the live nodes of their subscriptions hear of them. */
    [P_INS_FREE] = { "stompd_ins_free",
                     "WITH r AS (INSERT INTO stompd_msg(id, queue, prio, ord, redeliveries,"
                     " not_before, expires, headers, body, owner) SELECT u.*, 0 FROM"
                     " unnest($1, $2, $3, $4, $5, $6, $7, $8, $9) AS u RETURNING queue)"
                     " SELECT count(pg_notify('stompd_free', q)) FROM (SELECT DISTINCT"
                     " encode(r.queue, 'hex') AS q FROM r JOIN stompd_durable AS d"
                     " ON d.queue = r.queue WHERE d.live_node <> 0) AS f",
                     9, { T_INT8_A, T_BYTEA_A, T_INT2_A, T_INT8_A, T_INT4_A, T_INT8_A,
                          T_INT8_A, T_BYTEA_A, T_BYTEA_A } },
    /* Durable subscriptions (pg_durable.c). The answers have 8 columns: (id, a flag,
     * client_id, name, topic, selector, no_local, live_node). A new one (flag: added; not
     * when another has its identity); node $2 its live node if none (or a dead one) is
     * (flag: granted; live_node: the one before, NULL without the row); no live node; the
     * removal of one and of its backlog's rows; one row (flag: it exists); all. */
    [P_DUR_NEW] = { "stompd_dur_new",
                    "WITH i AS (INSERT INTO stompd_durable(id, queue, client_id, name, topic,"
                    " selector, no_local) VALUES($1, $2, $3, $4, $5, $6, $7)"
                    " ON CONFLICT DO NOTHING RETURNING id)"
                    " SELECT $1, (SELECT count(*) FROM i), NULL::bytea, NULL::bytea,"
                    " NULL::bytea, NULL::bytea, NULL::boolean, NULL::integer",
                    7, { T_INT8, T_BYTEA, T_BYTEA, T_BYTEA, T_BYTEA, T_BYTEA, T_BOOL } },
    [P_DUR_LIVE] = { "stompd_dur_live",
                     "WITH u AS (UPDATE stompd_durable AS d SET live_node = $2 WHERE d.id = $1"
                     " AND (d.live_node IN (0, $2) OR NOT EXISTS (SELECT 1 FROM stompd_node"
                     " AS n WHERE n.id = d.live_node AND n.lease_until >= " PG_NOW_MS "))"
                     " RETURNING d.id)"
                     " SELECT $1, (SELECT count(*) FROM u), NULL::bytea, NULL::bytea,"
                     " NULL::bytea, NULL::bytea, NULL::boolean,"
                     " (SELECT live_node FROM stompd_durable WHERE id = $1)",
                     2, { T_INT8, T_INT4 } },
    [P_DUR_UNLIVE] = { "stompd_dur_unlive",
                       "UPDATE stompd_durable SET live_node = 0 WHERE id = $1"
                       " AND live_node = $2",
                       2, { T_INT8, T_INT4 } },
    [P_DUR_DROP] = { "stompd_dur_drop",
                     "WITH d AS (DELETE FROM stompd_durable WHERE id = $1),"
                     " f AS (DELETE FROM stompd_front WHERE queue = $2)"
                     " DELETE FROM stompd_msg WHERE queue = $2",
                     2, { T_INT8, T_BYTEA } },
    [P_DUR_GET] = { "stompd_dur_get",
                    "SELECT $1, (d.id IS NOT NULL)::integer::bigint, d.client_id, d.name,"
                    " d.topic, d.selector, d.no_local, d.live_node FROM (SELECT 1) AS x"
                    " LEFT JOIN stompd_durable AS d ON d.id = $1",
                    1, { T_INT8 } },
    [P_DUR_LOAD] = { "stompd_dur_load",
                     "SELECT id, 1::bigint, client_id, name, topic, selector, no_local,"
                     " live_node FROM stompd_durable",
                     0, { 0 } },
    [P_DUR_NOTIFY] = { "stompd_dur_notify", "SELECT pg_notify('stompd_durable', $1)", 1,
                       { T_TEXT } },
};

void pg__put64(char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (char)(v & 0xff);
}

void pg__put32(char *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (char)(v & 0xff);
}

void pg__put16(char *p, uint16_t v)
{
    p[0] = (char)(v >> 8);
    p[1] = (char)(v & 0xff);
}

uint64_t pg__get64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | (unsigned char)p[i];
    return v;
}

/* ---- sending ---- */

int pg__send_stmt(store *s, int st, const char *const *v, const int *len)
{
    static const int fmt[10] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    return PQsendQueryPrepared(s->conn, pg__stmts[st].name, pg__stmts[st].n, v, len, fmt, 1)
               ? 0
               : -1;
}

static int send_enq(store *s, const store__rec *r)
{
    const pqueue *q = r->q;
    char id[8], prio[2], ord[8], red[4], nb[8], exp[8];
    pg__put64(id, r->link.id);
    pg__put16(prio, r->prio);
    pg__put64(ord, (uint64_t)r->ord);
    pg__put32(red, r->redeliveries);
    pg__put64(nb, r->not_before);
    pg__put64(exp, r->expires);
    char own[4];
    pg__put32(own, (uint32_t)s->node);
    const char *v[10] = { id, q->name, prio, ord, red, nb, exp, r->data, r->data + r->hlen,
                          own };
    const int len[10] = { 8, (int)q->link.len, 2, 8, 4, 8, 8, (int)r->hlen, (int)r->blen, 4 };
    return pg__send_stmt(s, P_INS, v, len);
}

static int send_op(store *s, const pop *o)
{
    char a[8], b[8], c[8];
    switch (o->kind) {
    case OP_ENQ:
        return send_enq(s, o->ptr);
    case OP_ACK: {
        pg__put64(a, (uint64_t)o->key);
        const char *v[1] = { a };
        const int len[1] = { 8 };
        return pg__send_stmt(s, P_DEL, v, len);
    }
    case OP_REQUEUE: {
        pg__put64(a, (uint64_t)o->key);
        pg__put64(b, (uint64_t)o->ord);
        pg__put32(c, o->redeliveries);
        char nb[8];
        pg__put64(nb, o->not_before);
        const char *v[4] = { a, b, c, nb };
        const int len[4] = { 8, 8, 4, 8 };
        return pg__send_stmt(s, P_REQ, v, len);
    }
    case OP_FRONT: {
        const pqueue *q = o->ptr;
        pg__put16(a, o->prio);
        pg__put64(b, (uint64_t)o->ord);
        const char *v[3] = { q->name, a, b };
        const int len[3] = { (int)q->link.len, 2, 8 };
        return pg__send_stmt(s, P_FRONT, v, len);
    }
    case OP_CLAIM:
        return send_claim(s, o);
    case OP_LEASE:
        return send_lease(s);
    case OP_TOPIC:
    case OP_TOPIC_BIG:
        return pg__send_topic(s, o);
    case OP_FETCH:
        return pg__send_fetch(s, o);
    case OP_DUR_NEW:
    case OP_DUR_LIVE:
    case OP_DUR_UNLIVE:
    case OP_DUR_DROP:
    case OP_DUR_GET:
    case OP_DUR_LOAD:
        return pg__send_dur(s, o);
    default:
        return -1;
    }
}

/* ---- runs as binary arrays (one dimension, no NULLs) ---- */

typedef struct arr {
    char *p;
    size_t len, cap;
    uint32_t n;
} arr;

static int arr_room(arr *a, size_t more)
{
    if (a->cap - a->len >= more)
        return 0;
    size_t ncap = a->cap ? a->cap : 256;
    while (ncap - a->len < more)
        ncap *= 2;
    char *np = realloc(a->p, ncap);
    if (!np)
        return -1;
    a->p = np;
    a->cap = ncap;
    return 0;
}

/* The array's header, for elements of type oid (its count is set by arr_done). */
static int arr_begin(arr *a, uint32_t oid)
{
    if (arr_room(a, 20) != 0)
        return -1;
    pg__put32(a->p, 1);      /* dimensions */
    pg__put32(a->p + 4, 0);  /* no NULLs */
    pg__put32(a->p + 8, oid);
    pg__put32(a->p + 16, 1); /* lower bound */
    a->len = 20;
    a->n = 0;
    return 0;
}

static int arr_add(arr *a, const void *v, size_t n)
{
    if (arr_room(a, 4 + n) != 0)
        return -1;
    pg__put32(a->p + a->len, (uint32_t)n);
    if (n)
        memcpy(a->p + a->len + 4, v, n);
    a->len += 4 + n;
    a->n++;
    return 0;
}

static int arr_int(arr *a, uint64_t v, size_t width)
{
    char b[8];
    if (width == 8)
        pg__put64(b, v);
    else if (width == 4)
        pg__put32(b, (uint32_t)v);
    else
        pg__put16(b, (uint16_t)v);
    return arr_add(a, b, width);
}

static void arr_done(arr *a)
{
    pg__put32(a->p + 12, a->n);
}

/* The enqueues o[0..n) (all ENQ, or all ENQ_FREE) as one statement. */
static int send_enq_run(store *s, const pop *o, size_t n)
{
    int free_rows = o->kind == OP_ENQ_FREE;
    static const uint32_t oid[9] = { T_INT8, T_BYTEA, T_INT2, T_INT8, T_INT4,
                                     T_INT8, T_INT8, T_BYTEA, T_BYTEA };
    arr a[9] = { { 0 } };
    int rc = 0;
    for (int c = 0; rc == 0 && c < 9; c++)
        rc = arr_begin(&a[c], oid[c]);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const store__rec *r = o[i].ptr;
        const pqueue *q = r->q;
        if (arr_int(&a[0], r->link.id, 8) || arr_add(&a[1], q->name, q->link.len) ||
            arr_int(&a[2], r->prio, 2) || arr_int(&a[3], (uint64_t)r->ord, 8) ||
            arr_int(&a[4], r->redeliveries, 4) || arr_int(&a[5], r->not_before, 8) ||
            arr_int(&a[6], r->expires, 8) || arr_add(&a[7], r->data, r->hlen) ||
            arr_add(&a[8], r->data + r->hlen, r->blen))
            rc = -1;
    }
    const char *v[10];
    int len[10];
    char own[4];
    pg__put32(own, (uint32_t)s->node);
    v[9] = own;
    len[9] = 4;
    for (int c = 0; c < 9; c++) {
        if (rc == 0 && a[c].len > INT32_MAX)
            rc = -1; /* too large for one statement: the batch fails */
        if (rc == 0)
            arr_done(&a[c]);
        v[c] = a[c].p;
        len[c] = (int)a[c].len;
    }
    if (rc == 0)
        rc = pg__send_stmt(s, free_rows ? P_INS_FREE : P_INS_MANY, v, len);
    for (int c = 0; c < 9; c++)
        free(a[c].p);
    return rc;
}

/* The acks (ids in key) or the releases (records in ptr) o[0..n) as one statement. */
static int send_id_run(store *s, const pop *o, size_t n)
{
    arr a = { 0 };
    int rc = arr_begin(&a, T_INT8);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = arr_int(&a, o[i].kind == OP_ACK ? (uint64_t)o[i].key
                                             : ((const store__rec *)o[i].ptr)->link.id, 8);
    char own[4];
    pg__put32(own, (uint32_t)s->node);
    if (rc == 0) {
        arr_done(&a);
        const char *v[2] = { a.p, own };
        const int len[2] = { (int)a.len, 4 };
        rc = pg__send_stmt(s, o->kind == OP_ACK ? P_DEL_MANY : P_RELEASE, v, len);
    }
    free(a.p);
    return rc;
}

int pg__send_orphans(store *s)
{
    arr a = { 0 };
    int rc = arr_begin(&a, T_INT8);
    for (const store__idlink *l = store__ids_first(&s->ids); rc == 0 && l;
         l = store__ids_next(&s->ids, l))
        rc = arr_int(&a, l->id, 8);
    /* An acked message has left memory, but its row is deleted only by its batch, maybe
     * the next one: freed meanwhile, another claim would deliver it again. */
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; rc == 0 && i < s->bat[k].nops; i++)
            if (s->bat[k].ops[i].kind == OP_ACK && s->bat[k].ops[i].key > 0)
                rc = arr_int(&a, (uint64_t)s->bat[k].ops[i].key, 8);
    char own[4];
    pg__put32(own, (uint32_t)s->node);
    if (rc == 0) {
        arr_done(&a);
        const char *v[2] = { own, a.p };
        const int len[2] = { 4, (int)a.len };
        rc = pg__send_stmt(s, P_ORPHANS, v, len);
    }
    free(a.p);
    return rc;
}

/* A claim of queue q, and the wish for more that other nodes hear (when there are some). */
static int send_claim(store *s, const pop *o)
{
    const pqueue *q = o->ptr;
    char lim[8], now[8], own[4];
    pg__put64(lim, (uint64_t)o->key);
    pg__put64(now, o->not_before);
    pg__put32(own, (uint32_t)s->node);
    const char *v[4] = { q->name, lim, now, own };
    const int len[4] = { (int)q->link.len, 8, 8, 4 };
    if (pg__send_stmt(s, P_CLAIM, v, len) != 0)
        return -1;
    if (s->alone || q->link.len > 3999 || q->backlog)
        return 0; /* nobody to ask; a name longer than a notification carries; a backlog,
                   * which only its live node holds */
    char hex[8000];
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < q->link.len; i++) {
        hex[2 * i] = digits[(unsigned char)q->name[i] >> 4];
        hex[2 * i + 1] = digits[(unsigned char)q->name[i] & 15];
    }
    const char *w[1] = { hex };
    const int wlen[1] = { (int)(2 * q->link.len) };
    return pg__send_stmt(s, P_WANT, w, wlen);
}

static int send_lease(store *s)
{
    char own[4], ms[8];
    pg__put32(own, (uint32_t)s->node);
    pg__put64(ms, s->lease_ms);
    const char *v[2] = { own, ms };
    const int len[2] = { 4, 8 };
    return pg__send_stmt(s, P_LEASE, v, len);
}

int pg__send_next(store *s, const pbatch *b, size_t i, size_t *used)
{
    const pop *o = &b->ops[i];
    size_t n = 1;
    while (i + n < b->nops && n < RUN_MAX && b->ops[i + n].kind == o->kind)
        n++;
    if ((o->kind == OP_ENQ && n > 1) || o->kind == OP_ENQ_FREE) {
        *used = n;
        return send_enq_run(s, o, n);
    }
    if ((o->kind == OP_ACK && n > 1) || o->kind == OP_RELEASE) {
        *used = n;
        return send_id_run(s, o, n);
    }
    *used = 1;
    return send_op(s, o);
}

/* ---- durable subscriptions (pg_durable.c) ---- */

int pg__send_dur(store *s, const pop *o)
{
    char id[8], own[4], nl[1], queue[48];
    pg__put64(id, (uint64_t)o->key);
    pg__put32(own, (uint32_t)s->node);
    size_t qlen = pg__backlog_name(queue, sizeof queue, (uint64_t)o->key);
    int rc;
    switch (o->kind) {
    case OP_DUR_NEW: {
        const store_postgres_durable *d = o->ptr;
        nl[0] = (char)d->no_local;
        const char *v[7] = { id, queue, d->client_id, d->name, d->topic, d->selector, nl };
        const int len[7] = { 8, (int)qlen, (int)strlen(d->client_id), (int)strlen(d->name),
                             (int)d->topic_len, d->selector ? (int)strlen(d->selector) : 0, 1 };
        rc = pg__send_stmt(s, P_DUR_NEW, v, len);
        break;
    }
    case OP_DUR_LIVE:
    case OP_DUR_UNLIVE: {
        const char *v[2] = { id, own };
        const int len[2] = { 8, 4 };
        rc = pg__send_stmt(s, o->kind == OP_DUR_LIVE ? P_DUR_LIVE : P_DUR_UNLIVE, v, len);
        break;
    }
    case OP_DUR_DROP: {
        const char *v[2] = { id, queue };
        const int len[2] = { 8, (int)qlen };
        rc = pg__send_stmt(s, P_DUR_DROP, v, len);
        if (!o->prio)
            return rc; /* a clean-up of this node's: nobody to tell */
        break;
    }
    case OP_DUR_GET: {
        const char *v[1] = { id };
        const int len[1] = { 8 };
        return pg__send_stmt(s, P_DUR_GET, v, len);
    }
    case OP_DUR_LOAD:
        return pg__send_stmt(s, P_DUR_LOAD, NULL, NULL);
    default:
        return -1;
    }
    if (rc != 0)
        return rc;
    char text[48];
    int tl = snprintf(text, sizeof text, "%lld:%llu", (long long)s->node,
                      (unsigned long long)o->key);
    const char *v[1] = { text };
    const int len[1] = { tl };
    return pg__send_stmt(s, P_DUR_NOTIFY, v, len);
}
