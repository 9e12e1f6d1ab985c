/* daemon.h: the modules of the stompd daemon (not part of libbroker), one section each:
 * the configuration (config.c, config_policy.c, config_file.c, config_tls.c,
 * config_admin.c, config_unix.c), writing it back out (config_show.c) and what a reload
 * changes (reload.c), the command line (options.c), unix sockets and socket activation
 * (sockets.c), the log sink (logsink.c), the pidfile (pidfile.c), detaching and
 * service-manager notification (daemonize.c), the auth file (auth.c) and the login checks
 * on libuv's thread pool (login_pool.c). main.c ties them together.
 *
 * Each module reports failures as a return value plus a one-line message in a caller's
 * buffer; only main.c decides to exit, and with which code (STOMPD_EXIT_*). Functions are
 * named <file>__<verb>: they are stompd's own, not an API.
 */
#ifndef STOMPD_DAEMON_H
#define STOMPD_DAEMON_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "broker.h"

#if defined(__GNUC__) || defined(__clang__)
#define DAEMON_WUR __attribute__((warn_unused_result))
#define DAEMON_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DAEMON_WUR
#define DAEMON_PRINTF(a, b)
#endif

/* Exit codes (documented in --help and the README). */
enum {
    STOMPD_EXIT_OK = 0,
    STOMPD_EXIT_FAILURE = 1, /* runtime failure: out of memory, fork, forced stop */
    STOMPD_EXIT_CONFIG = 2,  /* bad option, config file or auth file */
    STOMPD_EXIT_LISTEN = 3,  /* cannot bind or listen */
    STOMPD_EXIT_STORE = 4,   /* cannot open the store */
    STOMPD_EXIT_PIDFILE = 5, /* pidfile locked by a running stompd, or unusable */
    STOMPD_EXIT_SYSTEM = 6,  /* log file, privilege drop or detaching failed */
};

#define DAEMON_ERRLEN 512

/* ---- config.c ------------------------------------------------------------------------ */

#define CONFIG_MAX_LISTEN 16

typedef struct config_listen {
    char host[64]; /* IPv4 or IPv6 literal, without brackets */
    int port;
} config_listen;

/* The message policy keys of one section: [stompd] (the broker-wide policy) or a
 * [queue "PATTERN"] section (the queues whose names match PATTERN). */
typedef struct config_policy {
    broker_policy p;   /* the numbers; p.dead_letter is set by config__build_policies */
    char *dead_letter; /* a queue name or "none"; NULL: the library's DLQ naming */
    unsigned given;    /* a [queue] section: CONFIG_GIVEN() bits of the keys it sets */
} config_policy;

/* The message policy keys, in the order --help lists them. */
enum config_policy_key {
    CONFIG_MAX_DELIVERIES,
    CONFIG_REDELIVERY_DELAY,
    CONFIG_REDELIVERY_BACKOFF,
    CONFIG_REDELIVERY_DELAY_MAX,
    CONFIG_DEAD_LETTER,
    CONFIG_TTL,
    CONFIG_MAX_TTL,
    CONFIG_EXPIRED,
    CONFIG_MAX_DELAY,
    CONFIG_MAX_LENGTH,
    CONFIG_MAX_BYTES,
    CONFIG_OVERFLOW,
    CONFIG_POLICY_KEYS
};
#define CONFIG_GIVEN(key) (1u << (key))

/* One [queue "PATTERN"] section of the config file. */
typedef struct config_queue {
    char *pattern;
    unsigned line; /* of its [queue "PATTERN"] header */
    config_policy policy;
} config_queue;

/* The TLS keys (config_tls.c). A listener's verify is BROKER_TLS_VERIFY_* or
 * BROKER_TLS_VERIFY_DEFAULT (tls_verify_client). */
typedef struct config_tls {
    config_listen listen[CONFIG_MAX_LISTEN], wss[CONFIG_MAX_LISTEN];
    int listen_verify[CONFIG_MAX_LISTEN], wss_verify[CONFIG_MAX_LISTEN];
    size_t nlisten, nwss;
    char *cert, *key, *ca, *ciphers, *ciphersuites;
    int verify_client, login, min_version; /* BROKER_TLS_VERIFY_*, _LOGIN_*, 12 or 13 */
    int cli_listen, cli_wss; /* the command line has replaced the file's addresses */
} config_tls;

/* Everything stompd can be told. Strings are owned by the config (config__free). */
typedef struct daemon_config {
    config_listen listen[CONFIG_MAX_LISTEN];
    size_t nlisten;
    char *store;         /* "memory" or "sqlite:PATH" */
    int sync_full;       /* sqlite: 1 = full, 0 = normal */
    int daemonize;
    char *rundir;
    mode_t umask;
    char *pidfile, *logfile;
    broker_log_level log_level;
    int debug;                 /* debug level and a periodic stats line */
    unsigned stats_interval_s; /* the stats line's period with debug (0 = none) */
    int syslog;
    char *user, *group;
    char *auth_file;
    unsigned stop_timeout_s; /* SIGTERM: exit within this, forcing if needed */
    broker_options opts;     /* limits and timeouts; store and log are set by main.c */
    char *server_name;
    /* WebSocket and Flash policy listeners; main.c points opts' strings at these. */
    int websocket;           /* listen for STOMP over WebSocket */
    char *ws_host;           /* address of the WebSocket and policy listeners */
    int ws_port;
    int ws_port_given;       /* set by the file or an option: not binding it is fatal */
    char *ws_path, *ws_origins, *web_root;
    int policy_port;         /* Flash policy listener, -1 = none */
    char *policy_domains, *policy_ports;
    /* Message policies: config__build_policies points opts.policy's dead_letter and
     * opts.policies into these. */
    config_policy policy;       /* the [stompd] keys */
    config_queue *queues;       /* the [queue "PATTERN"] sections, in file order */
    size_t nqueues;
    broker_policy_rule *rules;  /* one per section, once built */
    config_tls tls;             /* TLS listeners, certificates and settings */
    /* The management API (config_admin.c); opts.admin_open and
     * opts.metrics_max_destinations hold the other two keys. */
    config_listen admin_listen; /* host empty: no management listener (default) */
    int admin_tls;              /* it speaks HTTPS (tls_cert and tls_key) */
    /* Unix-domain socket listeners (config_unix.c): listen = unix:/PATH. */
    char *unix_listen[CONFIG_MAX_LISTEN];
    size_t nunix;
    mode_t unix_mode;
    char *unix_owner; /* USER[:GROUP]; NULL: user/group */
} daemon_config;

/* The defaults (documented in --help and contrib/stompd.conf). -1 with err when out of
 * memory. Release with config__free(), after a failure too. */
int config__init(daemon_config *cfg, char *err, size_t errlen) DAEMON_WUR;
void config__free(daemon_config *cfg);

/* Set one [stompd] key from the command line: the value is checked as in the file, but a
 * listen replaces every address. -1 with a message naming the key. */
int config__set(daemon_config *cfg, const char *key, const char *value, char *err,
                size_t errlen) DAEMON_WUR;

/* Make the pid file, log file, auth file, web root and store paths absolute, so they still
 * name the same files after the daemon changed directory (reopened at SIGHUP, web files
 * opened per request). -1: out of memory. */
int config__absolute_paths(daemon_config *cfg) DAEMON_WUR;

/* Print every key with its default and a one-line explanation (the --help tail). */
void config__print_keys(FILE *f);

/* Set a message policy key of a [queue "PATTERN"] section and mark it given. -1 with a
 * message naming the key: a bad value, a key that is not a policy key, or one not supported
 * yet. */
int config__set_policy(config_policy *p, const char *key, const char *value, char *err,
                       size_t errlen) DAEMON_WUR;

/* Between config.c and config_file.c: set a key by name (-1: unknown key or bad value,
 * message in err); with listen_given, the first listen (*listen_given 0) replaces the
 * addresses, NULL adds to them. */
int config__set_from_file(daemon_config *cfg, const char *key, const char *value,
                          int *listen_given, char *err, size_t errlen) DAEMON_WUR;
/* Replace *slot by a copy of v (NULL when v is empty). -1: out of memory. */
int config__set_str(char **slot, const char *v) DAEMON_WUR;
/* A decimal port, 0-65535. -1 when bad. */
int config__parse_port(const char *s, int *port) DAEMON_WUR;
/* "HOST:PORT", "[IPV6]:PORT", or a bare HOST or IPv6 address (default_port). -1 when bad. */
int config__parse_listen(const char *s, config_listen *l, int default_port) DAEMON_WUR;
/* Prefix a relative path (after skip bytes) with the current directory. -1: no memory. */
int config__absolute(char **path, size_t skip) DAEMON_WUR;

/* ---- config_tls.c -------------------------------------------------------------------- */

void config__tls_init(daemon_config *cfg); /* the defaults (no TLS) */
void config__tls_free(daemon_config *cfg);
/* Set a TLS key: 1 when name is not one (nothing done), 0 when set, -1 with a message
 * naming the key. from_cli: the first tls_listen (wss_listen) of the command line replaces
 * the file's, later ones add to it. */
int config__tls_set(daemon_config *cfg, const char *name, const char *value, int from_cli,
                    char *err, size_t errlen) DAEMON_WUR;
int config__tls_absolute(daemon_config *cfg) DAEMON_WUR; /* the file names; -1: no memory */
void config__tls_print(FILE *f); /* the keys, for --help */
/* Point o's TLS fields at cfg's (borrowed from cfg). */
void config__tls_options(const daemon_config *cfg, broker_options *o);
/* Listeners without tls_cert, unreadable or mismatched files, bad settings: -1 with a
 * message naming the key and file. */
int config__tls_check(const daemon_config *cfg, char *err, size_t errlen) DAEMON_WUR;

/* ---- config_admin.c ------------------------------------------------------------------ */

/* yes/true/on/1 or no/false/off/0 (any case): 0, or -1 when it is neither. */
int config__parse_bool(const char *v, int *out) DAEMON_WUR;
/* Is name one of the management keys (admin_listen, admin_tls, admin_open,
 * metrics_max_destinations)? */
int config__admin_key(const char *name);
/* Set one of them: -1 with "KEY: 'VALUE' why" in err. */
int config__admin_set(daemon_config *cfg, const char *name, const char *value, char *err,
                      size_t errlen) DAEMON_WUR;
/* Their lines of the --help key list. */
void config__admin_print(FILE *f);

/* ---- config_unix.c ------------------------------------------------------------------ */

void config__unix_init(daemon_config *cfg); /* the defaults: none, 0660, no owner */
void config__unix_free(daemon_config *cfg);
void config__unix_free_listen(daemon_config *cfg); /* the unix: addresses only */
/* listen = unix:PATH (path is after "unix:"); listen_given as config__set_from_file's:
 * the first listen replaces every address, TCP and unix. -1 with a message. */
int config__unix_listen(daemon_config *cfg, const char *path, int *listen_given, char *err,
                        size_t errlen) DAEMON_WUR;
int config__unix_key(const char *name); /* unix_mode or unix_owner? */
int config__unix_set(daemon_config *cfg, const char *name, const char *value, char *err,
                     size_t errlen) DAEMON_WUR;
/* Who the socket files go to: unix_owner, else user and group (-1 each: unchanged). */
int config__unix_owner(const daemon_config *cfg, uid_t *uid, gid_t *gid, char *err,
                       size_t errlen) DAEMON_WUR;
void config__unix_print(FILE *f);

/* ---- sockets.c ---------------------------------------------------------------------- */

/* Sockets handed over by a service manager for this process (LISTEN_PID is ours): how
 * many, from descriptor 3 on (0: none). The variables are removed either way. */
int sockets__activated(void);
/* Listen for STOMP on descriptors 3..3+n-1; ports[i] gets each one's TCP port (0 for
 * unix). -1 with a message. */
int sockets__listen_activated(broker *b, int n, int *ports, char *err,
                              size_t errlen) DAEMON_WUR;
/* Every listen = unix:/PATH, with unix_mode and unix_owner. -1 with a message. */
int sockets__listen_unix(broker *b, const daemon_config *cfg, char *err,
                         size_t errlen) DAEMON_WUR;

/* ---- config_policy.c ----------------------------------------------------------------- */

/* The first element of name ('.' and '/' separate them) that is a wildcard, '*' or '>';
 * NULL when there is none. */
const char *config__wildcard(const char *name);
/* Does this INI section name start a [queue ...] section ("queue" alone, or followed by a
 * blank or a quote)? Such a section must then be exactly queue "PATTERN". */
int config__is_queue_section(const char *section);
/* Add the [queue "PATTERN"] section whose header, at line, names section: the quoted
 * pattern is checked and must not repeat an earlier section's. -1 with a message. */
int config__add_queue(daemon_config *cfg, const char *section, unsigned line, char *err,
                      size_t errlen) DAEMON_WUR;
/* Once the file and the command line are read: opts.policy from the [stompd] keys, and
 * one opts.policies rule per section, whose keys not set in the section come from
 * [stompd]. -1 with a message (a section's prefixed "FILE:LINE: ", file being where the
 * sections were read) when a policy's redelivery_delay_max is below its redelivery_delay,
 * or out of memory. */
int config__build_policies(daemon_config *cfg, const char *file, char *err,
                           size_t errlen) DAEMON_WUR;
/* Free the sections and the rules (part of config__free). */
void config__free_policies(daemon_config *cfg);

/* ---- config_show.c ------------------------------------------------------------------- */

/* Every key of cfg with its value as the file would write it, in --help's order, then the
 * [queue "PATTERN"] sections' keys (section named so); a repeated key (listen) once per
 * value. Never a passcode (a postgres: store's password is ***), hash or key material. */
void config__show(const daemon_config *cfg, broker_config_emit emit, void *ctx);

/* ---- reload.c ------------------------------------------------------------------------ */

struct options;
/* The directory stompd started in, kept open for reloads (-1 when it cannot be). */
int reload__open_start_dir(void);
/* options__configure as at start, in start_dir (then back): relative names keep their
 * meaning in a detached daemon. */
int reload__configure(const struct options *o, int start_dir, daemon_config *next,
                      void (*warn)(void *ctx, const char *msg), char *err,
                      size_t errlen) DAEMON_WUR;
/* Compare the running configuration with a new one: the names of the keys that differ
 * go to r->changed, or to r->restart when only a restart applies them ("queue
 * \"P\".key" for a section's). -1: out of memory. */
int reload__compare(const daemon_config *old, const daemon_config *next,
                    broker_reload_result *r) DAEMON_WUR;
/* Give next the running values of the keys that need a restart (and old next's, to be
 * freed with it). A swap: calling it again on the same two gives them back. */
void reload__keep_running(daemon_config *next, daemon_config *old);

/* ---- config_file.c ------------------------------------------------------------------- */

/* Read an INI file into cfg (over what is there). On error returns -1 with
 * "FILE:LINE: message" in err. Warnings (CoilMQ keys that have no meaning here) are passed
 * to warn, one line each, also "FILE:LINE: message". */
int config__load(daemon_config *cfg, const char *path, void (*warn)(void *ctx, const char *msg),
                 void *warn_ctx, char *err, size_t errlen) DAEMON_WUR;

/* ---- options.c ----------------------------------------------------------------------- */

#define OPTIONS_MAX_SETTINGS 128

/* One option that sets a config key, applied over the config file. */
typedef struct options_setting {
    const char *opt; /* the option as typed, for messages */
    const char *key, *value;
} options_setting;

typedef enum options_action {
    OPTIONS_START,   /* start the broker, or only check the configuration (check_only) */
    OPTIONS_HASH,    /* --hash-passcode */
    OPTIONS_HELP,    /* -h */
    OPTIONS_VERSION, /* -V */
} options_action;

/* What the command line asks for. Strings are borrowed from argv. */
typedef struct options {
    options_action action;
    int check_only;          /* --check-config */
    const char *config_file; /* -c */
    const char *host, *port; /* -b, -p: replace the listen list by one address */
    options_setting set[OPTIONS_MAX_SETTINGS];
    size_t nset;
    int usage_error;         /* a parse error that the usage text should follow */
} options;

/* The usage text, then every config key (--help). */
void options__usage(FILE *f);
/* Read argv into o (getopt_long; --set's argument is split in place). STOMPD_EXIT_OK, or
 * STOMPD_EXIT_CONFIG with a message in err (empty when getopt has printed it). */
int options__parse(options *o, int argc, char **argv, char *err, size_t errlen) DAEMON_WUR;
/* Fill cfg: defaults, then o's config file (its warnings go to warn), then o's settings,
 * with relative paths made absolute. STOMPD_EXIT_OK, or an exit code with a message in
 * err; cfg is the caller's to config__free() either way. */
int options__configure(const options *o, daemon_config *cfg,
                       void (*warn)(void *ctx, const char *msg), void *warn_ctx, char *err,
                       size_t errlen) DAEMON_WUR;

/* ---- logsink.c ----------------------------------------------------------------------- */

typedef struct logsink logsink;

/* A sink writing "TIME LEVEL conn=ID EVENT: text" lines to path (appended; NULL =
 * stderr), and to syslog too when use_syslog. Caller owns, release with logsink__close(). */
int logsink__open(logsink **out, const char *path, int use_syslog, broker_log_level level,
                  char *err, size_t errlen) DAEMON_WUR;
/* Reopen the file by its name (log rotation). Keeps the old file on failure (-1, err). */
int logsink__reopen(logsink *ls, char *err, size_t errlen) DAEMON_WUR;
/* Point stderr at the log file (daemon mode), or at /dev/null when there is none. */
int logsink__take_stderr(logsink *ls) DAEMON_WUR;
int logsink__fd(const logsink *ls); /* the file's descriptor, -1 for stderr */
void logsink__close(logsink *ls);
/* Lines above level are skipped from now on (a reload). */
void logsink__set_level(logsink *ls, broker_log_level level);
/* One line; conn_id 0 = not about a connection. Control characters are escaped. */
void logsink__write(logsink *ls, broker_log_level level, unsigned long long conn_id,
                    const char *event, const char *fmt, ...) DAEMON_PRINTF(5, 6);
/* broker_log_fn for broker_options.log (ctx = the logsink): the event's name and the
 * connection id become the line's fields. */
void logsink__broker_cb(void *ctx, broker_log_level level, uint64_t conn_id,
                        broker_event event, const char *text);

/* ---- pidfile.c ----------------------------------------------------------------------- */

typedef struct pidfile pidfile;

/* Open and lock path. A file locked by a live stompd: -1, *holder = its pid (0 if
 * unreadable). A stale file (no lock held) is taken over. Caller owns, pidfile__release(). */
int pidfile__acquire(pidfile **out, const char *path, pid_t *holder, char *err,
                     size_t errlen) DAEMON_WUR;
/* Write the current pid (after listening). */
int pidfile__write(pidfile *pf, char *err, size_t errlen) DAEMON_WUR;
/* Remove the file (clean exit) and drop the lock. */
void pidfile__release(pidfile *pf, int remove);
int pidfile__fd(const pidfile *pf);

/* ---- daemonize.c --------------------------------------------------------------------- */

/* Detach: fork, setsid, fork, chdir, umask; stdin/stdout to /dev/null. Only the final
 * child returns (0, *report_fd = where to report startup). The first parent waits for the
 * report and exits with its code, printing its message. -1 with err when forking fails. */
int daemonize__detach(const char *rundir, mode_t mask, int *report_fd, char *err,
                      size_t errlen) DAEMON_WUR;
/* Tell the waiting parent how startup ended (code 0 = listening), then close fd. */
void daemonize__report(int fd, int code, const char *msg);
/* The process's allocator set for a long-running broker (glibc: freed memory kept for reuse). */
void daemonize__tune_heap(void);
/* sd_notify: send state ("READY=1", "STOPPING=1", ...) to $NOTIFY_SOCKET if set. */
void daemonize__notify(const char *state);
/* Drop to user/group (either may be NULL). -1 with err on failure. */
int daemonize__drop_privileges(const char *user, const char *group, char *err,
                               size_t errlen) DAEMON_WUR;
/* Resolve user/group to ids without changing anything (uid/gid -1 when not given). */
int daemonize__lookup_ids(const char *user, const char *group, uid_t *uid, gid_t *gid,
                          char *err, size_t errlen) DAEMON_WUR;

/* ---- auth.c -------------------------------------------------------------------------- */

typedef struct auth_table auth_table;

/* Load "login = hash" lines (optionally under [auth]). Plain-text passcodes and unknown
 * hash formats are refused with "FILE:LINE: message", and so is a file without logins
 * unless cert_logins (tls_login is set: certificates log in, the file may hold only their
 * [groups] and [acl]). Caller owns one reference, released with auth__free(). */
int auth__load(auth_table **out, const char *path, int cert_logins, char *err,
               size_t errlen) DAEMON_WUR;
/* One more reference (for a check in flight); returns t. Loop thread only, as auth__free. */
auth_table *auth__ref(auth_table *t);
/* Drop a reference; the last one frees the table. */
void auth__free(auth_table *t);
size_t auth__count(const auth_table *t);
/* 0 when login exists and passcode matches its hash (NULLs never match). The first
 * unknown login computes a decoy hash, kept in t. Slow on purpose (tens of ms); safe to
 * run on several threads at once on one table. */
int auth__check(auth_table *t, const char *login, const char *passcode);
/* The ACL of the file's [groups] and [acl] sections, handed over (the caller owns it,
 * for broker_set_acl); NULL without an [acl] section, or when taken already. */
broker_acl *auth__take_acl(auth_table *t);
/* Hash a passcode for the auth file (libsodium Argon2id). -1 on failure. Caller frees. */
char *auth__hash_passcode(const char *passcode);
/* libsodium needs one initialisation per process. */
int auth__init(void) DAEMON_WUR;

/* ---- acl_file.c: the auth file's [groups] and [acl] sections ---------------------------- */

typedef struct acl_ref {
    char *group;
    unsigned line; /* where [acl] named it (0: given in [groups]) */
    int defined;
} acl_ref;

typedef struct acl_loader {
    broker_acl *acl; /* what the lines so far grant (NULL: no line yet) */
    acl_ref *refs;   /* groups given and named, to check at the end */
    size_t nrefs, refcap;
} acl_loader;

/* Is the line the header of the [acl] section? (an empty one counts too) */
int acl_file__is_acl_header(const char *line);
/* One line of each section: 0, or -1 with why set (without FILE:LINE). */
int acl_file__group(acl_loader *al, const char *group, const char *members, char *why,
                    size_t len) DAEMON_WUR;
int acl_file__grants(acl_loader *al, const char *who, const char *grants, unsigned line,
                     char *why, size_t len) DAEMON_WUR;
/* The whole file read: every @group named must be given. Without an [acl] section the ACL
 * is dropped (al->acl NULL: everything allowed). -1 with *line and why set. */
int acl_file__finish(acl_loader *al, int acl_section, unsigned *line, char *why,
                     size_t len) DAEMON_WUR;
void acl_file__free(acl_loader *al);

/* ---- login_pool.c -------------------------------------------------------------------- */

/* The login checks of one broker: those running on libuv's pool and those waiting for a
 * turn. The memory belongs to main.c (the only file with file-scope state). */
typedef struct login_queue {
    uv_loop_t *loop;
    logsink *log;                  /* borrowed, outlives the broker */
    auth_table *const *table;      /* borrowed: main.c's current table, replaced at SIGHUP,
                                      so every login reads it anew (NULL refuses all) */
    struct login_job *head, *tail; /* waiting, in arrival order */
    unsigned running;              /* checks on the pool */
} login_queue;

void login_pool__init(login_queue *q, uv_loop_t *loop, logsink *log, auth_table *const *table);
/* broker_options.authenticate_async with ctx = the login_queue: check passcode against
 * login's hash off the loop thread, answer req on it. */
void login_pool__check(void *ctx, broker_auth *req, const char *login, const char *passcode);

#endif
