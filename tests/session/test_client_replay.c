/* test_client_replay.c: the exact bytes two old STOMP 1.0 clients put on the wire, replayed
 * over loopback: stompy (Python: stompy/frame.py, stompy/stomp.py) and as3-stomp (Flash:
 * org/codehaus/stomp/Stomp.as), with our replies read raw and checked the way those clients parse.
 *
 * What they do that trips brokers, and what they need back:
 * - stompy formats every frame as "%s\n%s\n%s\0" % (command, headers, body), so frames that carry
 *   no body get the body "None"; it adds an x-client header everywhere, asks a receipt on every
 *   SEND (receipt "<session>-<random>"), never sends content-length for text, subscribes without
 *   id, ACKs by message-id only and unsubscribes by destination before DISCONNECT. It reads a
 *   frame byte by byte up to the NUL, then `headers, _, body = rest.partition("\n\n")` and raises
 *   when the header part is empty or a line has no ':'. A byte after our NUL stays unread; its
 *   shutdown(SHUT_RD) + close then resets the connection.
 * - as3-stomp writes "CMD" + "\nname:value"... + "\n\n" + body + "\0": CONNECT may carry no header
 *   at all, send() always sets content-length (a Number body is 8 raw bytes of a double, NULs
 *   included), sendTextMessage() never does. Its reader takes the command line, then waits for
 *   "\n\n": a reply with no header never completes and the client hangs. It trusts content-length.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

#define SERVER "stompd-replay"
#define QUIET_MS 200
#define XCLIENT "x-client:127.0.1.1\n" /* stompy: socket.gethostbyname(gethostname()) */

/* ---- raw reading: our bytes exactly as a client gets them ---- */

typedef struct rawframe {
    char *bytes; /* the whole frame, command to NUL included */
    size_t len;
    char *body;
    size_t body_len;
} rawframe;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Append what arrives to c->buf: 1 got bytes, 0 timeout, -1 closed. */
static int raw_fill(tc *c, long long deadline)
{
    long long left = deadline - now_ms();
    if (left < 0)
        left = 0;
    struct pollfd p = { c->fd, POLLIN, 0 };
    if (poll(&p, 1, (int)left) <= 0)
        return 0;
    if (c->len + 4096 > c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 65536;
        char *nb = realloc(c->buf, ncap);
        assert_non_null(nb);
        c->buf = nb;
        c->cap = ncap;
    }
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n <= 0)
        return -1;
    c->len += (size_t)n;
    return 1;
}

/* Value of header name in a raw header block [p, end), copied to val. 1 found, 0 not. */
static int raw_header(const char *p, const char *end, const char *name, char *val, size_t cap)
{
    size_t nlen = strlen(name);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            nl = end;
        if ((size_t)(nl - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == ':') {
            size_t vlen = (size_t)(nl - p) - nlen - 1;
            assert_true(vlen < cap);
            memcpy(val, p + nlen + 1, vlen);
            val[vlen] = '\0';
            return 1; /* the first occurrence wins, as in STOMP */
        }
        p = nl + 1;
    }
    return 0;
}

/* Read exactly one frame: no bytes may precede it (a stray LF from the last frame would be
 * the start of this one), it ends with a NUL after content-length bytes when that header is
 * present, else at the first NUL. */
static void raw_read(tc *c, rawframe *f)
{
    long long deadline = now_ms() + TL_TIMEOUT_MS;
    for (;;) {
        char *hend = c->len ? memmem(c->buf, c->len, "\n\n", 2) : NULL;
        if (hend) {
            size_t hdr = (size_t)(hend - c->buf) + 2;
            char v[32];
            size_t total = 0;
            if (raw_header(c->buf, hend, "content-length", v, sizeof v)) {
                size_t clen = (size_t)strtoull(v, NULL, 10);
                if (c->len >= hdr + clen + 1)
                    total = hdr + clen + 1;
            } else {
                char *nul = memchr(c->buf + hdr, '\0', c->len - hdr);
                if (nul)
                    total = (size_t)(nul - c->buf) + 1;
            }
            if (total) {
                f->bytes = malloc(total + 1);
                assert_non_null(f->bytes);
                memcpy(f->bytes, c->buf, total);
                f->bytes[total] = '\0';
                f->len = total;
                f->body = f->bytes + hdr;
                f->body_len = total - hdr - 1;
                memmove(c->buf, c->buf + total, c->len - total);
                c->len -= total;
                assert_true(f->bytes[0] >= 'A' && f->bytes[0] <= 'Z');
                assert_int_equal(f->bytes[total - 1], '\0');
                return;
            }
        }
        int r = raw_fill(c, deadline);
        if (r <= 0)
            fail_msg("no whole frame within the timeout (%d, %zu bytes buffered)", r, c->len);
    }
}

static void raw_free(rawframe *f)
{
    free(f->bytes);
    f->bytes = NULL;
}

static const char *header_end(const rawframe *f)
{
    return f->body - 1; /* the blank line's LF */
}

/* Header value (static storage, one at a time), NULL if absent. */
static const char *hdr(const rawframe *f, const char *name)
{
    static char val[256];
    const char *start = memchr(f->bytes, '\n', f->len) + 1;
    return raw_header(start, header_end(f), name, val, sizeof val) ? val : NULL;
}

/* Copy a header that must be present into dst. */
static void hdr_copy(const rawframe *f, const char *name, char *dst, size_t cap)
{
    const char *v = hdr(f, name);
    if (!v)
        fail_msg("no %s header in \"%.60s\"", name, f->bytes);
    size_t n = strlen(v);
    assert_true(n > 0 && n < cap);
    memcpy(dst, v, n + 1);
}

static void expect_cmd(const rawframe *f, const char *cmd)
{
    size_t n = strlen(cmd);
    if (f->len <= n || memcmp(f->bytes, cmd, n) != 0 || f->bytes[n] != '\n')
        fail_msg("expected %s, got \"%.40s\"", cmd, f->bytes);
}

/* stompy's parse_frame: command line, then rest.partition("\n\n"); the header part must be
 * non-empty and each of its lines must split on ':'. */
static void stompy_parses(const rawframe *f)
{
    const char *rest = memchr(f->bytes, '\n', f->len);
    assert_non_null(rest);
    rest++;
    const char *sep = strstr(rest, "\n\n");
    assert_non_null(sep);
    assert_true(sep > rest);
    for (const char *p = rest; p < sep;) {
        const char *nl = memchr(p, '\n', (size_t)(sep - p));
        if (!nl)
            nl = sep;
        assert_non_null(memchr(p, ':', (size_t)(nl - p)));
        p = nl + 1;
    }
}

/* as3-stomp's FrameReader: readLine() for the command, then indexOfString("\n\n") over what is
 * left must succeed, and a content-length it finds must be the body's true length. */
static void as3_parses(const rawframe *f)
{
    const char *rest = memchr(f->bytes, '\n', f->len);
    assert_non_null(rest);
    assert_non_null(strstr(rest + 1, "\n\n"));
    const char *cl = hdr(f, "content-length");
    if (cl)
        assert_int_equal(strtoull(cl, NULL, 10), f->body_len);
}

/* Nothing more arrives for a while: in particular no LF after the last NUL. */
static void raw_quiet(tc *c)
{
    assert_int_equal(c->len, 0);
    assert_int_equal(raw_fill(c, now_ms() + QUIET_MS), 0);
}

/* The broker closes the connection without sending another byte. */
static void raw_eof(tc *c)
{
    assert_int_equal(c->len, 0);
    int r = raw_fill(c, now_ms() + TL_TIMEOUT_MS);
    if (r != -1)
        fail_msg("expected a close, got %d (%zu bytes: \"%.*s\")", r, c->len, (int)c->len,
                 c->buf ? c->buf : "");
}

static void send_bytes(tc *c, const char *bytes, size_t len)
{
    assert_int_equal(tc_send_raw(c, bytes, len), 0);
}

/* A frame given as a C string that ends with its NUL (sent, with the NUL). */
static void sendz(tc *c, const char *frame)
{
    send_bytes(c, frame, strlen(frame) + 1);
}

static void sendzf(tc *c, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    sendz(c, buf);
}

static void expect_exact(const rawframe *f, const char *want, size_t want_len)
{
    if (f->len != want_len || memcmp(f->bytes, want, want_len) != 0)
        fail_msg("got \"%.*s\" (%zu bytes), want \"%.*s\" (%zu bytes)", (int)f->len, f->bytes,
                 f->len, (int)want_len, want, want_len);
}

static void expect_receipt(tc *c, const char *id)
{
    rawframe f;
    raw_read(c, &f);
    char want[256];
    int n = snprintf(want, sizeof want, "RECEIPT\nreceipt-id:%s\n\n", id);
    expect_exact(&f, want, (size_t)n + 1);
    stompy_parses(&f);
    as3_parses(&f);
    raw_free(&f);
}

/* A 1.0 CONNECT; returns the session id. The CONNECTED frame is compared byte for byte: it
 * names the version although the client named none (1.1 and 1.2 require it of servers;
 * both 1.0 readers skip headers they do not know). */
static void connect10(tc *c, const char *connect, size_t len, char *session, size_t cap)
{
    send_bytes(c, connect, len);
    rawframe f;
    raw_read(c, &f);
    expect_cmd(&f, "CONNECTED");
    const char *s = hdr(&f, "session");
    assert_non_null(s);
    assert_true(*s && strlen(s) < cap);
    snprintf(session, cap, "%s", s);
    char want[256];
    int n = snprintf(want, sizeof want,
                     "CONNECTED\nversion:1.0\nsession:%s\nserver:" SERVER "\nheart-beat:0,0\n\n",
                     session);
    expect_exact(&f, want, (size_t)n + 1);
    stompy_parses(&f);
    as3_parses(&f);
    raw_free(&f);
}

static tb *start(void)
{
    broker_options o;
    broker_options_init(&o);
    o.server_name = SERVER;
    tb *t = tb_start(&o);
    assert_non_null(t);
    return t;
}

static void sync_noop(broker *b, void *arg)
{
    (void)b;
    (void)arg;
}

/* The broker saw nothing worth an ERROR or a warning. */
static void stop_clean(tb *t)
{
    tb_call(t, sync_noop, NULL);
    broker_stats st;
    tb_stats(t, &st);
    assert_int_equal(st.errors_sent, 0);
    assert_int_equal(tb_warnings(t), 0);
    assert_int_equal(tb_stop(t), 0);
}

/* Subscribe with a plain 1.0 client and take the next message's body. */
static void take_one(tb *t, const char *dest, const char *body)
{
    tc *c = tc_open(tb_port(t), "");
    assert_non_null(c);
    char frame[256];
    snprintf(frame, sizeof frame, "SUBSCRIBE\ndestination:%s\n\n", dest);
    assert_int_equal(tc_send(c, frame), 0);
    tframe f;
    assert_true(tc_is(c, "MESSAGE", &f));
    assert_int_equal(f.body_len, strlen(body));
    assert_memory_equal(f.body, body, strlen(body));
    tf_free(&f);
    assert_int_equal(tc_send(c, "DISCONNECT\nreceipt:end\n\n"), 0);
    assert_true(tc_is(c, "RECEIPT", &f)); /* and no second MESSAGE before it */
    tf_free(&f);
    tc_close(c);
}

/* ---- stompy ---- */

/* stompy: connect, SEND with its receipt, SUBSCRIBE (no id, body None), ACK by message-id with
 * body None, then its disconnect(): UNSUBSCRIBE by destination, DISCONNECT, shutdown + close. */
static void test_stompy_session(void **state)
{
    (void)state;
    tb *t = start();
    tc *c = tc_connect(tb_port(t));
    assert_non_null(c);
    char session[64];
    static const char conn[] = "CONNECT\n" XCLIENT "\nNone";
    connect10(c, conn, sizeof conn, session, sizeof session);

    /* Stomp.send(): want_receipt=True, receipt is "<session>-<random>", no content-length. */
    char rid[128];
    snprintf(rid, sizeof rid, "%s-4242", session);
    sendzf(c, "SEND\ndestination:/queue/stompy\nreceipt:%s\n" XCLIENT "\nhello stompy", rid);
    expect_receipt(c, rid);
    raw_quiet(c);

    sendz(c, "SUBSCRIBE\nack:client\ndestination:/queue/stompy\n" XCLIENT "\nNone");
    rawframe m;
    raw_read(c, &m);
    expect_cmd(&m, "MESSAGE");
    stompy_parses(&m);
    assert_int_equal(m.body_len, 12);
    assert_memory_equal(m.body, "hello stompy", 12);
    assert_string_equal(hdr(&m, "destination"), "/queue/stompy");
    assert_string_equal(hdr(&m, "content-length"), "12");
    assert_string_equal(hdr(&m, "x-client"), "127.0.1.1");
    assert_non_null(hdr(&m, "subscription"));
    assert_true(hdr(&m, "subscription")[0] != '\0');
    assert_null(hdr(&m, "receipt"));
    assert_null(hdr(&m, "ack")); /* a 1.2 header, not for a 1.0 session */
    assert_null(hdr(&m, "redelivered"));
    char mid[128];
    hdr_copy(&m, "message-id", mid, sizeof mid);
    raw_free(&m);
    raw_quiet(c);

    /* Stomp.ack(frame): message-id only, no subscription, body None. No receipt asked. */
    sendzf(c, "ACK\nmessage-id:%s\n" XCLIENT "\nNone", mid);
    raw_quiet(c);

    /* Unsubscribed by destination: a later SEND stays queued. */
    sendz(c, "UNSUBSCRIBE\ndestination:/queue/stompy\n" XCLIENT "\nNone");
    snprintf(rid, sizeof rid, "%s-77", session);
    sendzf(c, "SEND\ndestination:/queue/stompy\nreceipt:%s\n" XCLIENT "\nsecond", rid);
    expect_receipt(c, rid);
    raw_quiet(c);

    /* Stomp.disconnect(): DISCONNECT with body None and no receipt, then shutdown(0), close. The
     * broker closes without another byte. */
    sendz(c, "DISCONNECT\n" XCLIENT "\nNone");
    assert_int_equal(shutdown(c->fd, SHUT_RD), 0);
    tc_close(c);

    /* The ACK held (the first message is gone) and the second waited for a subscriber. */
    take_one(t, "/queue/stompy", "second");
    stop_clean(t);
}

/* stompy's login and client-id headers, its DISCONNECT read to the end: our last frame is the
 * last byte, so the client's close is a clean FIN, not a reset. */
static void test_stompy_connect_login(void **state)
{
    (void)state;
    tb *t = start();
    tc *c = tc_connect(tb_port(t));
    char session[64];
    static const char conn[] =
        "CONNECT\npasscode:secret\nlogin:guest\nclient-id:flow-1\n" XCLIENT "\nNone";
    connect10(c, conn, sizeof conn, session, sizeof session);
    sendz(c, "DISCONNECT\n" XCLIENT "\nNone");
    raw_eof(c);
    tc_close(c);
    stop_clean(t);
}

/* stompy's transactions: BEGIN / COMMIT / ABORT with the body None; each SEND in them still asks
 * a receipt. */
static void test_stompy_transaction(void **state)
{
    (void)state;
    tb *t = start();
    tc *c = tc_connect(tb_port(t));
    char session[64];
    static const char conn[] = "CONNECT\n" XCLIENT "\nNone";
    connect10(c, conn, sizeof conn, session, sizeof session);
    tc *sub = tc_connect(tb_port(t));
    char session2[64];
    connect10(sub, conn, sizeof conn, session2, sizeof session2);
    sendzf(sub, "SUBSCRIBE\ndestination:/queue/stx\n" XCLIENT "\nNone");
    /* A receipt on the subscriber's SEND proves its SUBSCRIBE is in place. */
    sendzf(sub, "SEND\ndestination:/topic/none\nreceipt:%s-1\n" XCLIENT "\nping", session2);
    char rid[128];
    snprintf(rid, sizeof rid, "%s-1", session2);
    expect_receipt(sub, rid);

    sendz(c, "BEGIN\ntransaction:tx-1\n" XCLIENT "\nNone");
    snprintf(rid, sizeof rid, "%s-10", session);
    sendzf(c, "SEND\ndestination:/queue/stx\ntransaction:tx-1\nreceipt:%s\n" XCLIENT "\nin tx",
           rid);
    expect_receipt(c, rid);
    raw_quiet(sub); /* held until COMMIT */
    sendz(c, "COMMIT\ntransaction:tx-1\n" XCLIENT "\nNone");
    rawframe m;
    raw_read(sub, &m);
    expect_cmd(&m, "MESSAGE");
    stompy_parses(&m);
    assert_int_equal(m.body_len, 5);
    assert_memory_equal(m.body, "in tx", 5);
    assert_null(hdr(&m, "transaction"));
    raw_free(&m);

    sendz(c, "BEGIN\ntransaction:tx-2\n" XCLIENT "\nNone");
    snprintf(rid, sizeof rid, "%s-11", session);
    sendzf(c, "SEND\ndestination:/queue/stx\ntransaction:tx-2\nreceipt:%s\n" XCLIENT "\ndropped",
           rid);
    expect_receipt(c, rid);
    sendz(c, "ABORT\ntransaction:tx-2\n" XCLIENT "\nNone");
    snprintf(rid, sizeof rid, "%s-12", session);
    sendzf(c, "SEND\ndestination:/queue/stx\nreceipt:%s\n" XCLIENT "\nafter", rid);
    expect_receipt(c, rid);
    raw_read(sub, &m);
    assert_int_equal(m.body_len, 5);
    assert_memory_equal(m.body, "after", 5);
    raw_free(&m);
    raw_quiet(sub);
    sendz(c, "DISCONNECT\n" XCLIENT "\nNone");
    raw_eof(c);
    tc_close(c);
    tc_close(sub);
    stop_clean(t);
}

/* stompy asks a receipt on every SEND and writes them back to back; bytes_message SENDs carry
 * content-length. Every RECEIPT comes back, in order, each ending with a bare NUL. */
static void test_stompy_receipt_per_send(void **state)
{
    (void)state;
    tb *t = start();
    tc *c = tc_connect(tb_port(t));
    char session[64];
    static const char conn[] = "CONNECT\n" XCLIENT "\nNone";
    connect10(c, conn, sizeof conn, session, sizeof session);
    enum { N = 50 };
    char all[N * 128];
    size_t len = 0;
    for (int i = 0; i < N; i++) {
        int n;
        if (i % 2)
            n = snprintf(all + len, sizeof all - len,
                         "SEND\ndestination:/queue/many\nreceipt:%s-%d\n" XCLIENT "\nmsg %d",
                         session, i, i);
        else /* bytes_message: content-length = len(body) */
            n = snprintf(all + len, sizeof all - len,
                         "SEND\ncontent-length:6\ndestination:/queue/many\nreceipt:%s-%d\n"
                         XCLIENT "\nmsg %02d", session, i, i);
        len += (size_t)n + 1; /* keep the NUL */
    }
    send_bytes(c, all, len);
    for (int i = 0; i < N; i++) {
        char rid[128];
        snprintf(rid, sizeof rid, "%s-%d", session, i);
        expect_receipt(c, rid);
    }
    raw_quiet(c);
    /* All of them are in the queue, in order, bodies exact. */
    sendz(c, "SUBSCRIBE\ndestination:/queue/many\n" XCLIENT "\nNone");
    for (int i = 0; i < N; i++) {
        rawframe m;
        raw_read(c, &m);
        expect_cmd(&m, "MESSAGE");
        char want[16];
        int n = i % 2 ? snprintf(want, sizeof want, "msg %d", i)
                      : snprintf(want, sizeof want, "msg %02d", i);
        assert_int_equal(m.body_len, (size_t)n);
        assert_memory_equal(m.body, want, (size_t)n);
        raw_free(&m);
    }
    raw_quiet(c);
    tc_close(c);
    stop_clean(t);
}

/* Some clients end every frame with NUL + LF (or CRLF) and write CRLF line ends even in 1.0;
 * stompy copes with one LF before a frame it reads. We must take all of that, keep no CR in
 * values, and still send LF-only frames ending with a bare NUL. */
static void test_crlf_and_eol_after_nul(void **state)
{
    (void)state;
    tb *t = start();
    tc *c = tc_connect(tb_port(t));
    char session[64];
    static const char conn[] = "CONNECT\r\nlogin:guest\r\npasscode:guest\r\n\r\n\0\n";
    connect10(c, conn, sizeof conn - 1, session, sizeof session);
    static const char frames[] =
        "SUBSCRIBE\r\ndestination:/queue/crlf\r\nreceipt:s\r\n\r\n\0\r\n"
        "\n"
        "SEND\r\ndestination:/queue/crlf\r\nx-note:kept\r\nreceipt:p\r\n\r\nline one\0\n\n"
        "SEND\ndestination:/queue/crlf\nreceipt:q\n\nline two\0\r\n";
    send_bytes(c, frames, sizeof frames - 1);
    expect_receipt(c, "s");
    /* Receipts p, q and the two MESSAGEs: each stream in order, interleaved as it may be. */
    int receipts = 0, messages = 0;
    while (receipts < 2 || messages < 2) {
        rawframe m;
        raw_read(c, &m);
        if (strncmp(m.bytes, "RECEIPT\n", 8) == 0) {
            assert_true(receipts < 2);
            const char *want =
                receipts++ ? "RECEIPT\nreceipt-id:q\n\n" : "RECEIPT\nreceipt-id:p\n\n";
            expect_exact(&m, want, strlen(want) + 1);
        } else {
            expect_cmd(&m, "MESSAGE");
            assert_true(messages < 2);
            assert_null(memchr(m.bytes, '\r', m.len));
            assert_string_equal(hdr(&m, "destination"), "/queue/crlf");
            assert_int_equal(m.body_len, 8);
            if (messages++ == 0) {
                assert_string_equal(hdr(&m, "x-note"), "kept");
                assert_memory_equal(m.body, "line one", 8);
            } else {
                assert_null(hdr(&m, "x-note"));
                assert_memory_equal(m.body, "line two", 8);
            }
        }
        raw_free(&m);
    }
    raw_quiet(c);
    sendz(c, "DISCONNECT\r\nreceipt:bye\r\n\r\n");
    expect_receipt(c, "bye");
    raw_eof(c);
    tc_close(c);
    stop_clean(t);
}

/* A client that closes with a reset right after DISCONNECT (what stompy's close does when a
 * byte is left unread) ends its session cleanly: no ERROR, no warning, others unaffected. */
static void test_reset_after_disconnect(void **state)
{
    (void)state;
    tb *t = start();
    for (int i = 0; i < 5; i++) {
        tc *c = tc_connect(tb_port(t));
        char session[64];
        static const char conn[] = "CONNECT\n" XCLIENT "\nNone";
        connect10(c, conn, sizeof conn, session, sizeof session);
        sendz(c, "SUBSCRIBE\nack:client\ndestination:/queue/rst\n" XCLIENT "\nNone");
        sendz(c, "DISCONNECT\n" XCLIENT "\nNone");
        struct linger lg = { 1, 0 };
        assert_int_equal(setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
        tc_close(c);
    }
    tc *c = tc_open(tb_port(t), "");
    assert_non_null(c);
    assert_int_equal(tc_send(c, "SEND\ndestination:/queue/rst\nreceipt:alive\n\nstill here"), 0);
    tframe f;
    assert_true(tc_is(c, "RECEIPT", &f));
    tf_free(&f);
    tc_close(c);
    take_one(t, "/queue/rst", "still here");
    stop_clean(t);
}

/* ---- as3-stomp ---- */

/* as3-stomp without ConnectHeaders sends a CONNECT with no header at all; with them, login and
 * passcode. Both CONNECTED frames must carry headers or its reader never completes them. */
static void test_as3_connect(void **state)
{
    (void)state;
    tb *t = start();
    char session[64];
    tc *c = tc_connect(tb_port(t));
    static const char bare[] = "CONNECT\n\n";
    connect10(c, bare, sizeof bare, session, sizeof session);
    sendz(c, "DISCONNECT\n\n");
    raw_eof(c);
    tc_close(c);
    c = tc_connect(tb_port(t));
    static const char login[] = "CONNECT\nlogin:flash\npasscode:secret\nclient-id:swf-7\n\n";
    connect10(c, login, sizeof login, session, sizeof session);
    tc_close(c); /* Stomp.exit(): socket.close() without DISCONNECT */
    stop_clean(t);
}

/* as3-stomp send() of a Number writes the 8 bytes of a double (NULs inside) with content-length;
 * sendTextMessage() sends no content-length. Its reader trusts content-length for the body. */
static void test_as3_send_and_ack(void **state)
{
    (void)state;
    tb *t = start();
    char session[64];
    tc *c = tc_connect(tb_port(t));
    static const char conn[] = "CONNECT\nlogin:flash\npasscode:secret\n\n";
    connect10(c, conn, sizeof conn, session, sizeof session);
    /* send("/queue/flash", 1.0): writeDouble(1.0), big-endian. */
    static const char dbl[] = "SEND\ndestination:/queue/flash\ncontent-length:8\n\n"
                              "\x3f\xf0\0\0\0\0\0\0";
    send_bytes(c, dbl, sizeof dbl);
    /* sendTextMessage() with SendHeaders.receipt. */
    sendz(c, "SEND\nreceipt:text-1\ndestination:/queue/flash\n\nhello flash");
    expect_receipt(c, "text-1");
    /* SubscribeHeaders.ack = "client"; no id. */
    sendz(c, "SUBSCRIBE\nack:client\ndestination:/queue/flash\n\n");
    rawframe m;
    raw_read(c, &m);
    expect_cmd(&m, "MESSAGE");
    as3_parses(&m);
    assert_string_equal(hdr(&m, "content-length"), "8");
    assert_int_equal(m.body_len, 8);
    assert_memory_equal(m.body, "\x3f\xf0\0\0\0\0\0\0", 8);
    assert_non_null(hdr(&m, "subscription"));
    raw_free(&m);
    raw_read(c, &m);
    expect_cmd(&m, "MESSAGE");
    as3_parses(&m);
    assert_int_equal(m.body_len, 11);
    assert_memory_equal(m.body, "hello flash", 11);
    assert_string_equal(hdr(&m, "content-length"), "11");
    char mid[128];
    hdr_copy(&m, "message-id", mid, sizeof mid);
    raw_free(&m);
    raw_quiet(c);
    /* Stomp.ack(messageID): message-id only. ack:client is cumulative: both are done. */
    sendzf(c, "ACK\nmessage-id:%s\n\n", mid);
    sendz(c, "UNSUBSCRIBE\ndestination:/queue/flash\n\n");
    sendz(c, "SEND\nreceipt:text-2\ndestination:/queue/flash\n\nlast");
    expect_receipt(c, "text-2");
    raw_quiet(c);
    sendz(c, "DISCONNECT\n\n");
    raw_eof(c);
    tc_close(c);
    take_one(t, "/queue/flash", "last");
    stop_clean(t);
}

/* Two as3-stomp clients subscribed to one topic by destination only, one also to a queue; a
 * third publishes inside a transaction. UNSUBSCRIBE by destination drops only that one. */
static void test_as3_topic_fanout(void **state)
{
    (void)state;
    tb *t = start();
    char session[64];
    static const char conn[] = "CONNECT\n\n";
    tc *a = tc_connect(tb_port(t)), *b = tc_connect(tb_port(t)), *p = tc_connect(tb_port(t));
    connect10(a, conn, sizeof conn, session, sizeof session);
    connect10(b, conn, sizeof conn, session, sizeof session);
    connect10(p, conn, sizeof conn, session, sizeof session);
    sendz(a, "SUBSCRIBE\ndestination:/topic/flash\n\n");
    sendz(a, "SUBSCRIBE\nreceipt:ra\ndestination:/queue/flash-a\n\n");
    expect_receipt(a, "ra");
    sendz(b, "SUBSCRIBE\nreceipt:rb\ndestination:/topic/flash\n\n");
    expect_receipt(b, "rb");

    sendz(p, "BEGIN\ntransaction:as3-tx\n\n");
    sendz(p, "SEND\ntransaction:as3-tx\ndestination:/topic/flash\ncontent-length:4\n\nt-01");
    sendz(p, "SEND\ntransaction:as3-tx\ndestination:/topic/flash\n\nt-02");
    sendz(p, "COMMIT\nreceipt:c\ntransaction:as3-tx\n\n");
    expect_receipt(p, "c");
    char sub_a[64] = "", sub_b[64] = "";
    for (int i = 1; i <= 2; i++) {
        tc *cs[2] = { a, b };
        for (int k = 0; k < 2; k++) {
            rawframe m;
            raw_read(cs[k], &m);
            expect_cmd(&m, "MESSAGE");
            as3_parses(&m);
            char want[16];
            snprintf(want, sizeof want, "t-%02d", i);
            assert_int_equal(m.body_len, 4);
            assert_memory_equal(m.body, want, 4);
            assert_string_equal(hdr(&m, "destination"), "/topic/flash");
            assert_null(hdr(&m, "transaction"));
            char *sub = k ? sub_b : sub_a;
            if (i == 1)
                hdr_copy(&m, "subscription", sub, 64);
            else
                assert_string_equal(hdr(&m, "subscription"), sub);
            raw_free(&m);
        }
    }
    assert_true(sub_a[0] != '\0' && sub_b[0] != '\0');
    raw_quiet(a);
    raw_quiet(b);

    /* a leaves the topic by destination; its queue subscription stays. */
    sendz(a, "UNSUBSCRIBE\nreceipt:ua\ndestination:/topic/flash\n\n");
    expect_receipt(a, "ua");
    sendz(p, "SEND\ndestination:/topic/flash\n\nt-03");
    sendz(p, "SEND\nreceipt:pq\ndestination:/queue/flash-a\n\nq-01");
    expect_receipt(p, "pq");
    rawframe m;
    raw_read(a, &m);
    expect_cmd(&m, "MESSAGE");
    assert_string_equal(hdr(&m, "destination"), "/queue/flash-a");
    assert_memory_equal(m.body, "q-01", 4);
    raw_free(&m);
    raw_read(b, &m);
    assert_memory_equal(m.body, "t-03", 4);
    raw_free(&m);
    raw_quiet(a);
    raw_quiet(b);

    /* ABORT drops a transaction's SEND. */
    sendz(p, "BEGIN\ntransaction:as3-tx2\n\n");
    sendz(p, "SEND\ntransaction:as3-tx2\ndestination:/topic/flash\n\ngone");
    sendz(p, "ABORT\nreceipt:ab\ntransaction:as3-tx2\n\n");
    expect_receipt(p, "ab");
    raw_quiet(b);
    for (int i = 0; i < 3; i++) {
        tc *cs[3] = { a, b, p };
        sendz(cs[i], "DISCONNECT\n\n");
        raw_eof(cs[i]);
        tc_close(cs[i]);
    }
    stop_clean(t);
}

/* A 1.1 client that sends no heart-beat header (as the old clients, which know nothing of
 * them) has said "0,0": no heart-beat bytes may arrive between or after our frames. */
static void test_no_heartbeat_bytes_unasked(void **state)
{
    (void)state;
    broker_options o;
    broker_options_init(&o);
    o.server_name = SERVER;
    o.heartbeat_out_ms = 20;
    tb *t = tb_start(&o);
    assert_non_null(t);
    tc *c = tc_connect(tb_port(t));
    sendz(c, "CONNECT\naccept-version:1.1\nhost:localhost\n\n");
    rawframe f;
    raw_read(c, &f);
    expect_cmd(&f, "CONNECTED");
    assert_string_equal(hdr(&f, "version"), "1.1");
    raw_free(&f);
    raw_quiet(c);
    sendz(c, "SEND\ndestination:/topic/x\nreceipt:r\n\nx");
    expect_receipt(c, "r");
    raw_quiet(c);
    tc_close(c);
    stop_clean(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stompy_session),
        cmocka_unit_test(test_stompy_connect_login),
        cmocka_unit_test(test_stompy_transaction),
        cmocka_unit_test(test_stompy_receipt_per_send),
        cmocka_unit_test(test_crlf_and_eol_after_nul),
        cmocka_unit_test(test_reset_after_disconnect),
        cmocka_unit_test(test_as3_connect),
        cmocka_unit_test(test_as3_send_and_ack),
        cmocka_unit_test(test_as3_topic_fanout),
        cmocka_unit_test(test_no_heartbeat_bytes_unasked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
