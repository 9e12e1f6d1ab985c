/* wild.h: wildcard destination patterns (ActiveMQ's syntax) in a trie of name elements, so
 * that the patterns matching a name are found in time proportional to the name's elements,
 * not to the number of patterns.
 *
 * A name's elements are separated by '.' or '/'; each element is keyed with the separator
 * before it, so a pattern matches only names with the same separators. A pattern element
 * '*' matches one element, '>' (or RabbitMQ's '#', read as '>') every remaining one (at
 * least one) and must be the last. Only a whole element is a wildcard: "a*b" is a plain
 * name. What hangs at a pattern's node are the dests named by it (route.h), borrowed.
 */
#ifndef BROKER_WILD_H
#define BROKER_WILD_H

#include <stddef.h>

#include "broker.h"

typedef struct dest dest_t;
typedef struct wild_node wild_node;

typedef struct wild_trie {
    wild_node *root; /* NULL while it holds no pattern */
    size_t n;        /* patterns (dests) in it */
} wild_trie;

/* Does name hold a wildcard element ('*', '>' or '#')? */
int wild__is_pattern(const char *name, size_t len);
/* Is a pattern well formed ('>' or '#' only last)? NULL, or what is wrong (static text). */
const char *wild__check(const char *name, size_t len);
/* Add d (its name a well-formed pattern): BROKER_OK or BROKER_E_NOMEM (nothing added). */
broker_err wild__add(wild_trie *t, dest_t *d) BROKER_WUR;
void wild__remove(wild_trie *t, dest_t *d);
/* fn(arg, d) for every dest of t whose pattern matches name. fn must not change t. */
void wild__match(const wild_trie *t, const char *name, size_t len,
                 void (*fn)(void *arg, dest_t *d), void *arg);
/* Does the pattern (well formed) match name? */
int wild__matches(const char *pattern, size_t plen, const char *name, size_t nlen);
/* Does the pattern (well formed) match every name that p (a name or a well-formed pattern)
 * matches? For a plain p the same as wild__matches. */
int wild__covers(const char *pattern, size_t plen, const char *p, size_t len);
void wild__free(wild_trie *t);

#endif
