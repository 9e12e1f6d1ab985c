/* fuzz_selector.c: libFuzzer target for the selector compiler and evaluator
 * (broker/route/selector.h), which read text a client sends.
 *
 * An input is the selector up to the first LF, then the message's headers, one
 * "name:value" a line (a line without a colon is a header with an empty value). Checks:
 * a failed compile names a position inside the text (1 .. length + 1) and says what is
 * wrong; a compiled selector evaluates to TRUE, FALSE or UNKNOWN, the same twice, and
 * "NOT (selector)" (when that compiles: it nests one level more) to its three-valued
 * complement. tests/route/test_selector replays tests/fuzz/selector_corpus/ through this
 * function.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/selector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "fuzz_selector.c:%d: %s\n", __LINE__, #cond);                  \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

typedef struct fuzz_msg {
    const char *hdrs; /* "name:value" lines, NUL-terminated copy */
    size_t len;
    char value[256];
} fuzz_msg;

static const char *fuzz_lookup(void *ctx, int field, const char *name, size_t nlen,
                               size_t *vlen)
{
    fuzz_msg *m = ctx;
    (void)field;
    const char *p = m->hdrs, *end = m->hdrs + m->len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        const char *nend = colon ? colon : eol;
        if ((size_t)(nend - p) == nlen && memcmp(p, name, nlen) == 0) {
            const char *v = colon ? colon + 1 : eol;
            size_t n = (size_t)(eol - v);
            if (n >= sizeof m->value)
                n = sizeof m->value - 1;
            memcpy(m->value, v, n);
            m->value[n] = '\0'; /* the evaluator reads values NUL-terminated */
            *vlen = n;
            return m->value;
        }
        p = eol + 1;
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *eol = memchr(text, '\n', size);
    size_t slen = eol ? (size_t)(eol - text) : size;
    fuzz_msg m = { eol ? eol + 1 : text + size, eol ? size - slen - 1 : 0, { 0 } };
    size_t pos;
    char err[200];
    sel *s = sel__compile(text, slen, &pos, err, sizeof err);
    if (!s) {
        FUZZ_CHECK(pos >= 1 && pos <= (slen > SEL_MAX_LEN ? SEL_MAX_LEN + 1 : slen + 1));
        FUZZ_CHECK(err[0] != '\0');
        return 0;
    }
    sel_result r = sel__eval(s, fuzz_lookup, &m);
    FUZZ_CHECK(r == SEL_TRUE || r == SEL_FALSE || r == SEL_UNKNOWN);
    FUZZ_CHECK(sel__eval(s, fuzz_lookup, &m) == r);
    sel__free(s);
    char *neg = malloc(slen + 8);
    FUZZ_CHECK(neg != NULL);
    memcpy(neg, "NOT (", 5);
    memcpy(neg + 5, text, slen);
    neg[slen + 5] = ')';
    sel *n = sel__compile(neg, slen + 6, &pos, err, sizeof err);
    free(neg);
    if (n) {
        sel_result nr = sel__eval(n, fuzz_lookup, &m);
        FUZZ_CHECK(nr == (r == SEL_UNKNOWN ? SEL_UNKNOWN : r == SEL_TRUE ? SEL_FALSE : SEL_TRUE));
        sel__free(n);
    } else {
        FUZZ_CHECK(strcmp(err, "nested too deeply") == 0 || slen + 6 > SEL_MAX_LEN);
    }
    return 0;
}
