/* pg_topic.c: topic messages between nodes sharing one database.
 *
 * A node publishes a topic message (store_postgres_publish) into its open batch; the batch's
 * commit notifies channel stompd_topic, and every other node listening hands the message to
 * the callback its broker set (store_postgres_topics). Consecutive messages of a batch share
 * one notification: "<node>:<seq>:<base64 of records>", each record the destination, header
 * block, body and expiry (lengths as LEB128). A record too large for a notification (NOTIFY
 * carries under 8000 bytes) goes to a row of stompd_topic, and the notification names it:
 * "<node>:<seq>@<row id>"; a receiver reads the row in its next batch and holds the messages
 * that arrived after it until then, so one FIFO keeps the database's order (commit order,
 * and within a transaction the order of the notifications). Rows older than
 * STORE_POSTGRES_TOPIC_KEEP_MS are deleted by the next publish by reference.
 * Facts: the FIFO's head is delivered as soon as it is complete (inline, fetched, or known
 * lost); a node skips its own notifications (its node number leads the payload).
 */
#include "pg_int.h"

#include <stdio.h>
#include <string.h>

/* The largest group of records one notification carries (base64: 4/3 of it, plus the
 * "<node>:<seq>:" prefix, stays under NOTIFY's 8000 bytes). */
#define INLINE_MAX 5880

typedef struct ptopic_in {
    struct ptopic_in *next;
    int64_t ref;   /* the stompd_topic row it waits for; 0: complete */
    int lost;      /* the row was gone, or its read failed */
    char *data;    /* records, len bytes; NULL until fetched */
    size_t len;
} ptopic_in;

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t put_len(char *p, uint64_t v)
{
    size_t n = 0;
    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        if (p)
            p[n] = (char)(c | (v ? 0x80 : 0));
        n++;
    } while (v);
    return n;
}

/* A LEB128 number at *p (before end): 0, or -1 when malformed. */
static int get_len(const char **p, const char *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t c = (uint8_t) * (*p)++;
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return 0;
    }
    return -1;
}

/* Bytes of m's record; with out, the record written there. */
static size_t record(char *out, const store_postgres_topic *m)
{
    size_t n = 0;
    const char *part[3] = { m->dest, m->headers, m->body };
    size_t len[3] = { m->dest_len, m->headers_len, m->body_len };
    for (int i = 0; i < 3; i++) {
        n += put_len(out ? out + n : NULL, len[i]);
        if (out && len[i])
            memcpy(out + n, part[i], len[i]);
        n += len[i];
    }
    return n + put_len(out ? out + n : NULL, m->expires);
}

store_err store_postgres_publish(store *s, const store_postgres_topic *m)
{
    if (!s || !m || !m->dest_len)
        return STORE_E_INVALID;
    size_t n = record(NULL, m);
    if (s->topic_backlog + n > STORE_POSTGRES_TOPIC_BACKLOG)
        return STORE_E_BUSY;
    pbatch *b = s->open;
    pop *last = b->nops ? &b->ops[b->nops - 1] : NULL;
    if (n <= INLINE_MAX && last && last->kind == OP_TOPIC &&
        (size_t)last->key + n <= INLINE_MAX) {
        if ((size_t)last->key + n > (size_t)last->ord) {
            size_t cap = (size_t)last->ord * 2 < INLINE_MAX ? (size_t)last->ord * 2 : INLINE_MAX;
            if (cap < (size_t)last->key + n)
                cap = (size_t)last->key + n;
            char *p = realloc(last->ptr, cap);
            if (!p)
                return STORE_E_NOMEM;
            last->ptr = p;
            last->ord = (int64_t)cap;
        }
        record((char *)last->ptr + last->key, m);
        last->key += (int64_t)n;
        s->topic_backlog += n;
        return STORE_OK;
    }
    char *p = malloc(n);
    if (!p || pg_reserve_ops(b, 1) != 0) {
        free(p);
        return STORE_E_NOMEM;
    }
    record(p, m);
    pop *o = pg_push_op(b, n <= INLINE_MAX ? OP_TOPIC : OP_TOPIC_BIG, (int64_t)n, p);
    o->ord = (int64_t)n;
    o->not_before = ++s->topic_seq; /* payloads differ: NOTIFY folds equal ones */
    s->topic_backlog += n;
    return STORE_OK;
}

/* ---- sending ---- */

int pg__send_topic(store *s, const pop *o)
{
    char head[48];
    int hl = snprintf(head, sizeof head, "%u:%llu%c", (unsigned)s->node,
                      (unsigned long long)o->not_before, o->kind == OP_TOPIC ? ':' : '@');
    if (o->kind == OP_TOPIC_BIG) {
        char keep[8];
        pg__put64(keep, STORE_POSTGRES_TOPIC_KEEP_MS);
        const char *v[3] = { head, o->ptr, keep };
        const int len[3] = { hl, (int)o->key, 8 };
        return pg__send_stmt(s, P_TOPIC_BIG, v, len);
    }
    const unsigned char *in = o->ptr;
    size_t n = (size_t)o->key;
    char text[8000];
    memcpy(text, head, (size_t)hl);
    char *t = text + hl;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        *t++ = b64[v >> 18];
        *t++ = b64[(v >> 12) & 63];
        *t++ = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        *t++ = i + 2 < n ? b64[v & 63] : '=';
    }
    const char *v[1] = { text };
    const int len[1] = { (int)(t - text) };
    return pg__send_stmt(s, P_TOPIC, v, len);
}

int pg__send_fetch(store *s, const pop *o)
{
    char id[8];
    pg__put64(id, (uint64_t)o->key);
    const char *v[1] = { id };
    const int len[1] = { 8 };
    return pg__send_stmt(s, P_TOPIC_GET, v, len);
}

/* ---- receiving ---- */

static int unb64(int c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

/* The records of a base64 text, decoded into a new buffer (caller frees): NULL when
 * malformed or without memory. */
static char *decode(const char *t, size_t *len)
{
    size_t n = strlen(t);
    if (n % 4)
        return NULL;
    char *out = malloc(n / 4 * 3 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int a = unb64(t[i]), b = unb64(t[i + 1]), c = unb64(t[i + 2]), d = unb64(t[i + 3]);
        int pad = (t[i + 2] == '=') + (t[i + 3] == '=');
        if (a < 0 || b < 0 || (c < 0 && t[i + 2] != '=') || (d < 0 && t[i + 3] != '=') ||
            (pad && i + 4 != n)) {
            free(out);
            return NULL;
        }
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)(c < 0 ? 0 : c) << 6 |
                     (uint32_t)(d < 0 ? 0 : d);
        out[o++] = (char)(v >> 16);
        if (t[i + 2] != '=')
            out[o++] = (char)(v >> 8);
        if (t[i + 3] != '=')
            out[o++] = (char)v;
    }
    *len = o;
    return out;
}

static void push_in(store *s, ptopic_in *in)
{
    in->next = NULL;
    if (s->tin_tail)
        s->tin_tail->next = in;
    else
        s->tin_head = in;
    s->tin_tail = in;
}

void pg__topic_notified(store *s, const char *payload)
{
    if (!s->topic_cb)
        return;
    char *end;
    unsigned long long node = strtoull(payload, &end, 10);
    if (end == payload || *end != ':')
        return;
    if ((int64_t)node == s->node)
        return; /* this node's own: delivered here when published */
    (void)strtoull(end + 1, &end, 10);
    if (*end != ':' && *end != '@')
        return;
    ptopic_in *in = calloc(1, sizeof *in);
    if (!in) {
        s->topics_lost++;
        return;
    }
    if (*end == ':') {
        if (!(in->data = decode(end + 1, &in->len))) {
            free(in);
            s->topics_lost++;
            return;
        }
    } else {
        in->ref = (int64_t)strtoull(end + 1, NULL, 10);
        if (in->ref <= 0 || pg_reserve_ops(s->open, 1) != 0)
            in->lost = 1;
        else
            pg_push_op(s->open, OP_FETCH, in->ref, NULL);
        if (!in->lost && s->wake)
            s->wake(s->wake_arg, NULL, 0, 0); /* the read goes with a commit */
    }
    push_in(s, in);
}

void pg__topic_fetched(store *s, const PGresult *r)
{
    for (int row = 0; row < PQntuples(r); row++) {
        int64_t id = (int64_t)pg__get64(PQgetvalue(r, row, 0));
        for (ptopic_in *in = s->tin_head; in; in = in->next) {
            if (in->ref != id || in->data || in->lost)
                continue;
            size_t n = (size_t)PQgetlength(r, row, 2);
            if ((in->data = malloc(n ? n : 1)) != NULL) {
                memcpy(in->data, PQgetvalue(r, row, 2), n);
                in->len = n;
            }
            break;
        }
    }
}

void pg__topic_settle(store *s, pbatch *b, int ok)
{
    (void)ok;
    for (size_t i = 0; i < b->nops; i++) {
        pop *o = &b->ops[i];
        if (o->kind == OP_TOPIC || o->kind == OP_TOPIC_BIG) {
            s->topic_backlog -= (size_t)o->key;
            free(o->ptr);
            o->ptr = NULL;
        } else if (o->kind == OP_FETCH) {
            /* Read, or not there (deleted after its keep time), or failed: settled. */
            for (ptopic_in *in = s->tin_head; in; in = in->next)
                if (in->ref == o->key && !in->data)
                    in->lost = 1;
        } else
            continue;
        o->kind = OP_ACK; /* done with */
        o->key = 0;
    }
}

/* Hand the records of one notification to the callback; a malformed one ends it. */
static void deliver(store *s, const char *p, size_t n)
{
    const char *end = p + n;
    while (p < end) {
        uint64_t len[3], exp;
        const char *part[3];
        int bad = 0;
        for (int i = 0; i < 3 && !bad; i++) {
            bad = get_len(&p, end, &len[i]) != 0 || len[i] > (uint64_t)(end - p);
            if (!bad) {
                part[i] = p;
                p += len[i];
            }
        }
        if (bad || get_len(&p, end, &exp) != 0 || !len[0]) {
            s->topics_lost++;
            return;
        }
        store_postgres_topic m = { part[0], len[0], part[1], len[1], part[2], len[2], exp };
        s->topics_in++;
        s->topic_cb(s->topic_arg, &m);
    }
}

void pg__topic_drain(store *s)
{
    while (s->tin_head && (s->tin_head->data || s->tin_head->lost)) {
        ptopic_in *in = s->tin_head;
        s->tin_head = in->next;
        if (!s->tin_head)
            s->tin_tail = NULL;
        if (in->data)
            deliver(s, in->data, in->len);
        else
            s->topics_lost++;
        free(in->data);
        free(in);
    }
}

void pg__topic_free(store *s)
{
    for (int k = 0; k < 2; k++)
        pg__topic_settle(s, &s->bat[k], 0);
    while (s->tin_head) {
        ptopic_in *in = s->tin_head;
        s->tin_head = in->next;
        free(in->data);
        free(in);
    }
    s->tin_tail = NULL;
}

void store_postgres_topics(store *s, store_postgres_topic_cb cb, void *arg)
{
    s->topic_cb = cb;
    s->topic_arg = arg;
}

void store_postgres_stats(const store *s, store_postgres_counts *out)
{
    out->round_trips = s->round_trips;
    out->topics_in = s->topics_in;
    out->topics_lost = s->topics_lost;
}
