/* config_file.c: stompd's config file: INI (parsed by inih), a [stompd] section of the keys
 * config.c defines, [queue "PATTERN"] sections of message policy keys (config_policy.c),
 * and CoilMQ's [coilmq] keys mapped onto them.
 *
 * Nothing is silently ignored: an unknown section or key, a bad value or an unreadable
 * line is an error naming FILE:LINE, and only the first error is reported; CoilMQ keys
 * and logging sections that mean nothing here are warnings naming FILE:LINE and the key.
 */
#include "daemon.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One reading of one file. */
typedef struct loader {
    daemon_config *cfg;
    const char *path;
    unsigned line;    /* of the line inih is handling */
    int failed;       /* err holds the first error */
    int listen_given; /* the file's first listen replaces the default address */
    char *err;
    size_t errlen;
    void (*warn)(void *ctx, const char *msg);
    void *warn_ctx;
    FILE *f;
    int too_long;         /* the line being handled did not fit inih's buffer */
    int key_in_section;   /* a key was read since the last section header */
    long queue;           /* the [queue] section being read, in cfg->queues; -1: none */
    char *section_warned; /* the CoilMQ logging section last warned about */
    /* [coilmq] store keys, resolved at the end */
    char *coil_factory, *coil_dbm_dir, *coil_sa_url;
    unsigned coil_factory_line;
} loader;

static void load_fail(loader *ld, const char *fmt, ...) DAEMON_PRINTF(2, 3);
static void load_fail(loader *ld, const char *fmt, ...)
{
    if (ld->failed)
        return; /* the first error is the one reported */
    char msg[DAEMON_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(ld->err, ld->errlen, "%s:%u: %s", ld->path, ld->line, msg);
    ld->failed = 1;
}

static void load_warn(loader *ld, const char *fmt, ...) DAEMON_PRINTF(2, 3);
static void load_warn(loader *ld, const char *fmt, ...)
{
    if (!ld->warn)
        return;
    char msg[DAEMON_ERRLEN], line[DAEMON_ERRLEN + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(line, sizeof line, "%s:%u: %s", ld->path, ld->line, msg);
    ld->warn(ld->warn_ctx, line);
}

static int is_coil_logging_section(const char *s)
{
    return strcmp(s, "loggers") == 0 || strcmp(s, "handlers") == 0 ||
           strcmp(s, "formatters") == 0 || strncmp(s, "logger_", 7) == 0 ||
           strncmp(s, "handler_", 8) == 0 || strncmp(s, "formatter_", 10) == 0;
}

/* A key of the [queue "PATTERN"] section being read. */
static int queue_key(loader *ld, const char *section, const char *name, const char *v)
{
    if (ld->queue < 0) {
        /* Its header was refused, and said so: this only shows if it was not. */
        load_fail(ld, "[%s]: a key of a section whose header is not valid", section);
        return 0;
    }
    config_policy *p = &ld->cfg->queues[ld->queue].policy;
    char err[DAEMON_ERRLEN];
    if (config__set_policy(p, name, v, err, sizeof err) != 0) {
        load_fail(ld, "%s", err);
        return 0;
    }
    return 1;
}

static int coil_key(loader *ld, const char *name, const char *v)
{
    daemon_config *cfg = ld->cfg;
    char err[DAEMON_ERRLEN];
    if (strcmp(name, "listen_addr") == 0 || strcmp(name, "listen_port") == 0) {
        if (!ld->listen_given) {
            ld->listen_given = 1;
            cfg->nlisten = 1;
        }
        if (name[7] == 'a') {
            if (strlen(v) == 0 || strlen(v) >= sizeof cfg->listen[0].host) {
                load_fail(ld, "listen_addr: '%s' is not an address", v);
                return 0;
            }
            snprintf(cfg->listen[0].host, sizeof cfg->listen[0].host, "%s", v);
        } else {
            if (config__parse_port(v, &cfg->listen[0].port) != 0) {
                load_fail(ld, "listen_port: '%s' is not a port number", v);
                return 0;
            }
        }
        return 1;
    }
    if (strcmp(name, "qstore.factory") == 0 || strcmp(name, "qstore.dbm.data_dir") == 0 ||
        strcmp(name, "qstore.sa.url") == 0) {
        char **slot = name[7] == 'f' ? &ld->coil_factory
                                     : name[7] == 'd' ? &ld->coil_dbm_dir : &ld->coil_sa_url;
        if (name[7] == 'f')
            ld->coil_factory_line = ld->line;
        if (config__set_str(slot, v) != 0)
            load_fail(ld, "out of memory");
        return 1;
    }
    if (strcmp(name, "auth.simple.file") == 0) {
        if (config__set_from_file(cfg, "auth_file", v, NULL, err, sizeof err) != 0)
            load_fail(ld, "%s", err);
        return 1;
    }
    if (strcmp(name, "auth.factory") == 0) {
        if (strcmp(v, "coilmq.auth.simple.make_simple") != 0)
            load_fail(ld, "auth.factory: only coilmq.auth.simple.make_simple (auth.simple.file) "
                          "is supported");
        return 1;
    }
    if (strcmp(name, "debug.stats_poll_interval") == 0) {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (!*v || *end || errno || d < 0 || d > 86400) {
            load_fail(ld, "debug.stats_poll_interval: '%s' is not a number of seconds", v);
            return 0;
        }
        cfg->stats_interval_s = (unsigned)(d + 0.5);
        if (d > 0 && cfg->stats_interval_s == 0)
            cfg->stats_interval_s = 1;
        return 1;
    }
    if (strncmp(name, "scheduler.", 10) == 0 || strncmp(name, "qstore.", 7) == 0 ||
        strncmp(name, "auth.", 5) == 0 || strncmp(name, "debug.", 6) == 0) {
        load_warn(ld, "[coilmq] %s is ignored: stompd has no such setting", name);
        return 1;
    }
    load_fail(ld, "unknown key '%s' in [coilmq]", name);
    return 0;
}

/* inih handler: 1 = fine, 0 = error (inih reports the line too; we keep our message). */
static int on_entry(void *user, const char *section, const char *name, const char *value)
{
    loader *ld = user;
    ld->key_in_section = 1;
    if (ld->too_long)
        return 0; /* reported by read_line */
    if (strcmp(section, "coilmq") == 0)
        return coil_key(ld, name, value);
    if (config__is_queue_section(section))
        return queue_key(ld, section, name, value);
    if (is_coil_logging_section(section)) {
        if (!ld->section_warned || strcmp(ld->section_warned, section) != 0) {
            load_warn(ld, "[%s] is ignored: CoilMQ logging sections have no meaning here "
                          "(use logfile, log_level, syslog)", section);
            if (config__set_str(&ld->section_warned, section) != 0)
                load_fail(ld, "out of memory");
        }
        return 1;
    }
    if (section[0] && strcmp(section, "stompd") != 0) {
        load_fail(ld, "unknown section [%s] (expected [stompd], [queue \"PATTERN\"] or "
                      "[coilmq])", section);
        return 0;
    }
    char err[DAEMON_ERRLEN];
    if (config__set_from_file(ld->cfg, name, value, &ld->listen_given, err, sizeof err) != 0) {
        load_fail(ld, "%s", err);
        return 0;
    }
    return 1;
}

/* inih calls the handler for keys only, so a section header is spotted here, by inih's
 * rules: a line whose first non-blank is '[' (unless it is indented and continues the
 * value of a key), closed by ']' before any inline comment. An empty [queue "PATTERN"]
 * section is a rule too, and a header's errors name its own line. */
static void section_header(loader *ld, const char *line)
{
    const char *s = line;
    if (ld->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3; /* a UTF-8 byte order mark */
    while (isspace((unsigned char)*s))
        s++;
    if (*s != '[' || (s > line && ld->key_in_section))
        return;
    const char *end = s + 1;
    for (int was_space = 0; *end && *end != ']' && !(was_space && *end == ';'); end++)
        was_space = isspace((unsigned char)*end);
    if (*end != ']')
        return; /* inih reports the line */
    char name[INI_MAX_LINE];
    snprintf(name, sizeof name, "%.*s", (int)(end - s - 1), s + 1);
    ld->key_in_section = 0;
    ld->queue = -1;
    if (!config__is_queue_section(name))
        return;
    char err[DAEMON_ERRLEN];
    if (config__add_queue(ld->cfg, name, ld->line, err, sizeof err) != 0)
        load_fail(ld, "%s", err);
    else
        ld->queue = (long)ld->cfg->nqueues - 1;
}

/* inih reader: one whole line per call, so our line count is exact, and a line longer
 * than inih's buffer is an error rather than two half lines. */
static char *read_line(char *str, int num, void *stream)
{
    loader *ld = stream;
    size_t n = 0;
    int ch;
    ld->too_long = 0;
    while ((ch = getc(ld->f)) != EOF) {
        if ((int)n < num - 2)
            str[n++] = (char)ch;
        else if (ch != '\n' && ch != '\r')
            ld->too_long = 1;
        if (ch == '\n')
            break;
    }
    if (n == 0 && ch == EOF)
        return NULL;
    str[n] = '\0';
    ld->line++;
    if (ld->too_long) {
        /* Make inih hand the line to on_entry or flag it, whatever it holds. */
        load_fail(ld, "line too long (at most %d bytes)", num - 2);
    } else {
        section_header(ld, str);
    }
    return str;
}

static int finish_coil_store(loader *ld)
{
    if (!ld->coil_factory)
        return 0;
    unsigned saved = ld->line;
    ld->line = ld->coil_factory_line;
    const char *f = ld->coil_factory;
    char spec[PATH_MAX + 16];
    int rc = 0;
    if (strcmp(f, "coilmq.store.memory.MemoryQueue") == 0) {
        snprintf(spec, sizeof spec, "memory");
    } else if (strcmp(f, "coilmq.store.dbm.make_dbm") == 0) {
        if (!ld->coil_dbm_dir) {
            load_fail(ld, "qstore.factory dbm needs qstore.dbm.data_dir");
            rc = -1;
        } else {
            snprintf(spec, sizeof spec, "sqlite:%s/stompd.sqlite", ld->coil_dbm_dir);
            load_warn(ld, "qstore.factory dbm: using the SQLite store %s", spec + 7);
        }
    } else if (strcmp(f, "coilmq.store.sa.make_sa") == 0) {
        const char *u = ld->coil_sa_url;
        if (!u || strncmp(u, "sqlite:///", 10) != 0 || !u[10]) {
            load_fail(ld, "qstore.factory sa: only a qstore.sa.url of sqlite:///PATH is "
                          "supported");
            rc = -1;
        } else {
            snprintf(spec, sizeof spec, "sqlite:%s", u + 10);
        }
    } else {
        load_fail(ld, "qstore.factory '%s' is not supported (use store = memory or "
                      "store = sqlite:PATH)", f);
        rc = -1;
    }
    if (rc == 0 && config__set_str(&ld->cfg->store, spec) != 0) {
        load_fail(ld, "out of memory");
        rc = -1;
    }
    ld->line = saved;
    return rc;
}

int config__load(daemon_config *cfg, const char *path, void (*warn)(void *ctx, const char *msg),
                 void *warn_ctx, char *err, size_t errlen)
{
    loader ld = { .cfg = cfg, .path = path, .err = err, .errlen = errlen, .warn = warn,
                  .warn_ctx = warn_ctx, .queue = -1 };
    ld.f = fopen(path, "r");
    if (!ld.f) {
        snprintf(err, errlen, "%s:0: cannot open: %s", path, strerror(errno));
        return -1;
    }
    int rc = ini_parse_stream(read_line, &ld, on_entry, &ld);
    int read_error = ferror(ld.f);
    fclose(ld.f);
    if (read_error && !ld.failed) {
        snprintf(err, errlen, "%s:%u: read error", path, ld.line);
        ld.failed = 1;
    }
    if (rc > 0 && !ld.failed) {
        /* A line inih could not parse: no '=' or ':', or a bad section header. */
        snprintf(err, errlen, "%s:%d: syntax error (expected [section], key = value or a "
                              "comment)", path, rc);
        ld.failed = 1;
    } else if (rc < 0 && !ld.failed) {
        snprintf(err, errlen, "%s:0: %s", path, rc == -2 ? "out of memory" : "cannot read");
        ld.failed = 1;
    }
    if (!ld.failed && finish_coil_store(&ld) != 0)
        ld.failed = 1;
    free(ld.coil_factory);
    free(ld.coil_dbm_dir);
    free(ld.coil_sa_url);
    free(ld.section_warned);
    return ld.failed ? -1 : 0;
}
