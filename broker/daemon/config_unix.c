/* config_unix.c: unix-domain socket listeners: `listen = unix:/PATH` (beside or instead of
 * TCP addresses; the first listen of the file or the command line replaces the default
 * address, whichever kind it is), and the keys for their files: unix_mode (permissions)
 * and unix_owner (USER[:GROUP]).
 *
 * Who may connect to a unix socket is who may write its file, so its mode and owner are
 * the access control: the default 0660 leaves it to the owner and its group.
 */
#include "daemon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

static const struct {
    const char *name, *def, *help;
} unix_keys[] = {
    { "unix_mode", "0660", "permissions of unix: listen sockets (octal)" },
    { "unix_owner", "",
      "USER[:GROUP] of unix: listen sockets (empty: user/group, else the starting user)" },
};

#define NKEYS (sizeof unix_keys / sizeof unix_keys[0])

void config__unix_init(daemon_config *cfg)
{
    cfg->nunix = 0;
    cfg->unix_mode = 0660;
    cfg->unix_owner = NULL;
}

void config__unix_free(daemon_config *cfg)
{
    for (size_t i = 0; i < cfg->nunix; i++)
        free(cfg->unix_listen[i]);
    free(cfg->unix_owner);
    cfg->nunix = 0;
    cfg->unix_owner = NULL;
}

int config__unix_listen(daemon_config *cfg, const char *path, int *listen_given, char *err,
                        size_t errlen)
{
    struct sockaddr_un sa;
    if (path[0] != '/' || strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "listen: 'unix:%s' is not unix:/ABSOLUTE/PATH (at most %zu "
                 "bytes)", path, sizeof sa.sun_path - 1);
        return -1;
    }
    if (listen_given && !*listen_given) {
        config__unix_free_listen(cfg);
        cfg->nlisten = 0;
        *listen_given = 1;
    }
    if (cfg->nunix >= CONFIG_MAX_LISTEN) {
        snprintf(err, errlen, "listen: at most %d unix: addresses", CONFIG_MAX_LISTEN);
        return -1;
    }
    char *copy = strdup(path);
    if (!copy) {
        snprintf(err, errlen, "listen: out of memory");
        return -1;
    }
    cfg->unix_listen[cfg->nunix++] = copy;
    return 0;
}

void config__unix_free_listen(daemon_config *cfg)
{
    for (size_t i = 0; i < cfg->nunix; i++)
        free(cfg->unix_listen[i]);
    cfg->nunix = 0;
}

int config__unix_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(name, unix_keys[i].name) == 0)
            return 1;
    return 0;
}

int config__unix_set(daemon_config *cfg, const char *name, const char *value, char *err,
                     size_t errlen)
{
    if (strcmp(name, "unix_mode") == 0) {
        char *end;
        errno = 0;
        unsigned long m = strtoul(value, &end, 8);
        if (!*value || *end || errno || m > 0777) {
            snprintf(err, errlen, "%s: '%s' is not an octal mode (e.g. 0660)", name, value);
            return -1;
        }
        cfg->unix_mode = (mode_t)m;
        return 0;
    }
    const char *colon = strchr(value, ':');
    if (*value && (colon == value || (colon && !colon[1]) || strchr(value, ' '))) {
        snprintf(err, errlen, "%s: '%s' is not USER or USER:GROUP", name, value);
        return -1;
    }
    if (config__set_str(&cfg->unix_owner, value) != 0) {
        snprintf(err, errlen, "%s: out of memory", name);
        return -1;
    }
    return 0;
}

int config__unix_owner(const daemon_config *cfg, uid_t *uid, gid_t *gid, char *err,
                       size_t errlen)
{
    *uid = (uid_t)-1;
    *gid = (gid_t)-1;
    const char *owner = cfg->unix_owner;
    if (!owner)
        return daemonize__lookup_ids(cfg->user, cfg->group, uid, gid, err, errlen);
    char user[256];
    const char *colon = strchr(owner, ':');
    size_t n = colon ? (size_t)(colon - owner) : strlen(owner);
    if (n >= sizeof user) {
        snprintf(err, errlen, "unix_owner: '%s' is too long", owner);
        return -1;
    }
    memcpy(user, owner, n);
    user[n] = '\0';
    if (daemonize__lookup_ids(user, colon ? colon + 1 : NULL, uid, gid, err, errlen) != 0) {
        char why[DAEMON_ERRLEN];
        snprintf(why, sizeof why, "unix_owner: %s", err);
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    return 0;
}

void config__unix_print(FILE *f)
{
    for (size_t i = 0; i < NKEYS; i++)
        fprintf(f, "  %-25s %-16s %s\n", unix_keys[i].name,
                unix_keys[i].def[0] ? unix_keys[i].def : "\"\"", unix_keys[i].help);
}
