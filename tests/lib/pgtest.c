/* pgtest.c: a private PostgreSQL server for tests (see pgtest.h). */
#include "pgtest.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUPERUSER "stompd_test"
#define START_TIMEOUT_S 60

/* The directory of Debian's PostgreSQL programs (the newest installed), or NULL. */
static int find_bindir(char *out, size_t n)
{
    glob_t g;
    if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) != 0 || g.gl_pathc == 0) {
        globfree(&g);
        return -1;
    }
    snprintf(out, n, "%s", g.gl_pathv[g.gl_pathc - 1]);
    globfree(&g);
    char *slash = strrchr(out, '/');
    *slash = '\0';
    return 0;
}

/* Append the last bytes of file to p->err. */
static void add_log(pgtest *p, const char *file)
{
    char path[256], buf[600];
    snprintf(path, sizeof path, "%s/%s", p->dir, file);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    off_t end = lseek(fd, 0, SEEK_END);
    (void)lseek(fd, end > (off_t)sizeof buf - 1 ? end - (off_t)sizeof buf + 1 : 0, SEEK_SET);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
        buf[n] = '\0';
        size_t len = strlen(p->err);
        snprintf(p->err + len, sizeof p->err - len, "; %s says: %s", file, buf);
    }
}

/* In a forked child: become the unprivileged user (when root), send output to log, exec. */
static void child_exec(const pgtest *p, const struct passwd *pw, const char *log,
                       char *const argv[])
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", p->dir, log);
    if (pw && (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0))
        _exit(126);
    /* After the uid change (which clears it): the server dies with the test. */
    (void)prctl(PR_SET_PDEATHSIG, SIGQUIT);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0)
        dup2(null, 0);
    execv(argv[0], argv);
    _exit(127);
}

static pid_t spawn(const pgtest *p, const struct passwd *pw, const char *log,
                   char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0)
        child_exec(p, pw, log, argv);
    return pid;
}

/* Run initdb to its end: 0 or -1. */
static int run_initdb(pgtest *p, const struct passwd *pw, const char *bindir)
{
    char prog[256], data[192];
    snprintf(prog, sizeof prog, "%s/initdb", bindir);
    snprintf(data, sizeof data, "%s/data", p->dir);
    char *const argv[] = { prog, "-D", data, "-U", SUPERUSER, "-A", "trust", "--no-sync",
                           "-E", "UTF8", "--locale=C", NULL };
    pid_t pid = spawn(p, pw, "initdb.log", argv);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(p->err, sizeof p->err, "initdb failed (status %d)", st);
        add_log(p, "initdb.log");
        return -1;
    }
    return 0;
}

/* Wait until the server answers: 0, or -1 when it exits or does not answer in time. */
static int wait_ready(pgtest *p)
{
    time_t until = time(NULL) + START_TIMEOUT_S;
    while (time(NULL) < until) {
        if (PQping(p->conninfo) == PQPING_OK)
            return 0;
        int st;
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            p->pid = 0;
            snprintf(p->err, sizeof p->err, "postgres exited at start (status %d)", st);
            add_log(p, "postgres.log");
            return -1;
        }
        usleep(20 * 1000);
    }
    snprintf(p->err, sizeof p->err, "postgres did not answer within %d s", START_TIMEOUT_S);
    add_log(p, "postgres.log");
    return -1;
}

/* Start postgres on the data directory (made by initdb) and wait until it answers: 0, or
 * -1 with the server stopped and p->err saying why. */
static int run_server(pgtest *p, const struct passwd *pw, const char *bindir)
{
    char prog[256], data[192], sock[160];
    snprintf(prog, sizeof prog, "%s/postgres", bindir);
    snprintf(data, sizeof data, "%s/data", p->dir);
    snprintf(sock, sizeof sock, "unix_socket_directories=%s", p->dir);
    /* No TCP at all; tests need no durability against power loss. pg_stat_statements:
     * tests can read what the stores' sessions ran. */
    char *const argv[] = { prog, "-D", data, "-c", sock, "-c", "listen_addresses=",
                           "-c", "fsync=off", "-c", "full_page_writes=off", "-c",
                           "max_connections=60", "-c",
                           "shared_preload_libraries=pg_stat_statements", NULL };
    p->pid = spawn(p, pw, "postgres.log", argv);
    if (p->pid < 0) {
        p->pid = 0;
        snprintf(p->err, sizeof p->err, "fork: %s", strerror(errno));
        pgtest_stop(p);
        return -1;
    }
    if (wait_ready(p) != 0) {
        char keep[sizeof p->err];
        memcpy(keep, p->err, sizeof keep);
        pgtest_stop(p);
        memcpy(p->err, keep, sizeof keep);
        return -1;
    }
    return 0;
}

int pgtest_start(pgtest *p)
{
    memset(p, 0, sizeof *p);
    char bindir[200];
    if (find_bindir(bindir, sizeof bindir) != 0) {
        snprintf(p->err, sizeof p->err,
                 "no /usr/lib/postgresql/*/bin/initdb: install the postgresql package"
                 " (contrib/deps.sh test)");
        return -1;
    }
    const struct passwd *pw = NULL;
    if (geteuid() == 0 && !(pw = getpwnam("nobody"))) {
        snprintf(p->err, sizeof p->err, "running as root and there is no user 'nobody' to"
                                        " run postgres as");
        return -1;
    }
    /* /tmp: short enough for a socket path, and reachable by the unprivileged user. */
    snprintf(p->dir, sizeof p->dir, "/tmp/stompd-pg-XXXXXX");
    if (!mkdtemp(p->dir)) {
        snprintf(p->err, sizeof p->err, "mkdtemp: %s", strerror(errno));
        p->dir[0] = '\0';
        return -1;
    }
    if (pw && chown(p->dir, pw->pw_uid, pw->pw_gid) != 0) {
        snprintf(p->err, sizeof p->err, "chown %s: %s", p->dir, strerror(errno));
        pgtest_stop(p);
        return -1;
    }
    pgtest_conninfo(p, "postgres", p->conninfo, sizeof p->conninfo);
    if (run_initdb(p, pw, bindir) != 0) {
        pgtest_stop(p);
        return -1;
    }
    return run_server(p, pw, bindir);
}

int pgtest_resume(pgtest *p)
{
    char bindir[200];
    const struct passwd *pw = geteuid() == 0 ? getpwnam("nobody") : NULL;
    if (p->pid > 0 || !p->dir[0] || find_bindir(bindir, sizeof bindir) != 0) {
        snprintf(p->err, sizeof p->err, "no stopped server to start again");
        return -1;
    }
    return run_server(p, pw, bindir);
}

/* SIGINT (a fast shutdown: sessions are cut), then SIGKILL if it does not go in 30 s. */
static void stop_server(pgtest *p)
{
    int st;
    (void)kill(p->pid, SIGINT);
    for (int i = 0; i < 3000 && waitpid(p->pid, &st, WNOHANG) == 0; i++)
        usleep(10 * 1000);
    if (kill(p->pid, 0) == 0) {
        (void)kill(p->pid, SIGKILL);
        (void)waitpid(p->pid, &st, 0);
    }
    p->pid = 0;
}

int pgtest_pause(pgtest *p)
{
    if (p->pid <= 0)
        return -1;
    stop_server(p);
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

void pgtest_stop(pgtest *p)
{
    if (p->pid > 0)
        stop_server(p);
    if (p->dir[0])
        (void)nftw(p->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    p->dir[0] = '\0';
}

void pgtest_conninfo(const pgtest *p, const char *name, char *out, size_t n)
{
    snprintf(out, n, "host=%s user=" SUPERUSER " dbname=%s", p->dir, name);
}

/* A connection to db, or NULL (printed). */
static PGconn *connect_db(const pgtest *p, const char *db)
{
    char ci[256];
    pgtest_conninfo(p, db ? db : "postgres", ci, sizeof ci);
    PGconn *c = PQconnectdb(ci);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pgtest: connect %s: %s\n", ci, PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

int pgtest_exec(const pgtest *p, const char *db, const char *sql)
{
    PGconn *c = connect_db(p, db);
    if (!c)
        return -1;
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "pgtest: %s: %s\n", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

long long pgtest_value(const pgtest *p, const char *db, const char *sql)
{
    PGconn *c = connect_db(p, db);
    if (!c)
        return -1;
    PGresult *r = PQexec(c, sql);
    long long v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0
                      ? atoll(PQgetvalue(r, 0, 0))
                      : -1;
    if (v < 0)
        fprintf(stderr, "pgtest: %s: %s\n", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    return v;
}

int pgtest_createdb(const pgtest *p, const char *name, char *out, size_t n)
{
    char sql[200];
    snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", name);
    if (pgtest_exec(p, NULL, sql) != 0)
        return -1;
    pgtest_conninfo(p, name, out, n);
    return 0;
}

/* The one integer sql (parameters $1 = db, $2 = app) answers, or -1 (printed). */
static int count(const pgtest *p, const char *db, const char *app, const char *sql)
{
    PGconn *c = connect_db(p, NULL);
    if (!c)
        return -1;
    const char *v[2] = { db, app };
    PGresult *r = PQexecParams(c, sql, 2, NULL, v, NULL, NULL, 0);
    int n = PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : -1;
    if (n < 0)
        fprintf(stderr, "pgtest: %s: %s\n", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    return n;
}

int pgtest_terminate(const pgtest *p, const char *db, const char *app)
{
    return count(p, db, app,
                 "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
                 " FROM pg_stat_activity WHERE datname = $1 AND application_name = $2");
}

int pgtest_backends(const pgtest *p, const char *db, const char *app)
{
    return count(p, db, app,
                 "SELECT count(*) FROM pg_stat_activity WHERE datname = $1"
                 " AND application_name = $2");
}
