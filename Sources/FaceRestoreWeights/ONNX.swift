// ONNX models (onnx/onnx `onnx/onnx.proto`, IR version 3 and later): the graph's initializers as
// named tensors, plus its nodes (operator, name, inputs, outputs, attributes) so that a model
// whose initializers carry anonymous names (`onnx::Conv_587`) can be mapped onto a module tree by
// the node that consumes them. Only the protobuf wire format is parsed: nothing is executed, and
// external-data tensors are refused. Raw tensor data is used in place, from the mapped file.

import Foundation

/// One attribute value of an ONNX node.
public enum ONNXAttribute: Sendable {
    case int(Int64)
    case float(Float)
    case string(String)
    case ints([Int64])
    case floats([Float])
    case tensor(WeightTensor)
    case other
}

/// One ONNX graph node.
public struct ONNXNode: Sendable {
    public var name = ""
    public var opType = ""
    public var inputs: [String] = []
    public var outputs: [String] = []
    public var attributes: [String: ONNXAttribute] = [:]

    public func ints(_ key: String) -> [Int]? {
        if case .ints(let v)? = attributes[key] { return v.map { Int($0) } }
        return nil
    }

    public func int(_ key: String) -> Int? {
        if case .int(let v)? = attributes[key] { return Int(v) }
        return nil
    }

    public func float(_ key: String) -> Float? {
        if case .float(let v)? = attributes[key] { return v }
        return nil
    }
}

/// An ONNX model's graph.
public struct ONNXModel: Sendable {
    public let path: String
    public let producer: String
    public let irVersion: Int
    public let nodes: [ONNXNode]
    /// The graph's initializers, in file order.
    public let initializers: StateDict
    public let inputs: [String]
    public let outputs: [String]

    public init(path: String) throws {
        try self.init(MappedFile(path: path))
    }

    init(_ file: MappedFile) throws {
        path = file.path
        var producer = "", version = "", ir = 0
        var graph: UnsafeRawBufferPointer?
        var r = ProtoReader(file.bytes, path: file.path)
        while let (field, value) = try r.next() {
            switch (field, value) {
            case (1, .varint(let v)): ir = Int(truncatingIfNeeded: v)
            case (2, .bytes(let b)): producer = String(decoding: b, as: UTF8.self)
            case (3, .bytes(let b)): version = String(decoding: b, as: UTF8.self)
            case (7, .bytes(let b)): graph = b
            default: break
            }
        }
        guard let graph, ir > 0 else {
            throw WeightsError.corrupt(path: file.path, detail: "not an ONNX model (no IR version or graph)")
        }
        self.producer = version.isEmpty ? producer : "\(producer) \(version)"
        irVersion = ir
        var nodes: [ONNXNode] = [], names: [String] = [], tensors: [String: WeightTensor] = [:]
        var inputs: [String] = [], outputs: [String] = []
        var g = ProtoReader(graph, path: file.path)
        while let (field, value) = try g.next() {
            guard case .bytes(let b) = value else { continue }
            switch field {
            case 1: nodes.append(try Self.node(b, file: file))
            case 5:
                let (name, t) = try Self.tensor(b, file: file)
                if tensors[name] == nil { names.append(name) }
                tensors[name] = t
            case 11, 12:
                var v = ProtoReader(b, path: file.path)
                while let (f, x) = try v.next() {
                    if f == 1, case .bytes(let s) = x {
                        if field == 11 { inputs.append(String(decoding: s, as: UTF8.self)) } else { outputs.append(String(decoding: s, as: UTF8.self)) }
                    }
                }
            default: break
            }
        }
        self.nodes = nodes
        self.inputs = inputs.filter { tensors[$0] == nil }   // IR < 4 lists initializers as inputs too
        self.outputs = outputs
        initializers = StateDict(names: names, tensors: tensors)
    }

    private static func node(_ bytes: UnsafeRawBufferPointer, file: MappedFile) throws -> ONNXNode {
        var n = ONNXNode()
        var r = ProtoReader(bytes, path: file.path)
        while let (field, value) = try r.next() {
            guard case .bytes(let b) = value else { continue }
            switch field {
            case 1: n.inputs.append(String(decoding: b, as: UTF8.self))
            case 2: n.outputs.append(String(decoding: b, as: UTF8.self))
            case 3: n.name = String(decoding: b, as: UTF8.self)
            case 4: n.opType = String(decoding: b, as: UTF8.self)
            case 5:
                let (key, attr) = try attribute(b, file: file)
                n.attributes[key] = attr
            default: break
            }
        }
        return n
    }

    private static func attribute(_ bytes: UnsafeRawBufferPointer, file: MappedFile) throws -> (String, ONNXAttribute) {
        var name = "", type = 0
        var f: Float?, i: Int64?, s: String?, t: WeightTensor?
        var floats: [Float] = [], ints: [Int64] = []
        var r = ProtoReader(bytes, path: file.path)
        while let (field, value) = try r.next() {
            switch (field, value) {
            case (1, .bytes(let b)): name = String(decoding: b, as: UTF8.self)
            case (20, .varint(let v)): type = Int(truncatingIfNeeded: v)
            case (2, .fixed32(let v)): f = Float(bitPattern: v)
            case (3, .varint(let v)): i = Int64(bitPattern: v)
            case (4, .bytes(let b)): s = String(decoding: b, as: UTF8.self)
            case (5, .bytes(let b)): t = try tensor(b, file: file).1
            case (7, .fixed32(let v)): floats.append(Float(bitPattern: v))
            case (7, .bytes(let b)): floats += try ProtoReader.packedFixed32(b, path: file.path).map { Float(bitPattern: $0) }
            case (8, .varint(let v)): ints.append(Int64(bitPattern: v))
            case (8, .bytes(let b)): ints += try ProtoReader.packedVarints(b, path: file.path).map { Int64(bitPattern: $0) }
            default: break
            }
        }
        // AttributeType: FLOAT 1, INT 2, STRING 3, TENSOR 4, FLOATS 6, INTS 7.
        switch type {
        case 1: return (name, f.map { .float($0) } ?? .other)
        case 2: return (name, i.map { .int($0) } ?? .other)
        case 3: return (name, s.map { .string($0) } ?? .other)
        case 4: return (name, t.map { .tensor($0) } ?? .other)
        case 6: return (name, .floats(floats))
        case 7: return (name, .ints(ints))
        default: return (name, .other)
        }
    }

    /// A TensorProto: dims, data type, and raw_data (in place) or the typed repeated fields.
    private static func tensor(_ bytes: UnsafeRawBufferPointer, file: MappedFile) throws -> (String, WeightTensor) {
        var name = "", dims: [Int64] = [], dataType = 0
        var raw: UnsafeRawBufferPointer?
        var floats: [Float] = [], int64s: [Int64] = [], int32s: [Int64] = [], doubles: [Double] = []
        var external = false
        var r = ProtoReader(bytes, path: file.path)
        while let (field, value) = try r.next() {
            switch (field, value) {
            case (1, .varint(let v)): dims.append(Int64(bitPattern: v))
            case (1, .bytes(let b)): dims += try ProtoReader.packedVarints(b, path: file.path).map { Int64(bitPattern: $0) }
            case (2, .varint(let v)): dataType = Int(truncatingIfNeeded: v)
            case (4, .fixed32(let v)): floats.append(Float(bitPattern: v))
            case (4, .bytes(let b)): floats += try ProtoReader.packedFixed32(b, path: file.path).map { Float(bitPattern: $0) }
            case (5, .varint(let v)): int32s.append(Int64(Int32(truncatingIfNeeded: v)))
            case (5, .bytes(let b)): int32s += try ProtoReader.packedVarints(b, path: file.path).map { Int64(Int32(truncatingIfNeeded: $0)) }
            case (7, .varint(let v)): int64s.append(Int64(bitPattern: v))
            case (7, .bytes(let b)): int64s += try ProtoReader.packedVarints(b, path: file.path).map { Int64(bitPattern: $0) }
            case (8, .bytes(let b)): name = String(decoding: b, as: UTF8.self)
            case (9, .bytes(let b)): raw = b
            case (10, .fixed64(let v)): doubles.append(Double(bitPattern: v))
            case (10, .bytes(let b)):
                guard b.count % 8 == 0 else { throw WeightsError.corrupt(path: file.path, detail: "packed doubles of \(b.count) bytes") }
                doubles += (0..<(b.count / 8)).map { Double(bitPattern: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))) }
            case (13, _): external = true
            case (14, .varint(let v)): external = external || v == 1
            default: break
            }
        }
        let label = name.isEmpty ? "(unnamed)" : name
        if external {
            throw WeightsError.unsupported(path: file.path, detail: "tensor '\(label)' keeps its data in an external file")
        }
        let types: [Int: DType] = [1: .float32, 2: .uint8, 3: .int8, 5: .int16, 6: .int32, 7: .int64, 9: .bool,
                                   10: .float16, 11: .float64, 16: .bfloat16]
        guard let dtype = types[dataType] else {
            throw WeightsError.unsupported(path: file.path, detail: "tensor '\(label)' has ONNX data type \(dataType)")
        }
        guard dims.allSatisfy({ $0 >= 0 && $0 < 1 << 40 }) else {
            throw WeightsError.corrupt(path: file.path, detail: "tensor '\(label)' has dims \(dims)")
        }
        let shape = dims.map { Int($0) }
        let sizes = CheckedSize(path: file.path)
        let count = try sizes.product(shape, "tensor '\(label)' dims \(shape)")
        let byteCount = try sizes.multiply(count, dtype.byteSize, "tensor '\(label)' of \(count) \(dtype.rawValue) values")
        if let raw {
            guard raw.count == byteCount else {
                throw WeightsError.corrupt(path: file.path, detail: "tensor '\(label)' holds \(raw.count) bytes for shape \(shape) \(dtype.rawValue)")
            }
            return (name, WeightTensor(dtype: dtype, shape: shape, data: ByteRegion(owner: file, base: raw.baseAddress ?? file.base, count: raw.count)))
        }
        // Typed fields: float_data (float), int32_data (int32, int16, int8, uint8, bool, float16
        // bits), int64_data, double_data.
        // The values are in the file, so their number bounds the allocation.
        let held: Int
        switch dtype {
        case .float32: held = floats.count
        case .float64: held = doubles.count
        case .int64: held = int64s.count
        default: held = int32s.count
        }
        guard held == count else {
            throw WeightsError.corrupt(path: file.path, detail: "tensor '\(label)' holds \(held) values for shape \(shape)")
        }
        let owned = OwnedBytes(count: byteCount)
        let p = owned.pointer
        func check(_ n: Int) throws {
            guard n == count else {
                throw WeightsError.corrupt(path: file.path, detail: "tensor '\(label)' holds \(n) values for shape \(shape)")
            }
        }
        switch dtype {
        case .float32: try check(floats.count); for (k, v) in floats.enumerated() { p.storeBytes(of: v, toByteOffset: k * 4, as: Float.self) }
        case .float64: try check(doubles.count); for (k, v) in doubles.enumerated() { p.storeBytes(of: v, toByteOffset: k * 8, as: Double.self) }
        case .int64: try check(int64s.count); for (k, v) in int64s.enumerated() { p.storeBytes(of: v, toByteOffset: k * 8, as: Int64.self) }
        case .int32: try check(int32s.count); for (k, v) in int32s.enumerated() { p.storeBytes(of: Int32(truncatingIfNeeded: v), toByteOffset: k * 4, as: Int32.self) }
        case .int16, .float16, .bfloat16:
            try check(int32s.count); for (k, v) in int32s.enumerated() { p.storeBytes(of: UInt16(truncatingIfNeeded: v), toByteOffset: k * 2, as: UInt16.self) }
        case .int8, .uint8, .bool:
            try check(int32s.count); for (k, v) in int32s.enumerated() { p.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: k, as: UInt8.self) }
        }
        return (name, WeightTensor(dtype: dtype, shape: shape, data: ByteRegion(owner: owned, base: UnsafeRawPointer(p), count: byteCount)))
    }

    /// The initializers with Identity aliases resolved: a name produced by an `Identity` node
    /// whose input is an initializer refers to that initializer's tensor.
    public func constant(_ name: String) -> WeightTensor? {
        if let t = initializers[name] { return t }
        if let n = nodes.first(where: { $0.opType == "Identity" && $0.outputs.first == name }), let source = n.inputs.first {
            return constant(source)
        }
        return nil
    }
}

/// The protobuf wire format: (field number, value) pairs over a byte range.
struct ProtoReader {
    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case bytes(UnsafeRawBufferPointer)
        case fixed32(UInt32)
    }

    let bytes: UnsafeRawBufferPointer
    let path: String
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
    }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard offset < bytes.count else { throw WeightsError.truncated(path: path, detail: "protobuf varint cut short at byte \(offset)") }
            let b = bytes[offset]
            offset += 1
            guard shift < 64 else { throw WeightsError.corrupt(path: path, detail: "protobuf varint longer than 10 bytes") }
            result |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
        }
    }

    private mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= bytes.count - offset else {
            throw WeightsError.truncated(path: path, detail: "protobuf field of \(n) bytes at byte \(offset), \(bytes.count - offset) left")
        }
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)])
    }

    /// The next field, or nil at the end.
    mutating func next() throws -> (Int, Value)? {
        guard offset < bytes.count else { return nil }
        let key = try varint()
        let field = Int(key >> 3)
        guard field > 0 else { throw WeightsError.corrupt(path: path, detail: "protobuf field number 0 at byte \(offset)") }
        switch key & 7 {
        case 0: return (field, .varint(try varint()))
        case 1: return (field, .fixed64(try take(8).loadUnaligned(as: UInt64.self).littleEndian))
        case 2:
            let n = try varint()
            guard n <= UInt64(Int.max) else { throw WeightsError.corrupt(path: path, detail: "protobuf length \(n)") }
            return (field, .bytes(try take(Int(n))))
        case 5: return (field, .fixed32(try take(4).loadUnaligned(as: UInt32.self).littleEndian))
        default: throw WeightsError.corrupt(path: path, detail: "protobuf wire type \(key & 7) at byte \(offset)")
        }
    }

    static func packedVarints(_ b: UnsafeRawBufferPointer, path: String) throws -> [UInt64] {
        var r = ProtoReader(b, path: path), out: [UInt64] = []
        while r.offset < b.count { out.append(try r.varint()) }
        return out
    }

    static func packedFixed32(_ b: UnsafeRawBufferPointer, path: String) throws -> [UInt32] {
        guard b.count % 4 == 0 else { throw WeightsError.corrupt(path: path, detail: "packed fixed32 field of \(b.count) bytes") }
        return (0..<(b.count / 4)).map { UInt32(littleEndian: b.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) }
    }
}
