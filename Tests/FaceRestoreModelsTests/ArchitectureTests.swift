// Architecture recognition from key names and shapes, on the official layouts (fixtures written by
// scripts/make_fixtures.py from the reference architectures: real keys and shapes, stride-0 data).

import FaceRestoreModels
import FaceRestoreWeights
import Foundation
import Testing

func layout(_ name: String) throws -> StateDict {
    let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("\(name)_layout.pth")
    return try WeightsFile.load(path: url.path).0
}

@Suite struct ArchitectureRecognition {
    @Test(arguments: [
        ("gfpgan_v1", Architecture.gfpganV1(outSize: 512, channelMultiplier: 1, narrow: 1)),
        ("gfpgan_clean_c1_256", Architecture.gfpganClean(outSize: 256, channelMultiplier: 1, narrow: 1)),
        ("parsenet", Architecture.parseNet),
        ("rrdbnet_x2", Architecture.rrdbNet(scale: 2, features: 64, blocks: 23)),
        ("rrdbnet_x4", Architecture.rrdbNet(scale: 4, features: 64, blocks: 23)),
        ("srvgg_x4", Architecture.srvggNetCompact(scale: 4, features: 64, convs: 32)),
        ("retinaface_r50", Architecture.retinaFace(backbone: "ResNet50")),
        ("gpen_512", Architecture.gpen(size: 512)),
        ("gpen_256", Architecture.gpen(size: 256)),
    ])
    func recognizesOfficialLayouts(_ name: String, _ expected: Architecture) throws {
        #expect(Architecture.detect(try layout(name)) == expected)
    }

    @Test func gfpganV14FromItsChannelShapes() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("FaceRestoreCLITests/Fixtures/gfpgan_v1.4_layout.pth")
        let sd = try WeightsFile.load(path: url.path).0
        #expect(Architecture.detect(sd) == .gfpganClean(outSize: 512, channelMultiplier: 2, narrow: 1))
    }

    @Test func unknownKeysAreNotGuessed() {
        #expect(Architecture.detect(shapes: ["fc.weight": [10, 5], "fc.bias": [10]]) == nil)
        // a GFPGAN-like dict missing its decoder is not called GFPGAN
        #expect(Architecture.detect(shapes: ["final_linear.weight": [8192, 4096], "conv_body_first.weight": [32, 3, 1, 1]]) == nil)
    }
}
