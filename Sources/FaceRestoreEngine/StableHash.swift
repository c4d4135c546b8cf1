// A hash that is the same in every process, on every machine and in every release: FNV-1a 64
// (Fowler–Noll–Vo, the IETF draft's offset basis and prime). For decisions that several processes
// must agree on (which worker takes an input, whose temporary file this is); Swift's `Hasher` is
// seeded per process and must never be used for them.

import Foundation

/// FNV-1a 64 of `bytes`.
public func fnv1a64<S: Sequence>(_ bytes: S) -> UInt64 where S.Element == UInt8 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes {
        h ^= UInt64(b)
        h = h &* 0x0000_0100_0000_01b3
    }
    return h
}

/// FNV-1a 64 of the UTF-8 bytes of `text`.
public func fnv1a64(_ text: String) -> UInt64 { fnv1a64(text.utf8) }

/// This machine's host name (`gethostname`), or "localhost" when it has none.
public func currentHostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
    let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return name.isEmpty ? "localhost" : name
}
