/* test_outq.c: the output queue (broker/net/outq.c): bytes come out in the order they
 * were queued, however they are split into writes; small parts are copied, big shared ones
 * referenced (and released when written); a tracked queue reports every frame's end at the
 * stream offset just past its last byte, heart-beats included; an idle queue holds nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "net/outq.h"

/* Everything a queue would write: start/done until empty, bytes appended to out. */
static size_t drain(outq *q, char *out, size_t cap)
{
    uv_buf_t *iov = NULL;
    size_t iov_cap = 0, n = 0, iovs;
    while ((iovs = outq__start(q, &iov, &iov_cap)) > 0) {
        for (size_t i = 0; i < iovs; i++) {
            assert_true(n + iov[i].len <= cap);
            memcpy(out + n, iov[i].base, iov[i].len);
            n += iov[i].len;
        }
        outq__done(q);
    }
    free(iov);
    return n;
}

static sbuf *shared_of(const char *text, size_t len)
{
    sbuf *sb = sbuf__new(len);
    assert_non_null(sb);
    for (size_t i = 0; i < len; i++)
        sb->data[i] = text[i % strlen(text)];
    return sb;
}

static void test_bytes_in_order(void **state)
{
    (void)state;
    outq q;
    memset(&q, 0, sizeof q);
    sbuf *small = shared_of("abc", 3), *big = shared_of("0123456789", 5000);
    assert_int_equal(outq__push_frame(&q, "H1", 2, "A", 1, small), 0);
    assert_int_equal(outq__push_frame(&q, "H2", 2, NULL, 0, big), 0);
    char *p = outq__frame(&q, 4);
    assert_non_null(p);
    memcpy(p, "tail", 4);
    assert_int_equal(q.queued, 2 + 1 + 3 + 2 + 5000 + 4);
    /* The big part is referenced, not copied; the small one copied. */
    assert_int_equal(big->refs, 2);
    assert_int_equal(small->refs, 1);
    sbuf__unref(small);
    char *out = malloc(6000);
    assert_non_null(out);
    size_t n = drain(&q, out, 6000);
    assert_int_equal(n, 5012);
    assert_memory_equal(out, "H1Aabc", 6);
    assert_memory_equal(out + 6, "H2", 2);
    assert_memory_equal(out + 8, big->data, 5000);
    assert_memory_equal(out + 5008, "tail", 4);
    assert_int_equal(big->refs, 1); /* released once written */
    assert_int_equal(q.queued, 0);
    /* A busy queue keeps its chunk; one drained after a small write keeps nothing. */
    p = outq__frame(&q, 2);
    assert_non_null(p);
    memcpy(p, "ok", 2);
    assert_int_equal(drain(&q, out, 6000), 2);
    assert_memory_equal(out, "ok", 2);
    assert_null(q.chunk);
    assert_null(q.pend);
    sbuf__unref(big);
    free(out);
    outq__free(&q);
}

static void test_frame_ends_tracked(void **state)
{
    (void)state;
    outq q;
    memset(&q, 0, sizeof q);
    q.track_frames = 1;
    sbuf *big = shared_of("x", 3000), *small = shared_of("y", 10);
    uint64_t want[2000];
    size_t nwant = 0;
    uint64_t at = 0;
    /* 2000 frames: heart-beats, small copied frames, frames with a referenced part. More
     * than one write's worth of pieces, so ends cross write boundaries. */
    for (int i = 0; i < 2000; i++) {
        if (i % 3 == 0) {
            char *p = outq__frame(&q, 1);
            assert_non_null(p);
            *p = '\n';
            at += 1;
        } else if (i % 3 == 1) {
            assert_int_equal(outq__push_frame(&q, "MSG\n", 4, "ack:1\n", 6, small), 0);
            at += 4 + 6 + 10;
        } else {
            assert_int_equal(outq__push_frame(&q, "MSG\n", 4, NULL, 0, big), 0);
            at += 4 + 3000;
        }
        want[nwant++] = at;
    }
    assert_int_equal(q.total, at);
    uv_buf_t *iov = NULL;
    size_t iov_cap = 0, iovs, k = 0, writes = 0;
    uint64_t pos = 0;
    while ((iovs = outq__start(&q, &iov, &iov_cap)) > 0) {
        writes++;
        for (size_t i = 0; i < iovs; i++)
            pos += iov[i].len;
        uint64_t end;
        /* Every end inside what was written so far is reported, in order. */
        while (outq__frame_end(&q, &end) && end <= pos) {
            assert_true(k < nwant);
            assert_int_equal(end, want[k]);
            k++;
            outq__frame_taken(&q);
        }
        outq__done(&q);
    }
    assert_true(writes > 1);
    assert_int_equal(k, nwant);
    uint64_t end;
    assert_int_equal(outq__frame_end(&q, &end), 0);
    free(iov);
    sbuf__unref(big);
    sbuf__unref(small);
    outq__free(&q);
}

/* A frame written in place gives back the room it did not use, whether it extended the
 * copied bytes before it or began a new chunk; one closed empty leaves nothing behind;
 * each kept one is a tracked frame ending where its last byte does. */
static void test_frame_in_place(void **state)
{
    (void)state;
    outq q;
    memset(&q, 0, sizeof q);
    q.track_frames = 1;
    char *p = outq__frame(&q, 3);
    assert_non_null(p);
    memcpy(p, "HB\n", 3);
    p = outq__frame_open(&q, 100); /* room in the first chunk: extends its entry */
    assert_non_null(p);
    memcpy(p, "first", 5);
    outq__frame_close(&q, 5);
    assert_int_equal(q.npend, 1);
    assert_int_equal(q.queued, 8);
    assert_int_equal(q.total, 8);
    p = outq__frame_open(&q, 1000); /* needs a new chunk: an entry of its own */
    assert_non_null(p);
    memcpy(p, "dropped", 7);
    outq__frame_close(&q, 0);
    assert_int_equal(q.npend, 1);
    assert_int_equal(q.queued, 8);
    p = outq__frame_open(&q, 1000);
    assert_non_null(p);
    memcpy(p, "second", 6);
    outq__frame_close(&q, 6);
    p = outq__frame(&q, 4);
    assert_non_null(p);
    memcpy(p, "tail", 4);
    assert_int_equal(q.queued, 18);
    assert_int_equal(q.total, 18);
    static const uint64_t ends[] = { 3, 8, 14, 18 };
    for (size_t i = 0; i < 4; i++) {
        uint64_t end;
        assert_int_equal(outq__frame_end(&q, &end), 1);
        assert_int_equal(end, ends[i]);
        outq__frame_taken(&q);
    }
    char out[64];
    assert_int_equal(drain(&q, out, sizeof out), 18);
    assert_memory_equal(out, "HB\nfirstsecondtail", 18);
    outq__free(&q);
}

static void test_untracked_records_nothing(void **state)
{
    (void)state;
    outq q;
    memset(&q, 0, sizeof q);
    char *p = outq__frame(&q, 3);
    assert_non_null(p);
    memcpy(p, "abc", 3);
    uint64_t end;
    assert_int_equal(outq__frame_end(&q, &end), 0);
    assert_null(q.ends);
    char out[8];
    assert_int_equal(drain(&q, out, sizeof out), 3);
    outq__free(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_in_order),
        cmocka_unit_test(test_frame_ends_tracked),
        cmocka_unit_test(test_frame_in_place),
        cmocka_unit_test(test_untracked_records_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
