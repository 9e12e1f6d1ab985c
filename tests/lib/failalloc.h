/* failalloc.h: a failing allocator for tests that fail the k-th allocation in turn.
 *
 * Include it from exactly one file of a test program: it replaces malloc, calloc, realloc
 * and free for the whole program (glibc's own entry points do the work). It is armed per
 * thread, so only the thread under test sees failures. Sanitizer builds bring their own
 * malloc: there FAILALLOC_SKIP is defined and nothing is replaced.
 */
#ifndef FAILALLOC_H
#define FAILALLOC_H

#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define FAILALLOC_SKIP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FAILALLOC_SKIP 1
#endif
#endif

#ifndef FAILALLOC_SKIP
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

/* While armed, the fail_at-th allocation (1-based; 0 = none) of this thread returns NULL.
 * seen counts this thread's armed allocations; live counts blocks handed out minus blocks
 * freed on this thread, armed or not, so a leak shows as a difference. */
static _Thread_local int failalloc_armed;
static _Thread_local long failalloc_fail_at;
static _Thread_local long failalloc_seen;
static _Thread_local long failalloc_live;

static int failalloc_should_fail(void)
{
    if (!failalloc_armed)
        return 0;
    return ++failalloc_seen == failalloc_fail_at;
}

void *malloc(size_t n)
{
    void *p = failalloc_should_fail() ? NULL : __libc_malloc(n);
    if (p)
        failalloc_live++;
    return p;
}

void *calloc(size_t n, size_t m)
{
    void *p = failalloc_should_fail() ? NULL : __libc_calloc(n, m);
    if (p)
        failalloc_live++;
    return p;
}

void *realloc(void *p, size_t n)
{
    if (n && failalloc_should_fail())
        return NULL;
    void *q = __libc_realloc(p, n);
    if (!p && q)
        failalloc_live++;
    else if (p && !n)
        failalloc_live--;
    return q;
}

void free(void *p)
{
    if (p)
        failalloc_live--;
    __libc_free(p);
}
#endif
#endif
