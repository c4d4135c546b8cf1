// dlib's binary serialization of a deep network (`deserialize(path) >> net`), as written by
// davisking/dlib (read at commit 3d40bf5790ca9073c160cebb898800d9f33e12ab): `dlib/serialize.h`
// (integers as a control byte — length in the low nibble, 0x80 = negative — then that many
// little-endian bytes; strings as a length then bytes; bools as '0'/'1'; floats and doubles as a
// `float_details` pair from `dlib/float_details.h`: int64 mantissa, int16 exponent, value =
// mantissa·2^exponent, exponents 32000/32001/32002 = +inf/−inf/NaN), `dlib/cuda/tensor.h`
// (resizable_tensor: version 2, four int64 dimensions n, k, nr, nc, then little-endian float32;
// alias_tensor: version 1 and the four dimensions only), `dlib/dnn/core.h` (add_loss_layer,
// add_layer — its subnetwork first, then its details, three bools and the x_grad, cached_output
// and params_grad tensors; the input-facing add_layer holds the input layer instead —,
// add_tag_layer and add_skip_layer: a version and the subnetwork), `dlib/dnn/layers.h` (con_,
// affine_, relu_, max_pool_, avg_pool_, fc_, add_prev_), `dlib/dnn/input.h`
// (input_rgb_image_sized) and `dlib/dnn/loss.h` (loss_metric_).
//
// The file does not name its wrappers (an add_layer, a tag and a skip each start with a version
// integer), so it is read against the network's structure, outermost layer first, as the C++
// type spells it; every layer's details do name themselves and are checked. Tensors are used in
// place from the mapped file. Every count and size is overflow-checked and bounded by the bytes
// left; nothing is executed.

import Foundation

/// One layer of a dlib network as its type spells it, outermost first (`loss<fc<relu<…>>>`).
public enum DlibNode: Sendable, Equatable {
    case con, affine, relu, maxPool, avgPool, fc
    /// `add_prev<tag>`: this layer's input plus the output of the nearest `tag<tag>` below it.
    case addPrev(tag: Int)
    /// `tag<n>` (marks its input), `skip<n>` (outputs the nearest `tag<n>`'s output).
    case tag(Int), skip(Int)
}

/// A pooling or convolution window: size (0 = the whole input), strides and zero padding.
public struct DlibWindow: Sendable, Equatable, CustomStringConvertible {
    public var rows: Int, cols: Int, strideY: Int, strideX: Int, padY: Int, padX: Int

    public init(rows: Int, cols: Int, strideY: Int, strideX: Int, padY: Int, padX: Int) {
        (self.rows, self.cols, self.strideY, self.strideX, self.padY, self.padX) = (rows, cols, strideY, strideX, padY, padX)
    }

    public var description: String { "\(rows)×\(cols) stride \(strideY),\(strideX) padding \(padY),\(padX)" }
}

/// A layer as read (its weights are in `DlibNetwork.stateDict` under `layers.<index>.`).
public enum DlibLayer: Sendable, Equatable {
    /// `layers.i.weight` [filters, in, rows, cols] (dlib's filters, a correlation as in PyTorch)
    /// and, with a bias, `layers.i.bias` [filters]; `relu`: con_6's fused ReLU.
    case con(DlibWindow, filters: Int, bias: Bool, relu: Bool)
    /// `layers.i.gamma`, `layers.i.beta` (per channel in convolution mode, per value in fc mode);
    /// a disabled affine layer passes its input through.
    case affine(convMode: Bool, disabled: Bool)
    case relu(disabled: Bool)
    case maxPool(DlibWindow)
    case avgPool(DlibWindow)
    /// `layers.i.weight` [inputs, outputs] (output = input·weight) and, with a bias, `layers.i.bias`.
    case fc(outputs: Int, inputs: Int, bias: Bool)
    case addPrev(tag: Int)
    case tag(Int)
    case skip(Int)
}

/// A dlib network read from its serialized file.
public struct DlibNetwork: Sendable {
    public let path: String
    /// The loss layer's version string (e.g. `loss_metric_2`) and, for the metric loss, its margin
    /// and distance threshold.
    public let loss: String
    public let lossParameters: [Float]
    /// `input_rgb_image_sized`: the R, G, B means subtracted (then ÷256), and the image size.
    public let inputMeans: [Float]
    public let inputRows: Int, inputCols: Int
    /// Outermost first: `layers[i]` is dlib's `layer<i>(net)`; the input layer is `layer<count>`.
    public let layers: [DlibLayer]
    public let stateDict: StateDict

    /// The released `dlib_face_recognition_resnet_model_v1.dat` stores batch norm as affine_ and
    /// pre-2018 layer versions; both old and current versions are read.
    public init(path: String, structure: [DlibNode]) throws {
        try self.init(file: MappedFile(path: path), structure: structure)
    }

    init(file: MappedFile, structure: [DlibNode]) throws {
        let path = file.path
        self.path = path
        var r = DlibReader(bytes: file.bytes, path: file.path, file: file)
        guard structure.count <= 10_000 else { throw WeightsError.unsupported(path: path, detail: "a network of \(structure.count) layers") }
        // add_loss_layer: version 1, the loss details, then the network.
        try r.version("the loss layer", allowed: 1...1)
        let lossName = try r.string("the loss layer's name")
        switch lossName {
        case "loss_metric_": lossParameters = [0.1, 0.75]
        case "loss_metric_2": lossParameters = [try r.float("loss margin"), try r.float("loss distance threshold")]
        default:
            throw WeightsError.unsupported(path: path, detail: "loss layer '\(printableName(lossName))' (FaceRestore reads dlib's loss_metric_ networks)")
        }
        loss = lossName
        guard let last = structure.last, !Self.isWrapper(last) else {
            throw WeightsError.unsupported(path: path, detail: "the structure must end with a computational layer above the input")
        }
        // The wrappers nest: each add_layer's details follow its whole subnetwork, so the wrappers
        // are opened top-down and their details read bottom-up.
        var openedVersions: [Int] = []
        for (i, node) in structure.enumerated() {
            switch node {
            case .tag, .skip: try r.version("layer \(i) (\(node))", allowed: 1...1); openedVersions.append(1)
            default:
                // The layer just above the input is the input-facing add_layer (versions 2, 3).
                let inputFacing = i == structure.count - 1
                openedVersions.append(try r.version("layer \(i) (\(node))", allowed: inputFacing ? 2...3 : 1...2))
            }
        }
        // The input layer.
        let inputName = try r.string("the input layer's name")
        guard inputName == "input_rgb_image_sized" else {
            throw WeightsError.unsupported(path: path, detail: "input layer '\(printableName(inputName))' (FaceRestore reads input_rgb_image_sized networks)")
        }
        inputMeans = [try r.float("input red mean"), try r.float("input green mean"), try r.float("input blue mean")]
        inputRows = try r.uint("input rows", bytes: 8, max: 1 << 16)
        inputCols = try r.uint("input columns", bytes: 8, max: 1 << 16)
        // Details, innermost first.
        var parsed = [DlibLayer?](repeating: nil, count: structure.count)
        var names: [String] = [], tensors: [String: WeightTensor] = [:]
        func add(_ name: String, _ t: WeightTensor) {
            names.append(name)
            tensors[name] = t
        }
        for i in stride(from: structure.count - 1, through: 0, by: -1) {
            let node = structure[i]
            let at = "layer \(i)"
            switch node {
            case .tag(let n): parsed[i] = .tag(n); continue
            case .skip(let n): parsed[i] = .skip(n); continue
            default: break
            }
            let name = try r.string("\(at)'s name")
            func expect(_ allowed: [String]) throws {
                guard allowed.contains(name) else {
                    throw WeightsError.corrupt(path: path, detail: "\(at): expected \(allowed.joined(separator: " or ")), found '\(printableName(name))'")
                }
            }
            switch node {
            case .con:
                try expect(["con_4", "con_5", "con_6"])
                let params = try r.tensor("\(at) params")
                let filters = try r.int("\(at) filters", bytes: 8)
                let rows = try r.int("\(at) rows", bytes: 8), cols = try r.int("\(at) columns", bytes: 8)
                let sy = try r.int("\(at) stride", bytes: 4), sx = try r.int("\(at) stride", bytes: 4)
                let py = try r.int("\(at) padding", bytes: 4), px = try r.int("\(at) padding", bytes: 4)
                let fshape = try r.aliasTensor("\(at) filters")
                let bshape = try r.aliasTensor("\(at) biases")
                for what in ["learning rate", "weight decay", "bias learning rate", "bias weight decay"] { _ = try r.float("\(at) \(what)") }
                var useBias = true, useReLU = false
                if name != "con_4" { useBias = try r.bool("\(at) use_bias") }
                if name == "con_6" { useReLU = try r.bool("\(at) use_relu") }
                let window = DlibWindow(rows: rows, cols: cols, strideY: sy, strideX: sx, padY: py, padX: px)
                guard filters > 0, filters <= 1 << 16, rows > 0, cols > 0, rows <= 64, cols <= 64, sy > 0, sx > 0, py >= 0, px >= 0,
                      fshape.count == 4, fshape[0] == filters, fshape[2] == rows, fshape[3] == cols, fshape[1] > 0 else {
                    throw WeightsError.corrupt(path: path, detail: "\(at): con_ with \(filters) filters \(window) and filter shape \(fshape)")
                }
                let fcount = try r.sizes.product(fshape, "\(at) filters")
                let bcount = try r.sizes.product(bshape, "\(at) biases")
                let withBiases = try r.sizes.add(fcount, bcount, "\(at) params")
                guard bcount == filters, params.count == withBiases || (!useBias && params.count == fcount) else {
                    throw WeightsError.corrupt(path: path, detail: "\(at): con_ params hold \(params.count) values for filters \(fshape)\(useBias ? " and \(bcount) biases" : "")")
                }
                add("layers.\(i).weight", params.slice(0, fcount, shape: fshape))
                if useBias { add("layers.\(i).bias", params.slice(fcount, filters, shape: [filters])) }
                parsed[i] = .con(window, filters: filters, bias: useBias, relu: useReLU)
            case .affine:
                if name == "bn_con2" || name == "bn_fc2" {
                    throw WeightsError.unsupported(path: path, detail: "\(at) is a batch-norm layer (\(name)); FaceRestore reads affine_ networks")
                }
                try expect(["affine_", "affine_2"])
                let params = try r.tensor("\(at) params")
                let gshape = try r.aliasTensor("\(at) gamma"), bshape = try r.aliasTensor("\(at) beta")
                let mode = try r.int("\(at) mode", bytes: 4)
                var disabled = false
                if name == "affine_2" { disabled = try r.bool("\(at) disabled") }
                let g = try r.sizes.product(gshape, "\(at) gamma"), b = try r.sizes.product(bshape, "\(at) beta")
                let total = try r.sizes.add(g, b, "\(at) params")
                guard mode == 0 || mode == 1, gshape == bshape, params.count == total else {
                    throw WeightsError.corrupt(path: path, detail: "\(at): affine_ mode \(mode), gamma \(gshape), beta \(bshape), \(params.count) params")
                }
                // CONV_MODE (0): one gamma and beta per channel, stored as [1, k, 1, 1]; FC_MODE (1): one per value.
                let shape = mode == 0 ? [g] : gshape
                add("layers.\(i).gamma", params.slice(0, g, shape: shape))
                add("layers.\(i).beta", params.slice(g, b, shape: shape))
                parsed[i] = .affine(convMode: mode == 0, disabled: disabled)
            case .relu:
                try expect(["relu_", "relu_2"])
                var disabled = false
                if name == "relu_2" { disabled = try r.bool("\(at) disabled") }
                parsed[i] = .relu(disabled: disabled)
            case .maxPool, .avgPool:
                try expect([node == .maxPool ? "max_pool_2" : "avg_pool_2"])
                let rows = try r.int("\(at) rows", bytes: 8), cols = try r.int("\(at) columns", bytes: 8)
                let sy = try r.int("\(at) stride", bytes: 4), sx = try r.int("\(at) stride", bytes: 4)
                let py = try r.int("\(at) padding", bytes: 4), px = try r.int("\(at) padding", bytes: 4)
                let window = DlibWindow(rows: rows, cols: cols, strideY: sy, strideX: sx, padY: py, padX: px)
                guard rows >= 0, cols >= 0, rows <= 1 << 16, cols <= 1 << 16, sy > 0, sx > 0, py >= 0, px >= 0,
                      rows == 0 || py < rows, cols == 0 || px < cols else {
                    throw WeightsError.corrupt(path: path, detail: "\(at): pooling window \(window)")
                }
                parsed[i] = node == .maxPool ? .maxPool(window) : .avgPool(window)
            case .fc:
                try expect(["fc_2", "fc_3"])
                let outputs = try r.uint("\(at) outputs", bytes: 8, max: 1 << 20)
                let inputs = try r.uint("\(at) inputs", bytes: 8, max: 1 << 24)
                let params = try r.tensor("\(at) params")
                let wshape = try r.aliasTensor("\(at) weights"), bshape = try r.aliasTensor("\(at) biases")
                let mode = try r.int("\(at) bias mode", bytes: 4)
                for what in ["learning rate", "weight decay", "bias learning rate", "bias weight decay"] { _ = try r.float("\(at) \(what)") }
                var useBias = mode == 0
                if name == "fc_3" { useBias = try r.bool("\(at) use_bias") && useBias }
                // FC_HAS_BIAS (0) stores the biases after the weights whether or not they are used.
                let w = try r.sizes.multiply(inputs, outputs, "\(at) weights")
                let stored = mode == 0 ? try r.sizes.add(w, outputs, "\(at) params") : w
                let wcount = try r.sizes.product(wshape, "\(at) weights")
                guard mode == 0 || mode == 1, outputs > 0, inputs > 0, wcount == w, params.count == stored else {
                    throw WeightsError.corrupt(path: path, detail: "\(at): fc_ \(inputs)→\(outputs) (bias mode \(mode)) with \(params.count) params, weights \(wshape), biases \(bshape)")
                }
                add("layers.\(i).weight", params.slice(0, w, shape: [inputs, outputs]))
                if useBias { add("layers.\(i).bias", params.slice(w, outputs, shape: [outputs])) }
                parsed[i] = .fc(outputs: outputs, inputs: inputs, bias: useBias)
            case .addPrev(let tag):
                try expect(["add_prev_"])
                parsed[i] = .addPrev(tag: tag)
            case .tag, .skip:
                break
            }
            // add_layer's state after its details: three bools and its cached tensors.
            for what in ["setup called", "gradient input is stale", "output and gradient input disabled"] { _ = try r.bool("\(at) \(what)") }
            _ = try r.tensor("\(at) x_grad")
            _ = try r.tensor("\(at) cached output")
            if i == structure.count - 1 {
                _ = try r.tensor("\(at) grad_final")
                if openedVersions[i] >= 3 { _ = try r.uint("\(at) sample expansion factor", bytes: 4, max: 1 << 20) }
            } else if openedVersions[i] >= 2 {
                _ = try r.tensor("\(at) params_grad")
            }
        }
        guard r.offset == r.bytes.count else {
            throw WeightsError.corrupt(path: path, detail: "\(r.bytes.count - r.offset) bytes left over after the network (another network's file?)")
        }
        self.layers = parsed.map { $0 ?? .relu(disabled: true) }
        stateDict = StateDict(names: names, tensors: tensors)
    }

    static func isWrapper(_ node: DlibNode) -> Bool {
        switch node {
        case .tag, .skip: return true
        default: return false
        }
    }
}

/// A name from the file as it may be quoted in a one-line error: printable ASCII, at most 40
/// characters.
func printableName(_ s: String) -> String {
    String(s.unicodeScalars.prefix(40).map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F ? Character($0) : "?" })
}

/// A tensor as read: its dimensions and its float32 bytes in the file.
struct DlibTensor {
    let shape: [Int]
    let count: Int
    let file: MappedFile
    let offset: Int

    func slice(_ start: Int, _ n: Int, shape: [Int]) -> WeightTensor {
        WeightTensor(dtype: .float32, shape: shape, data: ByteRegion(owner: file, base: file.base + offset + start * 4, count: n * 4))
    }
}

/// A cursor over the file's bytes with dlib's primitive decoders.
struct DlibReader {
    let bytes: UnsafeRawBufferPointer
    let path: String
    let file: MappedFile
    var offset = 0
    var sizes: CheckedSize { CheckedSize(path: path) }

    init(bytes: UnsafeRawBufferPointer, path: String, file: MappedFile) {
        self.bytes = bytes
        self.path = path
        self.file = file
    }

    func truncated(_ what: String) -> WeightsError {
        WeightsError.truncated(path: path, detail: "\(what) is cut short at byte \(offset)")
    }

    mutating func byte(_ what: String) throws -> UInt8 {
        guard offset < bytes.count else { throw truncated(what) }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// The magnitude after a control byte: `size` little-endian bytes (1…`maxBytes`).
    mutating func magnitude(_ size: Int, maxBytes: Int, _ what: String) throws -> UInt64 {
        guard size >= 1, size <= maxBytes else {
            throw WeightsError.corrupt(path: path, detail: "\(what): an integer of \(size) bytes at byte \(offset - 1) (at most \(maxBytes))")
        }
        guard size <= bytes.count - offset else { throw truncated(what) }
        var v: UInt64 = 0
        for j in stride(from: size - 1, through: 0, by: -1) { v = v << 8 | UInt64(bytes[offset + j]) }
        offset += size
        return v
    }

    /// A signed integer of a C++ type of `bytes` bytes (int: 4, long and long long: 8).
    mutating func int(_ what: String, bytes n: Int) throws -> Int {
        let control = try byte(what)
        let m = try magnitude(Int(control & 0x0F), maxBytes: n, what)
        let limit: UInt64 = n >= 8 ? UInt64(Int64.max) : (UInt64(1) << UInt64(n * 8 - 1)) - 1
        guard m <= limit else { throw WeightsError.corrupt(path: path, detail: "\(what): \(m) is out of range") }
        return control & 0x80 != 0 ? -Int(m) : Int(m)
    }

    /// An unsigned integer of `bytes` bytes, at most `max`.
    mutating func uint(_ what: String, bytes n: Int, max: Int) throws -> Int {
        let control = try byte(what)
        // dlib masks out the three reserved bits; a set sign bit makes the size invalid.
        let m = try magnitude(Int(control & 0x8F), maxBytes: n, what)
        guard m <= UInt64(max) else { throw WeightsError.corrupt(path: path, detail: "\(what): \(m) is larger than \(max)") }
        return Int(m)
    }

    @discardableResult
    mutating func version(_ what: String, allowed: ClosedRange<Int>) throws -> Int {
        let v = try int("\(what)'s version", bytes: 4)
        guard allowed.contains(v) else {
            throw WeightsError.corrupt(path: path, detail: "\(what): version \(v) at byte \(offset), expected \(allowed.lowerBound)…\(allowed.upperBound) (not this network's structure?)")
        }
        return v
    }

    mutating func string(_ what: String) throws -> String {
        let n = try uint(what, bytes: 8, max: 256)
        guard n <= bytes.count - offset else { throw truncated(what) }
        defer { offset += n }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)]), as: UTF8.self)
    }

    mutating func bool(_ what: String) throws -> Bool {
        switch try byte(what) {
        case UInt8(ascii: "1"): return true
        case UInt8(ascii: "0"): return false
        default: throw WeightsError.corrupt(path: path, detail: "\(what): not a bool at byte \(offset - 1)")
        }
    }

    /// A float or double as `float_details` (mantissa·2^exponent), read as Float.
    mutating func float(_ what: String) throws -> Float {
        guard offset < bytes.count else { throw truncated(what) }
        guard bytes[offset] & 0x70 == 0 else {
            throw WeightsError.unsupported(path: path, detail: "\(what) at byte \(offset) uses dlib's old text format for numbers")
        }
        let mc = try byte(what)
        let mantissa = try magnitude(Int(mc & 0x0F), maxBytes: 8, what)
        let negative = mc & 0x80 != 0
        let exponent = try int(what, bytes: 2)
        switch exponent {
        case ..<32000:
            let m = Float(mantissa)   // dlib: ldexp((float)mantissa, exponent)
            return Float(sign: negative ? .minus : .plus, exponent: exponent, significand: m)
        case 32000: return .infinity
        case 32001: return -.infinity
        default: return .nan
        }
    }

    mutating func dimensions(_ what: String) throws -> [Int] {
        var shape: [Int] = []
        for _ in 0..<4 {
            let d = try int(what, bytes: 8)
            guard d >= 0 else { throw WeightsError.corrupt(path: path, detail: "\(what): negative dimension \(d)") }
            shape.append(d)
        }
        return shape
    }

    /// A resizable_tensor: version 2, its four dimensions, then its float32 values.
    mutating func tensor(_ what: String) throws -> DlibTensor {
        try version(what, allowed: 2...2)
        let shape = try dimensions(what)
        let count = try sizes.product(shape, what)
        let n = try sizes.multiply(count, 4, what)
        try sizes.fits(n, in: bytes.count - offset, what)
        defer { offset += n }
        return DlibTensor(shape: shape, count: count, file: file, offset: offset)
    }

    /// An alias_tensor: version 1 and its four dimensions (no data).
    mutating func aliasTensor(_ what: String) throws -> [Int] {
        try version(what, allowed: 1...1)
        return try dimensions(what)
    }
}
