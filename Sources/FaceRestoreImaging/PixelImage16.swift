// 16-bit samples, for sources that have them (16-bit PNG and TIFF, HEIF above 8 bits).
//
// The 8-bit `DecodedImage.image` is what the pipeline sees (`v >> 8`, as OpenCV reads it), so
// detection and faces do not depend on the extra bits. A caller that keeps 16 bits through a
// restoration composites in 16 bits and writes with `ImageIO.encode16` (PNG, TIFF):
//
//     let decoded = try ImageIO.decode(data, path: path)
//     if let wide = decoded.image16 {
//         // wide.pixels[(y * wide.width + x) * 3 + c] (BGR); where the 8-bit result changed a
//         // pixel, take `UInt16(new) << 8 | UInt16(new)`, elsewhere keep `wide`'s samples.
//     }

/// A 16-bit interleaved image: BGR (3 channels) like `PixelImage`, gray replicated, or 1 channel
/// for a single plane (an alpha channel, a gray image before replication).
public struct PixelImage16: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    /// Row-major, interleaved (`height × width × channels`).
    public var pixels: [UInt16]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt16]) {
        precondition(width >= 0 && height >= 0 && channels > 0 && pixels.count == width * height * channels,
                     "\(width)×\(height)×\(channels) image needs \(width * height * channels) samples, got \(pixels.count)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// The 8-bit image OpenCV reads from the same file: each sample's high byte.
    public var reducedTo8Bit: PixelImage {
        PixelImage(width: width, height: height, channels: channels, pixels: pixels.map { UInt8(truncatingIfNeeded: $0 >> 8) })
    }

    /// An 8-bit image widened (v · 257, so 255 becomes 65535).
    public init(_ image: PixelImage) {
        self.init(width: image.width, height: image.height, channels: image.channels, pixels: image.pixels.map { UInt16($0) * 257 })
    }

    /// The image turned upright for an EXIF orientation tag, as `PixelImage.oriented(exif:)`.
    public func oriented(exif orientation: Int) -> PixelImage16 {
        let (w, h, px) = orientedSamples(pixels, width: width, height: height, channels: channels, orientation: orientation)
        return PixelImage16(width: w, height: h, channels: channels, pixels: px)
    }
}

/// Samples of an interleaved image turned upright for an EXIF orientation (2–8; others unchanged),
/// as OpenCV's `ExifTransform`: 2 flip H, 3 rotate 180, 4 flip V, 5 transpose, 6 rotate 90° CW,
/// 7 transverse, 8 rotate 90° CCW.
func orientedSamples<T>(_ pixels: [T], width: Int, height: Int, channels: Int, orientation: Int) -> (Int, Int, [T]) {
    guard (2...8).contains(orientation), !pixels.isEmpty else { return (width, height, pixels) }
    let swap = orientation >= 5
    let (ow, oh) = swap ? (height, width) : (width, height)
    var out = pixels
    for y in 0..<oh {
        for x in 0..<ow {
            let (sx, sy): (Int, Int)
            switch orientation {
            case 2: (sx, sy) = (width - 1 - x, y)
            case 3: (sx, sy) = (width - 1 - x, height - 1 - y)
            case 4: (sx, sy) = (x, height - 1 - y)
            case 5: (sx, sy) = (y, x)
            case 6: (sx, sy) = (y, height - 1 - x)
            case 7: (sx, sy) = (width - 1 - y, height - 1 - x)
            default: (sx, sy) = (width - 1 - y, x)
            }
            let d = (y * ow + x) * channels, s = (sy * width + sx) * channels
            for c in 0..<channels { out[d + c] = pixels[s + c] }
        }
    }
    return (ow, oh, out)
}
