/* worker.c: one thread's epoll loop over the connections it owns (and its latency timer),
 * and the run's phases: SETUP -> RUN -> LINGER -> CLOSE -> END, each step taken by
 * whichever thread first sees its condition. A worker opens at most max_inflight connections
 * at a time and leaves its loop at END (or when epoll fails), closing what is still open. */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#include "loadgen.h"

/* The next phase when its condition holds; the deadline ends any phase before CLOSE. */
static void maybe_advance(void)
{
    int64_t t = now_ns();
    int phase = atomic_load(&R.phase);
    if (phase < PH_CLOSE && t >= R.t_deadline) {
        atomic_store(&R.timed_out, 1);
        atomic_store(&R.phase, PH_END);
        return;
    }
    if (phase == PH_SETUP) {
        if (atomic_load(&R.ready) >= R.needed) {
            int expect = PH_SETUP;
            if (atomic_compare_exchange_strong(&R.phase, &expect, PH_RUN)) {
                atomic_store(&R.t_ready, t);
                if (R.o.pid > 0)
                    R.rss_after = read_rss_kb(R.o.pid);
                atomic_store(&R.t_go, now_ns());
                atomic_store(&R.go, 1);
            }
        }
    } else if (phase == PH_RUN) {
        bool producers = atomic_load(&R.producers_done) == R.o.producers;
        bool all = producers && atomic_load(&R.unique) >= R.expected;
        /* producers are done (the broker took every message) and nothing has arrived
         * for --idle seconds: the missing ones are lost */
        int64_t last = atomic_load(&R.t_last_rx);
        if (last == 0)
            last = atomic_load(&R.t_go);
        bool idle = producers && !all && t - last > (int64_t)(R.o.idle * 1e9);
        if (all || idle) {
            int expect = PH_RUN;
            if (idle)
                atomic_store(&R.idle_end, 1);
            atomic_store(&R.t_linger_end, t + (int64_t)(R.o.linger * 1e9));
            atomic_compare_exchange_strong(&R.phase, &expect, PH_LINGER);
        }
    } else if (phase == PH_LINGER) {
        if (t >= atomic_load(&R.t_linger_end)) {
            int expect = PH_LINGER;
            atomic_store(&R.t_close_end, t + 2000000000);
            atomic_compare_exchange_strong(&R.phase, &expect, PH_CLOSE);
        }
    } else if (phase == PH_CLOSE) {
        if (t >= atomic_load(&R.t_close_end)) {
            atomic_store(&R.phase, PH_END);
        }
    }
}

/* CLOSE: DISCONNECT the ready and subscribing connections, close those still connecting or
 * in their handshake, and count the never opened as closed. */
static void worker_close_all(struct worker *w)
{
    for (int i = 0; i < w->nconns; i++) {
        struct conn *c = w->conns[i];
        if (c->fd < 0) {
            if (c->state != CS_CLOSED) {
                c->state = CS_CLOSED;
                atomic_fetch_sub(&R.open_total, 1);
            }
            continue;
        }
        if (c->state == CS_READY || c->state == CS_SUBSCRIBING)
            session__disconnect(c);
        else if (c->state != CS_CLOSING)
            conn__close(c);
    }
}

/* After each epoll turn: the phase, connections still to open, the latency timer once the
 * run starts, producers whose window reopened, and the close. */
static void worker_tick(struct worker *w)
{
    maybe_advance();
    int phase = atomic_load(&R.phase);
    if (phase == PH_SETUP || phase == PH_RUN) {
        while (w->next_open < w->nconns && w->inflight < w->max_inflight &&
               !atomic_load(&R.failed))
            conn__open(w->conns[w->next_open++]);
    }
    if (atomic_load(&R.go) && phase <= PH_LINGER) {
        if (w->tfd >= 0 && !w->timer_armed) {
            long ns = 1000000000L / R.o.rate;
            struct itimerspec its = {.it_interval = {ns / 1000000000L, ns % 1000000000L},
                                     .it_value = {0, 1}};
            if (timerfd_settime(w->tfd, 0, &its, NULL) < 0)
                fail("timerfd_settime: %s", strerror(errno));
            w->timer_armed = true;
        }
        for (int i = 0; i < w->nproducers; i++) {
            struct conn *c = w->producers[i];
            if (c->fd >= 0 && c->writable && !c->done)
                producer__pump(c);
        }
    }
    if (phase == PH_CLOSE && !w->close_sent) {
        w->close_sent = true;
        worker_close_all(w);
    }
}

/* A thread's entry point (the main thread runs worker 0 itself). The epoll timeout is short
 * while connecting, in rounds and with several threads, so phase changes are seen soon. */
void *worker__main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[256];
    while (atomic_load(&R.phase) != PH_END) {
        int phase = atomic_load(&R.phase);
        int timeout = 10;
        if (phase == PH_SETUP || R.pmode == PM_ROUNDS || R.nworkers > 1)
            timeout = 1;
        int n = epoll_wait(w->ep, evs, 256, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail("epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == w) {
                producer__on_timer(w);
                continue;
            }
            struct conn *c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            if (c->state == CS_CONNECTING) {
                conn__on_writable(c);
                if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                    conn__on_readable(c, true);
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
                conn__on_readable(c, (evs[i].events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) != 0);
            if (c->fd >= 0 && (evs[i].events & EPOLLOUT))
                conn__on_writable(c);
        }
        worker_tick(w);
        if (atomic_load(&R.phase) == PH_CLOSE && atomic_load(&R.open_total) == 0)
            atomic_store(&R.phase, PH_END);
    }
    for (int i = 0; i < w->nconns; i++)
        if (w->conns[i]->fd >= 0)
            conn__close(w->conns[i]);
    return NULL;
}
