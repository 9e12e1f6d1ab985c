/* config_keys.h: the table row of one config key, shared by config.c (which owns the
 * tables and sets values) and config_show.c (which writes the values back out). Private to
 * the daemon's config files.
 */
#ifndef STOMPD_CONFIG_KEYS_H
#define STOMPD_CONFIG_KEYS_H

#include "daemon.h"

enum kind {
    K_SIZE, K_U32, K_BOOL, K_STR, K_LISTEN, K_STORE, K_SYNC, K_UMASK, K_LEVEL,
    K_ADDR,     /* an IPv4 or IPv6 literal */
    K_PORT,     /* 0-65535 */
    K_OPTPORT,  /* 0-65535, or empty for none (-1) */
    K_URLPATH,  /* starts with / */
    K_LIST,     /* non-empty, comma-separated */
    K_PORTLIST, /* empty, or Flash to-ports: digits, ',', '-', '*' */
    K_FACTOR,   /* a decimal number of at least min */
    K_QUEUE,    /* empty, none, or one queue's name */
    K_MS,       /* a whole number of ms (uint64_t, below 2^53) */
    K_COUNT,    /* a whole number (uint64_t, below 2^53) */
    K_BYTES,    /* a size, k, m, g allowed (uint64_t, below 2^53) */
    K_EXPIRED,  /* dead-letter or drop */
    K_OVERFLOW, /* block, drop-head or reject */
};

typedef struct config_key {
    const char *name;
    enum kind kind;
    size_t off;      /* of the field in daemon_config */
    size_t min;      /* smallest accepted value (numbers) */
    const char *def; /* the default, as written in the file */
    const char *help;
} config_key;
typedef config_key key;

/* The [stompd] keys (*n of them) and the message policy keys (in enum config_policy_key
 * order; off is in config_policy). */
const config_key *config__keys(size_t *n);
extern const config_key config__policy_keys[CONFIG_POLICY_KEYS];

#endif
