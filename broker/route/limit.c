/* limit.c: queue limits. A queue's policy may cap the messages it holds (max_length) and
 * their bytes (max_bytes), counting every message stored and not yet acknowledged, as the
 * store reports them (queue_size: kept across restarts). A SEND that would go past a limit
 * waits (overflow block: the session holds it and stops reading that producer), makes room
 * by dead-lettering the queue's head (drop-head), or is refused (reject).
 */
#include "core.h"

#include <stdio.h>

/* The head of the queue out, to its dead-letter queue (reason overflow): QUEUE_ROOM when
 * one went, QUEUE_WAIT when the store can hand it out only after a commit, QUEUE_FULL when
 * nothing can go (every message is delivered and unacknowledged, or the move failed). */
static int drop_head(broker *b, const char *dname, size_t dlen, uint64_t hash,
                     const broker_policy *p)
{
    store_msg m;
    store_err se = b->st->take_hashed(b->store, dname, dlen, hash, &m);
    if (se == STORE_E_AGAIN) {
        commit__dirty(b); /* the store recorded its delivery bound: commit, then retry */
        return QUEUE_WAIT;
    }
    if (se != STORE_OK)
        return QUEUE_FULL;
    size_t bytes = m.headers_len + m.body_len;
    if (queue__dead_letter(b, &m, p, "overflow", m.redeliveries) != 0) {
        if (b->st->requeue_at(b->store, m.id, 0) == STORE_OK)
            commit__dirty(b);
        return QUEUE_FULL;
    }
    if (b->store_counted)
        broker__mem_sub(b, bytes);
    return QUEUE_ROOM;
}

/* The ERROR text for a full queue: which limit, and why no room can be made. */
static int full(char *buf, size_t cap, const char *dname, size_t dlen, int over_len,
                const broker_policy *p, const char *why)
{
    snprintf(buf, cap, "queue %.*s is full (%s %llu)%s", (int)(dlen > 100 ? 100 : dlen),
             dname, over_len ? "max_length" : "max_bytes",
             (unsigned long long)(over_len ? p->max_length : p->max_bytes), why);
    return QUEUE_FULL;
}

int queue__room(broker *b, const char *dname, size_t dlen, const stomp_frame *f, size_t bytes,
                char *buf, size_t cap)
{
    if (!b->route.limits) /* no policy limits a queue: the common case costs one test */
        return QUEUE_ROOM;
    const broker_policy *p = policy__for(b, dname, dlen);
    if ((!p->max_length && !p->max_bytes) || dest__is_topic(dname, dlen))
        return QUEUE_ROOM;
    uint64_t hash = store_hash_name(dname, dlen);
    if (f && p->max_bytes)
        bytes = stomp_pack_headers(f, NULL) + f->body_len;
    if (p->max_bytes && bytes > p->max_bytes)
        return full(buf, cap, dname, dlen, 0, p, ": the message alone is larger");
    for (;;) {
        uint64_t n, size;
        b->st->queue_size(b->store, dname, dlen, hash, &n, &size);
        int over_len = p->max_length && n >= p->max_length;
        if (!over_len && !(p->max_bytes && size + bytes > p->max_bytes))
            return QUEUE_ROOM;
        if (p->overflow == BROKER_OVERFLOW_BLOCK)
            return QUEUE_WAIT;
        if (p->overflow == BROKER_OVERFLOW_REJECT)
            return full(buf, cap, dname, dlen, over_len, p, "");
        int r = drop_head(b, dname, dlen, hash, p);
        if (r == QUEUE_FULL)
            return full(buf, cap, dname, dlen, over_len, p,
                        ": no message of it can be dropped (every one is delivered and not "
                        "acknowledged)");
        if (r == QUEUE_WAIT)
            return r;
    }
}
