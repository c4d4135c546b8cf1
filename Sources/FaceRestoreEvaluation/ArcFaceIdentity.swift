// The identity "Deg." of GFP-GAN, VQFR and RestoreFormer tables: VQFR `metric_paper/
// calculate_cos_dist.py` (TencentARC/VQFR 1245d42). Each image is read as
// `cv2.imread(path, 0)` (OpenCV's gray read, `ImageIO.readGrayscale`), resized to 128 × 128 with
// `cv2.resize(…, INTER_LINEAR)` on 8 bits (`PixelImage.resizedLinear`, bit-exact; an exact 2×
// reduction is OpenCV's INTER_AREA), scaled to (v − 127.5)/127.5 and embedded by arcface-pytorch's
// `resnet_face18(use_se=False)` (`ArcFaceResNet`; weights `resnet18_110.pth`, or GFP-GAN's
// `arcface_resnet18.pth`: user-supplied). The score of a pair is the angle
// arccos(cos(e_gt, e_restored))·180/π; pairs under 1° are dropped from the mean (the script's
// "almost identical" count). Upstream computes the cosine in float32 numpy (it can reach
// 1.0000001 and give NaN for identical images); here it is computed in double and clamped to
// [−1, 1].

import FaceRestoreEngine
import FaceRestoreImaging
import FaceRestoreModels
import Foundation

public final class ArcFaceIdentity: Sendable {
    /// The input side.
    public static let size = ArcFaceResNet.inputSize
    /// Pairs closer than this (degrees) count as identical and are left out of the mean.
    public static let identicalBelow = 1.0

    let net: ArcFaceResNet
    let context: ComputeContext
    public var usesSE: Bool { net.useSE }

    /// Loads `resnet18_110.pth` (arcface-pytorch, `module.` keys), `arcface_resnet18.pth`
    /// (GFP-GAN) or any state dict of that network. Errors name the file and the tensor.
    public init(weights path: String, context: ComputeContext = ComputeContext()) throws {
        net = try ArcFaceResNet(path: path, context: context)
        self.context = context
    }

    init(network: ArcFaceResNet, context: ComputeContext) {
        net = network
        self.context = context
    }

    /// VQFR's `load_image` up to the network input: `cv2.resize(cv2.imread(path, 0), (128, 128))`.
    public static func gray128(path: String) throws -> PixelImage {
        gray128(try ImageIO.readGrayscale(path: path))
    }

    /// A one-channel image resized to 128 × 128 as `cv2.resize(…, INTER_LINEAR)` does.
    public static func gray128(_ gray: PixelImage) -> PixelImage {
        gray.resizedLinear(width: size, height: size)
    }

    /// The 512-d embedding of a 128 × 128 one-channel image.
    public func embedding(gray128 image: PixelImage) throws -> [Float] {
        try embeddings(gray128: [image])[0]
    }

    /// Embeddings of several 128 × 128 one-channel images, run as one batch.
    public func embeddings(gray128 images: [PixelImage]) throws -> [[Float]] {
        guard images.allSatisfy({ $0.channels == 1 && $0.width == Self.size && $0.height == Self.size }) else {
            throw EvaluationError.invalidInput("ArcFace takes 128×128 one-channel images (gray128(path:))")
        }
        return try net.embeddings(try ArcFaceResNet.input(gray: images.map(\.pixels)), context)
    }

    /// The embedding of an image file, read as VQFR reads it.
    public func embedding(path: String) throws -> [Float] {
        try embedding(gray128: try Self.gray128(path: path))
    }

    /// arccos(cos(a, b)) in degrees (the cosine in double, clamped to [−1, 1]).
    public static func angleDegrees(_ a: [Float], _ b: [Float]) -> Double {
        guard a.count == b.count else { return .nan }   // embeddings of different networks
        var dot = 0.0, na = 0.0, nb = 0.0
        for i in a.indices {
            let x = Double(a[i]), y = Double(b[i])
            dot += x * y; na += x * x; nb += y * y
        }
        let cos = dot / (na.squareRoot() * nb.squareRoot())
        return acos(min(max(cos.isNaN ? 0 : cos, -1), 1)) * 180 / Double.pi
    }

    /// The angle between a restored image and its reference, in degrees.
    public func angleDegrees(restored: String, reference: String) throws -> Double {
        let e = try embeddings(gray128: [try Self.gray128(path: reference), try Self.gray128(path: restored)])
        return Self.angleDegrees(e[0], e[1])
    }
}

/// The dataset figure: the mean angle over pairs at or above 1°, and how many were dropped.
public struct IdentityDegree: Sendable, Equatable, Codable {
    /// The mean over the pairs kept (nil when none is).
    public var mean: Double?
    public var kept: Int
    /// Pairs under `ArcFaceIdentity.identicalBelow` degrees, left out of the mean.
    public var dropped: Int

    public init(angles: [Double], identicalBelow threshold: Double = ArcFaceIdentity.identicalBelow) {
        let kept = angles.filter { !($0 < threshold) }
        self.mean = kept.isEmpty ? nil : kept.reduce(0, +) / Double(kept.count)
        self.kept = kept.count
        dropped = angles.count - kept.count
    }
}
