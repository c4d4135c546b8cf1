// ParseNet face parsing as facexlib 0.3.0 builds it for GFPGAN's paste-back
// (`facexlib/parsing/parsenet.py`, `ParseNet(in_size=512, out_size=512, parsing_ch=19)`):
// reflection-padded unpadded convs, eval BatchNorm (folded at load), LeakyReLU 0.2, four
// down-sampling residual blocks (64→128→256→256→256), ten body blocks at 256 with a long skip,
// four up-sampling blocks (nearest ×2) back to 64, and the 19-class mask head. The image head
// (`out_img_conv`) is loaded but not run: the paste-back only needs the mask.

import FaceRestoreEngine
import FaceRestoreWeights

/// The weights of a facexlib `ConvLayer`'s 3×3 conv at `s` (its BatchNorm folded in, if any).
private func parseConvWeights(_ s: WeightScope, _ cin: Int, _ cout: Int, batchNorm: Bool) throws -> (weight: [Float], bias: [Float]) {
    let shape = [cout, cin, 3, 3]
    if batchNorm { return try s.foldedConvBatchNorm(conv: "conv2d", bn: "norm.norm", shape: shape) }
    return (try s["conv2d"].floats("weight", shape: shape), try s["conv2d"].floats("bias", shape: [cout]))
}

/// An unpadded 3×3 conv for inputs the caller reflection-pads; `padded`: the padded input size in
/// the 512² network.
private func unpaddedConv(_ w: (weight: [Float], bias: [Float]), cin: Int, stride: Int = 1, padded: Int,
                          _ ctx: ComputeContext) throws -> Conv2d {
    try Conv2d(weight: w.weight, shape: [w.bias.count, cin, 3, 3], bias: w.bias, stride: stride, padding: Padding2D(0),
               hint: (padded, padded), context: ctx)
}

/// facexlib `ConvLayer(cin, cout, 3)` with neither norm nor activation: ReflectionPad(1) → conv.
struct ParsePaddedConv: Layer {
    let conv: Conv2d

    init(_ s: WeightScope, _ cin: Int, _ cout: Int, size: Int, _ ctx: ComputeContext) throws {
        conv = try unpaddedConv(try parseConvWeights(s, cin, cout, batchNorm: false), cin: cin, padded: size + 2, ctx)
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        try conv(reflectionPadded: x, ctx)
    }
}

/// facexlib parsing `ResidualBlock` (BN, LeakyReLU 0.2): `shortcut(x) + conv2(conv1(x))`, each
/// `ConvLayer` being [nearest ×2] → ReflectionPad(1) → conv (stride 2 for conv2 when down) → [BN]
/// → [lrelu, conv1 only]. Arranged so that no work is repeated and, on the fused Winograd kernel
/// (stride 1 and 2), no padded or upsampled tensor is made:
/// - down: the shortcut (stride 2) and conv1 each read the input through the reflection padding;
/// - up: the shortcut and conv1 read the same upsampled, padded input, so they run as one conv
///   with 2·cout outputs (the shortcut's first) whose halves are taken without a copy;
/// - conv1's LeakyReLU is applied as conv2 reads its input (elsewhere, while it is padded).
struct ParseResidualBlock: Layer {
    enum Scale { case none, down, up }
    /// How the block's identity term is made.
    enum Shortcut {
        /// The input itself (unscaled blocks keep their width).
        case input
        /// A stride-2 conv on conv1's padded input.
        case strided(Conv2d)
        /// The first `channels` outputs of conv1, which holds the shortcut's weights first.
        case firstHalf(channels: Int)
    }
    let shortcut: Shortcut
    let conv1: Conv2d, conv2: Conv2d

    /// `size`: the block's input resolution in the 512² network.
    init(_ s: WeightScope, _ cin: Int, _ cout: Int, scale: Scale, size: Int, _ ctx: ComputeContext) throws {
        precondition(scale != .none || cin == cout, "ParseNet's unscaled blocks keep their width")
        let c1 = try parseConvWeights(s["conv1"], cin, cout, batchNorm: true)
        let c2 = try parseConvWeights(s["conv2"], cout, cout, batchNorm: true)
        switch scale {
        case .none:
            shortcut = .input
            conv1 = try unpaddedConv(c1, cin: cin, padded: size + 2, ctx)
            conv2 = try unpaddedConv(c2, cin: cout, padded: size + 2, ctx)
        case .down:
            shortcut = .strided(try unpaddedConv(try parseConvWeights(s["shortcut_func"], cin, cout, batchNorm: false), cin: cin,
                                                 stride: 2, padded: size + 2, ctx))
            conv1 = try unpaddedConv(c1, cin: cin, padded: size + 2, ctx)
            conv2 = try unpaddedConv(c2, cin: cout, stride: 2, padded: size + 2, ctx)
        case .up:
            let sc = try parseConvWeights(s["shortcut_func"], cin, cout, batchNorm: false)
            shortcut = .firstHalf(channels: cout)
            conv1 = try unpaddedConv((sc.weight + c1.weight, sc.bias + c1.bias), cin: cin, padded: 2 * size + 2, ctx)
            conv2 = try unpaddedConv(c2, cin: cout, padded: 2 * size + 2, ctx)
        }
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        let identity: Tensor, h: Tensor
        switch shortcut {
        case .input:
            (identity, h) = (x, try conv1(reflectionPadded: x, ctx))
        case .strided(let conv):
            (identity, h) = (try conv(reflectionPadded: x, ctx), try conv1(reflectionPadded: x, ctx))
        case .firstHalf(let c):
            let both = try conv1(reflectionPadded: x, upsample: 2, ctx)
            (identity, h) = (try ctx.slice(both, start: 0, length: c), try ctx.slice(both, start: c, length: c))
        }
        return try conv2(reflectionPadded: h, leakyReLUSlope: 0.2, adding: identity, ctx)
    }
}

public final class ParseNet: Sendable {
    public static let classes = 19
    let encoder: Sequential, body: Sequential, decoder: Sequential
    let maskHead: ParsePaddedConv

    public init(stateDict sd: StateDict, file: String, context ctx: ComputeContext) throws {
        guard Architecture.detect(sd) == .parseNet else {
            throw ModelError.wrongArchitecture(file: file, expected: "ParseNet face parsing", in: sd)
        }
        let loader = WeightLoader(sd, file: file)
        let root = loader.root
        // Layer sizes are those of a 512² input (the size used for the weight layouts; any size runs).
        var enc: [any Layer] = [try ParsePaddedConv(root["encoder"][0], 3, 64, size: 512, ctx)]
        for (i, (cin, cout)) in [(64, 128), (128, 256), (256, 256), (256, 256)].enumerated() {
            enc.append(try ParseResidualBlock(root["encoder"][i + 1], cin, cout, scale: .down, size: 512 >> i, ctx))
        }
        encoder = Sequential(enc)
        body = Sequential(try (0..<10).map { try ParseResidualBlock(root["body"][$0], 256, 256, scale: .none, size: 32, ctx) })
        decoder = Sequential(try [(256, 256), (256, 256), (256, 128), (128, 64)].enumerated().map { i, c in
            try ParseResidualBlock(root["decoder"][i], c.0, c.1, scale: .up, size: 32 << i, ctx)
        })
        maskHead = try ParsePaddedConv(root["out_mask_conv"], 64, Self.classes, size: 512, ctx)
        try loader.finish(deliberatelyUnused: ["out_img_conv."])
    }

    /// Loads facexlib's `parsing_parsenet.pth`.
    public convenience init(path: String, verifyChecksums: Bool = true, context: ComputeContext) throws {
        let (sd, _) = try WeightsFile.load(path: path, verifyChecksums: verifyChecksums)
        try self.init(stateDict: sd, file: path, context: context)
    }

    /// The 19-class logits for `[1, 3, 512, 512]` RGB in [−1, 1] (plain `[1, 19, H, W]`).
    public func logits(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        guard x.rank == 4, x.shape[0] == 1, x.shape[1] == 3, x.shape[2] % 16 == 0, x.shape[3] % 16 == 0 else {
            throw ModelError.invalidInput("ParseNet expects a [1, 3, H, W] face tensor with H, W multiples of 16, got \(x.shape)")
        }
        let feat = try encoder(x, ctx)
        let y = try decoder(try ctx.add(feat, try body(feat, ctx)), ctx)
        return try ctx.contiguous(try maskHead(y, ctx))
    }

    /// Per-pixel class labels (`logits.argmax(dim=1)`; the first maximum wins, as torch).
    public func labels(_ x: Tensor, _ ctx: ComputeContext) throws -> [UInt8] {
        let l = try logits(x, ctx)
        let (h, w) = (l.shape[2], l.shape[3])
        let n = h * w
        return try ctx.array(l).withUnsafeBufferPointer { v in
            (0..<n).map { i in
                var best = 0
                var bestValue = v[i]
                for c in 1..<Self.classes where v[c * n + i] > bestValue {
                    best = c
                    bestValue = v[c * n + i]
                }
                return UInt8(best)
            }
        }
    }
}
