// The archive formats through the command: a face crop saved as TIFF (8 and 16 bits), WebP
// (lossless) and BMP restores to the same bytes as the PNG it came from; a multi-page TIFF and a
// CMYK TIFF are one line each; the help lists the new output formats and --strip-metadata.

import FaceRestoreImaging
import Foundation
import Testing

@Suite struct ArchiveFormatsCommand {
    let face = cliFixtures.appendingPathComponent("face.png").path
    let model = modelsFixtures.appendingPathComponent("gfpgan_clean_tiny.pth").path

    func restoredFace(_ input: String, _ out: URL) throws -> Data {
        let r = try run(["restore", "-i", input, "-o", out.path, "--aligned", "--model-path", model, "--threads", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let name = URL(fileURLWithPath: input).deletingPathExtension().lastPathComponent
        return try Data(contentsOf: out.appendingPathComponent("restored_faces/\(name)_00.png"))
    }

    @Test func losslessArchiveInputsRestoreLikeThePNG() throws {
        let dir = try temporaryFolder("archive-cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let decoded = try ImageIO.read(path: face)
        let reference = try restoredFace(face, dir.appendingPathComponent("png"))
        var inputs: [(String, Data)] = []
        for format in [ImageFormat.tiff, .webp, .bmp] {
            inputs.append((format.rawValue, try ImageIO.encode(decoded.image, format: format, path: "x", options: EncodeOptions())))
        }
        // 16 bits whose high bytes are the PNG's: the pipeline sees the same 8-bit image.
        let wide = PixelImage16(width: decoded.image.width, height: decoded.image.height, channels: 3,
                                pixels: decoded.image.pixels.map { UInt16($0) << 8 | 0x5A })
        inputs.append(("tiff16", try ImageIO.encode16(wide, format: .tiff, path: "x")))
        for (name, data) in inputs {
            let ext = name == "tiff16" ? "tif" : ImageFormat(rawValue: name)!.fileExtension
            let path = dir.appendingPathComponent("\(name).\(ext)").path
            try data.write(to: URL(fileURLWithPath: path))
            #expect(try restoredFace(path, dir.appendingPathComponent("out-\(name)")) == reference, "\(name)")
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/tiffcp"), "libtiff-tools not installed"))
    func multiPageAndCMYKTIFFsAreOneLine() throws {
        let dir = try temporaryFolder("archive-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let page = dir.appendingPathComponent("page.tif").path, pages = dir.appendingPathComponent("pages.tif").path
        try ImageIO.encode(try ImageIO.read(path: face).image, format: .tiff, path: page, options: EncodeOptions()).write(to: URL(fileURLWithPath: page))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/tiffcp")
        p.arguments = [page, page, page, pages]
        try p.run()
        p.waitUntilExit()
        let r = try run(["restore", "-i", pages, "-o", dir.appendingPathComponent("out").path, "--aligned", "--model-path", model])
        #expect(r.status == 1)
        #expect(r.stderr.contains("\(pages): unsupported image (has 3 pages; FaceRestore restores single-page files)"), "\(r.stderr)")
    }

    @Test func helpListsTheFormatsAndTheFlag() throws {
        let r = try run(["restore", "--help"])
        #expect(r.stdout.contains("--strip-metadata"))
        #expect(r.stdout.contains("tiff") && r.stdout.contains("webp") && r.stdout.contains("bmp"), "\(r.stdout)")
        let bad = try run(["restore", "-i", face, "--ext", "heic"])
        #expect(bad.status != 0)
    }
}
