/* tempq.c: temporary queues for request and reply. /temp-queue/NAME names a queue of the
 * connection that uses it (each connection has its own NAMEs): a SEND whose reply-to is
 * /temp-queue/NAME gets reply-to rewritten to the queue's broker-unique name,
 * /reply-queue/<nonce>-<n> (the nonce is drawn when the broker starts, so a name handed out
 * before a restart never names a queue after it), and the connection is subscribed to it
 * (auto ack, id /temp-queue/NAME) unless it already is. Replies are plain queue messages
 * in the store under that name. Only the owner subscribes to it; a SEND to a name that is
 * not live (its owner left, or it never was) is dropped and counted (temp_dropped).
 *
 * When the owner goes, its names stop being live at once and each queue is purged: its
 * dest stays pinned, marked purge, and every dispatch of it takes and acks what the store
 * holds, until the store holds nothing for it (pending and taken messages come back
 * through the commit and the owner's returns, which dispatch it again). Queues of a
 * process that crashed are found by their prefix when the broker starts and purged alike.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tempq {
    store__qlink link; /* in route.temps by reply name; names reply[] */
    tempq *next;       /* the owner's list */
    endpoint *owner;
    const char *local; /* "/temp-queue/NAME", after reply[] */
    size_t local_len;
    char reply[];
};

static tempq *find_reply(const broker *b, const char *name, size_t len, uint64_t hash)
{
    return store__entry(store__queues_find(&b->route.temps, name, len, hash), tempq, link);
}

static tempq *find_local(const endpoint *ep, const char *name, size_t len)
{
    for (tempq *t = ep->temps; t; t = t->next)
        if (t->local_len == len && memcmp(t->local, name, len) == 0)
            return t;
    return NULL;
}

/* ep's temporary queue named local, created when missing. NULL: out of memory. */
static tempq *get(broker *b, endpoint *ep, const char *local, size_t llen)
{
    tempq *t = find_local(ep, local, llen);
    if (t)
        return t;
    route_state *r = &b->route;
    char name[64];
    int n = snprintf(name, sizeof name, "%s%016llx-%llu", TEMPQ_REPLY,
                     (unsigned long long)r->temp_nonce, (unsigned long long)++r->temp_seq);
    size_t rlen = (size_t)n;
    if (store__queues_reserve(&r->temps, 1) != STORE_OK)
        return NULL;
    t = malloc(sizeof *t + rlen + 1 + llen + 1);
    if (!t)
        return NULL;
    memcpy(t->reply, name, rlen + 1);
    char *l = t->reply + rlen + 1;
    memcpy(l, local, llen);
    l[llen] = '\0';
    t->local = l;
    t->local_len = llen;
    t->owner = ep;
    t->next = ep->temps;
    ep->temps = t;
    store__queues_insert(&r->temps, &t->link, t->reply, rlen, store_hash_name(t->reply, rlen));
    return t;
}

broker_err tempq__send(broker *b, endpoint *ep, stomp_header *reply_to, const char **dest,
                       size_t *dlen, size_t default_window)
{
    if (tempq__is_temp(*dest, *dlen)) {
        tempq *t = get(b, ep, *dest, *dlen);
        if (!t)
            return BROKER_E_NOMEM;
        *dest = t->reply;
        *dlen = t->link.len;
    }
    if (!reply_to || !tempq__is_temp(reply_to->value, reply_to->value_len))
        return BROKER_OK;
    tempq *t = get(b, ep, reply_to->value, reply_to->value_len);
    if (!t)
        return BROKER_E_NOMEM;
    reply_to->value = t->reply;
    reply_to->value_len = t->link.len;
    /* Replies need a consumer: the owner's own subscription if it has one, else ours. */
    if (sub__find_dest(ep, t->reply, t->link.len) || sub__find(ep, t->local))
        return BROKER_OK;
    sub *s = sub__subscribe(b, ep, t->reply, t->link.len, t->local, t->local_len, ACK_AUTO,
                            default_window, 0, NULL);
    return s ? BROKER_OK : BROKER_E_NOMEM;
}

broker_err tempq__subscribe(broker *b, endpoint *ep, const char **dname, size_t *dlen,
                            const char *id, char *buf, size_t cap)
{
    int dl = (int)(*dlen > 100 ? 100 : *dlen);
    if (tempq__is_temp(*dname, *dlen)) {
        tempq *t = get(b, ep, *dname, *dlen);
        if (!t)
            return BROKER_E_NOMEM;
        /* The subscription a SEND made stands in for this one: it goes. */
        sub *implicit = sub__find(ep, t->local);
        if (implicit && strcmp(id, t->local) != 0 && implicit->d->link.len == t->link.len &&
            memcmp(implicit->d->name, t->reply, t->link.len) == 0)
            sub__unsubscribe(b, implicit);
        *dname = t->reply;
        *dlen = t->link.len;
        return BROKER_OK;
    }
    if (!tempq__is_reply(*dname, *dlen))
        return BROKER_OK;
    tempq *t = find_reply(b, *dname, *dlen, store_hash_name(*dname, *dlen));
    if (t && t->owner == ep)
        return BROKER_OK;
    snprintf(buf, cap, t ? "%.*s is a temporary queue of another connection: only its owner "
                           "consumes it"
                         : "%.*s is not a live temporary queue (its connection has closed)",
             dl, *dname);
    return t ? BROKER_E_PROTOCOL : BROKER_E_NOTFOUND;
}

int tempq__drop(broker *b, const char *name, size_t len, uint64_t hash)
{
    if (find_reply(b, name, len, hash))
        return 0;
    b->stats.temp_dropped++;
    return 1;
}

/* Mark the queue named so for purging (see the top of this file). */
static void purge(broker *b, const char *name, size_t len)
{
    dest_t *d = dest__get(b, name, len, store_hash_name(name, len));
    if (!d) {
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_STORE, 0,
                    "out of memory: temporary queue %s stays until the next start", name);
        return;
    }
    if (!d->purge) {
        d->purge = 1;
        d->pins++;
    }
    dest__touch(b, d); /* after the commit of what may be pending for it */
    dest__schedule(b, d);
    commit__again(b);
}

void tempq__purge_queue(broker *b, const char *name, size_t len)
{
    purge(b, name, len);
}

void tempq__endpoint_close(broker *b, endpoint *ep)
{
    while (ep->temps) {
        tempq *t = ep->temps;
        ep->temps = t->next;
        store__queues_remove(&b->route.temps, &t->link);
        purge(b, t->reply, t->link.len);
        free(t);
    }
}

void tempq__purge(broker *b, dest_t *d)
{
    store_msg sm;
    for (;;) {
        store_err se = b->st->take_hashed(b->store, d->name, d->link.len, d->link.hash, &sm);
        if (se == STORE_E_AGAIN) {
            dest__touch(b, d);
            commit__dirty(b);
            return;
        }
        if (se != STORE_OK)
            break;
        size_t bytes = sm.headers_len + sm.body_len;
        if (b->st->ack(b->store, sm.id) == STORE_OK)
            commit__dirty(b);
        if (b->store_counted)
            broker__mem_sub(b, bytes);
        if (tempq__is_reply(d->name, d->link.len))
            b->stats.temp_dropped++;
    }
    uint64_t count = 0, bytes = 0;
    b->st->queue_size(b->store, d->name, d->link.len, d->link.hash, &count, &bytes);
    if (count)
        return; /* pending or taken: their commit or return dispatches d again */
    d->purge = 0;
    d->pins--; /* route__tick releases d after this dispatch */
}

typedef struct leftovers {
    char **names;
    size_t n, cap;
    int nomem;
} leftovers;

/* A queue of the store: kept when it is a reply queue. */
static void collect(void *arg, const char *name, size_t len, uint64_t hash)
{
    leftovers *l = arg;
    (void)hash;
    if (l->nomem || len < TEMPQ_REPLY_LEN || memcmp(name, TEMPQ_REPLY, TEMPQ_REPLY_LEN) != 0)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **names = realloc(l->names, cap * sizeof *names);
        if (!names) {
            l->nomem = 1;
            return;
        }
        l->names = names;
        l->cap = cap;
    }
    char *s = malloc(len + 1);
    if (!s) {
        l->nomem = 1;
        return;
    }
    memcpy(s, name, len);
    s[len] = '\0';
    l->names[l->n++] = s;
}

void tempq__start(broker *b)
{
    /* The name's nonce: different at every start (time, clock, the broker's address). */
    uint64_t x = uv_hrtime() ^ ((uint64_t)time(NULL) << 24) ^ (uint64_t)(uintptr_t)b;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    b->route.temp_nonce = x;
    leftovers l = { NULL, 0, 0, 0 };
    b->st->queues(b->store, collect, &l);
    for (size_t i = 0; i < l.n; i++) {
        purge(b, l.names[i], strlen(l.names[i]));
        free(l.names[i]);
    }
    if (l.n)
        broker__log(b, BROKER_LOG_INFO, BROKER_EV_STORE, 0,
                    "%zu temporary queues of an earlier run are being emptied", l.n);
    free(l.names);
}

void tempq__free(broker *b)
{
    store__queues_destroy(&b->route.temps, offsetof(tempq, link));
}
