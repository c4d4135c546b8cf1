#include "checksum.h"
#include <zlib.h>

uint32_t fr_crc32(uint32_t crc, const void *data, size_t size) {
    const unsigned char *p = (const unsigned char *)data;
    uLong c = crc;
    while (size > 0) {
        uInt n = size > (1u << 30) ? (1u << 30) : (uInt)size;
        c = crc32(c, p, n);
        p += n;
        size -= n;
    }
    return (uint32_t)c;
}
