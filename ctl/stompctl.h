/* stompctl.h: stompctl, the command-line client of stompd's management API: its HTTP
 * client (http.c) and the commands with their tables (stompctl.c).
 */
#ifndef STOMPCTL_H
#define STOMPCTL_H

#include <jansson.h>
#include <stddef.h>

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
    const char *user, *passcode;
} ctl_target;

typedef struct ctl_answer {
    int status;
    char *raw;         /* the whole answer (owned) */
    const char *body;  /* in raw */
    size_t body_len;
    json_t *json;      /* the body parsed, or NULL when it is not JSON */
} ctl_answer;

/* http://HOST:PORT[/PREFIX] into t. -1 with a message. */
int ctl_parse_url(const char *url, ctl_target *t, char *err, size_t errlen);
/* One request: 0 with *a filled (free with ctl_answer_free), or -1 with a message when no
 * HTTP answer came. */
int ctl_request(const ctl_target *t, const char *method, const char *path, ctl_answer *a,
                char *err, size_t errlen);
void ctl_answer_free(ctl_answer *a);
/* Percent-encode a name for a query string. */
void ctl_escape(const char *in, char *out, size_t cap);

#endif
