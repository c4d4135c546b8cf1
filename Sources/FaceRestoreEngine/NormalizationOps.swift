// Group norm, layer norm, AdaIN and the smooth activations (sigmoid, swish, exact GELU) the
// VQGAN-style restorers use (CodeFormer, RestoreFormer, RestoreFormer++), with PyTorch semantics
// (torch 1.13 `nn.GroupNorm`, `nn.LayerNorm`, `torch.sigmoid`, `F.gelu`; AdaIN as
// `adaptive_instance_normalization` in sczhou/CodeFormer `basicsr/archs/codeformer_arch.py`
// @ b33cc7d639d6). Ported from reading those; checked by TransformerOpTests.
//
// oneDNN 2.6 has no group-norm primitive: the statistics and the per-channel affine are our own
// loops over the tensor's layout as it is (plain, NHWC or nChw16c). With AVX-512 both passes are
// CWinograd's `frn_` kernels (normalize.c) and the swish is applied in the affine's pass, on each
// value while it is in a register; without, Swift loops and oneDNN's eltwise swish in place after.

import CDNNL
import CWinograd
import Foundation

extension ComputeContext {
    // MARK: activations

    private func activation(_ x: Tensor, _ alg: dnnl_alg_kind_t, alpha: Float = 0) throws -> Tensor {
        let p = try make(.eltwise(alg: alg, data: x.desc, alpha: alpha, beta: 0))
        let out = Tensor(uninitialized: x.desc)
        try run(p, [PrimitiveArg(role: DNNL_ARG_SRC, desc: x.desc, data: x.storage.pointer),
                    PrimitiveArg(role: DNNL_ARG_DST, desc: x.desc, data: out.storage.pointer)])
        return out
    }

    /// Applies an eltwise op to memory this op just wrote (src = dst).
    private func activationInPlace(_ t: Tensor, _ alg: dnnl_alg_kind_t, alpha: Float = 0) throws {
        let p = try make(.eltwise(alg: alg, data: t.desc, alpha: alpha, beta: 0))
        try run(p, [PrimitiveArg(role: DNNL_ARG_SRC, desc: t.desc, data: t.storage.pointer),
                    PrimitiveArg(role: DNNL_ARG_DST, desc: t.desc, data: t.storage.pointer)])
    }

    /// `torch.sigmoid(x)` (oneDNN `logistic`).
    public func sigmoid(_ x: Tensor) throws -> Tensor { try activation(x, dnnl_eltwise_logistic) }

    /// swish / SiLU, `x * torch.sigmoid(x)` (oneDNN `swish` with alpha 1).
    public func swish(_ x: Tensor) throws -> Tensor { try activation(x, dnnl_eltwise_swish, alpha: 1) }

    /// `F.gelu(x)`, the exact erf form `x·Φ(x)` (oneDNN `gelu_erf`), as `nn.TransformerEncoderLayer`
    /// and CodeFormer's `TransformerSALayer` use it.
    public func gelu(_ x: Tensor) throws -> Tensor { try activation(x, dnnl_eltwise_gelu_erf) }

    // MARK: group norm

    /// `nn.GroupNorm(groups, C, eps)` on `[N, C, *]`: per (sample, group) mean and biased
    /// variance over the group's channels and all spatial positions, `y = (x−μ)/√(σ²+eps)·γ + β`,
    /// then `x·sigmoid(x)` when `swish` (the `nonlinearity` that follows every GroupNorm but the
    /// last in the VQGAN blocks). Statistics accumulate in double. The output keeps the input's
    /// layout when it is plain, NHWC or nChw16c (other layouts go NHWC). `gamma`/`beta` nil means
    /// `affine=False`. [1, 64, 512, 512] nChw16c with swish: 26 ms on 2 threads, 4 of them the swish.
    public func groupNorm(_ x: Tensor, groups: Int, eps: Float, gamma: [Float]?, beta: [Float]?,
                          swish: Bool = false) throws -> Tensor {
        try apply(try groupNormDeferred(x, groups: groups, eps: eps, gamma: gamma, beta: beta, swish: swish))
    }

    /// `groupNorm`'s statistics only: the per-channel scale and shift it would apply to `x`
    /// (in the layout it reads), for a consumer that applies them as it reads the input (a
    /// convolution on the fused Winograd kernel: `Conv2d(_:GroupNormed)`), or `apply` to get
    /// `groupNorm`'s output, bit for bit.
    public func groupNormDeferred(_ x: Tensor, groups: Int, eps: Float, gamma: [Float]?, beta: [Float]?,
                                  swish: Bool = false) throws -> GroupNormed {
        guard x.rank >= 2, groups > 0, x.shape[1] % groups == 0, x.count > 0 else {
            throw EngineError.shapeMismatch(op: "groupNorm", detail: "input \(x.shape) with \(groups) groups (needs [N, C, *] with C divisible by groups)")
        }
        let (n, c) = (x.shape[0], x.shape[1])
        if let gamma, gamma.count != c {
            throw EngineError.shapeMismatch(op: "groupNorm", detail: "gamma has \(gamma.count) values for \(c) channels")
        }
        if let beta, beta.count != c {
            throw EngineError.shapeMismatch(op: "groupNorm", detail: "beta has \(beta.count) values for \(c) channels")
        }
        let src: Tensor
        let block: Int   // channels stored together per spatial position: 1 plain, C NHWC, 16 nChw16c
        if x.layout == .plain { src = x; block = 1 }
        else if x.desc.isChannelBlocked16 { src = x; block = 16 }
        else if x.rank == 4 { src = try channelsLast(x); block = c }
        else { src = try contiguous(x); block = 1 }
        let spatial = x.count / (n * c)
        let s = src.storage.floats
        let blocks = c / block
        let per = c / groups
        // The tensor as `n·blocks·spatial` rows of `block` floats: row r holds channels
        // (r / spatial % blocks)·block ..< +block of sample r / (spatial·blocks). Both passes split
        // these rows evenly across the threads, a thread's range running over consecutive
        // (sample, channel block) runs.
        let rows = n * blocks * spatial
        let vectorized = frw_available() != 0
        /// Calls `body(firstRow, rowCount, firstChannel)` for each run of rows of one
        /// (sample, channel block) in `range`, `firstChannel` indexing `[n·C]` arrays.
        func runs(_ range: Range<Int>, _ body: (Int, Int, Int) -> Void) {
            Self.channelBlockRuns(range, spatial: spatial, blocks: blocks, channels: c, block: block, body)
        }

        // Pass 1: per-channel sums in double, each part of the rows into its own partial sums.
        let parts = min(threads, max(1, x.count / 65_536))
        var sums = [Double](repeating: 0, count: parts * n * c), squares = sums
        sums.withUnsafeMutableBufferPointer { sumBuf in
            squares.withUnsafeMutableBufferPointer { sqBuf in
                let sumP = sumBuf.baseAddress!, sqP = sqBuf.baseAddress!
                parallelRows(parts, grain: 1) { partRange in for part in partRange {
                    let partSums = sumP + part * n * c, partSquares = sqP + part * n * c
                    runs((rows * part / parts)..<(rows * (part + 1) / parts)) { first, count, ch0 in
                        let base = s + first * block
                        if vectorized {
                            frn_moments(base, count, block, partSums + ch0, partSquares + ch0)
                        } else {
                            Self.addMoments(base, rows: count, block: block, partSums + ch0, partSquares + ch0)
                        }
                    }
                } }
            }
        }
        // Group statistics → per-channel scale and shift (PyTorch's `scale = rstd·γ`,
        // `bias = β − scale·μ`).
        var mul = [Float](repeating: 0, count: n * c), add = [Float](repeating: 0, count: n * c)
        let count = Double(per * spatial)
        for b in 0..<n {
            for g in 0..<groups {
                var sum = 0.0, sq = 0.0
                for part in 0..<parts {
                    for ch in g * per..<(g + 1) * per {
                        sum += sums[(part * n + b) * c + ch]; sq += squares[(part * n + b) * c + ch]
                    }
                }
                let mean = sum / count
                let variance = max(sq / count - mean * mean, 0)
                let rstd = 1 / (variance + Double(eps)).squareRoot()
                for ch in g * per..<(g + 1) * per {
                    let scale = rstd * Double(gamma?[ch] ?? 1)
                    mul[b * c + ch] = Float(scale)
                    add[b * c + ch] = Float(Double(beta?[ch] ?? 0) - scale * mean)
                }
            }
        }
        return GroupNormed(source: src, mul: mul, add: add, swish: swish)
    }

    /// `x·scale + shift` per channel (and the swish) of a deferred group norm: `groupNorm`'s output.
    public func apply(_ g: GroupNormed) throws -> Tensor {
        let src = g.source
        let (n, c) = (src.shape[0], src.shape[1])
        let block = src.layout == .plain ? 1 : src.desc.isChannelBlocked16 ? 16 : c
        let spatial = src.count / (n * c)
        let blocks = c / block
        let rows = n * blocks * spatial
        let vectorized = frw_available() != 0
        let out = Tensor(uninitialized: src.desc)
        let s = src.storage.floats, d = out.storage.floats
        let (mul, add, swish) = (g.mul, g.add, g.swish)
        func runs(_ range: Range<Int>, _ body: (Int, Int, Int) -> Void) {
            Self.channelBlockRuns(range, spatial: spatial, blocks: blocks, channels: c, block: block, body)
        }
        // Pass 2: `x·scale + shift`, and the swish on each value while it is in a register.
        mul.withUnsafeBufferPointer { mulBuf in
            add.withUnsafeBufferPointer { addBuf in
                let mulP = mulBuf.baseAddress!, addP = addBuf.baseAddress!
                parallelRows(rows, grain: max(1, 16_384 / block)) { range in
                    runs(range) { first, count, ch0 in
                        let from = s + first * block, to = d + first * block
                        if vectorized {
                            frn_scale_shift(from, to, count, block, mulP + ch0, addP + ch0, swish ? 1 : 0)
                        } else {
                            Self.scaleShift(from, to, rows: count, block: block, mulP + ch0, addP + ch0)
                        }
                    }
                }
            }
        }
        if swish && !vectorized { try activationInPlace(out, dnnl_eltwise_swish, alpha: 1) }
        return out
    }

    /// Calls `body(firstRow, rowCount, firstChannel)` for each run of rows of one (sample, channel
    /// block) in `range` of a tensor seen as rows of `block` floats (`spatial` rows per channel
    /// block, `blocks` blocks per sample), `firstChannel` indexing `[n·channels]` arrays.
    static func channelBlockRuns(_ range: Range<Int>, spatial: Int, blocks: Int, channels c: Int, block: Int,
                                 _ body: (Int, Int, Int) -> Void) {
        var r = range.lowerBound
        while r < range.upperBound {
            let task = r / spatial
            let count = min(spatial - r % spatial, range.upperBound - r)
            body(r, count, (task / blocks) * c + (task % blocks) * block)
            r += count
        }
    }

    /// `frn_moments` without AVX-512: adds the per-lane sums and sums of squares of `rows` rows
    /// of `block` floats to `sum[0..<block]` and `sq[0..<block]`.
    private static func addMoments(_ p: UnsafePointer<Float>, rows: Int, block: Int,
                                   _ sum: UnsafeMutablePointer<Double>, _ sq: UnsafeMutablePointer<Double>) {
        if block == 1 {
            let (s, q) = moments(p, rows)
            sum[0] += s; sq[0] += q
        } else if block == 16 {
            var s = SIMD16<Double>(), q = SIMD16<Double>()
            let raw = UnsafeRawPointer(p)
            for r in 0..<rows {
                let v = SIMD16<Double>(raw.loadUnaligned(fromByteOffset: r * 64, as: SIMD16<Float>.self))
                s += v
                q += v * v
            }
            for i in 0..<16 { sum[i] += s[i]; sq[i] += q[i] }
        } else {
            for r in 0..<rows {
                let row = p + r * block
                for i in 0..<block {
                    let v = Double(row[i])
                    sum[i] += v
                    sq[i] += v * v
                }
            }
        }
    }

    /// `frn_scale_shift` without AVX-512 and without the swish: `rows` rows of `block` floats.
    private static func scaleShift(_ s: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>, rows: Int, block: Int,
                                   _ mul: UnsafePointer<Float>, _ add: UnsafePointer<Float>) {
        if block == 1 {
            let (m, a) = (mul[0], add[0])
            for p in 0..<rows { d[p] = s[p] * m + a }
        } else if block == 16 {
            let m = UnsafeRawPointer(mul).loadUnaligned(as: SIMD16<Float>.self)
            let a = UnsafeRawPointer(add).loadUnaligned(as: SIMD16<Float>.self)
            let from = UnsafeRawPointer(s), to = UnsafeMutableRawPointer(d)
            for p in 0..<rows {
                let v = from.loadUnaligned(fromByteOffset: p * 64, as: SIMD16<Float>.self)
                to.storeBytes(of: v * m + a, toByteOffset: p * 64, as: SIMD16<Float>.self)
            }
        } else {
            for p in 0..<rows {
                let o = p * block
                for i in 0..<block { d[o + i] = s[o + i] * mul[i] + add[i] }
            }
        }
    }

    /// Sum and sum of squares of `count` floats, in double with 8 independent lanes.
    static func moments(_ p: UnsafePointer<Float>, _ count: Int) -> (Double, Double) {
        var sum = SIMD8<Double>(), sq = SIMD8<Double>()
        var i = 0
        let raw = UnsafeRawPointer(p)
        while i + 8 <= count {
            let v = SIMD8<Double>(raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self))
            sum += v
            sq += v * v
            i += 8
        }
        var s = sum.sum(), q = sq.sum()
        while i < count { let v = Double(p[i]); s += v; q += v * v; i += 1 }
        return (s, q)
    }

    // MARK: layer norm

    /// `nn.LayerNorm(E, eps)` over the last dim of `x` (`[L, E]`, `[L, B, E]`, ...): per row mean
    /// and biased variance (accumulated in double), `(x−μ)/√(σ²+eps)·γ + β`. Returns a plain tensor.
    public func layerNorm(_ x: Tensor, eps: Float, gamma: [Float]?, beta: [Float]?) throws -> Tensor {
        guard let e = x.shape.last, e > 0, x.count > 0 else {
            throw EngineError.shapeMismatch(op: "layerNorm", detail: "input \(x.shape)")
        }
        if let gamma, gamma.count != e {
            throw EngineError.shapeMismatch(op: "layerNorm", detail: "gamma has \(gamma.count) values for last dim \(e) of \(x.shape)")
        }
        if let beta, beta.count != e {
            throw EngineError.shapeMismatch(op: "layerNorm", detail: "beta has \(beta.count) values for last dim \(e) of \(x.shape)")
        }
        let src = try contiguous(x)
        let out = Tensor(uninitialized: .plain(x.shape))
        let s = src.storage.floats, d = out.storage.floats
        let g = gamma ?? [Float](repeating: 1, count: e), bt = beta ?? [Float](repeating: 0, count: e)
        g.withUnsafeBufferPointer { gb in
            bt.withUnsafeBufferPointer { bb in
                let gp = gb.baseAddress!, bp = bb.baseAddress!
                parallelRows(x.count / e, grain: 16) { rows in for r in rows {
                    let row = s + r * e, o = d + r * e
                    let (sum, sq) = Self.moments(row, e)
                    let mean = sum / Double(e)
                    let rstd = Float(1 / (max(sq / Double(e) - mean * mean, 0) + Double(eps)).squareRoot())
                    let m = Float(mean)
                    for i in 0..<e { o[i] = (row[i] - m) * rstd * gp[i] + bp[i] }
                } }
            }
        }
        return out
    }

    // MARK: AdaIN

    /// CodeFormer's `adaptive_instance_normalization(content, style)`: per (b, c) over the spatial
    /// positions, mean and UNBIASED variance (÷ (N−1)) plus 1e-5, `σ = √var`;
    /// `(x − μx)/σx·σy + μy`, in that order of float operations. Both `[B, C, H, W]` (their
    /// spatial sizes may differ, each at least 2 positions). Returns a plain tensor.
    public func adaptiveInstanceNorm(_ content: Tensor, style: Tensor, eps: Float = 1e-5) throws -> Tensor {
        guard content.rank == 4, style.rank == 4, content.shape[0] == style.shape[0], content.shape[1] == style.shape[1],
              content.shape[2] * content.shape[3] > 1, style.shape[2] * style.shape[3] > 1 else {
            throw EngineError.shapeMismatch(op: "adaptiveInstanceNorm", detail: "content \(content.shape) and style \(style.shape) (need [B, C, H, W] with equal B, C and at least 2 positions)")
        }
        let x = try contiguous(content), y = try contiguous(style)
        let planes = content.shape[0] * content.shape[1]
        let nx = content.shape[2] * content.shape[3], ny = style.shape[2] * style.shape[3]
        let out = Tensor(uninitialized: .plain(content.shape))
        let xs = x.storage.floats, ys = y.storage.floats, d = out.storage.floats
        func meanStd(_ p: UnsafePointer<Float>, _ count: Int) -> (Float, Float) {
            let (sum, _) = Self.moments(p, count)
            let mean = sum / Double(count)
            var ss = 0.0
            for i in 0..<count { let dv = Double(p[i]) - mean; ss += dv * dv }
            let variance = Float(ss / Double(count - 1)) + eps
            return (Float(mean), variance.squareRoot())
        }
        parallelRows(planes, grain: 4) { pls in for pl in pls {
            let (mx, sx) = meanStd(xs + pl * nx, nx)
            let (my, sy) = meanStd(ys + pl * ny, ny)
            let src = xs + pl * nx, o = d + pl * nx
            for i in 0..<nx { o[i] = (src[i] - mx) / sx * sy + my }
        } }
        return out
    }
}

/// A group norm whose statistics are known but not yet applied (`ComputeContext.groupNormDeferred`):
/// the input as the norm reads it, batch-major per-channel `mul` and `add` (`[N·C]`), and whether
/// the swish follows. `ComputeContext.apply` gives the normalized tensor; a 3×3 convolution on
/// the fused Winograd kernel applies them as it reads its input instead, so the normalized
/// tensor is never written.
public struct GroupNormed: Sendable {
    public let source: Tensor
    let mul: [Float]
    let add: [Float]
    let swish: Bool
}
