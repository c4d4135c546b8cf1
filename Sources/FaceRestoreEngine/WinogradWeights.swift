// The weight transform of oneDNN's F(4×4,3×3) Winograd convolution, written for load time.
//
// Layout and arithmetic follow oneDNN 2.6.3's `wino_reorder_t` (src/cpu/x64/wino_reorder.hpp,
// tag v2.6.3) for the `wino_wei_OBaaIBOIio` format its `jit_avx512_core_f32_wino_conv_4x3` kernel
// asks for: each 3×3 kernel g becomes the 6×6 tile G·g·Gᵀ with oneDNN's scaled 6×3 matrix G, and
// the tiles are stored as
//   [oc / (oc2·ocb)] [6] [6] [ic / (ic2·icb)] [oc2] [ic2] [icb] [ocb]
// with the block sizes read from the descriptor oneDNN chose (ocb is 16 on AVX-512).
//
// Why our own: oneDNN's reorder converts each layer in two passes with scalar, cache-unfriendly
// loops through a full-size scratch buffer: 83 ms for one 512×512 layer, 0.83 s of CPU for
// GFPGAN v1.4 and ParseNet together, most of a one-photo run's loading. This is one vectorized
// pass from PyTorch's oihw layout straight into the final layout, split across the threads, with
// the same operations in the same order, so the result is bit-for-bit oneDNN's (tested).

import CDNNL

/// The blocking of an F(4×4,3×3) Winograd weight layout, read from a oneDNN descriptor.
struct WinogradWeightLayout: Equatable {
    let outChannels: Int, inChannels: Int
    let ocBlock: Int, icBlock: Int, oc2Block: Int, ic2Block: Int

    static let alpha = 6

    /// oneDNN's G for F(4×4,3×3) (rows scaled by the kernel's choice of interpolation points).
    static let g: [[Float]] = [
        [1.13777777777778, 0, 0],
        [-0.688403361344538, -0.430252100840336, -0.26890756302521],
        [-0.688403361344538, 0.430252100840336, -0.26890756302521],
        [0.119514472455649, 0.179271708683473, 0.26890756302521],
        [0.119514472455649, -0.179271708683473, 0.26890756302521],
        [0, 0, 1],
    ]

    /// The layout of `desc` when it is an f32 `wino_wei_OBaaIBOIio` weight layout for `outChannels`
    /// × `inChannels` 3×3 kernels with 16-wide output blocks (what the AVX-512 kernel uses); nil
    /// for anything else (oneDNN's own reorder handles those).
    init?(_ desc: MemoryDesc, outChannels: Int, inChannels: Int) {
        guard desc.raw.format_kind == dnnl_format_kind_wino, desc.raw.data_type == dnnl_f32 else { return nil }
        let w = desc.raw.format_desc.wino_desc
        guard w.wino_format == dnnl_wino_wei_OBaaIBOIio, w.r == 3, Int(w.alpha) == Self.alpha, w.adj_scale == 1,
              Int(w.oc) == outChannels, Int(w.ic) == inChannels, w.oc_block == 16, w.ic_block > 0,
              w.oc2_block > 0, w.ic2_block > 0,
              outChannels % Int(w.oc_block * w.oc2_block) == 0, inChannels % Int(w.ic_block * w.ic2_block) == 0,
              w.size == 4 * 36 * outChannels * inChannels, desc.byteSize == w.size else { return nil }
        self.outChannels = outChannels
        self.inChannels = inChannels
        ocBlock = Int(w.oc_block)
        icBlock = Int(w.ic_block)
        oc2Block = Int(w.oc2_block)
        ic2Block = Int(w.ic2_block)
    }

    /// Element offset of the 16 output channels of block `ob` (of oc/16) for input channel `ic` and
    /// tile position (`uh`, `uw`).
    @inline(__always)
    func offset(ob: Int, ic: Int, uh: Int, uw: Int) -> Int {
        let (occ, ob2) = ob.quotientAndRemainder(dividingBy: oc2Block)
        let (icb, i) = ic.quotientAndRemainder(dividingBy: icBlock)
        let (icc, ib) = icb.quotientAndRemainder(dividingBy: ic2Block)
        let icChunks = inChannels / (icBlock * ic2Block)
        let a = Self.alpha
        return ((((((occ * a + uh) * a + uw) * icChunks + icc) * oc2Block + ob2) * ic2Block + ib) * icBlock + i) * ocBlock
    }

    /// Transforms PyTorch-layout weights `[oc, ic, 3, 3]` into this layout at `output`.
    func transform(oihw source: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, context: ComputeContext) {
        let g = Self.g.map { row in row.map { SIMD16<Float>(repeating: $0) } }
        let (cin, blocks) = (inChannels, outChannels / 16)
        context.parallelRows(blocks) { range in
            var k = [SIMD16<Float>](repeating: .zero, count: 9)
            var rows = [SIMD16<Float>](repeating: .zero, count: 18)     // g·Gᵀ: [kh][6]
            for ob in range {
                for ic in 0..<cin {
                    // The 3×3 kernels of 16 output channels, one vector per kernel position.
                    for lane in 0..<16 {
                        let p = source + ((ob * 16 + lane) * cin + ic) * 9
                        for t in 0..<9 { k[t][lane] = p[t] }
                    }
                    // oneDNN's order: rows first (Σ over kw, from zero), then columns (Σ over kh).
                    for kh in 0..<3 {
                        for j in 0..<6 {
                            var s = SIMD16<Float>.zero
                            s += k[kh * 3] * g[j][0]
                            s += k[kh * 3 + 1] * g[j][1]
                            s += k[kh * 3 + 2] * g[j][2]
                            rows[kh * 6 + j] = s
                        }
                    }
                    for uh in 0..<6 {
                        for uw in 0..<6 {
                            var s = SIMD16<Float>.zero
                            s += g[uh][0] * rows[uw]
                            s += g[uh][1] * rows[6 + uw]
                            s += g[uh][2] * rows[12 + uw]
                            UnsafeMutableRawPointer(output + offset(ob: ob, ic: ic, uh: uh, uw: uw))
                                .storeBytes(of: s, as: SIMD16<Float>.self)
                        }
                    }
                }
            }
        }
    }
}
