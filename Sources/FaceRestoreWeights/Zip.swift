// A minimal reader for the uncompressed ("stored") zip archives torch.save writes
// (PKWARE APPNOTE 6.3: end of central directory, zip64 records, central and local headers).

struct ZipEntry {
    let name: String
    let method: UInt16
    let dataOffset: Int
    let size: Int
    /// The CRC-32 the archive records for the member's uncompressed bytes.
    let crc: UInt32
}

struct ZipArchive {
    let entries: [String: ZipEntry]
    let order: [String]

    /// Parses the central directory. Throws `PickleError`-free `WeightsError`s via `fail`.
    init(_ b: UnsafeRawBufferPointer, path: String) throws {
        func u16(_ o: Int) -> Int { Int(UInt16(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt16.self))) }
        func u32(_ o: Int) -> Int { Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt32.self))) }
        func u64(_ o: Int) -> Int { Int(clamping: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt64.self))) }
        let truncated = { (what: String) in WeightsError.truncated(path: path, detail: what) }
        /// Whether [offset, offset+length) lies inside the file (without overflowing).
        func fits(_ offset: Int, _ length: Int) -> Bool { offset >= 0 && length >= 0 && offset <= b.count && length <= b.count - offset }

        // End of central directory: last occurrence of PK\5\6 within the final 64 KiB + 22 bytes.
        guard b.count >= 22 else { throw truncated("zip archive shorter than its end record") }
        var eocd = -1
        var i = b.count - 22
        let lowest = max(0, b.count - 22 - 65_535)
        while i >= lowest {
            if u32(i) == 0x0605_4b50 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw truncated("zip end-of-central-directory record not found (file cut short?)") }
        var count = u16(eocd + 10)
        var cdSize = u32(eocd + 12)
        var cdOffset = u32(eocd + 16)
        if count == 0xFFFF || cdOffset == 0xFFFF_FFFF || cdSize == 0xFFFF_FFFF {
            // Zip64: the locator sits just before the EOCD and points at the zip64 EOCD record.
            let loc = eocd - 20
            guard loc >= 0, u32(loc) == 0x0706_4b50 else { throw WeightsError.corrupt(path: path, detail: "zip64 locator missing") }
            let rec = u64(loc + 8)
            guard fits(rec, 56), u32(rec) == 0x0606_4b50 else {
                throw WeightsError.corrupt(path: path, detail: "zip64 end record missing")
            }
            count = u64(rec + 32)
            cdSize = u64(rec + 40)
            cdOffset = u64(rec + 48)
        }
        guard fits(cdOffset, cdSize) else { throw truncated("zip central directory lies beyond the end of the file") }

        var entries: [String: ZipEntry] = [:]
        var order: [String] = []
        var p = cdOffset
        for _ in 0..<count {
            guard fits(p, 46), u32(p) == 0x0201_4b50 else { throw WeightsError.corrupt(path: path, detail: "bad zip central directory entry") }
            let method = UInt16(u16(p + 10))
            let crc = UInt32(u32(p + 16))
            var compressed = u32(p + 20), size = u32(p + 24)
            let nameLen = u16(p + 28), extraLen = u16(p + 30), commentLen = u16(p + 32)
            var local = u32(p + 42)
            guard fits(p + 46, nameLen + extraLen) else { throw truncated("zip central directory entry cut short") }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: b[(p + 46)..<(p + 46 + nameLen)]), as: UTF8.self)
            // Zip64 extended information (header 0x0001) replaces the saturated 32-bit fields, in order.
            var e = p + 46 + nameLen
            let extraEnd = e + extraLen
            while e + 4 <= extraEnd, fits(e, 4) {
                let id = u16(e), len = u16(e + 2)
                if id == 0x0001 {
                    var f = e + 4
                    let end = min(e + 4 + len, extraEnd)
                    if size == 0xFFFF_FFFF, f + 8 <= end { size = u64(f); f += 8 }
                    if compressed == 0xFFFF_FFFF, f + 8 <= end { compressed = u64(f); f += 8 }
                    if local == 0xFFFF_FFFF, f + 8 <= end { local = u64(f); f += 8 }
                }
                e += 4 + len
            }
            guard fits(local, 30), u32(local) == 0x0403_4b50 else {
                throw truncated("zip entry '\(name)' lies beyond the end of the file")
            }
            let dataOffset = local + 30 + u16(local + 26) + u16(local + 28)
            guard fits(dataOffset, compressed), fits(dataOffset, method == 0 ? size : compressed) else { throw truncated("zip entry '\(name)' is cut short") }
            entries[name] = ZipEntry(name: name, method: method, dataOffset: dataOffset, size: method == 0 ? size : compressed, crc: crc)
            order.append(name)
            p += 46 + nameLen + extraLen + commentLen
        }
        self.entries = entries
        self.order = order
    }
}
