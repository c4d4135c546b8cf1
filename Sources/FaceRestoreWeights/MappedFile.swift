// Read-only memory-mapped files: weights are paged in on use and never copied when contiguous.

import Foundation

final class MappedFile: @unchecked Sendable {
    // @unchecked: the mapping is read-only (PROT_READ) and unmapped only in deinit.
    let path: String
    let base: UnsafeRawPointer
    let size: Int

    init(path: String) throws {
        self.path = path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw WeightsError.fileNotFound(path: path) }
        if isDir.boolValue { throw WeightsError.unreadable(path: path, reason: "is a directory") }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw WeightsError.unreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw WeightsError.unreadable(path: path, reason: String(cString: strerror(errno))) }
        size = Int(st.st_size)
        guard size > 0 else { throw WeightsError.empty(path: path) }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw WeightsError.unreadable(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(p)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), size) }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    /// Drops the whole pages inside `count` bytes at `offset` from this process's memory; reading
    /// them again re-faults them from the file.
    func releasePages(offset: Int, count: Int) {
        guard offset >= 0, count > 0, count <= size - offset else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let from = Int(bitPattern: base) + offset
        let start = (from + page - 1) / page * page
        let end = (from + count) / page * page
        guard end > start, let p = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(p, end - start, MADV_DONTNEED)
    }
}
