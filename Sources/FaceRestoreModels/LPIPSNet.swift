// LPIPS v0.1, the learned perceptual distance, as the `lpips` 0.1.4 package computes it
// (richzhang/PerceptualSimilarity, PyPI wheel lpips-0.1.4: `lpips/lpips.py` `LPIPS.forward`,
// `ScalingLayer`, `NetLinLayer`, `spatial_average`; `lpips/__init__.py` `normalize_tensor`;
// `lpips/pretrained_networks.py` `vgg16` / `alexnet` slices) over torchvision 0.14's VGG16
// (`torchvision/models/vgg.py`, configuration "D") and AlexNet (`torchvision/models/alexnet.py`)
// `features`:
//   x' = (x − shift) / scale per RGB channel (shift −.030, −.088, −.188; scale .458, .448, .450);
//   VGG16 slices features[0:4 | 4:9 | 9:16 | 16:23 | 23:30], AlexNet [0:2 | 2:5 | 5:8 | 8:10 | 10:12]
//   (every conv followed by its ReLU, fused here);
//   per slice output: f̂ = f / (‖f‖₂ over channels + 1e-10), d = (f̂₀ − f̂₁)², a 1×1 bias-free conv
//   to one channel (`lin{k}.model.1.weight`), the spatial mean; the five summed.
// Weights: the backbone in torchvision's layout (`features.N.weight|bias`; `classifier.*` unused)
// with the linear layers from a second file (lpips' `weights/v0.1/{vgg,alex}.pth`), or one
// `lpips.LPIPS().state_dict()` holding both (`net.sliceK.N.*`, `lin{k}.model.1.weight`,
// `scaling_layer.shift|scale`).

import FaceRestoreEngine
import FaceRestoreWeights
import Foundation

public final class LPIPSNet: Sendable {
    /// The trunk network (`lpips.LPIPS(net=…)`).
    public enum Backbone: String, Sendable, CaseIterable {
        case vgg, alex

        /// Output channels of the five slices (`LPIPS.chns`).
        public var channels: [Int] { self == .vgg ? [64, 128, 256, 512, 512] : [64, 192, 384, 256, 256] }

        /// torchvision's `features` up to the last slice, in index order.
        var layers: [FeatureLayer] {
            switch self {
            case .vgg:
                var out: [FeatureLayer] = []
                var cin = 3
                for v in [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512] {
                    if v == 0 { out.append(.maxPool(kernel: 2, stride: 2)); continue }
                    out += [.conv(cin: cin, cout: v, kernel: 3, stride: 1, padding: 1), .relu]
                    cin = v
                }
                return out   // features[0..<30]; features[30] (the last pool) is not used
            case .alex:
                return [.conv(cin: 3, cout: 64, kernel: 11, stride: 4, padding: 2), .relu, .maxPool(kernel: 3, stride: 2),
                        .conv(cin: 64, cout: 192, kernel: 5, stride: 1, padding: 2), .relu, .maxPool(kernel: 3, stride: 2),
                        .conv(cin: 192, cout: 384, kernel: 3, stride: 1, padding: 1), .relu,
                        .conv(cin: 384, cout: 256, kernel: 3, stride: 1, padding: 1), .relu,
                        .conv(cin: 256, cout: 256, kernel: 3, stride: 1, padding: 1), .relu]
            }
        }

        /// Where each slice ends in `features` (`pretrained_networks.py`).
        var sliceEnds: [Int] { self == .vgg ? [4, 9, 16, 23, 30] : [2, 5, 8, 10, 12] }
    }

    enum FeatureLayer {
        case conv(cin: Int, cout: Int, kernel: Int, stride: Int, padding: Int)
        case relu
        case maxPool(kernel: Int, stride: Int)
    }

    /// `ScalingLayer`'s constants.
    public static let shift: [Float] = [-0.030, -0.088, -0.188]
    public static let scale: [Float] = [0.458, 0.448, 0.450]

    public let backbone: Backbone
    let slices: [Sequential]
    /// The five `NetLinLayer` weights (one per channel).
    let linear: [[Float]]
    let inputShift: [Float], inputScale: [Float]
    /// Keys read from the files but deliberately not used (torchvision's classifier).
    public let ignoredKeys: [String]

    /// - Parameters:
    ///   - weights: a torchvision VGG16 / AlexNet state dict, or a whole `lpips.LPIPS()` state dict.
    ///   - linear: lpips' linear layers (`lin0.model.1.weight` …) when `weights` has none.
    public init(backbone net: Backbone, weights sd: StateDict, file: String, linear: StateDict? = nil, linearFile: String? = nil,
                context: ComputeContext) throws {
        backbone = net
        let loader = WeightLoader(sd, file: file)
        let root = loader.root
        let lpipsDump = sd["net.slice1.0.weight"] != nil
        guard lpipsDump || sd["features.0.weight"] != nil else {
            let first = sd.names.first.map { "'\($0)'" } ?? "nothing"
            throw ModelError.invalidInput("\(file): not a torchvision \(net == .vgg ? "VGG16" : "AlexNet") state dict (features.0.weight) nor an lpips.LPIPS(net='\(net.rawValue)') state dict (net.slice1.0.weight); its first tensor is \(first)")
        }
        // torchvision index i of slice s: `features.i` or `net.slice{s+1}.i`.
        let ends = net.sliceEnds
        func scope(_ i: Int) -> WeightScope {
            guard lpipsDump else { return root["features"][i] }
            let s = ends.firstIndex { i < $0 } ?? max(ends.count - 1, 0)
            return root["net"]["slice\(s + 1)"][i]
        }
        var built: [Sequential] = []
        var current: [any Layer] = []
        var size = 512   // the typical input side, for each conv's weight layout
        let layers = net.layers
        var i = 0
        while i < layers.count {
            switch layers[i] {
            case let .conv(cin, cout, k, stride, padding):
                // Every conv is followed by its ReLU; they always sit in the same slice.
                let fused = i + 1 < layers.count && { if case .relu = layers[i + 1] { return true }; return false }()
                size = (size + 2 * padding - k) / stride + 1
                current.append(try scope(i).conv2d(cin, cout, kernel: k, stride: stride, padding: padding,
                                                   postOps: fused ? [.relu] : [], hint: (size, size), context: context))
                i += fused ? 2 : 1
            case .relu:
                current.append(ReLU())
                i += 1
            case let .maxPool(k, stride):
                current.append(MaxPool(kernel: k, stride: stride, padding: 0))
                size = (size - k) / stride + 1
                i += 1
            }
            if ends.contains(i) {
                built.append(Sequential(current))
                current = []
            }
        }
        slices = built
        if lpipsDump {
            let scaling = root["scaling_layer"]
            if scaling.shape("shift") != nil || scaling.shape("scale") != nil {
                inputShift = try scaling.floats("shift", shape: [1, 3, 1, 1])
                inputScale = try scaling.floats("scale", shape: [1, 3, 1, 1])
            } else {
                (inputShift, inputScale) = (Self.shift, Self.scale)
            }
        } else {
            (inputShift, inputScale) = (Self.shift, Self.scale)
        }
        // The linear layers: from the same file (an lpips dump) or from `linear`.
        let linearLoader: WeightLoader
        if lpipsDump && (linear == nil || sd["lin0.model.1.weight"] != nil) {
            linearLoader = loader
        } else if let linear {
            linearLoader = WeightLoader(linear, file: linearFile ?? "linear layers")
        } else {
            throw ModelError.invalidInput("\(file): LPIPS needs its linear layers (lpips' weights/v0.1/\(net.rawValue).pth, e.g. lpips_v0.1_\(net.rawValue).pth) as well as this backbone")
        }
        self.linear = try net.channels.enumerated().map { k, c in
            try linearLoader.root["lin\(k)"]["model"]["1"].floats("weight", shape: [1, c, 1, 1])
        }
        // A dump repeats the linear layers under `lins.K` (the ModuleList holding lin0…lin4).
        var ignored = try loader.finish(deliberatelyUnused: lpipsDump ? ["lins."] : ["classifier."])
        if linearLoader !== loader { ignored += try linearLoader.finish(deliberatelyUnused: []) }
        ignoredKeys = ignored
    }

    /// Loads the backbone (and the linear layers from `linear`, unless `weights` is an lpips dump).
    public convenience init(backbone net: Backbone, weights path: String, linear linearPath: String?,
                            context: ComputeContext) throws {
        let (sd, _) = try WeightsFile.load(path: path)
        let lin = try linearPath.map { try WeightsFile.load(path: $0).0 }
        try self.init(backbone: net, weights: sd, file: path, linear: lin, linearFile: linearPath, context: context)
    }

    /// The network input from RGB values in [−1, 1], `[N, 3, H, W]`: `ScalingLayer` applied.
    public func scaled(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        guard x.rank == 4, x.shape[1] == 3 else { throw ModelError.invalidInput("LPIPS expects a [N, 3, H, W] RGB tensor, got \(x.shape)") }
        let plain = try ctx.contiguous(x)
        let plane = x.shape[2] * x.shape[3]
        return plain.withPlainValues { v in
            Tensor(shape: x.shape) { out in
                for i in 0..<v.count {
                    let c = (i / plane) % 3
                    out[i] = (v[i] - inputShift[c]) / inputScale[c]
                }
            }
        }
    }

    /// The five slice outputs for RGB values in [−1, 1] (`self.net.forward(self.scaling_layer(x))`).
    public func features(_ x: Tensor, _ ctx: ComputeContext) throws -> [Tensor] {
        var h = try scaled(x, ctx)
        let least = backbone == .vgg ? 16 : 31   // four 2×2 pools; AlexNet's stride-4 conv and two 3×3 pools
        guard min(h.shape[2], h.shape[3]) >= least else {
            throw ModelError.invalidInput("LPIPS-\(backbone.rawValue) needs images of at least \(least)×\(least) pixels, got \(h.shape[3])×\(h.shape[2])")
        }
        var out: [Tensor] = []
        for slice in slices {
            h = try slice(h, ctx)
            out.append(h)
        }
        return out
    }

    /// The distance between two feature sets (one batch item each, or matching batches): one
    /// value per batch item, as `LPIPS.forward` sums its five layers (float32).
    public func distance(features f0: [Tensor], _ f1: [Tensor], _ ctx: ComputeContext) throws -> [Float] {
        guard f0.count == slices.count, f1.count == slices.count else {
            throw ModelError.invalidInput("LPIPS needs \(slices.count) feature maps per image")
        }
        var total: [Float]? = nil
        for k in 0..<slices.count {
            let layer = try ctx.normalizedDifferenceScore(f0[k], f1[k], channelWeights: linear[k])
            total = total.map { zip($0, layer).map { $0 + $1 } } ?? layer.map { 0 + $0 }
        }
        return total ?? []
    }

    /// `LPIPS()(x0, x1)` for RGB tensors in [−1, 1] of one shape.
    public func distance(_ x0: Tensor, _ x1: Tensor, _ ctx: ComputeContext) throws -> [Float] {
        guard x0.shape == x1.shape else { throw ModelError.invalidInput("LPIPS compares images of one size, got \(x0.shape) and \(x1.shape)") }
        return try distance(features: try features(x0, ctx), try features(x1, ctx), ctx)
    }
}

struct ReLU: Layer {
    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor { try ctx.relu(x) }
}
