/* test_alloc.c: the parser under allocation failure. An allocator that fails its Nth call,
 * for N = 1, 2, ... until a run needs no failure: every run must end in STOMP_E_NOMEM after
 * the same events as a normal run (or match it exactly), free everything, and a reset
 * parser must then work again. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "frames_check.h"

typedef struct fail_alloc {
    size_t calls;   /* allocations and resizes so far */
    size_t fail_at; /* refuse this call (1-based); 0: never */
    int refused;
    size_t live; /* blocks held */
} fail_alloc;

static void *failing_realloc(void *ctx, void *ptr, size_t size)
{
    fail_alloc *a = ctx;
    if (size == 0) {
        if (ptr) {
            assert_true(a->live > 0);
            a->live--;
            free(ptr);
        }
        return NULL;
    }
    if (++a->calls == a->fail_at) {
        a->refused = 1;
        return NULL;
    }
    void *p = realloc(ptr, size);
    if (p && !ptr)
        a->live++;
    return p;
}

/* A stream that makes the parser grow every buffer it has: many headers, long lines,
 * escapes, a content-length body, a long NUL-terminated body, heart-beats. */
static char *build_stream(size_t *len)
{
    size_t cap = 64 * 1024, n = 0;
    char *b = malloc(cap);
    assert_non_null(b);
    n += (size_t)sprintf(b + n, "CONNECT\naccept-version:1.2\nhost:h\n\n%c\n\r\n", 0);
    n += (size_t)sprintf(b + n, "SEND\r\ndestination:/queue/a\r\n");
    for (int i = 0; i < 40; i++)
        n += (size_t)sprintf(b + n, "h%02d:v\\n\\c\\\\%02d\n", i, i);
    n += (size_t)sprintf(b + n, "content-length:3000\n\n");
    for (int i = 0; i < 3000; i++)
        b[n++] = (char)(i % 7 == 0 ? 0 : 'a' + i % 26);
    b[n++] = '\0';
    b[n++] = '\n';
    n += (size_t)sprintf(b + n, "MESSAGE\nlong:");
    memset(b + n, 'x', 5000);
    n += 5000;
    n += (size_t)sprintf(b + n, "\nk:v\n\n");
    memset(b + n, 'y', 10000);
    n += 10000;
    b[n++] = '\0';
    n += (size_t)sprintf(b + n, "ACK\nid:1\n\n%c", 0);
    assert_true(n < cap);
    *len = n;
    return b;
}

/* Fail the Nth allocation for every N, feeding in one piece or one byte at a time. */
static void fail_every_allocation(int bytewise)
{
    size_t len;
    char *data = build_stream(&len);
    size_t *cuts = malloc(len * sizeof *cuts);
    assert_non_null(cuts);
    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    size_t ncuts = bytewise ? len - 1 : 0;

    parse_opts o = { .version = STOMP_V12, .switch_version = 1 };
    parse_result want;
    run_chunks(&o, data, len, cuts, ncuts, &want);
    expect_events(&want, "FHHFHFF");
    expect_clean(&want);

    size_t n;
    for (n = 1;; n++) {
        fail_alloc a = { 0, n, 0, 0 };
        parse_result got;
        o.alloc = failing_realloc;
        o.alloc_ctx = &a;
        run_chunks(&o, data, len, cuts, ncuts, &got);
        /* run_chunks freed the parser: nothing may be left */
        assert_int_equal(a.live, 0);
        if (!a.refused) {
            const char *d = result_diff(&want, &got);
            if (d)
                fail_msg("no failure injected, yet the run differs: %s", d);
            result_free(&got);
            break;
        }
        expect_error(&got, STOMP_E_NOMEM, NOOFF);
        assert_true(got.n <= want.n + 1);
        for (size_t i = 0; i + 1 < got.n; i++) {
            const char *d = event_diff(&want.ev[i], &got.ev[i]);
            if (d)
                fail_msg("allocation %zu failed: event %zu differs: %s", n, i, d);
        }
        result_free(&got);
    }
    print_message("%zu allocations %s\n", n - 1, bytewise ? "byte at a time" : "in one feed");
    assert_true(n > 1);
    result_free(&want);
    free(cuts);
    free(data);
}

static void test_fail_each_allocation_one_feed(void **state)
{
    (void)state;
    fail_every_allocation(0);
}

static void test_fail_each_allocation_bytewise(void **state)
{
    (void)state;
    fail_every_allocation(1);
}

/* After STOMP_E_NOMEM, a reset parser whose allocator works again parses everything. */
static void test_recover_after_nomem(void **state)
{
    (void)state;
    size_t len;
    char *data = build_stream(&len);
    for (size_t n = 1;; n++) {
        fail_alloc a = { 0, n, 0, 0 };
        stomp_parser p;
        size_t pos = 0, consumed, frames = 0;
        stomp_event ev = STOMP_EV_NEED_MORE;
        stomp_parser_init(&p, NULL, failing_realloc, &a);
        stomp_parser_set_version(&p, STOMP_V12, 0);
        while (pos < len) {
            ev = stomp_parser_feed(&p, data + pos, len - pos, &consumed);
            pos += consumed;
            if (ev == STOMP_EV_ERROR)
                break;
        }
        if (!a.refused) {
            assert_int_not_equal(ev, STOMP_EV_ERROR);
            stomp_parser_free(&p);
            assert_int_equal(a.live, 0);
            break;
        }
        assert_int_equal(ev, STOMP_EV_ERROR);
        assert_int_equal(stomp_parser_error(&p, NULL), STOMP_E_NOMEM);
        a.fail_at = 0;
        stomp_parser_reset(&p);
        pos = 0;
        while (pos < len) {
            ev = stomp_parser_feed(&p, data + pos, len - pos, &consumed);
            pos += consumed;
            assert_int_not_equal(ev, STOMP_EV_ERROR);
            if (ev == STOMP_EV_FRAME)
                frames++;
        }
        assert_int_equal(frames, 4);
        stomp_parser_trim(&p);
        stomp_parser_free(&p);
        assert_int_equal(a.live, 0);
    }
    free(data);
}

/* trim gives memory back through the same allocator. */
static void test_trim_frees(void **state)
{
    (void)state;
    size_t len;
    char *data = build_stream(&len);
    fail_alloc a = { 0, 0, 0, 0 };
    stomp_parser p;
    size_t pos = 0, consumed;
    stomp_parser_init(&p, NULL, failing_realloc, &a);
    assert_int_equal(a.calls, 0); /* init allocates nothing */
    while (pos < len) {
        stomp_event ev = stomp_parser_feed(&p, data + pos, len - pos, &consumed);
        assert_int_not_equal(ev, STOMP_EV_ERROR);
        pos += consumed;
        stomp_parser_trim(&p);
    }
    stomp_parser_free(&p);
    assert_int_equal(a.live, 0);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail_each_allocation_one_feed),
        cmocka_unit_test(test_fail_each_allocation_bytewise),
        cmocka_unit_test(test_recover_after_nomem),
        cmocka_unit_test(test_trim_frees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
