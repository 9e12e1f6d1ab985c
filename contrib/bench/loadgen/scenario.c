/* scenario.c: what a scenario means before the run starts: pacing defaults, which
 * connections subscribe, the destinations, the bitmaps that count every delivery, the worker
 * threads and the connections each one owns. All of it is allocated here once; afterwards
 * it is read-only, per thread, or atomic. */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "loadgen.h"

/* Producer pacing, receipts and window: the scenario's defaults unless given. */
static void choose_pacing(const struct opts *o)
{
    R.pmode = o->sc == SC_LATENCY ? PM_TIMED : o->sc == SC_CONNS ? PM_ROUNDS : PM_STREAM;
    R.receipt_every = o->receipt_every >= 0 ? o->receipt_every
                      : o->sc == SC_RPC        ? 0
                      : o->sc == SC_PERSISTENT ? 1
                      : R.pmode == PM_STREAM   ? 100
                                               : 0;
    R.window = o->window >= 0 ? o->window : o->sc == SC_PERSISTENT ? 256 : o->sc == SC_RPC ? 1 : 10;
    if (R.pmode == PM_ROUNDS)
        R.window = 0;
}

/* The subscribing connections: topic's subscribers, conns' connections, latency's one
 * consumer (also reported as c=1) or the queue's consumers. */
static int count_consumers(struct opts *o)
{
    int consumers;
    if (o->sc == SC_TOPIC)
        consumers = o->subscribers;
    else if (o->sc == SC_CONNS)
        consumers = o->conns;
    else if (o->sc == SC_LATENCY)
        consumers = 1;
    else
        consumers = o->consumers;
    if (o->sc == SC_LATENCY)
        o->consumers = 1;
    return o->fill ? 0 : consumers;
}

/* One bit per (group, producer, sequence) to find duplicates and losses: each topic
 * subscriber is a group of its own that must see every message, a queue's consumers share
 * one group. */
static void alloc_tracking(const struct opts *o, int consumers, bool topic)
{
    R.groups = topic ? consumers : 1;
    R.words = (size_t)((o->messages + 63) / 64);
    uint64_t words = (uint64_t)R.groups * (uint64_t)o->producers * R.words;
    if (words > (1ull << 31))
        die("too much to track: groups x producers x messages is over 2^37");
    R.bits = xcalloc((size_t)words, sizeof *R.bits);
    /* With --selectors only the even subscribers' selectors take the messages. */
    uint64_t takers = o->selectors ? (uint64_t)(R.groups + 1) / 2 : (uint64_t)R.groups;
    R.expected = o->fill ? 0 : o->messages * (uint64_t)o->producers * takers;
}

static void make_dests(const struct opts *o, bool topic)
{
    char base[256];
    if (o->dest)
        snprintf(base, sizeof base, "%s", o->dest);
    else
        snprintf(base, sizeof base, "/%s/lg-%ld", topic ? "topic" : "queue", (long)getpid());
    R.ndests = o->queue_per_producer ? o->producers : 1;
    R.dests = xcalloc((size_t)R.ndests, sizeof *R.dests);
    for (int i = 0; i < R.ndests; i++) {
        R.dests[i] = xcalloc(strlen(base) + 16, 1);
        if (R.ndests == 1)
            strcpy(R.dests[i], base);
        else
            sprintf(R.dests[i], "%s-%d", base, i);
    }
    if (!o->nack_all)
        return;
    R.dlqs = xcalloc((size_t)R.ndests, sizeof *R.dlqs);
    for (int i = 0; i < R.ndests; i++) {
        R.dlqs[i] = xcalloc(strlen(R.dests[i]) + 8, 1);
        sprintf(R.dlqs[i], "/queue/DLQ.%s", R.dests[i] + 7);
    }
}

/* The body's padding, and where latency and conns keep their timings. */
static void alloc_bodies_and_timings(const struct opts *o)
{
    R.pad = xcalloc(o->size, 1);
    memset(R.pad, '.', o->size);
    if (o->size > BODY_MIN)
        R.pad[o->size - BODY_MIN - 1] = '!'; /* the last body byte, checked on receipt */

    if (R.pmode == PM_TIMED) {
        R.lat_ns = xcalloc((size_t)o->messages, sizeof *R.lat_ns);
        for (uint64_t i = 0; i < o->messages; i++)
            R.lat_ns[i] = NONE;
    }
    if (R.pmode == PM_ROUNDS) {
        R.round_got = xcalloc((size_t)o->messages, sizeof *R.round_got);
        R.round_sent_ns = xcalloc((size_t)o->messages, sizeof *R.round_sent_ns);
        R.round_done_ns = xcalloc((size_t)o->messages, sizeof *R.round_done_ns);
    }
}

/* One descriptor per connection and some to spare. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)R.nconns + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        die("getrlimit: %s", strerror(errno));
    if (rl.rlim_cur < want) {
        if (rl.rlim_max < want)
            rl.rlim_max = want;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            die("cannot raise the open-file limit to %lu: %s", (unsigned long)want,
                strerror(errno));
    }
}

static void make_workers(const struct opts *o)
{
    R.nworkers = o->threads;
    if (R.nworkers > R.nconns)
        R.nworkers = R.nconns;
    R.workers = xcalloc((size_t)R.nworkers, sizeof *R.workers);
    for (int i = 0; i < R.nworkers; i++) {
        struct worker *w = &R.workers[i];
        w->id = i;
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        if (w->ep < 0)
            die("epoll_create1: %s", strerror(errno));
        w->tfd = -1;
        w->rbuf = xcalloc(RBUF_SIZE, 1);
        w->conns = xcalloc((size_t)R.nconns / (size_t)R.nworkers + 1, sizeof *w->conns);
        w->producers = xcalloc((size_t)o->producers, sizeof *w->producers);
        w->max_inflight = o->concurrency / R.nworkers;
        if (w->max_inflight < 1)
            w->max_inflight = 1;
    }
}

/* The worker's latency timer, in its epoll set; it ticks once the run starts. */
static void add_timer(struct worker *w)
{
    w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (w->tfd < 0)
        die("timerfd_create: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->tfd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
}

static void init_consumer(struct conn *c, bool topic)
{
    c->role = ROLE_CONSUMER;
    c->group = topic ? c->idx : 0;
    c->last = xcalloc((size_t)R.o.producers, sizeof *c->last);
    for (int p = 0; p < R.o.producers; p++)
        c->last[p] = NONE;
}

/* A producer's SEND frame up to its receipt header, built once: only the receipt and the
 * body differ from one SEND to the next. */
static void init_producer(struct conn *c, int consumers)
{
    struct worker *w = c->w;
    c->role = ROLE_PRODUCER;
    c->pid = c->idx - consumers;
    c->last_reply = NONE;
    w->producers[w->nproducers++] = c;
    const char *d = R.dests[R.ndests == 1 ? 0 : c->pid];
    char len[32];
    snprintf(len, sizeof len, "%zu", R.o.size);
    size_t cap = 128 + stomp_escaped_len(d, strlen(d), STOMP_V12, STOMP_CMD_SEND);
    c->prefix = xcalloc(cap, 1);
    char *p = c->prefix;
    p += sprintf(p, "SEND\ndestination:");
    p += stomp_escape(d, strlen(d), STOMP_V12, STOMP_CMD_SEND, p);
    p += sprintf(p, "%s\ncontent-length:%s\n%s%s%s%s", R.o.wildcards ? ".x" : "", len,
                 R.o.persistent_flag ? "persistent:true\n" : "", R.o.selectors ? "grp:a\n" : "",
                 R.o.sc == SC_RPC ? "reply-to:/temp-queue/r\n" : "",
                 R.o.priorities ? "priority:" : "");
    c->prefix_len = (size_t)(p - c->prefix);
    if (R.pmode == PM_TIMED && w->tfd < 0)
        add_timer(w);
}

/* Consumers first, so they subscribe before producers are opened; connections are dealt to
 * the workers in turn. */
static void make_conns(int consumers, bool topic)
{
    for (int i = 0; i < R.nconns; i++) {
        struct conn *c = &R.conns[i];
        struct worker *w = &R.workers[i % R.nworkers];
        c->w = w;
        c->fd = -1;
        c->idx = i;
        c->state = CS_IDLE;
        stomp_parser_init(&c->parser, NULL, NULL, NULL);
        w->conns[w->nconns++] = c;
        if (i < consumers)
            init_consumer(c, topic);
        else
            init_producer(c, consumers);
    }
}

/* R from R.o, before any thread starts: counts, buffers, workers, connections. */
void scenario__setup(void)
{
    struct opts *o = &R.o;
    bool topic = o->sc == SC_TOPIC || o->sc == SC_CONNS;
    choose_pacing(o);
    int consumers = count_consumers(o);
    alloc_tracking(o, consumers, topic);
    make_dests(o, topic);
    alloc_bodies_and_timings(o);
    R.nconns = consumers + (o->drain ? 0 : o->producers);
    if (o->drain) /* the backlog is there: the producers are done before the start */
        atomic_store(&R.producers_done, o->producers);
    R.needed = R.nconns;
    atomic_store(&R.open_total, R.nconns);
    R.conns = xcalloc((size_t)R.nconns, sizeof *R.conns);
    raise_fd_limit();
    make_workers(o);
    make_conns(consumers, topic);
}
