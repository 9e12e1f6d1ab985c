/* config_admin.c: the management API's config keys (admin_listen, admin_tls, admin_open,
 * metrics_max_destinations), kept apart from config.c's table so they read as one group,
 * and the yes/no parser every boolean key shares.
 *
 * They work like every other key: in [stompd], with --set, listed by --help.
 */
#include "daemon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name, *def, *help;
} admin_keys[] = {
    { "admin_listen", "",
      "management API, metrics and console: HOST:PORT (0 picks a free port; empty: off)" },
    { "admin_tls", "no",
      "serve the management listener over HTTPS with tls_cert and tls_key" },
    { "admin_open", "no",
      "without an auth_file, let loopback peers use the management API without a login" },
    { "metrics_max_destinations", "1000",
      "/metrics shows series of at most this many destinations" },
};

int config__parse_bool(const char *v, int *out)
{
    static const char *const yes[] = { "yes", "true", "on", "1" };
    static const char *const no[] = { "no", "false", "off", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

int config__admin_key(const char *name)
{
    for (size_t i = 0; i < sizeof admin_keys / sizeof admin_keys[0]; i++)
        if (strcmp(name, admin_keys[i].name) == 0)
            return 1;
    return 0;
}

int config__admin_set(daemon_config *cfg, const char *name, const char *value, char *err,
                      size_t errlen)
{
    if (strcmp(name, "admin_listen") == 0) {
        config_listen l = { "", 0 };
        /* A port is required: the default STOMP port would be the wrong one. */
        const char *colon = strrchr(value, ':');
        int has_port = colon && (value[0] == '[' ? colon > strchr(value, ']')
                                                 : colon == strchr(value, ':'));
        if (*value && (!has_port || config__parse_listen(value, &l, 0) != 0)) {
            snprintf(err, errlen, "%s: '%s' is not HOST:PORT or [IPV6]:PORT (empty: off)",
                     name, value);
            return -1;
        }
        cfg->admin_listen = l;
        return 0;
    }
    if (strcmp(name, "admin_tls") == 0) {
        if (config__parse_bool(value, &cfg->admin_tls) != 0) {
            snprintf(err, errlen, "%s: '%s' is not yes or no", name, value);
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "admin_open") == 0) {
        if (config__parse_bool(value, &cfg->opts.admin_open) != 0) {
            snprintf(err, errlen, "%s: '%s' is not yes or no", name, value);
            return -1;
        }
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long n = strtoull(value, &end, 10);
    if (value[0] < '0' || value[0] > '9' || *end || errno || n > 1000000000) {
        snprintf(err, errlen, "%s: '%s' is not a whole number from 0 to 1000000000", name,
                 value);
        return -1;
    }
    cfg->opts.metrics_max_destinations = (size_t)n;
    return 0;
}

void config__admin_print(FILE *f)
{
    for (size_t i = 0; i < sizeof admin_keys / sizeof admin_keys[0]; i++)
        fprintf(f, "  %-25s %-16s %s\n", admin_keys[i].name,
                admin_keys[i].def[0] ? admin_keys[i].def : "\"\"", admin_keys[i].help);
}
