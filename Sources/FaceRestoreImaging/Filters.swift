// The OpenCV filters facexlib's paste-back uses, on single-channel float masks. Ported from
// OpenCV 4.6 `modules/imgproc/src/smooth.dispatch.cpp` (`getGaussianKernelBitExact`,
// `GaussianBlur`), `filter.simd.hpp` (`RowFilter`, `SymmColumnFilter`), `morph.simd.hpp`
// (`erode` with a rectangular kernel) and `modules/core/src/copy.cpp` (`borderInterpolate`).
//   - The kernel: σ ≤ 0 gives σ = 0.15·n + 0.35 (one fused multiply-add) with fixed tables for
//     n = 1, 3, 5, 7, 9; taps exp(−x²/(2σ²)) normalized by 1 / (2·Σ_half + 1).
//   - Separable: rows, then columns; the column pass adds mirrored pairs first, f·(a + b).
//     float64 images run the scalar loops; float32 ones run the AVX2 loops, which fuse
//     multiply-adds, so `fused` selects that rounding.
//   - Border: BORDER_REFLECT_101 (…, 2, 1 | 0, 1, 2, …).
//   - erode: a min filter over the k×k window anchored at k/2; outside pixels are +∞ (ignored).

import Foundation

/// `cv::borderInterpolate(p, len, BORDER_REFLECT_101)`.
@inline(__always)
func reflect101(_ p: Int, _ len: Int) -> Int {
    if len == 1 { return 0 }
    var p = p
    while p < 0 || p >= len { p = p < 0 ? -p : 2 * (len - 1) - p }
    return p
}

public enum GaussianKernel {
    /// `cv2.getGaussianKernel(n, sigma)` in double (OpenCV's bit-exact construction).
    public static func taps(size n: Int, sigma: Double) -> [Double] {
        precondition(n > 0 && n % 2 == 1, "Gaussian kernel size must be odd and positive, got \(n)")
        if sigma <= 0 {
            switch n {
            case 1: return [1]
            case 3: return [0.25, 0.5, 0.25]
            case 5: return [0.0625, 0.25, 0.375, 0.25, 0.0625]
            case 7: return [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125]
            case 9: return [0.015625, 0.05078125, 0.1171875, 0.19921875, 0.234375, 0.19921875, 0.1171875, 0.05078125, 0.015625]
            default: break
            }
        }
        let s = sigma > 0 ? sigma : (0.35).addingProduct(Double(n), 0.15)
        let scale = -0.125 / (s * s)
        let half = (n - 1) / 2
        var values = [Double](repeating: 0, count: half)
        var sum = 0.0
        var x = 1 - n
        for i in 0..<half {
            values[i] = exp(Double(x * x) * scale)
            sum += values[i]
            x += 2
        }
        sum = 1 / (sum * 2 + 1)
        var out = [Double](repeating: sum, count: n)
        for i in 0..<half {
            out[i] = values[i] * sum
            out[n - 1 - i] = out[i]
        }
        return out
    }
}

extension Plane {
    /// `cv2.GaussianBlur(self, (size, size), sigma)` with the default BORDER_REFLECT_101.
    /// `fused` rounds each multiply-add once (OpenCV's float32 SIMD path); float64 images take the
    /// unfused scalar path.
    @_specialize(where Element == Double)
    @_specialize(where Element == Float)
    public func gaussianBlurred(size n: Int, sigma: Double, fused: Bool? = nil) -> Plane {
        let fma = fused ?? (Element.self == Float.self)
        let k = GaussianKernel.taps(size: n, sigma: sigma).map { Element($0) }
        let r = n / 2
        let (w, h) = (width, height)
        // Row pass into an intermediate of the same type.
        var rows = [Element](repeating: 0, count: w * h)
        let xIndex = (0..<(w + 2 * r)).map { reflect101($0 - r, w) }
        values.withUnsafeBufferPointer { src in
            rows.withUnsafeMutableBufferPointer { dst in
                var line = [Element](repeating: 0, count: w + 2 * r)
                var acc = [Element](repeating: 0, count: w)
                for y in 0..<h {
                    for i in line.indices { line[i] = src[y * w + xIndex[i]] }
                    // Tap-major, so the loop over x vectorizes; each sum still runs t = 0, 1, ….
                    let k0 = k[0]
                    for x in 0..<w { acc[x] = k0 * line[x] }
                    for t in 1..<max(n, 1) {
                        let f = k[t]
                        if fma {
                            for x in 0..<w { acc[x] = acc[x].addingProduct(f, line[x + t]) }
                        } else {
                            for x in 0..<w { acc[x] = acc[x] + f * line[x + t] }
                        }
                    }
                    for x in 0..<w { dst[y * w + x] = acc[x] }
                }
            }
        }
        // Column pass, symmetric: centre tap, then f·(below + above) pairs.
        var out = [Element](repeating: 0, count: w * h)
        rows.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<h {
                    let c = y * w
                    for x in 0..<w { dst[c + x] = k[r] * src[c + x] }
                    for t in 1...max(r, 1) where t <= r {
                        let below = reflect101(y + t, h) * w, above = reflect101(y - t, h) * w
                        let f = k[r + t]
                        if fma {
                            for x in 0..<w { dst[c + x] = dst[c + x].addingProduct(f, src[below + x] + src[above + x]) }
                        } else {
                            for x in 0..<w { dst[c + x] = dst[c + x] + f * (src[below + x] + src[above + x]) }
                        }
                    }
                }
            }
        }
        return Plane(width: w, height: h, values: out)
    }

    /// `cv2.erode(self, np.ones((k, k), np.uint8))`: the minimum over the k×k window anchored at
    /// (k/2, k/2); pixels outside the image do not count. Separable, O(1) per pixel (a sliding
    /// minimum with a monotonic queue along rows, then along columns).
    @_specialize(where Element == Double)
    @_specialize(where Element == Float)
    public func eroded(size k: Int) -> Plane {
        guard k > 1 else { return self }
        let a = k / 2
        let (w, h) = (width, height)
        var rows = values
        var line = [Element](repeating: 0, count: max(w, h)), out = line
        for y in 0..<h {
            for x in 0..<w { line[x] = values[y * w + x] }
            Self.slidingMin(line, count: w, before: a, after: k - 1 - a, into: &out)
            for x in 0..<w { rows[y * w + x] = out[x] }
        }
        var result = rows
        for x in 0..<w {
            for y in 0..<h { line[y] = rows[y * w + x] }
            Self.slidingMin(line, count: h, before: a, after: k - 1 - a, into: &out)
            for y in 0..<h { result[y * w + x] = out[y] }
        }
        return Plane(width: w, height: h, values: result)
    }

    /// out[i] = min(v[max(i − before, 0) … min(i + after, n − 1)]).
    @_specialize(where Element == Double)
    @_specialize(where Element == Float)
    static func slidingMin(_ v: [Element], count n: Int, before: Int, after: Int, into out: inout [Element]) {
        var queue = [Int](repeating: 0, count: n)   // indices with increasing values
        var head = 0, tail = 0, next = 0
        for i in 0..<n {
            while next < n && next <= i + after {
                while tail > head && v[queue[tail - 1]] >= v[next] { tail -= 1 }
                queue[tail] = next
                tail += 1
                next += 1
            }
            while queue[head] < i - before { head += 1 }
            out[i] = v[queue[head]]
        }
    }

    /// Σ of all values (numpy's `np.sum` on float32 uses pairwise summation; the paste-back only
    /// takes `int(√Σ) // 20`, so accumulating in double is equivalent there).
    public var sum: Double { values.reduce(0.0) { $0 + Double($1) } }
}

extension PixelImage {
    /// `cv2.filter2D(img, -1, k)` with GPEN's 3×3 smoothing kernel [1,2,1]ᵀ[1,2,1]/16 on 8-bit
    /// images (BORDER_REFLECT_101). The float sums are exact (multiples of 1/16), so the result is
    /// the exact mean rounded half to even, as OpenCV's float path rounds it.
    public func smoothed3x3() -> PixelImage {
        let (w, h, cn) = (width, height, channels)
        guard w > 0, h > 0 else { return self }
        let k = [1, 2, 1]
        var out = [UInt8](repeating: 0, count: pixels.count)
        for y in 0..<h {
            for x in 0..<w {
                for c in 0..<cn {
                    var sum = 0
                    for dy in -1...1 {
                        let yy = h == 1 ? 0 : reflect101(y + dy, h)
                        for dx in -1...1 {
                            let xx = w == 1 ? 0 : reflect101(x + dx, w)
                            sum += k[dy + 1] * k[dx + 1] * Int(pixels[(yy * w + xx) * cn + c])
                        }
                    }
                    // sum/16 rounded half to even.
                    let q = sum >> 4, r = sum & 15
                    out[(y * w + x) * cn + c] = UInt8(clamping: r > 8 || (r == 8 && q & 1 == 1) ? q + 1 : q)
                }
            }
        }
        return PixelImage(width: w, height: h, channels: cn, pixels: out)
    }

    /// `cv2.addWeighted(a, alpha, b, 1 − alpha, 0)` on 8-bit images as OpenCV 4.6's SIMD path
    /// computes it: `fma(a, α, fma(b, β, 0))` in float32, rounded half to even and saturated.
    /// `alpha` = 1 returns `a`.
    public static func addWeighted(_ a: PixelImage, _ alpha: Double, _ b: PixelImage) -> PixelImage {
        precondition(a.width == b.width && a.height == b.height && a.channels == b.channels, "addWeighted needs equal images")
        if alpha == 1 { return a }
        let (fa, fb) = (Float(alpha), Float(1 - alpha))
        let px = zip(a.pixels, b.pixels).map { p, q -> UInt8 in
            let v = (Float(q) * fb).addingProduct(Float(p), fa)
            return UInt8(clamping: Int(v.rounded(.toNearestOrEven)))
        }
        return PixelImage(width: a.width, height: a.height, channels: a.channels, pixels: px)
    }
}
