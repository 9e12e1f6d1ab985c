/* auth.c: the authentication file: "login = hash" lines (optionally under [auth], CoilMQ's
 * layout), parsed by inih, checked with libsodium (Argon2) or crypt(3) (yescrypt,
 * SHA-512/256-crypt).
 *
 * Only hashes are accepted: a value that is not a known hash format (plain text, as in a
 * CoilMQ auth file) is refused with FILE:LINE, so no passcode ever sits in clear on disk.
 * An unknown login costs the same hash computation as a wrong passcode, so timing does
 * not tell which logins exist.
 *
 * The [groups] and [acl] sections (permissions) are acl_file.c's.
 *
 * Checks run on pool threads (login_pool.c) while the loop thread may load a new table: a
 * table is immutable once loaded except for the decoy hash (made once, under a mutex) and
 * its reference count (loop thread only).
 */
#include "daemon.h"

#include <crypt.h>
#include <errno.h>
#include <ini.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct auth_entry {
    char *login;
    char *hash;
} auth_entry;

struct auth_table {
    auth_entry *e;
    size_t n, cap;
    uv_mutex_t mu; /* guards dummy */
    char *dummy;   /* hash compared against for unknown logins, made on first need */
    unsigned refs;
    broker_acl *acl; /* [acl] (NULL: none, or handed over) */
};

typedef struct auth_loader {
    auth_table *t;
    const char *path;
    FILE *f;
    unsigned line;
    int failed;
    char *err;
    size_t errlen;
    acl_loader acl;  /* [groups] and [acl] */
    int acl_section; /* the file has an [acl] section */
} auth_loader;

int auth__init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

static int is_sodium_hash(const char *h)
{
    return strncmp(h, "$argon2id$", 10) == 0 || strncmp(h, "$argon2i$", 9) == 0;
}

static int is_crypt_hash(const char *h)
{
    static const char *const prefixes[] = { "$y$", "$gy$", "$7$", "$6$", "$5$" };
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(h, prefixes[i], strlen(prefixes[i])) == 0)
            return strlen(h) > strlen(prefixes[i]) + 8;
    return 0;
}

static int verify(const char *hash, const char *passcode)
{
    if (is_sodium_hash(hash))
        return crypto_pwhash_str_verify(hash, passcode, strlen(passcode)) == 0 ? 0 : -1;
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return -1;
    const char *out = crypt_r(passcode, hash, cd);
    int rc = -1;
    if (out && out[0] != '*') {
        size_t n = strlen(hash);
        rc = strlen(out) == n && sodium_memcmp(out, hash, n) == 0 ? 0 : -1;
    }
    sodium_memzero(cd, sizeof *cd);
    free(cd);
    return rc;
}

static void load_fail(auth_loader *ld, const char *msg, const char *login)
{
    if (ld->failed)
        return;
    snprintf(ld->err, ld->errlen, "%s:%u: %s%s%s", ld->path, ld->line, msg,
             login ? " " : "", login ? login : "");
    ld->failed = 1;
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
    auth_loader *ld = user;
    auth_table *t = ld->t;
    char why[200];
    if (strcmp(section, "groups") == 0 || strcmp(section, "acl") == 0) {
        if ((section[0] == 'g' ? acl_file__group(&ld->acl, name, value, why, sizeof why)
                               : acl_file__grants(&ld->acl, name, value, ld->line, why,
                                                  sizeof why)) == 0)
            return 1;
        load_fail(ld, why, NULL);
        return 0;
    }
    if (section[0] && strcmp(section, "auth") != 0) {
        load_fail(ld, "unknown section (only [auth], [groups] and [acl] are allowed)", NULL);
        return 0;
    }
    if (!is_sodium_hash(value) && !is_crypt_hash(value)) {
        load_fail(ld, "not a passcode hash (plain text is refused; make one with "
                      "stompd --hash-passcode) for login", name);
        return 0;
    }
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->e[i].login, name) == 0) {
            load_fail(ld, "given twice: login", name);
            return 0;
        }
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 8;
        auth_entry *ne = realloc(t->e, ncap * sizeof *ne);
        if (!ne) {
            load_fail(ld, "out of memory", NULL);
            return 0;
        }
        t->e = ne;
        t->cap = ncap;
    }
    auth_entry en = { strdup(name), strdup(value) };
    if (!en.login || !en.hash) {
        free(en.login);
        free(en.hash);
        load_fail(ld, "out of memory", NULL);
        return 0;
    }
    t->e[t->n++] = en;
    return 1;
}

/* One whole line per call (exact line numbers; long lines are an error, not two lines). */
static char *read_line(char *str, int num, void *stream)
{
    auth_loader *ld = stream;
    size_t n = 0;
    int ch, too_long = 0;
    while ((ch = getc(ld->f)) != EOF) {
        if ((int)n < num - 2)
            str[n++] = (char)ch;
        else if (ch != '\n' && ch != '\r')
            too_long = 1;
        if (ch == '\n')
            break;
    }
    if (n == 0 && ch == EOF)
        return NULL;
    str[n] = '\0';
    ld->line++;
    if (acl_file__is_acl_header(str))
        ld->acl_section = 1;
    if (too_long)
        load_fail(ld, "line too long", NULL);
    return str;
}

int auth__load(auth_table **out, const char *path, int cert_logins, char *err, size_t errlen)
{
    auth_table *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "%s:0: out of memory", path);
        return -1;
    }
    if (uv_mutex_init(&t->mu) != 0) {
        free(t);
        snprintf(err, errlen, "%s:0: cannot create a mutex", path);
        return -1;
    }
    t->refs = 1;
    auth_loader ld = { .t = t, .path = path, .err = err, .errlen = errlen };
    ld.f = fopen(path, "r");
    if (!ld.f) {
        snprintf(err, errlen, "%s:0: cannot open: %s", path, strerror(errno));
        auth__free(t);
        return -1;
    }
    int rc = ini_parse_stream(read_line, &ld, on_entry, &ld);
    fclose(ld.f);
    if (rc != 0 && !ld.failed) {
        snprintf(err, errlen, "%s:%d: syntax error (expected login = hash)", path, rc);
        ld.failed = 1;
    }
    if (!ld.failed && t->n == 0 && !cert_logins) {
        snprintf(err, errlen, "%s:%u: no logins: nobody could connect", path, ld.line);
        ld.failed = 1;
    }
    char why[200];
    unsigned line = 0;
    if (!ld.failed && acl_file__finish(&ld.acl, ld.acl_section, &line, why, sizeof why)) {
        snprintf(err, errlen, "%s:%u: %s", path, line, why);
        ld.failed = 1;
    }
    if (!ld.failed) {
        t->acl = ld.acl.acl;
        ld.acl.acl = NULL;
    }
    acl_file__free(&ld.acl);
    if (ld.failed) {
        auth__free(t);
        return -1;
    }
    *out = t;
    return 0;
}

auth_table *auth__ref(auth_table *t)
{
    t->refs++;
    return t;
}

void auth__free(auth_table *t)
{
    if (!t || --t->refs > 0)
        return;
    uv_mutex_destroy(&t->mu);
    for (size_t i = 0; i < t->n; i++) {
        free(t->e[i].login);
        free(t->e[i].hash);
    }
    free(t->e);
    free(t->dummy);
    broker_acl_free(t->acl);
    free(t);
}

broker_acl *auth__take_acl(auth_table *t)
{
    broker_acl *a = t->acl;
    t->acl = NULL;
    return a;
}

size_t auth__count(const auth_table *t)
{
    return t->n;
}

int auth__check(auth_table *t, const char *login, const char *passcode)
{
    if (!passcode)
        passcode = "";
    for (size_t i = 0; login && i < t->n; i++)
        if (strcmp(t->e[i].login, login) == 0)
            return verify(t->e[i].hash, passcode);
    /* Unknown login: spend the same time as a wrong passcode would. */
    uv_mutex_lock(&t->mu);
    if (!t->dummy)
        t->dummy = auth__hash_passcode("stompd: no such login");
    const char *dummy = t->dummy;
    uv_mutex_unlock(&t->mu);
    if (dummy)
        (void)verify(dummy, passcode);
    return -1;
}

char *auth__hash_passcode(const char *passcode)
{
    char *out = malloc(crypto_pwhash_STRBYTES);
    if (!out)
        return NULL;
    if (crypto_pwhash_str(out, passcode, strlen(passcode), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        free(out);
        return NULL;
    }
    return out;
}
