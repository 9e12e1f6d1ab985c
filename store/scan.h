/* scan.h: take_match's walk over a queue's order (order.h), shared by both backends: band
 * by band from the highest, the records after a consumer's place (store_scan), the band's
 * list and its heap of records that joined between others merged by (ord, id), until the
 * consumer's match accepts one.
 *
 * A place is (ord, id) per band plus a hint: the id of a record on the band's list at or
 * before the place, to go on from in one step. Every record the walk passes is one the
 * match rejected. When the hint is gone (another consumer took it) the place is found
 * again by walking the band's list from its head comparing places: no match is asked
 * again. A backend gives a generation that changes whenever a record may have joined
 * before a place (a requeue, a waiting record becoming due): the scan then starts over.
 */
#ifndef STORE_SCAN_H
#define STORE_SCAN_H

#include "order.h"
#include "store.h"

typedef struct store__scan_env {
    const store__order *o;
    const void *q;     /* the queue the records belong to (store__rec.q) */
    unsigned bands;    /* the bands to look in (bit p: band p may hold records) */
    uint64_t gen;      /* the queue's order generation */
    /* The record of id, or NULL. */
    store__rec *(*find)(void *arg, uint64_t id);
    /* Bring more of band p's records onto its list (a persistent backend's file); *more:
     * 1 when some came. NULL: everything is in memory. */
    store_err (*more)(void *arg, int p, int *more);
    /* Fill a store_msg from r for the match. */
    void (*fill)(store_msg *out, const store__rec *r);
    void *arg;
} store__scan_env;

/* The first record after sc's places that match accepts (*out), or *out NULL when there is
 * none; sc's places move past every record rejected. An error of env->more stops the walk
 * (*out NULL). */
store_err store__scan(const store__scan_env *env, store_scan *sc, store_match_fn match,
                      void *marg, store__rec **out) STORE_WUR;
/* r, found by store__scan, is being handed out: sc's place in its band moves past it. Call
 * before r leaves its band. */
void store__scan_took(store_scan *sc, const store__rec *r);

#endif
