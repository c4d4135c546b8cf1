// The AWing face-alignment network (FAN with stacked hourglasses, CoordConv and boundary
// channels; Wang et al., "Adaptive Wing Loss", ICCV 2019) as facexlib 0.3.0 builds and runs it
// in eval mode: `facexlib/alignment/awing_arch.py` (AddCoordsTh, CoordConvTh, ConvBlock,
// HourGlass, FAN.forward) and `facexlib/alignment/__init__.py` (`init_alignment_model('awing_fan')`
// = `FAN(num_modules=4, num_landmarks=98)`, `torch.load(path)['state_dict']`, strict). VQFR's
// `vqfr/archs/awing_arch.py` (its LMD metric) is the same network. Written from reading those
// files; no code is copied.
//
// What the reference does, and how it is done here:
//   - CoordConv: the input gets three constant channels, "xx" (varying down the rows: the
//     reference's permute swaps its names), "yy" (along the columns), both i/(n−1)·2−1 in
//     float32, and rr = √(xx² + yy²) / max(rr); the hourglass inputs of modules after the first
//     also get xx and yy masked where the previous module's last heatmap channel (its boundary
//     map), clamped to [0, 1], is above 0.05. The channels are concatenated as the reference
//     does and go through the conv like any other input channel.
//   - ConvBlock is pre-activation (BN → ReLU → conv, three times, outputs concatenated, plus the
//     input or a BN → ReLU → 1×1 conv of it): those BNs precede a ReLU, so each is folded at load
//     into a per-channel scale and shift (torch's own inference form, x·α + β with
//     α = γ/√(var + ε), β = bias − mean·α) applied with the ReLU in one pass. The BNs that follow
//     a conv (`bn1` after the stem's conv, `bn_end*` after `conv_last*`) are folded into it.
//   - `end_relu` is False in the model the metric uses (and in FAN's default); not supported.
//   - Each module's output is `[1, N + 1, 64, 64]`: N landmark heatmaps and the boundary map.

import FaceRestoreEngine
import FaceRestoreWeights

/// An eval-mode `nn.BatchNorm2d` that feeds a ReLU, as torch evaluates it: `x·scale + shift`.
struct BatchNormAffine: Sendable {
    let scale: [Float], shift: [Float]

    init(_ s: WeightScope, channels c: Int) throws {
        let gamma = try s.floats("weight", shape: [c]), beta = try s.floats("bias", shape: [c])
        let mean = try s.floats("running_mean", shape: [c]), variance = try s.floats("running_var", shape: [c])
        if let counter = s.shape("num_batches_tracked") { _ = try s.floats("num_batches_tracked", shape: counter) }
        var scale = [Float](repeating: 0, count: c), shift = scale
        for i in 0..<c {
            let invstd = 1 / (variance[i] + Float(1e-5)).squareRoot()
            scale[i] = gamma[i] * invstd
            shift[i] = beta[i] - mean[i] * scale[i]
        }
        (self.scale, self.shift) = (scale, shift)
    }

    /// `F.relu(bn(x))`.
    func relu(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        try ctx.affine(x, scale: scale, shift: shift, leakyReLUSlope: 0)
    }
}

/// A conv with a bias followed by an eval-mode BatchNorm (and, in FAN, a ReLU), folded at load.
private func convBatchNormReLU(_ s: WeightScope, conv: String, bn: String, _ cin: Int, _ cout: Int, kernel: Int,
                               stride: Int = 1, padding: Int, hint: Int, _ ctx: ComputeContext) throws -> Conv2d {
    let shape = [cout, cin, kernel, kernel]
    let w = try s[conv].floats("weight", shape: shape), b = try s[conv].floats("bias", shape: [cout])
    let norm = s[bn]
    let folded = try foldBatchNorm(weight: w, bias: b, gamma: try norm.floats("weight", shape: [cout]),
                                   beta: try norm.floats("bias", shape: [cout]),
                                   mean: try norm.floats("running_mean", shape: [cout]),
                                   variance: try norm.floats("running_var", shape: [cout]))
    if let counter = norm.shape("num_batches_tracked") { _ = try norm.floats("num_batches_tracked", shape: counter) }
    return try Conv2d(weight: folded.weight, shape: shape, bias: folded.bias, stride: stride, padding: Padding2D(padding),
                      postOps: [.relu], hint: (hint, hint), context: ctx)
}

/// facexlib `ConvBlock(cin, cout)`: three pre-activated 3×3 convs (cout/2, cout/4, cout/4
/// outputs) concatenated, plus the input (or its pre-activated 1×1 projection when cin ≠ cout).
struct FANConvBlock: Layer {
    let bn1: BatchNormAffine, bn2: BatchNormAffine, bn3: BatchNormAffine
    let conv1: Conv2d, conv2: Conv2d, conv3: Conv2d
    let downsample: (norm: BatchNormAffine, conv: Conv2d)?

    /// `size`: the block's input height and width.
    init(_ s: WeightScope, _ cin: Int, _ cout: Int, size: Int, _ ctx: ComputeContext) throws {
        let (half, quarter) = (cout / 2, cout / 4)
        bn1 = try BatchNormAffine(s["bn1"], channels: cin)
        conv1 = try s["conv1"].conv2d(cin, half, kernel: 3, padding: 1, bias: false, hint: (size, size), context: ctx)
        bn2 = try BatchNormAffine(s["bn2"], channels: half)
        conv2 = try s["conv2"].conv2d(half, quarter, kernel: 3, padding: 1, bias: false, hint: (size, size), context: ctx)
        bn3 = try BatchNormAffine(s["bn3"], channels: quarter)
        conv3 = try s["conv3"].conv2d(quarter, quarter, kernel: 3, padding: 1, bias: false, hint: (size, size), context: ctx)
        if cin != cout {
            downsample = (try BatchNormAffine(s["downsample"][0], channels: cin),
                          try s["downsample"][2].conv2d(cin, cout, kernel: 1, padding: 0, bias: false, hint: (size, size),
                                                        context: ctx))
        } else {
            downsample = nil
        }
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        let out1 = try conv1(try bn1.relu(x, ctx), ctx)
        let out2 = try conv2(try bn2.relu(out1, ctx), ctx)
        let out3 = try conv3(try bn3.relu(out2, ctx), ctx)
        let residual = try downsample.map { try $0.conv(try $0.norm.relu(x, ctx), ctx) } ?? x
        return try ctx.add(try ctx.concat([out1, out2, out3]), residual)
    }
}

/// facexlib `HourGlass(1, depth, 256)` after its CoordConv: `b1_L` on the input, and
/// `b3_L(inner(b2_L(avgpool(x))))` upsampled (nearest ×2) and added, where `inner` recurses to
/// level L − 1 and bottoms out in `b2_plus_1`.
struct FANHourGlass: Sendable {
    let depth: Int
    /// Index `level − 1`.
    let b1: [FANConvBlock], b2: [FANConvBlock], b3: [FANConvBlock]
    let b2Plus: FANConvBlock

    init(_ s: WeightScope, depth: Int, size: Int, _ ctx: ComputeContext) throws {
        self.depth = depth
        var b1: [FANConvBlock] = [], b2: [FANConvBlock] = [], b3: [FANConvBlock] = []
        for level in 1...depth {
            let inner = size >> (depth - level)   // the input size at this level
            b1.append(try FANConvBlock(s["b1_\(level)"], 256, 256, size: inner, ctx))
            b2.append(try FANConvBlock(s["b2_\(level)"], 256, 256, size: max(inner / 2, 1), ctx))
            b3.append(try FANConvBlock(s["b3_\(level)"], 256, 256, size: max(inner / 2, 1), ctx))
        }
        b2Plus = try FANConvBlock(s["b2_plus_1"], 256, 256, size: max(size >> depth, 1), ctx)
        (self.b1, self.b2, self.b3) = (b1, b2, b3)
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor { try forward(level: depth, x, ctx) }

    private func forward(level: Int, _ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        let up1 = try b1[level - 1](x, ctx)
        let low1 = try b2[level - 1](try ctx.averagePool2d(x, kernel: 2), ctx)
        let low2 = level > 1 ? try forward(level: level - 1, low1, ctx) : try b2Plus(low1, ctx)
        let low3 = try b3[level - 1](low2, ctx)
        return try ctx.addNearestUpsampled(up1, low3)
    }
}

/// One stacked module: CoordConv (1×1) → hourglass → `top_m_i` → `conv_last_i` + `bn_end_i` + ReLU
/// → heatmaps `l_i`; all but the last feed `bl_i(features) + al_i(heatmaps)` forward.
struct FANStage: Sendable {
    let coordConv: Conv2d
    let hourglass: FANHourGlass
    let top: FANConvBlock
    let last: Conv2d
    let head: Conv2d
    let next: (features: Conv2d, heatmaps: Conv2d)?
}

/// The AWing FAN landmark network (facexlib/VQFR `FAN`, eval mode), loaded strictly from the
/// official state-dict layout (`alignment_WFLW_4HG.pth`: `{'state_dict': …}`; a `module.` prefix
/// is stripped by the loader). The number of stacked modules and of landmarks are read from the
/// file (the official model: 4 and 98).
public final class AWingFAN: Sendable {
    /// Stacked hourglass modules.
    public let modules: Int
    /// Landmark heatmaps per module output (the output has one more channel: the boundary map).
    public let landmarks: Int
    /// The input size the network is built for (`get_landmarks` resizes to it).
    public static let inputSize = 256
    /// The heatmap size.
    public static let heatmapSize = 64

    let stem: Conv2d
    let conv2: FANConvBlock, conv3: FANConvBlock, conv4: FANConvBlock
    let stages: [FANStage]
    /// xx, yy, rr at 256² (stem) and 64² (hourglasses), `[1, 3, n, n]`.
    let coords256: Tensor, coords64: Tensor
    /// xx and yy at 64², for the boundary channels.
    let xx64: [Float], yy64: [Float]

    public init(stateDict sd: StateDict, file: String, context ctx: ComputeContext) throws {
        guard sd["conv1.conv.weight"] != nil, sd["m0.coordconv.conv.weight"] != nil, let head = sd["l0.weight"]?.shape,
              head.count == 4, head[0] >= 2, head[0] <= 1025 else {
            throw ModelError.wrongArchitecture(file: file, expected: "an AWing FAN landmark network", in: sd)
        }
        var count = 0
        while count < 16, sd["m\(count).coordconv.conv.weight"] != nil { count += 1 }
        modules = count
        landmarks = head[0] - 1
        let n = landmarks + 1
        let loader = WeightLoader(sd, file: file)
        let root = loader.root
        stem = try convBatchNormReLU(root, conv: "conv1.conv", bn: "bn1", 6, 64, kernel: 7, stride: 2, padding: 3, hint: 256, ctx)
        conv2 = try FANConvBlock(root["conv2"], 64, 128, size: 128, ctx)
        conv3 = try FANConvBlock(root["conv3"], 128, 128, size: 64, ctx)
        conv4 = try FANConvBlock(root["conv4"], 128, 256, size: 64, ctx)
        var stages: [FANStage] = []
        for i in 0..<count {
            let m = root["m\(i)"]
            let coordConv = try m["coordconv"]["conv"].conv2d(i == 0 ? 259 : 261, 256, kernel: 1, padding: 0, context: ctx)
            let hourglass = try FANHourGlass(m, depth: 4, size: 64, ctx)
            let top = try FANConvBlock(root["top_m_\(i)"], 256, 256, size: 64, ctx)
            let last = try convBatchNormReLU(root, conv: "conv_last\(i)", bn: "bn_end\(i)", 256, 256, kernel: 1, padding: 0,
                                             hint: 64, ctx)
            let heads = try root["l\(i)"].conv2d(256, n, kernel: 1, padding: 0, context: ctx)
            let next = i < count - 1 ? (try root["bl\(i)"].conv2d(256, 256, kernel: 1, padding: 0, context: ctx),
                                        try root["al\(i)"].conv2d(n, 256, kernel: 1, padding: 0, context: ctx)) : nil
            stages.append(FANStage(coordConv: coordConv, hourglass: hourglass, top: top, last: last, head: heads, next: next))
        }
        self.stages = stages
        try loader.finish(deliberatelyUnused: [])
        let c256 = Self.coordinates(256), c64 = Self.coordinates(64)
        coords256 = Tensor(shape: [1, 3, 256, 256], values: c256.xx + c256.yy + c256.rr)
        coords64 = Tensor(shape: [1, 3, 64, 64], values: c64.xx + c64.yy + c64.rr)
        (xx64, yy64) = (c64.xx, c64.yy)
    }

    /// Loads facexlib's `alignment_WFLW_4HG.pth` (or the same layout in any format the loader reads).
    public convenience init(path: String, verifyChecksums: Bool = true, context: ComputeContext) throws {
        let (sd, _) = try WeightsFile.load(path: path, verifyChecksums: verifyChecksums)
        try self.init(stateDict: sd, file: path, context: context)
    }

    /// AddCoordsTh's channels for an n × n input, in float32 as torch computes them:
    /// xx[i][j] = i/(n−1)·2 − 1, yy[i][j] = j/(n−1)·2 − 1, rr = √(xx² + yy²) / max(rr).
    static func coordinates(_ n: Int) -> (xx: [Float], yy: [Float], rr: [Float]) {
        let ramp = (0..<n).map { Float($0) / Float(n - 1) * 2 - 1 }
        var xx = [Float](repeating: 0, count: n * n), yy = xx, rr = xx
        for i in 0..<n {
            for j in 0..<n {
                xx[i * n + j] = ramp[i]
                yy[i * n + j] = ramp[j]
                rr[i * n + j] = (ramp[i] * ramp[i] + ramp[j] * ramp[j]).squareRoot()
            }
        }
        let top = rr.max() ?? 1
        return (xx, yy, rr.map { $0 / top })
    }

    /// Every module's output `[1, landmarks + 1, 64, 64]` (plain) for `x`: `[1, 3, 256, 256]` RGB
    /// in [0, 1] (FAN.forward's `outputs`).
    public func outputs(_ x: Tensor, _ ctx: ComputeContext) throws -> [Tensor] {
        let size = Self.inputSize
        guard x.rank == 4, x.shape == [1, 3, size, size] else {
            throw ModelError.invalidInput("the AWing FAN expects a [1, 3, \(size), \(size)] RGB tensor, got \(x.shape)")
        }
        let n = landmarks + 1
        var h = try stem(try ctx.concat([try ctx.contiguous(x), coords256]), ctx)
        h = try conv4(try conv3(try ctx.averagePool2d(try conv2(h, ctx), kernel: 2), ctx), ctx)
        var previous = h
        var outputs: [Tensor] = []
        for stage in stages {
            var parts = [previous, coords64]
            if let heat = outputs.last {
                // The boundary channels: xx and yy where clamp(heat[:, -1], 0, 1) > 0.05.
                let boundary = try ctx.array(try ctx.slice(try ctx.contiguous(heat), start: n - 1, length: 1))
                let cells = xx64.count
                guard boundary.count == cells else {
                    throw ModelError.invalidInput("the AWing FAN's boundary map has \(boundary.count) values, expected \(cells)")
                }
                var masked = [Float](repeating: 0, count: 2 * cells)
                let threshold = Float(0.05)
                for i in 0..<cells where min(max(boundary[i], 0), 1) > threshold {
                    masked[i] = xx64[i]
                    masked[cells + i] = yy64[i]
                }
                parts.append(Tensor(shape: [1, 2, 64, 64], values: masked))
            }
            let hg = try stage.hourglass(try stage.coordConv(try ctx.concat(parts), ctx), ctx)
            let features = try stage.last(try stage.top(hg, ctx), ctx)
            let heat = try ctx.contiguous(try stage.head(features, ctx))
            outputs.append(heat)
            if let next = stage.next {
                previous = try ctx.add(try ctx.add(previous, try next.features(features, ctx)), try next.heatmaps(heat, ctx))
            }
        }
        return outputs
    }
}
