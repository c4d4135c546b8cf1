// ParseNet face parsing as facexlib 0.3.0 builds it for GFPGAN's paste-back
// (`facexlib/parsing/parsenet.py`, `ParseNet(in_size=512, out_size=512, parsing_ch=19)`):
// reflection-padded unpadded convs, eval BatchNorm (folded at load), LeakyReLU 0.2, four
// down-sampling residual blocks (64→128→256→256→256), ten body blocks at 256 with a long skip,
// four up-sampling blocks (nearest ×2) back to 64, and the 19-class mask head. The image head
// (`out_img_conv`) is loaded but not run: the paste-back only needs the mask.

import FaceRestoreEngine
import FaceRestoreWeights

/// facexlib `ConvLayer`: [nearest ×2] → ReflectionPad(1) → conv (stride 2 when down) → [BN] → [lrelu].
struct ParseConvLayer: Layer {
    enum Scale { case none, down, up }
    let scale: Scale
    let conv: Conv2d

    /// `size`: the layer's input resolution in the 512² network (before upsampling).
    init(_ s: WeightScope, _ cin: Int, _ cout: Int, scale: Scale, batchNorm: Bool, leaky: Bool, size: Int, _ ctx: ComputeContext) throws {
        self.scale = scale
        let stride = scale == .down ? 2 : 1
        let post: [PostOp] = leaky ? [.leakyReLU(0.2)] : []
        let padded = (scale == .up ? 2 * size : size) + 2
        conv = batchNorm
            ? try s.convBatchNorm(conv: "conv2d", bn: "norm.norm", cin, cout, kernel: 3, stride: stride, padding: 0, postOps: post,
                                  hint: (padded, padded), context: ctx)
            : try s["conv2d"].conv2d(cin, cout, kernel: 3, stride: stride, padding: 0, postOps: post, hint: (padded, padded), context: ctx)
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        try conv(try ctx.reflectionPad2d(x, Padding2D(1), upsample: scale == .up ? 2 : 1), ctx)
    }
}

/// facexlib parsing `ResidualBlock` (BN, LeakyReLU): conv1 → conv2 plus a shortcut conv when
/// the scale or width changes.
struct ParseResidualBlock: Layer {
    let shortcut: ParseConvLayer?
    let conv1: ParseConvLayer, conv2: ParseConvLayer

    init(_ s: WeightScope, _ cin: Int, _ cout: Int, scale: ParseConvLayer.Scale, size: Int, _ ctx: ComputeContext) throws {
        shortcut = scale == .none && cin == cout
            ? nil : try ParseConvLayer(s["shortcut_func"], cin, cout, scale: scale, batchNorm: false, leaky: false, size: size, ctx)
        conv1 = try ParseConvLayer(s["conv1"], cin, cout, scale: scale == .up ? .up : .none, batchNorm: true, leaky: true,
                                   size: size, ctx)
        conv2 = try ParseConvLayer(s["conv2"], cout, cout, scale: scale == .down ? .down : .none, batchNorm: true, leaky: false,
                                   size: scale == .up ? 2 * size : size, ctx)
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        let identity = try shortcut.map { try $0(x, ctx) } ?? x
        return try ctx.add(identity, try conv2(try conv1(x, ctx), ctx))
    }
}

public final class ParseNet: Sendable {
    public static let classes = 19
    let encoder: Sequential, body: Sequential, decoder: Sequential
    let maskHead: ParseConvLayer

    public init(stateDict sd: StateDict, file: String, context ctx: ComputeContext) throws {
        guard Architecture.detect(sd) == .parseNet else {
            throw ModelError.wrongArchitecture(file: file, expected: "ParseNet face parsing", in: sd)
        }
        let loader = WeightLoader(sd, file: file)
        let root = loader.root
        // Layer sizes are those of a 512² input (the size used for the weight layouts; any size runs).
        var enc: [any Layer] = [try ParseConvLayer(root["encoder"][0], 3, 64, scale: .none, batchNorm: false, leaky: false,
                                                   size: 512, ctx)]
        for (i, (cin, cout)) in [(64, 128), (128, 256), (256, 256), (256, 256)].enumerated() {
            enc.append(try ParseResidualBlock(root["encoder"][i + 1], cin, cout, scale: .down, size: 512 >> i, ctx))
        }
        encoder = Sequential(enc)
        body = Sequential(try (0..<10).map { try ParseResidualBlock(root["body"][$0], 256, 256, scale: .none, size: 32, ctx) })
        decoder = Sequential(try [(256, 256), (256, 256), (256, 128), (128, 64)].enumerated().map { i, c in
            try ParseResidualBlock(root["decoder"][i], c.0, c.1, scale: .up, size: 32 << i, ctx)
        })
        maskHead = try ParseConvLayer(root["out_mask_conv"], 64, Self.classes, scale: .none, batchNorm: false, leaky: false,
                                      size: 512, ctx)
        try loader.finish(deliberatelyUnused: ["out_img_conv."])
    }

    /// Loads facexlib's `parsing_parsenet.pth`.
    public convenience init(path: String, context: ComputeContext) throws {
        let (sd, _) = try WeightsFile.load(path: path)
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
