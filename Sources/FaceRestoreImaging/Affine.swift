// 2-D affine transforms and the similarity fit the reference uses to align faces, ported from
// OpenCV 4.6 (`modules/calib3d/src/ptsetreg.cpp`: `estimateAffinePartial2D`,
// `LMeDSPointSetRegistrator`, `RANSACUpdateNumIters`, `AffinePartial2DEstimatorCallback`;
// `modules/core/include/opencv2/core/operations.hpp`: `RNG`; `modules/imgproc/src/imgwarp.cpp`:
// `invertAffineTransform`). facexlib calls `cv2.estimateAffinePartial2D(lm, template, method=LMEDS)`,
// which is not a least-squares fit: 13 random 2-point subsets from `cv::RNG(~0)` pick the model
// with the smallest median squared error, inliers are re-selected with a robust σ, and the
// Levenberg–Marquardt refinement then converges to the least-squares similarity on those inliers.

import Foundation

/// A 2×3 affine matrix `[[a, b, c], [d, e, f]]` mapping (x, y) to (a·x + b·y + c, d·x + e·y + f).
public struct AffineMatrix: Sendable, Equatable, CustomStringConvertible {
    public var m: [Double]   // row-major, 6 values

    public init(_ m: [Double]) {
        precondition(m.count == 6, "an affine matrix has 6 values")
        self.m = m
    }

    public static let identity = AffineMatrix([1, 0, 0, 0, 1, 0])

    public func apply(_ p: (x: Double, y: Double)) -> (x: Double, y: Double) {
        (m[0] * p.x + m[1] * p.y + m[2], m[3] * p.x + m[4] * p.y + m[5])
    }

    /// `cv2.invertAffineTransform` (a singular matrix gives zeros, as OpenCV).
    public func inverted() -> AffineMatrix {
        var d = m[0] * m[4] - m[1] * m[3]
        d = d != 0 ? 1 / d : 0
        let a11 = m[4] * d, a22 = m[0] * d, a12 = -m[1] * d, a21 = -m[3] * d
        let b1 = -a11 * m[2] - a12 * m[5]
        let b2 = -a21 * m[2] - a22 * m[5]
        return AffineMatrix([a11, a12, b1, a21, a22, b2])
    }

    /// Every coefficient multiplied by `s` (numpy `matrix *= s`).
    public func scaled(by s: Double) -> AffineMatrix { AffineMatrix(m.map { $0 * s }) }

    /// The translation column shifted by `(dx, dy)`.
    public func translated(by dx: Double, _ dy: Double) -> AffineMatrix {
        AffineMatrix([m[0], m[1], m[2] + dx, m[3], m[4], m[5] + dy])
    }

    public var description: String { "[[\(m[0]), \(m[1]), \(m[2])], [\(m[3]), \(m[4]), \(m[5])]]" }
}

/// OpenCV's `cv::RNG`: multiply-with-carry, `state = (uint32)state · 4164903690 + (state >> 32)`.
public struct OpenCVRandom: Sendable {
    public private(set) var state: UInt64

    public init(state: UInt64 = UInt64.max) { self.state = state == 0 ? UInt64.max : state }

    public mutating func next() -> UInt32 {
        state = UInt64(UInt32(truncatingIfNeeded: state)) &* 4_164_903_690 &+ (state >> 32)
        return UInt32(truncatingIfNeeded: state)
    }

    /// `RNG::uniform(int a, int b)`: an integer in `a..<b`.
    public mutating func uniform(_ a: Int, _ b: Int) -> Int {
        a == b ? a : Int(next() % UInt32(b - a)) + a
    }
}

public enum SimilarityFit {
    /// `cv2.estimateAffinePartial2D(from, to, method=cv2.LMEDS)` with OpenCV's defaults
    /// (confidence 0.99, 2000 max iterations, 10 refinement iterations). Points are rounded to
    /// float32 first, as OpenCV converts them. Returns nil where OpenCV returns None.
    public static func estimateLMedS(from src: [(x: Double, y: Double)], to dst: [(x: Double, y: Double)]) -> AffineMatrix? {
        precondition(src.count == dst.count, "point sets differ in size")
        let count = src.count
        let from = src.map { (x: Float($0.x), y: Float($0.y)) }
        let to = dst.map { (x: Float($0.x), y: Float($0.y)) }
        guard count >= 2 else { return nil }
        if count == 2 {
            guard let model = twoPointModel(from[0], from[1], to[0], to[1]) else { return nil }
            return refine(model, from: from, to: to, inliers: [true, true])
        }

        var rng = OpenCVRandom()
        let iterations = max(updateIterationCount(confidence: 0.99, outlierRatio: 0.45, modelPoints: 2, maxIterations: 2000), 3)
        var best: AffineMatrix?
        var minMedian = Double.greatestFiniteMagnitude
        for _ in 0..<iterations {
            // RANSACPointSetRegistrator::getSubset with two distinct indices; a 2-point subset of
            // an affine-partial fit is never rejected by checkSubset.
            let i0 = rng.uniform(0, count)
            var i1 = rng.uniform(0, count)
            while i1 == i0 { i1 = rng.uniform(0, count) }
            guard let model = twoPointModel(from[i0], from[i1], to[i0], to[i1]) else { continue }
            var errors = squaredErrors(model, from: from, to: to)
            errors.sort()   // nth_element's value at count/2 is the sorted value there
            let median = Double(errors[count / 2])
            if median < minMedian {
                minMedian = median
                best = model
            }
        }
        guard let model = best else { return nil }
        var sigma = 2.5 * 1.4826 * (1 + 5.0 / Double(count - 2)) * minMedian.squareRoot()
        sigma = max(sigma, 0.001)
        let threshold = Float(sigma * sigma)
        let inliers = squaredErrors(model, from: from, to: to).map { $0 <= threshold }
        guard inliers.filter({ $0 }).count >= 2 else { return nil }
        return refine(model, from: from, to: to, inliers: inliers)
    }

    /// `RANSACUpdateNumIters`.
    static func updateIterationCount(confidence p: Double, outlierRatio ep: Double, modelPoints: Int, maxIterations: Int) -> Int {
        let num = log(max(1 - p, Double.leastNormalMagnitude))
        let denom = log(1 - pow(1 - ep, Double(modelPoints)))
        if denom >= 0 || -num >= Double(maxIterations) * -denom { return maxIterations }
        return Int((num / denom).rounded(.toNearestOrEven))
    }

    /// The exact similarity through two point pairs (`AffinePartial2DEstimatorCallback::runKernel`).
    static func twoPointModel(_ p1: (x: Float, y: Float), _ p2: (x: Float, y: Float),
                              _ q1: (x: Float, y: Float), _ q2: (x: Float, y: Float)) -> AffineMatrix? {
        let (x1, y1, x2, y2) = (Double(p1.x), Double(p1.y), Double(p2.x), Double(p2.y))
        let (X1, Y1, X2, Y2) = (Double(q1.x), Double(q1.y), Double(q2.x), Double(q2.y))
        let d = 1 / ((x1 - x2) * (x1 - x2) + (y1 - y2) * (y1 - y2))
        guard d.isFinite else { return nil }
        let s0 = d * ((X1 - X2) * (x1 - x2) + (Y1 - Y2) * (y1 - y2))
        let s1 = d * ((Y1 - Y2) * (x1 - x2) - (X1 - X2) * (y1 - y2))
        let s2 = d * ((Y1 - Y2) * (x1 * y2 - x2 * y1) - (X1 * y2 - X2 * y1) * (y1 - y2) - (X1 * x2 - X2 * x1) * (x1 - x2))
        let s3 = d * (-(X1 - X2) * (x1 * y2 - x2 * y1) - (Y1 * x2 - Y2 * x1) * (x1 - x2) - (Y1 * y2 - Y2 * y1) * (y1 - y2))
        return AffineMatrix([s0, -s1, s2, s1, s0, s3])
    }

    /// Per-point squared reprojection errors in float32, as `computeError` does.
    static func squaredErrors(_ t: AffineMatrix, from: [(x: Float, y: Float)], to: [(x: Float, y: Float)]) -> [Float] {
        let f = t.m.map { Float($0) }
        return zip(from, to).map { p, q in
            let a = f[0] * p.x + f[1] * p.y + f[2] - q.x
            let b = f[3] * p.x + f[4] * p.y + f[5] - q.y
            return a * a + b * b
        }
    }

    /// The least-squares similarity on the inliers: the fixed point OpenCV's Levenberg–Marquardt
    /// refinement converges to (the problem is linear in (a, b, tx, ty)). Falls back to `model`
    /// if the inliers are degenerate.
    static func refine(_ model: AffineMatrix, from: [(x: Float, y: Float)], to: [(x: Float, y: Float)],
                       inliers: [Bool]) -> AffineMatrix {
        // Centred closed form of min Σ ‖[a −b; b a]·p + t − q‖².
        var n = 0.0, mx = 0.0, my = 0.0, mu = 0.0, mv = 0.0
        for i in from.indices where inliers[i] {
            n += 1; mx += Double(from[i].x); my += Double(from[i].y); mu += Double(to[i].x); mv += Double(to[i].y)
        }
        mx /= n; my /= n; mu /= n; mv /= n
        var sxx = 0.0, sa = 0.0, sb = 0.0
        for i in from.indices where inliers[i] {
            let x = Double(from[i].x) - mx, y = Double(from[i].y) - my
            let u = Double(to[i].x) - mu, v = Double(to[i].y) - mv
            sxx += x * x + y * y
            sa += x * u + y * v
            sb += x * v - y * u
        }
        guard sxx > 0 else { return model }
        let a = sa / sxx, b = sb / sxx
        return AffineMatrix([a, -b, mu - a * mx + b * my, b, a, mv - b * mx - a * my])
    }
}

extension SimilarityFit {
    /// The Umeyama least-squares similarity (rotation, uniform scale, translation) taking `src` onto
    /// `dst`, as GPEN's `align_faces._umeyama` computes it (yangxy/GPEN `align_faces.py`, commit
    /// 2c73670; the skimage algorithm). Points are rounded to float32 first, as GPEN passes them.
    /// In 2-D the SVD solution has a closed form: the rotation by atan2(A₁₀ − A₀₁, A₀₀ + A₁₁) of
    /// the cross-covariance A = dstᵀ·src / n, whose trace against A (= Σσᵢdᵢ, reflection-corrected)
    /// is hypot(A₀₀ + A₁₁, A₁₀ − A₀₁). `fixedScale` replaces the estimated scale (GPEN's inverse
    /// fit passes 1/scale). Returns the matrix and its scale; nil for coincident points.
    public static func umeyama(from src: [(x: Double, y: Double)], to dst: [(x: Double, y: Double)],
                               fixedScale: Double? = nil) -> (matrix: AffineMatrix, scale: Double)? {
        precondition(src.count == dst.count && !src.isEmpty, "point sets differ in size or are empty")
        let n = Double(src.count)
        let s = src.map { (x: Double(Float($0.x)), y: Double(Float($0.y))) }
        let d = dst.map { (x: Double(Float($0.x)), y: Double(Float($0.y))) }
        let sm = (x: s.reduce(0) { $0 + $1.x } / n, y: s.reduce(0) { $0 + $1.y } / n)
        let dm = (x: d.reduce(0) { $0 + $1.x } / n, y: d.reduce(0) { $0 + $1.y } / n)
        var a00 = 0.0, a01 = 0.0, a10 = 0.0, a11 = 0.0, variance = 0.0
        for (p, q) in zip(s, d) {
            let (sx, sy, dx, dy) = (p.x - sm.x, p.y - sm.y, q.x - dm.x, q.y - dm.y)
            a00 += dx * sx; a01 += dx * sy; a10 += dy * sx; a11 += dy * sy
            variance += sx * sx + sy * sy
        }
        let (c, sn) = ((a00 + a11) / n, (a10 - a01) / n)
        let r = (c * c + sn * sn).squareRoot()
        guard r > 0, variance > 0 else { return nil }
        let scale = fixedScale ?? r / (variance / n)
        let (rc, rs) = (c / r * scale, sn / r * scale)
        let tx = dm.x - (rc * sm.x - rs * sm.y), ty = dm.y - (rs * sm.x + rc * sm.y)
        return (AffineMatrix([rc, -rs, tx, rs, rc, ty]), scale)
    }
}
