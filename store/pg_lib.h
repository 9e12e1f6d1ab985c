/* pg_lib.h: libpq, loaded when a PostgreSQL store opens rather than linked into every
 * program: libpq brings some twenty libraries (Kerberos, LDAP, GnuTLS, ...) whose loading and
 * start-up more than doubled the time stompd takes to start, with or without PostgreSQL.
 *
 * The backend calls libpq's functions by their names: after the struct store is defined,
 * pg_int.h maps each PQname(...) to s->lib.PQname(...), through the store in scope (always
 * named s). The types come from libpq-fe.h as usual.
 */
#ifndef STORE_PG_LIB_H
#define STORE_PG_LIB_H

#include <libpq-fe.h>
#include <stddef.h>

/* The libpq functions the backend calls. */
#define PG__FUNCS(X)                                                                         \
    X(PQbackendPID) X(PQfreemem) X(PQnfields) X(PQnotifies)                               \
    X(PQclear) X(PQconnectPoll) X(PQconnectStartParams) X(PQconnectdbParams)                 \
    X(PQconsumeInput) X(PQenterPipelineMode) X(PQerrorMessage) X(PQexec) X(PQfinish)          \
    X(PQflush) X(PQgetResult) X(PQgetisnull) X(PQgetlength) X(PQgetvalue) X(PQisBusy)        \
    X(PQntuples)                                                                             \
    X(PQpipelineSync) X(PQprepare) X(PQresultErrorMessage) X(PQresultStatus)                 \
    X(PQsendPrepare) X(PQsendQueryParams) X(PQsendQueryPrepared) X(PQsetNoticeProcessor)     \
    X(PQsetSingleRowMode) X(PQsetnonblocking) X(PQsocket) X(PQstatus) X(PQserverVersion)

typedef struct pg__lib {
    void *dl; /* dlopen's handle, NULL when not loaded */
#define PG__FIELD(name) __typeof__(name) *name;
    PG__FUNCS(PG__FIELD)
#undef PG__FIELD
} pg__lib;

/* Load libpq (the soname of Debian's libpq5) into l: 0, or -1 with the reason in why. */
int pg__lib_open(pg__lib *l, char *why, size_t cap);
/* Release it (a no-op for a library not loaded). */
void pg__lib_close(pg__lib *l);

#endif
