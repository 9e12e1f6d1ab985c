/* http.h: what the admin layer's files share: one HTTP connection (http.c) and the
 * functions that answer its request: the API (api.c, actions.c), the metrics (metrics.c)
 * and the console's files (console.c).
 *
 * A connection carries one request: it is read and parsed (http-parser), logged in, then
 * answered (JSON, text or a file) and closed once the answer is written. Bodies of requests
 * are not used (actions take their arguments in the query string) and are bounded.
 */
#ifndef BROKER_ADMIN_HTTP_H
#define BROKER_ADMIN_HTTP_H

#include <jansson.h>

#include "core.h"

#define ADMIN_MAX_HEAD 8192   /* request line and headers (431 above) */
#define ADMIN_MAX_BODY 65536  /* request body (413 above) */

enum { HC_READING, HC_AUTH, HC_WORKING, HC_WRITING, HC_CLOSING };

struct http_conn {
    http_conn *prev, *next;
    broker *b;
    uv_tcp_t tcp;
    struct ssl_st *ssl; /* the TLS session of an HTTPS listener's connection, else NULL */
    uv_timer_t timer;  /* the request's deadline, then a refused login's delay */
    uv_write_t wreq;
    uv_shutdown_t sreq;
    int handles;       /* open handles: freed when the last closes */
    int state;         /* HC_* */
    int loopback_peer;
    http_parser hp;
    char url[2048];
    size_t url_len;
    char field[32];
    size_t field_len;
    char auth[1024];   /* the Authorization header */
    size_t auth_len;
    int in_auth;       /* the header being read is Authorization */
    int last_value;    /* the last callback was a header value */
    int too_big;       /* 431 (head), 413 (body), 414 (url) */
    size_t head_bytes, body_bytes;
    int complete;
    char *resp;
    size_t resp_len;
    size_t resp_cap; /* resp's allocation when it may become the broker's spare, or 0 */
    broker_auth *pending; /* a login check under way */
    struct drain *job;    /* a purge or move under way */
    char action[32];      /* the drain's action and target, for its log line */
    char target[256];
    uint8_t digest[32];   /* of the login and passcode being checked */
    char login[128];
    char peer[80];
    char inbuf[4096];
};

/* ---- connections (http.c) ---- */

/* A listener's connection callback: a new HTTP connection. */
void admin__accept(uv_stream_t *server, int status);
/* Close it now (a stop). */
void admin__close(http_conn *hc);

/* Plaintext of the request (decrypted, for HTTPS): parsed, and answered once complete. */
void admin__feed(http_conn *hc, const char *p, size_t n);

/* ---- HTTPS (https.c) ---- */

/* The connection's TLS session, from the broker's TLS settings: 0, or -1 (close it). */
int admin__tls_start(http_conn *hc);
void admin__tls_free(http_conn *hc);
/* Ciphertext read from the socket: decrypted into admin__feed, handshake records written.
 * -1: the session failed (logged; close the connection). */
int admin__tls_read(http_conn *hc, const char *p, size_t n);
/* Replace hc->resp by its encryption, followed by the close_notify. -1: failed. */
int admin__tls_wrap(http_conn *hc);

/* ---- answering (http.c) ---- */

/* Queue the answer (body copied) and close once written. extra: more header lines, each
 * ending in \r\n, or NULL. */
void admin__respond(http_conn *hc, int status, const char *ctype, const char *body, size_t len,
                    const char *extra);
/* A JSON answer; takes ownership of j (NULL: out of memory, 500). */
void admin__json(http_conn *hc, int status, json_t *j);
/* {"error": message} with that status. */
void admin__error(http_conn *hc, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 405 with an Allow header line (e.g. "Allow: GET\r\n"). */
void admin__not_allowed(http_conn *hc, const char *allow);
/* One log line for an action: login, peer, what, on what, and the outcome. */
void admin__log_action(http_conn *hc, const char *action, const char *target,
                       const char *outcome);
/* The request's method (HTTP_GET, ...), path (without the query) and a decoded query
 * parameter (1 when present; value NUL-terminated in out, cut at cap). */
int admin__method(const http_conn *hc);
/* With an ACL, the management API is for logins granted admin: on some destination for
 * the views, on dest itself for an action on it (dest NULL: the views). 1 when allowed;
 * 0 when refused, answered 403 and logged. */
int admin__permitted(http_conn *hc, const char *dest);
void admin__path(const http_conn *hc, char *out, size_t cap);
int admin__query(const http_conn *hc, const char *name, char *out, size_t cap);

/* ---- the request, once logged in ---- */

void admin__handle(http_conn *hc);      /* api.c: every path */
int admin__action(http_conn *hc, const char *path); /* actions.c: 1 when path is one */
void admin__metrics(http_conn *hc);     /* metrics.c */
/* config_api.c: /api/reload and /api/config (1 when path is one of them). */
int admin__config_api(http_conn *hc, const char *path);
/* console.c: the console file at path (1), or 0 when there is none. */
int admin__console(http_conn *hc, const char *path);
/* The connection goes away: drop what it waits for (a drain, a login check). */
void admin__forget(http_conn *hc);

/* ---- JSON helpers (api.c) ---- */

/* A JSON string of n bytes that may not be UTF-8 (bad bytes become U+FFFD). */
json_t *admin__jstr(const char *p, size_t n);
/* Every listed dest, sorted by name: caller frees. NULL with *n 0 when there is none, or
 * when out of memory (*oom set). */
dest_t **admin__sorted_dests(broker *b, size_t *n, int *oom);

/* ---- durable subscriptions (durable_api.c) ---- */

/* Into arr (the destinations, sorted by name): each backlog queue's durable_subscription,
 * and every topic with durable subscriptions that has no entry. 0, or -1 without memory. */
int admin__durable_list(broker *b, json_t *arr);
/* name is the broker's own (a backlog to delete, the record queue to change): the
 * refusal answered (1), else 0. */
int admin__durable_refuse(http_conn *hc, const char *name, int is_delete);

/* ---- text bodies (textbuf.c) ---- */

/* A growing body: zero-initialise; caller frees p. After oom every append is a no-op. */
typedef struct admin_buf {
    char *p;
    size_t len, cap;
    int oom;
} admin_buf;

/* Room for n more bytes (and a NUL): 1, or 0 with oom set. */
int admin__buf_reserve(admin_buf *o, size_t n);
void admin__buf_add(admin_buf *o, const char *p, size_t n);
void admin__buf_put(admin_buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void admin__buf_u64(admin_buf *o, uint64_t v);
void admin__buf_i64(admin_buf *o, int64_t v);
/* n bytes (maybe not UTF-8) as json_dumps writes admin__jstr(p, n), quotes included. */
void admin__buf_jstr(admin_buf *o, const char *p, size_t n);
/* v as json_dumps writes json_real(v). */
void admin__buf_real(admin_buf *o, double v);
/* An empty body, in the broker's spare buffer when there is one. */
admin_buf admin__buf_take(broker *b);
/* Caller gives up p (cap bytes): kept as the spare when larger than it, else freed. */
void admin__buf_keep(broker *b, char *p, size_t cap);
/* admin__respond with o's bytes as the body; takes ownership of o->p (freed even on
 * failure). */
void admin__respond_buf(http_conn *hc, int status, const char *ctype, admin_buf *o);

#endif
