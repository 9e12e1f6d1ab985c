/* test_policy_config.c: the message policies stompd hands to the library, as
 * options__configure builds them from a config file and the command line: the [stompd]
 * keys fill broker_options.policy, each [queue "PATTERN"] section one rule, and a key a
 * section does not set comes from the final [stompd] value, wherever [stompd] stands in the
 * file and whatever --set changed. The error messages are tested on the binary
 * (tests/daemon/test_config).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "testlib.h"

/* Sections before, between and after [stompd] keys; one section sets nothing, one sets
 * dead_letter empty (the library's naming) over [stompd]'s none and has a header longer
 * than the section names inih keeps (49 bytes). */
static const char sections[] =
    "[queue \"/queue/orders.*\"]\n"
    "max_deliveries = 3\n"
    "dead_letter = /queue/orders.dead\n"
    "[stompd]\n"
    "redelivery_delay = 200\n"
    "redelivery_backoff = 3\n"
    "dead_letter = none\n"
    "[queue \"/queue/audit\"]\n"
    "[queue \"/queue/slow.consumers.of.the.nightly.reports.>\"]\n"
    "redelivery_delay = 5000\n"
    "redelivery_delay_max = 900000\n"
    "dead_letter =\n"
    "[stompd]\n"
    "max_deliveries = 4\n";

typedef struct run {
    daemon_config cfg;
    char path[64];
    char err[DAEMON_ERRLEN];
} run;

/* Configure r->cfg as `stompd -c FILE ARGS...` would, FILE holding text: the exit code. */
static int configure(run *r, const char *text, const char *const *args)
{
    snprintf(r->path, sizeof r->path, "/tmp/test_policy_config.XXXXXX");
    int fd = mkstemp(r->path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(close(fd), 0);
    char *argv[16] = { "stompd", "-c", r->path };
    int argc = 3;
    for (; args && args[argc - 3]; argc++) {
        assert_true(argc < 15);
        argv[argc] = strdup(args[argc - 3]); /* --set's argument is split in place */
        assert_non_null(argv[argc]);
    }
    options o;
    optind = 0; /* getopt starts afresh */
    assert_int_equal(options__parse(&o, argc, argv, r->err, sizeof r->err), STOMPD_EXIT_OK);
    int rc = options__configure(&o, &r->cfg, NULL, NULL, r->err, sizeof r->err);
    for (int i = 3; i < argc; i++)
        free(argv[i]);
    assert_int_equal(unlink(r->path), 0);
    return rc;
}

static void policy_is(const broker_policy *p, uint32_t max_deliveries, uint32_t delay,
                      double backoff, uint32_t delay_max, const char *dead_letter)
{
    assert_int_equal(p->max_deliveries, max_deliveries);
    assert_int_equal(p->redelivery_delay, delay);
    assert_true(p->redelivery_backoff == backoff);
    assert_int_equal(p->redelivery_delay_max, delay_max);
    if (dead_letter)
        assert_string_equal(p->dead_letter, dead_letter);
    else
        assert_null(p->dead_letter);
}

static void test_defaults_are_the_library_s(void **state)
{
    (void)state;
    run r;
    assert_int_equal(configure(&r, "[stompd]\n", NULL), STOMPD_EXIT_OK);
    broker_options lib;
    broker_options_init(&lib);
    policy_is(&r.cfg.opts.policy, lib.policy.max_deliveries, lib.policy.redelivery_delay,
              lib.policy.redelivery_backoff, lib.policy.redelivery_delay_max,
              lib.policy.dead_letter);
    assert_null(r.cfg.opts.policies);
    assert_int_equal(r.cfg.opts.npolicies, 0);
    config__free(&r.cfg);
}

static void test_stompd_keys_fill_the_broker_policy(void **state)
{
    (void)state;
    run r;
    assert_int_equal(configure(&r,
                               "[stompd]\nmax_deliveries = 0\nredelivery_delay = 250\n"
                               "redelivery_backoff = 1.5\nredelivery_delay_max = 4000\n"
                               "dead_letter = /queue/dead\n",
                               NULL),
                     STOMPD_EXIT_OK);
    policy_is(&r.cfg.opts.policy, 0, 250, 1.5, 4000, "/queue/dead");
    assert_int_equal(r.cfg.opts.npolicies, 0);
    config__free(&r.cfg);
}

static void test_sections_inherit_from_stompd_in_any_order(void **state)
{
    (void)state;
    run r;
    assert_int_equal(configure(&r, sections, NULL), STOMPD_EXIT_OK);
    const broker_options *o = &r.cfg.opts;
    policy_is(&o->policy, 4, 200, 3, 60000, "none");
    assert_int_equal(o->npolicies, 3);
    assert_string_equal(o->policies[0].pattern, "/queue/orders.*");
    policy_is(&o->policies[0].policy, 3, 200, 3, 60000, "/queue/orders.dead");
    assert_string_equal(o->policies[1].pattern, "/queue/audit");
    policy_is(&o->policies[1].policy, 4, 200, 3, 60000, "none");
    assert_string_equal(o->policies[2].pattern,
                        "/queue/slow.consumers.of.the.nightly.reports.>");
    policy_is(&o->policies[2].policy, 4, 5000, 3, 900000, NULL);
    config__free(&r.cfg);
}

static void test_set_overrides_reach_the_sections(void **state)
{
    (void)state;
    static const char *const args[] = { "--set", "max_deliveries=7", "--set",
                                         "redelivery_backoff=1.25", "--set",
                                         "dead_letter=/queue/all.dead", NULL };
    run r;
    assert_int_equal(configure(&r, sections, args), STOMPD_EXIT_OK);
    const broker_options *o = &r.cfg.opts;
    policy_is(&o->policy, 7, 200, 1.25, 60000, "/queue/all.dead");
    assert_int_equal(o->npolicies, 3);
    policy_is(&o->policies[0].policy, 3, 200, 1.25, 60000, "/queue/orders.dead");
    policy_is(&o->policies[1].policy, 7, 200, 1.25, 60000, "/queue/all.dead");
    policy_is(&o->policies[2].policy, 7, 5000, 1.25, 900000, NULL);
    config__free(&r.cfg);
}

/* A section's cap is checked against the delay it ends up with, --set included. */
static void test_delay_cap_checked_after_set(void **state)
{
    (void)state;
    static const char text[] = "[stompd]\n[queue \"/queue/a\"]\nredelivery_delay_max = 3000\n";
    static const char *const args[] = { "--set", "redelivery_delay=5000", NULL };
    run r;
    assert_int_equal(configure(&r, text, NULL), STOMPD_EXIT_OK);
    config__free(&r.cfg);
    assert_int_equal(configure(&r, text, args), STOMPD_EXIT_CONFIG);
    char want[DAEMON_ERRLEN];
    snprintf(want, sizeof want,
             "%s:2: [queue \"/queue/a\"]: redelivery_delay_max (3000) is less than "
             "redelivery_delay (5000 from [stompd])", r.path);
    assert_string_equal(r.err, want);
    config__free(&r.cfg);
}

/* The library takes the options as built (a broker starts with them and stops cleanly),
 * strings borrowed from the config. */
static void test_the_library_takes_them(void **state)
{
    (void)state;
    run r;
    assert_int_equal(configure(&r, sections, NULL), STOMPD_EXIT_OK);
    tb *t = tb_start(&r.cfg.opts);
    assert_non_null(t);
    assert_int_equal(tb_stop(t), 0);
    config__free(&r.cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_the_library_s),
        cmocka_unit_test(test_stompd_keys_fill_the_broker_policy),
        cmocka_unit_test(test_sections_inherit_from_stompd_in_any_order),
        cmocka_unit_test(test_set_overrides_reach_the_sections),
        cmocka_unit_test(test_delay_cap_checked_after_set),
        cmocka_unit_test(test_the_library_takes_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
