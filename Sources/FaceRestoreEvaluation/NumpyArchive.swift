// A reader for NumPy's `.npz` archives of float arrays, as `np.savez` writes them (NIQE's
// `niqe_pris_params.npz` from basicsr 1.4.2 is one): a ZIP file whose members are `.npy` files
// stored uncompressed. Formats: the ZIP application note (PKWARE APPNOTE 6.3, the central
// directory, local headers, the ZIP64 extended-information extra field) and NumPy's
// `numpy/lib/format.py` (`.npy` versions 1–3: magic, header length, a Python dict literal with
// 'descr', 'fortran_order' and 'shape', then the data).
//
// Written for hostile input: every size is bounded, every offset checked before it is read, and
// CRC-32s are verified; anything else (deflate-compressed members, encryption, big-endian or
// non-float dtypes, multi-disk or ZIP64 archives) is refused with one line naming the file.

import CChecksum
import Foundation

/// A float array from a `.npy` file, converted to `Double` and laid out in C (row-major) order
/// whatever the file's `fortran_order`.
struct NumpyArray: Sendable, Equatable {
    let shape: [Int]
    let values: [Double]
}

enum NumpyArchive {
    /// Largest archive read (the NIQE parameters are 12 KB).
    static let maxFileBytes = 64 << 20
    static let maxMembers = 4096
    static let maxHeaderBytes = 1 << 16
    static let maxDimensions = 32

    /// The float arrays of the `.npz` at `path`, keyed by member name without `.npy`.
    static func read(path: String) throws -> [String: NumpyArray] {
        let bytes = try contents(path: path)
        var arrays: [String: NumpyArray] = [:]
        for (name, data) in try storedMembers(bytes, path: path) {
            let key = name.hasSuffix(".npy") ? String(name.dropLast(4)) : name
            arrays[key] = try parseNpy(data, path: path, member: name)
        }
        return arrays
    }

    static func contents(path: String) throws -> [UInt8] {
        do { return try readFileBytes(path, limit: maxFileBytes) } catch let e as FileBytesError {
            throw EvaluationError.modelFile(path: path, reason: e.reason)
        }
    }

    // MARK: ZIP

    /// The members of a ZIP archive whose data is stored (method 0), CRC-checked, in
    /// central-directory order.
    static func storedMembers(_ b: [UInt8], path: String) throws -> [(name: String, data: [UInt8])] {
        func fail(_ reason: String) -> EvaluationError { .modelFile(path: path, reason: reason) }
        let r = ByteReader(bytes: b)
        // End of central directory: 22 bytes and a comment of up to 65535, at the end.
        guard b.count >= 22 else { throw fail("not an .npz file (too short for a ZIP archive)") }
        var eocd = -1
        var i = b.count - 22
        let lowest = max(0, b.count - 22 - 65535)
        while i >= lowest {
            if r.u32(i) == 0x0605_4b50, let commentLength = r.u16(i + 20), i + 22 + commentLength == b.count {
                eocd = i
                break
            }
            i -= 1
        }
        guard eocd >= 0 else { throw fail("not an .npz file (no ZIP end-of-central-directory record)") }
        guard let disk = r.u16(eocd + 4), let cdDisk = r.u16(eocd + 6), let entriesHere = r.u16(eocd + 8),
              let entries = r.u16(eocd + 10), let cdSize = r.u32(eocd + 12), let cdOffset = r.u32(eocd + 16)
        else { throw fail("truncated ZIP end-of-central-directory record") }
        if entries == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            throw fail("ZIP64 archives are not supported")
        }
        guard disk == 0, cdDisk == 0, entriesHere == entries else { throw fail("multi-disk ZIP archives are not supported") }
        guard entries <= maxMembers else { throw fail("\(entries) members, more than \(maxMembers)") }
        guard cdOffset <= eocd, cdSize <= eocd - cdOffset else { throw fail("ZIP central directory lies outside the file") }

        var members: [(name: String, data: [UInt8])] = []
        var names = Set<String>()
        var p = cdOffset
        for _ in 0..<entries {
            guard r.u32(p) == 0x0201_4b50, let flags = r.u16(p + 8), let method = r.u16(p + 10), let crc = r.u32(p + 16),
                  var compressedSize = r.u32(p + 20), var size = r.u32(p + 24), let nameLength = r.u16(p + 28),
                  let extraLength = r.u16(p + 30), let commentLength = r.u16(p + 32), let diskStart = r.u16(p + 34),
                  var localOffset = r.u32(p + 42)
            else { throw fail("damaged ZIP central directory entry at byte \(p)") }
            let nameStart = p + 46
            guard let nameBytes = r.slice(nameStart, nameLength), let extra = r.slice(nameStart + nameLength, extraLength),
                  r.slice(nameStart + nameLength + extraLength, commentLength) != nil
            else { throw fail("damaged ZIP central directory entry at byte \(p)") }
            let name = String(decoding: nameBytes, as: UTF8.self)
            guard !name.isEmpty, names.insert(name).inserted else { throw fail("ZIP member name \"\(name)\" is empty or repeated") }
            // ZIP64 extended information: the 64-bit values of the fields saturated at 0xFFFFFFFF.
            if size == 0xFFFF_FFFF || compressedSize == 0xFFFF_FFFF || localOffset == 0xFFFF_FFFF {
                guard let z = zip64Field(extra) else { throw fail("member \(name): ZIP64 sizes without their extra field") }
                var k = 0
                func next() throws -> Int {
                    guard let v = z.u64(k), v <= UInt64(Int.max) else { throw fail("member \(name): truncated ZIP64 extra field") }
                    k += 8
                    return Int(v)
                }
                if size == 0xFFFF_FFFF { size = try next() }
                if compressedSize == 0xFFFF_FFFF { compressedSize = try next() }
                if localOffset == 0xFFFF_FFFF { localOffset = try next() }
            }
            guard diskStart == 0 || diskStart == 0xFFFF else { throw fail("member \(name) is on another disk") }
            guard flags & 1 == 0 else { throw fail("member \(name) is encrypted") }
            guard method == 0 else {
                throw fail(method == 8 ? "member \(name) is deflate-compressed (np.savez_compressed); only stored members (np.savez) are read"
                                       : "member \(name) uses ZIP compression method \(method); only stored members are read")
            }
            guard compressedSize == size else { throw fail("member \(name) is stored but its sizes differ (\(compressedSize) and \(size))") }
            // Local header: its own name and extra field lengths decide where the data starts.
            guard r.u32(localOffset) == 0x0403_4b50, let localName = r.u16(localOffset + 26), let localExtra = r.u16(localOffset + 28)
            else { throw fail("member \(name): no ZIP local header at byte \(localOffset)") }
            let dataStart = localOffset + 30 + localName + localExtra
            guard let data = r.slice(dataStart, size), dataStart + size <= cdOffset else {
                throw fail("member \(name): its \(size) bytes lie outside the file")
            }
            let actual = data.withUnsafeBufferPointer { fr_crc32(0, $0.baseAddress, $0.count) }
            guard actual == UInt32(crc) else { throw fail("member \(name) fails its CRC-32 check (damaged file)") }
            members.append((name, data))
            p = nameStart + nameLength + extraLength + commentLength
        }
        return members
    }

    /// The data of the ZIP64 extra field (header ID 1) among the extra fields `extra`.
    private static func zip64Field(_ extra: [UInt8]) -> ByteReader? {
        let r = ByteReader(bytes: extra)
        var p = 0
        while let id = r.u16(p), let length = r.u16(p + 2) {
            guard let body = r.slice(p + 4, length) else { return nil }
            if id == 1 { return ByteReader(bytes: body) }
            p += 4 + length
        }
        return nil
    }

    // MARK: .npy

    /// A `.npy` file of little-endian float64 or float32 values.
    static func parseNpy(_ b: [UInt8], path: String, member: String) throws -> NumpyArray {
        func fail(_ reason: String) -> EvaluationError { .modelFile(path: path, reason: "\(member): \(reason)") }
        let r = ByteReader(bytes: b)
        guard b.count >= 10, Array(b[0..<6]) == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59] else { throw fail("not a .npy file (no \\x93NUMPY magic)") }
        let major = b[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            guard let n = r.u16(8) else { throw fail("truncated .npy header") }
            headerLength = n; headerStart = 10
        case 2, 3:
            guard let n = r.u32(8) else { throw fail("truncated .npy header") }
            headerLength = n; headerStart = 12
        default:
            throw fail(".npy format version \(major) is not supported")
        }
        guard headerLength <= maxHeaderBytes, let headerBytes = r.slice(headerStart, headerLength) else {
            throw fail("the .npy header (\(headerLength) bytes) is longer than the file or \(maxHeaderBytes) bytes")
        }
        guard let header = String(validating: headerBytes, as: UTF8.self) else { throw fail("the .npy header is not text") }
        let dict: [String: HeaderValue]
        var parser = HeaderParser(header)
        do { dict = try parser.dictionary() } catch let error as HeaderParser.Failure {
            throw fail("bad .npy header: \(error.message)")
        }
        guard Set(dict.keys) == ["descr", "fortran_order", "shape"] else {
            throw fail("the .npy header must have exactly 'descr', 'fortran_order' and 'shape', got \(dict.keys.sorted())")
        }
        guard case let .string(descr)? = dict["descr"] else { throw fail("'descr' is not a string") }
        guard case let .bool(fortran)? = dict["fortran_order"] else { throw fail("'fortran_order' is not True or False") }
        guard case let .tuple(shape)? = dict["shape"] else { throw fail("'shape' is not a tuple of integers") }
        let itemSize: Int
        switch descr {
        case "<f8": itemSize = 8
        case "<f4": itemSize = 4
        default: throw fail("dtype '\(descr)' is not supported (only little-endian float64 '<f8' and float32 '<f4')")
        }
        guard shape.count <= maxDimensions else { throw fail("\(shape.count) dimensions") }
        var count = 1
        for d in shape {
            let m = count.multipliedReportingOverflow(by: d)
            guard d >= 0, !m.overflow, m.partialValue <= maxFileBytes else { throw fail("shape \(shape) is too large") }
            count = m.partialValue
        }
        let dataStart = headerStart + headerLength
        guard count * itemSize == b.count - dataStart else {
            throw fail("shape \(shape) of \(descr) needs \(count * itemSize) data bytes, the file has \(b.count - dataStart)")
        }
        var stored = [Double](repeating: 0, count: count)
        for k in 0..<count {
            let o = dataStart + k * itemSize
            if itemSize == 8 {
                var bits: UInt64 = 0
                for j in 0..<8 { bits |= UInt64(b[o + j]) << (8 * UInt64(j)) }
                stored[k] = Double(bitPattern: bits)
            } else {
                var bits: UInt32 = 0
                for j in 0..<4 { bits |= UInt32(b[o + j]) << (8 * UInt32(j)) }
                stored[k] = Double(Float(bitPattern: bits))
            }
        }
        guard fortran, shape.count > 1 else { return NumpyArray(shape: shape, values: stored) }
        // Column-major → row-major: walk the C index, keeping its column-major offset.
        var values = [Double](repeating: 0, count: count)
        var fortranStride = [Int](repeating: 1, count: shape.count)
        for d in 1..<shape.count { fortranStride[d] = fortranStride[d - 1] * shape[d - 1] }
        var index = [Int](repeating: 0, count: shape.count)
        var offset = 0
        for c in 0..<count {
            values[c] = stored[offset]
            var d = shape.count - 1
            while d >= 0 {
                index[d] += 1
                offset += fortranStride[d]
                if index[d] < shape[d] { break }
                offset -= fortranStride[d] * shape[d]
                index[d] = 0
                d -= 1
            }
        }
        return NumpyArray(shape: shape, values: values)
    }
}

/// Bounds-checked little-endian reads; nil past the end.
private struct ByteReader {
    let bytes: [UInt8]

    func u16(_ o: Int) -> Int? {
        guard o >= 0, o <= bytes.count - 2 else { return nil }
        return Int(bytes[o]) | Int(bytes[o + 1]) << 8
    }

    func u32(_ o: Int) -> Int? {
        guard o >= 0, o <= bytes.count - 4 else { return nil }
        return (0..<4).reduce(0) { $0 | Int(bytes[o + $1]) << (8 * $1) }
    }

    func u64(_ o: Int) -> UInt64? {
        guard o >= 0, o <= bytes.count - 8 else { return nil }
        return (0..<8).reduce(0) { $0 | UInt64(bytes[o + $1]) << (8 * UInt64($1)) }
    }

    func slice(_ o: Int, _ n: Int) -> [UInt8]? {
        guard o >= 0, n >= 0, o <= bytes.count, n <= bytes.count - o else { return nil }
        return Array(bytes[o..<(o + n)])
    }
}

private enum HeaderValue: Equatable {
    case string(String)
    case bool(Bool)
    case tuple([Int])
}

/// The Python dict literal of a `.npy` header, e.g.
/// `{'descr': '<f8', 'fortran_order': False, 'shape': (36, 36), }`: string keys; string,
/// True/False or integer-tuple values; trailing commas and spaces allowed.
private struct HeaderParser {
    struct Failure: Error { let message: String }

    let chars: [Character]
    var i = 0

    init(_ text: String) { chars = Array(text) }

    mutating func dictionary() throws -> [String: HeaderValue] {
        var result: [String: HeaderValue] = [:]
        try expect("{")
        while true {
            skipSpace()
            if peek() == "}" { i += 1; break }
            let key = try string()
            try expect(":")
            skipSpace()
            let value: HeaderValue
            switch peek() {
            case "'", "\"": value = .string(try string())
            case "(": value = .tuple(try tuple())
            case "T": try word("True"); value = .bool(true)
            case "F": try word("False"); value = .bool(false)
            default: throw Failure(message: "unexpected value for '\(key)'")
            }
            guard result.updateValue(value, forKey: key) == nil else { throw Failure(message: "key '\(key)' repeated") }
            skipSpace()
            if peek() == "," { i += 1; continue }
            try expect("}")
            break
        }
        skipSpace()
        guard i == chars.count else { throw Failure(message: "text after the dictionary") }
        return result
    }

    private func peek() -> Character? { i < chars.count ? chars[i] : nil }

    private mutating func skipSpace() {
        while let c = peek(), c == " " || c == "\n" || c == "\t" || c == "\r" { i += 1 }
    }

    private mutating func expect(_ c: Character) throws {
        skipSpace()
        guard peek() == c else { throw Failure(message: "expected '\(c)'") }
        i += 1
    }

    private mutating func word(_ w: String) throws {
        for c in w {
            guard peek() == c else { throw Failure(message: "expected \(w)") }
            i += 1
        }
    }

    private mutating func string() throws -> String {
        skipSpace()
        guard let quote = peek(), quote == "'" || quote == "\"" else { throw Failure(message: "expected a quoted string") }
        i += 1
        var s = ""
        while let c = peek(), c != quote {
            guard c != "\\", s.count < 256 else { throw Failure(message: "unsupported string") }
            s.append(c)
            i += 1
        }
        guard peek() == quote else { throw Failure(message: "unterminated string") }
        i += 1
        return s
    }

    private mutating func tuple() throws -> [Int] {
        try expect("(")
        var values: [Int] = []
        while true {
            skipSpace()
            if peek() == ")" { i += 1; break }
            var digits = ""
            while let c = peek(), c.isASCII, c.isNumber {
                guard digits.count < 18 else { throw Failure(message: "dimension too large") }
                digits.append(c)
                i += 1
            }
            guard let v = Int(digits) else { throw Failure(message: "expected a non-negative integer in the shape") }
            values.append(v)
            skipSpace()
            if peek() == "," { i += 1; continue }
            try expect(")")
            break
        }
        return values
    }
}
