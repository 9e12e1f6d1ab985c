/* test_store_contract.c: the one store contract (tests/lib/store_contract.c), run unchanged
 * on every backend: memory, then SQLite with a fresh database file per store in one
 * temporary directory that is removed at the end. A new backend adds one fixture here.
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

#include "store_contract.h"
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
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        failed += store_contract_run(&backends[i]) + store_contract_run_match(&backends[i]);
    remove_dir(sqlite_dir);
    return failed ? 1 : 0;
}
