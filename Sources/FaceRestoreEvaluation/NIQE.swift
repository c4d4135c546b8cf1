// NIQE, the Natural Image Quality Evaluator (A. Mittal, R. Soundararajan and A. C. Bovik,
// "Making a Completely Blind Image Quality Analyzer", IEEE Signal Processing Letters 20(3), 2013),
// as basicsr 1.4.2 computes it: `basicsr/metrics/niqe.py` (`calculate_niqe`, `niqe`,
// `compute_feature`, `estimate_aggd_param`), with `basicsr/metrics/metric_util.py`
// (`reorder_image`, `to_y_channel`), `basicsr/utils/color_util.py` (`bgr2ycbcr`) and
// `basicsr/utils/matlab_functions.py` (`imresize`, see MatlabResize.swift). Ported by reading
// that code; the model (`niqe_pris_params.npz`, LIVE's pristine parameters) is read from the
// model cache, where scripts/pypi_models.py puts it from the basicsr 1.4.2 sdist.
//
// The case matched is `calculate_niqe(img, crop_border)` of an 8-bit BGR image as cv2 reads it
// (or a 2-D gray one), in upstream's precisions:
//   1. Y = f32(f64(B/255·24.966 + G/255·128.553 + R/255·65.481 + 16)/255)·255 (B/255 in float32;
//      a gray image is (v/255)·255), rounded half to even; crop_border from each edge; the top
//      left ⌊h/96⌋·96 × ⌊w/96⌋·96.
//   2. Two scales (the second from imresize(img/255, 0.5)·255, float32): MSCN with
//      scipy.ndimage.convolve(…, window, mode='nearest') accumulated in float64 and stored as
//      float32, σ = √|conv(img²) − μ²|, (img − μ)/(σ + 1), all float32.
//   3. Blocks of 96/scale, columns outermost; for each, an AGGD fit of the block and of its
//      products with np.roll by (0,1), (1,0), (1,1), (1,−1): the means of the block's squares
//      (negative and positive parts), |values| and squares are numpy float32 means (pairwise
//      summation in chunks of 8192, reproduced exactly, since they decide the grid point); the rest
//      is float64; α is the first γ of arange(0.2, 10.001, 0.001) minimising
//      (Γ(2/γ)²/(Γ(1/γ)Γ(3/γ)) − r̂ₙ)² (a NaN r̂ₙ gives the first, 0.2, as np.argmin does).
//   4. 36 features per block; μ = nanmean; Σ = np.cov of the rows without NaN (of one row, numpy
//      takes the 36 values as one variable: a scalar variance, broadcast); NIQE =
//      √((μₚ − μ) pinv((Σₚ + Σ)/2) (μₚ − μ)ᵀ), pinv by a symmetric eigendecomposition with
//      numpy's cutoff (1e-15 of the largest).
// Every float32 value (Y, MSCN at both scales, the float32 means) matches upstream's bit for bit
// on the reference machine (the imresize sums follow its OpenBLAS kernels, see MatlabResize.swift);
// what is left are float64 roundings (glibc's Γ for cephes', numpy's SIMD pow, the eigensolver
// for LAPACK's SVD), about 1e-12 of the score. On another CPU upstream's own BLAS may round the
// imresize sums differently, which flips the odd α on the grid: taking the sums in plain order
// instead moved scores by up to 4e-4 over 20 test images.
//
// Speed: the MSCN filters are separable passes whose float64 results are proven close enough to
// scipy's direct sums to give the same float32 values (falling back to the direct sum where they
// cannot decide); the γ grid and its Γ factors are computed once; blocks and rows run on all cores
// (each value computed the same way whatever the thread count).

import FaceRestoreImaging
import Foundation

/// NIQE's model: the multivariate Gaussian of pristine images' features and the MSCN window.
public struct NIQEModel: Sendable {
    /// `mu_pris_param`: 36 means.
    public let muPris: [Double]
    /// `cov_pris_param`: 36 × 36, row-major.
    public let covPris: [Double]
    /// `gaussian_window`: 7 × 7, row-major (MATLAB's fspecial('gaussian', 7, 7/6)).
    public let gaussianWindow: [Double]

    static let featureCount = 36
    static let windowSize = 7

    /// Reads `niqe_pris_params.npz` (float arrays `mu_pris_param` 1×36, `cov_pris_param` 36×36,
    /// `gaussian_window` 7×7). Any problem is an `EvaluationError.modelFile` naming the file.
    public init(contentsOf path: String) throws {
        let arrays: [String: NumpyArray]
        do { arrays = try NumpyArchive.read(path: path) } catch let error as EvaluationError {
            if case .modelFile(let p, "no such file") = error {
                throw EvaluationError.modelFile(path: p, reason: "no such file (scripts/pypi_models.py installs the NIQE parameters)")
            }
            throw error
        }
        func array(_ name: String, shapes: [[Int]]) throws -> [Double] {
            guard let a = arrays[name] else {
                throw EvaluationError.modelFile(path: path, reason: "no array '\(name)' (not NIQE parameters)")
            }
            guard shapes.contains(a.shape) else {
                throw EvaluationError.modelFile(path: path, reason: "'\(name)' has shape \(a.shape), expected \(shapes[0])")
            }
            guard a.values.allSatisfy(\.isFinite) else {
                throw EvaluationError.modelFile(path: path, reason: "'\(name)' has NaN or infinite values")
            }
            return a.values
        }
        let n = Self.featureCount, k = Self.windowSize
        muPris = try array("mu_pris_param", shapes: [[1, n], [n]])
        covPris = try array("cov_pris_param", shapes: [[n, n]])
        gaussianWindow = try array("gaussian_window", shapes: [[k, k]])
    }

    /// `$FACERESTORE_HOME/models/niqe_pris_params.npz`, FACERESTORE_HOME defaulting to
    /// `~/.cache/facerestore`.
    public static var defaultPath: String { MetricWeights.modelDirectory + "/niqe_pris_params.npz" }
}

/// basicsr 1.4.2's `calculate_niqe(img, crop_border)` of an 8-bit image (BGR, or one gray
/// channel) as cv2 reads it: lower is more natural. Throws `EvaluationError.invalidInput` when,
/// after cropping, the image holds no 96 × 96 block, or when no block has finite features (a
/// flat image: upstream's pinv fails there). Blocks and rows are spread over the machine's cores;
/// each value is computed the same way whatever the number of threads, so results do not depend
/// on it.
public func niqe(_ image: PixelImage, cropBorder: Int = 0, model: NIQEModel) throws -> Double {
    try NIQE.score(image, cropBorder: cropBorder, model: model, workers: NIQE.defaultWorkers)
}

enum NIQE {
    static let blockSize = 96

    static var defaultWorkers: Int { max(1, min(ProcessInfo.processInfo.activeProcessorCount, 16)) }

    static func score(_ image: PixelImage, cropBorder: Int, model: NIQEModel, workers: Int) throws -> Double {
        let (w, h, c) = (image.width, image.height, image.channels)
        guard c == 1 || c == 3 else { throw EvaluationError.invalidInput("NIQE takes 1- or 3-channel images, got \(c) channels") }
        let size = w.multipliedReportingOverflow(by: h).partialValue.multipliedReportingOverflow(by: c)
        guard w >= 0, h >= 0, !size.overflow, image.pixels.count == size.partialValue else {
            throw EvaluationError.invalidInput("NIQE: a \(w)×\(h)×\(c) image needs \(w &* h &* c) bytes, got \(image.pixels.count)")
        }
        guard cropBorder >= 0 else { throw EvaluationError.invalidInput("NIQE: crop border \(cropBorder) is negative") }
        let bs = blockSize
        let cw = cropBorder <= w / 2 ? w - 2 * cropBorder : 0
        let ch = cropBorder <= h / 2 ? h - 2 * cropBorder : 0
        guard cw >= bs, ch >= bs else {
            let cropped = cropBorder > 0 ? " (\(cw)×\(ch) after a crop border of \(cropBorder))" : ""
            throw EvaluationError.invalidInput("NIQE needs at least one \(bs)×\(bs) block: the image is \(w)×\(h)\(cropped)")
        }
        let (blocksW, blocksH) = (cw / bs, ch / bs)
        let (W, H) = (blocksW * bs, blocksH * bs)
        let plane = luma(image, left: cropBorder, top: cropBorder, width: W, height: H)

        let featureCount = NIQEModel.featureCount
        let blockCount = blocksW * blocksH
        var features = [Double](repeating: 0, count: blockCount * featureCount)
        let scale1 = mscn(plane, width: W, height: H, window: model.gaussianWindow, workers: workers)
        blockFeatures(scale1, width: W, blocksW: blocksW, blocksH: blocksH, blockSize: bs, into: &features, column: 0,
                      workers: workers)
        // imresize(img / 255., 0.5) · 255, float32.
        let down = try matlabResize(plane.map { $0 / 255 }, width: W, height: H, scale: 0.5)
        let scale2 = mscn(down.values.map { $0 * 255 }, width: down.width, height: down.height, window: model.gaussianWindow,
                          workers: workers)
        blockFeatures(scale2, width: down.width, blocksW: blocksW, blocksH: blocksH, blockSize: bs / 2, into: &features,
                      column: featureCount / 2, workers: workers)
        return try distance(features: features, rows: blockCount, model: model)
    }

    /// `body(worker, item)` for every item in 0..<count, on up to `workers` threads (worker w takes
    /// items w, w + workers, …). Items must be independent.
    static func forEach(_ count: Int, workers: Int, _ body: @Sendable (Int, Int) -> Void) {
        let threads = max(1, min(workers, count))
        if threads == 1 {
            for i in 0..<count { body(0, i) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: threads) { worker in
            var i = worker
            while i < count {
                body(worker, i)
                i += threads
            }
        }
    }

    /// `round(to_y_channel(img))` (or of a gray image, `round(img / 255 · 255)`) of the
    /// `width × height` region at (`left`, `top`), float32.
    static func luma(_ image: PixelImage, left: Int, top: Int, width: Int, height: Int) -> [Float] {
        // bgr2ycbcr(y_only) of float32 [0, 1] input is a float64 dot product, B first: each term
        // f64(f32(v / 255)) · coefficient depends on one byte only.
        let unit = (0..<256).map { Double(Float($0) / 255) }
        let blue = unit.map { $0 * 24.966 }, green = unit.map { $0 * 128.553 }, red = unit.map { $0 * 65.481 }
        let gray = (0..<256).map { roundHalfEven((Float($0) / 255) * 255) }
        var out = [Float](repeating: 0, count: width * height)
        let c = image.channels
        image.pixels.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { o in
                for y in 0..<height {
                    var s = ((y + top) * image.width + left) * c
                    let row = y * width
                    if c == 3 {
                        for x in 0..<width {
                            let y64 = ((blue[Int(px[s])] + green[Int(px[s + 1])]) + red[Int(px[s + 2])]) + 16.0
                            o[row + x] = roundHalfEven(Float(y64 / 255) * 255)
                            s += 3
                        }
                    } else {
                        for x in 0..<width { o[row + x] = gray[Int(px[s + x])] }
                    }
                }
            }
        }
        return out
    }

    /// numpy's `round` (half to even) of a float32, without a library call.
    @inline(__always)
    static func roundHalfEven(_ v: Float) -> Float {
        let m = v.magnitude
        guard m < 0x1p23 else { return v }   // already an integer (or NaN / infinite)
        let r = (m + 0x1p23) - 0x1p23
        return v < 0 ? -r : r
    }

    /// (img − μ) / (σ + 1) with μ, σ from `scipy.ndimage.convolve(…, window, mode='nearest')`:
    /// scipy sums each pixel's 49 products in float64, in row-major order of the flipped window,
    /// and stores the sum as float32. The same float32 values come here from a separable pass
    /// (7 + 7 taps, when the window is a product of two vectors to rounding, as the Gaussian is):
    /// its float64 result is within a proven bound δ of scipy's sum, so where the whole interval
    /// ±δ rounds to one float32, that is scipy's; where it straddles a rounding boundary (δ is
    /// about 1e-13 of the largest value, so about one value in 10⁶), that pixel's 49-term sum is
    /// done in scipy's order. `separable: false`
    /// and `boundScale` (a wider δ, more pixels summed directly) are for the tests.
    static func mscn(_ img: [Float], width W: Int, height H: Int, window: [Double], workers: Int = 1,
                     separable: Bool = true, boundScale: Double = 1) -> [Float] {
        let k = NIQEModel.windowSize, r = k / 2
        let flipped = (0..<(k * k)).map { window[k * k - 1 - $0] }
        let (pw, ph) = (W + 2 * r, H + 2 * r)
        // Edge-replicated copies of img and img² (float32, as np.square gives).
        var padded = [Float](repeating: 0, count: pw * ph)
        var paddedSquare = [Float](repeating: 0, count: pw * ph)
        var largest: Float = 0
        img.withUnsafeBufferPointer { iBuffer in
            padded.withUnsafeMutableBufferPointer { pBuffer in
                paddedSquare.withUnsafeMutableBufferPointer { qBuffer in
                    guard let src = iBuffer.baseAddress, let p = pBuffer.baseAddress, let q = qBuffer.baseAddress else { return }
                    for y in 0..<ph {
                        let from = src + min(max(y - r, 0), H - 1) * W, row = p + y * pw
                        (row + r).update(from: from, count: W)
                        for x in 0..<r {
                            row[x] = from[0]
                            row[r + W + x] = from[W - 1]
                        }
                        let square = q + y * pw
                        for x in 0..<pw { square[x] = row[x] * row[x] }
                    }
                    // The largest magnitude (for the separable pass's bound), eight lanes at a time.
                    var lanes = SIMD8<Float>(repeating: 0)
                    var i = 0
                    while i + 8 <= W * H {
                        let v = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self)
                        lanes = pointwiseMax(lanes, pointwiseMax(v, -v))
                        i += 8
                    }
                    largest = lanes.max()
                    while i < W * H { largest = max(largest, src[i].magnitude); i += 1 }
                }
            }
        }
        let split = separable ? SeparableWindow(flipped, size: k) : nil
        let meanBound = (split?.bound(largest: Double(largest)) ?? 0) * boundScale
        let secondBound = (split?.bound(largest: Double(largest) * Double(largest)) ?? 0) * boundScale
        // Bands of rows, each filtered on its own (the separable pass re-reads 6 rows per band).
        let bandCount = max(1, min(workers, H / 32))
        var out = [Float](repeating: 0, count: W * H)
        padded.withUnsafeBufferPointer { pBuffer in
            paddedSquare.withUnsafeBufferPointer { qBuffer in
                img.withUnsafeBufferPointer { iBuffer in
                    out.withUnsafeMutableBufferPointer { oBuffer in
                        guard let p = pBuffer.baseAddress, let q = qBuffer.baseAddress, let src = iBuffer.baseAddress,
                              let dst = oBuffer.baseAddress else { return }
                        let band = MSCNBand(p: p, q: q, src: src, dst: dst, width: W, paddedWidth: pw, flipped: flipped)
                        forEach(bandCount, workers: workers) { _, b in
                            let rows = (H * b / bandCount)..<(H * (b + 1) / bandCount)
                            if let split {
                                band.separable(rows: rows, split: split, meanBound: meanBound, secondBound: secondBound)
                            } else {
                                band.direct(rows: rows)
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// The padded planes of one MSCN computation and where its output goes (bands of rows write
    /// disjoint rows of `dst`).
    struct MSCNBand: @unchecked Sendable {
        let p: UnsafePointer<Float>     // img, edge-replicated by 3
        let q: UnsafePointer<Float>     // img², likewise
        let src: UnsafePointer<Float>
        let dst: UnsafeMutablePointer<Float>
        let width: Int
        let paddedWidth: Int
        let flipped: [Double]
        private var k: Int { NIQEModel.windowSize }

        @inline(__always) func finish(_ x: Int, _ y: Int, _ mean: Float, _ second: Float) {
            let sigma = (second - mean * mean).magnitude.squareRoot()
            dst[y * width + x] = (src[y * width + x] - mean) / (sigma + 1)
        }

        /// scipy's sum at (x, y): the products added in order to a running float64 sum from 0.
        @inline(__always) func exact(_ plane: UnsafePointer<Float>, _ x: Int, _ y: Int) -> Double {
            var sum = 0.0
            for a in 0..<k {
                for b in 0..<k { sum = sum + Double(plane[(y + a) * paddedWidth + x + b]) * flipped[a * k + b] }
            }
            return sum
        }

        /// Every pixel's 49 products, eight pixels at a time.
        func direct(rows: Range<Int>) {
            for y in rows {
                var x = 0
                while x + 8 <= width {
                    var m = SIMD8<Double>(repeating: 0), s = SIMD8<Double>(repeating: 0)
                    for a in 0..<k {
                        let o = (y + a) * paddedWidth + x
                        for b in 0..<k {
                            let wv = flipped[a * k + b]
                            m = m + SIMD8<Double>(UnsafeRawPointer(p + o + b).loadUnaligned(as: SIMD8<Float>.self)) * wv
                            s = s + SIMD8<Double>(UnsafeRawPointer(q + o + b).loadUnaligned(as: SIMD8<Float>.self)) * wv
                        }
                    }
                    for i in 0..<8 { finish(x + i, y, Float(m[i]), Float(s[i])) }
                    x += 8
                }
                while x < width {
                    finish(x, y, Float(exact(p, x, y)), Float(exact(q, x, y)))
                    x += 1
                }
            }
        }

        /// Rows filtered by `split.row`, then columns by `split.column` (a ring of the last k
        /// filtered rows), each value checked against its bound.
        func separable(rows: Range<Int>, split: SeparableWindow, meanBound: Double, secondBound: Double) {
            guard !rows.isEmpty else { return }
            let W = width
            let ringMean = UnsafeMutablePointer<Double>.allocate(capacity: k * W)
            let ringSecond = UnsafeMutablePointer<Double>.allocate(capacity: k * W)
            defer { ringMean.deallocate(); ringSecond.deallocate() }
            func filterRow(_ py: Int) {
                let slot = (py % k) * W
                var x = 0
                while x + 8 <= W {
                    var m = SIMD8<Double>(repeating: 0), s = SIMD8<Double>(repeating: 0)
                    for b in 0..<k {
                        let o = py * paddedWidth + x + b
                        m = m + SIMD8<Double>(UnsafeRawPointer(p + o).loadUnaligned(as: SIMD8<Float>.self)) * split.row[b]
                        s = s + SIMD8<Double>(UnsafeRawPointer(q + o).loadUnaligned(as: SIMD8<Float>.self)) * split.row[b]
                    }
                    UnsafeMutableRawPointer(ringMean + slot + x).storeBytes(of: m, as: SIMD8<Double>.self)
                    UnsafeMutableRawPointer(ringSecond + slot + x).storeBytes(of: s, as: SIMD8<Double>.self)
                    x += 8
                }
                while x < W {
                    var m = 0.0, s = 0.0
                    for b in 0..<k {
                        m += Double(p[py * paddedWidth + x + b]) * split.row[b]
                        s += Double(q[py * paddedWidth + x + b]) * split.row[b]
                    }
                    ringMean[slot + x] = m
                    ringSecond[slot + x] = s
                    x += 1
                }
            }
            @inline(__always) func resolve(_ approx: Double, _ bound: Double, _ plane: UnsafePointer<Float>, _ x: Int, _ y: Int) -> Float {
                let lo = Float(approx - bound)
                return lo == Float(approx + bound) ? lo : Float(exact(plane, x, y))
            }
            for py in rows.lowerBound..<(rows.lowerBound + k - 1) { filterRow(py) }
            for y in rows {
                filterRow(y + k - 1)
                var x = 0
                while x < W {
                    let lanes = min(8, W - x)
                    var m = SIMD8<Double>(repeating: 0), s = SIMD8<Double>(repeating: 0)
                    for a in 0..<k {
                        let slot = ((y + a) % k) * W + x
                        if lanes == 8 {
                            m = m + UnsafeRawPointer(ringMean + slot).loadUnaligned(as: SIMD8<Double>.self) * split.column[a]
                            s = s + UnsafeRawPointer(ringSecond + slot).loadUnaligned(as: SIMD8<Double>.self) * split.column[a]
                        } else {
                            for i in 0..<lanes {
                                m[i] += ringMean[slot + i] * split.column[a]
                                s[i] += ringSecond[slot + i] * split.column[a]
                            }
                        }
                    }
                    for i in 0..<lanes {
                        finish(x + i, y, resolve(m[i], meanBound, p, x + i, y), resolve(s[i], secondBound, q, x + i, y))
                    }
                    x += lanes
                }
            }
        }
    }

    /// A k × k window w as the outer product column ⊗ row (w[a][b] ≈ column[a]·row[b]), and how far
    /// a separable float64 filtering with it can be from scipy's direct sum.
    struct SeparableWindow: Sendable {
        let column: [Double]
        let row: [Double]
        /// Σ|w|, (Σ|column|)(Σ|row|) and Σ|w − column ⊗ row|.
        private let weight: Double, factors: Double, residual: Double

        init?(_ w: [Double], size k: Int) {
            let centre = w[(k / 2) * k + k / 2]
            guard centre > 0, w.allSatisfy(\.isFinite) else { return nil }
            column = (0..<k).map { w[$0 * k + k / 2] }
            row = (0..<k).map { w[(k / 2) * k + $0] / centre }
            var residual = 0.0
            for a in 0..<k { for b in 0..<k { residual += (w[a * k + b] - column[a] * row[b]).magnitude } }
            weight = w.reduce(0) { $0 + $1.magnitude }
            factors = column.reduce(0) { $0 + $1.magnitude } * row.reduce(0) { $0 + $1.magnitude }
            self.residual = residual
            // Not worth it when the window is not a product to within rounding.
            guard residual <= 1e-12 * weight else { return nil }
        }

        /// |separable − scipy's| for values of magnitude ≤ `largest`: scipy's sequential 49-term sum
        /// is within γ₄₉·Σ|w|·largest of the exact Σ w·v, the separable one within
        /// (γ₁₆·Σ|column|·Σ|row| + Σ|w − column ⊗ row|)·largest (γₙ = n·u/(1 − n·u), u = 2⁻⁵³);
        /// doubled for margin.
        func bound(largest: Double) -> Double {
            func gamma(_ n: Double) -> Double { let nu = n * 0x1p-53; return nu / (1 - nu) }
            return 2 * ((gamma(49) * weight + gamma(16) * factors + residual) * largest)
        }
    }

    /// The 18 features of each `blockSize`² block of `mscn` (a plane `width` wide), columns of
    /// blocks outermost, written at `column` of each 36-wide row of `features`.
    static func blockFeatures(_ mscn: [Float], width: Int, blocksW: Int, blocksH: Int, blockSize bs: Int,
                              into features: inout [Double], column: Int, workers: Int = 1) {
        let blockCount = blocksW * blocksH
        let threads = max(1, min(workers, blockCount))
        let scratches = (0..<threads).map { _ in AGGDScratch(capacity: bs * bs) }
        let table = AGGDTable.shared
        mscn.withUnsafeBufferPointer { plane in
            features.withUnsafeMutableBufferPointer { out in
                guard let src = plane.baseAddress, let dst = out.baseAddress else { return }
                // Each block writes its own 18 values.
                let job = BlockJob(src: src, dst: dst)
                forEach(blockCount, workers: threads) { worker, index in
                    let (bw, bh) = (index / blocksH, index % blocksH)
                    scratches[worker].features(of: job.src + bh * bs * width + bw * bs, stride: width, size: bs, table: table,
                                               into: job.dst + index * NIQEModel.featureCount + column)
                }
            }
        }
    }

    private struct BlockJob: @unchecked Sendable {
        let src: UnsafePointer<Float>
        let dst: UnsafeMutablePointer<Double>
    }

    /// √((μₚ − μ) pinv((Σₚ + Σ)/2) (μₚ − μ)ᵀ) of the `rows × 36` features.
    static func distance(features: [Double], rows: Int, model: NIQEModel) throws -> Double {
        let n = NIQEModel.featureCount
        // nanmean over the rows.
        var mean = [Double](repeating: 0, count: n)
        var counts = [Int](repeating: 0, count: n)
        var complete: [Int] = []
        for r in 0..<rows {
            var finiteRow = true
            for j in 0..<n {
                let v = features[r * n + j]
                if v.isNaN { finiteRow = false } else { mean[j] += v; counts[j] += 1 }
            }
            if finiteRow { complete.append(r) }
        }
        guard !complete.isEmpty else {
            throw EvaluationError.invalidInput("NIQE is undefined for this image: no \(blockSize)×\(blockSize) block has finite features (flat content)")
        }
        for j in 0..<n { mean[j] /= Double(counts[j]) }
        // np.cov(rows, rowvar=False).
        var cov = [Double](repeating: 0, count: n * n)
        if complete.count == 1 {
            // One row is one variable of 36 observations to np.cov: a scalar variance (ddof 1).
            let row = features[(complete[0] * n)..<(complete[0] * n + n)]
            let m = row.reduce(0, +) / Double(n)
            let variance = row.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(n - 1)
            for i in 0..<(n * n) { cov[i] = variance }
        } else {
            var centre = [Double](repeating: 0, count: n)
            for r in complete { for j in 0..<n { centre[j] += features[r * n + j] } }
            for j in 0..<n { centre[j] /= Double(complete.count) }
            var centred = [Double](repeating: 0, count: n)
            for r in complete {
                for j in 0..<n { centred[j] = features[r * n + j] - centre[j] }
                for i in 0..<n {
                    let ci = centred[i]
                    for j in i..<n { cov[i * n + j] += ci * centred[j] }
                }
            }
            let scale = 1 / Double(complete.count - 1)
            for i in 0..<n {
                for j in i..<n {
                    cov[i * n + j] *= scale
                    cov[j * n + i] = cov[i * n + j]
                }
            }
        }
        var a = [Double](repeating: 0, count: n * n)
        for i in 0..<(n * n) { a[i] = (model.covPris[i] + cov[i]) / 2 }
        guard a.allSatisfy(\.isFinite) else {
            throw EvaluationError.invalidInput("NIQE is undefined for this image: its feature covariance is not finite")
        }
        let d = (0..<n).map { model.muPris[$0] - mean[$0] }
        let (values, vectors) = symmetricEigen(a, n: n)
        // np.linalg.pinv: singular values (|eigenvalues|) above 1e-15 of the largest are inverted.
        let cutoff = 1e-15 * (values.map(\.magnitude).max() ?? 0)
        var quality = 0.0
        for k in 0..<n where values[k].magnitude > cutoff {
            var p = 0.0
            for i in 0..<n { p += vectors[i * n + k] * d[i] }
            quality += p * p / values[k]
        }
        return quality.squareRoot()
    }

    /// Eigenvalues and eigenvectors (the columns of a row-major n × n matrix) of the symmetric
    /// matrix `a`: Householder reduction to tridiagonal form and the implicit QL algorithm
    /// (EISPACK's tred2 and tql2, as in JAMA), or cyclic Jacobi rotations should QL not converge.
    static func symmetricEigen(_ a: [Double], n: Int) -> (values: [Double], vectors: [Double]) {
        if let result = householderQL(a, n: n) { return result }
        return jacobiEigen(a, n: n)
    }

    static func householderQL(_ matrix: [Double], n: Int) -> (values: [Double], vectors: [Double])? {
        guard n > 0 else { return ([], []) }
        var v = matrix   // V[i][j] = v[i * n + j]
        for i in 0..<n { for j in (i + 1)..<max(i + 1, n) { let m = (v[i * n + j] + v[j * n + i]) / 2; v[i * n + j] = m; v[j * n + i] = m } }
        var d = [Double](repeating: 0, count: n)
        var e = [Double](repeating: 0, count: n)
        // tred2
        for j in 0..<n { d[j] = v[(n - 1) * n + j] }
        var i = n - 1
        while i > 0 {
            var scale = 0.0, h = 0.0
            for k in 0..<i { scale += d[k].magnitude }
            if scale == 0 {
                e[i] = d[i - 1]
                for j in 0..<i {
                    d[j] = v[(i - 1) * n + j]
                    v[i * n + j] = 0
                    v[j * n + i] = 0
                }
            } else {
                for k in 0..<i {
                    d[k] /= scale
                    h += d[k] * d[k]
                }
                var f = d[i - 1]
                var g = h.squareRoot()
                if f > 0 { g = -g }
                e[i] = scale * g
                h -= f * g
                d[i - 1] = f - g
                for j in 0..<i { e[j] = 0 }
                for j in 0..<i {
                    f = d[j]
                    v[j * n + i] = f
                    g = e[j] + v[j * n + j] * f
                    if j + 1 <= i - 1 {
                        for k in (j + 1)...(i - 1) {
                            g += v[k * n + j] * d[k]
                            e[k] += v[k * n + j] * f
                        }
                    }
                    e[j] = g
                }
                f = 0
                for j in 0..<i {
                    e[j] /= h
                    f += e[j] * d[j]
                }
                let hh = f / (h + h)
                for j in 0..<i { e[j] -= hh * d[j] }
                for j in 0..<i {
                    f = d[j]
                    g = e[j]
                    for k in j...(i - 1) { v[k * n + j] -= (f * e[k] + g * d[k]) }
                    d[j] = v[(i - 1) * n + j]
                    v[i * n + j] = 0
                }
            }
            d[i] = h
            i -= 1
        }
        for i in 0..<(n - 1) {
            v[(n - 1) * n + i] = v[i * n + i]
            v[i * n + i] = 1
            let h = d[i + 1]
            if h != 0 {
                for k in 0...i { d[k] = v[k * n + i + 1] / h }
                for j in 0...i {
                    var g = 0.0
                    for k in 0...i { g += v[k * n + i + 1] * v[k * n + j] }
                    for k in 0...i { v[k * n + j] -= g * d[k] }
                }
            }
            for k in 0...i { v[k * n + i + 1] = 0 }
        }
        for j in 0..<n {
            d[j] = v[(n - 1) * n + j]
            v[(n - 1) * n + j] = 0
        }
        v[(n - 1) * n + n - 1] = 1
        e[0] = 0
        // tql2
        for i in 1..<max(1, n) { e[i - 1] = e[i] }
        e[n - 1] = 0
        var f = 0.0, tst1 = 0.0
        let eps = 0x1p-52
        for l in 0..<n {
            tst1 = max(tst1, d[l].magnitude + e[l].magnitude)
            var m = l
            while m < n {
                if e[m].magnitude <= eps * tst1 { break }
                m += 1
            }
            guard m < n else { return nil }   // e[n − 1] is 0: only NaN gets here
            if m > l {
                var iterations = 0
                repeat {
                    iterations += 1
                    guard iterations <= 64 else { return nil }
                    var g = d[l]
                    var p = (d[l + 1] - g) / (2 * e[l])
                    var r = (p * p + 1).squareRoot()
                    if p < 0 { r = -r }
                    d[l] = e[l] / (p + r)
                    d[l + 1] = e[l] * (p + r)
                    let dl1 = d[l + 1]
                    var h = g - d[l]
                    if l + 2 < n { for i in (l + 2)..<n { d[i] -= h } }
                    f += h
                    p = d[m]
                    var c = 1.0, c2 = c, c3 = c
                    let el1 = e[l + 1]
                    var s = 0.0, s2 = 0.0
                    var i = m - 1
                    while i >= l {
                        c3 = c2
                        c2 = c
                        s2 = s
                        g = c * e[i]
                        h = c * p
                        r = hypot(p, e[i])
                        e[i + 1] = s * r
                        s = e[i] / r
                        c = p / r
                        p = c * d[i] - s * g
                        d[i + 1] = h + s * (c * g + s * d[i])
                        for k in 0..<n {
                            h = v[k * n + i + 1]
                            v[k * n + i + 1] = s * v[k * n + i] + c * h
                            v[k * n + i] = c * v[k * n + i] - s * h
                        }
                        i -= 1
                    }
                    p = -s * s2 * c3 * el1 * e[l] / dl1
                    e[l] = s * p
                    d[l] = c * p
                } while e[l].magnitude > eps * tst1
            }
            d[l] += f
            e[l] = 0
        }
        guard d.allSatisfy(\.isFinite), v.allSatisfy(\.isFinite) else { return nil }
        return (d, v)
    }

    /// Cyclic Jacobi rotations (slow but sure).
    static func jacobiEigen(_ matrix: [Double], n: Int) -> (values: [Double], vectors: [Double]) {
        var a = matrix
        for i in 0..<n { for j in (i + 1)..<max(i + 1, n) { let m = (a[i * n + j] + a[j * n + i]) / 2; a[i * n + j] = m; a[j * n + i] = m } }
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        let norm = a.reduce(0) { $0 + $1 * $1 }
        for _ in 0..<100 {
            var off = 0.0
            for i in 0..<n { for j in (i + 1)..<max(i + 1, n) { off += a[i * n + j] * a[i * n + j] } }
            if off <= norm * 1e-36 || off == 0 { break }
            for p in 0..<max(0, n - 1) {
                for q in (p + 1)..<n {
                    let apq = a[p * n + q]
                    if apq == 0 { continue }
                    let theta = (a[q * n + q] - a[p * n + p]) / (2 * apq)
                    let t = theta.magnitude > 1e150 ? 1 / (2 * theta)
                                                    : (theta >= 0 ? 1 : -1) / (theta.magnitude + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot()
                    let s = t * c
                    for k in 0..<n {
                        let akp = a[k * n + p], akq = a[k * n + q]
                        a[k * n + p] = c * akp - s * akq
                        a[k * n + q] = s * akp + c * akq
                    }
                    for k in 0..<n {
                        let apk = a[p * n + k], aqk = a[q * n + k]
                        a[p * n + k] = c * apk - s * aqk
                        a[q * n + k] = s * apk + c * aqk
                    }
                    for k in 0..<n {
                        let vkp = v[k * n + p], vkq = v[k * n + q]
                        v[k * n + p] = c * vkp - s * vkq
                        v[k * n + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        return ((0..<n).map { a[$0 * n + $0] }, v)
    }
}

extension NIQE {
    /// `estimate_aggd_param`'s grid: γ = arange(0.2, 10.001, 0.001) (numpy's fill: start + i·Δ with
    /// Δ = (0.2 + 0.001) − 0.2), r(γ) = Γ(2/γ)²/(Γ(1/γ)Γ(3/γ)) computed as upstream does, and per γ
    /// the factors of β (√(Γ(1/γ)/Γ(3/γ))) and of the mean feature (Γ(2/γ)/Γ(1/γ)). Built once.
    struct AGGDTable: Sendable {
        let gam: [Double]
        let r: [Double]
        let betaFactor: [Double]
        let meanFactor: [Double]
        /// r is strictly increasing (so the argmin is a binary search); checked when built.
        let increasing: Bool

        static let shared = AGGDTable()

        private init() {
            let start = 0.2, step = 0.001, stop = 10.001
            let count = Int(((stop - start) / step).rounded(.up))
            let delta = (start + step) - start
            var gam = [Double](repeating: 0, count: count)
            for i in 0..<count { gam[i] = i == 0 ? start : (i == 1 ? start + step : start + Double(i) * delta) }
            self.gam = gam
            r = gam.map { g in
                let reciprocal = 1 / g
                let g2 = tgamma(reciprocal * 2)
                return g2 * g2 / (tgamma(reciprocal) * tgamma(reciprocal * 3))
            }
            betaFactor = gam.map { (tgamma(1 / $0) / tgamma(3 / $0)).squareRoot() }
            meanFactor = gam.map { tgamma(2 / $0) / tgamma(1 / $0) }
            increasing = zip(r, r.dropFirst()).allSatisfy { $0 < $1 } && r.allSatisfy(\.isFinite)
        }

        /// np.argmin((r − x)²): the first index of the smallest value; 0 for a NaN x (numpy's argmin
        /// returns the first NaN).
        func argmin(_ x: Double) -> Int {
            if x.isNaN { return 0 }
            func d(_ i: Int) -> Double { let e = r[i] - x; return e * e }
            guard increasing else {
                var best = 0
                for i in 1..<r.count where d(i) < d(best) { best = i }
                return best
            }
            // First index with r ≥ x; (r − x)² falls up to there and rises after it.
            var lo = 0, hi = r.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if r[mid] < x { lo = mid + 1 } else { hi = mid }
            }
            var best = lo < r.count ? lo : r.count - 1
            if lo > 0, lo < r.count, d(lo - 1) <= d(lo) { best = lo - 1 }
            while best > 0, d(best - 1) == d(best) { best -= 1 }
            return best
        }
    }

    /// One worker's buffers for the blocks' features (allocated once, reused for every block).
    final class AGGDScratch: @unchecked Sendable {
        private let capacity: Int
        private let block: UnsafeMutablePointer<Float>
        private let product: UnsafeMutablePointer<Float>
        private let negative: UnsafeMutablePointer<Float>
        private let positive: UnsafeMutablePointer<Float>
        private let magnitudes: UnsafeMutablePointer<Float>
        private let squares: UnsafeMutablePointer<Float>

        init(capacity: Int) {
            self.capacity = capacity
            block = .allocate(capacity: capacity)
            product = .allocate(capacity: capacity)
            negative = .allocate(capacity: capacity)
            positive = .allocate(capacity: capacity)
            magnitudes = .allocate(capacity: capacity)
            squares = .allocate(capacity: capacity)
        }

        deinit {
            for p in [block, product, negative, positive, magnitudes, squares] { p.deallocate() }
        }

        /// `compute_feature(block)` of the `size × size` block at `origin` (rows `stride` apart):
        /// 18 values written to `out`.
        func features(of origin: UnsafePointer<Float>, stride: Int, size bs: Int, table: AGGDTable,
                      into out: UnsafeMutablePointer<Double>) {
            let n = bs * bs
            assert(n <= capacity, "NIQE block larger than its scratch")   // sizes are ours, not the input's
            for i in 0..<bs { (block + i * bs).update(from: origin + i * stride, count: bs) }
            let first = fit(block, n, table: table)
            out[0] = first.alpha
            out[1] = (first.betaL + first.betaR) / 2
            for (s, (dy, dx)) in [(0, 1), (1, 0), (1, 1), (1, -1)].enumerated() {
                // block · np.roll(block, (dy, dx), axis=(0, 1)): row i meets row i − dy, column j
                // column j − dx (both circular).
                for i in 0..<bs {
                    let row = block + i * bs, other = block + ((i - dy + bs) % bs) * bs, dst = product + i * bs
                    switch dx {
                    case 0:
                        for j in 0..<bs { dst[j] = row[j] * other[j] }
                    case 1:
                        dst[0] = row[0] * other[bs - 1]
                        for j in 1..<bs { dst[j] = row[j] * other[j - 1] }
                    default:   // −1
                        for j in 0..<(bs - 1) { dst[j] = row[j] * other[j + 1] }
                        dst[bs - 1] = row[bs - 1] * other[0]
                    }
                }
                let fit = fit(product, n, table: table)
                let o = 2 + 4 * s
                out[o] = fit.alpha
                out[o + 1] = (fit.betaR - fit.betaL) * table.meanFactor[fit.index]
                out[o + 2] = fit.betaL
                out[o + 3] = fit.betaR
            }
        }

        /// `estimate_aggd_param(values)`: α (a grid value, at `index`), β_l, β_r.
        func fit(_ v: UnsafePointer<Float>, _ n: Int, table: AGGDTable) -> (alpha: Double, betaL: Double, betaR: Double, index: Int) {
            for k in 0..<n {
                let x = v[k]
                magnitudes[k] = x.magnitude
                squares[k] = x * x
            }
            // block[block < 0]**2 and block[block > 0]**2, in order, without branches (the signs
            // are random): each square is written at both ends and kept where its sign bit says;
            // ±0 go to neither. (No NaN reaches here.)
            var negatives = 0, positives = 0
            for k in 0..<n {
                let bits = v[k].bitPattern
                let nonzero = Int(((bits & 0x7FFF_FFFF) &+ 0x7FFF_FFFF) >> 31)
                let negativeBit = Int(bits >> 31) & nonzero
                let s = squares[k]
                negative[negatives] = s
                positive[positives] = s
                negatives &+= negativeBit
                positives &+= nonzero &- negativeBit
            }
            let leftStd = numpyMean(negative, negatives).squareRoot()
            let rightStd = numpyMean(positive, positives).squareRoot()
            let meanMagnitude = numpyMean(magnitudes, n), meanSquare = numpyMean(squares, n)
            // From here numpy 1.24 promotes the float32 scalars to float64.
            let g = Double(leftStd / rightStd)
            let rhat = Double(meanMagnitude) * Double(meanMagnitude) / Double(meanSquare)
            let g2 = g * g
            let rhatNorm = (rhat * (g2 * g + 1) * (g + 1)) / ((g2 + 1) * (g2 + 1))
            let index = table.argmin(rhatNorm)
            let factor = table.betaFactor[index]
            return (table.gam[index], Double(leftStd) * factor, Double(rightStd) * factor, index)
        }
    }

    /// `np.mean` of `n` float32 values: numpy's float32 sum (pairwise within chunks of 8192, the
    /// ufunc buffer size, chunks added in order), then f32(f64(sum) / n) (NaN when n is 0).
    @inline(__always)
    static func numpyMean(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        guard n > 0 else { return .nan }
        var sum: Float = 0
        var i = 0
        while i < n {
            let m = min(8192, n - i)
            sum += pairwiseSum(p + i, m)
            i += m
        }
        return Float(Double(sum) / Double(n))
    }

    /// numpy's `FLOAT_pairwise_sum` (numpy/core/src/umath/loops_utils.h.src): under 8 values in
    /// order; up to 128 with eight interleaved accumulators; above, split at an 8-aligned half.
    static func pairwiseSum(_ a: UnsafePointer<Float>, _ n: Int) -> Float {
        if n < 8 {
            var r: Float = 0
            for i in 0..<n { r += a[i] }
            return r
        }
        if n <= 128 {
            // Eight accumulators r[0…7], r[j] += a[i + j]: one SIMD8 lane each.
            var r = UnsafeRawPointer(a).loadUnaligned(as: SIMD8<Float>.self)
            var i = 8
            let end = n - n % 8
            while i < end {
                r = r + UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
                i += 8
            }
            var res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
            while i < n { res += a[i]; i += 1 }
            return res
        }
        var n2 = n / 2
        n2 -= n2 % 8
        return pairwiseSum(a, n2) + pairwiseSum(a + n2, n - n2)
    }
}
