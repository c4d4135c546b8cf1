// `cv2.resize(img, (w, h), interpolation=cv2.INTER_LANCZOS4)` on 8-bit images, as facexlib upscales
// the background before pasting faces back. Ported from OpenCV 4.6
// `modules/imgproc/src/resize.cpp` (`interpolateLanczos4`, `resize` coefficient set-up,
// `resizeGeneric_`, `HResizeLanczos4`, `VResizeLanczos4`):
//   - per destination position f = (float)((d + 0.5)·(src/dst) − 0.5), s = ⌊f⌋, t = f − s;
//   - 8 taps at s−3 … s+4 from sin/cos in double, normalized in float, then 11-bit fixed point
//     (round half to even of tap·2048, no correction of the sum);
//   - taps past the edges read the edge pixel (replicate);
//   - rows in int (×2048), columns in int (×2048), then (Σ + 2²¹) >> 22, saturated to 0…255.

import Foundation

extension PixelImage {
    /// `cv2.resize(self, (width, height), interpolation=cv2.INTER_LANCZOS4)`.
    public func resizedLanczos4(width dw: Int, height dh: Int) -> PixelImage {
        precondition(dw > 0 && dh > 0 && width > 0 && height > 0, "resize to \(dw)×\(dh) from \(width)×\(height)")
        if dw == width && dh == height { return self }
        var rows = LanczosRows(sourceWidth: width, sourceHeight: height, width: dw, height: dh, channels: channels)
        let rowLength = dw * channels, sourceRow = width * channels
        var out = [UInt8](repeating: 0, count: dh * rowLength)
        out.withUnsafeMutableBufferPointer { dst in
            for dy in 0..<dh {
                rows.row(dy, into: UnsafeMutableBufferPointer(rebasing: dst[(dy * rowLength)..<((dy + 1) * rowLength)])) { sy in
                    pixels[(sy * sourceRow)..<((sy + 1) * sourceRow)]
                }
            }
        }
        return PixelImage(width: dw, height: dh, channels: channels, pixels: out)
    }

    struct LanczosTap { var index: Int; var weights: [Int32] }

    static func lanczosTaps(source: Int, destination: Int) -> [LanczosTap] {
        let scale = 1.0 / (Double(destination) / Double(source))
        return (0..<destination).map { d in
            var f = Float((Double(d) + 0.5) * scale - 0.5)
            let s = Int(f.rounded(.down))
            f -= Float(s)
            return LanczosTap(index: s, weights: lanczos4(f).map { Int32(($0 * 2048).rounded(.toNearestOrEven)) })
        }
    }

    /// OpenCV's `interpolateLanczos4`.
    static func lanczos4(_ x: Float) -> [Float] {
        if x < Float.ulpOfOne {
            var c = [Float](repeating: 0, count: 8)
            c[3] = 1
            return c
        }
        let s45 = 0.70710678118654752440084436210485
        let cs: [(Double, Double)] = [(1, 0), (-s45, -s45), (0, 1), (s45, -s45), (-1, 0), (s45, s45), (0, -1), (-s45, s45)]
        let y0 = -Double(x + 3) * Double.pi * 0.25   // (x + 3) is float arithmetic upstream
        let s0 = sin(y0), c0 = cos(y0)
        var coeffs = [Float](repeating: 0, count: 8)
        var sum: Float = 0
        for i in 0..<8 {
            let y = -Double(x + 3 - Float(i)) * Double.pi * 0.25
            coeffs[i] = Float((cs[i].0 * s0 + cs[i].1 * c0) / (y * y))
            sum += coeffs[i]
        }
        sum = 1 / sum
        return coeffs.map { $0 * sum }
    }
}

/// INTER_LANCZOS4 one destination row at a time, from source rows asked for in increasing order
/// (a streamed image's bands): the horizontal pass of each source row is kept while later rows
/// can use it, so at most eight are held.
public struct LanczosRows {
    let sourceWidth: Int, sourceHeight: Int, width: Int, height: Int, channels: Int
    let xs: [PixelImage.LanczosTap], ys: [PixelImage.LanczosTap]
    private var cache: [Int: [Int32]] = [:]

    public init(sourceWidth: Int, sourceHeight: Int, width: Int, height: Int, channels: Int) {
        (self.sourceWidth, self.sourceHeight, self.width, self.height, self.channels) = (sourceWidth, sourceHeight, width, height, channels)
        xs = PixelImage.lanczosTaps(source: sourceWidth, destination: width)
        ys = PixelImage.lanczosTaps(source: sourceHeight, destination: height)
    }

    /// The source rows destination row `dy` reads.
    public func sourceRows(_ dy: Int) -> ClosedRange<Int> {
        let i = ys[dy].index
        return min(max(i - 3, 0), sourceHeight - 1)...min(max(i + 4, 0), sourceHeight - 1)
    }

    private func horizontal(_ row: ArraySlice<UInt8>) -> [Int32] {
        let (cn, w) = (channels, sourceWidth)
        var buffer = [Int32](repeating: 0, count: width * cn)
        row.withUnsafeBufferPointer { src in
            for dx in 0..<width {
                let t = xs[dx]
                for k in 0..<cn {
                    var s: Int32 = 0
                    for j in 0..<8 {
                        let sx = min(max(t.index - 3 + j, 0), w - 1)
                        s = s &+ Int32(src[sx * cn + k]) &* t.weights[j]
                    }
                    buffer[dx * cn + k] = s
                }
            }
        }
        return buffer
    }

    /// Destination row `dy` into `out` (width × channels values); `source(sy)` gives source row sy.
    public mutating func row(_ dy: Int, into out: UnsafeMutableBufferPointer<UInt8>, source: (Int) -> ArraySlice<UInt8>) {
        let t = ys[dy]
        var rows: [[Int32]] = []
        rows.reserveCapacity(8)
        for j in 0..<8 {
            let sy = min(max(t.index - 3 + j, 0), sourceHeight - 1)
            if let r = cache[sy] { rows.append(r); continue }
            let r = horizontal(source(sy))
            cache[sy] = r
            rows.append(r)
        }
        // Keep only rows that later destination rows can still use.
        let lowest = min(max(t.index - 3, 0), sourceHeight - 1)
        for key in cache.keys where key < lowest { cache[key] = nil }
        for x in 0..<(width * channels) {
            var s: Int32 = 0
            for j in 0..<8 { s = s &+ rows[j][x] &* t.weights[j] }
            out[x] = UInt8(clamping: (s &+ (1 << 21)) >> 22)
        }
    }
}
