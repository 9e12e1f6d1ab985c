/* selector.c: the selector compiler: text to the tree of selector_int.h, or the 1-based byte
 * position of the first error and what is wrong there.
 *
 * Grammar (keywords and TRUE/FALSE/NULL in any case; precedence lowest first):
 *   or      := and { OR and }            and := not { AND not }     not := NOT not | cmp
 *   cmp     := sum [ (= | <> | < | > | <= | >=) sum | [NOT] BETWEEN sum AND sum
 *                  | [NOT] IN ( string {, string} ) | [NOT] LIKE string [ESCAPE string]
 *                  | IS [NOT] NULL ]
 *   sum     := prod { (+ | -) prod }     prod := unary { (* | /) unary }
 *   unary   := (+ | -) unary | primary   primary := literal | identifier | ( or )
 * Literals as ActiveMQ reads them: 'string' ('' is a quote), decimal 12, octal 012, hex
 * 0x1F (an L suffix is allowed), decimal 1.5, .5, 1e3, 1.5E-2, TRUE, FALSE, NULL.
 * Identifiers: a letter, _ or $, then letters, digits, _ or $; or "any text" ("" is a
 * quote) for header names such as "correlation-id". The JMS names map to headers. Kinds are
 * checked here: AND, OR and NOT take conditions, arithmetic takes numbers, LIKE and IN
 * strings, and the whole must be a condition (an identifier may be any of these).
 */
#include "selector_int.h"

#include <errno.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    T_EOF, T_LP, T_RP, T_COMMA, T_EQ, T_NE, T_LT, T_GT, T_LE, T_GE, T_PLUS, T_MINUS,
    T_STAR, T_SLASH, T_STR, T_LONG, T_DOUBLE, T_IDENT, T_QIDENT,
    T_AND, T_OR, T_NOT, T_BETWEEN, T_LIKE, T_ESCAPE, T_IN, T_IS, T_NULL, T_TRUE, T_FALSE,
    T_BAD
};

static const struct keyword {
    const char *word;
    int tok;
} keywords[] = {
    { "AND", T_AND }, { "OR", T_OR }, { "NOT", T_NOT }, { "BETWEEN", T_BETWEEN },
    { "LIKE", T_LIKE }, { "ESCAPE", T_ESCAPE }, { "IN", T_IN }, { "IS", T_IS },
    { "NULL", T_NULL }, { "TRUE", T_TRUE }, { "FALSE", T_FALSE },
};

/* JMS header fields: their name in a selector, what they are in a STOMP message. */
static const struct jms_name {
    const char *jms;
    const char *header;
    int field;
} jms_names[] = {
    { "JMSPriority", "priority", SEL_F_PRIORITY },
    { "JMSMessageID", "message-id", SEL_F_MESSAGE_ID },
    { "JMSTimestamp", "timestamp", SEL_F_HEADER },
    { "JMSCorrelationID", "correlation-id", SEL_F_HEADER },
    { "JMSType", "type", SEL_F_HEADER },
    { "JMSDeliveryMode", "persistent", SEL_F_DELIVERY_MODE },
    { "JMSExpiration", "expires", SEL_F_HEADER },
    { "JMSDestination", "destination", SEL_F_DESTINATION },
    { "JMSRedelivered", "redelivered", SEL_F_REDELIVERED },
};

typedef struct parser {
    const char *src;
    size_t len, at; /* the text, the lexer's place */
    int tok;        /* the current token */
    size_t tpos, tlen; /* its start and length in src */
    int64_t ival;
    double dval;
    sel_node *n;    /* the nodes so far (room for every token and one more) */
    uint32_t nn;
    char *text;     /* their strings so far */
    uint32_t tn;
    int depth;
    size_t errpos;
    char *err;
    size_t cap;
} parser;

/* ---- the lexer ---- */

static int is_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
}

static int is_part(char c)
{
    return is_start(c) || (c >= '0' && c <= '9');
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* An integer literal of base digits from p into *v: 0, or -1 when it overflows. */
static int int_value(const char *p, size_t n, int base, int64_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        unsigned d = is_digit(c) ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
        if (x > (UINT64_MAX - d) / (unsigned)base)
            return -1;
        x = x * (unsigned)base + d;
    }
    /* Up to 2^63: a unary minus may still make -2^63 of it; more is refused. */
    if (x > (uint64_t)INT64_MAX + 1)
        return -1;
    *v = (int64_t)x;
    return 0;
}

static size_t span(const char *s, size_t at, size_t len, int (*ok)(char))
{
    while (at < len && ok(s[at]))
        at++;
    return at;
}

static int is_hex(char c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }
static int is_octal(char c) { return c >= '0' && c <= '7'; }

/* A number at p->at: T_LONG (ival), T_DOUBLE (dval) or T_BAD. */
static int lex_number(parser *p)
{
    const char *s = p->src;
    size_t at = p->at, len = p->len, e = span(s, at, len, is_digit);
    int is_float = 0;
    if (e < len && s[e] == '.') {
        is_float = 1;
        e = span(s, e + 1, len, is_digit);
    }
    if (e < len && (s[e] | 0x20) == 'e') {
        size_t x = e + 1;
        if (x < len && (s[x] == '+' || s[x] == '-'))
            x++;
        size_t y = span(s, x, len, is_digit);
        if (y == x)
            return T_BAD;
        is_float = 1;
        e = y;
    }
    if (is_float) {
        char buf[64];
        if (e - at >= sizeof buf)
            return T_BAD;
        memcpy(buf, s + at, e - at);
        buf[e - at] = '\0';
        errno = 0;
        p->dval = strtod(buf, NULL);
        p->at = e;
        return errno == ERANGE ? T_BAD : T_DOUBLE;
    }
    int base = 10;
    size_t d = at;
    if (s[at] == '0' && at + 1 < len && (s[at + 1] | 0x20) == 'x') {
        base = 16;
        d = at + 2;
        e = span(s, d, len, is_hex);
        if (e == d)
            return T_BAD;
    } else if (s[at] == '0') {
        base = 8;
        e = span(s, at, len, is_octal);
        if (e < len && is_digit(s[e]))
            return T_BAD; /* 08: not octal */
    }
    if (int_value(s + d, e - d, base, &p->ival) != 0)
        return T_BAD;
    if (e < len && (s[e] | 0x20) == 'l')
        e++;
    p->at = e;
    return T_LONG;
}

/* A quoted string or identifier (quote q, doubled inside): its token, or T_BAD when it
 * does not end. */
static int lex_quoted(parser *p, char q, int tok)
{
    size_t at = p->at + 1;
    for (; at < p->len; at++) {
        if (p->src[at] != q)
            continue;
        if (at + 1 < p->len && p->src[at + 1] == q) {
            at++;
            continue;
        }
        p->at = at + 1;
        return tok;
    }
    return T_BAD;
}

static int lex_word(parser *p)
{
    size_t e = span(p->src, p->at, p->len, is_part);
    size_t n = e - p->at;
    p->at = e;
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
        if (strlen(keywords[i].word) == n &&
            strncasecmp(keywords[i].word, p->src + e - n, n) == 0)
            return keywords[i].tok;
    return T_IDENT;
}

static int lex_op(parser *p)
{
    char c = p->src[p->at], d = p->at + 1 < p->len ? p->src[p->at + 1] : '\0';
    static const char single[] = "()=,+-*/";
    static const int stok[] = { T_LP, T_RP, T_EQ, T_COMMA, T_PLUS, T_MINUS, T_STAR, T_SLASH };
    const char *k = c ? strchr(single, c) : NULL;
    p->at++;
    if (k)
        return stok[k - single];
    if (c == '<' && d == '>')
        return p->at++, T_NE;
    if ((c == '<' || c == '>') && d == '=')
        return p->at++, c == '<' ? T_LE : T_GE;
    if (c == '<' || c == '>')
        return c == '<' ? T_LT : T_GT;
    return T_BAD;
}

static void next(parser *p)
{
    while (p->at < p->len && strchr(" \t\r\n\f", p->src[p->at]) && p->src[p->at])
        p->at++;
    p->tpos = p->at;
    char c = p->at < p->len ? p->src[p->at] : '\0';
    if (p->at >= p->len)
        p->tok = T_EOF;
    else if (is_digit(c) || (c == '.' && p->at + 1 < p->len && is_digit(p->src[p->at + 1])))
        p->tok = lex_number(p);
    else if (c == '\'')
        p->tok = lex_quoted(p, '\'', T_STR);
    else if (c == '"')
        p->tok = lex_quoted(p, '"', T_QIDENT);
    else if (is_start(c))
        p->tok = lex_word(p);
    else
        p->tok = lex_op(p);
    p->tlen = p->at > p->tpos ? p->at - p->tpos : 1;
}

/* ---- errors and nodes ---- */

/* Note the first error (at the current token unless pos says otherwise); returns -1. */
static int fail_at(parser *p, size_t pos, const char *what)
{
    if (!p->errpos) {
        p->errpos = pos + 1;
        snprintf(p->err, p->cap, "%s", what);
    }
    return -1;
}

static int fail(parser *p, const char *what)
{
    if (p->tok == T_BAD && !p->errpos) {
        char buf[96];
        snprintf(buf, sizeof buf, "malformed %s",
                 p->src[p->tpos] == '\'' ? "string (no closing quote)"
                 : p->src[p->tpos] == '"' ? "identifier (no closing quote)"
                 : is_digit(p->src[p->tpos]) || p->src[p->tpos] == '.' ? "number"
                                                                       : "token");
        return fail_at(p, p->tpos, buf);
    }
    char buf[160];
    if (p->tok == T_EOF)
        snprintf(buf, sizeof buf, "%s, found the end of the selector", what);
    else
        snprintf(buf, sizeof buf, "%s, found '%.*s'", what, (int)(p->tlen > 40 ? 40 : p->tlen),
                 p->src + p->tpos);
    return fail_at(p, p->tpos, buf);
}

static int set_depth(parser *p, int i, size_t pos);

static int node(parser *p, int op, int kind, uint32_t a, uint32_t b)
{
    sel_node *n = &p->n[p->nn];
    memset(n, 0, sizeof *n);
    n->op = (uint8_t)op;
    n->kind = (uint8_t)kind;
    n->a = a;
    n->b = b;
    return (int)p->nn++;
}

/* Copy a string into the text area (q: a quote doubled inside that becomes one). */
static void text(parser *p, sel_node *n, const char *s, size_t len, char q)
{
    n->s = p->tn;
    for (size_t i = 0; i < len; i++) {
        p->text[p->tn++] = s[i];
        if (q && s[i] == q)
            i++;
    }
    n->slen = p->tn - n->s;
    p->text[p->tn++] = '\0';
}

/* The current token, a quoted string, as a string node. */
static int string_node(parser *p)
{
    int i = node(p, N_STR, K_STR, 0, 0);
    text(p, &p->n[i], p->src + p->tpos + 1, p->tlen - 2, p->src[p->tpos]);
    next(p);
    return i;
}

static int ident_node(parser *p)
{
    int i = node(p, N_IDENT, K_ANY, 0, 0);
    sel_node *n = &p->n[i];
    if (p->tok == T_QIDENT) {
        text(p, n, p->src + p->tpos + 1, p->tlen - 2, '"');
    } else {
        const char *name = p->src + p->tpos;
        size_t len = p->tlen;
        for (size_t k = 0; k < sizeof jms_names / sizeof jms_names[0]; k++) {
            if (strlen(jms_names[k].jms) == len && memcmp(jms_names[k].jms, name, len) == 0) {
                n->field = (uint8_t)jms_names[k].field;
                name = jms_names[k].header;
                len = strlen(name);
                break;
            }
        }
        text(p, n, name, len, 0);
    }
    next(p);
    return i;
}

/* ---- the parser ---- */

static int parse_or(parser *p);

static int expect_kind(parser *p, int i, size_t pos, int kind, const char *what)
{
    int k = p->n[i].kind;
    if (k == K_ANY || k == kind)
        return i;
    return fail_at(p, pos, what);
}

static int primary(parser *p)
{
    int i;
    switch (p->tok) {
    case T_LONG:
        i = node(p, N_LONG, K_NUM, 0, 0);
        p->n[i].v.i = p->ival;
        if (p->ival == INT64_MIN) {
            /* 9223372036854775808: only a unary minus in front of it makes it fit. */
            p->n[i].neg = 2;
            p->n[i].s = (uint32_t)p->tpos;
        }
        break;
    case T_DOUBLE:
        i = node(p, N_DOUBLE, K_NUM, 0, 0);
        p->n[i].v.d = p->dval;
        break;
    case T_TRUE:
    case T_FALSE:
        i = node(p, N_BOOL, K_BOOL, 0, 0);
        p->n[i].v.i = p->tok == T_TRUE;
        break;
    case T_NULL:
        i = node(p, N_NULL, K_ANY, 0, 0);
        break;
    case T_STR:
        return string_node(p);
    case T_IDENT:
    case T_QIDENT:
        return ident_node(p);
    case T_LP:
        next(p);
        if ((i = parse_or(p)) < 0)
            return -1;
        if (p->tok != T_RP)
            return fail(p, "expected ')'");
        break;
    default:
        return fail(p, "expected a value, an identifier or '('");
    }
    next(p);
    return i;
}

static int unary(parser *p)
{
    if (p->tok != T_MINUS && p->tok != T_PLUS)
        return primary(p);
    int neg = p->tok == T_MINUS;
    size_t pos = p->tpos;
    next(p);
    if (++p->depth > SEL_MAX_DEPTH)
        return fail_at(p, pos, "nested too deeply");
    int a = unary(p);
    p->depth--;
    if (a < 0 || expect_kind(p, a, pos, K_NUM, "a sign applies to numbers only") < 0)
        return -1;
    if (!neg)
        return a;
    if (p->n[a].op == N_LONG && p->n[a].neg == 2) {
        p->n[a].neg = 0; /* -9223372036854775808 */
        return a;
    }
    if (p->n[a].op == N_LONG && p->n[a].v.i != INT64_MIN) {
        p->n[a].v.i = -p->n[a].v.i; /* a negative literal */
        return a;
    }
    return set_depth(p, node(p, N_NEG, K_NUM, (uint32_t)a, 0), pos);
}

/* Node i's depth: one more than its deepest child's; a chain of AND (or OR) continues at
 * its right child's depth. -1 (an error noted) past SEL_MAX_DEPTH. */
static int set_depth(parser *p, int i, size_t pos)
{
    sel_node *n = &p->n[i];
    uint32_t kids[3] = { n->a, n->b, n->c };
    int nk = n->op >= N_AND && n->op <= N_NOT ? (n->op == N_NOT ? 1 : 2)
             : n->op >= N_EQ && n->op <= N_DIV ? 2
             : n->op == N_BETWEEN              ? 3
             : n->op >= N_NEG                  ? 1
                                               : 0;
    unsigned d = 0;
    for (int k = 0; k < nk; k++) {
        const sel_node *c = &p->n[kids[k]];
        unsigned cd = c->depth + (k == 1 && c->op == n->op && nk == 2 &&
                                          (n->op == N_AND || n->op == N_OR)
                                      ? 0u
                                      : 1u);
        if (cd > d)
            d = cd;
    }
    n->depth = (uint16_t)d;
    return d > SEL_MAX_DEPTH ? fail_at(p, pos, "nested too deeply") : i;
}

/* A left-associative chain of binary operators over sub. ops: token -> node pairs. AND and
 * OR are associative: their chain is built right-deep. */
static int chain(parser *p, int (*sub)(parser *), const int (*ops)[2], size_t nops, int kind,
                 const char *what)
{
    size_t pos = p->tpos;
    int a = sub(p), last = -1;
    for (;;) {
        if (a < 0)
            return -1;
        size_t k = 0;
        while (k < nops && ops[k][0] != p->tok)
            k++;
        if (k == nops)
            return a;
        next(p);
        size_t bpos = p->tpos;
        int b = sub(p);
        if (b < 0 || expect_kind(p, last < 0 ? a : (int)p->n[last].b, pos, kind, what) < 0 ||
            expect_kind(p, b, bpos, kind, what) < 0)
            return -1;
        if (kind != K_BOOL) {
            a = node(p, ops[k][1], kind, (uint32_t)a, (uint32_t)b);
            if (set_depth(p, a, pos) < 0)
                return -1;
            continue;
        }
        if (last < 0) {
            a = last = node(p, ops[k][1], kind, (uint32_t)a, (uint32_t)b);
        } else {
            int n = node(p, ops[k][1], kind, p->n[last].b, (uint32_t)b);
            p->n[last].b = (uint32_t)n;
            last = n;
        }
        if (set_depth(p, last, pos) < 0)
            return -1;
        /* The chain's nodes above last deepen with it. */
        for (int up = a; up != last; up = (int)p->n[up].b)
            if (p->n[last].depth > p->n[up].depth)
                p->n[up].depth = p->n[last].depth;
    }
}

static int prod(parser *p)
{
    static const int ops[][2] = { { T_STAR, N_MUL }, { T_SLASH, N_DIV } };
    return chain(p, unary, ops, 2, K_NUM, "arithmetic applies to numbers only");
}

static int sum(parser *p)
{
    static const int ops[][2] = { { T_PLUS, N_ADD }, { T_MINUS, N_SUB } };
    return chain(p, prod, ops, 2, K_NUM, "arithmetic applies to numbers only");
}

/* IN ( 'a', 'b' ... ) after the identifier a. */
static int in_list(parser *p, int a, int neg)
{
    if (p->tok != T_LP)
        return fail(p, "expected '(' after IN");
    next(p);
    int i = node(p, N_IN, K_BOOL, (uint32_t)a, 0);
    p->n[i].neg = (uint8_t)neg;
    p->n[i].b = p->nn;
    for (;;) {
        if (p->tok != T_STR)
            return fail(p, "expected a string in the IN list");
        string_node(p);
        p->n[i].c++;
        if (p->tok == T_RP)
            break;
        if (p->tok != T_COMMA)
            return fail(p, "expected ',' or ')'");
        next(p);
    }
    next(p);
    return i;
}

/* LIKE 'pattern' [ESCAPE 'c'] after a. */
static int like(parser *p, int a, int neg)
{
    if (p->tok != T_STR)
        return fail(p, "expected a pattern string after LIKE");
    int i = node(p, N_LIKE, K_BOOL, (uint32_t)a, 0);
    p->n[i].neg = (uint8_t)neg;
    text(p, &p->n[i], p->src + p->tpos + 1, p->tlen - 2, '\'');
    p->n[i].v.i = -1;
    next(p);
    if (p->tok != T_ESCAPE)
        return i;
    next(p);
    size_t pos = p->tpos;
    if (p->tok != T_STR)
        return fail(p, "expected a one-character string after ESCAPE");
    int e = string_node(p);
    if (p->n[e].slen != 1)
        return fail_at(p, pos, "the ESCAPE string must be one character");
    p->n[i].v.i = (unsigned char)p->text[p->n[e].s];
    p->nn--; /* the escape string node is not needed */
    return i;
}

static int compare_tail(parser *p, int a, size_t apos)
{
    static const int cmp[][2] = { { T_EQ, N_EQ }, { T_NE, N_NE }, { T_LT, N_LT },
                                  { T_GT, N_GT }, { T_LE, N_LE }, { T_GE, N_GE } };
    for (size_t k = 0; k < sizeof cmp / sizeof cmp[0]; k++) {
        if (cmp[k][0] != p->tok)
            continue;
        next(p);
        int b = sum(p);
        return b < 0 ? -1 : set_depth(p, node(p, cmp[k][1], K_BOOL, (uint32_t)a, (uint32_t)b), apos);
    }
    int neg = 0;
    if (p->tok == T_IS) {
        next(p);
        if (p->tok == T_NOT)
            neg = 1, next(p);
        if (p->tok != T_NULL)
            return fail(p, "expected NULL after IS");
        next(p);
        int i = node(p, N_ISNULL, K_BOOL, (uint32_t)a, 0);
        p->n[i].neg = (uint8_t)neg;
        return set_depth(p, i, apos);
    }
    if (p->tok == T_NOT)
        neg = 1, next(p);
    if (p->tok == T_BETWEEN) {
        next(p);
        size_t bpos = p->tpos;
        int b = sum(p);
        if (b < 0 || expect_kind(p, a, apos, K_NUM, "BETWEEN compares numbers only") < 0 ||
            expect_kind(p, b, bpos, K_NUM, "BETWEEN compares numbers only") < 0)
            return -1;
        if (p->tok != T_AND)
            return fail(p, "expected AND in BETWEEN");
        next(p);
        size_t cpos = p->tpos;
        int c = sum(p);
        if (c < 0 || expect_kind(p, c, cpos, K_NUM, "BETWEEN compares numbers only") < 0)
            return -1;
        int i = node(p, N_BETWEEN, K_BOOL, (uint32_t)a, (uint32_t)b);
        p->n[i].c = (uint32_t)c;
        p->n[i].neg = (uint8_t)neg;
        return set_depth(p, i, apos);
    }
    int is_in = p->tok == T_IN, is_like = p->tok == T_LIKE;
    if (!is_in && !is_like) {
        if (neg)
            return fail(p, "expected BETWEEN, IN or LIKE after NOT");
        return a;
    }
    if (expect_kind(p, a, apos, K_STR, is_in ? "IN applies to strings only"
                                             : "LIKE applies to strings only") < 0)
        return -1;
    next(p);
    int i = is_in ? in_list(p, a, neg) : like(p, a, neg);
    return i < 0 ? -1 : set_depth(p, i, apos);
}

static int comparison(parser *p)
{
    size_t apos = p->tpos;
    int a = sum(p);
    return a < 0 ? -1 : compare_tail(p, a, apos);
}

static int parse_not(parser *p)
{
    if (p->tok != T_NOT)
        return comparison(p);
    size_t pos = p->tpos;
    next(p);
    if (++p->depth > SEL_MAX_DEPTH)
        return fail_at(p, pos, "nested too deeply");
    size_t apos = p->tpos;
    int a = parse_not(p);
    p->depth--;
    if (a < 0 || expect_kind(p, a, apos, K_BOOL, "NOT applies to conditions only") < 0)
        return -1;
    return set_depth(p, node(p, N_NOT, K_BOOL, (uint32_t)a, 0), pos);
}

static int parse_and(parser *p)
{
    static const int ops[][2] = { { T_AND, N_AND } };
    return chain(p, parse_not, ops, 1, K_BOOL, "AND applies to conditions only");
}

static int parse_or(parser *p)
{
    if (++p->depth > SEL_MAX_DEPTH)
        return fail_at(p, p->tpos, "nested too deeply");
    static const int ops[][2] = { { T_OR, N_OR } };
    int i = chain(p, parse_and, ops, 1, K_BOOL, "OR applies to conditions only");
    p->depth--;
    return i;
}

/* The tree parsed, copied into one allocation: the root is moved to the end. */
static sel *finish(parser *p, int root)
{
    size_t nbytes = sizeof(sel) + (size_t)p->nn * sizeof(sel_node);
    sel *s = malloc(nbytes + p->tn + 1);
    if (!s)
        return NULL;
    s->nnodes = p->nn;
    memcpy(s->nodes, p->n, (size_t)p->nn * sizeof(sel_node));
    char *t = (char *)s + nbytes;
    memcpy(t, p->text, p->tn);
    t[p->tn] = '\0';
    s->text = t;
    s->root = (uint32_t)root;
    return s;
}

sel *sel__compile(const char *src, size_t len, size_t *pos, char *err, size_t cap)
{
    *pos = 0;
    if (cap)
        err[0] = '\0';
    if (len > SEL_MAX_LEN) {
        *pos = SEL_MAX_LEN + 1;
        snprintf(err, cap, "longer than %d bytes", SEL_MAX_LEN);
        return NULL;
    }
    parser p = { .src = src, .len = len, .err = err, .cap = cap };
    /* Every node but an IN's strings and a LIKE's escape takes a token of its own; the
     * strings are shorter than their quoted text (JMS names than their header names). */
    p.n = malloc((len + 2) * sizeof *p.n);
    p.text = malloc(2 * len + 2);
    sel *s = NULL;
    if (p.n && p.text) {
        next(&p);
        size_t rpos = p.tpos;
        int root = parse_or(&p);
        if (root >= 0 && p.tok != T_EOF)
            root = fail(&p, "expected AND, OR or the end");
        for (uint32_t k = 0; root >= 0 && k < p.nn; k++)
            if (p.n[k].op == N_LONG && p.n[k].neg == 2)
                root = fail_at(&p, p.n[k].s, "malformed number");
        if (root >= 0 &&
            expect_kind(&p, root, rpos, K_BOOL, "the selector is not a condition") >= 0)
            s = finish(&p, root);
        *pos = s ? 0 : p.errpos;
    }
    free(p.n);
    free(p.text);
    return s;
}

void sel__free(sel *s)
{
    free(s);
}
