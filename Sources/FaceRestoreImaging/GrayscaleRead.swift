// `cv2.imread(path, cv2.IMREAD_GRAYSCALE)` (`imread(path, 0)`) as OpenCV 4.6 reads it, which is
// not `cvtColor(imread(path), BGR2GRAY)`:
//   - JPEG: libjpeg's JCS_GRAYSCALE output, the file's decoded luma plane (`grfmt_jpeg.cpp`);
//   - PNG: libpng's `png_set_rgb_to_gray(1, 0.299, 0.587)` (`grfmt_png.cpp`): (9797·R + 19234·G +
//     3737·B) >> 15, *truncated* (cvtColor's rounded 9798/19235/3735 differs by one level on about
//     half the pixels of a random image), through the gamma tables when the file has gAMA/sRGB;
//     16-bit files stripped to 8, alpha dropped, palettes expanded first;
//   - EXIF orientation applied, as for colour reads.
// The ArcFace "Deg." metric (VQFR `metric_paper/calculate_cos_dist.py`) reads its images this way.

import CImageCodecs
import Foundation

extension ImageIO {
    /// The one-channel 8-bit image `cv2.imread(path, cv2.IMREAD_GRAYSCALE)` gives.
    public static func readGrayscale(path: String, limits: ImageLimits = ImageLimits()) throws -> PixelImage {
        try decodeGrayscale(try contents(path: path), path: path, limits: limits)
    }

    /// `cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)` (`path` names the source in errors).
    public static func decodeGrayscale(_ data: Data, path: String, limits: ImageLimits = ImageLimits()) throws -> PixelImage {
        let header = try probe(data, path: path, limits: limits)
        guard header.format == .png || header.format == .jpeg else {
            // The archive formats: the colour read, then one channel (OpenCV's BGR2GRAY weights).
            let color = try decode(data, path: path, limits: limits).image
            var gray = [UInt8](repeating: 0, count: color.width * color.height)
            for p in gray.indices {
                let v = 1868 * Int(color.pixels[p * 3]) + 9617 * Int(color.pixels[p * 3 + 1]) + 4899 * Int(color.pixels[p * 3 + 2])
                gray[p] = UInt8((v + 8192) >> 14)
            }
            return PixelImage(width: color.width, height: color.height, channels: 1, pixels: gray)
        }
        var raw = fr_image()
        var err = [CChar](repeating: 0, count: 256)
        let rc = data.withUnsafeBytes { b -> Int32 in
            guard let p = b.bindMemory(to: UInt8.self).baseAddress else { return -1 }
            return header.format == .png ? fr_png_decode_gray(p, b.count, limits.maxPixels, &raw, &err, err.count)
                                         : fr_jpeg_decode_gray(p, b.count, limits.maxPixels, &raw, &err, err.count)
        }
        guard rc == 0, let px = raw.pixels else { throw ImageError.decoding(path: path, reason: cMessage(err)) }
        defer { fr_free(px) }
        let (w, h) = (Int(raw.width), Int(raw.height))
        let image = PixelImage(width: w, height: h, channels: 1, pixels: Array(UnsafeBufferPointer(start: px, count: w * h)))
        return image.oriented(exif: Int(raw.orientation))
    }
}
