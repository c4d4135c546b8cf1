// Group norm's two passes over channel-blocked memory, for AVX-512 (see normalize.c). Callers
// check frw_available() first.
#pragma once
#include <stddef.h>

/// Adds each lane's sum and sum of squares, in double, over `rows` rows of `period` floats at
/// `src` (lane c = index mod period): sum[c] += Σ x, sq[c] += Σ x².
void frn_moments(const float *src, size_t rows, size_t period, double *sum, double *sq);

/// dst = src·mul[c] + add[c] (one fused multiply-add) over `rows` rows of `period` floats (lane c
/// = index mod period), then, when `swish` is set, y / (1 + exp(−y)) (torch's SiLU) on the value
/// still in its register. `dst` may equal `src`.
void frn_scale_shift(const float *src, float *dst, size_t rows, size_t period, const float *mul, const float *add,
                     int swish);
