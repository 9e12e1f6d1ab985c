/* test_corpus.c: replays every file of the fuzz corpus (tests/fuzz/corpus/, read from the
 * top of the source tree) through the parser in one feed and one byte at a time, with
 * default and with small limits: both feeds must agree and nothing may crash. A file
 * starts with the fuzz target's 4 setting bytes; the first picks version, lenient escapes
 * and a version switch after the first frame. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <sys/stat.h>

#include "frames_check.h"

#define CORPUS_DIR "tests/fuzz/corpus"

static const stomp_limits SMALL = { 12, 24, 4, 96, 32 };

/* Replay one input: its setting byte decides version and flags, the rest is the stream. */
static void replay(const char *name, const char *data, size_t len)
{
    static const stomp_version versions[4] = { STOMP_V10, STOMP_V11, STOMP_V12, STOMP_V12 };
    parse_opts o = { .version = STOMP_V12 };
    if (len >= 4) {
        unsigned s0 = (unsigned char)data[0];
        o.version = versions[s0 & 3u];
        o.flags = (s0 & 4u) ? STOMP_PARSE_LENIENT_ESCAPES : 0;
        o.switch_version = (s0 & 8u) != 0;
        data += 4;
        len -= 4;
    }
    size_t *cuts = malloc((len ? len : 1) * sizeof *cuts);
    assert_non_null(cuts);
    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    const stomp_limits *limits[2] = { NULL, &SMALL };
    for (size_t l = 0; l < 2; l++) {
        parse_result whole, bytes;
        o.limits = limits[l];
        run_chunks(&o, data, len, NULL, 0, &whole);
        run_chunks(&o, data, len, cuts, len ? len - 1 : 0, &bytes);
        const char *d = result_diff(&whole, &bytes);
        if (d)
            fail_msg("%s: one byte at a time differs from one feed: %s", name, d);
        result_free(&whole);
        result_free(&bytes);
    }
    free(cuts);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0)
            break;
    }
    assert_int_equal(ferror(fp), 0);
    fclose(fp);
    *len = n;
    return buf;
}

/* The replay itself works, corpus or not. */
static void test_replay_sanity(void **state)
{
    (void)state;
    replay("sample", S("\x02\x00\x00\x00SEND\ndestination:/q\ncontent-length:3\n\na\0b\0\n"));
    replay("sample", S("\x09\x00\x00\x00CONNECT\nlogin:a\\c\n\n\0SEND\nk:a\\nb\n\n\0"));
    replay("sample", S("\x01\x00\x00\x00SEND\nk:\\t\n\n\0"));
    replay("sample", S("\x00\x00\x00\x00\r\n\nSEND\n\nbody\0"));
    replay("sample", S("\x02\x00"));
    replay("sample", S(""));
    replay("sample", S("\x02\x00\x00\x00SEND\nk:\\t\n\n\0"));
}

static void test_corpus(void **state)
{
    (void)state;
    DIR *dir = opendir(CORPUS_DIR);
    if (!dir) {
        print_message("no " CORPUS_DIR "; nothing to replay\n");
        skip();
    }
    size_t files = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[1024];
        int n = snprintf(path, sizeof path, "%s/%s", CORPUS_DIR, de->d_name);
        assert_true(n > 0 && (size_t)n < sizeof path);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        size_t len;
        char *data = read_file(path, &len);
        replay(de->d_name, data, len);
        free(data);
        files++;
    }
    closedir(dir);
    print_message("replayed %zu files\n", files);
    if (files == 0) {
        print_message(CORPUS_DIR " is empty; nothing to replay\n");
        skip();
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_sanity),
        cmocka_unit_test(test_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
