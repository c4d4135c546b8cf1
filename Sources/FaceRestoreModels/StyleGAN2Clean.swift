// The clean StyleGAN2 decoder with channel-split SFT, as GFPGANv1Clean uses it.
// Ports gfpgan 1.3.8 `gfpgan/archs/stylegan2_clean_arch.py` (ModulatedConv2d, StyleConv, ToRGB,
// StyleGAN2GeneratorClean) and `gfpganv1_clean_arch.py` (StyleGAN2GeneratorCSFT), commit 7552a77.
//
// Modulation without per-call weight rewrites: upstream scales the conv weight by the style
// (W·s) and demodulates it (·rsqrt(Σ(W·s)² + 1e-8)) on every call. Because both factors are
// per-channel, conv(x, W·s·d) = d ⊙ conv(x ⊙ s, W): we scale the input channels by s, run the
// fixed weight (reordered once at load) and scale the output channels by d, with
// d[o] = rsqrt(Σᵢ s[i]²·‖W[o,i]‖² + 1e-8) from norms precomputed at load.

import FaceRestoreEngine
import Foundation

/// `ModulatedConv2d` (clean): `modulation` Linear(style → in), `weight` [1, out, in, k, k].
struct ModulatedConv2dClean: Sendable {
    let inChannels: Int
    let outChannels: Int
    let demodulate: Bool
    let upsample: Bool
    let modulation: Linear
    let conv: Conv2d
    /// ‖W[o, i, :, :]‖², row-major [out, in] (for demodulation).
    let weightSquares: [Float]

    init(_ scope: WeightScope, in cin: Int, out cout: Int, kernel: Int, styleDim: Int, demodulate: Bool,
         upsample: Bool, resolution: Int, context: ComputeContext) throws {
        inChannels = cin
        outChannels = cout
        self.demodulate = demodulate
        self.upsample = upsample
        modulation = try scope["modulation"].linear(styleDim, cin, context: context)
        let w = try scope.floats("weight", shape: [1, cout, cin, kernel, kernel])
        conv = try Conv2d(weight: w, shape: [cout, cin, kernel, kernel], padding: Padding2D(kernel / 2),
                          hint: (resolution, resolution), context: context)
        let k2 = kernel * kernel
        weightSquares = demodulate ? (0..<(cout * cin)).map { oi in
            var s: Float = 0
            for j in 0..<k2 { let v = w[oi * k2 + j]; s += v * v }
            return s
        } : []
    }

    /// `conv(x ⊙ s)` and the per-output-channel demodulation factors (nil without demodulation).
    func callAsFunction(_ x: Tensor, style: Tensor, _ ctx: ComputeContext) throws -> (Tensor, [Float]?) {
        let s = try ctx.array(modulation(style, ctx))
        var input = try ctx.multiply(x, Tensor(shape: [1, inChannels, 1, 1], values: s))
        if upsample { input = try ctx.resize(input, factor: 2, mode: .bilinear) }
        let y = try conv(input, ctx)
        guard demodulate else { return (y, nil) }
        let s2 = s.map { $0 * $0 }
        let demod = (0..<outChannels).map { o -> Float in
            var acc: Float = 0
            for i in 0..<inChannels { acc += weightSquares[o * inChannels + i] * s2[i] }
            return 1 / (acc + 1e-8).squareRoot()
        }
        return (y, demod)
    }
}

/// `StyleConv`: lrelu₀.₂(modconv(x)·√2 + weight·noise + bias).
struct StyleConvClean: Sendable {
    let modulatedConv: ModulatedConv2dClean
    let noiseWeight: Float
    let bias: [Float]

    init(_ scope: WeightScope, in cin: Int, out cout: Int, styleDim: Int, upsample: Bool, resolution: Int,
         context: ComputeContext) throws {
        modulatedConv = try ModulatedConv2dClean(scope["modulated_conv"], in: cin, out: cout, kernel: 3, styleDim: styleDim,
                                                 demodulate: true, upsample: upsample, resolution: resolution, context: context)
        noiseWeight = try scope.floats("weight", shape: [1])[0]
        bias = try scope.floats("bias", shape: [1, cout, 1, 1])
    }

    func callAsFunction(_ x: Tensor, style: Tensor, noise: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        let (y, demod) = try modulatedConv(x, style: style, ctx)
        let sqrt2 = Float(2).squareRoot()
        return try ctx.affine(y, scale: demod!.map { $0 * sqrt2 }, shift: bias, spatial: noise,
                              spatialWeight: noiseWeight, leakyReLUSlope: 0.2)
    }
}

/// `ToRGB`: modconv 1×1 without demodulation, + bias, + the previous skip (bilinear ×2).
struct ToRGBClean: Sendable {
    let modulatedConv: ModulatedConv2dClean
    let bias: [Float]
    let upsample: Bool

    init(_ scope: WeightScope, in cin: Int, styleDim: Int, upsample: Bool, resolution: Int, context: ComputeContext) throws {
        modulatedConv = try ModulatedConv2dClean(scope["modulated_conv"], in: cin, out: 3, kernel: 1, styleDim: styleDim,
                                                 demodulate: false, upsample: false, resolution: resolution, context: context)
        bias = try scope.floats("bias", shape: [1, 3, 1, 1])
        self.upsample = upsample
    }

    func callAsFunction(_ x: Tensor, style: Tensor, skip: Tensor?, _ ctx: ComputeContext) throws -> Tensor {
        let (y, _) = try modulatedConv(x, style: style, ctx)
        let out = try ctx.affine(y, shift: bias)
        guard let skip else { return out }
        return try ctx.add(out, upsample ? try ctx.resize(skip, factor: 2, mode: .bilinear) : skip)
    }
}

/// `StyleGAN2GeneratorCSFT` with `input_is_latent=True` (the style MLP is never run) and stored noise.
struct StyleGAN2DecoderCSFT: Sendable {
    let styleDim: Int
    let constantInput: Tensor
    let styleConv1: StyleConvClean
    let toRGB1: ToRGBClean
    let styleConvs: [StyleConvClean]
    let toRGBs: [ToRGBClean]
    /// `noises.noise{i}`: [1, 1, r, r], used as `randomize_noise=False` does.
    let noises: [Tensor]
    let sftHalf: Bool

    /// Channels of the decoder at a resolution (`StyleGAN2GeneratorClean.channels`).
    static func channels(_ resolution: Int, multiplier: Int, narrow: Double) -> Int {
        let base: Double = resolution <= 32 ? 512 : Double(16384 / resolution * multiplier)
        return Int(base * narrow)
    }

    init(_ scope: WeightScope, outSize: Int, styleDim: Int, multiplier: Int, narrow: Double, sftHalf: Bool,
         context: ComputeContext) throws {
        self.styleDim = styleDim
        self.sftHalf = sftHalf
        let logSize = Int(log2(Double(outSize)))
        let c4 = Self.channels(4, multiplier: multiplier, narrow: narrow)
        constantInput = Tensor(shape: [1, c4, 4, 4], values: try scope["constant_input"].floats("weight", shape: [1, c4, 4, 4]))
        styleConv1 = try StyleConvClean(scope["style_conv1"], in: c4, out: c4, styleDim: styleDim, upsample: false,
                                        resolution: 4, context: context)
        toRGB1 = try ToRGBClean(scope["to_rgb1"], in: c4, styleDim: styleDim, upsample: false, resolution: 4, context: context)
        var convs: [StyleConvClean] = [], rgbs: [ToRGBClean] = []
        var cin = c4
        for (k, level) in (3...logSize).enumerated() {
            let r = 1 << level
            let cout = Self.channels(r, multiplier: multiplier, narrow: narrow)
            convs.append(try StyleConvClean(scope["style_convs"][2 * k], in: cin, out: cout, styleDim: styleDim,
                                            upsample: true, resolution: r, context: context))
            convs.append(try StyleConvClean(scope["style_convs"][2 * k + 1], in: cout, out: cout, styleDim: styleDim,
                                            upsample: false, resolution: r, context: context))
            rgbs.append(try ToRGBClean(scope["to_rgbs"][k], in: cout, styleDim: styleDim, upsample: true, resolution: r, context: context))
            cin = cout
        }
        styleConvs = convs
        toRGBs = rgbs
        let numLayers = (logSize - 2) * 2 + 1
        noises = try (0..<numLayers).map { i in
            let r = 1 << ((i + 5) / 2)
            return Tensor(shape: [1, 1, r, r], values: try scope["noises"].floats("noise\(i)", shape: [1, 1, r, r]))
        }
    }

    /// `latent`: W+ codes, one row of `styleDim` per layer; `conditions`: [scale₀, shift₀, scale₁, …].
    func callAsFunction(latent: [Float], conditions: [Tensor], _ ctx: ComputeContext) throws -> Tensor {
        func w(_ i: Int) -> Tensor { Tensor(shape: [1, styleDim], values: Array(latent[(i * styleDim)..<((i + 1) * styleDim)])) }
        var out = try styleConv1(constantInput, style: w(0), noise: noises[0], ctx)
        var skip = try toRGB1(out, style: w(1), skip: nil, ctx)
        var i = 1
        for k in 0..<toRGBs.count {
            out = try styleConvs[2 * k](out, style: w(i), noise: noises[2 * k + 1], ctx)
            if i < conditions.count {
                let c = out.shape[1]
                out = try ctx.spatialFeatureTransform(out, scale: conditions[i - 1], shift: conditions[i],
                                                      fromChannel: sftHalf ? c / 2 : 0)
            }
            out = try styleConvs[2 * k + 1](out, style: w(i + 1), noise: noises[2 * k + 2], ctx)
            skip = try toRGBs[k](out, style: w(i + 2), skip: skip, ctx)
            i += 2
        }
        return skip
    }
}
