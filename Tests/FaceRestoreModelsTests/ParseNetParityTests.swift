// ParseNet against facexlib 0.3.0 with random weights in the official layout
// (scripts/make_fixtures.py `make_parsenet`; 85 MB, kept outside the repo, skipped when absent).

import FaceRestoreEngine
import FaceRestoreModels
import FaceRestoreWeights
import Foundation
import Testing

let parseNetAvailable = FileManager.default.fileExists(atPath: referenceFixtures + "/parsenet_random.pth")

@Suite struct ParseNetParity {
    @Test(.enabled(if: parseNetAvailable, "reference fixtures (parsenet_random.pth) are absent"))
    func randomWeightsMatchFacexlib() throws {
        let ctx = ComputeContext(threads: 2)
        let net = try ParseNet(path: referenceFixtures + "/parsenet_random.pth", context: ctx)
        let io = try SafeTensors.read(path: referenceFixtures + "/parsenet_expected.safetensors")
        let x = Tensor(shape: io["x"]!.shape, values: io["x"]!.floats())
        let logits = try ctx.array(net.logits(x, ctx))
        let expected = io["logits"]!.floats()
        let maxAbs = zip(logits, expected).map { abs($0 - $1) }.max()!
        let scale = expected.map(abs).max()!
        #expect(maxAbs <= 1e-4 * max(1, scale), "max abs \(maxAbs) on logits up to \(scale)")
        let labels = try net.labels(x, ctx), theirs = io["labels"]!.floats().map { UInt8($0) }
        let differing = zip(labels, theirs).filter { $0 != $1 }.count
        #expect(Double(differing) / Double(labels.count) <= 1e-4, "\(differing) of \(labels.count) labels differ")
        print("ParseNet: logits max abs \(maxAbs) (range ±\(scale)), labels differing \(differing)/\(labels.count)")
    }

    @Test func anotherNetworkIsRefused() throws {
        let path = modelFixtures.appendingPathComponent("gfpgan_clean_tiny.pth").path
        #expect(throws: ModelError.self) { try ParseNet(path: path, context: ComputeContext(threads: 1)) }
    }
}
