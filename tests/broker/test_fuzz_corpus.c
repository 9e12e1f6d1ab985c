/* test_fuzz_corpus.c: replays every input of the broker fuzz corpus (tests/fuzz/broker_corpus/,
 * read from the top of the source tree) through the fuzz target's own code, fuzz_broker.c,
 * included here: each input runs one broker to a clean stop under every invariant the target
 * checks (a broken one aborts, naming the input). The seeds of make_broker_corpus.sh must
 * also reach the counts tests/fuzz/broker_corpus.expect gives them (format at its head);
 * inputs the fuzzer added (no expectation) only have to pass.
 * Usage: test_fuzz_corpus [FILE|DIR]...  replays those instead and prints their counts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <sys/stat.h>

#include "../fuzz/fuzz_broker.c"

#define CORPUS_DIR "tests/fuzz/broker_corpus"
#define EXPECT_FILE "tests/fuzz/broker_corpus.expect"

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fb_bytes b = { NULL, 0, 0 };
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
        put(&b, buf, n);
    int bad = ferror(fp);
    fclose(fp);
    put(&b, "", 1);
    if (bad) {
        free(b.p);
        return NULL;
    }
    *len = b.len - 1;
    return b.p;
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Replay one file; summary gets its counts. */
static void replay(const char *path, char *summary, size_t cap)
{
    size_t len;
    char *data = slurp(path, &len);
    if (!data)
        fail_msg("cannot read %s", path);
    fb_input_name = path;
    fb_run((const uint8_t *)data, len, summary, cap);
    fb_input_name = NULL;
    free(data);
}

/* Does every "key=value" of want appear among the words of got? */
static int counts_match(const char *want, const char *got)
{
    char words[600];
    snprintf(words, sizeof words, " %s ", got);
    const char *w = want;
    while (*w) {
        w += strspn(w, " ");
        size_t n = strcspn(w, " ");
        if (!n)
            break;
        char word[64];
        if (n + 3 > sizeof word)
            return 0;
        snprintf(word, sizeof word, " %.*s ", (int)n, w);
        if (!strstr(words, word))
            return 0;
        w += n;
    }
    return 1;
}

static void test_corpus(void **state)
{
    (void)state;
    size_t elen;
    char *expect = slurp(EXPECT_FILE, &elen);
    if (!expect)
        fail_msg("no " EXPECT_FILE " (sh tests/fuzz/make_broker_corpus.sh writes it)");
    struct dirent **names;
    int n = scandir(CORPUS_DIR, &names, NULL, alphasort);
    if (n < 0)
        fail_msg("cannot list " CORPUS_DIR);
    int replayed = 0, checked = 0, bad = 0;
    for (int i = 0; i < n; i++) {
        char path[512], summary[512];
        snprintf(path, sizeof path, CORPUS_DIR "/%s", names[i]->d_name);
        if (names[i]->d_name[0] != '.' && is_file(path)) {
            replay(path, summary, sizeof summary);
            replayed++;
            /* Its expectation: a line "<name> key=value ...". */
            size_t nl = strlen(names[i]->d_name);
            for (char *line = expect; line && *line;) {
                char *next = strchr(line, '\n');
                if (line[0] != '#' && strncmp(line, names[i]->d_name, nl) == 0 &&
                    line[nl] == ' ') {
                    char want[512];
                    size_t wl = next ? (size_t)(next - line) : strlen(line);
                    snprintf(want, sizeof want, "%.*s", (int)(wl - nl), line + nl);
                    checked++;
                    if (!counts_match(want, summary)) {
                        print_error("%s: want%s\n%*s  got %s\n", names[i]->d_name, want,
                                    (int)nl, "", summary);
                        bad++;
                    }
                }
                line = next ? next + 1 : NULL;
            }
        }
        free(names[i]);
    }
    free(names);
    /* Every expectation names a seed that is there. */
    int lines = 0;
    for (char *line = expect; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1
                                                                        : NULL)
        if (line[0] != '#' && line[0] != '\n')
            lines++;
    free(expect);
    printf("%d inputs replayed, %d checked against " EXPECT_FILE "\n", replayed, checked);
    assert_int_equal(bad, 0);
    assert_int_equal(checked, lines);
    assert_true(replayed >= checked);
}

static void replay_arg(const char *arg)
{
    char summary[512];
    if (is_file(arg)) {
        replay(arg, summary, sizeof summary);
        printf("%s: %s\n", arg, summary);
        return;
    }
    struct dirent **names;
    int n = scandir(arg, &names, NULL, alphasort);
    if (n < 0) {
        perror(arg);
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", arg, names[i]->d_name);
        if (names[i]->d_name[0] != '.' && is_file(path)) {
            replay(path, summary, sizeof summary);
            printf("%s: %s\n", names[i]->d_name, summary);
        }
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            replay_arg(argv[i]);
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
