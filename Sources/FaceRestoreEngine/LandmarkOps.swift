// Ops the AWing FAN landmark network needs and the other models do not: PyTorch's
// `F.avg_pool2d(x, k, stride=k)` (no padding, `ceil_mode=False`, `count_include_pad` moot).
// Numerics as torch 1.13's CPU kernel (`aten/src/ATen/native/cpu/AvgPoolKernel.cpp`,
// `cpu_avg_pool`): a float accumulator summing the window row by row, left to right, then one
// division by k².

extension ComputeContext {
    /// `F.avg_pool2d(x, kernel, stride=kernel)`: output ⌊H/k⌋ × ⌊W/k⌋, channels-last.
    public func averagePool2d(_ x: Tensor, kernel k: Int) throws -> Tensor {
        guard x.rank == 4, k > 0, x.shape[2] >= k, x.shape[3] >= k else {
            throw EngineError.shapeMismatch(op: "avg_pool2d", detail: "\(x.shape) with kernel \(k)")
        }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = (h / k, w / k)
        let src = try channelsLast(x)
        let out = Tensor(uninitialized: .channelsLast([n, c, oh, ow]))
        let s = src.storage.floats, d = out.storage.floats
        let divisor = Float(k * k)
        parallelRows(n * oh, grain: 4) { rows in
            for row in rows {
                let (b, oy) = (row / oh, row % oh)
                for ox in 0..<ow {
                    let o = d + ((b * oh + oy) * ow + ox) * c
                    o.initialize(repeating: 0, count: c)
                    for y in oy * k..<(oy * k + k) {
                        for xx in ox * k..<(ox * k + k) {
                            let i = s + ((b * h + y) * w + xx) * c
                            for ch in 0..<c { o[ch] += i[ch] }
                        }
                    }
                    for ch in 0..<c { o[ch] /= divisor }
                }
            }
        }
        return out
    }
}
