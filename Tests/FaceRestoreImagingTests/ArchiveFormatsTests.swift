// TIFF, WebP, BMP and HEIF reading and writing, 16-bit samples, and what bad files give: our
// encoders against our decoders (lossless round trips), Debian's tools against ours in both
// directions (tiffcp/tiffinfo, cwebp/webpinfo, heif-enc), and hand-made damaged files. Tests that
// need a tool skip when it is missing.

import FaceRestoreImaging
import Foundation
import Testing

/// The path of a command-line tool, if installed.
func tool(_ name: String) -> String? {
    let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
    return (dirs + ["/usr/bin"]).map { $0 + "/" + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

@discardableResult
func runTool(_ name: String, _ args: [String]) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: tool(name) ?? "/usr/bin/" + name)
    p.arguments = args
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

func scratchFolder(_ name: String) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fr-codecs-\(name)-\(getpid())-\(UUID().uuidString.prefix(6))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// Deterministic noise with some smooth structure (so lossy codecs have something to keep).
func testImage(width: Int, height: Int, channels: Int, seed: UInt64 = 1) -> PixelImage {
    var s = seed &* 0x9E3779B97F4A7C15
    var px = [UInt8](repeating: 0, count: width * height * channels)
    for y in 0..<height {
        for x in 0..<width {
            for c in 0..<channels {
                s = s &* 6364136223846793005 &+ 1442695040888963407
                px[(y * width + x) * channels + c] = UInt8(truncatingIfNeeded: (x * 7 + y * 5 + c * 60) + Int(s >> 61))
            }
        }
    }
    return PixelImage(width: width, height: height, channels: channels, pixels: px)
}

/// A smooth gradient (what lossy codecs keep well).
func smoothImage(width: Int, height: Int) -> PixelImage {
    var px = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height { for x in 0..<width { for c in 0..<3 { px[(y * width + x) * 3 + c] = UInt8(min(255, x * 2 + y + c * 40)) } } }
    return PixelImage(width: width, height: height, channels: 3, pixels: px)
}

func testImage16(width: Int, height: Int, channels: Int, seed: UInt64 = 3) -> PixelImage16 {
    var s = seed
    let px = (0..<(width * height * channels)).map { _ -> UInt16 in
        s = s &* 6364136223846793005 &+ 1442695040888963407
        return UInt16(truncatingIfNeeded: s >> 48)
    }
    return PixelImage16(width: width, height: height, channels: channels, pixels: px)
}

/// A gray image as the decoder gives it (replicated to BGR).
func replicated(_ gray: PixelImage) -> PixelImage {
    PixelImage(width: gray.width, height: gray.height, channels: 3, pixels: gray.pixels.flatMap { [$0, $0, $0] })
}

func meanAbsDiff(_ a: [UInt8], _ b: [UInt8]) -> Double {
    Double(zip(a, b).map { abs(Int($0) - Int($1)) }.reduce(0, +)) / Double(max(a.count, 1))
}

/// A little-endian, uncompressed, one-strip TIFF with the given tags (SHORT or LONG values) and pixel bytes.
func handMadeTIFF(width: Int, height: Int, tags: [(UInt16, UInt16, [Int])], pixels: [UInt8]) -> Data {
    var entries = tags + [(256, 4, [width]), (257, 4, [height]), (273, 4, [0]), (278, 4, [height]), (279, 4, [pixels.count])]
    entries.sort { $0.0 < $1.0 }
    let ifdAt = 8
    let extraAt = ifdAt + 2 + entries.count * 12 + 4
    var extra: [UInt8] = []
    var ifd: [UInt8] = [UInt8(entries.count & 0xFF), UInt8(entries.count >> 8)]
    func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
    func le32(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24 & 0xFF)] }
    let pixelsAt = extraAt + entries.reduce(0) { n, e in let size = e.1 == 3 ? 2 : 4; return n + (e.2.count * size > 4 ? e.2.count * size : 0) }
    for (tag, type, values) in entries {
        let size = type == 3 ? 2 : 4
        let vals = tag == 273 ? [pixelsAt] : values
        let bytes = vals.flatMap { size == 2 ? le16($0) : le32($0) }
        ifd += le16(Int(tag)) + le16(Int(type)) + le32(vals.count)
        if bytes.count <= 4 { ifd += bytes + [UInt8](repeating: 0, count: 4 - bytes.count) } else {
            ifd += le32(extraAt + extra.count)
            extra += bytes
        }
    }
    return Data([0x49, 0x49, 42, 0] + le32(ifdAt) + ifd + [0, 0, 0, 0] + extra + pixels)
}

@Suite struct ArchiveFormats {
    static let lossless: [ImageFormat] = [.png, .tiff, .webp, .bmp]

    @Test(arguments: lossless)
    func eightBitRoundTripIsExact(_ format: ImageFormat) throws {
        let webpLossless = EncodeOptions(webpQuality: nil)
        for channels in [1, 3] {
            for withAlpha in [false, true] {
                let image = testImage(width: 13, height: 7, channels: channels, seed: UInt64(channels))
                let alpha = withAlpha ? testImage(width: 13, height: 7, channels: 1, seed: 9).pixels : nil
                let data = try ImageIO.encode(image, alpha: alpha, format: format, path: "x", options: webpLossless)
                #expect(ImageFormat.sniff(data) == format)
                let header = try ImageIO.probe(data, path: "x")
                #expect(header.width == 13 && header.height == 7 && header.format == format)
                let decoded = try ImageIO.decode(data, path: "x")
                #expect(decoded.format == format)
                #expect(decoded.image == (channels == 1 ? replicated(image) : image), "\(format) \(channels) alpha \(withAlpha)")
                #expect(decoded.alpha == alpha, "\(format) \(channels) alpha \(withAlpha)")
                #expect(decoded.image16 == nil && decoded.lossless)
            }
        }
    }

    @Test(arguments: [ImageFormat.png, .tiff])
    func sixteenBitRoundTripIsExact(_ format: ImageFormat) throws {
        for channels in [1, 3] {
            for withAlpha in [false, true] {
                let image = testImage16(width: 11, height: 6, channels: channels, seed: UInt64(channels + 4))
                let alpha = withAlpha ? testImage16(width: 11, height: 6, channels: 1, seed: 2).pixels : nil
                let data = try ImageIO.encode16(image, alpha: alpha, format: format, path: "x")
                let decoded = try ImageIO.decode(data, path: "x")
                let expected = channels == 1 ? PixelImage16(width: 11, height: 6, channels: 3, pixels: image.pixels.flatMap { [$0, $0, $0] }) : image
                #expect(decoded.image16 == expected, "\(format) \(channels) alpha \(withAlpha)")
                #expect(decoded.alpha16 == alpha)
                #expect(decoded.sourceDepth == 16)
                // The 8-bit image is the high bytes, as OpenCV reads 16-bit files.
                #expect(decoded.image == expected.reducedTo8Bit)
                #expect(decoded.alpha == alpha?.map { UInt8($0 >> 8) })
            }
        }
    }

    @Test func lossyWebPKeepsThePicture() throws {
        let image = smoothImage(width: 40, height: 30)
        let data = try ImageIO.encode(image, alpha: [UInt8](repeating: 200, count: 1200), format: .webp, path: "x",
                                      options: EncodeOptions(webpQuality: 95))
        let decoded = try ImageIO.decode(data, path: "x")
        #expect(!decoded.lossless)
        #expect(decoded.alpha == [UInt8](repeating: 200, count: 1200))
        #expect(meanAbsDiff(decoded.image.pixels, image.pixels) < 6)
    }

    @Test func extensionsAndSignatures() {
        for (ext, format) in [("tif", ImageFormat.tiff), ("TIFF", .tiff), ("webp", .webp), ("bmp", .bmp), ("dib", .bmp), ("heic", .heic), ("HEIF", .heic)] {
            #expect(ImageFormat(extension: ext) == format)
        }
        #expect(ImageFormat.sniff(Data("MM\0*".utf8) + Data(count: 8)) == .tiff)
        #expect(ImageFormat.sniff(Data("RIFF\0\0\0\0WEBPVP8 ".utf8)) == .webp)
        #expect(ImageFormat.sniff(Data("BM and then some text".utf8)) == nil, "BM with no DIB header size is not a BMP")
        var ftyp = Data([0, 0, 0, 24]) + Data("ftypmif1\0\0\0\0mif1heic".utf8)
        #expect(ImageFormat.sniff(ftyp) == .heic)
        ftyp = Data([0, 0, 0, 20]) + Data("ftypisom\0\0\0\0mp41".utf8)
        #expect(ImageFormat.sniff(ftyp) == nil, "an MP4 is not a HEIF")
    }

    /// Our TIFFs as libtiff's own tools see them, and tiffcp's rewrites (tiles, separate planes,
    /// LZW, PackBits, JPEG, several pages) through our reader.
    @Test(.enabled(if: tool("tiffinfo") != nil && tool("tiffcp") != nil, "libtiff-tools not installed"))
    func tiffAgainstLibtiffTools() throws {
        let dir = try scratchFolder("tiff")
        defer { try? FileManager.default.removeItem(at: dir) }
        let wide = testImage16(width: 40, height: 33, channels: 3)
        let src = dir.appendingPathComponent("src.tif").path
        try ImageIO.encode16(wide, alpha: testImage16(width: 40, height: 33, channels: 1).pixels, format: .tiff, path: src).write(to: URL(fileURLWithPath: src))
        let info = try runTool("tiffinfo", [src]).output
        #expect(info.contains("Bits/Sample: 16") && info.contains("Samples/Pixel: 4"), "\(info)")
        #expect(info.contains("Deflate") && info.contains("horizontal differencing"), "\(info)")
        let original = try ImageIO.decode(try Data(contentsOf: URL(fileURLWithPath: src)), path: src)
        for (name, args) in [("tiled", ["-t", "-w", "16", "-l", "16"]), ("lzw", ["-c", "lzw"]), ("packbits", ["-c", "packbits", "-r", "5"])] {
            let out = dir.appendingPathComponent(name + ".tif").path
            let cp = try runTool("tiffcp", args + [src, out])
            #expect(cp.status == 0, "\(name): \(cp.output)")
            let d = try ImageIO.decode(try Data(contentsOf: URL(fileURLWithPath: out)), path: out)
            #expect(d.image16 == original.image16 && d.alpha16 == original.alpha16, "\(name)")
        }
        // Separate planes (tiffcp makes them from 8-bit files only), in strips and in tiles.
        let rgba8 = testImage(width: 40, height: 33, channels: 3), alpha8 = testImage(width: 40, height: 33, channels: 1, seed: 4).pixels
        let srcA = dir.appendingPathComponent("rgba8.tif").path
        try ImageIO.encode(rgba8, alpha: alpha8, format: .tiff, path: srcA, options: EncodeOptions(tiffCompression: .lzw))
            .write(to: URL(fileURLWithPath: srcA))
        for (name, args) in [("separate", ["-p", "separate"]), ("separate_tiled", ["-p", "separate", "-t", "-w", "16", "-l", "16"])] {
            let out = dir.appendingPathComponent(name + ".tif").path
            let cp = try runTool("tiffcp", args + [srcA, out])
            #expect(cp.status == 0, "\(name): \(cp.output)")
            let d = try ImageIO.decode(try Data(contentsOf: URL(fileURLWithPath: out)), path: out)
            #expect(d.image == rgba8 && d.alpha == alpha8, "\(name)")
        }
        // 8-bit RGB through libtiff's JPEG codec (YCbCr): within JPEG's error.
        let rgb8 = smoothImage(width: 48, height: 32)
        let src8 = dir.appendingPathComponent("rgb8.tif").path
        try ImageIO.encode(rgb8, format: .tiff, path: src8, options: EncodeOptions()).write(to: URL(fileURLWithPath: src8))
        let jpeg = dir.appendingPathComponent("jpeg.tif").path
        #expect(try runTool("tiffcp", ["-c", "jpeg:90", src8, jpeg]).status == 0)
        let dj = try ImageIO.decode(try Data(contentsOf: URL(fileURLWithPath: jpeg)), path: jpeg)
        #expect(meanAbsDiff(dj.image.pixels, rgb8.pixels) < 8)
        // Two pages: the first is read and the count reported.
        let pages = dir.appendingPathComponent("pages.tif").path
        #expect(try runTool("tiffcp", [src8, src, pages]).status == 0)
        let pdata = try Data(contentsOf: URL(fileURLWithPath: pages))
        #expect(try ImageIO.probe(pdata, path: pages).pageCount == 2)
        let dp = try ImageIO.decode(pdata, path: pages)
        #expect(dp.pageCount == 2 && dp.image == rgb8)
    }

    @Test func tiffGrayPaletteAndBilevel() throws {
        // 1-bit min-is-white: 0 bits are white.
        let bilevel = handMadeTIFF(width: 8, height: 2, tags: [(258, 3, [1]), (262, 3, [0]), (277, 3, [1])], pixels: [0b1010_0000, 0xFF])
        let b = try ImageIO.decode(bilevel, path: "bilevel.tif")
        #expect(b.image.pixels.enumerated().filter { $0.offset % 3 == 0 }.map(\.element) == [0, 255, 0, 255, 255, 255, 255, 255] + [UInt8](repeating: 0, count: 8))
        // A 4-entry palette, 2-bit indices; the colour map is 16-bit (R…, G…, B…).
        let map = [0, 65535, 0, 0] + [0, 0, 65535, 0] + [0, 0, 0, 65535]
        let palette = handMadeTIFF(width: 4, height: 1, tags: [(258, 3, [2]), (262, 3, [3]), (277, 3, [1]), (320, 3, map)], pixels: [0b00_01_10_11])
        let p = try ImageIO.decode(palette, path: "palette.tif")
        #expect(p.image.pixels == [0, 0, 0, 0, 0, 255, 0, 255, 0, 255, 0, 0])   // BGR: black, red, green, blue
    }

    @Test func unsupportedTIFFsAreOneLine() throws {
        let float = handMadeTIFF(width: 2, height: 2, tags: [(258, 3, [32]), (262, 3, [1]), (277, 3, [1]), (339, 3, [3])], pixels: [UInt8](repeating: 0, count: 16))
        let cmyk = handMadeTIFF(width: 2, height: 2, tags: [(258, 3, [8, 8, 8, 8]), (262, 3, [5]), (277, 3, [4])], pixels: [UInt8](repeating: 0, count: 16))
        let twelve = handMadeTIFF(width: 2, height: 2, tags: [(258, 3, [12]), (262, 3, [1]), (277, 3, [1])], pixels: [UInt8](repeating: 0, count: 6))
        for (data, words) in [(float, "floating-point"), (cmyk, "CMYK"), (twelve, "12-bit")] {
            do {
                _ = try ImageIO.decode(data, path: "scan.tif")
                Issue.record("\(words) TIFF was accepted")
            } catch let e as ImageError {
                guard case .unsupported = e else { Issue.record("\(e)"); continue }
                #expect("\(e)".hasPrefix("scan.tif: unsupported image (") && "\(e)".contains(words) && !"\(e)".contains("\n"), "\(e)")
            }
        }
    }

    @Test(.enabled(if: tool("cwebp") != nil && tool("webpinfo") != nil, "webp tools not installed"))
    func webpAgainstLibwebpTools() throws {
        let dir = try scratchFolder("webp")
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = smoothImage(width: 36, height: 20)
        let png = dir.appendingPathComponent("src.png").path
        try ImageIO.write(image, alpha: testImage(width: 36, height: 20, channels: 1, seed: 5).pixels, to: png)
        let lossless = dir.appendingPathComponent("lossless.webp").path, lossy = dir.appendingPathComponent("lossy.webp").path
        #expect(try runTool("cwebp", ["-quiet", "-lossless", "-exact", png, "-o", lossless]).status == 0)
        #expect(try runTool("cwebp", ["-quiet", "-q", "90", png, "-o", lossy]).status == 0)
        let source = try ImageIO.read(path: png)
        let a = try ImageIO.read(path: lossless)
        #expect(a.image == source.image && a.alpha == source.alpha && a.lossless)
        let b = try ImageIO.read(path: lossy)
        #expect(!b.lossless && meanAbsDiff(b.image.pixels, source.image.pixels) < 8)
        // Ours, as webpinfo sees it.
        let ours = dir.appendingPathComponent("ours.webp").path
        try ImageIO.encode(image, format: .webp, path: ours, options: EncodeOptions(metadata: ImageMetadata(icc: [UInt8](repeating: 7, count: 40))))
            .write(to: URL(fileURLWithPath: ours))
        let info = try runTool("webpinfo", [ours])
        #expect(info.status == 0 && info.output.contains("Format: Lossless") && info.output.contains("ICCP"), "\(info.output)")
    }

    @Test(.enabled(if: tool("heif-enc") != nil, "libheif-examples not installed"))
    func heicFromHeifEnc() throws {
        let dir = try scratchFolder("heic")
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = smoothImage(width: 64, height: 48)
        let png = dir.appendingPathComponent("src.png").path, heic = dir.appendingPathComponent("photo.heic").path
        try ImageIO.write(image, to: png)
        let enc = try runTool("heif-enc", ["-q", "95", png, "-o", heic])
        #expect(enc.status == 0, "\(enc.output)")
        let data = try Data(contentsOf: URL(fileURLWithPath: heic))
        #expect(ImageFormat.sniff(data) == .heic)
        #expect(try ImageIO.probe(data, path: heic).width == 64)
        let d = try ImageIO.decode(data, path: heic)
        #expect(d.image.width == 64 && d.image.height == 48 && !d.lossless)
        #expect(meanAbsDiff(d.image.pixels, image.pixels) < 10)
        // 16-bit source at 10 bits: the 16-bit samples come back scaled to the full range.
        let png16 = dir.appendingPathComponent("src16.png").path, heic10 = dir.appendingPathComponent("ten.heic").path
        let wide = PixelImage16(image)
        try ImageIO.encode16(wide, format: .png, path: png16).write(to: URL(fileURLWithPath: png16))
        let enc10 = try runTool("heif-enc", ["-q", "95", "-b", "10", png16, "-o", heic10])
        if enc10.status == 0 {
            let d10 = try ImageIO.read(path: heic10)
            #expect(d10.sourceDepth == 16 && d10.image16 != nil)
            #expect(meanAbsDiff(d10.image.pixels, image.pixels) < 10)
        }
        // Damaged: truncated, and bytes overwritten in the middle.
        for (name, bad) in [("truncated", data.prefix(data.count / 2)), ("garbled", data.prefix(40) + Data(repeating: 0x5A, count: data.count - 40))] {
            #expect(throws: ImageError.self, "\(name)") { _ = try ImageIO.decode(Data(bad), path: "bad.heic") }
        }
    }

    @Test func bmpVariants() throws {
        // 8-bit palette, bottom-up, 2×2: palette entries are BGRA.
        func bmp(header: [UInt8], palette: [UInt8] = [], rows: [UInt8]) -> Data {
            let offset = 14 + header.count + palette.count
            let total = offset + rows.count
            let le32 = { (v: Int) -> [UInt8] in [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24 & 0xFF)] }
            return Data([0x42, 0x4D] + le32(total) + [0, 0, 0, 0] + le32(offset) + header + palette + rows)
        }
        func info(_ w: Int32, _ h: Int32, bpp: UInt16, compression: UInt32 = 0, colors: UInt32 = 0, size: Int = 40) -> [UInt8] {
            var d = [UInt8](repeating: 0, count: size)
            withUnsafeBytes(of: UInt32(size).littleEndian) { d.replaceSubrange(0..<4, with: $0) }
            withUnsafeBytes(of: w.littleEndian) { d.replaceSubrange(4..<8, with: $0) }
            withUnsafeBytes(of: h.littleEndian) { d.replaceSubrange(8..<12, with: $0) }
            d[12] = 1
            withUnsafeBytes(of: bpp.littleEndian) { d.replaceSubrange(14..<16, with: $0) }
            withUnsafeBytes(of: compression.littleEndian) { d.replaceSubrange(16..<20, with: $0) }
            withUnsafeBytes(of: colors.littleEndian) { d.replaceSubrange(32..<36, with: $0) }
            return d
        }
        let palette: [UInt8] = [0, 0, 255, 0, 0, 255, 0, 0]   // red, green
        // Rows padded to 4 bytes; bottom row first.
        let p8 = try ImageIO.decode(bmp(header: info(2, 2, bpp: 8, colors: 2), palette: palette, rows: [1, 0, 0, 0, 0, 1, 0, 0]), path: "p.bmp")
        #expect(p8.image.pixels == [0, 0, 255, 0, 255, 0, 0, 255, 0, 0, 0, 255])
        // Top-down 16-bit 565 with bit fields after the INFO header.
        let masks: [UInt8] = [0x00, 0xF8, 0, 0, 0xE0, 0x07, 0, 0, 0x1F, 0, 0, 0]
        let p16 = try ImageIO.decode(bmp(header: info(2, -1, bpp: 16, compression: 3) + masks, rows: [0x00, 0xF8, 0x1F, 0x00]), path: "b.bmp")
        #expect(p16.image.pixels == [0, 0, 255, 255, 0, 0])
        // RLE8: a run of 3 of index 1, end of line, end of bitmap.
        let rle = try ImageIO.decode(bmp(header: info(3, 1, bpp: 8, compression: 1, colors: 2), palette: palette, rows: [3, 1, 0, 0, 0, 1]), path: "r.bmp")
        #expect(rle.image.pixels == [0, 255, 0, 0, 255, 0, 0, 255, 0])
        // A lying header: more rows than bytes, and a pixel offset past the end.
        var lying = [UInt8](try ImageIO.encode(testImage(width: 4, height: 4, channels: 3), format: .bmp, path: "x", options: EncodeOptions()))
        lying[22] = 0xFF; lying[23] = 0x7F
        #expect(throws: ImageError.self) { _ = try ImageIO.decode(Data(lying), path: "lying.bmp") }
        lying[22] = 4; lying[23] = 0; lying[10] = 0xFF; lying[11] = 0xFF
        do { _ = try ImageIO.decode(Data(lying), path: "lying.bmp"); Issue.record("accepted") } catch let e as ImageError {
            #expect("\(e)".hasPrefix("lying.bmp: cannot decode image (") && !"\(e)".contains("\n"), "\(e)")
        }
    }

    @Test func damagedWebPIsOneLine() throws {
        let data = try ImageIO.encode(testImage(width: 30, height: 30, channels: 3), format: .webp, path: "x", options: EncodeOptions(webpQuality: 80))
        for bad in [data.prefix(data.count - 20), data.prefix(30), data.prefix(16) + Data(repeating: 0xAA, count: data.count - 16)] {
            do { _ = try ImageIO.decode(Data(bad), path: "bad.webp"); Issue.record("accepted") } catch let e as ImageError {
                #expect("\(e)".hasPrefix("bad.webp: ") && !"\(e)".contains("\n"), "\(e)")
            }
        }
    }

    @Test func exifNormalizationBothByteOrders() throws {
        for bigEndian in [false, true] {
            // IFD0: Orientation 6, Artist "Ada Lovelace", then the software tag is added.
            func u16(_ v: Int) -> [UInt8] { bigEndian ? [UInt8(v >> 8), UInt8(v & 0xFF)] : [UInt8(v & 0xFF), UInt8(v >> 8)] }
            func u32(_ v: Int) -> [UInt8] { bigEndian ? [0, 0, UInt8(v >> 8), UInt8(v & 0xFF)] : [UInt8(v & 0xFF), UInt8(v >> 8), 0, 0] }
            let artist = Array("Ada Lovelace\0".utf8)
            var blob: [UInt8] = (bigEndian ? [0x4D, 0x4D, 0, 42] : [0x49, 0x49, 42, 0]) + u32(8) + u16(2)
            blob += u16(0x0112) + u16(3) + u32(1) + u16(6) + [0, 0]
            blob += u16(0x013B) + u16(2) + u32(artist.count) + u32(8 + 2 + 24 + 4)
            blob += u32(0) + artist
            #expect(Exif.orientationValue(blob) == 6)
            let fixed = try #require(Exif.normalized(blob, software: "FaceRestore (test)"))
            #expect(Exif.orientationValue(fixed) == 1)
            let strings = Dictionary(Exif.strings(fixed), uniquingKeysWith: { a, _ in a })
            #expect(strings[0x013B] == "Ada Lovelace" && strings[0x0131] == "FaceRestore (test)")
            // Damaged: an IFD offset past the end is not read.
            var broken = blob
            broken.replaceSubrange(4..<8, with: u32(4000))
            #expect(Exif.normalized(broken, software: "x") == nil)
        }
    }
}
