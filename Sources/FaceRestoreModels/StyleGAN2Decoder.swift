// The StyleGAN2 decoder with channel-split SFT that GFPGAN modulates, in both of its forms:
// - `.clean` ports gfpgan 1.3.8 `gfpgan/archs/stylegan2_clean_arch.py` (ModulatedConv2d, StyleConv,
//   ToRGB, StyleGAN2GeneratorClean) and `gfpganv1_clean_arch.py` (StyleGAN2GeneratorCSFT), commit
//   7552a77: plain weights, bilinear upsampling, bias inside the activation's input.
// - `.original` ports basicsr 1.4.2 `basicsr/archs/stylegan2_arch.py` (EqualLinear, ModulatedConv2d,
//   StyleConv, ToRGB, UpFirDnUpsample, UpFirDnSmooth, StyleGAN2Generator) and gfpgan 1.3.8
//   `gfpganv1_arch.py` (StyleGAN2GeneratorSFT): equalized learning-rate scaling, transposed-conv
//   upsampling followed by the [1,3,3,1] blur, upfirdn ToRGB skips, FusedLeakyReLU (lrelu(x+b)·√2).
//
// Modulation without per-call weight rewrites: upstream scales the conv weight by the style
// (W·s) and demodulates it (·rsqrt(Σ(W·s)² + 1e-8)) on every call. Because both factors are
// per-channel, conv(x, W·s·d) = d ⊙ conv(x ⊙ s, W): we scale the input channels by s, run the
// fixed weight (reordered once at load) and scale the output channels by d, with
// d[o] = rsqrt(Σᵢ s[i]²·‖W[o,i]‖² + 1e-8) from norms precomputed at load. The original form's
// equalized-lr factor 1/√(in·k²) is folded into s; d also commutes with the (linear, depthwise)
// blur that follows its transposed convolution.

import FaceRestoreEngine
import Foundation

/// Which StyleGAN2 implementation a checkpoint was trained with.
enum StyleGAN2Variant: Sendable {
    /// GFPGAN's `stylegan2_clean_arch` (v1.2, v1.3, v1.4).
    case clean
    /// rosinality/basicsr StyleGAN2 with the [1,3,3,1] resample kernel (GFPGAN v1).
    case original
}

/// StyleGAN2's 2-D resample kernel: the outer product of [1,3,3,1], normalized to sum 1, times `gain`
/// (`make_resample_kernel`; upsampling layers multiply by factor²).
func resampleKernel(gain: Float = 1) -> [Float] {
    let k: [Float] = [1, 3, 3, 1]
    return k.flatMap { a in k.map { b in a * b / 64 * gain } }
}

/// `ModulatedConv2d`: `modulation` Linear(style → in), `weight` [1, out, in, k, k].
struct ModulatedConv2d: Sendable {
    let inChannels: Int
    let outChannels: Int
    let demodulate: Bool
    let modulation: Linear
    /// Equalized-lr weight scale folded into the style (1 in the clean form).
    let styleScale: Float
    enum Upsampling: Sendable {
        case none(Conv2d)
        /// 1×1 without upsampling (ToRGB): W as [out, in], run as `pointwiseConv` with the
        /// modulation folded into the weights on each call (no oneDNN layer).
        case pointwise([Float])
        /// Clean: bilinear ×2, then a 3×3 conv.
        case bilinear(Conv2d)
        /// Original: transposed conv (stride 2, no padding), then the upfirdn blur.
        case transposed(ConvTranspose2d, blur: UpFirDn2d)
    }
    let op: Upsampling
    /// ‖W[o, i, :, :]‖², row-major [out, in] (for demodulation).
    let weightSquares: [Float]

    init(_ scope: WeightScope, variant: StyleGAN2Variant, in cin: Int, out cout: Int, kernel: Int, styleDim: Int,
         demodulate: Bool, upsample: Bool, resolution: Int, context: ComputeContext) throws {
        inChannels = cin
        outChannels = cout
        self.demodulate = demodulate
        let k2 = kernel * kernel
        // Read once into a plain tensor that the 3×3 layers keep as they are.
        let weight = try context.reshape(try scope.tensor("weight", shape: [1, cout, cin, kernel, kernel]), [cout, cin, kernel, kernel])
        switch variant {
        case .clean:
            modulation = try scope["modulation"].linear(styleDim, cin, context: context)
            styleScale = 1
        case .original:
            modulation = try scope["modulation"].equalLinear(styleDim, cin, context: context)
            styleScale = 1 / Float(cin * k2).squareRoot()
        }
        let r = (resolution, resolution)
        switch (variant, upsample) {
        case (_, false) where kernel == 1:
            op = .pointwise(weight.withPlainValues { Array($0) })
        case (_, false):
            op = .none(try Conv2d(weight: weight, padding: Padding2D(kernel / 2), hint: r, context: context))
        case (.clean, true):
            op = .bilinear(try Conv2d(weight: weight, padding: Padding2D(kernel / 2), hint: r, context: context))
        case (.original, true):
            // conv_transpose2d takes [in, out, k, k]: the modulated weight transposed.
            var t = [Float](repeating: 0, count: weight.count)
            weight.withPlainValues { w in
                for o in 0..<cout { for i in 0..<cin { for j in 0..<k2 { t[(i * cout + o) * k2 + j] = w[(o * cin + i) * k2 + j] } } }
            }
            let deconv = try ConvTranspose2d(weight: t, shape: [cin, cout, kernel, kernel], stride: 2, padding: 0,
                                             hint: (resolution / 2, resolution / 2), context: context)
            // UpFirDnSmooth(upsample_factor=2): kernel·4, pad ((p+1)/2 + 1, p/2 + 1) with p = 4 − 2 − (k − 1).
            let p = 2 - (kernel - 1)
            let (p0, p1) = ((p + 1) / 2 + 1, p / 2 + 1)
            op = .transposed(deconv, blur: try UpFirDn2d(kernel: resampleKernel(gain: 4), kernelSize: (4, 4), channels: cout,
                                                         pad: (p0, p1, p0, p1), context: context))
        }
        weightSquares = !demodulate ? [] : weight.withPlainValues { w in
            (0..<(cout * cin)).map { oi in
                var s: Float = 0
                for j in 0..<k2 { let v = w[oi * k2 + j]; s += v * v }
                return s
            }
        }
    }

    /// `conv(x ⊙ s)` (resampled as the variant does) and the per-output-channel demodulation factors
    /// (nil without demodulation).
    func callAsFunction(_ x: Tensor, style: Tensor, _ ctx: ComputeContext) throws -> (Tensor, [Float]?) {
        let (scaled, s) = try modulatedInput(x, style: style, ctx)
        return try callAsFunction(scaled: scaled, scales: s, ctx)
    }

    /// `x ⊙ s` and s (`inputScales`).
    func modulatedInput(_ x: Tensor, style: Tensor, _ ctx: ComputeContext) throws -> (Tensor, [Float]) {
        let s = try inputScales(style, ctx)
        return (try ctx.multiply(x, Tensor(shape: [1, inChannels, 1, 1], values: s)), s)
    }

    /// A 1×1 layer's `conv(x ⊙ s) + bias + addend` in one pass over `x`: the style folded into the
    /// weights, W[o, c]·s[c] (the same products as upstream's modulated weight; upstream sums them
    /// in conv2d).
    func pointwise(_ x: Tensor, style: Tensor, bias: [Float], addend: Tensor?, _ ctx: ComputeContext) throws -> Tensor {
        guard case .pointwise(let w) = op else { throw ModelError.invalidInput("a \(inChannels)→\(outChannels) modulated conv is not 1×1") }
        let s = try inputScales(style, ctx)
        let weights = (0..<(outChannels * inChannels)).map { w[$0] * s[$0 % inChannels] }
        return try ctx.pointwiseConv(x, weights: weights, bias: bias, addend: addend)
    }

    /// The per-input-channel factors s (the modulation, with the equalized-lr scale folded in).
    func inputScales(_ style: Tensor, _ ctx: ComputeContext) throws -> [Float] {
        let s = try ctx.array(modulation(style, ctx))
        return styleScale != 1 ? s.map { $0 * styleScale } : s
    }

    /// The same on an input already multiplied by `scales` (`inputScales`), for callers that fold
    /// the multiplication into the pass producing the input.
    func callAsFunction(scaled input: Tensor, scales s: [Float], _ ctx: ComputeContext) throws -> (Tensor, [Float]?) {
        let y: Tensor
        switch op {
        case .none(let conv): y = try conv(input, ctx)
        case .pointwise(let w): y = try ctx.pointwiseConv(input, weights: w, bias: [Float](repeating: 0, count: outChannels))
        case .bilinear(let conv): y = try conv(bilinearUpsampled: input, ctx)
        case let .transposed(deconv, blur): y = try deconv(input, then: blur, ctx)
        }
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

/// `StyleConv`. Clean: lrelu₀.₂(modconv(x)·√2 + w·noise + bias), bias `[1, out, 1, 1]`.
/// Original: lrelu₀.₂(modconv(x) + w·noise + bias)·√2 with FusedLeakyReLU's `activate.bias`
/// (computed as lrelu(√2·(…)), the same function since lrelu is positively homogeneous).
struct StyleConv: Sendable {
    let modulatedConv: ModulatedConv2d
    let noiseWeight: Float
    let bias: [Float]
    let variant: StyleGAN2Variant

    init(_ scope: WeightScope, variant: StyleGAN2Variant, in cin: Int, out cout: Int, styleDim: Int, upsample: Bool,
         resolution: Int, context: ComputeContext) throws {
        self.variant = variant
        modulatedConv = try ModulatedConv2d(scope["modulated_conv"], variant: variant, in: cin, out: cout, kernel: 3,
                                            styleDim: styleDim, demodulate: true, upsample: upsample,
                                            resolution: resolution, context: context)
        noiseWeight = try scope.floats("weight", shape: [1])[0]
        switch variant {
        case .clean: bias = try scope.floats("bias", shape: [1, cout, 1, 1])
        case .original: bias = try scope["activate"].floats("bias", shape: [cout])
        }
    }

    func callAsFunction(_ x: Tensor, style: Tensor, noise: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        let (scaled, s) = try modulatedConv.modulatedInput(x, style: style, ctx)
        return try callAsFunction(scaled: scaled, scales: s, noise: noise, ctx)
    }

    /// The same on an input already multiplied by `scales` (`modulatedConv.inputScales`).
    func callAsFunction(scaled x: Tensor, scales: [Float], noise: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        let (y, demod) = try modulatedConv(scaled: x, scales: scales, ctx)
        let sqrt2 = Float(2).squareRoot()
        let scale = demod!.map { $0 * sqrt2 }
        switch variant {
        // y is this call's own conv output, read nowhere else: the affine pass overwrites it.
        case .clean:
            return try ctx.affine(y, scale: scale, shift: bias, spatial: noise, spatialWeight: noiseWeight, leakyReLUSlope: 0.2,
                                  overwritingInput: true)
        case .original:
            return try ctx.affine(y, scale: scale, shift: bias.map { $0 * sqrt2 }, spatial: noise,
                                  spatialWeight: noiseWeight * sqrt2, leakyReLUSlope: 0.2, overwritingInput: true)
        }
    }
}

/// `ToRGB`: modconv 1×1 without demodulation, + bias, + the previous skip upsampled ×2 (clean:
/// bilinear; original: `UpFirDnUpsample`, upfirdn up 2 with kernel·4 and pad (2, 1)).
struct ToRGB: Sendable {
    let modulatedConv: ModulatedConv2d
    let bias: [Float]
    enum SkipUpsampling: Sendable { case none, bilinear, upfirdn(UpFirDn2d) }
    let skipUpsampling: SkipUpsampling

    /// `convKey`: the attribute holding the modulated conv (`modulated_conv` in basicsr/gfpgan,
    /// `conv` in GPEN).
    init(_ scope: WeightScope, variant: StyleGAN2Variant, in cin: Int, styleDim: Int, upsample: Bool, resolution: Int,
         convKey: String = "modulated_conv", context: ComputeContext) throws {
        modulatedConv = try ModulatedConv2d(scope[convKey], variant: variant, in: cin, out: 3, kernel: 1,
                                            styleDim: styleDim, demodulate: false, upsample: false,
                                            resolution: resolution, context: context)
        bias = try scope.floats("bias", shape: [1, 3, 1, 1])
        switch (variant, upsample) {
        case (_, false): skipUpsampling = .none
        case (.clean, true): skipUpsampling = .bilinear
        case (.original, true):
            skipUpsampling = .upfirdn(try UpFirDn2d(kernel: resampleKernel(gain: 4), kernelSize: (4, 4), channels: 3, up: 2,
                                                    pad: (2, 1, 2, 1), context: context))
        }
    }

    /// One pass over `x` (`ModulatedConv2d.pointwise`).
    func callAsFunction(_ x: Tensor, style: Tensor, skip: Tensor?, _ ctx: ComputeContext) throws -> Tensor {
        let addend: Tensor?
        switch (skip, skipUpsampling) {
        case (nil, _): addend = nil
        case (let skip?, .none): addend = skip
        case (let skip?, .bilinear): addend = try ctx.resize(skip, factor: 2, mode: .bilinear)
        case (let skip?, .upfirdn(let up)): addend = try up(skip, ctx)
        }
        return try modulatedConv.pointwise(x, style: style, bias: bias, addend: addend, ctx)
    }
}

/// The decoder (`StyleGAN2GeneratorCSFT` / `StyleGAN2GeneratorSFT`) with `input_is_latent=True`
/// (the style MLP is never run). Noise is the checkpoint's `noises.noise{i}` buffers, as
/// `randomize_noise=False`, unless the caller passes its own.
struct StyleGAN2DecoderSFT: Sendable {
    let styleDim: Int
    let constantInput: Tensor
    let styleConv1: StyleConv
    let toRGB1: ToRGB
    let styleConvs: [StyleConv]
    let toRGBs: [ToRGB]
    /// `noises.noise{i}`: [1, 1, r, r].
    let noises: [Tensor]
    let sftHalf: Bool

    /// Channels of the decoder at a resolution (`StyleGAN2Generator.channels`).
    static func channels(_ resolution: Int, multiplier: Int, narrow: Double) -> Int {
        let base: Double = resolution <= 32 ? 512 : Double(16384 / resolution * multiplier)
        return Int(base * narrow)
    }

    /// Number of StyleConv layers (and noise inputs) for an output size: 2·(log₂ size − 2) + 1.
    static func noiseCount(outSize: Int) -> Int { (Int(log2(Double(outSize))) - 2) * 2 + 1 }

    /// The side of noise input `i`.
    static func noiseResolution(_ i: Int) -> Int { 1 << ((i + 5) / 2) }

    init(_ scope: WeightScope, variant: StyleGAN2Variant, outSize: Int, styleDim: Int, multiplier: Int, narrow: Double,
         sftHalf: Bool, context: ComputeContext) throws {
        self.styleDim = styleDim
        self.sftHalf = sftHalf
        let logSize = Int(log2(Double(outSize)))
        let c4 = Self.channels(4, multiplier: multiplier, narrow: narrow)
        constantInput = Tensor(shape: [1, c4, 4, 4], values: try scope["constant_input"].floats("weight", shape: [1, c4, 4, 4]))
        styleConv1 = try StyleConv(scope["style_conv1"], variant: variant, in: c4, out: c4, styleDim: styleDim,
                                   upsample: false, resolution: 4, context: context)
        toRGB1 = try ToRGB(scope["to_rgb1"], variant: variant, in: c4, styleDim: styleDim, upsample: false, resolution: 4,
                           context: context)
        var convs: [StyleConv] = [], rgbs: [ToRGB] = []
        var cin = c4
        for (k, level) in (3...logSize).enumerated() {
            let r = 1 << level
            let cout = Self.channels(r, multiplier: multiplier, narrow: narrow)
            convs.append(try StyleConv(scope["style_convs"][2 * k], variant: variant, in: cin, out: cout, styleDim: styleDim,
                                       upsample: true, resolution: r, context: context))
            convs.append(try StyleConv(scope["style_convs"][2 * k + 1], variant: variant, in: cout, out: cout,
                                       styleDim: styleDim, upsample: false, resolution: r, context: context))
            rgbs.append(try ToRGB(scope["to_rgbs"][k], variant: variant, in: cout, styleDim: styleDim, upsample: true,
                                  resolution: r, context: context))
            cin = cout
        }
        styleConvs = convs
        toRGBs = rgbs
        noises = try (0..<Self.noiseCount(outSize: outSize)).map { i in
            let r = Self.noiseResolution(i)
            return Tensor(shape: [1, 1, r, r], values: try scope["noises"].floats("noise\(i)", shape: [1, 1, r, r]))
        }
    }

    /// `latent`: W+ codes, one row of `styleDim` per layer; `conditions(k)`: the SFT (scale, shift)
    /// for level k (8², 16², …), nil past the last, asked once per level, in order, just before
    /// that level needs them (so a caller can compute them then and they are freed after it);
    /// `noise`: one tensor per StyleConv (default: the stored buffers).
    func callAsFunction(latent: [Float], conditions: (Int) throws -> (scale: Tensor, shift: Tensor)?, noise: [Tensor]? = nil,
                        _ ctx: ComputeContext) throws -> Tensor {
        let noise = noise ?? noises
        func w(_ i: Int) -> Tensor { Tensor(shape: [1, styleDim], values: Array(latent[(i * styleDim)..<((i + 1) * styleDim)])) }
        var out = try styleConv1(constantInput, style: w(0), noise: noise[0], ctx)
        var skip = try toRGB1(out, style: w(1), skip: nil, ctx)
        var i = 1
        for k in 0..<toRGBs.count {
            out = try styleConvs[2 * k](out, style: w(i), noise: noise[2 * k + 1], ctx)
            if let condition = try conditions(k) {
                // The SFT pass also applies the next conv's input modulation.
                let c = out.shape[1]
                let next = styleConvs[2 * k + 1]
                let s = try next.modulatedConv.inputScales(w(i + 1), ctx)
                out = try ctx.spatialFeatureTransform(out, scale: condition.scale, shift: condition.shift,
                                                      fromChannel: sftHalf ? c / 2 : 0, outputScale: s,
                                                      overwritingInput: true)   // out: the StyleConv's own result
                out = try next(scaled: out, scales: s, noise: noise[2 * k + 2], ctx)
            } else {
                out = try styleConvs[2 * k + 1](out, style: w(i + 1), noise: noise[2 * k + 2], ctx)
            }
            skip = try toRGBs[k](out, style: w(i + 2), skip: skip, ctx)
            i += 2
        }
        return skip
    }
}
