// Named tensors as read from checkpoint files, before any model touches them.

import Foundation

/// Errors from weight readers. Each description is one line naming the file and the problem.
public enum WeightsError: Error, CustomStringConvertible, Equatable {
    case fileNotFound(path: String)
    case unreadable(path: String, reason: String)
    case empty(path: String)
    case unknownFormat(path: String)
    case truncated(path: String, detail: String)
    case corrupt(path: String, detail: String)
    /// A value needed as a tensor, a storage or a dict of tensors (`use`) comes from a pickle global
    /// that is not on the allow-list (`name`): such globals are inert values, never executed.
    case disallowedGlobal(path: String, name: String, use: String)
    case unsupported(path: String, detail: String)
    case missingTensor(path: String, key: String)

    public var description: String {
        switch self {
        case let .fileNotFound(path): return "\(path): no such file"
        case let .unreadable(path, reason): return "\(path): cannot read: \(reason)"
        case let .empty(path): return "\(path): file is empty (0 bytes)"
        case let .unknownFormat(path):
            return "\(path): not a weights file FaceRestore can read (expected a PyTorch .pth/.pt checkpoint, .safetensors or .onnx)"
        case let .truncated(path, detail): return "\(path): file is truncated: \(detail)"
        case let .corrupt(path, detail): return "\(path): corrupt checkpoint: \(detail)"
        case let .disallowedGlobal(path, name, use):
            return "\(path): refusing to load: \(use) comes from '\(name)', which is not a tensor or container type (kept inert; nothing was executed)"
        case let .unsupported(path, detail): return "\(path): unsupported checkpoint: \(detail)"
        case let .missingTensor(path, key): return "\(path): no tensor named '\(key)'"
        }
    }
}

/// Element types found in checkpoints.
public enum DType: String, Sendable, CaseIterable {
    case float32, float16, bfloat16, float64, int64, int32, int16, int8, uint8, bool

    public var byteSize: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16, .int16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }

    public var isFloatingPoint: Bool { [.float32, .float16, .bfloat16, .float64].contains(self) }

    /// safetensors dtype names.
    var safetensorsName: String {
        switch self {
        case .float32: return "F32"
        case .float16: return "F16"
        case .bfloat16: return "BF16"
        case .float64: return "F64"
        case .int64: return "I64"
        case .int32: return "I32"
        case .int16: return "I16"
        case .int8: return "I8"
        case .uint8: return "U8"
        case .bool: return "BOOL"
        }
    }

    init?(safetensorsName: String) {
        guard let t = DType.allCases.first(where: { $0.safetensorsName == safetensorsName }) else { return nil }
        self = t
    }
}

/// Bytes of one tensor: a slice of a memory-mapped file or an owned buffer.
struct ByteRegion: @unchecked Sendable {
    // @unchecked: the mapping or buffer is never written after creation.
    let owner: AnyObject
    let base: UnsafeRawPointer
    let count: Int
}

/// Owned bytes (for tensors gathered from strided views).
final class OwnedBytes {
    let pointer: UnsafeMutableRawPointer
    init(count: Int) { pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64) }
    deinit { pointer.deallocate() }
}

/// One named tensor: element type, shape (PyTorch order) and little-endian data.
public struct WeightTensor: Sendable {
    public let dtype: DType
    public let shape: [Int]
    /// Contiguous bytes, or a strided view of a storage that is gathered only when read.
    enum Source: @unchecked Sendable {
        case contiguous(ByteRegion)
        case strided(ByteRegion, start: Int, stride: [Int])
    }
    let source: Source

    init(dtype: DType, shape: [Int], data: ByteRegion) {
        self.dtype = dtype
        self.shape = shape
        self.source = .contiguous(data)
    }

    init(dtype: DType, shape: [Int], view region: ByteRegion, start: Int, stride: [Int]) {
        self.dtype = dtype
        self.shape = shape
        self.source = .strided(region, start: start, stride: stride)
    }

    /// An owned tensor from float32 values.
    public init(shape: [Int], floats: [Float]) {
        precondition(shape.reduce(1, *) == floats.count)
        let owned = OwnedBytes(count: floats.count * 4)
        floats.withUnsafeBytes { owned.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        self.init(dtype: .float32, shape: shape, data: ByteRegion(owner: owned, base: UnsafeRawPointer(owned.pointer), count: floats.count * 4))
    }

    /// Tells the kernel this tensor's pages of a memory-mapped file are no longer needed, so a
    /// model that has copied the values into its own layout does not also keep the file resident.
    /// Only whole pages inside the tensor are released; reading the tensor again re-faults them.
    public func releaseMappedPages() {
        guard case .contiguous(let region) = source, let file = region.owner as? MappedFile else { return }
        file.releasePages(offset: region.base - file.base, count: region.count)
    }

    /// The float32 values where they lie, for reading in place: the tensor's bytes when it is
    /// contiguous little-endian float32 starting on a 64-byte boundary (PyTorch's zip checkpoints
    /// align each storage so), with the object that keeps them valid (the memory-mapped file).
    /// Nil otherwise (other types, strided views, unaligned legacy storages): copy with
    /// `copyFloats`. The memory may be a read-only mapping and must never be written.
    public var alignedFloat32: (pointer: UnsafeRawPointer, owner: AnyObject)? {
        #if _endian(little)
        guard dtype == .float32, case .contiguous(let region) = source, region.count == count * 4,
              Int(bitPattern: region.base) % 64 == 0 else { return nil }
        return (region.base, region.owner)
        #else
        return nil
        #endif
    }

    /// Whether the data is a strided (non-contiguous or broadcast) view of its storage.
    public var isStridedView: Bool { if case .strided = source { return true }; return false }

    /// The bytes in row-major order (gathering a strided view).
    var data: ByteRegion {
        switch source {
        case .contiguous(let r): return r
        case let .strided(region, start, stride):
            let es = dtype.byteSize, n = count
            let owned = OwnedBytes(count: n * es)
            let rank = shape.count
            guard n > 0 else { return ByteRegion(owner: owned, base: UnsafeRawPointer(owned.pointer), count: 0) }
            // Walk all but the last dim with an index vector; copy the last dim in a tight loop.
            let inner = rank == 0 ? 1 : shape[rank - 1], innerStride = rank == 0 ? 0 : stride[rank - 1]
            var index = [Int](repeating: 0, count: max(rank - 1, 0))
            var out = owned.pointer
            for _ in 0..<(n / inner) {
                var src = start
                for d in 0..<index.count { src += index[d] * stride[d] }
                for j in 0..<inner {
                    out.copyMemory(from: region.base + (src + j * innerStride) * es, byteCount: es)
                    out += es
                }
                var d = index.count - 1
                while d >= 0 { index[d] += 1; if index[d] < shape[d] { break }; index[d] = 0; d -= 1 }
            }
            return ByteRegion(owner: owned, base: UnsafeRawPointer(owned.pointer), count: n * es)
        }
    }

    public var count: Int { shape.reduce(1, *) }
    public var byteCount: Int { count * dtype.byteSize }

    /// The raw bytes (little-endian, row-major).
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let d = data
        return try withExtendedLifetime(d.owner) { try body(UnsafeRawBufferPointer(start: d.base, count: d.count)) }
    }

    /// Values as float32 (converting half, bfloat16, double and integer types).
    public func floats() -> [Float] {
        let n = count
        let d = data
        return withExtendedLifetime(d.owner) { () -> [Float] in
        let p = d.base
        switch dtype {
        case .float32:
            return [Float](unsafeUninitializedCapacity: n) { buf, initialized in
                UnsafeMutableRawPointer(buf.baseAddress!).copyMemory(from: p, byteCount: n * 4)
                initialized = n
            }
        case .float16:
            return (0..<n).map { halfToFloat(p.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) }
        case .bfloat16:
            return (0..<n).map { Float(bitPattern: UInt32(p.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) << 16) }
        case .float64: return (0..<n).map { Float(p.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self)) }
        case .int64: return (0..<n).map { Float(p.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
        case .int32: return (0..<n).map { Float(p.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
        case .int16: return (0..<n).map { Float(p.loadUnaligned(fromByteOffset: $0 * 2, as: Int16.self)) }
        case .int8: return (0..<n).map { Float(p.load(fromByteOffset: $0, as: Int8.self)) }
        case .uint8, .bool: return (0..<n).map { Float(p.load(fromByteOffset: $0, as: UInt8.self)) }
        }
        }
    }

    /// Writes the values as float32, each multiplied by `scale` (skipped when 1), into `out`
    /// (`count` elements): the same numbers as `floats().map { $0 * scale }` in one pass, with
    /// no intermediate arrays (float32 checkpoints are copied straight from the mapped file).
    public func copyFloats(into out: UnsafeMutableBufferPointer<Float>, scale: Float = 1) {
        let n = count
        precondition(out.count == n, "copyFloats: \(out.count) slots for \(n) values")
        guard n > 0, let dst = out.baseAddress else { return }
        if dtype == .float32 {
            let d = data
            withExtendedLifetime(d.owner) {
                if scale == 1 {
                    UnsafeMutableRawPointer(dst).copyMemory(from: d.base, byteCount: n * 4)
                } else {
                    for i in 0..<n { dst[i] = d.base.loadUnaligned(fromByteOffset: i * 4, as: Float.self) * scale }
                }
            }
        } else {
            let values = floats()
            for i in 0..<n { dst[i] = scale == 1 ? values[i] : values[i] * scale }
        }
    }

    /// Values as float64: exact for float64 tensors, widened from `floats()` otherwise.
    public func doubles() -> [Double] {
        guard dtype == .float64 else { return floats().map(Double.init) }
        let d = data
        return withExtendedLifetime(d.owner) {
            (0..<count).map { d.base.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self) }
        }
    }

    /// Values as Int64 for integer tensors (e.g. BatchNorm's `num_batches_tracked`); nil for floats.
    public func integers() -> [Int64]? {
        let d = data
        return withExtendedLifetime(d.owner) { () -> [Int64]? in
        let p = d.base
        switch dtype {
        case .int64: return (0..<count).map { p.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self) }
        case .int32: return (0..<count).map { Int64(p.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
        case .int16: return (0..<count).map { Int64(p.loadUnaligned(fromByteOffset: $0 * 2, as: Int16.self)) }
        case .int8: return (0..<count).map { Int64(p.load(fromByteOffset: $0, as: Int8.self)) }
        case .uint8, .bool: return (0..<count).map { Int64(p.load(fromByteOffset: $0, as: UInt8.self)) }
        default: return nil
        }
        }
    }
}

/// IEEE 754 binary16 → binary32, including subnormals, infinities and NaN.
@inline(__always)
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exp = Int((h >> 10) & 0x1f)
    let mant = UInt32(h & 0x3ff)
    if exp == 0 {
        if mant == 0 { return Float(bitPattern: sign) }
        let v = Float(mant) * Float(bitPattern: 0x3380_0000)  // mant · 2⁻²⁴
        return sign != 0 ? -v : v
    }
    if exp == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (mant << 13)) }
    return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
}

/// An ordered set of named tensors, as a checkpoint's state dict.
public struct StateDict: Sendable {
    /// Names in file order.
    public let names: [String]
    public let tensors: [String: WeightTensor]
    /// The wrapper key the tensors were taken from (`params_ema`, `params`, `state_dict`, `g_ema`), if any.
    public let wrapper: String?
    /// A prefix removed from every key (`module.` from DataParallel checkpoints), if any.
    public let strippedPrefix: String?
    /// Non-tensor top-level entries that were skipped (e.g. other wrappers, iteration counters).
    public let skippedEntries: [String]

    public init(names: [String], tensors: [String: WeightTensor], wrapper: String? = nil,
                strippedPrefix: String? = nil, skippedEntries: [String] = []) {
        self.names = names
        self.tensors = tensors
        self.wrapper = wrapper
        self.strippedPrefix = strippedPrefix
        self.skippedEntries = skippedEntries
    }

    public var count: Int { names.count }
    public subscript(name: String) -> WeightTensor? { tensors[name] }
    public var totalElements: Int { tensors.values.reduce(0) { $0 + $1.count } }
}
