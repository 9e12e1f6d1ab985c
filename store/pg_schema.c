/* pg_schema.c: the PostgreSQL backend's database: its schema and migrations, the open that
 * reads every message in, and the clean close. Both run on a blocking connection: open
 * before the store is used on the loop, close after the last commit.
 *
 * Tables (schema 1), all named stompd_* so they can share a database with others:
 * stompd_msg(id, queue, prio, ord, redeliveries, not_before, expires, headers, body), one
 * row per message not acked (its index by (queue, prio, ord, id) is dropped at open: see
 * migrate);
 * stompd_front(queue, prio, value): each band's delivery bound (store_postgres.c);
 * stompd_state: one row (next_id, batch: the number of the last committed batch, open: a
 * store has it open, so a crash left it open if a later open still finds it so);
 * stompd_schema(version): the schema version. An older schema is migrated forward in the
 * open's transaction; a newer one is refused and left as it is.
 * Schema 2 (several nodes, pg_share.c): stompd_msg.owner, the node holding the row (0:
 * free), with an index of the free rows in claim order; stompd_node(id, lease_until, batch,
 * next_id): the nodes, each with its lease, its last committed batch and its id counter
 * (stompd_state.batch and .open are no longer used). Opens take a transaction-scoped
 * advisory lock, so two nodes starting together migrate and register one after the other.
 * Schema 3: stompd_topic (pg_topic.c). Schema 4: stompd_durable, the durable topic
 * subscriptions (pg_durable.c); the rows of their backlogs are never claimed at open.
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
    /* 1 -> 2: a store left open by a crash is recovered as schema 1 did it. */
    "UPDATE stompd_msg AS m SET redeliveries = m.redeliveries + 1 FROM stompd_front AS f,"
    " stompd_state AS s WHERE s.open AND f.queue = m.queue AND f.prio = m.prio"
    " AND m.ord <= f.value AND m.redeliveries < 2147483647;"
    "DELETE FROM stompd_front;"
    "UPDATE stompd_state SET open = false;"
    "ALTER TABLE stompd_msg ADD COLUMN owner integer NOT NULL DEFAULT 0;"
    "CREATE INDEX stompd_msg_free ON stompd_msg(queue, prio DESC, ord, id) WHERE owner = 0;"
    "CREATE INDEX stompd_msg_owner ON stompd_msg(owner) WHERE owner <> 0;"
    "CREATE TABLE stompd_node(id integer PRIMARY KEY, lease_until bigint NOT NULL,"
    " batch bigint NOT NULL DEFAULT 0, next_id bigint NOT NULL DEFAULT 0);",
    /* 2 -> 3: topic messages too large for a notification (pg_topic.c). */
    "CREATE TABLE stompd_topic(id bigserial PRIMARY KEY, at_ms bigint NOT NULL,"
    " data bytea NOT NULL);"
    "CREATE INDEX stompd_topic_at ON stompd_topic(at_ms);",
    /* 3 -> 4: durable topic subscriptions (pg_durable.c); no store of an earlier schema
     * held any. */
    "CREATE TABLE stompd_durable(id bigint PRIMARY KEY, queue bytea NOT NULL UNIQUE,"
    " client_id bytea NOT NULL, name bytea NOT NULL, topic bytea NOT NULL, selector bytea,"
    " no_local boolean NOT NULL, live_node integer NOT NULL DEFAULT 0,"
    " UNIQUE (client_id, name));",
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

/* Connect (blocking). */
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
    if ((PG_HAS_JIT(s->conn) && exec_ok(s, PG_SET_JIT, "session") != 0) ||
        (!s->sync_full && exec_ok(s, "SET synchronous_commit TO off", "session") != 0))
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
    /* Schema 1's index of every row by (queue, prio, ord, id) serves no statement since
     * schema 2 (claims read stompd_msg_free, the load stompd_msg_owner), yet every insert
     * paid for it: dropped here, not by a schema version, since builds of any version read
     * and write the rows the same with or without it. */
    if (exec_ok(s, "DROP INDEX IF EXISTS stompd_msg_order", "schema") != 0)
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

/* One number from sql (text), or -1 with s->err set. */
static int64_t query_int(store *s, const char *sql, const char *what)
{
    PGresult *r = run(s, sql, PGRES_TUPLES_OK, what);
    if (!r)
        return -1;
    int64_t v = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    if (v < 0)
        pg__set_err(s, "%s: no answer", what);
    return v;
}

/* The names of the backlogs (pg_durable.c) as a range of bytea (after '/' comes '0'). */
#define BACKLOG_FROM "'" STORE_POSTGRES_BACKLOG "'::bytea"
#define BACKLOG_TO "'/durable-sub0'::bytea"

/* Inside the open's transaction: dead nodes' rows freed, this node registered, its id
 * counter above every id given so far, every free row claimed (but backlogs'), the
 * registry of durable subscriptions read. */
static store_err recover(store *s)
{
    char sql[512];
    if (query_int(s, PG_REAP_SQL("") " SELECT (SELECT count(*) FROM r) + " PG_REAP_NOTIFY,
                  "free dead nodes") < 0)
        return STORE_E_IO;
    int64_t node = query_int(s, "SELECT coalesce(min(g), 0) FROM generate_series(1, 65535) AS g"
                                " WHERE NOT EXISTS (SELECT 1 FROM stompd_node WHERE id = g)",
                             "register");
    if (node == 0)
        pg__set_err(s, "register: %d nodes are registered already", PG_NODES_MAX);
    if (node <= 0)
        return STORE_E_IO;
    s->node = node;
    int64_t others = query_int(s, "SELECT count(*) FROM stompd_node", "register");
    snprintf(sql, sizeof sql, "INSERT INTO stompd_node(id, lease_until) VALUES(%d, %s + %llu)",
             (int)node, PG_NOW_MS, (unsigned long long)s->lease_ms);
    if (others < 0 || exec_ok(s, sql, "register") != 0)
        return STORE_E_IO;
    s->alone = others == 0;
    int64_t high = query_int(s, "SELECT greatest((SELECT next_id FROM stompd_state),"
                                " (SELECT coalesce(max(next_id), 0) FROM stompd_node),"
                                " (SELECT coalesce(max(id), 0) + 1 FROM stompd_msg))",
                             "state");
    if (high < 0)
        return STORE_E_IO;
    s->next_id = ((((uint64_t)high >> PG_NODE_BITS) + 1) << PG_NODE_BITS) | (uint64_t)node;
    s->batch_seq = 0;
    /* A backlog's rows are its live node's to claim (pg_durable.c); those of a
     * subscription that is gone are deleted, and a live node that is gone is none. */
    snprintf(sql, sizeof sql, "UPDATE stompd_msg SET owner = %d WHERE owner = 0 AND NOT"
             " (queue >= " BACKLOG_FROM " AND queue < " BACKLOG_TO ")", (int)node);
    if (exec_ok(s, sql, "claim") != 0 ||
        exec_ok(s, "DELETE FROM stompd_msg AS m WHERE m.queue >= " BACKLOG_FROM " AND m.queue"
                   " < " BACKLOG_TO " AND NOT EXISTS (SELECT 1 FROM stompd_durable AS d"
                   " WHERE d.queue = m.queue)", "durable subscriptions") != 0 ||
        query_int(s, "WITH u AS (UPDATE stompd_durable SET live_node = 0 WHERE live_node <> 0"
                     " AND NOT EXISTS (SELECT 1 FROM stompd_node AS n WHERE n.id = live_node)"
                     " RETURNING id) SELECT count(pg_notify('stompd_durable', '0:' || id))"
                     " FROM u", "durable subscriptions") < 0)
        return STORE_E_IO;
    return pg__dur_open(s);
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
    char own[4];
    pg__put32(own, (uint32_t)s->node);
    const char *v[1] = { own };
    const int len[1] = { 4 }, fmt[1] = { 1 };
    if (!PQsendQueryParams(s->conn,
                           "SELECT id, queue, prio, ord, redeliveries, not_before, expires,"
                           " headers, body FROM stompd_msg WHERE owner = $1::integer"
                           " ORDER BY prio, ord, id",
                           1, NULL, v, len, fmt, 1) ||
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
    /* Opens one at a time: migrations and node numbers never race. */
    err = query_int(s, "SELECT count(pg_advisory_xact_lock(1398033745))", "lock") < 0
              ? STORE_E_IO
              : STORE_OK;
    if (err == STORE_OK)
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
    if (err == STORE_OK && (exec_ok(s, "LISTEN stompd_free", "listen") != 0 ||
                            exec_ok(s, "LISTEN stompd_want", "listen") != 0 ||
                            exec_ok(s, "LISTEN stompd_topic", "listen") != 0 ||
                            exec_ok(s, "LISTEN stompd_durable", "listen") != 0))
        err = STORE_E_IO;
    s->be_pid = PQbackendPID(s->conn);
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
 * every taken message counted as delivered, every row given back to the other nodes, the
 * node gone (the bounds with it when it was the last), the id counter kept. */
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
    char next[8], own[4];
    pg__put64(next, s->next_id);
    pg__put32(own, (uint32_t)s->node);
    const char *v[2] = { next, own };
    const int len[2] = { 8, 4 };
    if (rc == 0)
        rc = queue_stmt(s, "UPDATE stompd_msg SET owner = 0 WHERE owner = $1::integer", 1,
                        v + 1, len + 1);
    /* Its durable subscriptions' subscribers are gone with it. */
    if (rc == 0)
        rc = queue_stmt(s, "WITH u AS (UPDATE stompd_durable SET live_node = 0 WHERE"
                           " live_node = $1::integer RETURNING id) SELECT"
                           " count(pg_notify('stompd_durable', '0:' || id)) FROM u", 1,
                        v + 1, len + 1);
    if (rc == 0)
        rc = queue_stmt(s, "DELETE FROM stompd_node WHERE id = $1::integer", 1, v + 1,
                        len + 1);
    /* The bounds matter only to a node that may have died: with none left, they go. */
    if (rc == 0)
        rc = queue_stmt(s, "DELETE FROM stompd_front WHERE NOT EXISTS"
                           " (SELECT 1 FROM stompd_node)", 0, NULL, NULL);
    if (rc == 0)
        rc = queue_stmt(s, "UPDATE stompd_state SET next_id = greatest(next_id, $1::bigint)",
                        1, v, len);
    if (rc == 0)
        rc = queue_stmt(s, "SELECT pg_notify('stompd_free', '')", 0, NULL, NULL);
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
