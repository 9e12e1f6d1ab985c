/* main.c: loadgen, a STOMP 1.2 load generator for a broker on loopback (queue, persistent,
 * topic, latency and conns scenarios). Non-blocking sockets, one epoll loop per thread,
 * frames batched into large writes; every body carries (producer, sequence, send time) so
 * each run counts lost, duplicated and out-of-order deliveries and fails when any are lost
 * or doubled. This file owns the run: it sets it up, runs the workers, reports, frees. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loadgen.h"

struct run R;

/* Worker 0 runs on the main thread, the others on threads of their own. */
static void run_workers(void)
{
    for (int i = 1; i < R.nworkers; i++) {
        int rc = pthread_create(&R.workers[i].thread, NULL, worker__main, &R.workers[i]);
        if (rc != 0)
            die("pthread_create: %s", strerror(rc));
    }
    worker__main(&R.workers[0]);
    for (int i = 1; i < R.nworkers; i++) {
        int rc = pthread_join(R.workers[i].thread, NULL);
        if (rc != 0)
            die("pthread_join: %s", strerror(rc));
    }
}

static void release(void)
{
    for (int i = 0; i < R.nconns; i++) {
        stomp_parser_free(&R.conns[i].parser);
        free(R.conns[i].out);
        free(R.conns[i].last);
        free(R.conns[i].prefix);
    }
    for (int i = 0; i < R.nworkers; i++) {
        close(R.workers[i].ep);
        if (R.workers[i].tfd >= 0)
            close(R.workers[i].tfd);
        free(R.workers[i].rbuf);
        free(R.workers[i].conns);
        free(R.workers[i].producers);
    }
    for (int i = 0; i < R.ndests; i++)
        free(R.dests[i]);
    free(R.dests);
    free(R.pad);
    free(R.bits);
    free(R.lat_ns);
    free(R.round_got);
    free(R.round_sent_ns);
    free(R.round_done_ns);
    free(R.conns);
    free(R.workers);
    tls__free_ctx();
}

int main(int argc, char **argv)
{
    if (pthread_mutex_init(&R.err_lock, NULL) != 0)
        die("pthread_mutex_init failed");
    options__parse(argc, argv);
    options__resolve();
    tls__setup();
    scenario__setup();
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        die("signal: %s", strerror(errno));
    if (R.o.pid > 0) {
        R.rss_before = read_rss_kb(R.o.pid);
        if (R.rss_before < 0)
            die("cannot read VmRSS of pid %ld", R.o.pid);
    }
    R.t_deadline = now_ns() + (int64_t)(R.o.timeout * 1e9);
    run_workers();
    int status = report__print();
    release();
    return status;
}
