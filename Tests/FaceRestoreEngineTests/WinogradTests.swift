// Winograd convolutions and the nChw16c paths they feed, checked against the direct convolution
// (itself checked against PyTorch by ConvolutionGoldens) and against the channels-last forms of
// the same ops.

import CDNNL
@testable import FaceRestoreEngine
import Foundation
import Testing

/// Seeded values in [-scale, scale] (a 64-bit LCG; tests need reproducible data, not quality).
func seeded(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return (Float(state >> 40) / Float(1 << 24) * 2 - 1) * scale
    }
}

/// oneDNN's Winograd kernels (layers built with `fusedWinograd: false`; by default the same layers
/// run on our fused kernel, FusedWinogradTests).
@Suite struct WinogradConvolution {
    let wino = ComputeContext(threads: 2)
    let direct = ComputeContext(threads: 2, winograd: false)

    func layer(_ cin: Int, _ cout: Int, postOps: [PostOp] = [], hint: (Int, Int), _ ctx: ComputeContext) throws -> Conv2d {
        try Conv2d(weight: seeded(cout * cin * 9, seed: 7, scale: 1 / Float(cin * 9).squareRoot()), shape: [cout, cin, 3, 3],
                   bias: seeded(cout, seed: 8, scale: 0.1), padding: Padding2D(1), postOps: postOps, hint: hint,
                   fusedWinograd: false, context: ctx)
    }

    func expectClose(_ a: Tensor, _ b: Tensor, _ ctx: ComputeContext, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(a.shape == b.shape, sourceLocation: sourceLocation)
        let d = deviation(try ctx.array(a), try ctx.array(b))
        #expect(d.maxAbs <= 1e-5 * d.scale, "max abs \(d.maxAbs) at scale \(d.scale)", sourceLocation: sourceLocation)
    }

    @Test(arguments: [(64, 32, 64), (96, 32, 64), (192, 64, 64), (128, 128, 64)])
    func matchesDirect(_ cin: Int, _ cout: Int, _ size: Int) throws {
        let x = try wino.channelsLast(Tensor(shape: [1, cin, size, size], values: seeded(cin * size * size, seed: 1)))
        let fast = try layer(cin, cout, postOps: [.leakyReLU(0.2)], hint: (size, size), wino)
        let reference = try layer(cin, cout, postOps: [.leakyReLU(0.2)], hint: (size, size), direct)
        #expect(try fast.implementation(for: x, wino).contains("wino"))
        #expect(try !reference.implementation(for: x, direct).contains("wino"))
        try expectClose(try fast(x, wino), try reference(x, direct), wino)
    }

    @Test func otherInputSizesAndLayouts() throws {
        // Built for 64², called on other sizes (its transformed weights are re-derived from the
        // kept source weights) and on plain input.
        let fast = try layer(64, 32, hint: (64, 64), wino), reference = try layer(64, 32, hint: (64, 64), direct)
        for (h, w) in [(80, 72), (8, 12), (64, 64)] {
            let x = Tensor(shape: [1, 64, h, w], values: seeded(64 * h * w, seed: UInt64(h * w)))
            try expectClose(try fast(x, wino), try reference(x, direct), wino)
        }
    }

    @Test func fusedOpsOnBlockedInputEqualChannelsLast() throws {
        // A Winograd output is nChw16c; the fused ops must give the same values (bit for bit) as
        // on its channels-last copy.
        let conv = try layer(64, 32, hint: (64, 64), wino)
        let y = try conv(Tensor(shape: [1, 64, 64, 64], values: seeded(64 * 64 * 64, seed: 3)), wino)
        #expect(y.layout == .opaque)
        let yl = try wino.channelsLast(y)
        let scale = seeded(32, seed: 4), shift = seeded(32, seed: 5)
        let noise = Tensor(shape: [1, 1, 64, 64], values: seeded(64 * 64, seed: 6))
        func same(_ a: Tensor, _ b: Tensor, _ what: String) throws {
            #expect(try wino.array(a) == (try wino.array(b)), "\(what) differs between layouts")
        }
        try same(try wino.affine(y, scale: scale, shift: shift, spatial: noise, spatialWeight: 0.3, leakyReLUSlope: 0.2),
                 try wino.affine(yl, scale: scale, shift: shift, spatial: noise, spatialWeight: 0.3, leakyReLUSlope: 0.2), "affine")
        let s2 = seeded(64, seed: 9), b2 = seeded(64, seed: 10), post = seeded(64, seed: 11)
        try same(try wino.affineConcat(y, yl, scale: s2, shift: b2, leakyReLUSlope: 0.2, outputScale: post),
                 try wino.affineConcat(yl, yl, scale: s2, shift: b2, leakyReLUSlope: 0.2, outputScale: post), "affineConcat")
        let sftScale = try conv(Tensor(shape: [1, 64, 64, 64], values: seeded(64 * 64 * 64, seed: 12)), wino)
        let halfScale = try wino.slice(sftScale, start: 16, length: 16), halfShift = try wino.slice(sftScale, start: 0, length: 16)
        try same(try wino.spatialFeatureTransform(y, scale: halfScale, shift: halfShift, fromChannel: 16),
                 try wino.spatialFeatureTransform(yl, scale: halfScale, shift: halfShift, fromChannel: 16), "SFT")
        try same(try wino.resize(y, factor: 2, mode: .bilinear), try wino.resize(yl, factor: 2, mode: .bilinear), "resize")
        try same(try wino.concat([y, y]), try wino.concat([yl, yl]), "concat")
        try same(try wino.multiply(y, Tensor(shape: [1, 32, 1, 1], values: scale)),
                 try wino.multiply(yl, Tensor(shape: [1, 32, 1, 1], values: scale)), "per-channel multiply")
    }

    @Test(arguments: [1, 2])
    func channelStackEqualsConcat(_ batch: Int) throws {
        // ESRGAN's dense block: each conv sees all earlier outputs (batch 2 takes the concat fallback).
        let convs = try (0..<3).map { i in
            try Conv2d(weight: seeded(32 * (64 + 32 * i) * 9, seed: UInt64(20 + i), scale: 0.05), shape: [32, 64 + 32 * i, 3, 3],
                       bias: seeded(32, seed: UInt64(30 + i), scale: 0.1), padding: Padding2D(1), postOps: [.leakyReLU(0.2)],
                       hint: (64, 64), context: wino)
        }
        let x = try convs[0](Tensor(shape: [batch, 64, 64, 64], values: seeded(batch * 64 * 64 * 64, seed: 40)), wino)
        let input = try wino.concat([x, x])   // 64 channels, in whatever layout the conv produced
        var stack = try ChannelStack(input, capacity: 160, wino)
        var parts = [input]
        for conv in convs {
            try stack.append(conv, wino)
            parts.append(try conv(try wino.concat(parts), wino))
        }
        #expect(stack.channels == 160)
        #expect(try wino.array(stack.tensor(wino)) == (try wino.array(wino.concat(parts))))
    }

    @Test(arguments: [(64, 32), (96, 64), (256, 128), (128, 512)])
    func weightTransformIsOneDNNs(_ cin: Int, _ cout: Int) throws {
        // Our F(4×4,3×3) weight transform (WinogradWeights.swift) against oneDNN's own reorder from
        // hwio (the path it replaces), bit for bit, in the layout oneDNN chose for a 64² input.
        let op = OpDesc.convolution(src: .any([1, cin, 64, 64]), weights: .any([cout, cin, 3, 3]), bias: nil,
                                    dst: .any([1, cout, 64, 64]), strides: [1, 1], dilation: [1, 1], padL: [1, 1],
                                    padR: [1, 1], winograd: true)
        let probe = try wino.make(op)
        #expect(probe.implementation.contains("wino_4x3"))
        let desc = probe.weightsDesc
        let layout = try #require(WinogradWeightLayout(desc, outChannels: cout, inChannels: cin))
        let values = seeded(cout * cin * 9, seed: UInt64(cin * cout), scale: 3)
        let oihw = Tensor(shape: [cout, cin, 3, 3], values: values)
        let hwio = try wino.reordered(oihw, to: MemoryDesc(dims: [cout, cin, 3, 3], tag: dnnl_hwio))
        let theirs = TensorStorage(bytes: desc.byteSize), ours = TensorStorage(bytes: desc.byteSize)
        try wino.reorder(from: hwio.desc, hwio.storage.pointer, to: desc, theirs.pointer)
        layout.transform(oihw: oihw.storage.floats, into: ours.floats, context: wino)
        let n = desc.byteSize / 4
        let a = UnsafeBufferPointer(start: theirs.floats, count: n), b = UnsafeBufferPointer(start: ours.floats, count: n)
        let mismatches = zip(a, b).filter { $0.bitPattern != $1.bitPattern && !($0 == 0 && $1 == 0) }.count
        #expect(mismatches == 0, "\(mismatches) of \(n) values differ from oneDNN's")
        #expect(a.contains { $0 != 0 })
    }
}
