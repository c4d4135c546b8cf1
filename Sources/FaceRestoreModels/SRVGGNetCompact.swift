// Real-ESRGAN's SRVGGNetCompact as realesrgan 0.3.0 builds it (`realesrgan/archs/srvgg_arch.py`)
// for realesr-general-x4v3 and realesr-animevideov3: a 3×3 conv and PReLU, `num_conv` more
// conv + PReLU pairs at full resolution, a last conv to 3·s² channels, pixel shuffle, plus the
// nearest-upsampled input. The ncnn export (`realesr-animevideov3-x4.param/.bin`) maps onto
// these keys in `stateDict(fromNCNN:)`.

import FaceRestoreEngine
import FaceRestoreWeights

public final class SRVGGNetCompact: Sendable {
    public let scale: Int
    public let features: Int
    public let convCount: Int
    let convs: [Conv2d]
    let slopes: [[Float]]   // PReLU per-channel slopes after each conv but the last

    public init(stateDict sd: StateDict, file: String, context ctx: ComputeContext) throws {
        guard case .srvggNetCompact(let scale, let f, let n)? = Architecture.detect(sd), scale >= 1 else {
            throw ModelError.wrongArchitecture(file: file, expected: "a Real-ESRGAN SRVGGNetCompact", in: sd)
        }
        self.scale = scale
        features = f
        convCount = n
        let loader = WeightLoader(sd, file: file)
        let body = loader.root["body"]
        var convs: [Conv2d] = [], slopes: [[Float]] = []
        for i in 0...(n + 1) {
            let (cin, cout) = (i == 0 ? 3 : f, i == n + 1 ? 3 * scale * scale : f)
            convs.append(try body[2 * i].conv2d(cin, cout, kernel: 3, hint: (400, 400), context: ctx))
            if i <= n { slopes.append(try body[2 * i + 1].floats("weight", shape: [f])) }
        }
        self.convs = convs
        self.slopes = slopes
        try loader.finish(deliberatelyUnused: [])
    }

    /// `[1, 3, H, W]` RGB in [0, 1] → `[1, 3, H·s, W·s]` (not clamped).
    public func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        var feat = x
        for (i, conv) in convs.enumerated() {
            feat = try conv(feat, ctx)
            if i < slopes.count { feat = try ctx.prelu(feat, slopes: slopes[i]) }
        }
        let out = try ctx.pixelShuffle(feat, factor: scale)
        let base = try ctx.resize(try ctx.contiguous(x), factor: Double(scale), mode: .nearest)
        return try ctx.contiguous(try ctx.add(out, base))
    }
}

extension SRVGGNetCompact {
    /// realesrgan-layout tensors for an ncnn export of SRVGGNetCompact (`realesr-animevideov3-x4`):
    /// Convolution/PReLU pairs in graph order are `body.0`/`body.1`, `body.2`/`body.3`, …, the
    /// last Convolution is followed by PixelShuffle, and the nearest-upsampled input is added.
    /// A trailing resize (the x2/x3 exports downscale the x4 output by bicubic) is refused.
    public static func stateDict(fromNCNN model: NCNNModel) throws -> StateDict {
        func unsupported(_ detail: String) -> WeightsError { .unsupported(path: model.paramPath, detail: detail) }
        let layers = model.layers.filter { !["Input", "Split"].contains($0.type) }
        let convs = layers.filter { $0.type == "Convolution" }, prelus = layers.filter { $0.type == "PReLU" }
        guard convs.count >= 2, prelus.count == convs.count - 1,
              let shuffle = layers.first(where: { $0.type == "PixelShuffle" }) else {
            throw unsupported("not an SRVGGNetCompact graph (conv/PReLU pairs, a last conv, pixel shuffle)")
        }
        let scale = shuffle.int(0, default: 0)
        let interps = layers.filter { $0.type == "Interp" }
        guard interps.count == 1, interps[0].int(0, default: 0) == 1, interps[0].float(1, default: 0) == Float(scale),
              layers.last?.type == "BinaryOp" else {
            throw unsupported("the graph ends in a resize of the output or lacks the nearest ×\(scale) input path "
                              + "(use the x4 model; FaceRestore rescales by Lanczos like RealESRGANer's outscale)")
        }
        for layer in convs where layer.int(9, default: 0) != 0 || layer.int(1, default: 0) != 3 || layer.int(4, default: 0) != 1 {
            throw unsupported("layer \(layer.name) is not a plain 3×3, pad 1 conv")
        }
        var names: [String] = [], tensors: [String: WeightTensor] = [:]
        for (i, layer) in convs.enumerated() {
            for part in ["weight", "bias"] {
                names.append("body.\(2 * i).\(part)")
                tensors["body.\(2 * i).\(part)"] = model.weights["\(layer.name).\(part)"]
            }
        }
        for (i, layer) in prelus.enumerated() {
            names.append("body.\(2 * i + 1).weight")
            tensors["body.\(2 * i + 1).weight"] = model.weights["\(layer.name).slope"]
        }
        return StateDict(names: names, tensors: tensors)
    }
}
