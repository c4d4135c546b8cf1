// TIFF pages read band by band and written row by row, for scans too large to hold whole: the
// reader decodes one strip or tile row at a time from the file (libtiff through a file
// descriptor, no mapping), the writer encodes rows as they come into a temporary file that is
// renamed into place when complete. Samples come out as `ImageIO.decode` gives them (BGR, 8-bit
// by dropping the low byte, 16-bit kept) and go in as `ImageIO.encode16` writes them, so a
// streamed restore and an in-memory one give the same bytes.

import CImageCodecs
import FaceRestoreEngine
import Foundation

/// A TIFF's first page, read in bands of rows from the top. Not shared between threads.
public final class TIFFBandReader {
    public let path: String
    public let width: Int
    public let height: Int
    /// The file's channels (1 gray, 2 gray + alpha, 3 RGB, 4 RGBA).
    public let channels: Int
    /// 8 or 16.
    public let depth: Int
    public let orientation: Int
    public let pages: Int
    /// Rows of one strip or tile row: reads of whole blocks decode each block once.
    public let blockRows: Int
    private let handle: OpaquePointer

    /// Opens `path` for band reads; nil when the file cannot be streamed (YCbCr without JPEG, or
    /// a block row over `maxBlockBytes` once decoded): read it whole instead. Throws for what is
    /// not a readable TIFF, or one over `limits`.
    public init?(path: String, limits: ImageLimits, maxBlockBytes: Int = 64 << 20) throws {
        var info = fr_image()
        var rc: Int32 = 0
        var err = [CChar](repeating: 0, count: 256)
        let h = fr_tiff_stream_open(path, limits.maxPixels, maxBlockBytes, &info, &rc, &err, err.count)
        guard let h else {
            switch rc {
            case 4: return nil
            case 3: throw ImageError.unsupported(path: path, reason: cMessage(err))
            case 2: throw ImageError.limits(path: path, reason: cMessage(err))
            default: throw ImageError.decoding(path: path, reason: cMessage(err))
            }
        }
        let (w, hh) = (Int(info.width), Int(info.height))
        guard w <= limits.maxWidth, hh <= limits.maxHeight else {
            fr_tiff_stream_close(h)
            throw ImageError.limits(path: path, reason: "\(w)×\(hh) exceeds the \(limits.maxWidth)×\(limits.maxHeight) limit")
        }
        handle = h
        self.path = path
        (width, height, channels, depth) = (w, hh, Int(info.channels), Int(info.depth))
        (orientation, pages, blockRows) = (Int(info.orientation), max(1, Int(info.pages)), max(1, Int(info.block_rows)))
    }

    deinit { fr_tiff_stream_close(handle) }

    /// Rows `y ..< y + count` as BGR 8-bit (gray replicated, 16-bit samples reduced by dropping
    /// the low byte) and, for a 16-bit file, the 16-bit BGR samples.
    public func read(y: Int, count: Int) throws -> (image: PixelImage, image16: PixelImage16?) {
        guard y >= 0, count > 0, y <= height - count else {
            throw ImageError.decoding(path: path, reason: "rows \(y)..<\(y + count) are outside the image")
        }
        let c = channels, bytes = depth / 8
        let n = width * count
        var raw = [UInt8](repeating: 0, count: n * c * bytes)
        var err = [CChar](repeating: 0, count: 256)
        let rc = raw.withUnsafeMutableBytes { b in
            fr_tiff_stream_read(handle, UInt32(y), UInt32(count), b.bindMemory(to: UInt8.self).baseAddress, b.count, &err, err.count)
        }
        guard rc == 0 else { throw ImageError.decoding(path: path, reason: cMessage(err)) }
        var bgr = [UInt8](repeating: 0, count: n * 3)
        var wide: [UInt16]? = depth == 16 ? [UInt16](repeating: 0, count: n * 3) : nil
        raw.withUnsafeBytes { b in
            if depth == 16 {
                let s = b.bindMemory(to: UInt16.self)
                for p in 0..<n {
                    let base = p * c
                    let (r, g, bl) = c <= 2 ? (s[base], s[base], s[base]) : (s[base], s[base + 1], s[base + 2])
                    wide![p * 3] = bl; wide![p * 3 + 1] = g; wide![p * 3 + 2] = r
                    bgr[p * 3] = UInt8(truncatingIfNeeded: bl >> 8)
                    bgr[p * 3 + 1] = UInt8(truncatingIfNeeded: g >> 8)
                    bgr[p * 3 + 2] = UInt8(truncatingIfNeeded: r >> 8)
                }
            } else {
                let s = b.bindMemory(to: UInt8.self)
                for p in 0..<n {
                    let base = p * c
                    if c <= 2 {
                        bgr[p * 3] = s[base]; bgr[p * 3 + 1] = s[base]; bgr[p * 3 + 2] = s[base]
                    } else {
                        bgr[p * 3] = s[base + 2]; bgr[p * 3 + 1] = s[base + 1]; bgr[p * 3 + 2] = s[base]
                    }
                }
            }
        }
        return (PixelImage(width: width, height: count, channels: 3, pixels: bgr),
                wide.map { PixelImage16(width: width, height: count, channels: 3, pixels: $0) })
    }
}

/// A TIFF written row by row (RGB from BGR rows, 8 or 16 bits) into a temporary file beside
/// `path`, renamed into place by `finish()`; dropped unfinished, the temporary file is removed.
/// The tags are those `ImageIO.encode16` writes.
public final class TIFFRowWriter {
    public let path: String
    public let width: Int, height: Int, depth: Int
    private var handle: OpaquePointer?
    private let temporary: String
    public private(set) var rowsWritten = 0

    public init(path: String, width: Int, height: Int, depth: Int, options: EncodeOptions = EncodeOptions()) throws {
        guard width > 0, height > 0, width <= Int(Int32.max), height <= Int(Int32.max), depth == 8 || depth == 16 else {
            throw ImageError.encoding(path: path, reason: "cannot encode an empty or oversized \(width)×\(height) image")
        }
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(temporaryFileHostTag)-\(getpid())-\(UUID().uuidString.prefix(8))").path
        self.temporary = temporary
        var err = [CChar](repeating: 0, count: 256)
        var opened: OpaquePointer?
        _ = ImageIO.withCMetadata(options.metadata, forTIFF: true) { m in
            opened = fr_tiff_writer_open(temporary, Int32(width), Int32(height), 3, Int32(depth), options.tiffCompression.rawValue, m,
                                         &err, err.count)
            return 0
        }
        guard let opened else { throw ImageError.io(path: path, reason: "cannot write: \(cMessage(err))") }
        handle = opened
        self.path = path
        (self.width, self.height, self.depth) = (width, height, depth)
    }

    deinit {
        if let handle {
            fr_tiff_writer_abort(handle)
            unlink(temporary)
        }
    }

    /// The next rows, 8-bit BGR.
    public func write(_ band: PixelImage) throws {
        try put(band.pixels, width: band.width, height: band.height, channels: band.channels, depth: 8)
    }

    /// The next rows, 16-bit BGR.
    public func write(_ band: PixelImage16) throws {
        try put(band.pixels, width: band.width, height: band.height, channels: band.channels, depth: 16)
    }

    /// BGR rows of `depth` bits, swapped to RGB and encoded.
    private func put<T>(_ bgr: [T], width w: Int, height rows: Int, channels: Int, depth d: Int) throws {
        guard depth == d, w == width, channels == 3, bgr.count == w * rows * 3 else {
            throw ImageError.encoding(path: path, reason: "a \(w)-wide \(d)-bit band does not fit the \(width)-wide \(depth)-bit image")
        }
        guard let handle else { throw ImageError.encoding(path: path, reason: "the writer is finished") }
        var rgb = bgr
        for i in stride(from: 0, to: rgb.count, by: 3) { rgb.swapAt(i, i + 2) }
        var err = [CChar](repeating: 0, count: 256)
        let rc = rgb.withUnsafeBytes { fr_tiff_writer_rows(handle, $0.bindMemory(to: UInt8.self).baseAddress, Int32(rows), &err, err.count) }
        guard rc == 0 else { throw ImageError.encoding(path: path, reason: cMessage(err)) }
        rowsWritten += rows
    }

    /// Completes the file (directory written, flushed to disk) and renames it into place.
    public func finish() throws {
        guard let h = handle else { return }
        handle = nil
        var err = [CChar](repeating: 0, count: 256)
        guard fr_tiff_writer_finish(h, &err, err.count) == 0 else {
            unlink(temporary)
            throw ImageError.encoding(path: path, reason: cMessage(err))
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw ImageError.io(path: path, reason: "cannot rename into place: \(reason)")
        }
    }
}
