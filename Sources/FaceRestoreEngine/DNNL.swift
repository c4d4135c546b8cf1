// The only file that calls the oneDNN C API (Debian libdnnl-dev 2.6.3).
//
// oneDNN 2.x exposes `dnnl_memory_desc_t` as a plain struct; 3.x makes it opaque, so every
// direct use of it stays here behind `MemoryDesc`, `Primitive` and `DNNLEngine`.
//
// Thread safety: a oneDNN engine is thread-safe; a primitive is immutable after creation and may
// be executed concurrently when it uses a user-provided scratchpad (which we always do, one per
// call), see oneDNN's "Primitive Attributes: Scratchpad" documentation.

import CDNNL
import Foundation

/// A oneDNN memory descriptor: logical dims (PyTorch order, e.g. NCHW) plus a physical layout,
/// which may be plain (`nchw`, `nhwc`) or one of oneDNN's blocked layouts (`nChw16c`, ...).
struct MemoryDesc: @unchecked Sendable {
    // @unchecked: dnnl_memory_desc_t is plain data in oneDNN 2.x (no pointers).
    var raw: dnnl_memory_desc_t

    init(raw: dnnl_memory_desc_t) { self.raw = raw }

    /// A descriptor with a named format tag.
    init(dims: [Int], tag: dnnl_format_tag_t, type: dnnl_data_type_t = dnnl_f32) {
        var md = dnnl_memory_desc_t()
        let d = dims.map(Int64.init)
        let status = dnnl_memory_desc_init_by_tag(&md, Int32(d.count), d, type, tag)
        precondition(status == dnnl_success, "dnnl_memory_desc_init_by_tag failed for dims \(dims)")
        raw = md
    }

    /// A descriptor for strided memory (strides in elements).
    init(dims: [Int], strides: [Int], type: dnnl_data_type_t = dnnl_f32) {
        var md = dnnl_memory_desc_t()
        let d = dims.map(Int64.init), s = strides.map(Int64.init)
        let status = dnnl_memory_desc_init_by_strides(&md, Int32(d.count), d, type, s)
        precondition(status == dnnl_success, "dnnl_memory_desc_init_by_strides failed for dims \(dims)")
        raw = md
    }

    /// Row-major contiguous memory in logical order (PyTorch's default layout).
    static func plain(_ dims: [Int], type: dnnl_data_type_t = dnnl_f32) -> MemoryDesc {
        MemoryDesc(dims: dims, tag: plainTag(dims.count), type: type)
    }

    /// Channels-last for 4-D (NHWC), plain otherwise.
    static func channelsLast(_ dims: [Int]) -> MemoryDesc {
        dims.count == 4 ? MemoryDesc(dims: dims, tag: dnnl_acdb) : plain(dims)
    }

    /// oneDNN's nChw16c (`aBcd16b`): channels in blocks of 16, each block a channels-last image.
    static func channelBlocked16(_ dims: [Int]) -> MemoryDesc {
        MemoryDesc(dims: dims, tag: dnnl_aBcd16b)
    }

    /// "Let the primitive choose" descriptor.
    static func any(_ dims: [Int], type: dnnl_data_type_t = dnnl_f32) -> MemoryDesc {
        MemoryDesc(dims: dims, tag: dnnl_format_tag_any, type: type)
    }

    static func plainTag(_ ndims: Int) -> dnnl_format_tag_t {
        switch ndims {
        case 1: return dnnl_a
        case 2: return dnnl_ab
        case 3: return dnnl_abc
        case 4: return dnnl_abcd
        case 5: return dnnl_abcde
        case 6: return dnnl_abcdef
        default: preconditionFailure("unsupported rank \(ndims)")
        }
    }

    var dims: [Int] {
        var d = raw.dims
        return withUnsafeBytes(of: &d) { buf in
            Array(buf.bindMemory(to: Int64.self).prefix(Int(raw.ndims))).map(Int.init)
        }
    }

    var byteSize: Int { withUnsafePointer(to: raw) { Int(dnnl_memory_desc_get_size($0)) } }

    var isPlain: Bool {
        self == MemoryDesc.plain(dims)
    }

    var isChannelsLast: Bool {
        dims.count == 4 && self == MemoryDesc.channelsLast(dims)
    }

    /// nChw16c with a channel count that is a multiple of 16 (no padded channels).
    var isChannelBlocked16: Bool {
        let d = dims
        return d.count == 4 && d[1] % 16 == 0 && self == MemoryDesc.channelBlocked16(d)
    }

    /// A view of a region (sub-tensor) of this memory; only valid where oneDNN allows it
    /// (e.g. channel offsets that are multiples of the block size in blocked layouts).
    func submemory(dims: [Int], offsets: [Int]) -> MemoryDesc? {
        var out = dnnl_memory_desc_t()
        let d = dims.map(Int64.init), o = offsets.map(Int64.init)
        let status = withUnsafePointer(to: raw) { dnnl_memory_desc_init_submemory(&out, $0, d, o) }
        return status == dnnl_success ? MemoryDesc(raw: out) : nil
    }
}

extension MemoryDesc: Equatable {
    static func == (a: MemoryDesc, b: MemoryDesc) -> Bool {
        withUnsafePointer(to: a.raw) { pa in withUnsafePointer(to: b.raw) { pb in dnnl_memory_desc_equal(pa, pb) != 0 } }
    }
}

/// Errors from oneDNN calls. The engine treats these as programming or resource errors.
struct DNNLFailure: Error, CustomStringConvertible {
    let call: String
    let status: dnnl_status_t
    var description: String { "oneDNN \(call) failed (status \(status.rawValue))" }
}

@inline(__always)
func dnnlCheck(_ status: dnnl_status_t, _ call: @autoclosure () -> String) throws {
    if status != dnnl_success { throw DNNLFailure(call: call(), status: status) }
}

/// A CPU engine. Thread-safe per oneDNN's threading model.
final class DNNLEngine: @unchecked Sendable {
    // @unchecked: dnnl_engine_t is an immutable, internally synchronized handle.
    let handle: dnnl_engine_t

    /// The process's CPU engine. oneDNN's CPU engine is an immutable handle (no streams, no
    /// thread pool, no caches of ours), so every context shares it: layers built with one context
    /// then run with any other (a primitive must run on the engine it was created for).
    static let cpu = DNNLEngine()

    private init() {
        var e: dnnl_engine_t?
        let status = dnnl_engine_create(&e, dnnl_cpu, 0)
        precondition(status == dnnl_success && e != nil, "oneDNN CPU engine could not be created")
        handle = e!
    }

    deinit { dnnl_engine_destroy(handle) }
}

/// An argument for a primitive: its role (DNNL_ARG_*), layout and data pointer.
struct PrimitiveArg {
    let role: Int32
    let desc: MemoryDesc
    let data: UnsafeMutableRawPointer
}

/// A primitive's op descriptor, as oneDNN 2.x builds them.
enum OpDesc {
    case convolution(src: MemoryDesc, weights: MemoryDesc, bias: MemoryDesc?, dst: MemoryDesc,
                     strides: [Int], dilation: [Int], padL: [Int], padR: [Int], winograd: Bool = false)
    case deconvolution(src: MemoryDesc, weights: MemoryDesc, bias: MemoryDesc?, dst: MemoryDesc,
                       strides: [Int], padL: [Int], padR: [Int])
    case eltwise(alg: dnnl_alg_kind_t, data: MemoryDesc, alpha: Float, beta: Float)
    case binary(alg: dnnl_alg_kind_t, src0: MemoryDesc, src1: MemoryDesc, dst: MemoryDesc)
    case resampling(alg: dnnl_alg_kind_t, src: MemoryDesc, dst: MemoryDesc)
    case softmax(src: MemoryDesc, dst: MemoryDesc, axis: Int)
    case prelu(data: MemoryDesc, weights: MemoryDesc)
    case innerProduct(src: MemoryDesc, weights: MemoryDesc, bias: MemoryDesc?, dst: MemoryDesc)
    case matmul(src: MemoryDesc, weights: MemoryDesc, bias: MemoryDesc?, dst: MemoryDesc)
}

/// Fused post-operations appended to a primitive (oneDNN "post-ops").
public enum PostOp: Sendable, Hashable {
    case relu
    case leakyReLU(Float)
    /// y = alpha * x + beta
    case linear(alpha: Float, beta: Float)

    var algAlphaBeta: (dnnl_alg_kind_t, Float, Float) {
        switch self {
        case .relu: return (dnnl_eltwise_relu, 0, 0)
        case .leakyReLU(let slope): return (dnnl_eltwise_relu, slope, 0)
        case .linear(let a, let b): return (dnnl_eltwise_linear, a, b)
        }
    }
}

/// A created primitive with its primitive descriptor. Immutable; executable from any thread.
final class Primitive: @unchecked Sendable {
    // @unchecked: the handles are immutable after creation and execution uses per-call scratchpads.
    private let pd: dnnl_primitive_desc_t
    private let handle: dnnl_primitive_t
    let scratchpadBytes: Int

    private init(pd: dnnl_primitive_desc_t) throws {
        self.pd = pd
        var p: dnnl_primitive_t?
        do {
            try dnnlCheck(dnnl_primitive_create(&p, pd), "primitive_create")
        } catch {
            dnnl_primitive_desc_destroy(pd)
            throw error
        }
        handle = p!
        let sp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0)
        scratchpadBytes = sp.map { Int(dnnl_memory_desc_get_size($0)) } ?? 0
    }

    deinit {
        dnnl_primitive_destroy(handle)
        dnnl_primitive_desc_destroy(pd)
    }

    /// The layout the primitive chose for one of its memories (e.g. `dnnl_query_weights_md`).
    func desc(_ what: dnnl_query_t, index: Int32 = 0) -> MemoryDesc? {
        guard let md = dnnl_primitive_desc_query_md(pd, what, index) else { return nil }
        return MemoryDesc(raw: md.pointee)
    }

    var srcDesc: MemoryDesc { desc(dnnl_query_src_md)! }
    var dstDesc: MemoryDesc { desc(dnnl_query_dst_md)! }
    var weightsDesc: MemoryDesc { desc(dnnl_query_weights_md)! }

    /// The implementation oneDNN picked, e.g. "brgconv:avx512_core".
    var implementation: String { Self.implementation(of: pd) }

    private static func implementation(of pd: dnnl_primitive_desc_t) -> String {
        var s: UnsafePointer<CChar>?
        let status = dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s)
        guard status == dnnl_success, let s else { return "?" }
        return String(cString: s)
    }

    /// Builds a primitive for an op descriptor with optional fused post-ops.
    /// `outputScale`, when given, multiplies the result (oneDNN output scales, mask 0).
    static func make(_ op: OpDesc, postOps: [PostOp] = [], sum: Bool = false, outputScale: Float? = nil,
                     engine: DNNLEngine) throws -> Primitive {
        var attr: dnnl_primitive_attr_t?
        try dnnlCheck(dnnl_primitive_attr_create(&attr), "primitive_attr_create")
        defer { dnnl_primitive_attr_destroy(attr) }
        try dnnlCheck(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "set_scratchpad_mode")
        if var scale = outputScale {
            try dnnlCheck(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale), "primitive_attr_set_output_scales")
        }
        if !postOps.isEmpty || sum {
            var ops: dnnl_post_ops_t?
            try dnnlCheck(dnnl_post_ops_create(&ops), "post_ops_create")
            defer { dnnl_post_ops_destroy(ops) }
            if sum { try dnnlCheck(dnnl_post_ops_append_sum(ops, 1), "post_ops_append_sum") }
            for op in postOps {
                let (alg, a, b) = op.algAlphaBeta
                try dnnlCheck(dnnl_post_ops_append_eltwise(ops, 1, alg, a, b), "post_ops_append_eltwise")
            }
            try dnnlCheck(dnnl_primitive_attr_set_post_ops(attr, ops), "primitive_attr_set_post_ops")
        }
        var pd: dnnl_primitive_desc_t?
        if case .convolution(_, _, _, _, _, _, _, _, true) = op {
            // Winograd: oneDNN lists its F(2×2,3×3) kernel first, but its F(4×4,3×3) kernel, when it
            // takes the shape, is 1.3–2× faster here at every size we use (fewer multiplies).
            var it: dnnl_primitive_desc_iterator_t?
            let status: dnnl_status_t = withOpDesc(op) { opDesc in
                dnnl_primitive_desc_iterator_create(&it, opDesc, attr, engine.handle, nil)
            }
            try dnnlCheck(status, "primitive_desc_iterator_create(\(op.name))")
            defer { dnnl_primitive_desc_iterator_destroy(it) }
            var first: dnnl_primitive_desc_t?
            repeat {
                guard let candidate = dnnl_primitive_desc_iterator_fetch(it) else { break }
                if implementation(of: candidate).contains("wino_4x3") {
                    if let first { dnnl_primitive_desc_destroy(first) }
                    return try Primitive(pd: candidate)
                }
                if first == nil { first = candidate } else { dnnl_primitive_desc_destroy(candidate) }
            } while dnnl_primitive_desc_iterator_next(it) == dnnl_success
            guard let first else { throw DNNLFailure(call: "primitive_desc_iterator_fetch(\(op.name))", status: dnnl_unimplemented) }
            return try Primitive(pd: first)
        }
        let status: dnnl_status_t = withOpDesc(op) { opDesc in
            dnnl_primitive_desc_create(&pd, opDesc, attr, engine.handle, nil)
        }
        try dnnlCheck(status, "primitive_desc_create(\(op.name))")
        return try Primitive(pd: pd!)
    }

    /// A reorder (layout conversion) between two descriptors of the same dims.
    static func reorder(from src: MemoryDesc, to dst: MemoryDesc, engine: DNNLEngine) throws -> Primitive {
        var attr: dnnl_primitive_attr_t?
        try dnnlCheck(dnnl_primitive_attr_create(&attr), "primitive_attr_create")
        defer { dnnl_primitive_attr_destroy(attr) }
        try dnnlCheck(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "set_scratchpad_mode")
        var pd: dnnl_primitive_desc_t?
        let status = withUnsafePointer(to: src.raw) { s in
            withUnsafePointer(to: dst.raw) { d in
                dnnl_reorder_primitive_desc_create(&pd, s, engine.handle, d, engine.handle, attr)
            }
        }
        try dnnlCheck(status, "reorder_primitive_desc_create")
        return try Primitive(pd: pd!)
    }

    /// A concat along `axis` of sources into a layout the primitive chooses when `dst` is nil.
    static func concat(_ srcs: [MemoryDesc], axis: Int, dst: MemoryDesc?, engine: DNNLEngine) throws -> Primitive {
        var attr: dnnl_primitive_attr_t?
        try dnnlCheck(dnnl_primitive_attr_create(&attr), "primitive_attr_create")
        defer { dnnl_primitive_attr_destroy(attr) }
        try dnnlCheck(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "set_scratchpad_mode")
        var pd: dnnl_primitive_desc_t?
        let raws = srcs.map(\.raw)
        let status = raws.withUnsafeBufferPointer { buf -> dnnl_status_t in
            if let dst {
                return withUnsafePointer(to: dst.raw) {
                    dnnl_concat_primitive_desc_create(&pd, $0, Int32(raws.count), Int32(axis), buf.baseAddress, attr, engine.handle)
                }
            }
            return dnnl_concat_primitive_desc_create(&pd, nil, Int32(raws.count), Int32(axis), buf.baseAddress, attr, engine.handle)
        }
        try dnnlCheck(status, "concat_primitive_desc_create")
        return try Primitive(pd: pd!)
    }

    /// Runs the primitive on the calling thread's OpenMP team of `threads` threads and waits.
    func execute(_ args: [PrimitiveArg], engine: DNNLEngine, threads: Int) throws {
        omp_set_num_threads(Int32(max(1, threads)))
        var memories: [dnnl_memory_t?] = []
        memories.reserveCapacity(args.count + 1)
        defer { for m in memories { dnnl_memory_destroy(m) } }
        var execArgs: [dnnl_exec_arg_t] = []
        for arg in args {
            var m: dnnl_memory_t?
            try withUnsafePointer(to: arg.desc.raw) { md in
                try dnnlCheck(dnnl_memory_create(&m, md, engine.handle, arg.data), "memory_create")
            }
            memories.append(m)
            execArgs.append(dnnl_exec_arg_t(arg: arg.role, memory: m))
        }
        var scratch: UnsafeMutableRawPointer?
        defer { scratch.map { free($0) } }
        if scratchpadBytes > 0, let spDesc = desc(dnnl_query_scratchpad_md) {
            var p: UnsafeMutableRawPointer?
            guard posix_memalign(&p, 64, scratchpadBytes) == 0, let p else { throw DNNLFailure(call: "scratchpad allocation", status: dnnl_out_of_memory) }
            scratch = p
            var m: dnnl_memory_t?
            try withUnsafePointer(to: spDesc.raw) { md in
                try dnnlCheck(dnnl_memory_create(&m, md, engine.handle, p), "memory_create(scratchpad)")
            }
            memories.append(m)
            execArgs.append(dnnl_exec_arg_t(arg: DNNL_ARG_SCRATCHPAD, memory: m))
        }
        var stream: dnnl_stream_t?
        try dnnlCheck(dnnl_stream_create(&stream, engine.handle, dnnl_stream_default_flags.rawValue), "stream_create")
        defer { dnnl_stream_destroy(stream) }
        try dnnlCheck(dnnl_primitive_execute(handle, stream, Int32(execArgs.count), execArgs), "primitive_execute")
        try dnnlCheck(dnnl_stream_wait(stream), "stream_wait")
    }
}

extension OpDesc {
    var name: String {
        switch self {
        case .convolution: return "convolution"
        case .deconvolution: return "deconvolution"
        case .eltwise: return "eltwise"
        case .binary: return "binary"
        case .resampling: return "resampling"
        case .softmax: return "softmax"
        case .prelu: return "prelu"
        case .innerProduct: return "inner_product"
        case .matmul: return "matmul"
        }
    }
}

/// Calls `body` with a pointer to the oneDNN op descriptor for `op`.
private func withOpDesc(_ op: OpDesc, _ body: (const_dnnl_op_desc_t) -> dnnl_status_t) -> dnnl_status_t {
    func run<D>(_ d: inout D, _ status: dnnl_status_t) -> dnnl_status_t {
        guard status == dnnl_success else { return status }
        return withUnsafePointer(to: &d) { body(UnsafeRawPointer($0)) }
    }
    switch op {
    case let .convolution(src, weights, bias, dst, strides, dilation, padL, padR, winograd):
        var d = dnnl_convolution_desc_t()
        let alg = winograd ? dnnl_convolution_winograd : dnnl_convolution_direct
        var s = src.raw, w = weights.raw, o = dst.raw, b = bias?.raw ?? dnnl_memory_desc_t()
        let st = strides.map(Int64.init), dl = dilation.map { Int64($0 - 1) }
        let pl = padL.map(Int64.init), pr = padR.map(Int64.init)
        let status = bias == nil
            ? dnnl_dilated_convolution_forward_desc_init(&d, dnnl_forward_inference, alg, &s, &w, nil, &o, st, dl, pl, pr)
            : dnnl_dilated_convolution_forward_desc_init(&d, dnnl_forward_inference, alg, &s, &w, &b, &o, st, dl, pl, pr)
        return run(&d, status)
    case let .deconvolution(src, weights, bias, dst, strides, padL, padR):
        var d = dnnl_deconvolution_desc_t()
        var s = src.raw, w = weights.raw, o = dst.raw, b = bias?.raw ?? dnnl_memory_desc_t()
        let st = strides.map(Int64.init), pl = padL.map(Int64.init), pr = padR.map(Int64.init)
        let status = bias == nil
            ? dnnl_deconvolution_forward_desc_init(&d, dnnl_forward_inference, dnnl_deconvolution_direct, &s, &w, nil, &o, st, pl, pr)
            : dnnl_deconvolution_forward_desc_init(&d, dnnl_forward_inference, dnnl_deconvolution_direct, &s, &w, &b, &o, st, pl, pr)
        return run(&d, status)
    case let .eltwise(alg, data, alpha, beta):
        var d = dnnl_eltwise_desc_t()
        var m = data.raw
        return run(&d, dnnl_eltwise_forward_desc_init(&d, dnnl_forward_inference, alg, &m, alpha, beta))
    case let .binary(alg, src0, src1, dst):
        var d = dnnl_binary_desc_t()
        var a = src0.raw, b = src1.raw, o = dst.raw
        return run(&d, dnnl_binary_desc_init(&d, alg, &a, &b, &o))
    case let .resampling(alg, src, dst):
        var d = dnnl_resampling_desc_t()
        var s = src.raw, o = dst.raw
        return run(&d, dnnl_resampling_forward_desc_init(&d, dnnl_forward_inference, alg, nil, &s, &o))
    case let .softmax(src, dst, axis):
        var d = dnnl_softmax_v2_desc_t()
        var s = src.raw, o = dst.raw
        return run(&d, dnnl_softmax_v2_forward_desc_init(&d, dnnl_forward_inference, dnnl_softmax_accurate, &s, &o, Int32(axis)))
    case let .prelu(data, weights):
        var d = dnnl_prelu_desc_t()
        var s = data.raw, w = weights.raw
        return run(&d, dnnl_prelu_forward_desc_init(&d, dnnl_forward_inference, &s, &w))
    case let .innerProduct(src, weights, bias, dst):
        var d = dnnl_inner_product_desc_t()
        var s = src.raw, w = weights.raw, o = dst.raw, b = bias?.raw ?? dnnl_memory_desc_t()
        let status = bias == nil
            ? dnnl_inner_product_forward_desc_init(&d, dnnl_forward_inference, &s, &w, nil, &o)
            : dnnl_inner_product_forward_desc_init(&d, dnnl_forward_inference, &s, &w, &b, &o)
        return run(&d, status)
    case let .matmul(src, weights, bias, dst):
        var d = dnnl_matmul_desc_t()
        var s = src.raw, w = weights.raw, o = dst.raw, b = bias?.raw ?? dnnl_memory_desc_t()
        let status = bias == nil
            ? dnnl_matmul_desc_init(&d, &s, &w, nil, &o)
            : dnnl_matmul_desc_init(&d, &s, &w, &b, &o)
        return run(&d, status)
    }
}
