/* acl_file.c: the [groups] and [acl] sections of the auth file, parsed into a broker_acl
 * (broker.h) that main.c installs with broker_set_acl:
 *
 *   [groups]
 *   GROUP = login, login, ...
 *   [acl]
 *   WHO = PERM PATTERN, PERM PATTERN, ...     (WHO: a login, @GROUP or *;
 *                                              PERM: read, write, create or admin)
 *
 * auth.c reads the file and hands these sections' lines here. A file without an [acl]
 * section has no ACL (every login may do everything); with one, even empty, what it does
 * not grant is refused. A group named in [acl] must be given in [groups] (in either order);
 * a login need not have a hash line (certificate logins have none).
 */
#include "daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    unsigned bit;
} perms[] = {
    { "read", BROKER_PERM_READ },
    { "write", BROKER_PERM_WRITE },
    { "create", BROKER_PERM_CREATE },
    { "admin", BROKER_PERM_ADMIN },
};

int acl_file__is_acl_header(const char *line)
{
    line += strspn(line, " \t");
    if (strncmp(line, "[acl]", 5) != 0)
        return 0;
    line += 5;
    return line[strspn(line, " \t\r\n")] == '\0';
}

static int need_acl(acl_loader *al, char *why, size_t len)
{
    if (al->acl || broker_acl_create(&al->acl) == BROKER_OK)
        return 0;
    snprintf(why, len, "out of memory");
    return -1;
}

/* The next comma-separated item of *s, trimmed, NUL-terminated in place; NULL at the end. */
static char *next_item(char **s)
{
    if (!*s)
        return NULL;
    char *item = *s, *comma = strchr(item, ',');
    *s = comma ? comma + 1 : NULL;
    if (comma)
        *comma = '\0';
    item += strspn(item, " \t");
    size_t n = strlen(item);
    while (n && (item[n - 1] == ' ' || item[n - 1] == '\t'))
        item[--n] = '\0';
    return item;
}

static int name_ok(const char *s)
{
    return s[0] && !strpbrk(s, " \t,@*");
}

static int note_group(acl_loader *al, const char *group, unsigned line, int defined)
{
    if (al->nrefs == al->refcap) {
        size_t ncap = al->refcap ? al->refcap * 2 : 8;
        acl_ref *n = realloc(al->refs, ncap * sizeof *n);
        if (!n)
            return -1;
        al->refs = n;
        al->refcap = ncap;
    }
    if (!(al->refs[al->nrefs].group = strdup(group)))
        return -1;
    al->refs[al->nrefs].line = line;
    al->refs[al->nrefs++].defined = defined;
    return 0;
}

int acl_file__group(acl_loader *al, const char *group, const char *members, char *why,
                    size_t len)
{
    if (!name_ok(group)) {
        snprintf(why, len, "bad group name '%s' (no spaces, commas, @ or *)", group);
        return -1;
    }
    if (need_acl(al, why, len) != 0)
        return -1;
    char *copy = strdup(members), *rest = copy, *login;
    int rc = copy && note_group(al, group, 0, 1) == 0 ? 0 : -1;
    if (rc != 0)
        snprintf(why, len, "out of memory");
    while (rc == 0 && (login = next_item(&rest))) {
        if (!name_ok(login)) {
            snprintf(why, len, "group %s: bad login '%s'", group, login);
            rc = -1;
        } else if (broker_acl_add_member(al->acl, group, login) != BROKER_OK) {
            snprintf(why, len, "out of memory");
            rc = -1;
        }
    }
    free(copy);
    return rc;
}

/* "PERM PATTERN": its bit and pattern (in place), or -1 with why set. */
static int parse_grant(char *item, unsigned *bit, char **pattern, char *why, size_t len)
{
    char *sp = item + strcspn(item, " \t");
    char *pat = sp + strspn(sp, " \t");
    *sp = '\0';
    *bit = 0;
    if (!item[0]) {
        snprintf(why, len, "expected PERM PATTERN, PERM PATTERN, ...");
        return -1;
    }
    for (size_t i = 0; i < sizeof perms / sizeof perms[0]; i++)
        if (strcmp(item, perms[i].name) == 0)
            *bit = perms[i].bit;
    if (!*bit) {
        snprintf(why, len, "unknown permission '%s' (read, write, create or admin)", item);
        return -1;
    }
    if (!*pat || pat[strcspn(pat, " \t")]) {
        snprintf(why, len, "%s: expected one destination pattern, found '%s'", item, pat);
        return -1;
    }
    *pattern = pat;
    return 0;
}

int acl_file__grants(acl_loader *al, const char *who, const char *grants, unsigned line,
                     char *why, size_t len)
{
    if (strcmp(who, "*") != 0 && !name_ok(who + (who[0] == '@'))) {
        snprintf(why, len, "bad login or group '%s' (a login, @GROUP or *)", who);
        return -1;
    }
    if (need_acl(al, why, len) != 0)
        return -1;
    if (who[0] == '@' && note_group(al, who + 1, line, 0) != 0) {
        snprintf(why, len, "out of memory");
        return -1;
    }
    char *copy = strdup(grants), *rest = copy, *item, *pattern;
    int rc = copy ? 0 : -1;
    unsigned bit;
    while (rc == 0 && (item = next_item(&rest))) {
        rc = parse_grant(item, &bit, &pattern, why, len);
        if (rc == 0 && broker_acl_grant(al->acl, who, bit, pattern) != BROKER_OK) {
            snprintf(why, len, "bad destination pattern '%s' (> or # only as the last "
                               "element)", pattern);
            rc = -1;
        }
    }
    if (!copy)
        snprintf(why, len, "out of memory");
    free(copy);
    return rc;
}

static int defined(const acl_loader *al, const char *group)
{
    for (size_t i = 0; i < al->nrefs; i++)
        if (al->refs[i].defined && strcmp(al->refs[i].group, group) == 0)
            return 1;
    return 0;
}

int acl_file__finish(acl_loader *al, int acl_section, unsigned *line, char *why, size_t len)
{
    for (size_t i = 0; acl_section && i < al->nrefs; i++)
        if (!al->refs[i].defined && !defined(al, al->refs[i].group)) {
            *line = al->refs[i].line;
            snprintf(why, len, "unknown group @%s (not in [groups])", al->refs[i].group);
            return -1;
        }
    if (!acl_section) {
        broker_acl_free(al->acl);
        al->acl = NULL;
    } else if (need_acl(al, why, len) != 0) {
        return -1;
    }
    return 0;
}

void acl_file__free(acl_loader *al)
{
    for (size_t i = 0; i < al->nrefs; i++)
        free(al->refs[i].group);
    free(al->refs);
    broker_acl_free(al->acl);
    *al = (acl_loader){ 0 };
}
