/* utf8.c: the parser's UTF-8 check of command and header lines (RFC 3629). A pure function
 * of its arguments; the parser calls it only for lines that hold a non-ASCII byte. */
#include "codec.h"

/* Is s[0..n) UTF-8 (RFC 3629)? Eight bytes a step while they are ASCII, the usual case;
 * then each sequence checked with the ranges that exclude overlong forms, surrogates and
 * code points past U+10FFFF. */
int frames__utf8_valid(const char *s, size_t n)
{
    size_t i = 0;
    while (n - i >= 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ull)
            break;
        i += 8;
    }
    while (i < n) {
        unsigned char c = (unsigned char)s[i], lo = 0x80, hi = 0xBF;
        size_t need;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c == 0xE0)
            need = 2, lo = 0xA0;
        else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
            need = 2;
        else if (c == 0xED)
            need = 2, hi = 0x9F;
        else if (c == 0xF0)
            need = 3, lo = 0x90;
        else if (c >= 0xF1 && c <= 0xF3)
            need = 3;
        else if (c == 0xF4)
            need = 3, hi = 0x8F;
        else
            return 0;
        if (n - i - 1 < need)
            return 0;
        for (size_t k = 1; k <= need; k++) {
            unsigned char d = (unsigned char)s[i + k];
            if (d < lo || d > hi)
                return 0;
            lo = 0x80;
            hi = 0xBF;
        }
        i += need + 1;
    }
    return 1;
}
