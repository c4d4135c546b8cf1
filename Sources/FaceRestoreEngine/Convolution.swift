// Conv2d and ConvTranspose2d through oneDNN, PyTorch semantics
// (torch.nn.functional.conv2d / conv_transpose2d, torch 2.x).
//
// Weights are reordered into the layout oneDNN's fastest kernel prefers once, at construction.
// Calls never reorder weights; activations are consumed in whatever layout they arrive in when a
// fast kernel accepts it, else reordered once into the layout the kernel wants. The primitive for
// each input layout/shape is created once and cached.

import CDNNL
import Synchronization

/// Padding in pixels: top, left, bottom, right (PyTorch allows only symmetric padding; the
/// asymmetric form serves upfirdn2d-style ops).
public struct Padding2D: Sendable, Hashable {
    public var top: Int, left: Int, bottom: Int, right: Int
    public init(top: Int, left: Int, bottom: Int, right: Int) {
        self.top = top; self.left = left; self.bottom = bottom; self.right = right
    }
    public init(_ p: Int) { self.init(top: p, left: p, bottom: p, right: p) }
    public init(vertical: Int, horizontal: Int) { self.init(top: vertical, left: horizontal, bottom: vertical, right: horizontal) }
}

/// A layer whose weights are fixed at load: conv or deconv.
private enum WeightedKind {
    case conv(dilation: [Int])
    case deconv
}

/// The per-input-layout primitive cache shared by Conv2d and ConvTranspose2d.
private final class FixedWeightKernel: Sendable {
    struct Entry: @unchecked Sendable {
        // @unchecked: MemoryDesc is plain data; Primitive and TensorStorage are immutable.
        let input: MemoryDesc
        let src: MemoryDesc
        let dst: MemoryDesc
        let primitive: Primitive
        let weightsDesc: MemoryDesc
        let weights: KernelWeights
        /// Activations the primitive could not fuse (Winograd takes no leaky ReLU), applied in
        /// place on its output.
        let trailing: [Primitive]
    }

    let kind: WeightedKind
    let weightDims: [Int]          // oneDNN logical weight dims (g, o, i, kh, kw) or (o, i, kh, kw)
    let outChannels: Int
    let strides: [Int]
    let padding: Padding2D
    let hasBias: Bool
    let postOps: [PostOp]
    /// The post-ops fused into the primitive; the rest (`postOps` minus these) run as a trailing
    /// in-place pass.
    let fusedPostOps: [PostOp]
    /// Whether this 3×3 stride-1 convolution uses oneDNN's Winograd kernels (F(2×2,3×3) or
    /// F(4×4,3×3)): fewer multiplies, float32 throughout, results within a few ulps of direct.
    let winograd: Bool
    let weightsDesc: MemoryDesc
    /// Direct layers' weights are converted at load; Winograd layers' on demand (KernelWeights.swift).
    let weights: KernelWeights
    /// The PyTorch-layout weights, kept only for Winograd layers (a view of the memory-mapped
    /// checkpoint where the loader hands one out): their transformed weights are made from these
    /// on demand and depend on the input shape. Direct layers keep a single copy and convert from it.
    let source: (desc: MemoryDesc, storage: TensorStorage)
    let bias: TensorStorage?
    let outputSize: @Sendable (Int, Int) -> (Int, Int)
    /// Data type of the source and weights (f32, or bf16 in `.bf16` precision); outputs are f32.
    let computeType: dnnl_data_type_t
    private let cache: Mutex<[Entry]>

    init(kind: WeightedKind, weightDims: [Int], plainWeightsDesc: MemoryDesc, plainWeights: TensorStorage,
         bias: [Float]?, outChannels: Int, inChannels: Int, strides: [Int], padding: Padding2D, postOps: [PostOp],
         outputSize: @escaping @Sendable (Int, Int) -> (Int, Int), hint: (Int, Int), context: ComputeContext) throws {
        self.kind = kind
        self.weightDims = weightDims
        self.outChannels = outChannels
        self.strides = strides
        self.padding = padding
        self.postOps = postOps
        self.outputSize = outputSize
        self.hasBias = bias != nil
        if let bias {
            let b = TensorStorage(bytes: bias.count * 4)
            bias.withUnsafeBufferPointer { b.floats.update(from: $0.baseAddress!, count: bias.count) }
            self.bias = b
        } else {
            self.bias = nil
        }
        // bf16 only for ordinary (ungrouped) convolutions wide enough for its kernels.
        let bf16 = context.precision == .bf16 && weightDims.count == 4 && inChannels >= 16 && outChannels >= 16
        computeType = bf16 ? dnnl_bf16 : dnnl_f32
        // Ask oneDNN for its preferred weight layout on a representative input, then reorder once.
        let (oh, ow) = outputSize(hint.0, hint.1)
        let type = computeType
        func probeOp(winograd: Bool) -> OpDesc {
            Self.opDesc(kind: kind, src: .any([1, inChannels, hint.0, hint.1], type: type),
                        weights: .any(weightDims, type: type), hasBias: bias != nil,
                        outChannels: outChannels, dst: .any([1, outChannels, oh, ow]),
                        strides: strides, padding: padding, winograd: winograd)
        }
        var chosen: (Primitive, [PostOp], Bool)?
        if !bf16, Self.winogradCandidate(kind: kind, weightDims: weightDims, strides: strides, output: (oh, ow), context: context) {
            // Winograd fuses ReLU but not leaky ReLU: those run as a trailing in-place pass.
            let fusable = postOps.prefix { $0 == .relu }
            if let p = try? context.make(probeOp(winograd: true), postOps: Array(fusable)), !p.implementation.hasPrefix("ref") {
                chosen = (p, Array(fusable), true)
            }
        }
        let (probe, fused, wino) = try chosen ?? (context.make(probeOp(winograd: false), postOps: postOps), postOps, false)
        fusedPostOps = fused
        winograd = wino
        weightsDesc = probe.weightsDesc
        if wino, Self.ownWinogradTransform(to: weightsDesc, from: plainWeightsDesc, weightDims: weightDims) != nil {
            // Our transform (WinogradWeights.swift) reads PyTorch's layout directly.
            source = (plainWeightsDesc, plainWeights)
        } else if wino {
            // oneDNN's Winograd weight transform reads hwio source weights with contiguous,
            // vectorized loops but oihw (PyTorch's layout) with strided scalar ones, about 5×
            // slower: convert to hwio first (one fast reorder) and keep that as the source.
            let hwio = MemoryDesc(dims: weightDims, tag: dnnl_hwio)
            let converted = TensorStorage(bytes: hwio.byteSize)
            try context.reorder(from: plainWeightsDesc, plainWeights.pointer, to: hwio, converted.pointer)
            source = (hwio, converted)
        } else {
            let reordered = TensorStorage(bytes: weightsDesc.byteSize)
            try context.reorder(from: plainWeightsDesc, plainWeights.pointer, to: weightsDesc, reordered.pointer)
            source = (weightsDesc, reordered)
        }
        weights = wino ? Self.onDemand(weightsDesc, from: source, weightDims: weightDims) : KernelWeights(source.storage)
        // Keep the probe: an input at the hinted size in the layout oneDNN chose for it (the
        // layout the previous layer produces) then needs no primitive creation on the first call.
        // In bf16 the f32 channels-last input of that size maps to it (converted on each call).
        let key = bf16 ? MemoryDesc.channelsLast([1, inChannels, hint.0, hint.1]) : probe.srcDesc
        let trailing = try Self.trailingPass(postOps: postOps, fused: fused, output: probe.dstDesc, context: context)
        cache = Mutex([Entry(input: key, src: probe.srcDesc, dst: probe.dstDesc, primitive: probe,
                             weightsDesc: weightsDesc, weights: weights, trailing: trailing)])
    }

    /// `desc`-layout weights converted from `source` when a call first needs them (our Winograd
    /// transform where it applies, else oneDNN's reorder).
    static func onDemand(_ desc: MemoryDesc, from source: (desc: MemoryDesc, storage: TensorStorage),
                         weightDims: [Int]) -> KernelWeights {
        let layout = ownWinogradTransform(to: desc, from: source.desc, weightDims: weightDims)
        let storage = source.storage
        return KernelWeights(bytes: desc.byteSize) { out, context in
            if let layout {
                layout.transform(oihw: storage.floats, into: out.assumingMemoryBound(to: Float.self), context: context)
            } else {
                try context.reorder(from: source.desc, storage.pointer, to: desc, out)
            }
        }
    }

    /// The layout our Winograd weight transform (WinogradWeights.swift) writes when `desc` is one
    /// it handles and the source weights are PyTorch's ungrouped [out, in, kh, kw]; nil otherwise
    /// (oneDNN's reorder converts those).
    static func ownWinogradTransform(to desc: MemoryDesc, from source: MemoryDesc, weightDims: [Int]) -> WinogradWeightLayout? {
        guard weightDims.count == 4, source == MemoryDesc.plain(weightDims) else { return nil }
        return WinogradWeightLayout(desc, outChannels: weightDims[0], inChannels: weightDims[1])
    }

    /// Whether a Winograd kernel is worth trying: 3×3, stride 1, no dilation or groups, float32,
    /// at least 64 input and 32 output channels, an output of at least 64×64 at the hinted size,
    /// and the context allowing it. A static rule, so the same input always takes the same kernels.
    /// Measured with oneDNN 2.6 on this project's AVX-512 machine: 1.2–2.7× faster per call above
    /// these sizes, 0.7–0.9× with 16–32 channels; and below 64×64 the transformed weights (4× the
    /// plain ones, about 0.5 s of page faults per GB at load) outweigh a whole forward pass's saving
    /// (3 ms per call at 16², 12 ms at 32², 47 ms at 64² for 512×512 channels).
    static func winogradCandidate(kind: WeightedKind, weightDims: [Int], strides: [Int], output: (Int, Int),
                                  context: ComputeContext) -> Bool {
        guard context.winograd, case .conv(let dilation) = kind, dilation == [1, 1], weightDims.count == 4,
              weightDims[2] == 3, weightDims[3] == 3, strides == [1, 1] else { return false }
        return min(output.0, output.1) >= 64 && weightDims[1] >= 64 && weightDims[0] >= 32
    }

    /// In-place eltwise passes for the post-ops after the fused prefix.
    static func trailingPass(postOps: [PostOp], fused: [PostOp], output: MemoryDesc, context: ComputeContext) throws -> [Primitive] {
        try postOps.dropFirst(fused.count).map { op in
            let (alg, a, b) = op.algAlphaBeta
            return try context.make(.eltwise(alg: alg, data: output, alpha: a, beta: b))
        }
    }

    static func opDesc(kind: WeightedKind, src: MemoryDesc, weights: MemoryDesc, hasBias: Bool, outChannels: Int,
                       dst: MemoryDesc, strides: [Int], padding: Padding2D, winograd: Bool = false) -> OpDesc {
        let bias: MemoryDesc? = hasBias ? .plain([outChannels]) : nil
        let padL = [padding.top, padding.left], padR = [padding.bottom, padding.right]
        switch kind {
        case .conv(let dilation):
            return .convolution(src: src, weights: weights, bias: bias, dst: dst, strides: strides,
                                dilation: dilation, padL: padL, padR: padR, winograd: winograd)
        case .deconv:
            return .deconvolution(src: src, weights: weights, bias: bias, dst: dst, strides: strides, padL: padL, padR: padR)
        }
    }

    private func isReference(_ p: Primitive) -> Bool { p.implementation.hasPrefix("ref") }

    /// Finds or creates the primitive for an input of this layout.
    func entry(for x: Tensor, context: ComputeContext) throws -> Entry {
        if let hit = cache.withLock({ $0.first { $0.input == x.desc } }) { return hit }
        let n = x.shape[0], h = x.shape[2], w = x.shape[3]
        let (oh, ow) = outputSize(h, w)
        guard oh > 0, ow > 0 else {
            throw EngineError.shapeMismatch(op: "convolution", detail: "input \(x.shape) gives an empty output \(oh)×\(ow)")
        }
        let dst = MemoryDesc.any([n, outChannels, oh, ow])
        func attempt(src: MemoryDesc, weights: MemoryDesc) -> Primitive? {
            let op = Self.opDesc(kind: kind, src: src, weights: weights, hasBias: hasBias, outChannels: outChannels,
                                 dst: dst, strides: strides, padding: padding, winograd: winograd)
            guard let p = try? context.make(op, postOps: fusedPostOps), !isReference(p) else { return nil }
            return p
        }
        let p: Primitive, src: MemoryDesc
        if computeType != dnnl_f32, let q = attempt(src: .any(x.shape, type: computeType), weights: weightsDesc) {
            // bf16: the activation is converted into the kernel's layout and type on each call.
            (p, src) = (q, q.srcDesc)
        } else if let q = attempt(src: x.desc, weights: weightsDesc) {
            // The input's own layout with the load-time weights: nothing to convert.
            (p, src) = (q, x.desc)
        } else if x.desc.isChannelBlocked16, let q = attempt(src: x.desc, weights: .any(weightDims)) {
            // An nChw16c input (from a Winograd layer) to a direct kernel: weights converted once
            // for the blocked kernel rather than the activation on every call.
            (p, src) = (q, x.desc)
        } else if let q = attempt(src: .any(x.shape), weights: weightsDesc) {
            // The kernel wants the input in another layout: reorder the activation (once per call).
            (p, src) = (q, q.srcDesc)
        } else {
            // This shape prefers another weight layout: convert the weights once for it and cache.
            let op = Self.opDesc(kind: kind, src: .any(x.shape, type: computeType), weights: .any(weightDims, type: computeType),
                                 hasBias: hasBias, outChannels: outChannels, dst: dst, strides: strides, padding: padding,
                                 winograd: winograd)
            let q = try context.make(op, postOps: fusedPostOps)
            (p, src) = (q, q.srcDesc)
        }
        // The load-time weights, a copy in this layout made for an earlier input, or a new copy made
        // from the source (Winograd layouts depend on the input size; tiles of a few sizes share them).
        let wd = p.weightsDesc
        let ws: KernelWeights
        if wd == weightsDesc {
            ws = weights
        } else if let earlier = cache.withLock({ $0.first { $0.weightsDesc == wd } }) {
            ws = earlier.weights
        } else if winograd {
            ws = Self.onDemand(wd, from: source, weightDims: weightDims)
        } else {
            let converted = TensorStorage(bytes: wd.byteSize)
            try context.reorder(from: source.desc, source.storage.pointer, to: wd, converted.pointer)
            ws = KernelWeights(converted)
        }
        let made = Entry(input: x.desc, src: src, dst: p.dstDesc, primitive: p, weightsDesc: wd, weights: ws,
                         trailing: try Self.trailingPass(postOps: postOps, fused: fusedPostOps, output: p.dstDesc, context: context))
        cache.withLock { $0.append(made) }
        return made
    }

    /// The layer's output; written into `destination` (and returned) when given and in the
    /// layout the kernel produces, else into new memory and then converted into `destination`.
    func forward(_ x: Tensor, into destination: Tensor? = nil, context: ComputeContext) throws -> Tensor {
        let e = try entry(for: x, context: context)
        if let destination, destination.shape != e.dst.dims {
            throw EngineError.shapeMismatch(op: "convolution", detail: "output \(e.dst.dims) into \(destination.shape)")
        }
        if let destination, destination.desc != e.dst {
            let y = try forward(x, context: context)
            try context.reorder(from: y.desc, y.storage.pointer, to: destination.desc, destination.storage.pointer)
            return destination
        }
        let src = try context.reordered(x, to: e.src)
        let out = destination ?? Tensor(uninitialized: e.dst)
        try e.weights.use(context) { weights in
            var args = [PrimitiveArg(role: DNNL_ARG_SRC, desc: e.src, data: src.storage.pointer),
                        PrimitiveArg(role: DNNL_ARG_WEIGHTS, desc: e.weightsDesc, data: UnsafeMutableRawPointer(mutating: weights)),
                        PrimitiveArg(role: DNNL_ARG_DST, desc: e.dst, data: out.storage.pointer)]
            if let bias { args.append(PrimitiveArg(role: DNNL_ARG_BIAS, desc: .plain([outChannels]), data: bias.pointer)) }
            try context.run(e.primitive, args)
        }
        for t in e.trailing {
            try context.run(t, [PrimitiveArg(role: DNNL_ARG_SRC, desc: e.dst, data: out.storage.pointer),
                                PrimitiveArg(role: DNNL_ARG_DST, desc: e.dst, data: out.storage.pointer)])
        }
        return out
    }

    /// The implementation chosen for an input of this layout (for benchmarks and diagnostics).
    func implementation(for x: Tensor, context: ComputeContext) throws -> String {
        try entry(for: x, context: context).primitive.implementation
    }
}

/// 2-D convolution with PyTorch `conv2d` semantics and optional fused activations.
public final class Conv2d: Sendable {
    public let inChannels: Int
    public let outChannels: Int
    public let kernelSize: (Int, Int)
    public let stride: Int
    public let padding: Padding2D
    public let dilation: Int
    public let groups: Int
    private let path: Path

    private enum Path {
        case oneDNN(FixedWeightKernel)
        case fusedWinograd(FusedWinogradConv)
    }

    /// - Parameters:
    ///   - weight: PyTorch layout `[out, in/groups, kh, kw]`, row-major.
    ///   - bias: `[out]` or nil.
    ///   - postOps: activations fused after the bias (e.g. `.leakyReLU(0.2)`).
    ///   - hint: a typical input height and width, used to choose the weight layout at load.
    ///   - fusedWinograd: where our fused F(4×4,3×3) Winograd kernel applies and pays
    ///     (`FusedWinogradConv.supports`: 3×3, stride 1, zero padding 0 or 1, at least 32 input
    ///     channels in multiples of 16, output channels in multiples of 32 or (padded) not of 16,
    ///     an output of at least 32² at the hinted size, a fusable activation, float32, AVX-512),
    ///     run there rather than on oneDNN (the default); false keeps oneDNN's kernels (for
    ///     comparisons).
    public convenience init(weight: [Float], shape: [Int], bias: [Float]? = nil, stride: Int = 1, padding: Padding2D = Padding2D(0),
                            dilation: Int = 1, groups: Int = 1, postOps: [PostOp] = [], hint: (Int, Int) = (64, 64),
                            fusedWinograd: Bool = true, context: ComputeContext) throws {
        guard shape.count == 4, weight.count == shape.reduce(1, *) else {
            throw EngineError.shapeMismatch(op: "conv2d", detail: "weight shape \(shape) with \(weight.count) values, groups \(groups)")
        }
        try self.init(weight: Tensor(shape: shape, values: weight), bias: bias, stride: stride, padding: padding, dilation: dilation,
                      groups: groups, postOps: postOps, hint: hint, fusedWinograd: fusedWinograd, context: context)
    }

    /// The same with the weight as a plain tensor `[out, in/groups, kh, kw]`, whose memory the
    /// layer keeps as its source weights (no copy).
    public init(weight: Tensor, bias: [Float]? = nil, stride: Int = 1, padding: Padding2D = Padding2D(0),
                dilation: Int = 1, groups: Int = 1, postOps: [PostOp] = [], hint: (Int, Int) = (64, 64),
                fusedWinograd: Bool = true, context: ComputeContext) throws {
        let shape = weight.shape
        guard shape.count == 4, weight.layout == .plain, shape[0] % groups == 0 else {
            throw EngineError.shapeMismatch(op: "conv2d", detail: "weight shape \(shape) (\(weight.layout)), groups \(groups)")
        }
        if let bias, bias.count != shape[0] {
            throw EngineError.shapeMismatch(op: "conv2d", detail: "bias has \(bias.count) values for \(shape[0]) output channels")
        }
        let (o, ig, kh, kw) = (shape[0], shape[1], shape[2], shape[3])
        inChannels = ig * groups
        outChannels = o
        kernelSize = (kh, kw)
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        let dims = groups == 1 ? [o, ig, kh, kw] : [groups, o / groups, ig, kh, kw]
        let pad = padding
        let size: @Sendable (Int, Int) -> (Int, Int) = { h, w in
            ((h + pad.top + pad.bottom - dilation * (kh - 1) - 1) / stride + 1,
             (w + pad.left + pad.right - dilation * (kw - 1) - 1) / stride + 1)
        }
        if fusedWinograd,
           FusedWinogradConv.supports(weightShape: shape, stride: stride, padding: padding, dilation: dilation, groups: groups,
                                      postOps: postOps, output: size(hint.0, hint.1), context: context) {
            path = .fusedWinograd(FusedWinogradConv(weight: weight, bias: bias, padding: padding.top, stride: stride, postOps: postOps))
            return
        }
        let plainDesc = MemoryDesc.plain(dims)
        let plain = weight.storage
        path = .oneDNN(try FixedWeightKernel(kind: .conv(dilation: [dilation, dilation]), weightDims: dims, plainWeightsDesc: plainDesc,
                                       plainWeights: plain, bias: bias, outChannels: o, inChannels: inChannels,
                                       strides: [stride, stride], padding: padding, postOps: postOps,
                                       outputSize: size, hint: hint, context: context))
    }

    /// Throws unless `x` is NCHW with this layer's input channels.
    private func checkInput(_ x: Tensor) throws {
        guard x.rank == 4, x.shape[1] == inChannels else {
            throw EngineError.shapeMismatch(op: "conv2d", detail: "input \(x.shape), layer expects \(inChannels) channels")
        }
    }

    public func callAsFunction(_ x: Tensor, _ context: ComputeContext) throws -> Tensor {
        try checkInput(x)
        switch path {
        case .oneDNN(let kernel): return try kernel.forward(x, context: context)
        case .fusedWinograd(let kernel): return try kernel.forward(x, into: nil, context: context)
        }
    }

    /// The output written into `destination` (same shape; any layout).
    func callAsFunction(_ x: Tensor, into destination: Tensor, _ context: ComputeContext) throws {
        try checkInput(x)
        switch path {
        case .oneDNN(let kernel): _ = try kernel.forward(x, into: destination, context: context)
        case .fusedWinograd(let kernel): _ = try kernel.forward(x, into: destination, context: context)
        }
    }

    /// `self(reflectionPad2d(x, 1, upsample:, leakyReLUSlope:))` for a layer built without padding
    /// (ParseNet's `ReflectionPad2d` + conv), plus `residual` when given (ParseNet's residual
    /// blocks; `residual + y` and `y + residual` round alike): where the fused Winograd kernel runs
    /// the layer it reads `x` through the upsampling, padding and activation, and adds the residual
    /// as it writes, and the padded tensor (up to 128×514² floats, 135 MB, in ParseNet's last
    /// decoder block) is never made; elsewhere it is. The same values either way.
    public func callAsFunction(reflectionPadded x: Tensor, upsample: Int = 1, leakyReLUSlope: Float? = nil,
                               adding residual: Tensor? = nil, _ context: ComputeContext) throws -> Tensor {
        try checkInput(x)
        guard upsample == 1 || upsample == 2 else {
            throw EngineError.shapeMismatch(op: "conv2d", detail: "input \(x.shape) upsampled ×\(upsample) (1 or 2)")
        }
        if case .fusedWinograd(let kernel) = path, padding == Padding2D(0), upsample * min(x.shape[2], x.shape[3]) >= 2,
           kernel.stride == 1 || upsample == 1 {
            return try kernel.forward(x, into: nil, residual: residual.map { ($0, 1) },
                                      read: .reflected(upsample: upsample, leakyReLUSlope: leakyReLUSlope), context: context)
        }
        let y = try self(try context.reflectionPad2d(x, Padding2D(1), upsample: upsample, leakyReLUSlope: leakyReLUSlope), context)
        return try residual.map { try context.add($0, y) } ?? y
    }

    /// `self(resize(x, factor: 2, mode: .bilinear))` (`F.interpolate(scale_factor=2,
    /// mode="bilinear")` then this conv): where the fused Winograd kernel runs the layer it
    /// interpolates as it reads `x` (with torch's arithmetic), and the upsampled tensor (GFPGAN
    /// v1.4: 128×512² floats, 134 MB) is never made; elsewhere it is.
    public func callAsFunction(bilinearUpsampled x: Tensor, _ context: ComputeContext) throws -> Tensor {
        try checkInput(x)
        if case .fusedWinograd(let kernel) = path, kernel.stride == 1 {
            return try kernel.forward(x, into: nil, read: .bilinear, context: context)
        }
        return try self(try context.resize(x, factor: 2, mode: .bilinear), context)
    }

    /// `self(x)·scale + residual` (PyTorch's `conv(x) * scale + residual`, ESRGAN's dense-block
    /// residual), written into `destination` when given: one pass on the fused Winograd kernel,
    /// else the convolution and then `scaledAdd`.
    public func callAsFunction(_ x: Tensor, scale: Float, adding residual: Tensor, into destination: Tensor? = nil,
                               _ context: ComputeContext) throws -> Tensor {
        try checkInput(x)
        if case .fusedWinograd(let kernel) = path {
            return try kernel.forward(x, into: destination, residual: (residual, scale), context: context)
        }
        return try context.scaledAdd(try self(x, context), scale: scale, residual, into: destination)
    }

    /// `self(context.apply(g))`, plus `residual` (times `scale` for the convolution) when given:
    /// a GroupNorm (+ swish) followed by this conv, as in the VQGAN blocks. A norm without swish
    /// on the fused Winograd kernel (stride 1) is applied to each value as the kernel reads it,
    /// bit for bit as `apply` computes it, and the normalized tensor is never written. With the
    /// swish it is written first: the kernel reads each value 2.25 times (6×6 inputs per 4×4
    /// outputs), and recomputing the swish on every read made RestoreFormer++ slower (1.52 s
    /// against 1.37 s a forward) than the pass it saves.
    public func callAsFunction(_ g: GroupNormed, scale: Float = 1, adding residual: Tensor? = nil,
                               _ context: ComputeContext) throws -> Tensor {
        try checkInput(g.source)
        if case .fusedWinograd(let kernel) = path, kernel.stride == 1, !g.swish {
            return try kernel.forward(g.source, into: nil, residual: residual.map { ($0, scale) }, read: .normalized(g), context: context)
        }
        let x = try context.apply(g)
        guard let residual else { return try self(x, context) }
        return try self(x, scale: scale, adding: residual, context)
    }

    /// The oneDNN implementation chosen for this input (e.g. "brgconv:avx512_core").
    public func implementation(for x: Tensor, _ context: ComputeContext) throws -> String {
        switch path {
        case .oneDNN(let kernel): return try kernel.implementation(for: x, context: context)
        case .fusedWinograd(let kernel): return kernel.stride == 2 ? "facerestore_wino_4x2_s2:avx512 (fused)" : "facerestore_wino_4x3:avx512 (fused)"
        }
    }

    /// The weights the kernel reads for inputs of the hinted size (for tests: whether they are
    /// held now).
    var kernelWeights: KernelWeights {
        switch path {
        case .oneDNN(let kernel): return kernel.weights
        case .fusedWinograd(let fused): return fused.tiles
        }
    }
}

/// 2-D transposed convolution with PyTorch `conv_transpose2d` semantics (groups = 1).
public final class ConvTranspose2d: Sendable {
    public let inChannels: Int
    public let outChannels: Int
    public let stride: Int
    private enum Path: Sendable {
        case oneDNN(FixedWeightKernel)
        /// Stride 2: four phase convolutions and an interleave (`PolyphaseTransposedConv`).
        case polyphase(PolyphaseTransposedConv)
    }
    private let path: Path

    /// - Parameters:
    ///   - weight: PyTorch layout `[in, out, kh, kw]`, row-major.
    ///   - padding: PyTorch's `padding` (implicit `dilation*(k-1)-padding` zero padding on each side).
    ///   - outputPadding: PyTorch's `output_padding`, added to the bottom/right of the output.
    ///   - polyphase: run stride 2 as four phase convolutions (the default; see PolyphaseDeconv.swift); false keeps
    ///     oneDNN's deconvolution kernel.
    public convenience init(weight: [Float], shape: [Int], bias: [Float]? = nil, stride: Int = 2, padding: Int = 0,
                outputPadding: Int = 0, postOps: [PostOp] = [], hint: (Int, Int) = (32, 32), polyphase: Bool = true,
                context: ComputeContext) throws {
        try self.init(weight: weight, shape: shape, bias: bias, stride: stride,
                      cropping: Padding2D(top: padding, left: padding, bottom: padding - outputPadding, right: padding - outputPadding),
                      postOps: postOps, hint: hint, polyphase: polyphase, context: context)
    }

    /// General form: `cropping` removes rows/columns from each side of the full transposed
    /// convolution output (negative values add zero rows/columns).
    public init(weight: [Float], shape: [Int], bias: [Float]? = nil, stride: Int, cropping: Padding2D, groups: Int = 1,
                postOps: [PostOp] = [], hint: (Int, Int) = (32, 32), polyphase: Bool = true, context: ComputeContext) throws {
        guard shape.count == 4, weight.count == shape.reduce(1, *) else {
            throw EngineError.shapeMismatch(op: "conv_transpose2d", detail: "weight shape \(shape) with \(weight.count) values")
        }
        guard groups >= 1, shape[0] % groups == 0 else {
            throw EngineError.shapeMismatch(op: "conv_transpose2d", detail: "\(shape[0]) input channels in \(groups) groups")
        }
        let (i, og, kh, kw) = (shape[0], shape[1], shape[2], shape[3])
        let o = og * groups
        if let bias, bias.count != o {
            throw EngineError.shapeMismatch(op: "conv_transpose2d", detail: "bias has \(bias.count) values for \(o) output channels")
        }
        inChannels = i
        outChannels = o
        self.stride = stride
        if polyphase, PolyphaseTransposedConv.applies(stride: stride, groups: groups, kernel: (kh, kw), cropping: cropping) {
            path = .polyphase(try PolyphaseTransposedConv(weight: weight, inChannels: i, outChannels: o, kernel: (kh, kw), bias: bias,
                                                          cropping: cropping, postOps: postOps, hint: hint, context: context))
            return
        }
        // PyTorch stores [in, out/g, kh, kw]; oneDNN's logical dims are (out, in, kh, kw), or
        // (g, out/g, in/g, kh, kw) grouped: the same memory described with the "bacd"/"acbde" tags.
        let dims = groups == 1 ? [o, i, kh, kw] : [groups, og, i / groups, kh, kw]
        let plainDesc = MemoryDesc(dims: dims, tag: groups == 1 ? dnnl_bacd : dnnl_acbde)
        let plain = TensorStorage(bytes: plainDesc.byteSize)
        weight.withUnsafeBufferPointer { plain.floats.update(from: $0.baseAddress!, count: weight.count) }
        let c = cropping
        let size: @Sendable (Int, Int) -> (Int, Int) = { h, w in
            ((h - 1) * stride + kh - c.top - c.bottom, (w - 1) * stride + kw - c.left - c.right)
        }
        path = .oneDNN(try FixedWeightKernel(kind: .deconv, weightDims: dims, plainWeightsDesc: plainDesc, plainWeights: plain,
                                             bias: bias, outChannels: o, inChannels: i, strides: [stride, stride],
                                             padding: cropping, postOps: postOps, outputSize: size, hint: hint, context: context))
    }

    public func callAsFunction(_ x: Tensor, _ context: ComputeContext) throws -> Tensor {
        guard x.rank == 4, x.shape[1] == inChannels else {
            throw EngineError.shapeMismatch(op: "conv_transpose2d", detail: "input \(x.shape), layer expects \(inChannels) channels")
        }
        switch path {
        case .oneDNN(let kernel): return try kernel.forward(x, context: context)
        case .polyphase(let phases): return try phases(x, context)
        }
    }

    /// `filter(self(x))`; for the polyphase form with a plain FIR filter (StyleGAN2's blur after
    /// its upsampling transposed convolution) in one pass that never materializes `self(x)`.
    public func callAsFunction(_ x: Tensor, then filter: UpFirDn2d, _ context: ComputeContext) throws -> Tensor {
        guard x.rank == 4, x.shape[1] == inChannels, filter.channels == outChannels else {
            throw EngineError.shapeMismatch(op: "conv_transpose2d", detail: "input \(x.shape), layer expects \(inChannels) channels")
        }
        if case .polyphase(let phases) = path, let y = try phases.filtered(x, filter, context) { return y }
        return try filter(try self(x, context), context)
    }

    /// The oneDNN implementation chosen for this input; for the polyphase form, "polyphase" and
    /// the kernels of its phase convolutions.
    public func implementation(for x: Tensor, _ context: ComputeContext) throws -> String {
        switch path {
        case .oneDNN(let kernel): return try kernel.implementation(for: x, context: context)
        case .polyphase(let phases):
            let kernels = try phases.phases.flatMap { try $0.map { try $0.implementation(for: x, context) } }
            return "polyphase(" + Array(Set(kernels)).sorted().joined(separator: ", ") + ")"
        }
    }
}
