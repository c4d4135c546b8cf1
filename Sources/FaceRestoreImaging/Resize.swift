// `cv2.resize(img, (w, h))` with INTER_LINEAR on 8-bit images, bit-exact with OpenCV 4.6
// (`modules/imgproc/src/resize.cpp`: `resize`, `HResizeLinear`, `VResizeLinear`,
// `VResizeLinearVec_32s8u`, `resizeAreaFast_`). What the reference hides:
//   - coefficients are 11-bit fixed point: α = round_half_even((1 − f)·2048) from a *float* f,
//     with f = (float)((d + 0.5)·(1/scale) − 0.5) computed in double;
//   - the vertical pass computes ((S0 >> 4)·β0 >> 16) + ((S1 >> 4)·β1 >> 16), then (x + 2) >> 2
//     (the SIMD formula; Debian's 4.6 build gives it at every position of a row, not the scalar
//     (S0·β0 + S1·β1 + 2²¹) >> 22 — measured against cv2 for row lengths 1…57 and the fixtures);
//   - horizontally, positions past the edges take the edge pixel with weight 1; vertically the
//     weights are *not* reset at the edges: both taps read the clamped edge row with (1 − f, f),
//     which truncates twice (one gray level below exact rounding, as OpenCV does);
//   - an exact 2× downscale is done as INTER_AREA: (a + b + c + d + 2) >> 2;
//   - the same size is a copy.

import Foundation

extension PixelImage {
    /// `cv2.resize(self, (width, height), interpolation=cv2.INTER_LINEAR)`.
    public func resizedLinear(width dw: Int, height dh: Int) -> PixelImage {
        resizedLinear(width: dw, height: dh, factor: nil)
    }

    /// `cv2.resize(self, (0, 0), fx=f, fy=f, interpolation=cv2.INTER_LINEAR)` for an enlarging
    /// `f`: the size is `round(side·f)`, and OpenCV samples at `1/f` steps, not at the
    /// size ratio. Nil when the result would be empty or larger than `maxPixels`.
    public func enlargedLinear(by f: Double, maxPixels: Int = 1 << 31) -> PixelImage? {
        guard f.isFinite, f >= 1 else { return nil }
        let (w, h) = ((Double(width) * f).rounded(.toNearestOrEven), (Double(height) * f).rounded(.toNearestOrEven))
        guard w >= 1, h >= 1, w * h <= Double(maxPixels) else { return nil }
        return resizedLinear(width: Int(w), height: Int(h), factor: f)
    }

    private func resizedLinear(width dw: Int, height dh: Int, factor: Double?) -> PixelImage {
        precondition(dw > 0 && dh > 0 && width > 0 && height > 0, "resize to \(dw)×\(dh) from \(width)×\(height)")
        if dw == width && dh == height { return self }
        if width == dw * 2 && height == dh * 2 { return halvedByArea() }
        let cn = channels
        let xs = Self.linearTaps(source: width, destination: dw, factor: factor)
        let ys = Self.linearTaps(source: height, destination: dh, factor: factor, clampEdges: false)
        let rowLength = dw * cn
        // Horizontal pass of one source row into `buffer` (int, scaled by 2048).
        func horizontal(_ sy: Int, into buffer: inout [Int32]) {
            pixels.withUnsafeBufferPointer { src in
                let row = sy * width * cn
                for dx in 0..<dw {
                    let t = xs[dx]
                    for k in 0..<cn {
                        let a = Int32(src[row + t.index * cn + k]), b = Int32(src[row + min(t.index + 1, width - 1) * cn + k])
                        buffer[dx * cn + k] = t.clamped ? a * 2048 : a * Int32(t.w0) + b * Int32(t.w1)
                    }
                }
            }
        }
        var out = [UInt8](repeating: 0, count: dh * rowLength)
        var row0 = [Int32](repeating: 0, count: rowLength), row1 = row0
        var cached = (-1, -1)
        for dy in 0..<dh {
            let t = ys[dy]
            let (s0, s1) = (min(max(t.index, 0), height - 1), min(max(t.index + 1, 0), height - 1))
            if cached.0 != s0 { if cached.1 == s0 { swap(&row0, &row1); cached.0 = s0; cached.1 = -1 } else { horizontal(s0, into: &row0); cached.0 = s0 } }
            if cached.1 != s1 { horizontal(s1, into: &row1); cached.1 = s1 }
            let (b0, b1) = (Int32(t.w0), Int32(t.w1))
            let base = dy * rowLength
            for x in 0..<rowLength {
                let p0 = min(row0[x] >> 4, 32767), p1 = min(row1[x] >> 4, 32767)
                let v = ((p0 * b0) >> 16) + ((p1 * b1) >> 16)
                out[base + x] = UInt8(clamping: (v + 2) >> 2)
            }
        }
        return PixelImage(width: dw, height: dh, channels: cn, pixels: out)
    }

    /// Source index and 11-bit weights for each destination position along one axis.
    struct Tap { var index: Int; var w0: Int16; var w1: Int16; var clamped: Bool }

    /// `factor`: OpenCV's `inv_scale` when the caller gave fx/fy (else the size ratio).
    static func linearTaps(source: Int, destination: Int, factor: Double? = nil, clampEdges: Bool = true) -> [Tap] {
        let scale = 1.0 / (factor ?? Double(destination) / Double(source))
        return (0..<destination).map { d in
            var f = Float((Double(d) + 0.5) * scale - 0.5)
            var s = Int(f.rounded(.down))
            f -= Float(s)
            var clamped = false
            if clampEdges, s < 0 { f = 0; s = 0 }
            if clampEdges, s + 1 >= source {
                clamped = true
                if s >= source - 1 { f = 0; s = source - 1 }
            }
            let w0 = Int16(((1 - f) * 2048).rounded(.toNearestOrEven))
            let w1 = Int16((f * 2048).rounded(.toNearestOrEven))
            return Tap(index: s, w0: w0, w1: w1, clamped: clamped)
        }
    }

    /// `cv2.resize(img, (w / k, h / k), interpolation=cv2.INTER_AREA)` for a whole factor `k`
    /// dividing both sides (OpenCV's fast area path): the k×k block means, `(sum + 2) >> 2` for
    /// k = 2, else `cvRound(sum · (1/k²))` in float32. Nil when k does not divide the sides.
    public func shrunkByArea(factor k: Int) -> PixelImage? {
        shrunkByArea(factors: k, k)
    }

    /// The same with whole factors `kx` across and `ky` down (OpenCV takes the fast path whenever
    /// both scales are whole): the kx×ky block means, `cvRound(sum · (1/(kx·ky)))` in float32
    /// (`(sum + 2) >> 2` for 2×2). Nil when the factors do not divide the sides.
    func shrunkByArea(factors kx: Int, _ ky: Int) -> PixelImage? {
        guard kx >= 1, ky >= 1, width % kx == 0, height % ky == 0, width >= kx, height >= ky else { return nil }
        if kx == 1 && ky == 1 { return self }
        if kx == 2 && ky == 2 { return halvedByArea() }
        let (dw, dh, cn) = (width / kx, height / ky, channels)
        let scale = 1 / Float(kx * ky)
        var out = [UInt8](repeating: 0, count: dw * dh * cn)
        pixels.withUnsafeBufferPointer { s in
            for y in 0..<dh {
                for x in 0..<dw {
                    for c in 0..<cn {
                        var sum = 0
                        for i in 0..<ky {
                            let row = ((y * ky + i) * width + x * kx) * cn + c
                            for j in 0..<kx { sum += Int(s[row + j * cn]) }
                        }
                        out[(y * dw + x) * cn + c] = UInt8(clamping: Int((Float(sum) * scale).rounded(.toNearestOrEven)))
                    }
                }
            }
        }
        return PixelImage(width: dw, height: dh, channels: cn, pixels: out)
    }

    /// Exact 2× downscale by 2×2 averaging with rounding (OpenCV's fast INTER_AREA).
    func halvedByArea() -> PixelImage {
        let (dw, dh, cn) = (width / 2, height / 2, channels)
        var out = [UInt8](repeating: 0, count: dw * dh * cn)
        pixels.withUnsafeBufferPointer { s in
            for y in 0..<dh {
                let r0 = 2 * y * width * cn, r1 = (2 * y + 1) * width * cn
                for x in 0..<dw {
                    for k in 0..<cn {
                        let i = 2 * x * cn + k
                        let sum = Int(s[r0 + i]) + Int(s[r0 + i + cn]) + Int(s[r1 + i]) + Int(s[r1 + i + cn])
                        out[(y * dw + x) * cn + k] = UInt8((sum + 2) >> 2)
                    }
                }
            }
        }
        return PixelImage(width: dw, height: dh, channels: cn, pixels: out)
    }
}

extension Plane {
    /// `cv2.resize(mask, (width, height))` (INTER_LINEAR) on a float32 or float64 plane: float32
    /// coefficients (1 − f, f) with f from `(d + 0.5)·(src/dst) − 0.5`, edge samples clamped,
    /// sums in the plane's type; an exact 2× downscale is OpenCV's fast INTER_AREA (2×2 mean);
    /// the same size is a copy.
    @_specialize(where Element == Double)
    @_specialize(where Element == Float)
    public func resizedLinear(width dw: Int, height dh: Int) -> Plane {
        precondition(dw > 0 && dh > 0 && width > 0 && height > 0, "resize to \(dw)×\(dh) from \(width)×\(height)")
        if dw == width && dh == height { return self }
        return Plane(width: dw, height: dh, values: Self.resizedLinear(values, width: width, height: height, channels: 1, toWidth: dw, height: dh))
    }

    /// `resizedLinear` on `channels` interleaved float32 planes (`cv2.resize` of a multi-channel
    /// float image: each channel as the single-plane resize computes it). Sizes must be positive.
    @_specialize(where Element == Double)
    @_specialize(where Element == Float)
    public static func resizedLinear(_ values: [Element], width: Int, height: Int, channels c: Int, toWidth dw: Int, height dh: Int) -> [Element] {
        var out = [Element](repeating: 0, count: dw * dh * c)
        if width == dw * 2 && height == dh * 2 {
            for y in 0..<dh {
                for x in 0..<dw {
                    for k in 0..<c {
                        let r0 = (2 * y * width + 2 * x) * c + k, r1 = r0 + width * c
                        out[(y * dw + x) * c + k] = (values[r0] + values[r0 + c] + values[r1] + values[r1 + c]) * 0.25
                    }
                }
            }
            return out
        }
        // OpenCV's coefficients are float32 (1 − f computed in float) whatever the data type.
        let xs = floatLinearTaps(width, dw).map { ($0.0, $0.1, Element(1 - $0.2), Element($0.2)) }
        let ys = floatLinearTaps(height, dh).map { ($0.0, $0.1, Element(1 - $0.2), Element($0.2)) }
        let (rowLength, sourceRow) = (dw * c, width * c)
        var rows = [Element](repeating: 0, count: height * rowLength)
        values.withUnsafeBufferPointer { v in
            rows.withUnsafeMutableBufferPointer { r in
                // Only the source rows the vertical pass reads.
                for y in linearSourceIndices(source: height, destination: dh) {
                    for (x, t) in xs.enumerated() {
                        let (a, b, o) = (y * sourceRow + t.0 * c, y * sourceRow + t.1 * c, y * rowLength + x * c)
                        for k in 0..<c { r[o + k] = v[a + k] * t.2 + v[b + k] * t.3 }
                    }
                }
            }
        }
        rows.withUnsafeBufferPointer { r in
            out.withUnsafeMutableBufferPointer { o in
                for (y, t) in ys.enumerated() {
                    let (a, b, f0, f1) = (t.0 * rowLength, t.1 * rowLength, t.2, t.3)
                    for x in 0..<rowLength { o[y * rowLength + x] = r[a + x] * f0 + r[b + x] * f1 }
                }
            }
        }
        return out
    }

    /// The two source samples and the weight of the second for each destination position along
    /// one axis (float coefficients, edges clamped).
    static func floatLinearTaps(_ source: Int, _ destination: Int) -> [(Int, Int, Float)] {
        let scale = Double(source) / Double(destination)
        return (0..<destination).map { d in
            var f = Float((Double(d) + 0.5) * scale - 0.5)
            var s = Int(f.rounded(.down))
            f -= Float(s)
            if s < 0 { f = 0; s = 0 }
            if s >= source - 1 { f = 0; s = source - 1 }
            return (s, min(s + 1, source - 1), f)
        }
    }

    /// The source rows (or columns) `resizedLinear` reads along an axis of `source` samples
    /// resized to `destination`, ascending: every one for the same size or an exact 2× (INTER_AREA),
    /// else the two neighbours of each destination sample. A value nobody reads never reaches
    /// the output, so a filter in front of the resize need only compute these.
    public static func linearSourceIndices(source: Int, destination: Int) -> [Int] {
        guard source > 0, destination > 0, source != destination, source != 2 * destination else { return Array(0..<max(source, 0)) }
        var read = [Bool](repeating: false, count: source)
        for t in floatLinearTaps(source, destination) { read[t.0] = true; read[t.1] = true }
        return read.indices.filter { read[$0] }
    }
}

extension PixelImage {
    /// `cv2.resize(self, (width, height), interpolation=cv2.INTER_AREA)` for a shrink on both
    /// axes, bit-exact with OpenCV 4.6 (`resize.cpp`, `resizeArea_`): whole factors on both
    /// axes take the fast path (the block means, `shrunkByArea(factors:)`); otherwise
    /// `computeResizeAreaTab`'s cell weights
    /// as float32 (1/cell inside, the covered fraction at the two ends, ends under 1e-3 dropped),
    /// each source row summed horizontally into a float32 buffer, the rows of a destination row
    /// added with their vertical weights in float32, and `cvRound` (half to even) to 8 bits.
    public func shrunkByArea(width dw: Int, height dh: Int) -> PixelImage {
        precondition(dw > 0 && dh > 0 && dw <= width && dh <= height, "area shrink to \(dw)×\(dh) from \(width)×\(height)")
        if dw == width && dh == height { return self }
        let (scaleX, scaleY) = (1 / (Double(dw) / Double(width)), 1 / (Double(dh) / Double(height)))
        let (kx, ky) = (Int(scaleX.rounded(.toNearestOrEven)), Int(scaleY.rounded(.toNearestOrEven)))
        if abs(scaleX - Double(kx)) < Double.ulpOfOne, abs(scaleY - Double(ky)) < Double.ulpOfOne,
           let fast = shrunkByArea(factors: kx, ky) {
            return fast
        }
        let cn = channels
        let xs = Self.areaTaps(source: width, destination: dw, scale: scaleX)
        let ys = Self.areaTaps(source: height, destination: dh, scale: scaleY)
        var out = [UInt8](repeating: 0, count: dw * dh * cn)
        var buf = [Float](repeating: 0, count: dw * cn), sum = buf
        var previous = ys.first?.d ?? 0
        func flush(_ dy: Int) {
            for i in 0..<(dw * cn) { out[dy * dw * cn + i] = UInt8(clamping: Int(sum[i].rounded(.toNearestOrEven))) }
        }
        pixels.withUnsafeBufferPointer { src in
            for t in ys {
                for i in buf.indices { buf[i] = 0 }
                let row = t.s * width * cn
                for x in xs {
                    for c in 0..<cn { buf[x.d * cn + c] = buf[x.d * cn + c] + Float(src[row + x.s * cn + c]) * x.alpha }
                }
                if t.d != previous {
                    flush(previous)
                    for i in sum.indices { sum[i] = t.alpha * buf[i] }
                    previous = t.d
                } else {
                    for i in sum.indices { sum[i] = sum[i] + t.alpha * buf[i] }
                }
            }
        }
        flush(previous)
        return PixelImage(width: dw, height: dh, channels: cn, pixels: out)
    }

    /// One source sample of a destination cell and its weight (OpenCV's `DecimateAlpha`).
    struct AreaTap { var d: Int; var s: Int; var alpha: Float }

    /// OpenCV's `computeResizeAreaTab(ssize, dsize, cn, scale)` for one axis.
    static func areaTaps(source: Int, destination: Int, scale: Double) -> [AreaTap] {
        var taps: [AreaTap] = []
        for d in 0..<destination {
            let fs1 = Double(d) * scale, fs2 = fs1 + scale
            let cell = min(scale, Double(source) - fs1)
            var s2 = Int(fs2.rounded(.down))
            s2 = min(s2, source - 1)
            let s1 = min(Int(fs1.rounded(.up)), s2)
            if Double(s1) - fs1 > 1e-3 { taps.append(AreaTap(d: d, s: s1 - 1, alpha: Float((Double(s1) - fs1) / cell))) }
            for s in stride(from: s1, to: s2, by: 1) { taps.append(AreaTap(d: d, s: s, alpha: Float(1 / cell))) }
            if fs2 - Double(s2) > 1e-3 { taps.append(AreaTap(d: d, s: s2, alpha: Float(min(min(fs2 - Double(s2), 1), cell) / cell))) }
        }
        return taps
    }
}
