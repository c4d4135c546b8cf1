// A GroupNorm applied by the following 3×3 convolution as it reads its input
// (`Conv2d(_:GroupNormed)`, the fused Winograd kernel's normalized reads) against the same
// convolution of the materialized norm (`ComputeContext.apply`): the kernel sees the same input
// bits, so the outputs must be identical, for every input layout, with and without a residual;
// with the swish and where the layer cannot take it (stride 2) through the materialized norm.

import CWinograd
@testable import FaceRestoreEngine
import Testing

@Suite(.enabled(if: frw_available() != 0, "the fused Winograd kernel needs AVX-512"))
struct DeferredGroupNorm {
    let ctx = ComputeContext(threads: 2)

    func input(_ n: Int, _ c: Int, _ h: Int, _ w: Int, layout: String) throws -> Tensor {
        // Per-channel offsets and spreads, so the norm's scales differ between channels and groups.
        let values = seeded(n * c * h * w, seed: 31, scale: 1).enumerated().map { i, v in
            let ch = (i / (h * w)) % c
            return v * (0.5 + Float(ch % 7)) + Float(ch % 5) - 2
        }
        let x = Tensor(shape: [n, c, h, w], values: values)
        switch layout {
        case "nhwc": return try ctx.channelsLast(x)
        case "blocked": return try ctx.reordered(x, to: .channelBlocked16(x.shape))
        default: return x
        }
    }

    @Test(arguments: [(1, 64, 32, 64, 23, 1), (1, 64, 64, 7, 9, 1), (2, 128, 64, 13, 18, 1), (1, 32, 32, 5, 6, 0)])
    func convolutionOfTheDeferredNormIsTheConvolutionOfTheNorm(_ n: Int, _ cin: Int, _ cout: Int, _ h: Int, _ w: Int,
                                                             _ padding: Int) throws {
        let conv = try Conv2d(weight: Tensor(shape: [cout, cin, 3, 3], values: seeded(cout * cin * 9, seed: 32, scale: 0.05)),
                              bias: seeded(cout, seed: 33, scale: 0.1), padding: Padding2D(padding), hint: (64, 64), context: ctx)
        #expect(try conv.implementation(for: try input(n, cin, h, w, layout: "plain"), ctx).contains("fused"))
        let gamma = seeded(cin, seed: 34, scale: 1).map { 1 + $0 / 2 }, beta = seeded(cin, seed: 35, scale: 0.5)
        for layout in ["plain", "nhwc", "blocked"] {
            let x = try input(n, cin, h, w, layout: layout)
            for swish in [true, false] {
                let g = try ctx.groupNormDeferred(x, groups: 16, eps: 1e-6, gamma: gamma, beta: beta, swish: swish)
                let normalized = try ctx.apply(g)
                #expect(try ctx.array(normalized) == ctx.array(try ctx.groupNorm(x, groups: 16, eps: 1e-6, gamma: gamma, beta: beta, swish: swish)))
                let fused = try ctx.array(try conv(g, ctx)), separate = try ctx.array(try conv(normalized, ctx))
                #expect(fused == separate, "\(layout), swish \(swish): max |Δ| \(zip(fused, separate).map { abs($0 - $1) }.max() ?? 0)")
                let residualShape = try conv(normalized, ctx).shape
                let residual = Tensor(shape: residualShape, values: seeded(residualShape.reduce(1, *), seed: 36, scale: 1))
                let fusedSum = try ctx.array(try conv(g, scale: 0.5, adding: residual, ctx))
                let separateSum = try ctx.array(try conv(normalized, scale: 0.5, adding: residual, ctx))
                #expect(fusedSum == separateSum, "\(layout), swish \(swish), with a residual")
            }
        }
    }

    @Test func aStride2LayerTakesTheNormalizedTensor() throws {
        let conv = try Conv2d(weight: Tensor(shape: [32, 64, 3, 3], values: seeded(32 * 64 * 9, seed: 37, scale: 0.05)),
                              stride: 2, padding: Padding2D(1), hint: (128, 128), context: ctx)
        #expect(try conv.implementation(for: try input(1, 64, 16, 16, layout: "plain"), ctx).contains("fused"))
        let x = try input(1, 64, 16, 16, layout: "blocked")
        let g = try ctx.groupNormDeferred(x, groups: 32, eps: 1e-6, gamma: nil, beta: nil, swish: true)
        #expect(try ctx.array(try conv(g, ctx)) == ctx.array(try conv(try ctx.apply(g), ctx)))
    }
}
