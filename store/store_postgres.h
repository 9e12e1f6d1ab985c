/* store_postgres.h: the PostgreSQL backend of store.h (durable queues in a PostgreSQL
 * database, reached with libpq).
 *
 * Reached like any backend through store_postgres_backend(); store_options.path is a libpq
 * connection string ("host=/run/postgresql dbname=stompd", "postgresql://u@h/db"). Open and
 * close talk to the database synchronously (they run before the loop starts and after it has
 * finished its work); everything between runs on the loop without waiting: each commit is
 * one pipelined transaction, and a lost connection is re-established in the background while
 * the commit waits. Open reports its reason through store_options.reason, failures later
 * through last_error. One store per database at a time (an advisory lock).
 */
#ifndef STORE_POSTGRES_H
#define STORE_POSTGRES_H

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How far (in message ids) the recorded delivery bound of a priority of a queue runs ahead
 * of its takes: after a crash, at most this many messages beyond the last one handed out
 * in each priority of each queue come back counted as redelivered. */
#define STORE_POSTGRES_LOOKAHEAD 8192

/* The longest pause between two attempts to reconnect, ms (it starts at 50 and doubles). */
#define STORE_POSTGRES_RECONNECT_MAX_MS 2000

/* The PostgreSQL backend. Borrowed, static, never NULL. */
const store_ops *store_postgres_backend(void);

#ifdef __cplusplus
}
#endif
#endif
