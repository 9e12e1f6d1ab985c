/* message.c: message bodies and header blocks, and the encoding of MESSAGE frames.
 *
 * A header block is the custom headers of a SEND as "name\0value\0" pairs: what the store
 * keeps and what every subscriber's MESSAGE carries. Headers that belong to the sender
 * (receipt, transaction, content-length) or that the broker sets itself are dropped.
 * The shared part of a MESSAGE is encoded once per version; only the prefix
 * "MESSAGE\nsubscription:<id>\n[ack:<n>\n]" differs per subscriber (see sub.c).
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

/* Headers a SEND's MESSAGE does not carry over: the sender's own, and those the broker
 * sets. A switch on the length keeps this to one memcmp per header. */
static int is_dropped(const char *name, size_t len)
{
    switch (len) {
    case 3: return memcmp(name, "ack", 3) == 0;
    case 7: return memcmp(name, "receipt", 7) == 0;
    case 10: return memcmp(name, "message-id", 10) == 0;
    case 11:
        return memcmp(name, "destination", 11) == 0 || memcmp(name, "transaction", 11) == 0 ||
               memcmp(name, "redelivered", 11) == 0;
    case 12: return memcmp(name, "subscription", 12) == 0;
    case 14: return memcmp(name, "content-length", 14) == 0;
    case 16: return memcmp(name, "redelivery-count", 16) == 0;
    default: return 0;
    }
}

size_t msg__u64(char *o, uint64_t v)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930"
                                "31323334353637383940414243444546474849505152535455565758596061"
                                "6263646566676869707172737475767778798081828384858687888990919293"
                                "949596979899";
    char t[20];
    char *e = t + sizeof t, *p = e;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        memcpy(p, pairs + 2 * r, 2);
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, pairs + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    size_t n = (size_t)(e - p);
    memcpy(o, p, n);
    return n;
}

int msg__header_block(const stomp_frame *f, char **buf, size_t *cap, size_t *len)
{
    size_t need = 0;
    for (size_t i = 0; i < f->nheaders; i++) {
        const stomp_header *h = &f->headers[i];
        if (!is_dropped(h->name, h->name_len))
            need += h->name_len + h->value_len + 2;
    }
    if (need > *cap) {
        char *nb = realloc(*buf, need);
        if (!nb)
            return -1;
        *buf = nb;
        *cap = need;
    }
    char *o = *buf;
    for (size_t i = 0; i < f->nheaders; i++) {
        const stomp_header *h = &f->headers[i];
        if (is_dropped(h->name, h->name_len))
            continue;
        memcpy(o, h->name, h->name_len);
        o += h->name_len;
        *o++ = '\0';
        memcpy(o, h->value, h->value_len);
        o += h->value_len;
        *o++ = '\0';
    }
    *len = need;
    return 0;
}

static bmsg *bmsg_alloc(const char *dest, size_t dest_len, size_t hlen, size_t body_len)
{
    if (dest_len > SIZE_MAX / 4 || hlen > SIZE_MAX / 4 || body_len > SIZE_MAX / 4)
        return NULL;
    bmsg *m = malloc(sizeof *m + dest_len + 1 + hlen + body_len + 1);
    if (!m)
        return NULL;
    memset(m, 0, sizeof *m);
    m->refs = 1;
    m->dest = m->data;
    memcpy(m->dest, dest, dest_len);
    m->dest[dest_len] = '\0';
    m->dest_len = dest_len;
    m->hdrs = m->dest + dest_len + 1;
    m->hdrs_len = hlen;
    m->body = m->hdrs + hlen;
    m->body_len = body_len;
    m->body[body_len] = '\0';
    return m;
}

bmsg *bmsg__from_frame(const stomp_frame *f, const char *dest, size_t dest_len)
{
    size_t hlen = 0;
    for (size_t i = 0; i < f->nheaders; i++)
        if (!is_dropped(f->headers[i].name, f->headers[i].name_len))
            hlen += f->headers[i].name_len + f->headers[i].value_len + 2;
    bmsg *m = bmsg_alloc(dest, dest_len, hlen, f->body_len);
    if (!m)
        return NULL;
    size_t cap = hlen, got;
    char *block = m->hdrs;
    if (msg__header_block(f, &block, &cap, &got) != 0 || block != m->hdrs) {
        free(m); /* cannot happen: cap was exact */
        return NULL;
    }
    if (f->body_len)
        memcpy(m->body, f->body, f->body_len);
    return m;
}

bmsg *bmsg__from_parts(const char *dest, const broker_header *h, size_t nh, const void *body,
                       size_t body_len)
{
    size_t hlen = 0;
    for (size_t i = 0; i < nh; i++)
        if (!is_dropped(h[i].name, strlen(h[i].name)))
            hlen += strlen(h[i].name) + strlen(h[i].value) + 2;
    bmsg *m = bmsg_alloc(dest, strlen(dest), hlen, body_len);
    if (!m)
        return NULL;
    char *o = m->hdrs;
    for (size_t i = 0; i < nh; i++) {
        size_t nl = strlen(h[i].name), vl = strlen(h[i].value);
        if (is_dropped(h[i].name, nl))
            continue;
        memcpy(o, h[i].name, nl + 1);
        o += nl + 1;
        memcpy(o, h[i].value, vl + 1);
        o += vl + 1;
    }
    if (body_len)
        memcpy(m->body, body, body_len);
    return m;
}

void bmsg__unref(bmsg *m)
{
    if (!m || --m->refs)
        return;
    for (int v = 0; v < 3; v++)
        sbuf__unref(m->enc[v]);
    free(m);
}

const char *msg__block_header(const char *hdrs, size_t len, const char *name)
{
    size_t i = 0;
    while (i < len) {
        const char *n = hdrs + i;
        size_t nl = strlen(n);
        const char *v = n + nl + 1;
        size_t vl = strlen(v);
        if (strcmp(n, name) == 0)
            return v;
        i += nl + vl + 2;
    }
    return NULL;
}

/* Can (s, len) be written in version v at all? 1.0 has no escapes: no EOL anywhere and no
 * ':' in a name; 1.1 cannot carry CR. */
static int writable(const char *s, size_t len, stomp_version v, int is_name)
{
    if (v == STOMP_V12)
        return 1;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '\r' || (v == STOMP_V10 && (ch == '\n' || (is_name && ch == ':'))))
            return 0;
    }
    return 1;
}

static size_t val_len(const char *s, size_t len, stomp_version v)
{
    return stomp_escaped_len(s, len, v, STOMP_CMD_MESSAGE);
}

/* A destination must be written even where it is not writable: replace the offending
 * bytes with spaces rather than break the framing. */
/* No byte that any version escapes or refuses in a value: written as it is. */
static int plain(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '\\' || ch == '\n' || ch == ':' || ch == '\r')
            return 0;
    }
    return 1;
}

static char *put_dest(char *o, const char *s, size_t len, stomp_version v)
{
    if (writable(s, len, v, 0))
        return o + stomp_escape(s, len, v, STOMP_CMD_MESSAGE, o);
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '\r' || (v == STOMP_V10 && ch == '\n'))
            ch = ' ';
        o += stomp_escape(&ch, 1, v, STOMP_CMD_MESSAGE, o);
    }
    return o;
}

static size_t dest_len_for(const char *s, size_t len, stomp_version v)
{
    if (writable(s, len, v, 0))
        return val_len(s, len, v);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '\r' || (v == STOMP_V10 && ch == '\n'))
            ch = ' ';
        n += val_len(&ch, 1, v);
    }
    return n;
}

sbuf *msg__encode(stomp_version v, const char *dest, size_t dest_len, const char *msgid,
                  uint32_t redeliveries, const char *hdrs, size_t hdrs_len, const char *body,
                  size_t body_len, sbuf **scratch, size_t *scratch_cap)
{
    static const char redel_h[] = "redelivered:true\nredelivery-count:";
    size_t il = strlen(msgid);
    /* The usual destination has nothing to escape: then it is copied as it is. */
    int dplain = plain(dest, dest_len);
    size_t dl = dplain ? dest_len : dest_len_for(dest, dest_len, v);
    size_t n = 12 + dl + 1 + 11 + il + 1 + 15 + 20 + 2 + body_len + 1;
    if (redeliveries)
        n += sizeof redel_h - 1 + 10 + 1;
    for (size_t i = 0; i < hdrs_len;) {
        const char *name = hdrs + i;
        size_t nl = strlen(name);
        const char *val = name + nl + 1;
        size_t vl = strlen(val);
        i += nl + vl + 2;
        if (writable(name, nl, v, 1) && writable(val, vl, v, 0))
            n += val_len(name, nl, v) + 1 + val_len(val, vl, v) + 1;
    }
    /* n is an upper bound (the numbers' widths); small messages go to the scratch buffer,
     * which outq copies rather than references. */
    sbuf *sb;
    if (scratch && n <= OUTQ_COPY_MAX) {
        if (*scratch_cap < n) {
            sbuf *ns = realloc(*scratch, sizeof *ns + OUTQ_COPY_MAX);
            if (!ns)
                return NULL;
            ns->refs = 1;
            *scratch = ns;
            *scratch_cap = OUTQ_COPY_MAX;
        }
        sb = *scratch;
    } else {
        sb = sbuf__new(n);
        if (!sb)
            return NULL;
    }
    char *o = sb->data;
    memcpy(o, "destination:", 12);
    if (dplain) {
        memcpy(o + 12, dest, dest_len);
        o += 12 + dest_len;
    } else {
        o = put_dest(o + 12, dest, dest_len, v);
    }
    *o++ = '\n';
    memcpy(o, "message-id:", 11);
    o += 11;
    memcpy(o, msgid, il);
    o += il;
    *o++ = '\n';
    if (redeliveries) {
        memcpy(o, redel_h, sizeof redel_h - 1);
        o += sizeof redel_h - 1;
        o += msg__u64(o, redeliveries);
        *o++ = '\n';
    }
    for (size_t i = 0; i < hdrs_len;) {
        const char *name = hdrs + i;
        size_t nl = strlen(name);
        const char *val = name + nl + 1;
        size_t vl = strlen(val);
        i += nl + vl + 2;
        if (!writable(name, nl, v, 1) || !writable(val, vl, v, 0))
            continue;
        o += stomp_escape(name, nl, v, STOMP_CMD_MESSAGE, o);
        *o++ = ':';
        o += stomp_escape(val, vl, v, STOMP_CMD_MESSAGE, o);
        *o++ = '\n';
    }
    memcpy(o, "content-length:", 15);
    o += 15;
    o += msg__u64(o, body_len);
    *o++ = '\n';
    *o++ = '\n';
    if (body_len)
        memcpy(o, body, body_len);
    o += body_len;
    *o++ = '\0';
    sb->len = (size_t)(o - sb->data);
    return sb;
}
