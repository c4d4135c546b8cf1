// Hostile weight files: sizes that overflow, allocations bigger than the file, pickles that nest
// a million deep, contain themselves or hold 300,000 keys, ncnn parameters out of range. Each is
// refused with one WeightsError (or read in linear time), quickly, without trapping.

@testable import FaceRestoreWeights
import Foundation
import Testing

private func temporaryFile(_ name: String, _ bytes: [UInt8]) throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("frhostile-\(getpid())-\(UUID().uuidString.prefix(6))-\(name)")
    try Data(bytes).write(to: url)
    return url.path
}

/// Runs `body` and checks it took under `seconds` (a guard against accidental quadratic work,
/// with a wide margin for a loaded debug build).
private func quickly<T>(_ seconds: Double = 5, _ body: () throws -> T) rethrows -> T {
    let start = Date()
    defer { #expect(Date().timeIntervalSince(start) < seconds) }
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
