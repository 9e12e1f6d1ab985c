/* console.c: the web console's static files, served from the table built into the library
 * (console.h); "/" is index.html. Only exact names are served: no file system access.
 */
#include "admin/console.h"
#include "admin/http.h"

#include <string.h>

int admin__console(http_conn *hc, const char *path)
{
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (const admin_file *f = admin__console_files; f->name; f++)
        if (path[0] == '/' && strcmp(path + 1, f->name) == 0) {
            admin__respond(hc, 200, f->type, (const char *)f->data, f->len, NULL);
            return 1;
        }
    return 0;
}
