// A layer's weights in the layout its kernel reads, either made at load or made on demand.
//
// Winograd layouts hold a 6×6 tile per 3×3 kernel: 4× the plain weights. Made at load, they are
// the largest part of a model's memory after loading (GFPGAN v1.4: about 330 MB against 350 MB of
// checkpoint), and a one-photo run calls each layer once, so every one of those pages is a fresh
// page fault that the call could have avoided. On-demand weights are converted into temporary
// memory for a layer's first call, which the allocator hands to the next layer's, and kept from
// the second call on: a one-photo run holds one layer's transformed weights at a time, and a batch
// pays one extra conversion per layer, once. The conversion is deterministic, so both give the
// same bits.

import Synchronization

final class KernelWeights: Sendable {
    /// Fills `bytes` bytes at the pointer with the converted weights.
    typealias Convert = @Sendable (UnsafeMutableRawPointer, ComputeContext) throws -> Void

    let bytes: Int
    private let convert: Convert?
    private let state: Mutex<State>

    private struct State: @unchecked Sendable {
        // @unchecked: TensorStorage is immutable once filled, which happens before it is stored.
        var calls = 0
        var kept: TensorStorage?
    }

    /// Weights already converted (made at load).
    init(_ storage: TensorStorage) {
        bytes = storage.bytes
        convert = nil
        state = Mutex(State(calls: 0, kept: storage))
    }

    /// Weights converted by `convert` when first used, kept from the second use on.
    init(bytes: Int, onDemand convert: @escaping Convert) {
        self.bytes = bytes
        self.convert = convert
        state = Mutex(State())
    }

    /// Whether the converted weights are held now (for tests).
    var isResident: Bool { state.withLock { $0.kept != nil } }

    /// Runs `body` with the converted weights.
    func use<R>(_ context: ComputeContext, _ body: (UnsafeRawPointer) throws -> R) throws -> R {
        let (kept, keep) = state.withLock { s -> (TensorStorage?, Bool) in
            if let k = s.kept { return (k, false) }
            s.calls += 1
            return (nil, s.calls >= 2)
        }
        if let kept { return try body(kept.pointer) }
        guard let convert else { fatalError("KernelWeights without storage or conversion") }
        let made = TensorStorage(bytes: bytes)
        try convert(made.pointer, context)
        if keep { state.withLock { if $0.kept == nil { $0.kept = made } } }
        return try body(made.pointer)
    }
}
