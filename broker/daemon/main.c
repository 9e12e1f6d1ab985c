/* main.c: stompd, the daemon: a thin shell over libbroker. Builds the configuration from
 * the command line and the config file (options.c), takes the pidfile, opens the log,
 * detaches, opens the store, listens, drops privileges, then runs the loop until
 * SIGTERM/SIGINT; SIGHUP reopens the log and reloads the whole configuration (as does POST
 * /api/reload): what can change live is applied, what needs a restart is reported.
 *
 * Startup order matters: everything that can fail because of the configuration is checked
 * before detaching, and the pid file is written and the parent released only once every
 * address listens. The only file allowed file-scope state and exit(): the other modules
 * return their failures, and what they keep between calls (the login queue) lives here.
 */
#include "broker.h"
#include "daemon.h"
#include "store_postgres.h"
#include "store_sqlite.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static daemon_config cfg;
static options the_options; /* the command line, read again over the file at a reload */
static char *config_path;    /* the config file's absolute name */
static int start_dir = -1;   /* the directory stompd started in (relative names) */
static logsink *the_log;
static pidfile *the_pidfile;
static auth_table *the_auth;
static login_queue logins;
static broker *the_broker;
static uv_loop_t *the_loop;
static int report_fd = -1; /* daemon mode: the waiting parent, until startup ended */
static uv_signal_t sig_int, sig_term, sig_hup;
static uv_timer_t stats_timer, stop_timer;
static int signals_on, stats_on, stop_timer_on, stopping;
static int ws_bound, policy_bound; /* the ports they got; ws_bound -1: none after all */
static int tls_bound[CONFIG_MAX_LISTEN], wss_bound[CONFIG_MAX_LISTEN];
static int admin_bound;               /* the management listener's port */
static int n_activated;               /* sockets handed over by the service manager */
static int activated_ports[CONFIG_MAX_LISTEN];

/* Config warnings are printed at once and logged again once the log is open. */
#define MAX_WARNINGS 16
static char warnings[MAX_WARNINGS][DAEMON_ERRLEN];
static size_t nwarnings;

/* ---- logging and failing ------------------------------------------------------------- */

static void logf_(broker_log_level level, const char *event, const char *fmt, ...)
    DAEMON_PRINTF(3, 4);
static void logf_(broker_log_level level, const char *event, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (the_log)
        logsink__write(the_log, level, 0, event, "%s", text);
    else
        fprintf(stderr, "stompd: %s\n", text);
}

static void close_broker(void)
{
    if (!the_broker)
        return;
    if (broker_stop(the_broker, NULL, NULL) == BROKER_OK)
        uv_run(the_loop, UV_RUN_DEFAULT);
    broker_free(the_broker);
    the_broker = NULL;
}

/* Startup failed: say why (log, terminal, waiting parent), clean up, exit with code. */
static void die(int code, const char *fmt, ...) DAEMON_PRINTF(2, 3);
static void die(int code, const char *fmt, ...)
{
    char msg[DAEMON_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (the_log && logsink__fd(the_log) >= 0)
        logsink__write(the_log, BROKER_LOG_ERROR, 0, "startup-failed", "%s", msg);
    /* Clean up before reporting: the waiting parent returns as soon as it hears. */
    close_broker();
    pidfile__release(the_pidfile, 1);
    the_pidfile = NULL;
    if (report_fd >= 0) {
        daemonize__report(report_fd, code, msg);
        report_fd = -1;
    } else {
        fprintf(stderr, "stompd: %s\n", msg);
    }
    logsink__close(the_log);
    auth__free(the_auth);
    config__free(&cfg);
    exit(code);
}

static void on_config_warning(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "stompd: warning: %s\n", msg);
    if (nwarnings < MAX_WARNINGS)
        snprintf(warnings[nwarnings++], DAEMON_ERRLEN, "%s", msg);
}

/* ---- --hash-passcode ----------------------------------------------------------------- */

static int hash_passcode(void)
{
    char *line = NULL;
    size_t cap = 0;
    if (isatty(0))
        fprintf(stderr, "passcode: ");
    ssize_t n = getline(&line, &cap, stdin);
    if (n <= 0) {
        free(line);
        fprintf(stderr, "stompd: --hash-passcode: no passcode on stdin\n");
        return STOMPD_EXIT_CONFIG;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    char *h = n ? auth__hash_passcode(line) : NULL;
    memset(line, 0, cap);
    free(line);
    if (!h) {
        fprintf(stderr, "stompd: --hash-passcode: %s\n",
                n ? "hashing failed (out of memory?)" : "empty passcode");
        return n ? STOMPD_EXIT_FAILURE : STOMPD_EXIT_CONFIG;
    }
    printf("%s\n", h);
    free(h);
    return STOMPD_EXIT_OK;
}

/* ---- signals and timers -------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void close_daemon_handles(void)
{
    if (signals_on) {
        uv_close((uv_handle_t *)&sig_int, on_handle_closed);
        uv_close((uv_handle_t *)&sig_term, on_handle_closed);
        uv_close((uv_handle_t *)&sig_hup, on_handle_closed);
        signals_on = 0;
    }
    if (stats_on) {
        uv_close((uv_handle_t *)&stats_timer, on_handle_closed);
        stats_on = 0;
    }
    if (stop_timer_on) {
        uv_close((uv_handle_t *)&stop_timer, on_handle_closed);
        stop_timer_on = 0;
    }
}

static void on_stopped(broker *b, void *arg)
{
    (void)b;
    (void)arg;
    close_daemon_handles();
}

static void force_exit(const char *why)
{
    logf_(BROKER_LOG_ERROR, "stop-forced", "%s: exiting without waiting any longer", why);
    pidfile__release(the_pidfile, 1);
    the_pidfile = NULL;
    _exit(STOMPD_EXIT_FAILURE);
}

static void on_stop_timeout(uv_timer_t *t)
{
    (void)t;
    force_exit("the stop took longer than stop_timeout");
}

/* Certificates log in (tls_login): an auth file may then hold no passcodes at all. */
static int cert_logins(const daemon_config *c)
{
    return c->tls.login != BROKER_TLS_LOGIN_NONE;
}

static void on_reload_warning(void *ctx, const char *msg)
{
    (void)ctx;
    logf_(BROKER_LOG_WARN, "config-warning", "%s", msg);
}

static void fill_options(const daemon_config *c, broker_options *o);

/* Read the configuration again as at startup and check it whole (auth file, TLS files,
 * the broker's own checks); only then apply it. *r says what changed, what waits for a
 * restart, or why nothing did. */
static void reload_config(broker_reload_result *r)
{
    char err[DAEMON_ERRLEN] = "";
    daemon_config next;
    auth_table *t = NULL;
    int ok = reload__configure(&the_options, start_dir, &next, on_reload_warning, err,
                               sizeof err) == STOMPD_EXIT_OK;
    if (ok && reload__compare(&cfg, &next, r) != 0) {
        snprintf(err, sizeof err, "out of memory");
        ok = 0;
    }
    int kept = ok; /* the running values of the restart-only keys are in next from here */
    if (kept)
        reload__keep_running(&next, &cfg);
    ok = ok && (!next.auth_file ||
                auth__load(&t, next.auth_file, cert_logins(&next), err, sizeof err) == 0);
    ok = ok && config__tls_check(&next, err, sizeof err) == 0;
    if (ok) {
        broker_options o;
        fill_options(&next, &o);
        ok = broker_reconfigure(the_broker, &o, err, sizeof err) == BROKER_OK;
    }
    if (!ok) {
        if (kept) /* give them back: the broker still borrows some (store path, ws_path) */
            reload__keep_running(&next, &cfg);
        r->changed[0] = r->restart[0] = '\0';
        snprintf(r->error, sizeof r->error, "%s", err);
        logf_(BROKER_LOG_ERROR, "reload", "configuration not reloaded, keeping the old one: %s",
              err);
        auth__free(t);
        config__free(&next);
        return;
    }
    logsink__set_level(the_log, next.log_level);
    if (t) {
        auth__free(the_auth);
        the_auth = t;
        broker_acl *acl = auth__take_acl(t);
        logf_(BROKER_LOG_INFO, "reload", "auth file reloaded: %zu logins, %s", auth__count(t),
              acl ? "permissions from [acl]" : "no [acl]: every login may do everything");
        broker_set_acl(the_broker, acl);
        broker_admin_forget_logins(the_broker); /* HTTP logins are checked anew */
    }
    config__free(&cfg);
    cfg = next;
    logf_(BROKER_LOG_INFO, "reload", "configuration reloaded%s%s: changed: %s; needs a "
          "restart: %s", config_path ? " from " : "", config_path ? config_path : "",
          r->changed[0] ? r->changed : "nothing", r->restart[0] ? r->restart : "nothing");
}

static void on_admin_reload(void *ctx, broker_reload_result *r)
{
    (void)ctx;
    reload_config(r);
}

static void on_admin_config(void *ctx, broker_config_emit emit, void *emit_ctx)
{
    (void)ctx;
    config__show(&cfg, emit, emit_ctx);
}

static void reload(void)
{
    char err[DAEMON_ERRLEN];
    if (logsink__reopen(the_log, err, sizeof err) != 0)
        logf_(BROKER_LOG_ERROR, "reopen", "%s (still writing to the old file)", err);
    else
        logf_(BROKER_LOG_INFO, "reopen", "log file reopened");
    broker_reload_result r;
    memset(&r, 0, sizeof r);
    reload_config(&r);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    if (signum == SIGHUP) {
        reload();
        return;
    }
    if (stopping)
        force_exit("second stop signal");
    stopping = 1;
    logf_(BROKER_LOG_INFO, "stop", "signal %d: closing connections and the store", signum);
    daemonize__notify("STOPPING=1");
    if (stats_on) {
        uv_close((uv_handle_t *)&stats_timer, on_handle_closed);
        stats_on = 0;
    }
    uv_timer_init(the_loop, &stop_timer);
    stop_timer_on = 1;
    uv_timer_start(&stop_timer, on_stop_timeout, (uint64_t)cfg.stop_timeout_s * 1000, 0);
    if (broker_stop(the_broker, on_stopped, NULL) != BROKER_OK)
        force_exit("the broker could not stop");
}

static void on_stats(uv_timer_t *t)
{
    (void)t;
    broker_stats st;
    broker_get_stats(the_broker, &st);
    logf_(BROKER_LOG_DEBUG, "stats",
          "connections=%llu total=%llu refused=%llu subscriptions=%llu messages_in=%llu "
          "messages_out=%llu redeliveries=%llu memory=%llu errors=%llu limit_breaches=%llu "
          "auth_failures=%llu commits=%llu dead_lettered=%llu dead_dropped=%llu "
          "temp_dropped=%llu",
          (unsigned long long)st.connections, (unsigned long long)st.connections_total,
          (unsigned long long)st.connections_refused, (unsigned long long)st.subscriptions,
          (unsigned long long)st.messages_in, (unsigned long long)st.messages_out,
          (unsigned long long)st.redeliveries, (unsigned long long)st.memory,
          (unsigned long long)st.errors_sent, (unsigned long long)st.limit_breaches,
          (unsigned long long)st.auth_failures, (unsigned long long)st.commits,
          (unsigned long long)st.dead_lettered, (unsigned long long)st.dead_dropped,
          (unsigned long long)st.temp_dropped);
}

/* ---- WebSocket and Flash policy listeners -------------------------------------------- */

/* Bound with the STOMP ports (before privileges are dropped: 843 is privileged). The
 * default WebSocket port being taken is a warning (several brokers on one host); a port
 * asked for explicitly must be had. */
static void listen_web(void)
{
    broker_err rc;
    if (cfg.websocket) {
        /* STOMP on free ports only (--port 0, as tests and benchmarks run it) means the
         * WebSocket port was not meant to be a fixed one either. */
        int ephemeral = !cfg.ws_port_given && cfg.nlisten > 0;
        for (size_t i = 0; i < cfg.nlisten; i++)
            ephemeral &= cfg.listen[i].port == 0;
        if (ephemeral)
            cfg.ws_port = 0;
        rc = broker_listen_ws(the_broker, cfg.ws_host, cfg.ws_port, &ws_bound);
        if (rc != BROKER_OK && cfg.ws_port_given)
            die(STOMPD_EXIT_LISTEN, "cannot listen on %s:%d (WebSocket): %s", cfg.ws_host,
                cfg.ws_port, broker_strerror(rc));
        if (rc != BROKER_OK) {
            logf_(BROKER_LOG_WARN, "listen", "no WebSocket listener on %s:%d: %s",
                  cfg.ws_host, cfg.ws_port, broker_strerror(rc));
            ws_bound = -1;
        }
    }
    if (cfg.policy_port >= 0) {
        rc = broker_listen_policy(the_broker, cfg.ws_host, cfg.policy_port, &policy_bound);
        if (rc != BROKER_OK)
            die(STOMPD_EXIT_LISTEN, "cannot listen on %s:%d (Flash policy): %s", cfg.ws_host,
                cfg.policy_port, broker_strerror(rc));
    }
}

/* The TLS listeners: any failure is fatal (they are asked for explicitly). */
static void listen_tls(void)
{
    const config_tls *t = &cfg.tls;
    for (size_t i = 0; i < t->nlisten + t->nwss; i++) {
        int wss = i >= t->nlisten;
        size_t j = wss ? i - t->nlisten : i;
        const config_listen *l = wss ? &t->wss[j] : &t->listen[j];
        int verify = wss ? t->wss_verify[j] : t->listen_verify[j];
        broker_err rc = wss ? broker_listen_wss(the_broker, l->host, l->port, verify,
                                                &wss_bound[j])
                            : broker_listen_tls(the_broker, l->host, l->port, verify,
                                                &tls_bound[j]);
        if (rc != BROKER_OK)
            die(STOMPD_EXIT_LISTEN, "cannot listen on %s:%d (%s): %s", l->host, l->port,
                wss ? "wss" : "TLS", broker_strerror(rc));
    }
}

/* The management API, when admin_listen names an address: it must be had. */
static void listen_admin(void)
{
    if (!cfg.admin_listen.host[0])
        return;
    broker_err rc = (cfg.admin_tls ? broker_listen_admin_tls : broker_listen_admin)(
        the_broker, cfg.admin_listen.host, cfg.admin_listen.port, &admin_bound);
    if (rc != BROKER_OK)
        die(STOMPD_EXIT_LISTEN, "cannot listen on %s:%d (management): %s",
            cfg.admin_listen.host, cfg.admin_listen.port, broker_strerror(rc));
}

static void print_web(void)
{
    for (size_t i = 0; i < cfg.tls.nlisten; i++)
        printf("stompd: tls listening on %s:%d\n", cfg.tls.listen[i].host, tls_bound[i]);
    for (size_t i = 0; i < cfg.tls.nwss; i++)
        printf("stompd: wss listening on %s:%d\n", cfg.tls.wss[i].host, wss_bound[i]);
    if (cfg.admin_listen.host[0])
        printf("stompd: admin listening on %s:%d%s\n", cfg.admin_listen.host, admin_bound,
               cfg.admin_tls ? " (https)" : "");
    if (cfg.websocket && ws_bound >= 0)
        printf("stompd: websocket listening on %s:%d\n", cfg.ws_host, ws_bound);
    if (cfg.policy_port >= 0)
        printf("stompd: policy listening on %s:%d\n", cfg.ws_host, policy_bound);
}

/* ---- the command line ---------------------------------------------------------------- */

/* Read the command line and the config file into cfg; exits for --help, --version,
 * --hash-passcode and every mistake. */
static void configure(int argc, char **argv, int *check_only)
{
    options o;
    char err[DAEMON_ERRLEN];
    int rc = options__parse(&o, argc, argv, err, sizeof err);
    if (rc != STOMPD_EXIT_OK) {
        if (err[0])
            fprintf(stderr, "stompd: %s\n", err);
        if (o.usage_error)
            options__usage(stderr);
        exit(rc);
    }
    switch (o.action) {
    case OPTIONS_HELP:
        options__usage(stdout);
        exit(STOMPD_EXIT_OK);
    case OPTIONS_VERSION:
        printf("stompd %s\n", STOMPD_VERSION);
        exit(STOMPD_EXIT_OK);
    case OPTIONS_HASH:
        if (auth__init() != 0) {
            fprintf(stderr, "stompd: libsodium cannot be initialised\n");
            exit(STOMPD_EXIT_FAILURE);
        }
        exit(hash_passcode());
    case OPTIONS_START:
        break;
    }
    /* A reload reads the file again after the daemon changed directory. */
    if (o.config_file && (!(config_path = strdup(o.config_file)) ||
                          config__absolute(&config_path, 0) != 0)) {
        fprintf(stderr, "stompd: out of memory\n");
        exit(STOMPD_EXIT_FAILURE);
    }
    o.config_file = config_path;
    the_options = o;
    start_dir = reload__open_start_dir();
    rc = options__configure(&o, &cfg, on_config_warning, NULL, err, sizeof err);
    if (rc != STOMPD_EXIT_OK) {
        fprintf(stderr, "stompd: %s\n", err);
        config__free(&cfg);
        exit(rc);
    }
    *check_only = o.check_only;
}

/* ---- startup ------------------------------------------------------------------------- */

/* Files opened as root must stay usable by the user we become. */
static void give_files_to(uid_t uid, gid_t gid)
{
    if (the_log && logsink__fd(the_log) >= 0 && fchown(logsink__fd(the_log), uid, gid) != 0)
        die(STOMPD_EXIT_SYSTEM, "cannot hand the log file to the user: %s", strerror(errno));
    if (the_pidfile && fchown(pidfile__fd(the_pidfile), uid, gid) != 0)
        die(STOMPD_EXIT_SYSTEM, "cannot hand the pid file to the user: %s", strerror(errno));
    if (cfg.store && strncmp(cfg.store, "sqlite:", 7) == 0) {
        static const char *const suffixes[] = { "", "-wal", "-shm", "-lock" };
        for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s%s", cfg.store + 7, suffixes[i]);
            if (chown(path, uid, gid) != 0 && errno != ENOENT)
                die(STOMPD_EXIT_SYSTEM, "cannot hand %s to the user: %s", path,
                    strerror(errno));
        }
    }
}

/* Everything the configuration can get wrong, checked before any side effect. */
static void check_config(uid_t *uid, gid_t *gid)
{
    char err[DAEMON_ERRLEN];
    if (auth__init() != 0)
        die(STOMPD_EXIT_FAILURE, "libsodium cannot be initialised");
    if (cfg.auth_file && auth__load(&the_auth, cfg.auth_file, cert_logins(&cfg), err,
                                       sizeof err) != 0)
        die(STOMPD_EXIT_CONFIG, "%s", err);
    if (daemonize__lookup_ids(cfg.user, cfg.group, uid, gid, err, sizeof err) != 0)
        die(STOMPD_EXIT_CONFIG, "%s", err);
    if (config__tls_check(&cfg, err, sizeof err) != 0)
        die(STOMPD_EXIT_CONFIG, "%s", err);
}

/* The pid file first (refuse to start twice), then the log, then leave the terminal. */
static void start_process(void)
{
    char err[DAEMON_ERRLEN];
    pid_t holder;
    if (cfg.pidfile &&
        pidfile__acquire(&the_pidfile, cfg.pidfile, &holder, err, sizeof err) != 0)
        die(STOMPD_EXIT_PIDFILE, "%s", err);
    if (logsink__open(&the_log, cfg.logfile, cfg.syslog, cfg.log_level, err, sizeof err) != 0)
        die(STOMPD_EXIT_SYSTEM, "%s", err);
    if (cfg.daemonize) {
        if (daemonize__detach(cfg.rundir ? cfg.rundir : "/", cfg.umask, &report_fd, err,
                              sizeof err) != 0)
            die(STOMPD_EXIT_SYSTEM, "cannot detach: %s", err);
        if (logsink__take_stderr(the_log) != 0)
            die(STOMPD_EXIT_SYSTEM, "cannot redirect stderr: %s", strerror(errno));
    }
    logf_(BROKER_LOG_INFO, "start", "stompd %s starting (pid %ld)", STOMPD_VERSION,
          (long)getpid());
    for (size_t i = 0; i < nwarnings; i++)
        logf_(BROKER_LOG_WARN, "config-warning", "%s", warnings[i]);

    /* Every connection is a descriptor: take all the kernel allows us. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            logf_(BROKER_LOG_WARN, "start", "cannot raise the descriptor limit: %s",
                  strerror(errno));
    }
    signal(SIGPIPE, SIG_IGN);
}

/* The broker's options from a configuration (its strings borrowed from c). */
static void fill_options(const daemon_config *c, broker_options *o)
{
    *o = c->opts;
    o->server_name = c->server_name;
    o->log = logsink__broker_cb;
    o->log_ctx = the_log;
    o->log_level = c->log_level;
    o->store_sync_full = c->sync_full;
    o->ws_path = c->ws_path;
    o->ws_origins = c->ws_origins;
    o->web_root = c->web_root;
    o->policy_domains = c->policy_domains;
    o->policy_ports = c->policy_ports;
    config__tls_options(c, o);
    if (strncmp(c->store, "sqlite:", 7) == 0) {
        o->store = store_sqlite_backend();
        o->store_path = c->store + 7;
    } else if (strncmp(c->store, "postgres:", 9) == 0) {
        o->store = store_postgres_backend();
        o->store_path = c->store + 9;
    }
    o->admin_reload = on_admin_reload;
    o->admin_config = on_admin_config;
}

/* The broker on the default loop, with its store open and every address listening;
 * bound[i] is the port cfg.listen[i] got. */
static void start_broker(int bound[CONFIG_MAX_LISTEN])
{
    the_loop = uv_default_loop();
    broker_options o;
    fill_options(&cfg, &o);
    if (the_auth) {
        login_pool__init(&logins, the_loop, the_log, &the_auth);
        o.authenticate_async = login_pool__check;
        o.auth_ctx = &logins;
    }
    broker_err rc = broker_create(the_loop, &o, &the_broker);
    if (rc == BROKER_E_TLS) /* the files changed since they were checked: the log says how */
        die(STOMPD_EXIT_CONFIG, "%s", broker_strerror(rc));
    if (rc != BROKER_OK)
        die(rc == BROKER_E_STORE ? STOMPD_EXIT_STORE : STOMPD_EXIT_FAILURE, "store %s: %s",
            cfg.store, broker_strerror(rc));
    if (the_auth)
        broker_set_acl(the_broker, auth__take_acl(the_auth));
    char err[DAEMON_ERRLEN];
    if (n_activated) { /* the service manager's sockets replace the listen addresses */
        if (sockets__listen_activated(the_broker, n_activated, activated_ports, err,
                                      sizeof err) != 0)
            die(STOMPD_EXIT_LISTEN, "%s", err);
        logf_(BROKER_LOG_INFO, "listen", "%d socket%s from the service manager: the listen "
              "addresses are not bound", n_activated, n_activated == 1 ? "" : "s");
    }
    for (size_t i = 0; !n_activated && i < cfg.nlisten; i++) {
        rc = broker_listen(the_broker, cfg.listen[i].host, cfg.listen[i].port, &bound[i]);
        if (rc != BROKER_OK)
            die(STOMPD_EXIT_LISTEN, "cannot listen on %s:%d: %s", cfg.listen[i].host,
                cfg.listen[i].port, broker_strerror(rc));
    }
    if (!n_activated && sockets__listen_unix(the_broker, &cfg, err, sizeof err) != 0)
        die(STOMPD_EXIT_LISTEN, "%s", err);
    listen_web();
    listen_tls();
    listen_admin();
}

/* After binding (ports below 1024) and opening every file, become user/group. */
static void drop_privileges(uid_t uid, gid_t gid)
{
    char err[DAEMON_ERRLEN];
    if (!cfg.user && !cfg.group)
        return;
    if (geteuid() == 0)
        give_files_to(uid, cfg.group ? gid : (gid_t)-1);
    if (daemonize__drop_privileges(cfg.user, cfg.group, err, sizeof err) != 0)
        die(STOMPD_EXIT_SYSTEM, "%s", err);
    logf_(BROKER_LOG_INFO, "privileges", "running as uid %ld gid %ld", (long)getuid(),
          (long)getgid());
}

static void start_signals_and_timers(void)
{
    uv_signal_init(the_loop, &sig_int);
    uv_signal_init(the_loop, &sig_term);
    uv_signal_init(the_loop, &sig_hup);
    signals_on = 1;
    if (uv_signal_start(&sig_int, on_signal, SIGINT) != 0 ||
        uv_signal_start(&sig_term, on_signal, SIGTERM) != 0 ||
        uv_signal_start(&sig_hup, on_signal, SIGHUP) != 0)
        die(STOMPD_EXIT_FAILURE, "cannot catch signals");
    if (cfg.debug && cfg.stats_interval_s) {
        uv_timer_init(the_loop, &stats_timer);
        stats_on = 1;
        uint64_t every = (uint64_t)cfg.stats_interval_s * 1000;
        uv_timer_start(&stats_timer, on_stats, every, every);
    }
}

/* Startup ended well: say so on the terminal, in the log, to the waiting parent and to
 * the service manager. */
static void announce_ready(const int bound[CONFIG_MAX_LISTEN])
{
    if (!cfg.daemonize) {
        for (int i = 0; i < n_activated; i++)
            if (activated_ports[i])
                printf("stompd: listening on fd %d (port %d)\n", 3 + i, activated_ports[i]);
            else
                printf("stompd: listening on fd %d (unix)\n", 3 + i);
        for (size_t i = 0; !n_activated && i < cfg.nlisten; i++)
            printf("stompd: listening on %s:%d\n", cfg.listen[i].host, bound[i]);
        for (size_t i = 0; !n_activated && i < cfg.nunix; i++)
            printf("stompd: listening on unix:%s\n", cfg.unix_listen[i]);
        print_web();
        fflush(stdout);
    }
    size_t n = (n_activated ? (size_t)n_activated : cfg.nlisten + cfg.nunix) + cfg.tls.nlisten +
               cfg.tls.nwss;
    logf_(BROKER_LOG_INFO, "ready", "%zu listener%s, store %s%s", n, n == 1 ? "" : "s",
          cfg.store, the_auth ? ", authentication on" : "");
    if (report_fd >= 0) {
        daemonize__report(report_fd, 0, NULL);
        report_fd = -1;
    }
    daemonize__notify("READY=1");
}

int main(int argc, char **argv)
{
    int check_only = 0;
    daemonize__tune_heap();
    configure(argc, argv, &check_only);
    n_activated = sockets__activated(); /* before detaching: the pid must be ours */
    if (n_activated > CONFIG_MAX_LISTEN) {
        fprintf(stderr, "stompd: socket activation: %d sockets, at most %d\n", n_activated,
                CONFIG_MAX_LISTEN);
        return STOMPD_EXIT_CONFIG;
    }
    uid_t uid;
    gid_t gid;
    check_config(&uid, &gid);
    if (check_only) {
        printf("stompd: configuration ok: %zu listen address%s, store %s, %s, %zu queue "
               "polic%s\n", cfg.nlisten, cfg.nlisten == 1 ? "" : "es", cfg.store,
               the_auth ? "authentication on" : "no authentication", cfg.nqueues,
               cfg.nqueues == 1 ? "y" : "ies");
        auth__free(the_auth);
        config__free(&cfg);
        return STOMPD_EXIT_OK;
    }

    start_process();
    int bound[CONFIG_MAX_LISTEN];
    start_broker(bound);
    drop_privileges(uid, gid);
    char err[DAEMON_ERRLEN];
    if (the_pidfile && pidfile__write(the_pidfile, err, sizeof err) != 0)
        die(STOMPD_EXIT_PIDFILE, "%s", err);
    start_signals_and_timers();
    announce_ready(bound);

    uv_run(the_loop, UV_RUN_DEFAULT);

    broker_free(the_broker);
    the_broker = NULL;
    int loop_rc = uv_loop_close(the_loop);
    logf_(BROKER_LOG_INFO, "stopped", "stopped cleanly");
    pidfile__release(the_pidfile, 1);
    logsink__close(the_log);
    auth__free(the_auth);
    config__free(&cfg);
    free(config_path);
    return loop_rc == 0 ? STOMPD_EXIT_OK : STOMPD_EXIT_FAILURE;
}
