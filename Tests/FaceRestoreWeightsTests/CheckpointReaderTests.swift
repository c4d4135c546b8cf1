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

/// Lightning checkpoints (scripts/make_lightning_fixtures.py): hyper-parameter configs, callbacks,
/// numpy scalars and optimizer states around the state dict, as inert values.
@Suite struct LightningCheckpoints {
    /// The fixture's state dict, in file order (the generator's STATE).
    static let state: [(String, [Int])] = [
        ("vqvae.encoder.conv_in.weight", [2, 3, 3, 3]), ("vqvae.encoder.conv_in.bias", [2]),
        ("vqvae.quantize.embedding.weight", [4, 2]), ("vqvae.decoder.conv_out.weight", [3, 2, 1, 1]),
        ("vqvae.decoder.conv_out.bias", [3]), ("loss.discriminator.main.0.weight", [1, 3, 1, 1]),
        ("loss.discriminator.main.0.bias", [1]),
    ]

    /// Tensor `i`'s values: (k + 1)·0.25·(−1)^k + i.
    static func values(_ i: Int, _ count: Int) -> [Float] {
        (0..<count).map { k in Float(k + 1) * 0.25 * (k % 2 == 0 ? 1 : -1) + Float(i) }
    }

    @Test(arguments: ["lightning.ckpt", "lightning_p4.ckpt"])
    func stateDictLoadsAroundTrainingObjects(_ file: String) throws {
        let (sd, format) = try WeightsFile.load(path: fixturePath(file))
        #expect(format == .torchZip)
        #expect(sd.wrapper == "state_dict")
        #expect(sd.strippedPrefix == nil)
        #expect(sd.names == Self.state.map(\.0))
        for (i, (name, shape)) in Self.state.enumerated() {
            let t = try #require(sd[name])
            #expect(t.dtype == .float32 && t.shape == shape, "\(name)")
            #expect(t.floats() == Self.values(i, shape.reduce(1, *)), "\(name)")
        }
        #expect(sd.skippedEntries == ["epoch", "global_step", "pytorch-lightning_version", "callbacks", "optimizer_states",
                                      "lr_schedulers", "hparams_name", "hyper_parameters", "loops"])
    }

    /// The optimizer states' tensors are storage references only: the archive's storages are
    /// mapped regions of the file, and only the state dict's tensors are made from them.
    @Test func optimizerTensorsStayInTheFile() throws {
        let file = try MappedFile(path: fixturePath("lightning.ckpt"))
        let (root, storages) = try TorchCheckpoint.readZip(file)
        defer { PickleValue.dismantle([root]) }
        #expect(storages.count > Self.state.count, "Adam's exp_avg, exp_avg_sq and step, the callback's score")
        #expect(storages.values.allSatisfy { $0.owner === file })
        let sd = try WeightsFile.stateDict(from: root, storages: storages, path: file.path)
        #expect(sd.count == Self.state.count)
    }

    /// A Lightning file without `state_dict` (callbacks, optimizer states, hyper-parameters only).
    @Test func aLightningFileWithoutStateDictIsOneLine() throws {
        let path = fixturePath("lightning_no_state_dict.ckpt")
        let error = try #require(throws: WeightsError.self) { try WeightsFile.load(path: path) }
        #expect(error.description.hasPrefix(path + ": ") && error.description.contains("a Lightning checkpoint without 'state_dict'")
                && error.description.contains("'optimizer_states'") && !error.description.contains("\n"), "\(error)")
    }

    @Test func anOpaqueStateDictIsOneErrorNamingItsClass() throws {
        let path = fixturePath("lightning_opaque_state_dict.ckpt")
        let error = try #require(throws: WeightsError.self) { try WeightsFile.load(path: path) }
        #expect(error == .disallowedGlobal(path: path, name: "RestoreFormer.models.vqgan_v1.RestoreFormerModel", use: "the state dict 'state_dict'"))
        #expect(!error.description.contains("\n"))
    }

    /// A complex tensor's storage type is not allow-listed: inert, refused where the state dict needs it.
    @Test func anOpaqueStorageInTheStateDictIsOneErrorNamingIt() throws {
        let path = fixturePath("lightning_opaque_storage.ckpt")
        let error = try #require(throws: WeightsError.self) { try WeightsFile.load(path: path) }
        #expect(error == .disallowedGlobal(path: path, name: "torch.ComplexFloatStorage", use: "entry 'vqvae.window'"))
        #expect(error.description == "\(path): refusing to load: entry 'vqvae.window' comes from 'torch.ComplexFloatStorage', "
                + "which is not a tensor or container type (kept inert; nothing was executed)")
    }
}

@Suite struct HostileAndBrokenFiles {
    /// Globals off the allow-list are inert values, never run; where the checkpoint or a tensor
    /// is needed, the load is refused by the global's name.
    @Test(arguments: [("evil_zip.pth", "posix.system", "the checkpoint"), ("evil_os.pth", "os.system", "the checkpoint"),
                      ("evil_legacy.pth", "builtins.eval", "the checkpoint"), ("evil_global.pth", "__builtin__.set", "entry 'k'")])
    func disallowedGlobalsAreRefusedByName(_ file: String, _ global: String, _ use: String) throws {
        let marker = "/tmp/facerestore-pickle-was-executed"
        try? FileManager.default.removeItem(atPath: marker)
        #expect(throws: WeightsError.disallowedGlobal(path: fixturePath(file), name: global, use: use)) {
            try WeightsFile.load(path: fixturePath(file))
        }
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    /// Every prefix of a valid file is an error (never a crash, never a silent partial load).
    @Test(arguments: ["plain_zip.pth", "plain_legacy.pth", "nested_zip.pth", "lightning.ckpt", "expected.safetensors"])
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

    /// Random byte corruption: a clean error or a successful load, never a crash or a hang (also
    /// without the CRC check, so that damaged pickles reach the reader).
    @Test(arguments: ["plain_zip.pth", "plain_legacy.pth", "lightning.ckpt"])
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
            do { _ = try WeightsFile.load(path: tmp.path, verifyChecksums: false) } catch is WeightsError {}
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
