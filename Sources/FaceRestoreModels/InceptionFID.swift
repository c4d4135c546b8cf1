// The FID Inception v3 up to its 2048-d pool3 features, as basicsr 1.4.2 builds and runs it for
// FID: `basicsr/archs/inception.py` (`InceptionV3(output_blocks=[3], resize_input=True,
// normalize_input=False)` from `metrics/fid.py` `load_patched_inception_v3`, `fid_inception_v3()`
// and the patched `FIDInceptionA`/`C`/`E_1`/`E_2` blocks, themselves from pytorch-fid 0.3.0
// `pytorch_fid/inception.py`) on torchvision 0.14's `models/inception.py` (BasicConv2d,
// InceptionB, InceptionD). Weights: pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (the
// TensorFlow 2015-12-05 Inception ported to PyTorch); its `fc.*` classifier is deliberately unused.
//
// Each BasicConv2d (conv without bias, BatchNorm with eps 0.001, ReLU) is one convolution with
// the BatchNorm folded in at load and the ReLU fused. The module tree mirrors torchvision's
// attribute names, so keys (`Mixed_6b.branch7x7dbl_3.conv.weight`) are built by walking it and
// loading is strict (a missing, mis-shaped or unexpected tensor is one line naming it).

import FaceRestoreEngine
import FaceRestoreWeights

/// torchvision `BasicConv2d`: conv (no bias) → BatchNorm2d(eps=0.001) → ReLU, folded at load.
struct InceptionConv: Layer {
    let conv: Conv2d

    init(_ scope: WeightScope, _ cin: Int, _ cout: Int, kernel: (Int, Int), stride: Int = 1, padding: (Int, Int) = (0, 0),
         hint: Int, _ ctx: ComputeContext) throws {
        let shape = [cout, cin, kernel.0, kernel.1]
        let w = try scope["conv"].floats("weight", shape: shape)
        let bn = scope["bn"]
        let folded = try foldBatchNorm(weight: w, bias: nil, gamma: try bn.floats("weight", shape: [cout]),
                                       beta: try bn.floats("bias", shape: [cout]),
                                       mean: try bn.floats("running_mean", shape: [cout]),
                                       variance: try bn.floats("running_var", shape: [cout]), epsilon: 0.001)
        if let counter = bn.shape("num_batches_tracked") { _ = try bn.floats("num_batches_tracked", shape: counter) }
        conv = try Conv2d(weight: folded.weight, shape: shape, bias: folded.bias, stride: stride,
                          padding: Padding2D(vertical: padding.0, horizontal: padding.1), postOps: [.relu],
                          hint: (hint, hint), context: ctx)
    }

    init(_ scope: WeightScope, _ cin: Int, _ cout: Int, kernel: Int, stride: Int = 1, padding: Int = 0, hint: Int,
         _ ctx: ComputeContext) throws {
        try self.init(scope, cin, cout, kernel: (kernel, kernel), stride: stride, padding: (padding, padding), hint: hint, ctx)
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor { try conv(x, ctx) }
}

/// `nn.MaxPool2d(kernel_size=3, stride=2)`.
private struct MaxPool3x3Stride2: Layer {
    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor { try ctx.maxPool2d(x, kernel: 3, stride: 2, padding: 0) }
}

/// `FIDInceptionA` (torchvision InceptionA with the average pool not counting padding).
private struct FIDInceptionA: Layer {
    let branch1x1, branch5x5_1, branch5x5_2, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3, branchPool: InceptionConv

    init(_ s: WeightScope, _ cin: Int, poolFeatures: Int, _ ctx: ComputeContext) throws {
        let h = 35
        branch1x1 = try InceptionConv(s["branch1x1"], cin, 64, kernel: 1, hint: h, ctx)
        branch5x5_1 = try InceptionConv(s["branch5x5_1"], cin, 48, kernel: 1, hint: h, ctx)
        branch5x5_2 = try InceptionConv(s["branch5x5_2"], 48, 64, kernel: 5, padding: 2, hint: h, ctx)
        branch3x3dbl_1 = try InceptionConv(s["branch3x3dbl_1"], cin, 64, kernel: 1, hint: h, ctx)
        branch3x3dbl_2 = try InceptionConv(s["branch3x3dbl_2"], 64, 96, kernel: 3, padding: 1, hint: h, ctx)
        branch3x3dbl_3 = try InceptionConv(s["branch3x3dbl_3"], 96, 96, kernel: 3, padding: 1, hint: h, ctx)
        branchPool = try InceptionConv(s["branch_pool"], cin, poolFeatures, kernel: 1, hint: h, ctx)
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        let b1 = try branch1x1(x, ctx)
        let b5 = try branch5x5_2(try branch5x5_1(x, ctx), ctx)
        let b3 = try branch3x3dbl_3(try branch3x3dbl_2(try branch3x3dbl_1(x, ctx), ctx), ctx)
        let bp = try branchPool(try ctx.avgPool2dExcludingPadding(x, kernel: 3, stride: 1, padding: 1), ctx)
        return try ctx.concat([b1, b5, b3, bp])
    }
}

/// torchvision `InceptionB` (Mixed_6a, unpatched).
private struct InceptionB: Layer {
    let branch3x3, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3: InceptionConv

    init(_ s: WeightScope, _ cin: Int, _ ctx: ComputeContext) throws {
        branch3x3 = try InceptionConv(s["branch3x3"], cin, 384, kernel: 3, stride: 2, hint: 35, ctx)
        branch3x3dbl_1 = try InceptionConv(s["branch3x3dbl_1"], cin, 64, kernel: 1, hint: 35, ctx)
        branch3x3dbl_2 = try InceptionConv(s["branch3x3dbl_2"], 64, 96, kernel: 3, padding: 1, hint: 35, ctx)
        branch3x3dbl_3 = try InceptionConv(s["branch3x3dbl_3"], 96, 96, kernel: 3, stride: 2, hint: 35, ctx)
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        let b3 = try branch3x3(x, ctx)
        let bd = try branch3x3dbl_3(try branch3x3dbl_2(try branch3x3dbl_1(x, ctx), ctx), ctx)
        let bp = try ctx.maxPool2d(x, kernel: 3, stride: 2, padding: 0)
        return try ctx.concat([b3, bd, bp])
    }
}

/// `FIDInceptionC` (torchvision InceptionC with the average pool not counting padding).
private struct FIDInceptionC: Layer {
    let branch1x1: InceptionConv
    let branch7x7: [InceptionConv]      // _1, _2, _3
    let branch7x7dbl: [InceptionConv]   // _1 … _5
    let branchPool: InceptionConv

    init(_ s: WeightScope, _ cin: Int, channels7x7 c7: Int, _ ctx: ComputeContext) throws {
        let h = 17
        branch1x1 = try InceptionConv(s["branch1x1"], cin, 192, kernel: 1, hint: h, ctx)
        branch7x7 = [
            try InceptionConv(s["branch7x7_1"], cin, c7, kernel: 1, hint: h, ctx),
            try InceptionConv(s["branch7x7_2"], c7, c7, kernel: (1, 7), padding: (0, 3), hint: h, ctx),
            try InceptionConv(s["branch7x7_3"], c7, 192, kernel: (7, 1), padding: (3, 0), hint: h, ctx),
        ]
        branch7x7dbl = [
            try InceptionConv(s["branch7x7dbl_1"], cin, c7, kernel: 1, hint: h, ctx),
            try InceptionConv(s["branch7x7dbl_2"], c7, c7, kernel: (7, 1), padding: (3, 0), hint: h, ctx),
            try InceptionConv(s["branch7x7dbl_3"], c7, c7, kernel: (1, 7), padding: (0, 3), hint: h, ctx),
            try InceptionConv(s["branch7x7dbl_4"], c7, c7, kernel: (7, 1), padding: (3, 0), hint: h, ctx),
            try InceptionConv(s["branch7x7dbl_5"], c7, 192, kernel: (1, 7), padding: (0, 3), hint: h, ctx),
        ]
        branchPool = try InceptionConv(s["branch_pool"], cin, 192, kernel: 1, hint: h, ctx)
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        let b1 = try branch1x1(x, ctx)
        let b7 = try branch7x7.reduce(x) { try $1($0, ctx) }
        let bd = try branch7x7dbl.reduce(x) { try $1($0, ctx) }
        let bp = try branchPool(try ctx.avgPool2dExcludingPadding(x, kernel: 3, stride: 1, padding: 1), ctx)
        return try ctx.concat([b1, b7, bd, bp])
    }
}

/// torchvision `InceptionD` (Mixed_7a, unpatched).
private struct InceptionD: Layer {
    let branch3x3: [InceptionConv]     // _1, _2
    let branch7x7x3: [InceptionConv]   // _1 … _4

    init(_ s: WeightScope, _ cin: Int, _ ctx: ComputeContext) throws {
        let h = 17
        branch3x3 = [
            try InceptionConv(s["branch3x3_1"], cin, 192, kernel: 1, hint: h, ctx),
            try InceptionConv(s["branch3x3_2"], 192, 320, kernel: 3, stride: 2, hint: h, ctx),
        ]
        branch7x7x3 = [
            try InceptionConv(s["branch7x7x3_1"], cin, 192, kernel: 1, hint: h, ctx),
            try InceptionConv(s["branch7x7x3_2"], 192, 192, kernel: (1, 7), padding: (0, 3), hint: h, ctx),
            try InceptionConv(s["branch7x7x3_3"], 192, 192, kernel: (7, 1), padding: (3, 0), hint: h, ctx),
            try InceptionConv(s["branch7x7x3_4"], 192, 192, kernel: 3, stride: 2, hint: h, ctx),
        ]
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        let b3 = try branch3x3.reduce(x) { try $1($0, ctx) }
        let b7 = try branch7x7x3.reduce(x) { try $1($0, ctx) }
        let bp = try ctx.maxPool2d(x, kernel: 3, stride: 2, padding: 0)
        return try ctx.concat([b3, b7, bp])
    }
}

/// `FIDInceptionE_1` (average pool not counting padding) and `FIDInceptionE_2` (max pool: the
/// TensorFlow graph's pool in Mixed_7c, which pytorch-fid reproduces).
private struct FIDInceptionE: Layer {
    let branch1x1, branch3x3_1, branch3x3_2a, branch3x3_2b: InceptionConv
    let branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3a, branch3x3dbl_3b, branchPool: InceptionConv
    let maxPool: Bool

    init(_ s: WeightScope, _ cin: Int, maxPool: Bool, _ ctx: ComputeContext) throws {
        let h = 8
        self.maxPool = maxPool
        branch1x1 = try InceptionConv(s["branch1x1"], cin, 320, kernel: 1, hint: h, ctx)
        branch3x3_1 = try InceptionConv(s["branch3x3_1"], cin, 384, kernel: 1, hint: h, ctx)
        branch3x3_2a = try InceptionConv(s["branch3x3_2a"], 384, 384, kernel: (1, 3), padding: (0, 1), hint: h, ctx)
        branch3x3_2b = try InceptionConv(s["branch3x3_2b"], 384, 384, kernel: (3, 1), padding: (1, 0), hint: h, ctx)
        branch3x3dbl_1 = try InceptionConv(s["branch3x3dbl_1"], cin, 448, kernel: 1, hint: h, ctx)
        branch3x3dbl_2 = try InceptionConv(s["branch3x3dbl_2"], 448, 384, kernel: 3, padding: 1, hint: h, ctx)
        branch3x3dbl_3a = try InceptionConv(s["branch3x3dbl_3a"], 384, 384, kernel: (1, 3), padding: (0, 1), hint: h, ctx)
        branch3x3dbl_3b = try InceptionConv(s["branch3x3dbl_3b"], 384, 384, kernel: (3, 1), padding: (1, 0), hint: h, ctx)
        branchPool = try InceptionConv(s["branch_pool"], cin, 192, kernel: 1, hint: h, ctx)
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        let b1 = try branch1x1(x, ctx)
        let t = try branch3x3_1(x, ctx)
        let a = try branch3x3_2a(t, ctx), b = try branch3x3_2b(t, ctx)
        let d = try branch3x3dbl_2(try branch3x3dbl_1(x, ctx), ctx)
        let da = try branch3x3dbl_3a(d, ctx), db = try branch3x3dbl_3b(d, ctx)
        let pooled = maxPool ? try ctx.maxPool2d(x, kernel: 3, stride: 1, padding: 1)
            : try ctx.avgPool2dExcludingPadding(x, kernel: 3, stride: 1, padding: 1)
        let bp = try branchPool(pooled, ctx)
        return try ctx.concat([b1, a, b, da, db, bp])
    }
}

/// The FID Inception v3 (pytorch-fid's TensorFlow port, as basicsr 1.4.2 runs it): an RGB image
/// in [−1, 1] → bilinear resize to 299×299 (`align_corners=False`, no antialias) → the network
/// through Mixed_7c → global average pool → the 2048-d feature vector FID statistics are built from.
public final class FIDInception: Sendable {
    /// The feature dimension (pool3).
    public static let dimension = 2048
    /// The side the input is resized to.
    public static let inputSize = 299

    let layers: [any Layer]
    let context: ComputeContext

    /// Builds the network from a `pt_inception-2015-12-05-6726825d.pth`-layout state dict.
    public init(stateDict sd: StateDict, file: String, context: ComputeContext = ComputeContext()) throws {
        let loader = WeightLoader(sd, file: file)
        let r = loader.root
        let ctx = context
        self.context = context
        var l: [any Layer] = []
        // Block 0: Conv2d_1a … 2b, max pool.
        l.append(try InceptionConv(r["Conv2d_1a_3x3"], 3, 32, kernel: 3, stride: 2, hint: 149, ctx))
        l.append(try InceptionConv(r["Conv2d_2a_3x3"], 32, 32, kernel: 3, hint: 147, ctx))
        l.append(try InceptionConv(r["Conv2d_2b_3x3"], 32, 64, kernel: 3, padding: 1, hint: 147, ctx))
        l.append(MaxPool3x3Stride2())
        // Block 1: Conv2d_3b, 4a, max pool.
        l.append(try InceptionConv(r["Conv2d_3b_1x1"], 64, 80, kernel: 1, hint: 73, ctx))
        l.append(try InceptionConv(r["Conv2d_4a_3x3"], 80, 192, kernel: 3, hint: 71, ctx))
        l.append(MaxPool3x3Stride2())
        // Block 2: Mixed_5b … 6e.
        l.append(try FIDInceptionA(r["Mixed_5b"], 192, poolFeatures: 32, ctx))
        l.append(try FIDInceptionA(r["Mixed_5c"], 256, poolFeatures: 64, ctx))
        l.append(try FIDInceptionA(r["Mixed_5d"], 288, poolFeatures: 64, ctx))
        l.append(try InceptionB(r["Mixed_6a"], 288, ctx))
        l.append(try FIDInceptionC(r["Mixed_6b"], 768, channels7x7: 128, ctx))
        l.append(try FIDInceptionC(r["Mixed_6c"], 768, channels7x7: 160, ctx))
        l.append(try FIDInceptionC(r["Mixed_6d"], 768, channels7x7: 160, ctx))
        l.append(try FIDInceptionC(r["Mixed_6e"], 768, channels7x7: 192, ctx))
        // Block 3: Mixed_7a … 7c (then the global average pool in `features`).
        l.append(try InceptionD(r["Mixed_7a"], 768, ctx))
        l.append(try FIDInceptionE(r["Mixed_7b"], 1280, maxPool: false, ctx))
        l.append(try FIDInceptionE(r["Mixed_7c"], 2048, maxPool: true, ctx))
        layers = l
        // The 1008-way classifier is not part of the pool3 features.
        try loader.finish(deliberatelyUnused: ["fc."])
    }

    /// Loads `pt_inception-2015-12-05-6726825d.pth` (or any file with its layout).
    public convenience init(weights path: String, verifyChecksums: Bool = true, context: ComputeContext = ComputeContext()) throws {
        let (sd, _) = try WeightsFile.load(path: path, verifyChecksums: verifyChecksums)
        try self.init(stateDict: sd, file: path, context: context)
    }

    /// The 2048-d features of `[1, 3, H, W]` RGB in [−1, 1] (basicsr's `normalize_input=False`).
    public func features(_ x: Tensor) throws -> [Float] {
        guard x.rank == 4, x.shape[0] == 1, x.shape[1] == 3, x.shape[2] > 0, x.shape[3] > 0 else {
            throw ModelError.invalidInput("the FID Inception expects a [1, 3, H, W] RGB tensor, got \(x.shape)")
        }
        let ctx = context
        var f = try ctx.resize(x, height: Self.inputSize, width: Self.inputSize, mode: .bilinear)
        for layer in layers { f = try layer(f, ctx) }
        return try ctx.array(try ctx.globalAvgPool2d(f))
    }

    /// The network input from interleaved 8-bit BGR pixels (`cv2.imread`), as basicsr's
    /// `SingleImageDataset` with mean = std = 0.5 makes it: RGB, `(p/255 − 0.5)/0.5` in float32.
    public static func input(bgr pixels: [UInt8], width: Int, height: Int) throws -> Tensor {
        let (n, overflow) = width.multipliedReportingOverflow(by: height)
        guard width > 0, height > 0, !overflow, n <= Int.max / 3, pixels.count == n * 3 else {
            throw ModelError.invalidInput("\(width)×\(height) BGR image needs \(width)·\(height)·3 bytes, got \(pixels.count)")
        }
        return Tensor(shape: [1, 3, height, width]) { out in
            for c in 0..<3 {
                let src = 2 - c
                for i in 0..<n { out[c * n + i] = (Float(pixels[i * 3 + src]) / 255 - 0.5) / 0.5 }
            }
        }
    }
}
