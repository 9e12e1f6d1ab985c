/* options.c: stompd's command line: the usage text, the options, and the configuration
 * they make together with the config file (defaults, then the file, then the options).
 *
 * Most options are another spelling of one config key (--max-body N is max_body = N), so
 * one table names each option with its key and the file and the command line accept the
 * same values. Nothing here exits, and only options__usage prints: the caller gets an exit
 * code and a message, and decides.
 */
#include "daemon.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_STORE = 256, OPT_SYNC, OPT_PIDFILE, OPT_RUNDIR, OPT_UMASK, OPT_LOGLEVEL, OPT_DEBUG,
    OPT_SYSLOG, OPT_AUTH, OPT_MAXCONN, OPT_MAXMEM, OPT_MAXBODY, OPT_CONNTIMEOUT, OPT_SET,
    OPT_CHECK, OPT_HASH, OPT_WS_HOST, OPT_WS_PORT, OPT_NO_WS, OPT_WS_PATH, OPT_WS_ORIGINS,
    OPT_WS_MAXMSG, OPT_WEB_ROOT, OPT_POLICY_PORT, OPT_NO_POLICY, OPT_POLICY_DOMAINS,
    OPT_POLICY_PORTS, OPT_WSS_LISTEN, OPT_TLS_CA,
};

typedef struct opt_def {
    const char *name;  /* long option */
    int has_arg;
    int val;           /* short option letter or OPT_* */
    const char *key;   /* the config key it sets; NULL: handled by options__parse itself */
    const char *value; /* the value a flag sets; NULL: the option's argument */
} opt_def;

static const opt_def opts[] = {
    { "config", required_argument, 'c', NULL, NULL },
    { "host", required_argument, 'b', NULL, NULL },
    { "port", required_argument, 'p', NULL, NULL },
    { "store", required_argument, OPT_STORE, "store", NULL },
    { "sync", required_argument, OPT_SYNC, "sync", NULL },
    { "daemon", no_argument, 'd', "daemon", "yes" },
    { "pidfile", required_argument, OPT_PIDFILE, "pidfile", NULL },
    { "rundir", required_argument, OPT_RUNDIR, "rundir", NULL },
    { "umask", required_argument, OPT_UMASK, "umask", NULL },
    { "logfile", required_argument, 'l', "logfile", NULL },
    { "log-level", required_argument, OPT_LOGLEVEL, "log_level", NULL },
    { "debug", no_argument, OPT_DEBUG, "debug", "yes" },
    { "syslog", no_argument, OPT_SYSLOG, "syslog", "yes" },
    { "user", required_argument, 'u', "user", NULL },
    { "uid", required_argument, 'u', "user", NULL },
    { "group", required_argument, 'g', "group", NULL },
    { "gid", required_argument, 'g', "group", NULL },
    { "auth", required_argument, OPT_AUTH, "auth_file", NULL },
    { "max-connections", required_argument, OPT_MAXCONN, "max_connections", NULL },
    { "max-memory", required_argument, OPT_MAXMEM, "max_memory", NULL },
    { "max-body", required_argument, OPT_MAXBODY, "max_body", NULL },
    { "connect-timeout", required_argument, OPT_CONNTIMEOUT, "connect_timeout_ms", NULL },
    { "set", required_argument, OPT_SET, NULL, NULL },
    { "check-config", no_argument, OPT_CHECK, NULL, NULL },
    { "hash-passcode", no_argument, OPT_HASH, NULL, NULL },
    { "ws-host", required_argument, OPT_WS_HOST, "ws_host", NULL },
    { "ws-port", required_argument, OPT_WS_PORT, "ws_port", NULL },
    { "no-ws", no_argument, OPT_NO_WS, "websocket", "no" },
    { "ws-path", required_argument, OPT_WS_PATH, "ws_path", NULL },
    { "ws-origins", required_argument, OPT_WS_ORIGINS, "ws_origins", NULL },
    { "ws-max-message", required_argument, OPT_WS_MAXMSG, "ws_max_message", NULL },
    { "web-root", required_argument, OPT_WEB_ROOT, "web_root", NULL },
    { "policy-port", required_argument, OPT_POLICY_PORT, "policy_port", NULL },
    { "no-policy", no_argument, OPT_NO_POLICY, "flash_policy", "no" },
    { "policy-domains", required_argument, OPT_POLICY_DOMAINS, "policy_domains", NULL },
    { "policy-ports", required_argument, OPT_POLICY_PORTS, "policy_ports", NULL },
    { "tls-listen", required_argument, 'T', "tls_listen", NULL },
    { "wss-listen", required_argument, OPT_WSS_LISTEN, "wss_listen", NULL },
    { "tls-cert", required_argument, 'C', "tls_cert", NULL },
    { "tls-key", required_argument, 'K', "tls_key", NULL },
    { "tls-ca", required_argument, OPT_TLS_CA, "tls_ca", NULL },
    { "version", no_argument, 'V', NULL, NULL },
    { "help", no_argument, 'h', NULL, NULL },
};

#define NOPTS (sizeof opts / sizeof opts[0])

void options__usage(FILE *f)
{
    fprintf(f,
        "usage: stompd [options]\n"
        "Options override the config file. Defaults in parentheses.\n"
        "  -c, --config FILE      INI config file ([stompd] keys below; CoilMQ's [coilmq]\n"
        "                         keys are understood too)\n"
        "  -b, --host ADDR        address to listen on, IPv4 or IPv6 (127.0.0.1)\n"
        "  -p, --port PORT        port to listen on; 0 picks a free one (61613)\n"
        "      --store SPEC       memory, sqlite:PATH or postgres:CONNINFO (memory)\n"
        "      --sync LEVEL       persistent stores: full (survives power loss) or normal\n"
        "                         (survives a killed process) (full)\n"
        "  -d, --daemon           detach; the command returns once stompd listens (no)\n"
        "      --pidfile FILE     write and lock a pid file (none)\n"
        "      --rundir DIR       working directory when detached (/)\n"
        "      --umask MASK       file creation mask when detached (022)\n"
        "  -l, --logfile FILE     append the log here; SIGHUP reopens it (stderr, or\n"
        "                         nothing when detached)\n"
        "      --log-level LEVEL  debug, info, warning or error (info)\n"
        "      --debug            debug level and a stats line every stats_interval s (no)\n"
        "      --syslog           log to syslog too (no)\n"
        "  -u, --user USER        run as USER after binding and opening files (--uid too)\n"
        "  -g, --group GROUP      run as GROUP (USER's group) (--gid too)\n"
        "      --auth FILE        require login; FILE holds 'login = hash' lines (none)\n"
        "      --max-connections N  open connections (16384)\n"
        "      --max-memory SIZE  bytes of messages before producers wait (1G)\n"
        "      --max-body SIZE    bytes in a frame body (16M)\n"
        "      --connect-timeout MS  CONNECT must arrive within this (10000)\n"
        "      --set KEY=VALUE    any config file key (repeatable)\n"
        "      --check-config     validate the configuration and the auth file, then exit\n"
        "      --hash-passcode    read a passcode on stdin, print its hash for --auth\n"
        "      --ws-host ADDR     WebSocket (STOMP over RFC 6455) address (127.0.0.1)\n"
        "      --ws-port PORT     WebSocket port; 0 picks a free one (15674)\n"
        "      --no-ws            no WebSocket listener\n"
        "      --ws-path PATH     WebSocket endpoint path (/ws)\n"
        "      --ws-origins LIST  comma-separated Origins browsers may connect from (any)\n"
        "      --ws-max-message SIZE  largest WebSocket message, bytes (16842752)\n"
        "      --web-root DIR     serve DIR's files on the WebSocket port, / = index.html\n"
        "                         (none)\n"
        "      --policy-port PORT Flash socket policy listener, e.g. 843 (none)\n"
        "      --no-policy        do not answer Flash policy requests on STOMP ports\n"
        "      --policy-domains LIST  allow-access-from domains, comma-separated (*)\n"
        "      --policy-ports PORTS   to-ports of the policy (the STOMP ports)\n"
        "  -T, --tls-listen ADDR  STOMP over TLS on HOST:PORT (61614), repeatable (none)\n"
        "      --wss-listen ADDR  WebSocket over TLS (wss) on HOST:PORT, repeatable (none)\n"
        "  -C, --tls-cert FILE    PEM certificate chain of the TLS listeners\n"
        "  -K, --tls-key FILE     PEM private key (in --tls-cert's file)\n"
        "      --tls-ca FILE      PEM CAs that client certificates must chain to (none)\n"
        "  -V, --version          print the version\n"
        "  -h, --help             this text\n"
        "\nSignals: TERM/INT stop cleanly (pidfile removed, exit 0); HUP reopens the log\n"
        "file and reloads the whole configuration (the file, then these options again):\n"
        "limits, policies, the auth file and ACL, certificates and the log level apply at\n"
        "once; a file that does not validate keeps the old configuration; listener, store\n"
        "and process keys are reported as needing a restart.\n"
        "Exit codes: 0 ok, 1 runtime failure, 2 bad option or config, 3 cannot listen,\n"
        "4 store failed, 5 pid file locked or unusable, 6 log, privileges or detaching.\n");
    config__print_keys(f);
}

/* The table entry that sets a config key for option ch; NULL for the others. */
static const opt_def *keyed(int ch)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].val == ch && opts[i].key)
            return &opts[i];
    return NULL;
}

/* --set KEY=VALUE, split in place. */
static int split_set(char *arg, options_setting *s, char *err, size_t errlen)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        snprintf(err, errlen, "--set: '%s' is not KEY=VALUE", arg);
        return STOMPD_EXIT_CONFIG;
    }
    *eq = '\0';
    s->key = arg;
    s->value = eq + 1;
    return STOMPD_EXIT_OK;
}

/* The options that are not a config key. 1: go on with the next option, 0: stop parsing
 * (help, version), -1: an unknown option or a missing argument (getopt said which). */
static int special(options *o, int ch)
{
    switch (ch) {
    case 'c': o->config_file = optarg; return 1;
    case 'b': o->host = optarg; return 1;
    case 'p': o->port = optarg; return 1;
    case OPT_CHECK: o->check_only = 1; return 1;
    case OPT_HASH: o->action = OPTIONS_HASH; return 1;
    case 'h': o->action = OPTIONS_HELP; return 0;
    case 'V': o->action = OPTIONS_VERSION; return 0;
    default:
        o->usage_error = 1;
        return -1;
    }
}

int options__parse(options *o, int argc, char **argv, char *err, size_t errlen)
{
    struct option longopts[NOPTS + 1];
    for (size_t i = 0; i < NOPTS; i++)
        longopts[i] = (struct option){ opts[i].name, opts[i].has_arg, NULL, opts[i].val };
    longopts[NOPTS] = (struct option){ NULL, 0, NULL, 0 };
    memset(o, 0, sizeof *o);
    o->action = OPTIONS_START;
    err[0] = '\0';
    int ch;
    while ((ch = getopt_long(argc, argv, "c:b:p:dl:u:g:hVT:C:K:", longopts, NULL)) != -1) {
        const opt_def *d = keyed(ch);
        if (!d && ch != OPT_SET) {
            int go_on = special(o, ch);
            if (go_on <= 0)
                return go_on == 0 ? STOMPD_EXIT_OK : STOMPD_EXIT_CONFIG;
            continue;
        }
        if (o->nset == OPTIONS_MAX_SETTINGS) {
            snprintf(err, errlen, "too many options");
            return STOMPD_EXIT_CONFIG;
        }
        options_setting *s = &o->set[o->nset];
        if (d) {
            s->key = d->key;
            s->value = d->value ? d->value : optarg;
        } else if (split_set(optarg, s, err, errlen) != STOMPD_EXIT_OK) {
            return STOMPD_EXIT_CONFIG;
        }
        /* Name the option as typed: "--ws-port abc" is two arguments, "--ws-port=abc" one. */
        s->opt = argv[optind - 1];
        if (optarg && optind >= 2 && s->opt == optarg)
            s->opt = argv[optind - 2];
        o->nset++;
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
        o->usage_error = 1;
        return STOMPD_EXIT_CONFIG;
    }
    return STOMPD_EXIT_OK;
}

/* -b / -p replace the listen list by one address, keeping the other half. */
static int override_listen(const options *o, daemon_config *cfg, char *err, size_t errlen)
{
    config_listen l = cfg->nlisten ? cfg->listen[0] : (config_listen){ "127.0.0.1", 61613 };
    if (o->host) {
        if (strlen(o->host) == 0 || strlen(o->host) >= sizeof l.host) {
            snprintf(err, errlen, "--host: '%s' is not an address", o->host);
            return STOMPD_EXIT_CONFIG;
        }
        snprintf(l.host, sizeof l.host, "%s", o->host);
    }
    if (o->port) {
        char *end;
        errno = 0;
        long v = strtol(o->port, &end, 10);
        if (!*o->port || *end || errno || v < 0 || v > 65535) {
            snprintf(err, errlen, "--port: '%s' is not a port number (0-65535)", o->port);
            return STOMPD_EXIT_CONFIG;
        }
        l.port = (int)v;
    }
    cfg->listen[0] = l;
    cfg->nlisten = 1;
    return STOMPD_EXIT_OK;
}

int options__configure(const options *o, daemon_config *cfg,
                       void (*warn)(void *ctx, const char *msg), void *warn_ctx, char *err,
                       size_t errlen)
{
    char why[DAEMON_ERRLEN];
    if (config__init(cfg, why, sizeof why) != 0) {
        snprintf(err, errlen, "defaults: %s", why);
        return STOMPD_EXIT_FAILURE;
    }
    if (o->config_file &&
        config__load(cfg, o->config_file, warn, warn_ctx, err, errlen) != 0)
        return STOMPD_EXIT_CONFIG;
    for (size_t i = 0; i < o->nset; i++) {
        const options_setting *s = &o->set[i];
        if (config__set(cfg, s->key, s->value, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s: %s", s->opt, why);
            return STOMPD_EXIT_CONFIG;
        }
    }
    if ((o->host || o->port) && override_listen(o, cfg, err, errlen) != STOMPD_EXIT_OK)
        return STOMPD_EXIT_CONFIG;
    if (config__build_policies(cfg, o->config_file, err, errlen) != 0)
        return STOMPD_EXIT_CONFIG;
    if (cfg->debug)
        cfg->log_level = BROKER_LOG_DEBUG;
    /* The drain must end before the stop is forced, or messages not yet written would be
     * cut off without going back to their queues. */
    if ((uint64_t)cfg->opts.stop_timeout_ms >= (uint64_t)cfg->stop_timeout_s * 1000) {
        snprintf(err, errlen, "stop_drain_ms (%u) must be shorter than stop_timeout (%u s)",
                 (unsigned)cfg->opts.stop_timeout_ms, (unsigned)cfg->stop_timeout_s);
        return STOMPD_EXIT_CONFIG;
    }
    if (config__absolute_paths(cfg) != 0) {
        snprintf(err, errlen, "out of memory");
        return STOMPD_EXIT_FAILURE;
    }
    return STOMPD_EXIT_OK;
}
