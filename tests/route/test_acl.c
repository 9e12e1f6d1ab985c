/* test_acl.c: the rule compiler (route/acl.c through broker.h's broker_acl): what a login
 * may do on a name or a pattern for logins, @groups and *, wildcard coverage element by
 * element, grants adding up, and what broker_acl_grant refuses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker.h"

enum { R = BROKER_PERM_READ, W = BROKER_PERM_WRITE, C = BROKER_PERM_CREATE,
       A = BROKER_PERM_ADMIN };

static broker_acl *rules(void)
{
    broker_acl *a;
    assert_int_equal(broker_acl_create(&a), BROKER_OK);
    assert_int_equal(broker_acl_add_member(a, "ops", "bob"), BROKER_OK);
    assert_int_equal(broker_acl_add_member(a, "ops", "erin"), BROKER_OK);
    assert_int_equal(broker_acl_add_member(a, "ops", "bob"), BROKER_OK); /* once is enough */
    assert_int_equal(broker_acl_grant(a, "alice", R | W, "/queue/a.>"), BROKER_OK);
    assert_int_equal(broker_acl_grant(a, "alice", C, "/queue/a.new"), BROKER_OK);
    assert_int_equal(broker_acl_grant(a, "@ops", R, "/topic/ops.*"), BROKER_OK);
    assert_int_equal(broker_acl_grant(a, "@ops", A, "/queue/#"), BROKER_OK);
    assert_int_equal(broker_acl_grant(a, "*", R, "/topic/news"), BROKER_OK);
    assert_int_equal(broker_acl_grant(a, "@nobody", W, "/topic/news"), BROKER_OK);
    return a;
}

static void test_matrix(void **state)
{
    (void)state;
    broker_acl *a = rules();
    static const struct {
        const char *login, *dest;
        unsigned perms;
    } cases[] = {
        { "alice", "/queue/a.x", R | W },
        { "alice", "/queue/a.x.y", R | W },       /* > takes every remaining element */
        { "alice", "/queue/a", 0 },               /* ... at least one */
        { "alice", "/queue/a/x", 0 },             /* another separator */
        { "alice", "/queue/a.new", R | W | C },   /* grants add up */
        { "alice", "/queue/a.*", R | W },         /* a pattern the rule covers */
        { "alice", "/queue/a.>", R | W },
        { "alice", "/queue/>", 0 },               /* wider than the rule */
        { "alice", "/queue/*.x", 0 },
        { "alice", "/topic/news", R },            /* everyone's */
        { "bob", "/topic/ops.x", R },
        { "erin", "/topic/ops.*", R },
        { "bob", "/topic/ops.x.y", 0 },           /* * is one element */
        { "bob", "/topic/ops.>", 0 },
        { "bob", "/queue/anything", A },          /* # reads as > */
        { "bob", "/queue/a.x", A },
        { "carol", "/queue/a.x", 0 },
        { "carol", "/topic/news", R },
        { NULL, "/topic/news", R },               /* no login: only * */
        { NULL, "/queue/a.x", 0 },
        { "ops", "/topic/ops.x", 0 },             /* a group is not a login */
        { "@ops", "/topic/ops.x", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned got = broker_acl_perms(a, cases[i].login, cases[i].dest);
        if (got != cases[i].perms)
            fail_msg("%s on %s: %u, wanted %u", cases[i].login ? cases[i].login : "(none)",
                     cases[i].dest, got, cases[i].perms);
    }
    broker_acl_free(a);
}

static void test_refused(void **state)
{
    (void)state;
    broker_acl *a;
    assert_int_equal(broker_acl_create(&a), BROKER_OK);
    assert_int_equal(broker_acl_grant(a, "x", R, "/queue/>.a"), BROKER_E_INVALID);
    assert_int_equal(broker_acl_grant(a, "x", R, "/queue/#/a"), BROKER_E_INVALID);
    assert_int_equal(broker_acl_grant(a, "x", R, ""), BROKER_E_INVALID);
    assert_int_equal(broker_acl_grant(a, "", R, "/q"), BROKER_E_INVALID);
    assert_int_equal(broker_acl_grant(a, "@", R, "/q"), BROKER_E_INVALID);
    assert_int_equal(broker_acl_grant(a, "x", 0, "/q"), BROKER_E_INVALID);
    assert_int_equal(broker_acl_grant(a, "x", 16, "/q"), BROKER_E_INVALID);
    assert_int_equal(broker_acl_add_member(a, "@ops", "x"), BROKER_E_INVALID);
    assert_int_equal(broker_acl_add_member(a, "ops", ""), BROKER_E_INVALID);
    /* An empty ACL grants nothing. */
    assert_int_equal(broker_acl_perms(a, "x", "/q"), 0);
    assert_string_equal(broker_perm_name(BROKER_PERM_CREATE), "create");
    assert_string_equal(broker_perm_name(BROKER_PERM_ADMIN), "admin");
    assert_null(broker_perm_name((broker_perm)3));
    broker_acl_free(a);
    broker_acl_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matrix),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
