/* test_store_contract.c: the one store contract (tests/lib/store_contract.c), run unchanged
 * on every backend: memory, then SQLite with a fresh database file per store in one
 * temporary directory that is removed at the end, then PostgreSQL with a fresh database per
 * store on a private server (tests/lib/pgtest.h) started here and stopped at the end. A
 * server that cannot be started fails the run, saying why. A new backend adds one fixture
 * here.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgtest.h"
#include "store_contract.h"
#include "store_postgres.h"
#include "store_sqlite.h"

static void memory_options(store_options *o, uv_loop_t *loop, int fresh)
{
    (void)fresh;
    memset(o, 0, sizeof *o);
    o->loop = loop;
}

/* The fixture interface has no context pointer, hence file-scope state (tests only). */
static char sqlite_dir[64];
static char sqlite_path[128];
static unsigned sqlite_files;

static void sqlite_options(store_options *o, uv_loop_t *loop, int fresh)
{
    if (fresh)
        sqlite_files++;
    snprintf(sqlite_path, sizeof sqlite_path, "%s/contract-%u.db", sqlite_dir, sqlite_files);
    memset(o, 0, sizeof *o);
    o->loop = loop;
    o->path = sqlite_path;
    o->sync_full = 1;
}

static pgtest pg;
static char pg_conninfo[256];
static unsigned pg_dbs;

static void postgres_options(store_options *o, uv_loop_t *loop, int fresh)
{
    if (fresh) {
        char name[32];
        snprintf(name, sizeof name, "contract_%u", ++pg_dbs);
        if (pgtest_createdb(&pg, name, pg_conninfo, sizeof pg_conninfo) != 0)
            pg_conninfo[0] = '\0'; /* the open fails, and the case with it */
    }
    memset(o, 0, sizeof *o);
    o->loop = loop;
    o->path = pg_conninfo;
    o->sync_full = 1;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[400];
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(sqlite_dir, sizeof sqlite_dir, "%s/stompd-sqc-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(sqlite_dir)) {
        perror("mkdtemp");
        return 1;
    }
    const store_fixture backends[] = {
        { "store contract: memory", store_memory_backend(), 0, memory_options },
        { "store contract: sqlite", store_sqlite_backend(), 1, sqlite_options },
        { "store contract: postgres", store_postgres_backend(), 1, postgres_options },
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        if (backends[i].ops == store_postgres_backend() && pgtest_start(&pg) != 0) {
            fprintf(stderr, "store contract: postgres: cannot start a private PostgreSQL: %s\n",
                    pg.err);
            failed++;
            continue;
        }
        failed += store_contract_run(&backends[i]) + store_contract_run_match(&backends[i]) +
                  store_contract_run_shared(&backends[i]);
    }
    pgtest_stop(&pg);
    remove_dir(sqlite_dir);
    return failed ? 1 : 0;
}
