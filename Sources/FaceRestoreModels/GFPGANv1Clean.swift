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
        let out = try conv2(try ctx.resize(try conv1(x, ctx), factor: factor, mode: .bilinear), ctx)
        return try ctx.add(out, try skip(try ctx.resize(x, factor: factor, mode: .bilinear), ctx))
    }
}

extension GFPGANBlocks {
    /// `GFPGANv1Clean.__init__`: plain `nn.Conv2d`/`nn.Linear` layers with lrelu(0.2).
    static func clean(_ root: WeightScope, _ c: GFPGANConfig, context: ComputeContext) throws -> GFPGANBlocks {
        var cin = c.unetChannels(c.outSize)
        let first = try root["conv_body_first"].conv2d(3, cin, kernel: 1, postOps: [.leakyReLU(0.2)],
                                                       hint: (c.outSize, c.outSize), context: context)
        var down: [any Layer] = []
        for (k, level) in stride(from: c.logSize, to: 2, by: -1).enumerated() {
            let cout = c.unetChannels(1 << (level - 1))
            down.append(try ResBlockClean(root["conv_body_down"][k], in: cin, out: cout, down: true, resolution: 1 << level,
                                          context: context))
            cin = cout
        }
        let c4 = c.unetChannels(4)
        let finalConv = try root["final_conv"].conv2d(cin, c4, kernel: 3, postOps: [.leakyReLU(0.2)], hint: (4, 4), context: context)
        let numLatent = c.logSize * 2 - 2
        let finalLinear = try root["final_linear"].linear(c4 * 16, c.differentW ? numLatent * c.styleDim : c.styleDim,
                                                          context: context)
        var up: [any Layer] = [], scales: [any Layer] = [], shifts: [any Layer] = []
        cin = c4
        for (k, level) in (3...c.logSize).enumerated() {
            let r = 1 << level
            let cout = c.unetChannels(r)
            up.append(try ResBlockClean(root["conv_body_up"][k], in: cin, out: cout, down: false, resolution: r / 2, context: context))
            let sftOut = c.sftHalf ? cout : cout * 2
            func condition(_ s: WeightScope) throws -> Sequential {
                Sequential([try s[0].conv2d(cout, cout, kernel: 3, postOps: [.leakyReLU(0.2)], hint: (r, r), context: context),
                            try s[2].conv2d(cout, sftOut, kernel: 3, hint: (r, r), context: context)])
            }
            scales.append(try condition(root["condition_scale"][k]))
            shifts.append(try condition(root["condition_shift"][k]))
            cin = cout
        }
        let decoder = try StyleGAN2DecoderSFT(root["stylegan_decoder"], variant: .clean, outSize: c.outSize,
                                              styleDim: c.styleDim, multiplier: c.channelMultiplier, narrow: c.narrow,
                                              sftHalf: c.sftHalf, context: context)
        return GFPGANBlocks(convBodyFirst: first, convBodyDown: down, finalConv: finalConv, finalLinear: finalLinear,
                            convBodyUp: up, conditionScale: scales, conditionShift: shifts, decoder: decoder,
                            unusedPrefixes: ["stylegan_decoder.style_mlp.", "toRGB."])
    }
}
