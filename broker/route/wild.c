/* wild.c: the trie of wildcard patterns (see wild.h).
 *
 * A node's children are a hash by key (the element with the separator before it; the
 * first element has none), wildcards included under their own keys ("<sep>*", "<sep>>"),
 * so a match looks up at most three children per element of the name: the element itself,
 * '*' and '>'. A node lives while it holds a dest or a child; the dests whose pattern ends
 * there are kept in an array (order does not matter).
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

struct wild_node {
    store__qlink link; /* in the parent's kids; names key[] */
    wild_node *parent;
    store__qhash kids;
    dest_t **dests; /* patterns that end here */
    size_t ndests, cap;
    char key[];
};

static int is_sep(char c)
{
    return c == '.' || c == '/';
}

/* The element at at (the first when first): its end. */
static size_t token_end(const char *name, size_t len, size_t at, int first)
{
    size_t e = first ? at : at + 1;
    while (e < len && !is_sep(name[e]))
        e++;
    return e;
}

/* The wildcard of a token [at, e), or 0: '*', or '>' for '>' and '#'. */
static char token_wild(const char *name, size_t at, size_t e, int first)
{
    size_t el = first ? at : at + 1;
    if (e - el != 1)
        return 0;
    char c = name[el];
    return c == '*' ? '*' : c == '>' || c == '#' ? '>' : 0;
}

int wild__is_pattern(const char *name, size_t len)
{
    if (!memchr(name, '*', len) && !memchr(name, '>', len) && !memchr(name, '#', len))
        return 0; /* the usual name: three fast scans */
    for (size_t at = 0, first = 1; first || at < len; first = 0) {
        size_t e = token_end(name, len, at, (int)first);
        if (token_wild(name, at, e, (int)first))
            return 1;
        at = e;
    }
    return 0;
}

const char *wild__check(const char *name, size_t len)
{
    for (size_t at = 0, first = 1; first || at < len; first = 0) {
        size_t e = token_end(name, len, at, (int)first);
        if (token_wild(name, at, e, (int)first) == '>' && e < len)
            return "the wildcard > (or #) must be the last element";
        at = e;
    }
    return NULL;
}

static wild_node *kid(const wild_node *n, const char *key, size_t len)
{
    return store__entry(store__queues_find(&n->kids, key, len, store_hash_name(key, len)),
                        wild_node, link);
}

static wild_node *node_new(wild_node *parent, const char *key, size_t len)
{
    if (parent && store__queues_reserve(&parent->kids, 1) != STORE_OK)
        return NULL;
    wild_node *n = calloc(1, sizeof *n + len + 1);
    if (!n)
        return NULL;
    memcpy(n->key, key, len);
    n->parent = parent;
    if (parent)
        store__queues_insert(&parent->kids, &n->link, n->key, len, store_hash_name(key, len));
    return n;
}

/* Free n and its ancestors while they hold nothing. */
static void prune(wild_trie *t, wild_node *n)
{
    while (n && !n->ndests && !n->kids.n) {
        wild_node *p = n->parent;
        if (p)
            store__queues_remove(&p->kids, &n->link);
        else
            t->root = NULL;
        free(n->kids.b);
        free(n->dests);
        free(n);
        n = p;
    }
}

/* The key of a token as the trie keeps it: '#' read as '>'. buf has room for 2. */
static const char *token_key(const char *name, size_t at, size_t e, int first, char *buf,
                             size_t *klen)
{
    char w = token_wild(name, at, e, first);
    *klen = e - at;
    if (w != '>')
        return name + at;
    if (!first)
        buf[0] = name[at];
    buf[first ? 0 : 1] = '>';
    return buf;
}

broker_err wild__add(wild_trie *t, dest_t *d)
{
    if (!t->root && !(t->root = node_new(NULL, "", 0)))
        return BROKER_E_NOMEM;
    wild_node *n = t->root;
    const char *name = d->name;
    size_t len = d->link.len;
    for (size_t at = 0, first = 1; first || at < len; first = 0) {
        size_t e = token_end(name, len, at, (int)first), klen;
        char buf[2];
        const char *key = token_key(name, at, e, (int)first, buf, &klen);
        wild_node *k = kid(n, key, klen);
        if (!k && !(k = node_new(n, key, klen))) {
            prune(t, n);
            return BROKER_E_NOMEM;
        }
        n = k;
        at = e;
    }
    if (n->ndests == n->cap) {
        size_t cap = n->cap ? n->cap * 2 : 2;
        dest_t **nd = realloc(n->dests, cap * sizeof *nd);
        if (!nd) {
            prune(t, n);
            return BROKER_E_NOMEM;
        }
        n->dests = nd;
        n->cap = cap;
    }
    n->dests[n->ndests++] = d;
    d->wnode = n;
    t->n++;
    return BROKER_OK;
}

void wild__remove(wild_trie *t, dest_t *d)
{
    wild_node *n = d->wnode;
    if (!n)
        return;
    for (size_t i = 0; i < n->ndests; i++) {
        if (n->dests[i] == d) {
            n->dests[i] = n->dests[--n->ndests];
            break;
        }
    }
    d->wnode = NULL;
    t->n--;
    prune(t, n);
}

typedef struct walk {
    const char *name;
    size_t len;
    void (*fn)(void *arg, dest_t *d);
    void *arg;
} walk;

static void emit(const walk *w, const wild_node *n)
{
    for (size_t i = 0; n && i < n->ndests; i++)
        w->fn(w->arg, n->dests[i]);
}

/* Match the name's elements from at (the first when first) below n. */
static void match_from(const walk *w, const wild_node *n, size_t at, int first)
{
    if (!first && at == w->len) {
        emit(w, n);
        return;
    }
    if (!n->kids.n)
        return;
    size_t e = token_end(w->name, w->len, at, first);
    char wk[2];
    size_t wl = first ? 1 : 2;
    if (!first)
        wk[0] = w->name[at];
    wk[wl - 1] = '>';
    emit(w, kid(n, wk, wl)); /* '>': this element and every one after it */
    const wild_node *k = kid(n, w->name + at, e - at);
    if (k)
        match_from(w, k, e, 0);
    wk[wl - 1] = '*';
    if ((k = kid(n, wk, wl)))
        match_from(w, k, e, 0);
}

void wild__match(const wild_trie *t, const char *name, size_t len,
                 void (*fn)(void *arg, dest_t *d), void *arg)
{
    if (!t->root)
        return;
    walk w = { name, len, fn, arg };
    match_from(&w, t->root, 0, 1);
}

int wild__matches(const char *pattern, size_t plen, const char *name, size_t nlen)
{
    size_t pa = 0, na = 0;
    for (int first = 1;; first = 0) {
        int pend = !first && pa == plen, nend = !first && na == nlen;
        if (pend || nend)
            return pend && nend;
        size_t pe = token_end(pattern, plen, pa, first), ne = token_end(name, nlen, na, first);
        char w = token_wild(pattern, pa, pe, first);
        if (!first && pattern[pa] != name[na])
            return 0; /* another separator */
        if (w == '>')
            return 1;
        if (!w && (pe - pa != ne - na || memcmp(pattern + pa, name + na, pe - pa) != 0))
            return 0;
        pa = pe;
        na = ne;
    }
}

int wild__covers(const char *pattern, size_t plen, const char *p, size_t len)
{
    size_t pa = 0, na = 0;
    for (int first = 1;; first = 0) {
        int pend = !first && pa == plen, nend = !first && na == len;
        if (pend || nend)
            return pend && nend;
        size_t pe = token_end(pattern, plen, pa, first), ne = token_end(p, len, na, first);
        char w = token_wild(pattern, pa, pe, first), pw = token_wild(p, na, ne, first);
        if (!first && pattern[pa] != p[na])
            return 0; /* another separator */
        if (w == '>')
            return 1;
        if (pw == '>')
            return 0; /* p goes on with any tail, the pattern does not */
        if (!w && (pw || pe - pa != ne - na || memcmp(pattern + pa, p + na, pe - pa) != 0))
            return 0;
        pa = pe;
        na = ne;
    }
}

static void free_node(wild_node *n)
{
    for (store__qlink *l = store__queues_first(&n->kids), *next; l; l = next) {
        next = store__queues_next(&n->kids, l);
        free_node(store__container_of(l, wild_node, link));
    }
    free(n->kids.b);
    free(n->dests);
    free(n);
}

void wild__free(wild_trie *t)
{
    if (t->root)
        free_node(t->root);
    t->root = NULL;
    t->n = 0;
}
