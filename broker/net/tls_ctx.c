/* tls_ctx.c: the TLS settings of a broker (one SSL_CTX, from broker_options): built at
 * create, built again at a reload (the old one stays when the new files do not load), and
 * checked without a broker for stompd's start. Every failure names the key and the file.
 * Sessions (tls.c) hold a reference to the settings they began with, so a reload never
 * touches an established connection.
 */
#include "core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#define TLS_MAX_CERT_LIST (64 * 1024) /* a client's certificate chain, bytes */

/* "KEY FILE: reason" (the OpenSSL error queue's last reason, or errno's). */
static broker_err ctx_fail(char *why, size_t cap, const char *key, const char *file,
                           const char *what)
{
    char reason[256];
    unsigned long e = ERR_peek_last_error();
    if (what)
        snprintf(reason, sizeof reason, "%s", what);
    else if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    else
        snprintf(reason, sizeof reason, "unusable");
    ERR_clear_error();
    snprintf(why, cap, "%s%s%s: %s", key, file ? " " : "", file ? file : "", reason);
    return BROKER_E_TLS;
}

/* A file that cannot be opened says why in errno's words, not OpenSSL's. */
static int readable(const char *file, char *err, size_t cap)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        snprintf(err, cap, "%s", strerror(errno));
        return 0;
    }
    fclose(f);
    return 1;
}

static broker_err load_files(SSL_CTX *ctx, const broker_options *o, char *why, size_t cap)
{
    char e[128];
    const char *key = o->tls_key ? o->tls_key : o->tls_cert;
    if (!readable(o->tls_cert, e, sizeof e))
        return ctx_fail(why, cap, "tls_cert", o->tls_cert, e);
    if (SSL_CTX_use_certificate_chain_file(ctx, o->tls_cert) != 1)
        return ctx_fail(why, cap, "tls_cert", o->tls_cert, "no PEM certificate in it");
    if (!readable(key, e, sizeof e))
        return ctx_fail(why, cap, "tls_key", key, e);
    BIO *in = BIO_new_file(key, "r");
    EVP_PKEY *pkey = in ? PEM_read_bio_PrivateKey(in, NULL, NULL, NULL) : NULL;
    BIO_free(in);
    if (!pkey)
        return ctx_fail(why, cap, "tls_key", key, "no PEM private key in it (or encrypted)");
    int ok = SSL_CTX_use_PrivateKey(ctx, pkey) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(pkey);
    if (!ok)
        return ctx_fail(why, cap, "tls_key", key, "does not match the certificate in tls_cert");
    if (o->tls_ca) {
        if (!readable(o->tls_ca, e, sizeof e))
            return ctx_fail(why, cap, "tls_ca", o->tls_ca, e);
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->tls_ca);
        if (SSL_CTX_load_verify_locations(ctx, o->tls_ca, NULL) != 1 || !names) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            return ctx_fail(why, cap, "tls_ca", o->tls_ca, "no PEM CA certificate in it");
        }
        SSL_CTX_set_client_CA_list(ctx, names);
    }
    return BROKER_OK;
}

broker_err net__tls_build(const broker_options *o, SSL_CTX **out, char *why, size_t cap)
{
    *out = NULL;
    if (!o->tls_cert)
        return ctx_fail(why, cap, "tls_cert", NULL, "not set");
    if (o->tls_min_version != 12 && o->tls_min_version != 13)
        return ctx_fail(why, cap, "tls_min_version", NULL, "must be 1.2 or 1.3");
    if (o->tls_verify_client != BROKER_TLS_VERIFY_NONE && !o->tls_ca)
        return ctx_fail(why, cap, "tls_verify_client", NULL, "needs tls_ca");
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return ctx_fail(why, cap, "TLS", NULL, "out of memory");
    SSL_CTX_set_min_proto_version(ctx, o->tls_min_version == 13 ? TLS1_3_VERSION
                                                                : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* No TLS 1.3 session tickets after the handshake: nothing resumes sessions here, and a
     * client that reads on one thread while it writes CONNECT on another (stomp.py) can
     * fail with an internal error when a ticket arrives during that first write. */
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_max_cert_list(ctx, TLS_MAX_CERT_LIST);
    static const unsigned char sid[] = "stompd";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
    const char *ciphers = o->tls_ciphers ? o->tls_ciphers : "ECDHE+AESGCM:ECDHE+CHACHA20";
    broker_err rc = BROKER_OK;
    if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1)
        rc = ctx_fail(why, cap, "tls_ciphers", ciphers, "no cipher matches");
    else if (o->tls_ciphersuites && SSL_CTX_set_ciphersuites(ctx, o->tls_ciphersuites) != 1)
        rc = ctx_fail(why, cap, "tls_ciphersuites", o->tls_ciphersuites, "no suite matches");
    else
        rc = load_files(ctx, o, why, cap);
    if (rc != BROKER_OK) {
        SSL_CTX_free(ctx);
        return rc;
    }
    *out = ctx;
    return BROKER_OK;
}

void net__tls_free_ctx(SSL_CTX *ctx)
{
    SSL_CTX_free(ctx);
}

broker_err net__tls_init(broker *b)
{
    char why[512];
    broker_err rc = net__tls_build(&b->o, &b->net.tls_ctx, why, sizeof why);
    if (rc != BROKER_OK)
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_TLS, 0, "%s", why);
    return rc;
}

broker_err net__tls_reload(broker *b)
{
    char why[512];
    SSL_CTX *ctx;
    if (!b->net.tls_ctx)
        return BROKER_E_TLS;
    if (net__tls_build(&b->o, &ctx, why, sizeof why) != BROKER_OK) {
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_TLS, 0,
                    "TLS certificate not reloaded, keeping the old one: %s", why);
        return BROKER_E_TLS;
    }
    /* Sessions hold a reference to the settings they began with. */
    SSL_CTX_free(b->net.tls_ctx);
    b->net.tls_ctx = ctx;
    broker__log(b, BROKER_LOG_INFO, BROKER_EV_TLS, 0, "TLS certificate reloaded from %s",
                b->o.tls_cert);
    return BROKER_OK;
}

void net__tls_free(broker *b)
{
    SSL_CTX_free(b->net.tls_ctx);
    b->net.tls_ctx = NULL;
    BIO_meth_free(b->net.tls_bio);
    b->net.tls_bio = NULL;
    free(b->net.tls_in);
    free(b->net.tls_stage);
    b->net.tls_in = b->net.tls_stage = NULL;
}
