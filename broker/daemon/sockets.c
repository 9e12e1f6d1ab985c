/* sockets.c: the STOMP listeners that are not HOST:PORT: unix-domain sockets (listen =
 * unix:/PATH, their files given unix_mode and unix_owner) and the sockets a service
 * manager hands over (systemd socket activation: LISTEN_PID, LISTEN_FDS, descriptors from
 * 3 on; the protocol is read directly, no libsystemd).
 *
 * With sockets handed over, they are the STOMP listeners: the listen addresses, TCP and
 * unix, are not bound (the socket unit says where to listen). The other listeners
 * (WebSocket, TLS, management) are bound from the configuration as usual.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIRST_FD 3 /* SD_LISTEN_FDS_START */

int sockets__activated(void)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    if (!pid || !fds)
        return 0;
    char *end;
    errno = 0;
    long p = strtol(pid, &end, 10);
    int ours = !errno && !*end && p == (long)getpid();
    long n = strtol(fds, &end, 10);
    if (errno || *end || n < 0 || n > 1024)
        ours = 0;
    /* Not for our children, whoever they were meant for. */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (!ours)
        return 0;
    for (int fd = FIRST_FD; fd < FIRST_FD + n; fd++)
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    return (int)n;
}

int sockets__listen_activated(broker *b, int n, int *ports, char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        broker_err rc = broker_listen_fd(b, FIRST_FD + i, &ports[i]);
        if (rc != BROKER_OK) {
            snprintf(err, errlen, "socket activation: descriptor %d: %s", FIRST_FD + i,
                     rc == BROKER_E_INVALID ? "not a listening socket" : broker_strerror(rc));
            return -1;
        }
    }
    return 0;
}

int sockets__listen_unix(broker *b, const daemon_config *cfg, char *err, size_t errlen)
{
    uid_t uid;
    gid_t gid;
    if (cfg->nunix && config__unix_owner(cfg, &uid, &gid, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < cfg->nunix; i++) {
        const char *path = cfg->unix_listen[i];
        broker_err rc = broker_listen_unix(b, path, (int)cfg->unix_mode);
        if (rc != BROKER_OK) {
            snprintf(err, errlen, "cannot listen on unix:%s: %s (the log says why)", path,
                     broker_strerror(rc));
            return -1;
        }
        /* Given to the user stompd becomes, it can remove the file at the stop. */
        if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(path, uid, gid) != 0) {
            snprintf(err, errlen, "unix:%s: cannot hand it to %s: %s", path,
                     cfg->unix_owner ? cfg->unix_owner : "the user", strerror(errno));
            return -1;
        }
    }
    return 0;
}
