// 16-bit photos through the library: a 16-bit TIFF whose low bytes carry detail an 8-bit read
// drops is restored with the tiny GFP-GAN and written as TIFF; read back with our decoder and
// with libtiff's `tiffinfo`, the output is 16-bit, every pixel no face's mask reached keeps its
// exact 16-bit sample (upscale 1), pasted pixels agree with the 8-bit result's within a gray
// level, and a re-blend composites again.

import FaceRestore
import Foundation
import Testing

@Suite(.enabled(if: detectorFile != nil, "no RetinaFace weights"))
struct SixteenBitOutput {
    @Test func untouchedPixelsKeepTheirSixteenBitSamples() throws {
        let photo = try ImageIO.read(path: repoRoot.appendingPathComponent("examples/group.jpg").path).image
        // v·257 plus a low-byte pattern that an 8-bit path would lose.
        let wide = PixelImage16(width: photo.width, height: photo.height, channels: 3,
                                pixels: photo.pixels.enumerated().map { i, v in UInt16(v) << 8 | UInt16((i * 37) & 0xFF) })
        let folder = try temporaryFolder("sixteen")
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("scan.tif").path
        try ImageIO.encode16(wide, format: .tiff, path: input).write(to: URL(fileURLWithPath: input))

        var c = Restorer.Configuration(model: .file(fixture("gfpgan_clean_tiny.pth")))
        c.detector = .file(detectorFile!)
        c.useParser = false
        c.measureIdentity = false
        c.threads = 2
        let restorer = try Restorer(c, store: ModelStore(directory: try temporaryFolder("empty").path))
        let result = try restorer.restore(file: input, options: PhotoOptions(upscale: 1))
        #expect(result.faces.count == 2)
        let out16 = try #require(result.image16, "a 16-bit input gets a 16-bit composite")
        let out8 = try #require(result.image)
        let paths = try result.write(to: folder.path + "/out", options: OutputOptions(format: .auto))
        let written = try #require(paths.first { $0.hasSuffix("restored_imgs/scan.tif") })
        let back = try ImageIO.read(path: written)
        #expect(back.image16 == out16, "the TIFF holds the 16-bit composite")

        var kept = 0, changed = 0, off = 0
        for i in stride(from: 0, to: wide.pixels.count, by: 3) {
            let same = (0..<3).allSatisfy { out16.pixels[i + $0] == wide.pixels[i + $0] }
            if same { kept += 1 } else { changed += 1 }
            for k in 0..<3 where abs(Int(out16.pixels[i + k] >> 8) - Int(out8.pixels[i + k])) > 1 { off += 1 }
        }
        #expect(changed > 500, "the faces were pasted (\(changed) pixels changed)")
        #expect(kept > wide.pixels.count / 3 / 2, "most of the photo keeps its exact 16-bit samples (\(kept) kept)")
        #expect(off == 0, "\(off) samples differ from the 8-bit result by more than a gray level")
        // Outside the faces' squares nothing may change: every changed pixel is inside one, give or
        // take the reach of the soft mask's blur (a tenth of the square's side, as the paste's margin).
        for y in 0..<wide.height {
            for x in 0..<wide.width where (0..<3).contains(where: { out16.pixels[(y * wide.width + x) * 3 + $0] != wide.pixels[(y * wide.width + x) * 3 + $0] }) {
                let inside = result.faces.contains { face in
                    let corners = [(0.0, 0.0), (32.0, 0.0), (0.0, 32.0), (32.0, 32.0)].map { face.inverseAffine.apply((x: $0.0, y: $0.1)) }
                    let side = ((corners[1].x - corners[0].x) * (corners[1].x - corners[0].x)
                                + (corners[1].y - corners[0].y) * (corners[1].y - corners[0].y)).squareRoot()
                    let m = side / 10 + 6
                    return Double(x) >= corners.map(\.x).min()! - m && Double(x) <= corners.map(\.x).max()! + m
                        && Double(y) >= corners.map(\.y).min()! - m && Double(y) <= corners.map(\.y).max()! + m
                }
                #expect(inside, "pixel (\(x), \(y)) changed outside every face")
                if !inside { return }
            }
        }
        if let tiffinfo = ["/usr/bin/tiffinfo", "/bin/tiffinfo"].first(where: FileManager.default.isExecutableFile) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: tiffinfo)
            p.arguments = [written]
            let pipe = Pipe()
            p.standardOutput = pipe
            p.standardError = Pipe()
            try p.run()
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(text.contains("Bits/Sample: 16"), "\(text)")
        }
        // A re-blend at another weight composites the 16-bit photo again.
        let half = try restorer.reblend(result, weight: 0.5)
        let half16 = try #require(half.image16)
        #expect(half16 != out16 && half16.width == out16.width)
    }
}
