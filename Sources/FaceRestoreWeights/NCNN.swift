// ncnn models (Tencent/ncnn `src/net.cpp` load_param, `src/paramdict.cpp`, `src/modelbin.cpp`,
// and each layer's `load_model`; read at commit 098d067): a text `.param` graph (magic 7767517,
// then "layers blobs", then one line per layer: type, name, bottom and top counts, blob names,
// `id=value` parameters, `-23300-id=count,v,…` arrays) and a `.bin` of weights with no index —
// each layer that has weights reads its blobs in order. A weight blob starts with a 4-byte tag:
// 0x01306B47 fp16 (padded to 4 bytes), 0x000D4B38 int8, 0 raw float32, other nonzero tags a
// 256-entry float table with uint8 indices. Biases and PReLU slopes are raw float32 without a tag.
// fp16 and float32 blobs are used in place from the mapped file. Nothing is executed.

import Foundation

/// One `.param` value: an int, a float or an array (ncnn decides by the presence of `.`/`e`).
public enum NCNNParam: Sendable, Equatable {
    case int(Int)
    case float(Float)
    case array([Float])

    public var intValue: Int? {
        switch self {
        case .int(let v): return v
        case .float(let v): return v.exactInt
        case .array: return nil
        }
    }

    public var floatValue: Float? {
        switch self {
        case .int(let v): return Float(v)
        case .float(let v): return v
        case .array: return nil
        }
    }
}

public struct NCNNLayer: Sendable {
    public let type: String
    public let name: String
    public let bottoms: [String]
    public let tops: [String]
    public let params: [Int: NCNNParam]

    public func int(_ id: Int, default value: Int) -> Int { params[id]?.intValue ?? value }
    public func float(_ id: Int, default value: Float) -> Float { params[id]?.floatValue ?? value }
    public func array(_ id: Int) -> [Float]? { if case .array(let a)? = params[id] { return a }; return nil }
}

/// An ncnn model: its layers and their weights, named `<layer>.weight`, `<layer>.bias` (conv) and
/// `<layer>.slope` (PReLU). Convolution weights have PyTorch's `[out, in, kh, kw]` shape.
public struct NCNNModel: Sendable {
    public let paramPath: String
    public let binPath: String
    public let layers: [NCNNLayer]
    public let weights: StateDict

    public static let magic = 7_767_517

    public init(paramPath: String, binPath: String) throws {
        self.paramPath = paramPath
        self.binPath = binPath
        // Mapped and decoded here: Foundation's file readers leak a buffer on an empty file (found
        // by fuzzing).
        let param = try MappedFile(path: paramPath)
        guard let text = String(validating: param.bytes, as: UTF8.self) else {
            throw WeightsError.unreadable(path: paramPath, reason: "not a UTF-8 text file")
        }
        layers = try Self.parse(text, path: paramPath)
        weights = try Self.readWeights(layers, file: try MappedFile(path: binPath))
    }

    /// Opens `X.param` with `X.bin` beside it (either path may be given).
    public init(path: String) throws {
        let base = path.hasSuffix(".param") ? String(path.dropLast(6)) : path.hasSuffix(".bin") ? String(path.dropLast(4)) : path
        try self.init(paramPath: base + ".param", binPath: base + ".bin")
    }

    static func parse(_ text: String, path: String) throws -> [NCNNLayer] {
        var lines = text.split(whereSeparator: \.isNewline).map { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }) }
        lines.removeAll { $0.isEmpty }
        guard let first = lines.first, first.count == 1, Int(first[0]) == magic else {
            throw WeightsError.corrupt(path: path, detail: "not an ncnn .param file (no magic 7767517 on the first line)")
        }
        guard lines.count >= 2, lines[1].count == 2, let layerCount = Int(lines[1][0]), layerCount >= 0 else {
            throw WeightsError.corrupt(path: path, detail: "the layer and blob counts are missing")
        }
        guard lines.count - 2 == layerCount else {
            throw WeightsError.truncated(path: path, detail: "\(layerCount) layers declared, \(lines.count - 2) found")
        }
        return try lines.dropFirst(2).enumerated().map { index, f in
            let line = index + 3
            // 4 + nb + nt <= f.count, written so that no count can overflow it.
            guard f.count >= 4, let nb = Int(f[2]), let nt = Int(f[3]), nb >= 0, nt >= 0, nb <= f.count - 4, nt <= f.count - 4 - nb else {
                throw WeightsError.corrupt(path: path, detail: "line \(line): malformed layer")
            }
            var params: [Int: NCNNParam] = [:]
            for item in f.dropFirst(4 + nb + nt) {
                let kv = item.split(separator: "=", maxSplits: 1)
                guard kv.count == 2, let id = Int(kv[0]) else {
                    throw WeightsError.corrupt(path: path, detail: "line \(line): malformed parameter '\(item)'")
                }
                if id <= -23300 {
                    let parts = kv[1].split(separator: ",")
                    guard let n = parts.first.flatMap({ Int($0) }), n == parts.count - 1 else {
                        throw WeightsError.corrupt(path: path, detail: "line \(line): malformed array parameter '\(item)'")
                    }
                    let values = try parts.dropFirst().map { s -> Float in
                        guard let v = Float(s) else { throw WeightsError.corrupt(path: path, detail: "line \(line): bad number '\(s)'") }
                        return v
                    }
                    params[-id - 23300] = .array(values)
                } else if kv[1].contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) {
                    guard let v = Float(kv[1]) else { throw WeightsError.corrupt(path: path, detail: "line \(line): bad number '\(kv[1])'") }
                    params[id] = .float(v)
                } else {
                    guard let v = Int(kv[1]) else { throw WeightsError.corrupt(path: path, detail: "line \(line): bad number '\(kv[1])'") }
                    params[id] = .int(v)
                }
            }
            return NCNNLayer(type: String(f[0]), name: String(f[1]), bottoms: f[4..<(4 + nb)].map(String.init),
                             tops: f[(4 + nb)..<(4 + nb + nt)].map(String.init), params: params)
        }
    }

    /// Layer types whose `load_model` reads nothing.
    static let weightless: Set<String> = ["Input", "Split", "Concat", "Eltwise", "BinaryOp", "Interp", "PixelShuffle",
                                          "ReLU", "Sigmoid", "Softmax", "Reshape", "Permute", "Crop", "Padding",
                                          "Pooling", "Flatten", "Clip", "TanH", "Noop", "Dropout"]

    static func readWeights(_ layers: [NCNNLayer], file: MappedFile) throws -> StateDict {
        let b = file.bytes, path = file.path
        var offset = 0
        var names: [String] = [], tensors: [String: WeightTensor] = [:]
        func add(_ name: String, _ t: WeightTensor) {
            names.append(name)
            tensors[name] = t
        }
        let sizes = CheckedSize(path: path)
        func need(_ n: Int, _ what: String) throws {
            guard n >= 0, n <= b.count - offset else {
                throw WeightsError.truncated(path: path, detail: "\(what) needs \(n) bytes at byte \(offset), \(b.count - offset) left")
            }
        }
        func raw(_ count: Int, shape: [Int], _ what: String) throws -> WeightTensor {
            let bytes = try sizes.multiply(count, 4, what)
            try need(bytes, what)
            defer { offset += bytes }
            return WeightTensor(dtype: .float32, shape: shape, data: ByteRegion(owner: file, base: file.base + offset, count: bytes))
        }
        func tagged(_ count: Int, shape: [Int], _ what: String) throws -> WeightTensor {
            try need(4, what)
            let tag = b.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian
            let f = (0..<4).map { Int(b[offset + $0]) }
            offset += 4
            switch tag {
            case 0x0130_6B47:
                let bytes = try sizes.add(sizes.multiply(count, 2, what), 3, what) / 4 * 4
                try need(bytes, what)
                defer { offset += bytes }
                return WeightTensor(dtype: .float16, shape: shape, data: ByteRegion(owner: file, base: file.base + offset, count: count * 2))
            case 0x000D_4B38:
                throw WeightsError.unsupported(path: path, detail: "\(what) is int8-quantized")
            case 0x0002_C056:
                return try raw(count, shape: shape, what)
            default:
                if f[0] == 0 && f.reduce(0, +) == 0 { return try raw(count, shape: shape, what) }
                // A 256-entry table and one uint8 index per value.
                try need(try sizes.add(256 * 4, sizes.add(count, 3, what) / 4 * 4, what), what)
                let table = (0..<256).map { Float(bitPattern: b.loadUnaligned(fromByteOffset: offset + $0 * 4, as: UInt32.self).littleEndian) }
                offset += 256 * 4
                let values = (0..<count).map { table[Int(b[offset + $0])] }
                offset += (count + 3) / 4 * 4
                return WeightTensor(shape: shape, floats: values)
            }
        }
        for layer in layers {
            switch layer.type {
            case "Convolution":
                let out = layer.int(0, default: 0), kw = layer.int(1, default: 0), kh = layer.int(11, default: kw)
                let size = layer.int(6, default: 0)
                let kernel = try sizes.product([out, kw, kh], "layer \(layer.name) kernel")
                guard out > 0, kw > 0, kh > 0, size > 0, size % kernel == 0 else {
                    throw WeightsError.corrupt(path: path, detail: "layer \(layer.name): weight_data_size \(size) does not fit \(out)×\(kh)×\(kw)")
                }
                guard layer.int(8, default: 0) == 0 else {
                    throw WeightsError.unsupported(path: path, detail: "layer \(layer.name) is int8-quantized")
                }
                add(layer.name + ".weight", try tagged(size, shape: [out, size / kernel, kh, kw], "layer \(layer.name) weights"))
                if layer.int(5, default: 0) != 0 { add(layer.name + ".bias", try raw(out, shape: [out], "layer \(layer.name) bias")) }
            case "PReLU":
                let n = layer.int(0, default: 0)
                guard n > 0 else { throw WeightsError.corrupt(path: path, detail: "layer \(layer.name): num_slope \(n)") }
                add(layer.name + ".slope", try raw(n, shape: [n], "layer \(layer.name) slopes"))
            default:
                guard weightless.contains(layer.type) else {
                    throw WeightsError.unsupported(path: file.path, detail: "ncnn layer type \(layer.type) (\(layer.name)) is not supported")
                }
            }
        }
        guard offset == b.count else {
            throw WeightsError.corrupt(path: path, detail: "\(b.count - offset) bytes left over after the last layer's weights (a .bin of another model?)")
        }
        return StateDict(names: names, tensors: tensors)
    }
}
