// Resizing 16-bit images for the 16-bit output path: the background of a 16-bit photo is resized
// with the same kernels as the 8-bit one (OpenCV's INTER_LINEAR and INTER_LANCZOS4 taps), in
// float, rounded to the nearest 16-bit value and clamped; the same size is a copy.

import Foundation

extension PixelImage16 {
    /// `cv2.resize(self, (width, height), INTER_LINEAR)` in float (OpenCV's 16-bit path also
    /// computes in float), rounded.
    public func resizedLinear(width dw: Int, height dh: Int) -> PixelImage16 {
        guard dw != width || dh != height, width > 0, height > 0, dw > 0, dh > 0 else { return self }
        let out = Plane<Float>.resizedLinear(pixels.map(Float.init), width: width, height: height, channels: channels,
                                             toWidth: dw, height: dh)
        return PixelImage16(width: dw, height: dh, channels: channels, pixels: out.map(Self.sample))
    }

    /// `cv2.resize(self, (width, height), INTER_LANCZOS4)` in float: OpenCV's 8 taps per axis,
    /// edge samples clamped, rows then columns, rounded.
    public func resizedLanczos4(width dw: Int, height dh: Int) -> PixelImage16 {
        guard dw != width || dh != height, width > 0, height > 0, dw > 0, dh > 0 else { return self }
        let c = channels
        let xs = Self.taps(width, dw), ys = Self.taps(height, dh)
        // Horizontal pass on every source row into float rows of dw·c.
        var rows = [Float](repeating: 0, count: height * dw * c)
        pixels.withUnsafeBufferPointer { src in
            rows.withUnsafeMutableBufferPointer { dst in
                for y in 0..<height {
                    for (dx, t) in xs.enumerated() {
                        for k in 0..<c {
                            var s: Float = 0
                            for j in 0..<8 { s += Float(src[(y * width + t.index[j]) * c + k]) * t.weights[j] }
                            dst[(y * dw + dx) * c + k] = s
                        }
                    }
                }
            }
        }
        var out = [UInt16](repeating: 0, count: dw * dh * c)
        let rowLength = dw * c
        rows.withUnsafeBufferPointer { r in
            for (dy, t) in ys.enumerated() {
                for x in 0..<rowLength {
                    var s: Float = 0
                    for j in 0..<8 { s += r[t.index[j] * rowLength + x] * t.weights[j] }
                    out[dy * rowLength + x] = Self.sample(s)
                }
            }
        }
        return PixelImage16(width: dw, height: dh, channels: c, pixels: out)
    }

    /// BGR to gray replicated (`cv2.cvtColor(BGR2GRAY)`'s weights, 0.114, 0.587, 0.299), rounded.
    public func grayscaled() -> PixelImage16 {
        guard channels == 3 else { return self }
        var out = pixels
        for i in stride(from: 0, to: pixels.count, by: 3) {
            let v = Self.sample(0.114 * Float(pixels[i]) + 0.587 * Float(pixels[i + 1]) + 0.299 * Float(pixels[i + 2]))
            out[i] = v; out[i + 1] = v; out[i + 2] = v
        }
        return PixelImage16(width: width, height: height, channels: 3, pixels: out)
    }

    /// A float sample rounded to the nearest 16-bit value, clamped (NaN gives 0).
    static func sample(_ v: Float) -> UInt16 {
        guard v.isFinite else { return v > 0 ? 65535 : 0 }
        return UInt16(min(max(v.rounded(), 0), 65535))
    }

    /// Lanczos-4 taps along an axis (source indices clamped to the edges, float weights).
    static func taps(_ source: Int, _ destination: Int) -> [(index: [Int], weights: [Float])] {
        let scale = Double(source) / Double(destination)
        return (0..<destination).map { d in
            var f = Float((Double(d) + 0.5) * scale - 0.5)
            let s = Int(f.rounded(.down))
            f -= Float(s)
            return ((0..<8).map { min(max(s + $0 - 3, 0), source - 1) }, PixelImage.lanczos4(f))
        }
    }
}
