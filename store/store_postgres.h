/* store_postgres.h: the PostgreSQL backend of store.h (durable queues in a PostgreSQL
 * database, reached with libpq).
 *
 * Reached like any backend through store_postgres_backend(); store_options.path is a libpq
 * connection string ("host=/run/postgresql dbname=stompd", "postgresql://u@h/db"). Open and
 * close talk to the database synchronously (they run before the loop starts and after it has
 * finished its work); everything between runs on the loop without waiting: each commit is
 * one pipelined transaction, and a lost connection is re-established in the background while
 * the commit waits. Open reports its reason through store_options.reason, failures later
 * through last_error. Several stores (stompd nodes) may share a database: each registers
 * as a node with a lease and they share queues (pg_share.c).
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

/* A node's lease when store_options.lease_ms is 0, ms: a node that stops renewing it (killed,
 * cut off from the database) gives back the messages it held this long after its last
 * renewal (plus up to a quarter of it, the other nodes' renewal period). */
#define STORE_POSTGRES_LEASE_MS 10000

/* The PostgreSQL backend. Borrowed, static, never NULL. */
const store_ops *store_postgres_backend(void);

#ifdef __cplusplus
}
#endif
#endif
