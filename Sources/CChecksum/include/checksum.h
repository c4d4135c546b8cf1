#ifndef FR_CHECKSUM_H
#define FR_CHECKSUM_H
#include <stddef.h>
#include <stdint.h>

/* CRC-32 (the zip/PNG polynomial) of `size` bytes, continuing from `crc` (0 to start): zlib's
   crc32, fed in chunks so sizes beyond 4 GB work. */
uint32_t fr_crc32(uint32_t crc, const void *data, size_t size);

#endif
