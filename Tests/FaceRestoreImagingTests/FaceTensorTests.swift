// Conversions against basicsr's img2tensor/normalize/tensor2img (fixture from scripts/make_fixtures.py).

import FaceRestoreEngine
import FaceRestoreImaging
import FaceRestoreWeights
import Foundation
import Testing

let convert = try! SafeTensors.read(path: Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    .appendingPathComponent("convert.safetensors").path)

@Suite struct FaceTensorConversions {
    @Test func imageToTensorIsBitExact() throws {
        let img = convert["in.image"]!
        let image = PixelImage(width: img.shape[1], height: img.shape[0], channels: 3, pixels: img.floats().map { UInt8($0) })
        let t = FaceTensor.normalized(bgr: image)
        #expect(t.shape == convert["in.tensor"]!.shape)
        #expect(try ComputeContext(threads: 1).array(t) == convert["in.tensor"]!.floats())
    }

    @Test func tensorToImageRoundsLikeNumpy() throws {
        let y = convert["out.tensor"]!
        let image = try FaceTensor.bgrImage(from: Tensor(shape: y.shape, values: y.floats()), ComputeContext(threads: 1))
        let expected = convert["out.image"]!
        #expect([image.height, image.width, image.channels] == expected.shape)
        #expect(image.pixels == expected.floats().map { UInt8($0) })
    }

    @Test func wrongShapeIsAnError() {
        #expect(throws: EngineError.self) {
            try FaceTensor.bgrImage(from: Tensor(shape: [1, 4, 2, 2], repeating: 0), ComputeContext(threads: 1))
        }
    }
}
