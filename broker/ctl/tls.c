/* tls.c: stompctl's HTTPS: the connection to an https:// management listener, verified
 * against --cacert (or the system's CAs) and the URL's host name or IP address, and its
 * reads and writes. A plain http:// connection goes through the same calls.
 */
#include "stompctl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

static void why_failed(const ctl_conn *c, const ctl_target *t, char *err, size_t errlen)
{
    long v = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    unsigned long e = ERR_get_error();
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    snprintf(err, errlen, "TLS with %s:%s failed: %s", t->host, t->port,
             v != X509_V_OK ? X509_verify_cert_error_string(v)
                            : e ? text : "the connection was closed");
}

int ctl_tls_open(ctl_conn *c, const ctl_target *t, char *err, size_t errlen)
{
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    int loaded = t->cacert ? SSL_CTX_load_verify_locations(c->ctx, t->cacert, NULL)
                           : SSL_CTX_set_default_verify_paths(c->ctx);
    if (loaded != 1) {
        snprintf(err, errlen, "--cacert %s: cannot read CA certificates from it", t->cacert);
        return -1;
    }
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* The certificate must name what the URL names: an IP address, or a host name. */
    unsigned char addr[16];
    int is_ip = inet_pton(AF_INET, t->host, addr) == 1 || inet_pton(AF_INET6, t->host, addr) == 1;
    if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), t->host) != 1
              : SSL_set1_host(c->ssl, t->host) != 1 ||
                    SSL_set_tlsext_host_name(c->ssl, t->host) != 1) {
        snprintf(err, errlen, "%s: cannot be checked against a certificate", t->host);
        return -1;
    }
    if (SSL_connect(c->ssl) != 1) {
        why_failed(c, t, err, errlen);
        return -1;
    }
    return 0;
}

int ctl_conn_send(ctl_conn *c, const char *p, size_t n)
{
    while (n) {
        ssize_t w = c->ssl ? SSL_write(c->ssl, p, (int)n) : send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && !c->ssl && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

ssize_t ctl_conn_recv(ctl_conn *c, char *p, size_t n)
{
    if (!c->ssl) {
        ssize_t r;
        do
            r = recv(c->fd, p, n, 0);
        while (r < 0 && errno == EINTR);
        return r;
    }
    int r = SSL_read(c->ssl, p, (int)(n > 1 << 30 ? 1 << 30 : n));
    if (r > 0)
        return r;
    return SSL_get_error(c->ssl, r) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

void ctl_conn_close(ctl_conn *c)
{
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    c->ssl = NULL;
    c->ctx = NULL;
    c->fd = -1;
}
