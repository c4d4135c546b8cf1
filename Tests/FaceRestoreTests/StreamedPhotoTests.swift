// Large TIFFs restored band by band from the file: with the streaming threshold lowered, a
// restore streams, and its output file is byte for byte the one the in-memory path writes (8- and
// 16-bit, upscale 1 and 2, strips and tiles); with the detector on a shrunk copy, the same faces
// are found at the same places; the band reader gives what the whole-file decoder gives; the row
// writer writes what the in-memory encoder does; an unfinished writer leaves nothing behind.

import FaceRestore
import Foundation
import Testing

/// examples/group.jpg tiled 2×2 (8 faces in four groups), as 16-bit samples whose low bytes carry
/// a pattern an 8-bit path would lose.
private func tiledPhoto16() throws -> PixelImage16 {
    let photo = try ImageIO.read(path: repoRoot.appendingPathComponent("examples/group.jpg").path).image
    let (w, h) = (photo.width * 2, photo.height * 2)
    var px = [UInt16](repeating: 0, count: w * h * 3)
    for y in 0..<h {
        for x in 0..<w {
            for c in 0..<3 {
                let v = photo.pixels[((y % photo.height) * photo.width + x % photo.width) * 3 + c]
                px[(y * w + x) * 3 + c] = UInt16(v) << 8 | UInt16((x * 37 + y * 11 + c) & 0xFF)
            }
        }
    }
    return PixelImage16(width: w, height: h, channels: 3, pixels: px)
}

private func tool(_ name: String) -> String? {
    ["/usr/bin/\(name)", "/bin/\(name)"].first(where: FileManager.default.isExecutableFile)
}

private func runTool(_ path: String, _ args: [String]) throws {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    p.standardOutput = Pipe()
    p.standardError = Pipe()
    try p.run()
    p.waitUntilExit()
    #expect(p.terminationStatus == 0, "\(path) \(args)")
}

@Suite(.enabled(if: detectorFile != nil, "no RetinaFace weights"))
struct StreamedPhoto {
    func restorer(streamAbove: Int, detectionPixels: Int = 16_000_000, background: String? = nil) throws -> Restorer {
        var c = Restorer.Configuration(model: .file(fixture("gfpgan_clean_tiny.pth")))
        c.background = background.map { .file(fixture($0)) }
        c.backgroundTile = 96
        c.detector = .file(detectorFile!)
        c.useParser = false
        c.measureIdentity = false
        c.threads = 2
        c.streamingPixels = streamAbove
        c.streamingDetectionPixels = detectionPixels
        return try Restorer(c, store: ModelStore(directory: try temporaryFolder("empty").path))
    }

    /// Restores `input` in memory and streamed; returns both results and both files' bytes.
    func both(_ input: String, upscale: Int, background: String? = nil, in folder: URL) throws -> (RestoreResult, RestoreResult, Data, Data) {
        let whole = try restorer(streamAbove: Int.max, background: background).restore(file: input, options: PhotoOptions(upscale: upscale))
        let streamed = try restorer(streamAbove: 0, background: background).restore(file: input, options: PhotoOptions(upscale: upscale))
        #expect(whole.streamed == nil && whole.image != nil)
        #expect(streamed.streamed != nil && streamed.image == nil, "the threshold of 0 streams")
        let tag = "\(upscale)\(background ?? "")"
        let a = try whole.write(to: folder.path + "/whole" + tag)
        let b = try streamed.write(to: folder.path + "/streamed" + tag)
        #expect(a.count == b.count, "the same files: \(a) and \(b)")
        let name = URL(fileURLWithPath: input).lastPathComponent
        let wa = try #require(a.first { $0.hasSuffix("restored_imgs/" + name) })
        let wb = try #require(b.first { $0.hasSuffix("restored_imgs/" + name) })
        return (whole, streamed, try Data(contentsOf: URL(fileURLWithPath: wa)), try Data(contentsOf: URL(fileURLWithPath: wb)))
    }

    @Test func sixteenBitScanStreamsToTheSameBytes() throws {
        let folder = try temporaryFolder("streamed16")
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("scan.tif").path
        var options = EncodeOptions()
        options.metadata = ImageMetadata(dpiX: 600, dpiY: 600)
        try ImageIO.encode16(try tiledPhoto16(), format: .tiff, path: input, options: options).write(to: URL(fileURLWithPath: input))
        for upscale in [1, 2] {
            let (whole, streamed, a, b) = try both(input, upscale: upscale, in: folder)
            #expect(streamed.faces.count == whole.faces.count && whole.faces.count >= 6, "\(streamed.faces.count) and \(whole.faces.count) faces")
            #expect(a == b, "upscale \(upscale): the streamed TIFF equals the in-memory one (\(a.count) and \(b.count) bytes)")
            let back = try ImageIO.read(path: folder.path + "/streamed\(upscale)/restored_imgs/scan.tif")
            #expect(back.image16?.width == 1400 * upscale && back.metadata.dpiX == 600)
        }
    }

    @Test func eightBitTiledScanStreamsToTheSameBytes() throws {
        let tiffcp = try #require(tool("tiffcp"), "libtiff-tools' tiffcp (scripts/setup installs it)")
        let folder = try temporaryFolder("streamed8")
        defer { try? FileManager.default.removeItem(at: folder) }
        let strips = folder.appendingPathComponent("strips.tif").path
        let input = folder.appendingPathComponent("tiles.tif").path
        try ImageIO.encode(try tiledPhoto16().reducedTo8Bit, format: .tiff, path: strips).write(to: URL(fileURLWithPath: strips))
        try runTool(tiffcp, ["-t", "-w", "128", "-l", "112", "-c", "lzw", strips, input])
        let (whole, _, a, b) = try both(input, upscale: 2, in: folder)
        #expect(whole.faces.count >= 6)
        #expect(a == b, "the streamed 8-bit TIFF equals the in-memory one")
    }

    /// Real-ESRGAN one tile row at a time (tiles of 96 with 10 px of context): x2 at upscale 2,
    /// and x4 brought to upscale 2 by LANCZOS4 from the rows as they come.
    @Test func realESRGANBackgroundStreamsToTheSameBytes() throws {
        let folder = try temporaryFolder("streamedESRGAN")
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("scan.tif").path
        let photo = try tiledPhoto16()
        // A 16-bit source, odd-sized, so the x2 network's mod padding reflects a row and a column.
        let odd = PixelImage16(width: photo.width - 1, height: photo.height - 1, channels: 3, pixels: (0..<(photo.height - 1)).flatMap { y in
            photo.pixels[(y * photo.width * 3)..<((y * photo.width + photo.width - 1) * 3)]
        })
        try ImageIO.encode16(odd, format: .tiff, path: input).write(to: URL(fileURLWithPath: input))
        for model in ["realesrgan_rrdb_x2_tiny.pth", "realesrgan_rrdb_x4_tiny.pth"] {
            let (whole, _, a, b) = try both(input, upscale: 2, background: model, in: folder)
            #expect(whole.faces.count >= 6 && whole.image16 == nil, "a Real-ESRGAN background is 8-bit")
            #expect(a == b, "\(model): the streamed TIFF equals the in-memory one (\(a.count) and \(b.count) bytes)")
        }
    }

    @Test func detectionOnAShrunkCopyFindsTheSameFaces() throws {
        let folder = try temporaryFolder("streamedShrunk")
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("scan.tif").path
        try ImageIO.encode16(try tiledPhoto16(), format: .tiff, path: input).write(to: URL(fileURLWithPath: input))
        let whole = try restorer(streamAbove: Int.max).restore(file: input, options: PhotoOptions(upscale: 1))
        // 1400×840 over 300,000 pixels: shrunk by 2.
        let shrunk = try restorer(streamAbove: 0, detectionPixels: 300_000).restore(file: input, options: PhotoOptions(upscale: 1))
        let s = try #require(shrunk.streamed)
        #expect(s.detectionFactor == 2 && s.preview.width == 700)
        // Landmarks found at half scale are as precise as that scale: within a tenth of the face's width.
        for face in whole.faces {
            let tolerance = (face.detection.box[2] - face.detection.box[0]) / 10
            let nearest = shrunk.faces.map { other in zip(face.detection.landmarks, other.detection.landmarks).map { abs($0 - $1) }.max() ?? .infinity }.min() ?? .infinity
            #expect(nearest < tolerance, "a face at \(face.detection.landmarks) is found at the shrunk scale \(nearest) px away (tolerance \(tolerance))")
        }
        #expect(shrunk.faces.count == whole.faces.count)
    }

    @Test func bandReaderGivesTheDecodersSamples() throws {
        let folder = try temporaryFolder("bands")
        defer { try? FileManager.default.removeItem(at: folder) }
        let photo = try tiledPhoto16()
        var variants: [String] = []
        let strips = folder.appendingPathComponent("strips16.tif").path
        try ImageIO.encode16(photo, format: .tiff, path: strips).write(to: URL(fileURLWithPath: strips))
        variants.append(strips)
        let gray = folder.appendingPathComponent("gray8.tif").path
        try ImageIO.encode(photo.reducedTo8Bit.grayscaled(), format: .tiff, path: gray).write(to: URL(fileURLWithPath: gray))
        variants.append(gray)
        let strips8 = folder.appendingPathComponent("strips8.tif").path
        try ImageIO.encode(photo.reducedTo8Bit, format: .tiff, path: strips8).write(to: URL(fileURLWithPath: strips8))
        if let tiffcp = tool("tiffcp") {
            // (tiffcp makes separate planes from 8-bit files only.)
            for (name, source, args) in [("tiled16.tif", strips, ["-t", "-w", "96", "-l", "80"]),
                                         ("planar8.tif", strips8, ["-p", "separate", "-r", "7"]),
                                         ("planartiled8.tif", strips8, ["-p", "separate", "-t", "-w", "64", "-l", "48"])] {
                let path = folder.appendingPathComponent(name).path
                try runTool(tiffcp, args + [source, path])
                variants.append(path)
            }
        }
        for path in variants {
            let decoded = try ImageIO.read(path: path)
            let reader = try #require(try TIFFBandReader(path: path, limits: ImageLimits()))
            var y = 0, bands8: [UInt8] = [], bands16: [UInt16] = []
            // Bands of 13 rows cross block boundaries.
            while y < reader.height {
                let n = min(13, reader.height - y)
                let band = try reader.read(y: y, count: n)
                bands8 += band.image.pixels
                bands16 += band.image16?.pixels ?? []
                y += n
            }
            #expect(bands8 == decoded.image.pixels, "\(path): 8-bit bands")
            #expect(bands16 == (decoded.image16?.pixels ?? []), "\(path): 16-bit bands")
        }
        #expect(throws: (any Error).self) { try TIFFBandReader(path: strips, limits: ImageLimits(maxPixels: 1000)) }
        let reader = try #require(try TIFFBandReader(path: strips, limits: ImageLimits()))
        #expect(throws: (any Error).self) { try reader.read(y: reader.height - 2, count: 5) }
    }

    @Test func rowWriterWritesWhatTheEncoderWrites() throws {
        let folder = try temporaryFolder("rowWriter")
        defer { try? FileManager.default.removeItem(at: folder) }
        let photo = try tiledPhoto16()
        var options = EncodeOptions()
        options.metadata = ImageMetadata(dpiX: 300, dpiY: 300)
        let path = folder.appendingPathComponent("rows.tif").path
        let writer = try TIFFRowWriter(path: path, width: photo.width, height: photo.height, depth: 16, options: options)
        let row = photo.width * 3
        for y in stride(from: 0, to: photo.height, by: 100) {
            let n = min(100, photo.height - y)
            try writer.write(PixelImage16(width: photo.width, height: n, channels: 3, pixels: Array(photo.pixels[(y * row)..<((y + n) * row)])))
        }
        #expect(!FileManager.default.fileExists(atPath: path), "nothing at the destination before finish()")
        try writer.finish()
        let expected = try ImageIO.encode16(photo, format: .tiff, path: path, options: options)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == expected)

        // Dropped unfinished: no output, no temporary file.
        let partial = folder.appendingPathComponent("partial.tif").path
        do {
            let w = try TIFFRowWriter(path: partial, width: 10, height: 10, depth: 8)
            try w.write(PixelImage(width: 10, height: 3, channels: 3, pixels: [UInt8](repeating: 9, count: 90)))
            #expect(throws: (any Error).self) { try w.write(PixelImage(width: 11, height: 1, channels: 3, pixels: [UInt8](repeating: 9, count: 33))) }
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0 != "rows.tif" }
        #expect(left.isEmpty, "left behind: \(left)")
    }
}
