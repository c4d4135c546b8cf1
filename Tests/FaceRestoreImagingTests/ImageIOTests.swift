// Decoding against `cv2.imread(path, IMREAD_COLOR)` (OpenCV 4.6) on the variants photos come in,
// encoding round trips, and bad input (fixtures from scripts/make_fixtures.py).

import FaceRestoreImaging
import FaceRestoreWeights
import Foundation
import Testing

let codecDir = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("codecs")
let codecExpected = try! SafeTensors.read(path: Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    .appendingPathComponent("codecs.safetensors").path)

@Suite struct ImageDecoding {
    @Test(arguments: ["rgb8.png", "rgb16.png", "gray8.png", "gray16.png", "gray1.png", "bgra8.png", "palette.png",
                      "photo.jpg", "gray.jpg", "orient3.jpg", "orient6.jpg", "orient8.jpg"])
    func decodesLikeOpenCVImread(_ name: String) throws {
        let decoded = try ImageIO.read(path: codecDir.appendingPathComponent(name).path)
        let expected = pixelImage(codecExpected[name]!)
        #expect(decoded.image.width == expected.width && decoded.image.height == expected.height)
        #expect(decoded.image.pixels == expected.pixels)
    }

    @Test func keepsWhatImreadDrops() throws {
        let rgba = try ImageIO.read(path: codecDir.appendingPathComponent("bgra8.png").path)
        #expect(rgba.alpha?.count == rgba.image.width * rgba.image.height)
        #expect(rgba.sourceChannels == 4)
        let deep = try ImageIO.read(path: codecDir.appendingPathComponent("rgb16.png").path)
        #expect(deep.sourceDepth == 16 && deep.alpha == nil)
        let turned = try ImageIO.read(path: codecDir.appendingPathComponent("orient6.jpg").path)
        #expect(turned.orientation == 6 && turned.image.width == 13 && turned.image.height == 17)
    }

    @Test func pngRoundTripIsLossless() throws {
        let src = try ImageIO.read(path: codecDir.appendingPathComponent("bgra8.png").path)
        let data = try ImageIO.encode(src.image, alpha: src.alpha, format: .png, path: "mem.png")
        let back = try ImageIO.decode(data, path: "mem.png")
        #expect(back.image == src.image && back.alpha == src.alpha)
        // Deterministic bytes.
        #expect(try ImageIO.encode(src.image, alpha: src.alpha, format: .png, path: "mem.png") == data)
    }

    @Test func jpegRoundTripIsClose() throws {
        let (w, h) = (40, 24)
        let px = (0..<(w * h)).flatMap { p -> [UInt8] in
            let (x, y) = (p % w, p / w)
            return [UInt8(x * 6), UInt8(y * 10), UInt8((x + y) * 4)]
        }
        let src = PixelImage(width: w, height: h, channels: 3, pixels: px)
        let back = try ImageIO.decode(try ImageIO.encode(src, format: .jpeg, path: "mem.jpg", jpegQuality: 95), path: "mem.jpg")
        #expect(back.image.width == w && back.image.height == h && back.format == .jpeg)
        let worst = zip(back.image.pixels, src.pixels).map { abs(Int($0) - Int($1)) }.max()!
        #expect(worst <= 10, "max abs error \(worst) at quality 95 on smooth gradients")
    }

    @Test func everyPrefixOfAFileIsAnErrorNotACrash() throws {
        for name in ["rgb8.png", "photo.jpg", "rgb16.png"] {
            let data = try Data(contentsOf: codecDir.appendingPathComponent(name))
            for n in stride(from: 0, to: data.count - 1, by: 7) {
                #expect(throws: ImageError.self, "\(name) cut at \(n)") { try ImageIO.decode(data.prefix(n), path: name) }
            }
        }
    }

    @Test func badFilesGiveOneLineNamingTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fr-bad-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let empty = dir.appendingPathComponent("empty.png").path
        FileManager.default.createFile(atPath: empty, contents: Data())
        let text = dir.appendingPathComponent("notes.jpg").path
        FileManager.default.createFile(atPath: text, contents: Data("hello".utf8))
        for (path, fragment) in [(empty, "empty file"), (text, "not a PNG, JPEG"), (dir.path, "is a directory"),
                                 (dir.appendingPathComponent("missing.png").path, "no such file")] {
            do { _ = try ImageIO.read(path: path); Issue.record("\(path) decoded") } catch {
                let line = "\(error)"
                #expect(line.hasPrefix(path) && line.contains(fragment) && !line.contains("\n"), "\(line)")
            }
        }
    }

    @Test func limitsAreCheckedBeforeDecoding() throws {
        let path = codecDir.appendingPathComponent("photo.jpg").path
        #expect(throws: ImageError.limits(path: path, reason: "image is 17×13, beyond the limit of 16×16384 and 0 megapixels")) {
            try ImageIO.read(path: path, limits: ImageLimits(maxWidth: 16, maxHeight: 16384, maxPixels: 1000))
        }
    }

    @Test func writesAtomicallyAndRefusesUnknownExtensions() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fr-write-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let img = PixelImage(width: 2, height: 1, channels: 3, pixels: [1, 2, 3, 4, 5, 6])
        try ImageIO.write(img, to: dir.appendingPathComponent("a.png").path)
        #expect(try ImageIO.read(path: dir.appendingPathComponent("a.png").path).image == img)
        #expect(throws: ImageError.self) { try ImageIO.write(img, to: dir.appendingPathComponent("a.gif").path) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["a.png"])   // no temporaries left
    }
}

/// A 68-byte PNG whose header claims 2147483647×1 pixels (8-bit RGB, and 16-bit RGBA) is refused
/// from its header: libpng used to allocate its row buffers (6.3 and 16.8 GB) before the check.
@Suite struct HeaderBombs {
    static func png(width: UInt32, height: UInt32, depth: UInt8, colorType: UInt8) -> Data {
        func crc(_ bytes: [UInt8]) -> UInt32 {
            var c: UInt32 = 0xffff_ffff
            for b in bytes {
                c ^= UInt32(b)
                for _ in 0..<8 { c = c & 1 == 1 ? 0xedb8_8320 ^ (c >> 1) : c >> 1 }
            }
            return ~c
        }
        func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] { be(UInt32(data.count)) + Array(type.utf8) + data + be(crc(Array(type.utf8) + data)) }
        let idat: [UInt8] = [0x78, 0x9c, 0x63, 0x60, 0x80, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x01]
        return Data([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] + chunk("IHDR", be(width) + be(height) + [depth, colorType, 0, 0, 0])
                    + chunk("IDAT", idat) + chunk("IEND", []))
    }

    static func peakRSS() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
    }

    @Test(arguments: [(UInt8(8), UInt8(2)), (16, 6)])
    func aHugeWidthIsRefusedBeforeAnyAllocation(_ depth: UInt8, _ colorType: UInt8) throws {
        let data = Self.png(width: 2_147_483_647, height: 1, depth: depth, colorType: colorType)
        let before = Self.peakRSS()
        #expect(throws: ImageError.self) { _ = try ImageIO.decode(data, path: "bomb.png") }
        let header = try ImageIO.probe(data, path: "bomb.png", limits: ImageLimits(maxWidth: Int.max, maxHeight: Int.max, maxPixels: Int.max))
        #expect(header.width == 2_147_483_647 && header.height == 1)
        #expect(Self.peakRSS() - before < 2 << 30, "refusing it must not allocate its rows")
    }
}

/// A PNG's eXIf orientation is applied as for JPEG (OpenCV 4.6's `imread` does: a 5×3 image with
/// orientation 6 reads as 3×5, its top-left red pixel at the top right).
@Suite struct PNGOrientation {
    @Test func exifOrientationSixRotatesClockwise() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("FaceRestoreFuzzingTests/corpus/png/orient6_exif.png")
        let decoded = try ImageIO.read(path: file.path)
        #expect(decoded.orientation == 6)
        let image = decoded.image
        #expect(image.width == 3 && image.height == 5)
        func bgr(_ x: Int, _ y: Int) -> [UInt8] { Array(image.pixels[(y * image.width + x) * 3..<(y * image.width + x) * 3 + 3]) }
        #expect(bgr(2, 0) == [0, 0, 255] && bgr(0, 4) == [255, 0, 0])
    }
}
