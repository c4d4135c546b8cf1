// Metadata from input to restored image, checked with exiftool (an independent reader): files
// tagged by exiftool (Artist, XMP title, IPTC keywords, an ICC profile, a resolution, orientation
// 6) go through
// a restoration (the offline fallback's tiny Real-ESRGAN: no detector needed) and
// `RestoreResult.write`; exiftool then reads the same fields, the same ICC bytes, orientation 1
// and a Software tag naming FaceRestore; `stripMetadata` leaves only the Software tag.

import FaceRestore
import Foundation
import Testing

let exiftool: String? = ["/usr/bin/exiftool", "/usr/local/bin/exiftool"].first { FileManager.default.isExecutableFile(atPath: $0) }

func exif(_ args: [String]) throws -> Data {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exiftool!)
    p.arguments = args
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return data
}

/// exiftool's tags of a file (numeric values), by tag name without group.
func exifTags(_ path: String) throws -> [String: Any] {
    let json = try JSONSerialization.jsonObject(with: try exif(["-j", "-n", path])) as? [[String: Any]]
    return json?.first ?? [:]
}

/// A small ICC profile header (a display profile, RGB, no tags): enough for every container.
let iccProfile: [UInt8] = {
    var icc = [UInt8](repeating: 0, count: 132)
    icc[3] = 132
    icc.replaceSubrange(4..<8, with: Array("none".utf8))
    icc[8] = 2; icc[9] = 0x10
    icc.replaceSubrange(12..<16, with: Array("mntr".utf8))
    icc.replaceSubrange(16..<20, with: Array("RGB ".utf8))
    icc.replaceSubrange(20..<24, with: Array("XYZ ".utf8))
    icc.replaceSubrange(36..<40, with: Array("acsp".utf8))
    return icc
}()

@Suite struct MetadataOutput {
    func fallbackRestorer(_ home: URL) throws -> Restorer {
        var config = Restorer.Configuration(model: .named("1.4"))
        config.generalModel = .file(fixture("realesrgan_rrdb_x2_tiny.pth"))
        config.threads = 2
        return try Restorer(config, store: ModelStore(directory: home.path))
    }

    @Test(.enabled(if: exiftool != nil, "exiftool (libimage-exiftool-perl) not installed"), arguments: ["jpg", "png", "tif", "webp"])
    func metadataSurvivesARestoration(_ ext: String) throws {
        let dir = try temporaryFolder("meta-\(ext)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("scan.\(ext)").path
        var px = [UInt8](repeating: 0, count: 16 * 12 * 3)
        for i in px.indices { px[i] = UInt8(truncatingIfNeeded: i * 37) }
        try ImageIO.write(PixelImage(width: 16, height: 12, channels: 3, pixels: px), to: src)
        let icc = dir.appendingPathComponent("profile.icc")
        try Data(iccProfile).write(to: icc)
        var tags = ["-q", "-overwrite_original", "-Artist=Ada Lovelace", "-XMP-dc:Title=Box 3", "-ICC_Profile<=\(icc.path)", "-Orientation#=6"]
        switch ext {
        case "jpg": tags += ["-IPTC:Keywords=archive", "-JFIF:XResolution=300", "-JFIF:YResolution=300", "-JFIF:ResolutionUnit=inches"]
        case "png": tags += ["-IPTC:Keywords=archive", "-PNG:PixelsPerUnitX=11811", "-PNG:PixelsPerUnitY=11811", "-PNG:PixelUnits=meters"]
        case "tif": tags += ["-IPTC:Keywords=archive", "-XResolution=300", "-YResolution=300", "-ResolutionUnit=inches"]
        default: break
        }
        _ = try exif(tags + [src])
        let before = try exifTags(src)
        #expect(before["Artist"] as? String == "Ada Lovelace" && before["Orientation"] as? Int == 6, "exiftool tagged the input")

        let restorer = try fallbackRestorer(dir.appendingPathComponent("models"))
        let result = try restorer.restore(file: src)
        #expect(result.image?.width == 24 && result.image?.height == 32, "orientation 6 applied on read")
        let out = dir.appendingPathComponent("out").path
        let written = try result.write(to: out, options: OutputOptions(restoredImageOnly: true))
        #expect(written == [out + "/restored_imgs/scan.\(ext)"])
        let t = try exifTags(written[0])
        #expect(t["Artist"] as? String == "Ada Lovelace", "\(t)")
        #expect(t["Title"] as? String == "Box 3", "\(t)")
        #expect(t["Orientation"] == nil || t["Orientation"] as? Int == 1, "\(t)")
        #expect((t["Software"] as? String)?.hasPrefix("FaceRestore (") == true, "\(t)")
        #expect([UInt8](try exif(["-b", "-ICC_Profile", written[0]])) == iccProfile)
        if ext != "webp" { #expect(t["Keywords"] as? String == "archive", "IPTC: \(t)") }
        switch ext {
        case "jpg": #expect(String(decoding: try exif(["-s3", "-JFIF:XResolution", "-JFIF:ResolutionUnit", "-n", written[0]]), as: UTF8.self) == "300\n1\n")
        case "png": #expect(t["PixelsPerUnitX"] as? Int == 11811, "\(t)")
        case "tif": #expect(t["XResolution"] as? Int == 300, "\(t)")
        default: break
        }

        let stripped = try result.write(to: dir.appendingPathComponent("stripped").path,
                                        options: OutputOptions(restoredImageOnly: true, stripMetadata: true))
        let s = try exifTags(stripped[0])
        #expect(s["Artist"] == nil && s["Title"] == nil && s["Keywords"] == nil && s["ProfileClass"] == nil, "\(s)")
        #expect((s["Software"] as? String)?.hasPrefix("FaceRestore") == true, "\(s)")
        #expect(try exif(["-b", "-ICC_Profile", stripped[0]]).isEmpty)
    }

    /// HEIF inputs are read only: `auto` writes them as JPEG, with their metadata.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/heif-enc"), "libheif-examples not installed"))
    func heicIsWrittenAsJPEG() throws {
        let dir = try temporaryFolder("meta-heic")
        defer { try? FileManager.default.removeItem(at: dir) }
        let png = dir.appendingPathComponent("src.png").path, heic = dir.appendingPathComponent("phone.heic").path
        try ImageIO.write(PixelImage(width: 16, height: 16, channels: 3, pixels: (0..<768).map { UInt8($0 % 251) }), to: png)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/heif-enc")
        p.arguments = ["-q", "90", png, "-o", heic]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let result = try fallbackRestorer(dir.appendingPathComponent("models")).restore(file: heic)
        let written = try result.write(to: dir.appendingPathComponent("out").path, options: OutputOptions(restoredImageOnly: true))
        #expect(written.first?.hasSuffix("restored_imgs/phone.jpg") == true)
        #expect(ImageFormat.sniff(try Data(contentsOf: URL(fileURLWithPath: written[0]))) == .jpeg)
    }

    @Test func multiPageFilesAreRefusedWithOneLine() throws {
        let dir = try temporaryFolder("pages")
        defer { try? FileManager.default.removeItem(at: dir) }
        let restorer = try fallbackRestorer(dir.appendingPathComponent("models"))
        var decoded = DecodedImage(image: PixelImage(width: 4, height: 4, channels: 3, pixels: [UInt8](repeating: 9, count: 48)),
                                   format: .tiff, sourceChannels: 3, sourceDepth: 8)
        decoded.pageCount = 3
        #expect(throws: ImageError.unsupported(path: "scan", reason: "has 3 pages; FaceRestore restores single-page files")) {
            _ = try restorer.restore(decoded, name: "scan")
        }
    }
}
