/* pg_lib.c: loading libpq (see pg_lib.h). */
#include "pg_lib.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#define PG__LIBNAME "libpq.so.5"

int pg__lib_open(pg__lib *l, char *why, size_t cap)
{
    memset(l, 0, sizeof *l);
    l->dl = dlopen(PG__LIBNAME, RTLD_NOW | RTLD_LOCAL);
    if (!l->dl) {
        const char *e = dlerror();
        snprintf(why, cap, "cannot load %s (Debian's libpq5 package): %s", PG__LIBNAME,
                 e ? e : "not found");
        return -1;
    }
    const char *missing = NULL;
#define PG__LOAD(name)                                                                       \
    if (!missing && !(*(void **)&l->name = dlsym(l->dl, #name)))                             \
        missing = #name;
    PG__FUNCS(PG__LOAD)
#undef PG__LOAD
    if (missing) {
        snprintf(why, cap, "%s has no %s: libpq 14 or later is needed", PG__LIBNAME, missing);
        pg__lib_close(l);
        return -1;
    }
    return 0;
}

void pg__lib_close(pg__lib *l)
{
    if (l->dl)
        dlclose(l->dl);
    memset(l, 0, sizeof *l);
}
