// Group norm's statistics and its per-channel scale/shift with the swish that follows it in the
// VQGAN blocks, in one pass each over memory (AVX-512 by target attributes). The swish is computed
// on the normalized value while it is still in a register, as torch 1.13's CPU SiLU does it:
// y / (1 + exp(−y)), exp by Cody–Waite reduction to |r| ≤ ln2/2 and Cephes' expf polynomial
// (relative error about 1e-7), the power of two applied by vscalefps.
#include "cnormalize.h"
#include <immintrin.h>

__attribute__((target("avx512f"), always_inline))
static inline __m512 swish16(__m512 y) {
    // t = −y clamped to [−87, 100]: exp(−87) is still a normal float (no denormal assists) and
    // 1 + it rounds to 1, as 1 + exp(t) does for every smaller t; exp(100) overflows to inf like
    // exp of anything larger. A NaN y gives t = −87, and y / (…) is NaN.
    __m512 t = _mm512_sub_ps(_mm512_setzero_ps(), y);
    t = _mm512_min_ps(_mm512_max_ps(t, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(100.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), t);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    const __m512 e = _mm512_scalef_ps(p, n);
    return _mm512_div_ps(y, _mm512_add_ps(e, _mm512_set1_ps(1.0f)));
}

__attribute__((target("avx512f"), always_inline))
static inline void scale_shift(const float *src, float *dst, size_t rows, size_t period, const float *mul,
                               const float *add, int swish) {
    if (period == 1) {
        const __m512 m = _mm512_set1_ps(*mul), a = _mm512_set1_ps(*add);
        size_t i = 0;
        for (; i + 16 <= rows; i += 16) {
            __m512 y = _mm512_fmadd_ps(_mm512_loadu_ps(src + i), m, a);
            _mm512_storeu_ps(dst + i, swish ? swish16(y) : y);
        }
        if (i < rows) {
            const __mmask16 k = (__mmask16)((1u << (rows - i)) - 1);
            __m512 y = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, src + i), m, a);
            _mm512_mask_storeu_ps(dst + i, k, swish ? swish16(y) : y);
        }
    } else if (period == 16) {
        const __m512 m = _mm512_loadu_ps(mul), a = _mm512_loadu_ps(add);
        for (size_t i = 0; i < rows * 16; i += 16) {
            __m512 y = _mm512_fmadd_ps(_mm512_loadu_ps(src + i), m, a);
            _mm512_storeu_ps(dst + i, swish ? swish16(y) : y);
        }
    } else {
        for (size_t row = 0; row < rows; row++) {
            const float *s = src + row * period;
            float *d = dst + row * period;
            for (size_t j = 0; j < period; j += 16) {
                const __mmask16 k = period - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (period - j)) - 1);
                __m512 y = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, s + j), _mm512_maskz_loadu_ps(k, mul + j),
                                           _mm512_maskz_loadu_ps(k, add + j));
                _mm512_mask_storeu_ps(d + j, k, swish ? swish16(y) : y);
            }
        }
    }
}

__attribute__((target("avx512f")))
void frn_scale_shift(const float *src, float *dst, size_t rows, size_t period, const float *mul, const float *add,
                     int swish) {
    if (swish) scale_shift(src, dst, rows, period, mul, add, 1);
    else scale_shift(src, dst, rows, period, mul, add, 0);
}

// Sums of 16 floats' lanes into two 8-double accumulators each.
__attribute__((target("avx512f"), always_inline))
static inline void accumulate(__m512 v, __m512d *slo, __m512d *shi, __m512d *qlo, __m512d *qhi) {
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    *slo = _mm512_add_pd(*slo, lo);
    *shi = _mm512_add_pd(*shi, hi);
    *qlo = _mm512_fmadd_pd(lo, lo, *qlo);
    *qhi = _mm512_fmadd_pd(hi, hi, *qhi);
}

__attribute__((target("avx512f")))
void frn_moments(const float *src, size_t rows, size_t period, double *sum, double *sq) {
    if (period == 1 || period == 16) {
        // Two independent sets of accumulators (alternate vectors) to hide the add latency.
        __m512d s[4], q[4];
        for (int i = 0; i < 4; i++) s[i] = q[i] = _mm512_setzero_pd();
        const size_t count = rows * period;
        size_t i = 0;
        for (; i + 32 <= count; i += 32) {
            accumulate(_mm512_loadu_ps(src + i), &s[0], &s[1], &q[0], &q[1]);
            accumulate(_mm512_loadu_ps(src + i + 16), &s[2], &s[3], &q[2], &q[3]);
        }
        if (i < count) {   // period 16: one whole vector; period 1: up to 31 floats
            for (; i + 16 <= count; i += 16) accumulate(_mm512_loadu_ps(src + i), &s[0], &s[1], &q[0], &q[1]);
            if (i < count) {
                const __mmask16 k = (__mmask16)((1u << (count - i)) - 1);
                accumulate(_mm512_maskz_loadu_ps(k, src + i), &s[2], &s[3], &q[2], &q[3]);
            }
        }
        const __m512d slo = _mm512_add_pd(s[0], s[2]), shi = _mm512_add_pd(s[1], s[3]);
        const __m512d qlo = _mm512_add_pd(q[0], q[2]), qhi = _mm512_add_pd(q[1], q[3]);
        if (period == 16) {
            _mm512_storeu_pd(sum, _mm512_add_pd(_mm512_loadu_pd(sum), slo));
            _mm512_storeu_pd(sum + 8, _mm512_add_pd(_mm512_loadu_pd(sum + 8), shi));
            _mm512_storeu_pd(sq, _mm512_add_pd(_mm512_loadu_pd(sq), qlo));
            _mm512_storeu_pd(sq + 8, _mm512_add_pd(_mm512_loadu_pd(sq + 8), qhi));
        } else {
            *sum += _mm512_reduce_add_pd(_mm512_add_pd(slo, shi));
            *sq += _mm512_reduce_add_pd(_mm512_add_pd(qlo, qhi));
        }
        return;
    }
    // Any other period (channels-last): 16 channels at a time over a block of rows that stays in
    // L1, the accumulators kept in `sum` and `sq` between blocks.
    size_t block = 16384 / (period * sizeof(float));
    if (block == 0) block = 1;
    for (size_t r0 = 0; r0 < rows; r0 += block) {
        const size_t r1 = rows - r0 < block ? rows : r0 + block;
        for (size_t j = 0; j < period; j += 16) {
            const __mmask16 k = period - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (period - j)) - 1);
            const __mmask8 klo = (__mmask8)k, khi = (__mmask8)(k >> 8);
            __m512d slo = _mm512_maskz_loadu_pd(klo, sum + j), shi = _mm512_maskz_loadu_pd(khi, sum + j + 8);
            __m512d qlo = _mm512_maskz_loadu_pd(klo, sq + j), qhi = _mm512_maskz_loadu_pd(khi, sq + j + 8);
            for (size_t row = r0; row < r1; row++)
                accumulate(_mm512_maskz_loadu_ps(k, src + row * period + j), &slo, &shi, &qlo, &qhi);
            _mm512_mask_storeu_pd(sum + j, klo, slo);
            _mm512_mask_storeu_pd(sum + j + 8, khi, shi);
            _mm512_mask_storeu_pd(sq + j, klo, qlo);
            _mm512_mask_storeu_pd(sq + j + 8, khi, qhi);
        }
    }
}
