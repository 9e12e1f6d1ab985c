/* test_wild.c: the trie of wildcard patterns (route/wild.h): what a pattern matches ('*' one
 * element, '>' and '#' the rest, separators kept apart), malformed patterns, removal (the
 * trie empties), and the trie agreeing with the one-pattern matcher on every pair of a
 * generated set of patterns and names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

static dest_t *pattern(const char *name)
{
    size_t len = strlen(name);
    dest_t *d = calloc(1, sizeof *d + len + 1);
    memcpy(d->name, name, len);
    d->link.len = len;
    d->link.name = d->name;
    return d;
}

typedef struct hits {
    dest_t *d[512];
    int n;
} hits;

static void hit(void *arg, dest_t *d)
{
    hits *h = arg;
    h->d[h->n++] = d;
}

/* The patterns (of names) that match name, sorted and joined by spaces, into out. */
static void matched(wild_trie *t, const char *name, char *out, size_t cap)
{
    static hits h;
    h.n = 0;
    wild__match(t, name, strlen(name), hit, &h);
    const char *names[512];
    for (int i = 0; i < h.n; i++)
        names[i] = h.d[i]->name;
    for (int i = 1; i < h.n; i++)
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *x = names[j];
            names[j] = names[j - 1];
            names[j - 1] = x;
        }
    out[0] = '\0';
    for (int i = 0; i < h.n; i++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? " " : "", names[i]);
}

static void test_matching(void **state)
{
    (void)state;
    static const char *const pats[] = { "/topic/a.*", "/topic/a.>", "/topic/a.#", "/topic/*.b",
                                        "/topic/>", "/topic/a.*.c", "/topic/a/*", "/queue/*" };
    wild_trie t = { NULL, 0 };
    dest_t *d[8];
    for (int i = 0; i < 8; i++) {
        d[i] = pattern(pats[i]);
        assert_true(wild__is_pattern(pats[i], strlen(pats[i])));
        assert_null(wild__check(pats[i], strlen(pats[i])));
        assert_int_equal(wild__add(&t, d[i]), BROKER_OK);
    }
    char got[512];
    matched(&t, "/topic/a.b", got, sizeof got);
    assert_string_equal(got, "/topic/*.b /topic/> /topic/a.# /topic/a.* /topic/a.>");
    matched(&t, "/topic/a.x.c", got, sizeof got);
    assert_string_equal(got, "/topic/> /topic/a.# /topic/a.*.c /topic/a.>");
    matched(&t, "/topic/a", got, sizeof got);
    assert_string_equal(got, "/topic/>"); /* '>' needs an element after a. */
    matched(&t, "/topic/a/b", got, sizeof got);
    assert_string_equal(got, "/topic/> /topic/a/*");
    matched(&t, "/queue/x", got, sizeof got);
    assert_string_equal(got, "/queue/*");
    matched(&t, "/queue/x.y", got, sizeof got);
    assert_string_equal(got, "");
    matched(&t, "/other", got, sizeof got);
    assert_string_equal(got, "");
    for (int i = 0; i < 8; i++) {
        wild__remove(&t, d[i]);
        free(d[i]);
    }
    assert_null(t.root);
    assert_int_equal(t.n, 0);
}

static void test_names(void **state)
{
    (void)state;
    assert_false(wild__is_pattern("/queue/a*b", 10));
    assert_false(wild__is_pattern("/queue/a.b>", 11));
    assert_false(wild__is_pattern("/queue/#x", 9));
    assert_true(wild__is_pattern("*", 1));
    assert_true(wild__is_pattern("/queue/#", 8));
    assert_string_equal(wild__check("/topic/>.a", 10),
                        "the wildcard > (or #) must be the last element");
    assert_string_equal(wild__check("/topic/#/a", 10),
                        "the wildcard > (or #) must be the last element");
    assert_null(wild__check("/topic/*.*.>", 12));
    assert_true(wild__matches("/topic/a.*", 10, "/topic/a.b", 10));
    assert_false(wild__matches("/topic/a.*", 10, "/topic/a/b", 10));
    assert_false(wild__matches("/topic/a.*", 10, "/topic/a.b.c", 12));
    assert_true(wild__matches("/topic/a.>", 10, "/topic/a.b.c", 12));
    assert_false(wild__matches("/topic/a.>", 10, "/topic/a", 8));
}

/* Every pattern of a generated set against every name of another: the trie and the
 * one-pattern matcher agree. */
static void test_agrees(void **state)
{
    (void)state;
    static const char *const el[] = { "a", "b", "*", ">", "#" };
    static const char seps[] = "./";
    wild_trie t = { NULL, 0 };
    dest_t *pats[400];
    int np = 0;
    unsigned seed = 7;
    while (np < 400) {
        char buf[64] = "/t";
        int n = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 4;
        for (int i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            size_t l = strlen(buf);
            buf[l] = seps[(seed >> 8) & 1];
            snprintf(buf + l + 1, sizeof buf - l - 1, "%s", el[(seed >> 16) % 5]);
        }
        if (wild__check(buf, strlen(buf)))
            continue;
        pats[np] = pattern(buf);
        assert_int_equal(wild__add(&t, pats[np]), BROKER_OK);
        np++;
    }
    for (int k = 0; k < 300; k++) {
        char name[64] = "/t";
        int n = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 5;
        for (int i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            size_t l = strlen(name);
            name[l] = seps[(seed >> 8) & 1];
            name[l + 1] = "abc"[(seed >> 16) % 3];
            name[l + 2] = '\0';
        }
        static hits h;
        h.n = 0;
        int want = 0;
        for (int i = 0; i < np; i++)
            want += wild__matches(pats[i]->name, pats[i]->link.len, name, strlen(name));
        int got = 0;
        wild__match(&t, name, strlen(name), hit, &h);
        got = h.n;
        for (int i = 0; i < h.n; i++)
            assert_true(wild__matches(h.d[i]->name, h.d[i]->link.len, name, strlen(name)));
        if (got != want)
            fail_msg("%s: trie %d, matcher %d", name, got, want);
    }
    for (int i = 0; i < np; i++) {
        wild__remove(&t, pats[i]);
        free(pats[i]);
    }
    assert_null(t.root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matching),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_agrees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
