/* loadgen.c: a STOMP 1.2 load generator for a broker on loopback (queue, persistent, topic,
 * latency and conns scenarios). Non-blocking sockets, one epoll loop per thread, frames
 * batched into large writes; every body carries (producer, sequence, send time) so each run
 * counts lost, duplicated and out-of-order deliveries and fails when any are lost or doubled. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

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

enum scenario { SC_QUEUE, SC_PERSISTENT, SC_TOPIC, SC_LATENCY, SC_CONNS };
static const char *const scenario_names[] = {"queue", "persistent", "topic", "latency", "conns"};

enum pmode { PM_STREAM, PM_TIMED, PM_ROUNDS };
enum role { ROLE_CONSUMER, ROLE_PRODUCER };
enum cstate { CS_IDLE, CS_CONNECTING, CS_HANDSHAKE, CS_SUBSCRIBING, CS_READY, CS_CLOSING,
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
    char *out;
    size_t out_off, out_len, out_cap;
    /* producer */
    int pid;
    uint64_t seq;
    long outstanding;
    bool done;
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
    pthread_mutex_t err_lock;
    char errmsg[1024];
    struct conn *conns;
    int nconns;
    struct worker *workers;
    int nworkers;
};

/* The program's one run: file scope so the thread entry points and fail() reach it. */
static struct run R;

/* ---------------------------------------------------------------- small helpers */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p)
        die("out of memory");
    return p;
}

/* Printable copy of peer bytes (for error reports): escapes control bytes, at most max. */
static void dump_bytes(char *out, size_t cap, const char *s, size_t len, size_t max)
{
    size_t o = 0;
    for (size_t i = 0; i < len && i < max && o + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (ch == '\\') {
            out[o++] = '\\';
            out[o++] = '\\';
        } else if (ch < 32 || ch > 126) {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    if (len > max && o + 4 < cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o < cap ? o : cap - 1] = '\0';
}

/* Record the first failure (later ones are only counted) and end the run. */
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&R.err_lock);
    if (!atomic_load(&R.failed)) {
        va_start(ap, fmt);
        vsnprintf(R.errmsg, sizeof R.errmsg, fmt, ap);
        va_end(ap);
    }
    atomic_store(&R.failed, 1);
    pthread_mutex_unlock(&R.err_lock);
    atomic_store(&R.phase, PH_END);
}

static char *put_hex(char *p, uint64_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--) {
        p[i] = hex[v & 15];
        v >>= 4;
    }
    return p + digits;
}

static bool get_hex(const char *p, int digits, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < digits; i++) {
        char ch = p[i];
        unsigned d;
        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else
            return false;
        x = x << 4 | d;
    }
    *v = x;
    return true;
}

static char *put_dec(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static long read_rss_kb(long pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* ---------------------------------------------------------------- output buffers */

/* Room for need more bytes at out + out_len; compacts first, grows if still short. */
static char *out_reserve(struct conn *c, size_t need)
{
    if (c->out_len + need > c->out_cap && c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + need > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + need)
            cap *= 2;
        char *p = realloc(c->out, cap);
        if (!p)
            die("out of memory");
        c->out = p;
        c->out_cap = cap;
    }
    return c->out + c->out_len;
}

static void out_append(struct conn *c, const char *s, size_t n)
{
    memcpy(out_reserve(c, n), s, n);
    c->out_len += n;
}

static size_t out_pending(const struct conn *c)
{
    return c->out_len - c->out_off;
}

/* Append a header line "name:value\n" with value escaped for STOMP 1.2. */
static void out_header(struct conn *c, const char *name, const char *value, size_t vlen,
                       stomp_command cmd)
{
    size_t nlen = strlen(name);
    size_t elen = stomp_escaped_len(value, vlen, STOMP_V12, cmd);
    char *p = out_reserve(c, nlen + elen + 2);
    memcpy(p, name, nlen);
    p[nlen] = ':';
    stomp_escape(value, vlen, STOMP_V12, cmd, p + nlen + 1);
    p[nlen + 1 + elen] = '\n';
    c->out_len += nlen + elen + 2;
}

static void conn_close(struct conn *c);

/* Write as much as the socket takes. false when the connection failed. */
static bool conn_flush(struct conn *c)
{
    while (c->writable && c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->writable = false;
        } else {
            int phase = atomic_load(&R.phase);
            if (phase < PH_CLOSE || c->state != CS_CLOSING)
                fail("write to connection %d (%s): %s", c->idx,
                     c->role == ROLE_PRODUCER ? "producer" : "consumer", strerror(errno));
            conn_close(c);
            return false;
        }
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    return true;
}

/* ---------------------------------------------------------------- connections */

static void conn_close(struct conn *c)
{
    if (c->fd < 0)
        return;
    close(c->fd);
    c->fd = -1;
    if (c->state != CS_READY && c->state != CS_CLOSING && c->state != CS_CLOSED &&
        c->w->inflight > 0)
        c->w->inflight--;
    c->state = CS_CLOSED;
    atomic_fetch_sub(&R.open_total, 1);
}

static void conn_open(struct conn *c)
{
    int fd = socket(R.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail("socket: %s", strerror(errno));
        return;
    }
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) {
        fail("setsockopt TCP_NODELAY: %s", strerror(errno));
        close(fd);
        return;
    }
    c->fd = fd;
    c->state = CS_CONNECTING;
    c->writable = false;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(c->w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        fail("epoll_ctl: %s", strerror(errno));
        return;
    }
    int64_t zero = 0;
    atomic_compare_exchange_strong(&R.t_connect0, &zero, now_ns());
    if (connect(fd, (struct sockaddr *)&R.addr, R.addrlen) < 0 && errno != EINPROGRESS) {
        fail("connect: %s", strerror(errno));
        return;
    }
    c->w->inflight++;
}

static void send_connect(struct conn *c)
{
    out_append(c, "CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n",
               strlen("CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n"));
    /* CONNECT headers are never escaped; --login/--passcode were checked for CR and LF. */
    if (R.o.login) {
        out_append(c, "login:", 6);
        out_append(c, R.o.login, strlen(R.o.login));
        out_append(c, "\n", 1);
    }
    if (R.o.passcode) {
        out_append(c, "passcode:", 9);
        out_append(c, R.o.passcode, strlen(R.o.passcode));
        out_append(c, "\n", 1);
    }
    out_append(c, "\n", 2); /* blank line and the NUL */
    c->state = CS_HANDSHAKE;
}

static void became_ready(struct conn *c)
{
    c->state = CS_READY;
    if (c->w->inflight > 0)
        c->w->inflight--;
    atomic_fetch_add(&R.ready, 1);
}

static void send_subscribes(struct conn *c)
{
    static const char *const ackname[] = {"auto", "client-individual"};
    c->subs_pending = 0;
    for (int i = 0; i < R.ndests; i++) {
        char id[32];
        int n = snprintf(id, sizeof id, "s%d", i);
        out_append(c, "SUBSCRIBE\n", 10);
        out_header(c, "id", id, (size_t)n, STOMP_CMD_SUBSCRIBE);
        out_header(c, "destination", R.dests[i], strlen(R.dests[i]), STOMP_CMD_SUBSCRIBE);
        out_header(c, "ack", ackname[R.o.client_ack], strlen(ackname[R.o.client_ack]),
                   STOMP_CMD_SUBSCRIBE);
        out_header(c, "receipt", id, (size_t)n, STOMP_CMD_SUBSCRIBE);
        out_append(c, "\n", 2);
        c->subs_pending++;
    }
    c->state = CS_SUBSCRIBING;
}

static bool producer_can_send(const struct conn *c)
{
    if (c->state != CS_READY || c->seq >= R.o.messages || !atomic_load(&R.go))
        return false;
    if (R.window > 0 && c->outstanding >= R.window)
        return false;
    return true;
}

static void append_send(struct conn *c, int64_t ts)
{
    uint64_t i = c->seq;
    bool receipt = (R.receipt_every > 0 && (i + 1) % (uint64_t)R.receipt_every == 0) ||
                   i + 1 == R.o.messages;
    char *p = out_reserve(c, c->prefix_len + 40 + R.o.size);
    memcpy(p, c->prefix, c->prefix_len);
    p += c->prefix_len;
    if (receipt) {
        memcpy(p, "receipt:r", 9);
        p = put_dec(p + 9, i);
        *p++ = '\n';
        c->outstanding++;
    }
    *p++ = '\n';
    p = put_hex(p, (uint64_t)c->pid, 4);
    p = put_hex(p, i, 12);
    p = put_hex(p, (uint64_t)ts, 16);
    memcpy(p, R.pad, R.o.size - BODY_MIN);
    p += R.o.size - BODY_MIN;
    *p++ = '\0';
    c->out_len = (size_t)(p - c->out);
    c->seq++;
}

/* Stream mode: fill up to OUT_HWM while the window allows, write, repeat while writable. */
static void producer_pump(struct conn *c)
{
    if (R.pmode == PM_STREAM) {
        for (;;) {
            bool more = producer_can_send(c);
            while (more && out_pending(c) < OUT_HWM) {
                append_send(c, 0);
                more = producer_can_send(c);
            }
            if (!conn_flush(c) || !c->writable || !more)
                break;
        }
    } else if (R.pmode == PM_ROUNDS) {
        /* one message per round, once every subscriber had the previous one */
        if (producer_can_send(c) && atomic_load(&R.rounds_done) == c->seq) {
            uint64_t r = c->seq;
            int64_t t = now_ns();
            R.round_sent_ns[r] = t;
            append_send(c, t);
        }
        (void)conn_flush(c);
    } else {
        (void)conn_flush(c);
    }
}

static void producer_check_done(struct conn *c)
{
    if (!c->done && c->seq >= R.o.messages && c->outstanding == 0) {
        c->done = true;
        atomic_fetch_add(&R.producers_done, 1);
    }
}

/* Deliveries counted locally during one read and published after it: shared counters and
 * the clock are touched once per read, not once per message. */
struct rx_batch {
    uint64_t received, unique;
};

static void on_message(struct conn *c, const stomp_frame *f, struct rx_batch *b)
{
    uint64_t pid, seq, ts;
    b->received++;
    c->got++;
    if (R.o.client_ack) {
        size_t alen;
        const char *ack = stomp_frame_header(f, "ack", &alen);
        if (!ack) {
            fail("MESSAGE without an ack header on a client-individual subscription");
            return;
        }
        out_append(c, "ACK\n", 4);
        out_header(c, "id", ack, alen, STOMP_CMD_ACK);
        out_append(c, "\n", 2);
    }
    if (f->body_len != R.o.size || !get_hex(f->body, 4, &pid) || !get_hex(f->body + 4, 12, &seq) ||
        !get_hex(f->body + 16, 16, &ts) || pid >= (uint64_t)R.o.producers ||
        seq >= R.o.messages ||
        (R.o.size > BODY_MIN && f->body[f->body_len - 1] != R.pad[R.o.size - BODY_MIN - 1])) {
        if (atomic_fetch_add(&R.bad, 1) == 0) {
            char d[256];
            dump_bytes(d, sizeof d, f->body, f->body_len, 64);
            fprintf(stderr, "loadgen: first bad body (%zu bytes, expected %zu): %s\n",
                    f->body_len, R.o.size, d);
        }
        return;
    }
    size_t word = ((size_t)c->group * (size_t)R.o.producers + pid) * R.words + seq / 64;
    uint64_t mask = (uint64_t)1 << (seq % 64);
    uint64_t old = atomic_fetch_or(&R.bits[word], mask);
    if (old & mask) {
        atomic_fetch_add(&R.dup, 1);
    } else {
        b->unique++;
        if (R.lat_ns)
            R.lat_ns[seq] = (uint64_t)(now_ns() - (int64_t)ts);
        if (R.round_got && atomic_fetch_add(&R.round_got[seq], 1) + 1 == (uint64_t)R.groups) {
            atomic_store(&R.round_done_ns[seq], now_ns());
            atomic_fetch_add(&R.rounds_done, 1);
        }
    }
    if (c->last[pid] != NONE && seq < c->last[pid])
        atomic_fetch_add(&R.ooo, 1);
    if (c->last[pid] == NONE || seq > c->last[pid])
        c->last[pid] = seq;
}

static void on_frame(struct conn *c, const stomp_frame *f, struct rx_batch *b)
{
    switch (f->cmd) {
    case STOMP_CMD_MESSAGE:
        if (c->role != ROLE_CONSUMER) {
            fail("MESSAGE on producer connection %d", c->idx);
            return;
        }
        on_message(c, f, b);
        return;
    case STOMP_CMD_CONNECTED: {
        if (c->state != CS_HANDSHAKE) {
            fail("unexpected CONNECTED on connection %d", c->idx);
            return;
        }
        size_t vlen;
        const char *v = stomp_frame_header(f, "version", &vlen);
        if (!v || vlen != 3 || memcmp(v, "1.2", 3) != 0) {
            fail("broker answered CONNECT (accept-version:1.2) with version:%s",
                 v ? v : "(none)");
            return;
        }
        stomp_parser_set_version(&c->parser, STOMP_V12, 0);
        if (c->role == ROLE_CONSUMER)
            send_subscribes(c);
        else
            became_ready(c);
        return;
    }
    case STOMP_CMD_RECEIPT: {
        size_t len;
        const char *id = stomp_frame_header(f, "receipt-id", &len);
        if (!id || len == 0) {
            fail("RECEIPT without receipt-id on connection %d", c->idx);
            return;
        }
        if (id[0] == 'r' && c->role == ROLE_PRODUCER) {
            if (c->outstanding <= 0) {
                fail("unexpected RECEIPT receipt-id:%s on connection %d", id, c->idx);
                return;
            }
            c->outstanding--;
            producer_check_done(c);
        } else if (id[0] == 's' && c->state == CS_SUBSCRIBING) {
            if (--c->subs_pending == 0)
                became_ready(c);
        } else if (id[0] == 'd' && c->state == CS_CLOSING) {
            conn_close(c);
        } else {
            fail("unexpected RECEIPT receipt-id:%s on connection %d", id, c->idx);
        }
        return;
    }
    case STOMP_CMD_ERROR: {
        const char *m = stomp_frame_header(f, "message", NULL);
        char d[512];
        dump_bytes(d, sizeof d, f->body, f->body_len, 200);
        fail("ERROR frame on connection %d (%s): message:%s body:%s", c->idx,
             c->role == ROLE_PRODUCER ? "producer" : "consumer", m ? m : "(none)", d);
        return;
    }
    default:
        fail("unexpected %s frame on connection %d", f->cmd_name, c->idx);
        return;
    }
}

/* hup: the peer's FIN or an error was reported, so read until EOF/EAGAIN (no new edge comes). */
static void on_readable(struct conn *c, bool hup)
{
    char *buf = c->w->rbuf;
    while (c->fd >= 0) {
        ssize_t n = read(c->fd, buf, RBUF_SIZE);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            if (c->state != CS_CLOSING)
                fail("connection %d (%s) closed by the broker%s%s", c->idx,
                     c->role == ROLE_PRODUCER ? "producer" : "consumer", n ? ": " : "",
                     n ? strerror(errno) : "");
            conn_close(c);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        size_t off = 0;
        struct rx_batch b = {0, 0};
        while (off < (size_t)n && c->fd >= 0) {
            size_t used;
            stomp_event ev = stomp_parser_feed(&c->parser, buf + off, (size_t)n - off, &used);
            off += used;
            if (ev == STOMP_EV_FRAME) {
                on_frame(c, stomp_parser_frame(&c->parser), &b);
                if (atomic_load(&R.failed))
                    return;
            } else if (ev == STOMP_EV_ERROR) {
                uint64_t at;
                stomp_err e = stomp_parser_error(&c->parser, &at);
                char d[512];
                size_t from = off > 64 ? off - 64 : 0;
                dump_bytes(d, sizeof d, buf + from, (size_t)n - from, 160);
                fail("unparsable bytes from the broker on connection %d at stream offset "
                     "%" PRIu64 ": %s; bytes around it: %s",
                     c->idx, at, stomp_strerror(e), d);
                return;
            }
        }
        if (b.received) {
            int64_t t = now_ns();
            atomic_fetch_add(&R.received, b.received);
            atomic_store(&R.t_last_rx, t);
            uint64_t before = atomic_fetch_add(&R.unique, b.unique);
            if (before < R.expected && before + b.unique >= R.expected)
                atomic_store(&R.t_last, t);
        }
        if (c->fd < 0)
            return;
        /* acks (consumers) and the next batch (producers, window reopened) */
        if (c->role == ROLE_PRODUCER)
            producer_pump(c);
        else if (!conn_flush(c))
            return;
        /* a short read emptied the socket; new bytes raise a new edge */
        if ((size_t)n < RBUF_SIZE && !hup)
            break;
    }
}

static void on_writable(struct conn *c)
{
    if (c->state == CS_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            fail("connect to %s:%d: %s", R.o.host, R.o.port, strerror(err));
            conn_close(c);
            return;
        }
        send_connect(c);
    }
    c->writable = true;
    if (c->role == ROLE_PRODUCER)
        producer_pump(c);
    else
        (void)conn_flush(c);
}

/* ---------------------------------------------------------------- run control */

static void maybe_advance(void)
{
    int64_t t = now_ns();
    int phase = atomic_load(&R.phase);
    if (phase < PH_CLOSE && t >= R.t_deadline) {
        atomic_store(&R.timed_out, 1);
        atomic_store(&R.phase, PH_END);
        return;
    }
    if (phase == PH_SETUP) {
        if (atomic_load(&R.ready) >= R.needed) {
            int expect = PH_SETUP;
            if (atomic_compare_exchange_strong(&R.phase, &expect, PH_RUN)) {
                atomic_store(&R.t_ready, t);
                if (R.o.pid > 0)
                    R.rss_after = read_rss_kb(R.o.pid);
                atomic_store(&R.t_go, now_ns());
                atomic_store(&R.go, 1);
            }
        }
    } else if (phase == PH_RUN) {
        bool producers = atomic_load(&R.producers_done) == R.o.producers;
        bool all = producers && atomic_load(&R.unique) >= R.expected;
        /* producers are done (the broker took every message) and nothing has arrived
         * for --idle seconds: the missing ones are lost */
        int64_t last = atomic_load(&R.t_last_rx);
        if (last == 0)
            last = atomic_load(&R.t_go);
        bool idle = producers && !all && t - last > (int64_t)(R.o.idle * 1e9);
        if (all || idle) {
            int expect = PH_RUN;
            if (idle)
                atomic_store(&R.idle_end, 1);
            atomic_store(&R.t_linger_end, t + (int64_t)(R.o.linger * 1e9));
            atomic_compare_exchange_strong(&R.phase, &expect, PH_LINGER);
        }
    } else if (phase == PH_LINGER) {
        if (t >= atomic_load(&R.t_linger_end)) {
            int expect = PH_LINGER;
            atomic_store(&R.t_close_end, t + 2000000000);
            atomic_compare_exchange_strong(&R.phase, &expect, PH_CLOSE);
        }
    } else if (phase == PH_CLOSE) {
        if (t >= atomic_load(&R.t_close_end)) {
            atomic_store(&R.phase, PH_END);
        }
    }
}

static void worker_close_all(struct worker *w)
{
    for (int i = 0; i < w->nconns; i++) {
        struct conn *c = w->conns[i];
        if (c->fd < 0) {
            if (c->state != CS_CLOSED) {
                c->state = CS_CLOSED;
                atomic_fetch_sub(&R.open_total, 1);
            }
            continue;
        }
        if (c->state == CS_READY || c->state == CS_SUBSCRIBING) {
            out_append(c, "DISCONNECT\nreceipt:d\n\n", 23);
            c->state = CS_CLOSING;
            (void)conn_flush(c);
        } else if (c->state != CS_CLOSING) {
            conn_close(c);
        }
    }
}

static void worker_tick(struct worker *w)
{
    maybe_advance();
    int phase = atomic_load(&R.phase);
    if (phase == PH_SETUP || phase == PH_RUN) {
        while (w->next_open < w->nconns && w->inflight < w->max_inflight &&
               !atomic_load(&R.failed))
            conn_open(w->conns[w->next_open++]);
    }
    if (atomic_load(&R.go) && phase <= PH_LINGER) {
        if (w->tfd >= 0 && !w->timer_armed) {
            long ns = 1000000000L / R.o.rate;
            struct itimerspec its = {.it_interval = {ns / 1000000000L, ns % 1000000000L},
                                     .it_value = {0, 1}};
            if (timerfd_settime(w->tfd, 0, &its, NULL) < 0)
                fail("timerfd_settime: %s", strerror(errno));
            w->timer_armed = true;
        }
        for (int i = 0; i < w->nproducers; i++) {
            struct conn *c = w->producers[i];
            if (c->fd >= 0 && c->writable && !c->done)
                producer_pump(c);
        }
    }
    if (phase == PH_CLOSE && !w->close_sent) {
        w->close_sent = true;
        worker_close_all(w);
    }
}

static void on_timer(struct worker *w)
{
    uint64_t n;
    if (read(w->tfd, &n, sizeof n) != (ssize_t)sizeof n)
        return;
    for (int i = 0; i < w->nproducers; i++) {
        struct conn *c = w->producers[i];
        if (c->fd < 0)
            continue;
        /* a late tick sends what is due, one frame each, each with its own timestamp */
        for (uint64_t k = 0; k < n && producer_can_send(c); k++) {
            append_send(c, now_ns());
            if (!conn_flush(c))
                break;
        }
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[256];
    while (atomic_load(&R.phase) != PH_END) {
        int phase = atomic_load(&R.phase);
        int timeout = 10;
        if (phase == PH_SETUP || R.pmode == PM_ROUNDS || R.nworkers > 1)
            timeout = 1;
        int n = epoll_wait(w->ep, evs, 256, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail("epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == w) {
                on_timer(w);
                continue;
            }
            struct conn *c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            if (c->state == CS_CONNECTING) {
                on_writable(c);
                if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                    on_readable(c, true);
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
                on_readable(c, (evs[i].events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) != 0);
            if (c->fd >= 0 && (evs[i].events & EPOLLOUT))
                on_writable(c);
        }
        worker_tick(w);
        if (atomic_load(&R.phase) == PH_CLOSE && atomic_load(&R.open_total) == 0)
            atomic_store(&R.phase, PH_END);
    }
    for (int i = 0; i < w->nconns; i++)
        if (w->conns[i]->fd >= 0)
            conn_close(w->conns[i]);
    return NULL;
}

/* ---------------------------------------------------------------- report */

struct report {
    char text[4096];
    size_t len;
    char json[4096];
    size_t jlen;
};

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
    if (o->sc == SC_QUEUE || o->sc == SC_PERSISTENT) {
        kv(r, "queues", false, "%d", R.ndests);
        kv(r, "receipt_every", false, "%ld", R.receipt_every);
        kv(r, "window", false, "%ld", R.window);
    }
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
    if (o->sc == SC_QUEUE || o->sc == SC_PERSISTENT || o->sc == SC_TOPIC)
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
static int report(void)
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

/* ---------------------------------------------------------------- setup */

static void usage(FILE *f)
{
    fprintf(f,
"usage: loadgen [options]\n"
"Load and verify a STOMP 1.2 broker on loopback. Prints one result line on stdout\n"
"(key=value, or JSON with --json) and a summary on stderr. Exit status: 0 OK,\n"
"1 FAILED or TIMEOUT (lost, duplicated or malformed messages, broker error), 2 usage.\n"
"\n"
"  --scenario NAME      queue | persistent | topic | latency | conns (default queue)\n"
"  --host ADDR          broker address, 127.0.0.0/8 or ::1 only (default 127.0.0.1)\n"
"  --port N             broker port (default 61613)\n"
"  -p, --producers N    producers (queue, persistent; default 1; others use 1)\n"
"  -c, --consumers N    consumers (queue, persistent; default 1)\n"
"  -k, --subscribers N  topic subscribers (topic; default 4)\n"
"  -m, --conns N        subscribed connections (conns; default 1000, max 100000)\n"
"  -n, --messages N     messages per producer (default: queue 1000000, persistent\n"
"                       100000, topic 100000, latency 10000, conns 5 rounds)\n"
"  -s, --size N         body bytes, at least 32 (default 100)\n"
"  --ack MODE           auto | client-individual (ACK each by its ack header; default auto)\n"
"  --queue-per-producer each producer sends to its own queue; every consumer subscribes\n"
"                       to all of them (default: one queue)\n"
"  --receipt-every K    a receipt on every K-th SEND (and the last); 0 = only the last\n"
"                       (default 100; persistent 1; latency and conns 0)\n"
"  --window W           at most W receipts outstanding per producer; 0 = unbounded\n"
"                       (default 10; persistent 256)\n"
"  --persistent         add persistent:true to SEND (implied by --scenario persistent)\n"
"  --rate R             latency: messages per second, one frame at a time (default 1000)\n"
"  --pid PID            the broker's pid: its VmRSS is read before connecting and once\n"
"                       every connection is ready (reported by conns; default none)\n"
"  --concurrency N      connections being opened at once (default 256)\n"
"  --threads N          event-loop threads, at most one per core (default 1)\n"
"  --dest NAME          destination (base name with --queue-per-producer, which adds\n"
"                       -<n>); topics need the /topic/ prefix (default /queue/lg-<pid>,\n"
"                       or /topic/lg-<pid> for topic and conns, <pid> being loadgen's)\n"
"  --login S, --passcode S   credentials for CONNECT (default none)\n"
"  --timeout SECS       bound on the whole run (default 60); on expiry report and fail\n"
"  --idle SECS          end early when producers are done and nothing arrives for this\n"
"                       long; the rest counts as lost (default 5)\n"
"  --linger SECS        keep reading after the last expected delivery, to catch\n"
"                       duplicates (default 0.2; not part of the timing)\n"
"  --strict-order       out-of-order deliveries fail the run too (default: reported as\n"
"                       result=OK_UNORDERED with exit status 0)\n"
"  --json               print the result line as one JSON object\n"
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

static void resolve(void)
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
    {"rate", 0, ARG_LONG, FIELD(rate), 1, 1000000},
    {"pid", 0, ARG_LONG, FIELD(pid), 1, INT_MAX},
    {"concurrency", 0, ARG_INT, FIELD(concurrency), 1, 100000},
    {"threads", 0, ARG_INT, FIELD(threads), 1, MAX_CORES},
    {"dest", 0, ARG_STR, FIELD(dest), 0, 0},
    {"login", 0, ARG_STR, FIELD(login), 0, 0},
    {"passcode", 0, ARG_STR, FIELD(passcode), 0, 0},
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
    static const long def_messages[] = {1000000, 100000, 100000, 10000, 5};
    if (o->messages == 0)
        o->messages = (uint64_t)def_messages[o->sc];
    if (o->sc == SC_PERSISTENT)
        o->persistent_flag = true;
    if (o->sc != SC_QUEUE && o->sc != SC_PERSISTENT) {
        o->producers = 1;
        o->queue_per_producer = false;
    }
}

static void parse_args(int argc, char **argv)
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

/* Producer pacing, receipts and window: the scenario's defaults unless given. */
static void choose_pacing(const struct opts *o)
{
    R.pmode = o->sc == SC_LATENCY ? PM_TIMED : o->sc == SC_CONNS ? PM_ROUNDS : PM_STREAM;
    R.receipt_every = o->receipt_every >= 0 ? o->receipt_every
                      : o->sc == SC_PERSISTENT ? 1
                      : R.pmode == PM_STREAM   ? 100
                                               : 0;
    R.window = o->window >= 0 ? o->window : o->sc == SC_PERSISTENT ? 256 : 10;
    if (R.pmode == PM_ROUNDS)
        R.window = 0;
}

/* The subscribing connections: topic's subscribers, conns' connections, latency's one
 * consumer or the queue's consumers. */
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
    return consumers;
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
    R.expected = o->messages * (uint64_t)o->producers * (uint64_t)R.groups;
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
    w->producers[w->nproducers++] = c;
    const char *d = R.dests[R.ndests == 1 ? 0 : c->pid];
    char len[32];
    snprintf(len, sizeof len, "%zu", R.o.size);
    size_t cap = 64 + stomp_escaped_len(d, strlen(d), STOMP_V12, STOMP_CMD_SEND);
    c->prefix = xcalloc(cap, 1);
    char *p = c->prefix;
    p += sprintf(p, "SEND\ndestination:");
    p += stomp_escape(d, strlen(d), STOMP_V12, STOMP_CMD_SEND, p);
    p += sprintf(p, "\ncontent-length:%s\n%s", len,
                 R.o.persistent_flag ? "persistent:true\n" : "");
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

static void setup(void)
{
    struct opts *o = &R.o;
    bool topic = o->sc == SC_TOPIC || o->sc == SC_CONNS;
    choose_pacing(o);
    int consumers = count_consumers(o);
    alloc_tracking(o, consumers, topic);
    make_dests(o, topic);
    alloc_bodies_and_timings(o);
    R.nconns = consumers + o->producers;
    R.needed = R.nconns;
    atomic_store(&R.open_total, R.nconns);
    R.conns = xcalloc((size_t)R.nconns, sizeof *R.conns);
    raise_fd_limit();
    make_workers(o);
    make_conns(consumers, topic);
}

int main(int argc, char **argv)
{
    if (pthread_mutex_init(&R.err_lock, NULL) != 0)
        die("pthread_mutex_init failed");
    parse_args(argc, argv);
    resolve();
    setup();
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        die("signal: %s", strerror(errno));
    if (R.o.pid > 0) {
        R.rss_before = read_rss_kb(R.o.pid);
        if (R.rss_before < 0)
            die("cannot read VmRSS of pid %ld", R.o.pid);
    }
    R.t_deadline = now_ns() + (int64_t)(R.o.timeout * 1e9);
    for (int i = 1; i < R.nworkers; i++) {
        int rc = pthread_create(&R.workers[i].thread, NULL, worker_main, &R.workers[i]);
        if (rc != 0)
            die("pthread_create: %s", strerror(rc));
    }
    worker_main(&R.workers[0]);
    for (int i = 1; i < R.nworkers; i++) {
        int rc = pthread_join(R.workers[i].thread, NULL);
        if (rc != 0)
            die("pthread_join: %s", strerror(rc));
    }
    int status = report();
    for (int i = 0; i < R.nconns; i++) {
        stomp_parser_free(&R.conns[i].parser);
        free(R.conns[i].out);
        free(R.conns[i].last);
        free(R.conns[i].prefix);
    }
    for (int i = 0; i < R.nworkers; i++) {
        close(R.workers[i].ep);
        if (R.workers[i].tfd >= 0)
            close(R.workers[i].tfd);
        free(R.workers[i].rbuf);
        free(R.workers[i].conns);
        free(R.workers[i].producers);
    }
    for (int i = 0; i < R.ndests; i++)
        free(R.dests[i]);
    free(R.dests);
    free(R.pad);
    free(R.bits);
    free(R.lat_ns);
    free(R.round_got);
    free(R.round_sent_ns);
    free(R.round_done_ns);
    free(R.conns);
    free(R.workers);
    return status;
}
