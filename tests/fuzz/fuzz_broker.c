/* fuzz_broker.c: libFuzzer target for the whole broker. Per input: one broker on a fresh
 * uv_loop_t, up to four client connections over an in-memory transport, a sequence of
 * operations on them, then a clean stop; invariants are checked after every operation and
 * at the end. A test and not the library, so it uses internals (core.h) where it must.
 *
 * Input: 5 setting bytes, then operations.
 *   byte 0  bit 0 with byte 4 bits 5-7: the SQLite store (a file in a private temp dir,
 *                 removed afterwards; else the memory store)
 *           bit 1 one loop turn after every operation
 *           bit 2 small prefetch and max_unacked (byte 1 bits 0-3)
 *           bit 3 small output_high_water and max_output_bytes (byte 1 bits 4-7)
 *           bit 4 small max_memory (byte 2 bits 0-2)
 *           bit 5 small max_tx_frames, max_transactions, max_subscriptions (byte 2 bits 3-7)
 *           bit 6 small frame limits, before and after CONNECT
 *           bit 7 lenient_escapes and allow_non_utf8_10
 *   byte 2  also, whatever bit 4 says: bits 0-1 the redelivery limit (10, 1, 2 or no
 *           limit attempts), bit 2 dead letters are dropped (else to their DLQ queue)
 *   byte 3  bits 0-5 bytes per read (0: as many as the broker's buffer takes)
 *           bit 6 a write on a reset connection fails at once (else on completion)
 *           bit 7 every 5th store enqueue fails with STORE_E_NOMEM
 *   byte 4  bits 0-1 logins: 1 the synchronous hook, 2 the asynchronous one (login "quick"
 *           answered inside the call, the others bits 2-3 loop turns later: 1, 2, 8 or
 *           only when the input has ended); "bad" is refused
 *           bit 4 the smallest read buffer (512 bytes; else 4 KiB)
 *           bits 5-7 all set, with byte 0 bit 0: the SQLite store (four bits: such inputs
 *           take some twenty times as long, so they stay a minority of the runs)
 * An operation is one byte, (kind << 2) | connection slot (kind taken modulo OP__COUNT),
 * then the argument bytes of its kind (missing ones read as 0). An operation that sends
 * bytes on an empty slot first opens a connection there (at most MAX_CONNS per input).
 *   CONNECT a        CONNECT or STOMP (bit 0), accept-version (bits 1-3), heart-beat
 *                    (bits 4-5), login (bits 6-7)
 *   SUBSCRIBE a b    destination (a 0-2), ack mode (a 3-4), receipt (a 5), id (a 6-7),
 *                    prefetch (b 0-2), an extra header (b 3-4)
 *   UNSUBSCRIBE a    id s0..s2 or by destination (a 0-1, a 2-4), receipt (a 5)
 *   SEND a b c       destination (a 0-2), receipt (a 3), transaction (a 4-5),
 *                    content-length (a 6), body length (b), an extra header (c 0-2)
 *   ACK a b          NACK (a 0), which MESSAGE this connection received, newest first, 7
 *                    an unknown id (a 1-3), how it is named (a 4-5: ack id in 1.2 else
 *                    message-id / message-id / with subscription / id:<message-id>),
 *                    transaction (a 6-7), receipt (b 0), requeue (b 1-2: none / true /
 *                    false / bad)
 *   TX a             BEGIN / COMMIT / ABORT / BEGIN without id (a 0-1), id (a 2-3),
 *                    receipt (a 4)
 *   DISCONNECT a     receipt (a 0)
 *   RAW n bytes      n bytes as they are (0x7f becomes 0x7e: receipts the harness orders
 *                    carry 0x7f, so raw bytes cannot fake one; but they may begin a frame
 *                    that the next structured one completes, so after them a receipt only
 *                    keeps its place in the order)
 *   RESET            the peer resets the connection (UV_ECONNRESET on the next read)
 *   EOF              the peer ends its side (UV_EOF after what it sent)
 *   RUN a            1 + (a & 15) loop turns
 *   COMPLETE a       toggle "the peer stopped reading" (a 0), then complete the write in
 *                    flight now
 *   TIME a           time passes for this connection: its deadline fires (a 0), nothing was
 *                    written (a 1) or received (a 2) for a day, then its heart-beat timer
 *   WAIT             wait for the store commit in flight (SQLite)
 *   BURST a b        1 + (a & 31) SENDs to destination b & 7, bodies of (b >> 3) * 37 bytes
 *                    (29 times that with a & 32 on the SQLite store, whose queues then spill
 *                    to the file: too slow to be worth it on the memory store)
 *   PUBLISH a        broker_publish to destination a & 7, body (a >> 3) * 11 bytes
 *   INPROC a         broker_subscribe to destination (a >> 2) & 7 in slot a & 3, or
 *                    broker_unsubscribe the one there
 *   RESTART          a clean stop (checked as at the end), then a new broker on the same
 *                    store: the SQLite file keeps what was committed and not acknowledged,
 *                    and the shadow checks it all again (at most MAX_RESTARTS per input)
 * Structured frames are what reach deep states; RAW gets malformed input to the broker.
 * An input sends at most FB_MAX_FRAMES structured frames (later ones are skipped) and
 * FB_BODY_BUDGET body bytes (later bodies are cut short), so no run takes long.
 *
 * The transport: read_start/read_stop only set a flag; bytes go in through the stream's
 * alloc and read callbacks whenever the stream reads (right after each operation and at
 * each loop turn), in chunks of byte 3's size. A write is captured and parsed at once and
 * completed on a later loop turn (never inside the write call); a peer that stopped
 * reading completes nothing until told. A graceful close completes on the next turn once
 * the peer reads (it sees our end and closes its side) or has ended; an abort completes on
 * the next turn, the write in flight first with UV_ECANCELED. Time passes only when an
 * operation says so, or when the final stop has nothing else to wait for: then every
 * connection's deadline fires. Real timers never matter (heart-beat intervals are a minute
 * here; inputs take milliseconds). TIME makes a day pass for one connection by moving its
 * last read and write times back, then runs its timers as the loop would.
 * Connections are made with the session layer's conn__new and conn__start, as an accepted
 * socket would be, and the checks read the broker's internal state where the public API
 * says too little (paused connections, subscribers with room, the memory count).
 *
 * Invariants:
 * - no crash, no sanitizer report, no leak: each input ends with broker_stop, the loop run
 *   until its callback, broker_free and uv_loop_close() == 0; nothing counted against
 *   max_memory any more, no connection or subscription counted;
 * - every queue message accounted for exactly once: the store is wrapped (its ops table is
 *   public) and a shadow keeps each message's state, pending -> ready (at commit; a failed
 *   SQLite commit drops its batch) -> taken -> acked, or back to ready on requeue, and each
 *   queue's ready order (FIFO, requeued at the head). A take must return the head with its
 *   body, headers and redelivery count; ack and requeue only a taken message; depth()
 *   matches after every operation; at the end no message is taken or pending;
 * - durability before acknowledgement: the RECEIPT of a SEND to a queue comes only once
 *   its message is committed (bodies of 24 bytes or more start with their number, so the
 *   harness finds it by its body);
 * - memory accounting: after every operation, what counts against max_memory is exactly
 *   the connections' queued output, held receipts and open transactions;
 * - a MESSAGE of a queue names a committed message, with its destination and body, and
 *   redelivered:true exactly when a redelivery-count (never above the real one) is given;
 *   an in-process subscriber gets a message while it is taken;
 * - each connection's output parses cleanly in its negotiated version (UTF-8 unless
 *   allowed otherwise): CONNECTED first and once, only server frames, MESSAGE with its
 *   headers; nothing after an ERROR or after the RECEIPT of a DISCONNECT; the harness's own
 *   receipts come in the order of their frames; topic messages in order per subscription;
 *   a graceful close never cuts a frame;
 * - net's contract: one write in flight, no write or read_start after close;
 * - no lost wake-up: once everything settled (before the stop), no queue holds ready
 *   messages while a subscriber has room, and no connection stays paused without cause;
 * - log records: one line each, never a passcode.
 * fb_run() also writes a summary of counts, which the corpus replay test compares with
 * what tests/fuzz/broker_corpus.expect says each seed must reach.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "store_sqlite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- failing ---------------------------------------------------------------------------- */

static const char *fb_input_name; /* the file being replayed, for the message */

static _Noreturn void fb_fail(int line, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static _Noreturn void fb_fail(int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "fuzz_broker.c:%d: ", line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (fb_input_name)
        fprintf(stderr, " (input %s)", fb_input_name);
    fputc('\n', stderr);
    abort();
}

#define FB_CHECK(cond, ...)                                                                \
    do {                                                                                   \
        if (!(cond))                                                                       \
            fb_fail(__LINE__, __VA_ARGS__);                                                \
    } while (0)

typedef unsigned long long ull;

/* ---- small containers ------------------------------------------------------------------- */

typedef struct fb_bytes {
    char *p;
    size_t len, cap;
} fb_bytes;

static void room(fb_bytes *b, size_t n)
{
    if (b->cap - b->len >= n)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n)
        cap *= 2;
    char *p = realloc(b->p, cap);
    FB_CHECK(p != NULL, "out of memory in the harness");
    b->p = p;
    b->cap = cap;
}

static void put(fb_bytes *b, const void *src, size_t n)
{
    if (!n)
        return;
    room(b, n);
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void puts_(fb_bytes *b, const char *s)
{
    put(b, s, strlen(s));
}

typedef struct idvec {
    uint64_t *v;
    size_t n, cap;
} idvec;

static void idvec_push(idvec *x, uint64_t id)
{
    if (x->n == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 16;
        x->v = realloc(x->v, x->cap * sizeof *x->v);
        FB_CHECK(x->v != NULL, "out of memory in the harness");
    }
    x->v[x->n++] = id;
}

static uint64_t fnv(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* ---- the shadow of the store ------------------------------------------------------------- */

enum { M_PENDING, M_READY, M_TAKEN, M_ACKED, M_DROPPED, M__COUNT };
static const char *const mstate[M__COUNT] = { "pending", "ready", "taken", "acked", "dropped" };

typedef struct smsg {
    uint64_t id, body_hash, hdr_hash;
    size_t blen;
    uint32_t q, requeues;
    int state;
    int priority;
} smsg;

/* A queue of the shadow: its ready messages in queue order, requeued ones in front. take
 * must hand out the first of the highest priority among them. */
typedef struct squeue_sh {
    char *name;
    size_t len;
    uint64_t *ids; /* ready ids at [start, start + n) */
    size_t start, n, cap;
} squeue_sh;

typedef struct shadow {
    const store_ops *inner;
    smsg *m; /* by increasing id */
    size_t n, cap;
    squeue_sh *qs;
    size_t nq, qcap;
    idvec open, fly; /* pending ids of the open batch and of the one being committed */
    int flying;
    size_t count[M__COUNT];
    uint64_t committed; /* messages made ready by a commit */
    bool enq_fault;
    unsigned enq_calls;
} shadow;

static smsg *sh_find(shadow *sh, uint64_t id)
{
    size_t lo = 0, hi = sh->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sh->m[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < sh->n && sh->m[lo].id == id ? &sh->m[lo] : NULL;
}

static void sh_state(shadow *sh, smsg *m, int state)
{
    sh->count[m->state]--;
    sh->count[state]++;
    m->state = state;
}

static squeue_sh *sh_queue(shadow *sh, const char *name, size_t len, bool add)
{
    for (size_t i = 0; i < sh->nq; i++)
        if (sh->qs[i].len == len && memcmp(sh->qs[i].name, name, len) == 0)
            return &sh->qs[i];
    if (!add)
        return NULL;
    if (sh->nq == sh->qcap) {
        sh->qcap = sh->qcap ? 2 * sh->qcap : 8;
        sh->qs = realloc(sh->qs, sh->qcap * sizeof *sh->qs);
        FB_CHECK(sh->qs != NULL, "out of memory in the harness");
    }
    squeue_sh *q = &sh->qs[sh->nq++];
    memset(q, 0, sizeof *q);
    q->name = malloc(len + 1);
    FB_CHECK(q->name != NULL, "out of memory in the harness");
    memcpy(q->name, name, len);
    q->name[len] = '\0';
    q->len = len;
    return q;
}

/* Make room for one more id at either end of q's ready ids. */
static void sq_room(squeue_sh *q)
{
    if (q->start > 0 && q->start + q->n < q->cap)
        return;
    size_t cap = 2 * q->n + 16, start = (cap - q->n) / 2;
    uint64_t *ids = malloc(cap * sizeof *ids);
    FB_CHECK(ids != NULL, "out of memory in the harness");
    if (q->n)
        memcpy(ids + start, q->ids + q->start, q->n * sizeof *ids);
    free(q->ids);
    q->ids = ids;
    q->start = start;
    q->cap = cap;
}

static void sq_push_back(squeue_sh *q, uint64_t id)
{
    sq_room(q);
    q->ids[q->start + q->n++] = id;
}

static void sq_push_front(squeue_sh *q, uint64_t id)
{
    sq_room(q);
    q->ids[--q->start] = id;
    q->n++;
}

/* A commit of the pending ids in v completed (ok) or lost its batch. */
static void sh_commit(shadow *sh, idvec *v, bool ok)
{
    for (size_t i = 0; i < v->n; i++) {
        smsg *m = sh_find(sh, v->v[i]);
        FB_CHECK(m && m->state == M_PENDING, "committed message %llu is not pending",
                 (ull)v->v[i]);
        if (ok) {
            sh_state(sh, m, M_READY);
            sq_push_back(&sh->qs[m->q], m->id);
            sh->committed++;
        } else {
            sh_state(sh, m, M_DROPPED);
        }
    }
    v->n = 0;
}

static void sh_free(shadow *sh)
{
    for (size_t i = 0; i < sh->nq; i++) {
        free(sh->qs[i].name);
        free(sh->qs[i].ids);
    }
    free(sh->qs);
    free(sh->m);
    free(sh->open.v);
    free(sh->fly.v);
}

/* ---- the store wrapper: the broker's store_ops, forwarding to the real backend ---------- */

typedef struct wstore {
    shadow *sh;
    store *in;
    store_commit_cb cb;
    void *arg;
} wstore;

/* The shadow the next open belongs to (set around broker_create). */
static shadow *fb_shadow_now;

static wstore *w_of(store *s)
{
    return (wstore *)(void *)s;
}

static store_err w_open(const store_options *o, store **out)
{
    shadow *sh = fb_shadow_now;
    FB_CHECK(sh != NULL, "store opened outside broker_create");
    wstore *w = calloc(1, sizeof *w);
    if (!w)
        return STORE_E_NOMEM;
    w->sh = sh;
    store_err e = sh->inner->open(o, &w->in);
    if (e != STORE_OK) {
        free(w);
        return e;
    }
    *out = (store *)(void *)w;
    return STORE_OK;
}

static void w_close(store *s)
{
    wstore *w = w_of(s);
    FB_CHECK(!w->sh->flying, "store closed with a commit in flight");
    w->sh->inner->close(w->in);
    free(w);
}

static store_err w_enqueue_any(store *s, const char *q, size_t ql, const uint64_t *hash,
                               const char *hdrs, size_t hl, const char *body, size_t bl,
                               const store_attrs *a, uint64_t *id)
{
    wstore *w = w_of(s);
    shadow *sh = w->sh;
    FB_CHECK(!dest__is_topic(q, ql), "a topic message was stored");
    FB_CHECK(!hash || *hash == store_hash_name(q, ql), "enqueue with a wrong name hash");
    if (sh->enq_fault && ++sh->enq_calls % 5 == 0)
        return STORE_E_NOMEM;
    FB_CHECK(!a || (!a->not_before && !a->expires),
             "a message with a delay or an expiry: the harness sends none");
    store_err e = a      ? sh->inner->enqueue_attrs(w->in, q, ql, *hash, hdrs, hl, body, bl, a,
                                                    id)
                  : hash ? sh->inner->enqueue_hashed(w->in, q, ql, *hash, hdrs, hl, body, bl,
                                                     id)
                         : sh->inner->enqueue(w->in, q, ql, hdrs, hl, body, bl, id);
    if (e != STORE_OK)
        return e;
    FB_CHECK(sh->n == 0 || *id > sh->m[sh->n - 1].id, "message ids do not increase");
    if (sh->n == sh->cap) {
        sh->cap = sh->cap ? 2 * sh->cap : 64;
        sh->m = realloc(sh->m, sh->cap * sizeof *sh->m);
        FB_CHECK(sh->m != NULL, "out of memory in the harness");
    }
    squeue_sh *sq = sh_queue(sh, q, ql, true);
    sh->m[sh->n++] = (smsg){ *id, fnv(body, bl), fnv(hdrs, hl), bl, (uint32_t)(sq - sh->qs),
                             0, M_PENDING, a ? a->priority : STORE_PRIORITY_DEFAULT };
    sh->count[M_PENDING]++;
    idvec_push(&sh->open, *id);
    return e;
}

static store_err w_enqueue(store *s, const char *q, size_t ql, const char *hdrs, size_t hl,
                           const char *body, size_t bl, uint64_t *id)
{
    return w_enqueue_any(s, q, ql, NULL, hdrs, hl, body, bl, NULL, id);
}

static store_err w_enqueue_hashed(store *s, const char *q, size_t ql, uint64_t hash,
                                  const char *hdrs, size_t hl, const char *body, size_t bl,
                                  uint64_t *id)
{
    return w_enqueue_any(s, q, ql, &hash, hdrs, hl, body, bl, NULL, id);
}

static store_err w_enqueue_attrs(store *s, const char *q, size_t ql, uint64_t hash,
                                 const char *hdrs, size_t hl, const char *body, size_t bl,
                                 const store_attrs *a, uint64_t *id)
{
    return w_enqueue_any(s, q, ql, &hash, hdrs, hl, body, bl, a, id);
}

/* Where in q's ready ids the next take must come from: the first of the highest priority. */
static size_t sq_best(shadow *sh, const squeue_sh *q)
{
    size_t best = q->start;
    int best_p = -1;
    for (size_t i = q->start; i < q->start + q->n; i++) {
        const smsg *m = sh_find(sh, q->ids[i]);
        if (m && m->priority > best_p) {
            best = i;
            best_p = m->priority;
        }
    }
    return best;
}

/* The harness runs without redelivery delays: every message is due at any time. */
static store_err w_take_any(store *s, const char *q, size_t ql, const uint64_t *hash,
                            uint64_t now, store_msg *out)
{
    wstore *w = w_of(s);
    shadow *sh = w->sh;
    FB_CHECK(!hash || *hash == store_hash_name(q, ql), "take with a wrong name hash");
    store_err e = hash ? sh->inner->take_at(w->in, q, ql, *hash, now, out)
                       : sh->inner->take(w->in, q, ql, out);
    squeue_sh *sq = sh_queue(sh, q, ql, false);
    size_t ready = sq ? sq->n : 0;
    if (e == STORE_E_EMPTY) {
        FB_CHECK(ready == 0, "take found %.*s empty, the shadow has %zu ready", (int)ql, q,
                 ready);
        return e;
    }
    if (e == STORE_E_AGAIN) {
        FB_CHECK(ready > 0, "take asked to wait on an empty queue");
        return e;
    }
    if (e != STORE_OK)
        return e;
    FB_CHECK(ready > 0, "take handed out a message of %.*s, which has none ready", (int)ql, q);
    size_t at = sq_best(sh, sq);
    uint64_t head = sq->ids[at];
    FB_CHECK(out->id == head, "take handed out %llu, the head of %s is %llu", (ull)out->id,
             sq->name, (ull)head);
    smsg *m = sh_find(sh, head);
    FB_CHECK(m && m->state == M_READY, "take of message %llu, which is %s", (ull)head,
             m ? mstate[m->state] : "unknown");
    FB_CHECK(out->queue_len == ql && memcmp(out->queue, q, ql) == 0,
             "take returned a message of another queue");
    FB_CHECK(out->body_len == m->blen && fnv(out->body, out->body_len) == m->body_hash &&
                 fnv(out->headers, out->headers_len) == m->hdr_hash,
             "message %llu changed in the store", (ull)head);
    FB_CHECK(out->redeliveries == m->requeues, "message %llu: %u redeliveries, requeued %u times",
             (ull)head, out->redeliveries, m->requeues);
    memmove(&sq->ids[sq->start + 1], &sq->ids[sq->start], (at - sq->start) * sizeof *sq->ids);
    sq->start++;
    sq->n--;
    sh_state(sh, m, M_TAKEN);
    return e;
}

static store_err w_take(store *s, const char *q, size_t ql, store_msg *out)
{
    return w_take_any(s, q, ql, NULL, 0, out);
}

static store_err w_take_hashed(store *s, const char *q, size_t ql, uint64_t hash,
                               store_msg *out)
{
    return w_take_any(s, q, ql, &hash, UINT64_MAX, out);
}

static store_err w_take_at(store *s, const char *q, size_t ql, uint64_t hash, uint64_t now,
                           store_msg *out)
{
    return w_take_any(s, q, ql, &hash, now, out);
}

static uint64_t w_next_due(store *s, const char *q, size_t ql, uint64_t hash, uint64_t now)
{
    wstore *w = w_of(s);
    uint64_t due = w->sh->inner->next_due(w->in, q, ql, hash, now);
    FB_CHECK(due == 0, "a message of %.*s is due at %llu with no redelivery delay", (int)ql, q,
             (ull)due);
    return due;
}

static store_err w_get(store *s, uint64_t id, store_msg *out)
{
    wstore *w = w_of(s);
    smsg *m = sh_find(w->sh, id);
    store_err e = w->sh->inner->get(w->in, id, out);
    bool taken = m && m->state == M_TAKEN;
    FB_CHECK(taken == (e == STORE_OK), "get of message %llu, which is %s: %s", (ull)id,
             m ? mstate[m->state] : "unknown", store_strerror(e));
    FB_CHECK(e != STORE_OK || (out->id == id && out->body_len == m->blen &&
                               fnv(out->body, out->body_len) == m->body_hash &&
                               fnv(out->headers, out->headers_len) == m->hdr_hash),
             "get of message %llu: not the message taken", (ull)id);
    return e;
}

/* The harness sends no expiring message: there is never one to take out. */
static store_err w_take_expired(store *s, uint64_t now, store_msg *out)
{
    wstore *w = w_of(s);
    store_err e = w->sh->inner->take_expired(w->in, now, out);
    FB_CHECK(e == STORE_E_EMPTY, "take_expired handed out a message: %s", store_strerror(e));
    return e;
}

static uint64_t w_next_expiry(store *s)
{
    wstore *w = w_of(s);
    uint64_t at = w->sh->inner->next_expiry(w->in);
    FB_CHECK(at == 0, "a message expires at %llu", (ull)at);
    return at;
}

/* Messages of a queue not yet acked: those the shadow has pending, ready or taken. */
static void w_queue_size(store *s, const char *q, size_t ql, uint64_t hash, uint64_t *count,
                         uint64_t *bytes)
{
    wstore *w = w_of(s);
    shadow *sh = w->sh;
    w->sh->inner->queue_size(w->in, q, ql, hash, count, bytes);
    const squeue_sh *sq = sh_queue(sh, q, ql, false);
    uint64_t n = 0;
    for (size_t i = 0; sq && i < sh->n; i++)
        n += sh->m[i].q == (uint32_t)(sq - sh->qs) &&
             (sh->m[i].state == M_PENDING || sh->m[i].state == M_READY ||
              sh->m[i].state == M_TAKEN);
    FB_CHECK(*count == n, "queue %.*s holds %llu messages, the shadow %llu", (int)ql, q,
             (ull)*count, (ull)n);
}

static store_err w_browse(store *s, const char *q, size_t ql, uint64_t hash, store_cursor *cur,
                          uint64_t now, store_msg *out)
{
    wstore *w = w_of(s);
    store_err e = w->sh->inner->browse(w->in, q, ql, hash, cur, now, out);
    const smsg *m = e == STORE_OK ? sh_find(w->sh, out->id) : NULL;
    FB_CHECK(e != STORE_OK || (m && m->state == M_READY), "browse showed message %llu, "
             "which is %s", (ull)out->id, m ? mstate[m->state] : "unknown");
    return e;
}

/* A selector's take: a ready message of the queue, from anywhere in its order. */
static store_err w_take_match(store *s, const char *q, size_t ql, uint64_t hash, uint64_t now,
                              store_scan *scan, store_match_fn match, void *arg,
                              store_msg *out)
{
    wstore *w = w_of(s);
    shadow *sh = w->sh;
    FB_CHECK(hash == store_hash_name(q, ql), "take_match with a wrong name hash");
    store_err e = sh->inner->take_match(w->in, q, ql, hash, now, scan, match, arg, out);
    squeue_sh *sq = sh_queue(sh, q, ql, false);
    if (e != STORE_OK)
        return e;
    size_t at = sq ? sq->start : 0, end = sq ? sq->start + sq->n : 0;
    while (at < end && sq->ids[at] != out->id)
        at++;
    FB_CHECK(at < end, "take_match handed out %llu, not a ready message of %.*s",
             (ull)out->id, (int)ql, q);
    smsg *m = sh_find(sh, out->id);
    FB_CHECK(m && m->state == M_READY, "take_match of message %llu, which is %s",
             (ull)out->id, m ? mstate[m->state] : "unknown");
    FB_CHECK(out->body_len == m->blen && fnv(out->body, out->body_len) == m->body_hash,
             "message %llu changed in the store", (ull)out->id);
    memmove(&sq->ids[sq->start + 1], &sq->ids[sq->start], (at - sq->start) * sizeof *sq->ids);
    sq->start++;
    sq->n--;
    sh_state(sh, m, M_TAKEN);
    return e;
}

static void w_queues(store *s, void (*fn)(void *arg, const char *name, size_t len, uint64_t hash),
                     void *arg)
{
    wstore *w = w_of(s);
    w->sh->inner->queues(w->in, fn, arg);
}

static store_err w_cancel(store *s, uint64_t id)
{
    wstore *w = w_of(s);
    shadow *sh = w->sh;
    store_err e = sh->inner->cancel(w->in, id);
    if (e != STORE_OK)
        return e;
    smsg *m = sh_find(sh, id);
    size_t i = 0;
    while (i < sh->open.n && sh->open.v[i] != id)
        i++;
    FB_CHECK(m && m->state == M_PENDING && i < sh->open.n,
             "cancel of message %llu, which is not pending in the open batch", (ull)id);
    memmove(&sh->open.v[i], &sh->open.v[i + 1], (sh->open.n - i - 1) * sizeof *sh->open.v);
    sh->open.n--;
    sh_state(sh, m, M_DROPPED);
    return e;
}

static store_err w_settle(store *s, uint64_t id, bool requeue)
{
    wstore *w = w_of(s);
    shadow *sh = w->sh;
    smsg *m = sh_find(sh, id);
    FB_CHECK(m && m->state == M_TAKEN, "%s of message %llu, which is %s",
             requeue ? "requeue" : "ack", (ull)id, m ? mstate[m->state] : "unknown");
    store_err e = requeue ? sh->inner->requeue(w->in, id) : sh->inner->ack(w->in, id);
    FB_CHECK(e == STORE_OK || e == STORE_E_NOMEM, "%s of taken message %llu failed: %s",
             requeue ? "requeue" : "ack", (ull)id, store_strerror(e));
    if (e != STORE_OK)
        return e;
    if (requeue) {
        sh_state(sh, m, M_READY);
        m->requeues++;
        sq_push_front(&sh->qs[m->q], id);
    } else {
        sh_state(sh, m, M_ACKED);
    }
    return e;
}

static store_err w_ack(store *s, uint64_t id)
{
    return w_settle(s, id, false);
}

static store_err w_requeue(store *s, uint64_t id)
{
    return w_settle(s, id, true);
}

static store_err w_requeue_at(store *s, uint64_t id, uint64_t not_before)
{
    FB_CHECK(not_before == 0, "message %llu requeued for %llu with no redelivery delay",
             (ull)id, (ull)not_before);
    return w_settle(s, id, true);
}

static void w_committed(void *arg, store_err status)
{
    wstore *w = arg;
    shadow *sh = w->sh;
    FB_CHECK(sh->flying, "a commit completed that was not in flight");
    sh->flying = 0;
    sh_commit(sh, &sh->fly, status == STORE_OK);
    w->cb(w->arg, status);
}

static store_err w_commit(store *s, store_commit_cb cb, void *arg)
{
    wstore *w = w_of(s);
    shadow *sh = w->sh;
    FB_CHECK(!sh->flying, "commit called with one in flight");
    w->cb = cb;
    w->arg = arg;
    store_err e = sh->inner->commit(w->in, w_committed, w);
    if (e == STORE_DONE) {
        sh_commit(sh, &sh->open, true);
    } else if (e == STORE_OK) {
        idvec t = sh->fly;
        sh->fly = sh->open;
        sh->open = t;
        sh->flying = 1;
    }
    return e;
}

static size_t w_depth(store *s, const char *q, size_t ql)
{
    wstore *w = w_of(s);
    return w->sh->inner->depth(w->in, q, ql);
}

static size_t w_resident(store *s)
{
    wstore *w = w_of(s);
    return w->sh->inner->resident(w->in);
}

static const char *w_last_error(store *s)
{
    wstore *w = w_of(s);
    return w->sh->inner->last_error(w->in);
}

static const store_ops wrapped_ops = {
    .version = STORE_OPS_VERSION,
    .name = "shadowed",
    .open = w_open,
    .close = w_close,
    .enqueue = w_enqueue,
    .take = w_take,
    .ack = w_ack,
    .requeue = w_requeue,
    .commit = w_commit,
    .depth = w_depth,
    .resident = w_resident,
    .last_error = w_last_error,
    .enqueue_hashed = w_enqueue_hashed,
    .take_hashed = w_take_hashed,
    .cancel = w_cancel,
    .requeue_at = w_requeue_at,
    .take_at = w_take_at,
    .next_due = w_next_due,
    .get = w_get,
    .enqueue_attrs = w_enqueue_attrs,
    .take_expired = w_take_expired,
    .next_expiry = w_next_expiry,
    .queue_size = w_queue_size,
    .browse = w_browse,
    .take_match = w_take_match,
    .queues = w_queues,
};

/* Every queue the shadow knows has the depth the store reports. */
static void sh_check_depths(shadow *sh, broker *b)
{
    for (size_t i = 0; i < sh->nq; i++) {
        squeue_sh *q = &sh->qs[i];
        size_t d = b->st->depth(b->store, q->name, q->len);
        FB_CHECK(d == q->n, "the store holds %zu ready messages in %s, the shadow %zu", d,
                 q->name, q->n);
    }
}

/* ---- the harness ------------------------------------------------------------------------ */

enum {
    NSET = 5,         /* setting bytes */
    NSLOT = 4,        /* connections at a time */
    MAX_CONNS = 16,   /* connections per input */
    MAX_RESTARTS = 2, /* RESTARTs per input */
    RING = 8,         /* MESSAGEs a connection remembers for ACK/NACK */
    NTOPIC = 8,       /* subscriptions whose topic order is followed */
    NINPROC = 4,      /* in-process subscriptions */
    NAUTH = 32,       /* asynchronous logins waiting for their answer */
    NDISC = 8,        /* DISCONNECT receipts followed */
    NSTORED = 16,     /* receipts of SENDs to a queue followed */
};

#define RID_PREFIX "r\177" /* receipts the harness orders: raw bytes cannot hold 0x7f */
#define PASSCODE "pw\177"  /* must never be logged */
#define DAY_MS 86400000ull
/* What one input may send: structured frames, and body bytes in all. A run stays
 * bounded (a few tens of milliseconds at worst) whatever the fuzzer repeats, and still
 * goes well past every default limit but max_body and the 1 MiB window of a SQLite
 * queue. */
#define FB_MAX_FRAMES 2000u
#define FB_BODY_BUDGET ((size_t)3 << 19)
/* Bodies this long start with their number: no two are the same. */
#define FB_UNIQUE_BODY 24u

typedef struct seen_msg {
    char id[32], ack[32], subid[32];
} seen_msg;

typedef struct topic_seen {
    char subid[32];
    uint64_t seq;
} topic_seen;

typedef struct fb fb;

/* One client connection: its peer's side (bytes to send, how it reads, how it ends) and
 * what the broker wrote to it. */
typedef struct fconn {
    fb *h;
    bool live; /* a broker conn exists and its stream has not reported closed */
    conn *c;   /* valid while live */
    fb_bytes in;
    size_t in_off;
    bool eof_queued, rst_queued; /* delivered after the bytes in front */
    bool ended;                  /* the peer's end was delivered or the stream closes */
    bool reading, stalled, broken;
    bool wflight;
    int wstatus;
    uint64_t wturn;
    bool closing, close_abort;
    uint64_t cturn;
    /* output */
    stomp_parser op;
    stomp_version v, want_v;
    bool connected, got_error, disc_done, partial;
    /* RAW bytes went out: a later frame may have become part of one they began, so its
     * receipt no longer says which frame it answers (only where it stands). */
    bool raw_sent;
    uint32_t nframes;
    uint32_t next_rid, last_rid, disc_rid[NDISC];
    size_t ndisc;
    struct {
        uint32_t rid;
        uint64_t body_hash; /* the body is unique: it starts with its number */
    } stored[NSTORED];
    size_t nstored;
    seen_msg ring[RING];
    size_t nring, ring_next;
    topic_seen topics[NTOPIC];
    size_t ntopics;
} fconn;

typedef struct pending_auth {
    broker_auth *req;
    uint64_t turn;
    int accept;
} pending_auth;

struct fb {
    uv_loop_t loop;
    broker *b;
    broker_options opts;
    unsigned restarts;
    shadow sh;
    fconn fc[NSLOT];
    unsigned nconns;
    uint64_t turn;
    bool stopped, sqlite, auto_run, sync_write_fail, utf8_out;
    bool trace; /* FUZZ_BROKER_TRACE set: what goes in and out, on stderr */
    size_t chunk;
    broker_sub *inproc[NINPROC];
    size_t inproc_left; /* not unsubscribed at the stop */
    pending_auth auth[NAUTH];
    size_t nauth;
    unsigned auth_delay; /* byte 4 bits 2-3 */
    uint64_t bodyseq;
    unsigned frames_left; /* of FB_MAX_FRAMES */
    size_t body_left;     /* of FB_BODY_BUDGET */
    char dir[256], db[300];
    /* the summary */
    uint64_t connected, beats, receipts, messages, redelivered, errors, inproc_msgs;
};

static const stomp_limits out_limits = { 64, 1u << 20, 4096, 16u << 20, 64u << 20 };

static const char *const dests[8] = {
    "/queue/a", "/queue/b", "/topic/t", "/topic/u", "q", "/queue/a*b", "/topic/w.*",
    "/queue/\xc3\xa9",
};

/* ---- checking what the broker wrote ---- */

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static void copy_id(char *dst, const char *src)
{
    size_t n = strlen(src);
    if (n >= 32)
        n = 0; /* too long to remember: named as empty (an unknown id) */
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void check_queue_message(fb *h, const stomp_frame *fr, const char *msgid,
                                const char *dest)
{
    smsg *m = sh_find(&h->sh, strtoull(msgid, NULL, 10));
    FB_CHECK(m, "MESSAGE %s names no stored message", msgid);
    FB_CHECK(m->state != M_PENDING && m->state != M_DROPPED,
             "MESSAGE %s of a message that is %s", msgid, mstate[m->state]);
    FB_CHECK(strcmp(h->sh.qs[m->q].name, dest) == 0, "MESSAGE %s to %s, stored in %s", msgid,
             dest, h->sh.qs[m->q].name);
    FB_CHECK(fr->body_len == m->blen && fnv(fr->body, fr->body_len) == m->body_hash,
             "MESSAGE %s carries another body", msgid);
    const char *rc = stomp_frame_header(fr, "redelivery-count", NULL);
    const char *rd = stomp_frame_header(fr, "redelivered", NULL);
    unsigned long long count = rc ? strtoull(rc, NULL, 10) : 0;
    FB_CHECK(!rc || (all_digits(rc) && count > 0), "MESSAGE %s: redelivery-count:%s", msgid,
             rc);
    FB_CHECK(count <= m->requeues, "MESSAGE %s: redelivery-count %llu, requeued %u times",
             msgid, count, m->requeues);
    FB_CHECK((rd != NULL) == (count > 0) && (!rd || strcmp(rd, "true") == 0),
             "MESSAGE %s: redelivered and redelivery-count disagree", msgid);
}

static void check_topic_order(fconn *f, const char *subid, const char *msgid)
{
    uint64_t seq = strtoull(msgid + 1, NULL, 10);
    for (size_t i = 0; i < f->ntopics; i++) {
        if (strcmp(f->topics[i].subid, subid) == 0) {
            FB_CHECK(seq > f->topics[i].seq, "topic MESSAGE %s after t%llu on subscription %s",
                     msgid, (ull)f->topics[i].seq, subid);
            f->topics[i].seq = seq;
            return;
        }
    }
    if (f->ntopics < NTOPIC && strlen(subid) < 32) {
        strcpy(f->topics[f->ntopics].subid, subid);
        f->topics[f->ntopics++].seq = seq;
    }
}

static void on_message(fconn *f, const stomp_frame *fr)
{
    fb *h = f->h;
    const char *dest = stomp_frame_header(fr, "destination", NULL);
    const char *msgid = stomp_frame_header(fr, "message-id", NULL);
    const char *subid = stomp_frame_header(fr, "subscription", NULL);
    const char *cl = stomp_frame_header(fr, "content-length", NULL);
    FB_CHECK(dest && msgid && subid && cl, "MESSAGE without destination, message-id, "
                                         "subscription or content-length");
    FB_CHECK(all_digits(cl) && strtoull(cl, NULL, 10) == fr->body_len,
             "MESSAGE content-length:%s for %zu bytes", cl, fr->body_len);
    const char *ack = stomp_frame_header(fr, "ack", NULL);
    FB_CHECK(!ack || f->v == STOMP_V12, "an ack header outside STOMP 1.2");
    h->messages++;
    if (stomp_frame_header(fr, "redelivered", NULL))
        h->redelivered++;
    if (all_digits(msgid))
        check_queue_message(h, fr, msgid, dest);
    else if (msgid[0] == 't' && all_digits(msgid + 1))
        check_topic_order(f, subid, msgid);
    else
        FB_CHECK(0, "MESSAGE with message-id %s", msgid);
    seen_msg *e = &f->ring[f->ring_next];
    f->ring_next = (f->ring_next + 1) % RING;
    if (f->nring < RING)
        f->nring++;
    copy_id(e->id, msgid);
    copy_id(e->ack, ack ? ack : "");
    copy_id(e->subid, subid);
}

static void on_receipt(fconn *f, const stomp_frame *fr)
{
    const char *rid = stomp_frame_header(fr, "receipt-id", NULL);
    FB_CHECK(rid, "RECEIPT without receipt-id");
    f->h->receipts++;
    if (strncmp(rid, RID_PREFIX, 2) != 0)
        return;
    FB_CHECK(all_digits(rid + 2), "RECEIPT for %s", rid + 2);
    unsigned long n = strtoul(rid + 2, NULL, 10);
    FB_CHECK(n > f->last_rid, "RECEIPT %lu after %u: receipts out of order", n, f->last_rid);
    FB_CHECK(n < f->next_rid, "RECEIPT %lu for a frame never sent", n);
    f->last_rid = (uint32_t)n;
    for (size_t i = 0; i < f->ndisc; i++)
        if (f->disc_rid[i] == n)
            f->disc_done = true;
    /* Durability before acknowledgement: the SEND's message is committed. */
    for (size_t i = 0; i < f->nstored; i++) {
        if (f->stored[i].rid != n)
            continue;
        const shadow *sh = &f->h->sh;
        size_t k = 0;
        while (k < sh->n && sh->m[k].body_hash != f->stored[i].body_hash)
            k++;
        FB_CHECK(k < sh->n && (sh->m[k].state == M_READY || sh->m[k].state == M_TAKEN ||
                               sh->m[k].state == M_ACKED),
                 "RECEIPT %lu of a SEND whose message is %s", n,
                 k < sh->n ? mstate[sh->m[k].state] : "not stored");
    }
}

static void trace_frame(fconn *f, const char *dir, const stomp_frame *fr)
{
    fprintf(stderr, "turn %llu conn %d %s %s", (ull)f->h->turn, (int)(f - f->h->fc), dir,
            fr->cmd_name);
    for (size_t i = 0; i < fr->nheaders && i < 12; i++)
        fprintf(stderr, " %s:%.40s", fr->headers[i].name, fr->headers[i].value);
    fprintf(stderr, " (%zu bytes)\n", fr->body_len);
}

static void on_frame(fconn *f, const stomp_frame *fr)
{
    if (f->h->trace)
        trace_frame(f, "<-", fr);
    FB_CHECK(!f->got_error, "%s after an ERROR frame", fr->cmd_name);
    FB_CHECK(!f->disc_done, "%s after the RECEIPT of DISCONNECT", fr->cmd_name);
    FB_CHECK(fr->cmd == STOMP_CMD_ERROR || fr->cmd == STOMP_CMD_CONNECTED || f->connected,
             "%s before CONNECTED", fr->cmd_name);
    f->nframes++;
    switch (fr->cmd) {
    case STOMP_CMD_CONNECTED: {
        FB_CHECK(f->nframes == 1, "CONNECTED is not the first frame");
        const char *v = stomp_frame_header(fr, "version", NULL);
        FB_CHECK(v && stomp_frame_header(fr, "session", NULL) &&
                     stomp_frame_header(fr, "server", NULL) &&
                     stomp_frame_header(fr, "heart-beat", NULL),
                 "CONNECTED without version, session, server or heart-beat");
        if (strcmp(v, "1.0") == 0)
            f->v = STOMP_V10;
        else if (strcmp(v, "1.1") == 0)
            f->v = STOMP_V11;
        else if (strcmp(v, "1.2") == 0)
            f->v = STOMP_V12;
        else
            FB_CHECK(0, "CONNECTED version:%s", v);
        f->connected = true;
        f->h->connected++;
        stomp_parser_set_version(&f->op, f->v, f->h->utf8_out ? STOMP_PARSE_UTF8 : 0);
        break;
    }
    case STOMP_CMD_ERROR:
        FB_CHECK(stomp_frame_header(fr, "message", NULL), "ERROR without message");
        f->got_error = true;
        f->h->errors++;
        break;
    case STOMP_CMD_RECEIPT:
        on_receipt(f, fr);
        break;
    case STOMP_CMD_MESSAGE:
        on_message(f, fr);
        break;
    default:
        FB_CHECK(0, "the broker sent %s", fr->cmd_name);
    }
}

/* Bytes the broker wrote to f: parsed at once. */
static void out_feed(fconn *f, const char *p, size_t n)
{
    while (n) {
        size_t used = 0;
        stomp_event ev = stomp_parser_feed(&f->op, p, n, &used);
        p += used;
        n -= used;
        if (ev == STOMP_EV_NEED_MORE) {
            f->partial = true;
            break;
        }
        f->partial = false;
        if (ev == STOMP_EV_ERROR) {
            uint64_t at;
            stomp_err e = stomp_parser_error(&f->op, &at);
            FB_CHECK(0, "the broker's output does not parse at offset %llu: %s", (ull)at,
                     stomp_strerror(e));
        }
        FB_CHECK(!f->got_error, "bytes after an ERROR frame");
        FB_CHECK(!f->disc_done, "bytes after the RECEIPT of DISCONNECT");
        if (ev == STOMP_EV_HEARTBEAT) {
            FB_CHECK(f->connected, "a heart-beat before CONNECTED");
            f->h->beats++;
        } else {
            on_frame(f, stomp_parser_frame(&f->op));
        }
    }
}

/* ---- the in-memory transport ---- */

static fconn *fc_of(net_stream *s)
{
    return s->tp_state;
}

static void ft_init(net_stream *s)
{
    s->tp_state = NULL; /* set by fb_conn once the conn exists */
}

static int ft_accept(net_stream *s, uv_stream_t *server)
{
    (void)s;
    (void)server;
    return UV_ENOTSUP; /* connections are made by the harness, never accepted */
}

static int ft_read_start(net_stream *s)
{
    fconn *f = fc_of(s);
    FB_CHECK(!f->closing, "read_start on a closing stream");
    f->reading = true;
    return 0;
}

static void ft_read_stop(net_stream *s)
{
    fc_of(s)->reading = false;
}

static int ft_write(net_stream *s, const uv_buf_t *bufs, unsigned nbufs)
{
    fconn *f = fc_of(s);
    FB_CHECK(!f->wflight, "a second write while one is in flight");
    FB_CHECK(!f->closing, "a write on a closing stream");
    FB_CHECK(nbufs > 0, "a write of nothing");
    if (f->broken && f->h->sync_write_fail)
        return UV_EPIPE;
    for (unsigned i = 0; i < nbufs; i++)
        out_feed(f, bufs[i].base, bufs[i].len);
    f->wflight = true;
    f->wstatus = f->broken ? UV_ECONNRESET : 0;
    f->wturn = f->h->turn;
    return 0;
}

static void ft_close(net_stream *s, int abort)
{
    fconn *f = fc_of(s);
    FB_CHECK(!f->reading, "a stream closes while reading");
    if (f->closing) {
        f->close_abort = f->close_abort || abort;
        return;
    }
    f->closing = true;
    f->close_abort = abort != 0;
    f->cturn = f->h->turn;
}

static const net_transport fuzz_transport = {
    .name = "fuzz",
    .track_frames = 0,
    .init = ft_init,
    .accept = ft_accept,
    .read_start = ft_read_start,
    .read_stop = ft_read_stop,
    .write = ft_write,
    .close = ft_close,
};

static void fc_reset_output(fconn *f)
{
    if (f->op.alloc) /* initialised: the slot had a connection */
        stomp_parser_free(&f->op);
}

/* The stream closed: tell net (the conn is freed later, inside the loop). */
static void fc_closed(fconn *f)
{
    net_stream *s = &f->c->io;
    FB_CHECK(!f->wflight, "a stream closed with its write in flight");
    FB_CHECK(f->close_abort || !f->partial, "a graceful close cut a frame");
    f->live = false;
    f->c = NULL;
    net__on_closed(s);
}

static void fc_complete_write(fconn *f)
{
    if (f->close_abort)
        f->wstatus = UV_ECANCELED; /* as uv_close does to a write in flight */
    f->wflight = false;
    net__on_written(&f->c->io, f->wstatus);
}

/* Deliver what the peer sent while the stream reads. */
static bool fc_pump(fb *h, fconn *f)
{
    bool did = false;
    while (f->live && f->reading && !f->closing) {
        net_stream *s = &f->c->io;
        size_t left = f->in.len - f->in_off;
        if (!left) {
            f->in.len = f->in_off = 0;
            if ((f->rst_queued || f->eof_queued) && !f->ended) {
                f->ended = true;
                s->cb->read(s, f->rst_queued ? UV_ECONNRESET : UV_EOF);
                did = true;
            }
            break;
        }
        uv_buf_t buf = uv_buf_init(NULL, 0);
        s->cb->alloc(s, &buf);
        if (!buf.base || !buf.len) {
            s->cb->read(s, UV_ENOBUFS);
            break;
        }
        size_t n = left < buf.len ? left : buf.len;
        if (h->chunk && n > h->chunk)
            n = h->chunk;
        memcpy(buf.base, f->in.p + f->in_off, n);
        f->in_off += n;
        s->cb->read(s, (ssize_t)n);
        did = true;
    }
    return did;
}

static void fb_pump(fb *h)
{
    for (int i = 0; i < NSLOT; i++)
        fc_pump(h, &h->fc[i]);
}

/* What the peers and the harness do at the start of a loop turn: complete writes and
 * closes made on earlier turns, deliver input, answer logins. true if anything happened. */
static bool fb_events(fb *h)
{
    bool did = false;
    for (int i = 0; i < NSLOT; i++) {
        fconn *f = &h->fc[i];
        if (!f->live)
            continue;
        if (f->closing && f->close_abort && h->turn > f->cturn) {
            if (f->wflight)
                fc_complete_write(f);
            fc_closed(f);
            did = true;
            continue;
        }
        if (f->wflight && h->turn > f->wturn && (!f->stalled || f->broken)) {
            fc_complete_write(f);
            did = true;
        }
        if (f->closing && !f->close_abort && !f->wflight && h->turn > f->cturn &&
            (!f->stalled || f->ended || f->broken)) {
            fc_closed(f);
            did = true;
            continue;
        }
        did |= fc_pump(h, f);
    }
    size_t keep = 0;
    for (size_t i = 0; i < h->nauth; i++) {
        if (h->auth[i].turn <= h->turn) {
            broker_auth_done(h->auth[i].req, h->auth[i].accept);
            did = true;
        } else {
            h->auth[keep++] = h->auth[i];
        }
    }
    h->nauth = keep;
    return did;
}

static bool fb_turn(fb *h)
{
    h->turn++;
    bool did = fb_events(h);
    uv_run(&h->loop, UV_RUN_NOWAIT);
    return did;
}

static void fb_wait_store(fb *h)
{
    for (int n = 0; h->b->route.commit_inflight && n < 10000; n++)
        uv_run(&h->loop, UV_RUN_ONCE);
    FB_CHECK(!h->b->route.commit_inflight, "a store commit never completes");
}

/* ---- hooks the broker calls ---- */

static void on_log(void *ctx, broker_log_level level, uint64_t conn_id, broker_event ev,
                   const char *text)
{
    (void)ctx;
    (void)conn_id;
    FB_CHECK(level <= BROKER_LOG_DEBUG && (unsigned)ev < BROKER_EV__COUNT,
             "a log record with level %d, event %d", (int)level, (int)ev);
    FB_CHECK(!strchr(text, '\n') && !strchr(text, '\r'), "a log record of several lines: %s",
             text);
    FB_CHECK(!strstr(text, PASSCODE), "a passcode was logged: %s", text);
}

static int auth_sync(void *ctx, const char *login, const char *passcode)
{
    (void)ctx;
    (void)passcode;
    return login && strcmp(login, "bad") == 0;
}

static void auth_async(void *ctx, broker_auth *req, const char *login, const char *passcode)
{
    fb *h = ctx;
    (void)passcode;
    int accept = !(login && strcmp(login, "bad") == 0);
    if ((login && strcmp(login, "quick") == 0) || h->nauth == NAUTH) {
        broker_auth_done(req, accept);
        return;
    }
    /* Answered that many turns later; the last delay waits for the end of the input. */
    static const uint64_t delays[4] = { 1, 2, 8, UINT64_MAX / 2 };
    h->auth[h->nauth++] = (pending_auth){ req, h->turn + delays[h->auth_delay], accept };
}

static void on_inproc(void *arg, const broker_message *m)
{
    fb *h = arg;
    h->inproc_msgs++;
    FB_CHECK(m->destination && m->message_id, "an in-process message without names");
    if (m->message_id[0] == 't')
        return;
    smsg *sm = sh_find(&h->sh, strtoull(m->message_id, NULL, 10));
    FB_CHECK(sm && sm->state == M_TAKEN, "in-process delivery of message %s, which is %s",
             m->message_id, sm ? mstate[sm->state] : "unknown");
    FB_CHECK(strcmp(h->sh.qs[sm->q].name, m->destination) == 0 && m->body_len == sm->blen &&
                 fnv(m->body, m->body_len) == sm->body_hash &&
                 m->redeliveries == sm->requeues,
             "in-process delivery of message %s differs from what was stored", m->message_id);
}

static void on_stop(broker *b, void *arg)
{
    (void)b;
    ((fb *)arg)->stopped = true;
}

/* ---- connections ---- */

/* The connection in slot i, opened now if there is none (NULL when no more may be). */
static fconn *fb_conn(fb *h, unsigned i)
{
    fconn *f = &h->fc[i];
    if (f->live)
        return f;
    if (h->nconns >= MAX_CONNS || h->b->stopping)
        return NULL;
    fc_reset_output(f);
    free(f->in.p);
    memset(f, 0, sizeof *f);
    f->h = h;
    conn *c = conn__new(h->b, &fuzz_transport);
    FB_CHECK(c != NULL, "conn__new failed");
    c->io.tp_state = f;
    f->c = c;
    f->live = true;
    f->next_rid = 1;
    h->nconns++;
    stomp_parser_init(&f->op, &out_limits, NULL, NULL);
    stomp_parser_set_version(&f->op, STOMP_V10, h->utf8_out ? STOMP_PARSE_UTF8 : 0);
    if (conn__start(c) != 0)
        conn__close(c);
    return f;
}

/* The connection in slot i for n structured frames (fewer for a BURST when the input's
 * FB_MAX_FRAMES run out; NULL when none are left). */
static fconn *fb_sender(fb *h, unsigned i, unsigned *n)
{
    if (*n > h->frames_left)
        *n = h->frames_left;
    if (!*n)
        return NULL;
    fconn *f = fb_conn(h, i);
    if (f)
        h->frames_left -= *n;
    return f;
}

/* The version frames are written in: the negotiated one, else the one asked for. */
static stomp_version fc_version(const fconn *f)
{
    return f->connected ? f->v : f->want_v;
}

static bool fc_can_send(const fconn *f)
{
    return f && !f->ended && !f->eof_queued && !f->rst_queued && !f->closing;
}

/* ---- formatting client frames ---- */

static void hdr(fb_bytes *o, stomp_version v, const char *name, const char *value)
{
    puts_(o, name);
    put(o, ":", 1);
    size_t n = strlen(value);
    if (v == STOMP_V10) {
        put(o, value, n);
    } else {
        size_t m = stomp_escaped_len(value, n, v, STOMP_CMD_SEND);
        room(o, m);
        o->len += stomp_escape(value, n, v, STOMP_CMD_SEND, o->p + o->len);
    }
    put(o, "\n", 1);
}

static void hdr_receipt(fb_bytes *o, fconn *f, bool want, bool disconnect)
{
    if (!want)
        return;
    char v[24];
    snprintf(v, sizeof v, RID_PREFIX "%u", f->next_rid);
    if (disconnect && !f->raw_sent && f->ndisc < NDISC)
        f->disc_rid[f->ndisc++] = f->next_rid;
    f->next_rid++;
    hdr(o, STOMP_V10, "receipt", v);
}

static void frame_end(fb_bytes *o, const char *body, size_t len)
{
    put(o, "\n", 1);
    put(o, body, len);
    put(o, "", 1);
}

static void fc_send(fb *h, fconn *f, const fb_bytes *o)
{
    if (h->trace) {
        fprintf(stderr, "turn %llu conn %d -> ", (ull)h->turn, (int)(f - h->fc));
        for (size_t i = 0; i < o->len && i < 300; i++) {
            unsigned char ch = (unsigned char)o->p[i];
            fputc(ch == '\n' ? '|' : ch == 0 ? '@' : ch < 32 || ch > 126 ? '?' : ch, stderr);
        }
        fprintf(stderr, "%s%s\n", o->len > 300 ? "..." : "", fc_can_send(f) ? "" : " (dropped)");
    }
    if (fc_can_send(f))
        put(&f->in, o->p, o->len);
    fb_pump(h);
}

static const char *const tx_ids[4] = { NULL, "x1", "x2", "x3" };
static const char *const sub_ids[3] = { "s0", "s1", "s2" };

static void op_connect(fconn *f, uint8_t a, fb_bytes *o)
{
    static const char *const versions[8] = { NULL, "1.0", "1.1", "1.2", "1.0,1.1,1.2",
                                             "1.1,1.0", "3.0", "1.2" };
    static const stomp_version want[8] = { STOMP_V10, STOMP_V10, STOMP_V11, STOMP_V12,
                                           STOMP_V12, STOMP_V11, STOMP_V10, STOMP_V12 };
    static const char *const beats[4] = { NULL, "0,0", "500,1000", "x" };
    static const char *const logins[4] = { NULL, "guest", "bad", "quick" };
    puts_(o, a & 1 ? "STOMP\n" : "CONNECT\n");
    unsigned vi = (a >> 1) & 7;
    if (versions[vi])
        hdr(o, STOMP_V10, "accept-version", versions[vi]);
    if (beats[(a >> 4) & 3])
        hdr(o, STOMP_V10, "heart-beat", beats[(a >> 4) & 3]);
    if (logins[a >> 6]) {
        hdr(o, STOMP_V10, "login", logins[a >> 6]);
        hdr(o, STOMP_V10, "passcode", PASSCODE);
        hdr(o, STOMP_V10, "host", "localhost");
    }
    frame_end(o, NULL, 0);
    if (!f->connected)
        f->want_v = want[vi];
}

static void op_subscribe(fconn *f, uint8_t a, uint8_t b, fb_bytes *o)
{
    static const char *const acks[4] = { NULL, "auto", "client", "client-individual" };
    static const char *const prefetch[8] = { NULL, "1", "2", "3", "10", "0", "x1", NULL };
    static const char *const extra[4][2] = {
        { NULL, NULL }, { "selector", "a = 1" }, { "durable", "false" }, { "x-custom", "1" },
    };
    stomp_version v = fc_version(f);
    puts_(o, "SUBSCRIBE\n");
    hdr(o, v, "destination", dests[a & 7]);
    if (acks[(a >> 3) & 3])
        hdr(o, v, "ack", acks[(a >> 3) & 3]);
    if ((a >> 6) < 3)
        hdr(o, v, "id", sub_ids[a >> 6]);
    if (prefetch[b & 7])
        hdr(o, v, "prefetch-count", prefetch[b & 7]);
    else if ((b & 7) == 7)
        hdr(o, v, "activemq.prefetchSize", "2");
    if (extra[(b >> 3) & 3][0])
        hdr(o, v, extra[(b >> 3) & 3][0], extra[(b >> 3) & 3][1]);
    hdr_receipt(o, f, a & 0x20, false);
    frame_end(o, NULL, 0);
}

static void op_unsubscribe(fconn *f, uint8_t a, fb_bytes *o)
{
    stomp_version v = fc_version(f);
    puts_(o, "UNSUBSCRIBE\n");
    if ((a & 3) < 3)
        hdr(o, v, "id", sub_ids[a & 3]);
    else
        hdr(o, v, "destination", dests[(a >> 2) & 7]);
    hdr_receipt(o, f, a & 0x20, false);
    frame_end(o, NULL, 0);
}

/* A body: any bytes with content-length, none NUL without. Bodies of one input share
 * FB_BODY_BUDGET bytes; once it is spent they are empty. */
static void make_body(fb *h, fb_bytes *body, size_t len, bool binary)
{
    uint64_t seq = ++h->bodyseq;
    if (len > h->body_left)
        len = h->body_left;
    h->body_left -= len;
    body->len = 0;
    room(body, len + 1);
    /* One period of the pattern (256 bytes, or 26 letters), then doubled by copies. */
    size_t period = binary ? 256 : 26, n = len < period ? len : period;
    for (size_t i = 0; i < n; i++)
        body->p[i] = binary ? (char)((seq * 31 + i * 7) & 0xff)
                            : (char)('a' + (seq + i) % 26);
    while (n < len) {
        size_t k = n < len - n ? n : len - n;
        memcpy(body->p + n, body->p, k);
        n += k;
    }
    /* Long enough: it starts with its number, so no other body is the same. */
    if (len >= FB_UNIQUE_BODY) {
        char tag[24];
        int k = snprintf(tag, sizeof tag, "#%llu#", (ull)seq);
        memcpy(body->p, tag, (size_t)k);
    }
    body->len = len;
}

static void send_frame(fb *h, fconn *f, fb_bytes *o, unsigned dest, bool receipt,
                       unsigned txi, bool length, size_t blen, unsigned extra)
{
    static const char *const extras[8][2] = {
        { NULL, NULL },       { "x-k", "v" },         { "content-type", "text/plain" },
        { "persistent", "true" }, { "priority", "9" }, { "x-n", "a\nb" },
        { "expires", "0" },   { "x-k", "w" },
    };
    stomp_version v = fc_version(f);
    fb_bytes body = { NULL, 0, 0 };
    make_body(h, &body, blen, length);
    puts_(o, "SEND\n");
    hdr(o, v, "destination", dests[dest & 7]);
    if (extras[extra & 7][0])
        hdr(o, v, extras[extra & 7][0], extras[extra & 7][1]);
    if ((extra & 7) == 7)
        hdr(o, v, "x-k", "again");
    if (tx_ids[txi & 3])
        hdr(o, v, "transaction", tx_ids[txi & 3]);
    if (length) {
        char n[24];
        snprintf(n, sizeof n, "%zu", body.len);
        hdr(o, v, "content-length", n);
    }
    hdr_receipt(o, f, receipt, false);
    /* Its RECEIPT may come only once its message is committed. */
    const char *name = dests[dest & 7];
    if (receipt && !tx_ids[txi & 3] && !dest__is_topic(name, strlen(name)) &&
        body.len >= FB_UNIQUE_BODY && !f->raw_sent && f->nstored < NSTORED) {
        f->stored[f->nstored].rid = f->next_rid - 1;
        f->stored[f->nstored++].body_hash = fnv(body.p, body.len);
    }
    frame_end(o, body.p, body.len);
    free(body.p);
}

static void op_ack(fconn *f, uint8_t a, uint8_t b, fb_bytes *o)
{
    stomp_version v = fc_version(f);
    unsigned which = (a >> 1) & 7, form = (a >> 4) & 3;
    const seen_msg *m = NULL;
    if (which < 7 && which < f->nring)
        m = &f->ring[(f->ring_next + RING - 1 - which) % RING];
    puts_(o, a & 1 ? "NACK\n" : "ACK\n");
    if (!m) {
        hdr(o, v, form & 1 ? "message-id" : "id", "424242");
    } else if (form == 0) {
        if (v == STOMP_V12 && m->ack[0])
            hdr(o, v, "id", m->ack);
        else
            hdr(o, v, "message-id", m->id);
    } else if (form == 3) {
        hdr(o, v, "id", m->id);
    } else {
        hdr(o, v, "message-id", m->id);
        if (form == 2)
            hdr(o, v, "subscription", m->subid);
    }
    if (tx_ids[a >> 6])
        hdr(o, v, "transaction", tx_ids[a >> 6]);
    static const char *const requeue[4] = { NULL, "true", "false", "maybe" };
    if (requeue[(b >> 1) & 3])
        hdr(o, v, "requeue", requeue[(b >> 1) & 3]);
    hdr_receipt(o, f, b & 1, false);
    frame_end(o, NULL, 0);
}

static void op_tx(fconn *f, uint8_t a, fb_bytes *o)
{
    static const char *const cmds[4] = { "BEGIN\n", "COMMIT\n", "ABORT\n", "BEGIN\n" };
    puts_(o, cmds[a & 3]);
    if ((a & 3) != 3)
        hdr(o, fc_version(f), "transaction", tx_ids[1 + ((a >> 2) & 3) % 3]);
    hdr_receipt(o, f, a & 0x10, false);
    frame_end(o, NULL, 0);
}

/* ---- operations ---- */

enum {
    OP_CONNECT, OP_SUBSCRIBE, OP_UNSUBSCRIBE, OP_SEND, OP_ACK, OP_TX, OP_DISCONNECT, OP_RAW,
    OP_RESET, OP_EOF, OP_RUN, OP_COMPLETE, OP_TIME, OP_WAIT, OP_BURST, OP_PUBLISH, OP_INPROC,
    OP_RESTART, OP__COUNT
};

static uint8_t next_byte(const uint8_t **p, const uint8_t *end)
{
    return *p < end ? *(*p)++ : 0;
}

/* Fire a timer as the loop would: stopped first (one-shot), then its callback. */
static bool fire(uv_timer_t *t)
{
    if (!uv_is_active((uv_handle_t *)t) || uv_is_closing((uv_handle_t *)t))
        return false;
    uv_timer_cb cb = t->timer_cb;
    uv_timer_stop(t);
    cb(t);
    return true;
}

static void op_time(fb *h, fconn *f, uint8_t a)
{
    if (!f || !f->live)
        return;
    conn *c = f->c;
    if (a & 1)
        fire(&c->deadline);
    if (!(a & 6) || !f->live || c->closing_handles)
        return;
    uint64_t now = uv_now(&h->loop), then = now > DAY_MS ? now - DAY_MS : 0;
    if (a & 2)
        c->io.last_write = then;
    if (a & 4)
        c->last_rx = then;
    fire(&c->hb_timer);
}

static void op_publish(fb *h, uint8_t a)
{
    fb_bytes body = { NULL, 0, 0 };
    make_body(h, &body, (size_t)(a >> 3) * 11, true);
    broker_header hd[1] = { { "x-origin", "publish" } };
    broker_err rc = broker_publish(h->b, dests[a & 7], hd, a & 0x80 ? 1 : 0,
                                   body.p ? body.p : "", body.len);
    FB_CHECK(rc == BROKER_OK || rc == BROKER_E_INVALID || rc == BROKER_E_NOMEM ||
                 rc == BROKER_E_STORE,
             "broker_publish: %s", broker_strerror(rc));
    FB_CHECK(rc != BROKER_E_INVALID || (a & 7) == 6, "broker_publish refused %s", dests[a & 7]);
    free(body.p);
}

static void op_inproc(fb *h, uint8_t a)
{
    broker_sub **s = &h->inproc[a & 3];
    if (*s) {
        broker_unsubscribe(*s);
        *s = NULL;
        return;
    }
    broker_err rc = broker_subscribe(h->b, dests[(a >> 2) & 7], on_inproc, h, s);
    FB_CHECK(rc == BROKER_OK || (rc == BROKER_E_INVALID && ((a >> 2) & 7) == 6),
             "broker_subscribe %s: %s", dests[(a >> 2) & 7], broker_strerror(rc));
    if (rc != BROKER_OK)
        *s = NULL;
}

static void fb_check_accounting(fb *h);
static void fb_restart(fb *h);

static void fb_op(fb *h, const uint8_t **p, const uint8_t *end)
{
    uint8_t code = next_byte(p, end);
    unsigned slot = code & 3, kind = (unsigned)(code >> 2) % OP__COUNT;
    fconn *f = h->fc[slot].live ? &h->fc[slot] : NULL;
    fb_bytes o = { NULL, 0, 0 };
    uint8_t a = 0, b = 0, c = 0;
    unsigned one = 1, n;
    if (h->trace) {
        static const char *const names[OP__COUNT] = {
            "CONNECT", "SUBSCRIBE", "UNSUBSCRIBE", "SEND", "ACK", "TX", "DISCONNECT", "RAW",
            "RESET", "EOF", "RUN", "COMPLETE", "TIME", "WAIT", "BURST", "PUBLISH", "INPROC",
            "RESTART",
        };
        fprintf(stderr, "turn %llu slot %u: %s\n", (ull)h->turn, slot, names[kind]);
    }
    switch (kind) {
    case OP_CONNECT:
        a = next_byte(p, end);
        if ((f = fb_sender(h, slot, &one)) != NULL) {
            op_connect(f, a, &o);
            fc_send(h, f, &o);
        }
        break;
    case OP_SUBSCRIBE:
        a = next_byte(p, end);
        b = next_byte(p, end);
        if ((f = fb_sender(h, slot, &one)) != NULL) {
            op_subscribe(f, a, b, &o);
            fc_send(h, f, &o);
        }
        break;
    case OP_UNSUBSCRIBE:
        a = next_byte(p, end);
        if ((f = fb_sender(h, slot, &one)) != NULL) {
            op_unsubscribe(f, a, &o);
            fc_send(h, f, &o);
        }
        break;
    case OP_SEND:
        a = next_byte(p, end);
        b = next_byte(p, end);
        c = next_byte(p, end);
        if ((f = fb_sender(h, slot, &one)) != NULL) {
            size_t blen = (size_t)(b & 0x3f) * (b & 0x40 ? 97 : 1) + (b & 0x80 ? 4096 : 0);
            send_frame(h, f, &o, a & 7, a & 8, (a >> 4) & 3, a & 0x40, blen, c);
            fc_send(h, f, &o);
        }
        break;
    case OP_ACK:
        a = next_byte(p, end);
        b = next_byte(p, end);
        if ((f = fb_sender(h, slot, &one)) != NULL) {
            op_ack(f, a, b, &o);
            fc_send(h, f, &o);
        }
        break;
    case OP_TX:
        a = next_byte(p, end);
        if ((f = fb_sender(h, slot, &one)) != NULL) {
            op_tx(f, a, &o);
            fc_send(h, f, &o);
        }
        break;
    case OP_DISCONNECT:
        a = next_byte(p, end);
        if ((f = fb_sender(h, slot, &one)) != NULL) {
            puts_(&o, "DISCONNECT\n");
            hdr_receipt(&o, f, a & 1, true);
            frame_end(&o, NULL, 0);
            fc_send(h, f, &o);
        }
        break;
    case OP_RAW: {
        size_t len = next_byte(p, end);
        if (len > (size_t)(end - *p))
            len = (size_t)(end - *p);
        if ((f = fb_conn(h, slot)) != NULL) {
            put(&o, *p, len);
            for (size_t i = 0; i < len; i++)
                if (o.p[i] == '\177')
                    o.p[i] = '\176';
            f->raw_sent = f->raw_sent || len > 0;
            fc_send(h, f, &o);
        }
        *p += len;
        break;
    }
    case OP_RESET:
        if (fc_can_send(f)) {
            f->rst_queued = true;
            f->broken = true;
            f->in.len = f->in_off = 0; /* a reset drops what the broker has not read */
        } else if (f && f->closing) {
            f->ended = true;
        }
        fb_pump(h);
        break;
    case OP_EOF:
        if (fc_can_send(f))
            f->eof_queued = true;
        else if (f && f->closing)
            f->ended = true;
        fb_pump(h);
        break;
    case OP_RUN:
        a = next_byte(p, end);
        for (unsigned i = 0; i <= (a & 15u); i++)
            fb_turn(h);
        break;
    case OP_COMPLETE:
        a = next_byte(p, end);
        if (f) {
            if (a & 1)
                f->stalled = !f->stalled;
            if (f->wflight)
                fc_complete_write(f);
        }
        break;
    case OP_TIME:
        op_time(h, f, next_byte(p, end));
        break;
    case OP_WAIT:
        fb_wait_store(h);
        break;
    case OP_BURST:
        a = next_byte(p, end);
        b = next_byte(p, end);
        n = 1 + (a & 31u);
        if ((f = fb_sender(h, slot, &n)) != NULL) {
            size_t blen = (size_t)(b >> 3) * 37 * (a & 32 && h->sqlite ? 29 : 1);
            for (unsigned i = 0; i < n; i++)
                send_frame(h, f, &o, b & 7, false, 0, true, blen, 0);
            fc_send(h, f, &o);
        }
        break;
    case OP_PUBLISH:
        op_publish(h, next_byte(p, end));
        break;
    case OP_INPROC:
        op_inproc(h, next_byte(p, end));
        break;
    case OP_RESTART:
        fb_restart(h);
        break;
    }
    free(o.p);
    if (h->auto_run)
        fb_turn(h);
    sh_check_depths(&h->sh, h->b);
    fb_check_accounting(h);
}

/* Every byte counted against max_memory is queued output, what a parser holds, a held
 * receipt or a transaction (the stores report their own bytes): the count is exact, never drifting (a drift
 * below zero would be hidden by the clamp in broker__mem_sub). */
static void fb_check_accounting(fb *h)
{
    broker *b = h->b;
    uint64_t sum = 0, n = 0;
    for (conn *c = b->sess.conns; c; c = c->next) {
        n++;
        sum += net__queued(&c->io) + c->parser_mem;
        for (held *x = c->held_head; x; x = x->next)
            sum += sizeof *x + x->len;
        for (tx *t = c->txs; t; t = t->next)
            sum += t->bytes;
    }
    FB_CHECK(n == b->stats.connections, "%llu connections counted, %llu in the list",
             (ull)b->stats.connections, (ull)n);
    FB_CHECK(b->stats.memory == sum,
             "%llu bytes counted against max_memory; output, receipts and transactions "
             "hold %llu",
             (ull)b->stats.memory, (ull)sum);
}

/* ---- the end of an input ---- */

/* Once nothing moves any more: no queue holds ready messages that a subscriber without a
 * selector has room for (one with a selector may rightly leave the messages it rejects),
 * and no connection stays paused (or unread) without cause. */
static void fb_check_settled(fb *h)
{
    broker *b = h->b;
    for (store__qlink *l = store__queues_first(&b->route.dests); l;
         l = store__queues_next(&b->route.dests, l)) {
        dest_t *d = store__container_of(l, dest_t, link);
        if (d->is_topic)
            continue;
        size_t depth = b->st->depth(b->store, d->name, d->link.len);
        if (!depth)
            continue;
        for (sub *s = d->head; s; s = s->dnext) {
            if (s->dead || s->selector)
                continue;
            endpoint *ep = s->ep;
            if (ep && (!ep->open || ep->ops->queued(ep) >= b->o.output_high_water ||
                       (s->ack_mode != ACK_AUTO && s->nunacked >= s->window)))
                continue;
            FB_CHECK(0, "%s holds %zu ready messages while subscription %s has room", d->name,
                     depth, s->id);
        }
    }
    for (conn *c = b->sess.conns; c; c = c->next) {
        if (c->state == CS_CLOSING || c->auth || c->doomed || c->detached)
            continue;
        if (c->paused_out)
            FB_CHECK(net__queued(&c->io) > b->o.output_high_water / 2,
                     "conn %llu stays paused for output it no longer has", (ull)c->id);
        if (c->paused_mem && !h->sqlite)
            FB_CHECK(broker__over_memory(b), "conn %llu stays paused under the memory limit",
                     (ull)c->id);
        if (!c->paused_out && !c->paused_mem)
            FB_CHECK(c->io.reading, "conn %llu is not read and not paused", (ull)c->id);
    }
}

static void fb_settle(fb *h)
{
    for (size_t i = 0; i < h->nauth; i++)
        h->auth[i].turn = 0; /* the logins still waiting are answered now */
    for (unsigned i = 0;; i++) {
        FB_CHECK(i < 20000, "the broker never settles");
        bool did = fb_turn(h);
        if (did || h->b->idle_on || h->nauth)
            continue;
        if (h->b->route.commit_inflight) {
            fb_wait_store(h);
            continue;
        }
        break;
    }
    fb_check_settled(h);
    fb_check_accounting(h);
}

/* What the broker and the peers are waiting for, on stderr: for a stop that hangs. */
static void fb_dump(fb *h)
{
    broker *b = h->b;
    fprintf(stderr, "broker: stopping %d stopped %d core_closing %d idle_on %d handles %d "
                    "commit dirty %d inflight %d memory %llu npaused %zu resume_wanted %d "
                    "flush_list %p dispatch %p\n",
            b->stopping, b->stopped, b->core_closing, b->idle_on, b->handles_open,
            b->route.dirty, b->route.commit_inflight, (ull)b->stats.memory, b->npaused,
            b->resume_wanted, (void *)b->net.flush_list, (void *)b->route.dispatch_list);
    for (conn *c = b->sess.conns; c; c = c->next)
        fprintf(stderr, "conn %llu: state %d handles %d doomed %d detached %d closing %d "
                        "abort %d graceful %d paused %d/%d reading %d queued %zu held %d "
                        "auth %p deadline %d\n",
                (ull)c->id, c->state, c->handles_open, c->doomed, c->detached,
                c->closing_handles, c->abort, c->graceful, c->paused_mem, c->paused_out,
                c->io.reading, net__queued(&c->io), receipt__holding(c), (void *)c->auth,
                uv_is_active((uv_handle_t *)&c->deadline));
    for (int i = 0; i < NSLOT; i++) {
        fconn *f = &h->fc[i];
        if (f->live)
            fprintf(stderr, "slot %d: conn %llu in %zu eof %d rst %d ended %d reading %d "
                            "stalled %d broken %d wflight %d closing %d abort %d\n",
                    i, (ull)f->c->id, f->in.len - f->in_off, f->eof_queued, f->rst_queued,
                    f->ended, f->reading, f->stalled, f->broken, f->wflight, f->closing,
                    f->close_abort);
    }
}

/* Stop and run the loop until the stop completed. When nothing is left to wait for but
 * time (a peer that does not read, a graceful close the peer does not answer), time
 * passes: every connection's deadline fires. */
static void fb_stop(fb *h)
{
    broker *b = h->b;
    for (size_t i = 0; i < h->nauth; i++)
        h->auth[i].turn = 0; /* the logins still waiting are answered now */
    FB_CHECK(broker_stop(b, on_stop, h) == BROKER_OK, "broker_stop failed");
    /* In-process subscriptions left go with the broker (freed by broker_free). */
    for (int i = 0; i < NINPROC; i++)
        h->inproc_left += h->inproc[i] != NULL;
    memset(h->inproc, 0, sizeof h->inproc);
    unsigned stuck = 0;
    for (unsigned i = 0; !h->stopped; i++) {
        if (i == 100000)
            fb_dump(h);
        FB_CHECK(i < 100000, "broker_stop never completes");
        bool did = fb_turn(h);
        if (h->stopped || did || (!b->core_closing && b->idle_on) || h->nauth)
            continue;
        if (b->route.commit_inflight) {
            fb_wait_store(h);
            continue;
        }
        bool fired = false;
        for (conn *c = b->sess.conns; c; c = c->next)
            fired |= fire(&c->deadline);
        if (fired) {
            stuck = 0;
            continue;
        }
        if (++stuck == 16)
            fb_dump(h);
        FB_CHECK(stuck < 16, "broker_stop waits for nothing and never completes");
    }
}

static void fb_summary(fb *h, char *out, size_t cap)
{
    const broker_stats *st = &h->b->stats;
    snprintf(out, cap,
             "store=%s connected=%llu beats=%llu sent=%llu delivered=%llu redelivered=%llu "
             "receipts=%llu errors=%llu limits=%llu paused=%llu stored=%llu acked=%zu "
             "ready=%zu inproc=%llu",
             h->sqlite ? "sqlite" : "memory", (ull)h->connected, (ull)h->beats,
             (ull)st->messages_in, (ull)h->messages, (ull)h->redelivered, (ull)h->receipts,
             (ull)h->errors, (ull)st->limit_breaches, (ull)st->reads_paused,
             (ull)h->sh.committed, h->sh.count[M_ACKED],
             h->sh.count[M_READY], (ull)h->inproc_msgs);
}

/* Stop, and check what holds once every connection is gone. */
static void fb_stop_checked(fb *h)
{
    fb_stop(h);
    broker *b = h->b;
    for (int i = 0; i < NSLOT; i++)
        FB_CHECK(!h->fc[i].live, "a stream was never closed");
    shadow *sh = &h->sh;
    FB_CHECK(!sh->flying && sh->count[M_PENDING] == 0, "%zu messages pending after the stop",
             sh->count[M_PENDING]);
    FB_CHECK(sh->count[M_TAKEN] == 0, "%zu messages taken after every connection is gone",
             sh->count[M_TAKEN]);
    FB_CHECK(sh->count[M_READY] + sh->count[M_ACKED] == sh->committed,
             "%zu ready + %zu acked of %llu committed", sh->count[M_READY],
             sh->count[M_ACKED], (ull)sh->committed);
    sh_check_depths(sh, b);
    FB_CHECK(b->stats.memory == 0, "%llu bytes still counted against max_memory",
             (ull)b->stats.memory);
    FB_CHECK(b->stats.connections == 0 && b->stats.subscriptions == h->inproc_left,
             "%llu connections and %llu subscriptions counted after the stop",
             (ull)b->stats.connections, (ull)b->stats.subscriptions);
}

static void fb_finish(fb *h, char *summary, size_t cap)
{
    fb_settle(h);
    fb_stop_checked(h);
    if (summary)
        fb_summary(h, summary, cap);
    broker_free(h->b);
    h->b = NULL;
    FB_CHECK(uv_loop_close(&h->loop) == 0, "handles left open on the loop");
}

static void fb_create(fb *h)
{
    fb_shadow_now = &h->sh;
    broker_err rc = broker_create(&h->loop, &h->opts, &h->b);
    fb_shadow_now = NULL;
    FB_CHECK(rc == BROKER_OK, "broker_create: %s", broker_strerror(rc));
}

/* RESTART: a clean stop, then a new broker on the same loop and store. The SQLite file
 * keeps every message committed and not acknowledged, and the shadow with it: depths,
 * order, bodies and redelivery counts are checked against it again. A memory store
 * starts empty, and so does its shadow. */
static void fb_restart(fb *h)
{
    if (h->restarts == MAX_RESTARTS)
        return;
    h->restarts++;
    fb_stop_checked(h);
    broker_free(h->b);
    h->b = NULL;
    h->stopped = false;
    h->inproc_left = 0;
    if (!h->sqlite) {
        shadow keep = h->sh;
        sh_free(&h->sh);
        memset(&h->sh, 0, sizeof h->sh);
        h->sh.inner = keep.inner;
        h->sh.enq_fault = keep.enq_fault;
        h->sh.enq_calls = keep.enq_calls;
    }
    fb_create(h);
}

/* ---- SQLite's private directory ---- */

static bool fb_make_dir(fb *h)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    if (snprintf(h->dir, sizeof h->dir, "%s/fuzz_broker.XXXXXX", base) >= (int)sizeof h->dir ||
        !mkdtemp(h->dir)) {
        h->dir[0] = '\0';
        return false;
    }
    snprintf(h->db, sizeof h->db, "%s/queues.db", h->dir);
    return true;
}

static void fb_remove_dir(fb *h)
{
    if (!h->dir[0])
        return;
    DIR *d = opendir(h->dir);
    if (d) {
        struct dirent *e;
        char path[600];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", h->dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(h->dir);
}

/* ---- one input ---- */

static void fb_options(fb *h, const uint8_t *s, broker_options *o)
{
    broker_options_init(o);
    o->heartbeat_out_ms = 60000;
    o->heartbeat_in_ms = 60000;
    o->log = on_log;
    o->log_ctx = h;
    o->log_level = BROKER_LOG_DEBUG;
    if (s[0] & 4) {
        o->default_prefetch = 1 + (s[1] & 3u);
        o->max_unacked = 1 + ((s[1] >> 2) & 3u) * 2;
    }
    if (s[0] & 8) {
        o->output_high_water = (size_t)64 << ((s[1] >> 4) & 7);
        o->max_output_bytes = o->output_high_water * (s[1] & 0x80 ? 2 : 8);
    }
    if (s[0] & 16)
        o->max_memory = (size_t)1024 << (s[2] & 7);
    if (s[0] & 32) {
        o->max_tx_frames = 1 + ((s[2] >> 3) & 3u);
        o->max_transactions = 1 + ((s[2] >> 5) & 1u);
        o->max_subscriptions = 1 + (s[2] >> 6);
    }
    if (s[0] & 64) {
        o->limits = (stomp_limits){ 16, 256, 8, 1024, 512 };
        o->connect_limits = (stomp_limits){ 16, 128, 6, 512, 64 };
    }
    if (s[0] & 128) {
        o->lenient_escapes = 1;
        o->allow_non_utf8_10 = 1;
    }
    if ((s[4] & 3) == 1)
        o->authenticate = auth_sync;
    else if ((s[4] & 3) == 2)
        o->authenticate_async = auth_async;
    o->auth_ctx = h;
    h->auth_delay = (s[4] >> 2) & 3u;
    /* Returned messages come back at once (the shadow has no clock); dead-lettered after
     * 10, 1, 2 attempts or never, into their DLQ or dropped. */
    static const uint32_t attempts[4] = { 10, 1, 2, 0 };
    o->policy.redelivery_delay = 0;
    o->policy.max_deliveries = attempts[s[2] & 3];
    o->policy.dead_letter = s[2] & 4 ? "none" : NULL;
    /* Smaller than the default 64 KiB: a fresh broker per input allocates it each time. */
    o->read_buffer = s[4] & 16 ? 512 : 4096;
    h->auto_run = s[0] & 2;
    h->chunk = s[3] & 63u;
    h->sync_write_fail = s[3] & 64;
    h->sh.enq_fault = s[3] & 128;
    h->utf8_out = !o->allow_non_utf8_10;
}

/* SQLite inputs take about twenty times as long as the memory store's (the database is
 * created and closed each time): four bits select it. */
static bool fb_sqlite(const uint8_t *s)
{
    return (s[0] & 1) && (s[4] & 0xe0) == 0xe0;
}

/* Run one input; summary (may be NULL) gets the counts fb_summary writes. */
static void fb_run(const uint8_t *data, size_t size, char *summary, size_t cap)
{
    if (summary && cap)
        summary[0] = '\0';
    if (size < NSET)
        return;
    fb *h = calloc(1, sizeof *h);
    FB_CHECK(h != NULL, "out of memory in the harness");
    h->trace = getenv("FUZZ_BROKER_TRACE") != NULL;
    h->frames_left = FB_MAX_FRAMES;
    h->body_left = FB_BODY_BUDGET;
    FB_CHECK(uv_loop_init(&h->loop) == 0, "uv_loop_init failed");
    broker_options *o = &h->opts;
    fb_options(h, data, o);
    h->sh.inner = store_memory_backend();
    if (fb_sqlite(data) && fb_make_dir(h)) {
        h->sqlite = true;
        h->sh.inner = store_sqlite_backend();
        o->store_path = h->db;
        o->store_sync_full = 0;
    }
    o->store = &wrapped_ops;
    fb_create(h);
    const uint8_t *p = data + NSET, *end = data + size;
    while (p < end)
        fb_op(h, &p, end);
    fb_finish(h, summary, cap);
    fb_remove_dir(h);
    for (int i = 0; i < NSLOT; i++) {
        fc_reset_output(&h->fc[i]);
        free(h->fc[i].in.p);
    }
    sh_free(&h->sh);
    free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fb_run(data, size, NULL, 0);
    return 0;
}
