/* acl.c: permissions (broker.h's broker_acl): grants of read, write, create and admin to
 * logins, groups and everyone on destination patterns, and what a login may do on a
 * destination. Only grants exist: what no rule grants is refused.
 *
 * An ACL is immutable once installed (broker_set_acl); sessions ask it on the first use of
 * a destination and cache the answer with the ACL's generation (route_state.acl_gen), so
 * its rules are walked once per destination and connection, never per message.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

enum { WHO_LOGIN, WHO_GROUP, WHO_ALL };

typedef struct acl_rule {
    int kind;
    char *who; /* the login or the group (without '@'); NULL for everyone */
    unsigned perms;
    char *pattern;
    size_t plen;
} acl_rule;

typedef struct acl_group {
    char *name;
    char **members;
    size_t n, cap;
} acl_group;

struct broker_acl {
    acl_rule *rules;
    size_t nrules, rcap;
    acl_group *groups;
    size_t ngroups, gcap;
};

/* Make room for one more element of size sz in *arr (n used, *cap allocated). */
static int grow(void *arr, size_t n, size_t *cap, size_t sz)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 4;
    void *p = realloc(*(void **)arr, ncap * sz);
    if (!p)
        return -1;
    *(void **)arr = p;
    *cap = ncap;
    return 0;
}

broker_err broker_acl_create(broker_acl **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? BROKER_OK : BROKER_E_NOMEM;
}

void broker_acl_free(broker_acl *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->nrules; i++) {
        free(a->rules[i].who);
        free(a->rules[i].pattern);
    }
    for (size_t i = 0; i < a->ngroups; i++) {
        for (size_t j = 0; j < a->groups[i].n; j++)
            free(a->groups[i].members[j]);
        free(a->groups[i].members);
        free(a->groups[i].name);
    }
    free(a->rules);
    free(a->groups);
    free(a);
}

static acl_group *find_group(const broker_acl *a, const char *name)
{
    for (size_t i = 0; i < a->ngroups; i++)
        if (strcmp(a->groups[i].name, name) == 0)
            return &a->groups[i];
    return NULL;
}

static int is_member(const acl_group *g, const char *login)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->members[i], login) == 0)
            return 1;
    return 0;
}

broker_err broker_acl_add_member(broker_acl *a, const char *group, const char *login)
{
    if (!a || !group || !login || !group[0] || !login[0] || group[0] == '@')
        return BROKER_E_INVALID;
    acl_group *g = find_group(a, group);
    if (!g) {
        if (grow(&a->groups, a->ngroups, &a->gcap, sizeof *a->groups) != 0)
            return BROKER_E_NOMEM;
        char *name = strdup(group);
        if (!name)
            return BROKER_E_NOMEM;
        g = &a->groups[a->ngroups++];
        *g = (acl_group){ .name = name };
    }
    if (is_member(g, login))
        return BROKER_OK;
    if (grow(&g->members, g->n, &g->cap, sizeof *g->members) != 0)
        return BROKER_E_NOMEM;
    if (!(g->members[g->n] = strdup(login)))
        return BROKER_E_NOMEM;
    g->n++;
    return BROKER_OK;
}

broker_err broker_acl_grant(broker_acl *a, const char *who, unsigned perms,
                            const char *pattern)
{
    const unsigned all = BROKER_PERM_READ | BROKER_PERM_WRITE | BROKER_PERM_CREATE |
                         BROKER_PERM_ADMIN;
    if (!a || !who || !pattern || !who[0] || !pattern[0] || !perms || (perms & ~all))
        return BROKER_E_INVALID;
    size_t plen = strlen(pattern);
    if (wild__check(pattern, plen))
        return BROKER_E_INVALID;
    acl_rule r = { .kind = WHO_LOGIN, .perms = perms, .plen = plen };
    if (strcmp(who, "*") == 0)
        r.kind = WHO_ALL;
    else if (who[0] == '@')
        r.kind = WHO_GROUP;
    if (r.kind == WHO_GROUP && !who[1])
        return BROKER_E_INVALID;
    if (grow(&a->rules, a->nrules, &a->rcap, sizeof *a->rules) != 0)
        return BROKER_E_NOMEM;
    r.pattern = strdup(pattern);
    r.who = r.kind == WHO_ALL ? NULL : strdup(who + (r.kind == WHO_GROUP));
    if (!r.pattern || (r.kind != WHO_ALL && !r.who)) {
        free(r.pattern);
        free(r.who);
        return BROKER_E_NOMEM;
    }
    a->rules[a->nrules++] = r;
    return BROKER_OK;
}

static int applies(const broker_acl *a, const acl_rule *r, const char *login)
{
    if (r->kind == WHO_ALL)
        return 1;
    if (!login)
        return 0;
    if (r->kind == WHO_LOGIN)
        return strcmp(r->who, login) == 0;
    const acl_group *g = find_group(a, r->who);
    return g && is_member(g, login);
}

unsigned acl__perms(const broker_acl *a, const char *login, const char *dest, size_t len)
{
    unsigned perms = 0;
    for (size_t i = 0; i < a->nrules; i++) {
        const acl_rule *r = &a->rules[i];
        if ((perms | r->perms) != perms && applies(a, r, login) &&
            wild__covers(r->pattern, r->plen, dest, len))
            perms |= r->perms;
    }
    return perms;
}

int acl__grants_any(const broker_acl *a, const char *login, unsigned perm)
{
    for (size_t i = 0; i < a->nrules; i++)
        if ((a->rules[i].perms & perm) && applies(a, &a->rules[i], login))
            return 1;
    return 0;
}

unsigned broker_acl_perms(const broker_acl *a, const char *login, const char *dest)
{
    if (!a || !dest)
        return 0;
    return acl__perms(a, login, dest, strlen(dest));
}

const char *broker_perm_name(broker_perm p)
{
    switch (p) {
    case BROKER_PERM_READ: return "read";
    case BROKER_PERM_WRITE: return "write";
    case BROKER_PERM_CREATE: return "create";
    case BROKER_PERM_ADMIN: return "admin";
    }
    return NULL;
}

int acl__exists(broker *b, const char *name, size_t len)
{
    if (dest__find(b, name, len, store_hash_name(name, len)))
        return 1;
    return !dest__is_topic(name, len) && b->st->depth(b->store, name, len) > 0;
}

void acl__install(broker *b, broker_acl *acl)
{
    broker_acl_free(b->route.acl);
    b->route.acl = acl;
    b->route.acl_gen++;
}
