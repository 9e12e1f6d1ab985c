/* https.c: the management listener over TLS (broker_listen_admin_tls): OpenSSL on memory
 * BIOs between the socket and the HTTP parser, with the broker's certificate and settings
 * (the same SSL_CTX as the STOMP TLS listeners, so a reload serves the new certificate
 * here too). Logins stay HTTP Basic: no client certificate is asked.
 *
 * A connection carries one request, so the flow is short: ciphertext in, plaintext to the
 * parser (admin__feed) and handshake records out, each in a write of its own; the answer
 * is encrypted whole, with the close_notify after it, into the one answer write.
 */
#include "admin/http.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

typedef struct tls_write {
    uv_write_t req;
    char data[];
} tls_write;

int admin__tls_start(http_conn *hc)
{
    SSL_CTX *ctx = hc->b->net.tls_ctx;
    hc->ssl = ctx ? SSL_new(ctx) : NULL;
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
    if (!hc->ssl || !rbio || !wbio) {
        BIO_free(rbio);
        BIO_free(wbio);
        return -1;
    }
    SSL_set_bio(hc->ssl, rbio, wbio);
    SSL_set_accept_state(hc->ssl);
    SSL_set_verify(hc->ssl, SSL_VERIFY_NONE, NULL);
    return 0;
}

void admin__tls_free(http_conn *hc)
{
    SSL_free(hc->ssl);
    hc->ssl = NULL;
}

/* Everything in the write BIO, as one buffer (caller frees; NULL when none or no memory:
 * *len says which, 0 for none). */
static char *take_out(http_conn *hc, size_t extra, size_t *len)
{
    BIO *wbio = SSL_get_wbio(hc->ssl);
    size_t n = (size_t)BIO_ctrl_pending(wbio);
    *len = n;
    if (!n)
        return NULL;
    char *p = malloc(extra + n);
    if (p && BIO_read(wbio, p + extra, (int)n) != (int)n) {
        free(p);
        p = NULL;
    }
    return p;
}

static void on_flushed(uv_write_t *req, int status)
{
    (void)status; /* a broken socket shows at the next read */
    free(req);
}

/* Handshake records and alerts: -1 when they cannot be sent. */
static int flush(http_conn *hc)
{
    size_t n;
    tls_write *w = (tls_write *)take_out(hc, sizeof(tls_write), &n);
    if (!n)
        return 0;
    if (!w)
        return -1;
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&hc->tcp, &buf, 1, on_flushed) != 0) {
        free(w);
        return -1;
    }
    return 0;
}

int admin__tls_read(http_conn *hc, const char *p, size_t n)
{
    if (BIO_write(SSL_get_rbio(hc->ssl), p, (int)n) != (int)n)
        return -1;
    char plain[4096];
    while (hc->state == HC_READING) {
        int got = SSL_read(hc->ssl, plain, sizeof plain);
        if (got > 0) {
            admin__feed(hc, plain, (size_t)got);
            continue;
        }
        int e = SSL_get_error(hc->ssl, got);
        ERR_clear_error();
        if (e != SSL_ERROR_WANT_READ) {
            (void)flush(hc); /* the alert, if any */
            broker__log(hc->b, BROKER_LOG_WARN, BROKER_EV_TLS, 0,
                        "management TLS from %s failed (%s)", hc->peer,
                        e == SSL_ERROR_ZERO_RETURN ? "closed" : "handshake or record error");
            return -1;
        }
        break;
    }
    return flush(hc);
}

int admin__tls_wrap(http_conn *hc)
{
    size_t done = 0;
    while (done < hc->resp_len) {
        size_t chunk = hc->resp_len - done > 16384 ? 16384 : hc->resp_len - done;
        if (SSL_write(hc->ssl, hc->resp + done, (int)chunk) <= 0) {
            ERR_clear_error();
            return -1;
        }
        done += chunk;
    }
    (void)SSL_shutdown(hc->ssl); /* close_notify: the answer ends here */
    ERR_clear_error();
    size_t n;
    char *out = take_out(hc, 0, &n);
    if (!out)
        return -1;
    free(hc->resp);
    hc->resp_cap = 0;
    hc->resp = out;
    hc->resp_len = n;
    return 0;
}
