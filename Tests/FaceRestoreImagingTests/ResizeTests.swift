// cv2.resize INTER_LINEAR on 8-bit BGR against OpenCV 4.6 (fixture from scripts/make_fixtures.py).

import FaceRestoreImaging
import FaceRestoreWeights
import Foundation
import Testing

let resizeCases = try! SafeTensors.read(path: Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    .appendingPathComponent("resize.safetensors").path)

func pixelImage(_ t: WeightTensor) -> PixelImage {
    PixelImage(width: t.shape[1], height: t.shape[0], channels: t.shape[2], pixels: t.floats().map { UInt8($0) })
}

@Suite struct OpenCVResize {
    @Test(arguments: ["up", "down", "half", "same", "slight", "odd", "dot", "tiny", "wide"])
    func linearMatchesOpenCVBitExactly(_ name: String) throws {
        let src = pixelImage(resizeCases["\(name).src"]!), expected = pixelImage(resizeCases["\(name).dst"]!)
        let out = src.resizedLinear(width: expected.width, height: expected.height)
        #expect(out.width == expected.width && out.height == expected.height)
        let diffs = zip(out.pixels, expected.pixels).map { abs(Int($0) - Int($1)) }
        let mismatched = diffs.filter { $0 != 0 }.count
        #expect(mismatched == 0, "\(name): \(mismatched) of \(diffs.count) values differ, max \(diffs.max() ?? 0)")
    }
}
