// Atomic file output: write a temporary file beside the destination, flush it to disk, then
// rename it into place, so a reader (or a crash) never sees a half-written file.

import Foundation

/// Why an output file could not be written. One line, naming the file.
public struct FileWriteError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let reason: String
    public var description: String { "\(path): cannot write (\(reason))" }
}

/// Writes `data` to `path` atomically (temporary file + fsync + rename in the same directory).
public func writeFileAtomically(_ data: Data, to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let dir = url.deletingLastPathComponent()
    let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UUID().uuidString.prefix(8))")
    func fail(_ what: String) -> FileWriteError { FileWriteError(path: path, reason: "\(what): \(String(cString: strerror(errno)))") }
    let fd = open(tmp.path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
    guard fd >= 0 else { throw fail("cannot create a temporary file in \(dir.path)") }
    var ok = false
    defer {
        if !ok { unlink(tmp.path) }
    }
    let written = data.withUnsafeBytes { raw -> Bool in
        var offset = 0
        while offset < raw.count {
            let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
            if n < 0 { if errno == EINTR { continue }; return false }
            offset += n
        }
        return true
    }
    guard written else { let e = fail("write failed"); close(fd); throw e }
    guard fsync(fd) == 0 else { let e = fail("fsync failed"); close(fd); throw e }
    close(fd)
    guard rename(tmp.path, path) == 0 else { throw fail("cannot rename into place") }
    ok = true
}

/// Removes the temporary files `writeFileAtomically` left in `folder` (not recursive) when the
/// process that made them is gone (killed mid-write); returns their names. Files of live
/// processes are kept.
@discardableResult
public func removeStaleTemporaryFiles(in folder: String) -> [String] {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
    var removed: [String] = []
    for name in names where name.hasPrefix(".") {
        // ".NAME.tmp-PID-XXXXXXXX"
        guard let marker = name.range(of: ".tmp-", options: .backwards) else { continue }
        let rest = name[marker.upperBound...].split(separator: "-")
        guard rest.count == 2, rest[1].count == 8, let pid = Int32(rest[0]), pid > 0 else { continue }
        let alive = kill(pid, 0) == 0 || errno == EPERM
        if !alive, unlink(folder + "/" + name) == 0 { removed.append(name) }
    }
    return removed
}
