/* main.c: the "relay ceiling", a trivial single-threaded epoll STOMP 1.2 server that does only
 * what the benchmark scenarios need (proto.c: SEND -> MESSAGE, RECEIPT, ACK accepted), with
 * batched writes and no broker features. Shows the loopback limit a real broker can approach.
 * This file owns the sockets, the loop and the command line. Test-only flags drop, duplicate
 * or reorder one message. */
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

#include "relay.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
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
    relay__drop_subs(r, c);
    if (r->held_to == c)
        r->held_to = NULL;
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

/* Stop reading the connections that subscribe to nothing (the senders) while the busiest
 * subscriber has more than the high-water mark queued; resume below half of it. */
static void backpressure(struct relay *r)
{
    size_t pending = 0;
    for (struct rconn *c = r->all; c; c = c->next) {
        if (c->nsubs && !c->dead && c->out_len - c->out_off > pending)
            pending = c->out_len - c->out_off;
    }
    bool pause = pending > r->hwm;
    bool resume = pending <= r->hwm / 2;
    if ((pause && !r->paused) || (resume && r->paused)) {
        r->paused = pause;
        for (struct rconn *c = r->all; c; c = c->next) {
            if (c->nsubs || c->dead || c->paused == pause)
                continue;
            c->paused = pause;
            update_events(r, c);
        }
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
            relay__on_frame(r, c, stomp_parser_frame(&c->parser));
        } else if (ev == STOMP_EV_ERROR) {
            relay__send_error(r, c, stomp_strerror(stomp_parser_error(&c->parser, NULL)));
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
"(always version 1.2), SUBSCRIBE (ack auto, client or client-individual), SEND -> MESSAGE\n"
"(destination, message-id, [ack,] subscription, content-length) to every subscriber of a\n"
"/topic/ destination or to one subscriber in turn of any other, ACK (counted, must name a\n"
"MESSAGE sent with an ack header; nothing is redelivered), RECEIPT when asked, UNSUBSCRIBE,\n"
"DISCONNECT. No queues: a SEND with no subscriber is dropped (counted).\n"
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
            relay__mark_dirty(r, c);
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
    relay__free_dests(r);
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
            " without subscriber, %" PRIu64 " ACK\n", r.sends, r.delivered, r.no_subscriber, r.acks);
    relay_close(&r);
    return 0;
}
