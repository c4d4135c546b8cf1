// The blur's separable terms: a kernel's SVD cut at the tolerance rebuilds it; the blur of only
// the rows a downscale reads gives the same downscaled bytes as the whole blur.

@testable import FaceRestoreEvaluation
import FaceRestoreEngine
import FaceRestoreImaging
import Foundation
import Testing

@Suite struct SeparableKernels {
    @Test(arguments: [(0.3, 9.0, 0.7), (5.0, 2.0, -2.1), (10.0, 10.0, 0.0), (0.1, 0.1, 1.0), (7.5, 0.4, 3.1)])
    func truncatedSVDRebuildsTheKernel(_ sx: Double, _ sy: Double, _ theta: Double) throws {
        let k = Degrader.gaussianKernel(size: 41, sigmaX: sx, sigmaY: sy, theta: theta, isotropic: false)
        let terms = try #require(separableTerms(k, rows: 41, columns: 41, tolerance: 1e-9))
        #expect(!terms.isEmpty && terms.count <= 41)
        var worst = 0.0
        for i in 0..<41 {
            for j in 0..<41 {
                let rebuilt = terms.reduce(0.0) { $0 + $1.0[i] * $1.1[j] }
                worst = max(worst, abs(rebuilt - k[i * 41 + j]))
            }
        }
        #expect(worst < 1e-9, "σ \(sx), \(sy), θ \(theta): \(terms.count) terms, max error \(worst)")
    }

    /// Separable (isotropic, SVD) and direct kernels, at scales with and without skipped rows,
    /// the exact-2× INTER_AREA case and a non-square image.
    @Test(arguments: [(2.0, 2.0, 0.0, 3.7), (0.4, 7.0, 0.8, 2.0), (9.0, 0.2, 2.3, 1.3), (3.0, 3.0, 0.0, 7.9), (6.0, 1.0, -1.0, 1.0)])
    func blurringOnlyTheRowsTheResizeReadsChangesNothing(_ sx: Double, _ sy: Double, _ theta: Double, _ scale: Double) throws {
        let (w, h) = (96, 80)
        var rng = MT19937(seed: 5)
        let image = FloatImage(width: w, height: h, channels: 3, values: (0..<(w * h * 3)).map { _ in Float(rng.next() % 1000) / 999 })
        let isotropic = sx == sy && theta == 0
        let k = Degrader.gaussianKernel(size: 21, sigmaX: sx, sigmaY: sy, theta: theta, isotropic: isotropic)
        let factor: [Double]? = isotropic ? {
            let g = (0..<21).map { exp(-0.5 * Double(($0 - 10) * ($0 - 10)) / (sx * sx)) }
            return g.map { $0 / g.reduce(0, +) }
        }() : nil
        let (dw, dh) = (Int(Double(w) / scale), Int(Double(h) / scale))
        let rows = Plane<Float>.linearSourceIndices(source: h, destination: dh)
        #expect(scale < 2.5 || rows.count < h, "a large downscale skips rows")
        let whole = try image.filtered(kernel: k, size: 21, factor: factor).resizedLinear(width: dw, height: dh)
        let part = try image.filtered(kernel: k, size: 21, factor: factor, rows: rows).resizedLinear(width: dw, height: dh)
        #expect(part.values == whole.values)
    }
}
