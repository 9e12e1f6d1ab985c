/* handle_connect.c: CONNECT / STOMP: version negotiation, heart-beats, CONNECTED.
 *
 * No accept-version means 1.0; otherwise the highest version both sides know; none in
 * common is an ERROR whose version header lists ours. Heart-beats per the 1.1 spec: we
 * send every max(our offer, what the client wants), expect every max(its offer, what we
 * want), and none at all in 1.0. On success the session's version and the looser
 * post-CONNECT frame limits apply from the next byte. With an authenticate callback, a
 * refused login is answered only after a delay (see refuse_login).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bit per version named in an accept-version list; 0 if none is known. */
static unsigned parse_versions(const char *s)
{
    unsigned set = 0;
    while (*s) {
        while (*s == ' ' || *s == ',')
            s++;
        const char *e = s;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > s && t[-1] == ' ')
            t--;
        size_t n = (size_t)(t - s);
        if (n == 3 && memcmp(s, "1.0", 3) == 0)
            set |= 1u << STOMP_V10;
        else if (n == 3 && memcmp(s, "1.1", 3) == 0)
            set |= 1u << STOMP_V11;
        else if (n == 3 && memcmp(s, "1.2", 3) == 0)
            set |= 1u << STOMP_V12;
        s = e;
    }
    return set;
}

/* "cx,cy" as two non-negative integers of at most 9 digits (about 11 days). */
static int parse_heartbeat(const char *s, uint32_t *cx, uint32_t *cy)
{
    uint32_t v[2] = { 0, 0 };
    for (int i = 0; i < 2; i++) {
        while (*s == ' ')
            s++;
        int digits = 0;
        while (*s >= '0' && *s <= '9') {
            if (++digits > 9)
                return -1;
            v[i] = v[i] * 10 + (uint32_t)(*s++ - '0');
        }
        while (*s == ' ')
            s++;
        if (!digits || (i == 0 && *s++ != ','))
            return -1;
    }
    if (*s)
        return -1;
    *cx = v[0];
    *cy = v[1];
    return 0;
}

static uint32_t max32(uint32_t a, uint32_t b)
{
    return a > b ? a : b;
}

/* The refusal delay ended: hand the conn to conn__fail, the one place that writes ERROR
 * and closes (it ignores conns already CLOSING, hence the state put back). */
static void on_auth_delay(uv_timer_t *t)
{
    conn *c = t->data;
    if (c->abort || c->doomed || c->detached)
        return;
    c->state = CS_CONNECTING;
    conn__fail(c, BROKER_E_PROTOCOL, NULL, "Authentication failed");
}

/* A bad login waits auth_fail_delay_ms on the conn's timer (slowing password guessing
 * without blocking the loop). Meanwhile the conn is CLOSING: nothing more is read or
 * dispatched, and a broker stop closes it at once. */
static void refuse_login(conn *c, const char *login)
{
    broker *b = c->b;
    b->stats.auth_failures++;
    broker__log(b, BROKER_LOG_WARN, "connection %llu: login '%s' refused",
                (unsigned long long)c->id, login ? login : "");
    c->state = CS_CLOSING;
    if (c->reading) {
        c->tp->read_stop(c);
        c->reading = 0;
    }
    uv_timer_stop(&c->hb_timer);
    uv_timer_start(&c->rx_timer, on_auth_delay, b->o.auth_fail_delay_ms, 0);
}

broker_err handle__connect(conn *c, const stomp_frame *f)
{
    broker *b = c->b;
    const char *av = stomp_frame_header(f, "accept-version", NULL);
    stomp_version v = STOMP_V10;
    if (av) {
        unsigned set = parse_versions(av);
        if (set & (1u << STOMP_V12))
            v = STOMP_V12;
        else if (set & (1u << STOMP_V11))
            v = STOMP_V11;
        else if (set & (1u << STOMP_V10))
            v = STOMP_V10;
        else {
            c->err_hdr_name = "version";
            c->err_hdr_value = "1.0,1.1,1.2";
            conn__set_error(c, "no common protocol version: supported versions are "
                               "1.0,1.1,1.2");
            return BROKER_E_PROTOCOL;
        }
    }
    uint32_t cx = 0, cy = 0;
    const char *hb = stomp_frame_header(f, "heart-beat", NULL);
    if (hb && v != STOMP_V10 && parse_heartbeat(hb, &cx, &cy) != 0) {
        conn__set_error(c, "malformed heart-beat header");
        return BROKER_E_PROTOCOL;
    }
    uint32_t sx = b->o.heartbeat_out_ms, sy = b->o.heartbeat_in_ms;
    if (v == STOMP_V10)
        sx = sy = 0;
    c->hb_out = sx && cy ? max32(sx, cy) : 0;
    c->hb_in = cx && sy ? max32(cx, sy) : 0;
    if (b->o.authenticate) {
        const char *login = stomp_frame_header(f, "login", NULL);
        const char *passcode = stomp_frame_header(f, "passcode", NULL);
        if (b->o.authenticate(b->o.auth_ctx, login, passcode) != 0) {
            refuse_login(c, login);
            return BROKER_OK;
        }
        broker__log(b, BROKER_LOG_INFO, "connection %llu: login '%s' accepted",
                    (unsigned long long)c->id, login ? login : "");
    }

    char session[32], hbv[32];
    snprintf(session, sizeof session, "session-%llu", (unsigned long long)c->id);
    snprintf(hbv, sizeof hbv, "%u,%u", (unsigned)sx, (unsigned)sy);
    static const char names[][4] = { "1.0", "1.1", "1.2" };
    stomp_header h[4];
    size_t nh = 0;
    /* A client that named versions is told which one it got, 1.0 included; a 1.0 client
     * that named none gets the 1.0 CONNECTED it expects. */
    if (av)
        h[nh++] = (stomp_header){ "version", 7, names[v], 3 };
    h[nh++] = (stomp_header){ "session", 7, session, strlen(session) };
    h[nh++] = (stomp_header){ "server", 6, b->o.server_name, strlen(b->o.server_name) };
    h[nh++] = (stomp_header){ "heart-beat", 10, hbv, strlen(hbv) };
    stomp_frame cf = { .cmd = STOMP_CMD_CONNECTED, .headers = h, .nheaders = nh };
    broker_err rc = conn__send_frame(c, &cf);
    if (rc != BROKER_OK)
        return rc;
    c->version = v;
    c->state = CS_OPEN;
    stomp_parser_set_version(&c->parser, v, v == STOMP_V11 ? STOMP_PARSE_LENIENT_ESCAPES : 0);
    stomp_parser_set_limits(&c->parser, &b->o.limits);
    conn__start_heartbeats(c);
    return BROKER_OK;
}
