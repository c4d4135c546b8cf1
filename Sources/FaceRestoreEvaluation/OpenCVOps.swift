// The OpenCV 4.6 operations the degradation pipelines call, on float32 images:
//   - `cv2.filter2D(img, -1, kernel)`: correlation (not convolution) with the kernel anchored at
//     its centre and BORDER_REFLECT_101. OpenCV runs a 41×41 kernel through its DFT path; here it
//     is a direct correlation in float32: the two differ by float rounding (about 1e-7).
//   - `cv2.resize(img, (w, h), INTER_LINEAR)` for float32: Imaging's `Plane<Float>.resizedLinear`
//     on the interleaved channels (with OpenCV's switch to INTER_AREA's 2×2 mean at exactly 2× down).
//   - `cv2.cvtColor(img, COLOR_BGR2GRAY)` for float32: 0.114·B + 0.587·G + 0.299·R.
//   - JPEG through `cv2.imencode('.jpg', img·255, [QUALITY, q])`: `saturate_cast<uchar>`, libjpeg
//     defaults with `jpeg_set_quality(q)` and 4:2:0; decoded with `cv2.imdecode(…, 1)`. Both go
//     through the same Debian libjpeg-turbo here (TurboJPEG), so the bytes match.

import CEvaluation
import FaceRestoreImaging
import Foundation
import Synchronization

/// K (rows × columns, row-major) as Σ_t column_t · row_tᵀ (each column scaled by its singular
/// value), by one-sided Jacobi on K's columns, keeping the largest terms until the rest's
/// Frobenius norm is below `tolerance`; nil when it does not converge.
func separableTerms(_ k: [Double], rows m: Int, columns n: Int, tolerance: Double) -> [([Double], [Double])]? {
    // Columns of A = K, rotated pairwise until orthogonal; V collects the rotations.
    var a = (0..<n).map { j in (0..<m).map { i in k[i * n + j] } }
    var v = (0..<n).map { j in (0..<n).map { $0 == j ? 1.0 : 0.0 } }
    // Columns whose squared norm is below this carry nothing the tolerance keeps: left alone.
    let floor = 1e-30 * max(k.reduce(0) { $0 + $1 * $1 }, 1e-300)
    var converged = false
    for _ in 0..<100 {
        var rotated = false
        for p in 0..<n {
            for q in (p + 1)..<max(p + 1, n) {
                var alpha = 0.0, beta = 0.0, gamma = 0.0
                for i in 0..<m { alpha += a[p][i] * a[p][i]; beta += a[q][i] * a[q][i]; gamma += a[p][i] * a[q][i] }
                // Converged for this pair (square roots taken apart: the product of two tiny norms underflows).
                guard alpha > floor, beta > floor, abs(gamma) > 1e-12 * alpha.squareRoot() * beta.squareRoot() else { continue }
                rotated = true
                let zeta = (beta - alpha) / (2 * gamma)
                let t = (zeta >= 0 ? 1.0 : -1.0) / (abs(zeta) + (1 + zeta * zeta).squareRoot())
                let c = 1 / (1 + t * t).squareRoot(), s = c * t
                for i in 0..<m { let x = a[p][i], y = a[q][i]; a[p][i] = c * x - s * y; a[q][i] = s * x + c * y }
                for i in 0..<n { let x = v[p][i], y = v[q][i]; v[p][i] = c * x - s * y; v[q][i] = s * x + c * y }
            }
        }
        if !rotated { converged = true; break }
    }
    guard converged else { return nil }
    // Column j of A is σ_j·u_j, and K = Σ_j (σ_j·u_j)·v_jᵀ.
    let norms = a.map { col in col.reduce(0) { $0 + $1 * $1 }.squareRoot() }
    let order = norms.indices.sorted { norms[$0] > norms[$1] }
    var rest = norms.reduce(0) { $0 + $1 * $1 }
    var terms: [([Double], [Double])] = []
    for j in order {
        if max(rest, 0).squareRoot() < tolerance { break }
        terms.append((a[j], v[j]))
        rest -= norms[j] * norms[j]
    }
    return terms
}

/// `cv2.BORDER_REFLECT_101` index: …2 1 | 0 1 2 … n−1 | n−2 … (n = 1 gives 0).
@inline(__always)
func reflect101(_ i: Int, _ n: Int) -> Int {
    guard n > 1 else { return 0 }
    var i = i
    while i < 0 || i >= n {
        if i < 0 { i = -i }
        if i >= n { i = 2 * n - 2 - i }
    }
    return i
}

extension FloatImage {
    /// `cv2.filter2D(self, -1, kernel)` for an odd square kernel (row-major, `size`²): a direct
    /// correlation in float32 (`fr_correlate_spans`), bands of rows split over `threads`. Taps
    /// below 1e-12 outside each kernel row's span of larger ones are left out (their sum cannot
    /// move a float32 value in [0, 1]).
    /// The kernel runs as a sum of column-then-row passes where that is cheaper: `factor` when
    /// given (a 1-D kernel whose outer product is `kernel`: an isotropic Gaussian), else its
    /// singular value decomposition cut at 1e-9 (a rotated Gaussian needs 5–25 terms of 41).
    /// With `rows`, only those output rows are computed (ascending; the others are 0): what a
    /// downscaling resize reads (`Plane<Float>.linearSourceIndices`), about half the rows on
    /// average over the degradation's scales.
    public func filtered(kernel: [Double], size: Int, factor: [Double]? = nil, rows wanted: [Int]? = nil,
                         threads: Int = 1) throws -> FloatImage {
        guard size % 2 == 1, kernel.count == size * size, factor.map({ $0.count == size }) ?? true else {
            throw EvaluationError.invalidInput("filter2D needs an odd square kernel, got \(kernel.count) values for \(size)²")
        }
        let r = size / 2
        let (w, h, c) = (width, height, channels)
        let outputRows = wanted?.filter { (0..<h).contains($0) } ?? Array(0..<h)
        // The rows and columns of the kernel that hold a tap of at least 1e-12.
        let significant = 1e-12
        var bounds = (size, -1, size, -1)
        for i in 0..<size {
            for j in 0..<size where kernel[i * size + j] >= significant {
                bounds = (min(bounds.0, i), max(bounds.1, i), min(bounds.2, j), max(bounds.3, j))
            }
        }
        if bounds.1 < 0 { bounds = (r, r, r, r) }
        let (i0, i1, j0, j1) = bounds
        let (kh, kw) = (i1 - i0 + 1, j1 - j0 + 1)
        // Each channel as a reflect-101 padded plane, with room for the last vector's overrun.
        let pw = ((w + 15) / 16) * 16 + 2 * r + 16
        let ph = h + 2 * r
        let columnSource = (0..<(w + 2 * r)).map { reflect101($0 - r, w) }
        let planes: [[Float]] = (0..<c).map { ch in
            var p = [Float](repeating: 0, count: pw * ph)
            values.withUnsafeBufferPointer { v in
                for y in 0..<ph {
                    let row = reflect101(y - r, h) * w
                    for (x, sx) in columnSource.enumerated() { p[y * pw + x] = v[(row + sx) * c + ch] }
                }
            }
            return p
        }
        let box = (0..<kh).flatMap { i in (0..<kw).map { j in Float(kernel[(i0 + i) * size + j0 + j]) } }
        // Per kernel row, the columns from its first to its last significant tap (a rotated thin
        // Gaussian has a few per row): the direct correlation skips the rest.
        let spans = (0..<kh).map { i -> (Int32, Int32) in
            let row = (0..<kw).filter { kernel[(i0 + i) * size + j0 + $0] >= significant }
            guard let a = row.first, let b = row.last else { return (0, 0) }
            return (Int32(a), Int32(b + 1))
        }
        let (spanFirst, spanEnd) = (spans.map(\.0), spans.map(\.1))
        let directCost = spanEnd.indices.reduce(0) { $0 + Int(spanEnd[$1] - spanFirst[$1]) }
        // Separable terms (column taps, row taps): the given factor, else the kernel's singular
        // value decomposition cut where the rest is below 1e-9 (Frobenius), when that is cheaper.
        let terms: [([Float], [Float])]? = {
            if let factor { return [((i0...i1).map { Float(factor[$0]) }, (j0...j1).map { Float(factor[$0]) })] }
            let boxed = (0..<kh).flatMap { i in (0..<kw).map { j in kernel[(i0 + i) * size + j0 + j] } }
            guard let svd = separableTerms(boxed, rows: kh, columns: kw, tolerance: 1e-9),
                  svd.count * (kh + kw + 2) < directCost else { return nil }
            return svd.map { (col, row) in (col.map(Float.init), row.map(Float.init)) }
        }()
        var out = [Float](repeating: 0, count: w * h * c)
        let bands = max(1, min(threads, outputRows.count))
        out.withUnsafeMutableBufferPointer { outBuffer in
            nonisolated(unsafe) let output = outBuffer
            DispatchQueue.concurrentPerform(iterations: c * bands) { job in
                let (ch, band) = (job / bands, job % bands)
                let rows = outputRows[(outputRows.count * band / bands)..<(outputRows.count * (band + 1) / bands)]
                // One output row at a time (`line`), then written into its channel of the output.
                let line = UnsafeMutablePointer<Float>.allocate(capacity: w + 16)
                let sum = UnsafeMutablePointer<Float>.allocate(capacity: w + 16)
                let vertical = UnsafeMutablePointer<Float>.allocate(capacity: pw + 32)
                line.initialize(repeating: 0, count: w + 16)
                sum.initialize(repeating: 0, count: w + 16)
                vertical.initialize(repeating: 0, count: pw + 32)
                defer { line.deallocate(); sum.deallocate(); vertical.deallocate() }
                planes[ch].withUnsafeBufferPointer { src in
                    guard let s = src.baseAddress else { return }
                    for y in rows {
                        if let terms {
                            // Per term: the column taps over the padded columns this row needs,
                            // then the row taps, added up.
                            for (t, (columnTaps, rowTaps)) in terms.enumerated() {
                                columnTaps.withUnsafeBufferPointer { ck in
                                    guard let k = ck.baseAddress else { return }
                                    fr_correlate(s + (y + i0) * pw + j0, Int64(pw), k, Int32(kh), 1, vertical, Int64(w + kw - 1), 0, 1)
                                }
                                rowTaps.withUnsafeBufferPointer { rk in
                                    guard let k = rk.baseAddress else { return }
                                    fr_correlate(vertical, Int64(pw), k, 1, Int32(kw), t == 0 ? line : sum, Int64(w), 0, 1)
                                }
                                if t > 0 { for x in 0..<w { line[x] += sum[x] } }
                            }
                        } else {
                            box.withUnsafeBufferPointer { kp in
                                spanFirst.withUnsafeBufferPointer { fp in
                                    spanEnd.withUnsafeBufferPointer { ep in
                                        guard let k = kp.baseAddress, let f = fp.baseAddress, let e = ep.baseAddress else { return }
                                        fr_correlate_spans(s + (y + i0) * pw + j0, Int64(pw), k, Int32(kh), Int32(kw), f, e, line, Int64(w))
                                    }
                                }
                            }
                        }
                        for x in 0..<w { output[(y * w + x) * c + ch] = line[x] }
                    }
                }
            }
        }
        return FloatImage(width: w, height: h, channels: c, values: out)
    }

    /// `cv2.resize(self, (dw, dh), interpolation=cv2.INTER_LINEAR)` for float32.
    public func resizedLinear(width dw: Int, height dh: Int) throws -> FloatImage {
        guard dw > 0, dh > 0, width > 0, height > 0 else {
            throw EvaluationError.invalidInput("cannot resize \(width)×\(height) to \(dw)×\(dh)")
        }
        if dw == width && dh == height { return self }
        // Imaging's float32 INTER_LINEAR (with its 2× INTER_AREA case) on the interleaved channels.
        let c = channels
        let out = Plane<Float>.resizedLinear(values, width: width, height: height, channels: c, toWidth: dw, height: dh)
        return FloatImage(width: dw, height: dh, channels: c, values: out)
    }

    /// `cv2.cvtColor(self, COLOR_BGR2GRAY)` tiled back to three channels
    /// (`np.tile(gray[:, :, None], [1, 1, 3])`).
    public func grayTiled() -> FloatImage {
        guard channels == 3 else { return self }
        var out = values
        for p in 0..<(width * height) {
            let g = values[p * 3] * 0.114 + values[p * 3 + 1] * 0.587 + values[p * 3 + 2] * 0.299
            out[p * 3] = g; out[p * 3 + 1] = g; out[p * 3 + 2] = g
        }
        return FloatImage(width: width, height: height, channels: 3, values: out)
    }

    /// `np.clip(self, lo, hi)`.
    public func clipped(_ lo: Float = 0, _ hi: Float = 1) -> FloatImage {
        var out = self
        for i in out.values.indices { out.values[i] = min(max(out.values[i], lo), hi) }
        return out
    }

    /// basicsr's `add_jpg_compression` with an integer quality: encode `clip(self)·255` as
    /// OpenCV's `imencode` does (8-bit by `saturate_cast`, 4:2:0), decode, back to [0, 1].
    public func jpegRoundTrip(quality: Int) throws -> FloatImage {
        let bytes = clipped().pixelImage(scale: 255)
        let data = try ImageIO.encode(bytes, format: .jpeg, path: "degradation", jpegQuality: quality)
        return FloatImage.divided255(try ImageIO.decode(data, path: "degradation").image)
    }
}

extension FloatImage {
    /// `x / 255` element-wise in float32, as `np.float32(img) / 255.` and `img / 255.` compute it.
    public static func divided255(_ image: PixelImage) -> FloatImage {
        let table = byteOver255
        return FloatImage(width: image.width, height: image.height, channels: image.channels,
                          values: image.pixels.map { table[Int($0)] })
    }

    /// `Float(b) / 255` for every byte (a table: the same values as the division).
    private static let byteOver255: [Float] = (0..<256).map { Float($0) / 255 }
}
