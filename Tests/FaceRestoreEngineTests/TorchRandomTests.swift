// TorchGenerator against torch.manual_seed + normal_() (fixture from scripts/make_fixtures.py).

import FaceRestoreEngine
import FaceRestoreWeights
import Foundation
import Testing

@Suite struct TorchRandomStream {
    @Test(arguments: [UInt64(0), 1234])
    func normalMatchesTorchDrawForDraw(_ seed: UInt64) throws {
        let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("noise.safetensors")
        let expected = try SafeTensors.read(path: url.path)
        var g = TorchGenerator(seed: seed)
        for (i, n) in [16, 64, 64, 256, 20, 1000].enumerated() {
            let ours = g.normal(count: n), theirs = expected["seed\(seed).\(i)"]!.floats()
            let worst = zip(ours, theirs).map { abs($0 - $1) }.max()!
            #expect(worst <= 1e-5, "seed \(seed), draw \(i) (\(n) values): max abs \(worst)")
        }
    }

    @Test func mt19937MatchesTheStandardSequence() {
        // std::mt19937 with the default seed 5489 yields 3499211612 first and 4123659995 as the 10000th.
        var g = TorchGenerator(seed: 5489)
        #expect(g.next() == 3_499_211_612)
        for _ in 0..<9998 { _ = g.next() }
        #expect(g.next() == 4_123_659_995)
    }
}
