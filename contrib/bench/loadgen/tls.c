/* tls.c: --tls, STOMP over TLS with OpenSSL directly on the non-blocking socket. One SSL_CTX
 * for the run (shared by the worker threads, read-only once built), one SSL per connection,
 * owned by its worker. Reads and writes look like read() and write() to conn.c: a call that
 * would block fails with EAGAIN, and the edge-triggered epoll loop calls again on the next
 * edge, so a handshake never blocks a worker. The server's certificate is verified against
 * --tls-ca (else the system's CAs) and must name --host. */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <string.h>

#include "loadgen.h"

/* The context from the options; any problem exits with status 2 before a socket opens. */
void tls__setup(void)
{
    if (!R.o.tls)
        return;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        die("--tls: SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok = R.o.tls_ca ? SSL_CTX_load_verify_locations(ctx, R.o.tls_ca, NULL)
                        : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        char e[256];
        ERR_error_string_n(ERR_get_error(), e, sizeof e);
        die("--tls-ca %s: %s", R.o.tls_ca ? R.o.tls_ca : "(system default)", e);
    }
    /* conn.c's output buffer is compacted and grown between calls, and a write may take
     * only part of it */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* a read takes as many records as the socket holds (up to 64 KiB), not a record header
     * and then its body: the load generator's syscalls stay out of the broker's way */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, 65536);
    R.tls_ctx = ctx;
}

void tls__free_ctx(void)
{
    SSL_CTX_free(R.tls_ctx);
    R.tls_ctx = NULL;
}

/* Why the last call on c failed: OpenSSL's error queue, or errno. */
static void note_error(struct conn *c, int ret, const char *what)
{
    int err = SSL_get_error(c->ssl, ret);
    unsigned long e = ERR_get_error();
    if (e) {
        char s[200];
        ERR_error_string_n(e, s, sizeof s);
        snprintf(c->tls_err, sizeof c->tls_err, "TLS %s: %s", what, s);
    } else if (err == SSL_ERROR_SYSCALL && errno) {
        snprintf(c->tls_err, sizeof c->tls_err, "TLS %s: %s", what, strerror(errno));
    } else {
        snprintf(c->tls_err, sizeof c->tls_err, "TLS %s: error %d", what, err);
    }
    ERR_clear_error();
}

/* After the TCP connect: a client SSL on c->fd. false (with c->tls_err) on failure. */
bool tls__start(struct conn *c)
{
    c->ssl = SSL_new(R.tls_ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_set1_host(c->ssl, R.o.host) != 1) {
        snprintf(c->tls_err, sizeof c->tls_err, "TLS: cannot set up the connection");
        return false;
    }
    SSL_set_connect_state(c->ssl);
    return true;
}

/* One step of the handshake: 1 done, 0 waiting for the socket, -1 failed (c->tls_err). */
int tls__handshake(struct conn *c)
{
    ERR_clear_error();
    int ret = SSL_do_handshake(c->ssl);
    if (ret == 1) {
        int expect = 0;
        if (atomic_compare_exchange_strong(&R.tls_noted, &expect, 1))
            snprintf(R.tls_proto, sizeof R.tls_proto, "%s/%s", SSL_get_version(c->ssl),
                     SSL_get_cipher_name(c->ssl));
        return 1;
    }
    int err = SSL_get_error(c->ssl, ret);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
        return 0;
    note_error(c, ret, "handshake");
    long v = SSL_get_verify_result(c->ssl);
    if (v != X509_V_OK) {
        size_t l = strlen(c->tls_err);
        snprintf(c->tls_err + l, sizeof c->tls_err - l, " (certificate: %s)",
                 X509_verify_cert_error_string(v));
    }
    return -1;
}

/* Like read(): decrypted bytes (as many records as fit in cap), 0 at the end of the stream,
 * -1 with errno EAGAIN when the socket is empty, -1 with errno EPROTO and c->tls_err. */
ssize_t tls__read(struct conn *c, char *buf, size_t cap)
{
    size_t got = 0;
    while (got < cap) {
        ERR_clear_error();
        int ret = SSL_read(c->ssl, buf + got, (int)(cap - got > INT32_MAX ? INT32_MAX
                                                                           : cap - got));
        if (ret > 0) {
            got += (size_t)ret;
            continue;
        }
        if (got > 0)
            return (ssize_t)got; /* the error, if any, comes again on the next call */
        int err = SSL_get_error(c->ssl, ret);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
            errno = EAGAIN;
            return -1;
        }
        if (err == SSL_ERROR_ZERO_RETURN)
            return 0;
        /* the peer closed without close_notify: an end of stream for a STOMP client */
        unsigned long e = ERR_peek_error();
        if ((err == SSL_ERROR_SYSCALL && errno == 0 && e == 0) ||
            ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            ERR_clear_error();
            return 0;
        }
        note_error(c, ret, "read");
        errno = EPROTO;
        return -1;
    }
    return (ssize_t)got;
}

/* Like write(): bytes taken (one record or more), or -1 with errno EAGAIN or EPROTO. */
ssize_t tls__write(struct conn *c, const char *buf, size_t len)
{
    ERR_clear_error();
    int ret = SSL_write(c->ssl, buf, (int)(len > INT32_MAX ? INT32_MAX : len));
    if (ret > 0)
        return ret;
    int err = SSL_get_error(c->ssl, ret);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    note_error(c, ret, "write");
    errno = EPROTO;
    return -1;
}

void tls__close(struct conn *c)
{
    SSL_free(c->ssl);
    c->ssl = NULL;
}
