// LPIPS as the papers' scripts score it: BasicSR `scripts/metrics/calculate_lpips.py` (v1.4.2) and
// VQFR `metric_paper/calculate_lpips.py` call `lpips.LPIPS(net='vgg')` (lpips 0.1.4, v0.1) on
// `cv2.imread(path, IMREAD_UNCHANGED).astype(float32) / 255`, BGR→RGB, normalised with mean 0.5
// and std 0.5 (RGB in [−1, 1]), as `loss(restored, gt)`; GPEN validates with `net='alex'`. The
// network is `LPIPSNet` (FaceRestoreModels); the weights are the user's: torchvision's
// `vgg16-397923af.pth` / `alexnet-owt-7be5be79.pth` backbone with lpips' linear layers
// (`lpips_v0.1_{vgg,alex}.pth`, installed by scripts/pypi_models.py from the lpips wheel), or one
// `lpips.LPIPS().state_dict()` dump holding both.

import FaceRestoreEngine
import FaceRestoreImaging
import FaceRestoreModels
import Foundation

public final class LPIPSMetric: Sendable {
    public typealias Network = LPIPSNet.Backbone

    public let network: Network
    let net: LPIPSNet
    let context: ComputeContext
    /// Keys of the weight files deliberately not used (torchvision's classifier).
    public var ignoredKeys: [String] { net.ignoredKeys }

    /// - Parameters:
    ///   - backbone: torchvision's VGG16 / AlexNet weights, or an `lpips.LPIPS()` state-dict dump.
    ///   - linear: lpips' linear layers (`lpips_v0.1_vgg.pth`); nil when `backbone` is a dump.
    public init(backbone: String, linear: String?, network: Network, context: ComputeContext = ComputeContext()) throws {
        self.network = network
        self.context = context
        // Errors name the file, and the tensor with both shapes (ModelError, WeightsError).
        net = try LPIPSNet(backbone: network, weights: backbone, linear: linear, context: context)
    }

    /// A metric over a network already built (tests: random weights made in memory).
    init(network: LPIPSNet, context: ComputeContext) {
        self.network = network.backbone
        net = network
        self.context = context
    }

    /// The distance of `restored` from `reference`, both 3-channel BGR with values 0…255 (as
    /// `FloatImage(pixelImage)`, i.e. `cv2.imread(…).astype(np.float32)`), of one size.
    public func distance(_ restored: FloatImage, _ reference: FloatImage) throws -> Double {
        guard restored.channels == 3, reference.channels == 3 else {
            throw EvaluationError.invalidInput("LPIPS takes colour (3-channel) images")
        }
        guard restored.width == reference.width, restored.height == reference.height else {
            throw EvaluationError.invalidInput("LPIPS compares images of one size: \(restored.width)×\(restored.height) and \(reference.width)×\(reference.height)")
        }
        return Double(try net.distance(Self.input(restored), Self.input(reference), context)[0])
    }

    /// The same for 8-bit BGR images.
    public func distance(restored: PixelImage, reference: PixelImage) throws -> Double {
        try distance(FloatImage(restored), FloatImage(reference))
    }

    /// The network input `[1, 3, H, W]`: RGB `(v/255 − 0.5)/0.5` in float32, as
    /// `img2tensor(bgr2rgb=True)` and `normalize(…, [0.5]*3, [0.5]*3)` compute it.
    public static func input(_ image: FloatImage) -> Tensor {
        let (w, h) = (image.width, image.height)
        return Tensor(shape: [1, 3, h, w]) { out in
            image.values.withUnsafeBufferPointer { v in
                for c in 0..<3 {
                    let source = 2 - c   // RGB from BGR
                    for p in 0..<(w * h) { out[c * w * h + p] = (v[p * 3 + source] / 255 - 0.5) / 0.5 }
                }
            }
        }
    }

}
