// CRC-32 folded 64 bytes at a time with PCLMULQDQ, then reduced by Barrett's
// method (the technique of Gopal et al., "Fast CRC Computation for Generic
// Polynomials Using PCLMULQDQ Instruction", Intel, 2009). Every constant is
// a power of x modulo the CRC-32 polynomial, bit-reflected, 33 bits:
//
//   x^(512+32), x^(512-32)  fold a 128-bit lane across 512 bits (four lanes)
//   x^(128+32), x^(128-32)  fold across 128 bits (one lane)
//   x^64                     fold the last 96 bits to 64
//   P' and floor(x^64 / P)   Barrett reduction of 64 bits to the 32-bit CRC
//
// TraceFormat's CRC32 checks every result against its table-driven path in
// the tests; it calls this only for the whole 16-byte blocks of an input of
// at least 64 bytes and finishes the tail by table.

#include "CChecksum.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

int vt_crc32_fold_available(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return (c & bit_PCLMUL) != 0 && (c & bit_SSE4_1) != 0;
}

#define VT_FOLD_TARGET __attribute__((target("pclmul,sse4.1")))

/// `lane` carried across the distance the constants `k` name, plus `next`.
VT_FOLD_TARGET static inline __m128i fold(__m128i lane, __m128i k, __m128i next) {
    __m128i low = _mm_clmulepi64_si128(lane, k, 0x00);
    __m128i high = _mm_clmulepi64_si128(lane, k, 0x11);
    return _mm_xor_si128(_mm_xor_si128(low, high), next);
}

VT_FOLD_TARGET uint32_t vt_crc32_fold(uint32_t crc, const void *data, size_t n) {
    const __m128i across4 = _mm_set_epi64x(0x1c6e41596, 0x154442bd4);
    const __m128i across1 = _mm_set_epi64x(0x0ccaa009e, 0x1751997d0);
    const __m128i x64 = _mm_set_epi64x(0, 0x163cd6124);
    const __m128i barrett = _mm_set_epi64x(0x1f7011641, 0x1db710641);
    const __m128i low32 = _mm_setr_epi32(-1, 0, -1, 0);
    const unsigned char *p = data;

    __m128i a = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_cvtsi32_si128((int)crc));
    __m128i b = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i c = _mm_loadu_si128((const __m128i *)(p + 32));
    __m128i d = _mm_loadu_si128((const __m128i *)(p + 48));
    p += 64;
    n -= 64;
    for (; n >= 64; p += 64, n -= 64) {
        a = fold(a, across4, _mm_loadu_si128((const __m128i *)p));
        b = fold(b, across4, _mm_loadu_si128((const __m128i *)(p + 16)));
        c = fold(c, across4, _mm_loadu_si128((const __m128i *)(p + 32)));
        d = fold(d, across4, _mm_loadu_si128((const __m128i *)(p + 48)));
    }
    a = fold(a, across1, b);
    a = fold(a, across1, c);
    a = fold(a, across1, d);
    for (; n >= 16; p += 16, n -= 16) a = fold(a, across1, _mm_loadu_si128((const __m128i *)p));

    // 128 bits to 96: the low half times x^(128-32), onto the high half.
    a = _mm_xor_si128(_mm_srli_si128(a, 8), _mm_clmulepi64_si128(a, across1, 0x10));
    // 96 bits to 64: the low 32 bits times x^64, onto the rest.
    a = _mm_xor_si128(_mm_srli_si128(a, 4), _mm_clmulepi64_si128(_mm_and_si128(a, low32), x64, 0x00));
    // Barrett: the quotient's estimate from the low 32 bits, times P, cancels them.
    __m128i q = _mm_clmulepi64_si128(_mm_and_si128(a, low32), barrett, 0x10);
    __m128i r = _mm_clmulepi64_si128(_mm_and_si128(q, low32), barrett, 0x00);
    return (uint32_t)_mm_extract_epi32(_mm_xor_si128(a, r), 1);
}

#else

int vt_crc32_fold_available(void) { return 0; }

uint32_t vt_crc32_fold(uint32_t crc, const void *data, size_t n) {
    (void)data;
    (void)n;
    return crc;
}

#endif
