/* store_sqlite.h: the SQLite backend of store.h (durable queues in one database file).
 *
 * Reached like any backend through store_sqlite_backend() (open reports its reason through
 * store_options.reason, failures later through last_error). store_sqlite_open is the same
 * open for callers holding this backend directly.
 */
#ifndef STORE_SQLITE_H
#define STORE_SQLITE_H

#include <stddef.h>

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Ready messages of one priority of one queue kept in memory (the window); the rest are
 * read from the file on demand. Bounds the memory a backlog costs per priority in use: at
 * most this many messages, and this many bytes of header blocks and bodies give or take one
 * message (a window always takes one message, and a page read from the file stops at the
 * message that reaches the bytes; requeued messages go back to the window whatever its
 * size). A queue's messages waiting for their time are kept the same way, at most this many
 * in memory (those requeued with a time aside). */
#define STORE_SQLITE_WINDOW 1024
#define STORE_SQLITE_WINDOW_BYTES (1u << 20)

/* How far (in message ids) the recorded delivery bound of a priority of a queue runs ahead
 * of its takes: after a crash, at most this many ids beyond the last message handed out in
 * each priority of each queue come back counted as redelivered although they were never
 * handed out. */
#define STORE_SQLITE_LOOKAHEAD 8192

/* The SQLite backend. Borrowed, static, never NULL. opts->path names the database file; a
 * sibling file "<path>-lock" is created and locked so only one process uses the database. */
const store_ops *store_sqlite_backend(void);

/* The backend's open with the reason for a failure: on any error other than STORE_OK a
 * NUL-terminated text is written to reason (truncated to reason_size; reason may be NULL
 * when reason_size is 0). *out: caller owns, release with store_sqlite_backend()->close. */
store_err store_sqlite_open(const store_options *opts, store **out, char *reason,
                            size_t reason_size) STORE_WUR;

#ifdef __cplusplus
}
#endif
#endif
