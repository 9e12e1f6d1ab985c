/* config_tls.c: stompd's TLS keys: the STOMP-over-TLS and wss listeners, the certificate,
 * key and CA files, client certificates (asked, required, used as the login) and the
 * protocol settings. They live in the [stompd] section and --set like every key, and
 * become broker_options' tls fields (config__tls_options); the files are checked before
 * stompd detaches (config__tls_check) and read again by the library at SIGHUP.
 *
 * A listener's address may be followed by none, optional or required: that listener's
 * client certificate mode instead of tls_verify_client.
 */
#include "daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T_LISTEN, T_WSS, T_CERT, T_KEY, T_CA, T_VERIFY, T_LOGIN, T_MIN, T_CIPHERS, T_SUITES };

static const struct tls_key {
    const char *name, *def, *help;
} keys[] = {
    [T_LISTEN] = { "tls_listen", "",
                   "STOMP over TLS address, HOST:PORT (61614), optionally followed by none, "
                   "optional or required (this listener's client certificates); repeatable; "
                   "empty: none" },
    [T_WSS] = { "wss_listen", "", "WebSocket over TLS (wss) address, as tls_listen" },
    [T_CERT] = { "tls_cert", "", "PEM file: the server certificate, then its chain" },
    [T_KEY] = { "tls_key", "", "PEM file: its private key (empty: in tls_cert)" },
    [T_CA] = { "tls_ca", "", "PEM file: the CAs client certificates must chain to" },
    [T_VERIFY] = { "tls_verify_client", "none", "client certificates: none, optional or "
                                                "required (the last two need tls_ca)" },
    [T_LOGIN] = { "tls_login", "none", "a verified client certificate is the login: none, "
                                       "cn (subject CN) or san (first email/DNS/URI name)" },
    [T_MIN] = { "tls_min_version", "1.2", "oldest TLS version accepted: 1.2 or 1.3" },
    [T_CIPHERS] = { "tls_ciphers", "", "TLS 1.2 ciphers, OpenSSL syntax (empty: "
                                       "ECDHE+AESGCM:ECDHE+CHACHA20)" },
    [T_SUITES] = { "tls_ciphersuites", "", "TLS 1.3 suites, OpenSSL syntax (empty: OpenSSL's)" },
};

#define NKEYS (sizeof keys / sizeof keys[0])

static const char *const verify_words[] = { "none", "optional", "required", NULL };
static const char *const login_words[] = { "none", "cn", "san", NULL };

static int word(const char *v, const char *const *words)
{
    for (int i = 0; words[i]; i++)
        if (strcmp(v, words[i]) == 0)
            return i;
    return -1;
}

void config__tls_init(daemon_config *cfg)
{
    memset(&cfg->tls, 0, sizeof cfg->tls);
    cfg->tls.min_version = 12;
}

void config__tls_free(daemon_config *cfg)
{
    config_tls *t = &cfg->tls;
    free(t->cert);
    free(t->key);
    free(t->ca);
    free(t->ciphers);
    free(t->ciphersuites);
    memset(t, 0, sizeof *t);
}

/* "HOST:PORT [none|optional|required]" added to a listener list. */
static int add_listener(config_tls *t, int wss, int from_cli, const char *v, char *err,
                        size_t errlen)
{
    const char *name = keys[wss ? T_WSS : T_LISTEN].name;
    int *cli = wss ? &t->cli_wss : &t->cli_listen;
    size_t *count = wss ? &t->nwss : &t->nlisten;
    if (from_cli && !*cli) {
        *cli = 1;
        *count = 0;
    }
    if (!*v) {
        *count = 0; /* empty: none */
        return 0;
    }
    char addr[128];
    int verify = BROKER_TLS_VERIFY_DEFAULT;
    size_t n = strcspn(v, " \t");
    const char *rest = v + n + strspn(v + n, " \t");
    config_listen l;
    if (n >= sizeof addr || (*rest && (verify = word(rest, verify_words)) < 0)) {
        snprintf(err, errlen, "%s: '%s' is not HOST:PORT, optionally followed by none, "
                 "optional or required", name, v);
        return -1;
    }
    memcpy(addr, v, n);
    addr[n] = '\0';
    if (config__parse_listen(addr, &l, 61614) != 0) {
        snprintf(err, errlen, "%s: '%s' is not HOST:PORT or [IPV6]:PORT", name, v);
        return -1;
    }
    if (*count >= CONFIG_MAX_LISTEN) {
        snprintf(err, errlen, "%s: at most %d addresses", name, CONFIG_MAX_LISTEN);
        return -1;
    }
    (wss ? t->wss : t->listen)[*count] = l;
    (wss ? t->wss_verify : t->listen_verify)[(*count)++] = verify;
    return 0;
}

static int set_word(int *slot, const char *name, const char *v, const char *const *words,
                    const char *list, char *err, size_t errlen)
{
    int i = word(v, words);
    if (i < 0) {
        snprintf(err, errlen, "%s: '%s' is not %s", name, v, list);
        return -1;
    }
    *slot = i;
    return 0;
}

int config__tls_set(daemon_config *cfg, const char *name, const char *value, int from_cli,
                    char *err, size_t errlen)
{
    config_tls *t = &cfg->tls;
    size_t k = 0;
    while (k < NKEYS && strcmp(keys[k].name, name) != 0)
        k++;
    char **str = NULL;
    switch (k) {
    case T_LISTEN:
    case T_WSS:
        return add_listener(t, k == T_WSS, from_cli, value, err, errlen);
    case T_VERIFY:
        return set_word(&t->verify_client, name, value, verify_words,
                        "none, optional or required", err, errlen);
    case T_LOGIN:
        return set_word(&t->login, name, value, login_words, "none, cn or san", err, errlen);
    case T_MIN:
        if (strcmp(value, "1.2") != 0 && strcmp(value, "1.3") != 0) {
            snprintf(err, errlen, "%s: '%s' is not 1.2 or 1.3 (older versions are not "
                     "offered)", name, value);
            return -1;
        }
        t->min_version = value[2] == '3' ? 13 : 12;
        return 0;
    case T_CERT: str = &t->cert; break;
    case T_KEY: str = &t->key; break;
    case T_CA: str = &t->ca; break;
    case T_CIPHERS: str = &t->ciphers; break;
    case T_SUITES: str = &t->ciphersuites; break;
    default: return 1;
    }
    if (config__set_str(str, value) != 0) {
        snprintf(err, errlen, "%s: out of memory", name);
        return -1;
    }
    return 0;
}

int config__tls_absolute(daemon_config *cfg)
{
    config_tls *t = &cfg->tls;
    if (config__absolute(&t->cert, 0) != 0 || config__absolute(&t->key, 0) != 0 ||
        config__absolute(&t->ca, 0) != 0)
        return -1;
    return 0;
}

void config__tls_print(FILE *f)
{
    fprintf(f, "\nTLS keys (SIGHUP reads the certificate, key and CA files again):\n");
    for (size_t i = 0; i < NKEYS; i++)
        fprintf(f, "  %-25s %-16s %s\n", keys[i].name, keys[i].def[0] ? keys[i].def : "\"\"",
                keys[i].help);
}

void config__tls_options(const daemon_config *cfg, broker_options *o)
{
    const config_tls *t = &cfg->tls;
    o->tls_cert = t->cert;
    o->tls_key = t->key;
    o->tls_ca = t->ca;
    o->tls_verify_client = t->verify_client;
    o->tls_login = t->login;
    o->tls_min_version = t->min_version;
    o->tls_ciphers = t->ciphers;
    o->tls_ciphersuites = t->ciphersuites;
}

int config__tls_check(const daemon_config *cfg, char *err, size_t errlen)
{
    const config_tls *t = &cfg->tls;
    if (cfg->admin_tls && !t->cert) {
        snprintf(err, errlen, "admin_tls: needs tls_cert (and tls_key)");
        return -1;
    }
    if ((t->nlisten || t->nwss) && !t->cert) {
        snprintf(err, errlen, "%s: needs tls_cert (and tls_key)",
                 t->nlisten ? "tls_listen" : "wss_listen");
        return -1;
    }
    for (size_t i = 0; i < t->nlisten + t->nwss; i++) {
        int v = i < t->nlisten ? t->listen_verify[i] : t->wss_verify[i - t->nlisten];
        if (v != BROKER_TLS_VERIFY_DEFAULT && v != BROKER_TLS_VERIFY_NONE && !t->ca) {
            snprintf(err, errlen, "%s: client certificates (%s) need tls_ca",
                     i < t->nlisten ? "tls_listen" : "wss_listen", verify_words[v]);
            return -1;
        }
    }
    if (!t->cert)
        return 0;
    broker_options o;
    broker_options_init(&o);
    config__tls_options(cfg, &o);
    return broker_tls_check(&o, err, errlen) == BROKER_OK ? 0 : -1;
}
