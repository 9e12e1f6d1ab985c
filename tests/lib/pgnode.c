/* pgnode.c: stompd processes on a PostgreSQL store (see pgnode.h). */
#include "pgnode.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"

int pgnode_start(pgnode *n, const char *conninfo, const char *setting)
{
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    char exe[256], spec[300];
    snprintf(exe, sizeof exe, "%s/stompd", build);
    snprintf(spec, sizeof spec, "postgres:%s", conninfo);
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    n->pid = fork();
    if (n->pid < 0)
        return -1;
    if (n->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(exe, exe, "--port", "0", "--store", spec, "--set", setting, "--log-level",
              "warning", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    n->out = fds[0];
    char buf[512];
    size_t len = 0;
    long long end = tl_now_ms() + 20000;
    while (tl_now_ms() < end && len < sizeof buf - 1) {
        struct pollfd p = { n->out, POLLIN, 0 };
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t r = read(n->out, buf + len, sizeof buf - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = '\0';
        const char *at = strstr(buf, "listening on ");
        const char *nl = at ? strchr(at, '\n') : NULL;
        if (nl) {
            const char *colon = nl;
            while (colon > at && *colon != ':')
                colon--;
            n->port = atoi(colon + 1);
            return n->port > 0 ? 0 : -1;
        }
    }
    fprintf(stderr, "stompd did not start: %s\n", buf);
    return -1;
}

void pgnode_stop(pgnode *n, int sig)
{
    if (n->pid <= 0)
        return;
    kill(n->pid, sig);
    int st;
    while (waitpid(n->pid, &st, 0) < 0 && errno == EINTR)
        ;
    close(n->out);
    n->pid = 0;
}
