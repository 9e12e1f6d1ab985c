/* drain.c: an administrator's purge of a queue, and the move of dead letters back to the
 * queues they came from.
 *
 * A drain takes the queue's messages that no subscriber holds, one after another, with the
 * store's plain take (waiting and expired ones included) and settles each in the open
 * batch: acknowledged (purge), or copied to its original-destination and acknowledged in
 * the same batch (move), so after a crash a moved message is in exactly one of the two
 * queues. It runs from the queue's dispatch at the tick, at most DRAIN_BATCH messages a
 * turn; when a persistent store must record its delivery bound first (STORE_E_AGAIN) it
 * goes on after that commit. Messages it leaves (no original-destination) go back to the
 * head of the queue, in their order, when it ends. The dest is pinned meanwhile.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

#define DRAIN_BATCH 10000

struct drain {
    int kind;
    route_drain_fn fn;
    void *arg;
    uint64_t done;
    uint64_t *keep; /* ids taken and to be put back, in taking order */
    size_t nkeep, keep_cap;
};

broker_err route__drain(broker *b, const char *name, size_t len, int kind, route_drain_fn fn,
                        void *arg, drain **out)
{
    if (!len || dest__is_topic(name, len))
        return BROKER_E_INVALID;
    dest_t *d = dest__get(b, name, len, store_hash_name(name, len));
    if (!d)
        return BROKER_E_NOMEM;
    if (d->drain)
        return BROKER_E_STATE;
    drain *j = calloc(1, sizeof *j);
    if (!j) {
        dest__release(b, d);
        return BROKER_E_NOMEM;
    }
    j->kind = kind;
    j->fn = fn;
    j->arg = arg;
    d->drain = j;
    d->unlisted = 0;
    d->pins++;
    dest__schedule(b, d);
    if (out)
        *out = j;
    return BROKER_OK;
}

void route__drain_forget(drain *j)
{
    if (j)
        j->fn = NULL;
}

void queue__drain_free(dest_t *d)
{
    if (d->drain) {
        free(d->drain->keep);
        free(d->drain);
        d->drain = NULL;
    }
}

static int is_dead_letter_header(const char *name)
{
    static const char *const names[] = { "dead-letter-reason", "dead-letter-time",
                                         "original-destination", "original-message-id",
                                         "delivery-count" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return 1;
    return 0;
}

/* m's header block without the headers dead-lettering added: caller owns (free). */
static char *strip_dead_letter(const store_msg *m, size_t *len)
{
    char *out = malloc(m->headers_len + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    const char *p = m->headers, *end = m->headers + m->headers_len;
    while (p < end) {
        size_t nl = strnlen(p, (size_t)(end - p));
        const char *v = p + nl + 1;
        if (v > end)
            break;
        size_t vl = strnlen(v, (size_t)(end - v));
        size_t pair = nl + 1 + vl + (v + vl < end);
        if (!is_dead_letter_header(p)) {
            memcpy(out + n, p, pair);
            n += pair;
        }
        p += pair;
    }
    *len = n;
    return out;
}

static int keep(drain *j, uint64_t id)
{
    if (j->nkeep == j->keep_cap) {
        size_t cap = j->keep_cap ? j->keep_cap * 2 : 64;
        uint64_t *k = realloc(j->keep, cap * sizeof *k);
        if (!k)
            return -1;
        j->keep = k;
        j->keep_cap = cap;
    }
    j->keep[j->nkeep++] = id;
    return 0;
}

/* Move taken dead letter m back where it came from: 1 moved, 0 left (no or bad
 * original-destination), -1 out of memory (m is left too). */
static int move_one(broker *b, dest_t *d, const store_msg *m)
{
    const char *orig = msg__block_header(m->headers, m->headers_len, "original-destination");
    size_t olen = orig ? strlen(orig) : 0;
    if (!olen || dest__is_topic(orig, olen) ||
        (olen == d->link.len && memcmp(orig, d->name, olen) == 0))
        return 0;
    size_t hlen;
    char *hdrs = strip_dead_letter(m, &hlen);
    if (!hdrs)
        return -1;
    msg_attrs a = { 0, 0, m->priority, 0 };
    broker_err rc = queue__enqueue(b, orig, olen, store_hash_name(orig, olen), hdrs, hlen,
                                   m->body, m->body_len, &a, NULL);
    free(hdrs);
    return rc == BROKER_OK ? 1 : -1;
}

/* Settle taken message m as the drain wants: 0, or -1 (out of memory; m is back). */
static int settle(broker *b, dest_t *d, drain *j, const store_msg *m)
{
    size_t bytes = m->headers_len + m->body_len;
    uint64_t id = m->id;
    int moved = j->kind == DRAIN_PURGE ? 1 : move_one(b, d, m);
    if (moved == 1) {
        if (b->st->ack(b->store, id) == STORE_OK)
            commit__dirty(b);
        if (b->store_counted)
            broker__mem_sub(b, bytes);
        j->done++;
        return 0;
    }
    if (moved == 0 && keep(j, id) == 0)
        return 0;
    if (b->st->requeue(b->store, id) == STORE_OK)
        commit__dirty(b);
    return -1;
}

static void finish(broker *b, dest_t *d, broker_err rc)
{
    drain *j = d->drain;
    /* Newest first: each requeue goes to the head, so their order is kept. */
    for (size_t i = j->nkeep; i-- > 0;)
        if (b->st->requeue(b->store, j->keep[i]) == STORE_OK)
            commit__dirty(b);
    d->drain = NULL;
    d->pins--;
    /* The asker may delete d (route__dest_delete): busy keeps it until the tick's
     * dest__release after this dispatch. */
    d->busy++;
    if (j->fn)
        j->fn(j->arg, rc, j->done, j->nkeep);
    d->busy--;
    free(j->keep);
    free(j);
    if (d->nsubs)
        dest__schedule(b, d);
}

void queue__drain_step(broker *b, dest_t *d)
{
    if (b->stopping) {
        finish(b, d, BROKER_E_STATE);
        return;
    }
    for (int n = 0; n < DRAIN_BATCH; n++) {
        store_msg m;
        store_err se = b->st->take_hashed(b->store, d->name, d->link.len, d->link.hash, &m);
        if (se == STORE_E_AGAIN) {
            /* The store records its delivery bound first: go on after that commit. */
            dest__touch(b, d);
            commit__dirty(b);
            return;
        }
        if (se != STORE_OK) {
            finish(b, d, se == STORE_E_EMPTY ? BROKER_OK : BROKER_E_STORE);
            return;
        }
        if (settle(b, d, d->drain, &m) != 0) {
            finish(b, d, BROKER_E_NOMEM);
            return;
        }
    }
    /* A long queue: the rest after the next commit, other work in between. */
    dest__touch(b, d);
    commit__again(b);
}
