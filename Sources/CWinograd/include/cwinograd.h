// Fused F(4×4,3×3) Winograd convolution for AVX-512 (see winograd.c).
#include <stddef.h>
// Group norm's kernels live here too; included so that a build whose module cache predates them
// rebuilds the module.
#include "cnormalize.h"

/// 1 if this CPU runs the kernels (AVX-512F).
int frw_available(void);

/// Kernel kinds, each with its weight layout: a 3×3 convolution of stride 1; of stride 2
/// (polyphase); of stride 1 on the input upsampled ×2 (nearest) and padded by one, computed as
/// four 2×2 convolutions of the source, one per output phase (ParseNet's decoder).
#define FRW_STRIDE1 1
#define FRW_STRIDE2 2
#define FRW_NEAREST2X 3

/// Floats of the transformed weights: 36·cin·cout (100·cin·cout for FRW_NEAREST2X).
size_t frw_weight_floats(int cin, int cout, int kind);

/// PyTorch `[cout][cin][3][3]` weights to the kernel's `[36][cout/32][cin][32]` tiles (G·g·Gᵀ for
/// FRW_STRIDE1; for FRW_STRIDE2 the F(4,2) G on taps 0 and 2 plus tap 1; for FRW_NEAREST2X
/// `[4][25][cout/32][cin][32]`, F(4,2) on each phase's merged taps; see winograd.c), for the
/// 32-output blocks [block_begin, block_end) only (disjoint parts of `u`), so that threads can
/// share a layer.
void frw_transform_weight_blocks(const float *oihw, int cout, int cin, float *u, int block_begin, int block_end, int kind);

/// Floats of scratch one thread needs (64-byte aligned) for a layer of that kind.
size_t frw_scratch_floats(int cin, int cout, int kind);

/// How `frw_conv3x3` reads its input from `src`: the convolution's input is `src` upsampled ×2
/// (`upsample` 2; nearest, or when `bilinear` is set bilinear with align_corners=False), padded by
/// `pad` with zeros or, when `reflect` is set, by reflection (ReflectionPad2d), and when `leaky`
/// is set passed through LeakyReLU of slope `slope` (not with bilinear), and when `mul` is set
/// (FRW_STRIDE1 without upsampling only) each input value of channel c becomes
/// `v·mul[c] + add[c]` (a deferred GroupNorm; padding stays zero): all applied as values are
/// read, never written out.
typedef struct {
    int upsample;
    int bilinear;
    int reflect;
    int leaky;
    float slope;
    const float *mul;
    const float *add;
} frw_read;

/// Tile rows [row_begin, row_end) (4 output rows each; 8 for FRW_NEAREST2X) of a 3×3 convolution
/// of kind `kind` (FRW_STRIDE2: without upsampling; FRW_NEAREST2X: `read` upsampling ×2, nearest,
/// and `pad` 1) of a batch-1 input `src`, nChw16c ([cin/16][h][w][16]) or, when
/// `src_nhwc` is set, channels-last ([h][w][cin]; 64-byte aligned), into the nChw16c output `dst`
/// ([cout/16][oh][ow][16], oh = (up·h + 2·pad − 3)/stride + 1 (stride 2 for FRW_STRIDE2) with up the upsampling factor of
/// `read`, ow likewise), with `bias` (or
/// NULL) added, when `leaky` is set LeakyReLU of slope `slope`, and when `residual` (nChw16c like
/// `dst`) is given, `y·res_scale + residual`. `read` (or NULL: as it is, zero padding) says how
/// the input is read. cin must be a multiple of 16 and cout of 32.
void frw_conv3x3(const float *src, int src_nhwc, int cin, int h, int w, int pad, int kind, const frw_read *read,
                 const float *u, const float *bias, int cout,
                 float *dst, int leaky, float slope, const float *residual, float res_scale,
                 int row_begin, int row_end, float *scratch);
