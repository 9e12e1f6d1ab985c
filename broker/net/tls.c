/* tls.c: TLS between a stream's socket and its transport (the STOMP byte stream of tcp.c,
 * or WebSocket for wss), with OpenSSL on a BIO of our own (rq in, wq out: each byte copied
 * once, where memory BIOs zero, copy and move it) driven by libuv; settings from tls_ctx.c.
 *
 * The transport sees the socket through net__sock_* (net.h) with libuv's signatures and
 * contracts, so over TLS it reads, writes, shuts down and closes exactly as over TCP, and
 * the session's limits, output queue, backpressure and heart-beats stay as they are.
 * Facts that always hold for a session:
 * - Ciphertext from the socket goes into rq at once; the socket is read only while the
 *   handshake runs, or while the transport reads and rq holds less than TLS_RBIO_MAX,
 *   so a transport that stops reading stops the socket too.
 * - Plaintext reaches the transport only while it reads, and only after the handshake;
 *   what was written before the handshake ended waits in pend.
 * - One socket write is in flight (wreq, out) while wq gathers what OpenSSL writes (they
 *   swap at the next socket write); the transport's one write completes with the socket
 *   write that carried the last of its bytes (carries). An idle session holds no buffers.
 * - Nothing calls the transport back inside its own call: work found in one (bytes already
 *   decrypted at a read_start) waits for the timer's next turn. The timer bounds the
 *   handshake (connect_timeout_ms) until it ends, then does those deferred turns.
 * - The socket and the timer close as one; the transport's close callback runs after both,
 *   once cancelled requests were answered, and the session is freed then.
 * A handshake that fails, plain text on a TLS port and a client certificate refused are one
 * log line each; what OpenSSL answers (an alert; for plain text, a STOMP ERROR frame in
 * clear) is written, then the transport's input ends, so its close is a graceful one.
 */
#include "core.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define TLS_CHUNK 16384               /* plaintext of one record */
#define TLS_IN 17408                  /* a record and its overhead */
#define TLS_RBIO_MAX (4 * TLS_IN)     /* ciphertext read ahead of the transport */
#define TLS_READ 65536                /* one socket read, as many records as it holds */

struct net_tls {
    net_stream *s;
    SSL *ssl;
    char *rq; /* ciphertext read, not yet taken by OpenSSL: from rq_off to rq_len */
    size_t rq_off, rq_len, rq_cap;
    char *wq; /* ciphertext OpenSSL wrote, not yet on the socket */
    size_t wq_len, wq_cap;
    uv_timer_t timer;
    uv_alloc_cb up_alloc; /* the transport's reading, while up_reading */
    uv_read_cb up_read;
    uv_write_t *up_req; /* the transport's write, until its bytes are written */
    uv_write_cb up_wcb;
    uv_shutdown_t *up_sreq; /* its shutdown, until our socket's completes */
    uv_shutdown_cb up_scb;
    uv_close_cb up_close;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    char *pend; /* plaintext written before the handshake ended */
    size_t pend_len, pend_cap;
    char *out; /* ciphertext of the socket write in flight */
    size_t out_cap;
    int handles;  /* open while closing: socket and timer */
    int sock_err; /* how the socket's input ended (eof) */
    int end_err;  /* what the transport is told once decrypted input is exhausted */
    unsigned up_reading : 1, sock_reading : 1, writing : 1, carries : 1, done : 1,
        failed : 1, eof : 1, closing : 1, shut : 1, seen : 1, dead : 1;
};

static void tls_process(net_tls *t);

/* ---- the client certificate's login ------------------------------------------------- */

/* A name usable as a login: printable, no NUL, fits. */
static int take_name(const unsigned char *p, int n, char *buf, size_t cap)
{
    if (n <= 0 || (size_t)n >= cap)
        return 0;
    for (int i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] == 0x7f)
            return 0;
    memcpy(buf, p, (size_t)n);
    buf[n] = '\0';
    return 1;
}

static int cn_of(X509 *x, char *buf, size_t cap)
{
    X509_NAME *name = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (i < 0)
        return 0;
    unsigned char *u = NULL;
    int n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    int ok = n > 0 && take_name(u, n, buf, cap);
    OPENSSL_free(u);
    return ok;
}

static int san_of(X509 *x, char *buf, size_t cap)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int ok = 0;
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && !ok; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type == GEN_EMAIL || g->type == GEN_DNS || g->type == GEN_URI)
            ok = take_name(ASN1_STRING_get0_data(g->d.ia5), ASN1_STRING_length(g->d.ia5),
                           buf, cap);
    }
    GENERAL_NAMES_free(names);
    return ok;
}

int net__tls_login(const net_stream *s, int how, char *buf, size_t cap)
{
    net_tls *t = s->tls;
    if (!t || !t->done || how == BROKER_TLS_LOGIN_NONE)
        return 0;
    X509 *x = SSL_get0_peer_certificate(t->ssl);
    if (!x || SSL_get_verify_result(t->ssl) != X509_V_OK)
        return 0;
    return how == BROKER_TLS_LOGIN_CN ? cn_of(x, buf, cap) : san_of(x, buf, cap);
}

/* ---- the BIO: OpenSSL's ciphertext in rq and wq ---------------------------------------- */

/* Room for n more bytes at *buf + len (exactly that much for an empty buffer); 0, or -1
 * when out of memory. */
static int room(char **buf, size_t *cap, size_t len, size_t n)
{
    if (len + n <= *cap)
        return 0;
    size_t c = *cap * 2 > len + n ? *cap * 2 : len + n;
    char *p = realloc(*buf, c);
    if (!p)
        return -1;
    *buf = p;
    *cap = c;
    return 0;
}

static int wq_put(net_tls *t, const char *p, size_t n)
{
    if (room(&t->wq, &t->wq_cap, t->wq_len, n) != 0)
        return -1;
    memcpy(t->wq + t->wq_len, p, n);
    t->wq_len += n;
    return 0;
}

static int rq_put(net_tls *t, const char *p, size_t n)
{
    if (t->rq_off && t->rq_len + n > t->rq_cap) {
        memmove(t->rq, t->rq + t->rq_off, t->rq_len - t->rq_off);
        t->rq_len -= t->rq_off;
        t->rq_off = 0;
    }
    if (room(&t->rq, &t->rq_cap, t->rq_len, n) != 0)
        return -1;
    memcpy(t->rq + t->rq_len, p, n);
    t->rq_len += n;
    return 0;
}

static int bio_write(BIO *bio, const char *p, int n)
{
    BIO_clear_retry_flags(bio);
    if (n <= 0)
        return 0;
    return wq_put(BIO_get_data(bio), p, (size_t)n) == 0 ? n : -1;
}

/* An empty rq means "more later" (a retry), never the end: the socket tells the end (eof). */
static int bio_read(BIO *bio, char *p, int n)
{
    net_tls *t = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    size_t have = t->rq_len - t->rq_off;
    if (have == 0) {
        BIO_set_retry_read(bio);
        return -1;
    }
    n = n <= 0 ? 0 : (size_t)n > have ? (int)have : n;
    memcpy(p, t->rq + t->rq_off, (size_t)n);
    t->rq_off += (size_t)n;
    if (t->rq_off == t->rq_len)
        t->rq_off = t->rq_len = 0;
    return n;
}

static long bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    net_tls *t = BIO_get_data(bio);
    (void)num, (void)ptr;
    switch (cmd) {
    case BIO_CTRL_PENDING: return (long)(t->rq_len - t->rq_off);
    case BIO_CTRL_WPENDING: return (long)t->wq_len;
    case BIO_CTRL_FLUSH: return 1;
    default: return 0;
    }
}

/* The broker's BIO method, made for its first TLS stream; NULL when out of memory. */
static BIO_METHOD *bio_method(broker *b)
{
    if (b->net.tls_bio)
        return b->net.tls_bio;
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "stompd tls");
    if (!m || !BIO_meth_set_write(m, bio_write) || !BIO_meth_set_read(m, bio_read) ||
        !BIO_meth_set_ctrl(m, bio_ctrl)) {
        BIO_meth_free(m);
        return NULL;
    }
    b->net.tls_bio = m;
    return m;
}

/* ---- the socket below ------------------------------------------------------------------ */

static void on_sock_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    broker *b = ((net_stream *)h->data)->b;
    if (!b->net.tls_in)
        b->net.tls_in = malloc(TLS_READ);
    *buf = uv_buf_init(b->net.tls_in, b->net.tls_in ? TLS_READ : 0);
}

static void on_sock_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void update_reading(net_tls *t)
{
    int want = !t->closing && !t->eof && (!t->done || t->up_reading) &&
               (t->failed ? t->up_reading : t->rq_len - t->rq_off < TLS_RBIO_MAX);
    uv_stream_t *st = (uv_stream_t *)&t->s->tcp;
    if (want && !t->sock_reading) {
        if (uv_read_start(st, on_sock_alloc, on_sock_read) == 0)
            t->sock_reading = 1;
    } else if (!want && t->sock_reading) {
        uv_read_stop(st);
        t->sock_reading = 0;
    }
}

static void on_sock_write(uv_write_t *req, int status);
static void on_sock_shutdown(uv_shutdown_t *req, int status);

/* Write what OpenSSL produced (one socket write at a time); once all is out, a pending
 * shutdown goes to the socket. */
static void pump(net_tls *t)
{
    if (t->writing || t->closing || t->shut)
        return;
    size_t n = t->dead ? 0 : t->wq_len;
    if (n == 0) {
        if (t->up_sreq && !t->shut) {
            t->shut = 1;
            t->sreq.data = t;
            if (uv_shutdown(&t->sreq, (uv_stream_t *)&t->s->tcp, on_sock_shutdown) != 0)
                on_sock_shutdown(&t->sreq, UV_EPIPE);
        }
        return;
    }
    /* wq goes out as it is; what OpenSSL writes meanwhile gathers in the other buffer */
    char *p = t->out;
    size_t cap = t->out_cap;
    t->out = t->wq;
    t->out_cap = t->wq_cap;
    t->wq = p;
    t->wq_cap = cap;
    t->wq_len = 0;
    uv_buf_t b = uv_buf_init(t->out, n > UINT_MAX ? 0 : (unsigned)n);
    t->carries = t->up_req && t->done && t->pend_len == 0;
    t->wreq.data = t;
    if (!b.len || uv_write(&t->wreq, (uv_stream_t *)&t->s->tcp, &b, 1, on_sock_write) != 0) {
        t->dead = 1;
        t->carries = 0;
        return;
    }
    t->writing = 1;
}

static void on_sock_write(uv_write_t *req, int status)
{
    net_tls *t = req->data;
    t->writing = 0;
    if (status < 0)
        t->dead = 1;
    if (t->carries || (t->dead && t->up_req)) {
        uv_write_t *r = t->up_req;
        t->up_req = NULL;
        t->carries = 0;
        t->up_wcb(r, status < 0 ? status : t->dead ? UV_EPIPE : 0);
    }
    pump(t);
    if (!t->writing) { /* idle: the buffers go (a busy stream makes one per socket write) */
        free(t->out);
        t->out = NULL;
        t->out_cap = 0;
        if (!t->wq_len) {
            free(t->wq);
            t->wq = NULL;
            t->wq_cap = 0;
        }
    }
}

static void on_sock_shutdown(uv_shutdown_t *req, int status)
{
    net_tls *t = req->data;
    uv_shutdown_t *r = t->up_sreq;
    if (!r || t->closing)
        return;
    t->up_sreq = NULL;
    t->up_scb(r, status);
}

/* ---- writing ----------------------------------------------------------------------- */

/* Encrypt n bytes into wq (it takes all). -1: OpenSSL failed or out of memory. */
static int seal(net_tls *t, const char *p, size_t n)
{
    while (n) {
        int k = (int)(n > TLS_CHUNK ? TLS_CHUNK : n);
        ERR_clear_error();
        if (SSL_write(t->ssl, p, k) != k)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int append(net_tls *t, const char *p, size_t n)
{
    if (t->pend_len + n > t->pend_cap) {
        size_t cap = t->pend_cap ? t->pend_cap : 4096;
        while (cap < t->pend_len + n)
            cap *= 2;
        char *np = realloc(t->pend, cap);
        if (!np)
            return -1;
        t->pend = np;
        t->pend_cap = cap;
    }
    memcpy(t->pend + t->pend_len, p, n);
    t->pend_len += n;
    return 0;
}

/* Small buffers (the frames of one output queue) are gathered into records of up to
 * TLS_CHUNK bytes in the broker's stage; big ones are sealed where they are. */
static int seal_bufs(net_tls *t, const uv_buf_t *bufs, unsigned nbufs)
{
    broker *b = t->s->b;
    /* wq sized once for all the records (22 bytes more each in TLS 1.3; 64 covers 1.2) */
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (room(&t->wq, &t->wq_cap, t->wq_len, total + (total / TLS_CHUNK + 1) * 64) != 0)
        return -1;
    if (!b->net.tls_stage && !(b->net.tls_stage = malloc(TLS_CHUNK)))
        return -1;
    char *stage = b->net.tls_stage;
    size_t used = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        const uv_buf_t *u = &bufs[i];
        if (used && used + u->len > TLS_CHUNK) {
            if (seal(t, stage, used) != 0)
                return -1;
            used = 0;
        }
        if (u->len >= TLS_CHUNK) {
            if (seal(t, u->base, u->len) != 0)
                return -1;
        } else {
            memcpy(stage + used, u->base, u->len);
            used += u->len;
        }
    }
    return used ? seal(t, stage, used) : 0;
}

int net__tls_write(net_stream *s, uv_write_t *req, const uv_buf_t *bufs, unsigned n,
                   uv_write_cb cb)
{
    net_tls *t = s->tls;
    if (t->failed || t->dead || t->closing || t->up_sreq || t->up_req)
        return UV_EPIPE;
    if (!t->done) {
        for (unsigned i = 0; i < n; i++)
            if (append(t, bufs[i].base, bufs[i].len) != 0)
                return UV_ENOMEM;
    } else if (seal_bufs(t, bufs, n) != 0) {
        t->dead = 1;
        return UV_EPIPE;
    }
    t->up_req = req;
    t->up_wcb = cb;
    pump(t);
    return 0;
}

int net__tls_shutdown(net_stream *s, uv_shutdown_t *req, uv_shutdown_cb cb)
{
    net_tls *t = s->tls;
    if (t->closing || t->up_sreq || t->shut)
        return UV_EINVAL;
    t->up_sreq = req;
    t->up_scb = cb;
    if (t->done && !t->failed) {
        ERR_clear_error();
        (void)SSL_shutdown(t->ssl); /* queues our close_notify */
    }
    pump(t);
    return 0;
}

/* ---- reading ----------------------------------------------------------------------- */

/* Deferred work: at the timer's next turn, never inside the transport's call. */
static void on_timer(uv_timer_t *timer);

static void kick(net_tls *t)
{
    if ((t->done || t->failed) && !t->closing)
        uv_timer_start(&t->timer, on_timer, 0, 0);
}

int net__tls_read_start(net_stream *s, uv_alloc_cb alloc, uv_read_cb read)
{
    net_tls *t = s->tls;
    if (t->closing)
        return UV_EINVAL;
    t->up_alloc = alloc;
    t->up_read = read;
    t->up_reading = 1;
    update_reading(t);
    kick(t); /* decrypted bytes or an end may be waiting already */
    return 0;
}

void net__tls_read_stop(net_stream *s)
{
    net_tls *t = s->tls;
    t->up_reading = 0;
    update_reading(t);
}

/* The transport's input ends (libuv stops reading at an end too). */
static void tell_end(net_tls *t, int err)
{
    uv_buf_t none = uv_buf_init(NULL, 0);
    t->up_reading = 0;
    t->up_read((uv_stream_t *)&t->s->tcp, err, &none);
}

/* The handshake or the session failed: one log line, what OpenSSL answered goes out, the
 * transport's input ends with err. */
static void fail(net_tls *t, int err, broker_log_level lvl, const char *msg)
{
    t->failed = 1;
    t->end_err = err;
    uv_timer_stop(&t->timer);
    broker__log(t->s->b, lvl, BROKER_EV_TLS, t->s->id, "%s", msg);
    ERR_clear_error();
}

static void handshake_failed(net_tls *t)
{
    char msg[300];
    unsigned long e = ERR_peek_last_error();
    const char *why = e && ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "error";
    long v = SSL_get_verify_result(t->ssl);
    if (v != X509_V_OK)
        snprintf(msg, sizeof msg, "TLS handshake failed: client certificate refused: %s",
                 X509_verify_cert_error_string(v));
    else
        snprintf(msg, sizeof msg, "TLS handshake failed: %s", why);
    fail(t, UV_EOF, BROKER_LOG_WARN, msg);
}

/* The first byte of a TLS connection is a handshake record's (22). A client speaking plain
 * text gets a STOMP ERROR in clear (it could read no alert) and one log line. */
static int plain_text(net_tls *t, const char *p, size_t n)
{
    if (t->seen || n == 0)
        return 0;
    t->seen = 1;
    if ((unsigned char)p[0] == 22)
        return 0;
    static const char err[] = "ERROR\nmessage:this port speaks TLS only\n"
                              "content-type:text/plain\n\nconnect with TLS\n";
    (void)wq_put(t, err, sizeof err); /* the NUL ends the frame */
    fail(t, UV_EOF, BROKER_LOG_WARN, "plain text on a TLS port: answered with an ERROR, closed");
    return 1;
}

static void on_sock_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    net_tls *t = ((net_stream *)st->data)->tls;
    if (nread == 0 || nread == UV_ENOBUFS)
        return;
    if (nread < 0) {
        uv_read_stop(st);
        t->sock_reading = 0;
        t->eof = 1;
        t->sock_err = (int)nread;
    } else if (!t->failed && !plain_text(t, buf->base, (size_t)nread)) {
        if (rq_put(t, buf->base, (size_t)nread) != 0)
            fail(t, UV_ENOMEM, BROKER_LOG_ERROR, "out of memory for TLS input");
    }
    tls_process(t);
}

static void handshake(net_tls *t)
{
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->done = 1;
        uv_timer_stop(&t->timer);
        broker__log(t->s->b, BROKER_LOG_DEBUG, BROKER_EV_TLS, t->s->id, "TLS %s, %s",
                    SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl));
        if (t->pend_len && seal(t, t->pend, t->pend_len) != 0)
            t->dead = 1;
        t->pend_len = 0;
        return;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        if (t->eof)
            fail(t, t->sock_err, BROKER_LOG_INFO,
                 "TLS handshake not finished: the client closed the connection");
        return;
    }
    handshake_failed(t);
}

/* Decrypted bytes to the transport while it reads; then the end of input, once. */
static void deliver(net_tls *t)
{
    while (t->up_reading && !t->closing) {
        uv_buf_t buf;
        t->up_alloc((uv_handle_t *)&t->s->tcp, 65536, &buf);
        if (!buf.base || !buf.len) {
            t->up_read((uv_stream_t *)&t->s->tcp, UV_ENOBUFS, &buf);
            return;
        }
        ERR_clear_error();
        int n = SSL_read(t->ssl, buf.base, buf.len > INT_MAX ? INT_MAX : (int)buf.len);
        if (n > 0) {
            t->up_read((uv_stream_t *)&t->s->tcp, n, &buf);
            continue;
        }
        int e = SSL_get_error(t->ssl, n);
        if (e == SSL_ERROR_WANT_READ) {
            if (t->eof)
                tell_end(t, t->sock_err);
        } else if (e == SSL_ERROR_ZERO_RETURN) {
            tell_end(t, UV_EOF); /* the client's close_notify */
        } else {
            char msg[300];
            unsigned long err = ERR_peek_last_error();
            const char *why = err ? ERR_reason_error_string(err) : NULL;
            snprintf(msg, sizeof msg, "TLS error: %s", why ? why : "the connection broke");
            fail(t, UV_ECONNABORTED, BROKER_LOG_WARN, msg);
            tell_end(t, t->end_err);
        }
        return;
    }
}

static void tls_process(net_tls *t)
{
    if (t->closing)
        return;
    if (!t->done && !t->failed)
        handshake(t);
    if (t->failed) {
        /* What arrives after a failure is dropped; the transport hears the end. */
        t->rq_off = t->rq_len = 0;
        if (t->up_req && !t->writing) {
            /* A write waiting for the handshake will never go. */
            uv_write_t *r = t->up_req;
            t->up_req = NULL;
            t->up_wcb(r, UV_EPIPE);
            if (t->closing)
                return;
        }
        if (t->up_reading)
            tell_end(t, t->end_err);
    } else if (t->done) {
        deliver(t);
    }
    if (t->closing)
        return;
    pump(t);
    update_reading(t);
    if (t->rq_len == 0) { /* every record taken */
        free(t->rq);
        t->rq = NULL;
        t->rq_cap = 0;
    }
}

static void on_timer(uv_timer_t *timer)
{
    net_tls *t = timer->data;
    if (!t->done && !t->failed) {
        char msg[128];
        snprintf(msg, sizeof msg, "TLS handshake not finished within connect_timeout_ms (%u ms)",
                 (unsigned)t->s->b->o.connect_timeout_ms);
        fail(t, UV_ETIMEDOUT, BROKER_LOG_WARN, msg);
    }
    tls_process(t);
}

/* ---- life ---------------------------------------------------------------------------- */

int net__tls_attach(net_stream *s, uv_stream_t *server)
{
    broker *b = s->b;
    const listener *l = server->data;
    net_tls *t = calloc(1, sizeof *t);
    if (!t)
        return UV_ENOMEM;
    t->s = s;
    BIO_METHOD *m = bio_method(b);
    t->ssl = b->net.tls_ctx && m ? SSL_new(b->net.tls_ctx) : NULL;
    BIO *bio = t->ssl ? BIO_new(m) : NULL;
    if (!bio) {
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return UV_ENOMEM;
    }
    BIO_set_data(bio, t);
    BIO_set_init(bio, 1);
    SSL_set_bio(t->ssl, bio, bio); /* one BIO both ways, owned by the SSL */
    SSL_set_accept_state(t->ssl);
    int mode = l->verify == BROKER_TLS_VERIFY_REQUIRED
                   ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
               : l->verify == BROKER_TLS_VERIFY_OPTIONAL ? SSL_VERIFY_PEER
                                                         : SSL_VERIFY_NONE;
    SSL_set_verify(t->ssl, mode, NULL);
    uv_timer_init(b->loop, &t->timer);
    t->timer.data = t;
    if (b->o.connect_timeout_ms)
        uv_timer_start(&t->timer, on_timer, b->o.connect_timeout_ms, 0);
    s->tls = t;
    return 0;
}

/* The socket and the timer are both closed: answer what was pending as libuv does at a
 * close (cancelled), free the session, then the transport's close callback. */
static void closed_one(net_tls *t)
{
    if (--t->handles > 0)
        return;
    net_stream *s = t->s;
    if (t->up_req)
        t->up_wcb(t->up_req, UV_ECANCELED);
    if (t->up_sreq)
        t->up_scb(t->up_sreq, UV_ECANCELED);
    uv_close_cb cb = t->up_close;
    SSL_free(t->ssl); /* and its BIO */
    free(t->pend);
    free(t->out);
    free(t->rq);
    free(t->wq);
    free(t);
    s->tls = NULL;
    cb((uv_handle_t *)&s->tcp);
}

static void on_sock_closed(uv_handle_t *h)
{
    closed_one(((net_stream *)h->data)->tls);
}

static void on_timer_closed(uv_handle_t *h)
{
    closed_one(h->data);
}

void net__tls_close(net_stream *s, uv_close_cb cb)
{
    net_tls *t = s->tls;
    if (t->closing)
        return;
    t->closing = 1;
    t->up_close = cb;
    t->up_reading = 0;
    t->handles = 2;
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&s->tcp, on_sock_closed);
    uv_close((uv_handle_t *)&t->timer, on_timer_closed);
}
