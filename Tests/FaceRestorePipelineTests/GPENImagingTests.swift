// The numeric stages of GPEN's pipeline against yangxy/GPEN `align_faces.py` (commit 2c73670) and
// OpenCV 4.6 (fixture `gpen_imaging.safetensors` from scripts/make_fixtures.py `make_gpen_imaging`):
// the reference points, the Umeyama fits, the small-face smoothing, addWeighted and the float32
// mask resize.

import FaceRestoreImaging
@testable import FaceRestorePipeline
import FaceRestoreWeights
import Foundation
import Testing

let gpenImaging = try! SafeTensors.read(path: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("FaceRestoreImagingTests/Fixtures/gpen_imaging.safetensors").path)

func image(_ key: String) -> PixelImage {
    let t = gpenImaging[key]!
    return PixelImage(width: t.shape[1], height: t.shape[0], channels: t.shape[2], pixels: t.doubles().map { UInt8($0) })
}

@Suite struct GPENImaging {
    @Test(arguments: [64, 256, 512, 1024])
    func templateEqualsGPENReferencePoints(_ size: Int) {
        let expected = gpenImaging["template\(size)"]!.doubles()
        let ours = Recipe.gpenTemplate(size: size).flatMap { [$0.x, $0.y] }
        #expect(ours == expected, "size \(size)")
    }

    /// GPEN fits in float32 (its points are float32), we in float64: the matrices agree to float32
    /// precision. Measured where it matters, on the points they map: ≤ 1e-3 px.
    @Test func umeyamaFitsEqualGPEN() {
        let points = gpenImaging["points"]!.doubles(), forward = gpenImaging["forward"]!.doubles()
        let inverse = gpenImaging["inverse"]!.doubles()
        let template = Recipe.gpenTemplate(size: 512)
        var worst = 0.0
        for k in 0..<(points.count / 10) {
            let src = (0..<5).map { (x: points[k * 10 + 2 * $0], y: points[k * 10 + 2 * $0 + 1]) }
            let fit = SimilarityFit.umeyama(from: src, to: template)!
            let back = SimilarityFit.umeyama(from: template, to: src, fixedScale: 1 / fit.scale)!
            let theirs = AffineMatrix(Array(forward[(k * 6)..<(k * 6 + 6)])), theirsBack = AffineMatrix(Array(inverse[(k * 6)..<(k * 6 + 6)]))
            for (p, q) in zip(src, template) {
                let a = fit.matrix.apply(p), b = theirs.apply(p), c = back.matrix.apply(q), d = theirsBack.apply(q)
                worst = max(worst, abs(a.x - b.x), abs(a.y - b.y), abs(c.x - d.x), abs(c.y - d.y))
            }
        }
        print("gpen umeyama: worst mapped-point difference \(worst) px")
        #expect(worst <= 1e-3)
    }

    @Test func smoothingAndAddWeightedEqualOpenCV() {
        #expect(image("image").smoothed3x3() == image("smoothed"))
        for alpha in [0.8, 0.35] {
            #expect(PixelImage.addWeighted(image("image"), alpha, image("other")) == image("weighted\(alpha)"), "alpha \(alpha)")
        }
    }

    @Test(arguments: [8, 32, 128, 45])
    func maskResizeMatchesOpenCV(_ size: Int) {
        let src = gpenImaging["mask"]!
        let mask = Plane<Float>(width: 64, height: 64, values: src.doubles().map { Float($0) })
        let ours = mask.resizedLinear(width: size, height: size).values.map(Double.init)
        let worst = zip(ours, gpenImaging["mask\(size)"]!.doubles()).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-6, "64 → \(size): max diff \(worst)")
    }
}
