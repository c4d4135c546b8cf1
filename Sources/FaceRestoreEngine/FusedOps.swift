// Fused per-channel ops, one memory pass each (StyleGAN2's StyleConv/ToRGB tails, GPEN's
// concatenating noise, GFPGAN's channel-split SFT), split across the context's threads.
//
// They read and write 4-D activations in either of two layouts, keeping the one they are given:
// channels-last (NHWC) or oneDNN's nChw16c, which the Winograd convolutions produce. Both are
// "channel-blocked": element (n, c, y, x) of a tensor with C channels in blocks of B lies at
// ((n·C/B + c/B)·H·W + y·W + x)·B + c mod B, with B = C for channels-last and 16 for nChw16c.

import CDNNL
import Foundation

/// A 4-D activation in a channel-blocked layout, with its block size.
struct ChannelBlocked {
    let tensor: Tensor
    let block: Int
    var pointer: UnsafeMutablePointer<Float> { tensor.storage.floats }
}

/// One `parallelRows` call, handed to the OpenMP team.
private struct RowJob {
    let count: Int
    let parts: Int
    let body: (Range<Int>) -> Void
}

extension ComputeContext {
    /// Splits `count` rows over the context's threads: an OpenMP team (the one oneDNN's kernels
    /// run on), each thread taking one contiguous range of at least `grain` rows.
    func parallelRows(_ count: Int, grain: Int = 8, _ body: (Range<Int>) -> Void) {
        let parts = min(threads, max(1, count / grain))
        if parts <= 1 { body(0..<count); return }
        // Each part writes a disjoint range of rows of memory owned by the calling op, which
        // waits for all parts: sharing the non-escaping closure with the team is safe here.
        withoutActuallyEscaping(body) { rows in
            var job = RowJob(count: count, parts: parts, body: rows)
            withUnsafeMutablePointer(to: &job) { p in
                GOMP_parallel({ raw in
                    let job = raw!.assumingMemoryBound(to: RowJob.self)
                    let (count, parts, part) = (job.pointee.count, job.pointee.parts, Int(omp_get_thread_num()))
                    job.pointee.body((count * part / parts)..<(count * (part + 1) / parts))
                }, p, UInt32(parts), 0)
            }
        }
    }

    /// `t` as it is when nChw16c (and `allowBlocked`), else in channels-last.
    func channelBlocked(_ t: Tensor, allowBlocked: Bool = true) throws -> ChannelBlocked {
        if allowBlocked, t.desc.isChannelBlocked16 { return ChannelBlocked(tensor: t, block: 16) }
        return ChannelBlocked(tensor: try channelsLast(t), block: t.shape[1])
    }

    /// `t` in the channel-blocked layout with block `block` (16, or its channel count).
    func channelBlocked(_ t: Tensor, block: Int) throws -> ChannelBlocked {
        let desc: MemoryDesc = block == t.shape[1] ? .channelsLast(t.shape) : .channelBlocked16(t.shape)
        return ChannelBlocked(tensor: try reordered(t, to: desc), block: block)
    }

    /// Calls `body(rowStart, channelBase, pixelBase)` for every row of pixels of one channel block:
    /// the row's B·W values start at `rowStart`; `channelBase` is the block's first channel and
    /// `pixelBase` the row's first pixel index in N·H·W order.
    func forEachBlockRow(n: Int, c: Int, h: Int, w: Int, block: Int, _ body: (Int, Int, Int) -> Void) {
        let blocks = c / block
        parallelRows(n * blocks * h) { rows in
            for row in rows {
                let y = row % h, nb = row / h, cb = nb % blocks, b = nb / blocks
                body(row * w * block, cb * block, (b * h + y) * w)
            }
        }
    }

    /// `y = act(x·scale[c] + shift[c] + spatialWeight·spatial[n, 0, h, w])` for a 4-D tensor, where
    /// every term is optional and `act` is a leaky ReLU when `slope` is given. The result keeps the
    /// input's layout if it is nChw16c, else is channels-last. (StyleConv: modulated conv · √2·demod
    /// + w·noise + bias, then lrelu 0.2.) With `overwritingInput`, the result is written over `x`'s
    /// memory when `x` is already in one of those layouts: for a caller that owns `x` (a conv output
    /// it consumes here) and never reads it again; the one exception to ops leaving their inputs
    /// alone, which saves a tensor of fresh memory per call (GFPGAN v1.4's StyleConvs: 183 MB of
    /// page faults in a one-photo run).
    public func affine(_ x: Tensor, scale: [Float]? = nil, shift: [Float]? = nil, spatial: Tensor? = nil,
                       spatialWeight: Float = 1, leakyReLUSlope slope: Float? = nil,
                       overwritingInput: Bool = false) throws -> Tensor {
        guard x.rank == 4 else { throw EngineError.shapeMismatch(op: "affine", detail: "needs NCHW, got \(x.shape)") }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        if let scale, scale.count != c { throw EngineError.shapeMismatch(op: "affine", detail: "\(scale.count) scales for \(c) channels") }
        if let shift, shift.count != c { throw EngineError.shapeMismatch(op: "affine", detail: "\(shift.count) shifts for \(c) channels") }
        if let spatial, spatial.shape != [n, 1, h, w] {
            throw EngineError.shapeMismatch(op: "affine", detail: "spatial term \(spatial.shape) for input \(x.shape)")
        }
        let src = try channelBlocked(x)
        let sp = try spatial.map { try contiguous($0) }
        // Each value is read once and written at the same place, so the pass can run in place.
        let out = overwritingInput ? src.tensor : Tensor(uninitialized: src.tensor.desc)
        let sc = scale ?? [Float](repeating: 1, count: c), sh = shift ?? [Float](repeating: 0, count: c)
        let s = src.pointer, d = out.storage.floats, bs = src.block
        let noise = sp?.storage.floats
        let negative = slope ?? 1
        sc.withUnsafeBufferPointer { scp in sh.withUnsafeBufferPointer { shp in
            forEachBlockRow(n: n, c: c, h: h, w: w, block: bs) { start, c0, p0 in
                if bs % 16 == 0 {
                    // 16 channels at a time (the same operations in the same order as below).
                    for px in 0..<w {
                        let base = start + px * bs
                        let add = SIMD16<Float>(repeating: noise.map { spatialWeight * $0[p0 + px] } ?? 0)
                        for j in stride(from: 0, to: bs, by: 16) {
                            let v = load16(s + base + j) * load16(scp.baseAddress! + c0 + j) + add + load16(shp.baseAddress! + c0 + j)
                            store16(v.replacing(with: v * negative, where: v .< 0), d + base + j)
                        }
                    }
                    return
                }
                for px in 0..<w {
                    let base = start + px * bs
                    let add = noise.map { spatialWeight * $0[p0 + px] } ?? 0
                    for j in 0..<bs {
                        let v = s[base + j] * scp[c0 + j] + add + shp[c0 + j]
                        d[base + j] = v < 0 ? v * negative : v
                    }
                }
            }
        } }
        return out
    }

    /// `affine(cat([a, b], dim: 1), scale:, shift:, leakyReLUSlope:)` in one pass, without the
    /// concatenated tensor (GPEN's StyledConv: FusedLeakyReLU over the conv output and its noise
    /// input, concatenated). `scale` and `shift` cover the 2·C output channels. The result is
    /// nChw16c when `a` is, else channels-last. `outputScale` (2·C factors) multiplies the activated
    /// result, rounded separately as a following `multiply` would.
    public func affineConcat(_ a: Tensor, _ b: Tensor, scale: [Float], shift: [Float], leakyReLUSlope slope: Float,
                             outputScale: [Float]? = nil) throws -> Tensor {
        guard a.rank == 4, b.shape == a.shape else {
            throw EngineError.shapeMismatch(op: "affineConcat", detail: "\(a.shape) and \(b.shape)")
        }
        let (n, c, h, w) = (a.shape[0], a.shape[1], a.shape[2], a.shape[3])
        guard scale.count == 2 * c, shift.count == 2 * c else {
            throw EngineError.shapeMismatch(op: "affineConcat", detail: "\(scale.count) scales, \(shift.count) shifts for \(2 * c) channels")
        }
        if let outputScale, outputScale.count != 2 * c {
            throw EngineError.shapeMismatch(op: "affineConcat", detail: "\(outputScale.count) output scales for \(2 * c) channels")
        }
        let x = try channelBlocked(a)
        let y = try channelBlocked(b, block: x.block)
        let dims = [n, 2 * c, h, w]
        let out = Tensor(uninitialized: x.block == c ? .channelsLast(dims) : .channelBlocked16(dims))
        let post = outputScale ?? [Float](repeating: 1, count: 2 * c)
        let xs = x.pointer, ys = y.pointer, d = out.storage.floats
        // Output block size: 2·C for channels-last (one block holding a's then b's channels), 16 for
        // nChw16c (a's blocks, then b's).
        let bo = x.block == c ? 2 * c : 16
        let hw = h * w
        post.withUnsafeBufferPointer { ps in scale.withUnsafeBufferPointer { sc in shift.withUnsafeBufferPointer { sh in
            forEachBlockRow(n: n, c: 2 * c, h: h, w: w, block: bo) { start, c0, p0 in
                // The row's channels c0..<c0+bo come from a (below c) and then b, each run
                // contiguous in its source.
                let runs = [(xs, c0, min(c0 + bo, c)), (ys, max(c0, c), c0 + bo)]
                for (src, lo, hi) in runs where lo < hi {
                    let from = lo < c ? lo : lo - c
                    // Consecutive pixels of a row are one block apart in both layouts.
                    let row = src + Self.blockedOffset(pixel: p0, channel: from, channels: c, hw: hw, block: x.block)
                    if (hi - lo) % 16 == 0 {
                        // 16 channels at a time (the same operations in the same order as below).
                        for px in 0..<w {
                            let dst = d + start + px * bo + (lo - c0)
                            let o = row + px * x.block
                            for j in stride(from: 0, to: hi - lo, by: 16) {
                                let v = load16(o + j) * load16(sc.baseAddress! + lo + j) + load16(sh.baseAddress! + lo + j)
                                store16(v.replacing(with: v * slope, where: v .< 0) * load16(ps.baseAddress! + lo + j), dst + j)
                            }
                        }
                        continue
                    }
                    for px in 0..<w {
                        let dst = d + start + px * bo + (lo - c0)
                        let o = row + px * x.block
                        for j in 0..<(hi - lo) {
                            let v = o[j] * sc[lo + j] + sh[lo + j]
                            dst[j] = (v < 0 ? v * slope : v) * ps[lo + j]
                        }
                    }
                }
            }
        } } }
        return out
    }

    /// The offset of (pixel p of N·H·W, channel ch) in a channel-blocked tensor.
    @inline(__always)
    static func blockedOffset(pixel p: Int, channel ch: Int, channels c: Int, hw: Int, block: Int) -> Int {
        let b = p / hw, q = p - b * hw
        return ((b * (c / block) + ch / block) * hw + q) * block + ch % block
    }

    /// GFPGAN's channel-split SFT: channels `from..<C` become `x·scale + shift` (scale and shift are
    /// `[N, C − from, H, W]`), the others pass through; then every channel is multiplied by
    /// `outputScale` when given (the next modulated conv's input scaling, rounded as a following
    /// `multiply` would). The result keeps nChw16c when `x`, the scale and the split point allow
    /// it, else is channels-last. `overwritingInput` as for `affine`.
    public func spatialFeatureTransform(_ x: Tensor, scale: Tensor, shift: Tensor, fromChannel from: Int,
                                        outputScale: [Float]? = nil, overwritingInput: Bool = false) throws -> Tensor {
        guard x.rank == 4 else { throw EngineError.shapeMismatch(op: "sft", detail: "needs NCHW, got \(x.shape)") }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let k = c - from
        guard from >= 0, k > 0, scale.shape == [n, k, h, w], shift.shape == [n, k, h, w] else {
            throw EngineError.shapeMismatch(op: "sft", detail: "input \(x.shape), scale \(scale.shape), shift \(shift.shape), from channel \(from)")
        }
        if let outputScale, outputScale.count != c {
            throw EngineError.shapeMismatch(op: "sft", detail: "\(outputScale.count) output scales for \(c) channels")
        }
        let src = try channelBlocked(x, allowBlocked: from % 16 == 0)
        let blocked = src.block == 16
        let a = try channelBlocked(scale, block: blocked ? 16 : k), b = try channelBlocked(shift, block: blocked ? 16 : k)
        // In place when asked (as `affine`): each value is read once and written at the same place.
        let out = overwritingInput ? src.tensor : Tensor(uninitialized: src.tensor.desc)
        let s = src.pointer, d = out.storage.floats, ap = a.pointer, bp = b.pointer, bs = src.block
        let post = outputScale ?? [Float](repeating: 1, count: c)
        post.withUnsafeBufferPointer { postBuffer in
            let ps = postBuffer.baseAddress!
            forEachBlockRow(n: n, c: c, h: h, w: w, block: bs) { start, c0, p0 in
                // Channels below `from` pass through; the rest are contiguous in scale and shift.
                let split = min(max(from - c0, 0), bs)
                let row = split < bs ? Self.blockedOffset(pixel: p0, channel: c0 + split - from, channels: k, hw: h * w, block: a.block) : 0
                if split % 16 == 0, bs % 16 == 0 {
                    // 16 channels at a time (the same operations in the same order as below).
                    for px in 0..<w {
                        let base = start + px * bs
                        for j in stride(from: 0, to: split, by: 16) { store16(load16(s + base + j) * load16(ps + c0 + j), d + base + j) }
                        let o = row + px * a.block - split
                        for j in stride(from: split, to: bs, by: 16) {
                            store16((load16(s + base + j) * load16(ap + o + j) + load16(bp + o + j)) * load16(ps + c0 + j), d + base + j)
                        }
                    }
                    return
                }
                for px in 0..<w {
                    let base = start + px * bs
                    for j in 0..<split { d[base + j] = s[base + j] * ps[c0 + j] }
                    guard split < bs else { continue }
                    let o = row + px * a.block
                    for j in split..<bs {
                        d[base + j] = (s[base + j] * ap[o + j - split] + bp[o + j - split]) * ps[c0 + j]
                    }
                }
            }
        }
        return out
    }
}

extension ComputeContext {
    /// A 1×1 convolution to a few output channels in one pass over `x`, with bias and an optional
    /// addend: `y[n, o] = (Σ_c weights[o·C + c]·x[n, c] + bias[o]) + addend[n, o]`, returned plain
    /// (NCHW). For StyleGAN2's ToRGB, whose modulation is folded into `weights` per call: no
    /// scaled copy of the input, no layout conversion, no separate bias and skip passes. Sums in
    /// another order than oneDNN's convolution (results within float rounding of it).
    public func pointwiseConv(_ x: Tensor, weights: [Float], bias: [Float], addend: Tensor? = nil) throws -> Tensor {
        guard x.rank == 4 else { throw EngineError.shapeMismatch(op: "pointwiseConv", detail: "needs NCHW, got \(x.shape)") }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let o = bias.count
        guard o > 0, weights.count == o * c else {
            throw EngineError.shapeMismatch(op: "pointwiseConv", detail: "\(weights.count) weights, \(o) biases for \(c) input channels")
        }
        if let addend, addend.shape != [n, o, h, w] {
            throw EngineError.shapeMismatch(op: "pointwiseConv", detail: "addend \(addend.shape) for output [\(n), \(o), \(h), \(w)]")
        }
        let src = try channelBlocked(x)
        let add = try addend.map { try contiguous($0) }
        let out = Tensor(shape: [n, o, h, w], repeating: 0)
        let xs = src.pointer, d = out.storage.floats, bs = src.block
        let blocks = c / bs, hw = h * w
        let addPointer = add?.storage.floats
        weights.withUnsafeBufferPointer { wb in bias.withUnsafeBufferPointer { bb in
            let wp = wb.baseAddress!
            parallelRows(n * h) { rows in
                for row in rows {
                    let b = row / h, y = row % h
                    for px in 0..<w {
                        let pixel = y * w + px
                        for oc in 0..<o {
                            var sum: Float = 0
                            if bs % 16 == 0 {
                                var acc = SIMD16<Float>(repeating: 0)
                                for cb in 0..<blocks {
                                    let xp = xs + ((b * blocks + cb) * hw + pixel) * bs
                                    let wo = wp + oc * c + cb * bs
                                    for j in stride(from: 0, to: bs, by: 16) { acc += load16(xp + j) * load16(wo + j) }
                                }
                                sum = acc.sum()
                            } else {
                                for cb in 0..<blocks {
                                    let xp = xs + ((b * blocks + cb) * hw + pixel) * bs
                                    let wo = wp + oc * c + cb * bs
                                    for j in 0..<bs { sum += xp[j] * wo[j] }
                                }
                            }
                            let i = (b * o + oc) * hw + pixel
                            d[i] = addPointer.map { (sum + bb[oc]) + $0[i] } ?? sum + bb[oc]
                        }
                    }
                }
            }
        } }
        return out
    }
}

extension ComputeContext {
    /// `a·scale + b` in one pass (ESRGAN's residual `x5 * 0.2 + x`, rounded as that expression),
    /// written into `destination` when given (any view of the right shape, e.g. the head of the
    /// next dense block's `ChannelStack`), else into a new tensor in `a`'s layout (nChw16c or
    /// channels-last).
    public func scaledAdd(_ a: Tensor, scale: Float, _ b: Tensor, into destination: Tensor? = nil) throws -> Tensor {
        guard a.rank == 4, b.shape == a.shape, destination.map({ $0.shape == a.shape }) ?? true else {
            throw EngineError.shapeMismatch(op: "scaledAdd", detail: "\(a.shape), \(b.shape) into \(destination?.shape ?? a.shape)")
        }
        let out: Tensor
        if let destination, destination.desc.isChannelBlocked16 || destination.desc.isChannelsLast {
            out = destination
        } else if destination == nil {
            out = Tensor(uninitialized: try channelBlocked(a).tensor.desc)
        } else {
            let y = try scaledAdd(a, scale: scale, b)
            try reorder(from: y.desc, y.storage.pointer, to: destination!.desc, destination!.storage.pointer)
            return destination!
        }
        // Same shape and layout: the three buffers hold the elements in the same order.
        let block = out.desc.isChannelBlocked16 ? 16 : a.shape[1]
        let x = try channelBlocked(a, block: block), y = try channelBlocked(b, block: block)
        let count = out.desc.byteSize / 4
        let xs = x.pointer, ys = y.pointer, d = out.storage.floats
        let chunk = 4096
        let s16 = SIMD16<Float>(repeating: scale)
        parallelRows((count + chunk - 1) / chunk) { chunks in
            for c in chunks {
                let start = c * chunk, end = min(count, start + chunk)
                var i = start
                while i + 16 <= end {
                    store16(load16(xs + i) * s16 + load16(ys + i), d + i)
                    i += 16
                }
                while i < end {
                    d[i] = xs[i] * scale + ys[i]
                    i += 1
                }
            }
        }
        return out
    }
}

/// 16 floats from `p` (any alignment).
@inline(__always)
func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }

@inline(__always)
func load16(_ p: UnsafeMutablePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }

/// Stores 16 floats at `p` (any alignment).
@inline(__always)
func store16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self) }
