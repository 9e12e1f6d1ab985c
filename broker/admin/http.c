/* http.c: the management listener and its HTTP connections: accept, read and parse one
 * request (http-parser), log it in (HTTP Basic through the broker's authenticate hooks),
 * hand it to api.c, write the answer and close.
 *
 * A connection is one request and one answer (Connection: close), so no state outlives a
 * request. Bounds: the head (ADMIN_MAX_HEAD, 431), the URL (414), the body (413), and the
 * time to send the request (connect_timeout_ms, then the connection is dropped). A
 * refused login is answered 401 only after auth_fail_delay_ms, as a STOMP one is. Each
 * connection counts as one broker handle until its last handle closed, so a stop waits.
 */
#include "admin/http.h"

#include <nettle/base64.h>
#include <nettle/sha2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return status >= 500 ? "Internal Server Error" : "Error";
    }
}

/* ---- closing ---------------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    http_conn *hc = h->data;
    if (--hc->handles > 0)
        return;
    broker *b = hc->b;
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        b->admin.conns = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    free(hc->resp);
    admin__tls_free(hc);
    free(hc);
    broker__handle_closed(b);
}

static void close_conn(http_conn *hc)
{
    if (hc->state == HC_CLOSING)
        return;
    hc->state = HC_CLOSING;
    admin__forget(hc);
    uv_close((uv_handle_t *)&hc->timer, on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&hc->tcp))
        uv_close((uv_handle_t *)&hc->tcp, on_handle_closed);
}

void admin__forget(http_conn *hc)
{
    if (hc->pending) {
        login__forget(hc->pending);
        hc->pending = NULL;
    }
    if (hc->job) {
        route__drain_forget(hc->job);
        hc->job = NULL;
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    close_conn(req->data);
}

static void on_written(uv_write_t *req, int status)
{
    http_conn *hc = req->data;
    if (hc->resp_cap)
        admin__buf_keep(hc->b, hc->resp, hc->resp_cap);
    else
        free(hc->resp);
    hc->resp = NULL;
    hc->resp_cap = 0;
    if (hc->state == HC_CLOSING)
        return;
    hc->sreq.data = hc;
    if (status < 0 || uv_shutdown(&hc->sreq, (uv_stream_t *)&hc->tcp, on_shutdown) != 0)
        close_conn(hc);
}

/* ---- answering ---------------------------------------------------------------------------- */

/* The answer's status line and headers for a body of len bytes: their length. */
static size_t head_of(char *head, size_t cap, int status, const char *ctype, size_t len,
                      const char *extra)
{
    int n = snprintf(head, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                     "Connection: close\r\n%s\r\n",
                     status, reason(status), ctype, len, extra ? extra : "");
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* hc->resp (head and body) goes out: encrypted first when the listener speaks TLS. */
static void send_resp(http_conn *hc)
{
    if (hc->ssl && admin__tls_wrap(hc) != 0) {
        close_conn(hc);
        return;
    }
    uv_buf_t buf = uv_buf_init(hc->resp, (unsigned)hc->resp_len);
    hc->wreq.data = hc;
    if (uv_write(&hc->wreq, (uv_stream_t *)&hc->tcp, &buf, 1, on_written) != 0) {
        free(hc->resp);
        hc->resp = NULL;
        close_conn(hc);
    }
}

static int start_answer(http_conn *hc)
{
    if (hc->state == HC_CLOSING || hc->state == HC_WRITING)
        return 0;
    hc->state = HC_WRITING;
    admin__forget(hc);
    uv_timer_stop(&hc->timer);
    return 1;
}

void admin__respond(http_conn *hc, int status, const char *ctype, const char *body, size_t len,
                    const char *extra)
{
    if (!start_answer(hc))
        return;
    char head[512];
    size_t n = head_of(head, sizeof head, status, ctype, len, extra);
    hc->resp = malloc(n + len);
    if (!hc->resp) {
        close_conn(hc);
        return;
    }
    memcpy(hc->resp, head, n);
    if (len)
        memcpy(hc->resp + n, body, len);
    hc->resp_len = n + len;
    send_resp(hc);
}

/* The body is moved up in its own buffer for the head: a large body is not copied into a
 * second allocation. */
void admin__respond_buf(http_conn *hc, int status, const char *ctype, admin_buf *o)
{
    if (!start_answer(hc)) {
        free(o->p);
        return;
    }
    char head[512];
    size_t n = head_of(head, sizeof head, status, ctype, o->len, NULL);
    char *p = o->p;
    size_t cap = o->cap;
    if (n + o->len > cap) {
        cap = n + o->len;
        p = realloc(o->p, cap);
    }
    if (!p) {
        free(o->p);
        close_conn(hc);
        return;
    }
    memmove(p + n, p, o->len);
    memcpy(p, head, n);
    hc->resp = p;
    hc->resp_len = n + o->len;
    hc->resp_cap = cap;
    send_resp(hc);
}

void admin__json(http_conn *hc, int status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(j);
    if (!text) {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        admin__respond(hc, 500, "application/json", oom, sizeof oom - 1, NULL);
        return;
    }
    size_t len = strlen(text);
    text[len] = '\0';
    char *full = malloc(len + 2);
    if (full) {
        memcpy(full, text, len);
        full[len] = '\n';
        admin__respond(hc, status, "application/json", full, len + 1, NULL);
        free(full);
    } else {
        admin__respond(hc, status, "application/json", text, len, NULL);
    }
    free(text);
}

void admin__error(http_conn *hc, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *j = json_object();
    if (j)
        json_object_set_new(j, "error", admin__jstr(msg, strlen(msg)));
    if (status == 401) {
        char *text = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
        json_decref(j);
        const char *body = text ? text : "{}";
        admin__respond(hc, 401, "application/json", body, strlen(body),
                       "WWW-Authenticate: Basic realm=\"stompd\", charset=\"UTF-8\"\r\n");
        free(text);
        return;
    }
    admin__json(hc, status, j);
}

void admin__not_allowed(http_conn *hc, const char *allow)
{
    static const char body[] = "{\"error\":\"method not allowed\"}\n";
    admin__respond(hc, 405, "application/json", body, sizeof body - 1, allow);
}

void admin__log_action(http_conn *hc, const char *action, const char *target,
                       const char *outcome)
{
    broker__log(hc->b, BROKER_LOG_INFO, BROKER_EV_ADMIN, 0, "login '%s' from %s: %s %s: %s",
                hc->login, hc->peer, action, target, outcome);
}

/* ---- logging in ---------------------------------------------------------------------- */

/* ---- remembered logins ------------------------------------------------------------ */

static void digest_of(const broker *b, const char *login, const char *pass, uint8_t *out)
{
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, sizeof b->admin.salt, b->admin.salt);
    sha256_update(&ctx, strlen(login) + 1, (const uint8_t *)login);
    sha256_update(&ctx, strlen(pass), (const uint8_t *)pass);
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, out);
}

static int remembered(broker *b, const uint8_t *digest)
{
    uint64_t now = uv_now(b->loop);
    for (int i = 0; i < ADMIN_REMEMBERED; i++)
        if (b->admin.remembered[i].until > now &&
            memcmp(b->admin.remembered[i].digest, digest, 32) == 0)
            return 1;
    return 0;
}

static void remember(broker *b, const uint8_t *digest)
{
    int slot = 0;
    for (int i = 1; i < ADMIN_REMEMBERED; i++)
        if (b->admin.remembered[i].until < b->admin.remembered[slot].until)
            slot = i;
    memcpy(b->admin.remembered[slot].digest, digest, 32);
    b->admin.remembered[slot].until = uv_now(b->loop) + ADMIN_REMEMBER_MS;
}

void broker_admin_forget_logins(broker *b)
{
    if (b)
        memset(b->admin.remembered, 0, sizeof b->admin.remembered);
}

static void on_refused(uv_timer_t *t)
{
    admin__error(t->data, 401, "login refused");
}

static void logged_in(http_conn *hc, int accepted)
{
    broker *b = hc->b;
    if (!accepted) {
        b->stats.auth_failures++;
        broker__log(b, BROKER_LOG_WARN, BROKER_EV_ADMIN, 0, "login '%s' from %s refused",
                    hc->login, hc->peer);
        hc->state = HC_AUTH;
        uv_timer_start(&hc->timer, on_refused, b->o.auth_fail_delay_ms, 0);
        return;
    }
    remember(b, hc->digest);
    hc->state = HC_WORKING;
    admin__handle(hc);
}

static void on_checked(void *arg, int accepted)
{
    http_conn *hc = arg;
    hc->pending = NULL;
    logged_in(hc, accepted);
}

/* "Basic base64(login:passcode)" into login and passcode: 0, or -1 when absent or bad. */
static int basic(const http_conn *hc, char *login, size_t lcap, char *pass, size_t pcap)
{
    const char *v = hc->auth;
    if (hc->auth_len < 6 || strncasecmp(v, "Basic ", 6) != 0)
        return -1;
    v += 6;
    while (*v == ' ')
        v++;
    size_t vl = strlen(v);
    uint8_t out[BASE64_DECODE_LENGTH(sizeof hc->auth)];
    size_t olen = sizeof out;
    struct base64_decode_ctx ctx;
    base64_decode_init(&ctx);
    if (!base64_decode_update(&ctx, &olen, out, vl, v) || !base64_decode_final(&ctx))
        return -1;
    uint8_t *colon = memchr(out, ':', olen);
    if (!colon || memchr(out, '\0', olen))
        return -1;
    size_t ll = (size_t)(colon - out), pl = olen - ll - 1;
    if (ll >= lcap || pl >= pcap)
        return -1;
    memcpy(login, out, ll);
    login[ll] = '\0';
    memcpy(pass, colon + 1, pl);
    pass[pl] = '\0';
    explicit_bzero(out, olen);
    return 0;
}

static void authenticate(http_conn *hc)
{
    broker *b = hc->b;
    if (!b->o.authenticate && !b->o.authenticate_async) {
        if (b->o.admin_open && hc->loopback_peer) {
            snprintf(hc->login, sizeof hc->login, "-");
            hc->state = HC_WORKING;
            admin__handle(hc);
        } else {
            admin__error(hc, 403, "the management API needs users (an auth file), or "
                                  "admin_open for loopback peers");
        }
        return;
    }
    char pass[512];
    if (basic(hc, hc->login, sizeof hc->login, pass, sizeof pass) != 0) {
        admin__error(hc, 401, "log in with HTTP Basic (a login of the broker)");
        return;
    }
    digest_of(b, hc->login, pass, hc->digest);
    if (remembered(b, hc->digest)) {
        explicit_bzero(pass, sizeof pass);
        hc->state = HC_WORKING;
        admin__handle(hc);
        return;
    }
    if (b->o.authenticate) {
        int ok = b->o.authenticate(b->o.auth_ctx, hc->login, pass) == 0;
        explicit_bzero(pass, sizeof pass);
        logged_in(hc, ok);
        return;
    }
    hc->state = HC_AUTH;
    broker_err rc = login__ask(b, hc->login, pass, on_checked, hc, &hc->pending);
    explicit_bzero(pass, sizeof pass);
    if (rc != BROKER_OK)
        admin__error(hc, 503, "out of memory");
}

/* ---- reading the request ------------------------------------------------------------- */

static http_conn *of_parser(http_parser *p)
{
    return p->data;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    http_conn *hc = of_parser(p);
    if (hc->url_len + n >= sizeof hc->url) {
        hc->too_big = 414;
        return 1;
    }
    memcpy(hc->url + hc->url_len, at, n);
    hc->url_len += n;
    hc->url[hc->url_len] = '\0';
    return 0;
}

static int on_field(http_parser *p, const char *at, size_t n)
{
    http_conn *hc = of_parser(p);
    if ((hc->head_bytes += n) > ADMIN_MAX_HEAD) {
        hc->too_big = 431;
        return 1;
    }
    if (hc->last_value) {
        hc->field_len = 0;
        hc->last_value = 0;
    }
    size_t room = sizeof hc->field - 1 - hc->field_len;
    size_t take = n < room ? n : room;
    memcpy(hc->field + hc->field_len, at, take);
    hc->field_len += take;
    hc->field[hc->field_len] = '\0';
    return 0;
}

static int on_value(http_parser *p, const char *at, size_t n)
{
    http_conn *hc = of_parser(p);
    if ((hc->head_bytes += n) > ADMIN_MAX_HEAD) {
        hc->too_big = 431;
        return 1;
    }
    if (!hc->last_value) {
        hc->last_value = 1;
        hc->in_auth = strcasecmp(hc->field, "authorization") == 0;
        if (hc->in_auth)
            hc->auth_len = 0;
    }
    if (!hc->in_auth)
        return 0;
    if (hc->auth_len + n >= sizeof hc->auth) {
        hc->too_big = 431;
        return 1;
    }
    memcpy(hc->auth + hc->auth_len, at, n);
    hc->auth_len += n;
    hc->auth[hc->auth_len] = '\0';
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    http_conn *hc = of_parser(p);
    if (p->content_length != ULLONG_MAX && p->content_length > ADMIN_MAX_BODY) {
        hc->too_big = 413;
        return 1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    (void)at;
    http_conn *hc = of_parser(p);
    hc->body_bytes += n;
    if (hc->body_bytes > ADMIN_MAX_BODY) {
        hc->too_big = 413;
        return 1;
    }
    return 0;
}

static int on_complete(http_parser *p)
{
    http_conn *hc = of_parser(p);
    hc->complete = 1;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    http_conn *hc = h->data;
    *buf = uv_buf_init(hc->inbuf, sizeof hc->inbuf);
}

/* The request is read (or cannot be): stop reading and answer. */
static void request_read(http_conn *hc, int bad)
{
    uv_read_stop((uv_stream_t *)&hc->tcp);
    if (hc->too_big)
        admin__error(hc, hc->too_big, "request too large (head %d bytes, body %d bytes at "
                                      "most)", ADMIN_MAX_HEAD, ADMIN_MAX_BODY);
    else if (bad)
        admin__error(hc, 400, "malformed HTTP request: %s",
                     http_errno_description(HTTP_PARSER_ERRNO(&hc->hp)));
    else
        authenticate(hc);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    http_conn *hc = st->data;
    if (nread == 0 || hc->state != HC_READING)
        return;
    if (nread < 0) {
        close_conn(hc);
        return;
    }
    if (!hc->ssl)
        admin__feed(hc, buf->base, (size_t)nread);
    else if (admin__tls_read(hc, buf->base, (size_t)nread) != 0)
        close_conn(hc);
}

void admin__feed(http_conn *hc, const char *p, size_t n)
{
    if (hc->state != HC_READING)
        return;
    size_t used = http_parser_execute(&hc->hp, &settings, p, n);
    if (hc->complete || hc->too_big)
        request_read(hc, 0);
    else if (HTTP_PARSER_ERRNO(&hc->hp) != HPE_OK || used != n)
        request_read(hc, 1);
}

static void on_deadline(uv_timer_t *t)
{
    close_conn(t->data); /* the request did not come in time */
}

/* ---- the listener ------------------------------------------------------------------------ */

static int is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) ||
               (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

static void name_peer(http_conn *hc)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[64] = "?";
    snprintf(hc->peer, sizeof hc->peer, "?");
    if (uv_tcp_getpeername(&hc->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    hc->loopback_peer = is_loopback(&ss);
    if (ss.ss_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *)&ss, ip, sizeof ip);
        snprintf(hc->peer, sizeof hc->peer, "[%s]:%d", ip,
                 ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port));
    } else {
        uv_ip4_name((const struct sockaddr_in *)&ss, ip, sizeof ip);
        snprintf(hc->peer, sizeof hc->peer, "%s:%d", ip,
                 ntohs(((const struct sockaddr_in *)&ss)->sin_port));
    }
}

void admin__accept(uv_stream_t *server, int status)
{
    admin_listener *l = server->data;
    broker *b = l->b;
    if (status < 0 || b->stopping)
        return;
    http_conn *hc = calloc(1, sizeof *hc);
    if (!hc) {
        net__drop(b, server);
        return;
    }
    hc->b = b;
    uv_tcp_init(b->loop, &hc->tcp);
    uv_timer_init(b->loop, &hc->timer);
    hc->tcp.data = hc;
    hc->timer.data = hc;
    hc->handles = 2;
    b->handles_open++;
    hc->next = b->admin.conns;
    if (hc->next)
        hc->next->prev = hc;
    b->admin.conns = hc;
    snprintf(hc->login, sizeof hc->login, "?");
    http_parser_init(&hc->hp, HTTP_REQUEST);
    hc->hp.data = hc;
    if (uv_accept(server, (uv_stream_t *)&hc->tcp) != 0 ||
        (l->tls && admin__tls_start(hc) != 0) ||
        uv_read_start((uv_stream_t *)&hc->tcp, on_alloc, on_read) != 0) {
        close_conn(hc);
        return;
    }
    name_peer(hc);
    uint32_t ms = b->o.connect_timeout_ms ? b->o.connect_timeout_ms : 10000;
    uv_timer_start(&hc->timer, on_deadline, ms, 0);
}

void admin__close(http_conn *hc)
{
    close_conn(hc);
}
