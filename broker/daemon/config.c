/* config.c: stompd's configuration: defaults, the INI file (parsed by inih), one setter
 * shared by the file and the command line, and the CoilMQ [coilmq] compatibility keys.
 *
 * Every key lives in one table (name, kind, default, help), so the file, --help and the
 * checks agree. Nothing is silently ignored: an unknown section or key, a bad value or an
 * unreadable line is an error naming FILE:LINE; CoilMQ keys with no meaning here are
 * warnings naming the key.
 */
#include "daemon.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum kind {
    K_SIZE, K_U32, K_BOOL, K_STR, K_LISTEN, K_STORE, K_SYNC, K_UMASK, K_LEVEL,
    K_ADDR,     /* an IPv4 or IPv6 literal */
    K_PORT,     /* 0-65535 */
    K_OPTPORT,  /* 0-65535, or empty for none (-1) */
    K_URLPATH,  /* starts with / */
    K_LIST,     /* non-empty, comma-separated */
    K_PORTLIST, /* empty, or Flash to-ports: digits, ',', '-', '*' */
};

typedef struct key {
    const char *name;
    enum kind kind;
    size_t off;      /* of the field in daemon_config */
    size_t min;      /* smallest accepted value (numbers) */
    const char *def; /* the default, as written in the file */
    const char *help;
} key;

#define F(field) offsetof(daemon_config, field)

static const key keys[] = {
    { "listen", K_LISTEN, 0, 0, "127.0.0.1:61613",
      "address to listen on, HOST:PORT or [IPV6]:PORT; repeat the key for several" },
    { "store", K_STORE, 0, 0, "memory", "queue storage: memory or sqlite:PATH" },
    { "sync", K_SYNC, 0, 0, "full",
      "sqlite store: full (survives power loss) or normal (survives a killed process)" },
    { "daemon", K_BOOL, F(daemonize), 0, "no",
      "detach from the terminal and run in the background" },
    { "rundir", K_STR, F(rundir), 0, "/", "working directory of the daemon" },
    { "umask", K_UMASK, 0, 0, "022", "file creation mask of the daemon (octal)" },
    { "pidfile", K_STR, F(pidfile), 0, "", "write and lock this pid file (empty: none)" },
    { "logfile", K_STR, F(logfile), 0, "",
      "append log lines to this file (empty: stderr, or nothing when detached)" },
    { "log_level", K_LEVEL, 0, 0, "info", "debug, info, warning or error" },
    { "debug", K_BOOL, F(debug), 0, "no", "debug log level and a periodic stats line" },
    { "stats_interval", K_U32, F(stats_interval_s), 0, "10",
      "seconds between stats lines with debug (0: none)" },
    { "syslog", K_BOOL, F(syslog), 0, "no", "also log to syslog (facility daemon)" },
    { "user", K_STR, F(user), 0, "", "drop to this user after binding (empty: stay)" },
    { "group", K_STR, F(group), 0, "", "drop to this group (empty: the user's group)" },
    { "auth_file", K_STR, F(auth_file), 0, "",
      "require login: file of 'login = hash' lines (empty: no authentication)" },
    { "auth_fail_delay_ms", K_U32, F(opts.auth_fail_delay_ms), 0, "1000",
      "wait this long before refusing a bad login" },
    { "stop_timeout", K_U32, F(stop_timeout_s), 1, "10",
      "seconds a SIGTERM stop may take before stompd exits anyway" },
    { "server_name", K_STR, F(server_name), 0, "stompd/" STOMPD_VERSION,
      "server header of CONNECTED" },
    { "max_connections", K_SIZE, F(opts.max_connections), 1, "16384", "open connections" },
    { "max_subscriptions", K_SIZE, F(opts.max_subscriptions), 1, "256",
      "subscriptions per connection" },
    { "max_unacked", K_SIZE, F(opts.max_unacked), 1, "1024",
      "unacknowledged messages per subscription" },
    { "default_prefetch", K_SIZE, F(opts.default_prefetch), 1, "100",
      "prefetch window of a SUBSCRIBE that names none" },
    { "max_tx_frames", K_SIZE, F(opts.max_tx_frames), 1, "1024", "frames per transaction" },
    { "max_transactions", K_SIZE, F(opts.max_transactions), 1, "16",
      "open transactions per connection" },
    { "output_high_water", K_SIZE, F(opts.output_high_water), 1, "1M",
      "queued output bytes above which nothing more is dispatched to a connection" },
    { "max_output_bytes", K_SIZE, F(opts.max_output_bytes), 1, "64M",
      "queued output bytes at which a slow topic subscriber is closed" },
    { "max_memory", K_SIZE, F(opts.max_memory), 1, "1G",
      "bytes of messages and output over which producers stop being read" },
    { "read_buffer", K_SIZE, F(opts.read_buffer), 512, "64K",
      "bytes read from a connection at a time (one buffer shared by all connections)" },
    { "connect_timeout_ms", K_U32, F(opts.connect_timeout_ms), 0, "10000",
      "CONNECT must arrive within this (0: no limit)" },
    { "heartbeat_out_ms", K_U32, F(opts.heartbeat_out_ms), 0, "1000",
      "shortest interval heart-beats are sent at (0: never)" },
    { "heartbeat_in_ms", K_U32, F(opts.heartbeat_in_ms), 0, "10000",
      "interval clients are asked to send heart-beats at (0: none wanted)" },
    { "heartbeat_grace_pct", K_U32, F(opts.heartbeat_grace_pct), 200, "200",
      "a client may be silent this % of its heart-beat interval" },
    { "error_linger_ms", K_U32, F(opts.error_linger_ms), 0, "2000",
      "after an ERROR, close even if it could not be written" },
    { "max_command", K_SIZE, F(opts.limits.max_command), 8, "64", "bytes in a command line" },
    { "max_header_line", K_SIZE, F(opts.limits.max_header_line), 16, "8K",
      "bytes in one header line" },
    { "max_headers", K_SIZE, F(opts.limits.max_headers), 1, "128", "headers per frame" },
    { "max_header_bytes", K_SIZE, F(opts.limits.max_header_bytes), 64, "64K",
      "command line plus header block" },
    { "max_body", K_SIZE, F(opts.limits.max_body), 0, "16M", "body bytes of a frame" },
    { "connect_max_command", K_SIZE, F(opts.connect_limits.max_command), 8, "64",
      "before login: bytes in a command line" },
    { "connect_max_header_line", K_SIZE, F(opts.connect_limits.max_header_line), 16, "1K",
      "before login: bytes in one header line" },
    { "connect_max_headers", K_SIZE, F(opts.connect_limits.max_headers), 1, "32",
      "before login: headers per frame" },
    { "connect_max_header_bytes", K_SIZE, F(opts.connect_limits.max_header_bytes), 64, "8K",
      "before login: command line plus header block" },
    { "connect_max_body", K_SIZE, F(opts.connect_limits.max_body), 0, "4K",
      "before login: body bytes of a frame" },
    { "websocket", K_BOOL, F(websocket), 0, "yes",
      "listen for STOMP over WebSocket" },
    { "ws_host", K_ADDR, F(ws_host), 0, "127.0.0.1",
      "address of the WebSocket and Flash policy listeners" },
    { "ws_port", K_PORT, F(ws_port), 0, "15674",
      "WebSocket port; 0 picks a free one" },
    { "ws_path", K_URLPATH, F(ws_path), 0, "/ws", "WebSocket endpoint path" },
    { "ws_origins", K_STR, F(ws_origins), 0, "",
      "Origins browsers may connect from, comma-separated (empty: any)" },
    { "ws_max_message", K_SIZE, F(opts.ws_max_message), 1, "16842752",
      "largest WebSocket message, bytes" },
    { "web_root", K_STR, F(web_root), 0, "",
      "serve its files on the WebSocket port, / = index.html (empty: none)" },
    { "flash_policy", K_BOOL, F(opts.flash_policy), 0, "yes",
      "answer Flash policy requests on STOMP ports" },
    { "policy_port", K_OPTPORT, F(policy_port), 0, "",
      "Flash policy listener port, e.g. 843 (empty: none)" },
    { "policy_domains", K_LIST, F(policy_domains), 0, "*",
      "allow-access-from domains of the policy, comma-separated" },
    { "policy_ports", K_PORTLIST, F(policy_ports), 0, "",
      "to-ports of the policy (empty: the STOMP ports)" },
};

#define NKEYS (sizeof keys / sizeof keys[0])

static void fmt_err(char *err, size_t errlen, const char *fmt, ...) DAEMON_PRINTF(3, 4);
static void fmt_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = { "yes", "true", "on", "1" };
    static const char *const no[] = { "no", "false", "off", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* Decimal with an optional binary suffix (k, m, g). */
static int parse_size(const char *v, unsigned long long max, unsigned long long *out)
{
    if (*v < '0' || *v > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno)
        return -1;
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: break;
    }
    if (*end || n > (max >> shift))
        return -1;
    *out = n << shift;
    return 0;
}

int config_parse_listen(const char *s, config_listen *l)
{
    const char *host = s, *port = NULL;
    size_t hlen;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close)
            return -1;
        host = s + 1;
        hlen = (size_t)(close - host);
        if (close[1] == ':')
            port = close + 2;
        else if (close[1])
            return -1;
    } else {
        const char *colon = strrchr(s, ':');
        /* More than one colon without brackets: a bare IPv6 address. */
        if (colon && memchr(s, ':', (size_t)(colon - s)) == NULL) {
            hlen = (size_t)(colon - s);
            port = colon + 1;
        } else {
            hlen = strlen(s);
        }
    }
    if (hlen == 0 || hlen >= sizeof l->host)
        return -1;
    memcpy(l->host, host, hlen);
    l->host[hlen] = '\0';
    if (port) {
        unsigned long long p;
        if (parse_size(port, 65535, &p) != 0 || strpbrk(port, "kKmMgG"))
            return -1;
        l->port = (int)p;
    } else {
        l->port = 61613;
    }
    return 0;
}

static int set_str(char **field, const char *v)
{
    char *dup = strdup(v);
    if (!dup)
        return -1;
    free(*field);
    *field = *v ? dup : NULL;
    if (!*v)
        free(dup);
    return 0;
}

/* Set by the file: the first "listen" replaces the default address. */
typedef struct loader {
    daemon_config *cfg;
    const char *path;
    unsigned line;       /* of the line inih is handling */
    unsigned long errline;
    int failed;
    int listen_given;
    char *err;
    size_t errlen;
    void (*warn)(void *ctx, const char *msg);
    void *warn_ctx;
    FILE *f;
    int too_long;
    char *section_warned;
    /* [coilmq] store keys, resolved at the end */
    char *coil_factory, *coil_dbm_dir, *coil_sa_url;
    unsigned coil_factory_line;
} loader;

static int apply(daemon_config *cfg, const key *k, const char *v, int *listen_given, char *err,
                 size_t errlen)
{
    char *base = (char *)cfg;
    switch (k->kind) {
    case K_SIZE: {
        unsigned long long n;
        if (parse_size(v, SIZE_MAX, &n) != 0 || n < k->min) {
            fmt_err(err, errlen, "%s: '%s' is not a size of at least %zu (digits, then "
                                 "optionally k, m or g)", k->name, v, k->min);
            return -1;
        }
        *(size_t *)(base + k->off) = (size_t)n;
        return 0;
    }
    case K_U32: {
        unsigned long long n;
        if (parse_size(v, UINT32_MAX, &n) != 0 || strpbrk(v, "kKmMgG") || n < k->min) {
            fmt_err(err, errlen, "%s: '%s' is not a whole number from %zu to %u", k->name,
                    v, k->min, (unsigned)UINT32_MAX);
            return -1;
        }
        *(uint32_t *)(base + k->off) = (uint32_t)n;
        return 0;
    }
    case K_BOOL: {
        int b;
        if (parse_bool(v, &b) != 0) {
            fmt_err(err, errlen, "%s: '%s' is not yes or no", k->name, v);
            return -1;
        }
        *(int *)(base + k->off) = b;
        return 0;
    }
    case K_STR:
        if (set_str((char **)(base + k->off), v) != 0) {
            fmt_err(err, errlen, "%s: out of memory", k->name);
            return -1;
        }
        return 0;
    case K_LISTEN: {
        config_listen l;
        if (config_parse_listen(v, &l) != 0) {
            fmt_err(err, errlen, "listen: '%s' is not HOST:PORT or [IPV6]:PORT", v);
            return -1;
        }
        if (listen_given && !*listen_given) {
            cfg->nlisten = 0;
            *listen_given = 1;
        }
        if (cfg->nlisten >= CONFIG_MAX_LISTEN) {
            fmt_err(err, errlen, "listen: at most %d addresses", CONFIG_MAX_LISTEN);
            return -1;
        }
        cfg->listen[cfg->nlisten++] = l;
        return 0;
    }
    case K_STORE:
        if (strcmp(v, "memory") != 0 && !(strncmp(v, "sqlite:", 7) == 0 && v[7])) {
            fmt_err(err, errlen, "store: '%s' is not memory or sqlite:PATH", v);
            return -1;
        }
        if (set_str(&cfg->store, v) != 0) {
            fmt_err(err, errlen, "store: out of memory");
            return -1;
        }
        return 0;
    case K_SYNC:
        if (strcmp(v, "full") != 0 && strcmp(v, "normal") != 0) {
            fmt_err(err, errlen, "sync: '%s' is not full or normal", v);
            return -1;
        }
        cfg->sync_full = v[0] == 'f';
        return 0;
    case K_UMASK: {
        char *end;
        errno = 0;
        unsigned long m = strtoul(v, &end, 8);
        if (!*v || *end || errno || m > 0777) {
            fmt_err(err, errlen, "umask: '%s' is not an octal mask (e.g. 022)", v);
            return -1;
        }
        cfg->umask = (mode_t)m;
        return 0;
    }
    case K_ADDR: {
        unsigned char a[16];
        if (uv_inet_pton(AF_INET, v, a) != 0 && uv_inet_pton(AF_INET6, v, a) != 0) {
            fmt_err(err, errlen, "%s: '%s' is not an IPv4 or IPv6 address", k->name, v);
            return -1;
        }
        if (set_str((char **)(base + k->off), v) != 0) {
            fmt_err(err, errlen, "%s: out of memory", k->name);
            return -1;
        }
        return 0;
    }
    case K_PORT:
    case K_OPTPORT: {
        unsigned long long p;
        if (k->kind == K_OPTPORT && !*v) {
            *(int *)(base + k->off) = -1;
            return 0;
        }
        if (parse_size(v, 65535, &p) != 0 || strpbrk(v, "kKmMgG")) {
            fmt_err(err, errlen, "%s: '%s' is not a port number (0-65535%s)", k->name, v,
                    k->kind == K_OPTPORT ? ", or empty for none" : "");
            return -1;
        }
        *(int *)(base + k->off) = (int)p;
        if (k->off == F(ws_port))
            cfg->ws_port_given = 1;
        return 0;
    }
    case K_URLPATH:
    case K_LIST:
    case K_PORTLIST: {
        const char *why = NULL;
        if (k->kind == K_URLPATH && v[0] != '/')
            why = "does not start with /";
        else if (k->kind == K_LIST && (!*v || strspn(v, ", ") == strlen(v)))
            why = "is empty";
        else if (k->kind == K_PORTLIST && v[strspn(v, "0123456789,-*")])
            why = "is not a list of ports and ranges (e.g. 61613,15674 or 1024-65535 or *)";
        if (why) {
            fmt_err(err, errlen, "%s: '%s' %s", k->name, v, why);
            return -1;
        }
        if (set_str((char **)(base + k->off), v) != 0) {
            fmt_err(err, errlen, "%s: out of memory", k->name);
            return -1;
        }
        return 0;
    }
    case K_LEVEL: {
        static const char *const names[] = { "error", "warning", "info", "debug" };
        for (int i = 0; i < 4; i++)
            if (strcmp(v, names[i]) == 0 || (i == 1 && strcmp(v, "warn") == 0)) {
                cfg->log_level = (broker_log_level)i;
                return 0;
            }
        fmt_err(err, errlen, "log_level: '%s' is not debug, info, warning or error", v);
        return -1;
    }
    }
    return -1;
}

static const key *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

void config_init(daemon_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    broker_options_init(&cfg->opts);
    char err[DAEMON_ERRLEN];
    for (size_t i = 0; i < NKEYS; i++) {
        /* Defaults of strings stay NULL when empty; the others are parsed like input. */
        int rc = apply(cfg, &keys[i], keys[i].def, NULL, err, sizeof err);
        (void)rc; /* the table's defaults are valid (checked by the tests) */
    }
    cfg->ws_port_given = 0; /* the default port was not asked for */
}

void config_free(daemon_config *cfg)
{
    free(cfg->store);
    free(cfg->rundir);
    free(cfg->pidfile);
    free(cfg->logfile);
    free(cfg->user);
    free(cfg->group);
    free(cfg->auth_file);
    free(cfg->server_name);
    free(cfg->ws_host);
    free(cfg->ws_path);
    free(cfg->ws_origins);
    free(cfg->web_root);
    free(cfg->policy_domains);
    free(cfg->policy_ports);
    memset(cfg, 0, sizeof *cfg);
}

int config_set(daemon_config *cfg, const char *name, const char *value, char *err,
               size_t errlen)
{
    const key *k = find_key(name);
    if (!k) {
        fmt_err(err, errlen, "unknown key '%s'", name);
        return -1;
    }
    int given = 0;
    return apply(cfg, k, value, &given, err, errlen);
}

/* ---- the file ------------------------------------------------------------------------ */

static void load_fail(loader *ld, const char *fmt, ...) DAEMON_PRINTF(2, 3);
static void load_fail(loader *ld, const char *fmt, ...)
{
    if (ld->failed)
        return; /* the first error is the one reported */
    char msg[DAEMON_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(ld->err, ld->errlen, "%s:%u: %s", ld->path, ld->line, msg);
    ld->failed = 1;
}

static void load_warn(loader *ld, const char *fmt, ...) DAEMON_PRINTF(2, 3);
static void load_warn(loader *ld, const char *fmt, ...)
{
    if (!ld->warn)
        return;
    char msg[DAEMON_ERRLEN], line[DAEMON_ERRLEN + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(line, sizeof line, "%s:%u: %s", ld->path, ld->line, msg);
    ld->warn(ld->warn_ctx, line);
}

static int is_coil_logging_section(const char *s)
{
    return strcmp(s, "loggers") == 0 || strcmp(s, "handlers") == 0 ||
           strcmp(s, "formatters") == 0 || strncmp(s, "logger_", 7) == 0 ||
           strncmp(s, "handler_", 8) == 0 || strncmp(s, "formatter_", 10) == 0;
}

static int coil_key(loader *ld, const char *name, const char *v)
{
    daemon_config *cfg = ld->cfg;
    char err[DAEMON_ERRLEN];
    if (strcmp(name, "listen_addr") == 0 || strcmp(name, "listen_port") == 0) {
        if (!ld->listen_given) {
            ld->listen_given = 1;
            cfg->nlisten = 1;
        }
        if (name[7] == 'a') {
            if (strlen(v) == 0 || strlen(v) >= sizeof cfg->listen[0].host) {
                load_fail(ld, "listen_addr: '%s' is not an address", v);
                return 0;
            }
            snprintf(cfg->listen[0].host, sizeof cfg->listen[0].host, "%s", v);
        } else {
            unsigned long long p;
            if (parse_size(v, 65535, &p) != 0 || strpbrk(v, "kKmMgG")) {
                load_fail(ld, "listen_port: '%s' is not a port number", v);
                return 0;
            }
            cfg->listen[0].port = (int)p;
        }
        return 1;
    }
    if (strcmp(name, "qstore.factory") == 0 || strcmp(name, "qstore.dbm.data_dir") == 0 ||
        strcmp(name, "qstore.sa.url") == 0) {
        char **slot = name[7] == 'f' ? &ld->coil_factory
                                     : name[7] == 'd' ? &ld->coil_dbm_dir : &ld->coil_sa_url;
        if (name[7] == 'f')
            ld->coil_factory_line = ld->line;
        if (set_str(slot, v) != 0)
            load_fail(ld, "out of memory");
        return 1;
    }
    if (strcmp(name, "auth.simple.file") == 0) {
        if (apply(cfg, find_key("auth_file"), v, NULL, err, sizeof err) != 0)
            load_fail(ld, "%s", err);
        return 1;
    }
    if (strcmp(name, "auth.factory") == 0) {
        if (strcmp(v, "coilmq.auth.simple.make_simple") != 0)
            load_fail(ld, "auth.factory: only coilmq.auth.simple.make_simple (auth.simple.file) "
                          "is supported");
        return 1;
    }
    if (strcmp(name, "debug.stats_poll_interval") == 0) {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (!*v || *end || errno || d < 0 || d > 86400) {
            load_fail(ld, "debug.stats_poll_interval: '%s' is not a number of seconds", v);
            return 0;
        }
        cfg->stats_interval_s = (unsigned)(d + 0.5);
        if (d > 0 && cfg->stats_interval_s == 0)
            cfg->stats_interval_s = 1;
        return 1;
    }
    if (strncmp(name, "scheduler.", 10) == 0 || strncmp(name, "qstore.", 7) == 0 ||
        strncmp(name, "auth.", 5) == 0 || strncmp(name, "debug.", 6) == 0) {
        load_warn(ld, "[coilmq] %s is ignored: stompd has no such setting", name);
        return 1;
    }
    load_fail(ld, "unknown key '%s' in [coilmq]", name);
    return 0;
}

/* inih handler: 1 = fine, 0 = error (inih reports the line too; we keep our message). */
static int on_entry(void *user, const char *section, const char *name, const char *value)
{
    loader *ld = user;
    if (ld->too_long)
        return 0; /* reported by read_line */
    if (strcmp(section, "coilmq") == 0)
        return coil_key(ld, name, value);
    if (is_coil_logging_section(section)) {
        if (!ld->section_warned || strcmp(ld->section_warned, section) != 0) {
            load_warn(ld, "[%s] is ignored: CoilMQ logging sections have no meaning here "
                          "(use logfile, log_level, syslog)", section);
            if (set_str(&ld->section_warned, section) != 0)
                load_fail(ld, "out of memory");
        }
        return 1;
    }
    if (section[0] && strcmp(section, "stompd") != 0) {
        load_fail(ld, "unknown section [%s] (expected [stompd] or [coilmq])", section);
        return 0;
    }
    const key *k = find_key(name);
    if (!k) {
        load_fail(ld, "unknown key '%s'", name);
        return 0;
    }
    char err[DAEMON_ERRLEN];
    if (apply(ld->cfg, k, value, &ld->listen_given, err, sizeof err) != 0) {
        load_fail(ld, "%s", err);
        return 0;
    }
    return 1;
}

/* inih reader: one whole line per call, so our line count is exact, and a line longer
 * than inih's buffer is an error rather than two half lines. */
static char *read_line(char *str, int num, void *stream)
{
    loader *ld = stream;
    size_t n = 0;
    int ch;
    ld->too_long = 0;
    while ((ch = getc(ld->f)) != EOF) {
        if ((int)n < num - 2)
            str[n++] = (char)ch;
        else if (ch != '\n' && ch != '\r')
            ld->too_long = 1;
        if (ch == '\n')
            break;
    }
    if (n == 0 && ch == EOF)
        return NULL;
    str[n] = '\0';
    ld->line++;
    if (ld->too_long) {
        /* Make inih hand the line to on_entry or flag it, whatever it holds. */
        load_fail(ld, "line too long (at most %d bytes)", num - 2);
    }
    return str;
}

static int finish_coil_store(loader *ld)
{
    if (!ld->coil_factory)
        return 0;
    unsigned saved = ld->line;
    ld->line = ld->coil_factory_line;
    const char *f = ld->coil_factory;
    char spec[PATH_MAX + 16];
    int rc = 0;
    if (strcmp(f, "coilmq.store.memory.MemoryQueue") == 0) {
        snprintf(spec, sizeof spec, "memory");
    } else if (strcmp(f, "coilmq.store.dbm.make_dbm") == 0) {
        if (!ld->coil_dbm_dir) {
            load_fail(ld, "qstore.factory dbm needs qstore.dbm.data_dir");
            rc = -1;
        } else {
            snprintf(spec, sizeof spec, "sqlite:%s/stompd.sqlite", ld->coil_dbm_dir);
            load_warn(ld, "qstore.factory dbm: using the SQLite store %s", spec + 7);
        }
    } else if (strcmp(f, "coilmq.store.sa.make_sa") == 0) {
        const char *u = ld->coil_sa_url;
        if (!u || strncmp(u, "sqlite:///", 10) != 0 || !u[10]) {
            load_fail(ld, "qstore.factory sa: only a qstore.sa.url of sqlite:///PATH is "
                          "supported");
            rc = -1;
        } else {
            snprintf(spec, sizeof spec, "sqlite:%s", u + 10);
        }
    } else {
        load_fail(ld, "qstore.factory '%s' is not supported (use store = memory or "
                      "store = sqlite:PATH)", f);
        rc = -1;
    }
    if (rc == 0 && set_str(&ld->cfg->store, spec) != 0) {
        load_fail(ld, "out of memory");
        rc = -1;
    }
    ld->line = saved;
    return rc;
}

int config_load(daemon_config *cfg, const char *path, void (*warn)(void *ctx, const char *msg),
                void *warn_ctx, char *err, size_t errlen)
{
    loader ld = { .cfg = cfg, .path = path, .err = err, .errlen = errlen, .warn = warn,
                  .warn_ctx = warn_ctx };
    ld.f = fopen(path, "r");
    if (!ld.f) {
        snprintf(err, errlen, "%s:0: cannot open: %s", path, strerror(errno));
        return -1;
    }
    int rc = ini_parse_stream(read_line, &ld, on_entry, &ld);
    int read_error = ferror(ld.f);
    fclose(ld.f);
    if (read_error && !ld.failed) {
        snprintf(err, errlen, "%s:%u: read error", path, ld.line);
        ld.failed = 1;
    }
    if (rc > 0 && !ld.failed) {
        /* A line inih could not parse: no '=' or ':', or a bad section header. */
        snprintf(err, errlen, "%s:%d: syntax error (expected [section], key = value or a "
                              "comment)", path, rc);
        ld.failed = 1;
    } else if (rc < 0 && !ld.failed) {
        snprintf(err, errlen, "%s:0: %s", path, rc == -2 ? "out of memory" : "cannot read");
        ld.failed = 1;
    }
    if (!ld.failed && finish_coil_store(&ld) != 0)
        ld.failed = 1;
    free(ld.coil_factory);
    free(ld.coil_dbm_dir);
    free(ld.coil_sa_url);
    free(ld.section_warned);
    return ld.failed ? -1 : 0;
}

void config_print_keys(FILE *f)
{
    fprintf(f, "\nConfig file keys ([stompd] section; sizes take k, m, g suffixes):\n");
    for (size_t i = 0; i < NKEYS; i++)
        fprintf(f, "  %-25s %-16s %s\n", keys[i].name, keys[i].def[0] ? keys[i].def : "\"\"",
                keys[i].help);
}

/* Prefix a relative path with the current directory: 0, or -1 when out of memory. */
static int absolute(char **path, size_t skip)
{
    if (!*path || (*path)[skip] == '/')
        return 0;
    char *cwd = getcwd(NULL, 0);
    if (!cwd)
        return -1;
    size_t n = strlen(cwd) + strlen(*path) + 2;
    char *abs = malloc(n);
    if (abs)
        snprintf(abs, n, "%.*s%s/%s", (int)skip, *path, cwd, *path + skip);
    free(cwd);
    if (!abs)
        return -1;
    free(*path);
    *path = abs;
    return 0;
}

int config_absolute_paths(daemon_config *cfg)
{
    int is_sqlite = cfg->store && strncmp(cfg->store, "sqlite:", 7) == 0;
    if (absolute(&cfg->pidfile, 0) != 0 || absolute(&cfg->logfile, 0) != 0 ||
        absolute(&cfg->auth_file, 0) != 0 || absolute(&cfg->web_root, 0) != 0 ||
        (is_sqlite && absolute(&cfg->store, 7) != 0))
        return -1;
    return 0;
}
