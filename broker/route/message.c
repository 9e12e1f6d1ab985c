/* message.c: messages outside the store (topic messages, in-process publishes, the SENDs of
 * a transaction), the header block every message carries, and the shared part of its
 * MESSAGE frames.
 *
 * The wire format is frames/'s: the header block is stomp_pack_headers()'s packed form (the
 * SEND headers that travel on, what the store keeps), and stomp_message_encode() writes the
 * shared part once per version; only the head "MESSAGE\nsubscription:<id>\n[ack:<n>\n]"
 * differs per subscriber (sub.c). What a version can carry is frames/'s to say too: a
 * message must be deliverable to a subscriber of any version, so a SEND whose destination
 * or headers 1.0 or 1.1 cannot carry is refused up front (headers.c) rather than delivered
 * with headers dropped.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

size_t msg__u64(char *o, uint64_t v)
{
    return stomp_u64(o, v);
}

int msg__header_block(const stomp_frame *f, char **buf, size_t *cap, size_t *len)
{
    /* Room for every header (those that do not travel on included): one packing pass. */
    size_t need = 0;
    for (size_t i = 0; i < f->nheaders; i++)
        need += f->headers[i].name_len + f->headers[i].value_len + 2;
    if (need > *cap) {
        char *nb = realloc(*buf, need);
        if (!nb)
            return -1;
        *buf = nb;
        *cap = need;
    }
    *len = stomp_pack_headers(f, *buf);
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
    m->attrs = (msg_attrs)MSG_ATTRS_INIT;
    return m;
}

bmsg *bmsg__from_frame(const stomp_frame *f, const char *dest, size_t dest_len)
{
    bmsg *m = bmsg_alloc(dest, dest_len, stomp_pack_headers(f, NULL), f->body_len);
    if (!m)
        return NULL;
    stomp_pack_headers(f, m->hdrs);
    if (f->body_len)
        memcpy(m->body, f->body, f->body_len);
    return m;
}

bmsg *bmsg__from_block(const char *dest, size_t dest_len, const char *hdrs, size_t hdrs_len,
                       const char *body, size_t body_len)
{
    bmsg *m = bmsg_alloc(dest, dest_len, hdrs_len, body_len);
    if (!m)
        return NULL;
    if (hdrs_len)
        memcpy(m->hdrs, hdrs, hdrs_len);
    if (body_len)
        memcpy(m->body, body, body_len);
    return m;
}

bmsg *bmsg__from_parts(const char *dest, const broker_header *h, size_t nh, const void *body,
                       size_t body_len)
{
    size_t hlen = 0;
    for (size_t i = 0; i < nh; i++)
        if (stomp_header_forwarded(h[i].name, strlen(h[i].name)))
            hlen += strlen(h[i].name) + strlen(h[i].value) + 2;
    bmsg *m = bmsg_alloc(dest, strlen(dest), hlen, body_len);
    if (!m)
        return NULL;
    char *o = m->hdrs;
    for (size_t i = 0; i < nh; i++) {
        size_t nl = strlen(h[i].name), vl = strlen(h[i].value);
        if (!stomp_header_forwarded(h[i].name, nl))
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
    return stomp_packed_header(hdrs, len, name, NULL);
}

sbuf *msg__encode(stomp_version v, const stomp_message *m, stomp_err *err)
{
    size_t n = stomp_message_bound(m);
    *err = STOMP_E_NOMEM;
    sbuf *sb = n == SIZE_MAX ? NULL : sbuf__new(n);
    if (!sb)
        return NULL;
    size_t w = stomp_message_encode(m, v, sb->data, n, err);
    if (!w) {
        sbuf__unref(sb);
        return NULL;
    }
    sb->len = w;
    return sb;
}
