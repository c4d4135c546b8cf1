// Per-stage timings returned with every restoration (conventions: "timings are part of the result").

import Foundation

/// Seconds spent in each pipeline stage of one restoration.
public struct RestoreTimings: Sendable, Equatable {
    public var decode: Double = 0
    public var detect: Double = 0
    public var align: Double = 0
    public var network: Double = 0
    /// Background upsampling (Real-ESRGAN, or the LANCZOS4 resize).
    public var background: Double = 0
    /// Real-ESRGAN on the restored faces (`--face-upsample`).
    public var faceUpsampling: Double = 0
    /// The paste masks: ParseNet on each restored face and the mask's blurs.
    public var masks: Double = 0
    public var paste: Double = 0
    public var encode: Double = 0

    public init() {}

    public var total: Double { decode + detect + align + network + background + faceUpsampling + masks + paste + encode }

    /// Adds another restoration's timings (for batch summaries).
    public static func + (a: RestoreTimings, b: RestoreTimings) -> RestoreTimings {
        var r = RestoreTimings()
        r.decode = a.decode + b.decode
        r.detect = a.detect + b.detect
        r.align = a.align + b.align
        r.network = a.network + b.network
        r.background = a.background + b.background
        r.faceUpsampling = a.faceUpsampling + b.faceUpsampling
        r.masks = a.masks + b.masks
        r.paste = a.paste + b.paste
        r.encode = a.encode + b.encode
        return r
    }

    /// One line, e.g. "decode 2.1 ms · detect 31.0 ms · … · total 1.91 s".
    public var summary: String {
        func f(_ s: Double) -> String { s >= 1 ? String(format: "%.2f s", s) : String(format: "%.1f ms", s * 1000) }
        let parts = [("decode", decode), ("detect", detect), ("align", align), ("network", network), ("background", background)]
            + (faceUpsampling > 0 ? [("face upsampling", faceUpsampling)] : []) + [("masks", masks), ("paste", paste), ("encode", encode)]
        return (parts.map { "\($0.0) \(f($0.1))" } + ["total \(f(total))"]).joined(separator: " · ")
    }

    /// Runs `body`, adding its wall-clock time to the stage at `stage`.
    public mutating func measure<T>(_ stage: WritableKeyPath<RestoreTimings, Double>, _ body: () throws -> T) rethrows -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { self[keyPath: stage] += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        return try body()
    }
}
