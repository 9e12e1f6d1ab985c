/* outq.c: refcounted shared buffers and the per-connection output queue.
 *
 * Invariants: every entry of "pend" and "fl" holds one reference to the sbuf it points
 * into: a shared MESSAGE part, or a chunk of the queue's own copied bytes. Chunks never
 * move or grow, so appending to the current chunk never disturbs a write reading its
 * earlier bytes. Consecutive copied bytes extend one entry (one iovec for a run of small
 * frames), so entries do not mark frames: a tracked queue records frame ends separately,
 * as stream offsets. queued counts the bytes of both sides. A queue drained after a small
 * write holds no memory at all (idle connections cost nothing here).
 */
#include "net/outq.h"

#include <stdlib.h>
#include <string.h>

/* A write gathers at most this many pieces; the rest waits for the next write. */
#define MAX_IOV 1024
/* Chunks start small (an idle connection writes a receipt now and then) and double up to
 * this size while a connection stays busy. */
#define CHUNK_MIN 256
#define CHUNK_MAX (64u << 10)
/* A drained queue whose last write was at most this big gives its memory back; a busy
 * connection keeps its chunk and arrays from one write to the next. */
#define IDLE_BYTES 4096

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

static int grow(oent **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 4;
    while (n < need) {
        if (n > SIZE_MAX / 2 / sizeof(oent))
            return -1;
        n *= 2;
    }
    oent *np = realloc(*p, n * sizeof(oent));
    if (!np)
        return -1;
    *p = np;
    *cap = n;
    return 0;
}

/* Room for one more frame end in the ring (tracked queues only): 0 or -1. */
static int ends_room(outq *q)
{
    if (!q->track_frames || q->nends < q->ends_cap)
        return 0;
    if (q->ends_cap > UINT32_MAX / 2)
        return -1;
    uint32_t ncap = q->ends_cap ? q->ends_cap * 2 : 16;
    uint64_t *ne = malloc(ncap * sizeof *ne);
    if (!ne)
        return -1;
    for (uint32_t i = 0; i < q->nends; i++)
        ne[i] = q->ends[(q->ends_head + i) % q->ends_cap];
    free(q->ends);
    q->ends = ne;
    q->ends_cap = ncap;
    q->ends_head = 0;
    return 0;
}

/* Record that a frame ends at the current end of the queue (room reserved). */
static void end_frame(outq *q)
{
    if (q->track_frames)
        q->ends[(q->ends_head + q->nends++) % q->ends_cap] = q->total;
}

/* A chunk with room for n more bytes: the current one, the spare, or a new one. */
static int chunk_room(outq *q, size_t n)
{
    if (q->chunk && q->chunk->len - q->chunk_used >= n)
        return 0;
    size_t want = q->chunk ? q->chunk->len * 2 : CHUNK_MIN;
    if (want > CHUNK_MAX)
        want = CHUNK_MAX;
    if (want < n)
        want = n;
    sbuf *nc;
    if (want == CHUNK_MAX && q->spare) {
        nc = q->spare; /* refs == 1: nothing else points into it */
        q->spare = NULL;
    } else if (!(nc = sbuf__new(want))) {
        return -1;
    }
    sbuf__unref(q->chunk); /* entries keep the old one alive while they need it */
    q->chunk = nc;
    q->chunk_used = 0;
    return 0;
}

char *outq__reserve(outq *q, size_t n)
{
    if (n > SIZE_MAX / 4 || chunk_room(q, n) != 0)
        return NULL;
    oent *last = q->npend ? &q->pend[q->npend - 1] : NULL;
    if (last && last->sb == q->chunk && last->off + last->len == q->chunk_used) {
        last->len += n;
    } else {
        if (grow(&q->pend, &q->pend_cap, q->npend + 1))
            return NULL;
        sbuf__ref(q->chunk);
        q->pend[q->npend++] = (oent){ q->chunk, q->chunk_used, n };
    }
    char *p = q->chunk->data + q->chunk_used;
    q->chunk_used += n;
    q->queued += n;
    q->total += n;
    return p;
}

char *outq__frame(outq *q, size_t n)
{
    if (ends_room(q) != 0)
        return NULL;
    char *p = outq__reserve(q, n);
    if (p)
        end_frame(q);
    return p;
}

static void push_shared(outq *q, sbuf *sb)
{
    sbuf__ref(sb);
    q->pend[q->npend++] = (oent){ sb, 0, sb->len };
    q->queued += sb->len;
    q->total += sb->len;
}

int outq__push_frame(outq *q, const char *a, size_t alen, const char *b, size_t blen,
                     sbuf *sb)
{
    if (ends_room(q) != 0)
        return -1;
    if (sb->len <= OUTQ_COPY_MAX) {
        char *p = outq__reserve(q, alen + blen + sb->len);
        if (!p)
            return -1;
        memcpy(p, a, alen);
        if (blen)
            memcpy(p + alen, b, blen);
        memcpy(p + alen + blen, sb->data, sb->len);
        end_frame(q);
        return 0;
    }
    /* Room for both entries first: a head queued without its shared part would corrupt
     * the stream. */
    if (grow(&q->pend, &q->pend_cap, q->npend + 2))
        return -1;
    char *p = outq__reserve(q, alen + blen);
    if (!p)
        return -1;
    memcpy(p, a, alen);
    if (blen)
        memcpy(p + alen, b, blen);
    push_shared(q, sb); /* cannot fail: room reserved above */
    end_frame(q);
    return 0;
}

char *outq__frame_open(outq *q, size_t max)
{
    if (ends_room(q) != 0)
        return NULL;
    char *p = outq__reserve(q, max);
    if (p)
        q->open = max;
    return p;
}

void outq__frame_close(outq *q, size_t used)
{
    /* The open frame is the tail of the last entry and of the current chunk: nothing has
     * been written of it, so its unused room goes back as if never reserved. */
    size_t unused = q->open - used;
    oent *last = &q->pend[q->npend - 1];
    last->len -= unused;
    q->chunk_used -= unused;
    q->queued -= unused;
    q->total -= unused;
    q->open = 0;
    if (!last->len) {
        sbuf__unref(last->sb);
        q->npend--;
    }
    if (used)
        end_frame(q);
}

size_t outq__start(outq *q, uv_buf_t **iov, size_t *iov_cap)
{
    if (q->inflight || !q->npend)
        return 0;
    size_t n = q->npend < MAX_IOV ? q->npend : MAX_IOV;
    if (*iov_cap < n) {
        size_t nc = *iov_cap ? *iov_cap : 16;
        while (nc < n)
            nc *= 2;
        uv_buf_t *ni = realloc(*iov, nc * sizeof *ni);
        if (!ni)
            return 0;
        *iov = ni;
        *iov_cap = nc;
    }
    if (grow(&q->fl, &q->fl_cap, n))
        return 0;
    memcpy(q->fl, q->pend, n * sizeof(oent));
    memmove(q->pend, q->pend + n, (q->npend - n) * sizeof(oent));
    q->npend -= n;
    q->nfl = n;
    for (size_t i = 0; i < n; i++)
        (*iov)[i] = uv_buf_init(q->fl[i].sb->data + q->fl[i].off, (unsigned)q->fl[i].len);
    q->inflight = 1;
    return n;
}

size_t outq__done(outq *q)
{
    size_t bytes = 0;
    for (size_t i = 0; i < q->nfl; i++) {
        sbuf *sb = q->fl[i].sb;
        bytes += q->fl[i].len;
        /* A busy queue reuses its written chunks rather than churn the allocator. */
        if (sb->refs == 1 && sb->len == CHUNK_MAX && !q->spare)
            q->spare = sb;
        else
            sbuf__unref(sb);
    }
    q->nfl = 0;
    q->inflight = 0;
    q->queued -= bytes;
    if (!q->npend && bytes <= IDLE_BYTES) {
        sbuf__unref(q->chunk);
        sbuf__unref(q->spare);
        q->chunk = q->spare = NULL;
        q->chunk_used = 0;
        free(q->pend);
        free(q->fl);
        q->pend = q->fl = NULL;
        q->pend_cap = q->fl_cap = 0;
        if (!q->nends) {
            free(q->ends);
            q->ends = NULL;
            q->ends_cap = q->ends_head = 0;
        }
    }
    return bytes;
}

int outq__frame_end(const outq *q, uint64_t *end)
{
    if (!q->nends)
        return 0;
    *end = q->ends[q->ends_head];
    return 1;
}

void outq__frame_taken(outq *q)
{
    if (!q->nends)
        return;
    q->ends_head = (q->ends_head + 1) % q->ends_cap;
    q->nends--;
}

void outq__free(outq *q)
{
    for (size_t i = 0; i < q->nfl; i++)
        sbuf__unref(q->fl[i].sb);
    for (size_t i = 0; i < q->npend; i++)
        sbuf__unref(q->pend[i].sb);
    sbuf__unref(q->chunk);
    sbuf__unref(q->spare);
    free(q->pend);
    free(q->fl);
    free(q->ends);
    int track = q->track_frames;
    memset(q, 0, sizeof *q);
    q->track_frames = track;
}
