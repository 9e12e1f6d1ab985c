/* console.h: the web console's files, embedded in the library at build time
 * (contrib/embed_files.sh writes the table from broker/admin/console/).
 */
#ifndef BROKER_ADMIN_CONSOLE_H
#define BROKER_ADMIN_CONSOLE_H

#include <stddef.h>

typedef struct admin_file {
    const char *name; /* the file's name: served at /NAME */
    const char *type; /* its Content-Type */
    const unsigned char *data;
    size_t len;
} admin_file;

/* Ends with an entry whose name is NULL. */
extern const admin_file admin__console_files[];

#endif
