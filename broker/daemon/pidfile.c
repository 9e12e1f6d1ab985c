/* pidfile.c: the pid file: created and flock()ed before anything else starts, the pid
 * written once the broker listens, removed on a clean exit.
 *
 * The lock, not the file's existence, says whether a stompd is running: it dies with the
 * process, so a file left by a killed stompd is stale and simply taken over. The lock is
 * on the open file description, so it survives the forks of daemonizing.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

struct pidfile {
    char *path;
    int fd;
};

int pidfile__acquire(pidfile **out, const char *path, pid_t *holder, char *err, size_t errlen)
{
    *holder = 0;
    pidfile *pf = calloc(1, sizeof *pf);
    if (!pf || !(pf->path = strdup(path))) {
        free(pf);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pf->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (pf->fd < 0) {
        snprintf(err, errlen, "cannot open pid file %s: %s", path, strerror(errno));
        goto fail;
    }
    if (flock(pf->fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            char buf[32] = { 0 };
            ssize_t n = pread(pf->fd, buf, sizeof buf - 1, 0);
            long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
            *holder = pid > 0 ? (pid_t)pid : 0;
            if (*holder)
                snprintf(err, errlen, "pid file %s is locked: stompd already running as pid "
                                      "%ld", path, pid);
            else
                snprintf(err, errlen, "pid file %s is locked by another process", path);
        } else {
            snprintf(err, errlen, "cannot lock pid file %s: %s", path, strerror(errno));
        }
        close(pf->fd);
        goto fail;
    }
    *out = pf;
    return 0;
fail:
    free(pf->path);
    free(pf);
    return -1;
}

int pidfile__write(pidfile *pf, char *err, size_t errlen)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(pf->fd, 0) != 0 || pwrite(pf->fd, buf, (size_t)n, 0) != n) {
        snprintf(err, errlen, "cannot write pid file %s: %s", pf->path, strerror(errno));
        return -1;
    }
    return 0;
}

int pidfile__fd(const pidfile *pf)
{
    return pf->fd;
}

void pidfile__release(pidfile *pf, int remove)
{
    if (!pf)
        return;
    /* Unlink while still holding the lock, so no other stompd can be using this file.
     * When the directory is not ours (privileges dropped), at least empty the file. */
    if (remove && unlink(pf->path) != 0 && ftruncate(pf->fd, 0) != 0) {
        /* Nothing more to do: the lock goes away with the descriptor anyway. */
    }
    close(pf->fd);
    free(pf->path);
    free(pf);
}
