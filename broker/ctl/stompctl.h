/* stompctl.h: stompctl, the command-line client of stompd's management API: its HTTP
 * client (http.c) and the commands with their tables (stompctl.c).
 */
#ifndef STOMPCTL_H
#define STOMPCTL_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#define CTL_TIMEOUT_S 30

/* Exit codes (documented in --help and the README). */
enum {
    CTL_OK = 0,
    CTL_REFUSED = 1,  /* the broker answered with an error (400, 405, 409, 5xx) */
    CTL_USAGE = 2,    /* bad command line */
    CTL_UNREACHABLE = 3, /* no connection, no HTTP answer, or not JSON */
    CTL_AUTH = 4,     /* 401 or 403: login refused or needed */
    CTL_NOTFOUND = 5, /* 404: no such destination or connection */
};

typedef struct ctl_target {
    char host[256], port[16], prefix[256];
    int tls;            /* https:// */
    const char *user, *passcode;
    const char *cacert; /* PEM CAs the server's certificate must chain to (NULL: system's) */
} ctl_target;

/* One connection to the listener, plain or TLS (tls.c). */
typedef struct ctl_conn {
    int fd;
    struct ssl_ctx_st *ctx;
    struct ssl_st *ssl; /* NULL: plain */
} ctl_conn;

/* Start TLS on c->fd, verified against t->cacert and t->host. -1 with a message. */
int ctl_tls_open(ctl_conn *c, const ctl_target *t, char *err, size_t errlen);
int ctl_conn_send(ctl_conn *c, const char *p, size_t n); /* 0 or -1 */
ssize_t ctl_conn_recv(ctl_conn *c, char *p, size_t n);   /* bytes, 0 at the end, -1 */
void ctl_conn_close(ctl_conn *c);

typedef struct ctl_answer {
    int status;
    char *raw;         /* the whole answer (owned) */
    const char *body;  /* in raw */
    size_t body_len;
    json_t *json;      /* the body parsed, or NULL when it is not JSON */
} ctl_answer;

/* http://HOST:PORT[/PREFIX] or https://... into t. -1 with a message. */
int ctl_parse_url(const char *url, ctl_target *t, char *err, size_t errlen);
/* One request: 0 with *a filled (free with ctl_answer_free), or -1 with a message when no
 * HTTP answer came. */
int ctl_request(const ctl_target *t, const char *method, const char *path, ctl_answer *a,
                char *err, size_t errlen);
void ctl_answer_free(ctl_answer *a);
/* Percent-encode a name for a query string. */
void ctl_escape(const char *in, char *out, size_t cap);

#endif
