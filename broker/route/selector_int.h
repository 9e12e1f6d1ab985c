/* selector_int.h: the compiled form of a selector, shared by its compiler (selector.c) and
 * its evaluator (selector_eval.c).
 *
 * One allocation holds the nodes and, after them, every string the tree refers to
 * (identifier names, literals, LIKE patterns), each NUL-terminated. Children are indexes
 * into nodes[]. AND and OR chains are right-deep (a AND (b AND c)): the evaluator loops
 * down their right side, so only other nesting costs stack. A node's kind is what it is known to give
 * before any message is seen: a condition, a number, a string, or anything (an
 * identifier: a header may read as any of them).
 */
#ifndef BROKER_SELECTOR_INT_H
#define BROKER_SELECTOR_INT_H

#include "selector.h"

enum {
    N_IDENT,   /* field, s/slen: the header name */
    N_STR,     /* s/slen */
    N_LONG,    /* v.i */
    N_DOUBLE,  /* v.d */
    N_BOOL,    /* v.i: 0 or 1 */
    N_NULL,
    N_AND, N_OR, N_NOT,
    N_EQ, N_NE, N_LT, N_GT, N_LE, N_GE,
    N_ADD, N_SUB, N_MUL, N_DIV, N_NEG,
    N_BETWEEN, /* a BETWEEN b AND c; neg: NOT BETWEEN */
    N_IN,      /* a IN (strings b .. b + c - 1); neg: NOT IN */
    N_LIKE,    /* a LIKE s/slen ESCAPE v.i (-1: none); neg: NOT LIKE */
    N_ISNULL,  /* a IS NULL; neg: IS NOT NULL */
};

enum { K_BOOL, K_NUM, K_STR, K_ANY };

typedef struct sel_node {
    uint8_t op;
    uint8_t kind;
    uint8_t neg;
    uint8_t field;
    uint16_t depth;   /* of the evaluator's recursion below it (at most SEL_MAX_DEPTH) */
    uint32_t a, b, c;
    uint32_t s, slen; /* offset of a string in the selector's text area, its length */
    union {
        int64_t i;
        double d;
    } v;
} sel_node;

struct sel {
    uint32_t nnodes;
    uint32_t root;
    const char *text; /* the strings, after the nodes */
    sel_node nodes[];
};

#endif
