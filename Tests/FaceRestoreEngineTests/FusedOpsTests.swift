// Fused one-pass ops checked against the chains of plain ops they replace (those are checked
// against PyTorch by ConvolutionGoldens and the model parity tests).

import FaceRestoreEngine
import Foundation
import Testing

@Suite struct FusedOps {
    let ctx = ComputeContext(threads: 2)

    /// An nChw16c activation (a Winograd convolution's output) with `c` channels.
    func blocked(_ c: Int, _ h: Int, _ w: Int, seed: UInt64) throws -> Tensor {
        let conv = try Conv2d(weight: seeded(c * 64 * 9, seed: seed, scale: 0.05), shape: [c, 64, 3, 3], padding: Padding2D(1),
                              hint: (64, 64), context: ctx)
        let y = try conv(Tensor(shape: [1, 64, h, w], values: seeded(64 * h * w, seed: seed + 1)), ctx)
        #expect(y.layout == .opaque)
        return y
    }

    @Test(arguments: [48, 5])
    func pointwiseConvMatchesConvolutionBiasAndAdd(_ c: Int) throws {
        let (h, w) = (12, 10)
        let weights = seeded(3 * c, seed: 21, scale: 0.3), bias = seeded(3, seed: 22)
        let conv = try Conv2d(weight: weights, shape: [3, c, 1, 1], bias: bias, context: ctx)
        let addend = Tensor(shape: [2, 3, h, w], values: seeded(2 * 3 * h * w, seed: 23))
        let plain = Tensor(shape: [2, c, h, w], values: seeded(2 * c * h * w, seed: 24))
        var inputs = [plain, try ctx.channelsLast(plain)]
        if c % 16 == 0 { inputs.append(try blocked(c, h, w, seed: 25)) }
        for x in inputs {
            let fused = try ctx.pointwiseConv(x, weights: weights, bias: bias, addend: x.shape[0] == 2 ? addend : nil)
            let reference = x.shape[0] == 2 ? try ctx.add(try conv(x, ctx), addend) : try conv(x, ctx)
            #expect(fused.shape == reference.shape)
            let d = deviation(try ctx.array(fused), try ctx.array(reference))
            #expect(d.maxAbs <= 1e-5 * d.scale, "max abs \(d.maxAbs) at scale \(d.scale)")
        }
        #expect(throws: EngineError.self) { try ctx.pointwiseConv(plain, weights: weights, bias: [0, 0]) }
    }

    @Test func sftOutputScaleEqualsSFTThenMultiply() throws {
        let x = try blocked(64, 9, 11, seed: 31)
        let scale = Tensor(shape: [1, 32, 9, 11], values: seeded(32 * 99, seed: 32))
        let shift = Tensor(shape: [1, 32, 9, 11], values: seeded(32 * 99, seed: 33))
        let s = seeded(64, seed: 34)
        for input in [x, try ctx.channelsLast(x)] {
            for from in [32, 24] {
                let sc = Tensor(shape: [1, 64 - from, 9, 11], values: seeded((64 - from) * 99, seed: 35))
                let sh = Tensor(shape: [1, 64 - from, 9, 11], values: seeded((64 - from) * 99, seed: 36))
                let (a, b) = from == 32 ? (scale, shift) : (sc, sh)
                let fused = try ctx.spatialFeatureTransform(input, scale: a, shift: b, fromChannel: from, outputScale: s)
                let reference = try ctx.multiply(try ctx.spatialFeatureTransform(input, scale: a, shift: b, fromChannel: from),
                                                 Tensor(shape: [1, 64, 1, 1], values: s))
                #expect(try ctx.array(fused) == ctx.array(reference), "from channel \(from), layout \(input.layout)")
            }
        }
    }

    /// ParseNet's up-sampling layers: nearest ×2 then reflection pad, in one pass, must equal the
    /// two ops (each checked against PyTorch), bit for bit, for plain, channels-last and nChw16c
    /// inputs; without upsampling it must equal the plain pad.
    @Test func upsampledReflectionPadEqualsResizeThenPad() throws {
        let plain = Tensor(shape: [2, 5, 7, 6], values: seeded(2 * 5 * 42, seed: 41))
        for x in [plain, try ctx.channelsLast(plain), try blocked(32, 7, 6, seed: 42)] {
            for pad in [Padding2D(1), Padding2D(top: 2, left: 0, bottom: 1, right: 3)] {
                let fused = try ctx.reflectionPad2d(x, pad, upsample: 2)
                let reference = try ctx.reflectionPad2d(try ctx.resize(x, factor: 2, mode: .nearest), pad)
                #expect(fused.shape == reference.shape)
                #expect(try ctx.array(fused) == ctx.array(reference), "layout \(x.layout), pad \(pad)")
            }
            let once = try ctx.reflectionPad2d(x, Padding2D(top: 1, left: 2, bottom: 3, right: 1), upsample: 1)
            let viaContiguous = try ctx.reflectionPad2d(try ctx.contiguous(x), Padding2D(top: 1, left: 2, bottom: 3, right: 1))
            #expect(try ctx.array(once) == ctx.array(viaContiguous), "layout \(x.layout)")
        }
        #expect(throws: EngineError.self) { try ctx.reflectionPad2d(plain, Padding2D(12), upsample: 2) }
    }

    /// Channel slices of nChw16c batch-1 tensors on 16-channel boundaries are views; they must
    /// hold what a copying slice of the same tensor in plain layout holds.
    @Test func blockedChannelSliceIsTheNarrowedTensor() throws {
        let x = try blocked(64, 5, 7, seed: 51)
        let plain = try ctx.contiguous(x)
        for (start, length) in [(0, 32), (32, 32), (16, 48), (8, 16)] {
            let view = try ctx.slice(x, start: start, length: length)
            #expect(view.shape == [1, length, 5, 7])
            #expect(try ctx.array(view) == ctx.array(try ctx.slice(plain, start: start, length: length)), "[\(start), +\(length))")
        }
    }
}
