// Sizes read from a file are untrusted: every count, product, sum and conversion goes through
// these overflow-checked helpers, which throw the reader's one-line error naming the file and the
// field instead of trapping. A size is also never larger than the file can hold, so no allocation
// follows from a number alone.

/// Overflow-checked arithmetic on sizes from the file at `path`.
struct CheckedSize {
    let path: String

    func corrupt(_ what: String, _ detail: String) -> WeightsError {
        WeightsError.corrupt(path: path, detail: "\(what): \(detail)")
    }

    /// The product of `factors`, each at least 0.
    func product(_ factors: [Int], _ what: @autoclosure () -> String) throws -> Int {
        var n = 1
        for f in factors {
            guard f >= 0 else { throw corrupt(what(), "negative size \(f) in \(factors)") }
            let (p, overflow) = n.multipliedReportingOverflow(by: f)
            guard !overflow else { throw corrupt(what(), "the sizes \(factors) overflow") }
            n = p
        }
        return n
    }

    func multiply(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int {
        try product([a, b], what())
    }

    func add(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int {
        let (s, overflow) = a.addingReportingOverflow(b)
        guard !overflow else { throw corrupt(what(), "\(a) + \(b) overflows") }
        return s
    }

    /// `bytes` must fit in the `available` bytes the file has left.
    func fits(_ bytes: Int, in available: Int, _ what: @autoclosure () -> String) throws {
        guard bytes >= 0, bytes <= available else {
            throw WeightsError.truncated(path: path, detail: "\(what()) needs \(bytes) bytes, the file has \(max(available, 0)) left")
        }
    }
}

extension BinaryFloatingPoint {
    /// The value as an Int when it is finite and in range (a size or index read as a float).
    var exactInt: Int? {
        guard isFinite, self > -9.0e18, self < 9.0e18 else { return nil }
        return Int(self)
    }
}
