/* config_policy.c: the message policies of the config file: the [queue "PATTERN"] sections
 * (their headers checked strictly, no pattern twice) and, once the file and the command
 * line are read, the broker_options policy and rules made of them.
 *
 * A section keeps only the keys it sets (config_policy.given); the others come from the
 * final [stompd] values when the rules are built, so where [stompd] stands in the file, and
 * --set, do not matter. Every string the rules point at belongs to the config.
 */
#include "daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *config__wildcard(const char *name)
{
    for (const char *e = name;; e++) {
        size_t n = strcspn(e, "./");
        if (n == 1 && (*e == '*' || *e == '>'))
            return e;
        e += n;
        if (!*e)
            return NULL;
    }
}

int config__is_queue_section(const char *section)
{
    /* strchr finds the terminator too: "queue" alone is one, to be told it lacks a pattern. */
    return strncmp(section, "queue", 5) == 0 && strchr(" \t\"", section[5]);
}

/* The pattern of `queue "PATTERN"`, at *pat for *len bytes. -1 with a message. */
static int parse_header(const char *section, const char **pat, size_t *len, char *err,
                        size_t errlen)
{
    const char *s = section + 5 + strspn(section + 5, " \t");
    const char *close = *s == '"' ? strchr(s + 1, '"') : NULL;
    const char *why = NULL;
    if (!*s)
        why = "a queue section needs a pattern: [queue \"PATTERN\"]";
    else if (*s != '"')
        why = "the pattern must be in double quotes: [queue \"PATTERN\"]";
    else if (!close)
        why = "no closing quote: [queue \"PATTERN\"]";
    else if (close == s + 1)
        why = "empty pattern";
    else if (close[1])
        why = "text after the closing quote: [queue \"PATTERN\"]";
    if (why) {
        snprintf(err, errlen, "[%s]: %s", section, why);
        return -1;
    }
    *pat = s + 1;
    *len = (size_t)(close - *pat);
    return 0;
}

/* What the library would never match: '>' before the last element, a topic. */
static int check_pattern(const char *pattern, char *err, size_t errlen)
{
    const char *why = NULL;
    for (const char *w = config__wildcard(pattern); w && !why; w = config__wildcard(w + 1))
        if (*w == '>' && w[1])
            why = "'>' may only be the last element";
    if (strncmp(pattern, "/topic/", 7) == 0)
        why = "a /topic/ pattern (policies are for queues)";
    if (!why)
        return 0;
    snprintf(err, errlen, "[queue \"%s\"]: %s", pattern, why);
    return -1;
}

int config__add_queue(daemon_config *cfg, const char *section, unsigned line, char *err,
                      size_t errlen)
{
    const char *pat;
    size_t len;
    if (parse_header(section, &pat, &len, err, errlen) != 0)
        return -1;
    char *pattern = strndup(pat, len);
    if (!pattern) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (check_pattern(pattern, err, errlen) != 0)
        goto fail;
    for (size_t i = 0; i < cfg->nqueues; i++)
        if (strcmp(cfg->queues[i].pattern, pattern) == 0) {
            snprintf(err, errlen, "[queue \"%s\"]: the same pattern as the section at line %u",
                     pattern, cfg->queues[i].line);
            goto fail;
        }
    config_queue *q = realloc(cfg->queues, (cfg->nqueues + 1) * sizeof *q);
    if (!q) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    cfg->queues = q;
    cfg->queues[cfg->nqueues++] = (config_queue){ .pattern = pattern, .line = line };
    return 0;
fail:
    free(pattern);
    return -1;
}

/* The [stompd] policy with what the section q sets instead. */
static broker_policy inherit(const config_policy *top, const config_policy *q)
{
    broker_policy p = top->p;
    p.dead_letter = top->dead_letter;
    if (q->given & CONFIG_GIVEN(CONFIG_MAX_DELIVERIES))
        p.max_deliveries = q->p.max_deliveries;
    if (q->given & CONFIG_GIVEN(CONFIG_REDELIVERY_DELAY))
        p.redelivery_delay = q->p.redelivery_delay;
    if (q->given & CONFIG_GIVEN(CONFIG_REDELIVERY_BACKOFF))
        p.redelivery_backoff = q->p.redelivery_backoff;
    if (q->given & CONFIG_GIVEN(CONFIG_REDELIVERY_DELAY_MAX))
        p.redelivery_delay_max = q->p.redelivery_delay_max;
    if (q->given & CONFIG_GIVEN(CONFIG_DEAD_LETTER))
        p.dead_letter = q->dead_letter;
    if (q->given & CONFIG_GIVEN(CONFIG_TTL))
        p.ttl = q->p.ttl;
    if (q->given & CONFIG_GIVEN(CONFIG_MAX_TTL))
        p.max_ttl = q->p.max_ttl;
    if (q->given & CONFIG_GIVEN(CONFIG_EXPIRED))
        p.expired = q->p.expired;
    if (q->given & CONFIG_GIVEN(CONFIG_MAX_DELAY))
        p.max_delay = q->p.max_delay;
    if (q->given & CONFIG_GIVEN(CONFIG_MAX_LENGTH))
        p.max_length = q->p.max_length;
    if (q->given & CONFIG_GIVEN(CONFIG_MAX_BYTES))
        p.max_bytes = q->p.max_bytes;
    if (q->given & CONFIG_GIVEN(CONFIG_OVERFLOW))
        p.overflow = q->p.overflow;
    return p;
}

/* A cap below the first delay would shorten every delay to the cap: refused rather than
 * guessed. where prefixes the message; inherited marks the keys that came from [stompd]. */
static int check_delays(const broker_policy *p, unsigned inherited, const char *where,
                        char *err, size_t errlen)
{
    if (p->redelivery_delay_max >= p->redelivery_delay)
        return 0;
    const char *from = " from [stompd]";
    int max_inherited = (inherited & CONFIG_GIVEN(CONFIG_REDELIVERY_DELAY_MAX)) != 0;
    int delay_inherited = (inherited & CONFIG_GIVEN(CONFIG_REDELIVERY_DELAY)) != 0;
    snprintf(err, errlen, "%sredelivery_delay_max (%u%s) is less than redelivery_delay (%u%s)",
             where, (unsigned)p->redelivery_delay_max, max_inherited ? from : "",
             (unsigned)p->redelivery_delay, delay_inherited ? from : "");
    return -1;
}

int config__build_policies(daemon_config *cfg, const char *file, char *err, size_t errlen)
{
    static const config_policy nothing_set;
    free(cfg->rules);
    cfg->rules = NULL;
    cfg->opts.policies = NULL;
    cfg->opts.npolicies = 0;
    cfg->opts.policy = inherit(&cfg->policy, &nothing_set);
    if (check_delays(&cfg->opts.policy, 0, "", err, errlen) != 0)
        return -1;
    if (!cfg->nqueues)
        return 0;
    cfg->rules = calloc(cfg->nqueues, sizeof *cfg->rules);
    if (!cfg->rules) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < cfg->nqueues; i++) {
        const config_queue *q = &cfg->queues[i];
        broker_policy_rule *r = &cfg->rules[i];
        r->pattern = q->pattern;
        r->policy = inherit(&cfg->policy, &q->policy);
        char where[DAEMON_ERRLEN];
        snprintf(where, sizeof where, "%s:%u: [queue \"%s\"]: ", file ? file : "", q->line,
                 q->pattern);
        if (check_delays(&r->policy, ~q->policy.given, where, err, errlen) != 0)
            return -1;
    }
    cfg->opts.policies = cfg->rules;
    cfg->opts.npolicies = cfg->nqueues;
    return 0;
}

void config__free_policies(daemon_config *cfg)
{
    for (size_t i = 0; i < cfg->nqueues; i++) {
        free(cfg->queues[i].pattern);
        free(cfg->queues[i].policy.dead_letter);
    }
    free(cfg->queues);
    free(cfg->rules);
    cfg->queues = NULL;
    cfg->nqueues = 0;
    cfg->rules = NULL;
    cfg->opts.policies = NULL;
    cfg->opts.npolicies = 0;
}
