/* test_selector.c: the selector compiler and evaluator (route/selector.h) on their own: a
 * table of selectors against header sets with the exact three-valued result, every error
 * with its position and text, the limits, and the JMS names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>

#include "route/selector.h"
/* The fuzz target's checks, replayed here on its corpus. */
#include "../fuzz/fuzz_selector.c"

#define CORPUS_DIR "tests/fuzz/selector_corpus"

/* A message: "name=value" pairs separated by ';' (no value after '=' is an empty one). */
typedef struct msg {
    const char *pairs;
    char buf[512];
} msg;

static const char *find(msg *m, const char *name, size_t nlen, size_t *vlen)
{
    snprintf(m->buf, sizeof m->buf, "%s", m->pairs);
    for (char *save = NULL, *kv = strtok_r(m->buf, ";", &save); kv;
         kv = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(kv, '=');
        if (eq && (size_t)(eq - kv) == nlen && memcmp(kv, name, nlen) == 0) {
            *vlen = strlen(eq + 1);
            return eq + 1;
        }
    }
    return NULL;
}

/* The JMS fields as the broker fills them: priority 4 when absent, redelivered false,
 * the delivery mode from persistent. */
static const char *lookup(void *ctx, int field, const char *name, size_t nlen, size_t *vlen)
{
    msg *m = ctx;
    const char *v = find(m, name, nlen, vlen);
    switch (field) {
    case SEL_F_PRIORITY:
        if (!v)
            *vlen = 1, v = "4";
        return v;
    case SEL_F_REDELIVERED:
        if (!v)
            *vlen = 5, v = "false";
        return v;
    case SEL_F_DELIVERY_MODE:
        if (v && strcmp(v, "true") == 0)
            return *vlen = 10, "PERSISTENT";
        return *vlen = 14, "NON_PERSISTENT";
    default:
        return v;
    }
}

static sel_result run(const char *text, const char *pairs)
{
    size_t pos;
    char err[200];
    sel *s = sel__compile(text, strlen(text), &pos, err, sizeof err);
    if (!s)
        fail_msg("%s: error at %zu: %s", text, pos, err);
    msg m = { pairs, { 0 } };
    sel_result r = sel__eval(s, lookup, &m);
    sel__free(s);
    return r;
}

#define F SEL_FALSE
#define T SEL_TRUE
#define U SEL_UNKNOWN

static const struct row {
    const char *selector;
    const char *headers;
    sel_result want;
} rows[] = {
    /* comparisons of strings */
    { "color = 'red'", "color=red", T },
    { "color = 'red'", "color=blue", F },
    { "color = 'red'", "", U },
    { "color <> 'red'", "color=blue", T },
    { "color <> 'red'", "", U },
    { "'red' = color", "color=red", T },
    { "color = 'it''s'", "color=it's", T },
    { "color = ''", "color=", T },
    { "a = b", "a=x;b=x", T },
    { "a < b", "a=x;b=y", U },          /* strings order only as numbers */
    { "a < b", "a=2;b=10", T },         /* both read as numbers */
    { "\"correlation-id\" = 'c1'", "correlation-id=c1", T },
    { "\"we\"\"ird\" = 'x'", "we\"ird=x", T },
    /* headers read as numbers */
    { "weight > 2500", "weight=3000", T },
    { "weight > 2500", "weight=2500", F },
    { "weight >= 2500", "weight=2500", T },
    { "weight < 2500.5", "weight=2500", T },
    { "weight <= 1e3", "weight=1000", T },
    { "weight = 10", "weight=10.0", T },
    { "weight = 10", "weight=+10", T },
    { "weight = -3", "weight=-3", T },
    { "weight > 18", "weight=abc", F },  /* unlike types: false */
    { "NOT (weight > 18)", "weight=abc", T },
    { "weight > 18", "", U },
    { "NOT (weight > 18)", "", U },
    { "weight = 9223372036854775807", "weight=9223372036854775807", T },
    { "weight > 9223372036854775807", "weight=9223372036854775808", T },
    { "weight = -9223372036854775808", "weight=-9223372036854775808", T },
    { "weight = 'ten'", "weight=10", F }, /* string literal vs a number string: strings */
    { "weight = '10'", "weight=10", T },
    /* literals */
    { "x = 0x1F", "x=31", T },
    { "x = 0X1f", "x=31", T },
    { "x = 017", "x=15", T },
    { "x = 0", "x=0", T },
    { "x = 10L", "x=10", T },
    { "x = 1.5", "x=1.5", T },
    { "x = .5", "x=0.5", T },
    { "x = 1.", "x=1", T },
    { "x = 15e-1", "x=1.5", T },
    { "x = 1.5E+2", "x=150", T },
    { "TRUE", "", T },
    { "false", "", F },
    { "NOT FALSE", "", T },
    { "NULL IS NULL", "", T },
    { "1 = 1", "", T },
    { "1 = 1.0", "", T },
    { "'a' = 1", "", F },
    { "TRUE = 1", "", F },
    /* booleans from headers */
    { "flag", "flag=true", T },
    { "flag", "flag=TRUE", T },
    { "flag", "flag=false", F },
    { "flag", "flag=yes", U },
    { "flag", "", U },
    { "flag = TRUE", "flag=True", T },
    { "flag = FALSE", "flag=true", F },
    { "flag <> TRUE", "flag=false", T },
    { "flag = TRUE", "flag=1", F },
    { "NOT flag", "flag=false", T },
    /* three-valued AND, OR, NOT */
    { "a = 1 AND b = 1", "a=1;b=1", T },
    { "a = 1 AND b = 1", "a=1;b=2", F },
    { "a = 1 AND b = 1", "a=1", U },
    { "a = 1 AND b = 1", "a=2", F },
    { "b = 1 AND a = 1", "a=2", F },
    { "a = 1 OR b = 1", "a=2", U },
    { "a = 1 OR b = 1", "a=1", T },
    { "b = 1 OR a = 1", "a=1", T },
    { "a = 1 OR b = 1", "a=2;b=2", F },
    { "NOT (a = 1 OR b = 1)", "a=2", U },
    { "a = 1 OR b = 1 OR c = 1", "c=1", T },
    { "a = 1 AND b = 1 AND c = 1", "a=1;b=1;c=1", T },
    { "a = 1 AND b = 1 AND c = 1", "a=1;b=1", U },
    { "a = 1 AND (b = 1 OR c = 1)", "a=1;c=1", T },
    { "a = 1 OR b = 1 AND c = 1", "a=1", T }, /* AND binds tighter */
    { "(a = 1 OR b = 1) AND c = 1", "a=1", U },
    { "not not a = 1", "a=1", T },
    /* arithmetic */
    { "a + b = 5", "a=2;b=3", T },
    { "a - b = -1", "a=2;b=3", T },
    { "a * 2 + 1 = 7", "a=3", T },
    { "1 + a * 2 = 7", "a=3", T },
    { "(1 + a) * 2 = 8", "a=3", T },
    { "a / 2 = 3", "a=7", T },      /* integer division */
    { "a / 2.0 = 3.5", "a=7", T },
    { "a / 0 = 1", "a=7", U },
    { "a / 0.0 > 1", "a=7", T },    /* infinity */
    { "-a = -7", "a=7", T },
    { "- -9223372036854775808 > 0", "", T }, /* goes on in double */
    { "- -a = 7", "a=7", T },
    { "+a = 7", "a=7", T },
    { "a + 1 = 2", "a=x", U },
    { "a + 1 = 2", "", U },
    { "a * 2 > 9223372036854775807", "a=9223372036854775807", T }, /* overflows to double */
    { "a - 1 = 2", "a=3.0", T },
    /* BETWEEN */
    { "a BETWEEN 1 AND 10", "a=5", T },
    { "a BETWEEN 1 AND 10", "a=1", T },
    { "a BETWEEN 1 AND 10", "a=10", T },
    { "a BETWEEN 1 AND 10", "a=11", F },
    { "a BETWEEN 1 AND 10", "", U },
    { "a NOT BETWEEN 1 AND 10", "a=11", T },
    { "a NOT BETWEEN 1 AND 10", "a=5", F },
    { "a NOT BETWEEN 1 AND 10", "", U },
    { "a BETWEEN b AND c", "a=5;b=1", U },
    { "a BETWEEN b AND c", "a=5;b=6", F },
    { "a BETWEEN 1 AND 10 AND b = 1", "a=5;b=1", T },
    { "a BETWEEN 1.5 AND 2.5", "a=2", T },
    /* IN */
    { "c IN ('a', 'b')", "c=b", T },
    { "c IN ('a', 'b')", "c=z", F },
    { "c IN ('a')", "", U },
    { "c NOT IN ('a', 'b')", "c=z", T },
    { "c NOT IN ('a', 'b')", "c=a", F },
    { "c NOT IN ('a', 'b')", "", U },
    { "c in ('it''s')", "c=it's", T },
    /* LIKE */
    { "n LIKE 'ab%'", "n=abc", T },
    { "n LIKE 'ab%'", "n=ab", T },
    { "n LIKE 'ab%'", "n=xab", F },
    { "n LIKE '%b%'", "n=abc", T },
    { "n LIKE '_b_'", "n=abc", T },
    { "n LIKE '_b_'", "n=abcd", F },
    { "n LIKE '_'", "n=\xc3\xa9", T }, /* one UTF-8 character */
    { "n LIKE '%c'", "n=abcbc", T },
    { "n LIKE '%bc%bc'", "n=abcxbc", T },
    { "n LIKE 'a%b%c'", "n=aXbYc", T },
    { "n LIKE 'a%b%c'", "n=aXbY", F },
    { "n LIKE '%'", "n=", T },
    { "n LIKE ''", "n=", T },
    { "n LIKE ''", "n=a", F },
    { "n LIKE '100\\%' ESCAPE '\\'", "n=100%", T },
    { "n LIKE '100\\%' ESCAPE '\\'", "n=1000", F },
    { "n LIKE 'a!_b' ESCAPE '!'", "n=a_b", T },
    { "n LIKE 'a!_b' ESCAPE '!'", "n=axb", F },
    { "n LIKE 'a%'", "", U },
    { "n NOT LIKE 'a%'", "n=abc", F },
    { "n NOT LIKE 'a%'", "n=xyz", T },
    { "n NOT LIKE 'a%'", "", U },
    /* IS NULL */
    { "n IS NULL", "", T },
    { "n IS NULL", "n=", F },
    { "n IS NOT NULL", "n=x", T },
    { "n IS NOT NULL", "", F },
    { "n = 1 OR n IS NULL", "", T },
    /* keywords in any case */
    { "a = 1 and b = 2 Or c = 3", "c=3", T },
    { "a Between 1 aNd 2", "a=2", T },
    { "a not in ('x')", "a=y", T },
    { "a is not null", "a=y", T },
    /* JMS names */
    { "JMSPriority = 4", "", T },
    { "JMSPriority > 5", "priority=9", T },
    { "JMSPriority > 5", "priority=1", F },
    { "JMSMessageID = '42'", "message-id=42", T },
    { "JMSCorrelationID = 'c'", "correlation-id=c", T },
    { "JMSType = 'car'", "type=car", T },
    { "JMSTimestamp > 1000", "timestamp=2000", T },
    { "JMSTimestamp > 1000", "", U },
    { "JMSExpiration = 5", "expires=5", T },
    { "JMSDestination = '/queue/a'", "destination=/queue/a", T },
    { "JMSRedelivered = FALSE", "", T },
    { "JMSRedelivered", "redelivered=true", T },
    { "JMSDeliveryMode = 'PERSISTENT'", "persistent=true", T },
    { "JMSDeliveryMode = 'NON_PERSISTENT'", "", T },
    { "JMSType = 'car' AND color = 'blue' AND weight > 2500",
      "type=car;color=blue;weight=3000", T },
    /* whitespace */
    { "  a\t=\n'x'  ", "a=x", T },
    { "a='x'AND b='y'", "a=x;b=y", T },
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        sel_result got = run(rows[i].selector, rows[i].headers);
        if (got != rows[i].want)
            fail_msg("row %zu: %s with {%s}: got %d, want %d", i, rows[i].selector,
                     rows[i].headers, (int)got, (int)rows[i].want);
    }
}

static const struct bad {
    const char *selector;
    size_t pos;
    const char *err;
} bads[] = {
    { "", 1, "expected a value, an identifier or '(', found the end of the selector" },
    { "a =", 4, "expected a value, an identifier or '(', found the end of the selector" },
    { "a = 'x", 5, "malformed string (no closing quote)" },
    { "\"a = 1", 1, "malformed identifier (no closing quote)" },
    { "a = 08", 5, "malformed number" },
    { "a = 0x", 5, "malformed number" },
    { "a = 1e", 5, "malformed number" },
    { "a = 99999999999999999999", 5, "malformed number" },
    { "a = 1 b", 7, "expected AND, OR or the end, found 'b'" },
    { "a = 1)", 6, "expected AND, OR or the end, found ')'" },
    { "(a = 1", 7, "expected ')', found the end of the selector" },
    { "a == 1", 4, "expected a value, an identifier or '(', found '='" },
    { "a ! 1", 3, "malformed token" },
    { "a = 1 AND", 10, "expected a value, an identifier or '(', found the end of the selector" },
    { "a IN 'x'", 6, "expected '(' after IN, found ''x''" },
    { "a IN ()", 7, "expected a string in the IN list, found ')'" },
    { "a IN ('x' 'y')", 11, "expected ',' or ')', found ''y''" },
    { "a IN (1)", 7, "expected a string in the IN list, found '1'" },
    { "a LIKE 5", 8, "expected a pattern string after LIKE, found '5'" },
    { "a LIKE 'x' ESCAPE 'ab'", 19, "the ESCAPE string must be one character" },
    { "a LIKE 'x' ESCAPE", 18, "expected a one-character string after ESCAPE, found the end of the selector" },
    { "a IS 1", 6, "expected NULL after IS, found '1'" },
    { "a NOT 1", 7, "expected BETWEEN, IN or LIKE after NOT, found '1'" },
    { "a BETWEEN 1 OR 2", 13, "expected AND in BETWEEN, found 'OR'" },
    { "a BETWEEN 'x' AND 2", 11, "BETWEEN compares numbers only" },
    { "1 + 'x' = 1", 5, "arithmetic applies to numbers only" },
    { "a = 1 + TRUE", 9, "arithmetic applies to numbers only" },
    { "-'x' = 1", 1, "a sign applies to numbers only" },
    { "NOT 5", 5, "NOT applies to conditions only" },
    { "5 AND a", 1, "AND applies to conditions only" },
    { "a OR 'x'", 6, "OR applies to conditions only" },
    { "5", 1, "the selector is not a condition" },
    { "a + 1", 1, "the selector is not a condition" },
    { "'x'", 1, "the selector is not a condition" },
    { "1 LIKE 'x'", 1, "LIKE applies to strings only" },
    { "1 IN ('x')", 1, "IN applies to strings only" },
    { "a = -9223372036854775809", 6, "malformed number" },
    { "a = 9223372036854775808", 5, "malformed number" },
    { "a = 1 AND b = 9223372036854775808", 15, "malformed number" },
};

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        size_t pos = 99;
        char err[200];
        sel *s = sel__compile(bads[i].selector, strlen(bads[i].selector), &pos, err, sizeof err);
        if (s)
            fail_msg("row %zu: %s compiled", i, bads[i].selector);
        if (pos != bads[i].pos || strcmp(err, bads[i].err) != 0)
            fail_msg("row %zu: %s: got %zu '%s', want %zu '%s'", i, bads[i].selector, pos, err,
                     bads[i].pos, bads[i].err);
    }
}

/* Nesting is bounded at SEL_MAX_DEPTH, and the length at SEL_MAX_LEN; a long chain of AND
 * or OR is not nesting (the evaluator loops down it). */
static void test_limits(void **state)
{
    (void)state;
    char buf[SEL_MAX_LEN + 2];
    size_t pos;
    char err[200];
    size_t n = 0;
    for (int i = 0; i < SEL_MAX_DEPTH + 1; i++)
        buf[n++] = '(';
    n += (size_t)sprintf(buf + n, "a=1");
    for (int i = 0; i < SEL_MAX_DEPTH + 1; i++)
        buf[n++] = ')';
    assert_null(sel__compile(buf, n, &pos, err, sizeof err));
    assert_string_equal(err, "nested too deeply");
    n = 0;
    for (int i = 0; i < 20; i++)
        buf[n++] = '(';
    n += (size_t)sprintf(buf + n, "a=1");
    for (int i = 0; i < 20; i++)
        buf[n++] = ')';
    sel *s = sel__compile(buf, n, &pos, err, sizeof err);
    assert_non_null(s);
    sel__free(s);
    /* 400 ORs: one level. */
    n = 0;
    for (int i = 0; i < 400; i++)
        n += (size_t)sprintf(buf + n, "%sa=%d", i ? " OR " : "", i);
    s = sel__compile(buf, n, &pos, err, sizeof err);
    assert_non_null(s);
    msg m = { "a=399", { 0 } };
    assert_int_equal(sel__eval(s, lookup, &m), SEL_TRUE);
    m.pairs = "a=400";
    assert_int_equal(sel__eval(s, lookup, &m), SEL_FALSE);
    sel__free(s);
    /* A left-deep arithmetic chain is nesting. */
    n = (size_t)sprintf(buf, "a");
    for (int i = 0; i < SEL_MAX_DEPTH + 1; i++)
        n += (size_t)sprintf(buf + n, "+1");
    n += (size_t)sprintf(buf + n, " = 1");
    assert_null(sel__compile(buf, n, &pos, err, sizeof err));
    assert_string_equal(err, "nested too deeply");
    memset(buf, ' ', sizeof buf);
    assert_null(sel__compile(buf, SEL_MAX_LEN + 1, &pos, err, sizeof err));
    assert_int_equal(pos, SEL_MAX_LEN + 1);
    /* A NUL inside is a malformed token, not the end. */
    assert_null(sel__compile("a = 1\0x", 7, &pos, err, sizeof err));
    assert_int_equal(pos, 6);
}

/* Every input of the fuzz corpus passes the fuzz target's checks (it aborts otherwise). */
static void test_corpus(void **state)
{
    (void)state;
    DIR *d = opendir(CORPUS_DIR);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char path[512], buf[SEL_MAX_LEN * 2];
        snprintf(path, sizeof path, "%s/%s", CORPUS_DIR, e->d_name);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        assert_int_equal(LLVMFuzzerTestOneInput((const uint8_t *)buf, len), 0);
        n++;
    }
    closedir(d);
    assert_true(n >= 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
