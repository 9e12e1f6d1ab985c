/* pg_conn.c: the PostgreSQL backend's connection on the loop: a non-blocking libpq
 * connection in pipeline mode, watched with uv_poll on its socket.
 *
 * A commit sends the batch's statements and one Sync (one implicit transaction: all or
 * nothing), flushing as the socket takes it; its results are read as they come, and the
 * Sync's result settles the batch. At most one Sync is outstanding. The loop never waits:
 * reading, writing and connecting go on only when the socket is ready.
 * A lost connection (a read or write fails, or the server goes before the Sync's result)
 * is not a failed commit: the connection is dropped, a timer connects again after 50 ms,
 * doubling to STORE_POSTGRES_RECONNECT_MAX_MS, and the new connection's setup (one pipeline:
 * the advisory lock, the session, the statements, stompd_state.batch) tells whether the
 * batch in flight was committed before the loss (its number reached stompd_state.batch) or
 * must be sent again. The store holds a handle only while a batch is in flight (a loss
 * while idle is found by the next commit), so an idle store keeps no loop running.
 */
#include "pg_int.h"

#include <stdio.h>
#include <string.h>

/* Parameter types (pg_type oids), and those of their arrays. */
enum { T_BYTEA = 17, T_INT8 = 20, T_INT2 = 21, T_INT4 = 23 };
enum { T_BYTEA_A = 1001, T_INT2_A = 1005, T_INT4_A = 1007, T_INT8_A = 1016 };

/* The most operations one statement carries (a run of enqueues or acks). */
#define RUN_MAX 4096

static const struct {
    const char *name, *sql;
    int n;
    Oid types[9];
} stmts[P__COUNT] = {
    [P_INS] = { "stompd_ins",
                "INSERT INTO stompd_msg(id, queue, prio, ord, redeliveries, not_before,"
                " expires, headers, body) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                9, { T_INT8, T_BYTEA, T_INT2, T_INT8, T_INT4, T_INT8, T_INT8, T_BYTEA,
                     T_BYTEA } },
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
    [P_STATE] = { "stompd_state",
                  "UPDATE stompd_state SET batch = $1, next_id = greatest(next_id, $2)",
                  2, { T_INT8, T_INT8 } },
    /* A run of enqueues, or of acks, as one statement over binary arrays. */
    [P_INS_MANY] = { "stompd_ins_many",
                     "INSERT INTO stompd_msg(id, queue, prio, ord, redeliveries, not_before,"
                     " expires, headers, body) SELECT * FROM"
                     " unnest($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                     9, { T_INT8_A, T_BYTEA_A, T_INT2_A, T_INT8_A, T_INT4_A, T_INT8_A,
                          T_INT8_A, T_BYTEA_A, T_BYTEA_A } },
    [P_DEL_MANY] = { "stompd_del_many", "DELETE FROM stompd_msg WHERE id = ANY($1)", 1,
                     { T_INT8_A } },
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

static void no_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

void pg__quiet(store *s, PGconn *c)
{
    (void)PQsetNoticeProcessor(c, no_notice, NULL);
}

int pg__prepare(store *s)
{
    for (int i = 0; i < P__COUNT; i++) {
        PGresult *r = PQprepare(s->conn, stmts[i].name, stmts[i].sql, stmts[i].n,
                                stmts[i].types);
        int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            pg__set_err(s, "prepare: %s", PQerrorMessage(s->conn));
        PQclear(r);
        if (!ok)
            return -1;
    }
    return 0;
}

/* ---- handles ---- */

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void on_poll(uv_poll_t *h, int status, int events);
static void lost(store *s, const char *why);
static void reconnect(store *s);

/* Watch the connection's socket for events (a new handle when the socket changed). */
static int watch(store *s, int events)
{
    uv_os_sock_t fd = PQsocket(s->conn);
    if (s->poll && s->poll_fd != fd) {
        uv_close((uv_handle_t *)s->poll, free_handle);
        s->poll = NULL;
    }
    if (!s->poll) {
        if (fd < 0 || !(s->poll = malloc(sizeof *s->poll)))
            return -1;
        if (uv_poll_init_socket(s->loop, s->poll, fd) != 0) {
            free(s->poll);
            s->poll = NULL;
            return -1;
        }
        s->poll->data = s;
        s->poll_fd = fd;
    }
    return uv_poll_start(s->poll, events, on_poll);
}

static void close_poll(store *s)
{
    if (s->poll) {
        uv_close((uv_handle_t *)s->poll, free_handle);
        s->poll = NULL;
    }
}

static void close_timer(store *s)
{
    if (s->timer) {
        uv_close((uv_handle_t *)s->timer, free_handle);
        s->timer = NULL;
    }
}

/* Drop the connection and its handle (the timer stays). */
static void drop_conn(store *s)
{
    close_poll(s);
    if (s->conn)
        PQfinish(s->conn);
    s->conn = NULL;
    s->state = PG_DOWN;
    s->sync_out = s->flushing = 0;
    s->nres = 0;
    s->bad = 0;
}

void pg__detach(store *s)
{
    close_poll(s);
    close_timer(s);
}

/* With nothing in flight the store holds no handle (the broker may end its loop and close
 * the store after it): an idle connection is not watched, and a loss is found by the next
 * commit. */
static void idle_check(store *s)
{
    if (s->fly || s->sync_out)
        return;
    if (s->state == PG_READY || s->state == PG_DOWN)
        close_poll(s);
    if (s->state != PG_CONNECTING && s->state != PG_SETUP)
        close_timer(s);
}

/* Send what libpq holds: watch for writability while some is left. */
static void flush(store *s)
{
    int rc = PQflush(s->conn);
    if (rc < 0) {
        lost(s, PQerrorMessage(s->conn));
        return;
    }
    s->flushing = rc == 1;
    if (watch(s, UV_READABLE | (s->flushing ? UV_WRITABLE : 0)) != 0)
        lost(s, "cannot watch the connection");
}

/* ---- sending ---- */

/* One prepared statement with binary parameters. 0, or -1 (the connection failed). */
static int send_stmt(store *s, int st, const char *const *v, const int *len)
{
    static const int fmt[9] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    return PQsendQueryPrepared(s->conn, stmts[st].name, stmts[st].n, v, len, fmt, 1) ? 0 : -1;
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
    const char *v[9] = { id, q->name, prio, ord, red, nb, exp, r->data, r->data + r->hlen };
    const int len[9] = { 8, (int)q->link.len, 2, 8, 4, 8, 8, (int)r->hlen, (int)r->blen };
    return send_stmt(s, P_INS, v, len);
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
        return send_stmt(s, P_DEL, v, len);
    }
    case OP_REQUEUE: {
        pg__put64(a, (uint64_t)o->key);
        pg__put64(b, (uint64_t)o->ord);
        pg__put32(c, o->redeliveries);
        char nb[8];
        pg__put64(nb, o->not_before);
        const char *v[4] = { a, b, c, nb };
        const int len[4] = { 8, 8, 4, 8 };
        return send_stmt(s, P_REQ, v, len);
    }
    case OP_FRONT: {
        const pqueue *q = o->ptr;
        pg__put16(a, o->prio);
        pg__put64(b, (uint64_t)o->ord);
        const char *v[3] = { q->name, a, b };
        const int len[3] = { (int)q->link.len, 2, 8 };
        return send_stmt(s, P_FRONT, v, len);
    }
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

/* The enqueues o[0..n) as one statement. */
static int send_enq_run(store *s, const pop *o, size_t n)
{
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
    const char *v[9];
    int len[9];
    for (int c = 0; c < 9; c++) {
        if (rc == 0 && a[c].len > INT32_MAX)
            rc = -1; /* too large for one statement: the batch fails */
        if (rc == 0)
            arr_done(&a[c]);
        v[c] = a[c].p;
        len[c] = (int)a[c].len;
    }
    if (rc == 0)
        rc = send_stmt(s, P_INS_MANY, v, len);
    for (int c = 0; c < 9; c++)
        free(a[c].p);
    return rc;
}

/* The acks o[0..n) as one statement. */
static int send_ack_run(store *s, const pop *o, size_t n)
{
    arr a = { 0 };
    int rc = arr_begin(&a, T_INT8);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = arr_int(&a, (uint64_t)o[i].key, 8);
    if (rc == 0) {
        arr_done(&a);
        const char *v[1] = { a.p };
        const int len[1] = { (int)a.len };
        rc = send_stmt(s, P_DEL_MANY, v, len);
    }
    free(a.p);
    return rc;
}

/* The operations from b->ops[i] on: one statement, for a run of enqueues or acks or one
 * other operation. *used: how many it took. */
static int send_next(store *s, const pbatch *b, size_t i, size_t *used)
{
    const pop *o = &b->ops[i];
    size_t n = 1;
    while (i + n < b->nops && n < RUN_MAX && b->ops[i + n].kind == o->kind)
        n++;
    if (o->kind == OP_ENQ && n > 1) {
        *used = n;
        return send_enq_run(s, o, n);
    }
    if (o->kind == OP_ACK && n > 1) {
        *used = n;
        return send_ack_run(s, o, n);
    }
    *used = 1;
    return send_op(s, o);
}

void pg__send_fly(store *s)
{
    pbatch *b = s->fly;
    if (b && s->state == PG_DOWN && !(s->timer && uv_is_active((uv_handle_t *)s->timer)))
        reconnect(s); /* lost while idle */
    if (!b || s->state != PG_READY || s->sync_out)
        return; /* it goes once the connection is ready */
    int rc = 0;
    for (size_t i = 0, used = 0; rc == 0 && i < b->nops; i += used)
        rc = send_next(s, b, i, &used);
    char seq[8], next[8];
    pg__put64(seq, b->seq);
    pg__put64(next, b->next_id);
    const char *v[2] = { seq, next };
    const int len[2] = { 8, 8 };
    if (rc == 0)
        rc = send_stmt(s, P_STATE, v, len);
    if (rc == 0 && !PQpipelineSync(s->conn))
        rc = -1;
    if (rc != 0) {
        lost(s, PQerrorMessage(s->conn));
        return;
    }
    s->sync_out = 1;
    s->nres = 0;
    s->bad = 0;
    s->fail[0] = '\0';
    flush(s);
}

/* The setup pipeline of a fresh connection: the lock, the session, the statements, the
 * number of the last committed batch. */
static void send_setup(store *s)
{
    char key[8];
    pg__put64(key, PG_LOCK_KEY);
    const char *v[1] = { key };
    const int len[1] = { 8 }, fmt[1] = { 1 };
    const Oid t[1] = { T_INT8 };
    int ok = PQsendQueryParams(s->conn, "SELECT pg_try_advisory_lock($1)", 1, t, v, len, fmt,
                               0) &&
             PQsendQueryParams(s->conn,
                               s->sync_full ? "SET synchronous_commit TO DEFAULT"
                                            : "SET synchronous_commit TO off",
                               0, NULL, NULL, NULL, NULL, 0);
    for (int i = 0; ok && i < P__COUNT; i++)
        ok = PQsendPrepare(s->conn, stmts[i].name, stmts[i].sql, stmts[i].n, stmts[i].types);
    ok = ok && PQsendQueryParams(s->conn, "SELECT batch FROM stompd_state", 0, NULL, NULL, NULL,
                                 NULL, 0) &&
         PQpipelineSync(s->conn);
    if (!ok) {
        lost(s, PQerrorMessage(s->conn));
        return;
    }
    s->state = PG_SETUP;
    s->sync_out = 1;
    s->nres = 0;
    s->bad = 0;
    s->lock_ok = 0;
    flush(s);
}

/* ---- reading ---- */

/* The setup's results are in: the store is ready, and the batch in flight is settled (it
 * was committed before the loss) or sent. */
static void setup_done(store *s, int *gone)
{
    if (s->bad || !s->lock_ok) {
        lost(s, s->bad ? s->fail
                       : "the database is in use by another stompd store (advisory lock held)");
        return;
    }
    s->state = PG_READY;
    s->backoff_ms = 0;
    s->err[0] = '\0';
    close_timer(s);
    if (s->fly && s->fly->seq <= s->db_batch) {
        pg__fly_done(s, 1);
        if (*gone)
            return;
    }
    pg__send_fly(s);
}

/* One result of the outstanding pipeline. */
static void take_result(store *s, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_FATAL_ERROR) {
        if (!s->bad)
            snprintf(s->fail, sizeof s->fail, "%s", PQresultErrorMessage(r));
        s->bad = 1;
    } else if (s->state == PG_SETUP && st == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        const char *v = PQgetvalue(r, 0, 0);
        if (s->nres == 0)
            s->lock_ok = v[0] == 't';
        else
            s->db_batch = strtoull(v, NULL, 10);
    }
    s->nres++;
}

/* Read every result that has arrived. Returns with *gone set when the store was closed by
 * a commit callback. */
static void read_results(store *s, int *gone)
{
    while (s->conn && s->sync_out && !PQisBusy(s->conn)) {
        PGresult *r = PQgetResult(s->conn);
        if (!r) {
            if (PQstatus(s->conn) == CONNECTION_BAD) {
                lost(s, PQerrorMessage(s->conn));
                return;
            }
            continue; /* the end of one statement's results */
        }
        ExecStatusType st = PQresultStatus(r);
        if (st != PGRES_PIPELINE_SYNC) {
            take_result(s, r);
            PQclear(r);
            continue;
        }
        PQclear(r);
        s->sync_out = 0;
        if (s->state == PG_SETUP) {
            setup_done(s, gone);
        } else {
            pg__fly_done(s, !s->bad);
            if (*gone)
                return;
            pg__send_fly(s);
        }
        if (*gone)
            return;
    }
    if (s->conn)
        idle_check(s);
}

/* PQconnectPoll's next step, on the socket's readiness. */
static void connect_step(store *s)
{
    PostgresPollingStatusType st = PQconnectPoll(s->conn);
    if (st == PGRES_POLLING_FAILED) {
        lost(s, PQerrorMessage(s->conn));
        return;
    }
    if (st != PGRES_POLLING_OK) {
        if (watch(s, st == PGRES_POLLING_READING ? UV_READABLE : UV_WRITABLE) != 0)
            lost(s, "cannot watch the connection");
        return;
    }
    if (PQsetnonblocking(s->conn, 1) != 0 || !PQenterPipelineMode(s->conn)) {
        lost(s, PQerrorMessage(s->conn));
        return;
    }
    send_setup(s);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    store *s = h->data;
    if (s->state == PG_CONNECTING) {
        connect_step(s);
        return;
    }
    if (!s->conn)
        return;
    if (status < 0) {
        lost(s, uv_strerror(status));
        return;
    }
    if ((events & UV_WRITABLE) && s->flushing) {
        flush(s);
        if (!s->conn)
            return;
    }
    if (events & UV_READABLE) {
        if (!PQconsumeInput(s->conn)) {
            lost(s, PQerrorMessage(s->conn));
            return;
        }
        int gone = 0;
        s->gone = &gone;
        read_results(s, &gone);
        if (gone)
            return;
        s->gone = NULL;
        if (s->conn && PQstatus(s->conn) == CONNECTION_BAD)
            lost(s, PQerrorMessage(s->conn));
    }
}

/* ---- connecting again ---- */

static void on_timer(uv_timer_t *t)
{
    store *s = t->data;
    const char *const keys[] = { "dbname", "fallback_application_name", NULL };
    const char *const vals[] = { s->conninfo, "stompd", NULL };
    s->conn = PQconnectStartParams(keys, vals, 1);
    if (!s->conn || PQstatus(s->conn) == CONNECTION_BAD) {
        lost(s, s->conn ? PQerrorMessage(s->conn) : "out of memory");
        return;
    }
    pg__quiet(s, s->conn);
    s->state = PG_CONNECTING;
    /* libpq asks for writability first (the connect in progress). */
    if (watch(s, UV_WRITABLE) != 0)
        lost(s, "cannot watch the connection");
}

/* Connect again after the pause (none the first time after a success). */
static void reconnect(store *s)
{
    if (!s->timer) {
        if (!(s->timer = malloc(sizeof *s->timer)))
            return; /* no memory: the next commit tries again (pg__send_fly) */
        (void)uv_timer_init(s->loop, s->timer);
        s->timer->data = s;
    }
    (void)uv_timer_start(s->timer, on_timer, s->backoff_ms, 0);
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : 50;
    if (s->backoff_ms > STORE_POSTGRES_RECONNECT_MAX_MS)
        s->backoff_ms = STORE_POSTGRES_RECONNECT_MAX_MS;
}

/* The connection is gone (why: libpq's text): drop it; with a batch in flight, connect
 * again after a pause (the batch stays in flight), else at the next commit. */
static void lost(store *s, const char *why)
{
    char text[256];
    snprintf(text, sizeof text, "%s", why && *why ? why : "connection lost");
    pg__set_err(s, "database connection lost (%s): reconnecting", text);
    drop_conn(s);
    if (s->closing)
        return;
    if (s->fly)
        reconnect(s);
    else
        close_timer(s);
}

store_err pg__attach(store *s)
{
    if (PQsetnonblocking(s->conn, 1) != 0 || !PQenterPipelineMode(s->conn)) {
        pg__set_err(s, "pipeline mode: %s", PQerrorMessage(s->conn));
        return STORE_E_IO;
    }
    s->state = PG_READY;
    return STORE_OK;
}
