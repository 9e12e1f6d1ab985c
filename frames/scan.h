/* scan.h: the parser's one pass over a command or header line, internal to frames/.
 *
 * One scan finds what the parser needs of a line: where it ends (its LF, or a NUL, which is
 * an error), its first colon, and whether it holds a backslash or a non-ASCII byte (only
 * such lines are unescaped or checked as UTF-8). With SSE2 (every x86-64) 16 bytes a step,
 * else a byte at a time; both give the same answers.
 */
#ifndef FRAMES_SCAN_H
#define FRAMES_SCAN_H

#include <stddef.h>
#include <stdint.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Index in d[0..w) of the first LF or NUL, or w. Notes in *colon the line's first colon
 * (its offset in the line, which held bytes before d) unless one was noted before, and
 * sets *odd when the line holds a backslash or a non-ASCII byte. With SSE2, 16 bytes a
 * step; the last step reads the 16 bytes that end at w: nothing past the window is read. */
static inline size_t frames__scan_line(const char *d, size_t w, size_t held, size_t *colon,
                                       int *odd)
{
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i lf = _mm_set1_epi8('\n'), cl = _mm_set1_epi8(':'), bs = _mm_set1_epi8('\\'),
                  zero = _mm_setzero_si128();
    while (w >= 16 && i < w) {
        size_t at = w - i >= 16 ? i : w - 16, skip = i - at;
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(d + at));
        __m128i ends = _mm_or_si128(_mm_cmpeq_epi8(x, lf), _mm_cmpeq_epi8(x, zero));
        unsigned stop = (unsigned)_mm_movemask_epi8(ends) >> skip;
        unsigned col = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, cl)) >> skip;
        unsigned rare = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x, bs), x)) >>
                        skip;
        unsigned before = (stop & (0u - stop)) - 1u; /* the bits below the first stop */
        if ((col & before) && *colon == SIZE_MAX)
            *colon = held + i + (size_t)__builtin_ctz(col);
        if (rare & before)
            *odd = 1;
        if (stop)
            return i + (size_t)__builtin_ctz(stop);
        i = at + 16;
    }
#endif
    for (; i < w; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '\n' || c == '\0')
            break;
        if (c == ':' && *colon == SIZE_MAX)
            *colon = held + i;
        else if (c == '\\' || c >= 0x80)
            *odd = 1;
    }
    return i;
}

#endif
