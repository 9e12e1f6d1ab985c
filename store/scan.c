/* scan.c: take_match's walk over a queue's order (see scan.h). */
#include "scan.h"

#include <string.h>

/* (r's ord, r's id) > (ord, id) */
static int rec_after(const store__rec *r, int64_t ord, uint64_t id)
{
    return r->ord > ord || (r->ord == ord && r->link.id > id);
}

static store__rec *list_next(const store__rec *r)
{
    return r->on.next ? store__container_of(r->on.next, store__rec, on) : NULL;
}

/* The first record of band p's list after (ord, id): from the hint when it is still a
 * record of this band's list at or before the place, else from the list's head. */
static store__rec *list_after(const store__scan_env *env, const store_scan *sc, int p,
                              int64_t ord, uint64_t id)
{
    store__rec *h = sc->hint[p] ? env->find(env->arg, sc->hint[p]) : NULL;
    store__rec *r;
    if (h && h->q == env->q && h->state == STORE__READY && h->prio == p &&
        !rec_after(h, ord, id))
        r = list_next(h);
    else
        r = store__entry(env->o->band[p].list.head, store__rec, on);
    while (r && !rec_after(r, ord, id))
        r = list_next(r);
    return r;
}

/* The least record of band p's heap after (ord, id), or NULL. The heap is small (records
 * that joined between others): each is looked at. */
static store__rec *heap_after(const store__band *b, int64_t ord, uint64_t id)
{
    store__rec *best = NULL;
    for (size_t i = 0; i < b->mid.n; i++) {
        store__rec *m = b->mid.e[i].p;
        if (rec_after(m, ord, id) && (!best || rec_after(best, m->ord, m->link.id)))
            best = m;
    }
    return best;
}

/* Walk band p from sc's place: the first record match accepts, or NULL. */
static store_err scan_band(const store__scan_env *env, store_scan *sc, int p,
                           store_match_fn match, void *marg, store__rec **out)
{
    uint64_t bit = 1ull << p;
    int64_t ord = sc->begun & bit ? sc->ord[p] : INT64_MIN;
    uint64_t id = sc->begun & bit ? sc->id[p] : 0;
    store__rec *r = list_after(env, sc, p, ord, id);
    const store__band *b = &env->o->band[p];
    for (;;) {
        if (!r && env->more) {
            int more = 0;
            store_err err = env->more(env->arg, p, &more);
            if (err != STORE_OK)
                return err;
            if (more)
                r = list_after(env, sc, p, ord, id);
        }
        store__rec *m = b->mid.n ? heap_after(b, ord, id) : NULL;
        store__rec *c = m && (!r || rec_after(r, m->ord, m->link.id)) ? m : r;
        if (!c)
            return STORE_OK;
        store_msg view;
        env->fill(&view, c);
        if (match(marg, &view)) {
            *out = c;
            return STORE_OK;
        }
        ord = c->ord;
        id = c->link.id;
        sc->ord[p] = ord;
        sc->id[p] = id;
        sc->begun |= bit;
        if (c == r) {
            sc->hint[p] = c->link.id;
            r = list_next(c);
        }
    }
}

store_err store__scan(const store__scan_env *env, store_scan *sc, store_match_fn match,
                      void *marg, store__rec **out)
{
    *out = NULL;
    if (sc->gen != env->gen) {
        memset(sc, 0, sizeof *sc);
        sc->gen = env->gen;
    }
    for (unsigned m = env->bands; m;) {
        int p = 31 - __builtin_clz(m);
        m &= ~(1u << p);
        store_err err = scan_band(env, sc, p, match, marg, out);
        if (err != STORE_OK || *out)
            return err;
    }
    return STORE_OK;
}

void store__scan_took(store_scan *sc, const store__rec *r)
{
    int p = r->prio;
    sc->ord[p] = r->ord;
    sc->id[p] = r->link.id;
    sc->begun |= 1ull << p;
    /* Its predecessor on the list was passed, and stays when r leaves. */
    if (r->state == STORE__READY && r->on.prev)
        sc->hint[p] = store__container_of(r->on.prev, store__rec, on)->link.id;
}
