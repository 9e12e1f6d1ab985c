/* logsink.c: where stompd's log lines go: a file (reopened by name at SIGHUP for log
 * rotation), stderr, and optionally syslog.
 *
 * A line is "TIME LEVEL conn=ID EVENT: text" (conn=- when not about a connection), written
 * with one write(2) on an O_APPEND descriptor so lines never interleave. Control
 * characters from peers (logins) are escaped. The broker's records arrive with their
 * connection id and event code as fields, so nothing is parsed out of their text.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

struct logsink {
    char *path; /* NULL: stderr */
    int fd;     /* the file, or 2 */
    int use_syslog;
    int took_stderr; /* stderr is a copy of fd (daemon mode) */
    broker_log_level level;
};

static const char *const level_names[] = { "error", "warning", "info", "debug" };

static int open_log(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int logsink__open(logsink **out, const char *path, int use_syslog, broker_log_level level,
                  char *err, size_t errlen)
{
    logsink *ls = calloc(1, sizeof *ls);
    if (!ls) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ls->fd = 2;
    ls->use_syslog = use_syslog;
    ls->level = level;
    if (path) {
        ls->path = strdup(path);
        if (!ls->path) {
            free(ls);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        ls->fd = open_log(path);
        if (ls->fd < 0) {
            snprintf(err, errlen, "cannot open log file %s: %s", path, strerror(errno));
            free(ls->path);
            free(ls);
            return -1;
        }
    }
    if (use_syslog)
        openlog("stompd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    *out = ls;
    return 0;
}

int logsink__reopen(logsink *ls, char *err, size_t errlen)
{
    if (!ls->path)
        return 0;
    int fd = open_log(ls->path);
    if (fd < 0) {
        snprintf(err, errlen, "cannot reopen log file %s: %s", ls->path, strerror(errno));
        return -1;
    }
    /* Same descriptor number, new file; stderr follows when it was pointed here. */
    if (dup3(fd, ls->fd, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "cannot reopen log file %s: %s", ls->path, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    if (ls->took_stderr && dup2(ls->fd, 2) < 0) {
        snprintf(err, errlen, "cannot point stderr at %s: %s", ls->path, strerror(errno));
        return -1;
    }
    return 0;
}

int logsink__take_stderr(logsink *ls)
{
    int fd = ls->path ? ls->fd : open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = dup2(fd, 2) < 0 ? -1 : 0;
    if (!ls->path)
        close(fd);
    else if (rc == 0)
        ls->took_stderr = 1;
    return rc;
}

int logsink__fd(const logsink *ls)
{
    return ls->path ? ls->fd : -1;
}

void logsink__close(logsink *ls)
{
    if (!ls)
        return;
    if (ls->path)
        close(ls->fd);
    if (ls->use_syslog)
        closelog();
    free(ls->path);
    free(ls);
}

/* Copy src to dst escaping control characters; always terminates. */
static void escape(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    for (; *src && n + 5 < cap; src++) {
        unsigned char ch = (unsigned char)*src;
        if (ch < 0x20 || ch == 0x7f)
            n += (size_t)snprintf(dst + n, cap - n, "\\x%02x", ch);
        else
            dst[n++] = (char)ch;
    }
    dst[n] = '\0';
}

static void emit(logsink *ls, broker_log_level level, unsigned long long conn_id,
                 const char *event, const char *text)
{
    char clean[1024], cid[24], stamp[40], line[1200];
    escape(clean, sizeof clean, text);
    if (conn_id)
        snprintf(cid, sizeof cid, "%llu", conn_id);
    else
        snprintf(cid, sizeof cid, "-");
    if (ls->use_syslog) {
        static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
        syslog(prio[level], "%s conn=%s %s: %s", level_names[level], cid, event, clean);
    }
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t sl = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + sl, sizeof stamp - sl, ".%03ldZ", ts.tv_nsec / 1000000);
    int n = snprintf(line, sizeof line, "%s %s conn=%s %s: %s\n", stamp, level_names[level],
                     cid, event, clean);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (line[len - 1] != '\n')
        line[len - 1] = '\n';
    /* A log that cannot be written has nowhere to report that: drop the line. */
    ssize_t w;
    do
        w = write(ls->fd, line, len);
    while (w < 0 && errno == EINTR);
}

void logsink__write(logsink *ls, broker_log_level level, unsigned long long conn_id,
                    const char *event, const char *fmt, ...)
{
    if (level > ls->level)
        return;
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    emit(ls, level, conn_id, event, text);
}

void logsink__broker_cb(void *ctx, broker_log_level level, uint64_t conn_id,
                        broker_event event, const char *text)
{
    logsink *ls = ctx;
    if (level > ls->level)
        return;
    emit(ls, level, (unsigned long long)conn_id, broker_event_name(event), text);
}

void logsink__set_level(logsink *ls, broker_log_level level)
{
    ls->level = level;
}
