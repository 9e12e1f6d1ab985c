/* tcp.c: the STOMP byte stream over a socket: plain TCP (the socket is the stream), TLS
 * (tls.c between the socket and this file, through the same net__sock_* calls), or a
 * unix-domain socket (a libuv pipe, used through the same stream calls).
 *
 * Every completion goes to stream.c (writes, close) or to the owner (reads).
 */
#include "core.h"

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    net_stream *s = h->data;
    s->cb->alloc(s, buf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    net_stream *s = st->data;
    s->cb->read(s, nread);
}

static void on_write(uv_write_t *req, int status)
{
    net__on_written(req->data, status);
}

static void on_close(uv_handle_t *h)
{
    net__on_closed(h->data);
}

static void tcp_init(net_stream *s)
{
    uv_tcp_init(s->b->loop, &s->tcp);
    s->tcp.data = s;
}

static int tcp_accept(net_stream *s, uv_stream_t *server)
{
    int rc = uv_accept(server, (uv_stream_t *)&s->tcp);
    if (rc != 0)
        return rc;
    uv_tcp_nodelay(&s->tcp, 1); /* writes are gathered already */
    return s->tp->tls ? net__tls_attach(s, server) : 0;
}

static void unix_init(net_stream *s)
{
    uv_pipe_init(s->b->loop, &s->pipe, 0);
    s->pipe.data = s;
}

static int unix_accept(net_stream *s, uv_stream_t *server)
{
    return uv_accept(server, (uv_stream_t *)&s->pipe);
}

static int tcp_read_start(net_stream *s)
{
    return net__sock_read_start(s, on_alloc, on_read);
}

static void tcp_read_stop(net_stream *s)
{
    net__sock_read_stop(s);
}

static int tcp_write(net_stream *s, const uv_buf_t *bufs, unsigned nbufs)
{
    s->req.wreq.data = s;
    return net__sock_write(s, &s->req.wreq, bufs, nbufs, on_write);
}

static void close_now(net_stream *s)
{
    if (!uv_is_closing((uv_handle_t *)&s->tcp))
        net__sock_close(s, on_close);
}

static void on_drain_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    net_stream *s = h->data;
    *buf = uv_buf_init(s->b->net.discard, sizeof s->b->net.discard);
}

/* What the peer sends while we close is dropped; its end (or an error) ends the wait. */
static void on_drain_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    if (nread < 0)
        close_now(st->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    net_stream *s = req->data;
    if (uv_is_closing((uv_handle_t *)&s->tcp))
        return;
    if (status < 0 ||
        net__sock_read_start(s, on_drain_alloc, on_drain_read) != 0)
        close_now(s);
}

/* Graceful: the FIN goes after everything written, and the socket is closed only once the
 * peer ended too: closing with its bytes unread would reset the connection and could
 * destroy what it had not read yet (an ERROR, the last MESSAGEs). */
static void tcp_close(net_stream *s, int abort)
{
    if (abort || !uv_is_writable((uv_stream_t *)&s->tcp)) {
        close_now(s);
        return;
    }
    s->req.sreq.data = s;
    if (net__sock_shutdown(s, &s->req.sreq, on_shutdown) != 0)
        close_now(s);
}

static const net_transport tcp_ops = {
    .name = "tcp",
    .init = tcp_init,
    .accept = tcp_accept,
    .read_start = tcp_read_start,
    .read_stop = tcp_read_stop,
    .write = tcp_write,
    .close = tcp_close,
};

static const net_transport tls_ops = {
    .name = "tls",
    .tls = 1,
    .init = tcp_init,
    .accept = tcp_accept,
    .read_start = tcp_read_start,
    .read_stop = tcp_read_stop,
    .write = tcp_write,
    .close = tcp_close,
};

static const net_transport unix_ops = {
    .name = "unix",
    .init = unix_init,
    .accept = unix_accept,
    .read_start = tcp_read_start,
    .read_stop = tcp_read_stop,
    .write = tcp_write,
    .close = tcp_close,
};

const net_transport *net__unix(void)
{
    return &unix_ops;
}

const net_transport *net__tcp(void)
{
    return &tcp_ops;
}

const net_transport *net__tls(void)
{
    return &tls_ops;
}
