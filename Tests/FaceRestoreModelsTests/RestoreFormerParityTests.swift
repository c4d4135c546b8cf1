// RestoreFormer and RestoreFormer++: recognized from their keys (own layout and the Lightning
// checkpoint's `vqvae.` keys), and, where scripts/make_restoreformer_fixtures.py has written its
// random-weight fixtures (~/.cache/facerestore-reference/fixtures, reference env only), the network
// at parity with gfpgan 1.3.8 on a real face. scripts/parity_restoreformer.py runs every case.

import FaceRestoreEngine
import FaceRestoreModels
import FaceRestoreWeights
import Foundation
import Testing

private let restoreFormerFixtures = (ProcessInfo.processInfo.environment["HOME"] ?? "/root") + "/.cache/facerestore-reference/fixtures/"

@Suite struct RestoreFormerParity {
    @Test func recognizedFromTheirKeys() {
        let rf: [String: [Int]] = ["quantize.embedding.weight": [1024, 256], "encoder.conv_in.weight": [64, 3, 3, 3],
                                   "decoder.conv_out.weight": [3, 64, 3, 3]]
        #expect(Architecture.detect(shapes: rf) == .restoreFormer(plusPlus: false))
        #expect(Architecture.detect(shapes: rf.merging(["decoder.up.4.attn.0.q.weight": [256, 256, 1, 1]]) { a, _ in a })
                == .restoreFormer(plusPlus: true))
        let lightning = Dictionary(uniqueKeysWithValues: rf.map { ("vqvae." + $0.key, $0.value) } + [("loss.logvar", [1])])
        #expect(Architecture.detect(shapes: lightning) == .restoreFormer(plusPlus: false))
        #expect(Architecture.detect(shapes: rf.merging(["position_emb": [256, 512]]) { a, _ in a }) == .codeFormer(fusedSizes: [], codebookSize: 1024))
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: restoreFormerFixtures + "restoreformer_pp_parity.safetensors"),
                   "no RestoreFormer fixtures (scripts/make_restoreformer_fixtures.py, reference env)"))
    func restoreFormerPlusPlusFromTheLightningCheckpointMatchesTheReference() throws {
        let ctx = ComputeContext(threads: 2)
        let net = try RestoreFormer(path: restoreFormerFixtures + "restoreformer_pp_random.ckpt", context: ctx)
        #expect(net.variant == .restoreFormerPlusPlus && net.heads == 4)
        let ref = try SafeTensors.read(path: restoreFormerFixtures + "restoreformer_pp_parity.safetensors")
        let x = try #require(ref["astronaut.input"]), want = try #require(ref["astronaut.output"])
        let indices = try #require(ref["astronaut.quant.indices"])
        let (y, codes) = try net.forward(Tensor(shape: x.shape, values: x.floats()), ctx)
        #expect(codes.indices == indices.floats().map { Int($0) })
        let out = try ctx.array(y), expected = want.floats()
        var worst: Float = 0
        for i in out.indices { worst = max(worst, abs(min(max(out[i], -1), 1) - min(max(expected[i], -1), 1))) }
        #expect(worst <= 1e-4, "max |Δ| on [-1, 1]: \(worst)")
    }
}
