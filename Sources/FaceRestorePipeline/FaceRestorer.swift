// Restoring aligned face crops as `GFPGANer.enhance(img, has_aligned=True)` does (gfpgan 1.3.8
// `gfpgan/utils.py`, commit 7552a77): `cv2.resize` to the model's size (INTER_LINEAR), basicsr's
// img2tensor + normalize, the network, `tensor2img` with round-half-even. Upstream's `weight`
// argument has no effect there and is not offered. Noise is the checkpoint's stored buffers
// (deterministic), or with a seed the exact draws upstream makes after `torch.manual_seed(seed)`.
// GPEN models follow yangxy/GPEN `face_model/face_gan.py` (FaceGAN.process, commit 2c73670): the
// same resize and normalization, no noise, and `tensor2img` truncating instead of rounding.

import FaceRestoreEngine
import FaceRestoreImaging
import FaceRestoreModels
import FaceRestoreWeights
import Foundation

/// One restored aligned face.
public struct AlignedRestoration: Sendable {
    /// The input as the network saw it (resized to the model's size): upstream's `cropped_faces`.
    public var input: PixelImage
    /// The restored face, same size.
    public var restored: PixelImage
    public var timings: RestoreTimings
    /// The identity distance (ID-dlib) of the restoration to the input, when measured.
    public var identityDistance: Double?

    /// Input and restoration side by side (upstream's `cmp/` image).
    public var comparison: PixelImage { PixelImage.sideBySide(input, restored) }
}

/// The face restoration network of a checkpoint, by architecture.
public enum FaceNetwork: Sendable {
    case gfpgan(GFPGAN)
    case gpen(GPEN)
    /// RestoreFormer or RestoreFormer++ (a network swap in GFPGANer: GFP-GAN's pipeline).
    case restoreFormer(RestoreFormer)
    /// CodeFormer (its own pipeline, `Recipe.codeFormer`; the fidelity weight w).
    case codeFormer(CodeFormer)

    /// The architecture's name with its configuration, e.g. "GFPGANv1Clean" or "GPEN-512".
    public var name: String {
        switch self {
        case .gfpgan(let net): return net.config.architecture.rawValue
        case .gpen(let net): return "GPEN-\(net.config.size)"
        case .restoreFormer(let net): return net.variant.rawValue
        case .codeFormer(let net): return net.task == .restoration ? "CodeFormer" : "CodeFormer (\(net.task.rawValue))"
        }
    }
}

/// A loaded face restoration model. Immutable and `Sendable`: load once, restore from any thread
/// (each call brings its own `ComputeContext`, which sets the thread count).
public struct FaceRestorer: Sendable {
    public let network: FaceNetwork
    public let modelPath: String

    /// Loads a GFPGAN (v1, v1.2, v1.3, v1.4) or GPEN (BFR 256/512/1024/2048) checkpoint; the
    /// architecture and configuration are read from its tensors.
    public init(modelPath: String, verifyChecksums: Bool = true, context: ComputeContext) throws {
        try self.init(stateDict: try WeightsFile.load(path: modelPath, verifyChecksums: verifyChecksums).0, modelPath: modelPath,
                      context: context)
    }

    /// The same from tensors already read from `modelPath` (see `isGPEN(_:)`).
    public init(stateDict sd: StateDict, modelPath: String, context: ComputeContext) throws {
        switch Architecture.detect(sd) {
        case .gpen?: network = .gpen(try GPEN(stateDict: sd, file: modelPath, context: context))
        case .gfpganClean?, .gfpganV1?: network = .gfpgan(try GFPGAN(stateDict: sd, file: modelPath, context: context))
        case .restoreFormer?:
            let (tensors, losses) = RestoreFormer.networkTensors(sd)
            network = .restoreFormer(try RestoreFormer(stateDict: tensors, file: modelPath, unused: losses.isEmpty ? [] : ["loss."],
                                                       context: context))
        case .codeFormer?: network = .codeFormer(try CodeFormer(stateDict: sd, file: modelPath, context: context))
        case let other:
            throw ModelError.wrongArchitecture(file: modelPath, expected: "a face restoration model (GFPGAN v1/v1.2/v1.3/v1.4 or GPEN)",
                                               found: other?.description ?? "not a network FaceRestore knows")
        }
        self.modelPath = modelPath
    }

    /// The side of the square faces the model restores (512 for every official GFPGAN; GPEN's size).
    public var faceSize: Int {
        switch network {
        case .gfpgan(let net): return net.config.outSize
        case .gpen(let net): return net.config.size
        case .restoreFormer: return RestoreFormer.size
        case .codeFormer: return CodeFormer.size
        }
    }

    /// The pipeline around the network that the model's upstream uses (`Recipe.facexlib` for
    /// GFP-GAN, `Recipe.gpen` for GPEN).
    public var recipe: Recipe {
        switch network {
        case .gfpgan, .restoreFormer: return .facexlib
        case .gpen: return .gpen
        case .codeFormer: return .codeFormer
        }
    }

    /// The recipe of the model these tensors hold, known before the (slower) model build; nil
    /// when they are not a face restoration model.
    public static func recipe(of sd: StateDict) -> Recipe? {
        switch Architecture.detect(sd) {
        case .gpen?: return .gpen
        case .gfpganClean?, .gfpganV1?, .restoreFormer?: return .facexlib
        case .codeFormer?: return .codeFormer
        default: return nil
        }
    }

    /// Whether `seed` changes anything: GFP-GAN draws StyleGAN noise; GPEN has none (its noise
    /// inputs are the encoder's features).
    public var usesNoise: Bool { if case .gfpgan = network { return true } else { return false } }

    /// Fresh noise as upstream draws it (`randomize_noise=True`) right after `torch.manual_seed(seed)`.
    /// GPEN has none (its noise inputs are the encoder's features): empty.
    public func noise(seed: UInt64) -> [Tensor] {
        guard case .gfpgan(let net) = network else { return [] }
        var generator = TorchGenerator(seed: seed)
        return net.noiseShapes.map { Tensor(shape: $0, values: generator.normal(count: $0.reduce(1, *))) }
    }

    /// CodeFormer's fidelity weight when the caller gives none (`inference_codeformer.py -w`).
    public static let defaultFidelity: Float = 0.5

    /// Restores an aligned face crop (8-bit BGR, any size: it is resized like `cv2.resize`).
    /// GFPGAN: `GFPGANer.enhance(has_aligned=True)`; GPEN: `FaceGAN.process` (same input
    /// normalization, truncating output). `seed` only affects GFPGAN; `fidelity` is CodeFormer's
    /// w (its colorization and inpainting checkpoints use their own: 0 and 1).
    public func restoreAligned(_ image: PixelImage, seed: UInt64? = nil, fidelity: Float = FaceRestorer.defaultFidelity,
                               context: ComputeContext) throws -> AlignedRestoration {
        guard image.channels == 3, image.width > 0, image.height > 0 else {
            throw PipelineError.invalidArgument("a face crop must be a non-empty 3-channel BGR image")
        }
        var timings = RestoreTimings()
        let s = faceSize
        let input = timings.measure(\.align) { image.resizedLinear(width: s, height: s) }
        let restored = try timings.measure(\.network) { () throws -> PixelImage in
            let x = FaceTensor.normalized(bgr: input)
            let rounding: FaceTensor.Quantization = recipe.rounding == .truncate ? .truncate : .roundHalfEven
            switch network {
            case .gfpgan(let net):
                return try FaceTensor.bgrImage(from: try net(x, noise: seed.map { noise(seed: $0) }, context), quantization: rounding, context)
            case .gpen(let net):
                return try FaceTensor.bgrImage(from: try net(x, context), quantization: rounding, context)
            case .restoreFormer(let net):
                return try FaceTensor.bgrImage(from: try net.forward(x, context).image, quantization: rounding, context)
            case .codeFormer(let net):
                let (w, adain) = net.call(fidelity: fidelity)
                return try FaceTensor.bgrImage(from: try net.forward(x, w: w, adain: adain, context).image, quantization: rounding, context)
            }
        }
        return AlignedRestoration(input: input, restored: restored, timings: timings)
    }
}
