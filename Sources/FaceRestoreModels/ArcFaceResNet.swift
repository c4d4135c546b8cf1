// ArcFace ResNet-IR ("resnet_face18"): ronghuaiyang/arcface-pytorch `models/resnet.py`
// (f1b7b3f: `ResNetFace`, `IRBlock`, `SEBlock`, `resnet_face18`), the network of VQFR's
// `metric_paper/calculate_cos_dist.py`; GFP-GAN 1.3.8 `gfpgan/archs/arcface_arch.py`
// (`ResNetArcFace(block='IRBlock', layers=[2, 2, 2, 2])`) is the same module tree.
//   conv1 3×3 (1→64) · bn1 · PReLU · maxpool 2×2
//   layer1…4: IRBlocks (64, 128, 256, 512; stride 2 from layer2, with a 1×1 conv + BN downsample):
//     bn0 · conv1 3×3 · bn1 · PReLU · conv2 3×3 (stride) · bn2 [· SE] + residual · PReLU (the same
//     single-slope PReLU twice)
//   bn4 · dropout (identity in eval) · flatten (C, H, W) · fc5 (512·8·8 → 512) · bn5 (BatchNorm1d)
// Eval-mode BatchNorms after a convolution are folded into it at load; bn0 (before a padded conv)
// and bn4 are applied as affine maps, bn5 to the fc5 output rows. A one-slope PReLU is a leaky
// ReLU with that slope. Input: `[N, 1, 128, 128]` gray in [−1, 1]. Whether the blocks have SE
// blocks is read from the keys (`layer1.0.se.fc.0.weight`); the block counts likewise. State dicts
// saved from `DataParallel` (`module.` prefix, arcface-pytorch's `resnet18_110.pth`) load as well:
// the checkpoint reader strips the prefix.

import FaceRestoreEngine
import FaceRestoreWeights
import Foundation

public final class ArcFaceResNet: Sendable {
    /// The input side (fc5 reads 512 × 8 × 8 after four halvings of 128).
    public static let inputSize = 128
    public static let embeddingSize = 512

    public let useSE: Bool
    /// Blocks per stage (`[2, 2, 2, 2]` for resnet_face18).
    public let layers: [Int]
    let stem: Conv2d
    let blocks: [IRBlock]
    let bn4: (scale: [Float], shift: [Float])
    let fc5: Linear
    let bn5: (scale: [Float], shift: [Float])

    public init(stateDict sd: StateDict, file: String, context: ComputeContext) throws {
        // Anything with ArcFace's head or first IRBlock loads strictly (a missing or mis-shaped
        // tensor is named); anything else is the wrong network.
        guard sd["fc5.weight"] != nil || sd["layer1.0.bn0.weight"] != nil else {
            throw ModelError.wrongArchitecture(file: file, expected: "an ArcFace ResNet-IR (resnet_face18)", in: sd)
        }
        let loader = WeightLoader(sd, file: file)
        let root = loader.root
        let ctx = context
        useSE = sd["layer1.0.se.fc.0.weight"] != nil
        stem = try root.convBatchNorm(conv: "conv1", bn: "bn1", 1, 64, kernel: 3, padding: 1,
                                      postOps: [.leakyReLU(try root["prelu"].floats("weight", shape: [1])[0])],
                                      hint: (128, 128), context: ctx)
        var stages: [Int] = []
        var all: [IRBlock] = []
        var cin = 64, size = 64
        for (s, planes) in [64, 128, 256, 512].enumerated() {
            let stage = root["layer\(s + 1)"]
            var count = 0
            while stage[count].shape("bn0.weight") != nil { count += 1 }
            guard count > 0 else { throw ModelError.missingKey(file: file, key: stage.prefix + "0.bn0.weight", expected: [cin]) }
            let stride = s == 0 ? 1 : 2
            size /= stride
            for b in 0..<count {
                all.append(try IRBlock(stage[b], cin, planes, stride: b == 0 ? stride : 1, se: useSE, size: size, ctx))
                cin = planes
            }
            stages.append(count)
        }
        layers = stages
        blocks = all
        bn4 = try Self.batchNorm(root["bn4"], 512)
        let flat = 512 * 8 * 8
        fc5 = try root["fc5"].linear(flat, 512, context: ctx)
        bn5 = try Self.batchNorm(root["bn5"], 512)
        try loader.finish(deliberatelyUnused: [])
    }

    /// Loads GFP-GAN's `arcface_resnet18.pth` or arcface-pytorch's `resnet18_110.pth` (or any
    /// state dict of this tree).
    public convenience init(path: String, context: ComputeContext) throws {
        let (sd, _) = try WeightsFile.load(path: path)
        try self.init(stateDict: sd, file: path, context: context)
    }

    /// An eval-mode BatchNorm's `(γ/√(σ²+ε), β − μ·γ/√(σ²+ε))` at `s` (ε = 1e-5), as torch's
    /// inference kernel forms them.
    static func batchNorm(_ s: WeightScope, _ c: Int) throws -> (scale: [Float], shift: [Float]) {
        let gamma = try s.floats("weight", shape: [c]), beta = try s.floats("bias", shape: [c])
        let mean = try s.floats("running_mean", shape: [c]), variance = try s.floats("running_var", shape: [c])
        if let counter = s.shape("num_batches_tracked") { _ = try s.floats("num_batches_tracked", shape: counter) }
        let scale = (0..<c).map { gamma[$0] / (variance[$0] + Float(1e-5)).squareRoot() }
        return (scale, (0..<c).map { beta[$0] - mean[$0] * scale[$0] })
    }

    /// The network input from 8-bit gray 128 × 128 images: `(v − 127.5) / 127.5` in float32.
    public static func input(gray images: [[UInt8]]) throws -> Tensor {
        let n = inputSize * inputSize
        guard !images.isEmpty, images.allSatisfy({ $0.count == n }) else {
            throw ModelError.invalidInput("ArcFace takes 128×128 gray images")
        }
        return Tensor(shape: [images.count, 1, inputSize, inputSize]) { out in
            for (i, img) in images.enumerated() {
                for p in 0..<n { out[i * n + p] = (Float(img[p]) - 127.5) / 127.5 }
            }
        }
    }

    /// The 512-d embeddings of `[N, 1, 128, 128]` inputs (`ResNetFace.forward`, eval mode).
    public func embeddings(_ x: Tensor, _ ctx: ComputeContext) throws -> [[Float]] {
        guard x.rank == 4, x.shape[1] == 1, x.shape[2] == Self.inputSize, x.shape[3] == Self.inputSize else {
            throw ModelError.invalidInput("ArcFace expects a [N, 1, 128, 128] tensor, got \(x.shape)")
        }
        var h = try ctx.maxPool2d(try stem(x, ctx), kernel: 2, stride: 2, padding: 0)
        for block in blocks { h = try block(h, ctx) }
        h = try ctx.affine(h, scale: bn4.scale, shift: bn4.shift)
        let n = x.shape[0]
        let flat = try ctx.reshape(try ctx.contiguous(h), [n, 512 * 8 * 8])
        let y = try ctx.rowAffine(try fc5(flat, ctx), scale: bn5.scale, shift: bn5.shift)
        let values = try ctx.array(y)
        return (0..<n).map { Array(values[($0 * 512)..<(($0 + 1) * 512)]) }
    }
}

/// arcface-pytorch `IRBlock` (expansion 1).
struct IRBlock {
    let bn0: (scale: [Float], shift: [Float])
    let conv1: Conv2d   // with bn1 and the PReLU
    let conv2: Conv2d   // with bn2
    let slope: Float
    let se: SEBlock?
    let downsample: Conv2d?

    init(_ s: WeightScope, _ cin: Int, _ planes: Int, stride: Int, se useSE: Bool, size: Int, _ ctx: ComputeContext) throws {
        bn0 = try ArcFaceResNet.batchNorm(s["bn0"], cin)
        slope = try s["prelu"].floats("weight", shape: [1])[0]
        conv1 = try s.convBatchNorm(conv: "conv1", bn: "bn1", cin, cin, kernel: 3, padding: 1, postOps: [.leakyReLU(slope)],
                                    hint: (size * stride, size * stride), context: ctx)
        conv2 = try s.convBatchNorm(conv: "conv2", bn: "bn2", cin, planes, kernel: 3, stride: stride, padding: 1,
                                    hint: (size * stride, size * stride), context: ctx)
        se = useSE ? try SEBlock(s["se"], planes, ctx) : nil
        downsample = s["downsample"].shape("0.weight") != nil
            ? try s["downsample"].convBatchNorm(conv: "0", bn: "1", cin, planes, kernel: 1, stride: stride, padding: 0,
                                                hint: (size * stride, size * stride), context: ctx)
            : nil
        if downsample == nil && (stride != 1 || cin != planes) {
            throw ModelError.missingKey(file: s.loader.file, key: s.prefix + "downsample.0.weight", expected: [planes, cin, 1, 1])
        }
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        var out = try conv2(try conv1(try ctx.affine(x, scale: bn0.scale, shift: bn0.shift), ctx), ctx)
        if let se { out = try se(out, ctx) }
        let residual = try downsample.map { try $0(x, ctx) } ?? x
        return try ctx.leakyReLU(try ctx.add(out, residual), slope: slope)
    }
}

/// arcface-pytorch `SEBlock` (reduction 16): `x · sigmoid(fc2(prelu(fc1(avgpool(x)))))`.
struct SEBlock {
    let fc1: Linear, fc2: Linear
    let channels: Int

    init(_ s: WeightScope, _ c: Int, _ ctx: ComputeContext) throws {
        let slope = try s["fc"]["1"].floats("weight", shape: [1])[0]
        fc1 = try Linear(weight: try s["fc"]["0"].tensor("weight", shape: [c / 16, c]), bias: try s["fc"]["0"].floats("bias", shape: [c / 16]),
                         postOps: [.leakyReLU(slope)], context: ctx)
        fc2 = try s["fc"]["2"].linear(c / 16, c, context: ctx)
        channels = c
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        let n = x.shape[0]
        let pooled = try ctx.reshape(try ctx.globalAvgPool2d(x), [n, channels])
        let y = try ctx.sigmoid(try fc2(try fc1(pooled, ctx), ctx))
        return try ctx.multiply(x, try ctx.reshape(y, [n, channels, 1, 1]))
    }
}
