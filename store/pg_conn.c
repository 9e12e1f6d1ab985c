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
 * the session, the statements, LISTEN, the node's stompd_node.batch) tells whether the
 * batch in flight was committed before the loss (its number reached the node's batch) or
 * must be sent again. Idle, the connection is watched unreferenced, for the other nodes'
 * notifications (pg_share.c), so an idle store keeps no loop running.
 */
#include "pg_int.h"

#include <stdio.h>
#include <string.h>

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
        PGresult *r = PQprepare(s->conn, pg__stmts[i].name, pg__stmts[i].sql, pg__stmts[i].n,
                                pg__stmts[i].types);
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
    int rc = uv_poll_start(s->poll, events, on_poll);
    /* Idle, the connection is watched only for notifications: that keeps no loop running. */
    if (s->fly || s->sync_out || s->state != PG_READY)
        uv_ref((uv_handle_t *)s->poll);
    else
        uv_unref((uv_handle_t *)s->poll);
    return rc;
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
    for (size_t i = 0; i < s->nclaimed; i++)
        PQclear(s->claimed[i]);
    s->nclaimed = 0;
    pg__dur_lost(s); /* answers of a transaction that may not commit: asked again */
    /* A claim in flight may have committed: what it took is freed by the next batch. */
    for (size_t i = 0; s->fly && i < s->fly->nops; i++)
        if (s->fly->ops[i].kind == OP_CLAIM)
            s->orphans = 1;
}

static void idle_check(store *s);

void pg__quiesce(store *s)
{
    s->quiet = 1;
    pg__share_stop(s);
    idle_check(s);
}

void pg__detach(store *s)
{
    close_poll(s);
    close_timer(s);
}

/* With nothing in flight the store holds no referenced handle (the broker may end its loop
 * and close the store after it): an idle connection is watched, unreferenced, for the
 * other nodes' notifications (and a loss found so); a lost one is found by the next commit. */
static void idle_check(store *s)
{
    if (s->fly || s->sync_out)
        return;
    if (s->state == PG_READY && (s->quiet || watch(s, UV_READABLE) != 0))
        close_poll(s);
    if (s->state == PG_DOWN)
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

void pg__send_fly(store *s)
{
    pbatch *b = s->fly;
    if (b && s->state == PG_DOWN && !(s->timer && uv_is_active((uv_handle_t *)s->timer)))
        reconnect(s); /* lost while idle */
    if (!b || s->state != PG_READY || s->sync_out)
        return; /* it goes once the connection is ready */
    /* A claim lost with its connection may have committed: give back what it took. */
    int rc = s->orphans ? pg__send_orphans(s) : 0;
    for (size_t i = 0, used = 0; rc == 0 && i < b->nops; i += used)
        rc = pg__send_next(s, b, i, &used);
    char seq[8], next[8], own[4];
    pg__put64(seq, b->seq);
    pg__put64(next, b->next_id);
    pg__put32(own, (uint32_t)s->node);
    const char *v[3] = { seq, next, own };
    const int len[3] = { 8, 8, 4 };
    if (rc == 0)
        rc = pg__send_stmt(s, P_STATE, v, len);
    if (rc == 0 && !PQpipelineSync(s->conn))
        rc = -1;
    s->round_trips++;
    b->orphans = s->orphans;
    if (rc != 0) {
        lost(s, PQerrorMessage(s->conn));
        return;
    }
    s->sync_out = 1;
    s->nres = 0;
    s->bad = 0;
    s->fail[0] = '\0';
    s->dur_next = 0;
    flush(s);
}

/* The setup pipeline of a fresh connection: the session, the statements, the wake-ups,
 * the number of this node's last committed batch. */
static void send_setup(store *s)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT batch FROM stompd_node WHERE id = %d", (int)s->node);
    int ok = PQsendQueryParams(s->conn,
                               s->sync_full ? "SET synchronous_commit TO DEFAULT"
                                            : "SET synchronous_commit TO off",
                               0, NULL, NULL, NULL, NULL, 0) &&
             (!PG_HAS_JIT(s->conn) ||
              PQsendQueryParams(s->conn, PG_SET_JIT, 0, NULL, NULL, NULL, NULL, 0));
    for (int i = 0; ok && i < P__COUNT; i++)
        ok = PQsendPrepare(s->conn, pg__stmts[i].name, pg__stmts[i].sql, pg__stmts[i].n,
                           pg__stmts[i].types);
    ok = ok && PQsendQueryParams(s->conn, "LISTEN stompd_free", 0, NULL, NULL, NULL, NULL, 0) &&
         PQsendQueryParams(s->conn, "LISTEN stompd_want", 0, NULL, NULL, NULL, NULL, 0) &&
         PQsendQueryParams(s->conn, "LISTEN stompd_topic", 0, NULL, NULL, NULL, NULL, 0) &&
         PQsendQueryParams(s->conn, "LISTEN stompd_durable", 0, NULL, NULL, NULL, NULL, 0) &&
         PQsendQueryParams(s->conn, sql, 0, NULL, NULL, NULL, NULL, 0) &&
         PQpipelineSync(s->conn);
    if (!ok) {
        lost(s, PQerrorMessage(s->conn));
        return;
    }
    s->state = PG_SETUP;
    s->sync_out = 1;
    s->nres = 0;
    s->bad = 0;
    s->db_batch = 0; /* no row: the node was taken for dead, nothing of it is known */
    s->be_pid = PQbackendPID(s->conn);
    flush(s);
}

/* ---- reading ---- */

/* The setup's results are in: the store is ready, and the batch in flight is settled (it
 * was committed before the loss) or sent. */
static void setup_done(store *s, int *gone)
{
    if (s->bad) {
        lost(s, s->fail);
        return;
    }
    s->state = PG_READY;
    s->backoff_ms = 0;
    s->err[0] = '\0';
    close_timer(s);
    pg__share_reconnected(s);
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
        s->db_batch = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    } else if (st == PGRES_TUPLES_OK && PQnfields(r) == 9 && PQntuples(r) > 0) {
        /* A claim's rows: they join the store if the batch commits. */
        if (s->nclaimed == s->claimed_cap) {
            size_t ncap = s->claimed_cap ? 2 * s->claimed_cap : 8;
            PGresult **n = realloc(s->claimed, ncap * sizeof *n);
            if (!n) {
                s->orphans = 1; /* the rows stay the node's: the next batch frees them */
                s->nres++;
                PQclear(r);
                return;
            }
            s->claimed = n;
            s->claimed_cap = ncap;
        }
        s->claimed[s->nclaimed++] = r;
        s->nres++;
        return; /* kept */
    } else if (st == PGRES_TUPLES_OK && PQnfields(r) == 8) {
        pg__dur_answer(s, r); /* a durable subscription's: kept until its batch settles */
        s->nres++;
        return;
    } else if (st == PGRES_TUPLES_OK && PQnfields(r) == 3) {
        pg__topic_fetched(s, r); /* a topic message's row */
    } else if (st == PGRES_TUPLES_OK && PQnfields(r) == 2 && PQntuples(r) == 1) {
        /* The lease: other live nodes, queues with rows freed. */
        s->lease_others = pg__get64(PQgetvalue(r, 0, 0));
        s->lease_freed = pg__get64(PQgetvalue(r, 0, 1));
    }
    PQclear(r);
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
        PGnotify *n;
        while (s->conn && (n = PQnotifies(s->conn)) != NULL) {
            pg__notified(s, n->relname, n->extra, n->be_pid);
            PQfreemem(n);
        }
        pg__topic_drain(s);
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
    /* Watched from the start: the other nodes' notifications come before any commit. */
    idle_check(s);
    return STORE_OK;
}
