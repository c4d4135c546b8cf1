// Reading and writing photos the way the reference pipeline sees them: `cv2.imread(path,
// IMREAD_COLOR)` (OpenCV 4.6, as Debian's python3-opencv the reference uses) gives 8-bit BGR with
//   - 16-bit samples reduced by dropping the low byte (v >> 8, libpng's strip_16),
//   - gray replicated to three channels, the alpha channel dropped (we keep it aside),
//   - palette and low-bit-depth PNGs expanded,
//   - JPEG EXIF orientation applied (phone photos come out upright).
// Files are read whole and decoded from memory; outputs are encoded to memory and written
// atomically. Decoders refuse images beyond `ImageLimits` before allocating them.

import CImageCodecs
import FaceRestoreEngine
import Foundation
import Synchronization

/// Why an image could not be read or written (image-rs's categories). One line, naming the file.
public enum ImageError: Error, CustomStringConvertible, Equatable {
    /// The file is not a readable image (corrupt, truncated, or another kind of file).
    case decoding(path: String, reason: String)
    case encoding(path: String, reason: String)
    /// The image is larger than the configured limits.
    case limits(path: String, reason: String)
    /// A real image in a format or variant FaceRestore does not handle.
    case unsupported(path: String, reason: String)
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case let .decoding(path, reason): return "\(path): cannot decode image (\(reason))"
        case let .encoding(path, reason): return "\(path): cannot encode image (\(reason))"
        case let .limits(path, reason): return "\(path): \(reason)"
        case let .unsupported(path, reason): return "\(path): unsupported image (\(reason))"
        case let .io(path, reason): return "\(path): \(reason)"
        }
    }
}

/// Upper bounds on what a decoder will allocate.
public struct ImageLimits: Sendable, Equatable {
    public var maxWidth: Int
    public var maxHeight: Int
    public var maxPixels: Int

    /// 16384 × 16384 and 100 megapixels: a 100 MP photo needs 300 MB as 8-bit BGR.
    public init(maxWidth: Int = 16384, maxHeight: Int = 16384, maxPixels: Int = 100_000_000) {
        self.maxWidth = maxWidth
        self.maxHeight = maxHeight
        self.maxPixels = maxPixels
    }
}

public enum ImageFormat: String, Sendable, CaseIterable {
    case png, jpeg

    /// The format of encoded bytes, from their signature.
    public static func sniff(_ data: Data) -> ImageFormat? {
        if data.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if data.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        return nil
    }

    /// The format for an output file extension ("png", "jpg", "jpeg"), if any.
    public init?(extension ext: String) {
        switch ext.lowercased() {
        case "png": self = .png
        case "jpg", "jpeg": self = .jpeg
        default: return nil
        }
    }
}

/// A decoded photo: 8-bit BGR as `cv2.imread(IMREAD_COLOR)` gives it, plus what it dropped.
/// What an image's header says (see `ImageIO.probe`).
public struct ImageHeader: Sendable, Equatable {
    public var format: ImageFormat
    public var width: Int
    public var height: Int
}

public struct DecodedImage: Sendable {
    public var image: PixelImage
    /// The alpha channel (8-bit, row-major), when the file had one.
    public var alpha: [UInt8]?
    public var format: ImageFormat
    /// Samples per pixel and bits per sample in the file (before conversion to 8-bit BGR).
    public var sourceChannels: Int
    public var sourceDepth: Int
    /// EXIF orientation applied on read (1 = none).
    public var orientation: Int
}

public enum ImageIO {
    /// Reads and decodes an image file.
    public static func read(path: String, limits: ImageLimits = ImageLimits()) throws -> DecodedImage {
        try decode(try contents(path: path), path: path, limits: limits)
    }

    /// The bytes of an image file (mapped where safe), with errors in words.
    public static func contents(path: String) throws -> Data {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw ImageError.io(path: path, reason: "no such file") }
        guard !isDir.boolValue else { throw ImageError.io(path: path, reason: "is a directory, not an image") }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe) } catch {
            throw ImageError.io(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
        return data
    }

    /// Reads the size and format from the header of PNG or JPEG bytes, without decoding or
    /// allocating any pixels, and checks them against `limits` (`path` names the source in errors).
    public static func probe(_ data: Data, path: String, limits: ImageLimits = ImageLimits()) throws -> ImageHeader {
        if data.isEmpty { throw ImageError.decoding(path: path, reason: "empty file") }
        guard let format = ImageFormat.sniff(data) else {
            throw ImageError.decoding(path: path, reason: "not a PNG or JPEG file")
        }
        var raw = fr_image()
        var err = [CChar](repeating: 0, count: 256)
        let infoRC = data.withUnsafeBytes { b -> Int32 in
            let p = b.bindMemory(to: UInt8.self).baseAddress!
            return format == .png ? fr_png_info(p, b.count, &raw, &err, err.count) : fr_jpeg_info(p, b.count, &raw, &err, err.count)
        }
        if infoRC != 0 {
            let reason = cMessage(err)
            if reason.contains("CMYK") { throw ImageError.unsupported(path: path, reason: reason) }
            throw ImageError.decoding(path: path, reason: reason)
        }
        let (w, h) = (Int(raw.width), Int(raw.height))
        let pixels = w.multipliedReportingOverflow(by: h)
        if w > limits.maxWidth || h > limits.maxHeight || pixels.overflow || pixels.partialValue > limits.maxPixels {
            throw ImageError.limits(path: path, reason: "image is \(w)×\(h), beyond the limit of \(limits.maxWidth)×\(limits.maxHeight) and \(limits.maxPixels / 1_000_000) megapixels")
        }
        return ImageHeader(format: format, width: w, height: h)
    }

    /// Decodes PNG or JPEG bytes (`path` names the source in errors).
    public static func decode(_ data: Data, path: String, limits: ImageLimits = ImageLimits()) throws -> DecodedImage {
        // Header first, so the limits are checked before any pixel memory is allocated.
        let header = try probe(data, path: path, limits: limits)
        let format = header.format
        var raw = fr_image()
        var err = [CChar](repeating: 0, count: 256)
        let message = { cMessage(err) }
        let (w, h) = (header.width, header.height)
        let rc = data.withUnsafeBytes { b -> Int32 in
            let p = b.bindMemory(to: UInt8.self).baseAddress!
            return format == .png ? fr_png_decode(p, b.count, limits.maxPixels, &raw, &err, err.count)
                                  : fr_jpeg_decode(p, b.count, limits.maxPixels, &raw, &err, err.count)
        }
        guard rc == 0, let px = raw.pixels else { throw ImageError.decoding(path: path, reason: message()) }
        defer { fr_free(px) }
        let c = Int(raw.channels), depth = Int(raw.depth)
        let n = w * h
        var bgr = [UInt8](repeating: 0, count: n * 3)
        var alpha: [UInt8]? = (c == 2 || c == 4) ? [UInt8](repeating: 0, count: n) : nil
        // Sample i of pixel p, reduced to 8 bits as OpenCV's strip_16 does.
        let sample: (Int) -> UInt8
        if depth == 16 {
            let s16 = UnsafeRawPointer(px).assumingMemoryBound(to: UInt16.self)
            sample = { UInt8(truncatingIfNeeded: s16[$0] >> 8) }
        } else {
            sample = { px[$0] }
        }
        for p in 0..<n {
            let base = p * c
            switch c {
            case 1, 2:
                let g = sample(base)
                bgr[p * 3] = g; bgr[p * 3 + 1] = g; bgr[p * 3 + 2] = g
            default:
                bgr[p * 3] = sample(base + 2); bgr[p * 3 + 1] = sample(base + 1); bgr[p * 3 + 2] = sample(base)
            }
            if c == 2 || c == 4 { alpha![p] = sample(base + c - 1) }
        }
        var image = PixelImage(width: w, height: h, channels: 3, pixels: bgr)
        let orientation = Int(raw.orientation)
        if orientation != 1 {
            image = image.oriented(exif: orientation)
            if let a = alpha { alpha = PixelImage(width: w, height: h, channels: 1, pixels: a).oriented(exif: orientation).pixels }
        }
        return DecodedImage(image: image, alpha: alpha, format: format, sourceChannels: c, sourceDepth: depth, orientation: orientation)
    }

    /// Encodes an 8-bit BGR (or gray) image, with an optional alpha channel (PNG only).
    /// `pngLevel`: zlib level 0–9 (libpng's adaptive filters), or nil for `cv2.imwrite`'s default
    /// (Sub filter, level 1, Z_RLE: what upstream writes, and fast); `jpegQuality`: 1–100 (4:2:0,
    /// as `cv2.imwrite`'s default).
    public static func encode(_ image: PixelImage, alpha: [UInt8]? = nil, format: ImageFormat, path: String,
                              pngLevel: Int? = nil, jpegQuality: Int = 95) throws -> Data {
        guard image.channels == 1 || image.channels == 3 else {
            throw ImageError.encoding(path: path, reason: "\(image.channels)-channel images cannot be encoded")
        }
        let n = image.width * image.height
        let withAlpha = format == .png && alpha?.count == n
        let outChannels = image.channels + (withAlpha ? 1 : 0)
        var rgb = [UInt8](repeating: 0, count: n * outChannels)
        image.pixels.withUnsafeBufferPointer { src in
            for p in 0..<n {
                if image.channels == 3 {
                    rgb[p * outChannels] = src[p * 3 + 2]; rgb[p * outChannels + 1] = src[p * 3 + 1]; rgb[p * outChannels + 2] = src[p * 3]
                } else {
                    rgb[p * outChannels] = src[p]
                }
                if withAlpha { rgb[p * outChannels + outChannels - 1] = alpha![p] }
            }
        }
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var err = [CChar](repeating: 0, count: 256)
        let rc = rgb.withUnsafeBufferPointer { b -> Int32 in
            switch format {
            case .png: return fr_png_encode(b.baseAddress, Int32(image.width), Int32(image.height), Int32(outChannels), 8,
                                            Int32(pngLevel.map { min(max($0, 0), 9) } ?? -1), &out, &size, &err, err.count)
            case .jpeg: return fr_jpeg_encode(b.baseAddress, Int32(image.width), Int32(image.height), Int32(outChannels),
                                              Int32(jpegQuality), 420, &out, &size, &err, err.count)
            }
        }
        guard rc == 0, let out else { throw ImageError.encoding(path: path, reason: cMessage(err)) }
        defer { fr_free(out) }
        return Data(bytes: out, count: size)
    }

    /// Writes several images (each as `write(_:alpha:to:)` does, atomically) on up to `threads`
    /// threads, each taking the next file in order; every file is attempted, and the first error
    /// (in list order) is thrown after all are done.
    public static func write(_ files: [(image: PixelImage, alpha: [UInt8]?, path: String)], threads: Int) throws {
        let workers = max(1, min(threads, files.count))
        if workers == 1 {
            for f in files { try write(f.image, alpha: f.alpha, to: f.path) }
            return
        }
        let next = Mutex(0)
        let errors = Mutex([Int: any Error]())
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let k = next.withLock { n -> Int in defer { n += 1 }; return n }
                guard k < files.count else { return }
                do { try write(files[k].image, alpha: files[k].alpha, to: files[k].path) } catch { errors.withLock { $0[k] = error } }
            }
        }
        if let first = errors.withLock({ $0.min { $0.key < $1.key }?.value }) { throw first }
    }

    /// Encodes and writes atomically; the format comes from the file extension.
    public static func write(_ image: PixelImage, alpha: [UInt8]? = nil, to path: String, jpegQuality: Int = 95) throws {
        let ext = URL(fileURLWithPath: path).pathExtension
        guard let format = ImageFormat(extension: ext) else {
            throw ImageError.encoding(path: path, reason: "unknown output extension '.\(ext)' (use .png or .jpg)")
        }
        let data = try encode(image, alpha: alpha, format: format, path: path, jpegQuality: jpegQuality)
        do { try writeFileAtomically(data, to: path) } catch let e as FileWriteError {
            throw ImageError.io(path: path, reason: "cannot write: \(e.reason)")
        }
    }
}

extension PixelImage {
    /// The image turned upright for an EXIF orientation tag (2–8; 1 returns it unchanged), as
    /// OpenCV's `ExifTransform`: 2 flip H, 3 rotate 180, 4 flip V, 5 transpose, 6 rotate 90° CW,
    /// 7 transverse, 8 rotate 90° CCW.
    public func oriented(exif orientation: Int) -> PixelImage {
        guard (2...8).contains(orientation) else { return self }
        let swap = orientation >= 5
        let (ow, oh) = swap ? (height, width) : (width, height)
        var out = [UInt8](repeating: 0, count: pixels.count)
        for y in 0..<oh {
            for x in 0..<ow {
                // Source coordinates of output pixel (x, y).
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
        return PixelImage(width: ow, height: oh, channels: channels, pixels: out)
    }
}

/// A NUL-terminated C message buffer as a String.
func cMessage(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
