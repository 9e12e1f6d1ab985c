/* store.c: what every backend shares: error strings. Backends live in store_<name>.c and
 * are reached only through the store_ops table of store.h.
 */
#include "store.h"

const char *store_strerror(store_err err)
{
    switch (err) {
    case STORE_OK: return "ok";
    case STORE_DONE: return "already committed";
    case STORE_E_EMPTY: return "queue is empty";
    case STORE_E_NOTFOUND: return "no such taken message";
    case STORE_E_NOMEM: return "out of memory";
    case STORE_E_IO: return "storage failure";
    case STORE_E_BUSY: return "a commit is in flight";
    case STORE_E_INVALID: return "invalid argument";
    case STORE_E_AGAIN: return "take again after the next commit";
    case STORE_E_EXPIRED: return "the next message has expired";
    case STORE_E__COUNT: break;
    }
    return "unknown store error";
}
