// Spatial ops that oneDNN has no primitive for, with PyTorch semantics:
// - reflection padding (`nn.ReflectionPad2d`), pixel shuffle/unshuffle (`F.pixel_shuffle`),
// - upfirdn2d as in StyleGAN2's original ops (basicsr 1.4.2 `basicsr/ops/upfirdn2d/upfirdn2d.py`,
//   `upfirdn2d_native`: zero-insert upsample, pad (negative crops), correlate with the flipped
//   kernel, keep every `down`-th sample),
// - BatchNorm folded into the preceding convolution (eval-mode `nn.BatchNorm2d`).

import Foundation

extension ComputeContext {
    /// `nn.ReflectionPad2d((left, right, top, bottom))`, optionally of the input first upsampled
    /// `upsample`× by nearest neighbour (`F.interpolate(x, scale_factor=upsample, mode="nearest")`
    /// then the pad, in one pass without the upsampled intermediate), optionally of
    /// `leaky_relu(x, slope)` (the activation of the layer before, applied as the values are
    /// copied). Output is nChw16c for an nChw16c input, else channels-last.
    public func reflectionPad2d(_ x: Tensor, _ pad: Padding2D, upsample f: Int = 1,
                                leakyReLUSlope slope: Float? = nil) throws -> Tensor {
        guard x.rank == 4, f >= 1 else {
            throw EngineError.shapeMismatch(op: "reflection_pad2d", detail: "needs NCHW and a positive upsampling, got \(x.shape), ×\(f)")
        }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (uh, uw) = (h * f, w * f)
        guard pad.top < uh, pad.bottom < uh, pad.left < uw, pad.right < uw,
              min(pad.top, pad.bottom, pad.left, pad.right) >= 0 else {
            throw EngineError.shapeMismatch(op: "reflection_pad2d", detail: "padding \(pad) must be non-negative and below the input size \(uh)×\(uw)")
        }
        let src = try channelBlocked(x)
        let oh = uh + pad.top + pad.bottom, ow = uw + pad.left + pad.right
        let dims = [n, c, oh, ow]
        let out = Tensor(uninitialized: src.block == c ? .channelsLast(dims) : .channelBlocked16(dims))
        func reflect(_ i: Int, _ size: Int) -> Int { i < 0 ? -i : (i >= size ? 2 * (size - 1) - i : i) }
        let s = src.pointer, d = out.storage.floats, bs = src.block
        // Source pixel of each output column; without upsampling the interior is one run.
        let columns = (0..<ow).map { reflect($0 - pad.left, uw) / f }
        let interior = f == 1 ? pad.left..<(pad.left + w) : 0..<0
        // Copies `count` floats (a multiple of 16 when bs is 16), with the activation if any.
        let negative = slope ?? 1
        func copy(_ from: UnsafeMutablePointer<Float>, _ to: UnsafeMutablePointer<Float>, _ count: Int) {
            guard slope != nil else { return to.update(from: from, count: count) }
            if bs == 16 {
                for i in stride(from: 0, to: count, by: 16) {
                    let v = load16(from + i)
                    store16(v.replacing(with: v * negative, where: v .< 0), to + i)
                }
            } else {
                for i in 0..<count { to[i] = from[i] < 0 ? from[i] * negative : from[i] }
            }
        }
        // One (image, channel block) plane at a time: rows of `bs`-channel pixels.
        forEachBlockRow(n: n, c: c, h: oh, w: ow, block: bs) { start, _, _ in
            let plane = start / (oh * ow * bs), y = (start / (ow * bs)) % oh
            let row = s + (plane * h + reflect(y - pad.top, uh) / f) * w * bs, o = d + start
            if !interior.isEmpty { copy(row, o + interior.lowerBound * bs, w * bs) }
            for (xo, sx) in columns.enumerated() where !interior.contains(xo) {
                if bs == 16, slope == nil { store16(load16(row + sx * 16), o + xo * 16) } else { copy(row + sx * bs, o + xo * bs, bs) }
            }
        }
        return out
    }

    /// `nn.MaxPool2d(kernel, stride, padding)` (padding counts as −∞). Output is channels-last.
    public func maxPool2d(_ x: Tensor, kernel k: Int, stride: Int, padding p: Int) throws -> Tensor {
        guard x.rank == 4, k > 0, stride > 0, p >= 0, p <= k / 2 else {
            throw EngineError.shapeMismatch(op: "max_pool2d", detail: "\(x.shape), kernel \(k), stride \(stride), padding \(p)")
        }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = (h + 2 * p - k) / stride + 1, ow = (w + 2 * p - k) / stride + 1
        let src = try channelsLast(x)
        let out = Tensor(uninitialized: .channelsLast([n, c, oh, ow]))
        let s = src.storage.floats, d = out.storage.floats
        for b in 0..<n {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let o = d + ((b * oh + oy) * ow + ox) * c
                    o.initialize(repeating: -.infinity, count: c)
                    for y in max(oy * stride - p, 0)..<min(oy * stride - p + k, h) {
                        for xx in max(ox * stride - p, 0)..<min(ox * stride - p + k, w) {
                            let i = s + ((b * h + y) * w + xx) * c
                            for ch in 0..<c { o[ch] = max(o[ch], i[ch]) }
                        }
                    }
                }
            }
        }
        return out
    }

    /// `a + F.interpolate(b, size=a.shape[2:], mode="nearest")`: PyTorch's legacy nearest index
    /// ⌊dst · (in/out)⌋ in float (exact halving when out = 2·in). Output is channels-last.
    public func addNearestUpsampled(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        guard a.rank == 4, b.rank == 4, a.shape[0] == b.shape[0], a.shape[1] == b.shape[1] else {
            throw EngineError.shapeMismatch(op: "add_nearest", detail: "\(a.shape) and \(b.shape)")
        }
        let (n, c, h, w) = (a.shape[0], a.shape[1], a.shape[2], a.shape[3])
        let (bh, bw) = (b.shape[2], b.shape[3])
        func index(_ d: Int, _ input: Int, _ output: Int) -> Int {
            if input == output { return d }
            if output == 2 * input { return d >> 1 }
            let scale = Float(input) / Float(output)
            return min(Int((Float(d) * scale).rounded(.down)), input - 1)
        }
        let ys = (0..<h).map { index($0, bh, h) }, xs = (0..<w).map { index($0, bw, w) }
        let sa = try channelsLast(a), sb = try channelsLast(b)
        let out = Tensor(uninitialized: .channelsLast([n, c, h, w]))
        let pa = sa.storage.floats, pb = sb.storage.floats, d = out.storage.floats
        for bi in 0..<n {
            for y in 0..<h {
                for x in 0..<w {
                    let o = ((bi * h + y) * w + x) * c, i = ((bi * bh + ys[y]) * bw + xs[x]) * c
                    for ch in 0..<c { d[o + ch] = pa[o + ch] + pb[i + ch] }
                }
            }
        }
        return out
    }

    /// `F.pixel_shuffle(x, r)`: `[N, C·r², H, W]` → `[N, C, H·r, W·r]`. Output is plain.
    public func pixelShuffle(_ x: Tensor, factor r: Int) throws -> Tensor {
        guard x.rank == 4, r > 0, x.shape[1] % (r * r) == 0 else {
            throw EngineError.shapeMismatch(op: "pixel_shuffle", detail: "\(x.shape) with factor \(r)")
        }
        let (n, c, h, w) = (x.shape[0], x.shape[1] / (r * r), x.shape[2], x.shape[3])
        let src = try contiguous(x)
        let out = Tensor(uninitialized: .plain([n, c, h * r, w * r]))
        let s = src.storage.floats, d = out.storage.floats
        for b in 0..<n { for ch in 0..<c { for i in 0..<r { for j in 0..<r {
            let plane = s + ((b * c + ch) * r * r + i * r + j) * h * w
            for y in 0..<h {
                let row = d + (((b * c + ch) * h * r) + y * r + i) * w * r + j
                for xx in 0..<w { row[xx * r] = plane[y * w + xx] }
            }
        } } } }
        return out
    }

    /// `F.pixel_unshuffle(x, r)`: `[N, C, H·r, W·r]` → `[N, C·r², H, W]`. Output is plain.
    public func pixelUnshuffle(_ x: Tensor, factor r: Int) throws -> Tensor {
        guard x.rank == 4, r > 0, x.shape[2] % r == 0, x.shape[3] % r == 0 else {
            throw EngineError.shapeMismatch(op: "pixel_unshuffle", detail: "\(x.shape) with factor \(r)")
        }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2] / r, x.shape[3] / r)
        let src = try contiguous(x)
        let out = Tensor(uninitialized: .plain([n, c * r * r, h, w]))
        let s = src.storage.floats, d = out.storage.floats
        for b in 0..<n { for ch in 0..<c { for i in 0..<r { for j in 0..<r {
            let plane = d + ((b * c + ch) * r * r + i * r + j) * h * w
            for y in 0..<h {
                let row = s + (((b * c + ch) * h * r) + y * r + i) * w * r + j
                for xx in 0..<w { plane[y * w + xx] = row[xx * r] }
            }
        } } } }
        return out
    }

    /// Reference upfirdn2d in plain Swift (any up/down/pad, including negative pads that crop).
    /// `kernel` is `kh × kw` row-major; `pad` is (x0, x1, y0, y1) as in `upfirdn2d_native`.
    public func upfirdn2dReference(_ x: Tensor, kernel: [Float], kernelSize: (Int, Int), up: Int = 1, down: Int = 1,
                                   pad: (x0: Int, x1: Int, y0: Int, y1: Int)) throws -> Tensor {
        let (kh, kw) = kernelSize
        guard x.rank == 4, kernel.count == kh * kw, up >= 1, down >= 1 else {
            throw EngineError.shapeMismatch(op: "upfirdn2d", detail: "input \(x.shape), kernel \(kh)×\(kw) with \(kernel.count) values")
        }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        // Size of the upsampled, padded signal, then of the valid correlation, then downsampled.
        let ph = h * up + pad.y0 + pad.y1, pw = w * up + pad.x0 + pad.x1
        let oh = (ph - kh) / down + 1, ow = (pw - kw) / down + 1
        guard ph >= kh, pw >= kw else {
            throw EngineError.shapeMismatch(op: "upfirdn2d", detail: "input \(x.shape) too small for kernel \(kh)×\(kw) with pad \(pad)")
        }
        let src = try contiguous(x)
        let out = Tensor(uninitialized: .plain([n, c, oh, ow]))
        let s = src.storage.floats, d = out.storage.floats
        // The padded upsampled signal u(py, px) is x(iy, ix) when py - y0 = iy*up (and px likewise), else 0.
        for plane in 0..<(n * c) {
            let sp = s + plane * h * w, dp = d + plane * oh * ow
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var acc: Float = 0
                    for ty in 0..<kh {
                        let uy = oy * down + ty - pad.y0
                        guard uy >= 0, uy % up == 0, uy / up < h else { continue }
                        let iy = uy / up
                        for tx in 0..<kw {
                            let ux = ox * down + tx - pad.x0
                            guard ux >= 0, ux % up == 0, ux / up < w else { continue }
                            // correlation with the flipped kernel
                            acc += sp[iy * w + ux / up] * kernel[(kh - 1 - ty) * kw + (kw - 1 - tx)]
                        }
                    }
                    dp[oy * ow + ox] = acc
                }
            }
        }
        return out
    }
}

/// upfirdn2d for a fixed channel count as a oneDNN depthwise (transposed) convolution, the
/// fast path for StyleGAN2's blur, upsample and downsample. Falls back to the Swift reference for
/// combinations a convolution cannot express (negative pads, or up and down both above 1).
public final class UpFirDn2d: Sendable {
    public let channels: Int
    public let up: Int
    public let down: Int
    public let pad: Padding2D   // top = y0, left = x0, bottom = y1, right = x1
    let kernel: [Float]
    let kernelSize: (Int, Int)
    private enum Path: Sendable { case conv(Conv2d), deconv(ConvTranspose2d), reference }
    private let path: Path

    /// - Parameters:
    ///   - kernel: `kh × kw` FIR kernel, row-major, already scaled as the caller wants (StyleGAN2
    ///     multiplies by `up²` when upsampling).
    ///   - pad: (x0, x1, y0, y1) as in `upfirdn2d_native`.
    public init(kernel: [Float], kernelSize: (Int, Int), channels: Int, up: Int = 1, down: Int = 1,
                pad: (x0: Int, x1: Int, y0: Int, y1: Int), context: ComputeContext) throws {
        let (kh, kw) = kernelSize
        guard kernel.count == kh * kw, channels > 0, up >= 1, down >= 1 else {
            throw EngineError.shapeMismatch(op: "upfirdn2d", detail: "kernel \(kh)×\(kw) with \(kernel.count) values, \(channels) channels")
        }
        self.channels = channels
        self.up = up
        self.down = down
        self.kernel = kernel
        self.kernelSize = kernelSize
        self.pad = Padding2D(top: pad.y0, left: pad.x0, bottom: pad.y1, right: pad.x1)
        let perChannel = { (k: [Float]) in (0..<channels).flatMap { _ in k } }
        if up == 1, min(pad.x0, pad.x1, pad.y0, pad.y1) >= 0 {
            // Correlation with the flipped kernel, stride `down`.
            let flipped = Array(kernel.reversed())
            path = .conv(try Conv2d(weight: perChannel(flipped), shape: [channels, 1, kh, kw], stride: down,
                                    padding: self.pad, groups: channels, context: context))
        } else if down == 1, kh - up - pad.y1 >= 0, kw - up - pad.x1 >= 0, kh - 1 - pad.y0 >= 0, kw - 1 - pad.x0 >= 0 {
            // Zero-insertion + correlation with the flipped kernel is a transposed convolution with
            // the kernel itself, stride `up`, cropping (k-1-p0) before and (k-up-p1) after.
            let crop = Padding2D(top: kh - 1 - pad.y0, left: kw - 1 - pad.x0, bottom: kh - up - pad.y1, right: kw - up - pad.x1)
            path = .deconv(try ConvTranspose2d(weight: perChannel(kernel), shape: [channels, 1, kh, kw], stride: up,
                                               cropping: crop, groups: channels, context: context))
        } else {
            path = .reference
        }
    }

    public func callAsFunction(_ x: Tensor, _ context: ComputeContext) throws -> Tensor {
        guard x.rank == 4, x.shape[1] == channels else {
            throw EngineError.shapeMismatch(op: "upfirdn2d", detail: "input \(x.shape), layer expects \(channels) channels")
        }
        switch path {
        case .conv(let conv): return try conv(x, context)
        case .deconv(let deconv): return try deconv(x, context)
        case .reference:
            return try context.upfirdn2dReference(x, kernel: kernel, kernelSize: kernelSize, up: up, down: down,
                                                  pad: (pad.left, pad.right, pad.top, pad.bottom))
        }
    }
}

/// Folds an eval-mode BatchNorm that follows a convolution into the convolution's weight and bias:
/// `W' = W·γ/√(σ²+ε)`, `b' = (b−μ)·γ/√(σ²+ε) + β`. `weight` is `[out, ...]` row-major.
public func foldBatchNorm(weight: [Float], bias: [Float]?, gamma: [Float], beta: [Float], mean: [Float], variance: [Float],
                          epsilon: Float = 1e-5) throws -> (weight: [Float], bias: [Float]) {
    let out = gamma.count
    guard out > 0, beta.count == out, mean.count == out, variance.count == out, weight.count % out == 0,
          bias.map({ $0.count == out }) ?? true else {
        throw EngineError.shapeMismatch(op: "fold_batch_norm", detail: "\(weight.count) weights, \(out) channels")
    }
    let per = weight.count / out
    var w = weight
    var b = [Float](repeating: 0, count: out)
    for o in 0..<out {
        let s = gamma[o] / (variance[o] + epsilon).squareRoot()
        for i in 0..<per { w[o * per + i] *= s }
        b[o] = ((bias?[o] ?? 0) - mean[o]) * s + beta[o]
    }
    return (w, b)
}
