// GPEN's FullGenerator (GAN Prior Embedded Network, GPEN-BFR-256/512/1024/2048). Ports yangxy/GPEN
// `face_model/gpen_model.py` (FullGenerator, Generator, StyledConv, NoiseInjection, ToRGB,
// ConvLayer, EqualLinear, PixelNorm) and `face_model/op/` (FusedLeakyReLU, the CPU `upfirdn2d_native`)
// at commit 2c73670:
//   encoder: ecd0 = 1×1 EqualConv + FusedLeakyReLU; ecd1… = Blur(pad 2,2) + 3×3 stride-2
//   EqualConv + FusedLeakyReLU, down to 4×4; `final_linear` EqualLinear(C₄·16 → style, lrelu);
//   the 8-layer mapping MLP (PixelNorm, EqualLinear lr_mul 0.01 + lrelu), one W for every layer;
//   the rosinality StyleGAN2 generator (transposed-conv upsampling + [1,3,3,1] blur, upfirdn ToRGB
//   skips, no output tanh) whose noise inputs are the encoder features at each resolution,
//   concatenated (`isconcat`): StyledConv = FusedLeakyReLU(cat(modconv(x), w·feature)), so every
//   conv after the first and every ToRGB sees twice the channels.
// The blur kernels are state-dict buffers (`*.kernel`); loading reads them and checks they hold the
// [1,3,3,1] kernel the computation uses.

import FaceRestoreEngine
import FaceRestoreWeights
import Foundation

/// GPEN hyperparameters, detected from the checkpoint's shapes.
public struct GPENConfig: Sendable, Equatable {
    /// Face side (`size`; 256, 512, 1024 or 2048 for the official models).
    public var size: Int = 512
    public var styleDim: Int = 512
    public var mappingLayers: Int = 8         // n_mlp
    public var channelMultiplier: Int = 2
    public var narrow: Double = 1

    public init(size: Int = 512, styleDim: Int = 512, mappingLayers: Int = 8, channelMultiplier: Int = 2, narrow: Double = 1) {
        (self.size, self.styleDim, self.mappingLayers, self.channelMultiplier, self.narrow) =
            (size, styleDim, mappingLayers, channelMultiplier, narrow)
    }

    var logSize: Int { Int(log2(Double(size))) }

    /// `channels[r]` of gpen_model.py: 512·narrow up to 32, then (16384 / r)·cm·narrow.
    func channels(_ r: Int) -> Int { StyleGAN2DecoderSFT.channels(r, multiplier: channelMultiplier, narrow: narrow) }

    /// Reads the configuration from tensor shapes: the size from the ToRGB count, narrow from the
    /// constant input, the multiplier from `ecd0`'s width, the style size and MLP depth from the
    /// mapping network.
    public static func detect(_ sd: StateDict, file: String) throws -> GPENConfig {
        guard case let .gpen(size)? = Architecture.detect(sd), size >= 8 else {
            throw ModelError.wrongArchitecture(file: file, expected: "GPEN (GPEN-BFR-256/512/1024/2048)", in: sd)
        }
        var c = GPENConfig(size: size)
        if let s = sd["generator.style.1.weight"]?.shape, s.count == 2 { c.styleDim = s[0] }
        var n = 0
        while sd["generator.style.\(n + 1).weight"] != nil { n += 1 }
        c.mappingLayers = n
        if let c4 = sd["generator.input.input"]?.shape, c4.count == 4 { c.narrow = Double(c4[1]) / 512 }
        if size >= 64, let first = sd["ecd0.0.0.weight"]?.shape, first.count == 4 {
            c.channelMultiplier = max(1, Int((Double(first[0]) / (16384 / Double(size)) / c.narrow).rounded()))
        } else {
            c.channelMultiplier = 1   // below 64² every width is 512·narrow: the multiplier is unused
        }
        return c
    }
}

/// Reads a registered blur-kernel buffer and checks it is make_kernel([1,3,3,1])·`gain`.
private func checkBlurKernel(_ scope: WeightScope, gain: Float, file: String) throws {
    let stored = try scope.floats("kernel", shape: [4, 4])
    let expected = resampleKernel(gain: gain)
    guard zip(stored, expected).allSatisfy({ abs($0 - $1) <= 1e-6 }) else {
        throw ModelError.invalidInput("\(file): '\(scope.prefix)kernel' is not the [1,3,3,1] blur kernel GPEN uses")
    }
}

/// GPEN `StyledConv` with concatenated noise: lrelu₀.₂(cat(modconv(x), w·feature) + bias)·√2.
struct GPENStyledConv: Sendable {
    let modulatedConv: ModulatedConv2d
    let noiseWeight: Float
    /// FusedLeakyReLU's bias over both halves, pre-multiplied by √2.
    let shift: [Float]

    init(_ scope: WeightScope, in cin: Int, out cout: Int, styleDim: Int, upsample: Bool, resolution: Int,
         context: ComputeContext) throws {
        modulatedConv = try ModulatedConv2d(scope["conv"], variant: .original, in: cin, out: cout, kernel: 3,
                                            styleDim: styleDim, demodulate: true, upsample: upsample,
                                            resolution: resolution, context: context)
        if upsample { try checkBlurKernel(scope["conv"]["blur"], gain: 4, file: scope.loader.file) }
        noiseWeight = try scope["noise"].floats("weight", shape: [1])[0]
        shift = try scope["activate"].floats("bias", shape: [2 * cout]).map { $0 * sqrt2 }
    }

    /// `x` already multiplied by `scales` (the conv's `inputScales`), or nil scales to multiply
    /// here; `outputScale` multiplies the result in the same pass (the next conv's input scales).
    func callAsFunction(_ x: Tensor, style: Tensor, scales: [Float]? = nil, feature: Tensor, outputScale: [Float]? = nil,
                        _ ctx: ComputeContext) throws -> Tensor {
        let (y, demod) = try scales.map { try modulatedConv(scaled: x, scales: $0, ctx) } ?? modulatedConv(x, style: style, ctx)
        let cout = modulatedConv.outChannels
        guard feature.shape == [1, cout, y.shape[2], y.shape[3]] else {
            throw ModelError.invalidInput("GPEN: encoder feature \(feature.shape) does not fit a \(y.shape) style conv")
        }
        let scale = demod!.map { $0 * sqrt2 } + [Float](repeating: noiseWeight * sqrt2, count: cout)
        return try ctx.affineConcat(y, feature, scale: scale, shift: shift, leakyReLUSlope: 0.2, outputScale: outputScale)
    }
}

/// A GPEN FullGenerator with weights loaded strictly from a checkpoint. Immutable and `Sendable`.
public final class GPEN: Sendable {
    public let config: GPENConfig
    /// `ecd0`, `ecd1`, …: one feature map per resolution, size down to 4.
    let encoder: [ConvLayer]
    let finalLinear: Linear
    /// `generator.style.1…n` (after PixelNorm).
    let mapping: [Linear]
    let constantInput: Tensor
    let conv1: GPENStyledConv
    let toRGB1: ToRGB
    let convs: [GPENStyledConv]
    let toRGBs: [ToRGB]

    public init(stateDict sd: StateDict, file: String, context: ComputeContext) throws {
        let c = try GPENConfig.detect(sd, file: file)
        config = c
        let loader = WeightLoader(sd, file: file)
        let root = loader.root
        // Only the concatenating form (`isconcat=True`, every released GPEN) is built.
        let c4 = c.channels(4)
        if let b = sd["generator.conv1.activate.bias"]?.shape, b != [2 * c4] {
            throw ModelError.wrongArchitecture(file: file, expected: "GPEN with concatenated noise (isconcat=True)",
                                               found: "a GPEN whose noise is added (isconcat=False), not supported")
        }
        var enc = [try ConvLayer(root["ecd0"][0], in: 3, out: c.channels(c.size), kernel: 1, resolution: c.size, context: context)]
        var cin = c.channels(c.size)
        for (k, level) in stride(from: c.logSize, to: 2, by: -1).enumerated() {
            let cout = c.channels(1 << (level - 1))
            let scope = root["ecd\(k + 1)"][0]
            try checkBlurKernel(scope[0], gain: 1, file: file)
            enc.append(try ConvLayer(scope, in: cin, out: cout, kernel: 3, downsample: true, resolution: 1 << level,
                                     context: context))
            cin = cout
        }
        encoder = enc
        finalLinear = try root["final_linear"][0].equalLinear(c4 * 16, c.styleDim, postOps: scaledLeakyReLU, context: context)
        let g = root["generator"]
        mapping = try (1...max(1, c.mappingLayers)).map {
            try g["style"][$0].equalLinear(c.styleDim, c.styleDim, lrMul: 0.01, postOps: scaledLeakyReLU, context: context)
        }
        constantInput = Tensor(shape: [1, c4, 4, 4], values: try g["input"].floats("input", shape: [1, c4, 4, 4]))
        conv1 = try GPENStyledConv(g["conv1"], in: c4, out: c4, styleDim: c.styleDim, upsample: false, resolution: 4,
                                   context: context)
        toRGB1 = try ToRGB(g["to_rgb1"], variant: .original, in: 2 * c4, styleDim: c.styleDim, upsample: false, resolution: 4,
                           convKey: "conv", context: context)
        var styled: [GPENStyledConv] = [], rgbs: [ToRGB] = []
        cin = c4
        for (k, level) in (3...c.logSize).enumerated() {
            let r = 1 << level, cout = c.channels(r)
            styled.append(try GPENStyledConv(g["convs"][2 * k], in: 2 * cin, out: cout, styleDim: c.styleDim, upsample: true,
                                             resolution: r, context: context))
            styled.append(try GPENStyledConv(g["convs"][2 * k + 1], in: 2 * cout, out: cout, styleDim: c.styleDim,
                                             upsample: false, resolution: r, context: context))
            try checkBlurKernel(g["to_rgbs"][k]["upsample"], gain: 4, file: file)
            rgbs.append(try ToRGB(g["to_rgbs"][k], variant: .original, in: 2 * cout, styleDim: c.styleDim, upsample: true,
                                  resolution: r, convKey: "conv", context: context))
            cin = cout
        }
        convs = styled
        toRGBs = rgbs
        try loader.finish(deliberatelyUnused: [])
    }

    /// Loads a checkpoint file (a plain state dict, as GPEN saves it; `params_ema`/`params` also accepted).
    public convenience init(path: String, context: ComputeContext) throws {
        let (sd, _) = try WeightsFile.load(path: path)
        try self.init(stateDict: sd, file: path, context: context)
    }

    /// Restores an aligned face: `[1, 3, S, S]` RGB in [−1, 1] → `[1, 3, S, S]` (plain layout, not
    /// clamped: GPEN has no output tanh).
    public func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        let s = config.size
        guard x.shape == [1, 3, s, s] else {
            throw ModelError.invalidInput("GPEN expects a [1, 3, \(s), \(s)] face tensor, got \(x.shape)")
        }
        // Encoder: features[i] is the map at side s / 2^i; the last one is 4×4.
        var features: [Tensor] = []
        var feat = x
        for layer in encoder {
            feat = try layer(feat, ctx)
            features.append(feat)
        }
        let code = try finalLinear(try ctx.reshape(feat, [1, feat.count]), ctx)
        let style = try mapping.reduce(try pixelNorm(code, ctx)) { try $1($0, ctx) }
        // Noise inputs: the encoder features from 4×4 up, one per StyledConv (each used twice
        // above 4×4), as `list(chain(repeat(x, 2) for x in noise))[::-1][1:]`.
        let byResolution = Array(features.reversed())
        var out = try conv1(constantInput, style: style, feature: byResolution[0], ctx)
        var skip = try toRGB1(out, style: style, skip: nil, ctx)
        for k in 0..<toRGBs.count {
            // The second conv's input scaling is folded into the first conv's activation pass (its
            // output has no other consumer).
            let next = try convs[2 * k + 1].modulatedConv.inputScales(style, ctx)
            out = try convs[2 * k](out, style: style, feature: byResolution[k + 1], outputScale: next, ctx)
            out = try convs[2 * k + 1](out, style: style, scales: next, feature: byResolution[k + 1], ctx)
            skip = try toRGBs[k](out, style: style, skip: skip, ctx)
        }
        return try ctx.contiguous(skip)
    }

    /// `PixelNorm`: x · rsqrt(mean(x²) + 1e-8) over the features.
    private func pixelNorm(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        let v = try ctx.array(x)
        let meanSquare = v.reduce(Float(0)) { $0 + $1 * $1 } / Float(v.count)
        let r = 1 / (meanSquare + 1e-8).squareRoot()
        return Tensor(shape: [1, v.count], values: v.map { $0 * r })
    }
}
