// See cevaluation.h. The AVX-512 paths use FMA (one rounding per tap instead of two): results
// differ from the portable path by float rounding only.
#include "cevaluation.h"
#include <immintrin.h>

static int has_avx512(void) {
    static int cached = -1;
    if (cached < 0) { __builtin_cpu_init(); cached = __builtin_cpu_supports("avx512f") ? 1 : 0; }
    return cached;
}

__attribute__((target("avx512f,fma")))
static void correlate_avx512(const float *in, int64_t pw, const float *k, int kh, int kw, float *out, int64_t w, int64_t y0, int64_t y1) {
    // Four output vectors at a time: independent accumulators hide the FMA latency. Each output
    // still sums its taps in row-major order.
    for (int64_t y = y0; y < y1; y++) {
        int64_t x = 0;
        for (; x + 64 <= w; x += 64) {
            __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
            for (int i = 0; i < kh; i++) {
                const float *line = in + (y + i) * pw + x;
                const float *kr = k + (int64_t)i * kw;
                for (int j = 0; j < kw; j++) {
                    const __m512 kv = _mm512_set1_ps(kr[j]);
                    a0 = _mm512_fmadd_ps(kv, _mm512_loadu_ps(line + j), a0);
                    a1 = _mm512_fmadd_ps(kv, _mm512_loadu_ps(line + j + 16), a1);
                    a2 = _mm512_fmadd_ps(kv, _mm512_loadu_ps(line + j + 32), a2);
                    a3 = _mm512_fmadd_ps(kv, _mm512_loadu_ps(line + j + 48), a3);
                }
            }
            _mm512_storeu_ps(out + y * w + x, a0);
            _mm512_storeu_ps(out + y * w + x + 16, a1);
            _mm512_storeu_ps(out + y * w + x + 32, a2);
            _mm512_storeu_ps(out + y * w + x + 48, a3);
        }
        for (; x < w; x += 16) {
            const int64_t left = w - x;
            const __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
            __m512 acc = _mm512_setzero_ps();
            for (int i = 0; i < kh; i++) {
                const float *line = in + (y + i) * pw + x;
                const float *kr = k + (int64_t)i * kw;
                for (int j = 0; j < kw; j++) acc = _mm512_fmadd_ps(_mm512_set1_ps(kr[j]), _mm512_loadu_ps(line + j), acc);
            }
            _mm512_mask_storeu_ps(out + y * w + x, m, acc);
        }
    }
}

__attribute__((target("avx512f,fma")))
static void correlate_spans_avx512(const float *in, int64_t pw, const float *k, int kh, int kw, const int32_t *first, const int32_t *end,
                                   float *out, int64_t w) {
    // One output row; kernel row i contributes only its taps first[i]..<end[i].
    int64_t x = 0;
    for (; x + 64 <= w; x += 64) {
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        for (int i = 0; i < kh; i++) {
            const float *line = in + i * pw + x;
            const float *kr = k + (int64_t)i * kw;
            for (int j = first[i]; j < end[i]; j++) {
                const __m512 kv = _mm512_set1_ps(kr[j]);
                a0 = _mm512_fmadd_ps(kv, _mm512_loadu_ps(line + j), a0);
                a1 = _mm512_fmadd_ps(kv, _mm512_loadu_ps(line + j + 16), a1);
                a2 = _mm512_fmadd_ps(kv, _mm512_loadu_ps(line + j + 32), a2);
                a3 = _mm512_fmadd_ps(kv, _mm512_loadu_ps(line + j + 48), a3);
            }
        }
        _mm512_storeu_ps(out + x, a0);
        _mm512_storeu_ps(out + x + 16, a1);
        _mm512_storeu_ps(out + x + 32, a2);
        _mm512_storeu_ps(out + x + 48, a3);
    }
    for (; x < w; x += 16) {
        const int64_t left = w - x;
        const __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        __m512 acc = _mm512_setzero_ps();
        for (int i = 0; i < kh; i++) {
            const float *line = in + i * pw + x;
            const float *kr = k + (int64_t)i * kw;
            for (int j = first[i]; j < end[i]; j++) acc = _mm512_fmadd_ps(_mm512_set1_ps(kr[j]), _mm512_loadu_ps(line + j), acc);
        }
        _mm512_mask_storeu_ps(out + x, m, acc);
    }
}

static void correlate_spans_portable(const float *in, int64_t pw, const float *k, int kh, int kw, const int32_t *first, const int32_t *end,
                                     float *out, int64_t w) {
    for (int64_t x = 0; x < w; x++) out[x] = 0;
    for (int i = 0; i < kh; i++) {
        const float *line = in + i * pw;
        for (int j = first[i]; j < end[i]; j++) {
            const float kv = k[(int64_t)i * kw + j];
            for (int64_t x = 0; x < w; x++) out[x] += kv * line[x + j];
        }
    }
}

void fr_correlate_spans(const float *in, int64_t pw, const float *k, int kh, int kw, const int32_t *first, const int32_t *end,
                        float *out, int64_t w) {
    if (has_avx512()) correlate_spans_avx512(in, pw, k, kh, kw, first, end, out, w);
    else correlate_spans_portable(in, pw, k, kh, kw, first, end, out, w);
}

static void correlate_portable(const float *in, int64_t pw, const float *k, int kh, int kw, float *out, int64_t w, int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; y++) {
        float *o = out + y * w;
        for (int64_t x = 0; x < w; x++) o[x] = 0;
        for (int i = 0; i < kh; i++) {
            const float *line = in + (y + i) * pw;
            for (int j = 0; j < kw; j++) {
                const float kv = k[(int64_t)i * kw + j];
                for (int64_t x = 0; x < w; x++) o[x] += kv * line[x + j];
            }
        }
    }
}

void fr_correlate(const float *in, int64_t pw, const float *k, int kh, int kw, float *out, int64_t w, int64_t y0, int64_t y1) {
    if (has_avx512()) correlate_avx512(in, pw, k, kh, kw, out, w, y0, y1);
    else correlate_portable(in, pw, k, kh, kw, out, w, y0, y1);
}

#define SSIM_BODY                                                                                  \
    const int64_t ow = w - 10, oh = h - 10;                                                        \
    for (int64_t y = 0; y < h; y++) {                                                              \
        const double *pa = a + y * w, *pb = b + y * w;                                             \
        double *r0 = scratch + 5 * ow * y, *r1 = r0 + ow, *r2 = r1 + ow, *r3 = r2 + ow, *r4 = r3 + ow; \
        for (int64_t x = 0; x < ow; x++) { r0[x] = r1[x] = r2[x] = r3[x] = r4[x] = 0; }            \
        for (int kk = 0; kk < 11; kk++) {                                                          \
            const double gk = g[kk];                                                               \
            for (int64_t x = 0; x < ow; x++) {                                                     \
                const double u = pa[x + kk], v = pb[x + kk];                                       \
                r0[x] += gk * u; r1[x] += gk * v; r2[x] += gk * (u * u); r3[x] += gk * (v * v); r4[x] += gk * (u * v); \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    const double c1 = (0.01 * 255) * (0.01 * 255), c2 = (0.03 * 255) * (0.03 * 255);              \
    double *m0 = scratch + 5 * ow * h, *m1 = m0 + ow, *m2 = m1 + ow, *m3 = m2 + ow, *m4 = m3 + ow;    \
    double sum = 0;                                                                                \
    for (int64_t y = 0; y < oh; y++) {                                                             \
        for (int64_t x = 0; x < ow; x++) { m0[x] = m1[x] = m2[x] = m3[x] = m4[x] = 0; }            \
        for (int kk = 0; kk < 11; kk++) {                                                          \
            const double *r = scratch + 5 * ow * (y + kk); const double gk = g[kk];                \
            for (int64_t x = 0; x < ow; x++) {                                                     \
                m0[x] += gk * r[x]; m1[x] += gk * r[ow + x]; m2[x] += gk * r[2 * ow + x];          \
                m3[x] += gk * r[3 * ow + x]; m4[x] += gk * r[4 * ow + x];                          \
            }                                                                                      \
        }                                                                                          \
        for (int64_t x = 0; x < ow; x++) {                                                         \
            const double mu1 = m0[x] * m0[x], mu2 = m1[x] * m1[x], mu12 = m0[x] * m1[x];           \
            sum += ((2 * mu12 + c1) * (2 * (m4[x] - mu12) + c2)) / ((mu1 + mu2 + c1) * ((m2[x] - mu1) + (m3[x] - mu2) + c2)); \
        }                                                                                          \
    }                                                                                              \
    return sum;

__attribute__((target("avx512f,fma")))
static double ssim_avx512(const double *a, const double *b, int64_t w, int64_t h, const double *g, double *scratch) { SSIM_BODY }

static double ssim_portable(const double *a, const double *b, int64_t w, int64_t h, const double *g, double *scratch) { SSIM_BODY }

double fr_ssim_sum(const double *a, const double *b, int64_t w, int64_t h, const double *g, double *scratch) {
    return has_avx512() ? ssim_avx512(a, b, w, h, g, scratch) : ssim_portable(a, b, w, h, g, scratch);
}
