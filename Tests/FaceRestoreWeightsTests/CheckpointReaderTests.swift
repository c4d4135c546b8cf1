// Reader tests on checkpoints written by torch.save itself (scripts/make_fixtures.py), compared
// with the values the Python `safetensors` package wrote (expected.safetensors).

@testable import FaceRestoreWeights
import Foundation
import Testing

let fixtureDir = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
func fixturePath(_ name: String) -> String { fixtureDir.appendingPathComponent(name).path }
let expected = try! SafeTensors.read(path: fixturePath("expected.safetensors"))

/// The repository's sibling `shared/` folder (real weights), absent on some machines.
let sharedWeights: String? = {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let path = root.deletingLastPathComponent().appendingPathComponent("shared/weights").path
    return FileManager.default.fileExists(atPath: path) ? path : nil
}()

/// The full-size random GFPGAN v1.4 checkpoint the fixture script writes outside the repo.
let bigCheckpoint: String? = {
    let dir = ProcessInfo.processInfo.environment["FACERESTORE_REFERENCE_FIXTURES"]
        ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/facerestore-reference/fixtures").path
    let path = dir + "/gfpgan_v1.4_random.pth"
    return FileManager.default.fileExists(atPath: path) ? path : nil
}()

func expectSameAsExpected(_ sd: StateDict, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(sd.names == expected.names.sorted { (a, b) in expected.names.firstIndex(of: a)! < expected.names.firstIndex(of: b)! }
            || Set(sd.names) == Set(expected.names), sourceLocation: sourceLocation)
    for name in expected.names {
        guard let t = sd[name] else { Issue.record("missing \(name)", sourceLocation: sourceLocation); continue }
        let e = expected[name]!
        #expect(t.shape == e.shape, "\(name) shape", sourceLocation: sourceLocation)
        #expect(t.floats() == e.floats(), "\(name) values", sourceLocation: sourceLocation)
    }
}

@Suite struct TorchCheckpoints {
    @Test(arguments: ["plain_zip.pth", "plain_legacy.pth"])
    func plainStateDict(_ file: String) throws {
        let (sd, format) = try WeightsFile.load(path: fixturePath(file))
        #expect(format == (file.contains("legacy") ? .torchLegacy : .torchZip))
        #expect(sd.wrapper == nil)
        expectSameAsExpected(sd)
        // file order is kept
        #expect(sd.names.first == "conv.weight")
        #expect(sd["half"]?.dtype == .float16)
        #expect(sd["bf16"]?.dtype == .bfloat16)
        #expect(sd["bn.num_batches_tracked"]?.integers() == [17])
        #expect(sd["int_ids"]?.integers() == [0, 1, 2, 3, 4, 5])
        #expect(sd["scalar"]?.shape == [])
        #expect(sd["view.t"]?.isStridedView == true)
        #expect(sd["view.a"]?.isStridedView == false)
    }

    @Test(arguments: ["nested_zip.pth", "nested_legacy.pth"])
    func paramsEmaIsPreferred(_ file: String) throws {
        let (sd, _) = try WeightsFile.load(path: fixturePath(file))
        #expect(sd.wrapper == "params_ema")
        #expect(Set(sd.skippedEntries) == ["params", "iter"])
        expectSameAsExpected(sd)
    }

    @Test func paramsWhenNoEma() throws {
        let (sd, _) = try WeightsFile.load(path: fixturePath("params_only.pth"))
        #expect(sd.wrapper == "params")
        #expect(sd["conv.weight"]!.floats().allSatisfy { $0 == 1 })
    }

    @Test func modulePrefixAndStateDictWrapper() throws {
        let (sd, _) = try WeightsFile.load(path: fixturePath("module_prefix.pth"))
        #expect(sd.wrapper == "state_dict")
        #expect(sd.strippedPrefix == "module.")
        expectSameAsExpected(sd)
    }

    @Test func gEmaWrapper() throws {
        let (sd, _) = try WeightsFile.load(path: fixturePath("g_ema.pth"))
        #expect(sd.wrapper == "g_ema")
        #expect(sd.skippedEntries == ["d"])
        expectSameAsExpected(sd)
    }

    @Test func parameters() throws {
        let (sd, _) = try WeightsFile.load(path: fixturePath("parameter.pth"))
        #expect(sd["w"]?.floats() == expected["conv.weight"]?.floats())
    }

    @Test(.enabled(if: sharedWeights != nil, "../shared/weights is absent"))
    func realRetinaFaceLegacyCheckpoint() throws {
        let (sd, format) = try WeightsFile.load(path: sharedWeights! + "/retinaface_mobilenet0.25_Final.pth")
        #expect(format == .torchLegacy)
        #expect(sd.count == 300)
        #expect(sd.totalElements == 433_343)
        #expect(sd["body.stage1.0.0.weight"]?.shape == [8, 3, 3, 3])
        #expect(sd["body.stage1.0.0.weight"]!.floats().allSatisfy { $0.isFinite })
    }

    @Test(.enabled(if: bigCheckpoint != nil, "run scripts/make_fixtures.py to create the full random checkpoint"))
    func fullSizeGFPGANv14() throws {
        let (sd, _) = try WeightsFile.load(path: bigCheckpoint!)
        #expect(sd.count == 285)
        #expect(sd.totalElements == 87_143_276)
        let w = sd["final_linear.weight"]!.floats()
        #expect(w.count == 33_554_432)
        let mean = w.reduce(0.0) { $0 + Double($1) } / Double(w.count)
        let std = (w.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(w.count)).squareRoot()
        #expect(abs(std - 0.05) < 0.001, "randn·0.05 weights, got σ \(std)")
    }
}

@Suite struct HostileAndBrokenFiles {
    @Test(arguments: [("evil_zip.pth", "posix.system"), ("evil_os.pth", "os.system"), ("evil_legacy.pth", "builtins.eval"), ("evil_global.pth", "__builtin__.set")])
    func disallowedGlobalsAreRefusedByName(_ file: String, _ global: String) throws {
        let marker = "/tmp/facerestore-pickle-was-executed"
        try? FileManager.default.removeItem(atPath: marker)
        #expect(throws: WeightsError.disallowedGlobal(path: fixturePath(file), name: global)) {
            try WeightsFile.load(path: fixturePath(file))
        }
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    /// Every prefix of a valid file is an error (never a crash, never a silent partial load).
    @Test(arguments: ["plain_zip.pth", "plain_legacy.pth", "nested_zip.pth", "expected.safetensors"])
    func everyTruncationIsAnError(_ file: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath(file)))
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("facerestore-trunc-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: tmp) }
        for cut in stride(from: 0, to: data.count, by: max(1, data.count / 400)) {
            try data.prefix(cut).write(to: tmp)
            do {
                _ = try WeightsFile.load(path: tmp.path)
                Issue.record("\(file) cut to \(cut) of \(data.count) bytes loaded without error")
            } catch let e as WeightsError {
                #expect(!e.description.contains("\n"))
                #expect(e.description.hasPrefix(tmp.path))
            }
        }
    }

    /// Random byte corruption: a clean error or a successful load, never a crash or a hang.
    @Test(arguments: ["plain_zip.pth", "plain_legacy.pth"])
    func corruptionNeverCrashes(_ file: String) throws {
        let original = try Data(contentsOf: URL(fileURLWithPath: fixturePath(file)))
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("facerestore-corrupt-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: tmp) }
        var rng = SplitMix64(seed: 7)
        for _ in 0..<300 {
            var data = original
            for _ in 0..<4 { data[Int(rng.next() % UInt64(data.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            try data.write(to: tmp)
            do { _ = try WeightsFile.load(path: tmp.path) } catch is WeightsError {}
        }
    }

    @Test func emptyGarbageAndMissingFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("facerestore-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let empty = dir.appendingPathComponent("empty.pth").path
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        #expect(throws: WeightsError.empty(path: empty)) { try WeightsFile.load(path: empty) }
        let text = dir.appendingPathComponent("notes.pth").path
        _ = FileManager.default.createFile(atPath: text, contents: Data("hello, these are not weights\n".utf8))
        #expect(throws: WeightsError.unknownFormat(path: text)) { try WeightsFile.load(path: text) }
        var rng = SplitMix64(seed: 3)
        let garbage = dir.appendingPathComponent("garbage.pth").path
        _ = FileManager.default.createFile(atPath: garbage, contents: Data((0..<4096).map { _ in UInt8(truncatingIfNeeded: rng.next()) }))
        #expect(throws: WeightsError.self) { try WeightsFile.load(path: garbage) }
        #expect(throws: WeightsError.fileNotFound(path: dir.path + "/missing.pth")) { try WeightsFile.load(path: dir.path + "/missing.pth") }
        #expect(throws: WeightsError.unreadable(path: dir.path, reason: "is a directory")) { try WeightsFile.load(path: dir.path) }
    }
}

@Suite struct SafeTensorsFiles {
    @Test func writeThenReadRoundTrips() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("facerestore-st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("out.safetensors").path
        let tensors = expected.names.map { ($0, expected[$0]!) }
        try SafeTensors.write(tensors, metadata: ["source": "test"], to: path)
        // Only the final file remains: the temporary file was renamed into place.
        let listing = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(listing == ["out.safetensors"])
        let back = try SafeTensors.read(path: path)
        #expect(back.names == expected.names)
        for name in expected.names { #expect(back[name]?.floats() == expected[name]?.floats()) }
        let (viaLoader, format) = try WeightsFile.load(path: path)
        #expect(format == .safetensors)
        #expect(viaLoader.count == expected.count)
    }

    @Test func halfPrecisionConversion() {
        #expect(halfToFloat(0x3c00) == 1)
        #expect(halfToFloat(0xc000) == -2)
        #expect(halfToFloat(0x0001) == Float(bitPattern: 0x3380_0000))   // smallest subnormal, 2⁻²⁴
        #expect(halfToFloat(0x7c00) == .infinity)
        #expect(halfToFloat(0x7e00).isNaN)
        #expect(halfToFloat(0x8000).sign == .minus)
    }
}

/// A small deterministic generator for fuzzing (SplitMix64).
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
