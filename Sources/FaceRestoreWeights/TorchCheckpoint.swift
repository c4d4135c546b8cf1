// PyTorch checkpoints: the zip format (torch ≥ 1.6: `<archive>/data.pkl` + `<archive>/data/<key>`)
// and the legacy format (magic, protocol and sys-info pickles, the object pickle, the storage-key
// list, then each storage as an int64 element count followed by its bytes), as written by
// torch/serialization.py (`_save`, `_legacy_save`).

import CChecksum
import Foundation

enum TorchCheckpoint {
    /// The legacy-format prefix: a pickle of the magic number 0x1950a86a20f9469cfc6c (protocol 2).
    static let legacyMagic: [UInt8] = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]

    static func readZip(_ file: MappedFile, verifyChecksums: Bool = true) throws -> (PickleValue, [String: ByteRegion]) {
        let path = file.path
        let zip = try ZipArchive(file.bytes, path: path)
        guard let pkl = zip.order.first(where: { $0 == "data.pkl" || $0.hasSuffix("/data.pkl") }), let pklEntry = zip.entries[pkl] else {
            throw WeightsError.unsupported(path: path, detail: "zip archive without data.pkl (not a torch.save file)")
        }
        let prefix = String(pkl.dropLast("data.pkl".count))
        if let bo = zip.entries[prefix + "byteorder"] {
            let s = String(decoding: UnsafeRawBufferPointer(rebasing: file.bytes[bo.dataOffset..<min(file.size, bo.dataOffset + min(bo.size, 16))]), as: UTF8.self)
            guard s == "little" else { throw WeightsError.unsupported(path: path, detail: "byte order '\(s)'") }
        }
        for e in zip.entries.values where e.method != 0 {
            throw WeightsError.unsupported(path: path, detail: "zip entry '\(e.name)' is compressed (method \(e.method)); torch.save stores entries uncompressed")
        }
        // Every member against the CRC-32 the archive records: a flipped byte in a tensor is found
        // here instead of becoming a wrong restoration. Each member's pages are released after its
        // check, so the check does not keep the file resident (a Lightning checkpoint's Adam states,
        // twice the network's size, are never read again).
        for name in zip.order where verifyChecksums {
            guard let e = zip.entries[name] else { continue }
            let crc = fr_crc32(0, file.base + e.dataOffset, e.size)
            file.releasePages(offset: e.dataOffset, count: e.size)
            guard crc == e.crc else {
                throw WeightsError.corrupt(path: path, detail: "zip member '\(name)' fails its CRC-32 check (recorded \(String(e.crc, radix: 16)), "
                                           + "computed \(String(crc, radix: 16))): the file is damaged; download it again")
            }
        }
        let pickleBytes = UnsafeRawBufferPointer(rebasing: file.bytes[pklEntry.dataOffset..<pklEntry.dataOffset + pklEntry.size])
        var storages: [String: ByteRegion] = [:]
        var reader = PickleReader(bytes: pickleBytes) { pid in
            // ('storage', storage_type, key, location, numel). A storage type off the allow-list
            // gives an opaque storage (an error only if the chosen state dict uses it).
            if let t = pid.tupleItems, t.count >= 5, t[0].stringValue == "storage", let name = t[1].opaqueName {
                return .opaque(name)
            }
            guard let t = pid.tupleItems, t.count >= 5, t[0].stringValue == "storage", case .global(let g) = t[1],
                  let dtype = g.storageDType, let key = t[2].stringValue else {
                throw PickleError.malformed("unexpected persistent id")
            }
            guard let entry = zip.entries[prefix + "data/" + key] else {
                throw WeightsError.truncated(path: path, detail: "storage '\(key)' missing from the archive")
            }
            guard entry.size <= file.size - entry.dataOffset else {
                throw WeightsError.truncated(path: path, detail: "storage '\(key)' is cut short")
            }
            storages[key] = ByteRegion(owner: file, base: file.base + entry.dataOffset, count: entry.size)
            return .storage(StorageRef(dtype: dtype, key: key, elementOffset: 0, numel: t[4].intValue))
        }
        let root = try runPickle(&reader, path: path)
        return (root, storages)
    }

    static func readLegacy(_ file: MappedFile) throws -> (PickleValue, [String: ByteRegion]) {
        let path = file.path
        let bytes = file.bytes
        guard bytes.count >= legacyMagic.count, Array(bytes[0..<legacyMagic.count]) == legacyMagic else {
            throw WeightsError.unknownFormat(path: path)
        }
        let noPersistent: (PickleValue) throws -> PickleValue = { _ in throw PickleError.malformed("unexpected persistent id") }
        var position = legacyMagic.count
        for _ in 0..<2 {   // protocol version, then sys_info
            var r = PickleReader(bytes: bytes, start: position, persistentLoad: noPersistent)
            let v = try runPickle(&r, path: path)
            defer { PickleValue.dismantle([v]) }
            if case .dict(let d) = v, let i = d.keys.firstIndex(where: { $0.stringValue == "little_endian" }),
               case .bool(false) = d.values[i] {
                throw WeightsError.unsupported(path: path, detail: "big-endian legacy checkpoint")
            }
            position = r.position
        }
        var dtypes: [String: DType] = [:]
        var main = PickleReader(bytes: bytes, start: position) { pid in
            // ('storage', storage_type, root_key, location, numel, view_metadata). Storages follow
            // the pickle back to back, so every one's element size must be known.
            if let t = pid.tupleItems, t.count >= 5, t[0].stringValue == "storage", let name = t[1].opaqueName {
                throw PickleError.opaque(name: name, use: "a storage's type")
            }
            guard let t = pid.tupleItems, t.count >= 5, t[0].stringValue == "storage", case .global(let g) = t[1],
                  let dtype = g.storageDType, let key = t[2].stringValue else {
                throw PickleError.malformed("unexpected persistent id")
            }
            dtypes[key] = dtype
            var offset = 0
            if t.count >= 6, let view = t[5].tupleItems, view.count == 3, let off = view[1].intValue { offset = off }
            return .storage(StorageRef(dtype: dtype, key: key, elementOffset: offset, numel: t[4].intValue))
        }
        let root = try runPickle(&main, path: path)
        var handedOver = false
        defer { if !handedOver { PickleValue.dismantle([root]) } }
        // An opaque checkpoint is refused by its name before the storages it cannot use are looked for.
        if let name = root.opaqueName { throw WeightsError.disallowedGlobal(path: path, name: name, use: "the checkpoint") }
        var keysReader = PickleReader(bytes: bytes, start: main.position, persistentLoad: noPersistent)
        let keysValue = try runPickle(&keysReader, path: path)
        defer { PickleValue.dismantle([keysValue]) }
        guard let keys = keysValue.tupleItems?.compactMap(\.stringValue) else {
            throw WeightsError.corrupt(path: path, detail: "storage key list missing")
        }
        var p = keysReader.position
        var storages: [String: ByteRegion] = [:]
        for key in keys {
            guard p + 8 <= bytes.count else { throw WeightsError.truncated(path: path, detail: "storage '\(key)' header missing") }
            let numel = Int(Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: p, as: Int64.self)))
            let (size, overflow) = numel.multipliedReportingOverflow(by: dtypes[key]?.byteSize ?? 4)
            p += 8
            guard numel >= 0, !overflow, size <= bytes.count - p else {
                throw WeightsError.truncated(path: path, detail: "storage '\(key)' needs \(size) bytes, \(bytes.count - p) remain")
            }
            storages[key] = ByteRegion(owner: file, base: file.base + p, count: size)
            p += size
        }
        handedOver = true
        return (root, storages)
    }

    private static func runPickle(_ reader: inout PickleReader, path: String) throws -> PickleValue {
        do {
            return try reader.load()
        } catch PickleError.truncated(let d) {
            throw WeightsError.truncated(path: path, detail: d)
        } catch PickleError.malformed(let d) {
            throw WeightsError.corrupt(path: path, detail: d)
        } catch PickleError.opaque(let name, let use) {
            throw WeightsError.disallowedGlobal(path: path, name: name, use: use)
        } catch PickleError.tooLarge(let d) {
            throw WeightsError.unsupported(path: path, detail: d)
        }
    }

    /// A contiguous tensor from a strided view of a storage (copying only when not contiguous).
    static func materialize(_ t: TensorRef, storages: [String: ByteRegion], path: String, name: String) throws -> WeightTensor {
        guard let region = storages[t.storage.key] else {
            throw WeightsError.corrupt(path: path, detail: "tensor '\(name)' refers to missing storage '\(t.storage.key)'")
        }
        let es = t.storage.dtype.byteSize
        let storageElements = region.count / es
        // Sizes come from the file: check every product and sum for overflow before trusting it.
        guard t.size.allSatisfy({ $0 >= 0 }), t.stride.allSatisfy({ $0 >= 0 }), t.offset >= 0, t.storage.elementOffset >= 0 else {
            throw WeightsError.corrupt(path: path, detail: "tensor '\(name)' has negative sizes or strides")
        }
        var numel = 1, maxIndex = 0, overflow = false
        for (n, st) in zip(t.size, t.stride) {
            var o1 = false, o2 = false, o3 = false
            (numel, o1) = numel.multipliedReportingOverflow(by: n)
            let (span, o) = (max(n, 1) - 1).multipliedReportingOverflow(by: st)
            (maxIndex, o2) = maxIndex.addingReportingOverflow(span)
            o3 = o
            overflow = overflow || o1 || o2 || o3
        }
        let (start, o4) = t.storage.elementOffset.addingReportingOverflow(t.offset)
        let (last, o5) = start.addingReportingOverflow(maxIndex)
        guard !overflow, !o4, !o5, numel.multipliedReportingOverflow(by: es).overflow == false else {
            throw WeightsError.corrupt(path: path, detail: "tensor '\(name)' has sizes \(t.size) that overflow")
        }
        if numel == 0 {
            return WeightTensor(dtype: t.storage.dtype, shape: t.size, data: ByteRegion(owner: region.owner, base: region.base, count: 0))
        }
        guard last < storageElements else {
            throw WeightsError.corrupt(path: path, detail: "tensor '\(name)' \(t.size) reaches element \(last) of a \(storageElements)-element storage")
        }
        var expected = 1
        var contiguous = true
        for d in stride(from: t.size.count - 1, through: 0, by: -1) where t.size[d] != 1 {
            if t.stride[d] != expected { contiguous = false; break }
            expected *= t.size[d]
        }
        if contiguous {
            return WeightTensor(dtype: t.storage.dtype, shape: t.size,
                                data: ByteRegion(owner: region.owner, base: region.base + start * es, count: numel * es))
        }
        return WeightTensor(dtype: t.storage.dtype, shape: t.size, view: region, start: start, stride: t.stride)
    }
}
