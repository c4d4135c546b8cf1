// safetensors (huggingface/safetensors format spec): an 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
// then the tensor bytes. Reads are memory-mapped; writes are atomic (temp file + rename).

import FaceRestoreEngine
import Foundation

public enum SafeTensors {
    /// Reads all tensors, in data order.
    public static func read(path: String) throws -> StateDict {
        let file = try MappedFile(path: path)
        return try read(file)
    }

    static func read(_ file: MappedFile) throws -> StateDict {
        let path = file.path, b = file.bytes
        guard b.count >= 8 else { throw WeightsError.truncated(path: path, detail: "safetensors header length missing") }
        let headerLen = UInt64(littleEndian: b.loadUnaligned(as: UInt64.self))
        guard headerLen <= UInt64(b.count - 8) else {
            throw WeightsError.truncated(path: path, detail: "safetensors header of \(headerLen) bytes, file has \(b.count - 8)")
        }
        let dataStart = 8 + Int(headerLen)
        let json = Data(UnsafeRawBufferPointer(rebasing: b[8..<dataStart]))
        guard let header = (try? JSONSerialization.jsonObject(with: json)) as? [String: Any] else {
            throw WeightsError.corrupt(path: path, detail: "safetensors header is not a JSON object")
        }
        var found: [(String, Int, WeightTensor)] = []
        for (name, value) in header where name != "__metadata__" {
            guard let info = value as? [String: Any], let dt = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offs = info["data_offsets"] as? [Int], offs.count == 2 else {
                throw WeightsError.corrupt(path: path, detail: "safetensors entry '\(name)' is malformed")
            }
            guard let dtype = DType(safetensorsName: dt) else {
                throw WeightsError.unsupported(path: path, detail: "tensor '\(name)' has dtype \(dt)")
            }
            let (begin, end) = (offs[0], offs[1])
            let sizes = CheckedSize(path: path)
            let bytes = try sizes.product(shape + [dtype.byteSize], "tensor '\(name)' shape \(shape) \(dt)")
            guard begin >= 0, end >= begin, end - begin == bytes else {
                throw WeightsError.corrupt(path: path, detail: "tensor '\(name)' offsets \(offs) do not match shape \(shape) \(dt)")
            }
            guard end <= b.count - dataStart else {
                throw WeightsError.truncated(path: path, detail: "tensor '\(name)' ends at byte \(end) of the data, which has \(b.count - dataStart)")
            }
            found.append((name, begin, WeightTensor(dtype: dtype, shape: shape,
                                                    data: ByteRegion(owner: file, base: file.base + dataStart + begin, count: end - begin))))
        }
        found.sort { ($0.1, $0.0) < ($1.1, $1.0) }
        return StateDict(names: found.map(\.0), tensors: Dictionary(uniqueKeysWithValues: found.map { ($0.0, $0.2) }))
    }

    /// Writes tensors (in the given order) atomically: a temporary file in the same folder, then rename.
    public static func write(_ tensors: [(String, WeightTensor)], metadata: [String: String] = [:], to path: String) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for (name, t) in tensors {
            header[name] = ["dtype": t.dtype.safetensorsName, "shape": t.shape, "data_offsets": [offset, offset + t.byteCount]] as [String: Any]
            offset += t.byteCount
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }   // pad so tensor data is 8-byte aligned
        var out = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for (_, t) in tensors { t.withUnsafeBytes { out.append(contentsOf: $0) } }
        do { try writeFileAtomically(out, to: path) } catch let e as FileWriteError {
            throw WeightsError.unreadable(path: path, reason: e.reason)
        }
    }
}

/// Writes `data` to a temporary file beside `path`, syncs it, then renames it over `path`, so a
/// reader never sees a half-written file.
