// Atomic file output: write a temporary file beside the destination, flush it to disk, then
// rename it into place, so a reader (or a crash) never sees a half-written file. Temporary names
// carry a tag of the host and the process id, so that a later run can tell a killed process's
// leftovers from a file another live process (here or on another machine sharing the folder) is
// still writing.

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
    let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(temporaryFileHostTag)-\(getpid())-\(UUID().uuidString.prefix(8))")
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

/// Eight hex digits naming this host in temporary file names (FNV-1a of the host name).
public let temporaryFileHostTag = String(format: "%08x", UInt32(truncatingIfNeeded: fnv1a64(currentHostName())))

/// A temporary file of another host is taken as abandoned once it has not changed for this long:
/// a live writer renames its file right after the last write and the fsync.
let foreignTemporaryFileAge: TimeInterval = 3600

/// Removes the temporary files `writeFileAtomically` left in `folder` (not recursive) when the
/// process that made them is gone (killed mid-write); returns their names. Files of live
/// processes on this host are kept; files of another host (a folder shared by several machines)
/// are removed only when unchanged for an hour, since its process ids mean nothing here.
@discardableResult
public func removeStaleTemporaryFiles(in folder: String) -> [String] {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
    var removed: [String] = []
    for name in names where name.hasPrefix(".") {
        // ".NAME.tmp-HOST-PID-XXXXXXXX", or ".NAME.tmp-PID-XXXXXXXX" as written before host tags.
        guard let marker = name.range(of: ".tmp-", options: .backwards) else { continue }
        let rest = name[marker.upperBound...].split(separator: "-", omittingEmptySubsequences: false)
        guard rest.count == 2 || rest.count == 3, rest[rest.count - 1].count == 8,
              let pid = Int32(rest[rest.count - 2]), pid > 0 else { continue }
        let path = folder + "/" + name
        let stale: Bool
        if rest.count == 2 || rest[0] == temporaryFileHostTag {
            stale = !(kill(pid, 0) == 0 || errno == EPERM)
        } else {
            guard rest[0].count == 8, rest[0].allSatisfy(\.isHexDigit),
                  let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date else { continue }
            stale = Date().timeIntervalSince(modified) > foreignTemporaryFileAge
        }
        if stale, unlink(path) == 0 { removed.append(name) }
    }
    return removed
}
