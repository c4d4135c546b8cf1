// StyleGAN2's equalized-learning-rate layers shared by GFP-GAN v1 and GPEN: basicsr 1.4.2
// `basicsr/archs/stylegan2_arch.py` (ConvLayer, EqualConv2d, ScaledLeakyReLU) with
// `basicsr/ops/fused_act` (FusedLeakyReLU: lrelu(x + b)·√2, a conv post-op here), the same
// blocks as yangxy/GPEN `face_model/gpen_model.py` (commit 2c73670).

import FaceRestoreEngine
import Foundation

let sqrt2 = Float(2).squareRoot()
/// FusedLeakyReLU / ScaledLeakyReLU(0.2) as conv (or linear) post-ops: lrelu, then ·√2.
let scaledLeakyReLU: [PostOp] = [.leakyReLU(0.2), .linear(alpha: sqrt2, beta: 0)]

/// basicsr `ConvLayer`: [blur] → EqualConv2d → [FusedLeakyReLU | ScaledLeakyReLU]. With
/// `downsample`, an upfirdn blur with pad ((p+1)/2, p/2), p = 2 + (k − 1), then a stride-2 conv.
struct ConvLayer: Layer {
    let blur: UpFirDn2d?
    let conv: Conv2d

    init(_ scope: WeightScope, in cin: Int, out cout: Int, kernel: Int, downsample: Bool = false, bias: Bool = true,
         activate: Bool = true, resolution: Int, context: ComputeContext) throws {
        let convIndex = downsample ? 1 : 0
        if downsample {
            let p = 2 + (kernel - 1)
            blur = try UpFirDn2d(kernel: resampleKernel(), kernelSize: (4, 4), channels: cin,
                                 pad: ((p + 1) / 2, p / 2, (p + 1) / 2, p / 2), context: context)
        } else {
            blur = nil
        }
        // The conv has its own bias only without activation; FusedLeakyReLU carries it otherwise.
        let activationBias = activate && bias ? try scope[convIndex + 1].floats("bias", shape: [cout]) : nil
        let out = downsample ? resolution / 2 : resolution
        conv = try scope[convIndex].equalConv2d(cin, cout, kernel: kernel, stride: downsample ? 2 : 1,
                                                padding: downsample ? 0 : kernel / 2, bias: activationBias,
                                                ownBias: bias && !activate, postOps: activate ? scaledLeakyReLU : [],
                                                hint: (out, out), context: context)
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        try conv(try blur.map { try $0(x, ctx) } ?? x, ctx)
    }
}
