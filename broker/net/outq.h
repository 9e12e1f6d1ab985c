/* outq.h: refcounted shared buffers and the per-connection output queue (outq.c).
 *
 * The lowest piece of the broker: bytes only, no connection, no frame format. A queue may
 * record where each frame ends (track_frames), for transports that send frame by frame
 * (WebSocket); TCP does not pay for it.
 */
#ifndef BROKER_NET_OUTQ_H
#define BROKER_NET_OUTQ_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "broker.h"

/* A refcounted byte buffer: one encoded MESSAGE queued on many connections. Not atomic:
 * loop thread only. */
typedef struct sbuf {
    uint32_t refs;
    size_t len;
    char data[];
} sbuf;

/* refs = 1; caller owns one reference, release with sbuf__unref(). NULL: out of memory. */
sbuf *sbuf__new(size_t len);
void sbuf__ref(sbuf *sb);
void sbuf__unref(sbuf *sb); /* NULL is fine */

/* One queued piece: len bytes at off in sb (a shared MESSAGE part, or one of the queue's
 * own chunks); the entry holds one reference to sb. */
typedef struct oent {
    sbuf *sb;
    size_t off, len;
} oent;

/* Frames waiting to be written. Small frames (and small shared parts) are copied into
 * refcounted chunks that never move; big shared parts are referenced. "pend" collects
 * while "fl" is being written (one write in flight): appending never moves bytes a write
 * is reading. An idle queue holds no memory. */
typedef struct outq {
    oent *pend;
    size_t npend, pend_cap;
    oent *fl;
    size_t nfl, fl_cap;
    sbuf *chunk; /* where copied bytes go (chunk->len is its capacity); NULL: none yet */
    size_t chunk_used;
    sbuf *spare; /* a written full-size chunk kept for the next one (busy queues only) */
    size_t queued; /* bytes pending plus in flight */
    uint64_t total; /* bytes ever queued */
    /* Frame ends, when tracked: the stream offset (bytes queued since the queue began)
     * just past each frame not yet handed on, oldest first, in a ring. */
    uint64_t *ends;
    uint32_t ends_head, nends, ends_cap;
    size_t open; /* the room of the frame outq__frame_open() opened (0: none open) */
    uint8_t inflight, track_frames;
} outq;

/* Reserve n bytes for one whole frame at the end of the pending data (its end is recorded
 * when frames are tracked). NULL when out of memory (nothing queued). */
char *outq__frame(outq *q, size_t n);
/* Reserve n bytes that are not a frame (the Flash policy answer, on untracked queues). */
char *outq__reserve(outq *q, size_t n);
/* Shared parts up to this size are copied into the queue rather than referenced: for
 * small frames a copy is cheaper than a reference and an iovec of its own. */
#define OUTQ_COPY_MAX 2048
/* Queue one frame: a then b (copied) then sb (copied up to OUTQ_COPY_MAX bytes, else
 * referenced). All or nothing: -1 when out of memory. */
int outq__push_frame(outq *q, const char *a, size_t alen, const char *b, size_t blen,
                     sbuf *sb) BROKER_WUR;
/* Open one frame of at most max bytes at the end of the pending data, to be written in
 * place (an encoder writes straight into the queue, no copy in between); then close it
 * with outq__frame_close() before anything else touches the queue. NULL when out of
 * memory (nothing queued, nothing to close). */
char *outq__frame_open(outq *q, size_t max);
/* The open frame holds used bytes (0: none, it is dropped): the rest of its room is given
 * back, its end recorded. */
void outq__frame_close(outq *q, size_t used);
/* Move pending entries in flight and fill *iov (grown as needed: an array the caller
 * keeps, needed only until the write call returns); returns the iov count (0: nothing). */
size_t outq__start(outq *q, uv_buf_t **iov, size_t *iov_cap);
/* The write in flight finished: release it. Returns the bytes it held. */
size_t outq__done(outq *q);
/* Tracked queues: the stream offset just past the oldest frame not yet taken (1), or 0
 * when no frame end is recorded. outq__frame_taken() drops it. */
int outq__frame_end(const outq *q, uint64_t *end);
void outq__frame_taken(outq *q);
void outq__free(outq *q);

#endif
