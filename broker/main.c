/* main.c: stompd, the daemon: a thin shell over libbroker. Parses options, logs to stderr,
 * listens, prints "stompd: listening on HOST:PORT" once bound, and stops cleanly on SIGINT
 * or SIGTERM. The only file allowed file-scope state and exit().
 */
#include "broker.h"
#include "store_sqlite.h"

#include <getopt.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const level_names[] = { "error", "warn", "info", "debug" };

static void log_stderr(void *ctx, broker_log_level level, const char *line)
{
    (void)ctx;
    fprintf(stderr, "stompd: %s: %s\n", level_names[level], line);
}

static uv_signal_t sigint, sigterm;
static broker *the_broker;

static void on_stopped(broker *b, void *arg)
{
    (void)b;
    (void)arg;
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    fprintf(stderr, "stompd: info: signal %d, stopping\n", signum);
    if (broker_stop(the_broker, on_stopped, NULL) != BROKER_OK) {
        /* A second signal while stopping: give up waiting. */
        exit(1);
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: stompd [options]\n"
               "  -b, --host ADDR   address to listen on (IPv4 or IPv6, default 127.0.0.1)\n"
               "  -p, --port PORT   port to listen on (default 61613; 0 picks a free one)\n"
               "  --store SPEC      memory (default) or sqlite:PATH (durable queues)\n"
               "  --sync LEVEL      sqlite store: full (default, survives power loss) or\n"
               "                    normal (survives a killed process)\n"
               "  --max-connections N  open connections (default 16384)\n"
               "  -h, --help        this text\n"
               "  -V, --version     print the version\n");
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 61613;
    broker_options o;
    broker_options_init(&o);
    static const struct option longopts[] = {
        { "host", required_argument, NULL, 'b' },
        { "port", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { "store", required_argument, NULL, 'S' },
        { "sync", required_argument, NULL, 'Y' },
        { "max-connections", required_argument, NULL, 'M' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "b:p:hV", longopts, NULL)) != -1) {
        switch (ch) {
        case 'b': host = optarg; break;
        case 'p': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 65535) {
                fprintf(stderr, "stompd: bad port '%s'\n", optarg);
                return 2;
            }
            port = (int)v;
            break;
        }
        case 'S':
            if (strcmp(optarg, "memory") == 0) {
                o.store = NULL;
            } else if (strncmp(optarg, "sqlite:", 7) == 0 && optarg[7]) {
                o.store = store_sqlite_backend();
                o.store_path = optarg + 7;
            } else {
                fprintf(stderr, "stompd: bad --store '%s' (memory or sqlite:PATH)\n", optarg);
                return 2;
            }
            break;
        case 'Y':
            if (strcmp(optarg, "full") == 0 || strcmp(optarg, "normal") == 0) {
                o.store_sync_full = optarg[0] == 'f';
            } else {
                fprintf(stderr, "stompd: bad --sync '%s' (full or normal)\n", optarg);
                return 2;
            }
            break;
        case 'M': {
            char *end;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (*end || !*optarg || v == 0) {
                fprintf(stderr, "stompd: bad --max-connections '%s'\n", optarg);
                return 2;
            }
            o.max_connections = (size_t)v;
            break;
        }
        case 'h': usage(stdout); return 0;
        case 'V': printf("stompd %s\n", STOMPD_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    /* Every connection is a descriptor: take all the kernel allows us. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    uv_loop_t *loop = uv_default_loop();
    o.log = log_stderr;
    broker_err rc = broker_create(loop, &o, &the_broker);
    if (rc != BROKER_OK) {
        fprintf(stderr, "stompd: %s\n", broker_strerror(rc));
        return 1;
    }
    int bound = 0;
    rc = broker_listen(the_broker, host, port, &bound);
    if (rc != BROKER_OK) {
        fprintf(stderr, "stompd: cannot listen on %s:%d: %s\n", host, port,
                broker_strerror(rc));
        if (broker_stop(the_broker, NULL, NULL) == BROKER_OK)
            uv_run(loop, UV_RUN_DEFAULT);
        broker_free(the_broker);
        return 1;
    }
    printf("stompd: listening on %s:%d\n", host, bound);
    fflush(stdout);
    uv_signal_init(loop, &sigint);
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    broker_free(the_broker);
    return uv_loop_close(loop) == 0 ? 0 : 1;
}
