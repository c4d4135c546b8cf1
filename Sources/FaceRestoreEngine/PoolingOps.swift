// Average pooling with PyTorch semantics (torch 1.13 / 2.x `F.avg_pool2d`, `nn.AdaptiveAvgPool2d`
// to 1×1), for the FID Inception (pytorch-fid / basicsr 1.4.2 `archs/inception.py`, whose
// patched blocks pool with `count_include_pad=False`, TensorFlow's convention) and the AWing
// FAN. Plain loops on channels-last memory, like `maxPool2d`, output rows split over threads.

extension ComputeContext {
    /// `F.avg_pool2d(x, kernel, stride, padding, count_include_pad=False)`: each output is the
    /// mean of the input values its window covers inside the image (padding is not counted).
    /// `ceil_mode=False`. Output is channels-last.
    public func avgPool2dExcludingPadding(_ x: Tensor, kernel k: Int, stride: Int, padding p: Int) throws -> Tensor {
        guard x.rank == 4, k > 0, stride > 0, p >= 0, p <= k / 2, x.shape[2] + 2 * p >= k, x.shape[3] + 2 * p >= k else {
            throw EngineError.shapeMismatch(op: "avg_pool2d", detail: "\(x.shape), kernel \(k), stride \(stride), padding \(p)")
        }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = (h + 2 * p - k) / stride + 1, ow = (w + 2 * p - k) / stride + 1
        let src = try channelsLast(x)
        let out = Tensor(uninitialized: .channelsLast([n, c, oh, ow]))
        let s = src.storage.floats, d = out.storage.floats
        parallelRows(n * oh, grain: 4) { rows in
            for row in rows {
                let (b, oy) = (row / oh, row % oh)
                let y0 = max(oy * stride - p, 0), y1 = min(oy * stride - p + k, h)
                for ox in 0..<ow {
                    let x0 = max(ox * stride - p, 0), x1 = min(ox * stride - p + k, w)
                    let o = d + ((b * oh + oy) * ow + ox) * c
                    o.initialize(repeating: 0, count: c)
                    for y in y0..<y1 {
                        for xx in x0..<x1 {
                            let i = s + ((b * h + y) * w + xx) * c
                            for ch in 0..<c { o[ch] += i[ch] }
                        }
                    }
                    let count = Float((y1 - y0) * (x1 - x0))
                    for ch in 0..<c { o[ch] /= count }
                }
            }
        }
        return out
    }

    /// `F.avg_pool2d(x, kernel, stride=kernel)` (AWing FAN's pools): output ⌊H/k⌋ × ⌊W/k⌋,
    /// channels-last; each window summed row by row, left to right, then divided by k² once, as
    /// torch 1.13's CPU kernel (`cpu_avg_pool`) does.
    public func averagePool2d(_ x: Tensor, kernel k: Int) throws -> Tensor {
        try avgPool2dExcludingPadding(x, kernel: k, stride: k, padding: 0)
    }

    /// `nn.AdaptiveAvgPool2d((1, 1))` (`x.mean((2, 3), keepdim=True)`): `[N, C, 1, 1]`, plain.
    /// Sums in double, so the result is the mean rounded once.
    public func globalAvgPool2d(_ x: Tensor) throws -> Tensor {
        guard x.rank == 4, x.shape[2] > 0, x.shape[3] > 0 else {
            throw EngineError.shapeMismatch(op: "adaptive_avg_pool2d", detail: "needs a non-empty NCHW tensor, got \(x.shape)")
        }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let src = try channelsLast(x)
        let s = src.storage.floats
        return Tensor(shape: [n, c, 1, 1]) { out in
            var sums = [Double](repeating: 0, count: c)
            for b in 0..<n {
                for ch in 0..<c { sums[ch] = 0 }
                for i in 0..<(h * w) {
                    let row = s + (b * h * w + i) * c
                    for ch in 0..<c { sums[ch] += Double(row[ch]) }
                }
                for ch in 0..<c { out[b * c + ch] = Float(sums[ch] / Double(h * w)) }
            }
        }
    }
}
