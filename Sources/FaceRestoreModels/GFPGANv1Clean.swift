// GFPGANv1Clean (GFPGAN v1.2, v1.3, v1.4): the blocks of the clean architecture.
// Ports gfpgan 1.3.8 `gfpgan/archs/gfpganv1_clean_arch.py` (ResBlock, GFPGANv1Clean.__init__),
// commit 7552a77. The shared forward pass is in GFPGAN.swift.

import FaceRestoreEngine
import Foundation

/// The U-Net's `ResBlock`: lrelu(conv1) → bilinear resample → lrelu(conv2), plus a resampled 1×1 skip.
struct ResBlockClean: Layer {
    let conv1: Conv2d
    let conv2: Conv2d
    let skip: Conv2d
    let factor: Double

    init(_ scope: WeightScope, in cin: Int, out cout: Int, down: Bool, resolution: Int, context: ComputeContext) throws {
        let r2 = down ? resolution / 2 : resolution * 2
        conv1 = try scope["conv1"].conv2d(cin, cin, kernel: 3, postOps: [.leakyReLU(0.2)], hint: (resolution, resolution), context: context)
        conv2 = try scope["conv2"].conv2d(cin, cout, kernel: 3, postOps: [.leakyReLU(0.2)], hint: (r2, r2), context: context)
        skip = try scope["skip"].conv2d(cin, cout, kernel: 1, bias: false, hint: (r2, r2), context: context)
        factor = down ? 0.5 : 2
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        let h = try conv1(x, ctx)
        // Upsampling blocks interpolate as conv2 reads (the ×2 tensor is never made where conv2
        // runs on the fused Winograd kernel).
        let out = factor == 2 ? try conv2(bilinearUpsampled: h, ctx)
                              : try conv2(try ctx.resize(h, factor: factor, mode: .bilinear), ctx)
        // The bias-free 1×1 skip commutes with the bilinear resample (both linear, the resample's
        // weights summing to 1): upsampling blocks run it before, on a quarter of the pixels, and
        // resample its (narrower) output; the same values up to rounding.
        let identity = factor == 2 ? try ctx.resize(try skip(x, ctx), factor: 2, mode: .bilinear)
                                   : try skip(try ctx.resize(x, factor: factor, mode: .bilinear), ctx)
        return try ctx.add(out, identity)
    }
}

extension GFPGANBlocks {
    /// `GFPGANv1Clean.__init__`: plain `nn.Conv2d`/`nn.Linear` layers with lrelu(0.2).
    static func clean(_ root: WeightScope, _ c: GFPGANConfig, context: ComputeContext) throws -> GFPGANBlocks {
        let lrelu: [PostOp] = [.leakyReLU(0.2)]
        return try build(root, c, GFPGANLayerFactory(
            variant: .clean,
            first: { s, cout, r in try s.conv2d(3, cout, kernel: 1, postOps: lrelu, hint: (r, r), context: context) },
            resBlock: { s, cin, cout, down, r in
                try ResBlockClean(s, in: cin, out: cout, down: down, resolution: r, context: context)
            },
            finalConv: { s, cin, cout in try s.conv2d(cin, cout, kernel: 3, postOps: lrelu, hint: (4, 4), context: context) },
            finalLinear: { s, i, o in try s.linear(i, o, context: context) },
            conditionConv: { s, cin, cout in
                (try s.floats("weight", shape: [cout, cin, 3, 3]), try s.floats("bias", shape: [cout]))
            },
            conditionActivation: lrelu), context: context)
    }
}
