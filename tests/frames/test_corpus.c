/* test_corpus.c: replays every file of the fuzz corpus (tests/fuzz/corpus/, read from the
 * top of the source tree) through the parser in one feed and one byte at a time, with
 * default limits, with small limits and with the file's own settings: the feeds must agree
 * and nothing may crash. A file starts with the fuzz target's 4 setting bytes
 * (fuzz_settings.h). The seeds of make_corpus.sh must also give the events it wrote for them
 * to tests/fuzz/corpus.expect (format at its head), with their allocator failing too when
 * they say so; files the fuzzer added (no expectation) are only checked for agreement.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <sys/stat.h>

#include "frames_check.h"
#include "../fuzz/fuzz_settings.h"

#define CORPUS_DIR "tests/fuzz/corpus"
#define EXPECT_FILE "tests/fuzz/corpus.expect"
#define FAILS_SUFFIX "+alloc-fails"

static const stomp_limits SMALL = { 12, 24, 4, 96, 32 };

static char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0)
            break;
    }
    assert_int_equal(ferror(fp), 0);
    fclose(fp);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* ---- corpus.expect ---- */

typedef struct expectation {
    char *key;    /* seed name, or seed name + FAILS_SUFFIX */
    char *events; /* the rest of the line */
    int used;
} expectation;

typedef struct expectations {
    expectation *e;
    size_t n;
} expectations;

static void expectations_load(expectations *x)
{
    memset(x, 0, sizeof *x);
    size_t len;
    char *text = read_file(EXPECT_FILE, &len);
    if (!text)
        fail_msg("no " EXPECT_FILE " (sh tests/fuzz/make_corpus.sh writes it)");
    size_t cap = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        size_t k = strcspn(line, " ");
        const char *rest = line + k + strspn(line + k, " ");
        if (x->n == cap) {
            cap = cap ? 2 * cap : 64;
            x->e = realloc(x->e, cap * sizeof *x->e);
            assert_non_null(x->e);
        }
        expectation *e = &x->e[x->n++];
        e->key = check_dup(line, k);
        e->events = check_dup(rest, strlen(rest));
        e->used = 0;
        for (size_t i = 0; i + 1 < x->n; i++)
            if (strcmp(x->e[i].key, e->key) == 0)
                fail_msg(EXPECT_FILE ": %s twice", e->key);
    }
    free(text);
}

static void expectations_free(expectations *x)
{
    for (size_t i = 0; i < x->n; i++) {
        free(x->e[i].key);
        free(x->e[i].events);
    }
    free(x->e);
}

static expectation *expectation_find(expectations *x, const char *name, const char *suffix)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < x->n; i++) {
        const char *k = x->e[i].key;
        if (strncmp(k, name, n) == 0 && strcmp(k + n, suffix) == 0)
            return &x->e[i];
    }
    return NULL;
}

/* Decode %XX escapes of s in place; returns the decoded length. */
static size_t percent_decode(char *s)
{
    size_t w = 0;
    for (size_t r = 0; s[r]; r++) {
        unsigned x;
        if (s[r] == '%' && sscanf(s + r + 1, "%2x", &x) == 1) {
            s[w++] = (char)x;
            r += 2;
        } else {
            s[w++] = s[r];
        }
    }
    s[w] = '\0';
    return w;
}

static const struct {
    const char *name;
    stomp_err err;
} error_names[] = {
    { "NOMEM", STOMP_E_NOMEM },
    { "COMMAND_TOO_LONG", STOMP_E_COMMAND_TOO_LONG },
    { "BAD_COMMAND", STOMP_E_BAD_COMMAND },
    { "LINE_TOO_LONG", STOMP_E_LINE_TOO_LONG },
    { "TOO_MANY_HEADERS", STOMP_E_TOO_MANY_HEADERS },
    { "HEADERS_TOO_LONG", STOMP_E_HEADERS_TOO_LONG },
    { "BAD_HEADER", STOMP_E_BAD_HEADER },
    { "BAD_ESCAPE", STOMP_E_BAD_ESCAPE },
    { "BAD_CONTENT_LENGTH", STOMP_E_BAD_CONTENT_LENGTH },
    { "BODY_TOO_LONG", STOMP_E_BODY_TOO_LONG },
    { "MISSING_NUL", STOMP_E_MISSING_NUL },
};

static stomp_err error_named(const char *key, const char *name)
{
    for (size_t i = 0; i < sizeof error_names / sizeof error_names[0]; i++)
        if (strcmp(error_names[i].name, name) == 0)
            return error_names[i].err;
    fail_msg("%s: unknown error %s", key, name);
    return STOMP_OK;
}

/* The value check "+NAME=VALUE" on frame e. */
static void check_header(const char *key, const rec_event *e, char *tok)
{
    char *eq = strchr(tok, '=');
    if (!eq)
        fail_msg("%s: malformed token +%s", key, tok);
    *eq = '\0';
    size_t nl = percent_decode(tok), vl = percent_decode(eq + 1);
    for (size_t i = 0; i < e->nheaders; i++) {
        const rec_header *h = &e->headers[i];
        if (h->name_len != nl || memcmp(h->name, tok, nl) != 0)
            continue;
        if (h->value_len != vl || memcmp(h->value, eq + 1, vl) != 0)
            fail_msg("%s: header %s has another value", key, tok);
        return;
    }
    fail_msg("%s: no header %s", key, tok);
}

/* One event token against event i of r. */
static void check_event(const char *key, const parse_result *r, size_t i, char *tok)
{
    if (i >= r->n)
        fail_msg("%s: expected %s after the last event", key, tok);
    const rec_event *e = &r->ev[i];
    if (strcmp(tok, "HB") == 0) {
        if (e->ev != STOMP_EV_HEARTBEAT)
            fail_msg("%s: event %zu is not a heart-beat", key, i);
    } else if (strncmp(tok, "E:", 2) == 0) {
        char *at = strchr(tok, '@');
        if (at)
            *at = '\0';
        stomp_err want = error_named(key, tok + 2);
        if (e->ev != STOMP_EV_ERROR || r->err != want)
            fail_msg("%s: event %zu: expected error %s, got %s", key, i, tok + 2,
                     e->ev == STOMP_EV_ERROR ? stomp_strerror(r->err) : "another event");
        if (want != STOMP_E_NOMEM && (!at || strtoull(at + 1, NULL, 10) != r->err_off))
            fail_msg("%s: error %s at offset %llu, expected %s", key, tok + 2,
                     (unsigned long long)r->err_off, at ? at + 1 : "one");
    } else {
        char cmd[64];
        size_t nh, bl;
        if (sscanf(tok, "%63[^:]:%zu:%zu", cmd, &nh, &bl) != 3)
            fail_msg("%s: malformed token %s", key, tok);
        if (e->ev != STOMP_EV_FRAME || strcmp(e->cmd_name, cmd) != 0)
            fail_msg("%s: event %zu is not a %s frame", key, i, cmd);
        if (e->nheaders != nh || e->body_len != bl)
            fail_msg("%s: %s frame with %zu headers and a %zu-byte body, expected %s", key,
                     cmd, e->nheaders, e->body_len, tok);
    }
}

/* r is exactly the events spelled in events. */
static void check_events(const char *key, const char *events, const parse_result *r)
{
    char *copy = check_dup(events, strlen(events));
    size_t i = 0;
    int more = 0;
    for (char *tok = strtok(copy, " "); tok; tok = strtok(NULL, " ")) {
        if (tok[0] == '+') {
            if (i == 0 || r->ev[i - 1].ev != STOMP_EV_FRAME)
                fail_msg("%s: +%s follows no frame", key, tok + 1);
            check_header(key, &r->ev[i - 1], tok + 1);
        } else if (strcmp(tok, "MORE") == 0) {
            more = 1;
        } else {
            check_event(key, r, i++, tok);
        }
    }
    if (i != r->n)
        fail_msg("%s: %zu events, expected %zu", key, r->n, i);
    if (!r->failed && (r->tail > 0) != more)
        fail_msg("%s: %s inside a frame", key, more ? "does not end" : "ends");
    free(copy);
}

/* ---- replay ---- */

typedef struct fail_ctx {
    size_t calls, fail_at;
} fail_ctx;

static void *failing_realloc(void *ctx, void *ptr, size_t size)
{
    fail_ctx *a = ctx;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    if (++a->calls == a->fail_at)
        return NULL;
    return realloc(ptr, size);
}

/* Parse in one feed and one byte at a time, assert both agree; r gets the first. */
static void agree(const char *name, const parse_opts *o, const char *data, size_t len,
                  parse_result *r)
{
    size_t *cuts = malloc((len ? len : 1) * sizeof *cuts);
    assert_non_null(cuts);
    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    parse_result bytes;
    run_chunks(o, data, len, NULL, 0, r);
    run_chunks(o, data, len, cuts, len ? len - 1 : 0, &bytes);
    const char *d = result_diff(r, &bytes);
    if (d)
        fail_msg("%s: one byte at a time differs from one feed: %s", name, d);
    result_free(&bytes);
    free(cuts);
}

/* Replay one input under default and small limits, and under its own settings; check
 * those against the expectations when given (x NULL: agreement only). Returns 1 when it
 * was checked against expectations. */
static int replay(const char *name, const char *data, size_t len, expectations *x)
{
    static const uint8_t none[4] = { 2, 0, 0, 0 }; /* 1.2, default limits */
    settings st = settings_read(len >= 4 ? (const uint8_t *)data : none);
    if (len >= 4) {
        data += 4;
        len -= 4;
    }
    parse_opts o = { .version = st.version, .flags = st.pflags,
                     .switch_version = st.switch_version };
    const stomp_limits *limits[3] = { NULL, &SMALL, &st.limits };
    parse_result r;
    for (size_t l = 0; l < 3; l++) {
        o.limits = limits[l];
        agree(name, &o, data, len, &r);
        if (l < 2)
            result_free(&r);
    }
    expectation *e = x ? expectation_find(x, name, "") : NULL;
    expectation *ef = x ? expectation_find(x, name, FAILS_SUFFIX) : NULL;
    if (e) {
        e->used = 1;
        check_events(e->key, e->events, &r);
    }
    result_free(&r);
    if (st.alloc_fail && e && !ef)
        fail_msg("%s: its allocator fails, but " EXPECT_FILE " says not what then", name);
    if (ef) {
        if (!st.alloc_fail)
            fail_msg("%s: its allocator never fails", ef->key);
        ef->used = 1;
        /* One feed only: where an allocation fails depends on the chunking. */
        fail_ctx a = { 0, st.fail_at };
        o.alloc = failing_realloc;
        o.alloc_ctx = &a;
        run_chunks(&o, data, len, NULL, 0, &r);
        check_events(ef->key, ef->events, &r);
        result_free(&r);
    }
    return e != NULL;
}

/* The replay itself works, corpus or not. */
static void test_replay_sanity(void **state)
{
    (void)state;
    replay("sample", S("\x02\x00\x00\x00SEND\ndestination:/q\ncontent-length:3\n\na\0b\0\n"),
           NULL);
    replay("sample", S("\x09\x00\x00\x00CONNECT\nlogin:a\\c\n\n\0SEND\nk:a\\nb\n\n\0"), NULL);
    replay("sample", S("\x01\x00\x00\x00SEND\nk:\\t\n\n\0"), NULL);
    replay("sample", S("\x00\x00\x00\x00\r\n\nSEND\n\nbody\0"), NULL);
    replay("sample", S("\x02\x00"), NULL);
    replay("sample", S(""), NULL);
    replay("sample", S("\x02\x00\x00\x00SEND\nk:\\t\n\n\0"), NULL);
    replay("sample", S("\x92\x00\x2f\x01SEND\na:1\nb:2\nc:3\nd:4\n\n\0"), NULL);
}

/* Every kind of token of corpus.expect reads as it should. */
static void test_expectation_tokens(void **state)
{
    (void)state;
    parse_opts o = { .version = STOMP_V12 };
    parse_result r;
    run_chunks(&o, S("SEND\nk:a\\nb\n\nxy\0\nSEND\n\n"), NULL, 0, &r);
    check_events("t", "SEND:1:2 +k=a%0Ab HB MORE", &r);
    result_free(&r);
    run_chunks(&o, S("\nSEND\nk:a\\qb\n\n\0"), NULL, 0, &r);
    check_events("t", "HB E:BAD_ESCAPE@9", &r);
    result_free(&r);
}

static void test_corpus(void **state)
{
    (void)state;
    DIR *dir = opendir(CORPUS_DIR);
    if (!dir) {
        print_message("no " CORPUS_DIR "; nothing to replay\n");
        skip();
    }
    expectations x;
    expectations_load(&x);
    size_t files = 0, expected = 0;
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
        assert_non_null(data);
        /* A seed is named for what it tests; its expectation goes by that name. */
        char name[256];
        size_t nl = strlen(de->d_name);
        if (nl > 6 && strcmp(de->d_name + nl - 6, ".stomp") == 0)
            nl -= 6;
        snprintf(name, sizeof name, "%.*s", (int)nl, de->d_name);
        expected += (size_t)replay(name, data, len, &x);
        free(data);
        files++;
    }
    closedir(dir);
    for (size_t i = 0; i < x.n; i++)
        if (!x.e[i].used)
            fail_msg(EXPECT_FILE ": %s has no seed in " CORPUS_DIR, x.e[i].key);
    expectations_free(&x);
    print_message("replayed %zu files: %zu checked against " EXPECT_FILE
                  ", %zu for agreement only\n",
                  files, expected, files - expected);
    if (files == 0) {
        print_message(CORPUS_DIR " is empty; nothing to replay\n");
        skip();
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_sanity),
        cmocka_unit_test(test_expectation_tokens),
        cmocka_unit_test(test_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
