// Real-ESRGAN against the reference (scripts/make_fixtures.py `make_realesrgan`):
// - tiny random-weight RRDBNet x4 / x2 and SRVGGNetCompact x4 (basicsr 1.4.2, realesrgan 0.3.0)
//   forward within 1e-4;
// - RealESRGANer.enhance: tiled (tile 24, pad 10) with pre_pad 0 and 10, untiled, the x2 mod
//   pad on an odd-sized crop, an RGBA input (alpha through the network) and outscale 1.5;
// - the real realesrgan-x4plus ncnn model (model cache; skipped when absent) against the PyPI
//   ncnn package's fp32 output on a photo crop: within 1 gray level on ≥ 99.9% of values.

import FaceRestoreEngine
import FaceRestoreImaging
@testable import FaceRestoreModels
@testable import FaceRestorePipeline
import FaceRestoreWeights
import Foundation
import Testing

let pipelineRepoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let sharedModelFixtures = pipelineRepoRoot.appendingPathComponent("Tests/FaceRestoreModelsTests/Fixtures")
let cachedModels: String = {
    let env = ProcessInfo.processInfo.environment
    return (env["FACERESTORE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.cache/facerestore")) + "/models"
}()
let x4plusNCNN: String? = FileManager.default.fileExists(atPath: cachedModels + "/realesrgan-x4plus.bin")
    ? cachedModels + "/realesrgan-x4plus.param" : nil

/// Share of values within 1 of each other, and the largest difference.
func agreement(_ a: [UInt8], _ b: [UInt8]) -> (within1: Double, maxDiff: Int) {
    precondition(a.count == b.count)
    var ok = 0, worst = 0
    for (x, y) in zip(a, b) {
        let d = abs(Int(x) - Int(y))
        if d <= 1 { ok += 1 }
        worst = max(worst, d)
    }
    return (Double(ok) / Double(max(a.count, 1)), worst)
}

@Suite struct RealESRGANParity {
    let expected: StateDict
    let ctx = ComputeContext(threads: 2)

    init() throws {
        expected = try SafeTensors.read(path: sharedModelFixtures.appendingPathComponent("realesrgan_tiny_expected.safetensors").path)
    }

    func image(_ key: String) -> PixelImage {
        let t = expected[key]!
        let values = t.integers()!.map { UInt8($0) }
        return PixelImage(width: t.shape[1], height: t.shape[0], channels: t.shape[2], pixels: values)
    }

    func upsampler(_ name: String, tile: Int, prePad: Int = 0) throws -> RealESRGANer {
        try RealESRGANer(modelPath: sharedModelFixtures.appendingPathComponent("realesrgan_\(name)_tiny.pth").path,
                         tile: tile, tilePad: 10, prePad: prePad, context: ctx)
    }

    @Test(arguments: ["rrdb_x4", "rrdb_x2", "srvgg_x4"])
    func forwardMatchesReference(_ name: String) throws {
        let up = try upsampler(name, tile: 0)
        let x = expected["\(name).x"]!, y = expected["\(name).y"]!
        let out = try up.forward(Tensor(shape: x.shape, values: x.floats()), ctx)
        #expect(out.shape == y.shape)
        let maxAbs = zip(try ctx.array(out), y.floats()).map { abs($0 - $1) }.max()!
        #expect(maxAbs <= 1e-4, "\(name): max abs \(maxAbs)")
    }

    @Test(arguments: [("rrdb_x4", 24, 0), ("rrdb_x4", 24, 10), ("rrdb_x4", 0, 0), ("rrdb_x2", 24, 0), ("srvgg_x4", 24, 0)])
    func tiledEnhanceMatchesRealESRGANer(_ name: String, _ tile: Int, _ prePad: Int) throws {
        let up = try upsampler(name, tile: tile, prePad: prePad)
        var tiles = 0
        let out = try up.enhance(image("crop"), context: ctx) { done, total in tiles = total; #expect(done <= total) }
        let ref = image("\(name).tile\(tile).pre\(prePad)")
        #expect(out.width == ref.width && out.height == ref.height && out.channels == 3)
        let (share, worst) = agreement(out.pixels, ref.pixels)
        #expect(share >= 0.999 && worst <= 2, "\(name) tile \(tile) pre \(prePad): \(share * 100)% within 1, max diff \(worst)")
        if tile > 0 { #expect(tiles > 1) }
    }

    @Test func alphaGoesThroughTheNetworkAndOutscaleUsesLanczos() throws {
        let up = try upsampler("rrdb_x4", tile: 24)
        let rgba = try up.enhance(image("rrdb_x4.rgba.in"), context: ctx)
        let ref = image("rrdb_x4.rgba.out")
        #expect(rgba.channels == 4 && rgba.width == ref.width)
        let (share, worst) = agreement(rgba.pixels, ref.pixels)
        let channelShares = (0..<4).map { k in
            agreement(stride(from: k, to: rgba.pixels.count, by: 4).map { rgba.pixels[$0] },
                      stride(from: k, to: ref.pixels.count, by: 4).map { ref.pixels[$0] }).within1
        }
        #expect(share >= 0.999 && worst <= 2, "RGBA: \(share * 100)% within 1, max diff \(worst), per channel \(channelShares)")
        let scaled = try up.enhance(image("crop"), outscale: 1.5, context: ctx)
        let refScaled = image("rrdb_x4.outscale1.5")
        #expect(scaled.width == refScaled.width && scaled.height == refScaled.height)
        let (s2, w2) = agreement(scaled.pixels, refScaled.pixels)
        #expect(s2 >= 0.999 && w2 <= 2, "outscale 1.5: \(s2 * 100)% within 1, max diff \(w2)")
    }

    @Test(.enabled(if: x4plusNCNN != nil, "realesrgan-x4plus (ncnn) is not installed (./scripts/setup)"))
    func realX4plusNCNNMatchesNcnn() throws {
        let up = try RealESRGANer(modelPath: x4plusNCNN!, tile: 0, context: ctx)
        #expect(up.scale == 4)
        let crop = try ImageIO.read(path: sharedModelFixtures.appendingPathComponent("realesrgan_x4plus_ncnn_crop.png").path).image
        let ref = try ImageIO.read(path: sharedModelFixtures.appendingPathComponent("realesrgan_x4plus_ncnn_expected.png").path).image
        let out = try up.enhance(crop, context: ctx)
        #expect(out.width == ref.width && out.height == ref.height)
        let (share, worst) = agreement(out.pixels, ref.pixels)
        #expect(share >= 0.999, "x4plus ncnn: \(share * 100)% within 1 gray level, max diff \(worst)")
    }

    @Test func ncnnFilesOfAnotherKindAreRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ncnn-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let param = dir.appendingPathComponent("m.param").path, bin = dir.appendingPathComponent("m.bin").path
        // One 1×1 conv with fp16 weights and a bias: a valid ncnn model, but not Real-ESRGAN.
        try "7767517\n2 2\nInput in 0 1 data\nConvolution c 1 1 data out 0=1 1=1 5=1 6=1\n".write(toFile: param, atomically: true, encoding: .utf8)
        var bytes: [UInt8] = [0x47, 0x6b, 0x30, 0x01, 0x00, 0x3c, 0, 0]   // fp16 tag, 1.0, padding
        bytes += [0, 0, 0x80, 0x3f]                                         // bias 1.0
        try Data(bytes).write(to: URL(fileURLWithPath: bin))
        let model = try NCNNModel(path: param)
        #expect(model.weights["c.weight"]?.floats() == [1])
        #expect(model.weights["c.bias"]?.floats() == [1])
        #expect(throws: (any Error).self) { try RealESRGANer(modelPath: param, context: ctx) }
        // A .bin cut short names the layer.
        try Data(bytes.prefix(6)).write(to: URL(fileURLWithPath: bin))
        #expect(throws: WeightsError.self) { try NCNNModel(path: param) }
        // A .param that is not ncnn.
        try "hello\n".write(toFile: param, atomically: true, encoding: .utf8)
        #expect(throws: WeightsError.self) { try NCNNModel(path: param) }
    }
}

/// The zero-copy dense blocks (each conv writing into a channel range of one nChw16c stack, each
/// block writing its residual output into the head of the next block's stack) against the same
/// network written with plain ops (conv, concat, scale, add), on a configuration whose widths are
/// multiples of 16 (the tiny reference fixture's growth of 8 takes the concat fallback).
@Suite struct RRDBZeroCopy {
    let ctx = ComputeContext(threads: 2)

    @Test func chainedStacksMatchPlainOps() throws {
        let (f, g, blocks) = (32, 16, 2)
        var names: [String] = [], tensors: [String: WeightTensor] = [:]
        var seed: UInt64 = 1
        func add(_ key: String, _ cout: Int, _ cin: Int) {
            seed += 1
            var state = seed
            let n = cout * cin * 9
            let w = (0..<n).map { _ -> Float in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return (Float(state >> 40) / Float(1 << 23) - 1) / Float(cin * 9).squareRoot()
            }
            names += [key + ".weight", key + ".bias"]
            tensors[key + ".weight"] = WeightTensor(shape: [cout, cin, 3, 3], floats: w)
            tensors[key + ".bias"] = WeightTensor(shape: [cout], floats: (0..<cout).map { Float($0 % 7) * 0.01 })
        }
        add("conv_first", f, 3)
        for b in 0..<blocks { for r in 1...3 { for c in 1...5 { add("body.\(b).rdb\(r).conv\(c)", c == 5 ? f : g, f + (c - 1) * g) } } }
        add("conv_body", f, f); add("conv_up1", f, f); add("conv_up2", f, f); add("conv_hr", f, f); add("conv_last", 3, f)
        let sd = StateDict(names: names, tensors: tensors)
        let net = try RRDBNet(stateDict: sd, file: "test", context: ctx)
        let x = Tensor(shape: [1, 3, 20, 18], values: (0..<(3 * 20 * 18)).map { Float(($0 * 37) % 101) / 101 })

        func conv(_ key: String, lrelu: Bool = false) throws -> Conv2d {
            let w = tensors[key + ".weight"]!
            return try Conv2d(weight: w.floats(), shape: w.shape, bias: tensors[key + ".bias"]!.floats(), padding: Padding2D(1),
                              postOps: lrelu ? [.leakyReLU(0.2)] : [], context: ctx)
        }
        func rdb(_ p: String, _ x: Tensor) throws -> Tensor {
            var feats = [x]
            for c in 1...4 { feats.append(try conv("\(p).conv\(c)", lrelu: true)(try ctx.concat(feats), ctx)) }
            return try ctx.add(try ctx.scale(try conv("\(p).conv5")(try ctx.concat(feats), ctx), by: 0.2), x)
        }
        var feat = try conv("conv_first")(x, ctx)
        var trunk = feat
        for b in 0..<blocks {
            var y = trunk
            for r in 1...3 { y = try rdb("body.\(b).rdb\(r)", y) }
            trunk = try ctx.add(try ctx.scale(y, by: 0.2), trunk)
        }
        feat = try ctx.add(feat, try conv("conv_body")(trunk, ctx))
        feat = try conv("conv_up1", lrelu: true)(try ctx.resize(feat, factor: 2, mode: .nearest), ctx)
        feat = try conv("conv_up2", lrelu: true)(try ctx.resize(feat, factor: 2, mode: .nearest), ctx)
        let expected = try ctx.array(try conv("conv_last")(try conv("conv_hr", lrelu: true)(feat, ctx), ctx))
        let got = try ctx.array(try net(x, ctx))
        #expect(got.count == expected.count)
        let worst = zip(got, expected).map { abs($0 - $1) }.max() ?? .infinity
        let scale = expected.map(abs).max() ?? 1
        #expect(worst <= 1e-5 * max(1, scale), "max abs \(worst) at scale \(scale)")
    }
}
