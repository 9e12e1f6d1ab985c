/* test_store_contract.c: the store contract (tests/lib/store_contract.c) on the memory
 * backend. A persistent backend runs the same suite from its own test with a fixture
 * that hands out fresh database locations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "store_contract.h"

static void memory_options(store_options *o, uv_loop_t *loop, int fresh)
{
    (void)fresh;
    memset(o, 0, sizeof *o);
    o->loop = loop;
}

int main(void)
{
    store_fixture fx = { "store contract: memory", store_memory_backend(), 0, memory_options };
    return store_contract_run(&fx) ? 1 : 0;
}
