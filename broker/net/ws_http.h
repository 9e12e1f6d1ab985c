/* ws_http.h: the HTTP request in front of a WebSocket session (ws_http.c), used by
 * ws.c: parse it with http-parser, then decide: 101 Switching Protocols, a
 * static file, or an HTTP error that ends the connection.
 */
#ifndef WS_HTTP_H
#define WS_HTTP_H

#include <http_parser.h>
#include <stddef.h>

#include "broker.h"

/* Bytes of request line and headers accepted before 431 (browsers send about 1 KiB). */
#define WS_HTTP_MAX_HEAD 8192

/* One header value we care about; over: longer than the buffer (treated as invalid). */
typedef struct ws_hval {
    char v[512];
    size_t len;
    int present, over;
} ws_hval;

enum { WH_UPGRADE, WH_CONNECTION, WH_KEY, WH_VERSION, WH_PROTOCOL, WH_ORIGIN, WH_HOST, WH__N };

typedef struct ws_req {
    http_parser hp;
    char url[1024];
    size_t url_len;
    int url_over;
    char field[40];
    size_t field_len;
    int field_over;
    int cur;      /* WH_* of the value being read, or -1 */
    int in_value; /* the last callback was a header value */
    ws_hval h[WH__N];
    size_t head_bytes;
    int complete, bad, too_big;
} ws_req;

enum { WS_HTTP_MORE, WS_HTTP_DONE, WS_HTTP_BAD };

void ws_http__init(ws_req *r);
/* Feed request bytes. DONE: the request is complete and *used bytes were its own (the
 * rest already belongs to the WebSocket); BAD: malformed or too big (respond anyway). */
int ws_http__feed(ws_req *r, const char *p, size_t n, size_t *used);

/* The answer to a complete (or BAD) request: *resp (caller owns, free()) holds the exact
 * response bytes. Returns 1 when it is 101 (the session starts; *protocol is the chosen
 * subprotocol or NULL, static), 0 when the connection ends after the response, -1 when
 * out of memory. *why: a static line for the log (NULL for a good upgrade). */
int ws_http__respond(const ws_req *r, const broker_options *o, char **resp, size_t *resp_len,
                     const char **protocol, const char **why);

#endif
