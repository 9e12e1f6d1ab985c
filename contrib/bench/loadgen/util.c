/* util.c: small helpers for every loadgen file: the monotonic clock, die() for errors
 * before the run (status 2), fail() for the run's first failure, checked allocation, hex and
 * decimal digits for bodies and receipt ids, printable peer bytes, the broker's VmRSS. */
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loadgen.h"

int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* An error before the run, or one it cannot go on from: a message and exit status 2. */
void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

/* calloc that never returns NULL, even for 0 bytes; out of memory ends the program. */
void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p)
        die("out of memory");
    return p;
}

/* Printable copy of peer bytes (for error reports): escapes control bytes, at most max. */
void dump_bytes(char *out, size_t cap, const char *s, size_t len, size_t max)
{
    size_t o = 0;
    for (size_t i = 0; i < len && i < max && o + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (ch == '\\') {
            out[o++] = '\\';
            out[o++] = '\\';
        } else if (ch < 32 || ch > 126) {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    if (len > max && o + 4 < cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o < cap ? o : cap - 1] = '\0';
}

/* Records the first failure's message (later ones are dropped) and ends the run. Any
 * thread may call it. */
void fail(const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&R.err_lock);
    if (!atomic_load(&R.failed)) {
        va_start(ap, fmt);
        vsnprintf(R.errmsg, sizeof R.errmsg, fmt, ap);
        va_end(ap);
    }
    atomic_store(&R.failed, 1);
    pthread_mutex_unlock(&R.err_lock);
    atomic_store(&R.phase, PH_END);
}

/* digits lowercase hex digits of v, most significant first; returns the end. */
char *put_hex(char *p, uint64_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--) {
        p[i] = hex[v & 15];
        v >>= 4;
    }
    return p + digits;
}

/* Reads digits lowercase hex digits; false on any other byte. */
bool get_hex(const char *p, int digits, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < digits; i++) {
        char ch = p[i];
        unsigned d;
        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else
            return false;
        x = x << 4 | d;
    }
    *v = x;
    return true;
}

/* v in decimal, no terminator; returns the end. */
char *put_dec(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* VmRSS of process pid in KiB, -1 if it cannot be read. */
long read_rss_kb(long pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}
