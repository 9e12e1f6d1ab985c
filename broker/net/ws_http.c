/* ws_http.c: the opening HTTP request of a WebSocket port (RFC 6455 section 4.2).
 *
 * http-parser reads the request; only the headers the handshake needs are kept, each in
 * a bounded buffer, and the whole head is bounded by WS_HTTP_MAX_HEAD. Every refusal is
 * an HTTP response with a one-line plain-text reason and "Connection: close", so a client
 * sees why; no session exists until 101 went out. Static files (the web page) come from
 * broker_options.web_root, one directory level, names of [A-Za-z0-9._-] only.
 */
#include "ws_http.h"

#include <fcntl.h>
#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* Largest static file served: the page and the STOMP client bundle are far below. */
#define WS_MAX_FILE (4u << 20)

static const char *const hnames[WH__N] = {
    "upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
    "sec-websocket-protocol", "origin", "host",
};

/* Subprotocols in order of preference: the highest STOMP version the client offers. */
static const char *const protocols[] = { "v12.stomp", "v11.stomp", "v10.stomp" };

static void commit_header(ws_req *r)
{
    r->cur = -1;
    if (r->field_over)
        return;
    for (int i = 0; i < WH__N; i++) {
        if (r->field_len == strlen(hnames[i]) &&
            strncasecmp(r->field, hnames[i], r->field_len) == 0) {
            ws_hval *h = &r->h[i];
            /* A repeated header continues the list (RFC 7230 3.2.2). */
            if (h->present && !h->over) {
                if (h->len + 1 >= sizeof h->v)
                    h->over = 1;
                else
                    h->v[h->len++] = ',';
            }
            h->present = 1;
            r->cur = i;
            return;
        }
    }
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    ws_req *r = p->data;
    if (r->url_len + len >= sizeof r->url) {
        r->url_over = 1;
        return 0;
    }
    memcpy(r->url + r->url_len, at, len);
    r->url_len += len;
    r->url[r->url_len] = '\0';
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    ws_req *r = p->data;
    if (r->in_value) {
        r->in_value = 0;
        r->field_len = 0;
        r->field_over = 0;
    }
    if (r->field_len + len > sizeof r->field)
        r->field_over = 1;
    else {
        memcpy(r->field + r->field_len, at, len);
        r->field_len += len;
    }
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    ws_req *r = p->data;
    if (!r->in_value) {
        r->in_value = 1;
        commit_header(r);
    }
    if (r->cur < 0)
        return 0;
    ws_hval *h = &r->h[r->cur];
    if (h->over || h->len + len >= sizeof h->v) {
        h->over = 1;
        return 0;
    }
    memcpy(h->v + h->len, at, len);
    h->len += len;
    h->v[h->len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    ws_req *r = p->data;
    r->complete = 1;
    http_parser_pause(p, 1); /* what follows belongs to the WebSocket */
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_message_complete = on_message_complete,
};

void ws_http__init(ws_req *r)
{
    memset(r, 0, sizeof *r);
    http_parser_init(&r->hp, HTTP_REQUEST);
    r->hp.data = r;
    r->cur = -1;
}

int ws_http__feed(ws_req *r, const char *p, size_t n, size_t *used)
{
    size_t room = WS_HTTP_MAX_HEAD - r->head_bytes;
    size_t take = n < room ? n : room;
    size_t got = http_parser_execute(&r->hp, &settings, p, take);
    r->head_bytes += got;
    *used = got;
    enum http_errno e = HTTP_PARSER_ERRNO(&r->hp);
    if (r->complete)
        return WS_HTTP_DONE;
    if (e != HPE_OK && e != HPE_PAUSED) {
        r->bad = 1;
        return WS_HTTP_BAD;
    }
    if (r->head_bytes >= WS_HTTP_MAX_HEAD) {
        r->too_big = 1;
        return WS_HTTP_BAD;
    }
    return WS_HTTP_MORE;
}

/* ---- answers ------------------------------------------------------------------------ */

static int build(char **resp, size_t *resp_len, const char *status, const char *extra,
                 const char *ctype, const char *body, size_t body_len)
{
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\n%sContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, extra, ctype, body_len);
    if (n < 0 || (size_t)n >= sizeof head)
        return -1;
    char *out = malloc((size_t)n + body_len);
    if (!out)
        return -1;
    memcpy(out, head, (size_t)n);
    if (body_len)
        memcpy(out + n, body, body_len);
    *resp = out;
    *resp_len = (size_t)n + body_len;
    return 0;
}

/* A refusal: status line, extra header lines, reason as the plain-text body (+ LF). */
static int refuse(char **resp, size_t *resp_len, const char **why, const char *status,
                  const char *extra, const char *reason)
{
    char body[200];
    int n = snprintf(body, sizeof body, "%s\n", reason);
    *why = reason;
    if (build(resp, resp_len, status, extra, "text/plain; charset=utf-8", body, (size_t)n))
        return -1;
    return 0;
}

/* Is tok one of the comma-separated, blank-padded, case-insensitive items of list? */
static int has_token(const char *list, size_t len, const char *tok)
{
    size_t tl = strlen(tok);
    size_t i = 0;
    while (i < len) {
        while (i < len && (list[i] == ' ' || list[i] == '\t' || list[i] == ','))
            i++;
        size_t s = i;
        while (i < len && list[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (list[e - 1] == ' ' || list[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(list + s, tok, tl) == 0)
            return 1;
    }
    return 0;
}

/* A Sec-WebSocket-Key is 16 random bytes in base64: 24 characters. */
static int key_valid(const ws_hval *k)
{
    if (!k->present || k->over || k->len != 24)
        return 0;
    struct base64_decode_ctx ctx;
    uint8_t out[BASE64_DECODE_LENGTH(24)];
    size_t outlen = sizeof out;
    base64_decode_init(&ctx);
    if (!base64_decode_update(&ctx, &outlen, out, k->len, k->v) || !base64_decode_final(&ctx))
        return 0;
    return outlen == 16;
}

static void accept_value(const ws_hval *k, char out[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE) + 1])
{
    struct sha1_ctx ctx;
    uint8_t digest[SHA1_DIGEST_SIZE];
    sha1_init(&ctx);
    sha1_update(&ctx, k->len, (const uint8_t *)k->v);
    sha1_update(&ctx, sizeof WS_GUID - 1, (const uint8_t *)WS_GUID);
    sha1_digest(&ctx, sizeof digest, digest);
    base64_encode_raw(out, sizeof digest, digest);
    out[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)] = '\0';
}

static const char *content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return "application/octet-stream";
    if (strcmp(dot, ".html") == 0)
        return "text/html; charset=utf-8";
    if (strcmp(dot, ".js") == 0)
        return "text/javascript; charset=utf-8";
    if (strcmp(dot, ".css") == 0)
        return "text/css; charset=utf-8";
    if (strcmp(dot, ".map") == 0 || strcmp(dot, ".json") == 0)
        return "application/json";
    return "application/octet-stream";
}

/* A file of web_root by its request path: 1 served, 0 not found, -1 out of memory.
 * The files are small and local: read at once. */
static int serve_file(const broker_options *o, const char *path, size_t plen, char **resp,
                      size_t *resp_len)
{
    if (!o->web_root || plen < 1 || path[0] != '/')
        return 0;
    const char *name = plen == 1 ? "index.html" : path + 1;
    size_t nlen = plen == 1 ? strlen(name) : plen - 1;
    if (nlen == 0 || nlen > 255 || name[0] == '.')
        return 0;
    for (size_t i = 0; i < nlen; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    char fpath[4096 + 256];
    int n = snprintf(fpath, sizeof fpath, "%s/%.*s", o->web_root, (int)nlen, name);
    if (n < 0 || (size_t)n >= sizeof fpath)
        return 0;
    int fd = open(fpath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    struct stat st;
    char *body = NULL;
    int rc = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size <= WS_MAX_FILE) {
        size_t size = (size_t)st.st_size;
        body = malloc(size ? size : 1);
        size_t got = 0;
        while (body && got < size) {
            ssize_t k = read(fd, body + got, size - got);
            if (k <= 0)
                break;
            got += (size_t)k;
        }
        if (!body)
            rc = -1;
        else if (got == size)
            rc = build(resp, resp_len, "200 OK", "Cache-Control: no-cache\r\n",
                       content_type(fpath), body, size) == 0 ? 1 : -1;
    }
    free(body);
    close(fd);
    return rc;
}

int ws_http__respond(const ws_req *r, const broker_options *o, char **resp, size_t *resp_len,
                     const char **protocol, const char **why)
{
    *protocol = NULL;
    *why = NULL;
    int rc;
#define REFUSE(status, extra, reason)                                                       \
    return refuse(resp, resp_len, why, status, extra, reason) ? -1 : 0
    if (r->too_big)
        REFUSE("431 Request Header Fields Too Large", "", "request head too large");
    if (r->bad || !r->complete || r->url_over)
        REFUSE("400 Bad Request", "", "malformed HTTP request");
    if (r->hp.method != HTTP_GET)
        REFUSE("405 Method Not Allowed", "Allow: GET\r\n", "only GET is allowed");
    if (r->hp.http_major < 1 || (r->hp.http_major == 1 && r->hp.http_minor < 1))
        REFUSE("400 Bad Request", "", "HTTP/1.1 or later is required");
    size_t plen = strcspn(r->url, "?#");
    const char *path = o->ws_path ? o->ws_path : "/ws";
    if (plen != strlen(path) || strncmp(r->url, path, plen) != 0) {
        rc = serve_file(o, r->url, plen, resp, resp_len);
        if (rc == 1) {
            *why = "file";
            return 0;
        }
        if (rc < 0)
            return -1;
        REFUSE("404 Not Found", "", "not found");
    }
    const ws_hval *h = r->h;
    if (!h[WH_UPGRADE].present || !has_token(h[WH_UPGRADE].v, h[WH_UPGRADE].len, "websocket") ||
        !h[WH_CONNECTION].present ||
        !has_token(h[WH_CONNECTION].v, h[WH_CONNECTION].len, "upgrade"))
        REFUSE("426 Upgrade Required", "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
               "a WebSocket upgrade is required");
    if (!h[WH_HOST].present)
        REFUSE("400 Bad Request", "", "missing Host header");
    if (!h[WH_VERSION].present || h[WH_VERSION].over || strcmp(h[WH_VERSION].v, "13") != 0)
        REFUSE("426 Upgrade Required", "Sec-WebSocket-Version: 13\r\n",
               "unsupported Sec-WebSocket-Version (13 is)");
    if (!key_valid(&h[WH_KEY]))
        REFUSE("400 Bad Request", "", "missing or invalid Sec-WebSocket-Key");
    if (o->ws_origins && h[WH_ORIGIN].present &&
        (h[WH_ORIGIN].over ||
         !has_token(o->ws_origins, strlen(o->ws_origins), h[WH_ORIGIN].v)))
        REFUSE("403 Forbidden", "", "origin not allowed");
    /* RFC 6455 4.2.2: with none of ours offered, answer without the header. */
    if (h[WH_PROTOCOL].present && !h[WH_PROTOCOL].over)
        for (size_t i = 0; i < sizeof protocols / sizeof *protocols; i++)
            if (has_token(h[WH_PROTOCOL].v, h[WH_PROTOCOL].len, protocols[i])) {
                *protocol = protocols[i];
                break;
            }
#undef REFUSE
    char acc[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE) + 1];
    accept_value(&h[WH_KEY], acc);
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
                     acc, *protocol ? "Sec-WebSocket-Protocol: " : "",
                     *protocol ? *protocol : "", *protocol ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof head)
        return -1;
    *resp = malloc((size_t)n);
    if (!*resp)
        return -1;
    memcpy(*resp, head, (size_t)n);
    *resp_len = (size_t)n;
    return 1;
}
