/* config.c: stompd's configuration: every key in a table (name, kind, default, help),
 * how each kind of value is checked and stored, the defaults, and setting one key, which
 * the config file (config_file.c) and the command line (options.c) share. The message
 * policy keys have a table of their own: [stompd] sets them for every queue, and
 * [queue "PATTERN"] sections for some (config_policy.c).
 *
 * Because the file, --help and the checks read the same tables, they agree. A bad value is
 * refused with a message naming the key and the value; nothing is clamped or guessed.
 */
#include "daemon.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config_keys.h"

#define F(field) offsetof(daemon_config, field)
#define P(field) offsetof(config_policy, field)

static const key keys[] = {
    { "listen", K_LISTEN, 0, 0, "127.0.0.1:61613",
      "address to listen on, HOST:PORT, [IPV6]:PORT or unix:/PATH; repeatable" },
    { "store", K_STORE, 0, 0, "memory", "queue storage: memory, sqlite:PATH or postgres:CONNINFO" },
    { "sync", K_SYNC, 0, 0, "full",
      "persistent stores: full (survives power loss) or normal (survives a killed process)" },
    { "pg_lease", K_U32, F(opts.store_lease_ms), 100, "10000", "postgres: a node's lease (ms)" },
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
    { "stop_drain_ms", K_U32, F(opts.stop_timeout_ms), 0, "5000",
      "on a stop, how long a client may take to read what is queued for it (ms)" },
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
    { "allow_non_utf8_10", K_BOOL, F(opts.allow_non_utf8_10), 0, "no",
      "STOMP 1.0 and CONNECT: accept commands and headers that are not UTF-8" },
    { "lenient_escapes", K_BOOL, F(opts.lenient_escapes), 0, "no",
      "STOMP 1.1: keep an undefined escape (\\t, \\r) as written instead of an ERROR" },
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

const config_key *config__keys(size_t *n)
{
    *n = NKEYS;
    return keys;
}

/* The message policy keys: set in [stompd] for every queue and in [queue "PATTERN"]
 * sections for some; off is in config_policy. */
const config_key config__policy_keys[CONFIG_POLICY_KEYS] = {
    [CONFIG_MAX_DELIVERIES] = { "max_deliveries", K_U32, P(p.max_deliveries), 0, "10",
      "deliveries of a queue message before it is dead-lettered (0: no limit)" },
    [CONFIG_REDELIVERY_DELAY] = { "redelivery_delay", K_U32, P(p.redelivery_delay), 0, "1000",
      "ms before a NACKed or orphaned queue message is delivered again" },
    [CONFIG_REDELIVERY_BACKOFF] = { "redelivery_backoff", K_FACTOR, P(p.redelivery_backoff),
      1, "2", "multiplies that delay for each further attempt (a decimal, at least 1)" },
    [CONFIG_REDELIVERY_DELAY_MAX] = { "redelivery_delay_max", K_U32,
      P(p.redelivery_delay_max), 0, "60000", "cap on that delay, ms (at least "
      "redelivery_delay)" },
    [CONFIG_DEAD_LETTER] = { "dead_letter", K_QUEUE, P(dead_letter), 0, "",
      "dead-letter queue, or none to drop (empty: /queue/DLQ.X for /queue/X)" },
    [CONFIG_TTL] = { "ttl", K_MS, P(p.ttl), 0, "0",
      "ms a queue message sent without expires or expiration lives (0: for ever)" },
    [CONFIG_MAX_TTL] = { "max_ttl", K_MS, P(p.max_ttl), 0, "0",
      "cap on any queue message's time to live, ms (0: none)" },
    [CONFIG_EXPIRED] = { "expired", K_EXPIRED, P(p.expired), 0, "dead-letter",
      "an expired queue message: dead-letter or drop" },
    [CONFIG_MAX_DELAY] = { "max_delay", K_MS, P(p.max_delay), 0, "86400000",
      "longest delay a SEND may ask for, ms (a longer one is an ERROR)" },
    [CONFIG_MAX_LENGTH] = { "max_length", K_COUNT, P(p.max_length), 0, "0",
      "messages a queue holds, delivered or not, until acknowledged (0: no limit)" },
    [CONFIG_MAX_BYTES] = { "max_bytes", K_BYTES, P(p.max_bytes), 0, "0",
      "bytes (headers and bodies) of those messages (0: no limit)" },
    [CONFIG_OVERFLOW] = { "overflow", K_OVERFLOW, P(p.overflow), 0, "block",
      "a SEND to a full queue: block (its producer waits), drop-head or reject" },
};

static int is_policy_key(const key *k)
{
    return k >= config__policy_keys && k < config__policy_keys + CONFIG_POLICY_KEYS;
}

/* One value being set: where it goes and where to say what is wrong with it. */
typedef struct assign {
    daemon_config *cfg; /* NULL for a key of a [queue] section */
    void *base;         /* what k->off is in: cfg, or a config_policy for a policy key */
    const key *k;
    const char *v;
    int *listen_given; /* NULL: listen adds an address; else the first one replaces them */
    char *err;
    size_t errlen;
} assign;

/* "KEY: MESSAGE" in err; returns -1. */
static int fail(const assign *a, const char *fmt, ...) DAEMON_PRINTF(2, 3);
static int fail(const assign *a, const char *fmt, ...)
{
    char msg[DAEMON_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(a->err, a->errlen, "%s: %s", a->k->name, msg);
    return -1;
}

/* "KEY: 'VALUE' WHY" in err; returns -1. */
static int invalid(const assign *a, const char *why_fmt, ...) DAEMON_PRINTF(2, 3);
static int invalid(const assign *a, const char *why_fmt, ...)
{
    char why[DAEMON_ERRLEN];
    va_list ap;
    va_start(ap, why_fmt);
    vsnprintf(why, sizeof why, why_fmt, ap);
    va_end(ap);
    return fail(a, "'%s' %s", a->v, why);
}

static void *field(const assign *a)
{
    return (char *)a->base + a->k->off;
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

int config__parse_port(const char *s, int *port)
{
    unsigned long long p;
    if (parse_size(s, 65535, &p) != 0 || strpbrk(s, "kKmMgG"))
        return -1;
    *port = (int)p;
    return 0;
}

int config__parse_listen(const char *s, config_listen *l, int default_port)
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
    l->port = default_port;
    return port ? config__parse_port(port, &l->port) : 0;
}

int config__set_str(char **slot, const char *v)
{
    char *dup = strdup(v);
    if (!dup)
        return -1;
    free(*slot);
    *slot = *v ? dup : NULL;
    if (!*v)
        free(dup);
    return 0;
}

/* ---- one setter per kind of value ---------------------------------------------------- */

static int set_size(const assign *a)
{
    unsigned long long n;
    if (parse_size(a->v, SIZE_MAX, &n) != 0 || n < a->k->min)
        return invalid(a, "is not a size of at least %zu (digits, then optionally k, m or g)",
                       a->k->min);
    *(size_t *)field(a) = (size_t)n;
    return 0;
}

static int set_u32(const assign *a)
{
    unsigned long long n;
    if (parse_size(a->v, UINT32_MAX, &n) != 0 || strpbrk(a->v, "kKmMgG") || n < a->k->min)
        return invalid(a, "is not a whole number from %zu to %u", a->k->min,
                       (unsigned)UINT32_MAX);
    *(uint32_t *)field(a) = (uint32_t)n;
    return 0;
}

static int set_bool(const assign *a)
{
    int b;
    if (config__parse_bool(a->v, &b) != 0)
        return invalid(a, "is not yes or no");
    *(int *)field(a) = b;
    return 0;
}

static int set_string(const assign *a)
{
    if (config__set_str(field(a), a->v) != 0)
        return fail(a, "out of memory");
    return 0;
}

static int set_listen(const assign *a)
{
    daemon_config *cfg = a->cfg;
    config_listen l;
    if (strncmp(a->v, "unix:", 5) == 0) /* config_unix.c */
        return config__unix_listen(cfg, a->v + 5, a->listen_given, a->err, a->errlen);
    if (config__parse_listen(a->v, &l, 61613) != 0)
        return invalid(a, "is not HOST:PORT, [IPV6]:PORT or unix:/PATH");
    if (a->listen_given && !*a->listen_given) {
        config__unix_free_listen(cfg);
        cfg->nlisten = 0;
        *a->listen_given = 1;
    }
    if (cfg->nlisten >= CONFIG_MAX_LISTEN)
        return fail(a, "at most %d addresses", CONFIG_MAX_LISTEN);
    cfg->listen[cfg->nlisten++] = l;
    return 0;
}

static int set_store(const assign *a)
{
    const char *v = a->v;
    if (strcmp(v, "memory") && !(!strncmp(v, "sqlite:", 7) && v[7]) && strncmp(v, "postgres:", 9))
        return invalid(a, "is not memory, sqlite:PATH or postgres:CONNINFO");
    if (config__set_str(&a->cfg->store, v) != 0)
        return fail(a, "out of memory");
    return 0;
}

static int set_sync(const assign *a)
{
    if (strcmp(a->v, "full") != 0 && strcmp(a->v, "normal") != 0)
        return invalid(a, "is not full or normal");
    a->cfg->sync_full = a->v[0] == 'f';
    return 0;
}

static int set_umask(const assign *a)
{
    char *end;
    errno = 0;
    unsigned long m = strtoul(a->v, &end, 8);
    if (!*a->v || *end || errno || m > 0777)
        return invalid(a, "is not an octal mask (e.g. 022)");
    a->cfg->umask = (mode_t)m;
    return 0;
}

static int set_level(const assign *a)
{
    static const char *const names[] = { "error", "warning", "info", "debug" };
    for (int i = 0; i < 4; i++)
        if (strcmp(a->v, names[i]) == 0 || (i == 1 && strcmp(a->v, "warn") == 0)) {
            a->cfg->log_level = (broker_log_level)i;
            return 0;
        }
    return invalid(a, "is not debug, info, warning or error");
}

static int set_addr(const assign *a)
{
    unsigned char buf[16];
    if (uv_inet_pton(AF_INET, a->v, buf) != 0 && uv_inet_pton(AF_INET6, a->v, buf) != 0)
        return invalid(a, "is not an IPv4 or IPv6 address");
    return set_string(a);
}

static int set_port(const assign *a)
{
    int optional = a->k->kind == K_OPTPORT;
    if (optional && !*a->v) {
        *(int *)field(a) = -1;
        return 0;
    }
    if (config__parse_port(a->v, field(a)) != 0)
        return invalid(a, "is not a port number (0-65535%s)",
                       optional ? ", or empty for none" : "");
    if (a->k->off == F(ws_port))
        a->cfg->ws_port_given = 1;
    return 0;
}

static int set_urlpath(const assign *a)
{
    if (a->v[0] != '/')
        return invalid(a, "does not start with /");
    return set_string(a);
}

static int set_list(const assign *a)
{
    if (!*a->v || strspn(a->v, ", ") == strlen(a->v))
        return invalid(a, "is empty");
    return set_string(a);
}

static int set_portlist(const assign *a)
{
    if (a->v[strspn(a->v, "0123456789,-*")])
        return invalid(a, "is not a list of ports and ranges (e.g. 61613,15674 or "
                          "1024-65535 or *)");
    return set_string(a);
}

/* Digits, optionally a point and more digits: no sign, exponent, inf or nan. */
static int parse_decimal(const char *v, double *out)
{
    static const char digits[] = "0123456789";
    size_t n = strspn(v, digits);
    if (n && v[n] == '.') {
        size_t frac = strspn(v + n + 1, digits);
        n = frac ? n + 1 + frac : 0;
    }
    if (n == 0 || v[n])
        return -1;
    errno = 0;
    *out = strtod(v, NULL);
    return errno || !isfinite(*out) ? -1 : 0;
}

static int set_factor(const assign *a)
{
    double d;
    if (parse_decimal(a->v, &d) != 0 || d < (double)a->k->min)
        return invalid(a, "is not a decimal number of at least %zu (e.g. 2 or 1.5)",
                       a->k->min);
    *(double *)field(a) = d;
    return 0;
}

static int set_queue(const assign *a)
{
    if (strncmp(a->v, "/topic/", 7) == 0)
        return invalid(a, "is a topic (a queue name, or none)");
    if (config__wildcard(a->v))
        return invalid(a, "has a wildcard element ('*' or '>'): name one queue");
    return set_string(a);
}

static int set_u64(const assign *a)
{
    unsigned long long n;
    int bytes = a->k->kind == K_BYTES;
    if (parse_size(a->v, (1ull << 53) - 1, &n) != 0 || (!bytes && strpbrk(a->v, "kKmMgG")))
        return invalid(a, "%s", a->k->kind == K_MS ? "is not a whole number of ms"
                                : bytes ? "is not a size (digits, then optionally k, m or g)"
                                        : "is not a whole number");
    *(uint64_t *)field(a) = n;
    return 0;
}

/* One of a few words, stored as its index: BROKER_EXPIRED_*, BROKER_OVERFLOW_*. */
static int set_choice(const assign *a)
{
    static const char *const expired[] = { "dead-letter", "drop", NULL };
    static const char *const overflow[] = { "block", "drop-head", "reject", NULL };
    int exp = a->k->kind == K_EXPIRED;
    const char *const *names = exp ? expired : overflow;
    for (int i = 0; names[i]; i++)
        if (strcmp(a->v, names[i]) == 0) {
            *(int *)field(a) = i;
            return 0;
        }
    return invalid(a, "is not %s", exp ? "dead-letter or drop" : "block, drop-head or reject");
}

static int (*const setters[])(const assign *) = {
    [K_SIZE] = set_size, [K_U32] = set_u32, [K_BOOL] = set_bool, [K_STR] = set_string,
    [K_LISTEN] = set_listen, [K_STORE] = set_store, [K_SYNC] = set_sync,
    [K_UMASK] = set_umask, [K_LEVEL] = set_level, [K_ADDR] = set_addr, [K_PORT] = set_port,
    [K_OPTPORT] = set_port, [K_URLPATH] = set_urlpath, [K_LIST] = set_list,
    [K_PORTLIST] = set_portlist, [K_FACTOR] = set_factor, [K_QUEUE] = set_queue,
    [K_MS] = set_u64, [K_COUNT] = set_u64, [K_BYTES] = set_u64, [K_EXPIRED] = set_choice,
    [K_OVERFLOW] = set_choice,
};

/* Set k in cfg: a policy key goes to its [stompd] policy, the others to cfg itself. */
static int apply(daemon_config *cfg, const key *k, const char *v, int *listen_given, char *err,
                 size_t errlen)
{
    void *base = is_policy_key(k) ? (void *)&cfg->policy : (void *)cfg;
    const assign a = { cfg, base, k, v, listen_given, err, errlen };
    return setters[k->kind](&a);
}

/* ---- the configuration --------------------------------------------------------------- */

/* "max_deliveries, redelivery_delay, ...": the keys a [queue] section takes. */
static void policy_key_names(char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < CONFIG_POLICY_KEYS && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? ", " : "",
                              config__policy_keys[i].name);
}

static const key *search(const key *table, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

/* The key called name, or NULL with a message in err. */
static const key *find_key(const char *name, char *err, size_t errlen)
{
    const key *k = search(keys, NKEYS, name);
    if (!k)
        k = search(config__policy_keys, CONFIG_POLICY_KEYS, name);
    if (k)
        return k;
    snprintf(err, errlen, "unknown key '%s'", name);
    return NULL;
}

int config__init(daemon_config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    broker_options_init(&cfg->opts);
    /* Defaults are parsed like input (empty strings stay NULL), so only running out of
     * memory can fail here. */
    for (size_t i = 0; i < NKEYS; i++)
        if (apply(cfg, &keys[i], keys[i].def, NULL, err, errlen) != 0)
            return -1;
    for (size_t i = 0; i < CONFIG_POLICY_KEYS; i++)
        if (apply(cfg, &config__policy_keys[i], config__policy_keys[i].def, NULL, err,
                  errlen) != 0)
            return -1;
    cfg->ws_port_given = 0; /* the default port was not asked for */
    config__tls_init(cfg);
    config__unix_init(cfg);
    return 0;
}

void config__free(daemon_config *cfg)
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
    free(cfg->policy.dead_letter);
    config__free_policies(cfg);
    config__tls_free(cfg);
    config__unix_free(cfg);
    memset(cfg, 0, sizeof *cfg);
}

int config__set_from_file(daemon_config *cfg, const char *name, const char *value,
                          int *listen_given, char *err, size_t errlen)
{
    int tls = config__tls_set(cfg, name, value, 0, err, errlen);
    if (tls != 1)
        return tls;
    if (config__admin_key(name)) /* the management keys: config_admin.c */
        return config__admin_set(cfg, name, value, err, errlen);
    if (config__unix_key(name)) /* unix socket files: config_unix.c */
        return config__unix_set(cfg, name, value, err, errlen);
    const key *k = find_key(name, err, errlen);
    if (!k)
        return -1;
    return apply(cfg, k, value, listen_given, err, errlen);
}

int config__set_policy(config_policy *p, const char *name, const char *value, char *err,
                       size_t errlen)
{
    const key *k = find_key(name, err, errlen);
    if (!k)
        return -1;
    if (!is_policy_key(k)) {
        char names[256];
        policy_key_names(names, sizeof names);
        snprintf(err, errlen, "key '%s' cannot be set in a [queue] section (it takes %s)",
                 name, names);
        return -1;
    }
    const assign a = { NULL, p, k, value, NULL, err, errlen };
    if (setters[k->kind](&a) != 0)
        return -1;
    p->given |= CONFIG_GIVEN(k - config__policy_keys);
    return 0;
}

int config__set(daemon_config *cfg, const char *name, const char *value, char *err,
                size_t errlen)
{
    int given = 0, tls = config__tls_set(cfg, name, value, 1, err, errlen);
    return tls != 1 ? tls : config__set_from_file(cfg, name, value, &given, err, errlen);
}

static void print_table(FILE *f, const key *table, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %-25s %-16s %s\n", table[i].name,
                table[i].def[0] ? table[i].def : "\"\"", table[i].help);
}

void config__print_keys(FILE *f)
{
    fprintf(f, "\nConfig file keys ([stompd] section; sizes take k, m, g suffixes):\n");
    print_table(f, keys, NKEYS);
    config__admin_print(f);
    config__unix_print(f);
    fprintf(f, "\nMessage policy keys: in [stompd] for every queue, and in\n"
               "[queue \"PATTERN\"] sections for the queues whose names match PATTERN (a key\n"
               "such a section does not set comes from [stompd]):\n");
    print_table(f, config__policy_keys, CONFIG_POLICY_KEYS);
    fprintf(f, "PATTERN's elements are separated by '.' or '/'; '*' matches one element, a\n"
               "last '>' one or more, e.g. [queue \"/queue/orders.*\"]. The most specific\n"
               "section wins: the exact name, then more literal elements, then '*' over '>',\n"
               "then the first in the file. They apply to queue messages that are NACKed, or\n"
               "left unacknowledged by a consumer that went away.\n");
    config__tls_print(f);
}

int config__absolute(char **path, size_t skip)
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

int config__absolute_paths(daemon_config *cfg)
{
    int is_sqlite = cfg->store && strncmp(cfg->store, "sqlite:", 7) == 0;
    if (config__absolute(&cfg->pidfile, 0) != 0 || config__absolute(&cfg->logfile, 0) != 0 ||
        config__absolute(&cfg->auth_file, 0) != 0 || config__absolute(&cfg->web_root, 0) ||
        (is_sqlite && config__absolute(&cfg->store, 7) != 0))
        return -1;
    return config__tls_absolute(cfg);
}
