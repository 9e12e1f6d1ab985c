/* loadgen.h: what the load generator's files share, and nothing outside contrib/bench/loadgen
 * includes it. It holds the options, one connection, one worker thread and the run they all
 * update, and names each file's offer to the others. Helpers from util.c keep short libc-like
 * names; everything else shared across files is <file>__<verb>. */
#ifndef LOADGEN_H
#define LOADGEN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "stomp.h"

/* Body layout: 4 hex digits producer, 12 hex digits sequence, 16 hex digits send time (ns,
 * CLOCK_MONOTONIC), then padding up to --size. */
#define BODY_MIN 32
#define OUT_HWM (256u * 1024)   /* a producer stops filling its buffer above this */
#define RBUF_SIZE (256u * 1024) /* one read */
#define NONE UINT64_MAX
#define MAX_PRODUCERS 4096
#define MAX_SUBS 10000
#define MAX_CONNS 100000

enum scenario { SC_QUEUE, SC_PERSISTENT, SC_TOPIC, SC_LATENCY, SC_CONNS, SC_RPC };
/* Indexed by enum scenario: the --scenario names, also printed in the result line. */
extern const char *const scenario_names[6];

enum pmode { PM_STREAM, PM_TIMED, PM_ROUNDS };
enum role { ROLE_CONSUMER, ROLE_PRODUCER };
enum cstate { CS_IDLE, CS_CONNECTING, CS_TLS, CS_HANDSHAKE, CS_SUBSCRIBING, CS_READY, CS_CLOSING,
              CS_CLOSED };
enum phase { PH_SETUP, PH_RUN, PH_LINGER, PH_CLOSE, PH_END };

struct opts {
    const char *host;
    int port;
    enum scenario sc;
    int producers, consumers, subscribers, conns;
    uint64_t messages; /* 0 while parsing: the scenario's default */
    size_t size;
    bool client_ack;
    bool queue_per_producer;
    long receipt_every; /* -1: scenario default */
    long window;        /* -1: scenario default */
    long rate;
    long pid;
    double timeout, idle, linger;
    int threads;
    int concurrency;
    bool json;
    bool strict_order;
    const char *dest;
    const char *login, *passcode;
    bool persistent_flag; /* persistent:true on SEND */
    bool nack_all;        /* NACK every message; count them in the dead-letter queues */
    bool fill, drain;     /* only the producers (a backlog), or only the consumers */
    bool priorities;      /* priority:<sequence mod 10> on SEND */
    bool selectors;       /* topic: even subscribers select grp = 'a' (every SEND's), odd
                             ones grp = 'b' (none) */
    int wildcards;        /* topic: subscribers take the messages through the pattern
                             <dest>.*, and hold this many patterns in all (the rest match
                             nothing); SENDs go to <dest>.x */
    bool tls;             /* STOMP over TLS (--tls, implied by --tls-ca) */
    const char *tls_ca;   /* the CAs the server's certificate must chain to */
};

struct worker;

/* One STOMP connection, owned by one worker thread: nothing in it is shared. */
struct conn {
    struct worker *w;
    int fd;
    int idx;
    enum role role;
    enum cstate state;
    bool writable;
    stomp_parser parser;
    struct ssl_st *ssl; /* --tls: from the TCP connect on */
    char tls_err[256];  /* why the last TLS call failed */
    char *out;
    size_t out_off, out_len, out_cap;
    /* producer */
    int pid;
    uint64_t seq;
    long outstanding;
    bool done;
    long awaiting;       /* rpc: requests sent whose reply has not arrived */
    uint64_t last_reply; /* rpc: highest sequence replied to, NONE before the first */
    char *prefix; /* "SEND\ndestination:...\ncontent-length:S\n[persistent:true\n]" */
    size_t prefix_len;
    /* consumer */
    int group;
    int subs_pending;
    uint64_t *last; /* per producer: highest sequence seen, NONE before the first */
    uint64_t got;
};

/* One thread's event loop and the connections it owns. */
struct worker {
    int id;
    int ep;
    int tfd; /* latency timer, -1 if none */
    bool timer_armed;
    pthread_t thread;
    struct conn **conns;
    int nconns;
    int next_open;
    int inflight; /* opened but not ready yet */
    int max_inflight;
    struct conn **producers;
    int nproducers;
    bool close_sent;
    char *rbuf;
};

/* The run, shared by every worker. Plain fields are written before the threads start (or,
 * per index, by one thread only); what several threads update is atomic. Phases:
 * SETUP (connecting, subscribing) -> RUN (every connection ready: producers go) -> LINGER
 * (all expected deliveries in, or idle: read on for duplicates) -> CLOSE (DISCONNECT with
 * receipt) -> END. A failure or the deadline jumps to END. */
struct run {
    struct opts o;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    enum pmode pmode;
    long receipt_every, window;
    int groups;
    size_t words; /* bitmap words per (group, producer) */
    _Atomic uint64_t *bits;
    char **dests; /* one per queue (1, or one per producer) */
    char **dlqs;  /* --nack-all: each queue's dead-letter queue */
    _Atomic uint64_t nacks; /* --nack-all: NACKs sent */
    int ndests;
    char *pad;    /* --size bytes of padding template */
    uint64_t expected;
    _Atomic uint64_t received, unique, dup, ooo, bad;
    _Atomic int ready;
    _Atomic int open_total; /* connections not closed yet (opened or not) */
    int needed;
    _Atomic int go;
    _Atomic int producers_done;
    _Atomic int phase;
    _Atomic int failed;
    _Atomic int timed_out;
    _Atomic int idle_end;
    _Atomic int64_t t_go, t_last, t_connect0, t_ready, t_linger_end, t_close_end,
        t_last_rx;
    int64_t t_deadline;
    long rss_before, rss_after;
    /* latency */
    uint64_t *lat_ns;
    /* rounds (conns) */
    _Atomic uint64_t *round_got;
    int64_t *round_sent_ns;
    _Atomic int64_t *round_done_ns;
    _Atomic uint64_t rounds_done;
    /* --tls */
    struct ssl_ctx_st *tls_ctx;
    _Atomic int tls_noted;
    char tls_proto[96]; /* "TLSv1.3/TLS_AES_256_GCM_SHA384": the first handshake's */
    pthread_mutex_t err_lock;
    char errmsg[1024];
    struct conn *conns;
    int nconns;
    struct worker *workers;
    int nworkers;
};

/* The program's one run, defined in main.c: global so the thread entry points and fail()
 * reach it without an argument. */
extern struct run R;

/* util.c: clock, exits, memory, hex and decimal digits, the broker's VmRSS. */
int64_t now_ns(void);
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void *xcalloc(size_t n, size_t sz);
void dump_bytes(char *out, size_t cap, const char *s, size_t len, size_t max);
char *put_hex(char *p, uint64_t v, int digits);
bool get_hex(const char *p, int digits, uint64_t *v);
char *put_dec(char *p, uint64_t v);
long read_rss_kb(long pid);

/* options.c: the command line and the broker's address. */
void options__parse(int argc, char **argv);
void options__resolve(void);

/* scenario.c: what a scenario means in connections, destinations and tracking memory. */
void scenario__setup(void);

/* conn.c: one non-blocking socket with its output buffer. */
char *conn__reserve(struct conn *c, size_t need);
void conn__append(struct conn *c, const char *s, size_t n);
size_t conn__pending(const struct conn *c);
void conn__header(struct conn *c, const char *name, const char *value, size_t vlen,
                  stomp_command cmd);
bool conn__flush(struct conn *c);
void conn__open(struct conn *c);
void conn__close(struct conn *c);
void conn__on_readable(struct conn *c, bool hup);
void conn__on_writable(struct conn *c);

/* tls.c: --tls on a connection's socket, calls shaped like read() and write(). */
void tls__setup(void);
void tls__free_ctx(void);
bool tls__start(struct conn *c);
int tls__handshake(struct conn *c);
ssize_t tls__read(struct conn *c, char *buf, size_t cap);
ssize_t tls__write(struct conn *c, const char *buf, size_t len);
void tls__close(struct conn *c);

/* session.c: the STOMP conversation on one connection. */
struct rx_batch;
void session__connect(struct conn *c);
void session__on_frame(struct conn *c, const stomp_frame *f, struct rx_batch *b);
void session__disconnect(struct conn *c);

/* producer.c: sending, paced by the scenario. */
bool producer__can_send(const struct conn *c);
void producer__pump(struct conn *c);
void producer__check_done(struct conn *c);
void producer__on_timer(struct worker *w);

/* consumer.c: checking and counting every delivery. */
/* Deliveries counted locally during one read and published after it: shared counters and
 * the clock are touched once per read, not once per message. */
struct rx_batch {
    uint64_t received, unique;
};
void consumer__on_message(struct conn *c, const stomp_frame *f, struct rx_batch *b);
void consumer__on_reply(struct conn *c, const stomp_frame *f, struct rx_batch *b);
void consumer__publish(const struct rx_batch *b);

/* worker.c: one thread's event loop and the run's phases. */
void *worker__main(void *arg);

/* report.c: the result line and the summary. Returns the exit status. */
int report__print(void);

#endif
