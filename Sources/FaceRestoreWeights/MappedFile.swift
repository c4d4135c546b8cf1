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
}
