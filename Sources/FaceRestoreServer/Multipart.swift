// A streaming `multipart/form-data` reader (RFC 7578 on RFC 2046's multipart syntax): bytes in,
// events out, holding at most one delimiter's length of a part's body and one part's headers in
// memory, so an upload goes to disk as it arrives. Every size it keeps is bounded.

import Foundation

/// Why a multipart body was refused. One line.
struct MultipartError: Error, CustomStringConvertible, Equatable {
    let reason: String
    var description: String { "bad multipart form: \(reason)" }
}

/// One part's headers: the field name and, for a file, the client's file name (never used as a path).
struct MultipartPartHead: Equatable {
    var name: String
    var filename: String?
    var contentType: String?
}

enum MultipartEvent: Equatable {
    case begin(MultipartPartHead)
    case data([UInt8])
    case end
}

struct MultipartParser {
    /// The longest header block of one part.
    static let maxHeaderBytes = 16 * 1024

    private enum State { case preamble, headers, body, epilogue }

    private let delimiter: [UInt8]      // CRLF "--" boundary
    private var buffer: [UInt8]
    private var state = State.preamble
    private var partCount = 0
    let maxParts: Int

    /// The boundary from a `Content-Type` header, or nil when it is not multipart/form-data with one.
    static func boundary(contentType: String) -> String? {
        let parts = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let type = parts.first, type.lowercased() == "multipart/form-data" else { return nil }
        for p in parts.dropFirst() {
            let kv = p.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, kv[0].trimmingCharacters(in: .whitespaces).lowercased() == "boundary" else { continue }
            var value = kv[1].trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            // RFC 2046: 1 to 70 characters.
            guard (1...70).contains(value.utf8.count) else { return nil }
            return value
        }
        return nil
    }

    init(boundary: String, maxParts: Int = 256) {
        delimiter = Array("\r\n--\(boundary)".utf8)
        // The body starts right at the first delimiter, which has no CRLF before it: pretend it has.
        buffer = [13, 10]
        self.maxParts = maxParts
    }

    /// Feeds the next bytes; returns what they complete.
    mutating func feed<C: Collection>(_ bytes: C) throws -> [MultipartEvent] where C.Element == UInt8 {
        buffer.append(contentsOf: bytes)
        var events: [MultipartEvent] = []
        while true {
            switch state {
            case .preamble:
                guard let at = find(delimiter, from: 0) else {
                    // Keep only what could still start the delimiter.
                    if buffer.count > delimiter.count { buffer.removeFirst(buffer.count - delimiter.count) }
                    return events
                }
                guard let next = try afterDelimiter(at: at) else { return events }
                if !next { state = .epilogue; return events }
                state = .headers
            case .headers:
                guard let end = find([13, 10, 13, 10], from: 0) ?? (buffer.starts(with: [13, 10]) ? -2 : nil) else {
                    if buffer.count > Self.maxHeaderBytes { throw MultipartError(reason: "a part's headers are longer than 16 KiB") }
                    return events
                }
                let head = try Self.parseHeaders(end < 0 ? [] : Array(buffer[0..<end]))
                buffer.removeFirst(end + 4)
                partCount += 1
                guard partCount <= maxParts else { throw MultipartError(reason: "more than \(maxParts) parts") }
                events.append(.begin(head))
                state = .body
            case .body:
                if let at = find(delimiter, from: 0) {
                    if at > 0 { events.append(.data(Array(buffer[0..<at]))) }
                    buffer.removeFirst(at)
                    guard let next = try afterDelimiter(at: 0) else { return events }
                    events.append(.end)
                    state = next ? .headers : .epilogue
                } else {
                    let safe = buffer.count - (delimiter.count - 1)
                    if safe > 0 {
                        events.append(.data(Array(buffer[0..<safe])))
                        buffer.removeFirst(safe)
                    }
                    return events
                }
            case .epilogue:
                buffer.removeAll(keepingCapacity: false)
                return events
            }
        }
    }

    /// Checks that the body ended with the closing delimiter.
    func finish() throws {
        guard state == .epilogue else {
            throw MultipartError(reason: state == .preamble ? "no parts" : "the body ends inside a part (an interrupted upload?)")
        }
    }

    /// After the delimiter at `at`: true when another part follows (CRLF), false at the closing
    /// "--", nil when more bytes are needed. Consumes the delimiter and what follows it.
    private mutating func afterDelimiter(at: Int) throws -> Bool? {
        let rest = at + delimiter.count
        // Transport padding (spaces, tabs) may follow the boundary before CRLF.
        var i = rest
        if buffer.count >= rest + 2, buffer[rest] == 45, buffer[rest + 1] == 45 {
            buffer.removeFirst(rest + 2)
            return false
        }
        while i < buffer.count, buffer[i] == 32 || buffer[i] == 9 { i += 1 }
        guard buffer.count >= i + 2 else {
            if buffer.count - rest > 256 { throw MultipartError(reason: "garbage after a boundary") }
            return nil
        }
        guard buffer[i] == 13, buffer[i + 1] == 10 else { throw MultipartError(reason: "a boundary is not followed by a line break") }
        buffer.removeFirst(i + 2)
        return true
    }

    private func find(_ needle: [UInt8], from start: Int) -> Int? {
        guard let first = needle.first, buffer.count - start >= needle.count else { return nil }
        return buffer.withUnsafeBufferPointer { hay -> Int? in
            var i = start
            let last = hay.count - needle.count
            while i <= last {
                if hay[i] == first {
                    var k = 1
                    while k < needle.count, hay[i + k] == needle[k] { k += 1 }
                    if k == needle.count { return i }
                }
                i += 1
            }
            return nil
        }
    }

    /// The part's name, file name and type from its header lines.
    static func parseHeaders(_ bytes: [UInt8]) throws -> MultipartPartHead {
        guard let text = String(bytes: bytes, encoding: .utf8) else { throw MultipartError(reason: "part headers are not UTF-8") }
        var head = MultipartPartHead(name: "", filename: nil, contentType: nil)
        var sawDisposition = false
        for line in text.components(separatedBy: "\r\n") where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { throw MultipartError(reason: "a part header has no ':'") }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch key {
            case "content-disposition":
                let params = dispositionParameters(value)
                guard params.type == "form-data", let name = params.values["name"] else {
                    throw MultipartError(reason: "a part is not form-data with a name")
                }
                head.name = name
                head.filename = params.values["filename"]
                sawDisposition = true
            case "content-type":
                head.contentType = value
            default:
                continue
            }
        }
        guard sawDisposition else { throw MultipartError(reason: "a part has no Content-Disposition") }
        return head
    }

    /// `form-data; name="a"; filename="b c.jpg"` → ("form-data", [name: a, filename: b c.jpg]).
    static func dispositionParameters(_ value: String) -> (type: String, values: [String: String]) {
        var values: [String: String] = [:]
        let chars = Array(value)
        var i = 0
        func skipSpaces() { while i < chars.count, chars[i] == " " || chars[i] == "\t" { i += 1 } }
        var type = ""
        while i < chars.count, chars[i] != ";" { type.append(chars[i]); i += 1 }
        while i < chars.count {
            i += 1   // ';'
            skipSpaces()
            var key = ""
            while i < chars.count, chars[i] != "=", chars[i] != ";" { key.append(chars[i]); i += 1 }
            guard i < chars.count, chars[i] == "=" else { continue }
            i += 1
            var v = ""
            if i < chars.count, chars[i] == "\"" {
                i += 1
                while i < chars.count, chars[i] != "\"" {
                    if chars[i] == "\\", i + 1 < chars.count { i += 1 }
                    v.append(chars[i]); i += 1
                }
                i += 1
                while i < chars.count, chars[i] != ";" { i += 1 }
            } else {
                while i < chars.count, chars[i] != ";" { v.append(chars[i]); i += 1 }
            }
            values[key.trimmingCharacters(in: .whitespaces).lowercased()] = v.trimmingCharacters(in: .whitespaces)
        }
        return (type.trimmingCharacters(in: .whitespaces).lowercased(), values)
    }
}
