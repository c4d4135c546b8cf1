// Hostile weight files: sizes that overflow, allocations bigger than the file, pickles that nest
// a million deep, contain themselves, hold 300,000 keys or use unknown globals as tensors, ncnn
// parameters out of range. Each is refused with one WeightsError (or read in linear time), quickly,
// without trapping.

@testable import FaceRestoreWeights
import Foundation
import Testing

private func temporaryFile(_ name: String, _ bytes: [UInt8]) throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("frhostile-\(getpid())-\(UUID().uuidString.prefix(6))-\(name)")
    try Data(bytes).write(to: url)
    return url.path
}

/// Runs `body` and checks it took under `seconds` of this thread's CPU time (a guard against
/// accidental quadratic work; CPU time, not wall time, so a loaded machine cannot fail it).
private func quickly<T>(_ seconds: Double = 5, _ body: () throws -> T) rethrows -> T {
    func cpuSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }
    let start = cpuSeconds()
    defer { #expect(cpuSeconds() - start < seconds, "\(cpuSeconds() - start) s of CPU") }
    return try body()
}

private func safetensors(_ header: String, data: Int = 0) -> [UInt8] {
    let json = Array(header.utf8)
    return withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init) + json + [UInt8](repeating: 0, count: data)
}

private func varint(_ v: UInt64) -> [UInt8] {
    var v = v, out: [UInt8] = []
    repeat {
        out.append(UInt8(v & 0x7f) | (v >= 0x80 ? 0x80 : 0))
        v >>= 7
    } while v > 0
    return out
}

private func field(_ number: UInt64, bytes: [UInt8]) -> [UInt8] { varint(number << 3 | 2) + varint(UInt64(bytes.count)) + bytes }
private func field(_ number: UInt64, varint value: UInt64) -> [UInt8] { varint(number << 3) + varint(value) }

/// An ONNX model whose one initializer has `dims` and the given payload fields.
private func onnx(dims: [UInt64], payload: [UInt8] = []) -> [UInt8] {
    let tensor = dims.flatMap { field(1, varint: $0) } + field(2, varint: 1) + field(8, bytes: Array("w".utf8)) + payload
    return field(1, varint: 7) + field(7, bytes: field(5, bytes: tensor))
}

@Suite struct HostileWeights {
    @Test(arguments: [
        #"{"w": {"dtype": "F32", "shape": [2147483648, 2147483648], "data_offsets": [0, 0]}}"#,
        #"{"w": {"dtype": "F32", "shape": [4294967296, 4294967296, 4294967296], "data_offsets": [0, 0]}}"#,
        #"{"w": {"dtype": "F64", "shape": [2305843009213693952], "data_offsets": [0, 0]}}"#,
        #"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 9223372036854775807]}}"#,
        #"{"w": {"dtype": "F32", "shape": [-1, -4], "data_offsets": [0, 16]}}"#,
    ])
    func safetensorsSizesThatOverflowAreOneError(_ header: String) throws {
        let path = try temporaryFile("x.safetensors", safetensors(header, data: 16))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = try #require(throws: WeightsError.self) { try quickly { _ = try WeightsFile.load(path: path) } }
        #expect("\(error)".hasPrefix(path + ":"))
    }

    @Test(arguments: [[1 << 35, 1 << 35], [1 << 39], [1 << 20, 1 << 20, 1 << 20]] as [[UInt64]])
    func onnxDimsThatOverflowOrNeedMoreThanTheFileAreOneError(_ dims: [UInt64]) throws {
        for payload in [[], field(9, bytes: [0, 0, 0, 0]), field(4, bytes: [0, 0, 0, 0])] {
            let path = try temporaryFile("x.onnx", onnx(dims: dims, payload: payload))
            defer { try? FileManager.default.removeItem(atPath: path) }
            let error = try #require(throws: WeightsError.self) { try quickly { _ = try ONNXModel(path: path) } }
            #expect("\(error)".contains("tensor 'w'"), "\(error)")
        }
    }

    // MARK: pickles

    /// PROTO 2, `body`, STOP.
    private func pickle(_ body: [UInt8]) -> [UInt8] { [0x80, 2] + body + [0x2e] }

    private func load(_ bytes: [UInt8]) throws -> PickleValue {
        try bytes.withUnsafeBytes { raw in
            var reader = PickleReader(bytes: raw) { _ in .none }
            return try reader.load()
        }
    }

    @Test func aMillionNestedTuplesAreFreedWithoutRecursion() throws {
        let body = [UInt8(0x29)] + [UInt8](repeating: 0x85, count: 1_000_000)   // EMPTY_TUPLE, TUPLE1 × 10⁶
        let value = try quickly { try load(pickle(body)) }
        guard case .tuple = value else { Issue.record("not a tuple"); return }
        quickly { PickleValue.dismantle([value]) }
    }

    /// Dicts nested 200,000 deep (each level: key, new dict memoized, SETITEM, POP, GET the new one).
    @Test func deeplyNestedDictsAreRefusedByTheWalk() throws {
        var body: [UInt8] = [0x7d, 0x94]   // EMPTY_DICT, MEMOIZE 0
        for i in 1...200_000 {
            body += [0x8c, 1, UInt8(ascii: "a"), 0x7d, 0x94, 0x73, 0x30, 0x6a] + withUnsafeBytes(of: UInt32(i).littleEndian, Array.init)
        }
        body += [0x30, 0x6a, 0, 0, 0, 0]   // POP, LONG_BINGET 0
        let root = try quickly { try load(pickle(body)) }
        defer { PickleValue.dismantle([root]) }
        let error = try #require(throws: WeightsError.self) {
            try quickly { _ = try WeightsFile.stateDict(from: root, storages: [:], path: "deep.pth") }
        }
        #expect("\(error)".contains("nested deeper than 64"))
    }

    /// 17 bytes of pickle: a dict that holds itself.
    @Test func aDictThatContainsItselfIsOneError() throws {
        let body: [UInt8] = [0x7d, 0x94, 0x8c, 1, UInt8(ascii: "a"), 0x68, 0, 0x73]   // {}, MEMOIZE, "a", BINGET 0, SETITEM
        let root = try load(pickle(body))
        defer { PickleValue.dismantle([root]) }
        let error = try #require(throws: WeightsError.self) { try WeightsFile.stateDict(from: root, storages: [:], path: "self.pth") }
        #expect("\(error)".contains("appears elsewhere"))
    }

    @Test func threeHundredThousandKeysLoadInLinearTime() throws {
        var body: [UInt8] = [0x7d, 0x28]   // EMPTY_DICT, MARK
        for i in 0..<300_000 { body += [0x4a] + withUnsafeBytes(of: Int32(i).littleEndian, Array.init) + [0x4e] }   // BININT i, NONE
        body += [0x75]   // SETITEMS
        let value = try quickly(3) { try load(pickle(body)) }
        defer { PickleValue.dismantle([value]) }
        guard case .dict(let d) = value else { Issue.record("not a dict"); return }
        #expect(d.keys.count == 300_000)
    }

    @Test func valuesLeftOnTheStackAtStopAreRefused() throws {
        #expect(throws: PickleError.self) { _ = try load(pickle([0x4e, 0x4e])) }   // NONE, NONE, STOP
    }

    // MARK: opaque globals

    private func global(_ module: String, _ name: String) -> [UInt8] { [0x63] + Array("\(module)\n\(name)\n".utf8) }
    private func string(_ s: String) -> [UInt8] { [0x8c, UInt8(s.utf8.count)] + Array(s.utf8) }
    private func int32(_ v: Int32) -> [UInt8] { [0x4a] + withUnsafeBytes(of: v.littleEndian, Array.init) }
    private func long(_ v: Int) -> [UInt8] { [0x8a, 8] + withUnsafeBytes(of: Int64(v).littleEndian, Array.init) }   // LONG1
    private func binput(_ i: UInt8) -> [UInt8] { [0x71, i] }
    private func binget(_ i: UInt8) -> [UInt8] { [0x68, i] }

    /// `torch._utils._rebuild_tensor_v2(storage, 0, (n,), (1,))` with `storage` pushed by `storage`.
    private func tensor(_ storage: [UInt8], _ n: Int) -> [UInt8] {
        global("torch._utils", "_rebuild_tensor_v2") + [0x28] + storage + [0x4b, 0] + long(n) + [0x85] + [0x4b, 1, 0x85] + [0x74, 0x52]
    }

    /// Loads with persistent ids "0", "1", … as float32 storages of those keys.
    private func loadWithStorages(_ bytes: [UInt8]) throws -> PickleValue {
        try bytes.withUnsafeBytes { raw in
            var reader = PickleReader(bytes: raw) { pid in
                guard let key = pid.stringValue else { throw PickleError.malformed("pid") }
                return .storage(StorageRef(dtype: .float32, key: key, elementOffset: 0, numel: nil))
            }
            return try reader.load()
        }
    }

    /// Every way of calling or building an unknown global gives an inert value with its name;
    /// BUILD state and items given to it are dropped; the state-dict reader refuses it by name.
    @Test func unknownGlobalsAreInertOpaqueValues() throws {
        var body: [UInt8] = [0x7d, 0x28]   // EMPTY_DICT, MARK
        body += string("reduce") + global("os", "system") + string("touch /tmp/x") + [0x85, 0x52]            // REDUCE
        body += string("newobj") + global("argparse", "Namespace") + [0x29, 0x81, 0x7d] + string("a") + [0x4b, 1, 0x73, 0x62]   // NEWOBJ, BUILD
        body += string("newobj_ex") + global("omegaconf.nodes", "AnyNode") + [0x29, 0x7d, 0x92]              // NEWOBJ_EX
        body += string("inst") + [0x28] + string("x") + [0x69] + Array("builtins\neval\n".utf8)              // INST
        body += string("obj") + [0x28] + global("pathlib", "PosixPath") + string("/") + [0x6f]                // OBJ
        body += string("items") + global("collections", "defaultdict") + global("builtins", "list") + [0x85, 0x52]
        body += [0x28] + string("k") + [0x5d, 0x75] + [0x4e, 0x61] + [0x28, 0x4e, 0x4e, 0x65]                // SETITEMS, APPEND, APPENDS
        body += string("bare") + global("typing", "Any")
        body += [0x75]   // SETITEMS
        let root = try load(pickle(body))
        defer { PickleValue.dismantle([root]) }
        guard case .dict(let d) = root else { Issue.record("not a dict"); return }
        #expect(d.keys.compactMap(\.stringValue) == ["reduce", "newobj", "newobj_ex", "inst", "obj", "items", "bare"])
        #expect(d.values.map(\.opaqueName) == ["os.system", "argparse.Namespace", "omegaconf.nodes.AnyNode", "builtins.eval",
                                                "pathlib.PosixPath", "collections.defaultdict", "typing.Any"])
        #expect(throws: WeightsError.disallowedGlobal(path: "x.ckpt", name: "os.system", use: "entry 'reduce'")) {
            try WeightsFile.stateDict(from: root, storages: [:], path: "x.ckpt")
        }
    }

    @Test func anOpaqueNameIsBounded() throws {
        let root = try load(pickle(global(String(repeating: "m", count: 100_000), "n")))
        #expect(root.opaqueName?.count == PickleReader.maxOpaqueName + 1)
    }

    /// A tensor rebuilt on an opaque storage (or a parameter from it, or a typed rebuild with an
    /// opaque type) is opaque; in the state dict it is one error naming the storage's global.
    @Test func tensorsOnOpaqueStoragesAreRefusedByTheStorageName() throws {
        let storage = global("evil", "Storage") + [0x29, 0x52]   // evil.Storage()
        let parameter = global("torch._utils", "_rebuild_parameter") + tensor(storage, 2) + [0x88, 0x86, 0x52]
        let typed = global("torch._tensor", "_rebuild_from_type_v2") + [0x28] + global("torch._utils", "_rebuild_tensor_v2")
            + global("my.tensors", "Subclass") + [0x29, 0x4e, 0x74, 0x52]
        for (value, name) in [(tensor(storage, 2), "evil.Storage"), (parameter, "evil.Storage"), (typed, "my.tensors.Subclass")] {
            let root = try load(pickle([0x7d] + string("w") + value + [0x73]))
            defer { PickleValue.dismantle([root]) }
            #expect(throws: WeightsError.disallowedGlobal(path: "x.ckpt", name: name, use: "entry 'w'")) {
                try WeightsFile.stateDict(from: root, storages: [:], path: "x.ckpt")
            }
        }
    }

    /// `{"state_dict": {"w": 2 floats}, "optimizer_states": [a 2⁴⁰-element tensor on a 1-float
    /// storage]}`: loads, because tensors outside the chosen state dict are never made.
    @Test func tensorsOutsideTheStateDictAreNeverMaterialized() throws {
        var body: [UInt8] = [0x7d] + string("state_dict") + [0x7d] + string("w") + tensor(string("0") + [0x51], 2) + [0x73, 0x73]
        body += string("optimizer_states") + [0x5d] + tensor(string("1") + [0x51], 1 << 40) + [0x61, 0x73]
        let root = try loadWithStorages(pickle(body))
        defer { PickleValue.dismantle([root]) }
        let floats: [Float] = [1.5, -2]
        let owner = OwnedBytes(count: 12)
        floats.withUnsafeBytes { owner.pointer.copyMemory(from: $0.baseAddress!, byteCount: 8) }
        let storages = ["0": ByteRegion(owner: owner, base: UnsafeRawPointer(owner.pointer), count: 8),
                        "1": ByteRegion(owner: owner, base: UnsafeRawPointer(owner.pointer) + 8, count: 4)]
        let sd = try WeightsFile.stateDict(from: root, storages: storages, path: "x.ckpt")
        #expect(sd.names == ["w"])
        #expect(sd["w"]?.floats() == floats)
        #expect(sd.skippedEntries == ["optimizer_states"])
    }

    /// 300,000 opaque objects each built from the one before (REDUCE with it as the argument):
    /// none keeps its argument, so nothing nests.
    @Test func opaqueObjectsBuiltFromEachOtherStayFlat() throws {
        var body = global("omegaconf.dictconfig", "DictConfig") + binput(0) + [0x30, 0x4e] + binput(1) + [0x30]
        for _ in 0..<300_000 { body += binget(0) + binget(1) + [0x85, 0x52] + binput(1) + [0x30] }
        body += binget(1)
        let root = try quickly { try load(pickle(body)) }
        #expect(root.opaqueName == "omegaconf.dictconfig.DictConfig")
    }

    /// An opaque object whose BUILD state is 300,000 nested tuples: dropped, and freed without recursion.
    @Test func nestedTuplesAsAnOpaqueObjectsStateAreFreed() throws {
        let body = global("omegaconf.dictconfig", "DictConfig") + [0x29, 0x81, 0x29] + [UInt8](repeating: 0x85, count: 300_000) + [0x62]
        let root = try quickly { try load(pickle(body)) }
        #expect(root.opaqueName == "omegaconf.dictconfig.DictConfig")
    }

    /// 300,000 items set and appended on an opaque object: dropped, in linear time.
    @Test func threeHundredThousandItemsOnAnOpaqueObjectAreDropped() throws {
        var body = global("collections", "defaultdict") + [0x29, 0x52, 0x28]
        for i in 0..<Int32(300_000) { body += int32(i) + [0x4e] }
        body += [0x75, 0x28] + [UInt8](repeating: 0x4e, count: 300_000) + [0x65]   // SETITEMS, MARK, NONE × 300,000, APPENDS
        let root = try quickly(3) { try load(pickle(body)) }
        #expect(root.opaqueName == "collections.defaultdict")
    }

    /// `_rebuild_from_type_v2` nested 50,000 deep is refused (it is unwrapped without recursion).
    @Test func deeplyNestedTypedRebuildsAreRefused() throws {
        var body = global("torch._tensor", "_rebuild_from_type_v2") + binput(0) + [0x30] + global("torch", "Tensor") + binput(1) + [0x30, 0x29]
        for _ in 0..<50_000 { body += binput(2) + [0x30, 0x28] + binget(0) + binget(1) + binget(2) + [0x4e, 0x74] }
        body += binput(2) + [0x30] + binget(0) + binget(2) + [0x52]
        #expect(throws: PickleError.self) { try quickly { _ = try load(pickle(body)) } }
    }

    @Test func aPickleOverItsOpcodeBudgetIsRefused() throws {
        let bytes = pickle([0x5d, 0x28] + [UInt8](repeating: 0x4e, count: 1000) + [0x65])   // EMPTY_LIST, MARK, NONE × 1000, APPENDS
        let error = try bytes.withUnsafeBytes { raw in
            try #require(throws: PickleError.self) {
                var reader = PickleReader(bytes: raw, opcodeLimit: 500) { _ in .none }
                _ = try reader.load()
            }
        }
        #expect("\(error)".contains("more than 500 opcodes"))
        let value = try bytes.withUnsafeBytes { raw in
            var reader = PickleReader(bytes: raw, opcodeLimit: 1005) { _ in .none }
            return try reader.load()
        }
        PickleValue.dismantle([value])
    }

    // MARK: ncnn

    @Test(arguments: [
        "7767517\n1 1\nConvolution conv 0 1 out 0=1e30 1=3 6=27\n",
        "7767517\n1 1\nConvolution conv 0 1 out 0=nan 1=3 6=27\n",
        "7767517\n1 1\nConvolution conv 0 1 out 0=4611686018427387904 1=4 6=16\n",
        "7767517\n1 1\nConvolution conv 0 1 out 0=4 1=3 6=9223372036854775800\n",
        "7767517\n1 1\nConvolution conv 0 1 out 0=1 1=1 6=4611686018427387904\n",
        "7767517\n1 1\nPReLU p 0 1 out 0=9223372036854775807\n",
        "7767517\n1 1\nPReLU p 0 1 out 0=2305843009213693952\n",
        "7767517\n1 1\nConvolution conv 9223372036854775807 1 out 0=1 1=1 6=1\n",
        "7767517\n1 1\nConvolution conv 1 9223372036854775807 in out 0=1 1=1 6=1\n",
    ])
    func ncnnParametersOutOfRangeAreOneError(_ param: String) throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("frhostile-\(getpid())-\(UUID().uuidString.prefix(6))").path
        try Data(param.utf8).write(to: URL(fileURLWithPath: base + ".param"))
        try Data([0x47, 0x6b, 0x30, 0x01] + [UInt8](repeating: 0, count: 64)).write(to: URL(fileURLWithPath: base + ".bin"))
        defer { for ext in [".param", ".bin"] { try? FileManager.default.removeItem(atPath: base + ext) } }
        #expect(throws: WeightsError.self) { try quickly { _ = try NCNNModel(path: base + ".param") } }
    }

    // MARK: integrity

    /// One flipped bit in a tensor of a .pth fails the member's CRC-32, named in the error.
    @Test func aFlippedByteInAPthFailsItsCRC() throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixturePath("plain_zip.pth"))))
        let zip = try bytes.withUnsafeBytes { try ZipArchive($0, path: "plain_zip.pth") }
        let member = try #require(zip.order.first { $0.contains("/data/") && (zip.entries[$0]?.size ?? 0) > 0 })
        let entry = try #require(zip.entries[member])
        bytes[entry.dataOffset + entry.size / 2] ^= 0x10
        let path = try temporaryFile("flipped.pth", bytes)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = try #require(throws: WeightsError.self) { _ = try WeightsFile.load(path: path) }
        #expect("\(error)".contains("zip member '\(member)' fails its CRC-32 check"), "\(error)")
        // Without the check (`--no-verify`) the damaged file loads, with the same tensors' names.
        let unchecked = try WeightsFile.load(path: path, verifyChecksums: false).0
        #expect(unchecked.names == (try WeightsFile.load(path: fixturePath("plain_zip.pth")).0.names))
    }
}
