/* conn.c: one non-blocking client socket, owned by one worker thread: opening it, its
 * output buffer (frames are appended, then written in pieces as large as the socket takes),
 * reading under edge-triggered epoll until the socket is empty, and closing. With --tls the
 * bytes pass through tls.c, whose handshake runs between the TCP connect and CONNECT. Every
 * frame read goes to session.c; R's atomics are the only state shared with other threads. */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loadgen.h"

/* Room for need more bytes at out + out_len; compacts first, grows if still short. */
char *conn__reserve(struct conn *c, size_t need)
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

void conn__append(struct conn *c, const char *s, size_t n)
{
    memcpy(conn__reserve(c, n), s, n);
    c->out_len += n;
}

size_t conn__pending(const struct conn *c)
{
    return c->out_len - c->out_off;
}

/* Append a header line "name:value\n" with value escaped for STOMP 1.2. */
void conn__header(struct conn *c, const char *name, const char *value, size_t vlen,
                  stomp_command cmd)
{
    size_t nlen = strlen(name);
    size_t elen = stomp_escaped_len(value, vlen, STOMP_V12, cmd);
    char *p = conn__reserve(c, nlen + elen + 2);
    memcpy(p, name, nlen);
    p[nlen] = ':';
    stomp_escape(value, vlen, STOMP_V12, cmd, p + nlen + 1);
    p[nlen + 1 + elen] = '\n';
    c->out_len += nlen + elen + 2;
}

static ssize_t io_read(struct conn *c, char *buf, size_t cap)
{
    return c->ssl ? tls__read(c, buf, cap) : read(c->fd, buf, cap);
}

static ssize_t io_write(struct conn *c, const char *buf, size_t len)
{
    return c->ssl ? tls__write(c, buf, len) : write(c->fd, buf, len);
}

/* What errno (just set by io_read or io_write) means on c. */
static const char *io_strerror(const struct conn *c, int err)
{
    return c->ssl && err == EPROTO ? c->tls_err : strerror(err);
}

/* Write as much as the socket takes. false when the connection failed. */
bool conn__flush(struct conn *c)
{
    while (c->writable && c->out_off < c->out_len) {
        ssize_t n = io_write(c, c->out + c->out_off, c->out_len - c->out_off);
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
                     c->role == ROLE_PRODUCER ? "producer" : "consumer", io_strerror(c, errno));
            conn__close(c);
            return false;
        }
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    return true;
}

/* Idempotent. A connection that closes before it was ready frees its place among the worker's
 * connections being opened. */
void conn__close(struct conn *c)
{
    if (c->fd < 0)
        return;
    if (c->ssl)
        tls__close(c);
    close(c->fd);
    c->fd = -1;
    if (c->state != CS_READY && c->state != CS_CLOSING && c->state != CS_CLOSED &&
        c->w->inflight > 0)
        c->w->inflight--;
    c->state = CS_CLOSED;
    atomic_fetch_sub(&R.open_total, 1);
}

/* Starts a non-blocking connect; EPOLLOUT tells when it is done. On failure the run fails. */
void conn__open(struct conn *c)
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

/* CS_TLS: the handshake's next step; once it is done CONNECT is queued and written.
 * false while it waits for the socket, or when it failed (the run fails). */
static bool tls_step(struct conn *c)
{
    int r = tls__handshake(c);
    if (r < 0) {
        fail("connection %d: %s", c->idx, c->tls_err);
        conn__close(c);
        return false;
    }
    if (r == 0)
        return false;
    session__connect(c);
    c->writable = true;
    return conn__flush(c);
}

/* EPOLLIN: parse every frame read, then flush the ACKs or the producer's next batch.
 * hup: the peer's FIN or an error was reported, so read until EOF/EAGAIN (no new edge comes). */
void conn__on_readable(struct conn *c, bool hup)
{
    char *buf = c->w->rbuf;
    if (c->state == CS_TLS && !tls_step(c))
        return;
    while (c->fd >= 0) {
        ssize_t n = io_read(c, buf, RBUF_SIZE);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            if (c->state != CS_CLOSING)
                fail("connection %d (%s) closed by the broker%s%s", c->idx,
                     c->role == ROLE_PRODUCER ? "producer" : "consumer", n ? ": " : "",
                     n ? io_strerror(c, errno) : "");
            conn__close(c);
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
                session__on_frame(c, stomp_parser_frame(&c->parser), &b);
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
        consumer__publish(&b);
        if (c->fd < 0)
            return;
        /* acks (consumers) and the next batch (producers, window reopened) */
        if (c->role == ROLE_PRODUCER)
            producer__pump(c);
        else if (!conn__flush(c))
            return;
        /* a short read emptied the socket; new bytes raise a new edge (TLS reads until
         * EAGAIN: OpenSSL may hold bytes the socket no longer has) */
        if ((size_t)n < RBUF_SIZE && !hup && !c->ssl)
            break;
    }
}

/* EPOLLOUT: a finished connect queues CONNECT (or starts the TLS handshake, which does);
 * then whatever is queued is written. */
void conn__on_writable(struct conn *c)
{
    if (c->state == CS_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            fail("connect to %s:%d: %s", R.o.host, R.o.port, strerror(err));
            conn__close(c);
            return;
        }
        if (!R.o.tls) {
            session__connect(c);
        } else if (tls__start(c)) {
            c->state = CS_TLS;
        } else {
            fail("connection %d: %s", c->idx, c->tls_err);
            conn__close(c);
            return;
        }
    }
    if (c->state == CS_TLS && !tls_step(c))
        return;
    c->writable = true;
    if (c->role == ROLE_PRODUCER)
        producer__pump(c);
    else
        (void)conn__flush(c);
}
