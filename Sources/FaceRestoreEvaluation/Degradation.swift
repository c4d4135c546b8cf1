// The synthetic degradation the face-restoration papers train and test with, drawn from the same
// random streams in the same order as the reference code, so a seed gives the reference's
// parameters exactly:
//   - GFP-GAN: gfpgan 1.3.8 `gfpgan/data/ffhq_degradation_dataset.py` (`__getitem__`) with
//     basicsr 1.4.2 `basicsr/data/degradations.py` (`random_mixed_kernels`,
//     `random_bivariate_Gaussian`, `bivariate_Gaussian`, `mesh_grid`, `pdf2`, `sigma_matrix2`,
//     `random_add_gaussian_noise`, `random_add_jpg_compression`) and the values of
//     `options/train_gfpgan_v1.yml`.
//   - GPEN: `yangxy/GPEN` `training/data_loader/dataset_face.py` (`GFPGAN_degradation`).
//   - CodeFormer: `sczhou/CodeFormer` `basicsr/data/ffhq_blind_dataset.py` with
//     `options/CodeFormer_stage2.yml`.
// Differences from training, as for a test set: no horizontal flip (GPEN's unconditional draw is
// still consumed), and the torch colour jitter of GFP-GAN is not applied (its probability draw
// is). JPEG quality is `int(q)` (what GPEN and CodeFormer do; basicsr 1.4.2 passes the float,
// which OpenCV ≥ 4.5.4 refuses). GPEN resizes its ground truth to 512² with INTER_AREA first:
// done for square faces of 512·k pixels (FFHQ's and CelebA-HQ's 1024²); other sizes are degraded
// at their own size.
// Image i of a run uses `random.seed(S + i)` and `np.random.seed(S + i)`.

import FaceRestoreEngine
import FaceRestoreImaging
import Foundation
import Synchronization

/// The parameters of a degradation pipeline: a paper's preset, each range overridable.
public struct DegradationSettings: Sendable, Codable, Equatable {
    /// Whose pipeline (the order of steps and draws).
    public enum Pipeline: String, Sendable, Codable, CaseIterable {
        case gfpgan, gpen, codeformer
    }

    public var pipeline: Pipeline
    /// Blur kernel size (odd).
    public var kernelSize = 41
    /// Probability of an isotropic kernel (else anisotropic).
    public var isotropicProbability = 0.5
    /// Blur σ range (both axes).
    public var blurSigma: [Double]
    /// Downsampling factor range.
    public var downsample: [Double]
    /// Gaussian noise σ range (on the 0–255 scale); nil: no noise step.
    public var noise: [Double]?
    /// JPEG quality range; nil: no JPEG step.
    public var jpeg: [Double]?
    /// Probability of the per-channel colour shift; nil: not drawn.
    public var colorJitterProbability: Double?
    /// Largest colour shift (0–255 scale).
    public var colorJitterShift = 20.0
    /// Probability of turning the result gray (GPEN: the ground truth); nil or 0: not drawn.
    public var grayProbability: Double?
    /// Probability drawn for the torch colour jitter (not applied); nil: not drawn.
    public var torchJitterProbability: Double?

    public static func preset(_ pipeline: Pipeline) -> DegradationSettings {
        switch pipeline {
        case .gfpgan:
            return DegradationSettings(pipeline: .gfpgan, blurSigma: [0.1, 10], downsample: [0.8, 8], noise: [0, 20], jpeg: [60, 100],
                                       colorJitterProbability: 0.3, grayProbability: 0.01, torchJitterProbability: 0.3)
        case .gpen:
            return DegradationSettings(pipeline: .gpen, blurSigma: [0.1, 10], downsample: [0.8, 8], noise: [0, 20], jpeg: [60, 100],
                                       colorJitterProbability: 0, grayProbability: 0.2, torchJitterProbability: nil)
        case .codeformer:
            return DegradationSettings(pipeline: .codeformer, blurSigma: [1, 15], downsample: [4, 30], noise: [0, 20], jpeg: [30, 80],
                                       colorJitterProbability: nil, grayProbability: nil, torchJitterProbability: nil)
        }
    }

    /// The first setting that cannot work, as an error.
    public func validate() throws {
        func range(_ r: [Double]?, _ name: String, within bounds: ClosedRange<Double>) throws {
            guard let r else { return }
            guard r.count == 2, r[0].isFinite, r[1].isFinite, r[0] <= r[1], bounds.contains(r[0]), bounds.contains(r[1]) else {
                throw EvaluationError.invalidInput("\(name) must be two numbers lo,hi with lo ≤ hi within \(bounds.lowerBound)…\(bounds.upperBound)")
            }
        }
        guard kernelSize % 2 == 1, (1...201).contains(kernelSize) else {
            throw EvaluationError.invalidInput("the kernel size must be odd, 1 to 201, got \(kernelSize)")
        }
        try range(blurSigma, "the blur sigma range", within: 0.01...100)
        try range(downsample, "the scale range", within: 0.1...64)
        try range(noise, "the noise range", within: 0...255)
        try range(jpeg, "the JPEG quality range", within: 1...100)
        for (p, name) in [(isotropicProbability, "the isotropic probability"), (colorJitterProbability ?? 0, "the colour jitter probability"),
                          (grayProbability ?? 0, "the gray probability"), (torchJitterProbability ?? 0, "the torch jitter probability")]
        where !(0...1).contains(p) {
            throw EvaluationError.invalidInput("\(name) must be between 0 and 1, got \(p)")
        }
    }
}

/// What one degradation drew (the JSON sidecar of each output).
public struct DegradationRecord: Sendable, Codable, Equatable {
    public var pipeline: DegradationSettings.Pipeline
    /// The seed of both streams (the run's seed plus the image's index).
    public var seed: Int
    /// "iso" or "aniso".
    public var kernel: String
    public var sigmaX: Double
    public var sigmaY: Double
    public var theta: Double
    public var scale: Double
    /// The downsampled size (width, height).
    public var downsampledSize: [Int]
    /// Noise σ on the 0–255 scale (nil without a noise step).
    public var noiseSigma: Double?
    /// The integer JPEG quality used (nil without a JPEG step).
    public var jpegQuality: Int?
    /// The colour shift added to B, G, R (0–1 scale), when drawn below its probability.
    public var colorJitter: [Float]?
    public var gray: Bool
    /// GPEN: the ground truth was turned gray before degrading.
    public var groundTruthGray: Bool
    /// GFP-GAN's torch colour jitter would have run (it is not applied here).
    public var torchJitterSkipped: Bool

    enum CodingKeys: String, CodingKey {
        case pipeline, seed, kernel, theta, scale, gray
        case sigmaX = "sigma_x", sigmaY = "sigma_y", downsampledSize = "downsampled_size", noiseSigma = "noise_sigma"
        case jpegQuality = "jpeg_quality", colorJitter = "color_jitter", groundTruthGray = "gt_gray"
        case torchJitterSkipped = "torch_jitter_skipped"
    }
}

/// One degraded image.
public struct Degraded: Sendable {
    /// The low-quality image, 8-bit BGR.
    public var image: PixelImage
    /// The ground truth when the pipeline changed it (GPEN's 512² resize, jitter or gray), else nil.
    public var groundTruth: PixelImage?
    public var record: DegradationRecord
}

/// Degrades high-quality images as a paper's training pipeline does.
public struct Degrader: Sendable {
    public let settings: DegradationSettings

    public init(_ settings: DegradationSettings) throws {
        try settings.validate()
        self.settings = settings
    }

    /// The blur kernel of `bivariate_Gaussian` normalised twice (float64, row-major).
    public static func gaussianKernel(size: Int, sigmaX: Double, sigmaY: Double, theta: Double, isotropic: Bool) -> [Double] {
        // Σ = U·diag(σx², σy²)·Uᵀ, or σx²·I; its inverse.
        let (a, b, c, d): (Double, Double, Double, Double)
        if isotropic {
            (a, b, c, d) = (sigmaX * sigmaX, 0, 0, sigmaX * sigmaX)
        } else {
            let (co, si) = (cos(theta), sin(theta))
            let (dx, dy) = (sigmaX * sigmaX, sigmaY * sigmaY)
            // U·(D·Uᵀ): D·Uᵀ = [[dx·c, dx·s], [−dy·s, dy·c]].
            let (m00, m01, m10, m11) = (dx * co, dx * si, dy * -si, dy * co)
            (a, b, c, d) = (co * m00 + -si * m10, co * m01 + -si * m11, si * m00 + co * m10, si * m01 + co * m11)
        }
        let det = a * d - b * c
        let (i00, i01, i10, i11) = (d / det, -b / det, -c / det, a / det)
        let r = size / 2
        var kernel = [Double](repeating: 0, count: size * size)
        for row in 0..<size {
            let y = Double(row - r)
            for col in 0..<size {
                let x = Double(col - r)
                // sum(dot(v, Σ⁻¹) * v) for v = (x, y).
                let q = (x * i00 + y * i10) * x + (x * i01 + y * i11) * y
                kernel[row * size + col] = exp(-0.5 * q)
            }
        }
        for _ in 0..<2 {
            let sum = kernel.reduce(0, +)
            for i in kernel.indices { kernel[i] /= sum }
        }
        return kernel
    }

    /// Python's `float // float` (CPython `float_floor_div`).
    static func floorDivide(_ a: Double, _ b: Double) -> Double {
        var mod = fmod(a, b)
        var div = (a - mod) / b
        if mod != 0, (b < 0) != (mod < 0) { mod += b; div -= 1 }
        if div != 0 {
            var floored = div.rounded(.down)
            if div - floored > 0.5 { floored += 1 }
            return floored
        }
        return copysign(0, a / b)
    }

    /// Degrades an 8-bit BGR image with both random streams seeded by `seed`.
    public func degrade(_ image: PixelImage, seed: Int, context: ComputeContext) throws -> Degraded {
        guard image.channels == 3 else { throw EvaluationError.invalidInput("degradation needs a colour (3-channel) image") }
        guard (0...Int(UInt32.max)).contains(seed) else { throw EvaluationError.invalidInput("the seed must be between 0 and 4294967295, got \(seed)") }
        let s = settings
        var python = PythonRandom(seed: seed)
        var numpy = NumpyRandom(seed: UInt32(seed))
        var image = image
        var groundTruthChanged = false
        if s.pipeline == .gpen, image.width == image.height, image.width > 512, image.width % 512 == 0,
           let shrunk = image.shrunkByArea(factor: image.width / 512) {
            image = shrunk
            groundTruthChanged = true
        }
        let (w, h) = (image.width, image.height)
        var gt = FloatImage.divided255(image)
        var record = DegradationRecord(pipeline: s.pipeline, seed: seed, kernel: "iso", sigmaX: 0, sigmaY: 0, theta: 0, scale: 1,
                                       downsampledSize: [w, h], noiseSigma: nil, jpegQuality: nil, colorJitter: nil, gray: false,
                                       groundTruthGray: false, torchJitterSkipped: false)
        if s.pipeline == .gpen {
            _ = python.random()   // the flip draw (no flip)
            if numpy.uniform() < (s.colorJitterProbability ?? 0) {
                let shift = s.colorJitterShift / 255
                let jitter = (0..<3).map { _ in Float(numpy.uniform(-shift, shift)) }
                gt = gt.shifted(by: jitter).clipped()
                record.colorJitter = jitter
                groundTruthChanged = true
            }
            if numpy.uniform() < (s.grayProbability ?? 0) {
                gt = gt.grayTiled()
                record.groundTruthGray = true
                groundTruthChanged = true
            }
        }
        // Blur.
        let isotropic = python.choice(weights: [s.isotropicProbability, 1 - s.isotropicProbability]) == 0
        record.kernel = isotropic ? "iso" : "aniso"
        record.sigmaX = numpy.uniform(s.blurSigma[0], s.blurSigma[1])
        record.sigmaY = record.sigmaX
        if !isotropic {
            record.sigmaY = numpy.uniform(s.blurSigma[0], s.blurSigma[1])
            record.theta = numpy.uniform(-Double.pi, Double.pi)
        }
        let kernel = Self.gaussianKernel(size: s.kernelSize, sigmaX: record.sigmaX, sigmaY: record.sigmaY, theta: record.theta,
                                         isotropic: isotropic)
        // An isotropic Gaussian is the outer product of its normalised 1-D profile.
        let factor: [Double]? = isotropic ? {
            let r = s.kernelSize / 2
            let g = (0..<s.kernelSize).map { exp(-0.5 * Double(($0 - r) * ($0 - r)) / (record.sigmaX * record.sigmaX)) }
            let sum = g.reduce(0, +)
            return g.map { $0 / sum }
        }() : nil
        // Downsample (the scale is drawn after the blur's parameters; the blur only computes the
        // rows the resize reads).
        record.scale = numpy.uniform(s.downsample[0], s.downsample[1])
        let dw = max(1, Int(Self.floorDivide(Double(w), record.scale)))
        let dh = max(1, Int(Self.floorDivide(Double(h), record.scale)))
        record.downsampledSize = [dw, dh]
        let read = (dw, dh) != (w, h) ? Plane<Float>.linearSourceIndices(source: h, destination: dh) : nil
        var lq = try gt.filtered(kernel: kernel, size: s.kernelSize, factor: factor, rows: read, threads: context.threads)
        lq = try lq.resizedLinear(width: dw, height: dh)
        // Noise.
        if let noise = s.noise {
            let sigma: Float
            if s.pipeline == .codeformer {
                let scaled = numpy.uniform(noise[0] / 255, noise[1] / 255)
                record.noiseSigma = scaled * 255
                sigma = Float(scaled)
            } else {
                let drawn = numpy.uniform(noise[0], noise[1])
                _ = numpy.uniform()   // the gray-noise draw (probability 0)
                record.noiseSigma = drawn
                sigma = Float(drawn)
            }
            let n = numpy.randnFloat32(count: lq.values.count)
            for i in lq.values.indices {
                let v = s.pipeline == .codeformer ? n[i] * sigma : n[i] * sigma / 255
                lq.values[i] = min(max(lq.values[i] + v, 0), 1)
            }
        }
        // JPEG.
        if let jpeg = s.jpeg {
            let q = Int(numpy.uniform(jpeg[0], jpeg[1]))
            record.jpegQuality = q
            lq = try lq.jpegRoundTrip(quality: q)
        }
        if s.pipeline == .gpen {
            // Round and clip before the upsampling.
            for i in lq.values.indices { lq.values[i] = min(max((lq.values[i] * 255).rounded(.toNearestOrEven), 0), 255) / 255 }
            lq = try lq.resizedLinear(width: w, height: h)
        } else {
            lq = try lq.resizedLinear(width: w, height: h)
            if let p = s.colorJitterProbability, numpy.uniform() < p {
                let shift = s.colorJitterShift / 255
                let jitter = (0..<3).map { _ in Float(numpy.uniform(-shift, shift)) }
                lq = lq.shifted(by: jitter).clipped()
                record.colorJitter = jitter
            }
            if let p = s.grayProbability, p > 0, numpy.uniform() < p {
                lq = lq.grayTiled()
                record.gray = true
            }
            if let p = s.torchJitterProbability, numpy.uniform() < p { record.torchJitterSkipped = true }
        }
        return Degraded(image: lq.pixelImage(scale: 255), groundTruth: groundTruthChanged ? gt.pixelImage(scale: 255) : nil, record: record)
    }
}

extension FloatImage {
    /// `img + shift` with one shift per channel (float32).
    func shifted(by shift: [Float]) -> FloatImage {
        var out = self
        for i in out.values.indices { out.values[i] += shift[i % channels] }
        return out
    }
}

extension Degrader {
    /// Degrades `files` (image i with seed `seed + i`) into `folder`: `<name>.png`, `<name>.json`
    /// (the record) and, where the pipeline changed the ground truth, `gt/<name>.png`; every file
    /// written atomically. Images run `workers` at a time, each on one thread, so the outputs are
    /// the same for any worker count. `progress` gets (index, file, error or nil) as each finishes,
    /// on the worker's thread. Returns the files that failed, with their errors, in input order.
    public func degrade(files: [String], seed: Int, into folder: String, workers: Int,
                        progress: (@Sendable (Int, String, Error?) -> Void)? = nil) throws -> [(String, Error)] {
        guard seed >= 0, seed <= Int(UInt32.max) - files.count else {
            throw EvaluationError.invalidInput("the seed plus the number of images must stay between 0 and 4294967295")
        }
        for dir in [folder] + (settings.pipeline == .gpen ? [folder + "/gt"] : []) {
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                throw EvaluationError.invalidInput("\(dir): cannot create the folder")
            }
        }
        let failures = Mutex([Int: Error]())
        let next = Mutex(0)
        let context = ComputeContext(threads: 1)
        DispatchQueue.concurrentPerform(iterations: max(1, min(workers, files.count))) { _ in
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            while true {
                let i = next.withLock { n -> Int in defer { n += 1 }; return n }
                guard i < files.count else { return }
                let file = files[i]
                do {
                    let image = try ImageIO.read(path: file).image
                    let result = try degrade(image, seed: seed + i, context: context)
                    let name = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
                    try ImageIO.write(result.image, to: "\(folder)/\(name).png")
                    if let gt = result.groundTruth { try ImageIO.write(gt, to: "\(folder)/gt/\(name).png") }
                    try writeFileAtomically(try encoder.encode(result.record), to: "\(folder)/\(name).json")
                    progress?(i, file, nil)
                } catch {
                    failures.withLock { $0[i] = error }
                    progress?(i, file, error)
                }
            }
        }
        return failures.withLock { $0 }.sorted { $0.key < $1.key }.map { (files[$0.key], $0.value) }
    }
}
