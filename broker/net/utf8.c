/* utf8.c: UTF-8 validation (RFC 3629) for WebSocket text messages, incremental: a sequence
 * may span the chunks it is fed in (net_utf8 keeps what the next bytes must be).
 */
#include "core.h"

int net__utf8_feed(net_utf8 *s, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t b = p[i];
        if (s->need) {
            if (b < s->lo || b > s->hi)
                return 0;
            s->lo = 0x80;
            s->hi = 0xBF;
            s->need--;
            continue;
        }
        if (b < 0x80)
            continue;
        s->lo = 0x80;
        s->hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF)
            s->need = 1;
        else if (b == 0xE0)
            s->need = 2, s->lo = 0xA0;
        else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF)
            s->need = 2;
        else if (b == 0xED)
            s->need = 2, s->hi = 0x9F;
        else if (b == 0xF0)
            s->need = 3, s->lo = 0x90;
        else if (b >= 0xF1 && b <= 0xF3)
            s->need = 3;
        else if (b == 0xF4)
            s->need = 3, s->hi = 0x8F;
        else
            return 0;
    }
    return 1;
}

int net__utf8_valid(const uint8_t *p, size_t n)
{
    net_utf8 s = { 0, 0x80, 0xBF };
    return net__utf8_feed(&s, p, n) && s.need == 0;
}
