// BRISQUE (Mittal, Moorthy & Bovik, "No-Reference Image Quality Assessment in the Spatial
// Domain", 2012) as OpenCV computes it: `cv2.quality.QualityBRISQUE_compute(img, model, range)`.
//
// A port, written from reading opencv_contrib 4.6.0 `modules/quality/src/qualitybrisque.cpp` and
// `modules/quality/include/opencv2/quality/quality_utils.hpp`, and the OpenCV 4.6 primitives it
// calls, with the model files Debian's `opencv-data` 4.6.0 ships:
// `/usr/share/opencv4/quality/brisque_model_live.yml` (a `cv::ml::SVM`, EPS_SVR, RBF γ = 0.05,
// 774 support vectors, trained on LIVE R2) and `brisque_range_live.yml` (per-feature min/max).
// OpenCV is Apache-2.0; the BRISQUE algorithm and model carry the LIVE (UT Austin) notice.
//
// The computation, step by step (every float32 step rounded as OpenCV rounds it):
//   1. Gray: `cvtColor(BGR2GRAY)` on 8 bits, fixed point: (3735·B + 19235·G + 9798·R + 2¹⁴) >> 15;
//      then `convertTo(CV_32F, 1/255.)`: float(v) · float(1/255).
//   2. Two scales: the gray image, and `resize(…, (w/2, h/2), INTER_CUBIC)` of it (sizes
//      truncated). Resize on float32 (`imgproc/src/resize.cpp`): source x = (dx+0.5)·(1/(dw/sw))
//      − 0.5 rounded to float, floor, Keys cubic weights with a = −0.75 computed in float, edge
//      taps clamped; the horizontal pass sums taps left to right; the vertical pass (SIMD, 4
//      lanes in the SSE2 baseline) sums S3·b3, then + S2·b2, + S1·b1, + S0·b0 for the first
//      ⌊w/4⌋·4 columns and left to right for the rest. A same-size resize is a copy.
//   3. MSCN: μ = GaussianBlur(I, 7×7, σ = 7/6, BORDER_REPLICATE), σ² from the blur of I², then
//      (I − μ) / (sqrt(blur(I²) − μ²) + 1/255); a negative variance gives NaN, which the fits
//      skip. The blur is separable: the row pass accumulates the 7 taps left to right, the column
//      pass adds symmetric row pairs to the centre (k₃·c + k₂·(a+b) + …) — with fused
//      multiply-adds, as OpenCV's AVX2 kernels run on x86-64 machines with FMA (emulated here in
//      double precision, exact except in rare double-rounding cases). The kernel is
//      `getGaussianKernel(7, 7/6)` (float). A one-row (one-column) image is not blurred
//      vertically (horizontally): `GaussianBlur` sets that kernel size to 1.
//   4. AGGD fit of the MSCN image and of its four shifted products (right, down, down-right,
//      up-right; outside the image the partner is 0): sums in double in row-major order, then a
//      linear scan over γ = 0.2, 0.201, … (double accumulation) that stops when |r(γ) − r̂| starts
//      to grow. 18 features per scale, 36 in all, stored as float.
//   5. Features scaled to [−1, 1] by the range file (float arithmetic), then the SVR of
//      `cv::ml::SVM::predict`: K = exp(−γ·‖sv − x‖²) with the difference taken in float and the
//      squares summed in double four at a time, the exponent rounded to float, OpenCV's own
//      `exp32f` (table + polynomial, FMA), then Σ αᵢ·Kᵢ − ρ in double, rounded to float and
//      clamped to [0, 100].
// Features that are NaN (a flat image, where a fit has no positive or no negative values) make
// OpenCV's SVM return +∞ with this model (the NaN kernel values of its scalar exp tail are clamped
// to FLT_MAX·1e-3), hence a score of 100; that is reproduced, not special-cased.
//
// Parity: against python3-opencv 4.6 on an x86-64 machine with AVX2/FMA (where OpenCV's dispatched
// kernels fuse), the features are bit-identical and the scores equal on every image tried (see
// BRISQUETests and scripts/make_brisque_fixtures.py). On a CPU without FMA OpenCV itself rounds
// the blur and exp differently (by about 1e-7); this code computes the same on every machine.

import Foundation
import FaceRestoreImaging

// MARK: - Model

/// The BRISQUE model: OpenCV's SVR (`opencv_ml_svm` YAML) and the feature range file.
public struct BRISQUEModel: Sendable {
    /// Debian `opencv-data`'s model.
    public static var defaultModelPath: String { "/usr/share/opencv4/quality/brisque_model_live.yml" }
    /// Debian `opencv-data`'s feature range.
    public static var defaultRangePath: String { "/usr/share/opencv4/quality/brisque_range_live.yml" }

    /// BRISQUE's feature count.
    static let featureCount = 36

    /// RBF γ.
    let gamma: Double
    /// The decision function's ρ (the prediction is Σ αᵢ·K(svᵢ, x) − ρ).
    let rho: Double
    /// Support vectors, `supportVectorCount × featureCount`, row-major.
    let supportVectors: [Float]
    let supportVectorCount: Int
    /// α of the decision function, and the support vector each one weighs.
    let alpha: [Double]
    let alphaIndex: [Int]
    /// Feature minima and maxima (rows 0 and 1 of the range matrix).
    let rangeMin: [Float]
    let rangeMax: [Float]

    /// Reads OpenCV's model and range files; `EvaluationError.modelFile` names the file on any problem.
    public init(modelPath: String, rangePath: String) throws {
        let svm = try Self.readSVM(path: modelPath)
        (gamma, rho, supportVectors, supportVectorCount, alpha, alphaIndex) =
            (svm.gamma, svm.rho, svm.supportVectors, svm.count, svm.alpha, svm.index)
        (rangeMin, rangeMax) = try Self.readRange(path: rangePath)
    }

    private static func load(_ path: String) throws -> OpenCVStorageNode {
        do { return try OpenCVStorage.read(path: path) } catch let e as OpenCVStorageError {
            throw EvaluationError.modelFile(path: path, reason: e.message)
        } catch {
            throw EvaluationError.modelFile(path: path, reason: "cannot read the file (\(error))")
        }
    }

    /// A value from the file as a message shows it: one line, at most 40 characters.
    private static func shown(_ value: String) -> String {
        let clean = String(value.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : Character($0) })
        return clean.count > 40 ? String(clean.prefix(40)) + "…" : clean
    }

    private static func readSVM(path: String) throws
        -> (gamma: Double, rho: Double, supportVectors: [Float], count: Int, alpha: [Double], index: [Int]) {
        func fail(_ reason: String) -> EvaluationError { .modelFile(path: path, reason: reason) }
        let root = try load(path)
        // `cv::ml::SVM::load` reads the first top-level node (OpenCV names it "opencv_ml_svm").
        guard case let .mapping(top) = root, let svm = top.first?.value, case .mapping = svm else {
            throw fail("no SVM model node")
        }
        guard let format = svm["format"]?.int, format == 3 else {
            throw fail("not an OpenCV 3+ SVM model (format: 3 expected)")
        }
        guard let type = svm["svmType"]?.string else { throw fail("no svmType") }
        guard type == "EPS_SVR" else { throw fail("svmType \(shown(type)) is not supported (EPS_SVR expected)") }
        guard let kernel = svm["kernel"], let kernelType = kernel["type"]?.string else { throw fail("no kernel type") }
        guard kernelType == "RBF" else { throw fail("kernel \(shown(kernelType)) is not supported (RBF expected)") }
        guard let gamma = kernel["gamma"]?.double, gamma.isFinite, gamma > 0 else {
            throw fail("the RBF gamma is missing or not a positive number")
        }
        guard let varCount = svm["var_count"]?.int else { throw fail("no var_count") }
        guard varCount == featureCount else {
            throw fail("var_count is \(varCount); BRISQUE has \(featureCount) features")
        }
        guard let svTotal = svm["sv_total"]?.int, svTotal > 0 else { throw fail("sv_total is missing or not positive") }
        guard let vectors = svm["support_vectors"]?.items else { throw fail("no support_vectors sequence") }
        guard vectors.count == svTotal else {
            throw fail("sv_total is \(svTotal) but there are \(vectors.count) support vectors")
        }
        for (i, v) in vectors.enumerated() where v.items?.count != featureCount {
            throw fail("support vector \(i) does not have \(featureCount) values")
        }
        var sv: [Float] = []
        sv.reserveCapacity(vectors.count * featureCount)   // the values are all present (checked above)
        for (i, v) in vectors.enumerated() {
            for x in v.items ?? [] {
                guard let d = x.double, d.isFinite else { throw fail("support vector \(i) has a value that is not a finite number") }
                sv.append(Float(d))
            }
        }
        guard let functions = svm["decision_functions"]?.items, functions.count == 1 else {
            throw fail("an EPS_SVR model needs exactly one decision function")
        }
        let df = functions[0]
        guard let svCount = df["sv_count"]?.int, svCount > 0, svCount <= svTotal else {
            throw fail("the decision function's sv_count is missing or out of range")
        }
        guard let rho = df["rho"]?.double, rho.isFinite else { throw fail("the decision function's rho is missing") }
        guard let alphaNodes = df["alpha"]?.items, alphaNodes.count == svCount else {
            throw fail("the decision function does not have sv_count alpha values")
        }
        var alpha: [Double] = []
        alpha.reserveCapacity(alphaNodes.count)
        for a in alphaNodes {
            guard let d = a.double, d.isFinite else { throw fail("an alpha value is not a finite number") }
            alpha.append(d)
        }
        var index: [Int]
        if let indexNodes = df["index"]?.items {
            guard indexNodes.count == svCount else { throw fail("the decision function does not have sv_count indices") }
            index = []
            index.reserveCapacity(indexNodes.count)
            for n in indexNodes {
                guard let i = n.int, i >= 0, i < svTotal else { throw fail("a support vector index is out of range") }
                index.append(i)
            }
        } else {
            guard svCount == svTotal else { throw fail("sv_count differs from sv_total and there is no index") }
            index = Array(0..<svCount)
        }
        return (gamma, rho, sv, svTotal, alpha, index)
    }

    private static func readRange(path: String) throws -> (min: [Float], max: [Float]) {
        func fail(_ reason: String) -> EvaluationError { .modelFile(path: path, reason: reason) }
        let root = try load(path)
        guard let range = root["range"], case .mapping = range else { throw fail("no 'range' matrix") }
        guard let rows = range["rows"]?.int, let cols = range["cols"]?.int else { throw fail("the range matrix has no rows/cols") }
        guard rows == 2, cols == featureCount else {
            throw fail("the range matrix is \(rows)×\(cols); 2×\(featureCount) expected")
        }
        guard let dt = range["dt"]?.string, dt == "f" else { throw fail("the range matrix is not float ('dt: f')") }
        guard let data = range["data"]?.items, data.count == rows * cols else {
            throw fail("the range matrix does not have rows×cols values")
        }
        var values: [Float] = []
        values.reserveCapacity(data.count)
        for x in data {
            guard let d = x.double, d.isFinite else { throw fail("a range value is not a finite number") }
            values.append(Float(d))
        }
        return (Array(values[0..<cols]), Array(values[cols..<(2 * cols)]))
    }
}

// MARK: - Score

/// The BRISQUE score of an 8-bit image (BGR, or one gray channel) as
/// `cv2.quality.QualityBRISQUE_compute(img, model, range)[0]`: 0 (best) to 100 (worst).
/// Images narrower or shorter than 2 pixels cannot be scored (OpenCV's half-size resize fails).
public func brisque(_ image: PixelImage, model: BRISQUEModel) throws -> Double {
    let features = try brisqueFeatures(image)
    return Double(model.predict(features))
}

/// The 36 BRISQUE features, as `cv2.quality.QualityBRISQUE_computeFeatures(img)`.
func brisqueFeatures(_ image: PixelImage) throws -> [Float] {
    let (w, h, c) = (image.width, image.height, image.channels)
    guard c == 1 || c == 3 else {
        throw EvaluationError.invalidInput("BRISQUE takes 1- or 3-channel images, not \(c)-channel")
    }
    guard w >= 2, h >= 2 else {
        throw EvaluationError.invalidInput("BRISQUE needs an image of at least 2×2 pixels, got \(w)×\(h)")
    }
    let (area, o1) = w.multipliedReportingOverflow(by: h)
    let (count, o2) = area.multipliedReportingOverflow(by: c)
    guard !o1, !o2, count == image.pixels.count else {
        throw EvaluationError.invalidInput("BRISQUE: a \(w)×\(h)×\(c) image with \(image.pixels.count) bytes")
    }
    let gray = BRISQUEKernels.grayFloat(image)
    var features: [Float] = []
    features.reserveCapacity(BRISQUEModel.featureCount)
    // Scale 1: the image itself (OpenCV's same-size resize is a copy); scale 2: half size.
    BRISQUEKernels.appendScaleFeatures(gray, width: w, height: h, to: &features)
    let (hw, hh) = (w / 2, h / 2)
    let half = BRISQUEKernels.resizeCubic(gray, width: w, height: h, toWidth: hw, toHeight: hh)
    BRISQUEKernels.appendScaleFeatures(half, width: hw, height: hh, to: &features)
    return features
}

extension BRISQUEModel {
    /// The score of these features: the SVR's output clamped to [0, 100] as
    /// `std::min(std::max(r, 0.f), 100.f)`.
    func predict(_ features: [Float]) -> Float {
        let result = svrOutput(features)
        let low: Float = result < 0 ? 0 : result
        return Float(100) < low ? 100 : low
    }

    /// `quality_utils::scale` to [−1, 1], then `SVM::predict` (float, as OpenCV).
    func svrOutput(_ features: [Float]) -> Float {
        let n = Self.featureCount
        var x = [Float](repeating: 0, count: n)
        for i in 0..<min(n, features.count) {
            // min + (max − min)·(v − lo)/(hi − lo) with min = −1, max = 1, in float.
            x[i] = Float(-1) + (Float(2) * (features[i] - rangeMin[i])) / (rangeMax[i] - rangeMin[i])
        }
        // Kernel values: the exponent in float, then OpenCV's exp32f.
        var kernel = [Float](repeating: 0, count: supportVectorCount)
        let negGamma = -gamma
        supportVectors.withUnsafeBufferPointer { sv in
            x.withUnsafeBufferPointer { xs in
                for j in 0..<supportVectorCount {
                    let row = j * n
                    var s = 0.0
                    var k = 0
                    while k + 4 <= n {
                        var t0 = Double(sv[row + k] - xs[k]), t1 = Double(sv[row + k + 1] - xs[k + 1])
                        s += t0 * t0 + t1 * t1
                        t0 = Double(sv[row + k + 2] - xs[k + 2]); t1 = Double(sv[row + k + 3] - xs[k + 3])
                        s += t0 * t0 + t1 * t1
                        k += 4
                    }
                    while k < n {
                        let t0 = Double(sv[row + k] - xs[k])
                        s += t0 * t0
                        k += 1
                    }
                    kernel[j] = Float(s * negGamma)
                }
            }
        }
        BRISQUEKernels.openCVExpInPlace(&kernel)
        // `SVMKernelImpl::calc` caps the values at FLT_MAX·1e-3; OpenCV's build also turns the NaN
        // that exp32f's scalar tail gives for a NaN input into that cap (observed: NaN features
        // make predict return +inf with this model's last alphas).
        let maxValue = Float(Double(Float.greatestFiniteMagnitude) * 1e-3)
        for j in 0..<kernel.count where kernel[j] > maxValue || kernel[j].isNaN {
            kernel[j] = maxValue
        }
        var sum = -rho
        for i in 0..<alpha.count {
            sum += alpha[i] * Double(kernel[alphaIndex[i]])
        }
        return Float(sum)
    }
}

// MARK: - Kernels

/// The image operations, each as OpenCV 4.6 computes it on float32 (see the header).
enum BRISQUEKernels {
    /// fma(a, b, c) in float: the product is exact in double, so this is one rounding of
    /// a·b + c to double, then to float (equal to a true float FMA but for rare double rounding).
    @inline(__always)
    static func fusedMultiplyAdd(_ a: Float, _ b: Float, _ c: Float) -> Float {
        Float(Double(a) * Double(b) + Double(c))
    }

    /// `cvtColor(BGR2GRAY)` (8-bit fixed point) then `convertTo(CV_32F, 1/255.)`.
    static func grayFloat(_ image: PixelImage) -> [Float] {
        let n = image.width * image.height
        let scale = Float(1.0 / 255.0)
        var out = [Float](repeating: 0, count: n)
        image.pixels.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { dst in
                if image.channels == 1 {
                    for i in 0..<n { dst[i] = Float(px[i]) * scale }
                } else {
                    for i in 0..<n {
                        let b = Int32(px[3 * i]), g = Int32(px[3 * i + 1]), r = Int32(px[3 * i + 2])
                        let y = (b * 3735 + g * 19235 + r * 9798 + (1 << 14)) >> 15
                        dst[i] = Float(y) * scale
                    }
                }
            }
        }
        return out
    }

    /// Keys cubic weights (a = −0.75) at fraction `x`, in float (`interpolateCubic`).
    @inline(__always)
    static func cubicWeights(_ x: Float) -> (Float, Float, Float, Float) {
        let a: Float = -0.75
        let x1 = x + 1, y = 1 - x
        let c0 = ((a * x1 - 5 * a) * x1 + 8 * a) * x1 - 4 * a
        let c1 = ((a + 2) * x - (a + 3)) * x * x + 1
        let c2 = ((a + 2) * y - (a + 3)) * y * y + 1
        let c3 = 1 - c0 - c1 - c2
        return (c0, c1, c2, c3)
    }

    /// Source taps (clamped indices) and weights of INTER_CUBIC for one axis.
    static func cubicTaps(source: Int, destination: Int) -> (index: [Int], weight: [Float]) {
        let inverseScale = Double(destination) / Double(source)
        let scale = 1.0 / inverseScale
        var index = [Int](repeating: 0, count: 4 * destination)
        var weight = [Float](repeating: 0, count: 4 * destination)
        for d in 0..<destination {
            var fx = Float((Double(d) + 0.5) * scale - 0.5)
            let sx = Int(fx.rounded(.down))
            fx -= Float(sx)
            let (c0, c1, c2, c3) = cubicWeights(fx)
            for k in 0..<4 { index[4 * d + k] = min(max(sx - 1 + k, 0), source - 1) }
            (weight[4 * d], weight[4 * d + 1], weight[4 * d + 2], weight[4 * d + 3]) = (c0, c1, c2, c3)
        }
        return (index, weight)
    }

    /// `cv::resize(src, (dw, dh), INTER_CUBIC)` of a one-channel float image.
    static func resizeCubic(_ src: [Float], width sw: Int, height sh: Int, toWidth dw: Int, toHeight dh: Int) -> [Float] {
        if dw == sw && dh == sh { return src }
        let (xi, xw) = cubicTaps(source: sw, destination: dw)
        let (yi, yw) = cubicTaps(source: sh, destination: dh)
        // Horizontal pass over every source row (OpenCV computes the rows it needs; same values).
        var horizontal = [Float](repeating: 0, count: sh * dw)
        src.withUnsafeBufferPointer { s in
            horizontal.withUnsafeMutableBufferPointer { hp in
                xi.withUnsafeBufferPointer { xi in
                    xw.withUnsafeBufferPointer { xw in
                        for y in 0..<sh {
                            let row = y * sw, out = y * dw
                            for d in 0..<dw {
                                let t = 4 * d
                                hp[out + d] = s[row + xi[t]] * xw[t] + s[row + xi[t + 1]] * xw[t + 1]
                                    + s[row + xi[t + 2]] * xw[t + 2] + s[row + xi[t + 3]] * xw[t + 3]
                            }
                        }
                    }
                }
            }
        }
        var dst = [Float](repeating: 0, count: dh * dw)
        let vectorEnd = dw - dw % 4
        horizontal.withUnsafeBufferPointer { hp in
            dst.withUnsafeMutableBufferPointer { out in
                for y in 0..<dh {
                    let t = 4 * y
                    let r0 = yi[t] * dw, r1 = yi[t + 1] * dw, r2 = yi[t + 2] * dw, r3 = yi[t + 3] * dw
                    let (b0, b1, b2, b3) = (yw[t], yw[t + 1], yw[t + 2], yw[t + 3])
                    let o = y * dw
                    for x in 0..<vectorEnd {
                        var v = hp[r3 + x] * b3
                        v = hp[r2 + x] * b2 + v
                        v = hp[r1 + x] * b1 + v
                        out[o + x] = hp[r0 + x] * b0 + v
                    }
                    for x in vectorEnd..<dw {
                        out[o + x] = hp[r0 + x] * b0 + hp[r1 + x] * b1 + hp[r2 + x] * b2 + hp[r3 + x] * b3
                    }
                }
            }
        }
        return dst
    }

    /// `getGaussianKernel(7, 7/6, CV_32F)`: exp(−x²/(2σ²)) normalised in double, then float.
    static let gaussianKernel: [Float] = {
        let sigma = 7.0 / 6.0
        let scale2X = -0.125 / (sigma * sigma)   // x below is twice the offset
        var values: [Double] = []
        var sum = 0.0
        for x in stride(from: -6, to: 0, by: 2) {
            let t = exp(Double(x * x) * scale2X)
            values.append(t)
            sum += t
        }
        sum = sum * 2 + 1
        let mul = 1 / sum
        let half = values.map { Float($0 * mul) }
        return half + [Float(mul)] + half.reversed()
    }()

    /// `GaussianBlur(src, (7, 7), 7/6, BORDER_REPLICATE)` of a one-channel float image. As in
    /// OpenCV, a one-row image is not filtered vertically, a one-column image not horizontally
    /// (`GaussianBlur` sets that kernel size to 1 when the border is not constant).
    static func gaussianBlur(_ src: UnsafeBufferPointer<Float>, width w: Int, height h: Int) -> [Float] {
        if w == 1 && h == 1 { return Array(src) }
        if w == 1 { return gaussianColumns(Array(src), width: w, height: h) }
        let rows = gaussianRows(src, width: w, height: h)
        return h == 1 ? rows : gaussianColumns(rows, width: w, height: h)
    }

    /// The horizontal pass of the 7-tap Gaussian: per row, replicate-padded, taps left to right,
    /// s = x₀k₀, then s = fma(xₜ, kₜ, s).
    static func gaussianRows(_ src: UnsafeBufferPointer<Float>, width w: Int, height h: Int) -> [Float] {
        var rows = [Float](repeating: 0, count: w * h)
        var padded = [Float](repeating: 0, count: w + 6)
        guard let source = src.baseAddress else { return rows }
        gaussianKernel.withUnsafeBufferPointer { k in
            rows.withUnsafeMutableBufferPointer { rp in
                padded.withUnsafeMutableBufferPointer { p in
                    guard let k = k.baseAddress, let out = rp.baseAddress, let pad = p.baseAddress else { return }
                    for y in 0..<h {
                        let line = source + y * w
                        (pad + 3).update(from: line, count: w)
                        let first = line[0], last = line[w - 1]
                        pad[0] = first; pad[1] = first; pad[2] = first
                        pad[w + 3] = last; pad[w + 4] = last; pad[w + 5] = last
                        gaussianRow(pad, out + y * w, w, k)
                    }
                }
            }
        }
        return rows
    }

    /// One padded row through the 7 taps (a plain pointer loop, so that it vectorises).
    @inline(never)
    static func gaussianRow(_ p: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ w: Int,
                            _ k: UnsafePointer<Float>) {
        let (k0, k1, k2, k3, k4, k5, k6) = (k[0], k[1], k[2], k[3], k[4], k[5], k[6])
        for x in 0..<w {
            var s = p[x] * k0
            s = fusedMultiplyAdd(p[x + 1], k1, s)
            s = fusedMultiplyAdd(p[x + 2], k2, s)
            s = fusedMultiplyAdd(p[x + 3], k3, s)
            s = fusedMultiplyAdd(p[x + 4], k4, s)
            s = fusedMultiplyAdd(p[x + 5], k5, s)
            s = fusedMultiplyAdd(p[x + 6], k6, s)
            out[x] = s
        }
    }

    /// The vertical pass of the 7-tap Gaussian (symmetric kernel): s = c·k₃, then
    /// s = fma(a + b, k₃₊ₜ, s) for the row pairs t = 1, 2, 3.
    static func gaussianColumns(_ rows: [Float], width w: Int, height h: Int) -> [Float] {
        var out = [Float](repeating: 0, count: w * h)
        gaussianKernel.withUnsafeBufferPointer { k in
            rows.withUnsafeBufferPointer { rp in
                out.withUnsafeMutableBufferPointer { op in
                    guard let k = k.baseAddress, let r = rp.baseAddress, let o = op.baseAddress else { return }
                    for y in 0..<h {
                        gaussianColumn(r + y * w, r + max(y - 1, 0) * w, r + min(y + 1, h - 1) * w,
                                       r + max(y - 2, 0) * w, r + min(y + 2, h - 1) * w,
                                       r + max(y - 3, 0) * w, r + min(y + 3, h - 1) * w, o + y * w, w, k)
                    }
                }
            }
        }
        return out
    }

    @inline(never)
    static func gaussianColumn(_ c: UnsafePointer<Float>, _ u1: UnsafePointer<Float>, _ d1: UnsafePointer<Float>,
                               _ u2: UnsafePointer<Float>, _ d2: UnsafePointer<Float>,
                               _ u3: UnsafePointer<Float>, _ d3: UnsafePointer<Float>,
                               _ out: UnsafeMutablePointer<Float>, _ w: Int, _ k: UnsafePointer<Float>) {
        let (k3, k4, k5, k6) = (k[3], k[4], k[5], k[6])
        for x in 0..<w {
            var s = c[x] * k3
            s = fusedMultiplyAdd(d1[x] + u1[x], k4, s)
            s = fusedMultiplyAdd(d2[x] + u2[x], k5, s)
            s = fusedMultiplyAdd(d3[x] + u3[x], k6, s)
            out[x] = s
        }
    }

    /// The MSCN image (I − μ)/(σ + 1/255) of one scale.
    static func mscn(_ image: [Float], width w: Int, height h: Int) -> [Float] {
        let n = w * h
        let squares = image.map { $0 * $0 }
        let mu = image.withUnsafeBufferPointer { gaussianBlur($0, width: w, height: h) }
        let blurredSquares = squares.withUnsafeBufferPointer { gaussianBlur($0, width: w, height: h) }
        let c = Float(1.0 / 255.0)
        var out = [Float](repeating: 0, count: n)
        for i in 0..<n {
            let m = mu[i]
            let sigma = (blurredSquares[i] - m * m).squareRoot() + c   // NaN where negative
            out[i] = (image[i] - m) / sigma
        }
        return out
    }

    /// r(γ) = Γ(2/γ)² / (Γ(1/γ)·Γ(3/γ)) at γ = 0.2, 0.2 + 0.001, … (< 10), accumulated in double
    /// as OpenCV's loop does. It does not depend on the image, so it is computed once.
    static let gammaTable: (gamma: [Double], ratio: [Double]) = {
        var gammas: [Double] = [], ratios: [Double] = []
        var gam = 0.2
        while gam < 10 {
            ratios.append(tgamma(2 / gam) * tgamma(2 / gam) / (tgamma(1 / gam) * tgamma(3 / gam)))
            gammas.append(gam)
            gam += 0.001
        }
        return (gammas, ratios)
    }()

    /// The sums of `AGGDfit`, in row-major order: count, Σx² and Σ|x| over the positive and
    /// negative values (zeros and NaN skipped).
    struct AGGDSums {
        var poscount = 0, negcount = 0
        var possqsum = 0.0, negsqsum = 0.0, abssum = 0.0

        /// One value, without branches: with p = max(x, 0) and n = max(−x, 0) (both 0 for NaN),
        /// Σx⁺² += p², Σx⁻² += n², Σ|x| += p + n; adding +0 leaves these sums (never −0)
        /// unchanged, so each sum sees exactly OpenCV's sequence of additions.
        @inline(__always)
        static func step(_ x: Float, _ s: inout (pc: Int, nc: Int, ps: Double, ns: Double, ab: Double)) {
            let v = SIMD2<Double>(Double(x), -Double(x))
            let positive = v .> 0
            let m = SIMD2<Double>(repeating: 0).replacing(with: v, where: positive)
            let square = m * m
            s.pc &+= positive[0] ? 1 : 0   // counts ≤ the pixel count: no overflow
            s.nc &+= positive[1] ? 1 : 0
            s.ps += square[0]
            s.ns += square[1]
            s.ab += m[0] + m[1]
        }

        /// Adds `v[j]` for j < n.
        @inline(never)
        mutating func add(_ v: UnsafePointer<Float>, _ n: Int) {
            var s = (pc: poscount, nc: negcount, ps: possqsum, ns: negsqsum, ab: abssum)
            for j in 0..<n { Self.step(v[j], &s) }
            (poscount, negcount, possqsum, negsqsum, abssum) = s
        }

        /// Adds `v[j]·p[j]` for j < n.
        @inline(never)
        mutating func add(_ v: UnsafePointer<Float>, times p: UnsafePointer<Float>, _ n: Int) {
            var s = (pc: poscount, nc: negcount, ps: possqsum, ns: negsqsum, ab: abssum)
            for j in 0..<n { Self.step(v[j] * p[j], &s) }
            (poscount, negcount, possqsum, negsqsum, abssum) = s
        }

        /// Adds `v[j]·0` for j < n (the partner outside the image; NaN·0 is NaN, skipped).
        @inline(never)
        mutating func addTimesZero(_ v: UnsafePointer<Float>, _ n: Int) {
            var s = (pc: poscount, nc: negcount, ps: possqsum, ns: negsqsum, ab: abssum)
            for j in 0..<n { Self.step(v[j] * 0, &s) }
            (poscount, negcount, possqsum, negsqsum, abssum) = s
        }
    }

    /// `AGGDfit` of `values` (or of the product of `values` with itself shifted by (di, dj) —
    /// di ∈ {−1, 0, 1}, dj ∈ {0, 1} — zero outside): (σ_left, σ_right, γ).
    static func aggdFit(_ values: UnsafeBufferPointer<Float>, width w: Int, height h: Int,
                        shift: (di: Int, dj: Int)?) -> (left: Double, right: Double, gamma: Double) {
        var sums = AGGDSums()
        if let v = values.baseAddress {
            if let (di, dj) = shift {
                for i in 0..<h {
                    let row = v + i * w
                    let si = i + di
                    if si < 0 || si >= h {
                        sums.addTimesZero(row, w)
                    } else {
                        let inside = w - dj   // columns whose partner j + dj is in the image
                        sums.add(row, times: v + si * w + dj, inside)
                        if inside < w { sums.addTimesZero(row + inside, w - inside) }
                    }
                }
            } else {
                sums.add(v, w * h)
            }
        }
        let (poscount, negcount) = (sums.poscount, sums.negcount)
        let (possqsum, negsqsum, abssum) = (sums.possqsum, sums.negsqsum, sums.abssum)
        let lsigma = pow(negsqsum / Double(negcount), 0.5)
        let rsigma = pow(possqsum / Double(poscount), 0.5)
        let gammahat = lsigma / rsigma
        let total = Double(w * h)
        // pow(·, 2) is x·x (as GCC folds it); the other powers are libm's pow, as in OpenCV.
        let meanAbs = abssum / total
        let rhat = meanAbs * meanAbs / ((negsqsum + possqsum) / total)
        let g2 = gammahat * gammahat + 1
        let rhatnorm = rhat * (pow(gammahat, 3) + 1) * (gammahat + 1) / (g2 * g2)
        var prevgamma = 0.0, prevdiff = 1e10
        let table = gammaTable
        for t in 0..<table.ratio.count {
            let diff = abs(table.ratio[t] - rhatnorm)
            if diff > prevdiff { break }
            prevdiff = diff
            prevgamma = table.gamma[t]
        }
        return (lsigma, rsigma, prevgamma)
    }

    /// The 18 features of one scale (`ComputeBrisqueFeature`'s loop body).
    static func appendScaleFeatures(_ image: [Float], width w: Int, height h: Int, to features: inout [Float]) {
        let structdis = mscn(image, width: w, height: h)
        structdis.withUnsafeBufferPointer { s in
            let fit = aggdFit(s, width: w, height: h, shift: nil)
            features.append(Float(fit.gamma))
            features.append(Float(fit.left * fit.left + fit.right * fit.right) / 2)
            for shift in [(0, 1), (1, 0), (1, 1), (-1, 1)] {
                let f = aggdFit(s, width: w, height: h, shift: (di: shift.0, dj: shift.1))
                let g = f.gamma
                let constant = sqrt(tgamma(1 / g)) / sqrt(tgamma(3 / g))
                let meanparam = (f.right - f.left) * (tgamma(2 / g) / tgamma(1 / g)) * constant
                features.append(Float(g))
                features.append(Float(meanparam))
                features.append(Float(f.left * f.left))
                features.append(Float(f.right * f.right))
            }
        }
    }

    // MARK: OpenCV's exp32f

    /// 2^(j/64) · A₀ as float (`expTab`, j = 0…63).
    static let expTable: [Float] = (0..<64).map { Float(pow(2.0, Double($0) / 64.0) * expPolyA0) }
    static let expPolyA0 = 0.9670371139572337719125840413672004409288e-2
    static let expA4 = Float(1.000000000000002438532970795181890933776 / expPolyA0)
    static let expA3 = Float(0.6931471805521448196800669615864773144641 / expPolyA0)
    static let expA2 = Float(0.2402265109513301490103372422686535526573 / expPolyA0)
    static let expA1 = Float(0.5550339366753125211915322047004666939128e-1 / expPolyA0)
    static let expPrescale = 1.4426950408889634073599246810019 * 64
    static let expMaxValue = 3000.0 * 64

    /// `cv::exp` on a float array in place, as OpenCV 4.6's AVX2 `exp32f` does it: blocks of 16
    /// in SIMD (a NaN input clamps to the minimum, giving 0), the remainder (fewer than 16, as the
    /// call is in place) in scalar code (NaN stays NaN).
    static func openCVExpInPlace(_ values: inout [Float]) {
        let n = values.count
        let vectorEnd = n >= 16 ? n - n % 16 : 0
        let minval = Float(-expMaxValue / expPrescale), maxval = Float(expMaxValue / expPrescale)
        let prescale = Float(expPrescale), postscale = Float(1.0 / 64.0)
        let tab = expTable
        let (a1, a2, a3, a4) = (expA1, expA2, expA3, expA4)
        for i in 0..<n {
            var x = values[i]
            if x.isNaN {
                if i >= vectorEnd { continue }   // scalar tail: NaN in, NaN out
                x = minval                       // SIMD max(NaN, min) = min
            }
            x = x < minval ? minval : (x > maxval ? maxval : x)
            x *= prescale
            let xi = Int32(x.rounded(.toNearestOrEven))   // |x| ≤ 192000 after the clamp
            let xf = (x - Float(xi)) * postscale
            let t = min(max((xi >> 6) + 127, 0), 255)
            let scale = Float(bitPattern: UInt32(t) << 23)
            let yf = tab[Int(xi & 63)] * scale
            var z = xf + a1
            z = fusedMultiplyAdd(z, xf, a2)
            z = fusedMultiplyAdd(z, xf, a3)
            z = fusedMultiplyAdd(z, xf, a4)
            values[i] = z * yf
        }
    }
}
