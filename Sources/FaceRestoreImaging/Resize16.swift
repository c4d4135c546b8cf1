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
        var rows = LanczosRows16(sourceWidth: width, sourceHeight: height, width: dw, height: dh, channels: channels)
        let rowLength = dw * channels, sourceRow = width * channels
        var out = [UInt16](repeating: 0, count: dw * dh * channels)
        out.withUnsafeMutableBufferPointer { dst in
            for dy in 0..<dh {
                rows.row(dy, into: UnsafeMutableBufferPointer(rebasing: dst[(dy * rowLength)..<((dy + 1) * rowLength)])) { sy in
                    pixels[(sy * sourceRow)..<((sy + 1) * sourceRow)]
                }
            }
        }
        return PixelImage16(width: dw, height: dh, channels: channels, pixels: out)
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

/// The 16-bit INTER_LANCZOS4 one destination row at a time (see `LanczosRows`): float taps, rows
/// then columns, rounded.
public struct LanczosRows16 {
    let sourceWidth: Int, sourceHeight: Int, width: Int, height: Int, channels: Int
    let xs: [(index: [Int], weights: [Float])], ys: [(index: [Int], weights: [Float])]
    private var cache: [Int: [Float]] = [:]

    public init(sourceWidth: Int, sourceHeight: Int, width: Int, height: Int, channels: Int) {
        (self.sourceWidth, self.sourceHeight, self.width, self.height, self.channels) = (sourceWidth, sourceHeight, width, height, channels)
        xs = PixelImage16.taps(sourceWidth, width)
        ys = PixelImage16.taps(sourceHeight, height)
    }

    /// The source rows destination row `dy` reads.
    public func sourceRows(_ dy: Int) -> ClosedRange<Int> { ys[dy].index[0]...ys[dy].index[7] }

    private func horizontal(_ row: ArraySlice<UInt16>) -> [Float] {
        let c = channels
        var buffer = [Float](repeating: 0, count: width * c)
        row.withUnsafeBufferPointer { src in
            for (dx, t) in xs.enumerated() {
                for k in 0..<c {
                    var s: Float = 0
                    for j in 0..<8 { s += Float(src[t.index[j] * c + k]) * t.weights[j] }
                    buffer[dx * c + k] = s
                }
            }
        }
        return buffer
    }

    /// Destination row `dy` into `out`; `source(sy)` gives source row sy.
    public mutating func row(_ dy: Int, into out: UnsafeMutableBufferPointer<UInt16>, source: (Int) -> ArraySlice<UInt16>) {
        let t = ys[dy]
        var rows: [[Float]] = []
        rows.reserveCapacity(8)
        for j in 0..<8 {
            let sy = t.index[j]
            if let r = cache[sy] { rows.append(r); continue }
            let r = horizontal(source(sy))
            cache[sy] = r
            rows.append(r)
        }
        for key in cache.keys where key < t.index[0] { cache[key] = nil }
        for x in 0..<(width * channels) {
            var s: Float = 0
            for j in 0..<8 { s += rows[j][x] * t.weights[j] }
            out[x] = PixelImage16.sample(s)
        }
    }
}
