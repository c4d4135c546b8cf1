// The OpenCV stages of facexlib's alignment and paste-back against OpenCV 4.6 itself
// (fixture `geometry.safetensors` from scripts/make_fixtures.py `make_geometry`).

import FaceRestoreImaging
import FaceRestoreWeights
import Foundation
import Testing

let geometry = try! SafeTensors.read(path: Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    .appendingPathComponent("geometry.safetensors").path)

func doubles(_ key: String) -> [Double] { geometry[key]!.doubles() }

func plane<T: BinaryFloatingPoint>(_ key: String, as: T.Type) -> Plane<T> {
    let t = geometry[key]!
    return Plane(width: t.shape[1], height: t.shape[0], values: t.doubles().map { T($0) })
}

/// Share of values within `tolerance`, and the largest difference.
func agreement(_ a: [Double], _ b: [Double], tolerance: Double) -> (share: Double, maxDiff: Double) {
    let d = zip(a, b).map { abs($0 - $1) }
    return (Double(d.filter { $0 <= tolerance }.count) / Double(max(d.count, 1)), d.max() ?? 0)
}

@Suite struct OpenCVGeometry {
    @Test func lmedsSimilarityEqualsOpenCV() throws {
        let lms = doubles("lmeds.landmarks"), tpl = doubles("lmeds.template"), mats = doubles("lmeds.matrices")
        let template = (0..<5).map { (x: tpl[2 * $0], y: tpl[2 * $0 + 1]) }
        let cases = lms.count / 10
        var worst = 0.0
        for c in 0..<cases {
            let pts = (0..<5).map { (x: lms[c * 10 + 2 * $0], y: lms[c * 10 + 2 * $0 + 1]) }
            let m = try #require(SimilarityFit.estimateLMedS(from: pts, to: template))
            for i in 0..<6 {
                let expected = mats[c * 6 + i]
                let err = abs(m.m[i] - expected) / max(1, abs(expected))
                worst = max(worst, err)
                #expect(err <= 1e-6, "case \(c) coefficient \(i): \(m.m[i]) vs OpenCV \(expected)")
            }
        }
        print("LMedS: \(cases) landmark sets, worst coefficient error \(worst)")
    }

    @Test func openCVRandomSequence() {
        // cv::RNG(0xFFFFFFFFFFFFFFFF): the first draws, from the recurrence by hand.
        var rng = OpenCVRandom()
        let first = rng.next()
        #expect(UInt64(first) == (UInt64(UInt32.max) &* 4_164_903_690 &+ UInt64(UInt32.max)) & 0xFFFF_FFFF)
    }

    @Test func invertAffineTransform() {
        let mats = doubles("lmeds.matrices"), inv = doubles("invert.matrices")
        for c in 0..<(mats.count / 6) {
            let m = AffineMatrix(Array(mats[(c * 6)..<(c * 6 + 6)])).inverted()
            for i in 0..<6 { #expect(m.m[i] == inv[c * 6 + i]) }
        }
    }

    @Test func warpAffineUInt8GrayBorder() {
        let src = pixelImage(geometry["warp.src"]!)
        let expected = pixelImage(geometry["warp.gray_border"]!)
        let out = src.warpedAffine(AffineMatrix(doubles("warp.matrix")), width: expected.width, height: expected.height,
                                   border: [135, 133, 132])
        let differing = zip(out.pixels, expected.pixels).filter { $0 != $1 }.count
        #expect(differing == 0, "\(differing) of \(out.pixels.count) values differ")
    }

    @Test func warpAffineUInt8InverseZeroBorder() {
        let src = pixelImage(geometry["warp.src"]!)
        let expected = pixelImage(geometry["warp.inverse"]!)
        let out = src.warpedAffine(AffineMatrix(doubles("warp.inverse_matrix")), width: expected.width,
                                   height: expected.height, border: [0, 0, 0])
        let differing = zip(out.pixels, expected.pixels).filter { $0 != $1 }.count
        #expect(differing == 0, "\(differing) of \(out.pixels.count) values differ")
    }

    @Test func warpAffineFloatMasks() {
        let m = AffineMatrix(doubles("warp.inverse_matrix"))
        let f64 = plane("warp.mask", as: Double.self).warpedAffine(m, width: 130, height: 100)
        let a = agreement(f64.values, doubles("warp.mask_f64"), tolerance: 1e-12)
        #expect(a.share == 1, "float64 max diff \(a.maxDiff)")
        let f32 = plane("warp.mask", as: Float.self).warpedAffine(m, width: 130, height: 100)
        let b = agreement(f32.values.map(Double.init), doubles("warp.mask_f32"), tolerance: 1e-6)
        #expect(b.share == 1, "float32 max diff \(b.maxDiff)")
    }

    @Test func gaussianBlurParseMask() {
        let src = plane("blur.parse_src", as: Double.self)
        let once = src.gaussianBlurred(size: 101, sigma: 11)
        let a = agreement(once.values, doubles("blur.parse_once"), tolerance: 1e-9)
        #expect(a.share == 1, "once: max diff \(a.maxDiff)")
        let twice = once.gaussianBlurred(size: 101, sigma: 11)
        let b = agreement(twice.values, doubles("blur.parse_twice"), tolerance: 1e-9)
        #expect(b.share == 1, "twice: max diff \(b.maxDiff)")
        print("GaussianBlur 101/11 float64: max diff \(a.maxDiff), \(b.maxDiff)")
    }

    @Test(arguments: [3, 9, 31])
    func gaussianBlurSoftMask(_ k: Int) {
        let out = plane("blur.soft_src", as: Float.self).gaussianBlurred(size: k, sigma: 0)
        let a = agreement(out.values.map(Double.init), doubles("blur.soft_k\(k)"), tolerance: 1e-6)
        #expect(a.share == 1, "k \(k): max diff \(a.maxDiff)")
    }

    @Test(arguments: [2, 3, 4, 14])
    func erodeSquare(_ k: Int) {
        let out = plane("blur.soft_src", as: Float.self).eroded(size: k)
        #expect(out.values.map(Double.init) == doubles("erode.k\(k)"))
    }

    @Test(arguments: ["x2", "x3", "x1_5", "down"])
    func lanczos4(_ name: String) {
        let src = pixelImage(geometry["warp.src"]!)
        let expected = pixelImage(geometry["lanczos.\(name)"]!)
        let out = src.resizedLanczos4(width: expected.width, height: expected.height)
        let d = zip(out.pixels, expected.pixels).map { abs(Int($0) - Int($1)) }
        let differing = d.filter { $0 != 0 }.count
        #expect(differing == 0, "\(name): \(differing) of \(d.count) differ, max \(d.max() ?? 0)")
    }
}
