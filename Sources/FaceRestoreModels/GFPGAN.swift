// GFP-GAN as `GFPGANer.enhance` runs it, for both architectures: a U-Net degradation remover whose
// multi-resolution features modulate a StyleGAN2 decoder through channel-split SFT. The forward
// pass is shared (gfpgan 1.3.8 `GFPGANv1.forward` and `GFPGANv1Clean.forward`, commit 7552a77);
// each architecture's file builds its own blocks: GFPGANv1Clean.swift, GFPGANv1.swift.
// Inference: `return_rgb=False` (the U-Net `toRGB` heads are never used), `input_is_latent=True`
// (the decoder's `style_mlp` is never used), stored noise unless the caller passes its own
// (`randomize_noise=False`, our deterministic default). Upstream's `weight` argument is ignored.

import FaceRestoreEngine
import FaceRestoreWeights
import Foundation

/// The two GFP-GAN architectures.
public enum GFPGANArchitecture: String, Sendable, Equatable {
    /// `GFPGANv1`, the paper architecture (GFPGAN v1): equalized layers, upfirdn blurs.
    case original = "GFPGANv1"
    /// `GFPGANv1Clean` (GFPGAN v1.2, v1.3, v1.4): plain convs, bilinear resampling.
    case clean = "GFPGANv1Clean"
}

/// GFP-GAN hyperparameters, detected from the checkpoint's shapes.
public struct GFPGANConfig: Sendable, Equatable {
    public var architecture: GFPGANArchitecture = .clean
    public var outSize: Int = 512
    public var styleDim: Int = 512            // num_style_feat
    public var channelMultiplier: Int = 2
    public var narrow: Double = 1
    public var sftHalf: Bool = true
    public var differentW: Bool = true

    public init() {}

    /// Reads the configuration from tensor shapes (architecture from the key names, out size from
    /// the number of ToRGB layers, narrow from the constant input, the multiplier from the last
    /// ToRGB's input channels, the style size from the modulation, sft_half from the condition convs).
    public static func detect(_ sd: StateDict, file: String) throws -> GFPGANConfig {
        var c = GFPGANConfig()
        switch Architecture.detect(sd) {
        case let .gfpganClean(outSize, cm, narrow)?:
            (c.architecture, c.outSize, c.channelMultiplier, c.narrow) = (.clean, outSize, max(1, cm), narrow)
        case let .gfpganV1(outSize, cm, narrow)?:
            (c.architecture, c.outSize, c.channelMultiplier, c.narrow) = (.original, outSize, max(1, cm), narrow)
        case let other:
            throw ModelError.wrongArchitecture(file: file, expected: "GFPGAN (v1, v1.2, v1.3 or v1.4)",
                                               found: other?.description ?? "an unrecognized network")
        }
        if let m = sd["stylegan_decoder.style_conv1.modulated_conv.modulation.weight"]?.shape, m.count == 2 { c.styleDim = m[1] }
        if let lin = sd["final_linear.weight"]?.shape, lin.count == 2 { c.differentW = lin[0] != c.styleDim }
        if let s = sd["condition_scale.0.2.weight"]?.shape, s.count == 4 { c.sftHalf = s[0] == s[1] }
        return c
    }

    /// Channels of the U-Net at a resolution: the decoder's at narrow/2.
    func unetChannels(_ r: Int) -> Int {
        StyleGAN2DecoderSFT.channels(r, multiplier: channelMultiplier, narrow: narrow * 0.5)
    }

    var logSize: Int { Int(log2(Double(outSize))) }
}

/// The blocks of one GFP-GAN network, named as the PyTorch attributes.
struct GFPGANBlocks: Sendable {
    var convBodyFirst: any Layer
    var convBodyDown: [any Layer]
    var finalConv: any Layer
    var finalLinear: Linear
    var convBodyUp: [any Layer]
    var conditions: [ConditionPair]
    var decoder: StyleGAN2DecoderSFT
    /// Key prefixes present in the checkpoint and unused at inference by design.
    var unusedPrefixes: [String]
}

/// What distinguishes the two architectures when their (identically named) module trees are built:
/// the layer each attribute holds. `GFPGANBlocks.build` walks the tree once for both.
struct GFPGANLayerFactory {
    var variant: StyleGAN2Variant
    /// `conv_body_first`: 1×1, 3 → `cout`, at `resolution`.
    var first: (WeightScope, _ cout: Int, _ resolution: Int) throws -> any Layer
    /// `conv_body_down.N` / `conv_body_up.N`: a residual block at input `resolution`.
    var resBlock: (WeightScope, _ cin: Int, _ cout: Int, _ down: Bool, _ resolution: Int) throws -> any Layer
    /// `final_conv`: 3×3 at 4×4.
    var finalConv: (WeightScope, _ cin: Int, _ cout: Int) throws -> any Layer
    var finalLinear: (WeightScope, _ inFeatures: Int, _ outFeatures: Int) throws -> Linear
    /// The weights and bias of a conv of `condition_scale.N` / `condition_shift.N` (conv → lrelu → conv).
    var conditionConv: (WeightScope, _ cin: Int, _ cout: Int) throws -> (weight: [Float], bias: [Float])
    /// The activation between a condition's two convs.
    var conditionActivation: [PostOp]
}

/// `condition_scale.N` and `condition_shift.N` (conv → lrelu → conv each) on the same U-Net
/// feature. Their first convs read the same input, so they run as one conv with 2·channels
/// outputs (scale's first) whose halves feed the second convs as zero-copy views.
struct ConditionPair: Sendable {
    let first: Conv2d
    let scale: Conv2d, shift: Conv2d
    let channels: Int

    init(scale s: WeightScope, shift t: WeightScope, channels c: Int, sftOut: Int, resolution r: Int,
         _ make: GFPGANLayerFactory, context: ComputeContext) throws {
        channels = c
        let (s0, t0) = (try make.conditionConv(s[0], c, c), try make.conditionConv(t[0], c, c))
        first = try Conv2d(weight: s0.weight + t0.weight, shape: [2 * c, c, 3, 3], bias: s0.bias + t0.bias, padding: Padding2D(1),
                           postOps: make.conditionActivation, hint: (r, r), context: context)
        func second(_ w: (weight: [Float], bias: [Float])) throws -> Conv2d {
            try Conv2d(weight: w.weight, shape: [sftOut, c, 3, 3], bias: w.bias, padding: Padding2D(1), hint: (r, r), context: context)
        }
        scale = try second(try make.conditionConv(s[2], c, sftOut))
        shift = try second(try make.conditionConv(t[2], c, sftOut))
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> (scale: Tensor, shift: Tensor) {
        let both = try first(x, ctx)
        return (try scale(try ctx.slice(both, start: 0, length: channels), ctx),
                try shift(try ctx.slice(both, start: channels, length: channels), ctx))
    }
}

extension GFPGANBlocks {
    /// Builds the module tree of `GFPGANv1.__init__` / `GFPGANv1Clean.__init__` (same attributes,
    /// same channel plan) with the layers `make` gives.
    static func build(_ root: WeightScope, _ c: GFPGANConfig, _ make: GFPGANLayerFactory,
                      context: ComputeContext) throws -> GFPGANBlocks {
        var cin = c.unetChannels(c.outSize)
        let first = try make.first(root["conv_body_first"], cin, c.outSize)
        var down: [any Layer] = []
        for (k, level) in stride(from: c.logSize, to: 2, by: -1).enumerated() {
            let cout = c.unetChannels(1 << (level - 1))
            down.append(try make.resBlock(root["conv_body_down"][k], cin, cout, true, 1 << level))
            cin = cout
        }
        let c4 = c.unetChannels(4)
        let finalConv = try make.finalConv(root["final_conv"], cin, c4)
        let numLatent = c.logSize * 2 - 2
        let finalLinear = try make.finalLinear(root["final_linear"], c4 * 16, c.differentW ? numLatent * c.styleDim : c.styleDim)
        var up: [any Layer] = [], conditions: [ConditionPair] = []
        cin = c4
        for (k, level) in (3...c.logSize).enumerated() {
            let r = 1 << level
            let cout = c.unetChannels(r)
            up.append(try make.resBlock(root["conv_body_up"][k], cin, cout, false, r / 2))
            let sftOut = c.sftHalf ? cout : cout * 2
            conditions.append(try ConditionPair(scale: root["condition_scale"][k], shift: root["condition_shift"][k], channels: cout,
                                                sftOut: sftOut, resolution: r, make, context: context))
            cin = cout
        }
        let decoder = try StyleGAN2DecoderSFT(root["stylegan_decoder"], variant: make.variant, outSize: c.outSize,
                                              styleDim: c.styleDim, multiplier: c.channelMultiplier, narrow: c.narrow,
                                              sftHalf: c.sftHalf, context: context)
        return GFPGANBlocks(convBodyFirst: first, convBodyDown: down, finalConv: finalConv, finalLinear: finalLinear,
                            convBodyUp: up, conditions: conditions, decoder: decoder,
                            unusedPrefixes: ["stylegan_decoder.style_mlp.", "toRGB."])
    }
}

/// A GFP-GAN network (either architecture) with weights loaded strictly from a checkpoint.
/// Immutable and `Sendable`: one instance can restore faces from several threads.
public final class GFPGAN: Sendable {
    public let config: GFPGANConfig
    /// Keys present in the checkpoint but unused at inference, by design (style MLP, U-Net toRGB).
    public let unusedKeys: [String]
    let blocks: GFPGANBlocks

    public init(stateDict sd: StateDict, file: String, context: ComputeContext) throws {
        let c = try GFPGANConfig.detect(sd, file: file)
        config = c
        let loader = WeightLoader(sd, file: file)
        switch c.architecture {
        case .clean: blocks = try GFPGANBlocks.clean(loader.root, c, context: context)
        case .original: blocks = try GFPGANBlocks.original(loader.root, c, context: context)
        }
        unusedKeys = try loader.finish(deliberatelyUnused: blocks.unusedPrefixes)
    }

    /// Loads a checkpoint file (`params_ema`, else `params`).
    public convenience init(path: String, context: ComputeContext) throws {
        let (sd, _) = try WeightsFile.load(path: path)
        try self.init(stateDict: sd, file: path, context: context)
    }

    /// Shapes of the decoder's noise inputs, `[1, 1, r, r]` each, in layer order.
    public var noiseShapes: [[Int]] {
        (0..<StyleGAN2DecoderSFT.noiseCount(outSize: config.outSize)).map {
            let r = StyleGAN2DecoderSFT.noiseResolution($0)
            return [1, 1, r, r]
        }
    }

    /// Restores an aligned face: `[1, 3, S, S]` RGB in [−1, 1] → `[1, 3, S, S]` (plain layout).
    /// `noise`: one tensor per `noiseShapes` entry; nil uses the checkpoint's stored noise.
    public func callAsFunction(_ x: Tensor, noise: [Tensor]? = nil, _ ctx: ComputeContext) throws -> Tensor {
        let s = config.outSize
        guard x.shape == [1, 3, s, s] else {
            throw ModelError.invalidInput("GFPGAN expects a [1, 3, \(s), \(s)] face tensor, got \(x.shape)")
        }
        if let noise, noise.map(\.shape) != noiseShapes {
            throw ModelError.invalidInput("GFPGAN expects \(noiseShapes.count) noise tensors shaped \(noiseShapes)")
        }
        let b = blocks
        var feat = try b.convBodyFirst(x, ctx)
        var skips: [Tensor?] = []
        for block in b.convBodyDown {
            feat = try block(feat, ctx)
            skips.insert(feat, at: 0)
        }
        feat = try b.finalConv(feat, ctx)
        let latent = try ctx.array(b.finalLinear(try ctx.reshape(feat, [1, feat.count]), ctx))
        let codes = config.differentW ? latent : (0..<(config.logSize * 2 - 2)).flatMap { _ in latent }
        // Upstream runs the whole U-Net decoder, keeping every level's SFT conditions, before the
        // StyleGAN decoder. Each decoder level needs only its own, so each U-Net level runs when
        // the decoder reaches it: the same operations on the same values, and the conditions (and
        // skip features) of one level at a time in memory (GFPGAN v1.4: 512² and 256² conditions
        // are 96 MB together).
        var level = 0
        return try ctx.contiguous(try b.decoder(latent: codes, conditions: { k in
            guard k < b.convBodyUp.count else { return nil }
            precondition(k == level, "U-Net levels are computed in order")
            feat = try b.convBodyUp[k](try ctx.add(feat, skips[k]!), ctx)
            skips[k] = nil
            level += 1
            return try b.conditions[k](feat, ctx)
        }, noise: noise, ctx))
    }
}
