/* login.c: the login of a CONNECT and the start of the session (CONNECTED).
 *
 * Without an authenticate hook every CONNECT is let in. The synchronous hook answers at
 * once. An asynchronous check (authenticate_async) is a broker_auth record, owned by the
 * broker from CONNECT until the embedder answers it. Meanwhile the conn points at it
 * (c->auth), reads nothing and parses nothing (the bytes behind the CONNECT wait in its
 * buffer). An answer is applied at the tick, never inside broker_auth_done. A conn that
 * goes away first clears the record's pointer to it (login__abandon, at its teardown), so
 * a late answer finds the record orphaned and only frees it; broker_stop waits for every
 * outstanding record. A refused login is answered only after auth_fail_delay_ms.
 * With tls_login set, a verified client certificate is the login and no hook is asked.
 */
#include "core.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Facts that hold for a record: answer is -1 until broker_auth_done; c is NULL once the
 * conn is gone (and then c->auth no longer points here); it is on the ready list only when
 * answered while its conn still lived (and not inside authenticate_async). */
struct broker_auth {
    broker *b;
    conn *c;
    void (*done)(void *arg, int accepted); /* login__ask's asker (NULL: a conn's, or gone) */
    void *done_arg;
    broker_auth *next_ready;
    int answer;  /* -1 none yet, 0 refused, 1 accepted */
    int in_call; /* inside authenticate_async: login__check applies the answer */
    stomp_version v;
    uint32_t sx, sy;  /* our heart-beat offer */
    char *login, *passcode; /* copies in data, NULL when absent */
    size_t size;
    char data[];
};

static broker_auth *auth_new(broker *b, conn *c, const char *login, const char *passcode)
{
    size_t ll = login ? strlen(login) + 1 : 0, pl = passcode ? strlen(passcode) + 1 : 0;
    broker_auth *r = malloc(sizeof *r + ll + pl);
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    r->b = b;
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
    b->sess.auth_outstanding--;
    /* A stop may be waiting for the last record. */
    if (b->stopping)
        broker__kick(b);
}

/* The refusal delay ended: hand the conn to conn__fail, the one place that writes ERROR
 * and closes (it ignores conns already CLOSING, hence the state put back). */
static void on_refusal_delay(uv_timer_t *t)
{
    conn *c = t->data;
    if (c->abort || c->doomed || c->detached)
        return;
    c->state = CS_CONNECTING;
    conn__fail(c, BROKER_E_PROTOCOL, NULL, "Authentication failed");
}

/* A bad login waits auth_fail_delay_ms on the deadline timer (slowing password guessing
 * without blocking the loop). Meanwhile the conn is CLOSING: nothing more is read or
 * dispatched, and a broker stop closes it at once. */
static void refuse(conn *c, const char *login, const char *why)
{
    broker *b = c->b;
    b->stats.auth_failures++;
    broker__log(b, BROKER_LOG_WARN, BROKER_EV_AUTH_REFUSED, c->id, "login '%s' refused%s",
                login ? login : "", why);
    c->state = CS_CLOSING;
    c->refusing = 1;
    conn__stop_reading(c);
    heartbeat__stop(c);
    conn__deadline(c, on_refusal_delay, b->o.auth_fail_delay_ms);
}

static void log_accepted(conn *c, const char *login, const char *how)
{
    broker__log(c->b, BROKER_LOG_INFO, BROKER_EV_AUTH_OK, c->id, "login '%s' accepted%s",
                login ? login : "", how);
}

broker_err login__begin(conn *c, stomp_version v, uint32_t sx, uint32_t sy)
{
    broker *b = c->b;
    char session[32], hbv[32];
    snprintf(session, sizeof session, "session-%llu", (unsigned long long)c->id);
    snprintf(hbv, sizeof hbv, "%u,%u", (unsigned)sx, (unsigned)sy);
    static const char names[][4] = { "1.0", "1.1", "1.2" };
    stomp_header h[4];
    size_t nh = 0;
    /* Always the version (1.1 and 1.2 require it of servers; 1.0 clients ignore headers
     * they do not know), 1.0 included when the client named none. */
    h[nh++] = (stomp_header){ "version", 7, names[v], 3 };
    h[nh++] = (stomp_header){ "session", 7, session, strlen(session) };
    h[nh++] = (stomp_header){ "server", 6, b->o.server_name, strlen(b->o.server_name) };
    h[nh++] = (stomp_header){ "heart-beat", 10, hbv, strlen(hbv) };
    stomp_frame cf = { .cmd = STOMP_CMD_CONNECTED, .headers = h, .nheaders = nh };
    broker_err rc = conn__send_frame(c, &cf);
    if (rc != BROKER_OK)
        return rc;
    c->ep.version = v;
    c->state = CS_OPEN;
    c->ep.open = 1;
    unsigned flags = v == STOMP_V11 && b->o.lenient_escapes ? STOMP_PARSE_LENIENT_ESCAPES : 0;
    if (v != STOMP_V10 || !b->o.allow_non_utf8_10)
        flags |= STOMP_PARSE_UTF8;
    stomp_parser_set_version(&c->parser, v, flags);
    stomp_parser_set_limits(&c->parser, &b->o.limits);
    heartbeat__start(c);
    return BROKER_OK;
}

/* An answered record of a live, not closing conn: the session begins or is refused. The
 * record is freed; reading is the caller's business. */
static broker_err apply(broker_auth *r)
{
    conn *c = r->c;
    c->auth = NULL;
    r->c = NULL;
    broker_err rc = BROKER_OK;
    if (r->answer != 1) {
        refuse(c, r->login, "");
    } else {
        log_accepted(c, r->login, "");
        rc = permit__set_login(c, r->login);
        if (rc == BROKER_OK)
            rc = login__begin(c, r->v, r->sx, r->sy);
    }
    auth_free(r);
    return rc;
}

/* The check took longer than the CONNECT timeout. The record stays the embedder's to
 * answer; the conn's teardown orphans it. */
static void on_check_timeout(uv_timer_t *t)
{
    conn *c = t->data;
    if (c->state == CS_CLOSING || !c->auth)
        return;
    conn__fail(c, BROKER_E_LIMIT, NULL, "login not checked within the connect timeout");
}

/* Ask authenticate_async; wait for the answer unless it came inside the call. */
static broker_err check_async(conn *c, const char *login, const char *passcode,
                              stomp_version v, uint32_t sx, uint32_t sy)
{
    broker *b = c->b;
    /* The frame is the parser's and goes with the next byte: the record keeps copies. */
    broker_auth *r = auth_new(b, c, login, passcode);
    if (!r)
        return BROKER_E_NOMEM;
    r->v = v;
    r->sx = sx;
    r->sy = sy;
    b->sess.auth_outstanding++;
    c->auth = r;
    r->in_call = 1;
    b->o.authenticate_async(b->o.auth_ctx, r, r->login, r->passcode);
    r->in_call = 0;
    if (r->answer >= 0)
        return apply(r);
    /* Wait: read nothing (the parse loop stops at c->auth), and give the check the
     * CONNECT timeout. */
    conn__stop_reading(c);
    if (b->o.connect_timeout_ms)
        conn__deadline(c, on_check_timeout, b->o.connect_timeout_ms);
    else
        uv_timer_stop(&c->deadline);
    return BROKER_OK;
}

broker_err login__check(conn *c, const stomp_frame *f, stomp_version v, uint32_t sx,
                        uint32_t sy)
{
    broker *b = c->b;
    char cert[256];
    const char *login = stomp_frame_header(f, "login", NULL);
    if (b->o.tls_login != BROKER_TLS_LOGIN_NONE &&
        net__tls_login(&c->io, b->o.tls_login, cert, sizeof cert)) {
        /* The certificate was verified in the handshake: it is the login. */
        if (login && strcmp(login, cert) != 0) {
            refuse(c, login, ": the client certificate is another login's");
            return BROKER_OK;
        }
        log_accepted(c, cert, " (client certificate)");
        broker_err rc = permit__set_login(c, cert);
        return rc != BROKER_OK ? rc : login__begin(c, v, sx, sy);
    }
    if (!b->o.authenticate && !b->o.authenticate_async)
        return login__begin(c, v, sx, sy);
    const char *passcode = stomp_frame_header(f, "passcode", NULL);
    if (b->o.authenticate_async)
        return check_async(c, login, passcode, v, sx, sy);
    if (b->o.authenticate(b->o.auth_ctx, login, passcode) != 0) {
        refuse(c, login, "");
        return BROKER_OK;
    }
    log_accepted(c, login, "");
    broker_err rc = permit__set_login(c, login);
    return rc != BROKER_OK ? rc : login__begin(c, v, sx, sy);
}

void broker_auth_done(broker_auth *req, int accept)
{
    if (!req)
        return;
    assert(req->answer < 0);
    req->answer = accept != 0;
    if (req->in_call)
        return;
    if (!req->c && !req->done) {
        auth_free(req);
        return;
    }
    broker *b = req->b;
    req->next_ready = b->sess.auth_ready;
    b->sess.auth_ready = req;
    broker__kick(b);
}

int broker_auth_abandoned(const broker_auth *req)
{
    return !req || (!req->c && !req->done);
}

broker_err login__ask(broker *b, const char *login, const char *passcode,
                      void (*done)(void *arg, int accepted), void *arg, broker_auth **out)
{
    broker_auth *r = auth_new(b, NULL, login, passcode);
    if (!r)
        return BROKER_E_NOMEM;
    r->done = done;
    r->done_arg = arg;
    b->sess.auth_outstanding++;
    *out = r;
    r->in_call = 1;
    b->o.authenticate_async(b->o.auth_ctx, r, r->login, r->passcode);
    r->in_call = 0;
    if (r->answer >= 0) { /* answered inside the call: the asker hears at the tick */
        r->next_ready = b->sess.auth_ready;
        b->sess.auth_ready = r;
        broker__kick(b);
    }
    return BROKER_OK;
}

void login__forget(broker_auth *r)
{
    if (r)
        r->done = NULL;
}

void login__abandon(conn *c)
{
    broker_auth *r = c->auth;
    if (!r)
        return;
    c->auth = NULL;
    r->c = NULL;
}

int login__pending(const broker *b)
{
    return b->sess.auth_ready != NULL;
}

void login__run(broker *b)
{
    /* Answers in arrival order do not matter: each concerns its own conn. */
    while (b->sess.auth_ready) {
        broker_auth *r = b->sess.auth_ready;
        b->sess.auth_ready = r->next_ready;
        conn *c = r->c;
        if (r->done) {
            void (*done)(void *, int) = r->done;
            void *arg = r->done_arg;
            int accepted = r->answer == 1;
            auth_free(r);
            done(arg, accepted);
            continue;
        }
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
        broker_err rc = apply(r);
        if (rc != BROKER_OK)
            conn__fail(c, rc, NULL, rc == BROKER_E_NOMEM ? "out of memory"
                                                          : broker_strerror(rc));
        else if (accepted)
            conn__resume(c); /* the frames that waited behind the CONNECT, then read on */
    }
}
