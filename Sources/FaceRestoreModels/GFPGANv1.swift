// GFPGANv1, the paper architecture (GFPGAN v1): the blocks of the U-Net with equalized learning-rate
// layers. Ports gfpgan 1.3.8 `gfpgan/archs/gfpganv1_arch.py` (ConvUpLayer, ResUpBlock,
// GFPGANv1.__init__), commit 7552a77, and basicsr 1.4.2 `basicsr/archs/stylegan2_arch.py`
// (ResBlock, UpFirDnSmooth; ConvLayer and ScaledLeakyReLU are in StyleGAN2Layers.swift) with `basicsr/ops/fused_act`
// (FusedLeakyReLU: lrelu(x + b)·√2; upstream runs it on CUDA only, here it is a conv post-op).
// The shared forward pass is in GFPGAN.swift; the decoder is StyleGAN2DecoderSFT(.original).

import FaceRestoreEngine
import Foundation

/// gfpgan `ConvUpLayer`: bilinear ×2 → EqualConv2d → [FusedLeakyReLU (`activation.bias`)].
struct ConvUpLayer: Layer {
    let conv: Conv2d

    init(_ scope: WeightScope, in cin: Int, out cout: Int, kernel: Int, padding: Int, bias: Bool, activate: Bool,
         resolution: Int, context: ComputeContext) throws {
        let activationBias = activate && bias ? try scope["activation"].floats("bias", shape: [cout]) : nil
        conv = try scope.equalConv2d(cin, cout, kernel: kernel, padding: padding, bias: activationBias,
                                     ownBias: bias && !activate, postOps: activate ? scaledLeakyReLU : [],
                                     hint: (resolution * 2, resolution * 2), context: context)
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        try conv(try ctx.resize(x, factor: 2, mode: .bilinear), ctx)
    }
}

/// basicsr `ResBlock` (down) and gfpgan `ResUpBlock` (up): (conv2(conv1(x)) + skip(x)) / √2.
struct ResidualBlock: Layer {
    let conv1: ConvLayer
    let conv2: any Layer
    let skip: any Layer

    init(_ scope: WeightScope, in cin: Int, out cout: Int, down: Bool, resolution: Int, context: ComputeContext) throws {
        conv1 = try ConvLayer(scope["conv1"], in: cin, out: cin, kernel: 3, resolution: resolution, context: context)
        if down {
            conv2 = try ConvLayer(scope["conv2"], in: cin, out: cout, kernel: 3, downsample: true, resolution: resolution,
                                  context: context)
            skip = try ConvLayer(scope["skip"], in: cin, out: cout, kernel: 1, downsample: true, bias: false, activate: false,
                                 resolution: resolution, context: context)
        } else {
            conv2 = try ConvUpLayer(scope["conv2"], in: cin, out: cout, kernel: 3, padding: 1, bias: true, activate: true,
                                    resolution: resolution, context: context)
            skip = try ConvUpLayer(scope["skip"], in: cin, out: cout, kernel: 1, padding: 0, bias: false, activate: false,
                                   resolution: resolution, context: context)
        }
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        let sum = try ctx.add(try conv2(try conv1(x, ctx), ctx), try skip(x, ctx))
        return try ctx.scale(sum, by: 1 / sqrt2)
    }
}

extension GFPGANBlocks {
    /// `GFPGANv1.__init__` with the inference settings of `GFPGANer` (arch 'original').
    static func original(_ root: WeightScope, _ c: GFPGANConfig, context: ComputeContext) throws -> GFPGANBlocks {
        try build(root, c, GFPGANLayerFactory(
            variant: .original,
            first: { s, cout, r in try ConvLayer(s, in: 3, out: cout, kernel: 1, resolution: r, context: context) },
            resBlock: { s, cin, cout, down, r in
                try ResidualBlock(s, in: cin, out: cout, down: down, resolution: r, context: context)
            },
            finalConv: { s, cin, cout in try ConvLayer(s, in: cin, out: cout, kernel: 3, resolution: 4, context: context) },
            finalLinear: { s, i, o in try s.equalLinear(i, o, context: context) },
            // EqualConv2d → ScaledLeakyReLU(0.2) → EqualConv2d
            conditionConv: { s, cin, cout in try s.equalConvWeights(cin, cout, kernel: 3) },
            conditionActivation: scaledLeakyReLU), context: context)
    }
}
