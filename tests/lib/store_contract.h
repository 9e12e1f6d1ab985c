/* store_contract.h: the contract every store backend passes, written against store.h only.
 *
 * tests/store/test_store_contract.c calls store_contract_run() once per backend with its
 * table and a way to make options (a fresh location per call for persistent backends). The
 * same cases run unchanged on the memory and the SQLite backend.
 */
#ifndef STORE_CONTRACT_H
#define STORE_CONTRACT_H

#include "store.h"

typedef struct store_fixture {
    const char *name;
    const store_ops *ops;
    int persistent; /* data survives close + open with the same options */
    /* Fill opts for a fresh, empty store; the same location again when fresh == 0. */
    void (*options)(store_options *opts, uv_loop_t *loop, int fresh);
} store_fixture;

/* Run every case as one cmocka group; returns the number of failures. */
int store_contract_run(const store_fixture *fx);
/* The version 8 cases (take_match, queues; store_contract_match.c), as another group. */
int store_contract_run_match(const store_fixture *fx);
/* The version 10 cases (enqueue_shared; store_contract_shared.c), as another group; 0 at
 * once for a backend without enqueue_shared. */
int store_contract_run_shared(const store_fixture *fx);

#endif
