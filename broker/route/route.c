/* route.c: the route layer's entry points: sending (a topic fans out now, a queue goes to
 * the store), the dispatch step of the tick, and freeing at the end.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A topic message expired before it was sent is not delivered (it is counted). */
static int expired(broker *b, const msg_attrs *a)
{
    if (!a->expires || a->expires > broker__now_ms(b))
        return 0;
    b->stats.expired++;
    return 1;
}

broker_err route__send(broker *b, bmsg *m, int *stored)
{
    uint64_t hash = store_hash_name(m->dest, m->dest_len);
    if (dest__is_topic(m->dest, m->dest_len)) {
        b->stats.messages_in++;
        *stored = 0;
        if (!expired(b, &m->attrs))
            topic__share(b, m->dest, m->dest_len, m->hdrs, m->hdrs_len, m->body, m->body_len,
                         m->attrs.expires);
        dest_t *d = dest__find(b, m->dest, m->dest_len, hash);
        if (d)
            d->n_in++;
        if (m->attrs.expires && m->attrs.expires <= broker__now_ms(b))
            return BROKER_OK; /* counted above */
        if (b->route.ndurable) {
            broker_err rc = durable__publish(b, m->dest, m->dest_len, m->hdrs, m->hdrs_len,
                                             m->body, m->body_len, &m->attrs, m->origin, stored);
            if (rc != BROKER_OK)
                return rc;
        }
        if (b->route.wild_topics.n)
            return topic__publish_wild(b, d, m->dest, m->dest_len, NULL, m, &m->attrs, NULL);
        if (d)
            topic__fan_out(b, d, m);
        return BROKER_OK;
    }
    *stored = 1;
    char why[256];
    return route__send_queue(b, m, NULL, why, sizeof why);
}

broker_err route__send_queue(broker *b, bmsg *m, uint64_t *id, char *why, size_t cap)
{
    uint64_t hash = store_hash_name(m->dest, m->dest_len);
    switch (queue__room(b, m->dest, m->dest_len, NULL, m->hdrs_len + m->body_len, why, cap)) {
    case QUEUE_WAIT:
        snprintf(why, cap, "queue %.*s is full: a transaction does not wait for room",
                 (int)(m->dest_len > 100 ? 100 : m->dest_len), m->dest);
        return BROKER_E_LIMIT;
    case QUEUE_FULL:
        return BROKER_E_LIMIT;
    default:
        break;
    }
    b->stats.messages_in++;
    if (tempq__is_reply(m->dest, m->dest_len) && tempq__drop(b, m->dest, m->dest_len, hash)) {
        if (id)
            *id = 0; /* nothing stored: nothing to take back */
        return BROKER_OK;
    }
    return queue__enqueue(b, m->dest, m->dest_len, hash, m->hdrs, m->hdrs_len, m->body,
                          m->body_len, &m->attrs, id);
}

int route__unsend(broker *b, const bmsg *m, uint64_t id)
{
    if (!id)
        return 0; /* dropped (tempq__drop): never stored */
    if (b->st->cancel(b->store, id) != STORE_OK)
        return -1;
    b->stats.messages_in--;
    if (b->store_counted)
        broker__mem_sub(b, m->hdrs_len + m->body_len);
    return 0;
}

/* A topic SEND while wildcard topic subscriptions exist: the message is built only if
 * someone gets it. */
static broker_err topic_wild(broker *b, dest_t *d, const stomp_frame *f, const char *dname,
                             size_t dlen, const msg_attrs *a, const endpoint *from)
{
    b->stats.messages_in++;
    if (expired(b, a))
        return BROKER_OK;
    return topic__publish_wild(b, d, dname, dlen, f, NULL, a, from);
}

/* A topic SEND while durable subscriptions exist: into the backlogs that want it. */
static broker_err durable_frame(broker *b, const stomp_frame *f, const char *dname,
                                size_t dlen, const msg_attrs *a, const endpoint *from,
                                int *stored)
{
    if (a->expires && a->expires <= broker__now_ms(b))
        return BROKER_OK; /* counted by the live path */
    route_state *r = &b->route;
    size_t hlen;
    if (msg__header_block(f, &r->scratch, &r->scratch_cap, &hlen) != 0)
        return BROKER_E_NOMEM;
    return durable__publish(b, dname, dlen, r->scratch, hlen, f->body, f->body_len, a, from,
                            stored);
}

broker_err route__send_frame(broker *b, const stomp_frame *f, const char *dname, size_t dlen,
                             const msg_attrs *a, const endpoint *from, int *stored)
{
    /* The name is hashed once, for the broker's table and the store's. */
    uint64_t hash = store_hash_name(dname, dlen);
    if (dest__is_topic(dname, dlen)) {
        *stored = 0;
        if (b->route.ndurable) {
            broker_err rc = durable_frame(b, f, dname, dlen, a, from, stored);
            if (rc != BROKER_OK)
                return rc;
        }
        if (!a->expires || a->expires > broker__now_ms(b))
            topic__share_frame(b, f, dname, dlen, a);
        dest_t *d = dest__find(b, dname, dlen, hash);
        if (b->route.wild_topics.n)
            return topic_wild(b, d, f, dname, dlen, a, from);
        if (!d || expired(b, a)) {
            b->stats.messages_in++;
            return BROKER_OK; /* nobody listening: a topic stores nothing */
        }
        bmsg *m = bmsg__from_frame(f, dname, dlen);
        if (!m)
            return BROKER_E_NOMEM;
        if (d->nfiltered) { /* what filters read */
            m->attrs = *a;
            m->origin = from;
        }
        b->stats.messages_in++;
        d->n_in++;
        topic__fan_out(b, d, m);
        bmsg__unref(m);
        return BROKER_OK;
    }
    /* Queue SENDs go straight to the store: no message object in between. */
    route_state *r = &b->route;
    if (tempq__is_reply(dname, dlen) && tempq__drop(b, dname, dlen, hash)) {
        *stored = 0;
        b->stats.messages_in++;
        return BROKER_OK;
    }
    size_t hlen;
    if (msg__header_block(f, &r->scratch, &r->scratch_cap, &hlen) != 0)
        return BROKER_E_NOMEM;
    *stored = 1;
    b->stats.messages_in++;
    return queue__enqueue(b, dname, dlen, hash, r->scratch, hlen, f->body, f->body_len, a,
                          NULL);
}

void route__tick(broker *b)
{
    while (b->route.dispatch_list) {
        dest_t *d = b->route.dispatch_list;
        b->route.dispatch_list = d->next_dispatch;
        d->on_dispatch = 0;
        queue__dispatch(b, d);
        dest__release(b, d);
    }
}

int route__busy(const broker *b)
{
    return b->route.dispatch_list != NULL;
}

void route__free(broker *b)
{
    route_state *r = &b->route;
    dest__free_all(b);
    sub__free_cache(b);
    free(r->inflight);
    free(r->scratch);
    queue__timer_free(b);
    tempq__free(b);
    durable__free(b);
    free(r->rules);
    r->rules = NULL;
    r->nrules = 0;
    r->inflight = NULL;
    r->scratch = NULL;
}

/* What some policy asks for: the common path skips the policy lookup when none does. */
static void note_policy(route_state *r, const broker_policy *p)
{
    r->limits |= p->max_length || p->max_bytes;
    r->ttls |= p->ttl || p->max_ttl;
}

broker_err route__copy_policies(const broker_options *o, broker_policy_rule **out)
{
    *out = NULL;
    if (policy__check(&o->policy) != BROKER_OK)
        return BROKER_E_INVALID;
    if (!o->npolicies)
        return BROKER_OK;
    if (!o->policies || o->npolicies > SIZE_MAX / sizeof **out)
        return BROKER_E_INVALID;
    for (size_t i = 0; i < o->npolicies; i++)
        if (!o->policies[i].pattern || policy__check(&o->policies[i].policy))
            return BROKER_E_INVALID;
    *out = malloc(o->npolicies * sizeof **out);
    if (!*out)
        return BROKER_E_NOMEM;
    memcpy(*out, o->policies, o->npolicies * sizeof **out);
    return BROKER_OK;
}

/* The flags only ever go on: a queue that had a limit may still have producers waiting
 * for room, and they are woken on the path the flag guards. */
void route__set_policies(broker *b, broker_policy_rule *rules, size_t n)
{
    route_state *r = &b->route;
    free(r->rules);
    r->rules = rules;
    r->nrules = rules ? n : 0;
    note_policy(r, &b->o.policy);
    for (size_t i = 0; i < r->nrules; i++)
        note_policy(r, &r->rules[i].policy);
}

broker_err route__init(broker *b)
{
    route_state *r = &b->route;
    r->epoch = 1;
    broker_policy_rule *rules;
    broker_err rc = route__copy_policies(&b->o, &rules);
    if (rc != BROKER_OK)
        return rc;
    route__set_policies(b, rules, b->o.npolicies);
    queue__timer_init(b);
    uint64_t next = b->st->next_expiry(b->store); /* messages kept from an earlier run */
    if (next)
        queue__expiry_at(b, next);
    return BROKER_OK;
}
