/* http.c: stompctl's HTTP client: one request per connection (Connection: close) to the
 * management listener (over TLS for https://, tls.c), with HTTP Basic, blocking sockets and
 * a timeout. The answer's status
 * and body are returned; the body is JSON (or text for /metrics).
 */
#include "stompctl.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_ANSWER (64u << 20)

int ctl_parse_url(const char *url, ctl_target *t, char *err, size_t errlen)
{
    const char *p = url;
    t->tls = strncmp(p, "https://", 8) == 0;
    if (t->tls)
        p += 8;
    else if (strncmp(p, "http://", 7) == 0)
        p += 7;
    else if (strstr(p, "://")) {
        snprintf(err, errlen, "%s: only http:// and https:// URLs are supported", url);
        return -1;
    }
    const char *host = p, *hend, *port = NULL;
    if (*p == '[') {
        host = p + 1;
        hend = strchr(p, ']');
        if (!hend) {
            snprintf(err, errlen, "%s: no ] after the IPv6 address", url);
            return -1;
        }
        p = hend + 1;
    } else {
        hend = p + strcspn(p, ":/");
        p = hend;
    }
    if (*p == ':') {
        port = p + 1;
        p += 1 + strcspn(p + 1, "/");
    }
    size_t hl = (size_t)(hend - host), pl = port ? (size_t)(p - port) : 0;
    if (!hl || hl >= sizeof t->host || pl >= sizeof t->port || (port && !pl)) {
        snprintf(err, errlen, "%s: not http://HOST:PORT", url);
        return -1;
    }
    memcpy(t->host, host, hl);
    t->host[hl] = '\0';
    if (port) {
        memcpy(t->port, port, pl);
        t->port[pl] = '\0';
    } else {
        snprintf(t->port, sizeof t->port, "%s", t->tls ? "443" : "80");
    }
    snprintf(t->prefix, sizeof t->prefix, "%s", strcmp(p, "/") == 0 ? "" : p);
    return 0;
}

static void base64(const char *in, char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
}

static int connect_to(const ctl_target *t, char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
    int rc = getaddrinfo(t->host, t->port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s:%s: %s", t->host, t->port, gai_strerror(rc));
        return -1;
    }
    int fd = -1, why = 0;
    for (ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        struct timeval tv = { CTL_TIMEOUT_S, 0 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            why = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, errlen, "cannot connect to %s:%s: %s", t->host, t->port, strerror(why));
    return fd;
}

/* The whole answer until the server closes: caller frees. */
static char *read_all(ctl_conn *c, size_t *len)
{
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (n == cap) {
            char *more = cap < MAX_ANSWER ? realloc(buf, cap * 2 + 1) : NULL;
            if (!more) {
                free(buf);
                return NULL;
            }
            buf = more;
            cap *= 2;
        }
        ssize_t r = ctl_conn_recv(c, buf + n, cap - n);
        if (r < 0) {
            free(buf);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

int ctl_request(const ctl_target *t, const char *method, const char *path, ctl_answer *a,
                char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    char cred[600], auth[900] = "";
    if (t->user) {
        snprintf(cred, sizeof cred, "%s:%s", t->user, t->passcode ? t->passcode : "");
        char b64[820];
        base64(cred, b64);
        snprintf(auth, sizeof auth, "Authorization: Basic %s\r\n", b64);
        memset(cred, 0, sizeof cred);
    }
    char *req = malloc(strlen(path) + strlen(t->prefix) + strlen(auth) + 512);
    if (!req) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int n = sprintf(req, "%s %s%s HTTP/1.1\r\nHost: %s:%s\r\n%sUser-Agent: stompctl\r\n"
                         "Connection: close\r\nContent-Length: 0\r\n\r\n",
                    method, t->prefix, path, t->host, t->port, auth);
    ctl_conn c = { connect_to(t, err, errlen), NULL, NULL };
    if (c.fd < 0 || (t->tls && ctl_tls_open(&c, t, err, errlen) != 0)) {
        ctl_conn_close(&c);
        free(req);
        return -1;
    }
    int ok = ctl_conn_send(&c, req, (size_t)n) == 0;
    free(req);
    size_t len = 0;
    char *all = ok ? read_all(&c, &len) : NULL;
    ctl_conn_close(&c);
    char *body = all ? strstr(all, "\r\n\r\n") : NULL;
    if (!all || !body || sscanf(all, "HTTP/1.%*d %d", &a->status) != 1) {
        snprintf(err, errlen, "no HTTP answer from %s:%s", t->host, t->port);
        free(all);
        return -1;
    }
    body += 4;
    a->raw = all;
    a->body = body;
    a->body_len = len - (size_t)(body - all);
    json_error_t je;
    a->json = json_loadb(body, a->body_len, 0, &je);
    return 0;
}

void ctl_answer_free(ctl_answer *a)
{
    json_decref(a->json);
    free(a->raw);
    memset(a, 0, sizeof *a);
}

void ctl_escape(const char *in, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < cap; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.~/", *p)) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
}
