/* selector_eval.c: a compiled selector (selector_int.h) evaluated against one message.
 *
 * Values live on the C stack (no allocation): NULL (a missing header, or unknown), a
 * boolean, a 64-bit integer, a double, or a string borrowed from the message or the
 * selector. A condition is a boolean or NULL (unknown), with SQL's three-valued AND, OR
 * and NOT. Types meet as JMS 2.0 section 3.8 says, with the STOMP conversions of ActiveMQ
 * and Artemis: a string (every header is one) met by a number is read as a number when it
 * is one, met by a boolean as a boolean when it is "true" or "false"; values of unlike
 * types that cannot be read so compare false (not unknown); strings order only under = and
 * <> (two strings that both read as numbers order as numbers). Integer arithmetic that
 * overflows goes on in double; an integer division by zero is unknown. LIKE's _ stands for
 * one UTF-8 character.
 */
#include "selector_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { V_NULL, V_BOOL, V_LONG, V_DOUBLE, V_STR };

typedef struct val {
    int t;
    int64_t i;
    double d;
    const char *s;
    size_t n;
} val;

typedef struct ev {
    const sel *s;
    sel_lookup lookup;
    void *ctx;
} ev;

static const val vnull = { V_NULL, 0, 0, NULL, 0 };

static val vbool(int b)
{
    val v = { V_BOOL, b != 0, 0, NULL, 0 };
    return v;
}

/* A string as a number: [+-]digits (an integer when it fits), or a decimal with a point
 * or an exponent. 1 when it is one (into *out), else 0. */
static int str_number(const char *s, size_t n, val *out)
{
    size_t i = 0, digits = 0;
    int neg = 0, is_float = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    uint64_t x = 0;
    int big = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
        if (x > (UINT64_MAX - 9) / 10)
            big = 1;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    if (i < n && s[i] == '.') {
        is_float = 1;
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
    }
    if (!digits)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        is_float = 1;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t e = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == e)
            return 0;
    }
    if (i != n)
        return 0;
    if (!is_float && !big && x <= (uint64_t)INT64_MAX + (uint64_t)neg) {
        out->t = V_LONG;
        out->i = neg ? (int64_t)(0 - x) : (int64_t)x;
        return 1;
    }
    /* The value is NUL-terminated (sel_lookup's promise, and the selector's strings). */
    out->t = V_DOUBLE;
    out->d = strtod(s, NULL);
    return 1;
}

/* v as a number (strings read as one): 1, or 0 when it is not one. */
static int as_number(val *v)
{
    if (v->t == V_LONG || v->t == V_DOUBLE)
        return 1;
    return v->t == V_STR && str_number(v->s, v->n, v);
}

/* v as a boolean: 0 or 1, or -1 when it is not one. */
static int as_bool(const val *v)
{
    if (v->t == V_BOOL)
        return (int)v->i;
    if (v->t == V_STR && v->n == 4 && strncasecmp(v->s, "true", 4) == 0)
        return 1;
    if (v->t == V_STR && v->n == 5 && strncasecmp(v->s, "false", 5) == 0)
        return 0;
    return -1;
}

static double dbl(const val *v)
{
    return v->t == V_LONG ? (double)v->i : v->d;
}

/* -1, 0 or 1 for an integer and a double, exactly (no rounding of the integer); 2 when d
 * is NaN (unordered). */
static int long_dbl_cmp(int64_t l, double d)
{
    if (d != d)
        return 2;
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    int64_t t = (int64_t)d; /* d truncated: exact in range */
    if (l != t)
        return (l > t) - (l < t);
    double frac = d - (double)t;
    return (frac < 0) - (frac > 0);
}

/* -1, 0 or 1 for two numbers; 2 when they are unordered (NaN). */
static int num_cmp(const val *a, const val *b)
{
    if (a->t == V_LONG && b->t == V_LONG)
        return (a->i > b->i) - (a->i < b->i);
    if (a->t == V_LONG)
        return long_dbl_cmp(a->i, b->d);
    if (b->t == V_LONG) {
        int c = long_dbl_cmp(b->i, a->d);
        return c == 2 ? 2 : -c;
    }
    double x = a->d, y = b->d;
    return x != x || y != y ? 2 : (x > y) - (x < y);
}

static val eval(const ev *e, uint32_t i);

/* A comparison (op N_EQ .. N_GE) of a and b. */
static val compare(int op, val a, val b)
{
    if (a.t == V_NULL || b.t == V_NULL)
        return vnull;
    int c, eq_only = op == N_EQ || op == N_NE;
    if (a.t == V_STR && b.t == V_STR && eq_only) {
        c = a.n != b.n || memcmp(a.s, b.s, a.n) != 0;
    } else if (a.t == V_BOOL || b.t == V_BOOL) {
        int x = as_bool(&a), y = as_bool(&b);
        if (x < 0 || y < 0)
            return vbool(0); /* unlike types */
        if (!eq_only)
            return vnull;
        c = x != y;
    } else {
        if (!as_number(&a) || !as_number(&b))
            return a.t == V_STR && b.t == V_STR ? vnull : vbool(0);
        c = num_cmp(&a, &b);
        if (c == 2)
            return vbool(op == N_NE); /* NaN: unordered, unequal */
    }
    switch (op) {
    case N_EQ: return vbool(c == 0);
    case N_NE: return vbool(c != 0);
    case N_LT: return vbool(c < 0);
    case N_GT: return vbool(c > 0);
    case N_LE: return vbool(c <= 0);
    default: return vbool(c >= 0);
    }
}

static val arith_long(int op, int64_t x, int64_t y)
{
    val r = { V_LONG, 0, 0, NULL, 0 };
    int over = 0;
    switch (op) {
    case N_ADD: over = __builtin_add_overflow(x, y, &r.i); break;
    case N_SUB: over = __builtin_sub_overflow(x, y, &r.i); break;
    case N_MUL: over = __builtin_mul_overflow(x, y, &r.i); break;
    default:
        if (y == 0)
            return vnull;
        if (x == INT64_MIN && y == -1)
            over = 1;
        else
            r.i = x / y;
        break;
    }
    if (!over)
        return r;
    double a = (double)x, b = (double)y;
    r.t = V_DOUBLE;
    r.d = op == N_ADD ? a + b : op == N_SUB ? a - b : op == N_MUL ? a * b : a / b;
    return r;
}

static val arith(int op, val a, val b)
{
    if (!as_number(&a) || !as_number(&b))
        return vnull;
    if (a.t == V_LONG && b.t == V_LONG)
        return arith_long(op, a.i, b.i);
    double x = dbl(&a), y = dbl(&b);
    val r = { V_DOUBLE, 0, 0, NULL, 0 };
    r.d = op == N_ADD ? x + y : op == N_SUB ? x - y : op == N_MUL ? x * y : x / y;
    return r;
}

/* Bytes of the UTF-8 character that starts with c (1 for a stray byte). */
static size_t utf8_len(unsigned char c)
{
    return c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
}

/* Does s match the LIKE pattern p (escape esc, -1: none)? Backtracks to the last % only:
 * no allocation, O(|s| x |p|) at worst. */
static int like_match(const char *s, size_t sn, const char *p, size_t pn, int esc)
{
    size_t si = 0, pi = 0, star_p = (size_t)-1, star_s = 0;
    while (si < sn) {
        if (pi < pn) {
            unsigned char pc = (unsigned char)p[pi];
            if (esc >= 0 && pc == esc && pi + 1 < pn) {
                if (p[pi + 1] == s[si]) {
                    pi += 2;
                    si++;
                    continue;
                }
            } else if (pc == '%') {
                star_p = ++pi;
                star_s = si;
                continue;
            } else if (pc == '_') {
                pi++;
                si += utf8_len((unsigned char)s[si]);
                continue;
            } else if (p[pi] == s[si]) {
                pi++;
                si++;
                continue;
            }
        }
        if (star_p == (size_t)-1)
            return 0;
        pi = star_p;
        star_s += utf8_len((unsigned char)s[star_s]);
        si = star_s;
    }
    while (pi < pn && p[pi] == '%' && !(esc == '%'))
        pi++;
    return pi == pn && si == sn;
}

/* NOT of a condition, and a condition read as one. */
static val tri_not(val v)
{
    return v.t == V_BOOL ? vbool(!v.i) : vnull;
}

static val cond(val v)
{
    int b = as_bool(&v);
    return b < 0 ? vnull : vbool(b);
}

/* AND or OR down the right-deep chain from node i. */
static val logic(const ev *e, uint32_t i)
{
    int op = e->s->nodes[i].op, unknown = 0;
    for (;;) {
        const sel_node *n = &e->s->nodes[i];
        val a = cond(eval(e, n->a));
        if (a.t == V_BOOL && a.i == (op == N_OR))
            return a; /* FALSE AND x, TRUE OR x */
        unknown |= a.t == V_NULL;
        if (e->s->nodes[n->b].op != op) {
            val b = cond(eval(e, n->b));
            if (b.t == V_BOOL && b.i == (op == N_OR))
                return b;
            return unknown || b.t == V_NULL ? vnull : vbool(op == N_AND);
        }
        i = n->b;
    }
}

static val in_list(const ev *e, const sel_node *n)
{
    val a = eval(e, n->a);
    if (a.t != V_STR)
        return vnull;
    int found = 0;
    for (uint32_t k = 0; k < n->c && !found; k++) {
        const sel_node *m = &e->s->nodes[n->b + k];
        found = m->slen == a.n && memcmp(e->s->text + m->s, a.s, a.n) == 0;
    }
    return vbool(found != n->neg);
}

static val between(const ev *e, const sel_node *n)
{
    val a = eval(e, n->a);
    val lo = compare(N_GE, a, eval(e, n->b)), hi = compare(N_LE, a, eval(e, n->c));
    val r = lo.t == V_BOOL && !lo.i ? lo
            : hi.t == V_BOOL && !hi.i ? hi
            : lo.t == V_NULL || hi.t == V_NULL ? vnull
                                               : vbool(1);
    return n->neg ? tri_not(r) : r;
}

static val leaf(const ev *e, const sel_node *n)
{
    val v = vnull;
    switch (n->op) {
    case N_IDENT:
        v.s = e->lookup(e->ctx, n->field, e->s->text + n->s, n->slen, &v.n);
        v.t = v.s ? V_STR : V_NULL;
        break;
    case N_STR:
        v.t = V_STR;
        v.s = e->s->text + n->s;
        v.n = n->slen;
        break;
    case N_LONG:
        v.t = V_LONG;
        v.i = n->v.i;
        break;
    case N_DOUBLE:
        v.t = V_DOUBLE;
        v.d = n->v.d;
        break;
    case N_BOOL:
        v = vbool((int)n->v.i);
        break;
    default:
        break;
    }
    return v;
}

static val eval(const ev *e, uint32_t i)
{
    const sel_node *n = &e->s->nodes[i];
    switch (n->op) {
    case N_AND:
    case N_OR:
        return logic(e, i);
    case N_NOT:
        return tri_not(cond(eval(e, n->a)));
    case N_EQ: case N_NE: case N_LT: case N_GT: case N_LE: case N_GE:
        return compare(n->op, eval(e, n->a), eval(e, n->b));
    case N_ADD: case N_SUB: case N_MUL: case N_DIV:
        return arith(n->op, eval(e, n->a), eval(e, n->b));
    case N_NEG: {
        val a = eval(e, n->a);
        if (!as_number(&a))
            return vnull;
        if (a.t == V_LONG && a.i != INT64_MIN)
            a.i = -a.i;
        else
            a.d = -dbl(&a), a.t = V_DOUBLE;
        return a;
    }
    case N_BETWEEN:
        return between(e, n);
    case N_IN:
        return in_list(e, n);
    case N_LIKE: {
        val a = eval(e, n->a);
        if (a.t != V_STR)
            return vnull;
        return vbool(like_match(a.s, a.n, e->s->text + n->s, n->slen, (int)n->v.i) != n->neg);
    }
    case N_ISNULL:
        return vbool((eval(e, n->a).t == V_NULL) != n->neg);
    default:
        return leaf(e, n);
    }
}

sel_result sel__eval(const sel *s, sel_lookup lookup, void *ctx)
{
    ev e = { s, lookup, ctx };
    val v = cond(eval(&e, s->root));
    return v.t == V_NULL ? SEL_UNKNOWN : v.i ? SEL_TRUE : SEL_FALSE;
}
