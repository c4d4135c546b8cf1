// GFPGANv1Clean against the reference forward (gfpgan 1.3.8, randomize_noise=False) on a small
// random-weight configuration in the official layout (scripts/make_fixtures.py).

import FaceRestoreEngine
@testable import FaceRestoreModels
import FaceRestoreWeights
import Foundation
import Testing

let modelFixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

@Suite struct GFPGANCleanParity {
    let ctx = ComputeContext(threads: 2)

    @Test func tinyRandomConfigurationMatchesReference() throws {
        let path = modelFixtures.appendingPathComponent("gfpgan_clean_tiny.pth").path
        let net = try GFPGANv1Clean(path: path, context: ctx)
        var expectedConfig = GFPGANCleanConfig()
        (expectedConfig.outSize, expectedConfig.styleDim, expectedConfig.channelMultiplier, expectedConfig.narrow) = (32, 32, 1, 0.0625)
        #expect(net.config == expectedConfig)
        #expect(net.unusedKeys.contains("stylegan_decoder.style_mlp.1.weight"))
        #expect(net.unusedKeys.contains("toRGB.0.weight"))
        let io = try SafeTensors.read(path: modelFixtures.appendingPathComponent("gfpgan_clean_tiny_io.safetensors").path)
        let x = io["x"]!, y = io["y"]!
        let out = try ctx.array(net(Tensor(shape: x.shape, values: x.floats()), ctx))
        let expected = y.floats()
        let maxAbs = zip(out, expected).map { abs($0 - $1) }.max()!
        if ProcessInfo.processInfo.environment["FACERESTORE_PARITY_REPORT"] != nil {
            print("parity gfpgan_clean_tiny max_abs \(maxAbs) range \(expected.min()!)…\(expected.max()!)")
        }
        #expect(maxAbs <= 1e-4, "max abs error \(maxAbs) (output range \(expected.min()!)…\(expected.max()!))")
        // Deterministic: the same input gives the same output bits.
        #expect(try ctx.array(net(Tensor(shape: x.shape, values: x.floats()), ctx)) == out)
    }
}
