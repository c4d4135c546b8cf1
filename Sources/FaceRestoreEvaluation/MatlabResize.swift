// MATLAB's `imresize` with the bicubic kernel and antialiasing, as basicsr 1.4.2 implements it in
// PyTorch (`basicsr/utils/matlab_functions.py`: `cubic`, `calculate_weights_indices`, `imresize`),
// for one float32 plane. Ported by reading that code; numerics follow it in float32:
//   - output size ceil(in·scale); output coordinate x = 1…out maps to u = x/scale + ½(1 − 1/scale);
//   - taps: p = ⌈kernel width⌉ + 2 starting at ⌊u − width/2⌋, the width being 4/scale when
//     shrinking with antialiasing (the kernel stretched: scale·cubic(scale·d)), else 4;
//   - each row of weights divided by its sum; when the first or the last tap column is zero in
//     any row, two columns are dropped (upstream's `narrow`s: both ends, or the last two);
//   - the input is extended by symmetric copies (the edge pixel repeated: …2 1 0 | 0 1 2 …), then
//     rows are resampled (height), then columns (width).
// Upstream runs each output line as a float32 matrix-vector product (`torch.mv`) through the BLAS,
// whose summation order is the BLAS kernel's. Here it is that of the OpenBLAS 0.3.21 kernels
// Debian's torch 1.13 used on the reference machine (its generic x86-64 "Prescott" kernels, which
// OpenBLAS falls back to on that CPU; found by testing every bracketing of the 8 taps against
// torch): rows (gemv 'N') sum the products of taps 0–3 and of 4–7 in order, then add
// the two; columns (gemv 'T') add all the products in order. Other BLAS kernels (other CPUs)
// round differently by about 1e-7 of the range, upstream included. Checked against upstream:
// bit-identical for ½ of even sizes (NIQE's case, where the weights are exact dyadic numbers) and
// for ×2; within 4 float32 steps (≤ 4e-7 on [0, 1]) for odd sizes and scales ¼, 0.3, ¾, 1.5.

/// The taps of one dimension: output `i` reads `count` inputs of the symmetrically extended line
/// starting at `start[i]`, with weights `weights[i·count ..< (i+1)·count]`.
struct MatlabResizeTaps {
    let outLength: Int
    let count: Int
    let start: [Int]
    let weights: [Float]
    /// Copies of the edge prepended and appended (symmetric extension).
    let padBefore: Int
    let padAfter: Int
}

/// basicsr's `cubic(x)` in float32, in upstream's order of operations (`x**3` as x·x·x).
@inline(__always)
private func cubic(_ x: Float) -> Float {
    let a = abs(x)
    let a2 = a * a
    let a3 = a * a * a
    let inner: Float = a <= 1 ? 1 : 0
    let outer: Float = (a > 1 && a <= 2) ? 1 : 0
    let near = ((1.5 * a3 - 2.5 * a2) + 1) * inner
    let far = ((((-0.5) * a3 + 2.5 * a2) - 4 * a) + 2) * outer
    return near + far
}

/// `calculate_weights_indices(in_length, out_length, scale, 'cubic', 4, antialiasing)`.
func matlabResizeTaps(inLength: Int, outLength: Int, scale: Double, antialiasing: Bool) throws -> MatlabResizeTaps {
    guard inLength > 0, outLength > 0, scale > 0, scale.isFinite, outLength <= 1 << 24, inLength <= 1 << 24 else {
        throw EvaluationError.invalidInput("MATLAB imresize: cannot resize \(inLength) samples to \(outLength) (scale \(scale))")
    }
    let shrink = scale < 1 && antialiasing
    let kernelWidth = shrink ? 4 / scale : 4.0
    guard kernelWidth <= 4096 else { throw EvaluationError.invalidInput("MATLAB imresize: scale \(scale) needs too wide a kernel") }
    let p = Int(kernelWidth.rounded(.up)) + 2
    let s = Float(scale)
    let shift = Float(0.5 * (1 - 1 / scale))
    let halfWidth = Float(kernelWidth / 2)
    var left = [Float](repeating: 0, count: outLength)
    var w = [Float](repeating: 0, count: outLength * p)
    for i in 0..<outLength {
        let u = Float(i + 1) / s + shift
        let l = (u - halfWidth).rounded(.down)
        left[i] = l
        var sum: Float = 0
        for j in 0..<p {
            let distance = u - (l + Float(j))
            let v = shrink ? s * cubic(distance * s) : cubic(distance)
            w[i * p + j] = v
            sum += v
        }
        for j in 0..<p { w[i * p + j] /= sum }
    }
    // Upstream narrows to p − 2 columns when the first or the last column has a zero weight in
    // any row: columns 1…p−2 when the first has one (whatever the last), else 0…p−3.
    var first = 0, count = p
    if (0..<outLength).contains(where: { w[$0 * p] == 0 }) {
        first = 1; count = p - 2
    } else if (0..<outLength).contains(where: { w[$0 * p + p - 1] == 0 }) {
        count = p - 2
    }
    guard count > 0 else { throw EvaluationError.invalidInput("MATLAB imresize: no taps left at scale \(scale)") }
    var weights = [Float](repeating: 0, count: outLength * count)
    var minIndex = Int.max, maxIndex = Int.min
    for i in 0..<outLength {
        for j in 0..<count { weights[i * count + j] = w[i * p + first + j] }
        let lo = Int(left[i]) + first   // 1-based input index of the first tap
        minIndex = min(minIndex, lo)
        maxIndex = max(maxIndex, lo + count - 1)
    }
    let padBefore = -minIndex + 1
    let padAfter = maxIndex - inLength
    // Upstream copies padBefore/padAfter edge rows with torch.narrow; outside 1…inLength it fails.
    guard (1...inLength).contains(padBefore), (1...inLength).contains(padAfter) else {
        throw EvaluationError.invalidInput("MATLAB imresize: \(inLength) → \(outLength) needs an edge extension of \(padBefore) and \(padAfter) samples, outside 1…\(inLength)")
    }
    let start = (0..<outLength).map { Int(left[$0]) + first + padBefore - 1 }
    return MatlabResizeTaps(outLength: outLength, count: count, start: start, weights: weights, padBefore: padBefore, padAfter: padAfter)
}

/// `basicsr.utils.matlab_functions.imresize(plane, scale, antialiasing)` of a `height × width`
/// float32 plane (row-major).
func matlabResize(_ plane: [Float], width: Int, height: Int, scale: Double,
                  antialiasing: Bool = true) throws -> (values: [Float], width: Int, height: Int) {
    guard width > 0, height > 0, plane.count == width * height else {
        throw EvaluationError.invalidInput("MATLAB imresize: a \(width)×\(height) plane needs \(width &* height) values, got \(plane.count)")
    }
    let (h2, w2) = ((Double(height) * scale).rounded(.up), (Double(width) * scale).rounded(.up))
    guard scale > 0, h2 >= 1, w2 >= 1, h2 <= Double(1 << 24), w2 <= Double(1 << 24) else {
        throw EvaluationError.invalidInput("MATLAB imresize: cannot resize \(width)×\(height) by \(scale)")
    }
    let (outH, outW) = (Int(h2), Int(w2))
    let th = try matlabResizeTaps(inLength: height, outLength: outH, scale: scale, antialiasing: antialiasing)
    let tw = try matlabResizeTaps(inLength: width, outLength: outW, scale: scale, antialiasing: antialiasing)

    // Symmetric extension index: …, 1, 0 | 0, 1, … n−1 | n−1, n−2, …
    func source(_ k: Int, pad: Int, n: Int) -> Int {
        let i = k - pad
        return i < 0 ? -1 - i : (i >= n ? 2 * n - 1 - i : i)
    }
    // Height: out1[i][x] = Σ_j w[i][j] · in[ext(start[i] + j)][x], in blocks of four taps (each
    // summed in order), the blocks' sums added in order.
    var out1 = [Float](repeating: 0, count: outH * width)
    var block = [Float](repeating: 0, count: width)
    plane.withUnsafeBufferPointer { src in
        out1.withUnsafeMutableBufferPointer { dst in
            block.withUnsafeMutableBufferPointer { blk in
                guard let srcBase = src.baseAddress, let dstBase = dst.baseAddress, let t = blk.baseAddress else { return }
                for i in 0..<outH {
                    let row = dstBase + i * width
                    for j in 0..<th.count {
                        let wj = th.weights[i * th.count + j]
                        let s = srcBase + source(th.start[i] + j, pad: th.padBefore, n: height) * width
                        if j % 4 == 0 {
                            for x in 0..<width { t[x] = s[x] * wj }
                        } else {
                            for x in 0..<width { t[x] += s[x] * wj }
                        }
                        guard j % 4 == 3 || j == th.count - 1 else { continue }
                        if j < 4 {
                            for x in 0..<width { row[x] = t[x] }
                        } else {
                            for x in 0..<width { row[x] += t[x] }
                        }
                    }
                }
            }
        }
    }
    // Width, on a symmetrically extended copy of each row; the products added in order.
    let extW = width + tw.padBefore + tw.padAfter
    var out2 = [Float](repeating: 0, count: outH * outW)
    var ext = [Float](repeating: 0, count: extW)
    let sources = (0..<extW).map { source($0, pad: tw.padBefore, n: width) }
    out1.withUnsafeBufferPointer { src in
        out2.withUnsafeMutableBufferPointer { dst in
            ext.withUnsafeMutableBufferPointer { e in
                tw.weights.withUnsafeBufferPointer { w in
                    for y in 0..<outH {
                        for k in 0..<extW { e[k] = src[y * width + sources[k]] }
                        for i in 0..<outW {
                            let base = tw.start[i], taps = i * tw.count
                            var acc = e[base] * w[taps]
                            for j in 1..<max(1, tw.count) { acc = acc + e[base + j] * w[taps + j] }
                            dst[y * outW + i] = acc
                        }
                    }
                }
            }
        }
    }
    return (out2, outW, outH)
}
