// Element-wise, broadcast, resampling, concat/slice, softmax, PReLU and linear ops through oneDNN,
// with PyTorch semantics (torch.nn.functional at torch 2.x; checked by the op golden tests).

import CDNNL

/// Interpolation mode for `resize`.
public enum ResizeMode: Sendable {
    /// `F.interpolate(mode="bilinear", align_corners=False)`.
    case bilinear
    /// `F.interpolate(mode="nearest")`.
    case nearest
}

extension ComputeContext {
    // MARK: element-wise

    private func eltwise(_ x: Tensor, _ alg: dnnl_alg_kind_t, alpha: Float, beta: Float) throws -> Tensor {
        let p = try make(.eltwise(alg: alg, data: x.desc, alpha: alpha, beta: beta))
        let out = Tensor(uninitialized: x.desc)
        try run(p, [PrimitiveArg(role: DNNL_ARG_SRC, desc: x.desc, data: x.storage.pointer),
                    PrimitiveArg(role: DNNL_ARG_DST, desc: x.desc, data: out.storage.pointer)])
        return out
    }

    /// `F.relu`.
    public func relu(_ x: Tensor) throws -> Tensor { try eltwise(x, dnnl_eltwise_relu, alpha: 0, beta: 0) }

    /// `F.leaky_relu(x, slope)`.
    public func leakyReLU(_ x: Tensor, slope: Float) throws -> Tensor { try eltwise(x, dnnl_eltwise_relu, alpha: slope, beta: 0) }

    /// `x * scale + shift`.
    public func scale(_ x: Tensor, by scale: Float, shift: Float = 0) throws -> Tensor {
        try eltwise(x, dnnl_eltwise_linear, alpha: scale, beta: shift)
    }

    // MARK: binary with broadcasting

    private func binary(_ a: Tensor, _ b: Tensor, _ alg: dnnl_alg_kind_t, op: String) throws -> Tensor {
        guard a.rank == b.rank, zip(a.shape, b.shape).allSatisfy({ $0 == $1 || $1 == 1 }) else {
            throw EngineError.shapeMismatch(op: op, detail: "\(a.shape) and \(b.shape) (the second may broadcast)")
        }
        // Same-shape operands share the first one's layout so the fast kernel applies.
        // A per-channel operand of an nChw16c tensor is blocked too (else oneDNN 2.6 falls back to its
        // reference kernel).
        let rhs = a.shape == b.shape ? try reordered(b, to: a.desc)
            : (a.desc.isChannelBlocked16 && b.shape == [1, a.shape[1], 1, 1] ? try reordered(b, to: .channelBlocked16(b.shape)) : b)
        let p = try make(.binary(alg: alg, src0: a.desc, src1: rhs.desc, dst: a.desc))
        let out = Tensor(uninitialized: a.desc)
        try run(p, [PrimitiveArg(role: DNNL_ARG_SRC_0, desc: a.desc, data: a.storage.pointer),
                    PrimitiveArg(role: DNNL_ARG_SRC_1, desc: rhs.desc, data: rhs.storage.pointer),
                    PrimitiveArg(role: DNNL_ARG_DST, desc: a.desc, data: out.storage.pointer)])
        return out
    }

    /// `a + b`; `b` may broadcast along size-1 dims (e.g. a `[1, C, 1, 1]` bias).
    public func add(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(a, b, dnnl_binary_add, op: "add") }

    /// `a * b`; `b` may broadcast along size-1 dims (e.g. a `[1, C, 1, 1]` per-channel scale).
    public func multiply(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(a, b, dnnl_binary_mul, op: "multiply") }

    // MARK: resampling

    /// Resizes the spatial dims by `factor` with PyTorch `F.interpolate(scale_factor=factor)`
    /// semantics: output size `floor(in·factor)`, source coordinates mapped with `1/factor`
    /// (not the size ratio, which differs for odd sizes). Bilinear is `align_corners=False`.
    public func resize(_ x: Tensor, factor: Double, mode: ResizeMode) throws -> Tensor {
        guard x.rank == 4, factor > 0 else { throw EngineError.shapeMismatch(op: "resize", detail: "needs NCHW and a positive factor, got \(x.shape)") }
        let h = Int((Double(x.shape[2]) * factor).rounded(.down)), w = Int((Double(x.shape[3]) * factor).rounded(.down))
        return try resize(x, height: h, width: w, mode: mode, scale: (1 / factor, 1 / factor))
    }

    /// Resizes to an explicit size with PyTorch `F.interpolate(size=(height, width))` semantics
    /// (source coordinates mapped with the size ratio in/out).
    public func resize(_ x: Tensor, height: Int, width: Int, mode: ResizeMode) throws -> Tensor {
        guard x.rank == 4 else { throw EngineError.shapeMismatch(op: "resize", detail: "needs NCHW, got \(x.shape)") }
        return try resize(x, height: height, width: width, mode: mode,
                          scale: (Double(x.shape[2]) / Double(max(height, 1)), Double(x.shape[3]) / Double(max(width, 1))))
    }

    private func resize(_ x: Tensor, height: Int, width: Int, mode: ResizeMode, scale: (Double, Double)) throws -> Tensor {
        guard height > 0, width > 0 else { throw EngineError.shapeMismatch(op: "resize", detail: "\(x.shape) to \(height)×\(width)") }
        let (ih, iw) = (x.shape[2], x.shape[3])
        let dstDims = [x.shape[0], x.shape[1], height, width]
        // Plain and nChw16c inputs keep their layout through oneDNN's resampling; others go channels-last.
        let dst = x.layout == .plain ? MemoryDesc.plain(dstDims)
            : (x.desc.isChannelBlocked16 ? MemoryDesc.channelBlocked16(dstDims) : MemoryDesc.channelsLast(dstDims))
        let src = x.layout == .plain || x.desc.isChannelBlocked16 ? x : try channelsLast(x)
        // oneDNN maps coordinates by the size ratio; that equals PyTorch's mapping exactly when the
        // ratio is 2 or 1/2 in both dims and matches the requested scale.
        let exact = { (i: Int, o: Int, s: Double) in (o == 2 * i && s == 0.5) || (2 * o == i && s == 2) }
        if exact(ih, height, scale.0), exact(iw, width, scale.1) {
            let alg = mode == .bilinear ? dnnl_resampling_linear : dnnl_resampling_nearest
            let p = try make(.resampling(alg: alg, src: src.desc, dst: dst))
            let out = Tensor(uninitialized: dst)
            try run(p, [PrimitiveArg(role: DNNL_ARG_SRC, desc: src.desc, data: src.storage.pointer),
                        PrimitiveArg(role: DNNL_ARG_DST, desc: dst, data: out.storage.pointer)])
            return out
        }
        let out = try resizeGeneral(try channelsLast(x), height: height, width: width, mode: mode, scale: scale)
        return x.layout == .plain ? try contiguous(out) : out
    }

    /// PyTorch's CPU upsample kernels (`UpSampleKernel.cpp`, `UpSample.h`) on NHWC memory:
    /// nearest `src = min(floor(dst·s), in−1)`; bilinear `src = max(s·(dst+0.5)−0.5, 0)` with the
    /// upper neighbour clamped to the edge.
    private func resizeGeneral(_ x: Tensor, height oh: Int, width ow: Int, mode: ResizeMode, scale: (Double, Double)) throws -> Tensor {
        let (n, c, ih, iw) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let out = Tensor(uninitialized: .channelsLast([n, c, oh, ow]))
        let s = x.storage.floats, d = out.storage.floats
        let (sh, sw) = (Float(scale.0), Float(scale.1))
        func taps(_ o: Int, _ size: Int, _ sc: Float) -> (Int, Int, Float, Float) {
            switch mode {
            case .nearest:
                let i = min(Int((Float(o) * sc).rounded(.down)), size - 1)
                return (i, i, 1, 0)
            case .bilinear:
                let src = max(sc * (Float(o) + 0.5) - 0.5, 0)
                let i0 = Int(src)
                let i1 = i0 < size - 1 ? i0 + 1 : i0
                let l1 = src - Float(i0)
                return (i0, i1, 1 - l1, l1)
            }
        }
        let ys = (0..<oh).map { taps($0, ih, sh) }, xs = (0..<ow).map { taps($0, iw, sw) }
        for b in 0..<n {
            for (oy, (y0, y1, ly0, ly1)) in ys.enumerated() {
                let r0 = s + (b * ih + y0) * iw * c, r1 = s + (b * ih + y1) * iw * c
                for (ox, (x0, x1, lx0, lx1)) in xs.enumerated() {
                    let o = d + ((b * oh + oy) * ow + ox) * c
                    for ch in 0..<c {
                        o[ch] = ly0 * (lx0 * r0[x0 * c + ch] + lx1 * r0[x1 * c + ch])
                              + ly1 * (lx0 * r1[x0 * c + ch] + lx1 * r1[x1 * c + ch])
                    }
                }
            }
        }
        return out
    }

    // MARK: concat and slice

    /// `torch.cat(tensors, dim: axis)`.
    public func concat(_ tensors: [Tensor], axis: Int = 1) throws -> Tensor {
        guard let first = tensors.first else { throw EngineError.shapeMismatch(op: "concat", detail: "no tensors") }
        for t in tensors where t.rank != first.rank || t.shape.enumerated().contains(where: { $0.offset != axis && $0.element != first.shape[$0.offset] }) {
            throw EngineError.shapeMismatch(op: "concat", detail: "\(t.shape) does not match \(first.shape) outside dim \(axis)")
        }
        var dims = first.shape
        dims[axis] = tensors.reduce(0) { $0 + $1.shape[axis] }
        // nChw16c inputs (Winograd outputs) concatenated along channels stay nChw16c: oneDNN's fast
        // concat copies whole blocks; mixing layouts falls back to its slow reference kernel.
        let blocked = axis == 1 && tensors.allSatisfy { $0.desc.isChannelBlocked16 }
        let dst: MemoryDesc = first.layout == .plain ? .plain(dims) : (blocked ? .channelBlocked16(dims) : .channelsLast(dims))
        let p: Primitive
        do {
            p = try Primitive.concat(tensors.map(\.desc), axis: axis, dst: dst, engine: engine)
        } catch let failure as DNNLFailure {
            throw EngineError.unsupported(op: "concat", detail: failure.description)
        }
        let out = Tensor(uninitialized: dst)
        var args = tensors.enumerated().map { i, t in
            PrimitiveArg(role: DNNL_ARG_MULTIPLE_SRC + Int32(i), desc: t.desc, data: t.storage.pointer)
        }
        args.append(PrimitiveArg(role: DNNL_ARG_DST, desc: dst, data: out.storage.pointer))
        try run(p, args)
        return out
    }

    /// `x.narrow(axis, start, length)`: a new tensor in a plain or channels-last layout, or, for
    /// a channel range of an nChw16c batch-1 tensor on 16-channel boundaries (one contiguous run
    /// of its memory), a view sharing that memory without a copy.
    public func slice(_ x: Tensor, axis: Int = 1, start: Int, length: Int) throws -> Tensor {
        guard axis < x.rank, start >= 0, length > 0, start + length <= x.shape[axis] else {
            throw EngineError.shapeMismatch(op: "slice", detail: "\(x.shape) dim \(axis) [\(start), \(start + length))")
        }
        if axis == 1, x.rank == 4, x.shape[0] == 1, x.shape[1] % 16 == 0, start % 16 == 0, length % 16 == 0,
           x.desc.isChannelBlocked16 {
            return ChannelStack.range(of: x, start: start, count: length)
        }
        var dims = x.shape, offsets = [Int](repeating: 0, count: x.rank)
        dims[axis] = length
        offsets[axis] = start
        // Sub-memory views need a layout without blocking across `axis`; blocked inputs go plain first.
        let src = x.layout == .opaque ? try channelsLast(x) : x
        guard let view = src.desc.submemory(dims: dims, offsets: offsets) else {
            throw EngineError.unsupported(op: "slice", detail: "\(x.shape) dim \(axis) [\(start), \(start + length))")
        }
        let dst: MemoryDesc = src.layout == .plain ? .plain(dims) : .channelsLast(dims)
        let out = Tensor(uninitialized: dst)
        try reorder(from: view, src.storage.pointer, to: dst, out.storage.pointer)
        return out
    }

    // MARK: softmax, PReLU

    /// `F.softmax(x, dim: axis)`.
    public func softmax(_ x: Tensor, axis: Int) throws -> Tensor {
        let p = try make(.softmax(src: x.desc, dst: x.desc, axis: axis))
        let out = Tensor(uninitialized: x.desc)
        try run(p, [PrimitiveArg(role: DNNL_ARG_SRC, desc: x.desc, data: x.storage.pointer),
                    PrimitiveArg(role: DNNL_ARG_DST, desc: x.desc, data: out.storage.pointer)])
        return out
    }

    /// `F.prelu(x, weight)` with one slope per channel (dim 1) or a single shared slope.
    public func prelu(_ x: Tensor, slopes: [Float]) throws -> Tensor {
        guard x.rank >= 2, slopes.count == 1 || slopes.count == x.shape[1] else {
            throw EngineError.shapeMismatch(op: "prelu", detail: "\(slopes.count) slopes for input \(x.shape)")
        }
        var wdims = [Int](repeating: 1, count: x.rank)
        wdims[1] = slopes.count
        let w = Tensor(shape: wdims, values: slopes)
        let p = try make(.prelu(data: x.desc, weights: w.desc))
        let out = Tensor(uninitialized: x.desc)
        try run(p, [PrimitiveArg(role: DNNL_ARG_SRC, desc: x.desc, data: x.storage.pointer),
                    PrimitiveArg(role: DNNL_ARG_WEIGHTS, desc: w.desc, data: w.storage.pointer),
                    PrimitiveArg(role: DNNL_ARG_DST, desc: x.desc, data: out.storage.pointer)])
        return out
    }
}

/// `nn.Linear`: y = x Wᵀ + b, with the weight reordered once at load.
public final class Linear: Sendable {
    public let inFeatures: Int
    public let outFeatures: Int
    private let weightsDesc: MemoryDesc
    private let weights: TensorStorage
    private let bias: TensorStorage?
    private let postOps: [PostOp]

    /// - Parameter weight: PyTorch layout `[out, in]`, row-major.
    public convenience init(weight: [Float], shape: [Int], bias: [Float]? = nil, postOps: [PostOp] = [], context: ComputeContext) throws {
        guard shape.count == 2, weight.count == shape[0] * shape[1] else {
            throw EngineError.shapeMismatch(op: "linear", detail: "weight shape \(shape) with \(weight.count) values")
        }
        try self.init(weight: Tensor(shape: shape, values: weight), bias: bias, postOps: postOps, context: context)
    }

    /// The same with the weight as a plain tensor `[out, in]` (kept without a copy where its
    /// layout is used as it is).
    public init(weight: Tensor, bias: [Float]? = nil, postOps: [PostOp] = [], context: ComputeContext) throws {
        let shape = weight.shape
        guard shape.count == 2, weight.layout == .plain else {
            throw EngineError.shapeMismatch(op: "linear", detail: "weight shape \(shape) (\(weight.layout))")
        }
        if let bias, bias.count != shape[0] {
            throw EngineError.shapeMismatch(op: "linear", detail: "bias has \(bias.count) values for \(shape[0]) outputs")
        }
        outFeatures = shape[0]
        inFeatures = shape[1]
        self.postOps = postOps
        let (n, k) = (shape[0], shape[1])
        func probe(_ weights: MemoryDesc) throws -> Primitive {
            try context.make(.innerProduct(src: .plain([1, k]), weights: weights,
                                           bias: bias == nil ? nil : .plain([n]), dst: .plain([1, n])),
                             postOps: postOps)
        }
        // Large weights stay in PyTorch's [out, in] layout when oneDNN has a real (GEMM) kernel for
        // it: the blocked copy would cost a reorder and fresh memory at load that a one-photo run
        // never earns back (GFPGAN v1.4's final_linear, 8192×4096: 86 ms of reorder and 134 MB
        // of page faults, against 10.3 instead of 5.7 ms per call). Small ones are reordered.
        if n * k >= 1 << 23, let p = try? probe(.plain(shape)), !p.implementation.hasPrefix("ref") {
            weightsDesc = p.weightsDesc
            weights = weight.storage
        } else {
            weightsDesc = try probe(.any(shape)).weightsDesc
            weights = try context.reordered(weight, to: weightsDesc).storage
        }
        self.bias = bias.map { Tensor(shape: [$0.count], values: $0).storage }
    }

    /// `x` is `[N, in]` (or any shape whose last dim is `in`; leading dims are flattened and kept).
    public func callAsFunction(_ x: Tensor, _ context: ComputeContext) throws -> Tensor {
        guard x.shape.last == inFeatures else {
            throw EngineError.shapeMismatch(op: "linear", detail: "input \(x.shape), layer expects last dim \(inFeatures)")
        }
        let rows = x.count / inFeatures
        let src = try context.reshape(x, [rows, inFeatures])
        let dst = MemoryDesc.plain([rows, outFeatures])
        let p = try context.make(.innerProduct(src: src.desc, weights: weightsDesc,
                                               bias: bias == nil ? nil : .plain([outFeatures]), dst: dst), postOps: postOps)
        let out = Tensor(uninitialized: dst)
        var args = [PrimitiveArg(role: DNNL_ARG_SRC, desc: src.desc, data: src.storage.pointer),
                    PrimitiveArg(role: DNNL_ARG_WEIGHTS, desc: weightsDesc, data: weights.pointer),
                    PrimitiveArg(role: DNNL_ARG_DST, desc: dst, data: out.storage.pointer)]
        if let bias { args.append(PrimitiveArg(role: DNNL_ARG_BIAS, desc: .plain([outFeatures]), data: bias.pointer)) }
        try context.run(p, args)
        return try context.reshape(out, Array(x.shape.dropLast()) + [outFeatures])
    }
}
