/* login_pool.c: stompd's login checks (broker_options.authenticate_async). A passcode is
 * checked against the auth file's hash on libuv's thread pool, so the loop never waits for
 * one (an Argon2id check takes tens of milliseconds); the answer goes back on the loop
 * thread.
 *
 * At most PARALLEL checks run at once: the store's commits use the same pool (4 threads
 * unless UV_THREADPOOL_SIZE says otherwise) and always find a free thread, and Argon2id's
 * memory (64 MiB a check) stays bounded. The others wait in arrival order; one whose client
 * is gone by its turn is answered without hashing. Invariant: the queue is empty unless
 * PARALLEL checks are running.
 *
 * The wait here counts toward the CONNECT timeout (login.c), on purpose: a burst of logins
 * longer than it turns the ones at the back away with an ERROR (they may try again) rather
 * than keeping them waiting without bound, and their checks then cost no hash.
 */
#include "daemon.h"

#include <stdlib.h>

#define PARALLEL 2

typedef struct login_job {
    uv_work_t work; /* first: the job is found from its work request */
    struct login_job *next;
    login_queue *queue;
    broker_auth *req;
    auth_table *table;            /* a reference: SIGHUP may replace the current table */
    const char *login, *passcode; /* borrowed from req until it is answered */
    int ok;
} login_job;

void login_pool__init(login_queue *q, uv_loop_t *loop, logsink *log, auth_table *const *table)
{
    *q = (login_queue){ .loop = loop, .log = log, .table = table };
}

/* On a pool thread: only the job and its table (immutable but for its locked decoy). */
static void work(uv_work_t *w)
{
    login_job *j = (login_job *)w;
    j->ok = auth__check(j->table, j->login, j->passcode) == 0;
}

static void finish(login_job *j, int ok)
{
    broker_auth_done(j->req, ok);
    auth__free(j->table);
    free(j);
}

static void after(uv_work_t *w, int status);

static void start_next(login_queue *q)
{
    while (q->running < PARALLEL && q->head) {
        login_job *j = q->head;
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
        if (broker_auth_abandoned(j->req)) {
            finish(j, 0);
            continue;
        }
        int rc = uv_queue_work(q->loop, &j->work, work, after);
        if (rc != 0) {
            logsink__write(q->log, BROKER_LOG_ERROR, 0, "auth-error",
                           "cannot queue a login check: %s", uv_strerror(rc));
            finish(j, 0);
            continue;
        }
        q->running++;
    }
}

static void after(uv_work_t *w, int status)
{
    login_job *j = (login_job *)w;
    login_queue *q = j->queue;
    q->running--;
    finish(j, status == 0 && j->ok);
    start_next(q);
}

void login_pool__check(void *ctx, broker_auth *req, const char *login, const char *passcode)
{
    login_queue *q = ctx;
    auth_table *table = *q->table;
    login_job *j = table ? calloc(1, sizeof *j) : NULL;
    if (!j) {
        if (table)
            logsink__write(q->log, BROKER_LOG_ERROR, 0, "auth-error",
                           "out of memory: login refused");
        broker_auth_done(req, 0);
        return;
    }
    j->queue = q;
    j->req = req;
    j->table = auth__ref(table);
    j->login = login;
    j->passcode = passcode;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    start_next(q);
}
