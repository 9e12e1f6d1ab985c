/* options.c: the command line into R.o, from one table of options with their ranges, then
 * what each scenario implies; and the broker's address, refused unless it is loopback.
 * Any bad option exits with status 2 before a socket is opened. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loadgen.h"

const char *const scenario_names[6] = {"queue", "persistent", "topic", "latency", "conns",
                                      "rpc"};

static void usage(FILE *f)
{
    fprintf(f,
"usage: loadgen [options]\n"
"Load and verify a STOMP 1.2 broker on loopback. Prints one result line on stdout\n"
"(key=value, or JSON with --json) and a summary on stderr. Exit status: 0 OK,\n"
"1 FAILED or TIMEOUT (lost, duplicated or malformed messages, broker error), 2 usage.\n"
"\n"
"  --scenario NAME      queue | persistent | topic | latency | conns | rpc (default queue)\n"
"  --host ADDR          broker address, 127.0.0.0/8 or ::1 only (default 127.0.0.1)\n"
"  --port N             broker port (default 61613)\n"
"  -p, --producers N    producers (queue, persistent; requesters: rpc; default 1; others\n"
"                       use 1)\n"
"  -c, --consumers N    consumers (queue, persistent; responders: rpc; default 1)\n"
"  -k, --subscribers N  topic subscribers (topic; default 4)\n"
"  -m, --conns N        subscribed connections (conns; default 1000, max 100000)\n"
"  -n, --messages N     messages per producer (default: queue 1000000, persistent\n"
"                       100000, topic 100000, latency 10000, conns 5 rounds, rpc 20000)\n"
"  -s, --size N         body bytes, at least 32 (default 100)\n"
"  --ack MODE           auto | client-individual (ACK each by its ack header; default auto)\n"
"  --queue-per-producer each producer sends to its own queue; every consumer subscribes\n"
"                       to all of them (default: one queue)\n"
"  --receipt-every K    a receipt on every K-th SEND (and the last); 0 = only the last\n"
"                       (default 100; persistent 1; latency and conns 0)\n"
"  --window W           at most W receipts outstanding per producer; 0 = unbounded\n"
"                       (default 10; persistent 256); rpc: at most W requests awaiting\n"
"                       their reply per requester (default 1: send, wait, send)\n"
"  --persistent         add persistent:true to SEND (implied by --scenario persistent)\n"
"  --nack-all           queue, persistent: consumers NACK every message and also subscribe\n"
"                       to each queue's dead-letter queue (/queue/DLQ.<name>), where every\n"
"                       message must arrive exactly once (the broker's delivery limit and\n"
"                       delay decide how often it comes back first)\n"
"  --fill               queue, persistent: only the producers: leave a backlog (--dest)\n"
"  --drain              queue, persistent: only the consumers: take a backlog left by --fill\n"
"                       with the same -p, -n, -s and --dest; the rate is the drain rate\n"
"  --priorities         priority:<sequence mod 10> on every SEND\n"
"  --selectors          topic: subscriber i subscribes with the selector grp = 'a' (i even)\n"
"                       or grp = 'b' (i odd); every SEND carries grp:a, so half of the\n"
"                       subscribers get every message and the others none\n"
"  --wildcards N        topic: the subscribers subscribe to the pattern <dest>.* and SENDs go\n"
"                       to <dest>.x; they also hold N patterns in all, the others matching\n"
"                       nothing (at most 250 per subscriber)\n"
"  --rate R             latency: messages per second, one frame at a time (default 1000)\n"
"  --pid PID            the broker's pid: its VmRSS is read before connecting and once\n"
"                       every connection is ready (reported by conns; default none)\n"
"  --concurrency N      connections being opened at once (default 256)\n"
"  --threads N          event-loop threads, at most one per core (default 1)\n"
"  --dest NAME          destination (base name with --queue-per-producer, which adds\n"
"                       -<n>); topics need the /topic/ prefix (default /queue/lg-<pid>,\n"
"                       or /topic/lg-<pid> for topic and conns, <pid> being loadgen's)\n"
"  --login S, --passcode S   credentials for CONNECT (default none)\n"
"  --tls                STOMP over TLS (1.2 or 1.3): the server's certificate must chain to\n"
"                       the system's CAs and name --host\n"
"  --tls-ca FILE        PEM file of the CAs the server's certificate must chain to instead\n"
"                       (implies --tls)\n"
"  --timeout SECS       bound on the whole run (default 60); on expiry report and fail\n"
"  --idle SECS          end early when producers are done and nothing arrives for this\n"
"                       long; the rest counts as lost (default 5)\n"
"  --linger SECS        keep reading after the last expected delivery, to catch\n"
"                       duplicates (default 0.2; not part of the timing)\n"
"  --strict-order       out-of-order deliveries fail the run too (default: reported as\n"
"                       result=OK_UNORDERED with exit status 0)\n"
"  --json               print the result line as one JSON object\n"
"\n"
"rpc: each requester SENDs to the queue (--dest) with reply-to:/temp-queue/r and no\n"
"SUBSCRIBE; each responder consumes the queue and SENDs the body back to the reply-to it\n"
"received, which must have been rewritten to a /reply-queue/ name; the reply must reach its\n"
"requester as a MESSAGE of subscription /temp-queue/r, once. The rate is round trips/s.\n"
"  -h, --help           this text\n"
"\n"
"Rates: queue/persistent/topic count unique deliveries from the moment every connection\n"
"is ready (first send) to the last delivery. latency: time from just before a SEND is\n"
"written to its MESSAGE being parsed, in microseconds. conns: connections/s until all are\n"
"CONNECTED and subscribed, broker VmRSS per connection, and the time one topic message\n"
"takes to reach every subscriber (one round at a time).\n");
}

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return false;
}

/* R.addr from --host and --port; every address the name resolves to must be loopback. */
void options__resolve(void)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", R.o.port);
    int rc = getaddrinfo(R.o.host, port, &hints, &res);
    if (rc != 0)
        die("cannot resolve %s: %s", R.o.host, gai_strerror(rc));
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (!is_loopback(ai->ai_addr)) {
            freeaddrinfo(res);
            die("refusing %s: only 127.0.0.0/8 and ::1 are allowed", R.o.host);
        }
    }
    memcpy(&R.addr, res->ai_addr, res->ai_addrlen);
    R.addrlen = res->ai_addrlen;
    freeaddrinfo(res);
}

static long parse_long(const char *s, const char *what, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        die("%s: expected an integer in [%ld, %ld], got '%s'", what, min, max, s);
    return v;
}

static double parse_secs(const char *s, const char *what)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0) || v > 86400)
        die("%s: expected seconds in [0, 86400], got '%s'", what, s);
    return v;
}

/* How an option's argument is taken: most are stored into one field of struct opts (numbers
 * range-checked); a scenario or ack name is looked up; --help prints and exits. */
enum argkind { ARG_INT, ARG_LONG, ARG_U64, ARG_SIZE, ARG_SECS, ARG_TRUE, ARG_STR, ARG_SCENARIO,
               ARG_ACK, ARG_HELP };

#define MAX_CORES (-1) /* --threads: at most the number of online cores */

#define FIELD(f) offsetof(struct opts, f)

struct optdef {
    const char *name; /* the long option; "--name" in error messages */
    char letter;      /* the short option, 0 if none */
    enum argkind kind;
    size_t field;     /* where the value goes in struct opts */
    long min, max;    /* the accepted range of a number */
};

/* Every option. The order is getopt's, so an ambiguous abbreviation lists its candidates
 * in this order. */
static const struct optdef optdefs[] = {
    {"scenario", 0, ARG_SCENARIO, 0, 0, 0},
    {"host", 0, ARG_STR, FIELD(host), 0, 0},
    {"port", 0, ARG_INT, FIELD(port), 1, 65535},
    {"producers", 'p', ARG_INT, FIELD(producers), 1, MAX_PRODUCERS},
    {"consumers", 'c', ARG_INT, FIELD(consumers), 1, MAX_SUBS},
    {"subscribers", 'k', ARG_INT, FIELD(subscribers), 1, MAX_SUBS},
    {"conns", 'm', ARG_INT, FIELD(conns), 1, MAX_CONNS},
    {"messages", 'n', ARG_U64, FIELD(messages), 1, 1L << 40},
    {"size", 's', ARG_SIZE, FIELD(size), BODY_MIN, 16L << 20},
    {"ack", 0, ARG_ACK, 0, 0, 0},
    {"queue-per-producer", 0, ARG_TRUE, FIELD(queue_per_producer), 0, 0},
    {"receipt-every", 0, ARG_LONG, FIELD(receipt_every), 0, 1L << 30},
    {"window", 0, ARG_LONG, FIELD(window), 0, 1L << 30},
    {"persistent", 0, ARG_TRUE, FIELD(persistent_flag), 0, 0},
    {"nack-all", 0, ARG_TRUE, FIELD(nack_all), 0, 0},
    {"fill", 0, ARG_TRUE, FIELD(fill), 0, 0},
    {"drain", 0, ARG_TRUE, FIELD(drain), 0, 0},
    {"priorities", 0, ARG_TRUE, FIELD(priorities), 0, 0},
    {"selectors", 0, ARG_TRUE, FIELD(selectors), 0, 0},
    {"wildcards", 0, ARG_INT, FIELD(wildcards), 1, 250 * MAX_SUBS},
    {"rate", 0, ARG_LONG, FIELD(rate), 1, 1000000},
    {"pid", 0, ARG_LONG, FIELD(pid), 1, INT_MAX},
    {"concurrency", 0, ARG_INT, FIELD(concurrency), 1, 100000},
    {"threads", 0, ARG_INT, FIELD(threads), 1, MAX_CORES},
    {"dest", 0, ARG_STR, FIELD(dest), 0, 0},
    {"login", 0, ARG_STR, FIELD(login), 0, 0},
    {"passcode", 0, ARG_STR, FIELD(passcode), 0, 0},
    {"tls", 0, ARG_TRUE, FIELD(tls), 0, 0},
    {"tls-ca", 0, ARG_STR, FIELD(tls_ca), 0, 0},
    {"timeout", 0, ARG_SECS, FIELD(timeout), 0, 0},
    {"idle", 0, ARG_SECS, FIELD(idle), 0, 0},
    {"linger", 0, ARG_SECS, FIELD(linger), 0, 0},
    {"json", 0, ARG_TRUE, FIELD(json), 0, 0},
    {"strict-order", 0, ARG_TRUE, FIELD(strict_order), 0, 0},
    {"help", 'h', ARG_HELP, 0, 0, 0},
};

#define NOPTS (sizeof optdefs / sizeof *optdefs)

/* getopt_long's value for an option without a letter: past every char */
#define LONG_ONLY 256

/* getopt_long's tables from optdefs: lopts has NOPTS + 1 entries, shorts 2 * NOPTS + 1. */
static void build_getopt(struct option *lopts, char *shorts)
{
    for (size_t i = 0; i < NOPTS; i++) {
        const struct optdef *d = &optdefs[i];
        int has_arg = d->kind == ARG_TRUE || d->kind == ARG_HELP ? no_argument
                                                                 : required_argument;
        lopts[i] = (struct option){d->name, has_arg, NULL,
                                   d->letter ? d->letter : LONG_ONLY + (int)i};
        if (d->letter) {
            *shorts++ = d->letter;
            if (has_arg == required_argument)
                *shorts++ = ':';
        }
    }
    lopts[NOPTS] = (struct option){NULL, 0, NULL, 0};
    *shorts = '\0';
}

/* The option getopt_long returned ch for; NULL for its '?' (unknown or missing argument). */
static const struct optdef *find_option(int ch)
{
    if (ch >= LONG_ONLY && ch < LONG_ONLY + (int)NOPTS)
        return &optdefs[ch - LONG_ONLY];
    for (size_t i = 0; i < NOPTS; i++)
        if (optdefs[i].letter && optdefs[i].letter == ch)
            return &optdefs[i];
    return NULL;
}

static enum scenario parse_scenario(const char *s)
{
    int found = -1;
    for (int i = 0; i < (int)(sizeof scenario_names / sizeof *scenario_names); i++)
        if (strcmp(s, scenario_names[i]) == 0)
            found = i;
    if (found < 0)
        die("unknown scenario '%s' (see --help)", s);
    return (enum scenario)found;
}

static bool parse_ack(const char *s)
{
    if (strcmp(s, "auto") == 0)
        return false;
    if (strcmp(s, "client-individual") == 0)
        return true;
    die("--ack: auto or client-individual, got '%s'", s);
}

static void set_option(struct opts *o, const struct optdef *d, const char *arg, long ncpu)
{
    char what[32];
    snprintf(what, sizeof what, "--%s", d->name);
    char *field = (char *)o + d->field;
    long max = d->max == MAX_CORES ? ncpu : d->max;
    switch (d->kind) {
    case ARG_INT: *(int *)field = (int)parse_long(arg, what, d->min, max); break;
    case ARG_LONG: *(long *)field = parse_long(arg, what, d->min, max); break;
    case ARG_U64: *(uint64_t *)field = (uint64_t)parse_long(arg, what, d->min, max); break;
    case ARG_SIZE: *(size_t *)field = (size_t)parse_long(arg, what, d->min, max); break;
    case ARG_SECS: *(double *)field = parse_secs(arg, what); break;
    case ARG_TRUE: *(bool *)field = true; break;
    case ARG_STR: *(const char **)field = arg; break;
    case ARG_SCENARIO: o->sc = parse_scenario(arg); break;
    case ARG_ACK: o->client_ack = parse_ack(arg); break;
    case ARG_HELP: usage(stdout); exit(0);
    }
}

/* What the options imply together, once all are read. */
static void finish_options(struct opts *o)
{
    const char *creds[] = {o->login, o->passcode};
    for (int i = 0; i < 2; i++)
        if (creds[i] && strpbrk(creds[i], "\r\n"))
            die("--login/--passcode may not hold CR or LF");
    static const long def_messages[] = {1000000, 100000, 100000, 10000, 5, 20000};
    if (o->messages == 0)
        o->messages = (uint64_t)def_messages[o->sc];
    if (o->sc == SC_PERSISTENT)
        o->persistent_flag = true;
    if ((o->selectors || o->wildcards) && o->sc != SC_TOPIC)
        die("--selectors and --wildcards are for --scenario topic");
    if (o->wildcards && (o->wildcards < o->subscribers || o->wildcards > 250 * o->subscribers))
        die("--wildcards: between 1 and 250 patterns per subscriber (-k)");
    if ((o->nack_all || o->fill || o->drain) && o->sc != SC_QUEUE && o->sc != SC_PERSISTENT)
        die("--nack-all, --fill, --drain: a queue or persistent scenario only");
    if (o->tls_ca)
        o->tls = true;
    if (o->fill && o->drain)
        die("--fill and --drain: one or the other");
    if (o->nack_all && o->dest && strncmp(o->dest, "/queue/", 7) != 0)
        die("--nack-all: the destination must start with /queue/");
    if (o->sc == SC_RPC && (o->window == 0 || (o->dest && strncmp(o->dest, "/topic/", 7) == 0)))
        die("--scenario rpc: a queue destination and a window of at least 1");
    if (o->sc == SC_RPC && o->queue_per_producer)
        die("--scenario rpc: one request queue (no --queue-per-producer)");
    if (o->sc != SC_QUEUE && o->sc != SC_PERSISTENT && o->sc != SC_RPC) {
        o->producers = 1;
        o->queue_per_producer = false;
    }
}

/* R.o from argv: the defaults, each option in turn, then what they imply together. */
void options__parse(int argc, char **argv)
{
    struct option lopts[NOPTS + 1];
    char shorts[2 * NOPTS + 1];
    struct opts *o = &R.o;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1)
        ncpu = 1;
    /* messages 0: the scenario's default, chosen by finish_options() */
    *o = (struct opts){.host = "127.0.0.1", .port = 61613, .sc = SC_QUEUE, .producers = 1,
                       .consumers = 1, .subscribers = 4, .conns = 1000, .size = 100,
                       .receipt_every = -1, .window = -1, .rate = 1000, .timeout = 60,
                       .idle = 5, .linger = 0.2, .threads = 1, .concurrency = 256};
    build_getopt(lopts, shorts);
    int ch;
    while ((ch = getopt_long(argc, argv, shorts, lopts, NULL)) != -1) {
        const struct optdef *d = find_option(ch);
        if (!d) {
            usage(stderr);
            exit(2);
        }
        set_option(o, d, optarg, ncpu);
    }
    if (optind < argc)
        die("unexpected argument '%s' (see --help)", argv[optind]);
    finish_options(o);
}
