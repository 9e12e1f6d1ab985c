/* transport_tcp.c: the plain TCP byte stream under a conn.
 *
 * The only file that touches a conn's stream handle; conn.c sees bytes, write
 * completions and close completions. Another transport (WebSocket) provides the same
 * transport_ops and calls the same conn__on_* entry points.
 */
#include "internal.h"

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn__alloc(h->data, buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    conn__on_read(s->data, nread);
}

static void on_write(uv_write_t *req, int status)
{
    conn__on_written(req->data, status);
}

static void on_close(uv_handle_t *h)
{
    conn__on_handle_closed(h->data);
}

static void tcp_init(conn *c, uv_loop_t *loop)
{
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
}

static int tcp_accept(conn *c, uv_stream_t *server)
{
    int rc = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (rc == 0)
        uv_tcp_nodelay(&c->tcp, 1); /* we gather writes ourselves */
    return rc;
}

static int tcp_read_start(conn *c)
{
    return uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void tcp_read_stop(conn *c)
{
    uv_read_stop((uv_stream_t *)&c->tcp);
}

static int tcp_write(conn *c, const uv_buf_t *bufs, unsigned nbufs)
{
    c->wreq.data = c;
    return uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, nbufs, on_write);
}

static void tcp_close(conn *c)
{
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static const transport_ops tcp_ops = {
    .init = tcp_init,
    .accept = tcp_accept,
    .read_start = tcp_read_start,
    .read_stop = tcp_read_stop,
    .write = tcp_write,
    .close = tcp_close,
    .nhandles = 1,
};

const transport_ops *transport__tcp(void)
{
    return &tcp_ops;
}
