// Our fused F(4×4,3×3) Winograd kernel (FusedWinograd.swift, Sources/CWinograd) against oneDNN's
// direct convolution, itself checked against PyTorch by ConvolutionGoldens.

import CWinograd
@testable import FaceRestoreEngine
import Testing

@Suite(.enabled(if: frw_available() != 0, "the fused Winograd kernel needs AVX-512"))
struct FusedWinogradConvolution {
    let ctx = ComputeContext(threads: 2)
    let direct = ComputeContext(threads: 2, winograd: false)

    func layer(_ cin: Int, _ cout: Int, postOps: [PostOp], fused: Bool, _ c: ComputeContext, bias: Bool = true,
               padding: Int = 1, stride: Int = 1, hint: (Int, Int) = (256, 256)) throws -> Conv2d {
        try Conv2d(weight: seeded(cout * cin * 9, seed: 21, scale: 1 / Float(cin * 9).squareRoot()), shape: [cout, cin, 3, 3],
                   bias: bias ? seeded(cout, seed: 22, scale: 0.1) : nil, stride: stride, padding: Padding2D(padding), postOps: postOps,
                   hint: hint, fusedWinograd: fused, context: c)
    }

    /// Within 1e-5 of the output scale for up to 64 input channels; Winograd's rounding error is a
    /// sum over the input channels, so the gate grows with √(cin/64) above that (cin 256: 2e-5,
    /// measured 1.8–2.0e-5 relative to the direct convolution).
    func expectClose(_ a: Tensor, _ b: Tensor, inChannels: Int = 64, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(a.shape == b.shape, sourceLocation: sourceLocation)
        let d = deviation(try ctx.array(a), try ctx.array(b))
        let gate = 1e-5 * max(1, (Float(inChannels) / 64).squareRoot()) * d.scale
        #expect(d.maxAbs <= gate, "max abs \(d.maxAbs) at scale \(d.scale)", sourceLocation: sourceLocation)
    }

    /// Sizes that are and are not multiples of the 4×4 tile, narrower than one tile, and wider
    /// than one 14-tile block; passes of 28, 56 and 84 tiles that span tile rows (256→256,
    /// 320→512); input channels taken in 128-wide chunks (256, and 320 with a 64 remainder); every activation; zero padding 1 and 0 (the face parser's
    /// reflection-padded inputs); blocked, channels-last, plain and batch-2 inputs.
    @Test(arguments: [(64, 32, 1, 1, 1), (64, 32, 5, 7, 1), (96, 32, 16, 16, 1), (192, 64, 30, 61, 1), (256, 64, 57, 9, 1),
                      (64, 32, 4, 120, 1), (32, 64, 21, 70, 1), (64, 64, 3, 3, 0), (128, 64, 19, 34, 0), (64, 96, 66, 7, 0),
                      (64, 19, 13, 17, 0), (32, 19, 6, 9, 1), (256, 256, 13, 37, 1), (320, 512, 9, 23, 0)])
    func matchesDirect(_ cin: Int, _ cout: Int, _ h: Int, _ w: Int, _ padding: Int) throws {
        for postOps: [PostOp] in [[], [.relu], [.leakyReLU(0.2)]] {
            let fused = try layer(cin, cout, postOps: postOps, fused: true, ctx, padding: padding)
            let reference = try layer(cin, cout, postOps: postOps, fused: false, direct, padding: padding)
            #expect(try fused.implementation(for: Tensor(shape: [1, cin, h, w], repeating: 0), ctx).contains("fused"))
            for n in [1, 2] {
                let plain = Tensor(shape: [n, cin, h, w], values: seeded(n * cin * h * w, seed: UInt64(h * 131 + w)))
                let want = try reference(plain, direct)
                try expectClose(try fused(plain, ctx), want, inChannels: cin)
                try expectClose(try fused(try ctx.reordered(plain, to: .channelBlocked16(plain.shape)), ctx), want, inChannels: cin)
                try expectClose(try fused(try ctx.channelsLast(plain), ctx), want, inChannels: cin)
            }
        }
    }

    @Test func withoutBiasAndIntoAStackRange() throws {
        let fused = try layer(64, 32, postOps: [.leakyReLU(0.2)], fused: true, ctx, bias: false)
        let reference = try layer(64, 32, postOps: [.leakyReLU(0.2)], fused: false, direct, bias: false)
        let x = Tensor(shape: [1, 64, 23, 18], values: seeded(64 * 23 * 18, seed: 5))
        var stack = try ChannelStack(x, capacity: 96, ctx)
        try stack.append(fused, ctx)
        let both = try stack.tensor(ctx)
        let want = try direct.concat([x, try reference(x, direct)])
        try expectClose(both, want)
    }

    @Test func scaledResidualInTheSamePass() throws {
        // ESRGAN's `conv5(x) * 0.2 + identity`, into new memory and into an nChw16c destination,
        // with a plain and a blocked residual; the oneDNN layer does it as conv then scaledAdd.
        let fused = try layer(96, 64, postOps: [], fused: true, ctx)
        let reference = try layer(96, 64, postOps: [], fused: false, direct)
        let x = Tensor(shape: [1, 96, 13, 22], values: seeded(96 * 13 * 22, seed: 31))
        let identity = Tensor(shape: [1, 64, 13, 22], values: seeded(64 * 13 * 22, seed: 32))
        let want = try direct.scaledAdd(try reference(x, direct), scale: 0.2, identity)
        try expectClose(try fused(x, scale: 0.2, adding: identity, ctx), want)
        let blocked = try ctx.reordered(identity, to: .channelBlocked16(identity.shape))
        let destination = Tensor(uninitialized: .channelBlocked16([1, 64, 13, 22]))
        let written = try fused(x, scale: 0.2, adding: blocked, into: destination, ctx)
        #expect(written.storage === destination.storage)
        try expectClose(written, want)
        try expectClose(try reference(x, scale: 0.2, adding: identity, direct), want)
    }

    /// ParseNet's reflection-padded convs read through the padding, ×2 nearest upsampling and the
    /// leaky ReLU: without upsampling bit for bit the fused kernel on the padded tensor; upsampled,
    /// on the per-phase kernel (four 2×2 convolutions of the source), the same bits from every input
    /// layout; both close to oneDNN's direct convolution of the padded tensor. Sizes that are and
    /// are not multiples of the tile (4, or 8 upsampled), down to 1×1 upsampled.
    @Test(arguments: [(64, 32, 9, 14), (32, 64, 16, 16), (64, 32, 1, 5), (96, 64, 2, 2), (64, 19, 17, 6), (256, 512, 11, 13)])
    func readsThroughReflectionPadding(_ cin: Int, _ cout: Int, _ h: Int, _ w: Int) throws {
        let fused = try layer(cin, cout, postOps: [], fused: true, ctx, padding: 0)
        let reference = try layer(cin, cout, postOps: [], fused: false, direct, padding: 0)
        let plain = Tensor(shape: [1, cin, h, w], values: seeded(cin * h * w, seed: UInt64(7 * h + w)))
        for up in [1, 2] where up * min(h, w) >= 2 {
            for slope: Float? in [nil, 0.2] {
                let padded = try ctx.reflectionPad2d(plain, Padding2D(1), upsample: up, leakyReLUSlope: slope)
                let want = try ctx.array(up == 1 ? try fused(padded, ctx) : try fused(reflectionPadded: plain, upsample: 2, leakyReLUSlope: slope, ctx))
                for x in [plain, try ctx.channelsLast(plain), try ctx.reordered(plain, to: .channelBlocked16(plain.shape))] {
                    let y = try fused(reflectionPadded: x, upsample: up, leakyReLUSlope: slope, ctx)
                    #expect(y.shape == [1, cout, up * h, up * w])
                    #expect(try ctx.array(y) == want, "×\(up), slope \(String(describing: slope))")
                }
                try expectClose(try fused(reflectionPadded: plain, upsample: up, leakyReLUSlope: slope, ctx),
                                try reference(padded, direct), inChannels: cin)
                // A residual added as the output is written: bit for bit the separate add.
                let residual = Tensor(shape: [1, cout, up * h, up * w], values: seeded(cout * up * h * up * w, seed: 3))
                for conv in [fused, reference] {
                    let c = conv === fused ? ctx : direct
                    #expect(try ctx.array(try conv(reflectionPadded: plain, upsample: up, leakyReLUSlope: slope, adding: residual, c))
                            == ctx.array(try ctx.add(residual, try conv(reflectionPadded: plain, upsample: up, leakyReLUSlope: slope, c))))
                }
                // A layer on oneDNN pads first and gives the same values.
                try expectClose(try reference(reflectionPadded: plain, upsample: up, leakyReLUSlope: slope, direct),
                                try reference(padded, direct), inChannels: cin)
            }
        }
    }

    /// Stride 2 (the polyphase kernel: F(4,2) on the even taps, the odd tap as it is): against
    /// oneDNN's direct convolution for odd and even sizes, inputs narrower than one tile, zero
    /// padding 1 and 0, every activation, blocked, channels-last and batch-2 inputs; and reading
    /// through reflection padding and a leaky ReLU (ParseNet's downsampling convs), bit for bit
    /// the kernel on the padded tensor.
    @Test(arguments: [(64, 32, 1, 1, 1), (64, 32, 9, 14, 1), (128, 128, 33, 18, 1), (256, 256, 20, 41, 0), (64, 128, 70, 5, 0),
                      (32, 19, 15, 15, 1)])
    func stridedMatchesDirect(_ cin: Int, _ cout: Int, _ h: Int, _ w: Int, _ padding: Int) throws {
        guard h + 2 * padding >= 3, w + 2 * padding >= 3 else { return }
        for postOps: [PostOp] in [[], [.relu], [.leakyReLU(0.2)]] {
            let fused = try layer(cin, cout, postOps: postOps, fused: true, ctx, padding: padding, stride: 2)
            let reference = try layer(cin, cout, postOps: postOps, fused: false, direct, padding: padding, stride: 2)
            let probe = Tensor(shape: [1, cin, h, w], repeating: 0)
            #expect(try fused.implementation(for: probe, ctx).contains("s2") && !reference.implementation(for: probe, direct).contains("fused"))
            for n in [1, 2] {
                let plain = Tensor(shape: [n, cin, h, w], values: seeded(n * cin * h * w, seed: UInt64(h * 131 + w)))
                let want = try reference(plain, direct)
                #expect(want.shape == [n, cout, (h + 2 * padding - 3) / 2 + 1, (w + 2 * padding - 3) / 2 + 1])
                try expectClose(try fused(plain, ctx), want, inChannels: cin)
                try expectClose(try fused(try ctx.reordered(plain, to: .channelBlocked16(plain.shape)), ctx), want, inChannels: cin)
                try expectClose(try fused(try ctx.channelsLast(plain), ctx), want, inChannels: cin)
            }
        }
        guard padding == 0, min(h, w) >= 2 else { return }
        let fused = try layer(cin, cout, postOps: [], fused: true, ctx, padding: 0, stride: 2)
        let reference = try layer(cin, cout, postOps: [], fused: false, direct, padding: 0, stride: 2)
        let plain = Tensor(shape: [1, cin, h, w], values: seeded(cin * h * w, seed: UInt64(5 * h + w)))
        for slope: Float? in [nil, 0.2] {
            let padded = try ctx.reflectionPad2d(plain, Padding2D(1), leakyReLUSlope: slope)
            let want = try ctx.array(try fused(padded, ctx))
            for x in [plain, try ctx.channelsLast(plain)] {
                #expect(try ctx.array(try fused(reflectionPadded: x, leakyReLUSlope: slope, ctx)) == want)
            }
            try expectClose(try fused(reflectionPadded: plain, leakyReLUSlope: slope, ctx), try reference(padded, direct), inChannels: cin)
            let y = try fused(reflectionPadded: plain, leakyReLUSlope: slope, ctx)
            let residual = Tensor(shape: y.shape, values: seeded(y.count, seed: 4))
            #expect(try ctx.array(try fused(reflectionPadded: plain, leakyReLUSlope: slope, adding: residual, ctx))
                    == ctx.array(try ctx.add(residual, y)))
        }
    }

    /// `F.interpolate(scale_factor=2, mode="bilinear", align_corners=False)` written out with torch's
    /// CPU arithmetic: wy0·(wx0·a + wx1·b) + wy1·(wx0·c + wx1·d), separate multiplies and adds.
    func torchBilinear2x(_ x: [Float], _ c: Int, _ h: Int, _ w: Int) -> [Float] {
        func taps(_ i: Int, _ size: Int) -> (Int, Int, Float, Float) {
            var real: Float = 0.5 * (Float(i) + 0.5) - 0.5
            if real < 0 { real = 0 }
            let k = Int(real), l1 = real - Float(k)
            return (k, k + (k < size - 1 ? 1 : 0), 1 - l1, l1)
        }
        var out = [Float](repeating: 0, count: c * 4 * h * w)
        for ch in 0..<c {
            for y in 0..<(2 * h) {
                let (y0, y1, v0, v1) = taps(y, h)
                for xo in 0..<(2 * w) {
                    let (x0, x1, h0, h1) = taps(xo, w)
                    let p = ch * h * w
                    let top = h0 * x[p + y0 * w + x0] + h1 * x[p + y0 * w + x1]
                    let bottom = h0 * x[p + y1 * w + x0] + h1 * x[p + y1 * w + x1]
                    out[(ch * 2 * h + y) * 2 * w + xo] = v0 * top + v1 * bottom
                }
            }
        }
        return out
    }

    /// GFPGAN's upsampling convs interpolate as they read: bit for bit the fused kernel on the
    /// tensor upsampled with torch's arithmetic, and close to oneDNN's resampling and direct conv.
    @Test(arguments: [(64, 32, 9, 14), (32, 64, 16, 16), (64, 32, 1, 5), (128, 64, 7, 3)])
    func interpolatesBilinearlyAsItReads(_ cin: Int, _ cout: Int, _ h: Int, _ w: Int) throws {
        let fused = try layer(cin, cout, postOps: [.leakyReLU(0.2)], fused: true, ctx)
        let reference = try layer(cin, cout, postOps: [.leakyReLU(0.2)], fused: false, direct)
        let values = seeded(cin * h * w, seed: UInt64(11 * h + w))
        let plain = Tensor(shape: [1, cin, h, w], values: values)
        let upsampled = Tensor(shape: [1, cin, 2 * h, 2 * w], values: torchBilinear2x(values, cin, h, w))
        let want = try ctx.array(try fused(upsampled, ctx))
        for x in [plain, try ctx.channelsLast(plain), try ctx.reordered(plain, to: .channelBlocked16(plain.shape))] {
            let y = try fused(bilinearUpsampled: x, ctx)
            #expect(y.shape == [1, cout, 2 * h, 2 * w])
            #expect(try ctx.array(y) == want)
        }
        let resized = try direct.resize(plain, factor: 2, mode: .bilinear)
        try expectClose(try fused(bilinearUpsampled: plain, ctx), try reference(resized, direct), inChannels: cin)
        try expectClose(try reference(bilinearUpsampled: plain, direct), try reference(resized, direct), inChannels: cin)
    }

    @Test(arguments: [true, false])
    func transformedWeightsAreKeptFromTheSecondCall(_ fusedKernel: Bool) throws {
        // Winograd weights (ours, or oneDNN's F(4×4,3×3) layout) are made for the first call in
        // temporary memory and kept from the second; each call gives the same bits. A direct
        // layer's reordered weights are made at load.
        let conv = try layer(64, 32, postOps: [.leakyReLU(0.2)], fused: fusedKernel, ctx, hint: (128, 128))
        let x = try ctx.channelsLast(Tensor(shape: [1, 64, 128, 128], values: seeded(64 * 128 * 128, seed: 41)))
        #expect(try conv.implementation(for: x, ctx).contains("wino"))
        #expect(!conv.kernelWeights.isResident)
        let first = try ctx.array(try conv(x, ctx))
        #expect(!conv.kernelWeights.isResident)
        let second = try ctx.array(try conv(x, ctx))
        #expect(conv.kernelWeights.isResident)
        let third = try ctx.array(try conv(x, ctx))
        #expect(first == second && second == third)
        try expectClose(try conv(x, ctx), try layer(64, 32, postOps: [.leakyReLU(0.2)], fused: false, direct)(x, direct))
        #expect(try layer(64, 32, postOps: [], fused: false, direct).kernelWeights.isResident)
    }

    @Test func otherLayersStayOnOneDNN() throws {
        // Out channels not a multiple of 32, stride 3, an unfusable post-op, no Winograd, bf16; and
        // layers where ours does not pay (fewer than 32 inputs, outputs under 32² at the hint).
        let x = Tensor(shape: [1, 64, 16, 16], repeating: 0.5)
        let cases: [(Conv2d, ComputeContext)] = [
            (try layer(64, 48, postOps: [], fused: true, ctx), ctx),
            (try layer(64, 32, postOps: [], fused: true, ctx, hint: (16, 16)), ctx),
            (try layer(64, 32, postOps: [], fused: false, ctx), ctx),
            (try Conv2d(weight: seeded(32 * 64 * 9, seed: 1), shape: [32, 64, 3, 3], stride: 3, padding: Padding2D(1),
                        fusedWinograd: true, context: ctx), ctx),
            (try layer(64, 32, postOps: [.linear(alpha: 2, beta: 0)], fused: true, ctx), ctx),
            (try layer(64, 32, postOps: [], fused: true, direct), direct),
            (try layer(64, 32, postOps: [], fused: true, ComputeContext(threads: 2, precision: .bf16)), ComputeContext(threads: 2, precision: .bf16)),
        ]
        for (conv, c) in cases { #expect(try !conv.implementation(for: x, c).contains("fused")) }
        let narrow = try layer(16, 32, postOps: [], fused: true, ctx)
        #expect(try !narrow.implementation(for: Tensor(shape: [1, 16, 16, 16], repeating: 0.5), ctx).contains("fused"))
    }
}
