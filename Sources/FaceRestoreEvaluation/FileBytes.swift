// Small model files read whole with POSIX calls: bounded before anything is allocated, and free of
// Foundation's readers (which keep a page alive for an empty file: LeakSanitizer found it through
// the `npz` fuzz target).

import Foundation

/// Why a file could not be read, in words.
struct FileBytesError: Error {
    let reason: String
}

/// The bytes of the regular file at `path`, which must hold 1 to `limit` bytes.
func readFileBytes(_ path: String, limit: Int) throws -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw FileBytesError(reason: errno == ENOENT ? "no such file" : "cannot open: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw FileBytesError(reason: "cannot read: \(String(cString: strerror(errno)))") }
    guard (st.st_mode & S_IFMT) == S_IFREG else { throw FileBytesError(reason: "not a regular file") }
    let size = Int(st.st_size)
    guard size > 0 else { throw FileBytesError(reason: "the file is empty") }
    guard size <= limit else { throw FileBytesError(reason: "is \(size) bytes, more than such a file can be (\(limit))") }
    var bytes = [UInt8](repeating: 0, count: size)
    var done = 0
    while done < size {
        let n = bytes.withUnsafeMutableBytes { b -> Int in
            guard let base = b.baseAddress else { return -1 }
            return read(fd, base + done, size - done)
        }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw FileBytesError(reason: n == 0 ? "the file shrank while it was read" : "cannot read: \(String(cString: strerror(errno)))") }
        done += n
    }
    return bytes
}
