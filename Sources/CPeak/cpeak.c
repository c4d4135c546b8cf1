// AVX-512 FMA throughput loop: 24 independent accumulators hide the FMA latency on every core
// with one or two 512-bit FMA units. Compiled for AVX-512 by a target attribute (no global
// compiler flags); callers check cpeak_has_avx512() first.
#include "cpeak.h"
#include <immintrin.h>

__attribute__((target("avx512f,fma")))
float cpeak_fma_avx512(int64_t iterations) {
    __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    __m512 acc[24];
    for (int i = 0; i < 24; i++) acc[i] = _mm512_set1_ps((float)i);
    for (int64_t n = 0; n < iterations; n++) {
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    }
    __m512 s = acc[0];
    for (int i = 1; i < 24; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

int cpeak_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}
