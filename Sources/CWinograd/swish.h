// The swish (x·sigmoid(x)) on 16 floats as torch 1.13's CPU SiLU computes it: y / (1 + exp(−y)),
// exp by Cody–Waite reduction to |r| ≤ ln2/2 and Cephes' expf polynomial (relative error about
// 1e-7), the power of two applied by vscalefps. Shared by group norm's affine pass (normalize.c)
// and the Winograd kernel's normalized reads (winograd.c), so both give the same bits.
#ifndef FACERESTORE_SWISH_H
#define FACERESTORE_SWISH_H
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

#endif
