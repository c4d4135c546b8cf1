// `facerestore restore` with a GPEN model against yangxy/GPEN's FaceEnhancement.process (fixtures
// from scripts/make_fixtures.py `make_gpen_photo_cli`): the tiny random GPEN (64²), the real
// MobileNet0.25 detector from ../shared/weights in place of GPEN's (skipped when absent) and GPEN's
// square paste mask; and `--aligned` against FaceGAN.process.

import FaceRestoreImaging
import Foundation
import Testing

@Suite struct GPENCommand {
    let tiny = modelsFixtures.appendingPathComponent("gpen_tiny64.pth").path

    func restore(_ photo: String, _ extra: [String]) throws -> (URL, RunResult) {
        let out = try temporaryFolder("gpen")
        let r = try run(["restore", "-i", repoRoot.appendingPathComponent("examples/\(photo)").path, "-o", out.path,
                         "--model-path", tiny, "--detector", sharedDetector!, "--no-parse", "--threads", "2", "--ext", "png"] + extra)
        return (out, r)
    }

    func expected(_ name: String) throws -> PixelImage {
        try ImageIO.read(path: photoExpected.appendingPathComponent(name).path).image
    }

    /// GPEN's defaults (-s 1, threshold 0.9) and `--alpha` on a photo with two faces.
    @Test(.enabled(if: sharedDetector != nil, "../shared/weights is absent"))
    func groupPhotoMatchesGPENPipeline() throws {
        let (out, r) = try restore("group.jpg", ["--alpha", "0.8"])
        defer { try? FileManager.default.removeItem(at: out) }
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("restored 2 faces in 1 image"))
        let ours = try ImageIO.read(path: out.path + "/restored_imgs/group.png").image
        let theirs = try expected("gpen_group_s1.png")
        #expect(ours.width == theirs.width && ours.height == theirs.height, "GPEN models default to -s 1")
        let g = grayLevels(ours, theirs)
        #expect(g.within1 >= 0.999, "within 1 gray level: \(g.within1), max diff \(g.maxDiff)")
        for i in 0..<2 {
            let name = String(format: "group_%02d", i)
            let c = grayLevels(try ImageIO.read(path: out.path + "/cropped_faces/\(name).png").image, try expected("gpen_\(name)_cropped.png"))
            #expect(c.within1 >= 0.99, "crop \(i): within 1 gray level \(c.within1), max diff \(c.maxDiff)")
            let f = grayLevels(try ImageIO.read(path: out.path + "/restored_faces/\(name).png").image, try expected("gpen_\(name)_restored.png"))
            #expect(f.within1 >= 0.99, "restored face \(i): within 1 gray level \(f.within1), max diff \(f.maxDiff)")
        }
        print("gpen group -s 1 --alpha 0.8: \(g.equal * 100)% identical, \(g.within1 * 100)% within 1 gray level, max diff \(g.maxDiff)")
    }

    /// -s 2: GPEN's --use_sr order (resize, then detect and crop on the resized photo).
    @Test(.enabled(if: sharedDetector != nil, "../shared/weights is absent"))
    func upscaledPhotoMatchesGPENPipeline() throws {
        let (out, r) = try restore("astronaut.jpg", ["-s", "2"])
        defer { try? FileManager.default.removeItem(at: out) }
        #expect(r.status == 0, "\(r.stderr)")
        let ours = try ImageIO.read(path: out.path + "/restored_imgs/astronaut.png").image
        #expect(ours.width == 1024 && ours.height == 1024)
        let g = grayLevels(crop(ours, rows: 60..<420, cols: 300..<600), try expected("gpen_astronaut_s2_face.png"))
        #expect(g.within1 >= 0.999, "within 1 gray level: \(g.within1), max diff \(g.maxDiff)")
        print("gpen astronaut -s 2 (face region): \(g.equal * 100)% identical, \(g.within1 * 100)% within 1 gray level, max diff \(g.maxDiff)")
    }

    @Test func alignedFaceMatchesFaceGAN() throws {
        let out = try temporaryFolder("gpen-aligned")
        defer { try? FileManager.default.removeItem(at: out) }
        let r = try run(["restore", "-i", cliFixtures.appendingPathComponent("face.png").path, "-o", out.path, "--aligned",
                         "--model-path", tiny, "--threads", "2", "--seed", "3"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("the seed has no effect"))
        let ours = try ImageIO.read(path: out.path + "/restored_faces/face_00.png").image
        #expect(ours == (try expected("gpen_aligned_face.png")), "GPEN's truncating tensor2img, bit for bit")
    }

    @Test func gpenNamesResolveAndSayWhereToGetThem() throws {
        let home = try temporaryFolder("gpen-home")
        defer { try? FileManager.default.removeItem(at: home) }
        let r = try run(["restore", "-i", cliFixtures.appendingPathComponent("face.png").path, "-o", home.path, "--aligned",
                         "-v", "GPEN-BFR-512"], environment: ["FACERESTORE_HOME": home.path])
        #expect(r.status != 0)
        #expect(r.stderr.contains("GPEN-BFR-512.pth"), "\(r.stderr)")
        #expect(r.stderr.contains("public-vigen-video.oss-cn-shanghai.aliyuncs.com/robin/models/GPEN-BFR-512.pth"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count <= 2, "\(r.stderr)")
    }
}
