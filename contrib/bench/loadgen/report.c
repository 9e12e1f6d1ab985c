/* report.c: the result line on stdout, key=value pairs in a fixed order or one JSON object
 * (run.sh and compare.sh read it: keep keys and order), and the human summary on stderr.
 * Runs once every worker has stopped, so plain reads of R are safe. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

/* The result line, built in both forms at once; one is printed. */
struct report {
    char text[4096];
    size_t len;
    char json[4096];
    size_t jlen;
};

/* One key and its value, appended to both forms; quoted: a string in JSON. */
static void kv(struct report *r, const char *key, bool quoted, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void kv(struct report *r, const char *key, bool quoted, const char *fmt, ...)
{
    char v[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    if (r->len < sizeof r->text)
        r->len += (size_t)snprintf(r->text + r->len, sizeof r->text - r->len, "%s%s=%s",
                                   r->len ? " " : "", key, v);
    if (r->jlen < sizeof r->json)
        r->jlen += (size_t)snprintf(r->json + r->jlen, sizeof r->json - r->jlen,
                                    "%s\"%s\":%s%s%s", r->jlen ? "," : "{", key,
                                    quoted ? "\"" : "", v, quoted ? "\"" : "");
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The p-th percentile of n sorted samples in ns, in microseconds. */
static double pct(const uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)n);
    if (i >= n)
        i = n - 1;
    return (double)v[i] / 1000.0;
}

/* The run's outcome, read once every worker has stopped. */
struct tally {
    uint64_t unique, dup, ooo, bad, lost;
    bool timed_out, failed;
    int64_t t_go;
    double secs; /* from the first SEND to the last expected delivery (or the last one) */
    const char *result;
};

static struct tally tally_up(void)
{
    struct tally t = {.unique = atomic_load(&R.unique), .dup = atomic_load(&R.dup),
                      .ooo = atomic_load(&R.ooo), .bad = atomic_load(&R.bad),
                      .timed_out = atomic_load(&R.timed_out), .failed = atomic_load(&R.failed),
                      .t_go = atomic_load(&R.t_go)};
    t.lost = R.expected - t.unique;
    int64_t t_last = atomic_load(&R.t_last);
    if (t_last == 0)
        t_last = atomic_load(&R.t_last_rx);
    t.secs = t.t_go && t_last > t.t_go ? (double)(t_last - t.t_go) / 1e9 : 0;
    /* a failure outranks a timeout, which outranks what was counted */
    t.result = "OK";
    if (t.failed)
        t.result = "FAILED";
    else if (t.timed_out)
        t.result = "TIMEOUT";
    else if (t.lost || t.dup || t.bad)
        t.result = "FAILED";
    else if (t.ooo)
        t.result = R.o.strict_order ? "FAILED" : "OK_UNORDERED";
    return t;
}

/* What was run: the scenario, its connections and message counts. */
static void kv_shape(struct report *r, const struct opts *o)
{
    kv(r, "scenario", true, "%s", scenario_names[o->sc]);
    kv(r, "p", false, "%d", o->producers);
    if (o->sc == SC_TOPIC || o->sc == SC_CONNS)
        kv(r, "subs", false, "%d", R.groups);
    else
        kv(r, "c", false, "%d", o->consumers);
    kv(r, "size", false, "%zu", o->size);
    kv(r, "ack", true, "%s", o->client_ack ? "client-individual" : "auto");
    if (o->nack_all)
        kv(r, "nacks", false, "%llu", (unsigned long long)atomic_load(&R.nacks));
    if (o->fill || o->drain)
        kv(r, "part", true, "%s", o->fill ? "fill" : "drain");
    if (o->priorities)
        kv(r, "priorities", true, "0-9");
    if (o->selectors)
        kv(r, "selectors", true, "half");
    if (o->wildcards)
        kv(r, "wildcards", false, "%d", o->wildcards);
    if (o->sc == SC_QUEUE || o->sc == SC_PERSISTENT || o->sc == SC_RPC) {
        kv(r, "queues", false, "%d", R.ndests);
        kv(r, "receipt_every", false, "%ld", R.receipt_every);
        kv(r, "window", false, "%ld", R.window);
    }
    kv(r, "tls", true, "%s", !o->tls ? "off" : R.tls_proto[0] ? R.tls_proto : "none");
    kv(r, "threads", false, "%d", R.nworkers);
    kv(r, "msgs", false, "%" PRIu64, o->messages * (uint64_t)o->producers);
    kv(r, "deliveries", false, "%" PRIu64, atomic_load(&R.received));
    kv(r, "expected", false, "%" PRIu64, R.expected);
}

static void kv_throughput(struct report *r, const struct opts *o, const struct tally *t)
{
    double rate = t->secs > 0 ? (double)t->unique / t->secs : 0;
    kv(r, "secs", false, "%.6f", t->secs);
    kv(r, "rate", false, "%.0f", rate);
    kv(r, "mbps", false, "%.1f", rate * (double)o->size / 1e6);
}

/* Percentiles of the latency samples; sorts them in place, the missing ones left out. */
static void kv_latency(struct report *r, const struct opts *o)
{
    size_t n = 0;
    for (uint64_t i = 0; i < o->messages; i++)
        if (R.lat_ns[i] != NONE)
            R.lat_ns[n++] = R.lat_ns[i];
    qsort(R.lat_ns, n, sizeof *R.lat_ns, cmp_u64);
    kv(r, "target_rate", false, "%ld", o->rate);
    kv(r, "samples", false, "%zu", n);
    kv(r, "p50_us", false, "%.1f", pct(R.lat_ns, n, 50));
    kv(r, "p99_us", false, "%.1f", pct(R.lat_ns, n, 99));
    kv(r, "p999_us", false, "%.1f", pct(R.lat_ns, n, 99.9));
    kv(r, "max_us", false, "%.1f", n ? (double)R.lat_ns[n - 1] / 1000.0 : 0);
}

/* Connection rate, the broker's memory per connection, and the fan-out time of each round. */
static void kv_conns(struct report *r, const struct opts *o)
{
    int64_t t0 = atomic_load(&R.t_connect0), t1 = atomic_load(&R.t_ready);
    double csecs = t1 > t0 ? (double)(t1 - t0) / 1e9 : 0;
    kv(r, "conns", false, "%d", R.groups);
    kv(r, "connect_secs", false, "%.6f", csecs);
    kv(r, "connect_rate", false, "%.0f", csecs > 0 ? R.needed / csecs : 0);
    if (o->pid > 0) {
        kv(r, "rss_before_kb", false, "%ld", R.rss_before);
        kv(r, "rss_after_kb", false, "%ld", R.rss_after);
        kv(r, "rss_per_conn_bytes", false, "%.0f",
           R.rss_after > 0 && R.rss_before > 0
               ? (double)(R.rss_after - R.rss_before) * 1024.0 / R.needed
               : 0.0);
    }
    double sum = 0, mx = 0;
    uint64_t done = atomic_load(&R.rounds_done);
    for (uint64_t i = 0; i < done && i < o->messages; i++) {
        double us = (double)(atomic_load(&R.round_done_ns[i]) - R.round_sent_ns[i]) / 1e3;
        sum += us;
        if (us > mx)
            mx = us;
    }
    kv(r, "rounds", false, "%" PRIu64, done);
    kv(r, "fanout_us_avg", false, "%.0f", done ? sum / (double)done : 0.0);
    kv(r, "fanout_us_max", false, "%.0f", mx);
}

static void kv_verdict(struct report *r, const struct tally *t)
{
    kv(r, "conns_ready", false, "%d", atomic_load(&R.ready));
    kv(r, "lost", false, "%" PRIu64, t->lost);
    kv(r, "dup", false, "%" PRIu64, t->dup);
    kv(r, "ooo", false, "%" PRIu64, t->ooo);
    kv(r, "bad", false, "%" PRIu64, t->bad);
    kv(r, "result", true, "%s", t->result);
}

/* The human summary on stderr: the counts, then why the run failed if it did. */
static void print_summary(const struct opts *o, const struct tally *t)
{
    fprintf(stderr, "%s %s: ", scenario_names[o->sc], t->result);
    if (o->sc == SC_QUEUE || o->sc == SC_PERSISTENT || o->sc == SC_TOPIC || o->sc == SC_RPC)
        fprintf(stderr, "%" PRIu64 " of %" PRIu64 " deliveries in %.3f s = %.0f msg/s, %.1f MB/s"
                " payload; ",
                t->unique, R.expected, t->secs, t->secs > 0 ? (double)t->unique / t->secs : 0,
                t->secs > 0 ? (double)t->unique * (double)o->size / t->secs / 1e6 : 0);
    else
        fprintf(stderr, "%" PRIu64 " of %" PRIu64 " deliveries; ", t->unique, R.expected);
    fprintf(stderr, "lost %" PRIu64 ", duplicated %" PRIu64 ", out of order %" PRIu64
            ", malformed %" PRIu64 "\n", t->lost, t->dup, t->ooo, t->bad);
    if (t->failed)
        fprintf(stderr, "loadgen: %s\n", R.errmsg);
    if ((t->lost || t->dup) && o->sc != SC_CONNS) {
        fprintf(stderr, "loadgen: deliveries per consumer:");
        int shown = 0;
        for (int i = 0; i < R.nconns && shown < 16; i++) {
            if (R.conns[i].role == ROLE_CONSUMER) {
                fprintf(stderr, " %" PRIu64, R.conns[i].got);
                shown++;
            }
        }
        fputc('\n', stderr);
    }
    if ((t->failed || t->timed_out) && !t->t_go)
        fprintf(stderr, "loadgen: %d of %d connections were ready (CONNECTED, and consumers "
                "subscribed)\n", atomic_load(&R.ready), R.needed);
    if (t->timed_out)
        fprintf(stderr, "loadgen: timed out after %.0f s (phase: %s)\n", o->timeout,
                R.t_go ? "running" : "connecting/subscribing");
    if (atomic_load(&R.idle_end))
        fprintf(stderr, "loadgen: producers were done and nothing arrived for %.1f s\n",
                o->idle);
}

/* The result line on stdout (key=value, or JSON), then the summary. Returns the exit
 * status: 0 for OK and OK_UNORDERED, 1 otherwise. */
int report__print(void)
{
    const struct opts *o = &R.o;
    struct report r = {.len = 0};
    struct tally t = tally_up();
    kv_shape(&r, o);
    if (o->sc != SC_CONNS && o->sc != SC_LATENCY)
        kv_throughput(&r, o, &t);
    if (o->sc == SC_LATENCY)
        kv_latency(&r, o);
    if (o->sc == SC_CONNS)
        kv_conns(&r, o);
    kv_verdict(&r, &t);

    if (o->json)
        printf("%s}\n", r.json);
    else
        printf("%s\n", r.text);
    fflush(stdout);
    print_summary(o, &t);
    return strcmp(t.result, "OK") == 0 || strcmp(t.result, "OK_UNORDERED") == 0 ? 0 : 1;
}
