// Restoring aligned face crops as `GFPGANer.enhance(img, has_aligned=True)` does (gfpgan 1.3.8
// `gfpgan/utils.py`, commit 7552a77): `cv2.resize` to the model's size (INTER_LINEAR), basicsr's
// img2tensor + normalize, the network, `tensor2img` with round-half-even. Upstream's `weight`
// argument has no effect there and is not offered. Noise is the checkpoint's stored buffers
// (deterministic), or with a seed the exact draws upstream makes after `torch.manual_seed(seed)`.

import FaceRestoreEngine
import FaceRestoreImaging
import FaceRestoreModels
import Foundation

/// One restored aligned face.
public struct AlignedRestoration: Sendable {
    /// The input as the network saw it (resized to the model's size): upstream's `cropped_faces`.
    public var input: PixelImage
    /// The restored face, same size.
    public var restored: PixelImage
    public var timings: RestoreTimings

    /// Input and restoration side by side (upstream's `cmp/` image).
    public var comparison: PixelImage { PixelImage.sideBySide(input, restored) }
}

/// A loaded face restoration model. Immutable and `Sendable`: load once, restore from any thread
/// (each call brings its own `ComputeContext`, which sets the thread count).
public struct FaceRestorer: Sendable {
    public let network: GFPGAN
    public let modelPath: String

    /// Loads a GFPGAN checkpoint (v1, v1.2, v1.3 or v1.4; the architecture is read from its tensors).
    public init(modelPath: String, context: ComputeContext) throws {
        network = try GFPGAN(path: modelPath, context: context)
        self.modelPath = modelPath
    }

    /// The side of the square faces the model restores (512 for every official GFPGAN).
    public var faceSize: Int { network.config.outSize }

    /// Fresh noise as upstream draws it (`randomize_noise=True`) right after `torch.manual_seed(seed)`.
    public func noise(seed: UInt64) -> [Tensor] {
        var generator = TorchGenerator(seed: seed)
        return network.noiseShapes.map { Tensor(shape: $0, values: generator.normal(count: $0.reduce(1, *))) }
    }

    /// Restores an aligned face crop (8-bit BGR, any size: it is resized like `cv2.resize`).
    public func restoreAligned(_ image: PixelImage, seed: UInt64? = nil, context: ComputeContext) throws -> AlignedRestoration {
        var timings = RestoreTimings()
        let s = faceSize
        let input = timings.measure(\.align) { image.resizedLinear(width: s, height: s) }
        let restored = try timings.measure(\.network) { () throws -> PixelImage in
            let x = FaceTensor.normalized(bgr: input)
            let y = try network(x, noise: seed.map { noise(seed: $0) }, context)
            return try FaceTensor.bgrImage(from: y, context)
        }
        return AlignedRestoration(input: input, restored: restored, timings: timings)
    }
}
