/* handle_connect.c: CONNECT / STOMP: version negotiation, heart-beats, CONNECTED.
 *
 * No accept-version means 1.0; otherwise the highest version both sides know; none in
 * common is an ERROR whose version header lists ours. Heart-beats per the 1.1 spec: we
 * send every max(our offer, what the client wants), expect every max(its offer, what we
 * want), and none at all in 1.0. On success the session's version and the looser
 * post-CONNECT frame limits apply from the next byte. With an authenticate hook, a
 * refused login is answered only after a delay (see refuse_login).
 *
 * An asynchronous check (authenticate_async) is a broker_auth record, owned by the broker
 * from CONNECT until the embedder answers it. Meanwhile the conn points at it (c->auth),
 * reads nothing and parses nothing (the bytes behind the CONNECT wait in its buffer). An
 * answer is applied at the tick, never inside broker_auth_done. A conn that goes away
 * first clears the record's pointer to it (handle__auth_abandon, at its teardown), so a
 * late answer finds the record orphaned and only frees it; broker_stop waits for every
 * outstanding record.
 */
#include "internal.h"

#include <assert.h>
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

/* Facts that hold for a record: answer is -1 until broker_auth_done; c is NULL once the
 * conn is gone (and then c->auth no longer points here); it is on b->auth_ready only when
 * answered while its conn still lived (and not inside authenticate_async). */
struct broker_auth {
    broker *b;
    conn *c;
    broker_auth *next_ready;
    int answer;  /* -1 none yet, 0 refused, 1 accepted */
    int in_call; /* inside authenticate_async: handle__connect applies the answer */
    stomp_version v;
    int named;        /* the client named versions: CONNECTED says which it got */
    uint32_t sx, sy;  /* our heart-beat offer */
    char *login, *passcode; /* copies in data, NULL when absent */
    size_t size;
    char data[];
};

static broker_auth *auth_new(conn *c, const char *login, const char *passcode)
{
    size_t ll = login ? strlen(login) + 1 : 0, pl = passcode ? strlen(passcode) + 1 : 0;
    broker_auth *r = malloc(sizeof *r + ll + pl);
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    r->b = c->b;
    r->c = c;
    r->answer = -1;
    r->size = sizeof *r + ll + pl;
    if (login)
        r->login = memcpy(r->data, login, ll);
    if (passcode)
        r->passcode = memcpy(r->data + ll, passcode, pl);
    return r;
}

/* The passcode does not outlive the check in our memory. */
static void auth_free(broker_auth *r)
{
    broker *b = r->b;
    size_t n = r->size - sizeof *r;
    volatile char *p = (volatile char *)r->data;
    for (size_t i = 0; i < n; i++)
        p[i] = 0;
    free(r);
    b->auth_outstanding--;
    /* A stop may be waiting for the last record. */
    if (b->stopping)
        broker__kick(b);
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
    broker__log(b, BROKER_LOG_WARN, BROKER_EV_AUTH_REFUSED, c->id, "login '%s' refused",
                login ? login : "");
    c->state = CS_CLOSING;
    if (c->reading) {
        c->tp->read_stop(c);
        c->reading = 0;
    }
    uv_timer_stop(&c->hb_timer);
    uv_timer_start(&c->rx_timer, on_auth_delay, b->o.auth_fail_delay_ms, 0);
}

static void log_accepted(conn *c, const char *login)
{
    broker__log(c->b, BROKER_LOG_INFO, BROKER_EV_AUTH_OK, c->id, "login '%s' accepted",
                login ? login : "");
}

/* The session begins: CONNECTED, then the negotiated version, looser limits and
 * heart-beats from the next byte on. named: the client sent accept-version. */
static broker_err send_connected(conn *c, stomp_version v, int named, uint32_t sx,
                                 uint32_t sy)
{
    broker *b = c->b;
    char session[32], hbv[32];
    snprintf(session, sizeof session, "session-%llu", (unsigned long long)c->id);
    snprintf(hbv, sizeof hbv, "%u,%u", (unsigned)sx, (unsigned)sy);
    static const char names[][4] = { "1.0", "1.1", "1.2" };
    stomp_header h[4];
    size_t nh = 0;
    /* A client that named versions is told which one it got, 1.0 included; a 1.0 client
     * that named none gets the 1.0 CONNECTED it expects. */
    if (named)
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

/* An answered record of a live, not closing conn: the session begins or is refused. The
 * record is freed; reading is the caller's business. */
static broker_err auth_apply(broker_auth *r)
{
    conn *c = r->c;
    c->auth = NULL;
    r->c = NULL;
    broker_err rc = BROKER_OK;
    if (r->answer != 1) {
        refuse_login(c, r->login);
    } else {
        log_accepted(c, r->login);
        rc = send_connected(c, r->v, r->named, r->sx, r->sy);
    }
    auth_free(r);
    return rc;
}

/* The check took longer than the CONNECT timeout. The record stays the embedder's to
 * answer; the conn's teardown orphans it. */
static void on_auth_timeout(uv_timer_t *t)
{
    conn *c = t->data;
    if (c->state == CS_CLOSING || !c->auth)
        return;
    conn__fail(c, BROKER_E_LIMIT, NULL, "login not checked within the connect timeout");
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
    if (!b->o.authenticate && !b->o.authenticate_async)
        return send_connected(c, v, av != NULL, sx, sy);
    const char *login = stomp_frame_header(f, "login", NULL);
    const char *passcode = stomp_frame_header(f, "passcode", NULL);
    if (b->o.authenticate) {
        if (b->o.authenticate(b->o.auth_ctx, login, passcode) != 0) {
            refuse_login(c, login);
            return BROKER_OK;
        }
        log_accepted(c, login);
        return send_connected(c, v, av != NULL, sx, sy);
    }
    /* The frame is the parser's and goes with the next byte: the record keeps copies. */
    broker_auth *r = auth_new(c, login, passcode);
    if (!r)
        return BROKER_E_NOMEM;
    r->v = v;
    r->named = av != NULL;
    r->sx = sx;
    r->sy = sy;
    b->auth_outstanding++;
    c->auth = r;
    r->in_call = 1;
    b->o.authenticate_async(b->o.auth_ctx, r, r->login, r->passcode);
    r->in_call = 0;
    if (r->answer >= 0)
        return auth_apply(r);
    /* Wait: read nothing (the caller's parse loop stops at c->auth), and give the check
     * the CONNECT timeout. */
    if (c->reading) {
        c->tp->read_stop(c);
        c->reading = 0;
    }
    if (b->o.connect_timeout_ms)
        uv_timer_start(&c->rx_timer, on_auth_timeout, b->o.connect_timeout_ms, 0);
    else
        uv_timer_stop(&c->rx_timer);
    return BROKER_OK;
}

void broker_auth_done(broker_auth *req, int accept)
{
    if (!req)
        return;
    assert(req->answer < 0);
    req->answer = accept != 0;
    if (req->in_call)
        return;
    if (!req->c) {
        auth_free(req);
        return;
    }
    broker *b = req->b;
    req->next_ready = b->auth_ready;
    b->auth_ready = req;
    broker__kick(b);
}

int broker_auth_abandoned(const broker_auth *req)
{
    return !req || !req->c;
}

void handle__auth_abandon(conn *c)
{
    broker_auth *r = c->auth;
    if (!r)
        return;
    c->auth = NULL;
    r->c = NULL;
}

void handle__auth_run(broker *b)
{
    /* Answers in arrival order do not matter: each concerns its own conn. */
    while (b->auth_ready) {
        broker_auth *r = b->auth_ready;
        b->auth_ready = r->next_ready;
        conn *c = r->c;
        if (!c) {
            auth_free(r);
            continue;
        }
        if (c->state == CS_CLOSING) {
            c->auth = NULL;
            r->c = NULL;
            auth_free(r);
            continue;
        }
        int accepted = r->answer == 1;
        broker_err rc = auth_apply(r);
        if (rc != BROKER_OK)
            conn__fail(c, rc, NULL, rc == BROKER_E_NOMEM ? "out of memory"
                                                          : broker_strerror(rc));
        else if (accepted)
            conn__resume(c); /* the frames that waited behind the CONNECT, then read on */
    }
}
