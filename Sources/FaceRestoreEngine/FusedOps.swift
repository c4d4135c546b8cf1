// Fused per-channel ops on channels-last activations, one memory pass each (StyleGAN2's
// StyleConv/ToRGB tails and GFPGAN's channel-split SFT), split across the context's threads.

import Foundation

extension ComputeContext {
    /// Splits `count` rows over the context's threads.
    func parallelRows(_ count: Int, _ body: (Range<Int>) -> Void) {
        let parts = min(threads, max(1, count / 8))
        if parts <= 1 { body(0..<count); return }
        // Each part writes a disjoint range of rows of memory owned by the calling op, which
        // waits for all parts: sharing the non-Sendable closure is safe here.
        nonisolated(unsafe) let rows = body
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            rows((count * p / parts)..<(count * (p + 1) / parts))
        }
    }

    /// `y = act(x·scale[c] + shift[c] + spatialWeight·spatial[n, 0, h, w])` for a 4-D tensor, where
    /// every term is optional and `act` is a leaky ReLU when `slope` is given. The result is
    /// channels-last. (StyleConv: modulated conv · √2·demod + w·noise + bias, then lrelu 0.2.)
    public func affine(_ x: Tensor, scale: [Float]? = nil, shift: [Float]? = nil, spatial: Tensor? = nil,
                       spatialWeight: Float = 1, leakyReLUSlope slope: Float? = nil) throws -> Tensor {
        guard x.rank == 4 else { throw EngineError.shapeMismatch(op: "affine", detail: "needs NCHW, got \(x.shape)") }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        if let scale, scale.count != c { throw EngineError.shapeMismatch(op: "affine", detail: "\(scale.count) scales for \(c) channels") }
        if let shift, shift.count != c { throw EngineError.shapeMismatch(op: "affine", detail: "\(shift.count) shifts for \(c) channels") }
        if let spatial, spatial.shape != [n, 1, h, w] {
            throw EngineError.shapeMismatch(op: "affine", detail: "spatial term \(spatial.shape) for input \(x.shape)")
        }
        let src = try channelsLast(x)
        let sp = try spatial.map { try contiguous($0) }
        let out = Tensor(uninitialized: src.desc)
        let ones = [Float](repeating: 1, count: c), zeros = [Float](repeating: 0, count: c)
        let sc = scale ?? ones, sh = shift ?? zeros
        let s = src.storage.floats, d = out.storage.floats
        let noise = sp?.storage.floats
        let negative = slope ?? 1
        sc.withUnsafeBufferPointer { scp in sh.withUnsafeBufferPointer { shp in
            parallelRows(n * h) { rows in
                for row in rows {
                    for px in 0..<w {
                        let base = (row * w + px) * c
                        let add = noise.map { spatialWeight * $0[row * w + px] } ?? 0
                        for ch in 0..<c {
                            let v = s[base + ch] * scp[ch] + add + shp[ch]
                            d[base + ch] = v < 0 ? v * negative : v
                        }
                    }
                }
            }
        } }
        return out
    }

    /// `affine(cat([a, b], dim: 1), scale:, shift:, leakyReLUSlope:)` in one pass, without the
    /// concatenated tensor (GPEN's StyledConv: FusedLeakyReLU over the conv output and its noise
    /// input, concatenated). `scale` and `shift` cover the 2·C output channels. Channels-last result.
    /// `outputScale` (2·C factors) multiplies the activated result, rounded separately as a
    /// following `multiply` would.
    public func affineConcat(_ a: Tensor, _ b: Tensor, scale: [Float], shift: [Float], leakyReLUSlope slope: Float,
                             outputScale: [Float]? = nil) throws -> Tensor {
        guard a.rank == 4, b.shape == a.shape else {
            throw EngineError.shapeMismatch(op: "affineConcat", detail: "\(a.shape) and \(b.shape)")
        }
        let (n, c, h, w) = (a.shape[0], a.shape[1], a.shape[2], a.shape[3])
        guard scale.count == 2 * c, shift.count == 2 * c else {
            throw EngineError.shapeMismatch(op: "affineConcat", detail: "\(scale.count) scales, \(shift.count) shifts for \(2 * c) channels")
        }
        let x = try channelsLast(a), y = try channelsLast(b)
        let out = Tensor(uninitialized: .channelsLast([n, 2 * c, h, w]))
        if let outputScale, outputScale.count != 2 * c {
            throw EngineError.shapeMismatch(op: "affineConcat", detail: "\(outputScale.count) output scales for \(2 * c) channels")
        }
        let post = outputScale ?? [Float](repeating: 1, count: 2 * c)
        let xs = x.storage.floats, ys = y.storage.floats, d = out.storage.floats
        post.withUnsafeBufferPointer { ps in scale.withUnsafeBufferPointer { sc in shift.withUnsafeBufferPointer { sh in
            parallelRows(n * h) { rows in
                for row in rows {
                    for px in 0..<w {
                        let p = row * w + px
                        let src0 = xs + p * c, src1 = ys + p * c, dst = d + p * 2 * c
                        for ch in 0..<c {
                            let v = src0[ch] * sc[ch] + sh[ch]
                            dst[ch] = (v < 0 ? v * slope : v) * ps[ch]
                        }
                        for ch in 0..<c {
                            let v = src1[ch] * sc[c + ch] + sh[c + ch]
                            dst[c + ch] = (v < 0 ? v * slope : v) * ps[c + ch]
                        }
                    }
                }
            }
        } } }
        return out
    }

    /// GFPGAN's channel-split SFT: channels `from..<C` become `x·scale + shift` (scale and shift are
    /// `[N, C − from, H, W]`), the others pass through. The result is channels-last.
    public func spatialFeatureTransform(_ x: Tensor, scale: Tensor, shift: Tensor, fromChannel from: Int) throws -> Tensor {
        guard x.rank == 4 else { throw EngineError.shapeMismatch(op: "sft", detail: "needs NCHW, got \(x.shape)") }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let k = c - from
        guard from >= 0, k > 0, scale.shape == [n, k, h, w], shift.shape == [n, k, h, w] else {
            throw EngineError.shapeMismatch(op: "sft", detail: "input \(x.shape), scale \(scale.shape), shift \(shift.shape), from channel \(from)")
        }
        let src = try channelsLast(x), a = try channelsLast(scale), b = try channelsLast(shift)
        let out = Tensor(uninitialized: src.desc)
        let s = src.storage.floats, d = out.storage.floats, ap = a.storage.floats, bp = b.storage.floats
        parallelRows(n * h) { rows in
            for row in rows {
                for px in 0..<w {
                    let p = row * w + px
                    (d + p * c).update(from: s + p * c, count: from)
                    for j in 0..<k { d[p * c + from + j] = s[p * c + from + j] * ap[p * k + j] + bp[p * k + j] }
                }
            }
        }
        return out
    }
}
