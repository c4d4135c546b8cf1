// A small, defensive reader for the subset of OpenCV's YAML `FileStorage` format that OpenCV
// itself writes for `cv::ml::SVM::save` and for `cv::Mat` (`!!opencv-matrix`): the files of
// opencv_contrib's BRISQUE model (`brisque_model_live.yml`, `brisque_range_live.yml`).
//
// What it reads:
//   - a `%YAML:1.0` (or `%YAML 1.0`) first line, an optional `---` line;
//   - block mappings (`key: value`, nesting by indentation with spaces) and block sequences
//     (`- value`, or `-` alone with the item's mapping indented below it);
//   - flow sequences `[ a, b, … ]` and flow mappings `{ key:value, … }` that may span lines
//     (OpenCV writes `key:value` with no space in flow mappings);
//   - plain and double-quoted scalars; tags such as `!!opencv-matrix` (skipped);
//   - `#` comments on their own line or after a value.
// It is not a general YAML parser (no anchors, aliases, block scalars, or compact `- key: v`
// mappings); what it does not understand is an error with a line number, never a crash. Memory is
// bounded by the file: no count read from the file is used to reserve space.

import Foundation

/// A parsed FileStorage node (scalars inline in their parent's array: about 24 bytes per value).
enum OpenCVStorageNode: Sendable {
    case scalar(String)
    case sequence([OpenCVStorageNode])
    case mapping([(key: String, value: OpenCVStorageNode)])

    /// The value of `key` in a mapping (the first one), nil if absent or not a mapping.
    subscript(key: String) -> OpenCVStorageNode? {
        guard case let .mapping(entries) = self else { return nil }
        return entries.first { $0.key == key }?.value
    }

    var string: String? {
        guard case let .scalar(s) = self else { return nil }
        return s
    }

    var items: [OpenCVStorageNode]? {
        guard case let .sequence(items) = self else { return nil }
        return items
    }

    /// A real number as OpenCV reads one (`.Inf`, `-.Inf`, `.NaN` included).
    var double: Double? {
        guard let s = string, !s.isEmpty, s.utf8.count <= 64 else { return nil }
        switch s {
        case ".Inf", "+.Inf", ".inf": return .infinity
        case "-.Inf", "-.inf": return -.infinity
        case ".NaN", ".nan": return .nan
        default: break
        }
        // Decimal notation only (no hex floats, no "inf"/"nan" words).
        guard s.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || $0 == 43 || $0 == 45 || $0 == 46 || $0 == 101 || $0 == 69 }) else {
            return nil
        }
        return Double(s)
    }

    /// An integer (written as decimal digits with an optional sign).
    var int: Int? {
        guard let s = string, !s.isEmpty, s.utf8.count <= 20 else { return nil }
        return Int(s)
    }
}

/// Why a FileStorage text could not be read (one line, with the line number).
struct OpenCVStorageError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

enum OpenCVStorage {
    /// Files larger than this are refused before reading (the BRISQUE model is about 560 KB); the
    /// parsed nodes take at most about 12 times the file's size.
    static let maximumFileSize = 16 << 20
    static let maximumDepth = 64

    /// Reads and parses a file; errors are `OpenCVStorageError` with a one-line reason.
    static func read(path: String) throws -> OpenCVStorageNode {
        let bytes: [UInt8]
        do { bytes = try readFileBytes(path, limit: maximumFileSize) } catch let e as FileBytesError {
            throw OpenCVStorageError(message: e.reason)
        }
        return try parse(bytes)
    }

    /// Parses FileStorage YAML text; the root is the top-level mapping.
    static func parse(_ bytes: [UInt8]) throws -> OpenCVStorageNode {
        var parser = OpenCVStorageParser(bytes: bytes)
        return try parser.parseDocument()
    }
}

/// The recursive-descent parser behind `OpenCVStorage.parse`.
private struct OpenCVStorageParser {
    let bytes: [UInt8]
    var pos = 0
    var depth = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    // MARK: characters and lines

    private static let space: UInt8 = 0x20, tab: UInt8 = 0x09, newline: UInt8 = 0x0A, cr: UInt8 = 0x0D
    private static let hash: UInt8 = 0x23, dash: UInt8 = 0x2D, colon: UInt8 = 0x3A, comma: UInt8 = 0x2C
    private static let quote: UInt8 = 0x22, backslash: UInt8 = 0x5C, bang: UInt8 = 0x21
    private static let lbracket: UInt8 = 0x5B, rbracket: UInt8 = 0x5D, lbrace: UInt8 = 0x7B, rbrace: UInt8 = 0x7D

    private var current: UInt8? { pos < bytes.count ? bytes[pos] : nil }

    /// 1-based line number of `pos`, for messages.
    private var lineNumber: Int {
        var n = 1
        for i in 0..<min(pos, bytes.count) where bytes[i] == Self.newline { n += 1 }
        return n
    }

    private func error(_ message: String) -> OpenCVStorageError {
        OpenCVStorageError(message: "line \(lineNumber): \(message)")
    }

    private static func isLineEnd(_ c: UInt8?) -> Bool { c == nil || c == newline || c == cr }

    /// The text of `bytes[start..<end]` without leading and trailing spaces and tabs.
    private func trimmedText(_ start: Int, _ end: Int) -> String {
        var (a, b) = (start, end)
        while a < b, bytes[a] == Self.space || bytes[a] == Self.tab { a += 1 }
        while b > a, bytes[b - 1] == Self.space || bytes[b - 1] == Self.tab || bytes[b - 1] == Self.cr { b -= 1 }
        return String(decoding: bytes[a..<b], as: UTF8.self)
    }

    /// Skips spaces and tabs on the current line.
    private mutating func skipInlineSpace() {
        while let c = current, c == Self.space || c == Self.tab { pos += 1 }
    }

    /// Moves past the end of the current line (its newline included).
    private mutating func skipRestOfLine() {
        while let c = current, c != Self.newline { pos += 1 }
        if current == Self.newline { pos += 1 }
    }

    /// After a value: only spaces and an optional comment may remain on the line.
    private mutating func finishLine() throws {
        skipInlineSpace()
        if let c = current, c == Self.hash || Self.isLineEnd(c) {
            skipRestOfLine()
        } else if current != nil {
            throw error("unexpected text after a value")
        }
    }

    /// Finds the next line with content (not blank, not a comment) without consuming it.
    /// Returns its start offset and indentation, or nil at the end of the text or at a document
    /// end marker (`...` or `---`).
    private func peekContentLine() throws -> (start: Int, indent: Int)? {
        var p = pos
        while p < bytes.count {
            var q = p, indent = 0
            while q < bytes.count, bytes[q] == Self.space { q += 1; indent += 1 }
            if q < bytes.count, bytes[q] == Self.tab {
                var line = 1
                for i in 0..<q where bytes[i] == Self.newline { line += 1 }
                throw OpenCVStorageError(message: "line \(line): tab in indentation")
            }
            if q >= bytes.count { return nil }
            let c = bytes[q]
            if c == Self.newline || c == Self.cr || c == Self.hash {
                while q < bytes.count, bytes[q] != Self.newline { q += 1 }
                p = q + 1
                continue
            }
            if indent == 0, q + 2 < bytes.count, bytes[q + 1] == c, bytes[q + 2] == c, c == 0x2E || c == Self.dash {
                return nil   // "..." or "---": the end of the document
            }
            return (p, indent)
        }
        return nil
    }

    // MARK: document

    mutating func parseDocument() throws -> OpenCVStorageNode {
        // "%YAML:1.0" (OpenCV) or "%YAML 1.0".
        let header = Array("%YAML".utf8)
        guard bytes.count >= header.count, Array(bytes[0..<header.count]) == header else {
            throw OpenCVStorageError(message: "line 1: not an OpenCV YAML file (no %YAML header)")
        }
        skipRestOfLine()
        // Blank and comment lines, then an optional "---" (possibly followed by a tag).
        while let c = current {
            if c == Self.newline || c == Self.cr || c == Self.hash || c == Self.space {
                var q = pos
                while q < bytes.count, bytes[q] == Self.space { q += 1 }
                guard q >= bytes.count || Self.isLineEnd(bytes[q]) || bytes[q] == Self.hash else { break }
                skipRestOfLine()
            } else {
                if c == Self.dash, pos + 2 < bytes.count, bytes[pos + 1] == Self.dash, bytes[pos + 2] == Self.dash {
                    skipRestOfLine()
                }
                break
            }
        }
        guard let root = try parseBlockNode(minIndent: 0) else {
            throw error("empty document")
        }
        guard case .mapping = root else { throw error("the top level is not a mapping") }
        return root
    }

    // MARK: block structure

    private mutating func enter() throws {
        depth += 1
        if depth > OpenCVStorage.maximumDepth { throw error("nesting deeper than \(OpenCVStorage.maximumDepth) levels") }
    }

    private mutating func leave() { depth -= 1 }

    /// Whether the line content at `offset` starts a block sequence item (`-` then space or end).
    private func isSequenceItem(at offset: Int) -> Bool {
        guard offset < bytes.count, bytes[offset] == Self.dash else { return false }
        let next: UInt8? = offset + 1 < bytes.count ? bytes[offset + 1] : nil
        return next == Self.space || next == Self.tab || Self.isLineEnd(next)
    }

    /// A block node whose lines are indented at least `minIndent`; nil if there is none.
    private mutating func parseBlockNode(minIndent: Int) throws -> OpenCVStorageNode? {
        guard let line = try peekContentLine(), line.indent >= minIndent else { return nil }
        try enter()
        defer { leave() }
        if isSequenceItem(at: line.start + line.indent) {
            return try parseBlockSequence(indent: line.indent)
        }
        return try parseBlockMapping(indent: line.indent)
    }

    private mutating func parseBlockMapping(indent: Int) throws -> OpenCVStorageNode {
        var entries: [(key: String, value: OpenCVStorageNode)] = []
        while let line = try peekContentLine() {
            if line.indent < indent { break }
            pos = line.start + line.indent
            if line.indent > indent { throw error("unexpected indentation") }
            if isSequenceItem(at: pos) {
                // A sequence at the mapping's own indentation belongs to the previous key
                // (handled in parseValue); here it cannot start.
                throw error("a sequence item where a mapping key was expected")
            }
            let key = try parseKey(flow: false)
            let value = try parseValue(parentIndent: indent, allowSameIndentSequence: true)
            entries.append((key, value))
        }
        return .mapping(entries)
    }

    private mutating func parseBlockSequence(indent: Int) throws -> OpenCVStorageNode {
        var items: [OpenCVStorageNode] = []
        while let line = try peekContentLine() {
            if line.indent < indent { break }
            pos = line.start + line.indent
            if line.indent > indent { throw error("unexpected indentation") }
            guard isSequenceItem(at: pos) else { break }
            pos += 1
            items.append(try parseValue(parentIndent: indent, allowSameIndentSequence: false))
        }
        return .sequence(items)
    }

    /// A mapping key up to its `:` (block keys end at `:` followed by a space or the line end;
    /// flow keys, as OpenCV writes them, at the first `:`).
    private mutating func parseKey(flow: Bool) throws -> String {
        if current == Self.quote {
            let key = try parseQuoted()
            skipInlineSpace()
            guard current == Self.colon else { throw error("expected ':' after a key") }
            pos += 1
            return key
        }
        let start = pos
        while let c = current {
            if c == Self.colon {
                let next: UInt8? = pos + 1 < bytes.count ? bytes[pos + 1] : nil
                if flow || next == Self.space || next == Self.tab || Self.isLineEnd(next) { break }
            }
            if Self.isLineEnd(c) || (flow && (c == Self.comma || c == Self.rbrace || c == Self.newline)) {
                throw error("expected 'key: value'")
            }
            pos += 1
        }
        guard current == Self.colon else { throw error("expected 'key: value'") }
        let key = trimmedText(start, pos)
        pos += 1
        guard !key.isEmpty else { throw error("empty key") }
        return key
    }

    /// The value after `key:` or `-` on the current line, or the block below it.
    private mutating func parseValue(parentIndent: Int, allowSameIndentSequence: Bool) throws -> OpenCVStorageNode {
        skipInlineSpace()
        if current == Self.bang {            // a tag such as !!opencv-matrix: skipped
            while let c = current, c != Self.space, c != Self.tab, !Self.isLineEnd(c) { pos += 1 }
            skipInlineSpace()
        }
        guard let c = current, c != Self.hash, !Self.isLineEnd(c) else {
            skipRestOfLine()
            if let child = try parseBlockNode(minIndent: parentIndent + 1) { return child }
            if allowSameIndentSequence, let line = try peekContentLine(), line.indent == parentIndent,
               isSequenceItem(at: line.start + line.indent) {
                try enter()
                defer { leave() }
                return try parseBlockSequence(indent: parentIndent)
            }
            return .scalar("")
        }
        let value: OpenCVStorageNode
        switch c {
        case Self.lbracket, Self.lbrace:
            value = try parseFlowNode()
        case Self.quote:
            value = .scalar(try parseQuoted())
        default:
            let start = pos
            while let c = current, !Self.isLineEnd(c) {
                if c == Self.hash, pos > start, bytes[pos - 1] == Self.space || bytes[pos - 1] == Self.tab { break }
                pos += 1
            }
            value = .scalar(trimmedText(start, pos))
        }
        try finishLine()
        return value
    }

    // MARK: flow structure

    /// Skips spaces, tabs, newlines and comments inside a flow collection.
    private mutating func skipFlowSpace() {
        while let c = current {
            if c == Self.space || c == Self.tab || c == Self.newline || c == Self.cr {
                pos += 1
            } else if c == Self.hash {
                while let d = current, d != Self.newline { pos += 1 }
            } else {
                break
            }
        }
    }

    private mutating func parseFlowNode() throws -> OpenCVStorageNode {
        try enter()
        defer { leave() }
        guard let open = current else { throw error("unexpected end of file") }
        let isSequence = open == Self.lbracket
        let close = isSequence ? Self.rbracket : Self.rbrace
        pos += 1
        var items: [OpenCVStorageNode] = []
        var entries: [(key: String, value: OpenCVStorageNode)] = []
        skipFlowSpace()
        if current == close { pos += 1; return isSequence ? .sequence([]) : .mapping([]) }
        while true {
            skipFlowSpace()
            guard current != nil else { throw error("unterminated \(isSequence ? "[" : "{")") }
            if isSequence {
                items.append(try parseFlowItem())
            } else {
                let key = try parseKey(flow: true)
                skipFlowSpace()
                entries.append((key, try parseFlowItem()))
            }
            skipFlowSpace()
            guard let c = current else { throw error("unterminated \(isSequence ? "[" : "{")") }
            if c == Self.comma { pos += 1; continue }
            if c == close { pos += 1; break }
            throw error("expected ',' or '\(isSequence ? "]" : "}")'")
        }
        return isSequence ? .sequence(items) : .mapping(entries)
    }

    private mutating func parseFlowItem() throws -> OpenCVStorageNode {
        guard let c = current else { throw error("unexpected end of file") }
        switch c {
        case Self.lbracket, Self.lbrace: return try parseFlowNode()
        case Self.quote: return .scalar(try parseQuoted())
        default:
            let start = pos
            while let c = current, c != Self.comma, c != Self.rbracket, c != Self.rbrace, !Self.isLineEnd(c) { pos += 1 }
            return .scalar(trimmedText(start, pos))
        }
    }

    /// A double-quoted scalar on one line (escapes \" \\ \n \t kept simple).
    private mutating func parseQuoted() throws -> String {
        pos += 1
        var out: [UInt8] = []
        while let c = current {
            if Self.isLineEnd(c) { break }
            pos += 1
            if c == Self.quote { return String(decoding: out, as: UTF8.self) }
            if c == Self.backslash, let e = current, !Self.isLineEnd(e) {
                pos += 1
                switch e {
                case 0x6E: out.append(Self.newline)
                case 0x74: out.append(Self.tab)
                default: out.append(e)
                }
            } else {
                out.append(c)
            }
        }
        throw error("unterminated quoted string")
    }
}
