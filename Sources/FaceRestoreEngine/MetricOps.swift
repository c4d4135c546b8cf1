// Ops of the metric networks (LPIPS, ArcFace) that the restoration models do not need: LPIPS's
// per-layer score (lpips 0.1.4 `normalize_tensor`, the squared difference, the 1×1 `NetLinLayer`
// and `spatial_average`) and an affine map per feature of `[N, C]` rows (eval-mode `BatchNorm1d`).

import Foundation

extension ComputeContext {
    /// LPIPS's score of one layer for each batch item: with `f̂ = f / (‖f‖₂ + eps)` over channels
    /// at every position, `mean over positions of Σ_c weights[c]·(â_c − b̂_c)²`. `a` and `b` are
    /// `[N, C, H, W]` of one shape. Float32 as torch computes it per position; the spatial mean is
    /// summed in double row by row and the rows in order, so the value does not depend on the
    /// thread count.
    public func normalizedDifferenceScore(_ a: Tensor, _ b: Tensor, channelWeights weights: [Float],
                                          epsilon: Float = 1e-10) throws -> [Float] {
        guard a.rank == 4, a.shape == b.shape, weights.count == a.shape[1] else {
            throw EngineError.shapeMismatch(op: "normalized_difference_score",
                                            detail: "\(a.shape) and \(b.shape) with \(weights.count) channel weights")
        }
        let (n, c, h, w) = (a.shape[0], a.shape[1], a.shape[2], a.shape[3])
        guard n > 0, c > 0, h > 0, w > 0 else {
            throw EngineError.shapeMismatch(op: "normalized_difference_score", detail: "empty input \(a.shape)")
        }
        let x = try channelsLast(a), y = try channelsLast(b)
        let px = x.storage.floats, py = y.storage.floats
        var rowSums = [Double](repeating: 0, count: n * h)
        rowSums.withUnsafeMutableBufferPointer { sums in
            weights.withUnsafeBufferPointer { wt in
                guard let sumsBase = sums.baseAddress, let wp = wt.baseAddress else { return }
                parallelRows(n * h, grain: 1) { rows in
                    for row in rows {
                        var total = 0.0
                        for col in 0..<w {
                            let p = px + (row * w + col) * c, q = py + (row * w + col) * c
                            var na: Float = 0, nb: Float = 0
                            for k in 0..<c { na += p[k] * p[k]; nb += q[k] * q[k] }
                            let da = na.squareRoot() + epsilon, db = nb.squareRoot() + epsilon
                            var s: Float = 0
                            for k in 0..<c {
                                let d = p[k] / da - q[k] / db
                                s += wp[k] * (d * d)
                            }
                            total += Double(s)
                        }
                        sumsBase[row] = total
                    }
                }
            }
        }
        return (0..<n).map { item in
            Float(rowSums[(item * h)..<((item + 1) * h)].reduce(0, +) / Double(h * w))
        }
    }

    /// `x·scale[c] + shift[c]` for `[N, C]` rows (an eval-mode `BatchNorm1d` with
    /// `scale = γ/√(σ²+ε)`, `shift = β − μ·scale`).
    public func rowAffine(_ x: Tensor, scale: [Float], shift: [Float]) throws -> Tensor {
        guard x.rank == 2, scale.count == x.shape[1], shift.count == x.shape[1] else {
            throw EngineError.shapeMismatch(op: "row_affine", detail: "\(x.shape) with \(scale.count) scales, \(shift.count) shifts")
        }
        let (n, c) = (x.shape[0], x.shape[1])
        let src = try contiguous(x)
        let s = src.storage.floats
        return Tensor(shape: [n, c]) { out in
            for i in 0..<n {
                for k in 0..<c {
                    out[i * c + k] = s[i * c + k] * scale[k] + shift[k]
                }
            }
        }
    }
}
