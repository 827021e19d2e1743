// CRC-32 by carry-less multiplication, for TraceFormat's CRC32.
#ifndef VTRACE_CCHECKSUM_H
#define VTRACE_CCHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/// Nonzero when this CPU has PCLMULQDQ and SSE4.1, which
/// `vt_crc32_fold` needs; zero elsewhere (and on every other architecture).
int vt_crc32_fold_available(void);

/// Advances the reflected CRC-32 register `crc` (the inverted running value,
/// polynomial 0x04C11DB7 as zlib's crc32) over `n` bytes at `data`. `n` must
/// be at least 64 and a multiple of 16; only call when
/// `vt_crc32_fold_available()` said yes.
uint32_t vt_crc32_fold(uint32_t crc, const void *data, size_t n);

#endif
