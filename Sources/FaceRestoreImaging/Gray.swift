// Gray photos, as CodeFormer's facelib treats them (sczhou/CodeFormer @ b33cc7d639d6
// `facelib/utils/misc.py`: `is_gray`, `bgr2gray`, `adain_npy`): a photo is gray when the mean of
// the (population) variances of its three channel differences is at most 10; a restored face is
// made gray with 0.2989·R + 0.5870·G + 0.1140·B and then given, per channel, the mean and
// standard deviation (biased variance + 1e-5) of the input crop.

import Foundation

extension PixelImage {
    /// facelib's `is_gray(img, threshold)`: the mean over the pairs (c0−c1, c1−c2, c2−c0) of the
    /// variance of the per-pixel difference is at most `threshold`. One-channel images are gray.
    public func isGray(threshold: Double = 10) -> Bool {
        guard channels >= 3 else { return true }
        let n = width * height
        guard n > 0 else { return true }
        // Differences are integers in [-255, 255]: exact sums in Int.
        var (s0, s1, s2, q0, q1, q2) = (0, 0, 0, 0, 0, 0)
        pixels.withUnsafeBufferPointer { p in
            for i in 0..<n {
                let o = i * channels
                let (a, b, c) = (Int(p[o]), Int(p[o + 1]), Int(p[o + 2]))
                let (d0, d1, d2) = (a - b, b - c, c - a)
                s0 += d0; s1 += d1; s2 += d2
                q0 += d0 * d0; q1 += d1 * d1; q2 += d2 * d2
            }
        }
        func variance(_ s: Int, _ q: Int) -> Double {
            let mean = Double(s) / Double(n)
            return max(Double(q) / Double(n) - mean * mean, 0)
        }
        return (variance(s0, q0) + variance(s1, q1) + variance(s2, q2)) / 3 <= threshold
    }

    /// The face made gray and toned like `reference` (facelib's `adain_npy(bgr2gray(self),
    /// reference)`), rounded to 8 bits (upstream keeps the float values through the paste).
    /// Both are 3-channel and the same size; anything else returns `self`.
    public func grayToned(like reference: PixelImage) -> PixelImage {
        guard channels == 3, reference.channels == 3, reference.width == width, reference.height == height, width * height > 0 else {
            return self
        }
        let n = width * height
        var gray = [Double](repeating: 0, count: n)
        for i in 0..<n {
            let (b, g, r) = (Double(pixels[3 * i]), Double(pixels[3 * i + 1]), Double(pixels[3 * i + 2]))
            gray[i] = 0.2989 * r + 0.5870 * g + 0.1140 * b
        }
        func meanStd(_ value: (Int) -> Double) -> (Double, Double) {
            var s = 0.0
            for i in 0..<n { s += value(i) }
            let mean = s / Double(n)
            var ss = 0.0
            for i in 0..<n { let d = value(i) - mean; ss += d * d }
            return (mean, (ss / Double(n) + 1e-5).squareRoot())
        }
        let (gm, gs) = meanStd { gray[$0] }
        var out = [UInt8](repeating: 0, count: 3 * n)
        for c in 0..<3 {
            let (m, s) = meanStd { Double(reference.pixels[3 * $0 + c]) }
            for i in 0..<n { out[3 * i + c] = UInt8(clamping: Int(((gray[i] - gm) / gs * s + m).rounded())) }
        }
        return PixelImage(width: width, height: height, channels: 3, pixels: out)
    }

    /// The image as gray, `round(0.2989·R + 0.5870·G + 0.1140·B)` in all three channels (what
    /// `--keep-gray` makes of a gray photo's restoration).
    public func grayscaled() -> PixelImage {
        guard channels == 3 else { return self }
        var out = pixels
        for i in stride(from: 0, to: out.count - 2, by: 3) {
            let (b, g, r): (Double, Double, Double) = (Double(out[i]), Double(out[i + 1]), Double(out[i + 2]))
            let luma: Double = 0.2989 * r + 0.5870 * g + 0.1140 * b
            let v = UInt8(clamping: Int(luma.rounded()))
            out[i] = v; out[i + 1] = v; out[i + 2] = v
        }
        return PixelImage(width: width, height: height, channels: 3, pixels: out)
    }
}
