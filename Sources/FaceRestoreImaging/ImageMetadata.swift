// Photo metadata carried from an input to its restored image: EXIF, the ICC profile, XMP, IPTC and
// the resolution, as raw blocks. Where each lives:
//   - JPEG: APP1 "Exif\0\0", APP1 XMP, APP2 ICC_PROFILE chunks, APP13 Photoshop IRB (resource
//     0x0404 holds IPTC), JFIF density;
//   - PNG: eXIf, iCCP (zlib), iTXt "XML:com.adobe.xmp", pHYs, zTXt/tEXt "Raw profile type iptc"
//     (ImageMagick's hex form);
//   - TIFF: tags 34675 (ICC), 700 (XMP), 33723 (IPTC), 282/283/296 (resolution); of EXIF, the
//     first page's text tags (ImageDescription, Make, Model, DateTime, Artist, Copyright) are
//     carried both ways; the EXIF sub-IFD (34665: exposure, lens, GPS) is neither read from nor
//     written to TIFF files;
//   - WebP: ICCP, EXIF, XMP chunks; HEIF: Exif and XMP items, the ICC colour profile (read only:
//     HEIF inputs are written as JPEG); BMP: the resolution only.
// Every parser here is bounded: offsets and lengths are checked against the bytes they index.

import CImageCodecs
import Foundation

/// Metadata blocks as stored (`exif` is a TIFF structure without JPEG's "Exif\0\0").
public struct ImageMetadata: Sendable, Equatable {
    public var exif: [UInt8]?
    public var icc: [UInt8]?
    public var xmp: [UInt8]?
    /// IPTC-IIM records.
    public var iptc: [UInt8]?
    /// Dots per inch, when the file says.
    public var dpiX: Double?
    public var dpiY: Double?

    public init(exif: [UInt8]? = nil, icc: [UInt8]? = nil, xmp: [UInt8]? = nil, iptc: [UInt8]? = nil,
                dpiX: Double? = nil, dpiY: Double? = nil) {
        self.exif = exif
        self.icc = icc
        self.xmp = xmp
        self.iptc = iptc
        self.dpiX = dpiX
        self.dpiY = dpiY
    }

    public var isEmpty: Bool { exif == nil && icc == nil && xmp == nil && iptc == nil && dpiX == nil }

    /// The metadata for a restored image: the EXIF orientation set to 1 (the pixels are upright
    /// after reading) and the Software tag set to `software` (EXIF is created when there was
    /// none). `strip` keeps only the Software tag.
    public func forOutput(software: String, strip: Bool = false) -> ImageMetadata {
        if strip { return ImageMetadata(exif: Exif.minimal(strings: [(Exif.software, software)])) }
        var out = self
        if let exif, let fixed = Exif.normalized(exif, software: software) {
            out.exif = fixed
        } else {
            // Unreadable EXIF is dropped: its orientation could not be reset.
            out.exif = Exif.minimal(strings: [(Exif.software, software)])
        }
        return out
    }

    /// Reads the metadata of encoded bytes; nothing (not an error) where the blocks are damaged.
    public static func read(_ data: Data, format: ImageFormat) -> ImageMetadata {
        switch format {
        case .jpeg: return readJPEG([UInt8](data))
        case .png: return readPNG([UInt8](data))
        case .bmp: return readBMP([UInt8](data))
        case .tiff, .webp, .heic:
            var m = fr_metadata()
            var err = [CChar](repeating: 0, count: 256)
            let rc = data.withUnsafeBytes { b -> Int32 in
                guard let p = b.bindMemory(to: UInt8.self).baseAddress else { return 1 }
                switch format {
                case .tiff: return fr_tiff_metadata(p, b.count, &m, &err, err.count)
                case .webp: return fr_webp_metadata(p, b.count, &m, &err, err.count)
                default: return fr_heif_metadata(p, b.count, &m, &err, err.count)
                }
            }
            defer { fr_metadata_free(&m) }
            guard rc == 0 else { return ImageMetadata() }
            return ImageMetadata(c: m)
        }
    }

    init(c m: fr_metadata) {
        func bytes(_ p: UnsafeMutablePointer<UInt8>?, _ n: Int) -> [UInt8]? {
            guard let p, n > 0 else { return nil }
            return Array(UnsafeBufferPointer(start: p, count: n))
        }
        self.init(exif: bytes(m.exif, m.exif_size), icc: bytes(m.icc, m.icc_size), xmp: bytes(m.xmp, m.xmp_size),
                  iptc: bytes(m.iptc, m.iptc_size), dpiX: m.dpi_x > 0 ? m.dpi_x : nil, dpiY: m.dpi_y > 0 ? m.dpi_y : nil)
        // TIFF text tags become a minimal EXIF, the form the other formats carry them in.
        var strings: [(UInt16, String)] = []
        withUnsafeBytes(of: m.text_tags) { tags in
            withUnsafeBytes(of: m.text) { texts in
                let t = tags.bindMemory(to: Int32.self), s = texts.bindMemory(to: UnsafeMutablePointer<CChar>?.self)
                for i in 0..<min(Int(m.text_count), 8) {
                    if let p = s[i] { strings.append((UInt16(truncatingIfNeeded: t[i]), String(cString: p))) }
                }
            }
        }
        if exif == nil, !strings.isEmpty { exif = Exif.minimal(strings: strings) }
    }

    // MARK: JPEG

    static func readJPEG(_ d: [UInt8]) -> ImageMetadata {
        var m = ImageMetadata()
        guard d.count >= 4, d[0] == 0xFF, d[1] == 0xD8 else { return m }
        var iccChunks: [Int: [UInt8]] = [:]
        var iccCount = 0
        var i = 2
        while i + 4 <= d.count {
            guard d[i] == 0xFF else { break }
            let marker = d[i + 1]
            if marker == 0xFF { i += 1; continue }
            if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) { i += 2; continue }
            if marker == 0xDA || marker == 0xD9 { break }
            let len = Int(d[i + 2]) << 8 | Int(d[i + 3])
            guard len >= 2, i + 2 + len <= d.count else { break }
            let seg = (0xE0...0xED).contains(marker) ? Array(d[(i + 4)..<(i + 2 + len)]) : []
            switch marker {
            case 0xE0 where seg.starts(with: Array("JFIF\0".utf8)) && seg.count >= 12:
                let units = seg[7], x = Double(Int(seg[8]) << 8 | Int(seg[9])), y = Double(Int(seg[10]) << 8 | Int(seg[11]))
                if units == 1 || units == 2, x > 0, y > 0, m.dpiX == nil {
                    let k = units == 2 ? 2.54 : 1
                    m.dpiX = x * k; m.dpiY = y * k
                }
            case 0xE1 where seg.starts(with: Array("Exif\0\0".utf8)) && m.exif == nil:
                m.exif = Array(seg[6...])
            case 0xE1 where seg.starts(with: xmpSignature) && m.xmp == nil:
                m.xmp = Array(seg[xmpSignature.count...])
            case 0xE2 where seg.starts(with: iccSignature) && seg.count >= 14:
                let seq = Int(seg[12]), count = Int(seg[13])
                if seq >= 1, count >= 1, seq <= count, iccCount == 0 || iccCount == count {
                    iccCount = count
                    iccChunks[seq] = Array(seg[14...])
                }
            case 0xED where seg.starts(with: photoshopSignature) && m.iptc == nil:
                m.iptc = iptcFromIRB(Array(seg[photoshopSignature.count...]))
            default: break
            }
            i += 2 + len
        }
        if iccCount > 0, iccChunks.count == iccCount {
            m.icc = (1...iccCount).flatMap { iccChunks[$0] ?? [] }
        }
        return m
    }

    static let xmpSignature = Array("http://ns.adobe.com/xap/1.0/\0".utf8)
    static let iccSignature = Array("ICC_PROFILE\0".utf8)
    static let photoshopSignature = Array("Photoshop 3.0\0".utf8)

    /// Resource 0x0404 (IPTC-IIM) of a Photoshop image-resource block list.
    static func iptcFromIRB(_ d: [UInt8]) -> [UInt8]? {
        var i = 0
        while i + 12 <= d.count, d[i..<(i + 4)].elementsEqual(Array("8BIM".utf8)) {
            let id = Int(d[i + 4]) << 8 | Int(d[i + 5])
            let nameLen = Int(d[i + 6])
            var j = i + 6 + 1 + nameLen
            if (1 + nameLen) % 2 == 1 { j += 1 }
            guard j + 4 <= d.count else { return nil }
            let size = Int(d[j]) << 24 | Int(d[j + 1]) << 16 | Int(d[j + 2]) << 8 | Int(d[j + 3])
            j += 4
            guard size <= d.count - j else { return nil }
            if id == 0x0404 { return size > 0 ? Array(d[j..<(j + size)]) : nil }
            i = j + size + (size % 2)
        }
        return nil
    }

    /// `jpeg` (as TurboJPEG writes it: SOI, JFIF APP0, …) with this metadata's segments after the
    /// JFIF segment and the JFIF density set. A block too large for its segments is left out
    /// (EXIF over 64 KB; XMP over 64 KB, JPEG's extended XMP is not written).
    func embedded(inJPEG jpeg: [UInt8]) -> [UInt8] {
        guard jpeg.count >= 4, jpeg[0] == 0xFF, jpeg[1] == 0xD8 else { return jpeg }
        var d = jpeg
        var insertAt = 2
        if d.count >= 20, d[2] == 0xFF, d[3] == 0xE0, d[6..<11].elementsEqual(Array("JFIF\0".utf8)) {
            let len = Int(d[4]) << 8 | Int(d[5])
            if let dpiX, let dpiY, dpiX >= 1, dpiY >= 1, dpiX < 65536, dpiY < 65536 {
                d[13] = 1
                let x = Int(dpiX.rounded()), y = Int(dpiY.rounded())
                d[14] = UInt8(x >> 8); d[15] = UInt8(x & 0xFF); d[16] = UInt8(y >> 8); d[17] = UInt8(y & 0xFF)
            }
            insertAt = 2 + 2 + len
        }
        var segments: [UInt8] = []
        func segment(_ marker: UInt8, _ body: [UInt8]) {
            let len = body.count + 2
            segments += [0xFF, marker, UInt8(len >> 8), UInt8(len & 0xFF)] + body
        }
        if let exif, exif.count + 6 + 2 <= 65535 { segment(0xE1, Array("Exif\0\0".utf8) + exif) }
        if let xmp, xmp.count + Self.xmpSignature.count + 2 <= 65535 { segment(0xE1, Self.xmpSignature + xmp) }
        if let icc, !icc.isEmpty {
            let chunk = 65535 - 2 - 14
            let count = (icc.count + chunk - 1) / chunk
            if count <= 255 {
                for k in 0..<count {
                    let part = icc[(k * chunk)..<min(icc.count, (k + 1) * chunk)]
                    segment(0xE2, Self.iccSignature + [UInt8(k + 1), UInt8(count)] + part)
                }
            }
        }
        if let iptc, !iptc.isEmpty {
            var irb = Array("8BIM".utf8) + [0x04, 0x04, 0, 0]
            irb += [UInt8(iptc.count >> 24 & 0xFF), UInt8(iptc.count >> 16 & 0xFF), UInt8(iptc.count >> 8 & 0xFF), UInt8(iptc.count & 0xFF)]
            irb += iptc
            if iptc.count % 2 == 1 { irb.append(0) }
            if irb.count + Self.photoshopSignature.count + 2 <= 65535 { segment(0xED, Self.photoshopSignature + irb) }
        }
        guard insertAt <= d.count else { return d }
        d.insert(contentsOf: segments, at: insertAt)
        return d
    }

    // MARK: PNG

    static func readPNG(_ d: [UInt8]) -> ImageMetadata {
        var m = ImageMetadata()
        var i = 8
        while i + 12 <= d.count {
            let len = Int(d[i]) << 24 | Int(d[i + 1]) << 16 | Int(d[i + 2]) << 8 | Int(d[i + 3])
            guard len <= d.count - i - 12 else { break }
            let type = String(decoding: d[(i + 4)..<(i + 8)], as: UTF8.self)
            // Only the metadata chunks are copied (not the image data).
            let wanted: Set<String> = ["eXIf", "iCCP", "pHYs", "iTXt", "zTXt", "tEXt"]
            let body = wanted.contains(type) ? Array(d[(i + 8)..<(i + 8 + len)]) : []
            switch type {
            case "eXIf" where m.exif == nil: m.exif = body.starts(with: Array("Exif\0\0".utf8)) ? Array(body[6...]) : body
            case "iCCP" where m.icc == nil:
                if let nul = body.firstIndex(of: 0), nul + 2 <= body.count, body[nul + 1] == 0 {
                    m.icc = inflate(Array(body[(nul + 2)...]))
                }
            case "pHYs" where body.count == 9 && body[8] == 1:
                let x = Double(Int(body[0]) << 24 | Int(body[1]) << 16 | Int(body[2]) << 8 | Int(body[3]))
                let y = Double(Int(body[4]) << 24 | Int(body[5]) << 16 | Int(body[6]) << 8 | Int(body[7]))
                if x > 0, y > 0 { m.dpiX = x * 0.0254; m.dpiY = y * 0.0254 }
            case "iTXt", "zTXt", "tEXt":
                guard let (keyword, text) = pngText(type, body) else { break }
                if keyword == "XML:com.adobe.xmp", m.xmp == nil { m.xmp = text }
                if keyword == "Raw profile type iptc", m.iptc == nil { m.iptc = rawProfile(text) }
            case "IEND": return m
            default: break
            }
            i += 12 + len
        }
        return m
    }

    /// A PNG text chunk's keyword and (decompressed) text.
    static func pngText(_ type: String, _ body: [UInt8]) -> (String, [UInt8])? {
        guard let nul = body.firstIndex(of: 0), nul <= 79 else { return nil }
        let keyword = String(decoding: body[..<nul], as: UTF8.self)
        switch type {
        case "tEXt": return (keyword, Array(body[(nul + 1)...]))
        case "zTXt":
            guard nul + 2 <= body.count, body[nul + 1] == 0, let text = inflate(Array(body[(nul + 2)...])) else { return nil }
            return (keyword, text)
        default:   // iTXt: flag, method, language\0, translated keyword\0, text
            guard nul + 3 <= body.count else { return nil }
            let compressed = body[nul + 1] == 1
            var j = nul + 3
            for _ in 0..<2 {
                guard let z = body[j...].firstIndex(of: 0) else { return nil }
                j = z + 1
            }
            let text = Array(body[j...])
            if compressed { return inflate(text).map { (keyword, $0) } }
            return (keyword, text)
        }
    }

    /// ImageMagick's "Raw profile" text: "\n<name>\n<length>\n<hex digits…>".
    static func rawProfile(_ text: [UInt8]) -> [UInt8]? {
        var lines = text.split(separator: 0x0A, maxSplits: 3, omittingEmptySubsequences: true)
        guard lines.count >= 3 else { return nil }
        let lengthText = String(decoding: lines[1], as: UTF8.self).trimmingCharacters(in: .whitespaces)
        guard let length = Int(lengthText), length > 0, length <= 1 << 24 else { return nil }
        lines.removeFirst(2)
        var out: [UInt8] = []
        out.reserveCapacity(length)
        var high: UInt8?
        for c in lines.joined() {
            let v: UInt8
            switch c {
            case 0x30...0x39: v = c - 0x30
            case 0x61...0x66: v = c - 0x61 + 10
            case 0x41...0x46: v = c - 0x41 + 10
            default: continue
            }
            if let h = high { out.append(h << 4 | v); high = nil; if out.count == length { break } } else { high = v }
        }
        return out.count == length ? out : nil
    }

    static func inflate(_ data: [UInt8]) -> [UInt8]? {
        var out: UnsafeMutablePointer<UInt8>?
        var n = 0
        let rc = data.withUnsafeBufferPointer { fr_inflate($0.baseAddress, $0.count, 1 << 24, &out, &n) }
        guard rc == 0, let out else { return nil }
        defer { fr_free(out) }
        return Array(UnsafeBufferPointer(start: out, count: n))
    }

    static func deflate(_ data: [UInt8]) -> [UInt8]? {
        var out: UnsafeMutablePointer<UInt8>?
        var n = 0
        let rc = data.withUnsafeBufferPointer { fr_deflate($0.baseAddress, $0.count, &out, &n) }
        guard rc == 0, let out else { return nil }
        defer { fr_free(out) }
        return Array(UnsafeBufferPointer(start: out, count: n))
    }

    static func pngChunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
        let t = Array(type.utf8)
        let n = body.count
        let crc = (t + body).withUnsafeBufferPointer { fr_zlib_crc32(0, $0.baseAddress, $0.count) }
        return [UInt8(n >> 24 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] + t + body
            + [UInt8(crc >> 24 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
    }

    /// `png` with this metadata's chunks after IHDR.
    func embedded(inPNG png: [UInt8]) -> [UInt8] {
        guard png.count >= 33 else { return png }
        var chunks: [UInt8] = []
        if let icc, let z = Self.deflate(icc) { chunks += Self.pngChunk("iCCP", Array("ICC Profile".utf8) + [0, 0] + z) }
        if let dpiX, let dpiY, dpiX > 0, dpiY > 0 {
            let x = Int((dpiX / 0.0254).rounded()), y = Int((dpiY / 0.0254).rounded())
            if x < Int(UInt32.max), y < Int(UInt32.max) {
                chunks += Self.pngChunk("pHYs", [UInt8(x >> 24 & 0xFF), UInt8(x >> 16 & 0xFF), UInt8(x >> 8 & 0xFF), UInt8(x & 0xFF),
                                                 UInt8(y >> 24 & 0xFF), UInt8(y >> 16 & 0xFF), UInt8(y >> 8 & 0xFF), UInt8(y & 0xFF), 1])
            }
        }
        if let exif { chunks += Self.pngChunk("eXIf", exif) }
        if let xmp { chunks += Self.pngChunk("iTXt", Array("XML:com.adobe.xmp".utf8) + [0, 0, 0, 0, 0] + xmp) }
        if let iptc {
            var text = Array("\niptc\n".utf8) + Array(String(format: "%8d\n", iptc.count).utf8)
            let hex = Array("0123456789abcdef".utf8)
            for (k, b) in iptc.enumerated() {
                text += [hex[Int(b >> 4)], hex[Int(b & 15)]]
                if k % 36 == 35 { text.append(0x0A) }
            }
            text.append(0x0A)
            if let z = Self.deflate(text) { chunks += Self.pngChunk("zTXt", Array("Raw profile type iptc".utf8) + [0, 0] + z) }
        }
        var d = png
        d.insert(contentsOf: chunks, at: 33)   // signature (8) + IHDR (4 + 4 + 13 + 4)
        return d
    }

    // MARK: BMP

    static func readBMP(_ d: [UInt8]) -> ImageMetadata {
        guard d.count >= 54, d[0] == 0x42, d[1] == 0x4D else { return ImageMetadata() }
        let header = Int(d[14]) | Int(d[15]) << 8 | Int(d[16]) << 16 | Int(d[17]) << 24
        guard header >= 40 else { return ImageMetadata() }
        let x = Double(Int(d[38]) | Int(d[39]) << 8 | Int(d[40]) << 16 | Int(d[41]) << 24)
        let y = Double(Int(d[42]) | Int(d[43]) << 8 | Int(d[44]) << 16 | Int(d[45]) << 24)
        guard x > 0, y > 0, x < 1e7, y < 1e7 else { return ImageMetadata() }
        return ImageMetadata(dpiX: x * 0.0254, dpiY: y * 0.0254)
    }
}

/// TIFF-structured EXIF blobs: reading IFD0's text tags, resetting the orientation, setting the
/// Software tag. Both byte orders; every offset is checked.
public enum Exif {
    public static let orientation: UInt16 = 0x0112
    public static let software: UInt16 = 0x0131
    /// IFD0 text tags that TIFF files carry as their own tags.
    public static let textTags: [UInt16] = [0x010E, 0x010F, 0x0110, 0x0132, 0x013B, 0x8298, 0x0131]

    struct Entry {
        var tag: UInt16
        var raw: [UInt8]   // the 12 bytes, in the blob's byte order
    }

    struct Reader {
        let d: [UInt8]
        let little: Bool
        init?(_ d: [UInt8]) {
            guard d.count >= 8 else { return nil }
            if d[0] == 0x49, d[1] == 0x49, d[2] == 42, d[3] == 0 { little = true }
            else if d[0] == 0x4D, d[1] == 0x4D, d[2] == 0, d[3] == 42 { little = false }
            else { return nil }
            self.d = d
        }
        func u16(_ i: Int) -> Int? {
            guard i >= 0, i + 2 <= d.count else { return nil }
            return little ? Int(d[i]) | Int(d[i + 1]) << 8 : Int(d[i]) << 8 | Int(d[i + 1])
        }
        func u32(_ i: Int) -> Int? {
            guard i >= 0, i + 4 <= d.count else { return nil }
            let b = (Int(d[i]), Int(d[i + 1]), Int(d[i + 2]), Int(d[i + 3]))
            return little ? b.0 | b.1 << 8 | b.2 << 16 | b.3 << 24 : b.0 << 24 | b.1 << 16 | b.2 << 8 | b.3
        }
        var ifd0: Int? { u32(4) }
        /// IFD0's entries and its next-IFD offset.
        func entries() -> ([Entry], Int)? {
            guard let at = ifd0, let n = u16(at), n <= 4096, at + 2 + n * 12 + 4 <= d.count, let next = u32(at + 2 + n * 12) else { return nil }
            var out: [Entry] = []
            for k in 0..<n {
                let e = at + 2 + k * 12
                guard let tag = u16(e) else { return nil }
                out.append(Entry(tag: UInt16(tag), raw: Array(d[e..<(e + 12)])))
            }
            return (out, next)
        }
        /// An ASCII entry's text.
        func string(_ e: Entry) -> String? {
            let r = Reader.entryReader(e, little)
            guard r.type == 2, r.count > 0, r.count <= 65536 else { return nil }
            let bytes: ArraySlice<UInt8>
            if r.count <= 4 { bytes = e.raw[8..<(8 + r.count)] } else {
                guard r.offset + r.count <= d.count else { return nil }
                bytes = d[r.offset..<(r.offset + r.count)]
            }
            return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        static func entryReader(_ e: Entry, _ little: Bool) -> (type: Int, count: Int, offset: Int) {
            func v16(_ i: Int) -> Int { little ? Int(e.raw[i]) | Int(e.raw[i + 1]) << 8 : Int(e.raw[i]) << 8 | Int(e.raw[i + 1]) }
            func v32(_ i: Int) -> Int {
                little ? Int(e.raw[i]) | Int(e.raw[i + 1]) << 8 | Int(e.raw[i + 2]) << 16 | Int(e.raw[i + 3]) << 24
                       : Int(e.raw[i]) << 24 | Int(e.raw[i + 1]) << 16 | Int(e.raw[i + 2]) << 8 | Int(e.raw[i + 3])
            }
            return (v16(2), v32(4), v32(8))
        }
    }

    /// IFD0's text tags among `textTags` (tag, value).
    public static func strings(_ blob: [UInt8]) -> [(UInt16, String)] {
        guard let r = Reader(blob), let (entries, _) = r.entries() else { return [] }
        return entries.compactMap { e in textTags.contains(e.tag) ? r.string(e).map { (e.tag, $0) } : nil }
    }

    /// The orientation tag's value, if IFD0 has one.
    public static func orientationValue(_ blob: [UInt8]) -> Int? {
        guard let r = Reader(blob), let (entries, _) = r.entries(),
              let e = entries.first(where: { $0.tag == orientation }) else { return nil }
        let f = Reader.entryReader(e, r.little)
        guard f.type == 3, f.count == 1 else { return nil }
        return r.little ? Int(e.raw[8]) | Int(e.raw[9]) << 8 : Int(e.raw[8]) << 8 | Int(e.raw[9])
    }

    /// A little-endian EXIF with only IFD0 text entries.
    public static func minimal(strings: [(UInt16, String)]) -> [UInt8] {
        var out: [UInt8] = [0x49, 0x49, 42, 0, 8, 0, 0, 0]
        let sorted = strings.sorted { $0.0 < $1.0 }
        let n = sorted.count
        var values: [UInt8] = []
        var table: [UInt8] = [UInt8(n & 0xFF), UInt8(n >> 8)]
        let valuesAt = 8 + 2 + n * 12 + 4
        for (tag, text) in sorted {
            let bytes = Array(text.utf8.prefix(65535)) + [0]
            table += le16(tag) + le16(2) + le32(bytes.count)
            if bytes.count <= 4 {
                table += bytes + [UInt8](repeating: 0, count: 4 - bytes.count)
            } else {
                table += le32(valuesAt + values.count)
                values += bytes
                if values.count % 2 == 1 { values.append(0) }
            }
        }
        out += table + [0, 0, 0, 0] + values
        return out
    }

    /// `blob` with IFD0's orientation set to 1 and its Software tag set to `software`: a new IFD0
    /// appended at the end (the old entries' values stay where they are, so every offset in the
    /// blob stays valid) and the header pointed at it. Nil when the blob cannot be read.
    public static func normalized(_ blob: [UInt8], software: String) -> [UInt8]? {
        guard let r = Reader(blob), let (entries, next) = r.entries() else { return nil }
        let little = r.little
        func e16(_ v: Int) -> [UInt8] { little ? le16(UInt16(v)) : be16(UInt16(v)) }
        func e32(_ v: Int) -> [UInt8] { little ? le32(v) : be32(v) }
        var out = blob
        if out.count % 2 == 1 { out.append(0) }
        let text = Array(software.utf8.prefix(65535)) + [0]
        var list = entries.filter { $0.tag != Self.software }
        // The Software value goes after the new IFD.
        let ifdAt = out.count
        let n = list.count + 1
        let valueAt = ifdAt + 2 + n * 12 + 4
        guard valueAt + text.count < Int(UInt32.max) else { return nil }
        var softwareRaw = e16(Int(Self.software)) + e16(2) + e32(text.count)
        softwareRaw += text.count <= 4 ? text + [UInt8](repeating: 0, count: 4 - text.count) : e32(valueAt)
        list.append(Entry(tag: Self.software, raw: softwareRaw))
        list.sort { $0.tag < $1.tag }
        for k in list.indices where list[k].tag == orientation {
            let f = Reader.entryReader(list[k], little)
            if f.type == 3 && f.count == 1 { list[k].raw.replaceSubrange(8..<12, with: e16(1) + [0, 0]) }
        }
        out += e16(n)
        for e in list { out += e.raw }
        out += e32(next)
        if text.count > 4 { out += text }
        out.replaceSubrange(4..<8, with: e32(ifdAt))
        return out
    }

    static func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
    static func le32(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24 & 0xFF)] }
    static func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
}
