/* sqlite_vfs.c: the writer's VFS: SQLite's default one, except that writes to the WAL file
 * are gathered and reach the file in one write when SQLite syncs it (or reads, sizes,
 * truncates or closes it, or writes elsewhere in it). SQLite writes a WAL frame as two
 * writes (its header, then the page), so a commit of N pages costs 2N system calls without
 * this, one with it; with small pages that is most of the commit's time.
 *
 * Why nothing changes for durability or for readers: with synchronous FULL, SQLite syncs the
 * WAL at every commit, before it updates the WAL index that tells any reader (our reader
 * connection included, which opens the file with the default VFS) which frames are
 * committed; the sync writes the gathered bytes first. Anything of this handle's own that
 * reads the file (a checkpoint, a page spilled mid-transaction) flushes first too. A write
 * that fails when flushed fails the sync, and so the commit, which is what a failed write
 * would have done. The store uses it only with FULL: with NORMAL a commit does not sync,
 * and a reader could find the index naming frames still gathered here.
 *
 * Each store registers its own copy under a name of its own and unregisters it at close:
 * nothing here is shared between stores.
 */
#include "sqlite_int.h"

#include <stdio.h>
#include <string.h>

/* Bytes gathered at most: a bigger commit is written in pieces of this. */
#define WBUF_MAX (4u << 20)
/* Bytes per write of the default VFS: its unix write takes less than 128 KiB a call. */
#define WRITE_MAX (64u << 10)

typedef struct wal_file {
    sqlite3_file base;  /* our methods */
    sqlite3_file *real; /* the default VFS's file, in the bytes after this struct */
    char *buf;
    size_t len, cap;
    sqlite3_int64 off; /* file offset of buf[0] */
} wal_file;

#define REAL_VFS(v) ((sqlite3_vfs *)(v)->pAppData)
#define REAL_OFF ((sizeof(wal_file) + 15) & ~(size_t)15)

static int flush(wal_file *f)
{
    int rc = SQLITE_OK;
    for (size_t at = 0; rc == SQLITE_OK && at < f->len; at += WRITE_MAX) {
        size_t n = f->len - at < WRITE_MAX ? f->len - at : WRITE_MAX;
        rc = f->real->pMethods->xWrite(f->real, f->buf + at, (int)n,
                                       f->off + (sqlite3_int64)at);
    }
    f->len = 0;
    return rc;
}

static int w_close(sqlite3_file *p)
{
    wal_file *f = (wal_file *)p;
    int rc = flush(f);
    int rc2 = f->real->pMethods->xClose(f->real);
    sqlite3_free(f->buf);
    f->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int w_read(sqlite3_file *p, void *out, int amt, sqlite3_int64 off)
{
    wal_file *f = (wal_file *)p;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, out, amt, off);
}

/* Room for amt more bytes in the buffer, growing it up to WBUF_MAX: 0, or -1 (write it
 * through instead). */
static int room(wal_file *f, size_t amt)
{
    if (f->cap - f->len >= amt)
        return 0;
    if (f->len + amt > WBUF_MAX)
        return -1;
    size_t ncap = f->cap ? f->cap : 65536;
    while (ncap < f->len + amt)
        ncap *= 2;
    char *nb = sqlite3_realloc64(f->buf, ncap);
    if (!nb)
        return -1;
    f->buf = nb;
    f->cap = ncap;
    return 0;
}

static int w_write(sqlite3_file *p, const void *data, int amt, sqlite3_int64 off)
{
    wal_file *f = (wal_file *)p;
    int rc;
    /* Only an append to what is gathered joins it. */
    if (f->len && off != f->off + (sqlite3_int64)f->len && (rc = flush(f)) != SQLITE_OK)
        return rc;
    if (room(f, (size_t)amt) != 0) {
        if ((rc = flush(f)) != SQLITE_OK)
            return rc;
        if (room(f, (size_t)amt) != 0)
            return f->real->pMethods->xWrite(f->real, data, amt, off);
    }
    if (!f->len)
        f->off = off;
    memcpy(f->buf + f->len, data, (size_t)amt);
    f->len += (size_t)amt;
    return SQLITE_OK;
}

static int w_truncate(sqlite3_file *p, sqlite3_int64 size)
{
    wal_file *f = (wal_file *)p;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int w_sync(sqlite3_file *p, int flags)
{
    wal_file *f = (wal_file *)p;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int w_file_size(sqlite3_file *p, sqlite3_int64 *size)
{
    wal_file *f = (wal_file *)p;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int w_lock(sqlite3_file *p, int level)
{
    sqlite3_file *r = ((wal_file *)p)->real;
    return r->pMethods->xLock(r, level);
}

static int w_unlock(sqlite3_file *p, int level)
{
    sqlite3_file *r = ((wal_file *)p)->real;
    return r->pMethods->xUnlock(r, level);
}

static int w_check_lock(sqlite3_file *p, int *out)
{
    sqlite3_file *r = ((wal_file *)p)->real;
    return r->pMethods->xCheckReservedLock(r, out);
}

static int w_file_control(sqlite3_file *p, int what, void *arg)
{
    sqlite3_file *r = ((wal_file *)p)->real;
    return r->pMethods->xFileControl(r, what, arg);
}

static int w_sector_size(sqlite3_file *p)
{
    sqlite3_file *r = ((wal_file *)p)->real;
    return r->pMethods->xSectorSize(r);
}

static int w_device(sqlite3_file *p)
{
    sqlite3_file *r = ((wal_file *)p)->real;
    return r->pMethods->xDeviceCharacteristics(r);
}

/* Version 1: a WAL file is neither memory-mapped nor the one with the shared memory. */
static const sqlite3_io_methods wal_methods = {
    .iVersion = 1,
    .xClose = w_close,
    .xRead = w_read,
    .xWrite = w_write,
    .xTruncate = w_truncate,
    .xSync = w_sync,
    .xFileSize = w_file_size,
    .xLock = w_lock,
    .xUnlock = w_unlock,
    .xCheckReservedLock = w_check_lock,
    .xFileControl = w_file_control,
    .xSectorSize = w_sector_size,
    .xDeviceCharacteristics = w_device,
};

/* A WAL file is wrapped; any other file is the default VFS's own. */
static int v_open(sqlite3_vfs *v, const char *name, sqlite3_file *p, int flags, int *out)
{
    sqlite3_vfs *real = REAL_VFS(v);
    if (!(flags & SQLITE_OPEN_WAL))
        return real->xOpen(real, name, p, flags, out);
    wal_file *f = (wal_file *)p;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)((char *)p + REAL_OFF);
    int rc = real->xOpen(real, name, f->real, flags, out);
    f->base.pMethods = rc == SQLITE_OK ? &wal_methods : NULL;
    return rc;
}

static int v_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
    return REAL_VFS(v)->xDelete(REAL_VFS(v), name, sync_dir);
}

static int v_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    return REAL_VFS(v)->xAccess(REAL_VFS(v), name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
    return REAL_VFS(v)->xFullPathname(REAL_VFS(v), name, n, out);
}

static int v_randomness(sqlite3_vfs *v, int n, char *out)
{
    return REAL_VFS(v)->xRandomness(REAL_VFS(v), n, out);
}

static int v_sleep(sqlite3_vfs *v, int us)
{
    return REAL_VFS(v)->xSleep(REAL_VFS(v), us);
}

static int v_current_time(sqlite3_vfs *v, double *out)
{
    return REAL_VFS(v)->xCurrentTime(REAL_VFS(v), out);
}

static int v_last_error(sqlite3_vfs *v, int n, char *out)
{
    return REAL_VFS(v)->xGetLastError(REAL_VFS(v), n, out);
}

static int v_current_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    return REAL_VFS(v)->xCurrentTimeInt64(REAL_VFS(v), out);
}

store_err sqlite__vfs_register(store *s)
{
    sqlite3_vfs *real = sqlite3_vfs_find(NULL);
    if (!real || real->iVersion < 2 || !real->xCurrentTimeInt64) {
        sqlite__set_err(s, "open: the default SQLite VFS is too old");
        return STORE_E_IO;
    }
    snprintf(s->vfs_name, sizeof s->vfs_name, "stompd-wal-%p", (void *)s);
    sqlite3_vfs *v = &s->vfs;
    memset(v, 0, sizeof *v);
    v->iVersion = 2;
    v->szOsFile = (int)(REAL_OFF + (size_t)real->szOsFile);
    v->mxPathname = real->mxPathname;
    v->zName = s->vfs_name;
    v->pAppData = real;
    v->xOpen = v_open;
    v->xDelete = v_delete;
    v->xAccess = v_access;
    v->xFullPathname = v_full_pathname;
    v->xRandomness = v_randomness;
    v->xSleep = v_sleep;
    v->xCurrentTime = v_current_time;
    v->xGetLastError = v_last_error;
    v->xCurrentTimeInt64 = v_current_time64;
    int rc = sqlite3_vfs_register(v, 0);
    if (rc != SQLITE_OK) {
        sqlite__set_err(s, "open: register VFS: %s", sqlite3_errstr(rc));
        return STORE_E_IO;
    }
    s->vfs_registered = 1;
    return STORE_OK;
}

void sqlite__vfs_unregister(store *s)
{
    if (s->vfs_registered)
        (void)sqlite3_vfs_unregister(&s->vfs);
    s->vfs_registered = 0;
}
