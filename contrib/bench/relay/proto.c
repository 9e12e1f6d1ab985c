/* proto.c: the relay's STOMP: each frame a connection sends turned into output, with no broker
 * features. A SEND becomes a MESSAGE to every subscriber of a /topic/ destination or to one
 * subscriber in turn of any other; a client or client-individual subscription gets an ack
 * header (the message-id) and its ACKs are accepted and counted, never redelivered; RECEIPT
 * whenever asked. Output is only queued here; main.c writes it once per loop turn. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fputs("relay: out of memory\n", stderr);
        exit(1);
    }
    return q;
}

static char *xdup_escaped(const char *s, size_t n, stomp_command cmd, size_t *elen)
{
    *elen = stomp_escaped_len(s, n, STOMP_V12, cmd);
    char *e = xrealloc(NULL, *elen + 1);
    stomp_escape(s, n, STOMP_V12, cmd, e);
    e[*elen] = '\0';
    return e;
}

/* ---------------------------------------------------------------- output */

static char *out_reserve(struct rconn *c, size_t need)
{
    if (c->out_len + need > c->out_cap && c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + need > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 65536;
        while (cap < c->out_len + need)
            cap *= 2;
        c->out = xrealloc(c->out, cap);
        c->out_cap = cap;
    }
    return c->out + c->out_len;
}

static void out_append(struct rconn *c, const char *s, size_t n)
{
    memcpy(out_reserve(c, n), s, n);
    c->out_len += n;
}

static void out_escaped(struct rconn *c, const char *s, size_t n, stomp_command cmd)
{
    size_t e = stomp_escaped_len(s, n, STOMP_V12, cmd);
    stomp_escape(s, n, STOMP_V12, cmd, out_reserve(c, e));
    c->out_len += e;
}

void relay__mark_dirty(struct relay *r, struct rconn *c)
{
    if (!c->dirty && !c->dead) {
        c->dirty = true;
        c->next_dirty = r->dirty;
        r->dirty = c;
    }
}

void relay__send_error(struct relay *r, struct rconn *c, const char *msg)
{
    out_append(c, "ERROR\nmessage:", 14);
    out_escaped(c, msg, strlen(msg), STOMP_CMD_ERROR);
    out_append(c, "\n\n", 3);
    c->closing = true;
    relay__mark_dirty(r, c);
}

static void send_receipt(struct relay *r, struct rconn *c, const stomp_frame *f)
{
    size_t len;
    const char *id = stomp_frame_header(f, "receipt", &len);
    if (!id)
        return;
    out_append(c, "RECEIPT\nreceipt-id:", 19);
    out_escaped(c, id, len, STOMP_CMD_RECEIPT);
    out_append(c, "\n\n", 3);
    relay__mark_dirty(r, c);
}

static char *put_dec(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

#define PUT(p, lit) (memcpy(p, lit, sizeof lit - 1), p + sizeof lit - 1)

/* A MESSAGE for s into its connection's output, in one reservation. */
static void put_message(struct relay *r, struct rsub *s, const char *body, size_t blen)
{
    struct rconn *c = s->c;
    char *p0 = out_reserve(c, 128 + s->d->esc_len + s->id_esc_len + blen);
    char *p = PUT(p0, "MESSAGE\ndestination:");
    memcpy(p, s->d->esc, s->d->esc_len);
    p = PUT(p + s->d->esc_len, "\nmessage-id:");
    char *id = p;
    p = put_dec(p, ++r->msg_id);
    size_t id_len = (size_t)(p - id);
    if (s->client_ack) {
        p = PUT(p, "\nack:");
        memmove(p, id, id_len);
        p += id_len;
        c->unacked++;
    }
    p = PUT(p, "\nsubscription:");
    memcpy(p, s->id_esc, s->id_esc_len);
    p = PUT(p + s->id_esc_len, "\ncontent-length:");
    p = put_dec(p, blen);
    p = PUT(p, "\n\n");
    memcpy(p, body, blen);
    p[blen] = '\0';
    c->out_len += (size_t)(p + blen + 1 - p0);
    relay__mark_dirty(r, c);
}

/* ---------------------------------------------------------------- destinations */

static struct rdest *find_dest(struct relay *r, const char *name, size_t len)
{
    struct rdest *d = r->last_dest;
    if (d && d->len == len && memcmp(d->name, name, len) == 0)
        return d;
    for (d = r->dests; d; d = d->next) {
        if (d->len == len && memcmp(d->name, name, len) == 0) {
            r->last_dest = d;
            return d;
        }
    }
    return NULL;
}

static struct rdest *add_dest(struct relay *r, const char *name, size_t len)
{
    struct rdest *d = xrealloc(NULL, sizeof *d);
    memset(d, 0, sizeof *d);
    d->name = xrealloc(NULL, len + 1);
    memcpy(d->name, name, len);
    d->name[len] = '\0';
    d->len = len;
    d->esc = xdup_escaped(name, len, STOMP_CMD_MESSAGE, &d->esc_len);
    d->topic = len >= 7 && memcmp(name, "/topic/", 7) == 0;
    d->next = r->dests;
    r->dests = d;
    return d;
}

static void free_sub(struct rsub *s)
{
    free(s->id);
    free(s->id_esc);
    free(s);
}

/* s out of its destination and its connection, and freed. */
static void drop_sub(struct rsub *s)
{
    struct rdest *d = s->d;
    for (int i = 0; i < d->nsubs; i++) {
        if (d->subs[i] == s) {
            memmove(&d->subs[i], &d->subs[i + 1], (size_t)(d->nsubs - i - 1) * sizeof *d->subs);
            d->nsubs--;
            break;
        }
    }
    struct rconn *c = s->c;
    for (int i = 0; i < c->nsubs; i++) {
        if (c->subs[i] == s) {
            c->subs[i] = c->subs[--c->nsubs];
            break;
        }
    }
    free_sub(s);
}

void relay__drop_subs(struct relay *r, struct rconn *c)
{
    (void)r;
    while (c->nsubs)
        drop_sub(c->subs[c->nsubs - 1]);
}

void relay__free_dests(struct relay *r)
{
    while (r->dests) {
        struct rdest *d = r->dests;
        r->dests = d->next;
        free(d->subs);
        free(d->name);
        free(d->esc);
        free(d);
    }
    r->last_dest = NULL;
}

/* ---------------------------------------------------------------- frames */

/* Where the n-th SEND goes: every subscriber of a topic, the next one of a queue. */
static void deliver(struct relay *r, struct rdest *d, const stomp_frame *f, uint64_t n)
{
    int count = d->topic ? d->nsubs : 1;
    for (int k = 0; k < count; k++) {
        struct rsub *s = d->topic ? d->subs[k] : d->subs[d->rr++ % (unsigned)d->nsubs];
        if ((long)n == r->drop_nth)
            continue; /* test only: lose this one */
        if ((long)n == r->swap_nth && !r->held_to) {
            /* test only: hold this one back and deliver it after the next */
            size_t before = s->c->out_len;
            put_message(r, s, f->body, f->body_len);
            r->held_len = s->c->out_len - before;
            if (r->held_len > r->held_cap) {
                r->held = xrealloc(r->held, r->held_len);
                r->held_cap = r->held_len;
            }
            memcpy(r->held, s->c->out + before, r->held_len);
            s->c->out_len = before;
            r->held_to = s->c;
            continue;
        }
        put_message(r, s, f->body, f->body_len);
        r->delivered++;
        if ((long)n == r->dup_nth) {
            put_message(r, s, f->body, f->body_len);
            r->delivered++;
        }
    }
}

static void on_send(struct relay *r, struct rconn *c, const stomp_frame *f)
{
    size_t dlen;
    const char *dest = stomp_frame_header(f, "destination", &dlen);
    if (!dest) {
        relay__send_error(r, c, "SEND without destination");
        return;
    }
    uint64_t n = ++r->sends;
    struct rdest *d = find_dest(r, dest, dlen);
    struct rconn *held_to = (long)n > r->swap_nth ? r->held_to : NULL;
    if (!d || d->nsubs == 0)
        r->no_subscriber++;
    else
        deliver(r, d, f, n);
    if (held_to && r->held_len) {
        if (!held_to->dead) {
            out_append(held_to, r->held, r->held_len);
            relay__mark_dirty(r, held_to);
            r->delivered++;
        }
        r->held_len = 0;
    }
    send_receipt(r, c, f);
}

static void on_subscribe(struct relay *r, struct rconn *c, const stomp_frame *f)
{
    size_t len, dlen;
    const char *id = stomp_frame_header(f, "id", &len);
    const char *dest = stomp_frame_header(f, "destination", &dlen);
    const char *ack = stomp_frame_header(f, "ack", NULL);
    if (!id || !dest) {
        relay__send_error(r, c, "SUBSCRIBE without id or destination");
        return;
    }
    if (ack && strcmp(ack, "auto") != 0 && strcmp(ack, "client") != 0 &&
        strcmp(ack, "client-individual") != 0) {
        relay__send_error(r, c, "ack: auto, client or client-individual");
        return;
    }
    if (c->nsubs == MAX_CONN_SUBS) {
        relay__send_error(r, c, "too many subscriptions on one connection");
        return;
    }
    struct rdest *d = find_dest(r, dest, dlen);
    if (!d)
        d = add_dest(r, dest, dlen);
    struct rsub *s = xrealloc(NULL, sizeof *s);
    s->c = c;
    s->d = d;
    s->id = xrealloc(NULL, len + 1);
    memcpy(s->id, id, len);
    s->id_len = len;
    s->id_esc = xdup_escaped(id, len, STOMP_CMD_MESSAGE, &s->id_esc_len);
    s->client_ack = ack && strcmp(ack, "auto") != 0;
    if (d->nsubs == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 4;
        d->subs = xrealloc(d->subs, (size_t)d->cap * sizeof *d->subs);
    }
    d->subs[d->nsubs++] = s;
    c->subs[c->nsubs++] = s;
    send_receipt(r, c, f);
}

static void on_unsubscribe(struct relay *r, struct rconn *c, const stomp_frame *f)
{
    size_t len;
    const char *id = stomp_frame_header(f, "id", &len);
    for (int i = 0; id && i < c->nsubs; i++) {
        if (c->subs[i]->id_len == len && memcmp(c->subs[i]->id, id, len) == 0) {
            drop_sub(c->subs[i]);
            break;
        }
    }
    send_receipt(r, c, f);
}

/* An ACK's id must be a message-id this relay sent with an ack header; it is counted. */
static void on_ack(struct relay *r, struct rconn *c, const stomp_frame *f)
{
    const char *id = stomp_frame_header(f, "id", NULL);
    char *end;
    unsigned long long v = id ? strtoull(id, &end, 10) : 0;
    if (!id || *end || v == 0 || v > r->msg_id || c->unacked == 0) {
        relay__send_error(r, c, "ACK of no message waiting for one");
        return;
    }
    c->unacked--;
    r->acks++;
    send_receipt(r, c, f);
}

static void on_connect(struct relay *r, struct rconn *c)
{
    if (c->connected) {
        relay__send_error(r, c, "already connected");
        return;
    }
    c->connected = true;
    static const char connected[] = "CONNECTED\nversion:1.2\nheart-beat:0,0\nserver:relay\n\n";
    out_append(c, connected, sizeof connected); /* with the NUL */
    stomp_parser_set_version(&c->parser, STOMP_V12, 0);
    relay__mark_dirty(r, c);
}

void relay__on_frame(struct relay *r, struct rconn *c, const stomp_frame *f)
{
    if (!c->connected && f->cmd != STOMP_CMD_CONNECT && f->cmd != STOMP_CMD_STOMP) {
        relay__send_error(r, c, "expected CONNECT");
        return;
    }
    switch (f->cmd) {
    case STOMP_CMD_SEND: on_send(r, c, f); return;
    case STOMP_CMD_ACK: on_ack(r, c, f); return;
    case STOMP_CMD_CONNECT:
    case STOMP_CMD_STOMP: on_connect(r, c); return;
    case STOMP_CMD_SUBSCRIBE: on_subscribe(r, c, f); return;
    case STOMP_CMD_UNSUBSCRIBE: on_unsubscribe(r, c, f); return;
    case STOMP_CMD_DISCONNECT:
        relay__drop_subs(r, c);
        send_receipt(r, c, f);
        c->closing = true;
        relay__mark_dirty(r, c);
        return;
    default:
        relay__send_error(r, c, "the relay handles CONNECT, SUBSCRIBE, UNSUBSCRIBE, SEND, ACK, "
                                "DISCONNECT only");
        return;
    }
}
