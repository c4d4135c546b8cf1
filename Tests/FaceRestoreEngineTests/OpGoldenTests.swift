// Op-level golden tests against PyTorch (fixtures from scripts/make_fixtures.py, torch 1.13).
// Tolerance: max |ours − torch| ≤ 1e-5 × output scale (max |torch|, at least 1), plus a
// normalized MSE bound (ggml's test-backend-ops metric).

import FaceRestoreEngine
import FaceRestoreWeights
import Foundation
import Testing

let fixtures: StateDict = {
    let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("ops.safetensors")
    return try! SafeTensors.read(path: url.path)
}()

func fixture(_ name: String) -> WeightTensor {
    guard let t = fixtures[name] else { fatalError("fixture \(name) missing; run scripts/make_fixtures.py") }
    return t
}

func tensor(_ name: String) -> Tensor { let t = fixture(name); return Tensor(shape: t.shape, values: t.floats()) }
func params(_ name: String) -> [Int] { fixture("\(name).p").integers()!.map(Int.init) }

struct Deviation { let maxAbs: Float; let scale: Float; let nmse: Double }

func deviation(_ actual: [Float], _ expected: [Float]) -> Deviation {
    var maxAbs: Float = 0, scale: Float = 1, err = 0.0, ref = 0.0
    for (a, e) in zip(actual, expected) {
        maxAbs = max(maxAbs, abs(a - e))
        scale = max(scale, abs(e))
        err += Double((a - e) * (a - e))
        ref += Double(e * e)
    }
    return Deviation(maxAbs: maxAbs, scale: scale, nmse: ref > 0 ? err / ref : err)
}

/// Checks an op output against the PyTorch output `<name>.y`.
func expectMatches(_ out: Tensor, _ name: String, _ ctx: ComputeContext, relTol: Float = 1e-5,
                   sourceLocation: SourceLocation = #_sourceLocation) throws {
    let expected = fixture("\(name).y")
    #expect(out.shape == expected.shape, "\(name): shape \(out.shape) vs torch \(expected.shape)", sourceLocation: sourceLocation)
    guard out.shape == expected.shape else { return }
    let d = deviation(try ctx.array(out), expected.floats())
    if ProcessInfo.processInfo.environment["FACERESTORE_PARITY_REPORT"] != nil {
        print("parity \(name) max_abs \(d.maxAbs) scale \(d.scale) nmse \(d.nmse)")
    }
    #expect(d.maxAbs <= abs(relTol) * d.scale, "\(name): max abs \(d.maxAbs) at scale \(d.scale)", sourceLocation: sourceLocation)
    #expect(d.nmse <= 1e-10, "\(name): normalized MSE \(d.nmse)", sourceLocation: sourceLocation)
}

@Suite struct ConvolutionGoldens {
    let ctx = ComputeContext(threads: 2)

    @Test(arguments: 0..<12)
    func conv2d(_ i: Int) throws {
        let name = "conv\(i)"
        let p = params(name)   // stride, pad, groups, bias
        let w = fixture("\(name).w")
        let conv = try Conv2d(weight: w.floats(), shape: w.shape, bias: p[3] == 1 ? fixture("\(name).b").floats() : nil,
                              stride: p[0], padding: Padding2D(p[1]), groups: p[2], context: ctx)
        let x = tensor("\(name).x")
        try expectMatches(try conv(x, ctx), name, ctx)
        // The same result from a channels-last input (a different primitive and maybe layout).
        try expectMatches(try conv(try ctx.channelsLast(x), ctx), name, ctx)
    }

    @Test func fastKernelIsChosen() throws {
        let w = fixture("conv10.w")
        let conv = try Conv2d(weight: w.floats(), shape: w.shape, bias: fixture("conv10.b").floats(), padding: Padding2D(1), context: ctx)
        let impl = try conv.implementation(for: try ctx.channelsLast(tensor("conv10.x")), ctx)
        #expect(!impl.hasPrefix("ref"), "64→64 3×3 conv fell back to \(impl)")
    }

    @Test func fusedLeakyReLU() throws {
        let w = fixture("conv_lrelu.w")
        let conv = try Conv2d(weight: w.floats(), shape: w.shape, bias: fixture("conv_lrelu.b").floats(),
                              padding: Padding2D(1), postOps: [.leakyReLU(0.2)], context: ctx)
        try expectMatches(try conv(tensor("conv_lrelu.x"), ctx), "conv_lrelu", ctx)
    }

    @Test(arguments: 0..<3)
    func convTranspose2d(_ i: Int) throws {
        let name = "deconv\(i)"
        let p = params(name)   // stride, pad, output_padding, bias
        let w = fixture("\(name).w")
        let deconv = try ConvTranspose2d(weight: w.floats(), shape: w.shape, bias: p[3] == 1 ? fixture("\(name).b").floats() : nil,
                                         stride: p[0], padding: p[1], outputPadding: p[2], context: ctx)
        try expectMatches(try deconv(tensor("\(name).x"), ctx), name, ctx)
    }

    @Test func batchNormFoldedIntoConv() throws {
        let w = fixture("bnfold.w")
        let folded = try foldBatchNorm(weight: w.floats(), bias: nil, gamma: fixture("bnfold.gamma").floats(),
                                       beta: fixture("bnfold.beta").floats(), mean: fixture("bnfold.mean").floats(),
                                       variance: fixture("bnfold.var").floats())
        let conv = try Conv2d(weight: folded.weight, shape: w.shape, bias: folded.bias, padding: Padding2D(1), context: ctx)
        try expectMatches(try conv(tensor("bnfold.x"), ctx), "bnfold", ctx)
    }

    @Test func shapeErrorsNameTheShapes() throws {
        let w = fixture("conv0.w")
        let conv = try Conv2d(weight: w.floats(), shape: w.shape, context: ctx)
        #expect(throws: EngineError.self) { try conv(Tensor(shape: [1, 3, 8, 8], repeating: 0), ctx) }
        #expect(throws: EngineError.self) { try Conv2d(weight: [1, 2, 3], shape: [1, 1, 2, 2], context: ctx) }
    }
}

@Suite struct ElementwiseGoldens {
    let ctx = ComputeContext(threads: 2)

    @Test func linear() throws {
        let w = fixture("linear.w")
        let layer = try Linear(weight: w.floats(), shape: w.shape, bias: fixture("linear.b").floats(), context: ctx)
        try expectMatches(try layer(tensor("linear.x"), ctx), "linear", ctx)
    }

    @Test func activations() throws {
        let x = tensor("relu.x")
        try expectMatches(try ctx.relu(x), "relu", ctx)
        try expectMatches(try ctx.leakyReLU(x, slope: 0.2), "lrelu", ctx)
        try expectMatches(try ctx.prelu(x, slopes: fixture("prelu.w").floats()), "prelu", ctx)
        try expectMatches(try ctx.prelu(x, slopes: [0.25]), "prelu1", ctx)
        try expectMatches(try ctx.scale(x, by: 1.4142135, shift: 0.5), "scale", ctx)
        // The same ops on a channels-last tensor give the same values.
        try expectMatches(try ctx.leakyReLU(try ctx.channelsLast(x), slope: 0.2), "lrelu", ctx)
    }

    @Test func broadcastArithmetic() throws {
        let x = tensor("add.x")
        try expectMatches(try ctx.add(x, tensor("add.x2")), "add", ctx)
        try expectMatches(try ctx.add(try ctx.channelsLast(x), tensor("add.x2")), "add", ctx)
        try expectMatches(try ctx.add(x, tensor("add_bcast.x2")), "add_bcast", ctx)
        try expectMatches(try ctx.multiply(x, tensor("mul_bcast.x2")), "mul_bcast", ctx)
        try expectMatches(try ctx.multiply(try ctx.channelsLast(x), tensor("mul_bcast.x2")), "mul_bcast", ctx)
        #expect(throws: EngineError.self) { try ctx.add(x, Tensor(shape: [1, 5, 1, 1], repeating: 1)) }
    }

    @Test func concatAndSlice() throws {
        let x = tensor("concat.x"), x2 = tensor("concat.x2")
        try expectMatches(try ctx.concat([x, x2]), "concat", ctx)
        try expectMatches(try ctx.concat([try ctx.channelsLast(x), try ctx.channelsLast(x2)]), "concat", ctx)
        try expectMatches(try ctx.slice(x, axis: 1, start: 2, length: 3), "slice", ctx)
        try expectMatches(try ctx.slice(try ctx.channelsLast(x), axis: 1, start: 2, length: 3), "slice", ctx)
        #expect(throws: EngineError.self) { try ctx.slice(x, axis: 1, start: 4, length: 3) }
    }

    @Test func softmax() throws {
        try expectMatches(try ctx.softmax(tensor("softmax1.x"), axis: 1), "softmax1", ctx)
        try expectMatches(try ctx.softmax(tensor("softmax_last.x"), axis: 1), "softmax_last", ctx)
    }
}

@Suite struct SpatialGoldens {
    let ctx = ComputeContext(threads: 2)

    @Test(arguments: ["odd", "even"])
    func resize(_ kind: String) throws {
        let x = tensor("bilinear_up_\(kind).x")
        for input in [x, try ctx.channelsLast(x)] {
            try expectMatches(try ctx.resize(input, factor: 2, mode: .bilinear), "bilinear_up_\(kind)", ctx)
            try expectMatches(try ctx.resize(input, factor: 0.5, mode: .bilinear), "bilinear_down_\(kind)", ctx)
            try expectMatches(try ctx.resize(input, factor: 2, mode: .nearest), "nearest_up_\(kind)", ctx)
        }
    }

    @Test(arguments: [("nearest_size", ResizeMode.nearest), ("bilinear_size", ResizeMode.bilinear)])
    func resizeToSize(_ name: String, _ mode: ResizeMode) throws {
        let p = params(name)
        let x = tensor("\(name).x")
        try expectMatches(try ctx.resize(x, height: p[0], width: p[1], mode: mode), name, ctx)
        try expectMatches(try ctx.resize(try ctx.channelsLast(x), height: p[0], width: p[1], mode: mode), name, ctx)
    }

    @Test func pixelShuffle() throws {
        try expectMatches(try ctx.pixelShuffle(tensor("pixel_shuffle.x"), factor: 2), "pixel_shuffle", ctx)
        try expectMatches(try ctx.pixelUnshuffle(tensor("pixel_unshuffle.x"), factor: 2), "pixel_unshuffle", ctx)
        try expectMatches(try ctx.pixelUnshuffle(try ctx.channelsLast(tensor("pixel_unshuffle.x")), factor: 2), "pixel_unshuffle", ctx)
    }

    @Test(arguments: ["reflect_pad1", "reflect_pad2"])
    func reflectionPad(_ name: String) throws {
        let p = params(name)   // top, left, bottom, right
        let pad = Padding2D(top: p[0], left: p[1], bottom: p[2], right: p[3])
        try expectMatches(try ctx.reflectionPad2d(tensor("\(name).x"), pad), name, ctx)
        #expect(throws: EngineError.self) { try ctx.reflectionPad2d(tensor("\(name).x"), Padding2D(6)) }
    }

    @Test(arguments: ["upfirdn0", "upfirdn1", "upfirdn2", "upfirdn3", "upfirdn4", "upfirdn5", "upfirdn6",
                      "upfirdn_asym", "upfirdn_asym_up"])
    func upfirdn2d(_ name: String) throws {
        let p = params(name)   // up, down, pad0, pad1 (applied to x and y alike, as basicsr's upfirdn2d)
        let k = fixture("\(name).w"), x = tensor("\(name).x")
        let pad = (x0: p[2], x1: p[3], y0: p[2], y1: p[3])
        let ksize = (k.shape[0], k.shape[1])
        try expectMatches(try ctx.upfirdn2dReference(x, kernel: k.floats(), kernelSize: ksize, up: p[0], down: p[1], pad: pad), name, ctx)
        let layer = try UpFirDn2d(kernel: k.floats(), kernelSize: ksize, channels: x.shape[1], up: p[0], down: p[1], pad: pad, context: ctx)
        try expectMatches(try layer(x, ctx), name, ctx)
        try expectMatches(try layer(try ctx.channelsLast(x), ctx), name, ctx)
    }
}

@Suite struct TensorBasics {
    let ctx = ComputeContext(threads: 1)

    @Test func layoutRoundTrip() throws {
        let values = (0..<120).map(Float.init)
        let t = Tensor(shape: [1, 5, 4, 6], values: values)
        #expect(t.layout == .plain)
        let nhwc = try ctx.channelsLast(t)
        #expect(nhwc.layout == .channelsLast)
        #expect(try ctx.array(nhwc) == values)
        #expect(try ctx.array(try ctx.reshape(nhwc, [5, 24])) == values)
        #expect(throws: EngineError.self) { try ctx.reshape(t, [7, 7]) }
    }

    @Test func threadCountIsPerContext() {
        #expect(ComputeContext(threads: 3).threads == 3)
        #expect(ComputeContext(threads: 0).threads == 1)
        #expect(ComputeContext().threads == ProcessInfo.processInfo.activeProcessorCount)
    }
}
