/* test_ws.c: STOMP over WebSocket (transport_ws.c, ws_http.c) on loopback sockets with a
 * raw client, asserting exact bytes: the opening handshake and its refusals (HTTP status,
 * headers, reason; no session), subprotocol choice, frames split over messages and
 * several frames in one message, fragmented and binary messages, ping/pong, 1 MiB messages
 * both ways, the message size limit, UTF-8, heart-beats, the close handshake, and a
 * WebSocket session and a TCP session sharing destinations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testlib.h"

/* RFC 6455 section 1.3's example key and its accept value. */
#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

enum { OP_CONT = 0, OP_TEXT = 1, OP_BIN = 2, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };

/* ---- a broker with a WebSocket listener ---- */

typedef struct wsb {
    tb *t;
    int ws_port;
} wsb;

static void listen_ws(broker *b, void *arg)
{
    int *port = arg;
    if (broker_listen_ws(b, "127.0.0.1", 0, port) != BROKER_OK)
        *port = -1;
}

static wsb start(broker_options *o)
{
    broker_options def;
    if (!o) {
        broker_options_init(&def);
        o = &def;
    }
    wsb w = { tb_start(o), 0 };
    assert_non_null(w.t);
    tb_call(w.t, listen_ws, &w.ws_port);
    assert_true(w.ws_port > 0);
    return w;
}

/* ---- a raw client ---- */

/* rcvbuf: 0 for the system's, else a small receive buffer (set before connecting, so
 * the window is negotiated with it). */
static int dial_rcvbuf(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    if (rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int dial(int port)
{
    return dial_rcvbuf(port, 0);
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n) {
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        assert_true(k > 0);
        b += k;
        n -= (size_t)k;
    }
}

/* Read exactly n bytes: 0, -1 timeout, -2 closed. */
static int recv_n(int fd, void *p, size_t n)
{
    char *b = p;
    while (n) {
        struct pollfd pf = { fd, POLLIN, 0 };
        if (poll(&pf, 1, TL_TIMEOUT_MS) <= 0)
            return -1;
        ssize_t k = recv(fd, b, n, 0);
        if (k <= 0)
            return -2;
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Everything until the server closes (asserts it does): caller frees. */
static char *read_to_close(int fd, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        struct pollfd pf = { fd, POLLIN, 0 };
        assert_true(poll(&pf, 1, TL_TIMEOUT_MS) > 0);
        if (n == cap)
            buf = realloc(buf, (cap *= 2) + 1);
        ssize_t k = recv(fd, buf + n, cap - n, 0);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The response head (through the blank line), read byte by byte so nothing after it is
 * consumed. */
static void read_head(int fd, char *out, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        assert_int_equal(recv_n(fd, out + n, 1), 0);
        n++;
        if (n >= 4 && memcmp(out + n - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    out[n] = '\0';
}

static char *request(const char *path, const char *extra)
{
    static char req[2048];
    snprintf(req, sizeof req,
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\n%s\r\n",
             path, extra);
    return req;
}

/* Open a WebSocket with protocols offered (NULL: none); asserts the 101. */
static int ws_open_rcvbuf(int port, const char *protocols, const char *expect_proto,
                          int rcvbuf)
{
    int fd = dial_rcvbuf(port, rcvbuf);
    char extra[512];
    snprintf(extra, sizeof extra, "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n%s%s%s",
             protocols ? "Sec-WebSocket-Protocol: " : "", protocols ? protocols : "",
             protocols ? "\r\n" : "");
    const char *req = request("/ws", extra);
    send_all(fd, req, strlen(req));
    char head[1024], want[512];
    read_head(fd, head, sizeof head);
    snprintf(want, sizeof want,
             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Accept: " ACCEPT "\r\n%s%s%s\r\n",
             expect_proto ? "Sec-WebSocket-Protocol: " : "", expect_proto ? expect_proto : "",
             expect_proto ? "\r\n" : "");
    assert_string_equal(head, want);
    return fd;
}

static int ws_open(int port, const char *protocols, const char *expect_proto)
{
    return ws_open_rcvbuf(port, protocols, expect_proto, 0);
}

/* A client frame: masked, as RFC 6455 requires. */
static void ws_frame(int fd, int opcode, int fin, const void *payload, size_t len)
{
    static const uint8_t mask[4] = { 0x12, 0x34, 0x56, 0x78 };
    uint8_t *f = malloc(14 + len);
    size_t n = 0;
    f[n++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    if (len < 126) {
        f[n++] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        f[n++] = 0x80 | 126;
        f[n++] = (uint8_t)(len >> 8);
        f[n++] = (uint8_t)len;
    } else {
        f[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            f[n++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    memcpy(f + n, mask, 4);
    n += 4;
    for (size_t i = 0; i < len; i++)
        f[n + i] = ((const uint8_t *)payload)[i] ^ mask[i % 4];
    send_all(fd, f, n + len);
    free(f);
}

static void ws_text(int fd, const char *s)
{
    ws_frame(fd, OP_TEXT, 1, s, strlen(s) + 1); /* with the frame's NUL */
}

typedef struct wmsg {
    int opcode, fin;
    char *data;
    size_t len;
} wmsg;

/* One server frame: 0, -1 timeout, -2 closed. Server frames are never masked. */
static int ws_read(int fd, wmsg *m)
{
    uint8_t h[2];
    int rc = recv_n(fd, h, 2);
    if (rc)
        return rc;
    assert_int_equal(h[1] & 0x80, 0);
    m->fin = h[0] >> 7;
    m->opcode = h[0] & 15;
    uint64_t len = h[1] & 127;
    if (len == 126) {
        uint8_t e[2];
        assert_int_equal(recv_n(fd, e, 2), 0);
        len = (uint64_t)e[0] << 8 | e[1];
    } else if (len == 127) {
        uint8_t e[8];
        assert_int_equal(recv_n(fd, e, 8), 0);
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | e[i];
    }
    m->len = (size_t)len;
    m->data = malloc(m->len + 1);
    assert_int_equal(recv_n(fd, m->data, m->len), 0);
    m->data[m->len] = '\0';
    return 0;
}

/* The next data message (a STOMP frame or heart-beat), which must be text. */
static wmsg ws_expect(int fd, const char *prefix)
{
    wmsg m;
    assert_int_equal(ws_read(fd, &m), 0);
    assert_int_equal(m.fin, 1);
    assert_int_equal(m.opcode, OP_TEXT);
    if (strncmp(m.data, prefix, strlen(prefix)) != 0)
        fail_msg("expected %s, got %.60s", prefix, m.data);
    return m;
}

static void ws_expect_free(int fd, const char *prefix)
{
    wmsg m = ws_expect(fd, prefix);
    /* One STOMP frame per message: it ends with its NUL and nothing follows. */
    assert_int_equal(m.data[m.len - 1], '\0');
    assert_ptr_equal(memchr(m.data, '\0', m.len), m.data + m.len - 1);
    free(m.data);
}

/* The server's close frame with this code, then the end of the connection. */
static void expect_close(int fd, uint16_t code)
{
    wmsg m;
    assert_int_equal(ws_read(fd, &m), 0);
    assert_int_equal(m.opcode, OP_CLOSE);
    assert_true(m.len >= 2);
    assert_int_equal(((uint8_t)m.data[0] << 8) | (uint8_t)m.data[1], code);
    free(m.data);
    uint8_t b;
    assert_int_equal(recv_n(fd, &b, 1), -2);
}

static void ws_connect_stomp(int fd)
{
    ws_text(fd, "CONNECT\naccept-version:1.2\nhost:localhost\n\n");
    ws_expect_free(fd, "CONNECTED\nversion:1.2\n");
}

static void finish(wsb w)
{
    assert_int_equal(tb_stop(w.t), 0);
}

/* ---- the opening handshake ---- */

static void test_handshake_subprotocols(void **state)
{
    (void)state;
    wsb w = start(NULL);
    /* As browsers send them: the highest STOMP version offered wins. */
    int fd = ws_open(w.ws_port, "v10.stomp, v11.stomp, v12.stomp", "v12.stomp");
    close(fd);
    fd = ws_open(w.ws_port, "v10.stomp,v11.stomp", "v11.stomp");
    close(fd);
    fd = ws_open(w.ws_port, "v10.stomp", "v10.stomp");
    close(fd);
    /* None of ours, or none at all: no Sec-WebSocket-Protocol in the answer. */
    fd = ws_open(w.ws_port, "mqtt", NULL);
    close(fd);
    fd = ws_open(w.ws_port, NULL, NULL);
    ws_connect_stomp(fd);
    close(fd);
    finish(w);
}

/* A refused request: the exact response, then the server closes; no session started. */
static void refused(wsb w, const char *req, const char *want)
{
    int fd = dial(w.ws_port);
    send_all(fd, req, strlen(req));
    size_t n;
    char *got = read_to_close(fd, &n);
    assert_string_equal(got, want);
    free(got);
    close(fd);
}

/* Bigger than the server's bound on a request head (8 KiB). */
#define WS_BIG_HEAD_TEST 9000

static void test_handshake_refusals(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.ws_origins = "http://good.example, https://also.example";
    wsb w = start(&o);
    refused(w, request("/ws", "Sec-WebSocket-Version: 13\r\n"),
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 37\r\nConnection: close\r\n\r\n"
            "missing or invalid Sec-WebSocket-Key\n");
    refused(w, request("/ws", "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n"),
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 37\r\nConnection: close\r\n\r\n"
            "missing or invalid Sec-WebSocket-Key\n");
    refused(w, request("/ws", "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 8\r\n"),
            "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 42\r\nConnection: close\r\n\r\n"
            "unsupported Sec-WebSocket-Version (13 is)\n");
    refused(w, request("/ws", "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n"
                              "Origin: http://evil.example\r\n"),
            "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 19\r\nConnection: close\r\n\r\n"
            "origin not allowed\n");
    refused(w, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n",
            "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\n"
            "Sec-WebSocket-Version: 13\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 32\r\nConnection: close\r\n\r\n"
            "a WebSocket upgrade is required\n");
    refused(w, "POST /ws HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 20\r\nConnection: close\r\n\r\n"
            "only GET is allowed\n");
    refused(w, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 10\r\nConnection: close\r\n\r\nnot found\n");
    refused(w, "HELLO\r\n\r\n",
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 23\r\nConnection: close\r\n\r\nmalformed HTTP request\n");
    /* A head over the bound. */
    char *big = malloc(WS_BIG_HEAD_TEST);
    int n = snprintf(big, WS_BIG_HEAD_TEST, "GET /ws HTTP/1.1\r\nHost: x\r\nX-Pad: ");
    memset(big + n, 'a', WS_BIG_HEAD_TEST - (size_t)n - 5);
    memcpy(big + WS_BIG_HEAD_TEST - 5, "\r\n\r\n", 5);
    refused(w, big,
            "HTTP/1.1 431 Request Header Fields Too Large\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 23\r\nConnection: close\r\n\r\nrequest head too large\n");
    free(big);
    broker_stats st;
    tb_stats(w.t, &st);
    assert_int_equal(st.frames_in, 0);
    assert_int_equal(st.frames_out, 0);
    /* Allowed origins, and clients without Origin (not browsers), get their session. */
    int fd = dial(w.ws_port);
    const char *req = request("/ws", "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n"
                                     "Origin: https://also.example\r\n");
    send_all(fd, req, strlen(req));
    char head[512];
    read_head(fd, head, sizeof head);
    assert_non_null(strstr(head, "101 Switching Protocols"));
    ws_connect_stomp(fd);
    close(fd);
    fd = ws_open(w.ws_port, NULL, NULL);
    ws_connect_stomp(fd);
    close(fd);
    finish(w);
}

/* ---- messages and frames ---- */

static void test_frame_split_over_messages(void **state)
{
    (void)state;
    wsb w = start(NULL);
    int fd = ws_open(w.ws_port, "v12.stomp", "v12.stomp");
    /* CONNECT in three messages: text, binary, then a fragmented text message with a
     * ping between its fragments. */
    const char *part1 = "CONNECT\naccept-ver";
    const char *part2 = "sion:1.2\nhost:loc";
    ws_frame(fd, OP_TEXT, 1, part1, strlen(part1));
    ws_frame(fd, OP_BIN, 1, part2, strlen(part2));
    ws_frame(fd, OP_TEXT, 0, "alho", 4);
    ws_frame(fd, OP_PING, 1, "ping", 4);
    wmsg m;
    assert_int_equal(ws_read(fd, &m), 0);
    assert_int_equal(m.opcode, OP_PONG);
    assert_int_equal(m.len, 4);
    assert_memory_equal(m.data, "ping", 4);
    free(m.data);
    ws_frame(fd, OP_CONT, 0, "st\n", 3);
    ws_frame(fd, OP_CONT, 1, "\n\0", 2);
    ws_expect_free(fd, "CONNECTED\nversion:1.2\n");
    /* Several frames in one message: each answer comes in a message of its own. */
    const char three[] = "SUBSCRIBE\nid:s\ndestination:/topic/ws\n\n\0"
                         "SEND\ndestination:/topic/ws\n\none\0\n"
                         "SEND\ndestination:/topic/ws\nreceipt:r1\n\ntwo\0";
    ws_frame(fd, OP_TEXT, 1, three, sizeof three - 1);
    wmsg a = ws_expect(fd, "MESSAGE\n");
    assert_non_null(strstr(a.data, "\n\none"));
    assert_int_equal(a.data[a.len - 1], '\0');
    free(a.data);
    wmsg b = ws_expect(fd, "MESSAGE\n");
    assert_non_null(strstr(b.data, "\n\ntwo"));
    free(b.data);
    wmsg r = ws_expect(fd, "RECEIPT\n");
    assert_memory_equal(r.data, "RECEIPT\nreceipt-id:r1\n\n\0", r.len);
    free(r.data);
    /* Binary bodies go out as binary messages. */
    const char bin[] = "SEND\ndestination:/topic/ws\ncontent-length:2\n\n\xff\x00\0";
    ws_frame(fd, OP_BIN, 1, bin, sizeof bin - 1);
    assert_int_equal(ws_read(fd, &m), 0);
    assert_int_equal(m.opcode, OP_BIN);
    assert_memory_equal(m.data + m.len - 4, "\n\xff\x00\0", 4);
    free(m.data);
    /* DISCONNECT: its RECEIPT, then our close frame, and the peer's answer ends it. */
    ws_text(fd, "DISCONNECT\nreceipt:bye\n\n");
    ws_expect_free(fd, "RECEIPT\nreceipt-id:bye\n");
    uint8_t cl[4];
    assert_int_equal(recv_n(fd, cl, 4), 0);
    assert_memory_equal(cl, "\x88\x02\x03\xe8", 4);
    ws_frame(fd, OP_CLOSE, 1, "\x03\xe8", 2);
    assert_int_equal(recv_n(fd, cl, 1), -2);
    close(fd);
    finish(w);
}

static void test_client_close(void **state)
{
    (void)state;
    wsb w = start(NULL);
    int fd = ws_open(w.ws_port, NULL, NULL);
    ws_connect_stomp(fd);
    ws_frame(fd, OP_CLOSE, 1, "\x03\xe8" "done", 6);
    uint8_t cl[8];
    assert_int_equal(recv_n(fd, cl, 8), 0);
    assert_memory_equal(cl, "\x88\x06\x03\xe8" "done", 8); /* echoed, RFC 6455 5.5.1 */
    assert_int_equal(recv_n(fd, cl, 1), -2);
    close(fd);
    finish(w);
}

static char *big_body(size_t n)
{
    char *b = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        b[i] = (char)('a' + i % 26);
    b[n] = '\0';
    return b;
}

/* 1 MiB in one message each way, between a WebSocket and a TCP session. */
static void test_one_mib_and_tcp(void **state)
{
    (void)state;
    enum { MIB = 1 << 20 };
    wsb w = start(NULL);
    int fd = ws_open(w.ws_port, "v12.stomp", "v12.stomp");
    ws_connect_stomp(fd);
    tc *t = tc_open(tb_port(w.t), "accept-version:1.2\n");
    assert_non_null(t);
    tframe f;
    assert_int_equal(tc_send(t, "SUBSCRIBE\nid:t\ndestination:/queue/big\nreceipt:s\n\n"), 0);
    assert_true(tc_is(t, "RECEIPT", &f));
    tf_free(&f);
    char *body = big_body(MIB);
    size_t flen = (size_t)MIB + 100;
    char *frame = malloc(flen);
    int h = snprintf(frame, flen, "SEND\ndestination:/queue/big\nreceipt:big\n\n");
    memcpy(frame + h, body, MIB);
    frame[h + MIB] = '\0';
    ws_frame(fd, OP_TEXT, 1, frame, (size_t)h + MIB + 1);
    ws_expect_free(fd, "RECEIPT\nreceipt-id:big\n");
    assert_true(tc_is(t, "MESSAGE", &f));
    assert_int_equal(f.body_len, MIB);
    assert_memory_equal(f.body, body, MIB);
    tf_free(&f);
    /* And back: the TCP session sends 1 MiB to a topic the WebSocket session reads. */
    ws_text(fd, "SUBSCRIBE\nid:w\ndestination:/topic/big\nreceipt:s2\n\n");
    ws_expect_free(fd, "RECEIPT\nreceipt-id:s2\n");
    h = snprintf(frame, flen, "SEND\ndestination:/topic/big\n\n");
    memcpy(frame + h, body, MIB);
    frame[h + MIB] = '\0';
    assert_int_equal(tc_send_raw(t, frame, (size_t)h + MIB + 1), 0);
    wmsg m = ws_expect(fd, "MESSAGE\n");
    assert_true(m.len > MIB);
    assert_memory_equal(m.data + m.len - MIB - 1, body, MIB);
    assert_int_equal(m.data[m.len - 1], '\0');
    free(m.data);
    free(frame);
    free(body);
    tc_close(t);
    close(fd);
    finish(w);
}

static void test_limits(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.ws_max_message = 1000;
    wsb w = start(&o);
    /* Over the size limit in one frame, and over it in fragments. */
    int fd = ws_open(w.ws_port, NULL, NULL);
    ws_connect_stomp(fd);
    char *pad = big_body(2000);
    ws_frame(fd, OP_TEXT, 1, pad, 2000);
    expect_close(fd, 1009);
    close(fd);
    fd = ws_open(w.ws_port, NULL, NULL);
    ws_connect_stomp(fd);
    memcpy(pad, "SEND\ndestination:/queue/x\n\n", 27); /* a frame body, not an error */
    ws_frame(fd, OP_TEXT, 0, pad, 600);
    ws_frame(fd, OP_CONT, 1, pad + 600, 600);
    expect_close(fd, 1009);
    close(fd);
    free(pad);
    /* A text message that is not UTF-8. */
    fd = ws_open(w.ws_port, NULL, NULL);
    ws_connect_stomp(fd);
    ws_frame(fd, OP_TEXT, 1, "SEND\ndestination:/q\n\n\xc3\x28", 24);
    expect_close(fd, 1007);
    close(fd);
    /* A frame from a client must be masked. */
    fd = ws_open(w.ws_port, NULL, NULL);
    send_all(fd, "\x81\x02hi", 4);
    expect_close(fd, 1002);
    close(fd);
    /* STOMP limits hold as over TCP: ERROR in a message, then the close. */
    fd = ws_open(w.ws_port, NULL, NULL);
    ws_text(fd, "BOGUS\n\n");
    ws_expect_free(fd, "ERROR\n");
    expect_close(fd, 1000);
    close(fd);
    finish(w);
}

static void test_heartbeat(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.heartbeat_out_ms = 100;
    wsb w = start(&o);
    int fd = ws_open(w.ws_port, NULL, NULL);
    ws_text(fd, "CONNECT\naccept-version:1.2\nheart-beat:0,100\n\n");
    ws_expect_free(fd, "CONNECTED\n");
    wmsg m = ws_expect(fd, "\n");
    assert_int_equal(m.len, 1);
    free(m.data);
    close(fd);
    finish(w);
}

/* Backpressure as over TCP: a WebSocket reader that does not read stops getting queue
 * messages once its output passes the high-water mark; the rest waits in the queue and
 * arrives in order, one message per frame, once it reads again. */
static void test_backpressure(void **state)
{
    (void)state;
    enum { N = 4000, SIZE = 4096 };
    broker_options o;
    broker_options_init(&o);
    o.output_high_water = 64 << 10;
    wsb w = start(&o);
    int fd = ws_open_rcvbuf(w.ws_port, NULL, NULL, 64 << 10);
    ws_connect_stomp(fd);
    ws_text(fd, "SUBSCRIBE\nid:s\ndestination:/queue/bp\nreceipt:s\n\n");
    ws_expect_free(fd, "RECEIPT\n");
    tc *t = tc_open(tb_port(w.t), "accept-version:1.2\n");
    assert_non_null(t);
    char *frame = malloc(SIZE + 128);
    char *body = big_body(SIZE);
    for (int i = 0; i < N; i++) {
        int h = snprintf(frame, SIZE + 128, "SEND\ndestination:/queue/bp\nseq:%d\n%s\n", i,
                         i == N - 1 ? "receipt:last\n" : "");
        memcpy(frame + h, body, SIZE);
        frame[h + SIZE] = '\0';
        assert_int_equal(tc_send_raw(t, frame, (size_t)h + SIZE + 1), 0);
    }
    tframe f;
    assert_true(tc_is(t, "RECEIPT", &f));
    tf_free(&f);
    usleep(200 * 1000);
    broker_stats st;
    tb_stats(w.t, &st);
    assert_true(st.messages_out < N / 2); /* most of it waits in the queue */
    for (int i = 0; i < N; i++) {
        wmsg m = ws_expect(fd, "MESSAGE\n");
        char want[32];
        snprintf(want, sizeof want, "\nseq:%d\n", i);
        assert_non_null(strstr(m.data, want));
        assert_memory_equal(m.data + m.len - SIZE - 1, body, SIZE);
        assert_int_equal(m.data[m.len - 1], '\0');
        free(m.data);
    }
    free(frame);
    free(body);
    tc_close(t);
    close(fd);
    finish(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_subprotocols),
        cmocka_unit_test(test_handshake_refusals),
        cmocka_unit_test(test_frame_split_over_messages),
        cmocka_unit_test(test_client_close),
        cmocka_unit_test(test_one_mib_and_tcp),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_heartbeat),
        cmocka_unit_test(test_backpressure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
