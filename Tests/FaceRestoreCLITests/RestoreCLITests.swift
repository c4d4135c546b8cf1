// `facerestore restore --aligned` end to end against the reference steps of
// GFPGANer.enhance(has_aligned=True) on the tiny models (fixture from scripts/make_fixtures.py),
// plus what a user sees on bad input.

import FaceRestoreImaging
import FaceRestoreWeights
import Foundation
import Testing

let modelsFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("FaceRestoreModelsTests/Fixtures")
let alignedExpected = try! SafeTensors.read(path: cliFixtures.appendingPathComponent("aligned_expected.safetensors").path)

func temporaryFolder(_ name: String) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fr-\(name)-\(getpid())-\(UUID().uuidString.prefix(6))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

func pixels(_ t: WeightTensor) -> [UInt8] { t.floats().map { UInt8($0) } }

@Suite struct RestoreCommand {
    let face = cliFixtures.appendingPathComponent("face.png").path

    @Test(arguments: ["gfpgan_clean_tiny", "gfpgan_v1_tiny"])
    func alignedMatchesReferencePipeline(_ model: String) throws {
        let out = try temporaryFolder("aligned")
        defer { try? FileManager.default.removeItem(at: out) }
        let r = try run(["restore", "-i", face, "-o", out.path, "--aligned", "--model-path",
                         modelsFixtures.appendingPathComponent("\(model).pth").path, "--threads", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let cropped = try ImageIO.read(path: out.path + "/cropped_faces/face_00.png").image
        let restored = try ImageIO.read(path: out.path + "/restored_faces/face_00.png").image
        let cmp = try ImageIO.read(path: out.path + "/cmp/face_00.png").image
        #expect(cropped.pixels == pixels(alignedExpected["\(model).cropped"]!))
        let expected = pixels(alignedExpected["\(model).restored"]!)
        let diffs = zip(restored.pixels, expected).map { abs(Int($0) - Int($1)) }
        #expect(diffs.max()! <= 1)
        #expect(Double(diffs.filter { $0 == 0 }.count) / Double(diffs.count) >= 0.999)
        #expect(cmp.width == 2 * restored.width && cmp.height == restored.height)
    }

    @Test func seedReproducesUpstreamFreshNoise() throws {
        let out = try temporaryFolder("seed")
        defer { try? FileManager.default.removeItem(at: out) }
        let model = modelsFixtures.appendingPathComponent("gfpgan_clean_tiny.pth").path
        let r = try run(["restore", "-i", face, "-o", out.path, "--aligned", "--model-path", model, "--seed", "7"])
        #expect(r.status == 0, "\(r.stderr)")
        let restored = try ImageIO.read(path: out.path + "/restored_faces/face_00.png").image
        let expected = pixels(alignedExpected["gfpgan_clean_tiny.restored_seed7"]!)
        #expect(zip(restored.pixels, expected).map { abs(Int($0) - Int($1)) }.max()! <= 1)
        #expect(expected != pixels(alignedExpected["gfpgan_clean_tiny.restored"]!))   // the seed matters
    }

    @Test func outputIsDeterministic() throws {
        let (a, b) = (try temporaryFolder("det-a"), try temporaryFolder("det-b"))
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        let model = modelsFixtures.appendingPathComponent("gfpgan_v1_tiny.pth").path
        for dir in [a, b] { _ = try run(["restore", "-i", face, "-o", dir.path, "--aligned", "--model-path", model, "--suffix", "x"]) }
        for sub in ["cropped_faces/face_00.png", "restored_faces/face_00_x.png", "cmp/face_00.png"] {
            #expect(try Data(contentsOf: a.appendingPathComponent(sub)) == Data(contentsOf: b.appendingPathComponent(sub)))
        }
    }

    @Test func batchGoesOnPastBadFilesAndListsThem() throws {
        let input = try temporaryFolder("batch-in"), out = try temporaryFolder("batch-out")
        defer { try? FileManager.default.removeItem(at: input); try? FileManager.default.removeItem(at: out) }
        try FileManager.default.copyItem(atPath: face, toPath: input.path + "/a_good.png")
        FileManager.default.createFile(atPath: input.path + "/b_empty.jpg", contents: Data())
        FileManager.default.createFile(atPath: input.path + "/c_notes.txt", contents: Data("not an image".utf8))
        let png = try Data(contentsOf: URL(fileURLWithPath: face))
        FileManager.default.createFile(atPath: input.path + "/d_truncated.png", contents: png.prefix(png.count / 2))
        try FileManager.default.copyItem(atPath: face, toPath: input.path + "/e_good.png")
        let r = try run(["restore", "-i", input.path, "-o", out.path, "--aligned", "--model-path",
                         modelsFixtures.appendingPathComponent("gfpgan_clean_tiny.pth").path])
        #expect(r.status == 1)
        #expect(r.stdout.contains("restored 2 faces"))
        #expect(r.stderr.contains("3 of 5 inputs failed"))
        for bad in ["b_empty.jpg", "c_notes.txt", "d_truncated.png"] { #expect(r.stderr.contains(input.path + "/" + bad + ":")) }
        let written = try FileManager.default.contentsOfDirectory(atPath: out.path + "/restored_faces").sorted()
        #expect(written == ["a_good_00.png", "e_good_00.png"])   // no partial or temporary files
    }

    @Test func missingModelSaysWhatToGetAndWhere() throws {
        let home = try temporaryFolder("home")
        defer { try? FileManager.default.removeItem(at: home) }
        let r = try run(["restore", "-i", face, "--aligned", "-v", "1.4"], environment: ["FACERESTORE_HOME": home.path])
        #expect(r.status == 2)
        #expect(r.stderr == "facerestore: GFPGAN v1.4 is not installed: download https://github.com/TencentARC/GFPGAN/releases/download/v1.3.0/GFPGANv1.4.pth (348,632,874 bytes) and put it at \(home.path)/models/GFPGANv1.4.pth, or pass --model-path FILE\n")
    }

    @Test func truncatedDownloadIsCaughtBySize() throws {
        let home = try temporaryFolder("home-trunc")
        defer { try? FileManager.default.removeItem(at: home) }
        try FileManager.default.createDirectory(atPath: home.path + "/models", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: home.path + "/models/GFPGANv1.4.pth", contents: Data(count: 1000))
        let r = try run(["restore", "-i", face, "--aligned", "-v", "v1.4"], environment: ["FACERESTORE_HOME": home.path])
        #expect(r.status == 2)
        #expect(r.stderr.contains("GFPGANv1.4.pth: 1,000 bytes, but the official file has 348,632,874"))
    }

    @Test func otherArchitecturesAndUnknownVersionsAreOneLine() throws {
        let parse = try run(["restore", "-i", face, "--aligned", "--model-path", modelsFixtures.appendingPathComponent("parsenet_layout.pth").path])
        #expect(parse.status == 2)
        #expect(parse.stderr.hasSuffix("parsenet_layout.pth: this is ParseNet face parsing (19 classes), not a face restoration model (GFPGAN v1/v1.2/v1.3/v1.4 or GPEN)\n"))
        #expect(parse.stderr.split(separator: "\n").count == 1)
        let unknown = try run(["restore", "-i", face, "--aligned", "-v", "2.0"])
        #expect(unknown.status == 2 && unknown.stderr.contains("unknown model '2.0'"))
        let tiny = modelsFixtures.appendingPathComponent("gfpgan_v1_tiny.pth").path
        let wrongDetector = try run(["restore", "-i", face, "--model-path", tiny, "--detector", tiny])
        #expect(wrongDetector.status == 2 && wrongDetector.stderr.contains("not a RetinaFace detector"))
        #expect(wrongDetector.stderr.split(separator: "\n").count == 1, "\(wrongDetector.stderr)")
    }
}
