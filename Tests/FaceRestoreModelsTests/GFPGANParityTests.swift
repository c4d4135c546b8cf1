// GFP-GAN against the reference forward (gfpgan 1.3.8, randomize_noise=False) on small random-weight
// configurations in the official layouts (scripts/make_fixtures.py): GFPGANv1Clean (v1.2–v1.4) and
// GFPGANv1 (the paper architecture, v1; its CUDA-only FusedLeakyReLU replaced by the CPU equivalent
// on the reference side).

import FaceRestoreEngine
@testable import FaceRestoreModels
import FaceRestoreWeights
import Foundation
import Testing

let modelFixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

@Suite struct GFPGANParity {
    let ctx = ComputeContext(threads: 2)

    func check(_ name: String, expectedConfig: GFPGANConfig) throws {
        let path = modelFixtures.appendingPathComponent("\(name).pth").path
        let net = try GFPGAN(path: path, context: ctx)
        #expect(net.config == expectedConfig)
        #expect(net.unusedKeys.contains("stylegan_decoder.style_mlp.1.weight"))
        #expect(net.unusedKeys.contains("toRGB.0.weight"))
        let io = try SafeTensors.read(path: modelFixtures.appendingPathComponent("\(name)_io.safetensors").path)
        let x = io["x"]!, y = io["y"]!
        let out = try ctx.array(net(Tensor(shape: x.shape, values: x.floats()), ctx))
        let expected = y.floats()
        let maxAbs = zip(out, expected).map { abs($0 - $1) }.max()!
        if ProcessInfo.processInfo.environment["FACERESTORE_PARITY_REPORT"] != nil {
            print("parity \(name) max_abs \(maxAbs) range \(expected.min()!)…\(expected.max()!)")
        }
        #expect(maxAbs <= 1e-4, "max abs error \(maxAbs) (output range \(expected.min()!)…\(expected.max()!))")
        // Deterministic: the same input gives the same output bits.
        #expect(try ctx.array(net(Tensor(shape: x.shape, values: x.floats()), ctx)) == out)
        // Passing the stored noise explicitly is the same computation.
        let stored = net.blocks.decoder.noises
        #expect(try ctx.array(net(Tensor(shape: x.shape, values: x.floats()), noise: stored, ctx)) == out)
    }

    @Test func cleanTinyConfigurationMatchesReference() throws {
        var c = GFPGANConfig()
        (c.architecture, c.outSize, c.styleDim, c.channelMultiplier, c.narrow) = (.clean, 32, 32, 1, 0.0625)
        try check("gfpgan_clean_tiny", expectedConfig: c)
    }

    @Test func originalTinyConfigurationMatchesReference() throws {
        var c = GFPGANConfig()
        (c.architecture, c.outSize, c.styleDim, c.channelMultiplier, c.narrow) = (.original, 64, 32, 1, 0.0625)
        try check("gfpgan_v1_tiny", expectedConfig: c)
    }

    @Test func bf16PrecisionIsCloseButNotIdentical() throws {
        let bf16 = ComputeContext(threads: 2, precision: .bf16)
        let path = modelFixtures.appendingPathComponent("gfpgan_v1_tiny.pth").path
        let io = try SafeTensors.read(path: modelFixtures.appendingPathComponent("gfpgan_v1_tiny_io.safetensors").path)
        let x = Tensor(shape: io["x"]!.shape, values: io["x"]!.floats())
        let out = try bf16.array(try GFPGAN(path: path, context: bf16)(x, bf16))
        let expected = io["y"]!.floats()
        let maxAbs = zip(out, expected).map { abs($0 - $1) }.max()!
        #expect(maxAbs > 1e-4 && maxAbs < 0.1, "bf16 max abs error \(maxAbs)")
    }

    @Test func otherArchitecturesAreRefusedByName() throws {
        let path = modelFixtures.appendingPathComponent("parsenet_layout.pth").path
        #expect(throws: ModelError.self) { try GFPGAN(path: path, context: ctx) }
        do { _ = try GFPGAN(path: path, context: ctx) } catch {
            #expect("\(error)" == "\(path): this is ParseNet face parsing (19 classes), not GFPGAN (v1, v1.2, v1.3 or v1.4)")
        }
    }

    @Test func wrongNoiseShapesAreRefused() throws {
        let net = try GFPGAN(path: modelFixtures.appendingPathComponent("gfpgan_clean_tiny.pth").path, context: ctx)
        let x = Tensor(shape: [1, 3, 32, 32], repeating: 0)
        #expect(throws: ModelError.self) { try net(x, noise: [Tensor(shape: [1, 1, 4, 4], repeating: 0)], ctx) }
        #expect(throws: ModelError.self) { try net(Tensor(shape: [1, 3, 64, 64], repeating: 0), ctx) }
    }
}
