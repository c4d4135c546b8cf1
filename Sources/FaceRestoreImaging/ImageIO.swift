// Reading and writing photos the way the reference pipeline sees them: `cv2.imread(path,
// IMREAD_COLOR)` (OpenCV 4.6, as Debian's python3-opencv the reference uses) gives 8-bit BGR with
//   - 16-bit samples reduced by dropping the low byte (v >> 8, libpng's strip_16),
//   - gray replicated to three channels, the alpha channel dropped (we keep it aside),
//   - palette and low-bit-depth PNGs expanded,
//   - JPEG EXIF orientation applied (phone photos come out upright).
// The archive formats (TIFF, WebP, BMP, HEIF) are read into the same form; 16-bit sources also
// keep their full samples (`DecodedImage.image16`), and metadata is read alongside
// (`DecodedImage.metadata`, see ImageMetadata.swift).
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
    case png, jpeg, tiff, webp, bmp
    /// HEIF with HEVC images (phone photos): read only.
    case heic

    /// HEIF brands (ISO-BMFF `ftyp` major or compatible) read as `.heic`.
    static let heifBrands: Set<String> = ["heic", "heix", "mif1", "msf1", "heim", "heis", "hevc", "hevx"]

    /// The format of encoded bytes, from their signature.
    public static func sniff(_ data: Data) -> ImageFormat? {
        if data.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if data.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        if data.starts(with: [0x49, 0x49, 0x2A, 0x00]) || data.starts(with: [0x4D, 0x4D, 0x00, 0x2A])
            || data.starts(with: [0x49, 0x49, 0x2B, 0x00]) || data.starts(with: [0x4D, 0x4D, 0x00, 0x2B]) { return .tiff }
        let head = [UInt8](data.prefix(64))
        if head.count >= 12, head[0..<4].elementsEqual(Array("RIFF".utf8)), head[8..<12].elementsEqual(Array("WEBP".utf8)) { return .webp }
        if head.count >= 18, head[0] == 0x42, head[1] == 0x4D {
            // "BM" alone is weak: the DIB header size must be one of the known ones too.
            let header = Int(head[14]) | Int(head[15]) << 8 | Int(head[16]) << 16 | Int(head[17]) << 24
            if [12, 40, 52, 56, 64, 108, 124].contains(header) { return .bmp }
        }
        if head.count >= 16, head[4..<8].elementsEqual(Array("ftyp".utf8)) {
            let boxSize = Int(head[0]) << 24 | Int(head[1]) << 16 | Int(head[2]) << 8 | Int(head[3])
            let end = min(max(boxSize, 16), data.count, 4096)
            let box = [UInt8](data.prefix(end))
            var brands = [String(decoding: box[8..<12], as: UTF8.self)]
            var i = 16
            while i + 4 <= box.count { brands.append(String(decoding: box[i..<(i + 4)], as: UTF8.self)); i += 4 }
            if brands.contains(where: heifBrands.contains) { return .heic }
        }
        return nil
    }

    /// The format for a file extension ("png", "jpg", "jpeg", "tif", "tiff", "webp", "bmp", "dib",
    /// "heic", "heif"), if any.
    public init?(extension ext: String) {
        switch ext.lowercased() {
        case "png": self = .png
        case "jpg", "jpeg": self = .jpeg
        case "tif", "tiff": self = .tiff
        case "webp": self = .webp
        case "bmp", "dib": self = .bmp
        case "heic", "heif": self = .heic
        default: return nil
        }
    }

    /// The usual extension of the format's files.
    public var fileExtension: String {
        switch self {
        case .png: return "png"
        case .jpeg: return "jpg"
        case .tiff: return "tif"
        case .webp: return "webp"
        case .bmp: return "bmp"
        case .heic: return "heic"
        }
    }

    /// Whether FaceRestore writes this format (HEIF is read only).
    public var isWritable: Bool { self != .heic }

    /// Whether `encode16` keeps 16-bit samples in this format.
    public var holds16Bit: Bool { self == .png || self == .tiff }
}

/// A decoded photo: 8-bit BGR as `cv2.imread(IMREAD_COLOR)` gives it, plus what it dropped.
/// What an image's header says (see `ImageIO.probe`).
public struct ImageHeader: Sendable, Equatable {
    public var format: ImageFormat
    public var width: Int
    public var height: Int
    /// Pages in the file (TIFF directories; 1 for the other formats).
    public var pageCount: Int = 1
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
    /// The 16-bit samples (BGR, gray replicated, orientation applied) when the source has more
    /// than 8 bits per sample (16-bit PNG and TIFF, HEIF above 8 bits); `image` is then their
    /// high bytes, exactly as without this field. See PixelImage16.swift for compositing.
    public var image16: PixelImage16?
    /// The 16-bit alpha channel, when `image16` is set and the file has alpha.
    public var alpha16: [UInt16]?
    /// The file's metadata (EXIF, ICC, XMP, IPTC, resolution), as stored.
    public var metadata = ImageMetadata()
    /// Pages in the file; the first was decoded (TIFF; 1 for the other formats).
    public var pageCount = 1
    /// Whether the file's encoding was lossless (PNG, TIFF, BMP, lossless WebP).
    public var lossless = true

    public init(image: PixelImage, alpha: [UInt8]? = nil, format: ImageFormat, sourceChannels: Int, sourceDepth: Int,
                orientation: Int = 1) {
        self.image = image
        self.alpha = alpha
        self.format = format
        self.sourceChannels = sourceChannels
        self.sourceDepth = sourceDepth
        self.orientation = orientation
    }
}

/// How `ImageIO.encode` writes each format.
public struct EncodeOptions: Sendable, Equatable {
    /// PNG: zlib level 0–9 (libpng's adaptive filters), or nil for `cv2.imwrite`'s default.
    public var pngLevel: Int?
    /// JPEG: 1–100, 4:2:0.
    public var jpegQuality = 95
    /// WebP: nil for lossless, else the lossy quality (0–100).
    public var webpQuality: Int?
    /// TIFF: Deflate (default) or LZW, both with the horizontal predictor.
    public var tiffCompression = TIFFCompression.deflate
    /// Blocks written into the file in the format's native way (nil: none). BMP keeps only the
    /// resolution; TIFF keeps EXIF's IFD0 text tags (see ImageMetadata.swift).
    public var metadata: ImageMetadata?

    public enum TIFFCompression: Int32, Sendable {
        case lzw = 5
        case deflate = 8
    }

    public init(pngLevel: Int? = nil, jpegQuality: Int = 95, webpQuality: Int? = nil, tiffCompression: TIFFCompression = .deflate,
                metadata: ImageMetadata? = nil) {
        self.pngLevel = pngLevel
        self.jpegQuality = jpegQuality
        self.webpQuality = webpQuality
        self.tiffCompression = tiffCompression
        self.metadata = metadata
    }
}

/// One file for `ImageIO.write(_:threads:)`: 8-bit BGR (or gray), with optional alpha and optional
/// 16-bit samples (used where the format holds them), and how to encode it.
public struct ImageOutput: Sendable {
    public var image: PixelImage
    public var alpha: [UInt8]?
    public var image16: PixelImage16?
    public var alpha16: [UInt16]?
    public var path: String
    public var options: EncodeOptions

    public init(image: PixelImage, alpha: [UInt8]? = nil, image16: PixelImage16? = nil, alpha16: [UInt16]? = nil, path: String,
                options: EncodeOptions = EncodeOptions()) {
        self.image = image
        self.alpha = alpha
        self.image16 = image16
        self.alpha16 = alpha16
        self.path = path
        self.options = options
    }
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

    /// Reads the size and format from the header of PNG, JPEG, TIFF, WebP, BMP or HEIF bytes,
    /// without decoding or allocating any pixels, and checks them against `limits` (`path` names
    /// the source in errors). Variants FaceRestore cannot decode are refused here already.
    public static func probe(_ data: Data, path: String, limits: ImageLimits = ImageLimits()) throws -> ImageHeader {
        if data.isEmpty { throw ImageError.decoding(path: path, reason: "empty file") }
        guard let format = ImageFormat.sniff(data) else {
            throw ImageError.decoding(path: path, reason: "not a PNG, JPEG, TIFF, WebP, BMP or HEIF file")
        }
        var raw = fr_image()
        var err = [CChar](repeating: 0, count: 256)
        let infoRC = data.withUnsafeBytes { b -> Int32 in
            guard let p = b.bindMemory(to: UInt8.self).baseAddress else { return 1 }
            switch format {
            case .png: return fr_png_info(p, b.count, &raw, &err, err.count)
            case .jpeg: return fr_jpeg_info(p, b.count, &raw, &err, err.count)
            case .tiff: return fr_tiff_info(p, b.count, &raw, &err, err.count)
            case .webp: return fr_webp_info(p, b.count, &raw, &err, err.count)
            case .bmp: return fr_bmp_info(p, b.count, &raw, &err, err.count)
            case .heic: return fr_heif_info(p, b.count, &raw, &err, err.count)
            }
        }
        if infoRC != 0 {
            let reason = cMessage(err)
            if reason.contains("CMYK") || infoRC == 3 { throw ImageError.unsupported(path: path, reason: reason) }
            throw ImageError.decoding(path: path, reason: reason)
        }
        let (w, h) = (Int(raw.width), Int(raw.height))
        let pixels = w.multipliedReportingOverflow(by: h)
        if w > limits.maxWidth || h > limits.maxHeight || pixels.overflow || pixels.partialValue > limits.maxPixels {
            throw ImageError.limits(path: path, reason: "image is \(w)×\(h), beyond the limit of \(limits.maxWidth)×\(limits.maxHeight) and \(limits.maxPixels / 1_000_000) megapixels")
        }
        return ImageHeader(format: format, width: w, height: h, pageCount: max(1, Int(raw.pages)))
    }

    /// Decodes image bytes (`path` names the source in errors); a multi-page TIFF's first page,
    /// with `pageCount` saying how many there are.
    public static func decode(_ data: Data, path: String, limits: ImageLimits = ImageLimits()) throws -> DecodedImage {
        // Header first, so the limits are checked before any pixel memory is allocated.
        let header = try probe(data, path: path, limits: limits)
        let format = header.format
        var raw = fr_image()
        var err = [CChar](repeating: 0, count: 256)
        let message = { cMessage(err) }
        let rc = data.withUnsafeBytes { b -> Int32 in
            guard let p = b.bindMemory(to: UInt8.self).baseAddress else { return 1 }
            let m = limits.maxPixels
            switch format {
            case .png: return fr_png_decode(p, b.count, m, &raw, &err, err.count)
            case .jpeg: return fr_jpeg_decode(p, b.count, m, &raw, &err, err.count)
            case .tiff: return fr_tiff_decode(p, b.count, m, &raw, &err, err.count)
            case .webp: return fr_webp_decode(p, b.count, m, &raw, &err, err.count)
            case .bmp: return fr_bmp_decode(p, b.count, m, &raw, &err, err.count)
            case .heic: return fr_heif_decode(p, b.count, m, &raw, &err, err.count)
            }
        }
        if rc == 3 { throw ImageError.unsupported(path: path, reason: message()) }
        guard rc == 0, let px = raw.pixels else { throw ImageError.decoding(path: path, reason: message()) }
        defer { fr_free(px) }
        let c = Int(raw.channels), depth = Int(raw.depth)
        // The decoders may report the size after transformations (HEIF's rotations): take theirs,
        // within the limits already checked.
        let (w, h) = (Int(raw.width), Int(raw.height))
        guard w > 0, h > 0, w.multipliedReportingOverflow(by: h).partialValue <= limits.maxPixels, (1...4).contains(c),
              depth == 8 || depth == 16, w * h == header.width * header.height else {
            throw ImageError.decoding(path: path, reason: "decoder returned an unexpected \(w)×\(h)×\(c) image")
        }
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
        var image16: PixelImage16?
        var alpha16: [UInt16]?
        if depth == 16 {
            let s16 = UnsafeRawPointer(px).assumingMemoryBound(to: UInt16.self)
            var wide = [UInt16](repeating: 0, count: n * 3)
            var a16: [UInt16]? = (c == 2 || c == 4) ? [UInt16](repeating: 0, count: n) : nil
            for p in 0..<n {
                let base = p * c
                if c <= 2 {
                    let g = s16[base]
                    wide[p * 3] = g; wide[p * 3 + 1] = g; wide[p * 3 + 2] = g
                } else {
                    wide[p * 3] = s16[base + 2]; wide[p * 3 + 1] = s16[base + 1]; wide[p * 3 + 2] = s16[base]
                }
                if c == 2 || c == 4 { a16![p] = s16[base + c - 1] }
            }
            image16 = PixelImage16(width: w, height: h, channels: 3, pixels: wide)
            alpha16 = a16
        }
        let metadata = ImageMetadata.read(data, format: format)
        var orientation = Int(raw.orientation)
        // WebP has no orientation of its own: its EXIF chunk's tag is applied (HEIF's irot/imir
        // are applied by libheif; TIFF's own tag and JPEG's and PNG's EXIF by the decoders).
        if format == .webp, let exif = metadata.exif, let o = Exif.orientationValue(exif), (1...8).contains(o) { orientation = o }
        if orientation != 1 {
            image = image.oriented(exif: orientation)
            if let a = alpha { alpha = PixelImage(width: w, height: h, channels: 1, pixels: a).oriented(exif: orientation).pixels }
            image16 = image16?.oriented(exif: orientation)
            if let a = alpha16 { alpha16 = PixelImage16(width: w, height: h, channels: 1, pixels: a).oriented(exif: orientation).pixels }
        }
        var decoded = DecodedImage(image: image, alpha: alpha, format: format, sourceChannels: c, sourceDepth: depth, orientation: orientation)
        decoded.image16 = image16
        decoded.alpha16 = alpha16
        decoded.pageCount = max(1, Int(raw.pages))
        switch format {
        case .png, .tiff, .bmp: decoded.lossless = true
        case .jpeg, .heic: decoded.lossless = false
        case .webp: decoded.lossless = raw.lossless != 0
        }
        decoded.metadata = metadata
        return decoded
    }

    /// Encodes an 8-bit BGR (or gray) image, with an optional alpha channel (PNG only).
    /// `pngLevel`: zlib level 0–9 (libpng's adaptive filters), or nil for `cv2.imwrite`'s default
    /// (Sub filter, level 1, Z_RLE: what upstream writes, and fast); `jpegQuality`: 1–100 (4:2:0,
    /// as `cv2.imwrite`'s default).
    public static func encode(_ image: PixelImage, alpha: [UInt8]? = nil, format: ImageFormat, path: String,
                              pngLevel: Int? = nil, jpegQuality: Int = 95) throws -> Data {
        try encode(image, alpha: alpha, format: format, path: path, options: EncodeOptions(pngLevel: pngLevel, jpegQuality: jpegQuality))
    }

    /// Encodes an 8-bit BGR (or gray) image with an optional alpha channel (kept by PNG, TIFF,
    /// WebP and BMP; JPEG has none), and the options' metadata.
    public static func encode(_ image: PixelImage, alpha: [UInt8]? = nil, format: ImageFormat, path: String,
                              options: EncodeOptions) throws -> Data {
        guard image.channels == 1 || image.channels == 3 else {
            throw ImageError.encoding(path: path, reason: "\(image.channels)-channel images cannot be encoded")
        }
        let n = image.width * image.height
        let withAlpha = format != .jpeg && alpha?.count == n
        // WebP and BMP hold colour only: gray is written as RGB.
        let colour = image.channels == 3 || format == .webp || format == .bmp
        let outChannels = (colour ? 3 : 1) + (withAlpha ? 1 : 0)
        var rgb = [UInt8](repeating: 0, count: n * outChannels)
        image.pixels.withUnsafeBufferPointer { src in
            for p in 0..<n {
                let o = p * outChannels
                if image.channels == 3 {
                    rgb[o] = src[p * 3 + 2]; rgb[o + 1] = src[p * 3 + 1]; rgb[o + 2] = src[p * 3]
                } else if colour {
                    rgb[o] = src[p]; rgb[o + 1] = src[p]; rgb[o + 2] = src[p]
                } else {
                    rgb[o] = src[p]
                }
                if withAlpha { rgb[o + outChannels - 1] = alpha![p] }
            }
        }
        return try rgb.withUnsafeBytes { b in
            try encodeSamples(b, width: image.width, height: image.height, channels: outChannels, depth: 8, format: format, path: path,
                              options: options)
        }
    }

    /// Encodes 16-bit samples (BGR or gray, as `PixelImage16`) with an optional 16-bit alpha.
    /// PNG and TIFF keep all 16 bits; the other formats get the high bytes (as `encode` would).
    public static func encode16(_ image: PixelImage16, alpha: [UInt16]? = nil, format: ImageFormat, path: String,
                                options: EncodeOptions = EncodeOptions()) throws -> Data {
        guard format.holds16Bit else {
            return try encode(image.reducedTo8Bit, alpha: alpha?.map { UInt8(truncatingIfNeeded: $0 >> 8) }, format: format, path: path,
                              options: options)
        }
        guard image.channels == 1 || image.channels == 3 else {
            throw ImageError.encoding(path: path, reason: "\(image.channels)-channel images cannot be encoded")
        }
        let n = image.width * image.height
        let withAlpha = alpha?.count == n
        let outChannels = image.channels + (withAlpha ? 1 : 0)
        var rgb = [UInt16](repeating: 0, count: n * outChannels)
        for p in 0..<n {
            let o = p * outChannels
            if image.channels == 3 {
                rgb[o] = image.pixels[p * 3 + 2]; rgb[o + 1] = image.pixels[p * 3 + 1]; rgb[o + 2] = image.pixels[p * 3]
            } else {
                rgb[o] = image.pixels[p]
            }
            if withAlpha { rgb[o + outChannels - 1] = alpha![p] }
        }
        return try rgb.withUnsafeBytes { b in
            try encodeSamples(b, width: image.width, height: image.height, channels: outChannels, depth: 16, format: format, path: path,
                              options: options)
        }
    }

    /// Interleaved RGB-order samples to `format`, with the options' metadata.
    static func encodeSamples(_ samples: UnsafeRawBufferPointer, width: Int, height: Int, channels: Int, depth: Int, format: ImageFormat,
                              path: String, options: EncodeOptions) throws -> Data {
        guard width > 0, height > 0, width <= Int(Int32.max), height <= Int(Int32.max) else {
            throw ImageError.encoding(path: path, reason: "cannot encode an empty or oversized \(width)×\(height) image")
        }
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var err = [CChar](repeating: 0, count: 256)
        let meta = options.metadata
        let p = samples.bindMemory(to: UInt8.self).baseAddress
        let (w, h, c) = (Int32(width), Int32(height), Int32(channels))
        let rc: Int32
        switch format {
        case .png:
            rc = fr_png_encode(p, w, h, c, Int32(depth), Int32(options.pngLevel.map { min(max($0, 0), 9) } ?? -1), &out, &size, &err, err.count)
        case .jpeg:
            rc = fr_jpeg_encode(p, w, h, c, Int32(min(max(options.jpegQuality, 1), 100)), 420, &out, &size, &err, err.count)
        case .tiff:
            rc = withCMetadata(meta, forTIFF: true) { m in
                fr_tiff_encode(p, w, h, c, Int32(depth), options.tiffCompression.rawValue, m, &out, &size, &err, err.count)
            }
        case .webp:
            let q = options.webpQuality.map { Int32(min(max($0, 0), 100)) } ?? -1
            rc = withCMetadata(meta, forTIFF: false) { m in fr_webp_encode(p, w, h, c, q, m, &out, &size, &err, err.count) }
        case .bmp:
            let dpi = Int32(min(max(meta?.dpiX ?? 0, 0), 100_000).rounded())
            rc = fr_bmp_encode(p, w, h, c, dpi, &out, &size, &err, err.count)
        case .heic:
            throw ImageError.unsupported(path: path, reason: "FaceRestore reads HEIF files but does not write them (write JPEG, PNG or TIFF)")
        }
        guard rc == 0, let out else { throw ImageError.encoding(path: path, reason: cMessage(err)) }
        defer { fr_free(out) }
        let bytes = Array(UnsafeBufferPointer(start: out, count: size))
        switch (format, meta) {
        case (.jpeg, let m?): return Data(m.embedded(inJPEG: bytes))
        case (.png, let m?): return Data(m.embedded(inPNG: bytes))
        default: return Data(bytes)
        }
    }

    /// `metadata` as the C layer's struct (pointers valid inside `body`). For TIFF, EXIF's IFD0
    /// text tags become TIFF tags.
    static func withCMetadata(_ metadata: ImageMetadata?, forTIFF: Bool, _ body: (UnsafePointer<fr_metadata>?) -> Int32) -> Int32 {
        guard let metadata else { return body(nil) }
        let strings = forTIFF ? metadata.exif.map(Exif.strings) ?? [] : []
        let texts = strings.prefix(8).map { strdup($0.1) }
        defer { for t in texts { free(t) } }
        var exif = metadata.exif ?? [], icc = metadata.icc ?? [], xmp = metadata.xmp ?? [], iptc = metadata.iptc ?? []
        return exif.withUnsafeMutableBufferPointer { e in
            icc.withUnsafeMutableBufferPointer { i in
                xmp.withUnsafeMutableBufferPointer { x in
                    iptc.withUnsafeMutableBufferPointer { t in
                        var m = fr_metadata()
                        m.exif = e.baseAddress; m.exif_size = e.count
                        m.icc = i.baseAddress; m.icc_size = i.count
                        m.xmp = x.baseAddress; m.xmp_size = x.count
                        m.iptc = t.baseAddress; m.iptc_size = t.count
                        m.dpi_x = metadata.dpiX ?? 0
                        m.dpi_y = metadata.dpiY ?? 0
                        m.text_count = Int32(texts.count)
                        withUnsafeMutableBytes(of: &m.text_tags) { tags in
                            let tp = tags.bindMemory(to: Int32.self)
                            for (k, s) in strings.prefix(8).enumerated() { tp[k] = Int32(s.0) }
                        }
                        withUnsafeMutableBytes(of: &m.text) { ptrs in
                            let pp = ptrs.bindMemory(to: UnsafeMutablePointer<CChar>?.self)
                            for k in texts.indices { pp[k] = texts[k] }
                        }
                        return body(&m)
                    }
                }
            }
        }
    }

    /// Writes several images (each as `write(_:alpha:to:)` does, atomically) on up to `threads`
    /// threads, each taking the next file in order; every file is attempted, and the first error
    /// (in list order) is thrown after all are done.
    public static func write(_ files: [(image: PixelImage, alpha: [UInt8]?, path: String)], threads: Int) throws {
        try write(files.map { ImageOutput(image: $0.image, alpha: $0.alpha, path: $0.path) }, threads: threads)
    }

    /// Writes several images (each as `write(_:to:)` does, atomically) on up to `threads` threads;
    /// every file is attempted, and the first error (in list order) is thrown after all are done.
    public static func write(_ files: [ImageOutput], threads: Int) throws {
        let workers = max(1, min(threads, files.count))
        if workers == 1 {
            for f in files { try write(f) }
            return
        }
        let next = Mutex(0)
        let errors = Mutex([Int: any Error]())
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let k = next.withLock { n -> Int in defer { n += 1 }; return n }
                guard k < files.count else { return }
                do { try write(files[k]) } catch { errors.withLock { $0[k] = error } }
            }
        }
        if let first = errors.withLock({ $0.min { $0.key < $1.key }?.value }) { throw first }
    }

    /// Encodes and writes atomically; the format comes from the file extension.
    public static func write(_ image: PixelImage, alpha: [UInt8]? = nil, to path: String, jpegQuality: Int = 95) throws {
        try write(ImageOutput(image: image, alpha: alpha, path: path, options: EncodeOptions(jpegQuality: jpegQuality)))
    }

    /// Encodes (16-bit samples where the format holds them) and writes atomically; the format
    /// comes from the file extension.
    public static func write(_ output: ImageOutput) throws {
        let path = output.path
        let ext = URL(fileURLWithPath: path).pathExtension
        guard let format = ImageFormat(extension: ext), format.isWritable else {
            throw ImageError.encoding(path: path, reason: "unknown output extension '.\(ext)' (use .png, .jpg, .tif, .webp or .bmp)")
        }
        let data: Data
        if let wide = output.image16, format.holds16Bit {
            data = try encode16(wide, alpha: output.alpha16, format: format, path: path, options: output.options)
        } else {
            data = try encode(output.image, alpha: output.alpha, format: format, path: path, options: output.options)
        }
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
        let (w, h, px) = orientedSamples(pixels, width: width, height: height, channels: channels, orientation: orientation)
        return PixelImage(width: w, height: h, channels: channels, pixels: px)
    }
}

/// A NUL-terminated C message buffer as a String.
func cMessage(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
