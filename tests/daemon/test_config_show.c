/* test_config_show.c: the configuration as GET /api/config and a reload see it
 * (config_show.c, reload.c): every table's keys are there with the value as the file
 * would write it, a postgres: store's password never shows, and comparing two
 * configurations names exactly the keys that differ, sorted into "applies now" and
 * "needs a restart", with the running value of the latter kept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"

typedef struct shown {
    char text[32768]; /* "section|key=value\n" lines */
    size_t len;
} shown;

static void collect(void *ctx, const char *section, const char *key, const char *value)
{
    shown *s = ctx;
    int n = snprintf(s->text + s->len, sizeof s->text - s->len, "%s|%s=%s\n", section, key,
                     value);
    assert_true(n > 0 && (size_t)n < sizeof s->text - s->len);
    s->len += (size_t)n;
}

static void set(daemon_config *cfg, const char *key, const char *value)
{
    char err[DAEMON_ERRLEN];
    if (config__set(cfg, key, value, err, sizeof err) != 0)
        fail_msg("%s=%s: %s", key, value, err);
}

static void make(daemon_config *cfg)
{
    char err[DAEMON_ERRLEN];
    assert_int_equal(config__init(cfg, err, sizeof err), 0);
}

static const char *show(const daemon_config *cfg, shown *s)
{
    s->len = 0;
    s->text[0] = '\0';
    config__show(cfg, collect, s);
    return s->text;
}

static void test_every_table_is_shown(void **state)
{
    (void)state;
    daemon_config cfg;
    make(&cfg);
    char err[DAEMON_ERRLEN];
    int given = 0; /* as in a file: the first listen replaces the default, the next adds */
    assert_int_equal(config__set_from_file(&cfg, "listen", "[::1]:7000", &given, err,
                                           sizeof err), 0);
    assert_int_equal(config__set_from_file(&cfg, "listen", "unix:/run/stompd.sock", &given,
                                           err, sizeof err), 0);
    set(&cfg, "tls_cert", "/etc/stompd/server.pem");
    set(&cfg, "admin_listen", "127.0.0.1:61680");
    set(&cfg, "max_deliveries", "7");
    shown s;
    const char *t = show(&cfg, &s);
    static const char *const lines[] = {
        "stompd|listen=[::1]:7000\nstompd|listen=unix:/run/stompd.sock\n",
        "stompd|max_connections=16384\n", "stompd|umask=022\n", "stompd|log_level=info\n",
        "stompd|tls_cert=/etc/stompd/server.pem\n", "stompd|tls_key=\n",
        "stompd|tls_min_version=1.2\n", "stompd|admin_listen=127.0.0.1:61680\n",
        "stompd|unix_mode=0660\n", "stompd|max_deliveries=7\n",
        "stompd|redelivery_backoff=2\n", "stompd|overflow=block\n", "stompd|sync=full\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        if (!strstr(t, lines[i]))
            fail_msg("missing %s in:\n%s", lines[i], t);
    config__free(&cfg);
}

static void test_store_password_is_hidden(void **state)
{
    (void)state;
    daemon_config cfg;
    make(&cfg);
    shown s;
    set(&cfg, "store", "postgres:host=db password=hunter2 dbname=stompd");
    assert_non_null(strstr(show(&cfg, &s), "stompd|store=postgres:host=db password=*** "
                                           "dbname=stompd\n"));
    assert_null(strstr(s.text, "hunter2"));
    set(&cfg, "store", "postgres:postgresql://app:hunter2@db.example.com/stompd");
    assert_non_null(strstr(show(&cfg, &s), "stompd|store=postgres:postgresql://app:***@"
                                           "db.example.com/stompd\n"));
    assert_null(strstr(s.text, "hunter2"));
    config__free(&cfg);
}

static void test_compare_sorts_and_keeps_the_running_values(void **state)
{
    (void)state;
    daemon_config old, next;
    make(&old);
    make(&next);
    set(&next, "max_subscriptions", "9");
    set(&next, "listen", "127.0.0.1:7001");
    set(&next, "log_level", "debug");
    set(&next, "store", "sqlite:/var/lib/stompd/q.db");
    set(&next, "tls_cert", "/etc/stompd/server.pem"); /* TLS turned on: a restart */
    broker_reload_result r;
    memset(&r, 0, sizeof r);
    assert_int_equal(reload__compare(&old, &next, &r), 0);
    assert_string_equal(r.changed, "log_level, max_subscriptions");
    assert_string_equal(r.restart, "listen, store, tls_cert");
    reload__keep_running(&next, &old);
    shown s;
    const char *t = show(&next, &s);
    assert_non_null(strstr(t, "stompd|listen=127.0.0.1:61613\n"));
    assert_non_null(strstr(t, "stompd|store=memory\n"));
    assert_non_null(strstr(t, "stompd|tls_cert=\n"));
    assert_non_null(strstr(t, "stompd|max_subscriptions=9\n"));
    memset(&r, 0, sizeof r);
    assert_int_equal(reload__compare(&next, &next, &r), 0);
    assert_string_equal(r.changed, "");
    assert_string_equal(r.restart, "");
    config__free(&old);
    config__free(&next);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_table_is_shown),
        cmocka_unit_test(test_store_password_is_hidden),
        cmocka_unit_test(test_compare_sorts_and_keeps_the_running_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
