// Tensor: float32 data with logical PyTorch-order dims (N, C, H, W for images) and a physical layout.
//
// Layout convention (the one place it is documented):
// - `shape` is always in PyTorch order, whatever the memory layout.
// - Tensors made from Swift arrays, and those returned by `ComputeContext.array`, are plain
//   row-major (PyTorch's contiguous layout).
// - Between layers, activations stay in whatever layout oneDNN chose for them (NHWC or a
//   blocked layout such as nChw16c). Models convert only at their boundaries.
// - Weights are reordered into the layout their primitive prefers once, when a layer is built.

import CDNNL
import Foundation

/// Aligned, immutable-after-creation float storage.
final class TensorStorage: @unchecked Sendable {
    // @unchecked: written only by the op that creates it, before the tensor is returned (a
    // `ChannelStack` writes each channel range of its buffer once, before handing out views of it).
    let pointer: UnsafeMutableRawPointer
    let bytes: Int
    /// What keeps the memory alive: nil when this storage owns (and frees) it; the storage a view
    /// lies in; or the external object (a memory-mapped weights file) a borrowed storage reads.
    private let keeper: AnyObject?

    init(bytes: Int) {
        var p: UnsafeMutableRawPointer?
        let size = max(bytes, 64)
        guard posix_memalign(&p, 64, size) == 0, let p else {
            fatalError("out of memory allocating \(bytes) bytes")
        }
        pointer = p
        self.bytes = bytes
        keeper = nil
    }

    /// `bytes` bytes of `parent` from `offset`.
    init(viewOf parent: TensorStorage, offset: Int, bytes: Int) {
        precondition(offset >= 0 && offset + bytes <= parent.bytes, "view outside its storage")
        pointer = parent.pointer + offset
        self.bytes = bytes
        keeper = parent
    }

    /// Memory owned by `owner` (which this storage keeps alive and never frees). It may be
    /// read-only (a PROT_READ file mapping): tensors never write their inputs, so only tensors
    /// that are op inputs (weights) may borrow.
    init(borrowing pointer: UnsafeRawPointer, bytes: Int, owner: AnyObject) {
        self.pointer = UnsafeMutableRawPointer(mutating: pointer)
        self.bytes = bytes
        keeper = owner
    }

    deinit { if keeper == nil { free(pointer) } }

    var floats: UnsafeMutablePointer<Float> { pointer.assumingMemoryBound(to: Float.self) }
}

/// How a tensor's elements are arranged in memory.
public enum TensorLayout: Sendable, Equatable {
    /// Row-major in logical order (PyTorch's contiguous layout; NCHW for images).
    case plain
    /// NHWC (PyTorch's channels_last).
    case channelsLast
    /// Another layout chosen by oneDNN (blocked, e.g. nChw16c, or strided).
    case opaque
}

/// A float32 tensor. A value type: ops return new tensors and never modify their inputs.
public struct Tensor: Sendable {
    public let shape: [Int]
    let desc: MemoryDesc
    let storage: TensorStorage

    init(desc: MemoryDesc, storage: TensorStorage) {
        self.shape = desc.dims
        self.desc = desc
        self.storage = storage
    }

    /// Uninitialized memory for `desc` (for op outputs).
    init(uninitialized desc: MemoryDesc) {
        self.init(desc: desc, storage: TensorStorage(bytes: desc.byteSize))
    }

    /// A plain (row-major) tensor from values in PyTorch order.
    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) needs \(shape.reduce(1, *)) values, got \(values.count)")
        let desc = MemoryDesc.plain(shape)
        let storage = TensorStorage(bytes: desc.byteSize)
        values.withUnsafeBufferPointer { storage.floats.update(from: $0.baseAddress!, count: values.count) }
        self.init(desc: desc, storage: storage)
    }

    /// A plain tensor filled with `value`.
    public init(shape: [Int], repeating value: Float) {
        let desc = MemoryDesc.plain(shape)
        let storage = TensorStorage(bytes: desc.byteSize)
        storage.floats.initialize(repeating: value, count: shape.reduce(1, *))
        self.init(desc: desc, storage: storage)
    }

    /// A plain tensor reading `shape.product` float32 values at `pointer` in place, without a
    /// copy: for weights in a memory-mapped checkpoint. `owner` keeps the memory valid and is kept
    /// alive by the tensor (and by anything built from it that keeps it). The memory is never
    /// written; it may be read-only. `pointer` must be 64-byte aligned, as oneDNN and our kernels
    /// expect of every tensor.
    public init(shape: [Int], borrowing pointer: UnsafeRawPointer, owner: AnyObject) {
        precondition(Int(bitPattern: pointer) % 64 == 0, "borrowed tensor memory must be 64-byte aligned")
        let desc = MemoryDesc.plain(shape)
        self.init(desc: desc, storage: TensorStorage(borrowing: pointer, bytes: desc.byteSize, owner: owner))
    }

    /// A plain tensor whose values are written by `fill` (row-major, PyTorch order).
    public init(shape: [Int], fill: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        let desc = MemoryDesc.plain(shape)
        let storage = TensorStorage(bytes: desc.byteSize)
        try fill(UnsafeMutableBufferPointer(start: storage.floats, count: shape.reduce(1, *)))
        self.init(desc: desc, storage: storage)
    }

    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }

    public var layout: TensorLayout {
        if desc.isPlain { return .plain }
        if desc.isChannelsLast { return .channelsLast }
        return .opaque
    }

    /// Reads the values of a plain tensor (no copy). Precondition: `layout == .plain`.
    public func withPlainValues<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        precondition(layout == .plain, "withPlainValues needs a plain tensor; use ComputeContext.contiguous first")
        return try body(UnsafeBufferPointer(start: storage.floats, count: count))
    }
}
