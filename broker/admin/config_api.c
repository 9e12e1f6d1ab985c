/* config_api.c: the running configuration over the management API, both answered by the
 * embedder's hooks (broker_options.admin_reload, admin_config): POST /api/reload reads the
 * configuration again and says what changed, what waits for a restart, or why nothing
 * did; GET /api/config lists every key with its value.
 *
 * The library knows no config file: what a key is, and what must not be shown (passcodes,
 * hashes, key material), is the embedder's business. A reload is an action: it is logged
 * with its login, peer and outcome.
 */
#include "admin/http.h"

#include <stdlib.h>
#include <string.h>

/* "a, b, c" as a JSON array of strings (NULL: out of memory). */
static json_t *split_list(const char *list)
{
    json_t *arr = json_array();
    const char *p = list;
    while (arr && *p) {
        p += strspn(p, ", ");
        size_t n = strcspn(p, ",");
        while (n && p[n - 1] == ' ')
            n--;
        if (n && json_array_append_new(arr, admin__jstr(p, n)) != 0) {
            json_decref(arr);
            return NULL;
        }
        p += strcspn(p, ",");
    }
    return arr;
}

static void reload(http_conn *hc)
{
    broker *b = hc->b;
    broker_reload_result *r = calloc(1, sizeof *r);
    if (!r) {
        admin__error(hc, 500, "out of memory");
        return;
    }
    b->o.admin_reload(b->o.admin_ctx, r);
    if (r->error[0]) {
        admin__log_action(hc, "reload", "configuration", "refused, old one kept");
        admin__error(hc, 422, "%s", r->error);
        free(r);
        return;
    }
    admin__log_action(hc, "reload", "configuration", r->changed[0] ? r->changed
                                                                   : "nothing changed");
    admin__json(hc, 200, json_pack("{s:o?, s:o?}", "changed", split_list(r->changed),
                                   "restart_needed", split_list(r->restart)));
    free(r);
}

typedef struct config_list {
    json_t *arr;
    int oom;
} config_list;

static void emit(void *ctx, const char *section, const char *key, const char *value)
{
    config_list *l = ctx;
    if (l->oom)
        return;
    json_t *j = json_pack("{s:o, s:o, s:o}", "section", admin__jstr(section, strlen(section)),
                          "key", admin__jstr(key, strlen(key)), "value",
                          admin__jstr(value ? value : "", value ? strlen(value) : 0));
    if (!j || json_array_append_new(l->arr, j) != 0)
        l->oom = 1;
}

static void show(http_conn *hc)
{
    broker *b = hc->b;
    config_list l = { json_array(), 0 };
    if (l.arr)
        b->o.admin_config(b->o.admin_ctx, emit, &l);
    if (l.oom) {
        json_decref(l.arr);
        l.arr = NULL;
    }
    admin__json(hc, 200, l.arr);
}

int admin__config_api(http_conn *hc, const char *path)
{
    int is_reload = strcmp(path, "/api/reload") == 0;
    if (!is_reload && strcmp(path, "/api/config") != 0)
        return 0;
    int want = is_reload ? HTTP_POST : HTTP_GET;
    if (admin__method(hc) != want) {
        admin__not_allowed(hc, is_reload ? "Allow: POST\r\n" : "Allow: GET\r\n");
        return 1;
    }
    broker *b = hc->b;
    if (is_reload ? !b->o.admin_reload : !b->o.admin_config) {
        admin__error(hc, 501, "%s is not available: the embedder gave no %s hook", path,
                     is_reload ? "admin_reload" : "admin_config");
        return 1;
    }
    if (is_reload)
        reload(hc);
    else
        show(hc);
    return 1;
}
