/* config_show.c: the configuration written back out, one key and value at a time, as the
 * file would say it: for GET /api/config (stompctl config) and for telling what a reload
 * changed (reload.c compares two configurations through this).
 *
 * Never shown: passcodes (a postgres: store's password is replaced by ***), hashes (they
 * live in the auth file, which is named, not read) and key material (tls_key names a file).
 */
#include "config_keys.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct out {
    broker_config_emit emit;
    void *ctx;
} out;

static void put(const out *o, const char *section, const char *name, const char *value)
{
    o->emit(o->ctx, section, name, value ? value : "");
}

static void fmt_listen(const config_listen *l, char *buf, size_t cap)
{
    snprintf(buf, cap, strchr(l->host, ':') ? "[%s]:%d" : "%s:%d", l->host, l->port);
}

/* conninfo "... password=SECRET ..." and URIs "scheme://user:SECRET@host" lose SECRET. */
static void redact_store(const char *spec, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", spec ? spec : "");
    char *p = strstr(buf, "password=");
    if (p) {
        p += 9;
        size_t n = strcspn(p, " ");
        memmove(p + 3, p + n, strlen(p + n) + 1);
        memcpy(p, "***", 3);
    }
    char *scheme = strstr(buf, "://");
    char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
    if (at && colon && colon < at) {
        memmove(colon + 4, at, strlen(at) + 1);
        memcpy(colon + 1, "***", 3);
    }
}

/* One key of a table, its value read from base (a daemon_config or a config_policy). */
static void show_key(const out *o, const char *section, const config_key *k,
                     const daemon_config *cfg, const void *base)
{
    static const char *const levels[] = { "error", "warning", "info", "debug" };
    static const char *const expired[] = { "dead-letter", "drop" };
    static const char *const overflow[] = { "block", "drop-head", "reject" };
    const char *f = (const char *)base + k->off;
    char v[1024];
    v[0] = '\0';
    switch (k->kind) {
    case K_SIZE: snprintf(v, sizeof v, "%zu", *(const size_t *)f); break;
    case K_U32: snprintf(v, sizeof v, "%u", (unsigned)*(const uint32_t *)f); break;
    case K_BOOL: snprintf(v, sizeof v, "%s", *(const int *)f ? "yes" : "no"); break;
    case K_STR: case K_ADDR: case K_URLPATH: case K_LIST: case K_PORTLIST: case K_QUEUE:
        snprintf(v, sizeof v, "%s", *(char *const *)f ? *(char *const *)f : "");
        break;
    case K_LISTEN:
        for (size_t i = 0; i < cfg->nlisten; i++) {
            fmt_listen(&cfg->listen[i], v, sizeof v);
            put(o, section, k->name, v);
        }
        for (size_t i = 0; i < cfg->nunix; i++) {
            snprintf(v, sizeof v, "unix:%s", cfg->unix_listen[i]);
            put(o, section, k->name, v);
        }
        return;
    case K_STORE: redact_store(cfg->store, v, sizeof v); break;
    case K_SYNC: snprintf(v, sizeof v, "%s", cfg->sync_full ? "full" : "normal"); break;
    case K_UMASK: snprintf(v, sizeof v, "%03o", (unsigned)cfg->umask); break;
    case K_LEVEL: snprintf(v, sizeof v, "%s", levels[cfg->log_level]); break;
    case K_PORT: snprintf(v, sizeof v, "%d", *(const int *)f); break;
    case K_OPTPORT:
        if (*(const int *)f >= 0)
            snprintf(v, sizeof v, "%d", *(const int *)f);
        break;
    case K_FACTOR: snprintf(v, sizeof v, "%g", *(const double *)f); break;
    case K_MS: case K_COUNT: case K_BYTES:
        snprintf(v, sizeof v, "%llu", (unsigned long long)*(const uint64_t *)f);
        break;
    case K_EXPIRED: snprintf(v, sizeof v, "%s", expired[*(const int *)f & 1]); break;
    case K_OVERFLOW: snprintf(v, sizeof v, "%s", overflow[*(const int *)f % 3]); break;
    }
    put(o, section, k->name, v);
}

static void show_tls_listeners(const out *o, const char *name, const config_listen *l,
                               const int *verify, size_t n)
{
    static const char *const modes[] = { " none", " optional", " required" };
    for (size_t i = 0; i < n; i++) {
        char addr[96], v[128];
        fmt_listen(&l[i], addr, sizeof addr);
        int m = verify[i];
        snprintf(v, sizeof v, "%s%s", addr, m >= 0 && m <= 2 ? modes[m] : "");
        put(o, "stompd", name, v);
    }
}

static void show_tls(const out *o, const daemon_config *cfg)
{
    static const char *const verify[] = { "none", "optional", "required" };
    static const char *const login[] = { "none", "cn", "san" };
    const config_tls *t = &cfg->tls;
    show_tls_listeners(o, "tls_listen", t->listen, t->listen_verify, t->nlisten);
    show_tls_listeners(o, "wss_listen", t->wss, t->wss_verify, t->nwss);
    put(o, "stompd", "tls_cert", t->cert);
    put(o, "stompd", "tls_key", t->key);
    put(o, "stompd", "tls_ca", t->ca);
    put(o, "stompd", "tls_verify_client", verify[t->verify_client % 3]);
    put(o, "stompd", "tls_login", login[t->login % 3]);
    put(o, "stompd", "tls_min_version", t->min_version == 13 ? "1.3" : "1.2");
    put(o, "stompd", "tls_ciphers", t->ciphers);
    put(o, "stompd", "tls_ciphersuites", t->ciphersuites);
}

static void show_admin(const out *o, const daemon_config *cfg)
{
    char v[128] = "";
    if (cfg->admin_listen.host[0])
        fmt_listen(&cfg->admin_listen, v, sizeof v);
    put(o, "stompd", "admin_listen", v);
    put(o, "stompd", "admin_tls", cfg->admin_tls ? "yes" : "no");
    put(o, "stompd", "admin_open", cfg->opts.admin_open ? "yes" : "no");
    snprintf(v, sizeof v, "%zu", cfg->opts.metrics_max_destinations);
    put(o, "stompd", "metrics_max_destinations", v);
    snprintf(v, sizeof v, "%04o", (unsigned)cfg->unix_mode);
    put(o, "stompd", "unix_mode", v);
    put(o, "stompd", "unix_owner", cfg->unix_owner);
}

void config__show(const daemon_config *cfg, broker_config_emit emit, void *ctx)
{
    const out o = { emit, ctx };
    size_t n;
    const config_key *keys = config__keys(&n);
    for (size_t i = 0; i < n; i++)
        show_key(&o, "stompd", &keys[i], cfg, cfg);
    show_tls(&o, cfg);
    show_admin(&o, cfg);
    for (size_t i = 0; i < CONFIG_POLICY_KEYS; i++)
        show_key(&o, "stompd", &config__policy_keys[i], cfg, &cfg->policy);
    for (size_t q = 0; q < cfg->nqueues; q++) {
        char section[600];
        snprintf(section, sizeof section, "queue \"%s\"", cfg->queues[q].pattern);
        for (size_t i = 0; i < CONFIG_POLICY_KEYS; i++)
            if (cfg->queues[q].policy.given & CONFIG_GIVEN(i))
                show_key(&o, section, &config__policy_keys[i], cfg, &cfg->queues[q].policy);
    }
}
