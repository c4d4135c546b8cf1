// The blur's separable terms: a kernel's SVD cut at the tolerance rebuilds it.

@testable import FaceRestoreEvaluation
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
}
