/* net.h: the net layer: listeners, the byte-stream transports under a connection (TCP,
 * WebSocket, either over TLS), each stream's output queue and writes, and the Flash policy
 * answer.
 *
 * Net knows bytes and sockets, not STOMP. Its owner (a session) owns each net_stream,
 * embedded in its connection, and hears from net only through net_stream_cbs; accepted
 * sockets reach the owner through the accept callback given to net__init. Transports share
 * one ops table (net_transport), so a new one (TLS) is a file of its own here.
 */
#ifndef BROKER_NET_H
#define BROKER_NET_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "broker.h"
#include "net/outq.h"

typedef struct net_stream net_stream;
typedef struct net_tls net_tls;  /* a stream's TLS session (tls.c) */
struct ssl_ctx_st;               /* OpenSSL's SSL_CTX */
struct bio_method_st;            /* OpenSSL's BIO_METHOD */

/* What a stream tells its owner; each runs on the loop, never inside a net__ call the
 * owner made on that stream unless said so. */
typedef struct net_stream_cbs {
    /* Room for the next read: *buf (length 0: none, the read reports UV_ENOBUFS). May be
     * called inside a transport's own processing (WebSocket payloads). */
    void (*alloc)(net_stream *s, uv_buf_t *buf);
    /* nread > 0 bytes arrived at the start of the last alloc'd buffer; nread < 0: the end
     * of input (UV_EOF: orderly; anything else: the stream broke, e.g. a reset or a
     * WebSocket protocol error). */
    void (*read)(net_stream *s, ssize_t nread);
    /* The write in flight finished; its bytes are no longer queued (status < 0: the stream
     * is broken). */
    void (*written)(net_stream *s, int status);
    /* Every handle of the stream is closed: nothing of net refers to it any more. */
    void (*closed)(net_stream *s);
} net_stream_cbs;

/* A byte-stream transport. Completions go to net (stream.c), which tells the owner. */
typedef struct net_transport {
    const char *name;
    int track_frames; /* sends frame by frame: the output queue records frame ends */
    int tls;          /* the socket carries TLS: tls.c sits between it and the transport */
    void (*init)(net_stream *s); /* handles initialised, owned by s */
    int (*accept)(net_stream *s, uv_stream_t *server);
    int (*read_start)(net_stream *s);
    void (*read_stop)(net_stream *s);
    int (*write)(net_stream *s, const uv_buf_t *bufs, unsigned nbufs);
    /* Close every handle. Graceful (abort 0): what was written reaches the peer, our end is
     * signalled and the peer's end awaited, reading and dropping what it still sends (so
     * the close does not reset data it has not read). abort: at once (WebSocket: 1001); may
     * follow a graceful close that takes too long. One net__on_closed() when all are
     * closed. */
    void (*close)(net_stream *s, int abort);
} net_transport;

struct net_stream {
    broker *b;
    uint64_t id; /* the owner's connection id, for log records */
    const net_transport *tp;
    const net_stream_cbs *cb;
    void *tp_state; /* the transport's own state (WebSocket); NULL for TCP */
    net_tls *tls;   /* TLS between the socket and the transport; NULL: plain */
    union {         /* the socket (a WebSocket transport layers on it): */
        uv_tcp_t tcp;   /* TCP, the handle every transport uses as a uv_stream_t */
        uv_pipe_t pipe; /* a unix-domain socket (the unix transport) */
    };
    /* The write in flight, or the shutdown of a graceful close (which starts only once no
     * write is in flight): one at a time, so they share the memory. */
    union {
        uv_write_t wreq;
        uv_shutdown_t sreq;
    } req;
    outq out;
    net_stream *next_flush; /* on the broker's list of streams with output to write */
    uint64_t last_write;    /* loop time (ms) the last write started: heart-beats count
                               silence on the wire from it */
    uint64_t written;       /* bytes whose writes completed (the socket has them) */
    unsigned reading : 1, on_flush : 1, closing : 1, aborted : 1;
};

/* Kinds of listeners. */
enum { LISTEN_STOMP, LISTEN_WS, LISTEN_POLICY, LISTEN_TLS, LISTEN_WSS, LISTEN_UNIX };

typedef struct listener {
    struct listener *next;
    broker *b;
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe; /* LISTEN_UNIX */
    };
    char *path; /* a unix socket file of ours, removed when the listener closes */
    int port;
    int kind;   /* LISTEN_* */
    int verify; /* TLS kinds: BROKER_TLS_VERIFY_* for client certificates */
} listener;

/* A socket was accepted on a listener of this kind: the owner takes it from server (with
 * net__stream_accept) or closes it. */
typedef void (*net_accept_fn)(broker *b, uv_stream_t *server, int kind);

/* The net layer's part of the broker. */
typedef struct net_state {
    listener *listeners;
    net_accept_fn on_accept;
    net_stream *flush_list; /* streams with output to write at the tick */
    uv_buf_t *iov;          /* the iovec of the write being started (any stream) */
    size_t iov_cap;
    char discard[4096];     /* what closing streams still read, dropped */
    struct ssl_ctx_st *tls_ctx; /* certificate, key and settings of new TLS streams */
    char *tls_in;           /* ciphertext read from any TLS socket, before it is decrypted */
    char *tls_stage;        /* small plaintext writes gathered into one record */
    struct bio_method_st *tls_bio; /* the BIO between OpenSSL and a TLS stream's buffers */
} net_state;

void net__init(broker *b, net_accept_fn on_accept);
void net__free(broker *b); /* after the stop completed */

/* ---- listeners (listen.c) ---- */

/* Listen on host:port (0: a free one; *bound_port gets it, may be NULL); verify: the TLS
 * kinds' client certificate mode. */
broker_err net__listen(broker *b, const char *host, int port, int kind, int verify,
                       int *bound_port) BROKER_WUR;
/* STOMP on a unix-domain socket at path, made with permissions mode. A socket file left
 * by a process that is gone is replaced; one a live process listens on is not. */
broker_err net__listen_unix(broker *b, const char *path, int mode) BROKER_WUR;
/* STOMP on a socket bound and listening already (socket activation): TCP or unix. The
 * broker owns fd once this succeeded. *bound_port: its TCP port (0 for unix). */
broker_err net__listen_fd(broker *b, int fd, int *bound_port) BROKER_WUR;
void net__close_listeners(broker *b);
/* Take a pending connection off server's backlog and close it (the owner has no memory
 * for it). */
void net__drop(broker *b, uv_stream_t *server);

/* ---- streams (stream.c) ---- */

/* Set up s (inside its owner) over transport tp: handles initialised, nothing open. */
void net__stream_init(broker *b, net_stream *s, const net_transport *tp,
                      const net_stream_cbs *cb, uint64_t id);
/* Take a pending connection from a listener: 0 or a libuv error (then close s). */
int net__stream_accept(net_stream *s, uv_stream_t *server) BROKER_WUR;
int net__read_start(net_stream *s) BROKER_WUR; /* 0 or a libuv error */
void net__read_stop(net_stream *s);
/* Reserve n bytes of one whole frame in the output (counted against the broker's memory;
 * written at the tick). NULL when out of memory. */
char *net__frame(net_stream *s, size_t n);
/* Queue one frame: a and b (copied) and shared (referenced when big). -1: out of memory,
 * nothing queued. */
int net__push_frame(net_stream *s, const char *a, size_t alen, const char *b, size_t blen,
                    sbuf *shared) BROKER_WUR;
/* One frame written in place: room for max bytes at the end of the output (NULL when out
 * of memory: nothing to close), then net__frame_close() with the bytes used (0: dropped),
 * before anything else is queued on s. Counted and written as net__frame's. */
char *net__frame_open(net_stream *s, size_t max);
void net__frame_close(net_stream *s, size_t used);
/* Bytes queued and not yet written. */
size_t net__queued(const net_stream *s);
/* The stream offset just past everything queued so far: a frame queued last ends there,
 * and it is written once s->written reaches it. */
uint64_t net__queued_end(const net_stream *s);
/* Output was queued outside net__frame/net__push_frame: write it at the tick. */
void net__want_flush(net_stream *s);
/* Write now if no write is in flight. */
void net__flush(net_stream *s);
/* Write every stream's queued output: one write per stream (the tick's last step). */
void net__flush_all(broker *b);
/* Close the stream (abort: at once, even after a graceful close began). cb->closed
 * follows, later. */
void net__close(net_stream *s, int abort);

/* Completions from the transports (tcp.c, ws.c) to stream.c. */
void net__on_written(net_stream *s, int status);
void net__on_closed(net_stream *s);

/* ---- transports (tcp.c, ws.c) ---- */

const net_transport *net__tcp(void);
const net_transport *net__tls(void); /* STOMP over TLS: net__tcp() over tls.c */
const net_transport *net__unix(void); /* STOMP over a unix-domain socket */
/* STOMP over WebSocket: HTTP upgrade, then one STOMP frame per message out, messages as
 * one byte stream in. */
const net_transport *net__ws(void);
const net_transport *net__wss(void); /* the same over TLS */
/* The transport of a listener of this kind. */
const net_transport *net__transport(int kind);

/* ---- TLS (tls.c) ---- */

/* Build the TLS settings of the broker's options (tls_cert set): 0, or BROKER_E_TLS with
 * a message naming the key and file in why (also logged by net__tls_init). */
broker_err net__tls_build(const broker_options *o, struct ssl_ctx_st **out, char *why,
                          size_t cap) BROKER_WUR;
void net__tls_free_ctx(struct ssl_ctx_st *ctx); /* NULL is fine */
broker_err net__tls_init(broker *b) BROKER_WUR; /* at create, when o.tls_cert is set */
/* Build again from the same files; on failure the old settings stay (logged why). */
broker_err net__tls_reload(broker *b) BROKER_WUR;
void net__tls_free(broker *b);
/* After the socket was accepted from server (a TLS listener): the stream's TLS session,
 * its handshake under way. 0 or UV_ENOMEM. */
int net__tls_attach(net_stream *s, uv_stream_t *server) BROKER_WUR;
/* The login a verified client certificate carries (how: BROKER_TLS_LOGIN_CN or _SAN) in
 * buf: 1, or 0 when there is none (no TLS, no certificate, no such name). */
int net__tls_login(const net_stream *s, int how, char *buf, size_t cap);

/* The socket as a transport uses it, with libuv's signatures and contracts (a callback is
 * never called inside the call that registered it; a close cancels what is pending):
 * straight to libuv for a plain stream, through the TLS session otherwise. */
int net__tls_read_start(net_stream *s, uv_alloc_cb alloc, uv_read_cb read);
void net__tls_read_stop(net_stream *s);
int net__tls_write(net_stream *s, uv_write_t *req, const uv_buf_t *bufs, unsigned n,
                   uv_write_cb cb);
int net__tls_shutdown(net_stream *s, uv_shutdown_t *req, uv_shutdown_cb cb);
void net__tls_close(net_stream *s, uv_close_cb cb);

static inline int net__sock_read_start(net_stream *s, uv_alloc_cb alloc, uv_read_cb read)
{
    return s->tls ? net__tls_read_start(s, alloc, read)
                  : uv_read_start((uv_stream_t *)&s->tcp, alloc, read);
}

static inline void net__sock_read_stop(net_stream *s)
{
    if (s->tls)
        net__tls_read_stop(s);
    else
        uv_read_stop((uv_stream_t *)&s->tcp);
}

static inline int net__sock_write(net_stream *s, uv_write_t *req, const uv_buf_t *bufs,
                                  unsigned n, uv_write_cb cb)
{
    return s->tls ? net__tls_write(s, req, bufs, n, cb)
                  : uv_write(req, (uv_stream_t *)&s->tcp, bufs, n, cb);
}

static inline int net__sock_shutdown(net_stream *s, uv_shutdown_t *req, uv_shutdown_cb cb)
{
    return s->tls ? net__tls_shutdown(s, req, cb)
                  : uv_shutdown(req, (uv_stream_t *)&s->tcp, cb);
}

static inline void net__sock_close(net_stream *s, uv_close_cb cb)
{
    if (s->tls)
        net__tls_close(s, cb);
    else
        uv_close((uv_handle_t *)&s->tcp, cb);
}

/* ---- UTF-8 (utf8.c) ---- */

/* Where a UTF-8 check stands: bytes still needed and the range of the next one. Start at
 * { 0, 0x80, 0xBF }. */
typedef struct net_utf8 {
    uint8_t need, lo, hi;
} net_utf8;
/* Feed n bytes: 0 as soon as they cannot be UTF-8. Complete when s->need is 0 too. */
int net__utf8_feed(net_utf8 *s, const uint8_t *p, size_t n);
int net__utf8_valid(const uint8_t *p, size_t n); /* p is whole, valid UTF-8 */

/* ---- the Flash socket policy (policy.c) ---- */

enum {
    POLICY_NOT,      /* not a policy request: the bytes are the owner's (STOMP) */
    POLICY_WAIT,     /* the start of a request: read more before deciding */
    POLICY_ANSWERED, /* answered (output queued): end the connection once written */
    POLICY_CLOSE,    /* close at once (a policy port sent something else, or no memory) */
};

/* While a stream's first bytes may still be a <policy-file-request/>: what they are.
 * policy_only: a policy port (nothing but the request is welcome there). A TLS handshake
 * arriving on a plain STOMP port is logged and closed (POLICY_CLOSE). */
int net__policy(net_stream *s, const char *data, size_t len, int policy_only);

#endif
