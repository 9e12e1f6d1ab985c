/* stompctl.c: the command line and the commands of stompctl, the client of stompd's
 * management API: each command is one HTTP request; its answer is printed as a table (or
 * the JSON as received with --json) and mapped to an exit code scripts can test.
 */
#include "stompctl.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_URL "http://127.0.0.1:61680"

static int json_out;

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: stompctl [OPTIONS] COMMAND [ARGS]\n"
        "Talk to stompd's management API (admin_listen).\n\n"
        "Commands:\n"
        "  overview            version, uptime, connections, message rates, memory, store\n"
        "  list                destinations: depth, consumers, unacked, counters; durable\n"
        "                      subscriptions under their topics and backlog queues\n"
        "  connections         connections: peer, login, version, since, bytes, subs\n"
        "  subscriptions ID    one connection's subscriptions\n"
        "  browse NAME [N]     the first N (default 10) messages of a queue\n"
        "  purge NAME          remove every message of a queue not delivered\n"
        "  delete NAME         purge and forget a destination (none may subscribe)\n"
        "  requeue-dead DLQ    send a dead-letter queue's messages back to their queues\n"
        "  close ID            close a connection (its client gets an ERROR)\n"
        "  config              the running configuration, every key (no secrets)\n"
        "  reload              read the configuration again, as SIGHUP does: what changed\n"
        "                      and what needs a restart; exit 1 and the reason (FILE:LINE)\n"
        "                      when it does not validate (the old one stays)\n\n"
        "Options:\n"
        "  -u, --url URL       the management listener, http:// or https://HOST:PORT\n"
        "                      (default $STOMPCTL_URL or %s)\n"
        "      --user LOGIN    log in as LOGIN (default $STOMPCTL_USER)\n"
        "      --passcode P    with passcode P (default $STOMPCTL_PASSCODE)\n"
        "      --cacert FILE   https:// URLs: PEM CAs the listener's certificate must\n"
        "                      chain to (default $STOMPCTL_CACERT, else the system's)\n"
        "      --json          print the API's JSON instead of a table\n"
        "  -h, --help          this text\n\n"
        "Exit codes: 0 done; 1 the broker refused (bad request, conflict, error); 2 bad\n"
        "command line; 3 broker not reachable or no valid answer; 4 login refused or\n"
        "needed (401, 403); 5 no such destination or connection (404).\n",
        DEFAULT_URL);
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

static long long num(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static void print_overview(json_t *j)
{
    static const char *const keys[] = { "version", "server", "started", "uptime_s",
        "connections", "connections_total", "subscriptions", "queues", "topics",
        "messages_in", "messages_out", "rate_in", "rate_out", "bytes_in", "bytes_out",
        "memory", "max_memory", "redeliveries", "dead_lettered", "expired",
        "auth_failures" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(j, keys[i]);
        if (json_is_string(v))
            printf("%-18s %s\n", keys[i], json_string_value(v));
        else if (json_is_real(v))
            printf("%-18s %.2f\n", keys[i], json_real_value(v));
        else if (json_is_integer(v))
            printf("%-18s %lld\n", keys[i], (long long)json_integer_value(v));
    }
    json_t *st = json_object_get(j, "store");
    printf("%-18s %s%s%s\n", "store", str(st, "backend"),
           json_is_string(json_object_get(st, "path")) ? " " : "",
           json_is_string(json_object_get(st, "path")) ? str(st, "path") : "");
}

/* Under its row: a topic's durable subscriptions, a backlog queue's subscription. */
static void print_durable(json_t *d)
{
    long long n = num(d, "durable_subscriptions");
    if (n)
        printf("  %lld durable subscription%s\n", n, n == 1 ? "" : "s");
    json_t *s = json_object_get(d, "durable_subscription");
    if (!json_is_object(s))
        return;
    int wild = json_is_string(json_object_get(s, "pattern"));
    printf("  durable subscription %s of client-id %s on %s%s, %s", str(s, "name"),
           str(s, "client_id"), wild ? "pattern " : "", str(s, wild ? "pattern" : "topic"),
           json_is_true(json_object_get(s, "active")) ? "active" : "away");
    if (json_is_string(json_object_get(s, "selector")))
        printf(", selector %s", str(s, "selector"));
    printf("%s\n", json_is_true(json_object_get(s, "no_local")) ? ", noLocal" : "");
}

static void print_list(json_t *arr)
{
    printf("%-32s %-5s %8s %9s %7s %10s %10s %6s\n", "NAME", "TYPE", "DEPTH", "CONSUMERS",
           "UNACKED", "IN", "OUT", "DEAD");
    size_t i;
    json_t *d;
    json_array_foreach(arr, i, d) {
        printf("%-32s %-5s %8lld %9lld %7lld %10lld %10lld %6lld\n", str(d, "name"),
               str(d, "type"), num(d, "depth"), num(d, "consumers"), num(d, "unacked"),
               num(d, "messages_in"), num(d, "messages_out"), num(d, "dead_lettered"));
        print_durable(d);
    }
}

static void print_connections(json_t *arr)
{
    printf("%-6s %-22s %-12s %-4s %-9s %-24s %10s %10s %4s\n", "ID", "PEER", "LOGIN", "VER",
           "TRANSPORT", "SINCE", "BYTES_IN", "BYTES_OUT", "SUBS");
    size_t i;
    json_t *c;
    json_array_foreach(arr, i, c)
        printf("%-6lld %-22s %-12s %-4s %-9s %-24s %10lld %10lld %4lld\n", num(c, "id"),
               str(c, "peer"), str(c, "login"), str(c, "version"), str(c, "transport"),
               str(c, "since"), num(c, "bytes_in"), num(c, "bytes_out"),
               num(c, "subscriptions"));
}

static void print_subscriptions(json_t *arr)
{
    printf("%-16s %-32s %-18s %8s %7s %s\n", "ID", "DESTINATION", "ACK", "PREFETCH",
           "UNACKED", "FLAGS");
    size_t i;
    json_t *s;
    json_array_foreach(arr, i, s)
        printf("%-16s %-32s %-18s %8lld %7lld %s%s\n", str(s, "id"), str(s, "destination"),
               str(s, "ack"), num(s, "prefetch"), num(s, "unacked"),
               json_is_true(json_object_get(s, "exclusive")) ? "exclusive " : "",
               json_is_true(json_object_get(s, "browser")) ? "browser" : "");
}

static void print_browse(json_t *j)
{
    printf("%-12s %4s %8s %8s  %s\n", "MESSAGE_ID", "PRIO", "REDELIV", "BYTES", "BODY");
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(j, "messages"), i, m) {
        const char *body = str(m, "body");
        int n = 0, cut = 0;
        while (body[n] && n < 50 && body[n] != '\n')
            n++;
        cut = body[n] != '\0';
        printf("%-12s %4lld %8lld %8lld  %.*s%s\n", str(m, "message_id"), num(m, "priority"),
               num(m, "redeliveries"), num(m, "body_length"), n, body, cut ? "..." : "");
    }
}

static void print_config(json_t *arr)
{
    printf("%-24s %-26s %s\n", "SECTION", "KEY", "VALUE");
    size_t i;
    json_t *k;
    json_array_foreach(arr, i, k)
        printf("%-24s %-26s %s\n", str(k, "section"), str(k, "key"),
               json_string_value(json_object_get(k, "value")) ? str(k, "value") : "");
}

static void print_names(const char *what, json_t *arr)
{
    printf("%s:", what);
    size_t i;
    json_t *n;
    json_array_foreach(arr, i, n)
        printf("%s %s", i ? "," : "", json_string_value(n) ? json_string_value(n) : "?");
    printf("%s\n", json_array_size(arr) ? "" : " nothing");
}

static void print_action(const char *cmd, json_t *j)
{
    if (strcmp(cmd, "reload") == 0) {
        print_names("changed", json_object_get(j, "changed"));
        print_names("needs a restart", json_object_get(j, "restart_needed"));
        return;
    }
    if (strcmp(cmd, "purge") == 0)
        printf("purged %lld messages from %s\n", num(j, "purged"), str(j, "name"));
    else if (strcmp(cmd, "delete") == 0)
        printf("deleted %s (%lld messages purged)\n", str(j, "name"), num(j, "purged"));
    else if (strcmp(cmd, "requeue-dead") == 0)
        printf("moved %lld messages from %s back to their queues, %lld left\n",
               num(j, "moved"), str(j, "name"), num(j, "kept"));
    else
        printf("closed connection %lld\n", num(j, "closed"));
}

/* The request for a command: method and path (written to path). -1 for a bad command line. */
static int request_for(int argc, char **argv, const char **method, char *path, size_t cap)
{
    const char *cmd = argv[0];
    char name[3200] = "";
    if (argc >= 2)
        ctl_escape(argv[1], name, sizeof name);
    static const struct {
        const char *cmd, *method, *fmt;
        int args;
    } table[] = {
        { "overview", "GET", "/api/overview", 0 },
        { "list", "GET", "/api/destinations", 0 },
        { "connections", "GET", "/api/connections", 0 },
        { "subscriptions", "GET", "/api/connections/%s/subscriptions", 1 },
        { "purge", "POST", "/api/destinations/purge?name=%s", 1 },
        { "delete", "DELETE", "/api/destinations?name=%s", 1 },
        { "requeue-dead", "POST", "/api/destinations/move-dead?name=%s", 1 },
        { "close", "DELETE", "/api/connections/%s", 1 },
        { "browse", "GET", "/api/destinations/browse?name=%s", 1 },
        { "config", "GET", "/api/config", 0 },
        { "reload", "POST", "/api/reload", 0 },
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(cmd, table[i].cmd) != 0)
            continue;
        int is_browse = strcmp(cmd, "browse") == 0;
        if (argc - 1 != table[i].args && !(is_browse && argc == 3))
            return -1;
        if ((strcmp(cmd, "close") == 0 || strcmp(cmd, "subscriptions") == 0) &&
            (!argv[1][0] || argv[1][strspn(argv[1], "0123456789")]))
            return -1;
        *method = table[i].method;
        int n = snprintf(path, cap, table[i].fmt, name);
        if (is_browse && argc == 3) {
            if (!argv[2][0] || argv[2][strspn(argv[2], "0123456789")])
                return -1;
            snprintf(path + n, cap - (size_t)n, "&count=%s", argv[2]);
        }
        return 0;
    }
    return -1;
}

static int exit_for(int status)
{
    if (status == 200)
        return CTL_OK;
    if (status == 401 || status == 403)
        return CTL_AUTH;
    return status == 404 ? CTL_NOTFOUND : CTL_REFUSED;
}

static void show(const char *cmd, json_t *j)
{
    if (json_out) {
        char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text)
            printf("%s\n", text);
        free(text);
    } else if (strcmp(cmd, "overview") == 0) {
        print_overview(j);
    } else if (strcmp(cmd, "list") == 0) {
        print_list(j);
    } else if (strcmp(cmd, "connections") == 0) {
        print_connections(j);
    } else if (strcmp(cmd, "subscriptions") == 0) {
        print_subscriptions(j);
    } else if (strcmp(cmd, "browse") == 0) {
        print_browse(j);
    } else if (strcmp(cmd, "config") == 0) {
        print_config(j);
    } else {
        print_action(cmd, j);
    }
}

int main(int argc, char **argv)
{
    static const struct option longs[] = {
        { "url", required_argument, NULL, 'u' }, { "user", required_argument, NULL, 'U' },
        { "passcode", required_argument, NULL, 'P' }, { "json", no_argument, NULL, 'j' },
        { "cacert", required_argument, NULL, 'A' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    const char *url = getenv("STOMPCTL_URL");
    ctl_target t = { .user = getenv("STOMPCTL_USER"), .passcode = getenv("STOMPCTL_PASSCODE"),
                     .cacert = getenv("STOMPCTL_CACERT") };
    int opt;
    while ((opt = getopt_long(argc, argv, "+u:h", longs, NULL)) != -1) {
        switch (opt) {
        case 'u': url = optarg; break;
        case 'U': t.user = optarg; break;
        case 'P': t.passcode = optarg; break;
        case 'j': json_out = 1; break;
        case 'A': t.cacert = optarg; break;
        case 'h': usage(stdout); return CTL_OK;
        default: usage(stderr); return CTL_USAGE;
        }
    }
    char err[512], path[4096];
    const char *method;
    if (optind >= argc ||
        request_for(argc - optind, argv + optind, &method, path, sizeof path) != 0) {
        fprintf(stderr, "stompctl: %s\n", optind >= argc ? "no command"
                                                         : "bad command or arguments");
        usage(stderr);
        return CTL_USAGE;
    }
    if (ctl_parse_url(url ? url : DEFAULT_URL, &t, err, sizeof err) != 0) {
        fprintf(stderr, "stompctl: %s\n", err);
        return CTL_USAGE;
    }
    const char *cmd = argv[optind];
    ctl_answer a;
    if (ctl_request(&t, method, path, &a, err, sizeof err) != 0) {
        fprintf(stderr, "stompctl: %s: %s\n", cmd, err);
        return CTL_UNREACHABLE;
    }
    int rc = exit_for(a.status);
    if (!a.json) {
        fprintf(stderr, "stompctl: %s: HTTP %d without a JSON body\n", cmd, a.status);
        rc = rc == CTL_OK ? CTL_UNREACHABLE : rc;
    } else if (rc != CTL_OK) {
        fprintf(stderr, "stompctl: %s: %s (HTTP %d)\n", cmd, str(a.json, "error"), a.status);
    } else {
        show(cmd, a.json);
    }
    ctl_answer_free(&a);
    return rc;
}
