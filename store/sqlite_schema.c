/* sqlite_schema.c: the SQLite backend's database file: its schema and migrations, and the
 * way a store gets to it (lock, connections, pragmas, loading) and lets go of it.
 *
 * Tables (schema 4): msg(id, queue, ord, redeliveries, headers, body, not_before) indexed by
 * (queue, ord), where ord holds the priority too (sqlite_int.h, BAND_SPAN): a queue's bands in
 * delivery order; sched(id, queue, not_before, prio) indexed by (queue, not_before): the
 * messages with a not_before, a queue's schedule; expiry(id, expires) indexed by (expires):
 * the messages with an expiry. A message without a time or an expiry has its row in msg only,
 * as before schema 4, whatever its priority. queue(id, name, front): front is priority 4's
 * delivery bound; front(queue, prio, value): the other bands' (sqlite_recover.c);
 * meta(key, value) with next_id, next_qid, open and each queue's bytes ("bytes/<id>", as a
 * clean close left them: after a crash open counts them from the rows instead).
 * Schema 5: body(id, data) holds the body of a message enqueue_shared put into several
 * queues, once; each of its msg rows has an empty body and body_id naming it (NULL for every
 * other row; a partial index finds the rows of a body). A trigger deletes the body row with
 * the last msg row naming it, in the same transaction (so in the batch of that ack), whatever
 * deletes the row (an ack, a ranged delete, open dropping a queue's orphans); open after a
 * crash also drops any body no row names.
 * user_version holds the schema version and
 * application_id marks the file as ours; an older schema is migrated forward inside the open
 * transaction, a newer or foreign file is refused and left exactly as it was. Open reads no
 * message body: queues are loaded with their counts (from the indexes) and bytes only, and
 * their messages are read into memory on demand (sqlite_page.c). An flock on
 * "<path>-lock" keeps other processes out (SQLite's exclusive locking mode would lock out
 * our own reader too).
 */
#include "sqlite_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* 'STMQ': marks a file as ours, so a foreign SQLite database is refused, not altered. */
#define APP_ID 0x53544d51

/* Page size of a new file. Rows of a kilobyte or so fit many to a page, so a commit writes
 * a few large pages rather than many small ones: far fewer writes per message. Smaller pages
 * write fewer bytes when a FIFO queue stays short (its deletes drain the leftmost leaf,
 * SQLite refills a leaf under a third full from its siblings, and every leaf so moved goes to
 * the WAL whole; at 1 KiB a 1 KiB body lies in an overflow page freed unwritten): 1.4 KB
 * per 1 KiB message instead of 2.8 KB with one producer and one consumer, but twice the CPU
 * with four of each, where the backlog is read back a page per read. */
#define PAGE_SIZE 16384

/* WAL bytes before an automatic checkpoint. Larger than SQLite's default (1000 pages of
 * 4 KiB) so the copy back into the database (and its sync) is paid less often. */
#define WAL_CHECKPOINT_BYTES (32 << 20)

/* Forward migrations: migrations[i] takes the schema from version i to i + 1. Only ever
 * append. */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE queue(id INTEGER PRIMARY KEY, name BLOB NOT NULL UNIQUE);"
    "CREATE TABLE msg(id INTEGER PRIMARY KEY, queue INTEGER NOT NULL, ord INTEGER NOT NULL,"
    " redeliveries INTEGER NOT NULL, headers BLOB NOT NULL, body BLOB NOT NULL);"
    "CREATE INDEX msg_queue_ord ON msg(queue, ord);"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;",
    /* 1 -> 2: the bound of handed-out messages per queue (see sqlite_recover.c). */
    "ALTER TABLE queue ADD COLUMN front INTEGER NOT NULL DEFAULT 0;",
    /* 2 -> 3: the time before which a requeued message is not handed out (requeue_at). */
    "ALTER TABLE msg ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;",
    /* 3 -> 4: priority (in ord: see BAND_SPAN; every older message has priority 4, whose
     * ords are unchanged), a delivery bound per band (the queue's own stays priority 4's), the
     * schedule and expiry in tables of their own, and each queue's bytes. */
    "CREATE TABLE sched(id INTEGER PRIMARY KEY, queue INTEGER NOT NULL,"
    " not_before INTEGER NOT NULL, prio INTEGER NOT NULL);"
    "CREATE INDEX sched_queue ON sched(queue, not_before);"
    "INSERT INTO sched SELECT id, queue, not_before, 4 FROM msg WHERE not_before > 0;"
    "CREATE TABLE expiry(id INTEGER PRIMARY KEY, expires INTEGER NOT NULL);"
    "CREATE INDEX expiry_time ON expiry(expires);"
    "CREATE TABLE front(queue INTEGER NOT NULL, prio INTEGER NOT NULL, value INTEGER NOT NULL,"
    " PRIMARY KEY(queue, prio)) WITHOUT ROWID;"
    "INSERT OR REPLACE INTO meta(key, value) SELECT 'bytes/' || queue,"
    " sum(length(headers) + length(body)) FROM msg GROUP BY queue;",
    /* 4 -> 5: bodies held once for several messages (enqueue_shared). */
    "CREATE TABLE body(id INTEGER PRIMARY KEY, data BLOB NOT NULL);"
    "ALTER TABLE msg ADD COLUMN body_id INTEGER;"
    "CREATE INDEX msg_body ON msg(body_id) WHERE body_id IS NOT NULL;"
    "CREATE TRIGGER msg_body_gone AFTER DELETE ON msg WHEN old.body_id IS NOT NULL BEGIN"
    " DELETE FROM body WHERE id = old.body_id AND NOT EXISTS"
    " (SELECT 1 FROM msg WHERE body_id = old.body_id); END;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

static int exec(store *s, const char *sql, const char *what)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->wdb, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        sqlite__set_err(s, "%s: %s", what, msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return rc;
}

/* Run a one-value query on the writer. */
static int query_int(store *s, const char *sql, sqlite3_int64 *out, int *isnull)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->wdb, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            if (isnull)
                *isnull = sqlite3_column_type(st, 0) == SQLITE_NULL;
            *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            if (isnull)
                *isnull = 1;
            *out = 0;
            rc = SQLITE_OK;
        }
    }
    if (rc != SQLITE_OK)
        sqlite__set_err(s, "%s: %s", sql, sqlite3_errmsg(s->wdb));
    (void)sqlite3_finalize(st);
    return rc;
}

static store_err take_lock(store *s, const char *path)
{
    size_t n = strlen(path);
    char *lp = malloc(n + sizeof "-lock");
    if (!lp)
        return STORE_E_NOMEM;
    memcpy(lp, path, n);
    memcpy(lp + n, "-lock", sizeof "-lock");
    store_err err = STORE_OK;
    s->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0) {
        sqlite__set_err(s, "%s: %s", lp, strerror(errno));
        err = STORE_E_IO;
    } else if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            sqlite__set_err(s, "%s is in use by another store (lock %s held)", path, lp);
        else
            sqlite__set_err(s, "%s: lock: %s", lp, strerror(errno));
        err = STORE_E_IO;
    }
    free(lp);
    return err;
}

/* Is the file an empty database or a store this build can use? Only reads, so a file that
 * is refused is left exactly as it was. *ver: its schema version. */
static store_err check_file(store *s, sqlite3_int64 *ver)
{
    sqlite3_int64 app, ntables;
    /* The first read: a file that is not a database fails here. */
    if (query_int(s, "PRAGMA application_id", &app, NULL) != SQLITE_OK ||
        query_int(s, "PRAGMA user_version", ver, NULL) != SQLITE_OK ||
        query_int(s, "SELECT count(*) FROM sqlite_schema", &ntables, NULL) != SQLITE_OK)
        return STORE_E_IO;
    if ((app != 0 && app != APP_ID) || (app == 0 && ntables != 0) || *ver < 0) {
        sqlite__set_err(s, "not a stompd store (another application's SQLite database)");
        return STORE_E_IO;
    }
    if (*ver > SCHEMA_VERSION) {
        sqlite__set_err(s,
                        "schema version %lld is newer than this build supports (%d):"
                        " upgrade stompd",
                        (long long)*ver, SCHEMA_VERSION);
        return STORE_E_IO;
    }
    return STORE_OK;
}

/* Bring the schema to SCHEMA_VERSION inside the open transaction. */
static store_err migrate(store *s)
{
    sqlite3_int64 ver;
    store_err err = check_file(s, &ver);
    if (err != STORE_OK)
        return err;
    for (sqlite3_int64 v = ver; v < SCHEMA_VERSION; v++)
        if (exec(s, migrations[v], "schema migration") != SQLITE_OK)
            return STORE_E_IO;
    if (ver < SCHEMA_VERSION) {
        char sql[96];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d; PRAGMA application_id = %d",
                 SCHEMA_VERSION, APP_ID);
        if (exec(s, sql, "schema version") != SQLITE_OK)
            return STORE_E_IO;
    }
    return STORE_OK;
}

static store_err load_meta(store *s)
{
    sqlite3_int64 v;
    int isnull;
    uint64_t next_id = 1;
    if (query_int(s, "SELECT value FROM meta WHERE key = 'next_id'", &v, &isnull) != SQLITE_OK)
        return STORE_E_IO;
    if (!isnull && v > 0)
        next_id = (uint64_t)v;
    if (query_int(s, "SELECT max(id) FROM msg", &v, &isnull) != SQLITE_OK)
        return STORE_E_IO;
    if (!isnull && v > 0 && (uint64_t)v >= next_id)
        next_id = (uint64_t)v + 1;
    s->next_id = next_id;
    s->stored_next_id = next_id;
    s->committed_max = next_id - 1;

    int64_t next_qid = 1;
    if (query_int(s, "SELECT value FROM meta WHERE key = 'next_qid'", &v, &isnull) != SQLITE_OK)
        return STORE_E_IO;
    if (!isnull && v > 0)
        next_qid = v;
    if (query_int(s, "SELECT max(id) FROM queue", &v, &isnull) != SQLITE_OK)
        return STORE_E_IO;
    if (!isnull && v >= next_qid)
        next_qid = v + 1;
    s->next_qid = next_qid;

    /* Still marked open: the last user did not close it (a crash). Mark it ours now. */
    if (query_int(s, "SELECT value FROM meta WHERE key = 'open'", &v, &isnull) != SQLITE_OK)
        return STORE_E_IO;
    s->unclean = !isnull && v != 0;
    if (exec(s, "INSERT OR REPLACE INTO meta(key, value) VALUES('open', 1)", "open") !=
        SQLITE_OK)
        return STORE_E_IO;
    return STORE_OK;
}

/* The ids of queues whose messages (if any) and rows go once the load is over. */
typedef struct loader {
    sqlite3_int64 *orphans;
    size_t norphans, orphans_cap;
} loader;

static store_err nomem(store *s)
{
    sqlite__set_err(s, "out of memory");
    return STORE_E_NOMEM;
}

static int add_orphan(loader *ld, sqlite3_int64 qid)
{
    if (ld->norphans == ld->orphans_cap) {
        size_t ncap = ld->orphans_cap ? ld->orphans_cap * 2 : 8;
        sqlite3_int64 *no = realloc(ld->orphans, ncap * sizeof *no);
        if (!no)
            return -1;
        ld->orphans = no;
        ld->orphans_cap = ncap;
    }
    ld->orphans[ld->norphans++] = qid;
    return 0;
}

/* Prepare sql on the writer; its failure is the load's. */
static store_err prep(store *s, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(s->wdb, sql, -1, st, NULL) != SQLITE_OK)
        return sqlite__db_err(s, s->wdb, "load");
    return STORE_OK;
}

/* Band p's delivery bound is front, and after a crash the bound of what may have been
 * handed out (see sqlite_recover.c). */
static void set_front(store *s, squeue *q, int p, int64_t front)
{
    sband *b = &q->band[p];
    b->front_durable = b->front_sent = front;
    b->crash_front = s->unclean ? front : INT64_MIN;
}

/* Every queue row joins the index with priority 4's front; its messages are counted next. */
static store_err read_queue_rows(store *s)
{
    sqlite3_stmt *st = NULL;
    store_err err = prep(s, "SELECT id, name, front FROM queue", &st);
    int rc = SQLITE_DONE;
    while (err == STORE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        uint64_t h = store_hash_name(name, len);
        if (!name || !len || find_queue(s, name, len, h)) /* UNIQUE name: not twice */
            continue;
        squeue *q = NULL;
        if (store__queues_reserve(&s->queues, 1) == STORE_OK &&
            store__ids_reserve(&s->qids, 1) == STORE_OK)
            q = sqlite__queue_add(s, name, len, h, sqlite3_column_int64(st, 0));
        if (!q)
            err = nomem(s);
        else
            set_front(s, q, STORE_PRIORITY_DEFAULT, sqlite3_column_int64(st, 2));
    }
    if (err == STORE_OK && rc != SQLITE_DONE)
        err = sqlite__db_err(s, s->wdb, "load");
    (void)sqlite3_finalize(st);
    return err;
}

/* Message counts (rows: queue, prio, count, min(ord)), all in the file only: of a band
 * (sched 0: its messages, waiting ones among them), or of the schedule (sched 1: the waiting
 * ones, which are the schedule's, not the band's). Queues without a row are noted as
 * orphans. */
static store_err read_counts(store *s, const char *sql, int sched, loader *ld)
{
    sqlite3_stmt *st = NULL;
    store_err err = prep(s, sql, &st);
    int rc = SQLITE_DONE;
    while (err == STORE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 qid = sqlite3_column_int64(st, 0), p = sqlite3_column_int64(st, 1);
        uint64_t n = (uint64_t)sqlite3_column_int64(st, 2);
        squeue *q = find_qid(s, qid);
        if (!q) {
            if (add_orphan(ld, qid) != 0)
                err = nomem(s);
            continue;
        }
        if (p < 0 || p > STORE_PRIORITY_MAX)
            continue; /* not a priority this store writes: never read */
        if (sched) {
            q->sched_spilled += n;
            q->band[p].spilled -= n < q->band[p].spilled ? n : q->band[p].spilled;
            spill_note(q, (int)p);
        } else {
            q->count += n;
            q->band[p].spilled = n;
            /* Every row of the band lies after the frontier; the least ord bounds them. */
            q->band[p].front_ord = sqlite3_column_int64(st, 3);
            q->band[p].front_id = 0;
            spill_note(q, (int)p);
        }
    }
    if (err == STORE_OK && rc != SQLITE_DONE)
        err = sqlite__db_err(s, s->wdb, "load");
    (void)sqlite3_finalize(st);
    return err;
}

/* The delivery bounds of the other priorities. */
static store_err read_fronts(store *s)
{
    sqlite3_stmt *st = NULL;
    store_err err = prep(s, "SELECT queue, prio, value FROM front", &st);
    int rc = SQLITE_DONE;
    while (err == STORE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        squeue *q = find_qid(s, sqlite3_column_int64(st, 0));
        sqlite3_int64 p = sqlite3_column_int64(st, 1);
        if (!q || p < 0 || p > STORE_PRIORITY_MAX || p == STORE_PRIORITY_DEFAULT)
            continue; /* removed below with its queue, or not written */
        set_front(s, q, (int)p, sqlite3_column_int64(st, 2));
        q->fronts = 1;
    }
    if (err == STORE_OK && rc != SQLITE_DONE)
        err = sqlite__db_err(s, s->wdb, "load");
    (void)sqlite3_finalize(st);
    return err;
}

/* Run sql (one parameter) for each value of v[0..n). */
static store_err run_each(store *s, const char *sql, const sqlite3_int64 *v, size_t n)
{
    sqlite3_stmt *st = NULL;
    store_err err = n ? prep(s, sql, &st) : STORE_OK;
    for (size_t i = 0; err == STORE_OK && i < n; i++)
        if (sqlite3_bind_int64(st, 1, v[i]) != SQLITE_OK || step_done(st) != SQLITE_OK)
            err = sqlite__db_err(s, s->wdb, "clean up");
    (void)sqlite3_finalize(st);
    return err;
}

/* Each queue's bytes: as the last clean close left them in meta ("bytes/<queue id>"), or
 * (after a crash, or when one is missing) counted from the rows, one pass over the table. */
static store_err read_bytes(store *s)
{
    int counted = 0;
    sqlite3_stmt *st = NULL;
    store_err err = prep(s, "SELECT CAST(substr(key, 7) AS INTEGER), value FROM meta"
                            " WHERE key GLOB 'bytes/*'", &st);
    int rc = SQLITE_DONE;
    while (err == STORE_OK && !s->unclean && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        squeue *q = find_qid(s, sqlite3_column_int64(st, 0));
        if (q && !q->bytes) {
            q->bytes = (uint64_t)sqlite3_column_int64(st, 1);
            counted++;
        }
    }
    (void)sqlite3_finalize(st);
    if (err == STORE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = sqlite__db_err(s, s->wdb, "load");
    if (err != STORE_OK || (!s->unclean && counted == (int)s->queues.n))
        return err;
    err = prep(s, "SELECT queue, sum(length(headers) + CASE WHEN body_id IS NULL THEN"
                  " length(body) ELSE (SELECT length(data) FROM body WHERE id = body_id) END)"
                  " FROM msg NOT INDEXED GROUP BY queue", &st);
    while (err == STORE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        squeue *q = find_qid(s, sqlite3_column_int64(st, 0));
        if (q)
            q->bytes = (uint64_t)sqlite3_column_int64(st, 1);
    }
    if (err == STORE_OK && rc != SQLITE_DONE)
        err = sqlite__db_err(s, s->wdb, "load");
    (void)sqlite3_finalize(st);
    return err;
}

/* Queues without a message go (row, fronts and all): ld collects their ids (as orphans:
 * nothing of theirs is left). */
static store_err settle_queues(store *s, loader *ld)
{
    store__qlink *l = store__queues_first(&s->queues), *next;
    for (; l; l = next) {
        next = store__queues_next(&s->queues, l);
        squeue *q = store__container_of(l, squeue, link);
        if (q->count)
            continue;
        if (add_orphan(ld, QID(q)) != 0)
            return nomem(s);
        store__queues_remove(&s->queues, &q->link);
        store__ids_remove(&s->qids, &q->byqid);
        store__order_free(&q->o, &s->bytes);
        s->bytes -= QUEUE_SIZE(q);
        free(q);
    }
    return STORE_OK;
}

/* Queues with their message counts and bytes: one pass over msg's index and one over the
 * schedule, no message body read (but after a crash, one over the rows for the bytes). Drops
 * queue rows without messages and messages without a queue row. */
static store_err load_queues(store *s)
{
    loader ld = {0};
    store_err err = read_queue_rows(s);
    if (err == STORE_OK)
        err = read_counts(s, "SELECT queue, 4 - ((ord + 36028797018963968) >> 56) AS p,"
                             " count(*), min(ord) FROM msg GROUP BY queue, p", 0, &ld);
    if (err == STORE_OK)
        err = read_counts(s, "SELECT queue, prio, count(*), 0 FROM sched GROUP BY queue, prio",
                          1, &ld);
    if (err == STORE_OK)
        err = read_fronts(s);
    if (err == STORE_OK)
        err = settle_queues(s, &ld);
    if (err == STORE_OK)
        err = read_bytes(s);
    if (err == STORE_OK)
        err = run_each(s, "DELETE FROM msg WHERE queue = ?1", ld.orphans, ld.norphans);
    if (err == STORE_OK)
        err = run_each(s, "DELETE FROM sched WHERE queue = ?1", ld.orphans, ld.norphans);
    if (err == STORE_OK && ld.norphans &&
        exec(s, "DELETE FROM expiry WHERE id NOT IN (SELECT id FROM msg)", "clean up") !=
            SQLITE_OK)
        err = STORE_E_IO;
    if (err == STORE_OK && s->unclean &&
        exec(s, "DELETE FROM body WHERE id NOT IN"
                " (SELECT body_id FROM msg WHERE body_id IS NOT NULL)", "clean up") != SQLITE_OK)
        err = STORE_E_IO;
    if (err == STORE_OK)
        err = run_each(s, "DELETE FROM queue WHERE id = ?1", ld.orphans, ld.norphans);
    if (err == STORE_OK &&
        exec(s, "DELETE FROM front WHERE queue NOT IN (SELECT id FROM queue);"
                "DELETE FROM meta WHERE key GLOB 'bytes/*' AND"
                " CAST(substr(key, 7) AS INTEGER) NOT IN (SELECT id FROM queue)",
             "clean up") != SQLITE_OK)
        err = STORE_E_IO;
    free(ld.orphans);
    return err;
}

/* The writer connection, set up for our use: a file that is not a store we can use is
 * refused before anything is written to it. */
static store_err open_writer(store *s, const store_options *opts)
{
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    /* FULL syncs every commit, so the WAL's writes can wait for it (sqlite_vfs.c). */
    if (opts->sync_full && sqlite__vfs_register(s) != STORE_OK)
        return STORE_E_IO;
    int rc = sqlite3_open_v2(opts->path, &s->wdb, flags, s->vfs_registered ? s->vfs_name : NULL);
    if (rc != SQLITE_OK)
        return sqlite__db_err(s, s->wdb, "open");
    (void)sqlite3_extended_result_codes(s->wdb, 1);
    if (sqlite3_db_readonly(s->wdb, "main") != 0) {
        sqlite__set_err(s, "open: %s can only be opened read-only", opts->path);
        return STORE_E_IO;
    }
    sqlite3_int64 ver;
    store_err err = check_file(s, &ver);
    if (err != STORE_OK)
        return err;
    /* Only takes effect on a file without tables yet (before WAL mode is set). */
    char sql[200];
    snprintf(sql, sizeof sql, "PRAGMA page_size = %d", PAGE_SIZE);
    if (exec(s, sql, "open") != SQLITE_OK ||
        exec(s, "PRAGMA journal_mode = WAL", "open") != SQLITE_OK)
        return STORE_E_IO;
    sqlite3_int64 page_size;
    if (query_int(s, "PRAGMA page_size", &page_size, NULL) != SQLITE_OK)
        return STORE_E_IO;
    /* secure_delete off: acked messages are not overwritten with zeros (a second write of
     * every message; some builds turn it on by default). */
    snprintf(sql, sizeof sql,
             "PRAGMA synchronous = %s; PRAGMA wal_autocheckpoint = %lld;"
             " PRAGMA foreign_keys = OFF; PRAGMA busy_timeout = 2000; PRAGMA secure_delete = OFF",
             opts->sync_full ? "FULL" : "NORMAL",
             (long long)(WAL_CHECKPOINT_BYTES / (page_size > 0 ? page_size : 4096)));
    if (exec(s, sql, "open") != SQLITE_OK)
        return STORE_E_IO;
    return STORE_OK;
}

/* One write transaction: proves the file is writable and ours before anything is used,
 * brings its schema up to date and loads the counters and queues. */
static store_err load_file(store *s)
{
    if (exec(s, "BEGIN IMMEDIATE", "open") != SQLITE_OK)
        return STORE_E_IO;
    store_err err = migrate(s);
    if (err == STORE_OK)
        err = load_meta(s);
    if (err == STORE_OK)
        err = load_queues(s);
    if (err == STORE_OK && exec(s, "COMMIT", "open") != SQLITE_OK)
        err = STORE_E_IO;
    if (err != STORE_OK && !sqlite3_get_autocommit(s->wdb))
        (void)sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
    return err;
}

/* journal_mode must really be WAL: the reader relies on it to run beside the writer. */
static store_err check_wal(store *s, const char *path)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->wdb, "PRAGMA journal_mode", -1, &st, NULL);
    int wal = rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
              sqlite3_column_text(st, 0) &&
              strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    (void)sqlite3_finalize(st);
    if (!wal) {
        sqlite__set_err(s, "open: %s cannot use WAL mode", path);
        return STORE_E_IO;
    }
    return STORE_OK;
}

/* The reader connection and its paging statement. */
static store_err open_reader(store *s, const char *path)
{
    int rc = sqlite3_open_v2(path, &s->rdb, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        return sqlite__db_err(s, s->rdb, "open reader");
    (void)sqlite3_extended_result_codes(s->rdb, 1);
    (void)sqlite3_busy_timeout(s->rdb, 200);
    return sqlite__page_prepare(s);
}

store_err sqlite__open_file(store *s, const store_options *opts)
{
    store_err err = take_lock(s, opts->path);
    if (err == STORE_OK)
        err = open_writer(s, opts);
    if (err == STORE_OK)
        err = load_file(s);
    if (err == STORE_OK)
        err = check_wal(s, opts->path);
    if (err == STORE_OK)
        err = sqlite__batch_prepare(s);
    if (err == STORE_OK)
        err = open_reader(s, opts->path);
    return err;
}

void sqlite__close_file(store *s)
{
    for (int i = 0; i < R__COUNT; i++)
        if (s->r[i])
            (void)sqlite3_finalize(s->r[i]);
    for (int i = 0; i < W__COUNT; i++)
        if (s->w[i])
            (void)sqlite3_finalize(s->w[i]);
    /* The reader first: the last connection to close checkpoints and removes the WAL. */
    if (s->rdb)
        (void)sqlite3_close(s->rdb);
    if (s->wdb)
        (void)sqlite3_close(s->wdb);
    sqlite__vfs_unregister(s);
    if (s->lock_fd >= 0)
        (void)close(s->lock_fd);
}
