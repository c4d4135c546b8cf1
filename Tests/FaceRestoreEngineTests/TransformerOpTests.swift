// Golden tests of the ops CodeFormer, RestoreFormer and RestoreFormer++ need, against torch 1.13
// (fixture from scripts/make_transformer_op_fixtures.py). Inputs and parameters come from the
// integer hash both sides compute (`hashed`); large outputs are stored subsampled.
// Tolerance: max |ours − torch| ≤ tol × max(1, max |torch|), tol 1e-5 except where noted.
// FACERESTORE_PARITY_REPORT=1 prints each case's figures; FACERESTORE_OP_TIMINGS=1 runs the
// timing test (build in release for meaningful numbers).

@testable import FaceRestoreEngine
import CWinograd
import FaceRestoreWeights
import Foundation
import Testing

private let transformerFixtures: StateDict = {
    let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("transformer_ops.safetensors")
    do { return try SafeTensors.read(path: url.path) } catch { fatalError("transformer_ops.safetensors: \(error); run scripts/make_transformer_op_fixtures.py") }
}()

private func stored(_ name: String) throws -> WeightTensor {
    try #require(transformerFixtures[name], "fixture \(name) missing; run scripts/make_transformer_op_fixtures.py")
}

/// The fixture script's `hashed`: murmur3 fmix32 of `i·0x9E3779B9 + seed·0x85EBCA77 + 1`, top 24
/// bits as u ∈ [0, 1), `(2u − 1)·scale + offset` in float32.
func hashedValues(_ count: Int, seed: UInt32, scale: Float = 1, offset: Float = 0) -> [Float] {
    (0..<count).map { i in
        var h = UInt32(truncatingIfNeeded: i) &* 0x9E37_79B9 &+ (seed &* 0x85EB_CA77 &+ 1)
        h ^= h >> 16
        h = h &* 0x85EB_CA6B
        h ^= h >> 13
        h = h &* 0xC2B2_AE35
        h ^= h >> 16
        let u = Float(h >> 8) * Float(1.0 / 16_777_216.0)
        return (u * 2 - 1) * scale + offset
    }
}

func hashed(_ shape: [Int], seed: UInt32, scale: Float = 1, offset: Float = 0) -> Tensor {
    Tensor(shape: shape, values: hashedValues(shape.reduce(1, *), seed: seed, scale: scale, offset: offset))
}

/// Compares `out` with the stored (possibly subsampled) torch output `<name>.y`.
@discardableResult
private func expectParity(_ out: Tensor, _ name: String, _ ctx: ComputeContext, tol: Float = 1e-5,
                          sourceLocation: SourceLocation = #_sourceLocation) throws -> Float {
    let shape = try stored("\(name).shape").integers()!.map(Int.init)
    let stride = Int(try stored("\(name).s").integers()![0])
    #expect(out.shape == shape, "\(name): shape \(out.shape) vs torch \(shape)", sourceLocation: sourceLocation)
    guard out.shape == shape else { return .infinity }
    let all = try ctx.array(out)
    let ours = Swift.stride(from: 0, to: all.count, by: stride).map { all[$0] }
    let expected = try stored("\(name).y").floats()
    #expect(ours.count == expected.count, "\(name): \(ours.count) samples vs \(expected.count)", sourceLocation: sourceLocation)
    let d = deviation(ours, expected)
    if ProcessInfo.processInfo.environment["FACERESTORE_PARITY_REPORT"] != nil {
        print("parity \(name) max_abs \(d.maxAbs) scale \(d.scale) nmse \(d.nmse)")
    }
    #expect(d.maxAbs <= tol * d.scale, "\(name): max abs \(d.maxAbs) at scale \(d.scale)", sourceLocation: sourceLocation)
    return d.maxAbs
}

/// `values` of a row-major `[rows, cols]` matrix, transposed.
private func transposed(_ values: [Float], rows: Int, cols: Int) -> [Float] {
    (0..<cols * rows).map { i in values[(i % rows) * cols + i / rows] }
}

@Suite struct TransformerOpTests {
    let ctx = ComputeContext(threads: 2)

    // MARK: normalization and activations

    @Test(arguments: [("gn16", [1, 512, 16, 16], UInt32(1)), ("gn128", [1, 64, 128, 128], UInt32(4))])
    func groupNorm(_ name: String, _ shape: [Int], _ seed: UInt32) throws {
        let x = hashed(shape, seed: seed, scale: 2, offset: 0.5)
        let gamma = hashedValues(shape[1], seed: seed + 1, scale: 0.5, offset: 1)
        let beta = hashedValues(shape[1], seed: seed + 2, scale: 0.5)
        // Every layout the convolutions hand over: plain, NHWC, nChw16c.
        for input in [x, try ctx.channelsLast(x), try ctx.reorderedBlocked16(x)] {
            let y = try ctx.groupNorm(input, groups: 32, eps: 1e-6, gamma: gamma, beta: beta)
            #expect(y.layout == input.layout)
            try expectParity(y, name, ctx)
            try expectParity(try ctx.groupNorm(input, groups: 32, eps: 1e-6, gamma: gamma, beta: beta, swish: true), name + "_swish", ctx)
        }
    }

    @Test func groupNormWithoutAffine() throws {
        let x = hashed([2, 96, 5, 7], seed: 40, scale: 3, offset: -1)
        try expectParity(try ctx.groupNorm(x, groups: 32, eps: 1e-6, gamma: nil, beta: nil), "gn_plain", ctx)
        try expectParity(try ctx.groupNorm(try ctx.channelsLast(x), groups: 32, eps: 1e-6, gamma: nil, beta: nil), "gn_plain", ctx)
    }

    /// The NHWC result equals the plain one where the channel count is no multiple of 16 (the
    /// kernels' masked lanes), with both passes split across the two threads in mid-plane (plain)
    /// and mid-sample (NHWC).
    @Test func groupNormChannelsLastMatchesPlain() throws {
        let x = hashed([3, 45, 37, 39], seed: 41, scale: 3, offset: 0.5)
        let gamma = hashedValues(45, seed: 42, scale: 0.5, offset: 1), beta = hashedValues(45, seed: 43, scale: 0.5)
        for swish in [false, true] {
            let plain = try ctx.array(try ctx.groupNorm(x, groups: 9, eps: 1e-6, gamma: gamma, beta: beta, swish: swish))
            let nhwc = try ctx.groupNorm(try ctx.channelsLast(x), groups: 9, eps: 1e-6, gamma: gamma, beta: beta, swish: swish)
            #expect(nhwc.layout == .channelsLast)
            let d = deviation(try ctx.array(nhwc), plain)
            #expect(d.maxAbs <= 1e-6 * d.scale, "swish \(swish): max abs \(d.maxAbs)")
        }
    }

    /// The swish fused into group norm's pass (AVX-512) against torch's float32 `x / (1 + exp(−x))`
    /// (exp correctly rounded to float, the rest in double) over ±[1e-30, 120] (every 4099th
    /// float) and the special values: at most 3e-7 relative, and exactly ±0, ±inf or NaN where
    /// torch's is (exp(−x) overflowing to inf below −88.72).
    @Test(.enabled(if: frw_available() != 0)) func fusedSwishKernel() {
        var xs: [Float] = [0, -0, .infinity, -.infinity, .nan, 87, -87, 88.7, -88.7, 89, -89, 100, -100, 1e30, -1e30]
        for sign in [Float(1), -1] {
            var f: Float = 1e-30
            while f < 120 { xs.append(sign * f); f = Float(bitPattern: f.bitPattern &+ 4099) }
        }
        var ys = [Float](repeating: 0, count: xs.count)
        var one: Float = 1, zero: Float = 0
        frn_scale_shift(xs, &ys, xs.count, 1, &one, &zero, 1)
        var worst = 0.0
        for (x, y) in zip(xs, ys) {
            let torch = Double(x) / (1 + Double(Float(Foundation.exp(-Double(x)))))
            if torch == 0 || !torch.isFinite {
                #expect(y == Float(torch) || (y.isNaN && torch.isNaN), "swish(\(x)) = \(y), torch \(torch)")
                continue
            }
            worst = max(worst, abs(Double(y) - torch) / abs(torch))
        }
        #expect(worst <= 3e-7, "max relative error \(worst)")
    }

    @Test func layerNorm() throws {
        let x = hashed([256, 1, 512], seed: 7, scale: 3, offset: 1)
        let y = try ctx.layerNorm(x, eps: 1e-5, gamma: hashedValues(512, seed: 8, scale: 0.5, offset: 1),
                                  beta: hashedValues(512, seed: 9, scale: 0.5))
        try expectParity(y, "ln", ctx)
    }

    @Test func activations() throws {
        let x = hashed([4096], seed: 10, scale: 8)
        try expectParity(try ctx.sigmoid(x), "sigmoid", ctx)
        try expectParity(try ctx.swish(x), "swish", ctx)
        try expectParity(try ctx.gelu(x), "gelu", ctx)
    }

    @Test func adaIN() throws {
        let content = hashed([1, 256, 16, 16], seed: 34, scale: 1, offset: 0.3)
        let style = hashed([1, 256, 16, 16], seed: 35, scale: 2, offset: -0.5)
        try expectParity(try ctx.adaptiveInstanceNorm(content, style: style), "adain", ctx)
    }

    // MARK: matmul and attention

    @Test func matmul() throws {
        let a = hashedValues(3 * 40 * 72, seed: 11), b = hashedValues(3 * 72 * 56, seed: 12)
        try expectParity(try ctx.matmul(Tensor(shape: [3, 40, 72], values: a), Tensor(shape: [3, 72, 56], values: b)), "mm", ctx)
        // The same product from transposed storage of each operand.
        let at = (0..<3).flatMap { transposed(Array(a[$0 * 2880..<($0 + 1) * 2880]), rows: 40, cols: 72) }
        let bt = (0..<3).flatMap { transposed(Array(b[$0 * 4032..<($0 + 1) * 4032]), rows: 72, cols: 56) }
        try expectParity(try ctx.matmul(Tensor(shape: [3, 72, 40], values: at), Tensor(shape: [3, 56, 72], values: bt),
                                        transposeA: true, transposeB: true), "mm", ctx)
        let y = try ctx.matmul(hashed([40, 72], seed: 13), hashed([72, 56], seed: 14), bias: hashedValues(56, seed: 15))
        try expectParity(y, "mm_bias", ctx)
    }

    @Test func singleHeadAttention() throws {
        let (q, k, v) = (hashed([1, 512, 16, 16], seed: 16, scale: 2), hashed([1, 512, 16, 16], seed: 17, scale: 2),
                         hashed([1, 512, 16, 16], seed: 18, scale: 2))
        try expectParity(try ctx.spatialAttention(q: q, k: k, v: v), "attn1", ctx)
        // Blocked inputs (what 1×1 convs may return) give the same result.
        try expectParity(try ctx.spatialAttention(q: try ctx.reorderedBlocked16(q), k: try ctx.channelsLast(k),
                                                  v: try ctx.reorderedBlocked16(v)), "attn1", ctx)
    }

    @Test(arguments: [("attn8", [1, 512, 16, 16], UInt32(19), 8), ("attn4", [1, 256, 32, 32], UInt32(22), 4)])
    func multiHeadAttention(_ name: String, _ shape: [Int], _ seed: UInt32, _ heads: Int) throws {
        let (q, k, v) = (hashed(shape, seed: seed, scale: 2), hashed(shape, seed: seed + 1, scale: 2), hashed(shape, seed: seed + 2, scale: 2))
        try expectParity(try ctx.spatialAttention(q: q, k: k, v: v, heads: heads), name, ctx)
    }

    func codeFormerAttention() throws -> MultiheadAttention {
        try MultiheadAttention(embedDim: 512, heads: 8, inProjWeight: hashed([1536, 512], seed: 25, scale: 0.0625),
                               inProjBias: hashedValues(1536, seed: 26, scale: 0.1),
                               outProjWeight: hashed([512, 512], seed: 27, scale: 0.0625),
                               outProjBias: hashedValues(512, seed: 28, scale: 0.1), context: ctx)
    }

    @Test func multiheadAttentionModule() throws {
        let mha = try codeFormerAttention()
        let y = hashed([256, 1, 512], seed: 29)
        let qk = try ctx.add(y, hashed([256, 1, 512], seed: 30, scale: 0.5))
        try expectParity(try mha(query: qk, key: qk, value: y, ctx), "mha", ctx)
    }

    // MARK: codebook

    @Test func nearestCodeword() throws {
        let book = try Codebook(embedding: hashed([1024, 256], seed: 32), context: ctx)
        let zValues = hashedValues(256 * 256, seed: 31)
        let match = try book.nearest(Tensor(shape: [256, 256], values: zValues), ctx)
        let idx = try stored("codebook.idx").integers()!.map(Int.init)
        let gap = try stored("codebook.gap").floats(), dmin = try stored("codebook.y").floats()
        // Distances are ~170 in magnitude: float32 rounding of the sum is ~1e-5 of it.
        let tol: Float = 1e-3
        for i in 0..<idx.count where gap[i] >= tol {
            #expect(match.indices[i] == idx[i], "token \(i): index \(match.indices[i]) vs torch \(idx[i]) (gap \(gap[i]))")
        }
        let dist = deviation(match.distances, dmin)
        #expect(dist.maxAbs <= 1e-5 * dist.scale, "distances: max abs \(dist.maxAbs) at scale \(dist.scale)")
        #expect(zip(match.gaps, gap).allSatisfy { abs($0 - $1) <= tol })
        if ProcessInfo.processInfo.environment["FACERESTORE_PARITY_REPORT"] != nil {
            print("parity codebook indices \(zip(match.indices, idx).filter { $0 != $1 }.count) differ, min gap \(gap.min() ?? 0), distance max_abs \(dist.maxAbs) scale \(dist.scale)")
        }
        // The NCHW feature map form (tokens in permute(0, 2, 3, 1) order) picks the same codes.
        let map = Tensor(shape: [1, 256, 16, 16], values: transposed(zValues, rows: 256, cols: 256))
        #expect(try book.nearest(map, ctx).indices == match.indices)
        // Row gather.
        let rows = try ctx.array(try book.rows([3, 0, 1023], ctx))
        let e = hashedValues(1024 * 256, seed: 32)
        #expect(rows == Array(e[768..<1024]) + Array(e[0..<256]) + Array(e[1023 * 256..<1024 * 256]))
    }

    @Test func firstIndexOnTies() throws {
        // Two equal nearest codewords (rows 1 and 2) and two equal maxima: the first wins.
        let book = try Codebook(embedding: Tensor(shape: [4, 2], values: [5, 5, 1, 0, 1, 0, -3, 2]), context: ctx)
        let match = try book.nearest(Tensor(shape: [1, 2], values: [1, 0]), ctx)
        #expect(match.indices == [1] && match.gaps == [0])
        let top = try ctx.argmax(Tensor(shape: [2, 4], values: [0, 7, 7, 1, -1, -2, -1, -5]))
        #expect(top.indices == [1, 0] && top.gaps == [0, 0])
    }

    @Test func top1() throws {
        let (indices, gaps) = try ctx.argmax(hashed([1, 256, 1024], seed: 33, scale: 4))
        let idx = try stored("top1.idx").integers()!.map(Int.init)
        let gap = try stored("top1.gap").floats()
        #expect(zip(gaps, gap).allSatisfy { abs($0 - $1) <= 1e-6 })
        // Identical inputs: torch's softmax could only merge logits closer than its rounding.
        for i in 0..<idx.count where gap[i] >= 1e-4 {
            #expect(indices[i] == idx[i], "token \(i): \(indices[i]) vs torch \(idx[i]) (gap \(gap[i]))")
        }
        if ProcessInfo.processInfo.environment["FACERESTORE_PARITY_REPORT"] != nil {
            print("parity top1 indices \(zip(indices, idx).filter { $0 != $1 }.count) differ, min gap \(gap.min() ?? 0)")
        }
    }

    // MARK: asymmetric-pad downsample

    @Test func paddedStrideTwoConv() throws {
        // F.pad(x, (0, 1, 0, 1)) + conv 3×3 stride 2 padding 0 is one Conv2d with asymmetric padding.
        let conv = try Conv2d(weight: hashed([64, 64, 3, 3], seed: 37, scale: 1 / 24), bias: hashedValues(64, seed: 38, scale: 0.1),
                              stride: 2, padding: Padding2D(top: 0, left: 0, bottom: 1, right: 1), context: ctx)
        let x = hashed([1, 64, 32, 32], seed: 36)
        try expectParity(try conv(x, ctx), "down", ctx)
        try expectParity(try conv(try ctx.channelsLast(x), ctx), "down", ctx)
    }

    // MARK: bad shapes

    @Test func badShapesThrowOneLine() throws {
        let x = hashed([1, 48, 4, 4], seed: 1)
        let mha = try codeFormerAttention()
        let calls: [() throws -> Any] = [
            { try ctx.groupNorm(x, groups: 32, eps: 1e-6, gamma: nil, beta: nil) },
            { try ctx.groupNorm(x, groups: 16, eps: 1e-6, gamma: [1, 2], beta: nil) },
            { try ctx.layerNorm(x, eps: 1e-5, gamma: [1], beta: nil) },
            { try ctx.matmul(hashed([3, 4], seed: 1), hashed([5, 6], seed: 2)) },
            { try ctx.matmul(hashed([3, 4], seed: 1), hashed([4, 6], seed: 2), bias: [1]) },
            { try ctx.matmul(hashed([3, 4], seed: 1), hashed([2, 4, 6], seed: 2)) },
            { try ctx.spatialAttention(q: x, k: x, v: x, heads: 5) },
            { try ctx.spatialAttention(q: x, k: hashed([1, 32, 4, 4], seed: 2), v: x) },
            { try mha(query: hashed([4, 1, 256], seed: 1), key: hashed([4, 1, 256], seed: 1), value: hashed([4, 1, 256], seed: 1), ctx) },
            { try MultiheadAttention(embedDim: 512, heads: 7, inProjWeight: hashed([1536, 512], seed: 1), inProjBias: nil,
                                     outProjWeight: hashed([512, 512], seed: 1), outProjBias: nil, context: ctx) },
            { try Codebook(embedding: hashed([8, 4], seed: 1), context: ctx).nearest(hashed([2, 5], seed: 2), ctx) },
            { try Codebook(embedding: hashed([8, 4], seed: 1), context: ctx).rows([8], ctx) },
            { try ctx.gatherRows(hashed([8, 4], seed: 1), indices: [-1]) },
            { try ctx.adaptiveInstanceNorm(x, style: hashed([1, 32, 4, 4], seed: 2)) },
            { try ctx.adaptiveInstanceNorm(hashed([1, 4, 1, 1], seed: 1), style: hashed([1, 4, 1, 1], seed: 2)) },
        ]
        for (i, call) in calls.enumerated() {
            do {
                _ = try call()
                Issue.record("call \(i) did not throw")
            } catch let error as EngineError {
                #expect(!error.description.contains("\n"), "call \(i): \(error)")
            } catch {
                Issue.record("call \(i) threw \(error), not an EngineError")
            }
        }
        #expect(throws: EngineError.self) { try ctx.argmax(Tensor(shape: [1, 3], values: [0, .nan, 1])) }
    }
}

extension ComputeContext {
    /// `t` in nChw16c, as a convolution may return it.
    func reorderedBlocked16(_ t: Tensor) throws -> Tensor {
        let out = try reordered(t, to: .channelBlocked16(t.shape))
        #expect(out.layout == .opaque)
        return out
    }
}

/// Median wall time of each op at the sizes the restorers use (FACERESTORE_OP_TIMINGS=1; build
/// in release: `swift build -c release --build-tests` then `swift test -c release --skip-build`).
@Suite struct TransformerOpTimings {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["FACERESTORE_OP_TIMINGS"] != nil))
    func timings() throws {
        let ctx = ComputeContext()
        func time(_ label: String, runs: Int = 7, _ body: () throws -> Void) rethrows {
            try body()
            var samples: [Double] = []
            for _ in 0..<runs {
                let start = DispatchTime.now().uptimeNanoseconds
                try body()
                samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            }
            samples.sort()
            print("timing \(label): median \(String(format: "%.3f", samples[runs / 2])) ms (min \(String(format: "%.3f", samples[0])), \(ctx.threads) threads)")
        }
        for shape in [[1, 512, 16, 16], [1, 64, 128, 128], [1, 128, 256, 256], [1, 64, 512, 512]] {
            let x = hashed(shape, seed: 1)
            let blocked = try ctx.reorderedBlocked16(x)
            let gamma = hashedValues(shape[1], seed: 2), beta = hashedValues(shape[1], seed: 3)
            try time("groupNorm \(shape) plain") { _ = try ctx.groupNorm(x, groups: 32, eps: 1e-6, gamma: gamma, beta: beta) }
            try time("groupNorm+swish \(shape) plain") { _ = try ctx.groupNorm(x, groups: 32, eps: 1e-6, gamma: gamma, beta: beta, swish: true) }
            try time("groupNorm \(shape) nChw16c") { _ = try ctx.groupNorm(blocked, groups: 32, eps: 1e-6, gamma: gamma, beta: beta) }
            try time("groupNorm+swish \(shape) nChw16c") { _ = try ctx.groupNorm(blocked, groups: 32, eps: 1e-6, gamma: gamma, beta: beta, swish: true) }
            try time("swish \(shape) nChw16c") { _ = try ctx.swish(blocked) }
        }
        let tokens = hashed([256, 1, 512], seed: 4)
        try time("layerNorm [256, 1, 512]") { _ = try ctx.layerNorm(tokens, eps: 1e-5, gamma: hashedValues(512, seed: 5), beta: nil) }
        let hidden = hashed([256, 1024], seed: 6)
        try time("gelu [256, 1024]") { _ = try ctx.gelu(hidden) }
        let a = hashed([256, 512], seed: 7), b = hashed([512, 1024], seed: 8)
        try time("matmul [256, 512]·[512, 1024]") { _ = try ctx.matmul(a, b) }
        for (shape, heads) in [([1, 512, 16, 16], 1), ([1, 512, 16, 16], 8), ([1, 256, 32, 32], 4), ([1, 512, 32, 32], 4)] {
            let (q, k, v) = (hashed(shape, seed: 9), hashed(shape, seed: 10), hashed(shape, seed: 11))
            try time("spatialAttention \(shape) \(heads) heads") { _ = try ctx.spatialAttention(q: q, k: k, v: v, heads: heads) }
        }
        let mha = try MultiheadAttention(embedDim: 512, heads: 8, inProjWeight: hashed([1536, 512], seed: 12, scale: 0.0625),
                                         inProjBias: hashedValues(1536, seed: 13), outProjWeight: hashed([512, 512], seed: 14, scale: 0.0625),
                                         outProjBias: nil, context: ctx)
        try time("MultiheadAttention L=256 E=512 8 heads") { _ = try mha(query: tokens, key: tokens, value: tokens, ctx) }
        let book = try Codebook(embedding: hashed([1024, 256], seed: 15), context: ctx)
        let z = hashed([1, 256, 16, 16], seed: 16)
        try time("Codebook.nearest K=1024 D=256 N=256 (NCHW)") { _ = try book.nearest(z, ctx) }
        let match = try book.nearest(z, ctx)
        try time("Codebook.rows N=256") { _ = try book.rows(match.indices, ctx) }
        let logits = hashed([1, 256, 1024], seed: 17)
        try time("argmax [1, 256, 1024]") { _ = try ctx.argmax(logits) }
        let (content, style) = (hashed([1, 256, 16, 16], seed: 18), hashed([1, 256, 16, 16], seed: 19))
        try time("adaptiveInstanceNorm [1, 256, 16, 16]") { _ = try ctx.adaptiveInstanceNorm(content, style: style) }
        let down = try Conv2d(weight: hashed([64, 64, 3, 3], seed: 20, scale: 1 / 24), stride: 2,
                              padding: Padding2D(top: 0, left: 0, bottom: 1, right: 1), context: ctx)
        let big = try ctx.reorderedBlocked16(hashed([1, 64, 512, 512], seed: 21))
        try time("pad(0,1,0,1)+conv3×3/2 [1, 64, 512, 512] nChw16c") { _ = try down(big, ctx) }
    }
}
