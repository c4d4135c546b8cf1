// CodeFormer's photo preparation: `cv2.resize(img, (0, 0), fx=f, fy=f)` and INTER_AREA shrinks against OpenCV 4.6
// (fixture from scripts/make_resize_factor_fixture.py), and facelib's gray handling (`is_gray`,
// `bgr2gray` + `adain_npy`) on images whose answers follow from the definitions.

import FaceRestoreImaging
import FaceRestoreWeights
import Foundation
import Testing

@Suite struct FactorResizeAndGray {
    /// An 8×8 BGR image whose pixel i is `bgr(i)`.
    static func image(_ bgr: (Int) -> (Int, Int, Int)) -> PixelImage {
        var pixels: [UInt8] = []
        for i in 0..<64 {
            let (b, g, r) = bgr(i)
            pixels += [UInt8(b), UInt8(g), UInt8(r)]
        }
        return PixelImage(width: 8, height: 8, channels: 3, pixels: pixels)
    }

    @Test(arguments: ["portrait", "landscape", "square", "wide"])
    func enlargingByAFactorMatchesOpenCV(_ name: String) throws {
        let cases = try SafeTensors.read(path: Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
            .appendingPathComponent("resize_factor.safetensors").path)
        let src = pixelImage(try #require(cases["\(name).src"])), expected = pixelImage(try #require(cases["\(name).dst"]))
        let f = Double(try #require(cases["\(name).f"]).floats()[0])
        let out = try #require(src.enlargedLinear(by: f))
        #expect(out.width == expected.width && out.height == expected.height)
        #expect(out.pixels == expected.pixels, "\(name): \(zip(out.pixels, expected.pixels).filter { $0 != $1 }.count) values differ")
        // The size ratio (what `resizedLinear(width:height:)` samples at) is not OpenCV's fx grid.
        #expect(src.resizedLinear(width: out.width, height: out.height).pixels != expected.pixels || name == "square")
    }

    @Test(arguments: ["area_frac", "area_mixed", "area_third"])
    func shrinkingByAreaMatchesOpenCV(_ name: String) throws {
        let cases = try SafeTensors.read(path: Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
            .appendingPathComponent("resize_factor.safetensors").path)
        let src = pixelImage(try #require(cases["\(name).src"])), expected = pixelImage(try #require(cases["\(name).dst"]))
        let out = src.shrunkByArea(width: expected.width, height: expected.height)
        #expect(out.width == expected.width && out.height == expected.height)
        #expect(out.pixels == expected.pixels, "\(name): \(zip(out.pixels, expected.pixels).filter { $0 != $1 }.count) values differ")
    }

    @Test func enlargingRefusesNonsense() {
        let img = PixelImage(width: 2, height: 2, channels: 3, pixels: [UInt8](repeating: 9, count: 12))
        #expect(img.enlargedLinear(by: .nan) == nil && img.enlargedLinear(by: 0.5) == nil)
        #expect(img.enlargedLinear(by: 1e9) == nil, "bounded by maxPixels")
    }

    @Test func grayTestIsTheMeanVarianceOfChannelDifferences() {
        // Channel differences constant → variance 0 → gray, whatever the tint.
        let tinted = Self.image { i in (i, i + 10, i + 30) }
        #expect(tinted.isGray())
        // Differences ±d on alternate pixels: var(b−g) = d², var(g−r) = 0, var(r−b) = d² → mean 2d²/3.
        func alternating(_ d: Int) -> PixelImage { Self.image { i in (i % 2 == 0 ? 100 + d : 100 - d, 100, 100) } }
        #expect(alternating(3).isGray(), "2·9/3 = 6 ≤ 10")
        #expect(!alternating(4).isGray(), "2·16/3 = 10.7 > 10")
    }

    @Test func grayTonedTakesTheReferencesMeanAndSpreadPerChannel() {
        let n = 64
        let face = Self.image { i in (i * 3, 255 - i * 2, i) }
        let reference = Self.image { i in (40 + i, 60 + i, 80 + 2 * i) }
        let toned = face.grayToned(like: reference)
        for c in 0..<3 {
            let got = (0..<n).map { Double(toned.pixels[3 * $0 + c]) }, want = (0..<n).map { Double(reference.pixels[3 * $0 + c]) }
            let (gm, wm) = (got.reduce(0, +) / Double(n), want.reduce(0, +) / Double(n))
            let gs = (got.map { ($0 - gm) * ($0 - gm) }.reduce(0, +) / Double(n)).squareRoot()
            let ws = (want.map { ($0 - wm) * ($0 - wm) }.reduce(0, +) / Double(n)).squareRoot()
            #expect(abs(gm - wm) < 0.6 && abs(gs - ws) < 0.6, "channel \(c): mean \(gm) vs \(wm), std \(gs) vs \(ws)")
        }
        // `grayscaled` writes one value into all three channels.
        let p = face.grayscaled().pixels
        let equal = stride(from: 0, to: p.count, by: 3).filter { (i: Int) -> Bool in p[i] == p[i + 1] && p[i] == p[i + 2] }
        #expect(equal.count == 64)
    }
}
