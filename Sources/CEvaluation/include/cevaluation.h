// Inner loops of the evaluation code that need wide vectors: compiled for AVX-512 by target
// attributes (no global flags), with portable versions the compiler vectorizes for the baseline.
#ifndef FR_CEVALUATION_H
#define FR_CEVALUATION_H
#include <stdint.h>

/// Correlation of a padded float32 plane with a `kh`×`kw` kernel: for rows y0..<y1 and
/// x in 0..<w, out[y·w + x] = Σ_{i,j} k[i·kw + j] · in[(y + i)·pw + x + j]. Reading up to 16
/// values past x = w − 1 + kw − 1 must stay inside the plane (callers pad it).
void fr_correlate(const float *in, int64_t pw, const float *k, int kh, int kw, float *out, int64_t w, int64_t y0, int64_t y1);

/// One output row of `fr_correlate` (out[x] for x in 0..<w, from the plane rows at `in`) where
/// kernel row i has taps only at columns first[i]..<end[i] (a thin, rotated kernel): the others
/// are skipped. The same reads past the row end as `fr_correlate`.
void fr_correlate_spans(const float *in, int64_t pw, const float *k, int kh, int kw, const int32_t *first, const int32_t *end,
                        float *out, int64_t w);

/// The sum over the valid region of basicsr's SSIM map for two float64 planes of `w`×`h`, with
/// the 11-tap separable Gaussian `g` (the window is g·gᵀ); `scratch` holds 5·(w−10)·(h+1) doubles.
double fr_ssim_sum(const double *a, const double *b, int64_t w, int64_t h, const double *g, double *scratch);
#endif
