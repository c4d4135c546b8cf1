// The polyphase form of stride-2 transposed convolutions (four phase convolutions and an
// interleave, optionally fused with the FIR filter that follows), checked against oneDNN's own
// deconvolution kernel, which ConvolutionGoldens checks against PyTorch (the goldens themselves
// run the polyphase form, the default).

import FaceRestoreEngine
import Foundation
import Testing

@Suite struct PolyphaseDeconvolution {
    let ctx = ComputeContext(threads: 2)

    func pair(_ cin: Int, _ cout: Int, kernel k: Int, cropping: Padding2D, bias: Bool = true) throws -> (ConvTranspose2d, ConvTranspose2d) {
        let w = seeded(cin * cout * k * k, seed: UInt64(cin * 31 + cout * 7 + k), scale: 1 / Float(cin * k * k).squareRoot())
        let b = bias ? seeded(cout, seed: 9, scale: 0.1) : nil
        return (try ConvTranspose2d(weight: w, shape: [cin, cout, k, k], bias: b, stride: 2, cropping: cropping, context: ctx),
                try ConvTranspose2d(weight: w, shape: [cin, cout, k, k], bias: b, stride: 2, cropping: cropping, polyphase: false,
                                    context: ctx))
    }

    func expectClose(_ a: Tensor, _ b: Tensor, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(a.shape == b.shape, sourceLocation: sourceLocation)
        let d = deviation(try ctx.array(a), try ctx.array(b))
        #expect(d.maxAbs <= 1e-5 * d.scale, "max abs \(d.maxAbs) at scale \(d.scale)", sourceLocation: sourceLocation)
    }

    /// An nChw16c activation (a Winograd convolution's output) with `c` channels.
    func blockedInput(_ c: Int, _ h: Int, _ w: Int) throws -> Tensor {
        let conv = try Conv2d(weight: seeded(c * 64 * 9, seed: 5, scale: 0.05), shape: [c, 64, 3, 3], padding: Padding2D(1),
                              hint: (64, 64), context: ctx)   // built as a Winograd layer (run at any size)
        let y = try conv(Tensor(shape: [1, 64, h, w], values: seeded(64 * h * w, seed: 6)), ctx)
        #expect(y.layout == .opaque)
        return y
    }

    @Test(arguments: [(3, Padding2D(0)), (3, Padding2D(1)), (4, Padding2D(1)), (3, Padding2D(top: 1, left: 0, bottom: 0, right: 1)),
                      (5, Padding2D(top: 2, left: 1, bottom: 1, right: 2)), (2, Padding2D(0))])
    func matchesOneDNNDeconvolution(_ k: Int, _ cropping: Padding2D) throws {
        let (fast, reference) = try pair(32, 48, kernel: k, cropping: cropping)
        #expect(try fast.implementation(for: Tensor(shape: [1, 32, 9, 7], repeating: 0), ctx).hasPrefix("polyphase"))
        #expect(try !reference.implementation(for: Tensor(shape: [1, 32, 9, 7], repeating: 0), ctx).hasPrefix("polyphase"))
        // Plain, channels-last and batched inputs, odd and even sizes.
        for (n, h, w) in [(1, 9, 7), (2, 8, 8), (1, 1, 1)] {
            let x = Tensor(shape: [n, 32, h, w], values: seeded(n * 32 * h * w, seed: UInt64(h * 10 + w)))
            try expectClose(try fast(x, ctx), try reference(x, ctx))
            try expectClose(try fast(try ctx.channelsLast(x), ctx), try reference(x, ctx))
        }
    }

    @Test func blockedInputAndFewChannels() throws {
        let x = try blockedInput(32, 16, 12)
        let (fast, reference) = try pair(32, 16, kernel: 3, cropping: Padding2D(0))
        try expectClose(try fast(x, ctx), try reference(x, ctx))
        // 3 output channels (no 16-channel blocks anywhere).
        let (narrowFast, narrowReference) = try pair(5, 3, kernel: 3, cropping: Padding2D(0), bias: false)
        let small = Tensor(shape: [1, 5, 6, 5], values: seeded(150, seed: 11))
        try expectClose(try narrowFast(small, ctx), try narrowReference(small, ctx))
    }

    /// StyleGAN2's upsampling: transposed conv (3×3, stride 2), then the [1,3,3,1] blur with
    /// gain 4 and padding 1; other filters and paddings take the same fused pass.
    @Test(arguments: [(32, 1, 1), (32, 2, 0), (48, 0, 2), (24, 1, 1)])
    func fusedFilterMatchesDeconvolutionThenFilter(_ channels: Int, _ before: Int, _ after: Int) throws {
        let (fast, reference) = try pair(32, channels, kernel: 3, cropping: Padding2D(0), bias: false)
        let k: [Float] = [1, 3, 3, 1]
        let blur = try UpFirDn2d(kernel: k.flatMap { a in k.map { a * $0 / 16 } }, kernelSize: (4, 4), channels: channels,
                                 pad: (before, after, before, after), context: ctx)
        // An asymmetric kernel too, so that a missing flip would show.
        let ramp = try UpFirDn2d(kernel: (0..<12).map { Float($0 + 1) / 78 }, kernelSize: (3, 4), channels: channels,
                                 pad: (before, after, after, before), context: ctx)
        for x in [Tensor(shape: [2, 32, 10, 9], values: seeded(2 * 32 * 90, seed: 12)), try blockedInput(32, 12, 12)] {
            for filter in [blur, ramp] {
                try expectClose(try fast(x, then: filter, ctx), try filter(try reference(x, ctx), ctx))
            }
        }
    }
}
