// ComputeContext: the engine handle and the thread count, passed to every op (no global state).

import CDNNL
import Foundation

/// Errors raised by engine ops. Shape errors name the op and the shapes involved.
public enum EngineError: Error, CustomStringConvertible, Equatable {
    case shapeMismatch(op: String, detail: String)
    case unsupported(op: String, detail: String)
    case backend(String)
    /// A network produced NaN or infinity (a damaged checkpoint, or weights out of range).
    case nonFinite(op: String)

    public var description: String {
        switch self {
        case let .nonFinite(op): return "\(op): the network produced NaN or infinite values (are the weights damaged?)"
        case let .shapeMismatch(op, detail): return "\(op): shape mismatch: \(detail)"
        case let .unsupported(op, detail): return "\(op): unsupported: \(detail)"
        case let .backend(message): return "compute backend error: \(message)"
        }
    }
}

/// Arithmetic of the convolutions of layers built with a context.
public enum Precision: String, Sendable, CaseIterable {
    /// float32 everywhere (the default; parity with the reference).
    case fp32
    /// bfloat16 weights and activations into the convolutions, float32 accumulation and outputs
    /// (oneDNN's avx512_core_bf16 kernels); everything else stays float32. Opt-in: faster, less exact.
    case bf16
}

/// Where and how ops run: a oneDNN CPU engine, the number of threads each op may use, and the
/// precision layers built with it compute in (read when a layer reorders its weights at load).
public struct ComputeContext: Sendable {
    /// Threads used by each op (OpenMP team size for oneDNN primitives).
    public let threads: Int
    public let precision: Precision
    /// Whether 3×3 stride-1 float32 convolutions may use oneDNN's Winograd kernels (F(2×2,3×3) and
    /// F(4×4,3×3)) or, for layers built with `fusedWinograd`, our own F(4×4,3×3) kernel: 1.2–2.7×
    /// faster per layer, a few ulps from direct convolution (well inside the parity tolerance),
    /// deterministic, but their transformed weights and work buffers take more memory (GFPGAN
    /// v1.4: about 300 MB more after loading, 400 MB more at peak).
    public let winograd: Bool
    let engine: DNNLEngine

    /// - Parameters:
    ///   - threads: threads per op; defaults to all active cores.
    ///   - winograd: allow Winograd convolutions (the default); false keeps every convolution direct.
    public init(threads: Int? = nil, precision: Precision = .fp32, winograd: Bool = true) {
        self.threads = max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount)
        self.precision = precision
        self.winograd = winograd
        self.engine = DNNLEngine.cpu
    }

    /// A context sharing this one's engine with another thread count.
    public func with(threads: Int) -> ComputeContext {
        ComputeContext(threads: max(1, threads), precision: precision, winograd: winograd, engine: engine)
    }

    private init(threads: Int, precision: Precision, winograd: Bool, engine: DNNLEngine) {
        self.threads = threads
        self.precision = precision
        self.winograd = winograd
        self.engine = engine
    }

    func run(_ primitive: Primitive, _ args: [PrimitiveArg]) throws {
        do {
            try primitive.execute(args, engine: engine, threads: threads)
        } catch let failure as DNNLFailure {
            throw EngineError.backend(failure.description)
        }
    }

    func make(_ op: OpDesc, postOps: [PostOp] = []) throws -> Primitive {
        do {
            return try Primitive.make(op, postOps: postOps, engine: engine)
        } catch let failure as DNNLFailure {
            throw EngineError.unsupported(op: op.name, detail: failure.description)
        }
    }

    // MARK: layout conversion

    /// `t` in layout `desc` (no copy when it already is).
    func reordered(_ t: Tensor, to desc: MemoryDesc) throws -> Tensor {
        if t.desc == desc { return t }
        let out = Tensor(uninitialized: desc)
        try reorder(from: t.desc, t.storage.pointer, to: desc, out.storage.pointer)
        return out
    }

    /// Copies memory between two layouts of the same dims.
    func reorder(from src: MemoryDesc, _ srcData: UnsafeMutableRawPointer,
                 to dst: MemoryDesc, _ dstData: UnsafeMutableRawPointer) throws {
        let prim: Primitive
        do {
            prim = try Primitive.reorder(from: src, to: dst, engine: engine)
        } catch let failure as DNNLFailure {
            throw EngineError.unsupported(op: "reorder", detail: failure.description)
        }
        try run(prim, [PrimitiveArg(role: DNNL_ARG_FROM, desc: src, data: srcData),
                       PrimitiveArg(role: DNNL_ARG_TO, desc: dst, data: dstData)])
    }

    /// The tensor in plain row-major layout (PyTorch's contiguous layout).
    public func contiguous(_ t: Tensor) throws -> Tensor {
        try reordered(t, to: .plain(t.shape))
    }

    /// The tensor in NHWC layout (4-D) — the layout Swift-side image code works in.
    public func channelsLast(_ t: Tensor) throws -> Tensor {
        try reordered(t, to: .channelsLast(t.shape))
    }

    /// The values in PyTorch (row-major) order.
    public func array(_ t: Tensor) throws -> [Float] {
        let plain = try contiguous(t)
        return plain.withPlainValues { Array($0) }
    }

    /// A 4-D tensor's values in NHWC order (PyTorch's `x.permute(0, 2, 3, 1).contiguous()`).
    public func arrayNHWC(_ t: Tensor) throws -> [Float] {
        precondition(t.rank == 4, "arrayNHWC needs a 4-D tensor")
        let nhwc = try channelsLast(t)
        return Array(UnsafeBufferPointer(start: nhwc.storage.floats, count: t.count))
    }

    /// A plain tensor with new dims and the same element order.
    public func reshape(_ t: Tensor, _ shape: [Int]) throws -> Tensor {
        guard shape.reduce(1, *) == t.count else {
            throw EngineError.shapeMismatch(op: "reshape", detail: "\(t.shape) has \(t.count) elements, \(shape) needs \(shape.reduce(1, *))")
        }
        let plain = try contiguous(t)
        return Tensor(desc: .plain(shape), storage: plain.storage)
    }
}
