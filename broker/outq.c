/* outq.c: refcounted shared buffers and the per-connection output queue.
 *
 * Invariants: entries of "pend" point into pbytes (inline) or hold one sbuf reference;
 * entries of "fl" likewise into fbytes. Only the fl side is ever handed to a write, so
 * appending (which may move pbytes) never moves bytes a write is reading. queued counts
 * the bytes of both sides.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* A write gathers at most this many pieces; the rest waits for the next write. */
#define MAX_IOV 1024

sbuf *sbuf__new(size_t len)
{
    if (len > SIZE_MAX - sizeof(sbuf))
        return NULL;
    sbuf *sb = malloc(sizeof *sb + len);
    if (!sb)
        return NULL;
    sb->refs = 1;
    sb->len = len;
    return sb;
}

void sbuf__ref(sbuf *sb)
{
    sb->refs++;
}

void sbuf__unref(sbuf *sb)
{
    if (sb && --sb->refs == 0)
        free(sb);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need) {
        if (n > SIZE_MAX / 2 / elem)
            return -1;
        n *= 2;
    }
    void *np = realloc(*p, n * elem);
    if (!np)
        return -1;
    *p = np;
    *cap = n;
    return 0;
}

char *outq__reserve(outq *q, size_t n)
{
    if (n > SIZE_MAX / 4 || grow((void **)&q->pbytes, &q->pbytes_cap, q->pbytes_len + n, 1))
        return NULL;
    /* Extend the last inline entry when it ends where we write: one iovec for a run of
     * small frames. */
    if (q->npend && !q->pend[q->npend - 1].sb &&
        q->pend[q->npend - 1].off + q->pend[q->npend - 1].len == q->pbytes_len) {
        q->pend[q->npend - 1].len += n;
    } else {
        if (grow((void **)&q->pend, &q->pend_cap, q->npend + 1, sizeof(oent)))
            return NULL;
        q->pend[q->npend++] = (oent){ NULL, q->pbytes_len, n };
    }
    char *p = q->pbytes + q->pbytes_len;
    q->pbytes_len += n;
    q->queued += n;
    return p;
}

int outq__push_shared(outq *q, sbuf *sb)
{
    if (grow((void **)&q->pend, &q->pend_cap, q->npend + 1, sizeof(oent)))
        return -1;
    sbuf__ref(sb);
    q->pend[q->npend++] = (oent){ sb, 0, sb->len };
    q->queued += sb->len;
    return 0;
}

int outq__push_prefixed(outq *q, const char *a, size_t alen, const char *b, size_t blen,
                        sbuf *sb)
{
    /* Grow everything first: a prefix queued without its shared part would corrupt the
     * stream. */
    if (grow((void **)&q->pend, &q->pend_cap, q->npend + 2, sizeof(oent)) ||
        grow((void **)&q->pbytes, &q->pbytes_cap, q->pbytes_len + alen + blen, 1))
        return -1;
    char *p = outq__reserve(q, alen + blen);
    memcpy(p, a, alen);
    memcpy(p + alen, b, blen);
    return outq__push_shared(q, sb);
}

size_t outq__start(outq *q, uv_buf_t **iov)
{
    if (q->inflight || !q->npend)
        return 0;
    size_t n = q->npend < MAX_IOV ? q->npend : MAX_IOV;
    if (grow((void **)&q->iov, &q->iov_cap, n, sizeof(uv_buf_t)) ||
        grow((void **)&q->fl, &q->fl_cap, n, sizeof(oent)))
        return 0;
    /* Swap the inline buffers: the written side keeps its bytes, the collecting side gets
     * the old in-flight buffer back (empty). Entries beyond MAX_IOV that are inline must
     * stay valid in the new pending buffer, so only swap when everything goes. */
    if (n == q->npend) {
        char *t = q->fbytes;
        size_t tc = q->fbytes_cap;
        q->fbytes = q->pbytes;
        q->fbytes_cap = q->pbytes_cap;
        q->pbytes = t;
        q->pbytes_cap = tc;
        q->pbytes_len = 0;
        memcpy(q->fl, q->pend, n * sizeof(oent));
        q->nfl = n;
        q->npend = 0;
    } else {
        /* Rare (over MAX_IOV pieces): copy the first n pieces' inline bytes aside. */
        size_t inl = 0;
        for (size_t i = 0; i < n; i++)
            if (!q->pend[i].sb)
                inl += q->pend[i].len;
        if (grow((void **)&q->fbytes, &q->fbytes_cap, inl ? inl : 1, 1))
            return 0;
        size_t at = 0;
        for (size_t i = 0; i < n; i++) {
            q->fl[i] = q->pend[i];
            if (!q->pend[i].sb) {
                memcpy(q->fbytes + at, q->pbytes + q->pend[i].off, q->pend[i].len);
                q->fl[i].off = at;
                at += q->pend[i].len;
            }
        }
        q->nfl = n;
        memmove(q->pend, q->pend + n, (q->npend - n) * sizeof(oent));
        q->npend -= n;
    }
    for (size_t i = 0; i < q->nfl; i++) {
        oent *e = &q->fl[i];
        char *base = e->sb ? e->sb->data : q->fbytes;
        q->iov[i] = uv_buf_init(base + e->off, (unsigned)e->len);
    }
    q->inflight = 1;
    *iov = q->iov;
    return q->nfl;
}

size_t outq__done(outq *q)
{
    size_t bytes = 0;
    for (size_t i = 0; i < q->nfl; i++) {
        bytes += q->fl[i].len;
        sbuf__unref(q->fl[i].sb);
    }
    q->nfl = 0;
    q->inflight = 0;
    q->queued -= bytes;
    return bytes;
}

void outq__free(outq *q)
{
    for (size_t i = 0; i < q->nfl; i++)
        sbuf__unref(q->fl[i].sb);
    for (size_t i = 0; i < q->npend; i++)
        sbuf__unref(q->pend[i].sb);
    free(q->pend);
    free(q->pbytes);
    free(q->fl);
    free(q->fbytes);
    free(q->iov);
    memset(q, 0, sizeof *q);
}
