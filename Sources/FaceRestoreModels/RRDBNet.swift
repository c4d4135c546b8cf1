// Real-ESRGAN's RRDBNet (ESRGAN generator) as basicsr 1.4.2 builds it
// (`basicsr/archs/rrdbnet_arch.py`: ResidualDenseBlock, RRDB, RRDBNet; pixel_unshuffle from
// `basicsr/archs/arch_util.py`), for RealESRGAN_x4plus (scale 4) and RealESRGAN_x2plus (scale 2:
// the input is pixel-unshuffled by 2, so the body runs at half resolution). LeakyReLU 0.2 is
// fused into each conv; the residual scalings are 0.2. The ncnn export of the same network
// (`realesrgan-x4plus.param/.bin`) maps onto these keys in `stateDict(fromNCNN:)`.

import FaceRestoreEngine
import FaceRestoreWeights

/// basicsr `ResidualDenseBlock`: five 3×3 convs, each seeing the block input and all earlier
/// outputs; `x + 0.2·conv5(…)`.
struct ResidualDenseBlock: Layer {
    let convs: [Conv2d]

    init(_ s: WeightScope, features f: Int, grow g: Int, _ ctx: ComputeContext) throws {
        convs = try (0..<5).map { i in
            try s["conv\(i + 1)"].conv2d(f + i * g, i == 4 ? f : g, kernel: 3,
                                         postOps: i == 4 ? [] : [.leakyReLU(0.2)], hint: (200, 200),
                                         context: ctx)
        }
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        try callAsFunction(try ChannelStack(x, capacity: capacity, ctx), into: nil, ctx)
    }

    /// Channels of the block's feature stack: the input and the four growth outputs.
    var capacity: Int { convs[4].inChannels }

    /// The block on an input already at the head of `features` (a stack with `capacity`
    /// channels), its output `x + 0.2·x5` written into `destination` when given (the head of the
    /// next block's stack), so that no block input is ever copied.
    func callAsFunction(_ stack: ChannelStack, into destination: Tensor?, _ ctx: ComputeContext) throws -> Tensor {
        // The dense connections: each conv's output goes straight into the next channel range.
        var features = stack
        for conv in convs.dropLast() { try features.append(conv, ctx) }
        return try convs[4](try features.tensor(ctx), scale: 0.2, adding: features.head, into: destination, ctx)
    }
}

/// basicsr `RRDB`: three dense blocks, `x + 0.2·rdb3(rdb2(rdb1(x)))`.
struct RRDB: Layer {
    let blocks: [ResidualDenseBlock]

    init(_ s: WeightScope, features f: Int, grow g: Int, _ ctx: ComputeContext) throws {
        blocks = try (1...3).map { try ResidualDenseBlock(s["rdb\($0)"], features: f, grow: g, ctx) }
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        try callAsFunction(try ChannelStack(x, capacity: blocks[0].capacity, ctx), into: nil, ctx)
    }

    /// The RRDB on an input at the head of `stack` (a stack for its first dense block), its output
    /// `x + 0.2·rdb3(…)` written into `destination` when given. Each dense block writes its
    /// output straight into the head of the next one's stack.
    func callAsFunction(_ stack: ChannelStack, into destination: Tensor?, _ ctx: ComputeContext) throws -> Tensor {
        var current = stack
        var y = stack.head
        for (i, b) in blocks.enumerated() {
            if i + 1 < blocks.count, let (next, head) = ChannelStack.awaiting(y.shape, capacity: blocks[i + 1].capacity) {
                _ = try b(current, into: head, ctx)
                current = next
            } else {
                y = try b(current, into: nil, ctx)
                if i + 1 < blocks.count { current = try ChannelStack(y, capacity: blocks[i + 1].capacity, ctx) }
            }
        }
        return try ctx.scaledAdd(y, scale: 0.2, stack.head, into: destination)
    }
}

public final class RRDBNet: Sendable {
    /// Output size / input size (1, 2 or 4).
    public let scale: Int
    public let features: Int
    public let blockCount: Int
    let convFirst: Conv2d
    let body: [RRDB]
    let convBody: Conv2d, convUp1: Conv2d, convUp2: Conv2d, convHR: Conv2d, convLast: Conv2d

    public init(stateDict sd: StateDict, file: String, context ctx: ComputeContext) throws {
        guard case .rrdbNet(let scale, let f, let blocks)? = Architecture.detect(sd), [1, 2, 4].contains(scale) else {
            throw ModelError.wrongArchitecture(file: file, expected: "a Real-ESRGAN RRDBNet", in: sd)
        }
        self.scale = scale
        features = f
        blockCount = blocks
        let loader = WeightLoader(sd, file: file)
        let root = loader.root
        let inChannels = 3 * [4: 1, 2: 4, 1: 16][scale]!
        let grow = root["body.0.rdb1.conv1"].shape("weight")?.first ?? 32
        let lrelu: [PostOp] = [.leakyReLU(0.2)]
        convFirst = try root["conv_first"].conv2d(inChannels, f, kernel: 3, hint: (200, 200), context: ctx)
        body = try (0..<blocks).map { try RRDB(root["body"][$0], features: f, grow: grow, ctx) }
        convBody = try root["conv_body"].conv2d(f, f, kernel: 3, hint: (200, 200), context: ctx)
        convUp1 = try root["conv_up1"].conv2d(f, f, kernel: 3, postOps: lrelu, hint: (400, 400), context: ctx)
        convUp2 = try root["conv_up2"].conv2d(f, f, kernel: 3, postOps: lrelu, hint: (800, 800), context: ctx)
        convHR = try root["conv_hr"].conv2d(f, f, kernel: 3, postOps: lrelu, hint: (800, 800), context: ctx)
        convLast = try root["conv_last"].conv2d(f, 3, kernel: 3, hint: (800, 800), context: ctx)
        try loader.finish(deliberatelyUnused: [])
    }

    /// `[1, 3, H, W]` RGB in [0, 1] → `[1, 3, H·s, W·s]` (not clamped). For scale 2 and 1, H and
    /// W must be multiples of 2 and 4 (`RealESRGANer` pads them).
    public func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        var feat = x
        if scale == 2 { feat = try ctx.pixelUnshuffle(x, factor: 2) }
        if scale == 1 { feat = try ctx.pixelUnshuffle(x, factor: 4) }
        feat = try convFirst(feat, ctx)
        // Each RRDB writes its output straight into the head of the next one's first stack.
        var trunk = feat
        if let first = body.first {
            var stack = try ChannelStack(feat, capacity: first.blocks[0].capacity, ctx)
            for (i, block) in body.enumerated() {
                if i + 1 < body.count, let (next, head) = ChannelStack.awaiting(feat.shape, capacity: body[i + 1].blocks[0].capacity) {
                    _ = try block(stack, into: head, ctx)
                    stack = next
                } else {
                    trunk = try block(stack, into: nil, ctx)
                    if i + 1 < body.count { stack = try ChannelStack(trunk, capacity: body[i + 1].blocks[0].capacity, ctx) }
                }
            }
        }
        feat = try ctx.add(feat, try convBody(trunk, ctx))
        feat = try convUp1(try ctx.resize(feat, factor: 2, mode: .nearest), ctx)
        feat = try convUp2(try ctx.resize(feat, factor: 2, mode: .nearest), ctx)
        return try ctx.contiguous(try convLast(try convHR(feat, ctx), ctx))
    }
}

extension RRDBNet {
    /// basicsr-layout tensors for an ncnn export of RRDBNet x4 (`realesrgan-x4plus`): its 6 + 15·n
    /// Convolution layers in graph order are conv_first, the RRDB convs, conv_body, conv_up1,
    /// conv_up2, conv_hr and conv_last. The graph is checked to be that network: fused
    /// LeakyReLU(0.2) exactly where basicsr has one, 4·n residual sums weighted (0.2, 1), and two
    /// nearest ×2 upsamplings.
    public static func stateDict(fromNCNN model: NCNNModel) throws -> StateDict {
        func unsupported(_ detail: String) -> WeightsError { .unsupported(path: model.paramPath, detail: detail) }
        let convs = model.layers.filter { $0.type == "Convolution" }
        guard convs.count >= 21, (convs.count - 6) % 15 == 0 else {
            throw unsupported("\(convs.count) convolutions is not an RRDBNet (6 + 15·blocks)")
        }
        let blocks = (convs.count - 6) / 15
        guard convs[0].bottoms.count == 1, model.weights[convs[0].name + ".weight"]?.shape[1] == 3 else {
            throw unsupported("only the x4 RRDBNet (RGB input, no pixel-unshuffle) is supported from ncnn")
        }
        var keys = ["conv_first"]
        for b in 0..<blocks { for r in 1...3 { for c in 1...5 { keys.append("body.\(b).rdb\(r).conv\(c)") } } }
        keys += ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]
        for (layer, key) in zip(convs, keys) {
            let leaky = key.hasPrefix("conv_up") || key == "conv_hr" || (key.hasPrefix("body.") && !key.hasSuffix("conv5"))
            let act = layer.int(9, default: 0), slope = layer.array(10)?.first
            guard leaky ? (act == 2 && slope.map { abs($0 - 0.2) < 1e-6 } == true) : act == 0 else {
                throw unsupported("layer \(layer.name) (\(key)): activation \(act) is not basicsr's")
            }
            guard layer.int(1, default: 0) == 3, layer.int(3, default: 1) == 1, layer.int(4, default: 0) == 1,
                  layer.int(2, default: 1) == 1, layer.int(5, default: 0) == 1 else {
                throw unsupported("layer \(layer.name) (\(key)) is not a 3×3, stride 1, pad 1 conv with bias")
            }
        }
        let sums = model.layers.filter { $0.type == "Eltwise" }
        guard sums.count == 4 * blocks, sums.allSatisfy({ $0.int(0, default: 0) == 1 && $0.array(1) == [0.2, 1] }) else {
            throw unsupported("the residual sums are not basicsr's x·0.2 + identity")
        }
        let ups = model.layers.filter { $0.type == "Interp" }
        guard ups.count == 2, ups.allSatisfy({ $0.int(0, default: 0) == 1 && $0.float(1, default: 0) == 2 && $0.float(2, default: 0) == 2 }) else {
            throw unsupported("the upsampling is not two nearest ×2 interpolations")
        }
        var names: [String] = [], tensors: [String: WeightTensor] = [:]
        for (layer, key) in zip(convs, keys) {
            for part in ["weight", "bias"] {
                names.append("\(key).\(part)")
                tensors["\(key).\(part)"] = model.weights["\(layer.name).\(part)"]
            }
        }
        return StateDict(names: names, tensors: tensors)
    }
}
