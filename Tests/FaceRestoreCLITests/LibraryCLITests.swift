// The CLI is argument mapping over the FaceRestore library: the same job through both gives the
// same bytes, and inputs that used to trap give one line and exit 1.

import FaceRestore
import Foundation
import Testing

/// facexlib's MobileNet0.25 from ../shared/weights, else the ONNX one from the model cache.
let anyDetector: String? = sharedDetector ?? {
    let cached = ModelStore().installPath(ModelCatalog.entry(named: "retinaface-mobilenet0.25-tiny")!)
    return FileManager.default.fileExists(atPath: cached) ? cached : nil
}()

@Suite struct LibraryAndCLI {
    /// A GPEN checkpoint installed as GPEN-BFR-512.pth (the tiny 128² fixture, so a debug build
    /// runs it in seconds; no parser, so GPEN's square mask) in a models folder: the library with
    /// default options and `facerestore restore -v gpen-512` with default flags write the same
    /// files, byte for byte.
    @Test(.enabled(if: anyDetector != nil, "no RetinaFace weights"))
    func gpenThroughTheLibraryEqualsTheCLI() throws {
        let home = try temporaryFolder("gpen-home"), viaCLI = try temporaryFolder("gpen-cli"), viaLibrary = try temporaryFolder("gpen-lib")
        defer { for d in [home, viaCLI, viaLibrary] { try? FileManager.default.removeItem(at: d) } }
        let models = home.appendingPathComponent("models")
        try FileManager.default.createDirectory(at: models, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: modelsFixtures.appendingPathComponent("gpen_tiny128.pth"),
                                         to: models.appendingPathComponent("GPEN-BFR-512.pth"))
        let detectorName = anyDetector!.hasSuffix(".onnx") ? "retinaface_mobilenet0.25_tiny.onnx" : "detection_mobilenet0.25_Final.pth"
        try FileManager.default.copyItem(atPath: anyDetector!, toPath: models.appendingPathComponent(detectorName).path)
        let photo = repoRoot.appendingPathComponent("examples/group.jpg").path

        let r = try run(["restore", "-i", photo, "-o", viaCLI.path, "-v", "gpen-512", "--threads", "2"],
                        environment: ["FACERESTORE_HOME": home.path])
        #expect(r.status == 0, "\(r.stderr)")

        var config = Restorer.Configuration(model: .named("gpen-512"))
        config.threads = 2
        let restorer = try Restorer(config, store: ModelStore(directory: models.path))
        #expect(restorer.recipe == .gpen)
        let result = try restorer.restore(file: photo)
        #expect(result.photo?.usedParsing == false && result.warnings.contains(.noParser(recipe: .gpen, install: "gpen-parsenet")))
        let written = try result.write(to: viaLibrary.path)
        #expect(written.count == 1 + 3 * result.faces.count && result.faces.count >= 1)
        for path in written {
            let relative = String(path.dropFirst(viaLibrary.path.count))
            let cli = try Data(contentsOf: URL(fileURLWithPath: viaCLI.path + relative))
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == cli, "\(relative) differs")
        }
    }

    @Test func toolVersionIsTopLevelAndDashVIsTheModel() throws {
        let top = try run(["--version"])
        #expect(top.status == 0 && top.stdout == faceRestoreVersion + "\n")
        let home = try temporaryFolder("version-home")
        defer { try? FileManager.default.removeItem(at: home) }
        let face = cliFixtures.appendingPathComponent("face.png").path
        let r = try run(["restore", "--aligned", "-i", face, "--version", "1.4"], environment: ["FACERESTORE_HOME": home.path])
        #expect(r.status == 2 && r.stderr.contains("GFPGAN v1.4 is not installed"), "\(r.stderr)")
        let help = try run(["restore", "--help"])
        #expect(help.stdout.contains("(values: realesrgan, none"), "choices are listed: \(help.stdout)")
    }

    /// Used to trap (rc 132) after both networks had run.
    @Test(.enabled(if: anyDetector != nil, "no RetinaFace weights"))
    func smallFaceModelWithAParserIsOneLine() throws {
        let r = try run(["restore", "-i", repoRoot.appendingPathComponent("examples/grace_hopper.jpg").path, "-o", try temporaryFolder("p").path,
                         "--model-path", modelsFixtures.appendingPathComponent("gfpgan_clean_tiny.pth").path,
                         "--detector", anyDetector!, "--parser", modelsFixtures.appendingPathComponent("parsenet_layout.pth").path])
        #expect(r.status == 2)
        #expect(r.stderr.hasSuffix("gfpgan_clean_tiny.pth: restores 32² faces, but the face-parsing paste mask needs 512² faces (paste back without the parser)\n"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
    }

    /// A checkpoint whose network produces NaN (the full-size layout fixture's placeholder
    /// weights) used to trap converting NaN to a byte; now that input fails with one line.
    @Test(.enabled(if: anyDetector != nil, "no RetinaFace weights"))
    func nonFiniteNetworkOutputIsOneLine() throws {
        let r = try run(["restore", "-i", cliFixtures.appendingPathComponent("face.png").path, "-o", try temporaryFolder("nan").path, "--aligned",
                         "--model-path", cliFixtures.appendingPathComponent("gfpgan_v1.4_layout.pth").path, "--threads", "2"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("face.png: tensor2img: the network produced NaN or infinite values"), "\(r.stderr)")
    }

    /// In a photo, a face whose restoration is NaN stays as it is, with a warning naming the model
    /// and the face; the image is written and the run succeeds.
    @Test(.enabled(if: anyDetector != nil, "no RetinaFace weights"))
    func nonFiniteFaceIsLeftUnrestoredWithAWarning() throws {
        let out = try temporaryFolder("nanphoto")
        let r = try run(["restore", "-i", repoRoot.appendingPathComponent("examples/grace_hopper.jpg").path, "-o", out.path, "--no-parse",
                         "--detector", anyDetector!, "--model-path", cliFixtures.appendingPathComponent("gfpgan_v1.4_layout.pth").path,
                         "--threads", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("grace_hopper.jpg: GFPGANv1Clean produced NaN or infinite values for face 1, left unrestored"), "\(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("restored_imgs/grace_hopper.jpg").path))
    }

    /// `a.jpg` and `a.png` in one folder: the second's outputs get their own name, said once;
    /// stale temporary files of a dead process are removed, a live one's kept; an output path
    /// through a file is named in words.
    @Test(.enabled(if: anyDetector != nil, "no RetinaFace weights"))
    func outputNamesNeverCollideAndStaleTemporaryFilesGo() throws {
        let input = try temporaryFolder("collide"), out = try temporaryFolder("collide-out")
        let face = try Data(contentsOf: repoRoot.appendingPathComponent("examples/group.jpg"))
        try face.write(to: input.appendingPathComponent("a.jpg"))
        try FileManager.default.copyItem(at: cliFixtures.appendingPathComponent("face.png"), to: input.appendingPathComponent("a.png"))
        let imgs = out.appendingPathComponent("restored_imgs")
        try FileManager.default.createDirectory(at: imgs, withIntermediateDirectories: true)
        let dead = imgs.appendingPathComponent(".a.jpg.tmp-2147483646-deadbeef"), live = imgs.appendingPathComponent(".a.jpg.tmp-\(getpid())-0badf00d")
        try Data([1]).write(to: dead)
        try Data([1]).write(to: live)
        let args = ["--model-path", modelsFixtures.appendingPathComponent("gfpgan_clean_tiny.pth").path, "--detector", anyDetector!, "--no-parse"]
        let r = try run(["restore", "-i", input.path, "-o", out.path] + args)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("a.png: another input has the same name; its outputs are named a_png"))
        #expect(FileManager.default.fileExists(atPath: imgs.appendingPathComponent("a.jpg").path))
        #expect(FileManager.default.fileExists(atPath: imgs.appendingPathComponent("a_png.png").path))
        #expect(!FileManager.default.fileExists(atPath: dead.path), "a dead process's temporary file is removed")
        #expect(FileManager.default.fileExists(atPath: live.path), "a live process's is kept")

        let file = out.appendingPathComponent("plain-file")
        try Data([1]).write(to: file)
        let bad = try run(["restore", "-i", input.appendingPathComponent("a.jpg").path, "-o", file.appendingPathComponent("out").path] + args)
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("\(file.path) is a file, not a folder") && !bad.stderr.contains("NSCocoaErrorDomain"), "\(bad.stderr)")
    }
}
