// ID-dlib: the identity distance between two faces as 1 − cos of their dlib face descriptors
// (dlib's face-recognition ResNet, `dlib_face_recognition_resnet_model_v1.dat`, 128-d). The
// network is FaceRestoreModels.DlibResNet read by FaceRestoreWeights.DlibNetwork; the chips are
// dlib's (FaceChip.swift). Parity with PyPI dlib: scripts/parity_dlib.py.

import FaceRestoreEngine
import FaceRestoreImaging
import FaceRestoreModels
import FaceRestoreWeights
import Foundation

public final class DlibFaceRecognizer: Sendable {
    /// The model's file name in the model cache (scripts/pypi_models.py installs it).
    public static let fileName = "dlib_face_recognition_resnet_model_v1.dat"

    /// `$FACERESTORE_HOME/models/<fileName>` (default home ~/.cache/facerestore).
    public static var defaultPath: String { MetricWeights.modelDirectory + "/" + fileName }

    public let path: String
    let network: DlibResNet
    let context: ComputeContext

    /// Loads the network; throws one line naming the file and what is wrong with it.
    /// `threads`: threads per convolution (1 suits many small chips evaluated in parallel).
    public init(path: String, threads: Int = 1) throws {
        self.path = path
        let context = ComputeContext(threads: threads)
        let file = try DlibNetwork(path: path, structure: DlibResNet.structure)
        network = try DlibResNet(network: file, context: context)
        self.context = context
    }

    /// The 128-d descriptor of a 150×150 chip (`chip` 8-bit, 3 channels, BGR as ImageIO decodes
    /// images; `rgb: true` for RGB), as dlib's `compute_face_descriptor(chip)` returns it
    /// (unnormalised).
    public func embedding(chip: PixelImage, rgb: Bool = false) throws -> [Float] {
        let s = DlibResNet.inputSize
        guard chip.width == s, chip.height == s, chip.channels == 3 else {
            throw EvaluationError.invalidInput("ID-dlib: a \(s)×\(s) 3-channel chip is needed, got \(chip.width)×\(chip.height)×\(chip.channels)")
        }
        var bytes = chip.pixels
        if !rgb {
            for i in stride(from: 0, to: bytes.count, by: 3) { bytes.swapAt(i, i + 2) }
        }
        return try network.descriptor(rgb: bytes, context)
    }

    /// dlib's 150×150 chip (padding 0.25) of the face with these five landmarks (image pixels:
    /// eye on the image's left, other eye, nose tip, left and right mouth corner — RetinaFace's
    /// order). Channels are kept as they are.
    public static func chip(from image: PixelImage, landmarks: [(x: Double, y: Double)]) throws -> PixelImage {
        try DlibFaceChip.extract(from: image, DlibFaceChip.details(landmarks: landmarks))
    }

    /// The chip of an aligned face (FaceRestore's aligned faces: GFP-GAN's FFHQ five-point
    /// template on a 512² face; any square size, the template scaled), so no detector is needed.
    public static func chip(alignedFace face: PixelImage) throws -> PixelImage {
        guard face.width == face.height, face.width >= 16 else {
            throw EvaluationError.invalidInput("ID-dlib: an aligned face must be square, got \(face.width)×\(face.height)")
        }
        return try chip(from: face, landmarks: DlibFaceChip.ffhqLandmarks(side: face.width))
    }

    /// The descriptor of the face with these landmarks in `image` (BGR unless `rgb`).
    public func embedding(image: PixelImage, landmarks: [(x: Double, y: Double)], rgb: Bool = false) throws -> [Float] {
        try embedding(chip: Self.chip(from: image, landmarks: landmarks), rgb: rgb)
    }

    /// The descriptor of an aligned face (BGR unless `rgb`).
    public func embedding(alignedFace face: PixelImage, rgb: Bool = false) throws -> [Float] {
        try embedding(chip: Self.chip(alignedFace: face), rgb: rgb)
    }

    /// 1 − cos(a, b), in double; 1 when either vector is zero, NaN when their sizes differ.
    public static func cosineDistance(_ a: [Float], _ b: [Float]) -> Double {
        guard a.count == b.count else { return .nan }
        var dot = 0.0, na = 0.0, nb = 0.0
        for (x, y) in zip(a, b) {
            dot += Double(x) * Double(y)
            na += Double(x) * Double(x)
            nb += Double(y) * Double(y)
        }
        guard na > 0, nb > 0 else { return 1 }
        return 1 - dot / (na.squareRoot() * nb.squareRoot())
    }

    /// ID-dlib between two aligned faces (restored vs ground truth, both BGR).
    public func distance(alignedFace a: PixelImage, _ b: PixelImage) throws -> Double {
        Self.cosineDistance(try embedding(alignedFace: a), try embedding(alignedFace: b))
    }
}
