// Stride-2 transposed convolution as four ordinary convolutions (its polyphase form).
//
// A transposed convolution with stride 2 scatters each input pixel into a k×k window of an
// output twice as large. Output row 2m + p only ever receives kernel rows ky ≡ p (mod 2), so the
// output splits into four interleaved phases (row parity × column parity), and each phase is a
// plain stride-1 correlation of the *input* with a sub-kernel of the flipped taps:
//
//   y[2m + p] = Σⱼ x[m − j] · W[p + 2j]        (j = 0 … t_p − 1, t_p = ⌈(k − p)/2⌉)
//             = Σₐ x̃[m + a] · W[p + 2(t_p − 1 − a)]   with x̃ the input zero-padded by t_p − 1.
//
// For StyleGAN2's 3×3 kernels the phases are 2×2, 2×1, 1×2 and 1×1 convolutions: the same
// multiply-adds as the transposed convolution, in oneDNN's direct convolution kernels, then one
// memory pass interleaves the phases (and applies any cropping). Measured on GPEN-512 (oneDNN 2.6,
// 2 threads): the four phases of 512→128 at 128² take 84 ms against 136 ms for oneDNN's stride-2
// deconvolution (a backward-data kernel at about 30% of peak), but smaller layers gain little and
// the phase convolutions themselves reach only about half of peak, so a whole forward pass is
// about as fast as before. What it buys is `filtered`: the blur that StyleGAN2 applies after each
// upsampling transposed convolution is computed straight from the phases, so the full-size
// deconvolution output is never materialized (GPEN-512 peak RSS about 1.95 → 1.6 GB) and two
// memory passes and a layout conversion go away.
// Each output value sums the same products as PyTorch's conv_transpose2d, in another order.

import Foundation

/// The four phase convolutions of a stride-2 transposed convolution and the interleave.
final class PolyphaseTransposedConv: Sendable {
    /// `phases[py][px]`: the convolution producing output rows ≡ py and columns ≡ px (mod 2) of
    /// the uncropped output.
    let phases: [[Conv2d]]
    let cropping: Padding2D
    let kernelSize: (Int, Int)

    /// Whether the polyphase form applies: stride 2, no groups, kernels of at least 2×2 (both
    /// phases get taps), no negative cropping.
    static func applies(stride: Int, groups: Int, kernel: (Int, Int), cropping c: Padding2D) -> Bool {
        stride == 2 && groups == 1 && kernel.0 >= 2 && kernel.1 >= 2 && min(c.top, c.left, c.bottom, c.right) >= 0
    }

    /// - Parameter weight: PyTorch layout `[in, out, kh, kw]`.
    init(weight: [Float], inChannels cin: Int, outChannels cout: Int, kernel: (Int, Int), bias: [Float]?,
         cropping: Padding2D, postOps: [PostOp], hint: (Int, Int), context: ComputeContext) throws {
        let (kh, kw) = kernel
        self.cropping = cropping
        kernelSize = kernel
        // Taps of phase p along an axis of kernel size k: k − p rounded up over 2.
        func taps(_ k: Int, _ p: Int) -> Int { (k - p + 1) / 2 }
        phases = try (0..<2).map { py in
            try (0..<2).map { px in
                let (th, tw) = (taps(kh, py), taps(kw, px))
                var w = [Float](repeating: 0, count: cout * cin * th * tw)
                for o in 0..<cout {
                    for i in 0..<cin {
                        for a in 0..<th {
                            for b in 0..<tw {
                                let (ky, kx) = (py + 2 * (th - 1 - a), px + 2 * (tw - 1 - b))
                                w[((o * cin + i) * th + a) * tw + b] = weight[((i * cout + o) * kh + ky) * kw + kx]
                            }
                        }
                    }
                }
                // Zero padding t − 1 on every side gives the phase's full extent, m = 0 … h + t − 2.
                return try Conv2d(weight: w, shape: [cout, cin, th, tw], bias: bias,
                                  padding: Padding2D(vertical: th - 1, horizontal: tw - 1), postOps: postOps,
                                  hint: hint, context: context)
            }
        }
    }

    /// The output size for an `h × w` input.
    func outputSize(_ h: Int, _ w: Int) throws -> (Int, Int) {
        let height = 2 * (h - 1) + kernelSize.0 - cropping.top - cropping.bottom
        let width = 2 * (w - 1) + kernelSize.1 - cropping.left - cropping.right
        guard height > 0, width > 0 else {
            throw EngineError.shapeMismatch(op: "conv_transpose2d", detail: "input \(h)×\(w) gives an empty output \(height)×\(width)")
        }
        return (height, width)
    }

    func callAsFunction(_ x: Tensor, _ context: ComputeContext) throws -> Tensor {
        let (height, width) = try outputSize(x.shape[2], x.shape[3])
        let y = try phases.map { row in try row.map { try $0(x, context) } }
        return try context.interleavePhases(y, height: height, width: width, top: cropping.top, left: cropping.left)
    }

    /// `filter(self(x))` for a plain FIR `filter` (no up- or down-sampling, no negative padding)
    /// in one pass over the phases, without materializing the transposed convolution's output;
    /// nil when the filter or the channel count (a multiple of 16) does not allow it.
    func filtered(_ x: Tensor, _ filter: UpFirDn2d, _ context: ComputeContext) throws -> Tensor? {
        let p = filter.pad
        guard filter.up == 1, filter.down == 1, min(p.top, p.left, p.bottom, p.right) >= 0, filter.channels % 16 == 0 else {
            return nil
        }
        let (height, width) = try outputSize(x.shape[2], x.shape[3])
        let y = try phases.map { row in try row.map { try $0(x, context) } }
        return try context.interleavePhasesFiltered(y, height: height, width: width, top: cropping.top, left: cropping.left,
                                                    kernel: filter.kernel, kernelSize: filter.kernelSize, pad: p)
    }
}

extension ComputeContext {
    /// The four phases in one channel-blocked layout (the first one's: nChw16c, else channels-last)
    /// and its block size, checked to cover a `height × width` output cropped by (top, left).
    private func phaseSources(_ phases: [[Tensor]], height: Int, width: Int, top: Int, left: Int) throws
        -> (sources: [[ChannelBlocked]], block: Int) {
        let first = try channelBlocked(phases[0][0])
        let src = try phases.map { row in try row.map { try channelBlocked($0, block: first.block) } }
        let (n, c) = (first.tensor.shape[0], first.tensor.shape[1])
        for py in 0..<2 {
            for px in 0..<2 {
                let s = src[py][px].tensor.shape
                // Every output pixel must have its source pixel in its phase.
                let rowsNeeded = (height - 1 + top - py) / 2 + 1, colsNeeded = (width - 1 + left - px) / 2 + 1
                guard s[0] == n, s[1] == c, s[2] >= rowsNeeded, s[3] >= colsNeeded else {
                    throw EngineError.shapeMismatch(op: "interleave", detail: "phase (\(py), \(px)) \(s) for a \(height)×\(width) output")
                }
            }
        }
        return (src, first.block)
    }

    /// `out[n, c, oy, ox] = phases[fy % 2][fx % 2][n, c, fy / 2, fx / 2]` with `fy = oy + top`,
    /// `fx = ox + left`: the four row/column parity phases of a stride-2 output woven together
    /// (and cropped). The result is nChw16c when the first phase is, else channels-last.
    func interleavePhases(_ phases: [[Tensor]], height: Int, width: Int, top: Int, left: Int) throws -> Tensor {
        let (src, block) = try phaseSources(phases, height: height, width: width, top: top, left: left)
        let (n, c) = (src[0][0].tensor.shape[0], src[0][0].tensor.shape[1])
        let shape = [n, c, height, width]
        let out = Tensor(uninitialized: block == c ? .channelsLast(shape) : .channelBlocked16(shape))
        let blocks = c / block
        let dst = out.storage.floats
        let pointers = src.map { $0.map { $0.pointer } }
        let dims = src.map { $0.map { ($0.tensor.shape[2], $0.tensor.shape[3]) } }
        // `pointers` are raw: `src` (which may own reordered copies of the phases) must outlive the reads.
        withExtendedLifetime(src) { parallelRows(n * blocks * height) { rows in
            for row in rows {
                let oy = row % height, nb = row / height
                let fy = oy + top, py = fy & 1, m = fy >> 1
                let outRow = dst + row * width * block
                for px in 0..<2 {
                    let (ph, pw) = dims[py][px]
                    let srcRow = pointers[py][px] + ((nb * ph) + m) * pw * block
                    // Output columns whose full column fx = ox + left has parity px.
                    var ox = (px - (left & 1) + 2) & 1
                    while ox < width {
                        copyPixel(outRow + ox * block, srcRow + ((ox + left) >> 1) * block, block)
                        ox += 2
                    }
                }
            }
        } }
        return out
    }
}

extension ComputeContext {
    /// `upfirdn2d(y, kernel, pad)` (up = down = 1: correlation with the flipped kernel over the
    /// zero-padded input) of the interleaved phases `y` (as `interleavePhases`), computed straight
    /// from the phases. Needs a channel count that is a multiple of 16; the result is nChw16c.
    func interleavePhasesFiltered(_ phases: [[Tensor]], height: Int, width: Int, top: Int, left: Int,
                                  kernel: [Float], kernelSize: (Int, Int), pad: Padding2D) throws -> Tensor {
        let (src, block) = try phaseSources(phases, height: height, width: width, top: top, left: left)
        let (n, c) = (src[0][0].tensor.shape[0], src[0][0].tensor.shape[1])
        let (kh, kw) = kernelSize
        let oh = height + pad.top + pad.bottom - kh + 1, ow = width + pad.left + pad.right - kw + 1
        guard c % 16 == 0, oh > 0, ow > 0 else {
            throw EngineError.shapeMismatch(op: "upfirdn2d", detail: "\(c) channels, \(height)×\(width) input to a \(kh)×\(kw) filter")
        }
        let out = Tensor(uninitialized: .channelBlocked16([n, c, oh, ow]))
        let blocks = c / 16
        // Correlation taps: the kernel flipped (upfirdn2d convolves).
        let taps = Array(kernel.reversed())
        let dst = out.storage.floats
        // The 16 channels from 16·cb of phase pixel (image i, row m, column q) start at
        // pointer + i·imageStride + cb·blockStride + m·rowStride + q·pixelStride (in floats),
        // in either source layout (nChw16c, or channels-last with `pixelStride` = c).
        struct Source { let pointer: UnsafeMutablePointer<Float>; let imageStride: Int, blockStride: Int, rowStride: Int }
        let pixelStride = block == 16 ? 16 : c
        let sources: [[Source]] = src.map { row in row.map { t in
            let (ph, pw) = (t.tensor.shape[2], t.tensor.shape[3])
            return block == 16
                ? Source(pointer: t.pointer, imageStride: blocks * ph * pw * 16, blockStride: ph * pw * 16, rowStride: pw * 16)
                : Source(pointer: t.pointer, imageStride: ph * pw * c, blockStride: 16, rowStride: pw * c)
        } }
        // `sources` hold raw pointers: `src` (which may own reordered copies of the phases) must
        // outlive the reads, or its copies are freed (and reused) before the pass reads them.
        withExtendedLifetime(src) { parallelRows(n * blocks * oh) { rows in
            var rowPointers = [UnsafeMutablePointer<Float>](repeating: dst, count: 2 * kh)
            var rowTaps = [Int](repeating: 0, count: kh)
            let termPointers = UnsafeMutablePointer<UnsafeMutablePointer<Float>>.allocate(capacity: 2 * kh * kw)
            let termWeights = UnsafeMutablePointer<Float>.allocate(capacity: kh * kw)
            defer { termPointers.deallocate(); termWeights.deallocate() }
            for row in rows {
                let oy = row % oh, nb = row / oh, cb = nb % blocks, b = nb / blocks
                // The filter rows that fall inside the (cropped) transposed-convolution output.
                var used = 0
                for a in 0..<kh {
                    let fy = oy - pad.top + a
                    guard fy >= 0, fy < height else { continue }
                    let ry = fy + top
                    for px in 0..<2 {
                        let s = sources[ry & 1][px]
                        rowPointers[2 * used + px] = s.pointer + b * s.imageStride + cb * s.blockStride + (ry >> 1) * s.rowStride
                    }
                    rowTaps[used] = a
                    used += 1
                }
                let outRow = dst + row * ow * 16
                // Interior columns (every tap inside the input): output column ox = 2j + e reads,
                // for tap t, phase column j + offset[e][t] of column phase parity[e][t]. Flattened
                // per parity e over (used row, tap) in the border loop's order.
                let interior = max(0, pad.left)..<max(max(0, pad.left), min(ow, width + pad.left - kw + 1))
                let terms = used * kw
                for e in 0..<2 {
                    for u in 0..<used {
                        for t in 0..<kw {
                            let rx = e + left - pad.left + t   // the full column of output column e (j = 0)
                            termPointers[e * kh * kw + u * kw + t] = rowPointers[2 * u + (rx & 1)] + (rx >> 1) * pixelStride
                            termWeights[u * kw + t] = taps[rowTaps[u] * kw + t]
                        }
                    }
                }
                for ox in interior {
                    let e = ox & 1, j = (ox >> 1) * pixelStride
                    let pointers = termPointers + e * kh * kw
                    var acc = SIMD16<Float>(repeating: 0)
                    for k in 0..<terms { acc += termWeights[k] * load16(pointers[k] + j) }
                    store16(acc, outRow + ox * 16)
                }
                for ox in 0..<ow where !interior.contains(ox) {
                    var acc = SIMD16<Float>(repeating: 0)
                    for u in 0..<used {
                        let a = rowTaps[u]
                        for t in 0..<kw {
                            let fx = ox - pad.left + t
                            guard fx >= 0, fx < width else { continue }
                            let rx = fx + left
                            acc += taps[a * kw + t] * load16(rowPointers[2 * u + (rx & 1)] + (rx >> 1) * pixelStride)
                        }
                    }
                    store16(acc, outRow + ox * 16)
                }
            }
        } }
        return out
    }
}

/// Copies one pixel's `count` channel values (a whole 16-lane vector at a time when possible).
@inline(__always)
private func copyPixel(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafeMutablePointer<Float>, _ count: Int) {
    if count & 15 == 0 {
        let d = UnsafeMutableRawPointer(dst), s = UnsafeRawPointer(src)
        var offset = 0
        while offset < count * 4 {
            d.storeBytes(of: s.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self), toByteOffset: offset,
                         as: SIMD16<Float>.self)
            offset += 64
        }
    } else {
        for i in 0..<count { dst[i] = src[i] }
    }
}
