/* message.c: MESSAGE frames as a broker delivers them, and the SEND headers they carry.
 *
 * A delivery is a head for its subscriber ("MESSAGE\nsubscription:..\n[ack:..\n]") in front
 * of a shared part encoded once per version for every subscriber of one message. The SEND
 * headers a MESSAGE carries on are kept packed ("name\0value\0" pairs) by a store; the shared
 * part is encoded from a parsed SEND or from its packed headers to the same bytes. What a
 * version cannot carry makes the message unencodable in that version: nothing is dropped
 * or altered on the way.
 */
#include "codec.h"

int stomp_header_forwarded(const char *name, size_t len)
{
    switch (len) {
    case 3: return memcmp(name, "ack", 3) != 0;
    case 7: return memcmp(name, "receipt", 7) != 0;
    case 10: return memcmp(name, "message-id", 10) != 0;
    case 11:
        return memcmp(name, "destination", 11) != 0 && memcmp(name, "transaction", 11) != 0 &&
               memcmp(name, "redelivered", 11) != 0;
    case 12: return memcmp(name, "subscription", 12) != 0;
    case 14: return memcmp(name, "content-length", 14) != 0;
    case 16: return memcmp(name, "redelivery-count", 16) != 0;
    default: return 1;
    }
}

size_t stomp_pack_headers(const stomp_frame *send, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < send->nheaders; i++) {
        const stomp_header *h = &send->headers[i];
        if (!stomp_header_forwarded(h->name, h->name_len))
            continue;
        if (out) {
            char *o = out + n;
            memcpy(o, h->name, h->name_len);
            o[h->name_len] = '\0';
            memcpy(o + h->name_len + 1, h->value, h->value_len);
            o[h->name_len + 1 + h->value_len] = '\0';
        }
        n += h->name_len + h->value_len + 2;
    }
    return n;
}

/* The pair at block[*at..len): name and value, *at moved past it. 0 when the block ends
 * without the pair's two NULs (a block is data a store gave back: never read past it). */
static int next_pair(const char *block, size_t len, size_t *at, const char **name,
                     size_t *nlen, const char **value, size_t *vlen)
{
    const char *n = block + *at;
    const char *nend = memchr(n, '\0', len - *at);
    if (!nend)
        return 0;
    const char *v = nend + 1;
    const char *vend = memchr(v, '\0', (size_t)(block + len - v));
    if (!vend)
        return 0;
    *name = n;
    *nlen = (size_t)(nend - n);
    *value = v;
    *vlen = (size_t)(vend - v);
    *at = (size_t)(vend + 1 - block);
    return 1;
}

const char *stomp_packed_header(const char *block, size_t len, const char *name, size_t *vlen)
{
    size_t want = strlen(name), at = 0, nl, vl;
    const char *n, *v;
    while (at < len && next_pair(block, len, &at, &n, &nl, &v, &vl)) {
        if (nl == want && memcmp(n, name, want) == 0) {
            if (vlen)
                *vlen = vl;
            return v;
        }
    }
    return NULL;
}

/* ---- the shared part ---- */

static const char redelivered_text[] = "redelivered:true\nredelivery-count:";

/* Fixed text of the shared part: "destination:" LF "message-id:" LF, the redelivery
 * lines with the widest count, "content-length:" with the widest length, LF, LF, NUL. */
#define FIXED_BOUND                                                                        \
    (12 + 1 + 11 + 1 + (sizeof redelivered_text - 1) + 10 + 1 + 15 + 20 + 1 + 1 + 1)

static size_t add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* Every byte of a header may double when escaped. */
static size_t twice(size_t a)
{
    return add(a, a);
}

size_t stomp_message_bound(const stomp_message *m)
{
    size_t n = add(FIXED_BOUND, m->body_len);
    n = add(n, twice(add(m->destination_len, m->message_id_len)));
    if (m->send) {
        /* Headers that are not forwarded are counted too: a bound needs no memcmp. */
        for (size_t i = 0; i < m->send->nheaders; i++) {
            const stomp_header *h = &m->send->headers[i];
            n = add(n, twice(add(h->name_len, h->value_len + 1)));
        }
    } else {
        /* A packed pair "n\0v\0" becomes at most 2n + 2v + 2 bytes: "n:v\n" escaped. */
        n = add(n, twice(m->packed_len));
    }
    return n;
}

typedef struct writer {
    char *o;
    const char *lim; /* where the reserved tail begins */
    int mode;
    stomp_err err;
} writer;

static int failed(writer *w, stomp_err err)
{
    w->err = err;
    return -1;
}

/* room_for() when the worst case might not fit: the exact escaped size. */
static int room_exact(writer *w, size_t fixed, const char *name, size_t name_len,
                      const char *value, size_t value_len)
{
    size_t room = (size_t)(w->lim - w->o);
    size_t n = frames__measure(name, name_len, w->mode, 1);
    size_t v = frames__measure(value, value_len, w->mode, 0);
    if (n == SIZE_MAX || v == SIZE_MAX)
        return failed(w, STOMP_E_UNENCODABLE);
    if (fixed + n + v > room)
        return failed(w, STOMP_E_NOMEM);
    return 0;
}

/* Copy (s, len) to o when none of its bytes matters in any mode (the usual header: then
 * it is written as it is in every version): 1, else 0 with o's bytes undefined. Room for
 * len bytes at o is the caller's to check. Eight bytes a step, the last step overlapping;
 * a short value is checked as one word padded with a plain byte. */
static inline int copy_plain(char *o, const char *s, size_t len)
{
    uint64_t x;
    if (len < 8) {
        uint32_t lo, hi;
        if (len >= 4) { /* two words of four that overlap: every byte in one of them */
            memcpy(&lo, s, 4);
            memcpy(&hi, s + len - 4, 4);
            memcpy(o, &lo, 4);
            memcpy(o + len - 4, &hi, 4);
        } else {
            char pad[8] = { 'A', 'A', 'A', 'A', 'A', 'A', 'A', 'A' };
            for (size_t i = 0; i < len; i++)
                pad[i] = o[i] = s[i];
            memcpy(&lo, pad, 4);
            hi = lo;
        }
        x = (uint64_t)lo << 32 | hi;
        return frames__word_plain(x);
    }
    for (size_t i = 0; i + 8 <= len; i += 8) {
        memcpy(&x, s + i, 8);
        if (!frames__word_plain(x))
            return 0;
        memcpy(o + i, &x, 8);
    }
    memcpy(&x, s + len - 8, 8);
    memcpy(o + len - 8, &x, 8);
    return frames__word_plain(x);
}

/* Room for a line of fixed bytes plus (name, value) escaped? The worst case (every byte
 * escaped) almost always fits, so the exact size is only worked out when it might not.
 * Inline, as put_fixed is: a delivery's fixed lines cost a comparison and two copies. */
static inline int room_for(writer *w, size_t fixed, const char *name, size_t name_len,
                           const char *value, size_t value_len)
{
    if (fixed + 2 * (name_len + value_len) <= (size_t)(w->lim - w->o))
        return 0;
    return room_exact(w, fixed, name, name_len, value, value_len);
}

/* "name:value\n" where name is ours (prefix holds "name:"). */
static inline int put_fixed(writer *w, const char *prefix, size_t prefix_len,
                            const char *value, size_t value_len)
{
    if (prefix_len + value_len + 1 <= (size_t)(w->lim - w->o) &&
        copy_plain(w->o + prefix_len, value, value_len)) {
        memcpy(w->o, prefix, prefix_len);
        w->o += prefix_len + value_len;
        *w->o++ = '\n';
        return 0;
    }
    if (room_for(w, prefix_len + 1, "", 0, value, value_len) < 0)
        return -1;
    memcpy(w->o, prefix, prefix_len);
    char *o = frames__put(w->o + prefix_len, value, value_len, w->mode, 0);
    if (!o)
        return failed(w, STOMP_E_UNENCODABLE);
    *o++ = '\n';
    w->o = o;
    return 0;
}

/* A forwarded header line. */
static int put_header(writer *w, const char *name, size_t name_len, const char *value,
                      size_t value_len)
{
    if (name_len == 0)
        return failed(w, STOMP_E_UNENCODABLE);
    char *p = w->o;
    if (name_len + value_len + 2 <= (size_t)(w->lim - p) && copy_plain(p, name, name_len) &&
        copy_plain(p + name_len + 1, value, value_len)) {
        p[name_len] = ':';
        p[name_len + 1 + value_len] = '\n';
        w->o = p + name_len + value_len + 2;
        return 0;
    }
    if (room_for(w, 2, name, name_len, value, value_len) < 0)
        return -1;
    char *o = frames__put(w->o, name, name_len, w->mode, 1);
    if (!o)
        return failed(w, STOMP_E_UNENCODABLE);
    *o++ = ':';
    o = frames__put(o, value, value_len, w->mode, 0);
    if (!o)
        return failed(w, STOMP_E_UNENCODABLE);
    *o++ = '\n';
    w->o = o;
    return 0;
}

static int put_forwarded(writer *w, const stomp_message *m)
{
    if (m->send) {
        for (size_t i = 0; i < m->send->nheaders; i++) {
            const stomp_header *h = &m->send->headers[i];
            if (stomp_header_forwarded(h->name, h->name_len) &&
                put_header(w, h->name, h->name_len, h->value, h->value_len) < 0)
                return -1;
        }
        return 0;
    }
    size_t at = 0, nl, vl;
    const char *n, *v;
    while (at < m->packed_len) {
        if (!next_pair(m->packed, m->packed_len, &at, &n, &nl, &v, &vl))
            return failed(w, STOMP_E_UNENCODABLE);
        if (put_header(w, n, nl, v, vl) < 0)
            return -1;
    }
    return 0;
}

size_t stomp_message_encode(const stomp_message *m, stomp_version v, char *out, size_t cap,
                            stomp_err *err)
{
    /* The tail (content-length line, blank line, body, NUL) is reserved first, so each
     * header only checks the room left before it. */
    size_t tail = 15 + frames__digits(m->body_len) + 2 + m->body_len + 1;
    if (cap < tail) {
        *err = STOMP_E_NOMEM;
        return 0;
    }
    writer w = { out, out + cap - tail, frames__mode(v, STOMP_CMD_MESSAGE), STOMP_OK };
    if (put_fixed(&w, "destination:", 12, m->destination, m->destination_len) < 0 ||
        put_fixed(&w, "message-id:", 11, m->message_id, m->message_id_len) < 0)
        goto fail;
    if (m->redeliveries) {
        size_t need = sizeof redelivered_text - 1 + frames__digits(m->redeliveries) + 1;
        if ((size_t)(w.lim - w.o) < need) {
            w.err = STOMP_E_NOMEM;
            goto fail;
        }
        memcpy(w.o, redelivered_text, sizeof redelivered_text - 1);
        w.o += sizeof redelivered_text - 1;
        w.o += frames__u64(w.o, m->redeliveries);
        *w.o++ = '\n';
    }
    if (put_forwarded(&w, m) < 0)
        goto fail;
    char *o = w.o;
    memcpy(o, "content-length:", 15);
    o += 15;
    o += frames__u64(o, m->body_len);
    *o++ = '\n';
    *o++ = '\n';
    if (m->body_len)
        memcpy(o, m->body, m->body_len);
    o += m->body_len;
    *o++ = '\0';
    *err = STOMP_OK;
    return (size_t)(o - out);
fail:
    *err = w.err;
    return 0;
}

/* ---- the head of each subscriber ---- */

size_t stomp_message_head_size(const char *sub_id, size_t sub_len, const char *ack,
                               size_t ack_len, stomp_version v)
{
    int mode = frames__mode(v, STOMP_CMD_MESSAGE);
    size_t id = frames__measure(sub_id, sub_len, mode, 0);
    if (id == SIZE_MAX)
        return 0;
    size_t n = 21 + id + 1;
    if (ack) {
        size_t a = frames__measure(ack, ack_len, mode, 0);
        if (a == SIZE_MAX)
            return 0;
        n += 4 + a + 1;
    }
    return n;
}

size_t stomp_message_head(const char *sub_id, size_t sub_len, const char *ack, size_t ack_len,
                          stomp_version v, char *out)
{
    int mode = frames__mode(v, STOMP_CMD_MESSAGE);
    memcpy(out, "MESSAGE\nsubscription:", 21);
    char *o = frames__put(out + 21, sub_id, sub_len, mode, 0);
    if (!o)
        return 0;
    *o++ = '\n';
    if (ack) {
        memcpy(o, "ack:", 4);
        if (!(o = frames__put(o + 4, ack, ack_len, mode, 0)))
            return 0;
        *o++ = '\n';
    }
    return (size_t)(o - out);
}

size_t stomp_message_ack_line(uint64_t n, char *out)
{
    memcpy(out, "ack:", 4);
    size_t d = frames__u64(out + 4, n);
    out[4 + d] = '\n';
    return 4 + d + 1;
}
