// FID as basicsr 1.4.2 computes it: `scripts/metrics/calculate_fid_folder.py` (images read with
// cv2, RGB, (x/255 − 0.5)/0.5, the FID Inception's 2048-d pool3 features, `np.mean` and
// `np.cov(rowvar=False)`), `basicsr/metrics/fid.py` `calculate_fid` (the Fréchet distance
// ‖μ1−μ2‖² + tr Σ1 + tr Σ2 − 2 tr √(Σ1Σ2) with `scipy.linalg.sqrtm`, an eps·I offset on both
// covariances when the square root is not finite, and an error when its diagonal has an imaginary
// part above 1e-3), and pytorch-fid 0.3.0's `.npz` statistics files (`mu`, `sigma`).
//
// tr √(Σ1Σ2) without a general matrix square root: with Σ1 = B·Bᵀ (pivoted Cholesky, B = P·L of
// Σ1's numerical rank r), Σ1Σ2 = B·(Bᵀ·Σ2) has the nonzero eigenvalues of the symmetric positive
// semi-definite r × r M = Bᵀ·Σ2·B, and tr √(Σ1Σ2) = Σ √μᵢ over them (negative ones are rounding
// noise, whose square roots are scipy's imaginary part, and count 0 towards the real trace).
// A Cholesky factorisation, two matrix products and one eigenvalues-only decomposition (two-stage
// reduction), in double through the system LAPACK/BLAS (OpenBLAS); scipy's Schur-based sqrtm
// and a one-stage symmetric eigensolver are both memory-bound and take tens of seconds at 2048.

import CChecksum
import CLinearAlgebra
import FaceRestoreEngine
import FaceRestoreImaging
import FaceRestoreModels
import Foundation

/// The statistics FID compares: the mean and covariance of a set of feature vectors.
public struct FIDStatistics: Sendable, Equatable {
    /// μ, `dimension` values.
    public let mean: [Double]
    /// Σ, `dimension × dimension`, row-major (symmetric).
    public let covariance: [Double]
    /// How many feature vectors they were computed from (nil when read from a file, which does
    /// not record it).
    public let count: Int?

    public var dimension: Int { mean.count }

    public init(mean: [Double], covariance: [Double], count: Int? = nil) throws {
        let (square, overflow) = mean.count.multipliedReportingOverflow(by: mean.count)
        guard !mean.isEmpty, !overflow, covariance.count == square else {
            throw EvaluationError.invalidInput("FID statistics: a \(mean.count)-d mean needs a \(mean.count)×\(mean.count) covariance, got \(covariance.count) values")
        }
        self.mean = mean
        self.covariance = covariance
        self.count = count
    }

    /// `np.mean(f, 0)` and `np.cov(f, rowvar=False)` of the rows `features` (at least 2, all of
    /// one length), in double.
    public init(features: [[Float]]) throws {
        guard features.count >= 2 else {
            throw EvaluationError.invalidInput("FID needs at least 2 images to estimate a covariance, got \(features.count)")
        }
        let d = features[0].count
        guard d > 0, features.allSatisfy({ $0.count == d }) else {
            throw EvaluationError.invalidInput("FID: feature vectors of different lengths")
        }
        let n = features.count
        try FID.requireLinearAlgebra()
        guard n < Int(Int32.max), d < 1 << 15 else { throw EvaluationError.invalidInput("FID: \(n) vectors of \(d) values is too many") }
        var mean = [Double](repeating: 0, count: d)
        for f in features { for j in 0..<d { mean[j] += Double(f[j]) } }
        for j in 0..<d { mean[j] /= Double(n) }
        // Centred rows (n × d row-major = d × n column-major, Y); Σ = Y·Yᵀ/(n − 1).
        var centred = [Double](repeating: 0, count: n * d)
        for (i, f) in features.enumerated() { for j in 0..<d { centred[i * d + j] = Double(f[j]) - mean[j] } }
        var cov = [Double](repeating: 0, count: d * d)
        centred.withUnsafeBufferPointer { y in
            cov.withUnsafeMutableBufferPointer { c in
                _ = fr_gemm(0, 1, Int32(d), Int32(d), Int32(n), 1 / Double(n - 1), y.baseAddress, Int32(d), y.baseAddress, Int32(d), 0,
                        c.baseAddress, Int32(d))
            }
        }
        try self.init(mean: mean, covariance: cov, count: n)
    }

    /// Reads pytorch-fid's `.npz` statistics (`mu`, `sigma`; also `mean`, `cov`), float64 or
    /// float32, stored uncompressed (`np.savez`). basicsr's `inception_FFHQ_512.pth` (a pickled
    /// dict of numpy arrays, which the safe pickle reader does not rebuild) is refused with the
    /// one-line command that converts it. With `dimension`, a file of another dimension is refused.
    public static func load(path: String, dimension: Int? = FIDInception.dimension) throws -> FIDStatistics {
        let ext = URL(fileURLWithPath: path).pathExtension.lowercased()
        if ext != "npz" {
            let exists = FileManager.default.fileExists(atPath: path)
            guard exists else { throw EvaluationError.modelFile(path: path, reason: "no such file") }
            throw EvaluationError.modelFile(path: path, reason: "FID statistics are read from pytorch-fid's .npz (mu, sigma); convert a basicsr .pth with: " + conversionCommand(path))
        }
        let arrays = try NumpyArchive.read(path: path)
        guard let mu = arrays["mu"] ?? arrays["mean"], let sigma = arrays["sigma"] ?? arrays["cov"] else {
            throw EvaluationError.modelFile(path: path, reason: "no 'mu' and 'sigma' arrays (has \(arrays.keys.sorted().joined(separator: ", ")))")
        }
        let d = mu.values.count
        guard mu.shape.count == 1, sigma.shape == [d, d] else {
            throw EvaluationError.modelFile(path: path, reason: "'mu' has shape \(mu.shape) and 'sigma' \(sigma.shape); FID statistics need [d] and [d, d]")
        }
        if let dimension, d != dimension {
            throw EvaluationError.modelFile(path: path, reason: "\(d)-d statistics; the FID Inception's features are \(dimension)-d")
        }
        return try FIDStatistics(mean: mu.values, covariance: sigma.values)
    }

    /// The command that turns basicsr's torch-saved `{'mean', 'cov'}` statistics into an `.npz`.
    public static func conversionCommand(_ path: String) -> String {
        let out = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent + ".npz"
        return "python3 -c \"import torch, numpy as np; s = torch.load('\(path)'); np.savez('\(out)', mu=s['mean'], sigma=s['cov'])\""
    }

    /// Writes `mu` and `sigma` (float64) as pytorch-fid's `.npz` (`np.savez` layout), atomically.
    public func save(to path: String) throws {
        let bytes = NumpyArchive.archive([("mu", [dimension], mean), ("sigma", [dimension, dimension], covariance)])
        do { try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw EvaluationError.modelFile(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}

/// FID: features of image folders through the FID Inception, and the Fréchet distance.
public enum FID {
    /// The offset basicsr adds to both diagonals when √(Σ1Σ2) is not finite.
    public static let epsilon = 1e-6

    /// Throws unless the system OpenBLAS (LAPACK) could be loaded.
    static func requireLinearAlgebra() throws {
        guard fr_linear_algebra_available() != 0 else {
            throw EvaluationError.invalidInput("FID needs the system OpenBLAS (libopenblas.so.0; Debian: apt install libopenblas0)")
        }
    }

    /// basicsr `calculate_fid(μ1, Σ1, μ2, Σ2)`.
    public static func frechetDistance(_ a: FIDStatistics, _ b: FIDStatistics) throws -> Double {
        guard a.dimension == b.dimension else {
            throw EvaluationError.invalidInput("FID statistics of different dimensions: \(a.dimension) and \(b.dimension)")
        }
        let d = a.dimension
        var trace = try traceOfSquareRoot(a.covariance, b.covariance, dimension: d)
        if !trace.isFinite {
            // calculate_fid: "Product of cov matrices is singular", retried with eps·I on both.
            func offset(_ s: [Double]) -> [Double] {
                var s = s
                for i in 0..<d { s[i * d + i] += epsilon }
                return s
            }
            trace = try traceOfSquareRoot(offset(a.covariance), offset(b.covariance), dimension: d)
        }
        var meanNorm = 0.0, traces = 0.0
        for i in 0..<d {
            let diff = a.mean[i] - b.mean[i]
            meanNorm += diff * diff
            traces += a.covariance[i * d + i] + b.covariance[i * d + i]
        }
        return meanNorm + traces - 2 * trace
    }

    /// tr √(Σ1Σ2) for symmetric positive semi-definite `s1`, `s2` (`dimension²` values each,
    /// row-major): with the pivoted Cholesky factor Σ1 = B·Bᵀ (B = P·L, n × rank), Σ1Σ2 = B·(Bᵀ·Σ2)
    /// has the nonzero eigenvalues of the symmetric rank × rank M = Bᵀ·Σ2·B, and the trace is
    /// Σ √max(μ, 0) over them. Not finite when an input is not. Throws where scipy's square root
    /// would have an imaginary part above basicsr's 1e-3 (an eigenvalue of M below −1e-6: the
    /// inputs are not covariances).
    public static func traceOfSquareRoot(_ s1: [Double], _ s2: [Double], dimension d: Int) throws -> Double {
        guard d > 0, d < 1 << 15, s1.count == d * d, s2.count == d * d else {
            throw EvaluationError.invalidInput("FID: covariances of \(s1.count) and \(s2.count) values for dimension \(d)")
        }
        guard s1.allSatisfy(\.isFinite), s2.allSatisfy(\.isFinite) else { return .nan }
        try requireLinearAlgebra()
        let n = Int32(d)
        var l = s1
        var pivot = [Int32](repeating: 0, count: d)
        var rank32: Int32 = 0
        let info1 = l.withUnsafeMutableBufferPointer { a in pivot.withUnsafeMutableBufferPointer { fr_pivoted_cholesky(n, a.baseAddress, $0.baseAddress, &rank32) } }
        guard info1 == 0 || info1 == 1, rank32 >= 0, rank32 <= n, pivot.allSatisfy({ $0 >= 1 && $0 <= n }) else {
            throw EvaluationError.invalidInput("FID: the Cholesky factorisation of Σ1 failed (LAPACK dpstrf info \(info1))")
        }
        let r = Int(rank32)
        guard r > 0 else { return 0 }
        // B = P·L (n × r, column-major): row piv[i] − 1 of B is row i of L's first r columns.
        var b = [Double](repeating: 0, count: d * r)
        for j in 0..<r {
            for i in j..<d { b[j * d + Int(pivot[i]) - 1] = l[j * d + i] }
        }
        var c = [Double](repeating: 0, count: d * r)
        var m = [Double](repeating: 0, count: r * r)
        s2.withUnsafeBufferPointer { s2p in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    _ = fr_gemm(0, 0, n, rank32, n, 1, s2p.baseAddress, n, bp.baseAddress, n, 0, cp.baseAddress, n)   // C = Σ2·B
                }
                m.withUnsafeMutableBufferPointer { mp in
                    c.withUnsafeBufferPointer { cp in
                        _ = fr_gemm(1, 0, rank32, rank32, n, 1, bp.baseAddress, n, cp.baseAddress, n, 0, mp.baseAddress, rank32)   // M = Bᵀ·C
                    }
                }
            }
        }
        var mu = [Double](repeating: 0, count: r)
        let info2 = m.withUnsafeMutableBufferPointer { a in mu.withUnsafeMutableBufferPointer { fr_symmetric_eigenvalues(rank32, a.baseAddress, $0.baseAddress) } }
        guard info2 == 0 else { throw EvaluationError.invalidInput("FID: the eigenvalues of Bᵀ·Σ2·B failed (LAPACK dsyevd_2stage info \(info2))") }
        if let lowest = mu.min(), lowest < 0, (-lowest).squareRoot() > 1e-3 {
            throw EvaluationError.invalidInput("FID: imaginary component \((-lowest).squareRoot()) in √(Σ1Σ2) (the statistics are not covariances)")
        }
        return mu.reduce(0) { $0 + max($1, 0).squareRoot() }
    }

    /// The features of every image of `folder` (a folder's .png/.jpg files in name order, as
    /// `Evaluator.images(at:)` lists them; the first `limit` when given, basicsr's `--num_sample`).
    public static func features(ofFolder folder: String, inception: FIDInception, limit: Int? = nil,
                                progress: ((Int, Int, String) -> Void)? = nil) throws -> [[Float]] {
        var files = try Evaluator.images(at: folder)
        if let limit { files = Array(files.prefix(max(limit, 0))) }
        var out: [[Float]] = []
        out.reserveCapacity(files.count)
        for (i, file) in files.enumerated() {
            progress?(i, files.count, file)
            do { out.append(try inception.features(try ImageIO.read(path: file).image)) } catch {
                let text = "\(error)"
                throw EvaluationError.invalidInput(text.hasPrefix(file) ? text : "\(file): \(text)")
            }
        }
        return out
    }

    /// The statistics of `folder`'s features (at least 2 images).
    public static func statistics(ofFolder folder: String, inception: FIDInception, limit: Int? = nil,
                                  progress: ((Int, Int, String) -> Void)? = nil) throws -> FIDStatistics {
        let f = try features(ofFolder: folder, inception: inception, limit: limit, progress: progress)
        guard f.count >= 2 else {
            throw EvaluationError.invalidInput("FID needs at least 2 images to estimate a covariance; \(folder) has \(f.count)")
        }
        return try FIDStatistics(features: f)
    }
}

extension FIDInception {
    /// The 2048-d features of a BGR image with values in [0, 1] as basicsr reads it
    /// (`cv2.imread(…).astype(np.float32) / 255.`, i.e. `FloatImage.divided255`).
    public func features(_ image: FloatImage) throws -> [Float] {
        guard image.channels == 3, image.width > 0, image.height > 0 else {
            throw EvaluationError.invalidInput("FID needs a 3-channel image, got \(image.width)×\(image.height)×\(image.channels)")
        }
        let n = image.width * image.height
        let x = Tensor(shape: [1, 3, image.height, image.width]) { out in
            image.values.withUnsafeBufferPointer { v in
                for c in 0..<3 {
                    let src = 2 - c
                    for i in 0..<n { out[c * n + i] = (v[i * 3 + src] - 0.5) / 0.5 }
                }
            }
        }
        return try features(x)
    }

    /// The features of an 8-bit BGR image (`cv2.imread`).
    public func features(_ image: PixelImage) throws -> [Float] {
        guard image.channels == 3 else {
            throw EvaluationError.invalidInput("FID needs a 3-channel image, got \(image.channels) channel(s)")
        }
        return try features(try FIDInception.input(bgr: image.pixels, width: image.width, height: image.height))
    }
}

extension NumpyArchive {
    /// An `.npz` (ZIP, members stored) of little-endian float64 arrays, as `np.savez` writes it:
    /// `.npy` version 1.0 members whose header is padded so the data starts on a 64-byte boundary.
    static func archive(_ arrays: [(name: String, shape: [Int], values: [Double])]) -> [UInt8] {
        func le16(_ v: Int, _ out: inout [UInt8]) { out += [UInt8(truncatingIfNeeded: v), UInt8(truncatingIfNeeded: v >> 8)] }
        func le32(_ v: Int, _ out: inout [UInt8]) { for k in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * k))) } }
        var zip: [UInt8] = []
        var central: [UInt8] = []
        for (name, shape, values) in arrays {
            let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
            var header = Array("{'descr': '<f8', 'fortran_order': False, 'shape': \(dims), }".utf8)
            let total = 10 + header.count + 1
            header += [UInt8](repeating: 0x20, count: (64 - total % 64) % 64) + [0x0A]
            var npy: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0]
            le16(header.count, &npy)
            npy += header
            npy.reserveCapacity(npy.count + values.count * 8)
            for v in values {
                let bits = v.bitPattern
                for k in 0..<8 { npy.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt64(k)))) }
            }
            let member = Array((name + ".npy").utf8)
            let crc = npy.withUnsafeBufferPointer { fr_crc32(0, $0.baseAddress, $0.count) }
            let offset = zip.count
            func common(_ out: inout [UInt8]) {
                le16(20, &out); le16(0, &out); le16(0, &out)          // version needed, flags, stored
                le16(0, &out); le16(0x21, &out)                       // time, date (1980-01-01)
                le32(Int(crc), &out); le32(npy.count, &out); le32(npy.count, &out)
                le16(member.count, &out); le16(0, &out)               // name, extra lengths
            }
            le32(0x0403_4b50, &zip); common(&zip); zip += member; zip += npy
            le32(0x0201_4b50, &central); le16(20, &central); common(&central)
            le16(0, &central); le16(0, &central); le16(0, &central); le32(0, &central)   // comment, disk, attributes
            le32(offset, &central); central += member
        }
        let cdOffset = zip.count
        zip += central
        le32(0x0605_4b50, &zip); le16(0, &zip); le16(0, &zip)
        le16(arrays.count, &zip); le16(arrays.count, &zip)
        le32(central.count, &zip); le32(cdOffset, &zip); le16(0, &zip)
        return zip
    }
}
