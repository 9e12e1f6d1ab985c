/* selector.h: JMS message selectors (the SQL-92 subset of JMS 2.0 section 3.8, in ActiveMQ's
 * dialect) compiled once into a tree and evaluated against one message at a time.
 *
 * Standalone: libc only, no broker type. A message is seen through a lookup callback that
 * gives the string value of an identifier (STOMP headers are strings); the evaluator types
 * values as the ActiveMQ and Artemis STOMP documentation describes: a header compared with,
 * or used in arithmetic with, a number is read as a number when it is one (integer or
 * decimal), compared with TRUE or FALSE as a boolean when it is "true" or "false" (any
 * case). Logic is three-valued: a missing header is NULL, and a comparison with NULL is
 * unknown. Evaluation allocates nothing and recurses at most SEL_MAX_DEPTH deep.
 */
#ifndef BROKER_SELECTOR_H
#define BROKER_SELECTOR_H

#include <stddef.h>
#include <stdint.h>

/* Longest selector accepted, and the deepest nesting of its expression. */
#define SEL_MAX_LEN 4096
#define SEL_MAX_DEPTH 64

typedef enum sel_result { SEL_FALSE = 0, SEL_TRUE = 1, SEL_UNKNOWN = 2 } sel_result;

/* What an identifier names: a header by name, or a JMS header field the caller fills from
 * the message (JMSPriority, JMSMessageID, JMSDestination, JMSRedelivered,
 * JMSDeliveryMode). Every other JMS name is a header: JMSTimestamp is timestamp,
 * JMSCorrelationID correlation-id, JMSType type, JMSExpiration expires. */
enum {
    SEL_F_HEADER,
    SEL_F_PRIORITY,      /* the message's priority, 0-9 (4 when it has none) */
    SEL_F_MESSAGE_ID,    /* message-id */
    SEL_F_DESTINATION,   /* destination */
    SEL_F_REDELIVERED,   /* "true" or "false" */
    SEL_F_DELIVERY_MODE, /* "PERSISTENT" (persistent:true) or "NON_PERSISTENT" */
};

/* The value of identifier (field, name) in the message ctx stands for, or NULL when it has
 * none. The value is borrowed for the evaluation and NUL-terminated at *vlen. */
typedef const char *(*sel_lookup)(void *ctx, int field, const char *name, size_t name_len,
                                  size_t *vlen);

typedef struct sel sel;

/* Compile text (len bytes). Returns the selector (caller owns, release with sel__free()),
 * or NULL: then *pos is the 1-based byte position of the error (0: out of memory) and err
 * (cap bytes) says what is wrong there. */
sel *sel__compile(const char *text, size_t len, size_t *pos, char *err, size_t cap);
void sel__free(sel *s);
/* Evaluate s against the message lookup(ctx, ...) shows. */
sel_result sel__eval(const sel *s, sel_lookup lookup, void *ctx);
/* Does the message match (the selector is TRUE for it)? */
static inline int sel__match(const sel *s, sel_lookup lookup, void *ctx)
{
    return sel__eval(s, lookup, ctx) == SEL_TRUE;
}

#endif
