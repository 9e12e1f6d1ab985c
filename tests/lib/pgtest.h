/* pgtest.h: a private PostgreSQL server for tests, from Debian's postgresql package.
 *
 * pgtest_start makes a temporary directory, runs initdb into it and starts postgres on a
 * unix socket in that directory (no TCP port at all), as an unprivileged user: the calling
 * user, or "nobody" when the tests run as root (PostgreSQL refuses to run as root). The
 * server gets SIGQUIT if the test process dies first, so a crashed test leaves no server
 * behind. pgtest_stop stops it by its pid and removes the directory. One server per test
 * program; each store under test gets a database of its own (pgtest_createdb).
 */
#ifndef PGTEST_H
#define PGTEST_H

#include <stddef.h>
#include <sys/types.h>

typedef struct pgtest {
    pid_t pid;          /* the postmaster, 0 when not running */
    char dir[128];      /* the temporary directory: data/, the socket, the logs */
    char conninfo[256]; /* for the "postgres" database, as the superuser */
    char err[1024];     /* why pgtest_start failed */
} pgtest;

/* Start a server: 0, or -1 with p->err saying why (the log's end included). */
int pgtest_start(pgtest *p);
/* Stop it (SIGINT, then SIGKILL if it does not go) and remove its directory. Idempotent. */
void pgtest_stop(pgtest *p);
/* Stop the server as pg_ctl -m fast does (SIGINT: sessions are cut), keeping its data and
 * directory: 0, or -1 when none runs. */
int pgtest_pause(pgtest *p);
/* Start a paused server again, on the same socket: 0, or -1 with p->err saying why. */
int pgtest_resume(pgtest *p);
/* Run sql on database db ("postgres" when NULL) as the superuser: 0, or -1 (printed). */
int pgtest_exec(const pgtest *p, const char *db, const char *sql);
/* Create database name and write its connection string to out: 0 or -1. */
int pgtest_createdb(const pgtest *p, const char *name, char *out, size_t n);
/* The connection string of database name (not created). */
void pgtest_conninfo(const pgtest *p, const char *name, char *out, size_t n);
/* Terminate every backend of database db whose application_name is app (what a stompd
 * store sets): how many were terminated, or -1. */
int pgtest_terminate(const pgtest *p, const char *db, const char *app);

/* The first value sql answers on database db (an integer), or -1 (printed). */
long long pgtest_value(const pgtest *p, const char *db, const char *sql);

/* How many backends of database db have application_name app, or -1. */
int pgtest_backends(const pgtest *p, const char *db, const char *app);

#endif
