/* policy.c: what happens to a queue's messages over their life, per destination: the rules
 * of broker_options.policies matched against a name (the most specific wins, else the
 * broker-wide policy), the name of a queue's dead-letter queue, and the delay before a
 * message's next delivery attempt.
 */
#include "core.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* The next element of s[*i..len): [*start, *end); elements are separated by '.' or '/'.
 * 0 when there is none left. */
static int next_element(const char *s, size_t len, size_t *i, size_t *start, size_t *end)
{
    if (*i > len)
        return 0;
    *start = *i;
    while (*i < len && s[*i] != '.' && s[*i] != '/')
        ++*i;
    *end = *i;
    ++*i; /* past the separator (or past the end) */
    return 1;
}

/* Does pattern match name? *score says how specific the match is (higher wins). */
static int match(const char *pat, const char *name, size_t len, int *score)
{
    size_t plen = strlen(pat), pi = 0, ni = 0, ps, pe, ns, ne;
    int literal = 0, wild = 0;
    while (next_element(pat, plen, &pi, &ps, &pe)) {
        int is_star = pe - ps == 1 && pat[ps] == '*';
        int is_rest = pe - ps == 1 && pat[ps] == '>' && pi > plen;
        if (!next_element(name, len, &ni, &ns, &ne))
            return 0;
        if (is_rest) {
            *score = literal * 4; /* '>' is the loosest */
            return 1;
        }
        if (is_star) {
            wild = 1;
            continue;
        }
        if (pe - ps != ne - ns || memcmp(pat + ps, name + ns, pe - ps) != 0)
            return 0;
        literal++;
    }
    if (ni <= len)
        return 0; /* name elements left over */
    *score = wild ? literal * 4 + 1 : INT_MAX;
    return 1;
}

const broker_policy *policy__for(const broker *b, const char *name, size_t len)
{
    const broker_policy *best = &b->o.policy;
    int best_score = -1;
    for (size_t i = 0; i < b->route.nrules; i++) {
        int score;
        if (match(b->route.rules[i].pattern, name, len, &score) && score > best_score) {
            best = &b->route.rules[i].policy;
            best_score = score;
        }
    }
    return best;
}

size_t policy__dead_letter(const broker_policy *p, const char *name, size_t len, char *out,
                           size_t cap)
{
    if (p->dead_letter) {
        size_t n = strlen(p->dead_letter);
        if (strcmp(p->dead_letter, "none") == 0 || n >= cap)
            return 0;
        memcpy(out, p->dead_letter, n);
        return n;
    }
    static const char queue[] = "/queue/";
    if (len > 7 && memcmp(name, queue, 7) == 0) {
        if (len + 4 > cap)
            return 0;
        memcpy(out, queue, 7);
        memcpy(out + 7, "DLQ.", 4);
        memcpy(out + 11, name + 7, len - 7);
        return len + 4;
    }
    if (len + 4 > cap)
        return 0;
    memcpy(out, "DLQ.", 4);
    memcpy(out + 4, name, len);
    return len + 4;
}

uint64_t policy__redelivery_delay(const broker_policy *p, uint32_t attempt)
{
    double d = p->redelivery_delay;
    double backoff = p->redelivery_backoff >= 1.0 ? p->redelivery_backoff : 1.0;
    for (uint32_t i = 1; i < attempt && d < p->redelivery_delay_max; i++)
        d *= backoff;
    if (d > p->redelivery_delay_max)
        d = p->redelivery_delay_max;
    return (uint64_t)d;
}

static int names_queue(const char *q, const char *name, size_t len)
{
    return q && strlen(q) == len && memcmp(q, name, len) == 0;
}

int policy__is_dead_letter_queue(const broker *b, const char *name, size_t len)
{
    size_t skip = len > 7 && memcmp(name, "/queue/", 7) == 0 ? 7 : 0;
    if (len - skip > 4 && memcmp(name + skip, "DLQ.", 4) == 0)
        return 1;
    if (names_queue(b->o.policy.dead_letter, name, len))
        return 1;
    for (size_t i = 0; i < b->route.nrules; i++)
        if (names_queue(b->route.rules[i].policy.dead_letter, name, len))
            return 1;
    return 0;
}

broker_err policy__check(const broker_policy *p)
{
    const char *q = p->dead_letter;
    if (!q || strcmp(q, "none") == 0)
        return BROKER_OK;
    char why[160];
    size_t len = strlen(q);
    if (!len || dest__is_topic(q, len) || headers__wildcard(q, len, why, sizeof why))
        return BROKER_E_INVALID;
    return BROKER_OK;
}
