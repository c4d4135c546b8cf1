// A data-only reader for Python pickles as written by torch.save (protocols 2–5).
//
// It interprets opcodes into values and never executes anything. Only the globals on the
// allow-list below (containers, torch's tensor-rebuild functions and storage classes) are ever
// applied: REDUCE/NEWOBJ on one builds the value it would return. Any other global (a
// Lightning checkpoint's omegaconf configs and callbacks, numpy scalars, os.system) becomes an
// inert opaque value that keeps only its name: calling or constructing it (REDUCE, NEWOBJ,
// NEWOBJ_EX, INST, OBJ) gives another opaque value, and BUILD state or items added to it are
// dropped. The state-dict reader refuses, by that name, an opaque value where it needs a tensor
// or a dict of tensors. A tensor here is a reference into a storage; only the chosen state dict's
// are made into tensors (views of the mapped file), so an optimizer state costs bookkeeping.
// Bounds: every opcode makes at most a few values and a pickle may run at most `maxOpcodes`, so
// the values, containers and memo entries are bounded; strings by the pickle's length; opaque
// names by `maxOpaqueName`; nothing recurses on the pickle's nesting.
// Opcode semantics follow CPython's Lib/pickletools.py documentation.

/// Allow-listed globals: the only ones the reader applies (any other is an opaque value).
enum PickleGlobal: String {
    case orderedDict = "collections.OrderedDict"
    case rebuildTensorV2 = "torch._utils._rebuild_tensor_v2"
    case rebuildTensor = "torch._utils._rebuild_tensor"
    case rebuildParameter = "torch._utils._rebuild_parameter"
    case rebuildParameterWithState = "torch._utils._rebuild_parameter_with_state"
    case rebuildFromTypeV2 = "torch._tensor._rebuild_from_type_v2"
    case tensorType = "torch.Tensor"
    case parameterType = "torch.nn.parameter.Parameter"
    case floatStorage = "torch.FloatStorage"
    case halfStorage = "torch.HalfStorage"
    case bfloat16Storage = "torch.BFloat16Storage"
    case doubleStorage = "torch.DoubleStorage"
    case longStorage = "torch.LongStorage"
    case intStorage = "torch.IntStorage"
    case shortStorage = "torch.ShortStorage"
    case charStorage = "torch.CharStorage"
    case byteStorage = "torch.ByteStorage"
    case boolStorage = "torch.BoolStorage"

    /// The element type of a storage class.
    var storageDType: DType? {
        switch self {
        case .floatStorage: return .float32
        case .halfStorage: return .float16
        case .bfloat16Storage: return .bfloat16
        case .doubleStorage: return .float64
        case .longStorage: return .int64
        case .intStorage: return .int32
        case .shortStorage: return .int16
        case .charStorage: return .int8
        case .byteStorage: return .uint8
        case .boolStorage: return .bool
        default: return nil
        }
    }
}

/// A reference to tensor data held outside the pickle (torch's persistent storage ids).
struct StorageRef {
    let dtype: DType
    let key: String
    /// Element offset into the root storage (legacy-format storage views).
    let elementOffset: Int
    let numel: Int?
}

/// A tensor as the pickle describes it: a strided view into a storage.
struct TensorRef {
    let storage: StorageRef
    let offset: Int
    let size: [Int]
    let stride: [Int]
}

final class PickleList { var items: [PickleValue] = [] }
final class PickleDict {
    var keys: [PickleValue] = []
    var values: [PickleValue] = []
    /// Where each hashable key (string, int, None: the keys that compare equal) is: set is
    /// linear over a dict, not quadratic.
    private var index: [HashKey: Int] = [:]

    private enum HashKey: Hashable {
        case string(String), int(Int), none
    }

    private static func hashKey(_ k: PickleValue) -> HashKey? {
        switch k {
        case .string(let s): return .string(s)
        case .int(let i): return .int(i)
        case .none: return HashKey.none
        default: return nil
        }
    }

    func set(_ k: PickleValue, _ v: PickleValue) {
        guard let h = Self.hashKey(k) else { keys.append(k); values.append(v); return }
        if let i = index[h] { values[i] = v; return }
        index[h] = keys.count
        keys.append(k)
        values.append(v)
    }

    /// Empties the dict, returning what it held (for `PickleValue.dismantle`).
    func takeAll() -> [PickleValue] {
        defer { keys = []; values = []; index = [:] }
        return keys + values
    }
}

indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    /// A tuple, held in a class like lists so that a deep one can be taken apart in place.
    case tuple(PickleList)
    case list(PickleList)
    case dict(PickleDict)
    case global(PickleGlobal)
    case storage(StorageRef)
    case tensor(TensorRef)
    /// A global that is not on the allow-list, or what calling or building it gives: inert, it
    /// keeps only the global's name (at most `PickleReader.maxOpaqueName` characters).
    case opaque(String)
    case mark

    static func == (a: PickleValue, b: PickleValue) -> Bool {
        switch (a, b) {
        case let (.string(x), .string(y)): return x == y
        case let (.int(x), .int(y)): return x == y
        case (.none, .none): return true
        default: return false
        }
    }

    /// Takes a value graph apart without recursion and breaks its reference cycles. Swift releases
    /// nested values recursively, so a hostile pickle of a million nested tuples or dicts would
    /// overflow the stack when it is freed; every graph the reader builds is freed through this.
    static func dismantle(_ roots: [PickleValue]) {
        var work = roots
        var seen = Set<ObjectIdentifier>()
        while let v = work.popLast() {
            switch v {
            case .tuple(let l), .list(let l):
                if seen.insert(ObjectIdentifier(l)).inserted { work.append(contentsOf: l.items); l.items = [] }
            case .dict(let d):
                if seen.insert(ObjectIdentifier(d)).inserted { work.append(contentsOf: d.takeAll()) }
            default: break
            }
        }
    }

    /// The global an opaque value comes from.
    var opaqueName: String? { if case .opaque(let n) = self { return n }; return nil }
    var intValue: Int? { if case .int(let v) = self { return v }; if case .bool(let b) = self { return b ? 1 : 0 }; return nil }
    var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    var tupleItems: [PickleValue]? {
        switch self {
        case .tuple(let l), .list(let l): return l.items
        default: return nil
        }
    }
}

/// Every container a reader makes. When the reader is done, those its value does not reach
/// (popped, overwritten, left in the memo) are emptied, so that garbage with reference cycles
/// (a dict holding itself, then popped: found by fuzzing) is freed instead of leaked; on an error,
/// all of them are.
final class PickleArena {
    private var containers: [AnyObject] = []

    func dict() -> PickleDict {
        let d = PickleDict()
        containers.append(d)
        return d
    }

    func list(_ items: [PickleValue] = []) -> PickleList {
        let l = PickleList()
        l.items = items
        containers.append(l)
        return l
    }

    func release(keeping roots: [PickleValue]) {
        var reachable = Set<ObjectIdentifier>()
        var work = roots
        while let v = work.popLast() {
            switch v {
            case .tuple(let l), .list(let l):
                if reachable.insert(ObjectIdentifier(l)).inserted { work.append(contentsOf: l.items) }
            case .dict(let d):
                if reachable.insert(ObjectIdentifier(d)).inserted { work.append(contentsOf: d.keys + d.values) }
            default: break
            }
        }
        // Every container is still held here, so emptying one frees nothing recursively.
        for c in containers where !reachable.contains(ObjectIdentifier(c)) {
            if let l = c as? PickleList { l.items = [] } else if let d = c as? PickleDict { _ = d.takeAll() }
        }
        containers = []
    }
}

/// Why a pickle could not be read (mapped to `WeightsError` with the file path by the caller).
enum PickleError: Error {
    case truncated(String)
    case malformed(String)
    /// An opaque value (the global `name`) where data is needed (`use`).
    case opaque(name: String, use: String)
    case tooLarge(String)
}

struct PickleReader {
    /// Opcodes one pickle may run (RestoreFormer's state dict, 409 tensors, runs 13,267).
    static let maxOpcodes = 1 << 24
    /// Characters of a global's name an opaque value keeps.
    static let maxOpaqueName = 200
    /// Nested `_rebuild_from_type_v2` calls one tensor may go through (torch makes one).
    static let maxRebuildNesting = 8

    private let bytes: UnsafeRawBufferPointer
    private let arena = PickleArena()
    private(set) var position: Int
    /// Resolves a persistent id (torch's storage tuples) to a value.
    private let persistentLoad: (PickleValue) throws -> PickleValue
    private let opcodeLimit: Int

    init(bytes: UnsafeRawBufferPointer, start: Int = 0, opcodeLimit: Int = maxOpcodes,
         persistentLoad: @escaping (PickleValue) throws -> PickleValue) {
        self.bytes = bytes
        self.position = start
        self.opcodeLimit = opcodeLimit
        self.persistentLoad = persistentLoad
    }

    // MARK: byte access

    private mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= bytes.count - position else {
            throw PickleError.truncated("pickle ends inside an opcode at byte \(position)")
        }
        defer { position += n }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<position + n])
    }

    private mutating func u8() throws -> UInt8 { try take(1)[0] }
    private mutating func le<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let b = try take(MemoryLayout<T>.size)
        return T(littleEndian: b.loadUnaligned(as: T.self))
    }

    private mutating func line() throws -> String {
        var end = position
        while end < bytes.count, bytes[end] != 0x0a { end += 1 }
        guard end < bytes.count else { throw PickleError.truncated("pickle ends inside a text line") }
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<end]), as: UTF8.self)
        position = end + 1
        return s
    }

    private mutating func text(_ n: Int) throws -> String {
        String(decoding: try take(n), as: UTF8.self)
    }

    // MARK: globals

    /// An allow-listed global, or an opaque value naming any other: never resolved.
    private func global(_ module: String, _ name: String) -> PickleValue {
        let full = "\(module).\(name)"
        guard let g = PickleGlobal(rawValue: full) else {
            return .opaque(full.count <= Self.maxOpaqueName ? full : String(full.prefix(Self.maxOpaqueName)) + "…")
        }
        return .global(g)
    }

    /// Applies a callable (REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ) to its arguments: an allow-listed
    /// one by building the value it would return, an opaque one by giving an opaque object of
    /// the same name (its arguments are dropped).
    private func apply(_ callable: PickleValue, _ a: [PickleValue]) throws -> PickleValue {
        var g: PickleGlobal
        var a = a
        switch callable {
        case .global(let global): g = global
        case .opaque(let name): return .opaque(name)
        default: throw PickleError.malformed("REDUCE on a non-callable value")
        }
        // (func, new_type, args, state): a tensor rebuilt into Tensor/Parameter. Unwrapped in a
        // loop (a hostile pickle may nest it deeply); an opaque function or type gives an opaque value.
        var nesting = 0
        while g == .rebuildFromTypeV2 {
            nesting += 1
            guard a.count >= 3, nesting <= Self.maxRebuildNesting else { throw PickleError.malformed("bad arguments to \(g.rawValue)") }
            if let name = a[0].opaqueName ?? a[1].opaqueName { return .opaque(name) }
            guard case .global(let f) = a[0], case .global(let t) = a[1], [.tensorType, .parameterType].contains(t) else {
                throw PickleError.malformed("bad arguments to \(g.rawValue)")
            }
            g = f
            a = a[2].tupleItems ?? []
        }
        switch g {
        case .orderedDict:
            let d = arena.dict()
            if let pairs = a.first?.tupleItems {
                for p in pairs { if let kv = p.tupleItems, kv.count == 2 { d.set(kv[0], kv[1]) } }
            }
            return .dict(d)
        case .rebuildTensorV2, .rebuildTensor:
            // A tensor on an opaque storage is as inert as the storage.
            if let name = a.first?.opaqueName { return .opaque(name) }
            guard a.count >= 4, case .storage(let s) = a[0], let off = a[1].intValue,
                  let size = a[2].tupleItems?.compactMap(\.intValue), let stride = a[3].tupleItems?.compactMap(\.intValue),
                  size.count == a[2].tupleItems?.count, stride.count == size.count else {
                throw PickleError.malformed("bad arguments to \(g.rawValue)")
            }
            return .tensor(TensorRef(storage: s, offset: off, size: size, stride: stride))
        case .rebuildParameter, .rebuildParameterWithState:
            if let name = a.first?.opaqueName { return .opaque(name) }
            guard let first = a.first, case .tensor = first else { throw PickleError.malformed("bad arguments to \(g.rawValue)") }
            return first
        default:
            throw PickleError.malformed("\(g.rawValue) called as a function")
        }
    }

    // MARK: the machine

    /// Runs until STOP and returns the pickled value. The caller frees it with
    /// `PickleValue.dismantle`; on an error, everything built so far is dismantled here.
    mutating func load() throws -> PickleValue {
        var stack: [PickleValue] = []
        var memo: [Int: PickleValue] = [:]
        do {
            let value = try run(&stack, &memo)
            // A pickle leaves exactly its value; anything else left could be a hostile deep graph.
            guard stack.isEmpty else { throw PickleError.malformed("\(stack.count) values left on the stack at STOP") }
            arena.release(keeping: [value])
            return value
        } catch {
            stack = []
            memo = [:]
            arena.release(keeping: [])
            throw error
        }
    }

    private mutating func run(_ stack: inout [PickleValue], _ memo: inout [Int: PickleValue]) throws -> PickleValue {
        var marks: [Int] = []

        func pop() throws -> PickleValue {
            guard let v = stack.popLast() else { throw PickleError.malformed("stack underflow") }
            return v
        }
        func popMark() throws -> [PickleValue] {
            guard let m = marks.popLast(), m <= stack.count else { throw PickleError.malformed("MARK missing") }
            let items = Array(stack[m...])
            stack.removeSubrange(m...)
            return items
        }
        func top() throws -> PickleValue {
            guard let v = stack.last else { throw PickleError.malformed("stack underflow") }
            return v
        }

        var opcodes = 0
        while true {
            let op = try u8()
            opcodes += 1
            guard opcodes <= opcodeLimit else {
                throw PickleError.tooLarge("the pickle runs more than \(opcodeLimit) opcodes")
            }
            switch op {
            case 0x80: _ = try u8()                                  // PROTO
            case 0x95: _ = try take(8)                               // FRAME
            case 0x2e:                                               // STOP
                let value = try pop()
                guard stack.isEmpty else {
                    stack.append(value)
                    throw PickleError.malformed("\(stack.count - 1) values left on the stack at STOP")
                }
                return value
            case 0x28: marks.append(stack.count)                     // MARK
            case 0x4e: stack.append(.none)                           // NONE
            case 0x88: stack.append(.bool(true))                     // NEWTRUE
            case 0x89: stack.append(.bool(false))                    // NEWFALSE
            case 0x4a: stack.append(.int(Int(try le(Int32.self))))   // BININT
            case 0x4b: stack.append(.int(Int(try u8())))             // BININT1
            case 0x4d: stack.append(.int(Int(try le(UInt16.self))))  // BININT2
            case 0x8a, 0x8b:                                         // LONG1, LONG4
                let n = op == 0x8a ? Int(try u8()) : Int(try le(UInt32.self))
                let b = try take(n)
                guard n <= 8 else { stack.append(.int(Int.max)); continue }   // e.g. legacy magic: not needed as a value
                var v: UInt64 = 0
                for i in 0..<n { v |= UInt64(b[i]) << (8 * UInt64(i)) }
                if n > 0, n < 8, b[n - 1] & 0x80 != 0 { v |= ~0 << (8 * UInt64(n)) }  // sign-extend
                stack.append(.int(Int(Int64(bitPattern: v))))
            case 0x47:                                               // BINFLOAT (big-endian)
                let b = try take(8)
                stack.append(.float(Double(bitPattern: UInt64(bigEndian: b.loadUnaligned(as: UInt64.self)))))
            case 0x49:                                               // INT (text)
                let s = try line()
                if s == "01" { stack.append(.bool(true)) } else if s == "00" { stack.append(.bool(false)) }
                else { guard let v = Int(s) else { throw PickleError.malformed("bad INT") }; stack.append(.int(v)) }
            case 0x4c:                                               // LONG (text)
                let s = try line()
                guard let v = Int(s.hasSuffix("L") ? String(s.dropLast()) : s) else { throw PickleError.malformed("bad LONG") }
                stack.append(.int(v))
            case 0x58: stack.append(.string(try text(Int(try le(UInt32.self)))))   // BINUNICODE
            case 0x8c: stack.append(.string(try text(Int(try u8()))))              // SHORT_BINUNICODE
            case 0x8d:                                                             // BINUNICODE8
                let n = try le(UInt64.self)
                guard n < UInt64(Int.max) else { throw PickleError.truncated("string longer than the file") }
                stack.append(.string(try text(Int(n))))
            case 0x55: stack.append(.string(try text(Int(try u8()))))              // SHORT_BINSTRING
            case 0x54: stack.append(.string(try text(Int(try le(Int32.self)))))    // BINSTRING
            case 0x42: stack.append(.bytes(Array(try take(Int(try le(UInt32.self))))))   // BINBYTES
            case 0x43: stack.append(.bytes(Array(try take(Int(try u8())))))              // SHORT_BINBYTES
            case 0x8e:                                                                   // BINBYTES8
                let n = try le(UInt64.self)
                guard n < UInt64(Int.max) else { throw PickleError.truncated("bytes longer than the file") }
                stack.append(.bytes(Array(try take(Int(n)))))
            case 0x7d: stack.append(.dict(arena.dict()))             // EMPTY_DICT
            case 0x5d: stack.append(.list(arena.list()))             // EMPTY_LIST
            case 0x29: stack.append(.tuple(arena.list([])))   // EMPTY_TUPLE
            case 0x8f: stack.append(.list(arena.list()))             // EMPTY_SET (kept as a list)
            case 0x85: stack.append(.tuple(arena.list([try pop()])))   // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); stack.append(.tuple(arena.list([a, b])))   // TUPLE2
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(.tuple(arena.list([a, b, c])))   // TUPLE3
            case 0x74: stack.append(.tuple(arena.list(try popMark())))   // TUPLE
            case 0x91: stack.append(.tuple(arena.list(try popMark())))   // FROZENSET
            case 0x6c: stack.append(.list(arena.list(try popMark())))     // LIST
            case 0x64:                                               // DICT
                let items = try popMark()
                guard items.count % 2 == 0 else { throw PickleError.malformed("odd DICT items") }
                let d = arena.dict()
                for i in stride(from: 0, to: items.count, by: 2) { d.set(items[i], items[i + 1]) }
                stack.append(.dict(d))
            case 0x61:                                               // APPEND (dropped on an opaque object)
                let v = try pop()
                if case .opaque = try top() { continue }
                guard case .list(let l) = try top() else { throw PickleError.malformed("APPEND to a non-list") }
                l.items.append(v)
            case 0x65, 0x90:                                         // APPENDS, ADDITEMS
                let items = try popMark()
                if case .opaque = try top() { continue }
                guard case .list(let l) = try top() else { throw PickleError.malformed("APPENDS to a non-list") }
                l.items.append(contentsOf: items)
            case 0x73:                                               // SETITEM
                let v = try pop(), k = try pop()
                if case .opaque = try top() { continue }
                guard case .dict(let d) = try top() else { throw PickleError.malformed("SETITEM on a non-dict") }
                d.set(k, v)
            case 0x75:                                               // SETITEMS
                let items = try popMark()
                guard items.count % 2 == 0 else { throw PickleError.malformed("bad SETITEMS") }
                if case .opaque = try top() { continue }
                guard case .dict(let d) = try top() else { throw PickleError.malformed("bad SETITEMS") }
                for i in stride(from: 0, to: items.count, by: 2) { d.set(items[i], items[i + 1]) }
            case 0x71: memo[Int(try u8())] = try top()               // BINPUT
            case 0x72: memo[Int(try le(UInt32.self))] = try top()    // LONG_BINPUT
            case 0x94: memo[memo.count] = try top()                  // MEMOIZE
            case 0x70:                                               // PUT (text)
                guard let i = Int(try line()) else { throw PickleError.malformed("bad PUT") }
                memo[i] = try top()
            case 0x68, 0x6a, 0x67:                                   // BINGET, LONG_BINGET, GET
                let i: Int
                if op == 0x68 { i = Int(try u8()) } else if op == 0x6a { i = Int(try le(UInt32.self)) }
                else { guard let v = Int(try line()) else { throw PickleError.malformed("bad GET") }; i = v }
                guard let v = memo[i] else { throw PickleError.malformed("memo key \(i) missing") }
                stack.append(v)
            case 0x30: _ = try pop()                                 // POP
            case 0x31: _ = try popMark()                             // POP_MARK
            case 0x32: stack.append(try top())                       // DUP
            case 0x63:                                               // GLOBAL
                let module = try line(), name = try line()
                stack.append(global(module, name))
            case 0x93:                                               // STACK_GLOBAL
                let name = try pop(), module = try pop()
                guard let m = module.stringValue, let n = name.stringValue else { throw PickleError.malformed("bad STACK_GLOBAL") }
                stack.append(global(m, n))
            case 0x52:                                               // REDUCE
                let args = try pop(), callable = try pop()
                stack.append(try apply(callable, args.tupleItems ?? []))
            case 0x81:                                               // NEWOBJ
                let args = try pop(), cls = try pop()
                stack.append(try apply(cls, args.tupleItems ?? []))
            case 0x92:                                               // NEWOBJ_EX (keyword arguments dropped)
                _ = try pop()
                let args = try pop(), cls = try pop()
                stack.append(try apply(cls, args.tupleItems ?? []))
            case 0x6f:                                               // OBJ
                let items = try popMark()
                guard let cls = items.first else { throw PickleError.malformed("OBJ without a class") }
                stack.append(try apply(cls, Array(items.dropFirst())))
            case 0x69:                                               // INST
                let module = try line(), name = try line()
                stack.append(try apply(global(module, name), try popMark()))
            case 0x62:                                               // BUILD: state for dicts/tensors is metadata; opaque objects drop it
                _ = try pop()
            case 0x51:                                               // BINPERSID
                stack.append(try persistentLoad(try pop()))
            case 0x50:                                               // PERSID (text)
                stack.append(try persistentLoad(.string(try line())))
            default:
                throw PickleError.malformed("unknown opcode 0x\(String(op, radix: 16)) at byte \(position - 1)")
            }
        }
    }
}
