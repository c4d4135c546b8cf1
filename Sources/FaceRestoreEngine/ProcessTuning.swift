// Process-wide allocator tuning for command-line tools. Not called by the libraries: an app
// decides this for its own process.
//
// Why: a GFPGAN forward pass allocates and frees ~2 GB of activations in buffers of 1–64 MB.
// glibc serves buffers above its mmap threshold with fresh mmap()s and unmaps them on free, so
// every call faults in every page again: measured on GFPGAN v1.4 (2 threads), 4–4.5 s of system
// time per process and a forward median of 2.05–2.1 s, against 1.2–1.7 s and 1.49–1.66 s with
// the thresholds raised (peak RSS +200 MB).

import CDNNL

public enum ProcessTuning {
    /// Keeps freed large buffers in the heap for reuse (glibc's mmap and trim thresholds at 1 GiB).
    public static func keepFreedMemoryForReuse() {
        #if canImport(Glibc)
        _ = mallopt(-3 /* M_MMAP_THRESHOLD */, 1 << 30)
        _ = mallopt(-1 /* M_TRIM_THRESHOLD */, 1 << 30)
        #endif
    }

    /// Hands the heap's free pages back to the system (glibc `malloc_trim`): between the passes of
    /// a streamed photo, whose band buffers would otherwise stay resident under the kept heap.
    public static func returnFreedMemory() {
        #if canImport(Glibc)
        _ = glibcMallocTrim(0)
        #endif
    }
}

#if canImport(Glibc)
/// glibc's `int malloc_trim(size_t pad)`, which Swift's Glibc module does not import.
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
#endif
