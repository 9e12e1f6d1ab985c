/* relay.c: the "relay ceiling", a trivial single-threaded epoll STOMP 1.2 server that does only
 * what a 1-producer/1-consumer auto-ack queue run needs (CONNECT, one SUBSCRIBE, SEND -> MESSAGE,
 * RECEIPT, DISCONNECT), with batched writes and no broker features. Shows the loopback limit a
 * real broker can approach. Test-only flags drop, duplicate or reorder one message. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stomp.h"

#define RBUF_SIZE (256u * 1024)

struct rconn {
    int fd;
    bool connected; /* CONNECT seen */
    bool closing;   /* close once the output is flushed */
    bool dead;      /* closed; freed at the end of the loop turn */
    bool dirty;     /* on the flush list */
    bool paused;    /* not reading: the subscriber is over the high-water mark */
    bool want_out;  /* EPOLLOUT registered */
    stomp_parser parser;
    char *out;
    size_t out_off, out_len, out_cap;
    struct rconn *next, *prev; /* all connections */
    struct rconn *next_dirty;
    struct rconn *next_dead;
};

struct relay {
    int lfd, ep;
    size_t hwm;
    long drop_nth, dup_nth, swap_nth;
    struct rconn *all;
    struct rconn *dirty;
    struct rconn *dead;
    struct rconn *sub;
    char *sub_id; /* escaped, for MESSAGE frames */
    size_t sub_id_len;
    char *dest, *dest_esc; /* the last destination, raw and escaped */
    size_t dest_len, dest_esc_len;
    bool paused;
    uint64_t sends, delivered, no_subscriber, msg_id;
    char *held; /* --swap: the held MESSAGE, already encoded */
    size_t held_len, held_cap;
    char *rbuf;
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fputs("relay: out of memory\n", stderr);
        exit(1);
    }
    return q;
}

/* ---------------------------------------------------------------- output */

static char *out_reserve(struct rconn *c, size_t need)
{
    if (c->out_len + need > c->out_cap && c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + need > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 65536;
        while (cap < c->out_len + need)
            cap *= 2;
        c->out = xrealloc(c->out, cap);
        c->out_cap = cap;
    }
    return c->out + c->out_len;
}

static void out_append(struct rconn *c, const char *s, size_t n)
{
    memcpy(out_reserve(c, n), s, n);
    c->out_len += n;
}

static void out_escaped(struct rconn *c, const char *s, size_t n, stomp_command cmd)
{
    size_t e = stomp_escaped_len(s, n, STOMP_V12, cmd);
    stomp_escape(s, n, STOMP_V12, cmd, out_reserve(c, e));
    c->out_len += e;
}

static void mark_dirty(struct relay *r, struct rconn *c)
{
    if (!c->dirty && !c->dead) {
        c->dirty = true;
        c->next_dirty = r->dirty;
        r->dirty = c;
    }
}

static void update_events(struct relay *r, struct rconn *c)
{
    struct epoll_event ev = {.events = (c->paused ? 0 : EPOLLIN) | (c->want_out ? EPOLLOUT : 0),
                             .data.ptr = c};
    if (epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        fprintf(stderr, "relay: epoll_ctl: %s\n", strerror(errno));
}

static void conn_kill(struct relay *r, struct rconn *c)
{
    if (c->dead)
        return;
    if (r->sub == c)
        r->sub = NULL;
    close(c->fd);
    c->fd = -1;
    c->dead = true;
    c->next_dead = r->dead;
    r->dead = c;
}

static void conn_flush(struct relay *r, struct rconn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            conn_kill(r, c);
            return;
        }
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        if (c->closing) {
            conn_kill(r, c);
            return;
        }
    }
    bool want = c->out_off < c->out_len;
    if (want != c->want_out) {
        c->want_out = want;
        update_events(r, c);
    }
}

/* Stop reading senders while the subscriber is above the high-water mark; resume below
 * half of it. */
static void backpressure(struct relay *r)
{
    size_t pending = r->sub ? r->sub->out_len - r->sub->out_off : 0;
    bool pause = pending > r->hwm;
    bool resume = pending <= r->hwm / 2;
    if ((pause && !r->paused) || (resume && r->paused)) {
        r->paused = pause;
        for (struct rconn *c = r->all; c; c = c->next) {
            if (c == r->sub || c->dead || c->paused == pause)
                continue;
            c->paused = pause;
            update_events(r, c);
        }
    }
}

/* ---------------------------------------------------------------- frames */

static void send_error(struct relay *r, struct rconn *c, const char *msg)
{
    out_append(c, "ERROR\nmessage:", 14);
    out_escaped(c, msg, strlen(msg), STOMP_CMD_ERROR);
    out_append(c, "\n\n", 3);
    c->closing = true;
    mark_dirty(r, c);
}

static void send_receipt(struct relay *r, struct rconn *c, const stomp_frame *f)
{
    size_t len;
    const char *id = stomp_frame_header(f, "receipt", &len);
    if (!id)
        return;
    out_append(c, "RECEIPT\nreceipt-id:", 19);
    out_escaped(c, id, len, STOMP_CMD_RECEIPT);
    out_append(c, "\n\n", 3);
    mark_dirty(r, c);
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

#define PUT(p, lit) (memcpy(p, lit, sizeof lit - 1), p + sizeof lit - 1)

/* Encode a MESSAGE into c's output: one reservation, the escaped destination cached (a
 * run sends to one destination). */
static void put_message(struct relay *r, struct rconn *c, const char *dest, size_t dlen,
                        const char *body, size_t blen)
{
    if (dlen != r->dest_len || memcmp(dest, r->dest, dlen) != 0) {
        size_t e = stomp_escaped_len(dest, dlen, STOMP_V12, STOMP_CMD_MESSAGE);
        r->dest = xrealloc(r->dest, dlen + 1);
        r->dest_esc = xrealloc(r->dest_esc, e + 1);
        memcpy(r->dest, dest, dlen);
        r->dest_len = dlen;
        stomp_escape(dest, dlen, STOMP_V12, STOMP_CMD_MESSAGE, r->dest_esc);
        r->dest_esc_len = e;
    }
    char *p0 = out_reserve(c, 96 + r->dest_esc_len + r->sub_id_len + blen);
    char *p = PUT(p0, "MESSAGE\ndestination:");
    memcpy(p, r->dest_esc, r->dest_esc_len);
    p = PUT(p + r->dest_esc_len, "\nmessage-id:");
    p = put_dec(p, ++r->msg_id);
    p = PUT(p, "\nsubscription:");
    memcpy(p, r->sub_id, r->sub_id_len);
    p = PUT(p + r->sub_id_len, "\ncontent-length:");
    p = put_dec(p, blen);
    p = PUT(p, "\n\n");
    memcpy(p, body, blen);
    p[blen] = '\0';
    c->out_len += (size_t)(p + blen + 1 - p0);
}

static void on_send(struct relay *r, struct rconn *c, const stomp_frame *f)
{
    size_t dlen;
    const char *dest = stomp_frame_header(f, "destination", &dlen);
    if (!dest) {
        send_error(r, c, "SEND without destination");
        return;
    }
    uint64_t n = ++r->sends;
    struct rconn *s = r->sub;
    if (!s) {
        r->no_subscriber++;
    } else if ((long)n == r->drop_nth) {
        /* test only: lose this one */
    } else if ((long)n == r->swap_nth) {
        /* test only: hold this one back and deliver it after the next */
        size_t before = s->out_len;
        put_message(r, s, dest, dlen, f->body, f->body_len);
        r->held_len = s->out_len - before;
        if (r->held_len > r->held_cap) {
            r->held = xrealloc(r->held, r->held_len);
            r->held_cap = r->held_len;
        }
        memcpy(r->held, s->out + before, r->held_len);
        s->out_len = before;
    } else {
        put_message(r, s, dest, dlen, f->body, f->body_len);
        r->delivered++;
        if ((long)n == r->dup_nth) {
            put_message(r, s, dest, dlen, f->body, f->body_len);
            r->delivered++;
        }
        if (r->held_len) {
            out_append(s, r->held, r->held_len);
            r->held_len = 0;
            r->delivered++;
        }
        mark_dirty(r, s);
    }
    send_receipt(r, c, f);
}

static void on_frame(struct relay *r, struct rconn *c, const stomp_frame *f)
{
    if (!c->connected && f->cmd != STOMP_CMD_CONNECT && f->cmd != STOMP_CMD_STOMP) {
        send_error(r, c, "expected CONNECT");
        return;
    }
    switch (f->cmd) {
    case STOMP_CMD_SEND:
        on_send(r, c, f);
        return;
    case STOMP_CMD_CONNECT:
    case STOMP_CMD_STOMP:
        if (c->connected) {
            send_error(r, c, "already connected");
            return;
        }
        c->connected = true;
        static const char connected[] =
            "CONNECTED\nversion:1.2\nheart-beat:0,0\nserver:relay\n\n";
        out_append(c, connected, sizeof connected); /* with the NUL */
        stomp_parser_set_version(&c->parser, STOMP_V12, 0);
        mark_dirty(r, c);
        return;
    case STOMP_CMD_SUBSCRIBE: {
        size_t len;
        const char *id = stomp_frame_header(f, "id", &len);
        const char *ack = stomp_frame_header(f, "ack", NULL);
        if (!id) {
            send_error(r, c, "SUBSCRIBE without id");
            return;
        }
        if (ack && strcmp(ack, "auto") != 0) {
            send_error(r, c, "the relay supports ack:auto only");
            return;
        }
        if (r->sub) {
            send_error(r, c, "the relay supports one subscriber");
            return;
        }
        r->sub = c;
        r->sub_id_len = stomp_escaped_len(id, len, STOMP_V12, STOMP_CMD_MESSAGE);
        r->sub_id = xrealloc(r->sub_id, r->sub_id_len + 1);
        stomp_escape(id, len, STOMP_V12, STOMP_CMD_MESSAGE, r->sub_id);
        send_receipt(r, c, f);
        return;
    }
    case STOMP_CMD_UNSUBSCRIBE:
        if (r->sub == c)
            r->sub = NULL;
        send_receipt(r, c, f);
        return;
    case STOMP_CMD_DISCONNECT:
        if (r->sub == c)
            r->sub = NULL;
        send_receipt(r, c, f);
        c->closing = true;
        mark_dirty(r, c);
        return;
    default:
        send_error(r, c,
                   "the relay handles CONNECT, SUBSCRIBE, UNSUBSCRIBE, SEND, DISCONNECT only");
        return;
    }
}

static void on_readable(struct relay *r, struct rconn *c)
{
    ssize_t n = read(c->fd, r->rbuf, RBUF_SIZE);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        conn_kill(r, c);
        return;
    }
    size_t off = 0;
    while (off < (size_t)n && !c->closing && !c->dead) {
        size_t used;
        stomp_event ev = stomp_parser_feed(&c->parser, r->rbuf + off, (size_t)n - off, &used);
        off += used;
        if (ev == STOMP_EV_FRAME) {
            on_frame(r, c, stomp_parser_frame(&c->parser));
        } else if (ev == STOMP_EV_ERROR) {
            send_error(r, c, stomp_strerror(stomp_parser_error(&c->parser, NULL)));
        }
    }
}

static void on_accept(struct relay *r)
{
    for (;;) {
        int fd = accept4(r->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                fprintf(stderr, "relay: accept: %s\n", strerror(errno));
            return;
        }
        int one = 1;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
            fprintf(stderr, "relay: TCP_NODELAY: %s\n", strerror(errno));
        struct rconn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        stomp_parser_init(&c->parser, NULL, NULL, NULL);
        c->paused = r->paused;
        struct epoll_event ev = {.events = c->paused ? 0 : EPOLLIN, .data.ptr = c};
        if (epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            fprintf(stderr, "relay: epoll_ctl: %s\n", strerror(errno));
            stomp_parser_free(&c->parser);
            free(c);
            close(fd);
            continue;
        }
        c->next = r->all;
        if (r->all)
            r->all->prev = c;
        r->all = c;
    }
}

static void reap(struct relay *r)
{
    while (r->dead) {
        struct rconn *c = r->dead;
        r->dead = c->next_dead;
        if (c->prev)
            c->prev->next = c->next;
        else
            r->all = c->next;
        if (c->next)
            c->next->prev = c->prev;
        stomp_parser_free(&c->parser);
        free(c->out);
        free(c);
    }
}

/* ---------------------------------------------------------------- setup */

static void usage(FILE *f)
{
    fprintf(f,
"usage: relay [options]\n"
"A minimal STOMP 1.2 relay for measuring the loopback ceiling: CONNECT/STOMP -> CONNECTED\n"
"(always version 1.2), one SUBSCRIBE (ack:auto) at a time, SEND -> MESSAGE to that\n"
"subscriber (destination, message-id, subscription, content-length), RECEIPT when asked,\n"
"UNSUBSCRIBE, DISCONNECT. No queues: a SEND with no subscriber is dropped (counted).\n"
"Anything else gets an ERROR and a close. Prints 'relay: listening on HOST:PORT' on\n"
"stderr; runs until SIGINT or SIGTERM, then prints its counters.\n"
"\n"
"  --host ADDR   address to listen on, 127.0.0.0/8 or ::1 only (default 127.0.0.1)\n"
"  --port N      port, 0 for any free one (default 61614)\n"
"  --hwm BYTES   stop reading senders while the subscriber has more than this queued\n"
"                for output; resume below half (default 4194304)\n"
"  --drop N      test only: do not deliver the N-th SEND (1-based; default off)\n"
"  --dup N       test only: deliver the N-th SEND twice (default off)\n"
"  --swap N      test only: deliver the N-th SEND after the (N+1)-th (default off)\n"
"  -h, --help    this text\n");
}

static long parse_long(const char *s, const char *what, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "relay: %s: expected an integer in [%ld, %ld], got '%s'\n", what, min,
                max, s);
        exit(2);
    }
    return v;
}

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return false;
}

static int listen_on(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "relay: cannot resolve %s: %s\n", host, gai_strerror(rc));
        return -1;
    }
    if (!is_loopback(res->ai_addr)) {
        fprintf(stderr, "relay: refusing %s: only 127.0.0.0/8 and ::1 are allowed\n", host);
        freeaddrinfo(res);
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        fprintf(stderr, "relay: listen on %s:%s: %s\n", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char h[NI_MAXHOST], p[NI_MAXSERV];
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
        getnameinfo((struct sockaddr *)&ss, sl, h, sizeof h, p, sizeof p,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        fprintf(stderr, "relay: getsockname: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    if (ss.ss_family == AF_INET6)
        fprintf(stderr, "relay: listening on [%s]:%s\n", h, p);
    else
        fprintf(stderr, "relay: listening on %s:%s\n", h, p);
    return fd;
}

/* Options into r, host and port. --help exits 0, a bad option or argument exits 2. */
static void parse_args(int argc, char **argv, struct relay *r, const char **host,
                       const char **port)
{
    static const struct option lopts[] = {
        {"host", required_argument, NULL, 'H'}, {"port", required_argument, NULL, 'P'},
        {"hwm", required_argument, NULL, 'w'},  {"drop", required_argument, NULL, 'd'},
        {"dup", required_argument, NULL, 'u'},  {"swap", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
        switch (ch) {
        case 'H': *host = optarg; break;
        case 'P': (void)parse_long(optarg, "--port", 0, 65535); *port = optarg; break;
        case 'w': r->hwm = (size_t)parse_long(optarg, "--hwm", 1, 1L << 30); break;
        case 'd': r->drop_nth = parse_long(optarg, "--drop", 1, 1L << 40); break;
        case 'u': r->dup_nth = parse_long(optarg, "--dup", 1, 1L << 40); break;
        case 's': r->swap_nth = parse_long(optarg, "--swap", 1, 1L << 40); break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "relay: unexpected argument '%s' (see --help)\n", argv[optind]);
        exit(2);
    }
}

/* SIGINT and SIGTERM end the loop (the counters are printed); a peer that goes away must
 * not kill the relay with SIGPIPE. */
static int catch_signals(void)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 ||
        signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        fprintf(stderr, "relay: sigaction: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

/* The read buffer, the listening socket and the epoll set; -1 once reported on stderr. */
static int relay_open(struct relay *r, const char *host, const char *port)
{
    r->rbuf = malloc(RBUF_SIZE);
    if (!r->rbuf) {
        fputs("relay: out of memory\n", stderr);
        return -1;
    }
    r->lfd = listen_on(host, port);
    if (r->lfd < 0)
        return -1;
    r->ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (r->ep < 0 || epoll_ctl(r->ep, EPOLL_CTL_ADD, r->lfd, &lev) < 0) {
        fprintf(stderr, "relay: epoll: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

/* One turn's events: the listening socket has no rconn (NULL), a dead connection waits for
 * reap(), and output is only queued here: flush_dirty() writes it. */
static void dispatch(struct relay *r, const struct epoll_event *evs, int n)
{
    for (int i = 0; i < n; i++) {
        struct rconn *c = evs[i].data.ptr;
        if (!c) {
            on_accept(r);
            continue;
        }
        if (c->dead)
            continue;
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            on_readable(r, c);
        if (!c->dead && (evs[i].events & EPOLLOUT))
            mark_dirty(r, c);
    }
}

/* One batched write per connection per loop turn. */
static void flush_dirty(struct relay *r)
{
    while (r->dirty) {
        struct rconn *c = r->dirty;
        r->dirty = c->next_dirty;
        c->dirty = false;
        if (!c->dead)
            conn_flush(r, c);
    }
}

/* Runs until SIGINT or SIGTERM; -1 once an epoll_wait failure is reported. */
static int relay_loop(struct relay *r)
{
    struct epoll_event evs[64];
    while (!stop_flag) {
        int n = epoll_wait(r->ep, evs, 64, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "relay: epoll_wait: %s\n", strerror(errno));
            return -1;
        }
        dispatch(r, evs, n);
        flush_dirty(r);
        backpressure(r);
        reap(r);
    }
    return 0;
}

static void relay_close(struct relay *r)
{
    for (struct rconn *c = r->all; c; c = c->next)
        conn_kill(r, c);
    reap(r);
    close(r->ep);
    close(r->lfd);
    free(r->held);
    free(r->sub_id);
    free(r->dest);
    free(r->dest_esc);
    free(r->rbuf);
}

int main(int argc, char **argv)
{
    struct relay r = {.hwm = 4u << 20};
    const char *host = "127.0.0.1", *port = "61614";
    parse_args(argc, argv, &r, &host, &port);
    if (catch_signals() < 0 || relay_open(&r, host, port) < 0 || relay_loop(&r) < 0)
        return 1;
    fprintf(stderr, "relay: %" PRIu64 " SEND, %" PRIu64 " MESSAGE, %" PRIu64
            " without subscriber\n", r.sends, r.delivered, r.no_subscriber);
    relay_close(&r);
    return 0;
}
