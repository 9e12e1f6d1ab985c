/* reload.c: what a reload of a running stompd changes. main.c reads the configuration
 * again exactly as at startup (defaults, the config file, then the command line's
 * settings on top); this file compares the result with the running one, key by key as
 * GET /api/config shows them (config_show.c), and sorts the differences: applied now, or
 * only after a restart (listeners, the store, the process's own settings).
 *
 * A key that needs a restart keeps its running value: reload__keep_running moves it back
 * into the new configuration, so the daemon goes on describing what actually runs (and
 * the next reload reports the difference again).
 */
#include "daemon.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int reload__open_start_dir(void)
{
    return open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int reload__configure(const struct options *o, int start_dir, daemon_config *next,
                      void (*warn)(void *ctx, const char *msg), char *err, size_t errlen)
{
    /* Relative names (the config file's, its keys', the options') mean what they meant
     * at start, though a detached daemon works in rundir. */
    int here = start_dir >= 0 ? open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    int moved = here >= 0 && fchdir(start_dir) == 0;
    int rc = options__configure(o, next, warn, NULL, err, errlen);
    if (moved && fchdir(here) != 0 && rc == STOMPD_EXIT_OK) {
        snprintf(err, errlen, "cannot return to the working directory");
        rc = STOMPD_EXIT_FAILURE;
    }
    if (here >= 0)
        close(here);
    return rc;
}

/* Keys read only at startup. */
static const char *const restart_keys[] = {
    "listen", "store", "sync", "pg_lease", "daemon", "rundir", "umask", "pidfile",
    "logfile", "syslog", "user", "group", "read_buffer", "websocket", "ws_host", "ws_port",
    "ws_path", "policy_port", "stats_interval", "tls_listen", "wss_listen", "admin_listen",
    "unix_mode", "unix_owner", "admin_tls", NULL,
};

typedef struct kv {
    char *name, *value;
} kv;

typedef struct kv_list {
    kv *v;
    size_t n, cap;
    int oom;
} kv_list;

static char *join(const char *a, const char *sep, const char *b)
{
    size_t la = strlen(a), ls = strlen(sep), lb = strlen(b);
    char *s = malloc(la + ls + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, sep, ls);
        memcpy(s + la + ls, b, lb + 1);
    }
    return s;
}

/* A repeated key (listen) comes in a row: its values are joined. */
static void collect(void *ctx, const char *section, const char *key, const char *value)
{
    kv_list *l = ctx;
    if (l->oom)
        return;
    char *name = strcmp(section, "stompd") == 0 ? strdup(key) : join(section, ".", key);
    if (!name) {
        l->oom = 1;
        return;
    }
    if (l->n && strcmp(l->v[l->n - 1].name, name) == 0) {
        char *v = join(l->v[l->n - 1].value, ", ", value);
        free(name);
        if (!v) {
            l->oom = 1;
            return;
        }
        free(l->v[l->n - 1].value);
        l->v[l->n - 1].value = v;
        return;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 128;
        kv *nv = realloc(l->v, cap * sizeof *nv);
        if (!nv) {
            free(name);
            l->oom = 1;
            return;
        }
        l->v = nv;
        l->cap = cap;
    }
    char *v = strdup(value);
    if (!v) {
        free(name);
        l->oom = 1;
        return;
    }
    l->v[l->n++] = (kv){ name, v };
}

static void free_list(kv_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].value);
    }
    free(l->v);
}

static const char *lookup(const kv_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].name, name) == 0)
            return l->v[i].value;
    return NULL;
}

static int needs_restart(const char *name, const daemon_config *old, const daemon_config *next)
{
    for (size_t i = 0; restart_keys[i]; i++)
        if (strcmp(name, restart_keys[i]) == 0)
            return 1;
    /* Turning TLS or authentication on or off changes listeners and the broker's hooks. */
    if (strncmp(name, "tls_", 4) == 0 && !old->tls.cert != !next->tls.cert)
        return 1;
    return strcmp(name, "auth_file") == 0 && !old->auth_file != !next->auth_file;
}

static void add_name(char *list, size_t cap, const char *name)
{
    size_t n = strlen(list);
    if (n + strlen(name) + 3 < cap)
        snprintf(list + n, cap - n, "%s%s", n ? ", " : "", name);
}

/* Note name in r's lists when a and b (either may be NULL: not set) differ. */
static void compare_one(const char *name, const char *a, const char *b,
                        const daemon_config *old, const daemon_config *next,
                        broker_reload_result *r)
{
    if (a && b && strcmp(a, b) == 0)
        return;
    if (needs_restart(name, old, next))
        add_name(r->restart, sizeof r->restart, name);
    else
        add_name(r->changed, sizeof r->changed, name);
}

int reload__compare(const daemon_config *old, const daemon_config *next,
                    broker_reload_result *r)
{
    kv_list a = { 0 }, b = { 0 };
    config__show(old, collect, &a);
    config__show(next, collect, &b);
    int rc = a.oom || b.oom ? -1 : 0;
    for (size_t i = 0; rc == 0 && i < b.n; i++)
        compare_one(b.v[i].name, lookup(&a, b.v[i].name), b.v[i].value, old, next, r);
    for (size_t i = 0; rc == 0 && i < a.n; i++) /* sections (and their keys) removed */
        if (!lookup(&b, a.v[i].name))
            compare_one(a.v[i].name, a.v[i].value, NULL, old, next, r);
    free_list(&a);
    free_list(&b);
    return rc;
}

#define SWAP(x, y)                                                                          \
    do {                                                                                    \
        __typeof__(x) t_ = (x);                                                             \
        (x) = (y);                                                                          \
        (y) = t_;                                                                           \
    } while (0)

void reload__keep_running(daemon_config *next, daemon_config *old)
{
    SWAP(next->nlisten, old->nlisten);
    for (size_t i = 0; i < CONFIG_MAX_LISTEN; i++)
        SWAP(next->listen[i], old->listen[i]);
    SWAP(next->store, old->store);
    SWAP(next->sync_full, old->sync_full);
    SWAP(next->opts.store_lease_ms, old->opts.store_lease_ms);
    SWAP(next->daemonize, old->daemonize);
    SWAP(next->rundir, old->rundir);
    SWAP(next->umask, old->umask);
    SWAP(next->pidfile, old->pidfile);
    SWAP(next->logfile, old->logfile);
    SWAP(next->syslog, old->syslog);
    SWAP(next->user, old->user);
    SWAP(next->group, old->group);
    SWAP(next->opts.read_buffer, old->opts.read_buffer);
    SWAP(next->websocket, old->websocket);
    SWAP(next->ws_host, old->ws_host);
    SWAP(next->ws_port, old->ws_port);
    SWAP(next->ws_port_given, old->ws_port_given);
    SWAP(next->ws_path, old->ws_path);
    SWAP(next->policy_port, old->policy_port);
    SWAP(next->stats_interval_s, old->stats_interval_s);
    SWAP(next->admin_listen, old->admin_listen);
    SWAP(next->admin_tls, old->admin_tls);
    SWAP(next->nunix, old->nunix);
    for (size_t i = 0; i < CONFIG_MAX_LISTEN; i++)
        SWAP(next->unix_listen[i], old->unix_listen[i]);
    SWAP(next->unix_mode, old->unix_mode);
    SWAP(next->unix_owner, old->unix_owner);
    if (!next->tls.cert != !old->tls.cert) {
        SWAP(next->tls, old->tls);
    } else {
        config_tls *n = &next->tls, *o = &old->tls;
        for (size_t i = 0; i < CONFIG_MAX_LISTEN; i++) {
            SWAP(n->listen[i], o->listen[i]);
            SWAP(n->wss[i], o->wss[i]);
            SWAP(n->listen_verify[i], o->listen_verify[i]);
            SWAP(n->wss_verify[i], o->wss_verify[i]);
        }
        SWAP(n->nlisten, o->nlisten);
        SWAP(n->nwss, o->nwss);
    }
    if (!next->auth_file != !old->auth_file)
        SWAP(next->auth_file, old->auth_file);
}
