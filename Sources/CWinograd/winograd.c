// Fused F(4×4,3×3) Winograd convolution for batch-1 nChw16c activations (AVX-512).
//
// Y = Aᵀ[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]A with the interpolation points 0, ±1, ±2, ∞ (Lavin & Gray, "Fast
// Algorithms for Convolutional Neural Networks", 2016).
//
// Stride 2 is split into phases (polyphase): along each axis, output k reads d[2k], d[2k+2]
// (taps 0 and 2) and d[2k+1] (tap 1). The even samples go through F(4,2) on the points 0, ±1, 2,
// ∞ (5 transformed values), the odd ones are multiplied as they are (4 values, all by tap 1), so
// a 4×4 output tile reads a 9×9 input patch and takes 9×9 = 81 products per channel pair where a
// direct convolution takes 144; its weights have 6×6 distinct values per pair (5 F(4,2) values
// and tap 1 on each axis), stored like the stride-1 kernel's 36. Written for ESRGAN's dense blocks, where
// oneDNN's Winograd kernel runs its 32-output convolutions well below its 64-output speed; since
// used for the face models' large 3×3 layers too, because its work buffers stay small. A block of
// 14 tiles goes through the input transform, the 36 small GEMMs and the output transform (bias,
// LeakyReLU and an optional scaled residual fused) while it is in cache, so the transformed tiles
// never go to memory. Compiled for AVX-512 by target attributes; callers check frw_available() first.
#include "cwinograd.h"
#include <immintrin.h>
#include <string.h>

#define TILES 14   // tiles per register block: 14 × 2 accumulators of 16 outputs
#define MAX_BLOCKS 8

// Register blocks per pass: each 32-output slice of a position's weights is reused across them
// from L1, and the whole transformed weights are read once per pass, so wide layers take longer
// passes; the stride-2 kernel's 81 positions per tile already fill L2 with one block (ParseNet's
// downsampling convs: 294 against 326 ms with one block against two to four).
static int blocks_per_pass(int cin, int cout, int kind) {
    if (kind == FRW_STRIDE2) return 1;
    return cin * cout >= 256 * 512 ? 6 : cin * cout >= 256 * 256 ? 4 : 2;
}

int frw_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

// Transformed weight values per channel pair: 6×6, or for FRW_NEAREST2X 4 phases of 5×5.
static int weight_positions(int kind) { return kind == FRW_NEAREST2X ? 100 : 36; }

size_t frw_weight_floats(int cin, int cout, int kind) { return (size_t)weight_positions(kind) * cin * cout; }

// Transformed positions per tile and pass: 6×6, 9×9 for stride 2, one phase's 5×5 for FRW_NEAREST2X.
static int positions(int kind) { return kind == FRW_STRIDE2 ? 81 : kind == FRW_NEAREST2X ? 25 : 36; }

size_t frw_scratch_floats(int cin, int cout, int kind) {
    return (size_t)positions(kind) * TILES * blocks_per_pass(cin, cout, kind) * (cin + cout);
}

// u[first + a·n + b] = (gy·k·gxᵀ)[a][b] for each 3×3 kernel k of the 32-output blocks
// [block_begin, block_end), gy and gx being n×3, in double precision. The 32 kernels of a block
// are first gathered into kk[tap][output], so that every step after runs across the 32 outputs in
// vectors; contraction into FMAs is off, so the values are those of the scalar code.
__attribute__((target("avx512f,avx512dq")))
static void transform_blocks(const float *oihw, int cout, int cin, float *u, int block_begin, int block_end, int n,
                             const double (*gy)[3], const double (*gx)[3], int first) {
#pragma clang fp contract(off)
    const int blocks = cout / 32;
    // One input channel of one 32-output slice at a time: its n² rows of 32 values are contiguous
    // in `u`, so each line of `u` is written once rather than revisited for every output channel
    // (3× faster at load for a 512×512 layer).
    for (int ob = block_begin; ob < block_end; ob++) {
        for (int i = 0; i < cin; i++) {
            double kk[9][32];
            for (int l = 0; l < 32; l++) {
                const float *k = oihw + ((size_t)(ob * 32 + l) * cin + i) * 9;
                for (int q = 0; q < 9; q++) kk[q][l] = k[q];
            }
            double t[6][3][32];   // gy·k of the 32 outputs' kernels
            for (int a = 0; a < n; a++)
                for (int c = 0; c < 3; c++)
                    for (int l = 0; l < 32; l++) t[a][c][l] = gy[a][0] * kk[c][l] + gy[a][1] * kk[3 + c][l] + gy[a][2] * kk[6 + c][l];
            // Each row of 32 floats (128 bytes, aligned) is written with streaming stores: `u` is
            // written once, well beyond the caches, so its lines are not read first.
            for (int a = 0; a < n; a++)
                for (int b = 0; b < n; b++) {
                    float *row = u + (((size_t)(first + a * n + b) * blocks + ob) * cin + i) * 32;
                    const __m512d g0 = _mm512_set1_pd(gx[b][0]), g1 = _mm512_set1_pd(gx[b][1]), g2 = _mm512_set1_pd(gx[b][2]);
                    __m256 half[4];
                    for (int q = 0; q < 4; q++) {
                        __m512d v = _mm512_add_pd(_mm512_add_pd(_mm512_mul_pd(_mm512_loadu_pd(&t[a][0][8 * q]), g0),
                                                                _mm512_mul_pd(_mm512_loadu_pd(&t[a][1][8 * q]), g1)),
                                                  _mm512_mul_pd(_mm512_loadu_pd(&t[a][2][8 * q]), g2));
                        half[q] = _mm512_cvtpd_ps(v);
                    }
                    _mm512_stream_ps(row, _mm512_insertf32x8(_mm512_castps256_ps512(half[0]), half[1], 1));
                    _mm512_stream_ps(row + 16, _mm512_insertf32x8(_mm512_castps256_ps512(half[2]), half[3], 1));
                }
        }
    }
    _mm_sfence();   // streaming stores are weakly ordered: make them visible before the caller's barrier
}

void frw_transform_weight_blocks(const float *oihw, int cout, int cin, float *u, int block_begin, int block_end, int kind) {
    // G for F(4,3) (rows: the points 0, 1, −1, 2, −2, ∞).
    static const double g1[6][3] = {
        {1.0 / 4, 0, 0},
        {-1.0 / 6, -1.0 / 6, -1.0 / 6},
        {-1.0 / 6, 1.0 / 6, -1.0 / 6},
        {1.0 / 24, 1.0 / 12, 1.0 / 6},
        {1.0 / 24, -1.0 / 12, 1.0 / 6},
        {0, 0, 1},
    };
    // Stride 2: F(4,2)'s G (points 0, 1, −1, 2, ∞) on the even taps 0 and 2, then tap 1 alone.
    static const double g2[6][3] = {
        {1.0 / 2, 0, 0},
        {-1.0 / 2, 0, -1.0 / 2},
        {-1.0 / 6, 0, 1.0 / 6},
        {1.0 / 6, 0, 1.0 / 3},
        {0, 0, 1},
        {0, 1, 0},
    };
    // Nearest ×2 input: output phase 0 (even rows) reads source rows i − 1 and i with the taps
    // (0, 1 + 2), phase 1 (odd rows) rows i and i + 1 with (0 + 1, 2); F(4,2)'s G on those pairs.
    static const double up[2][5][3] = {
        {{1.0 / 2, 0, 0}, {-1.0 / 2, -1.0 / 2, -1.0 / 2}, {-1.0 / 6, 1.0 / 6, 1.0 / 6}, {1.0 / 6, 1.0 / 3, 1.0 / 3}, {0, 1, 1}},
        {{1.0 / 2, 1.0 / 2, 0}, {-1.0 / 2, -1.0 / 2, -1.0 / 2}, {-1.0 / 6, -1.0 / 6, 1.0 / 6}, {1.0 / 6, 1.0 / 6, 1.0 / 3}, {0, 0, 1}},
    };
    if (kind == FRW_NEAREST2X) {
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++) transform_blocks(oihw, cout, cin, u, block_begin, block_end, 5, up[a], up[b], (a * 2 + b) * 25);
    } else {
        const double (*g)[3] = kind == FRW_STRIDE2 ? g2 : g1;
        transform_blocks(oihw, cout, cin, u, block_begin, block_end, 6, g, g, 0);
    }
}

// Bᵀ applied to six vectors (one column or row of a 6×6 tile).
__attribute__((target("avx512f"), always_inline))
static inline void input_1d(const __m512 d[6], __m512 r[6]) {
    const __m512 four = _mm512_set1_ps(4.f), five = _mm512_set1_ps(5.f), two = _mm512_set1_ps(2.f);
    __m512 a = _mm512_fnmadd_ps(four, d[2], d[4]);   // d4 − 4·d2
    __m512 b = _mm512_fnmadd_ps(four, d[1], d[3]);   // d3 − 4·d1
    __m512 c = _mm512_sub_ps(d[4], d[2]);            // d4 − d2
    __m512 e = _mm512_mul_ps(two, _mm512_sub_ps(d[3], d[1]));   // 2·(d3 − d1)
    r[0] = _mm512_fmadd_ps(four, d[0], _mm512_fnmadd_ps(five, d[2], d[4]));
    r[1] = _mm512_add_ps(a, b);
    r[2] = _mm512_sub_ps(a, b);
    r[3] = _mm512_add_ps(c, e);
    r[4] = _mm512_sub_ps(c, e);
    r[5] = _mm512_fmadd_ps(four, d[1], _mm512_fnmadd_ps(five, d[3], d[5]));
}

// Aᵀ applied to six vectors.
__attribute__((target("avx512f"), always_inline))
static inline void output_1d(const __m512 m[6], __m512 r[4]) {
    const __m512 two = _mm512_set1_ps(2.f), four = _mm512_set1_ps(4.f), eight = _mm512_set1_ps(8.f);
    __m512 s12 = _mm512_add_ps(m[1], m[2]), d12 = _mm512_sub_ps(m[1], m[2]);
    __m512 s34 = _mm512_add_ps(m[3], m[4]), d34 = _mm512_sub_ps(m[3], m[4]);
    r[0] = _mm512_add_ps(_mm512_add_ps(m[0], s12), s34);
    r[1] = _mm512_fmadd_ps(two, d34, d12);
    r[2] = _mm512_fmadd_ps(four, s34, s12);
    r[3] = _mm512_add_ps(_mm512_fmadd_ps(eight, d34, d12), m[5]);
}

// Column j of a tile's Bᵀ·d, from the six values loaded for it, into t[·][j].
__attribute__((target("avx512f"), always_inline))
static inline void input_column(const __m512 col[6], __m512 t[6][6], int j) {
    __m512 r[6];
    input_1d(col, r);
    for (int i = 0; i < 6; i++) t[i][j] = r[i];
}

// The rows of Bᵀ·d times B, stored as the tile's 36 transformed values v[p·pstride].
__attribute__((target("avx512f"), always_inline))
static inline void input_rows(__m512 t[6][6], float *v, size_t pstride) {
    for (int i = 0; i < 6; i++) {
        __m512 r[6];
        input_1d(t[i], r);
        for (int j = 0; j < 6; j++) _mm512_store_ps(v + (size_t)(i * 6 + j) * pstride, r[j]);
    }
}

// The source index of coordinate `i` of a layer input that is the source (`size` long) upsampled
// ×`up` (nearest) and padded by one (zero or reflection; see `frw_conv3x3`): i in the upsampled,
// unpadded frame, so −1 and up·size are the padding. −1 where the input holds zero there.
static inline int source_index(int i, int size, int up, int reflect) {
    const int n = size * up;
    if (i < 0) {
        if (!reflect || i < -1) return -1;
        i = -i;                    // ReflectionPad2d: −1 reads 1
    } else if (i >= n) {
        if (!reflect || i > n) return -1;
        i = 2 * (n - 1) - i;       // n reads n − 2
    }
    return i / up;
}

// How `input_tile` reads the source.
typedef struct {
    int h, w;          // source size
    int up;            // upsampling factor (1 or 2)
    int reflect;       // padding by reflection rather than zeros
    int leaky;         // apply a leaky ReLU (`slope`) to each value read
    __m512 slope;
    const float *mul, *add;   // per-channel affine of the 16 channels being read (NULL: none)
} input_map;

// Bilinear ×2 (align_corners=False) as PyTorch's CPU kernel computes it: the source position of
// output i is max(0.5·(i + 0.5) − 0.5, 0), i0 its floor, i1 = i0 + 1 but at most size − 1, and
// the weights 1 − λ and λ with λ = position − i0. Returns 0 where the (zero-padded) input is zero.
static inline int bilinear_index(int i, int size, int *i0, int *i1, float *w0, float *w1) {
    if (i < 0 || i >= 2 * size) return 0;
    float real = 0.5f * ((float)i + 0.5f) - 0.5f;
    if (real < 0) real = 0;
    int k = (int)real;
    float l1 = real - (float)k;
    *i0 = k;
    *i1 = k + (k < size - 1 ? 1 : 0);
    *w0 = 1.f - l1;
    *w1 = l1;
    return 1;
}

// `input_tile` for a layer whose input is the source upsampled ×2 bilinearly and zero-padded:
// each value is wy0·(wx0·s[y0][x0] + wx1·s[y0][x1]) + wy1·(wx0·s[y1][x0] + wx1·s[y1][x1]), with
// separate multiplies and adds in that order, as torch's `upsample_bilinear2d` rounds them.
__attribute__((target("avx512f")))
static void input_tile_bilinear(const float *plane, size_t row, size_t pixel, const input_map *map, int y0, int x0,
                                float *v, size_t pstride) {
    const __m512 zero = _mm512_setzero_ps();
    const float *ra[6], *rb[6];
    __m512 va[6], vb[6];
    for (int i = 0; i < 6; i++) {
        int a, b;
        float wa, wb;
        if (bilinear_index(y0 + i, map->h, &a, &b, &wa, &wb)) {
            ra[i] = plane + (size_t)a * row;
            rb[i] = plane + (size_t)b * row;
            va[i] = _mm512_set1_ps(wa);
            vb[i] = _mm512_set1_ps(wb);
        } else {
            ra[i] = rb[i] = NULL;
        }
    }
    __m512 t[6][6];
    for (int j = 0; j < 6; j++) {   // columns: Bᵀ·d
        int a, b;
        float wa, wb;
        __m512 col[6];
        if (bilinear_index(x0 + j, map->w, &a, &b, &wa, &wb)) {
            const __m512 ha = _mm512_set1_ps(wa), hb = _mm512_set1_ps(wb);
            const size_t xa = (size_t)a * pixel, xb = (size_t)b * pixel;
            for (int i = 0; i < 6; i++) {
                if (!ra[i]) { col[i] = zero; continue; }
                __m512 top = _mm512_add_ps(_mm512_mul_ps(ha, _mm512_load_ps(ra[i] + xa)), _mm512_mul_ps(hb, _mm512_load_ps(ra[i] + xb)));
                __m512 bottom = _mm512_add_ps(_mm512_mul_ps(ha, _mm512_load_ps(rb[i] + xa)), _mm512_mul_ps(hb, _mm512_load_ps(rb[i] + xb)));
                col[i] = _mm512_add_ps(_mm512_mul_ps(va[i], top), _mm512_mul_ps(vb[i], bottom));
            }
        } else {
            for (int i = 0; i < 6; i++) col[i] = zero;
        }
        input_column(col, t, j);
    }
    input_rows(t, v, pstride);
}

// The 36 transformed values of 16 channels of one tile whose top-left input is (y0, x0) (in the
// upsampled, unpadded frame), into v[p·pstride] (p = 0…35). `plane` points at the 16 channels of
// source pixel (0, 0); pixels are `pixel` floats apart and rows `row` floats (nChw16c: 16 and
// w·16; NHWC: cin and w·cin). Each column is loaded straight into registers and transformed
// (Bᵀ·d), then each row of that (·B); only the 6×6 intermediate goes through memory.
__attribute__((target("avx512f")))
static void input_tile(const float *plane, size_t row, size_t pixel, const input_map *map, int y0, int x0, float *v, size_t pstride) {
    const __m512 zero = _mm512_setzero_ps();
    const float *rows[6];
    for (int i = 0; i < 6; i++) {
        int y = source_index(y0 + i, map->h, map->up, map->reflect);
        rows[i] = y >= 0 ? plane + (size_t)y * row : NULL;
    }
    __m512 t[6][6];
    for (int j = 0; j < 6; j++) {   // columns: Bᵀ·d
        int x = source_index(x0 + j, map->w, map->up, map->reflect);
        __m512 col[6];
        if (x >= 0) {
            for (int i = 0; i < 6; i++) col[i] = rows[i] ? _mm512_load_ps(rows[i] + (size_t)x * pixel) : zero;
            if (map->leaky)
                for (int i = 0; i < 6; i++)
                    col[i] = _mm512_mask_mul_ps(col[i], _mm512_cmp_ps_mask(col[i], zero, _CMP_LT_OQ), col[i], map->slope);
            if (map->mul) {   // a deferred group norm: padding (rows outside) stays zero
                const __m512 m = _mm512_loadu_ps(map->mul), a = _mm512_loadu_ps(map->add);
                for (int i = 0; i < 6; i++)
                    if (rows[i]) col[i] = _mm512_fmadd_ps(col[i], m, a);
            }
        } else {
            for (int i = 0; i < 6; i++) col[i] = zero;
        }
        input_column(col, t, j);
    }
    input_rows(t, v, pstride);
}

// F(4,2)'s Bᵀ (points 0, ±1, 2, ∞) on five samples e[0…4], into r[0…4].
__attribute__((target("avx512f"), always_inline))
static inline void input_1d_f42(__m512 e0, __m512 e1, __m512 e2, __m512 e3, __m512 e4, __m512 r[5]) {
    const __m512 two = _mm512_set1_ps(2.f), three = _mm512_set1_ps(3.f);
    r[0] = _mm512_add_ps(_mm512_fmsub_ps(two, _mm512_sub_ps(e0, e2), e1), e3);   // 2e0 − e1 − 2e2 + e3
    r[1] = _mm512_sub_ps(e3, _mm512_fmadd_ps(two, e1, e2));                        // −2e1 − e2 + e3
    r[2] = _mm512_add_ps(_mm512_fnmadd_ps(three, e2, _mm512_mul_ps(two, e1)), e3); // 2e1 − 3e2 + e3
    r[3] = _mm512_sub_ps(e3, e1);                                                  // e3 − e1
    r[4] = _mm512_add_ps(_mm512_fmsub_ps(two, _mm512_sub_ps(e1, e3), e2), e4);   // 2e1 − e2 − 2e3 + e4
}

// F(4,2)'s Aᵀ on m[0…4].
__attribute__((target("avx512f"), always_inline))
static inline void output_1d_f42(const __m512 m[5], __m512 r[4]) {
    const __m512 two = _mm512_set1_ps(2.f), four = _mm512_set1_ps(4.f), eight = _mm512_set1_ps(8.f);
    __m512 s12 = _mm512_add_ps(m[1], m[2]), d12 = _mm512_sub_ps(m[1], m[2]);
    r[0] = _mm512_add_ps(_mm512_add_ps(m[0], s12), m[3]);
    r[1] = _mm512_fmadd_ps(two, m[3], d12);
    r[2] = _mm512_fmadd_ps(four, m[3], s12);
    r[3] = _mm512_add_ps(_mm512_fmadd_ps(eight, m[3], d12), m[4]);
}

// Stride 2 along one axis: the even samples d0, d2, …, d8 through F(4,2)'s Bᵀ into r[0…4], the
// odd ones d1, d3, d5, d7 as they are into r[5…8].
__attribute__((target("avx512f"), always_inline))
static inline void input_1d_s2(const __m512 d[9], __m512 r[9]) {
    input_1d_f42(d[0], d[2], d[4], d[6], d[8], r);
    r[5] = d[1];
    r[6] = d[3];
    r[7] = d[5];
    r[8] = d[7];
}

// F(4,2)'s Aᵀ on m[0…4] plus the odd phase m[5…8].
__attribute__((target("avx512f"), always_inline))
static inline void output_1d_s2(const __m512 m[9], __m512 r[4]) {
    output_1d_f42(m, r);
    for (int k = 0; k < 4; k++) r[k] = _mm512_add_ps(r[k], m[5 + k]);
}

// `input_tile` for stride 2: the 81 transformed values of the 9×9 patch whose top-left input is
// (y0, x0).
__attribute__((target("avx512f")))
static void input_tile_s2(const float *plane, size_t row, size_t pixel, const input_map *map, int y0, int x0, float *v,
                          size_t pstride) {
    const __m512 zero = _mm512_setzero_ps();
    const float *rows[9];
    for (int i = 0; i < 9; i++) {
        int y = source_index(y0 + i, map->h, map->up, map->reflect);
        rows[i] = y >= 0 ? plane + (size_t)y * row : NULL;
    }
    __m512 t[9][9];
    for (int j = 0; j < 9; j++) {
        int x = source_index(x0 + j, map->w, map->up, map->reflect);
        __m512 col[9], r[9];
        if (x >= 0) {
            for (int i = 0; i < 9; i++) col[i] = rows[i] ? _mm512_load_ps(rows[i] + (size_t)x * pixel) : zero;
            if (map->leaky)
                for (int i = 0; i < 9; i++)
                    col[i] = _mm512_mask_mul_ps(col[i], _mm512_cmp_ps_mask(col[i], zero, _CMP_LT_OQ), col[i], map->slope);
        } else {
            for (int i = 0; i < 9; i++) col[i] = zero;
        }
        input_1d_s2(col, r);
        for (int i = 0; i < 9; i++) t[i][j] = r[i];
    }
    for (int i = 0; i < 9; i++) {
        __m512 r[9];
        input_1d_s2(t[i], r);
        for (int j = 0; j < 9; j++) _mm512_store_ps(v + (size_t)(i * 9 + j) * pstride, r[j]);
    }
}

// The source index of row or column `i` of a source that is read upsampled ×2 (nearest) and
// padded by one, for the FRW_NEAREST2X kernel, which works on the source itself: the padding's
// row −1 of the upsampled frame is source row 0 under reflection (it reflects to upsampled row 1)
// and zero otherwise; likewise past the end. −1 where the value is zero.
static inline int nearest2x_index(int i, int size, int reflect) {
    if (i < 0) return reflect ? 0 : -1;
    if (i >= size) return reflect ? size - 1 : -1;
    return i;
}

// `input_tile` for FRW_NEAREST2X, one output phase: the 25 F(4×4,2×2) values of the 5×5 source
// patch whose top-left is (y0, x0) (source frame; −1 is the padding).
__attribute__((target("avx512f")))
static void input_tile_nearest2x(const float *plane, size_t row, size_t pixel, const input_map *map, int y0, int x0, float *v,
                                 size_t pstride) {
    const __m512 zero = _mm512_setzero_ps();
    const float *rows[5];
    for (int i = 0; i < 5; i++) {
        int y = nearest2x_index(y0 + i, map->h, map->reflect);
        rows[i] = y >= 0 ? plane + (size_t)y * row : NULL;
    }
    __m512 t[5][5];
    for (int j = 0; j < 5; j++) {
        int x = nearest2x_index(x0 + j, map->w, map->reflect);
        __m512 col[5], r[5];
        if (x >= 0) {
            for (int i = 0; i < 5; i++) col[i] = rows[i] ? _mm512_load_ps(rows[i] + (size_t)x * pixel) : zero;
            if (map->leaky)
                for (int i = 0; i < 5; i++)
                    col[i] = _mm512_mask_mul_ps(col[i], _mm512_cmp_ps_mask(col[i], zero, _CMP_LT_OQ), col[i], map->slope);
        } else {
            for (int i = 0; i < 5; i++) col[i] = zero;
        }
        input_1d_f42(col[0], col[1], col[2], col[3], col[4], r);
        for (int i = 0; i < 5; i++) t[i][j] = r[i];
    }
    for (int i = 0; i < 5; i++) {
        __m512 r[5];
        input_1d_f42(t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], r);
        for (int j = 0; j < 5; j++) _mm512_store_ps(v + (size_t)(i * 5 + j) * pstride, r[j]);
    }
}

// m[t·cout + ·] (+)= Σc v[t·vstride + c] · u[c·32 + ·] for c < k, 14 tiles and one 32-output
// slice: stored, or added to what m holds (`accumulate`, for the second and later input-channel
// chunks; the sum runs over c in the same order either way). Inlined into callers with constant
// `k` and `vstride` (the tile offsets become immediates).
__attribute__((target("avx512f"), always_inline))
static inline void gemm_14x32_body(const float *v, const float *u, int k, int vstride, int cout, float *m, int accumulate) {
    __m512 a0[TILES], a1[TILES];
    if (accumulate)
        for (int t = 0; t < TILES; t++) {
            a0[t] = _mm512_load_ps(m + (size_t)t * cout);
            a1[t] = _mm512_load_ps(m + (size_t)t * cout + 16);
        }
    else
        for (int t = 0; t < TILES; t++) a0[t] = a1[t] = _mm512_setzero_ps();
    for (int c = 0; c < k; c++) {
        __m512 u0 = _mm512_load_ps(u + (size_t)c * 32), u1 = _mm512_load_ps(u + (size_t)c * 32 + 16);
#pragma clang loop unroll(full)
        for (int t = 0; t < TILES; t++) {
            __m512 x = _mm512_set1_ps(v[(size_t)t * vstride + c]);
            a0[t] = _mm512_fmadd_ps(x, u0, a0[t]);
            a1[t] = _mm512_fmadd_ps(x, u1, a1[t]);
        }
    }
    for (int t = 0; t < TILES; t++) {
        _mm512_store_ps(m + (size_t)t * cout, a0[t]);
        _mm512_store_ps(m + (size_t)t * cout + 16, a1[t]);
    }
}

// Input channels per GEMM pass: a 14-tile block of v and a 32-output slice of u for 128 channels
// (7 + 16 KB) stay in L1 together; wider layers take their channels in chunks of 128.
#define KCHUNK 128

__attribute__((target("avx512f")))
static void gemm_14x32(const float *v, const float *u, int k, int cin, int cout, float *m, int accumulate) {
    if (k == cin) {
        switch (cin) {   // ESRGAN's dense-block widths
        case 64: gemm_14x32_body(v, u, 64, 64, cout, m, 0); return;
        case 96: gemm_14x32_body(v, u, 96, 96, cout, m, 0); return;
        case 128: gemm_14x32_body(v, u, 128, 128, cout, m, 0); return;
        case 160: gemm_14x32_body(v, u, 160, 160, cout, m, 0); return;
        case 192: gemm_14x32_body(v, u, 192, 192, cout, m, 0); return;
        }
    } else if (k == KCHUNK) {
        switch (cin) {
        case 256: gemm_14x32_body(v, u, KCHUNK, 256, cout, m, accumulate); return;
        case 512: gemm_14x32_body(v, u, KCHUNK, 512, cout, m, accumulate); return;
        }
    }
    gemm_14x32_body(v, u, k, cin, cout, m, accumulate);
}

// Row i of an output tile, r[0…3] (columns x0, x0 + xstep, …, clipped at the right edge), with the bias,
// the (leaky) ReLU and the scaled residual, into row y of `plane` (y < h).
__attribute__((target("avx512f"), always_inline))
static inline void store_output_row(const __m512 r[4], __m512 bias, int leaky, __m512 slope, const float *residual,
                                    __m512 res_scale, float *plane, int w, int y, int x0, int xstep) {
    for (int j = 0; j < 4 && x0 + xstep * j < w; j++) {
        __m512 o = _mm512_add_ps(r[j], bias);
        if (leaky) o = _mm512_mask_mul_ps(o, _mm512_cmp_ps_mask(o, _mm512_setzero_ps(), _CMP_LT_OQ), o, slope);
        size_t at = ((size_t)y * w + x0 + xstep * j) * 16;
        if (residual) o = _mm512_add_ps(_mm512_mul_ps(o, res_scale), _mm512_load_ps(residual + at));   // o·s + r, as PyTorch rounds it
        _mm512_store_ps(plane + at, o);
    }
}

// Aᵀ of a kernel kind on one column or row of a tile's positions (6, 9 or 5 values) into 4.
__attribute__((target("avx512f"), always_inline))
static inline void output_1d_of(int kind, const __m512 *m, __m512 r[4]) {
    if (kind == FRW_STRIDE2) output_1d_s2(m, r);
    else if (kind == FRW_NEAREST2X) output_1d_f42(m, r);
    else output_1d(m, r);
}

// Output tile of 16 channels from one pass's positions m[p·pstride]: side × side positions (6, 9
// for stride 2, one phase's 5 for FRW_NEAREST2X) reduced along columns (Aᵀ·M), then rows (·A),
// into 4×4 outputs at (y0 + step·i, x0 + step·j), step 2 for a FRW_NEAREST2X phase, clipped at
// the edges. Inlined with a constant `kind`.
__attribute__((target("avx512f"), always_inline))
static inline void output_tile_of(int kind, const float *m, size_t pstride, __m512 bias, int leaky, __m512 slope,
                                  const float *residual, __m512 res_scale, float *plane, int h, int w, int y0, int x0) {
    const int side = kind == FRW_STRIDE2 ? 9 : kind == FRW_NEAREST2X ? 5 : 6, step = kind == FRW_NEAREST2X ? 2 : 1;
    __m512 t[4][9];
    for (int j = 0; j < side; j++) {
        __m512 col[9], r[4];
        for (int i = 0; i < side; i++) col[i] = _mm512_load_ps(m + (size_t)(i * side + j) * pstride);
        output_1d_of(kind, col, r);
        for (int i = 0; i < 4; i++) t[i][j] = r[i];
    }
    for (int i = 0; i < 4 && y0 + step * i < h; i++) {
        __m512 r[4];
        output_1d_of(kind, t[i], r);
        store_output_row(r, bias, leaky, slope, residual, res_scale, plane, w, y0 + step * i, x0, step);
    }
}

__attribute__((target("avx512f")))
static void output_tile(int kind, const float *m, size_t pstride, __m512 bias, int leaky, __m512 slope,
                        const float *residual, __m512 res_scale, float *plane, int h, int w, int y0, int x0) {
    switch (kind) {
    case FRW_STRIDE2: output_tile_of(FRW_STRIDE2, m, pstride, bias, leaky, slope, residual, res_scale, plane, h, w, y0, x0); break;
    case FRW_NEAREST2X: output_tile_of(FRW_NEAREST2X, m, pstride, bias, leaky, slope, residual, res_scale, plane, h, w, y0, x0); break;
    default: output_tile_of(FRW_STRIDE1, m, pstride, bias, leaky, slope, residual, res_scale, plane, h, w, y0, x0); break;
    }
}

__attribute__((target("avx512f")))
void frw_conv3x3(const float *src, int src_nhwc, int cin, int h, int w, int pad, int kind, const frw_read *read,
                 const float *u, const float *bias, int cout,
                 float *dst, int leaky, float slope, const float *residual, float res_scale,
                 int row_begin, int row_end, float *scratch) {
    // Strides of the input, in floats: between rows, pixels and 16-channel blocks.
    const size_t row = src_nhwc ? (size_t)w * cin : (size_t)w * 16, pixel = src_nhwc ? (size_t)cin : 16;
    const size_t block = src_nhwc ? 16 : (size_t)h * w * 16;
    const int upsample = read && read->upsample == 2 ? 2 : 1, bilinear = upsample == 2 && read->bilinear;
    const int normalized = read && read->mul && read->add && kind == FRW_STRIDE1 && upsample == 1;
    const input_map map = {h, w, upsample, read && read->reflect && pad == 1, read && read->leaky,
                           _mm512_set1_ps(read ? read->slope : 0), normalized ? read->mul : NULL,
                           normalized ? read->add : NULL};
    const int s2 = kind == FRW_STRIDE2, n2x = kind == FRW_NEAREST2X, stride = s2 ? 2 : 1;
    const int P = positions(kind), side = s2 ? 9 : n2x ? 5 : 6;
    const int oh = (upsample * h + 2 * pad - 3) / stride + 1, ow = (upsample * w + 2 * pad - 3) / stride + 1;   // output size
    // A tile is 4×4 outputs, or for FRW_NEAREST2X 8×8 (4×4 in each of its 4 phases), whose input
    // patch starts at (step·ty − pad, step·tx − pad) in the (upsampled) input frame.
    const int tsize = n2x ? 8 : 4, step = 4 * stride, phases = n2x ? 4 : 1;
    const int tw = (ow + tsize - 1) / tsize;
    const int SUPER = TILES * blocks_per_pass(cin, cout, kind);
    float *v = scratch;                              // [P][SUPER][cin]
    float *m = scratch + (size_t)P * SUPER * cin;    // [P][SUPER][cout]
    const size_t vstride = (size_t)SUPER * cin, mstride = (size_t)SUPER * cout;
    const __m512 sl = _mm512_set1_ps(slope), rs = _mm512_set1_ps(res_scale);
    // The tiles of rows [row_begin, row_end) in row-major order, SUPER at a time: a chunk may
    // span rows, so only the range's last chunk is partial (per row, a 32-tile row went through
    // the GEMMs as 28 + 14 tiles, 76% useful work).
    const int first = row_begin * tw, last = row_end * tw;
    for (int t0 = first; t0 < last; t0 += SUPER) {
        const int n = last - t0 < SUPER ? last - t0 : SUPER;
        const int blocks = (n + TILES - 1) / TILES;
        int ty[TILES * MAX_BLOCKS], tx[TILES * MAX_BLOCKS];
        for (int t = 0; t < n; t++) {
            ty[t] = (t0 + t) / tw;
            tx[t] = (t0 + t) % tw;
        }
        for (int t = n; t < blocks * TILES; t++)   // the last block's missing tiles: zeros, not stale values
            for (int p = 0; p < P; p++) memset(v + p * vstride + (size_t)t * cin, 0, sizeof(float) * cin);
        for (int ph = 0; ph < phases; ph++) {
            const int pa = ph >> 1, pb = ph & 1;   // FRW_NEAREST2X: the output phase (row, column parity)
            for (int cb = 0; cb < cin / 16; cb++) {
                const float *plane = src + (size_t)cb * block;
                float *vb = v + cb * 16;
                input_map mb = map;   // the affine of this block's 16 channels
                if (mb.mul) { mb.mul += cb * 16; mb.add += cb * 16; }
                for (int t = 0; t < n; t++) {
                    float *vt = vb + (size_t)t * cin;
                    if (n2x) {   // phase (a, b) reads source rows from 4·ty − 1 + a, columns likewise
                        input_tile_nearest2x(plane, row, pixel, &map, 4 * ty[t] - 1 + pa, 4 * tx[t] - 1 + pb, vt, vstride);
                        continue;
                    }
                    const int y0 = step * ty[t] - pad, x0 = step * tx[t] - pad;
                    if (s2) input_tile_s2(plane, row, pixel, &map, y0, x0, vt, vstride);
                    else if (bilinear) input_tile_bilinear(plane, row, pixel, &map, y0, x0, vt, vstride);
                    else input_tile(plane, row, pixel, &mb, y0, x0, vt, vstride);
                }
            }
            const int kchunk = cin > 192 ? KCHUNK : cin;
            for (int p = 0; p < P; p++) {
                // The position's weights: for stride 2, the odd phase (5…8 on an axis) shares row 5.
                const int i = p / side, j = p % side;
                const int wp = s2 ? (i < 5 ? i : 5) * 6 + (j < 5 ? j : 5) : ph * P + p;
                for (int kc = 0; kc < cin; kc += kchunk) {
                    const int k = cin - kc < kchunk ? cin - kc : kchunk;
                    for (int o = 0; o < cout; o += 32)
                        for (int rb = 0; rb < blocks; rb++)
                            gemm_14x32(v + p * vstride + (size_t)rb * TILES * cin + kc, u + ((size_t)wp * cout + o) * cin + (size_t)kc * 32,
                                       k, cin, cout, m + p * mstride + (size_t)rb * TILES * cout + o, kc > 0);
                }
            }
            for (int ob = 0; ob < cout / 16; ob++) {
                __m512 b = bias ? _mm512_loadu_ps(bias + ob * 16) : _mm512_setzero_ps();
                float *plane = dst + (size_t)ob * oh * ow * 16;
                const float *rplane = residual ? residual + (size_t)ob * oh * ow * 16 : NULL;
                const float *mb = m + ob * 16;
                for (int t = 0; t < n; t++)   // a FRW_NEAREST2X phase's outputs start at (8·ty + a, 8·tx + b)
                    output_tile(kind, mb + (size_t)t * cout, mstride, b, leaky, sl, rplane, rs, plane, oh, ow,
                                tsize * ty[t] + pa, tsize * tx[t] + pb);
            }
        }
    }
}
