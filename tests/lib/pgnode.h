/* pgnode.h: stompd processes on a PostgreSQL store, for tests of several nodes on one
 * database (tests/lib/pgtest.h starts the database).
 *
 * A node is $BUILD/stompd (default build/) on a free port (--port 0, read from its output),
 * with --store postgres:CONNINFO and one --set (the lease); signalled only by the pid this
 * process got from fork.
 */
#ifndef PGNODE_H
#define PGNODE_H

#include <sys/types.h>

typedef struct pgnode {
    pid_t pid; /* 0: not running */
    int port;
    int out;   /* the read end of its stdout */
} pgnode;

/* Start stompd on database conninfo with --set setting ("pg_lease=1500"): 0, or -1
 * (printed). */
int pgnode_start(pgnode *n, const char *conninfo, const char *setting);
/* Stop it: SIGTERM (a clean stop) or SIGKILL; wait for it. Nothing when not running. */
void pgnode_stop(pgnode *n, int sig);

#endif
