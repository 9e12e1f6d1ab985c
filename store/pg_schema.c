/* pg_schema.c: the PostgreSQL backend's database: its schema and migrations, the open that
 * reads every message in, and the clean close. Both run on a blocking connection: open
 * before the store is used on the loop, close after the last commit.
 *
 * Tables (schema 1), all named stompd_* so they can share a database with others:
 * stompd_msg(id, queue, prio, ord, redeliveries, not_before, expires, headers, body), one
 * row per message not acked, indexed by (queue, prio, ord, id): a queue's delivery order;
 * stompd_front(queue, prio, value): each band's delivery bound (store_postgres.c);
 * stompd_state: one row (next_id, batch: the number of the last committed batch, open: a
 * store has it open, so a crash left it open if a later open still finds it so);
 * stompd_schema(version): the schema version. An older schema is migrated forward in the
 * open's transaction; a newer one is refused and left as it is. A session advisory lock
 * (PG_LOCK_KEY) keeps a second store off the database while one has it.
 */
#include "pg_int.h"

#include <stdio.h>
#include <string.h>

/* Forward migrations: migrations[i] takes the schema from version i to i + 1. Only ever
 * append. */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE stompd_msg(id bigint PRIMARY KEY, queue bytea NOT NULL,"
    " prio smallint NOT NULL, ord bigint NOT NULL, redeliveries integer NOT NULL,"
    " not_before bigint NOT NULL, expires bigint NOT NULL, headers bytea NOT NULL,"
    " body bytea NOT NULL);"
    "CREATE INDEX stompd_msg_order ON stompd_msg(queue, prio, ord, id);"
    "CREATE TABLE stompd_front(queue bytea NOT NULL, prio smallint NOT NULL,"
    " value bigint NOT NULL, PRIMARY KEY(queue, prio));"
    "CREATE TABLE stompd_state(one boolean PRIMARY KEY DEFAULT true CHECK (one),"
    " next_id bigint NOT NULL, batch bigint NOT NULL, open boolean NOT NULL);"
    "INSERT INTO stompd_state(next_id, batch, open) VALUES(1, 0, false);",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* Run sql (no parameters, text results): the result, or NULL with s->err set. The caller
 * clears it. */
static PGresult *run(store *s, const char *sql, ExecStatusType want, const char *what)
{
    PGresult *r = PQexec(s->conn, sql);
    if (r && PQresultStatus(r) == want)
        return r;
    pg__set_err(s, "%s: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(s->conn));
    PQclear(r);
    return NULL;
}

static int exec_ok(store *s, const char *sql, const char *what)
{
    PGresult *r = run(s, sql, PGRES_COMMAND_OK, what);
    PQclear(r);
    return r ? 0 : -1;
}

/* Connect (blocking) and take the advisory lock. */
static store_err connect_db(store *s)
{
    const char *const keys[] = { "dbname", "fallback_application_name", NULL };
    const char *const vals[] = { s->conninfo, "stompd", NULL };
    s->conn = PQconnectdbParams(keys, vals, 1);
    if (!s->conn) {
        pg__set_err(s, "out of memory");
        return STORE_E_NOMEM;
    }
    if (PQstatus(s->conn) != CONNECTION_OK) {
        pg__set_err(s, "cannot connect: %s", PQerrorMessage(s->conn));
        return STORE_E_IO;
    }
    pg__quiet(s, s->conn);
    char sql[64];
    snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%d)", PG_LOCK_KEY);
    PGresult *r = run(s, sql, PGRES_TUPLES_OK, "lock");
    if (!r)
        return STORE_E_IO;
    int ok = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!ok) {
        pg__set_err(s, "the database is in use by another stompd store (advisory lock %d held)",
                    PG_LOCK_KEY);
        return STORE_E_IO;
    }
    if (!s->sync_full && exec_ok(s, "SET synchronous_commit TO off", "session") != 0)
        return STORE_E_IO;
    return STORE_OK;
}

/* Inside the open's transaction: the schema at SCHEMA_VERSION. */
static store_err migrate(store *s)
{
    if (exec_ok(s, "CREATE TABLE IF NOT EXISTS stompd_schema(version integer NOT NULL)",
                "schema") != 0)
        return STORE_E_IO;
    PGresult *r = run(s, "SELECT version FROM stompd_schema", PGRES_TUPLES_OK, "schema");
    if (!r)
        return STORE_E_IO;
    int rows = PQntuples(r);
    long ver = rows ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    if (rows > 1 || ver < 0) {
        pg__set_err(s, "stompd_schema is not a stompd schema version table");
        return STORE_E_IO;
    }
    if (ver > SCHEMA_VERSION) {
        pg__set_err(s, "schema version %ld is newer than this build supports (%d): upgrade stompd",
                    ver, SCHEMA_VERSION);
        return STORE_E_IO;
    }
    for (long v = ver; v < SCHEMA_VERSION; v++)
        if (exec_ok(s, migrations[v], "schema migration") != 0)
            return STORE_E_IO;
    if (ver < SCHEMA_VERSION) {
        char sql[96];
        snprintf(sql, sizeof sql, "%s stompd_schema %s %d",
                 rows ? "UPDATE" : "INSERT INTO", rows ? "SET version =" : "(version) VALUES(",
                 SCHEMA_VERSION);
        if (!rows)
            strcat(sql, ")");
        if (exec_ok(s, sql, "schema version") != 0)
            return STORE_E_IO;
    }
    return STORE_OK;
}

/* Inside the open's transaction: the counters, and after a crash every message at or below
 * its band's bound counted as delivered once more; the bounds then start afresh. */
static store_err recover(store *s)
{
    PGresult *r = run(s, "SELECT next_id, batch, open FROM stompd_state", PGRES_TUPLES_OK,
                      "state");
    if (!r)
        return STORE_E_IO;
    if (PQntuples(r) != 1) {
        PQclear(r);
        pg__set_err(s, "stompd_state must hold one row");
        return STORE_E_IO;
    }
    s->next_id = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    s->batch_seq = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
    int crashed = PQgetvalue(r, 0, 2)[0] == 't';
    PQclear(r);
    if (crashed &&
        exec_ok(s, "UPDATE stompd_msg AS m SET redeliveries = m.redeliveries + 1"
                   " FROM stompd_front AS f WHERE f.queue = m.queue AND f.prio = m.prio"
                   " AND m.ord <= f.value AND m.redeliveries < 2147483647", "recover") != 0)
        return STORE_E_IO;
    if (exec_ok(s, "DELETE FROM stompd_front", "recover") != 0 ||
        exec_ok(s, "UPDATE stompd_state SET open = true", "recover") != 0)
        return STORE_E_IO;
    r = run(s, "SELECT coalesce(max(id), 0) FROM stompd_msg", PGRES_TUPLES_OK, "state");
    if (!r)
        return STORE_E_IO;
    uint64_t max = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (s->next_id <= max)
        s->next_id = max + 1;
    if (s->next_id == 0)
        s->next_id = 1;
    return STORE_OK;
}

/* A binary int column of row as an unsigned value (its width from the result). */
static uint64_t col_int(const store *s, const PGresult *res, int row, int col)
{
    const char *p = PQgetvalue(res, row, col);
    int n = PQgetlength(res, row, col);
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | (unsigned char)p[i];
    /* Sign-extend the narrower columns. */
    if (n > 0 && n < 8 && (p[0] & 0x80))
        v |= ~0ull << (8 * n);
    return v;
}

enum { C_ID, C_QUEUE, C_PRIO, C_ORD, C_RED, C_NB, C_EXP, C_HEADERS, C_BODY };

store__rec *pg__row_rec(store *s, const PGresult *res, int row)
{
    const char *name = PQgetvalue(res, row, C_QUEUE);
    size_t nlen = (size_t)PQgetlength(res, row, C_QUEUE);
    uint64_t prio = col_int(s, res, row, C_PRIO);
    if (!nlen || prio > STORE_PRIORITY_MAX)
        return NULL;
    pqueue *q = pg__get_queue(s, name, nlen, store_hash_name(name, nlen));
    if (!q)
        return NULL;
    store__rec *r = store__rec_new(&s->pool, q, PQgetvalue(res, row, C_HEADERS),
                                   (size_t)PQgetlength(res, row, C_HEADERS),
                                   PQgetvalue(res, row, C_BODY),
                                   (size_t)PQgetlength(res, row, C_BODY));
    if (!r) {
        pg__queue_drop_unused(s, q);
        return NULL;
    }
    uint64_t red = col_int(s, res, row, C_RED);
    r->link.id = col_int(s, res, row, C_ID);
    r->prio = (uint8_t)prio;
    r->ord = (int64_t)col_int(s, res, row, C_ORD);
    r->redeliveries = red > UINT32_MAX ? UINT32_MAX : (uint32_t)red;
    r->not_before = col_int(s, res, row, C_NB);
    r->expires = col_int(s, res, row, C_EXP);
    return r;
}

/* Every message, in each band's order, one row at a time (single-row mode). */
static store_err load(store *s)
{
    if (!PQsendQueryParams(s->conn,
                           "SELECT id, queue, prio, ord, redeliveries, not_before, expires,"
                           " headers, body FROM stompd_msg ORDER BY prio, ord, id",
                           0, NULL, NULL, NULL, NULL, 1) ||
        !PQsetSingleRowMode(s->conn)) {
        pg__set_err(s, "load: %s", PQerrorMessage(s->conn));
        return STORE_E_IO;
    }
    store_err err = STORE_OK;
    PGresult *r;
    while ((r = PQgetResult(s->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (err == STORE_OK && st == PGRES_SINGLE_TUPLE) {
            store__rec *rec = pg__row_rec(s, r, 0);
            if (!rec) {
                pg__set_err(s, "load: out of memory, or a row this build did not write");
                err = STORE_E_NOMEM;
            } else if ((err = pg__add_loaded(s, rec)) != STORE_OK) {
                pg__set_err(s, "load: out of memory");
                pqueue *q = rec->q;
                free(rec);
                pg__queue_drop_unused(s, q);
            }
        } else if (err == STORE_OK && st != PGRES_TUPLES_OK && st != PGRES_SINGLE_TUPLE) {
            pg__set_err(s, "load: %s", PQresultErrorMessage(r));
            err = STORE_E_IO;
        }
        PQclear(r);
    }
    return err;
}

store_err pg__open_db(store *s)
{
    store_err err = connect_db(s);
    if (err != STORE_OK)
        return err;
    if (exec_ok(s, "BEGIN", "begin") != 0)
        return STORE_E_IO;
    err = migrate(s);
    if (err == STORE_OK)
        err = recover(s);
    if (err == STORE_OK && exec_ok(s, "COMMIT", "commit") != 0)
        err = STORE_E_IO;
    if (err != STORE_OK) {
        PGresult *r = PQexec(s->conn, "ROLLBACK");
        PQclear(r);
        return err;
    }
    err = load(s);
    if (err == STORE_OK && pg__prepare(s) != 0)
        err = STORE_E_IO;
    return err;
}

/* ---- the clean close ---- */

/* Queue a statement on the (blocking, pipelined) connection: 0 or -1. */
static int queue_stmt(store *s, const char *sql, int n, const char *const *v, const int *len)
{
    static const int fmt[4] = { 1, 1, 1, 1 };
    return PQsendQueryParams(s->conn, sql, n, NULL, v, len, fmt, 0) ? 0 : -1;
}

#define REWRITE "UPDATE stompd_msg SET ord = $2::bigint, redeliveries = $3::integer," \
                " not_before = $4::bigint WHERE id = $1::bigint"

/* r's row as it is in memory, with count redeliveries and no time. */
static int queue_rewrite(store *s, const store__rec *r, uint32_t count, uint64_t nb)
{
    char id[8], ord[8], red[4], t[8];
    pg__put64(id, r->link.id);
    pg__put64(ord, (uint64_t)r->ord);
    pg__put32(red, count);
    pg__put64(t, nb);
    const char *v[4] = { id, ord, red, t };
    const int len[4] = { 8, 8, 4, 8 };
    return queue_stmt(s, REWRITE, 4, v, len);
}

/* The statements of the clean close: what the open batch did that is kept (a message whose
 * ack is lost with it was handed out: counted; a requeued one keeps its place and count),
 * every taken message counted as delivered, the id counter, the bounds gone, closed. */
static int queue_close(store *s)
{
    int rc = 0;
    const pbatch *b = s->open;
    for (size_t i = 0; rc == 0 && i < b->nops; i++) {
        const pop *o = &b->ops[i];
        char id[8];
        pg__put64(id, (uint64_t)o->key);
        const char *v[1] = { id };
        const int len[1] = { 8 };
        const store__rec *r = o->kind == OP_REQUEUE ? find_rec(s, (uint64_t)o->key) : NULL;
        if (o->kind == OP_ACK)
            rc = queue_stmt(s, "UPDATE stompd_msg SET redeliveries = redeliveries + 1"
                               " WHERE id = $1::bigint", 1, v, len);
        else if (r && r->state != STORE__TAKEN)
            rc = queue_rewrite(s, r, r->redeliveries, r->not_before);
    }
    for (const store__idlink *l = store__ids_first(&s->ids); rc == 0 && l;
         l = store__ids_next(&s->ids, l)) {
        const store__rec *r = store__container_of(l, const store__rec, link);
        if (r->state == STORE__TAKEN)
            rc = queue_rewrite(s, r, r->redeliveries < UINT32_MAX ? r->redeliveries + 1
                                                                  : UINT32_MAX, 0);
    }
    char next[8];
    pg__put64(next, s->next_id);
    const char *v[1] = { next };
    const int len[1] = { 8 };
    if (rc == 0)
        rc = queue_stmt(s, "DELETE FROM stompd_front", 0, NULL, NULL);
    if (rc == 0)
        rc = queue_stmt(s, "UPDATE stompd_state SET next_id = greatest(next_id, $1::bigint),"
                           " open = false", 1, v, len);
    return rc == 0 && PQpipelineSync(s->conn) ? 0 : -1;
}

void pg__close_db(store *s)
{
    pg__detach(s);
    if (!s->conn)
        return;
    /* Best effort, close cannot fail: if this does not commit, the next open sees a crash
     * and counts every possibly delivered message instead. */
    if (s->state == PG_READY && !s->sync_out && PQsetnonblocking(s->conn, 0) == 0 &&
        queue_close(s) == 0) {
        PGresult *r;
        /* Until the Sync's result (the statements' results, and NULL between them). */
        for (int n = 0; n < 1000000; n++) {
            r = PQgetResult(s->conn);
            if (!r && PQstatus(s->conn) == CONNECTION_BAD)
                break;
            int sync = r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
            PQclear(r);
            if (sync)
                break;
        }
    }
    PQfinish(s->conn);
    s->conn = NULL;
}
