/* daemonize.c: leaving the terminal (fork, setsid, fork), telling the waiting parent and
 * systemd how startup went, and dropping privileges.
 *
 * The first parent does not exit at once: it waits on a pipe for the final child's report
 * ("CODE message"), so `stompd -d` exits 0 only once the broker listens, and otherwise
 * with the child's exit code and reason. A child that dies without reporting makes the
 * parent fail too (the pipe reads end-of-file).
 *
 * The processes the forks leave behind end here with _exit(), the one exception to "only
 * main.c exits": they are not the daemon, so they must not go back into its startup, nor
 * run its exit handlers.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <unistd.h>

/* The first parent: wait for the report, print its reason, exit with its code. */
static void wait_report(int fd)
{
    char buf[DAEMON_ERRLEN + 16];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == sizeof buf - 1)
            break;
    }
    buf[len] = '\0';
    char *end;
    long code = strtol(buf, &end, 10);
    if (len == 0 || end == buf) {
        fprintf(stderr, "stompd: the daemon exited during startup\n");
        _exit(STOMPD_EXIT_FAILURE);
    }
    if (*end == ' ')
        end++;
    if (code != 0 && *end)
        fprintf(stderr, "stompd: %s\n", end);
    _exit((int)code);
}

int daemonize__detach(const char *rundir, mode_t mask, int *report_fd, char *err, size_t errlen)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid > 0) {
        close(p[1]);
        /* Reap the intermediate child (it exits right after the second fork). */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        wait_report(p[0]);
    }
    close(p[0]);
    if (setsid() < 0) {
        daemonize__report(p[1], STOMPD_EXIT_SYSTEM, "setsid failed");
        _exit(STOMPD_EXIT_SYSTEM);
    }
    /* The second fork: not a session leader, so no terminal can be acquired again. */
    pid = fork();
    if (pid < 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "fork: %s", strerror(errno));
        daemonize__report(p[1], STOMPD_EXIT_SYSTEM, msg);
        _exit(STOMPD_EXIT_SYSTEM);
    }
    if (pid > 0)
        _exit(0);
    umask(mask);
    if (chdir(rundir) != 0) {
        char msg[DAEMON_ERRLEN];
        snprintf(msg, sizeof msg, "cannot change to run directory %s: %s", rundir,
                 strerror(errno));
        daemonize__report(p[1], STOMPD_EXIT_SYSTEM, msg);
        _exit(STOMPD_EXIT_SYSTEM);
    }
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0) {
        daemonize__report(p[1], STOMPD_EXIT_SYSTEM, "cannot open /dev/null");
        _exit(STOMPD_EXIT_SYSTEM);
    }
    close(null);
    *report_fd = p[1];
    return 0;
}

void daemonize__report(int fd, int code, const char *msg)
{
    if (fd < 0)
        return;
    char buf[DAEMON_ERRLEN + 16];
    int n = snprintf(buf, sizeof buf, "%d %s", code, msg ? msg : "");
    if (n > 0) {
        size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
        ssize_t w;
        do
            w = write(fd, buf, len);
        while (w < 0 && errno == EINTR);
    }
    close(fd);
}

void daemonize__notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || (path[0] != '/' && path[0] != '@'))
        return;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t len = strlen(path);
    if (len >= sizeof sa.sun_path)
        return;
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* an abstract socket */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    /* Best effort, as sd_notify: without a listener there is nobody to tell. */
    (void)sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    close(fd);
}

int daemonize__lookup_ids(const char *user, const char *group, uid_t *uid, gid_t *gid,
                          char *err, size_t errlen)
{
    *uid = (uid_t)-1;
    *gid = (gid_t)-1;
    if (user) {
        errno = 0;
        struct passwd *pw = getpwnam(user);
        if (!pw) {
            snprintf(err, errlen, "unknown user '%s'", user);
            return -1;
        }
        *uid = pw->pw_uid;
        *gid = pw->pw_gid;
    }
    if (group) {
        struct group *gr = getgrnam(group);
        if (!gr) {
            snprintf(err, errlen, "unknown group '%s'", group);
            return -1;
        }
        *gid = gr->gr_gid;
    }
    return 0;
}

int daemonize__drop_privileges(const char *user, const char *group, char *err, size_t errlen)
{
    uid_t uid;
    gid_t gid;
    if (daemonize__lookup_ids(user, group, &uid, &gid, err, errlen) != 0)
        return -1;
    if (gid != (gid_t)-1) {
        if (setgroups(1, &gid) != 0 || setgid(gid) != 0) {
            snprintf(err, errlen, "cannot change to group %u: %s", (unsigned)gid,
                     strerror(errno));
            return -1;
        }
    }
    if (uid != (uid_t)-1) {
        if (setuid(uid) != 0) {
            snprintf(err, errlen, "cannot change to user %s: %s", user, strerror(errno));
            return -1;
        }
        /* Make sure there is no way back. */
        if (uid != 0 && setuid(0) == 0) {
            snprintf(err, errlen, "privileges could be regained after dropping them");
            return -1;
        }
    }
    return 0;
}

void daemonize__tune_heap(void)
{
#ifdef __GLIBC__
    /* Freed heap memory stays for reuse up to 64 MiB (glibc's default is 128 KiB): under
     * fan-out the output queues' chunks were given back and taken again by brk hundreds of
     * times a second, a page fault for every page each time. A drained backlog is still
     * given back: the memory store calls malloc_trim then. The library leaves the process's
     * allocator alone; this is the daemon's choice. */
    (void)mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}
