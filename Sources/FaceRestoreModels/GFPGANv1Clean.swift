// GFPGANv1Clean: the U-Net degradation remover whose features modulate a StyleGAN2 decoder
// through channel-split SFT (GFPGAN v1.2, v1.3, v1.4).
// Ports gfpgan 1.3.8 `gfpgan/archs/gfpganv1_clean_arch.py` (ResBlock, GFPGANv1Clean), commit 7552a77.
// Inference as `GFPGANer.enhance` runs it: `return_rgb=False` (the U-Net `toRGB` heads are never
// used), `input_is_latent=True` (the decoder's `style_mlp` is never used), stored noise
// (`randomize_noise=False`, our deterministic default). Upstream's `weight` argument is ignored.

import FaceRestoreEngine
import FaceRestoreWeights
import Foundation

/// GFPGANv1Clean hyperparameters, detected from the checkpoint's shapes.
public struct GFPGANCleanConfig: Sendable, Equatable {
    public var outSize: Int = 512
    public var styleDim: Int = 512            // num_style_feat
    public var channelMultiplier: Int = 2
    public var narrow: Double = 1
    public var sftHalf: Bool = true
    public var differentW: Bool = true

    public init() {}

    /// Reads the configuration from tensor shapes (out size from the number of ToRGB layers,
    /// narrow from the constant input, the multiplier from the last ToRGB's input channels,
    /// the style size from the modulation, sft_half from the condition convs).
    public static func detect(_ sd: StateDict, file: String) throws -> GFPGANCleanConfig {
        guard case let .gfpganClean(outSize, cm, narrow)? = Architecture.detect(sd) else {
            throw ModelError.wrongArchitecture(file: file, expected: "GFPGANv1Clean (GFPGAN v1.2/v1.3/v1.4)",
                                               found: Architecture.detect(sd)?.description ?? "an unrecognized network")
        }
        var c = GFPGANCleanConfig()
        c.outSize = outSize
        c.channelMultiplier = max(1, cm)
        c.narrow = narrow
        if let m = sd["stylegan_decoder.style_conv1.modulated_conv.modulation.weight"]?.shape, m.count == 2 { c.styleDim = m[1] }
        if let lin = sd["final_linear.weight"]?.shape, lin.count == 2 { c.differentW = lin[0] != c.styleDim }
        if let s = sd["condition_scale.0.2.weight"]?.shape, s.count == 4 { c.sftHalf = s[0] == s[1] }
        return c
    }
}

/// The U-Net's `ResBlock`: lrelu(conv1) → bilinear resample → lrelu(conv2), plus a resampled 1×1 skip.
struct ResBlockClean: Sendable {
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

/// GFPGANv1Clean with weights loaded strictly from a checkpoint. Immutable and `Sendable`: one
/// instance can restore faces from several threads.
public final class GFPGANv1Clean: Sendable {
    public let config: GFPGANCleanConfig
    /// Keys present in the checkpoint but unused at inference, by design (style MLP, U-Net toRGB).
    public let unusedKeys: [String]
    let convBodyFirst: Conv2d
    let convBodyDown: [ResBlockClean]
    let finalConv: Conv2d
    let convBodyUp: [ResBlockClean]
    let finalLinear: Linear
    let conditionScale: [(Conv2d, Conv2d)]
    let conditionShift: [(Conv2d, Conv2d)]
    let decoder: StyleGAN2DecoderCSFT

    /// U-Net channels at a resolution (`channels` in GFPGANv1Clean: the decoder's at narrow/2).
    static func unetChannels(_ r: Int, _ c: GFPGANCleanConfig) -> Int {
        StyleGAN2DecoderCSFT.channels(r, multiplier: c.channelMultiplier, narrow: c.narrow * 0.5)
    }

    public init(stateDict sd: StateDict, file: String, context: ComputeContext) throws {
        let c = try GFPGANCleanConfig.detect(sd, file: file)
        config = c
        let loader = WeightLoader(sd, file: file)
        let root = loader.root
        let logSize = Int(log2(Double(c.outSize)))
        var cin = Self.unetChannels(c.outSize, c)
        convBodyFirst = try root["conv_body_first"].conv2d(3, cin, kernel: 1, postOps: [.leakyReLU(0.2)],
                                                           hint: (c.outSize, c.outSize), context: context)
        var down: [ResBlockClean] = []
        for (k, level) in stride(from: logSize, to: 2, by: -1).enumerated() {
            let cout = Self.unetChannels(1 << (level - 1), c)
            down.append(try ResBlockClean(root["conv_body_down"][k], in: cin, out: cout, down: true, resolution: 1 << level, context: context))
            cin = cout
        }
        convBodyDown = down
        let c4 = Self.unetChannels(4, c)
        finalConv = try root["final_conv"].conv2d(cin, c4, kernel: 3, postOps: [.leakyReLU(0.2)], hint: (4, 4), context: context)
        let numLatent = logSize * 2 - 2
        finalLinear = try root["final_linear"].linear(c4 * 16, c.differentW ? numLatent * c.styleDim : c.styleDim, context: context)
        var up: [ResBlockClean] = [], scales: [(Conv2d, Conv2d)] = [], shifts: [(Conv2d, Conv2d)] = []
        cin = c4
        for (k, level) in (3...logSize).enumerated() {
            let r = 1 << level
            let cout = Self.unetChannels(r, c)
            up.append(try ResBlockClean(root["conv_body_up"][k], in: cin, out: cout, down: false, resolution: r / 2, context: context))
            let sftOut = c.sftHalf ? cout : cout * 2
            func condition(_ s: WeightScope) throws -> (Conv2d, Conv2d) {
                (try s[0].conv2d(cout, cout, kernel: 3, postOps: [.leakyReLU(0.2)], hint: (r, r), context: context),
                 try s[2].conv2d(cout, sftOut, kernel: 3, hint: (r, r), context: context))
            }
            scales.append(try condition(root["condition_scale"][k]))
            shifts.append(try condition(root["condition_shift"][k]))
            cin = cout
        }
        convBodyUp = up
        conditionScale = scales
        conditionShift = shifts
        decoder = try StyleGAN2DecoderCSFT(root["stylegan_decoder"], outSize: c.outSize, styleDim: c.styleDim,
                                           multiplier: c.channelMultiplier, narrow: c.narrow, sftHalf: c.sftHalf, context: context)
        unusedKeys = try loader.finish(deliberatelyUnused: ["stylegan_decoder.style_mlp.", "toRGB."])
    }

    /// Loads a checkpoint file (`params_ema`, else `params`).
    public convenience init(path: String, context: ComputeContext) throws {
        let (sd, _) = try WeightsFile.load(path: path)
        try self.init(stateDict: sd, file: path, context: context)
    }

    /// Restores an aligned face: `[1, 3, S, S]` RGB in [−1, 1] → `[1, 3, S, S]` (plain layout).
    public func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        let s = config.outSize
        guard x.shape == [1, 3, s, s] else {
            throw ModelError.invalidInput("GFPGAN expects a [1, 3, \(s), \(s)] face tensor, got \(x.shape)")
        }
        var feat = try convBodyFirst(x, ctx)
        var skips: [Tensor] = []
        for block in convBodyDown {
            feat = try block(feat, ctx)
            skips.insert(feat, at: 0)
        }
        feat = try finalConv(feat, ctx)
        let latent = try ctx.array(finalLinear(try ctx.reshape(feat, [1, feat.count]), ctx))
        let codes = config.differentW ? latent : (0..<(decoder.toRGBs.count * 2 + 2)).flatMap { _ in latent }
        var conditions: [Tensor] = []
        for k in 0..<convBodyUp.count {
            feat = try convBodyUp[k](try ctx.add(feat, skips[k]), ctx)
            conditions.append(try conditionScale[k].1(try conditionScale[k].0(feat, ctx), ctx))
            conditions.append(try conditionShift[k].1(try conditionShift[k].0(feat, ctx), ctx))
        }
        return try ctx.contiguous(try decoder(latent: codes, conditions: conditions, ctx))
    }
}
