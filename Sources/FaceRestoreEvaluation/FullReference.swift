// Full-reference metrics as basicsr 1.4.2 computes them (`basicsr/metrics/psnr_ssim.py`:
// `calculate_psnr`, `calculate_ssim`, `_ssim`; `basicsr/metrics/metric_util.py`: `to_y_channel`;
// `basicsr/utils/matlab_functions.py`: `bgr2ycbcr`), on images loaded as its scripts load them
// (`cv2.imread(…).astype(np.float32) / 255.`, scored ×255), with the GFP-GAN group's
// `--correct_mean_var` (VQFR `metric_paper/calculate_psnr_ssim.py`: each channel of the
// restoration shifted and scaled to the reference's mean and standard deviation, twice).
//   PSNR = 10·log10(255² / mse), mse in float64 over the cropped image (∞ when equal).
//   SSIM: an 11×11 Gaussian window (σ 1.5, `cv2.getGaussianKernel`) over the valid region only,
//   C1 = (0.01·255)², C2 = (0.03·255)², per channel in float64, then the channels' mean. The
//   window is separable, so it is applied as two 11-tap passes (basicsr's `filter2D` goes through
//   OpenCV's DFT): the two agree to about 1e-12.

import CEvaluation
import FaceRestoreImaging
import Foundation
import Synchronization

/// How a full-reference comparison is made.
public struct FullReferenceOptions: Sendable, Equatable {
    /// Pixels cropped from each side before scoring (`crop_border`).
    public var cropBorder = 0
    /// Score the Y channel of YCbCr (`test_y_channel`) instead of B, G and R.
    public var yChannel = false
    /// Match the restoration's per-channel mean and standard deviation to the reference's first.
    public var correctMeanVariance = false

    public init(cropBorder: Int = 0, yChannel: Bool = false, correctMeanVariance: Bool = false) {
        self.cropBorder = cropBorder
        self.yChannel = yChannel
        self.correctMeanVariance = correctMeanVariance
    }
}

/// PSNR (dB) and SSIM of a restoration against its reference.
public struct FullReferenceScores: Sendable, Equatable {
    public var psnr: Double
    public var ssim: Double
}

public enum FullReference {
    /// Scores `restored` against `reference` (8-bit, the same size and channels).
    public static func scores(_ restored: PixelImage, reference: PixelImage, options: FullReferenceOptions = FullReferenceOptions()) throws
        -> FullReferenceScores {
        guard restored.width == reference.width, restored.height == reference.height, restored.channels == reference.channels else {
            throw EvaluationError.invalidInput("the restoration is \(restored.width)×\(restored.height)×\(restored.channels) but the reference is "
                                               + "\(reference.width)×\(reference.height)×\(reference.channels)")
        }
        let b = options.cropBorder
        guard b >= 0, restored.width - 2 * b > 0, restored.height - 2 * b > 0 else {
            throw EvaluationError.invalidInput("a crop border of \(b) leaves nothing of a \(restored.width)×\(restored.height) image")
        }
        var x = FloatImage.divided255(restored), y = FloatImage.divided255(reference)
        if options.correctMeanVariance { x = x.matchingMeanAndDeviation(of: y) }
        let planesX = scoredPlanes(x, options), planesY = scoredPlanes(y, options)
        let (w, h) = (restored.width - 2 * b, restored.height - 2 * b)
        var squared = 0.0
        for c in planesX.indices {
            for i in 0..<(w * h) {
                let d = planesX[c][i] - planesY[c][i]
                squared += d * d
            }
        }
        let mse = squared / Double(w * h * planesX.count)
        let psnr = mse == 0 ? Double.infinity : 10 * log10(255 * 255 / mse)
        guard w >= 11, h >= 11 else {
            throw EvaluationError.invalidInput("SSIM needs at least 11×11 pixels after cropping, got \(w)×\(h)")
        }
        // Channels on their own threads; summed in channel order (the same result on any core count).
        let perChannel = Mutex([Double](repeating: 0, count: planesX.count))
        DispatchQueue.concurrentPerform(iterations: planesX.count) { c in
            let v = structuralSimilarity(planesX[c], planesY[c], width: w, height: h)
            perChannel.withLock { $0[c] = v }
        }
        let ssim = perChannel.withLock { $0.reduce(0, +) }
        return FullReferenceScores(psnr: psnr, ssim: ssim / Double(planesX.count))
    }

    /// The planes scored, cropped, as float64: ×255 values of each channel, or of basicsr's Y.
    static func scoredPlanes(_ image: FloatImage, _ options: FullReferenceOptions) -> [[Double]] {
        let b = options.cropBorder
        let (w, h, c) = (image.width - 2 * b, image.height - 2 * b, image.channels)
        func value(_ y: Int, _ x: Int, _ ch: Int) -> Float { image.values[((y + b) * image.width + x + b) * c + ch] * 255 }
        if options.yChannel && c == 3 {
            // to_y_channel: (v / 255) → bgr2ycbcr y_only (float64 dot + 16, / 255, to float32) → × 255.
            var plane = [Double](repeating: 0, count: w * h)
            for y in 0..<h {
                for x in 0..<w {
                    let bv = Double(value(y, x, 0) / 255), gv = Double(value(y, x, 1) / 255), rv = Double(value(y, x, 2) / 255)
                    let luma = Float((bv * 24.966 + gv * 128.553 + rv * 65.481 + 16) / 255)
                    plane[y * w + x] = Double(luma * 255)
                }
            }
            return [plane]
        }
        return (0..<c).map { ch in
            var plane = [Double](repeating: 0, count: w * h)
            for y in 0..<h { for x in 0..<w { plane[y * w + x] = Double(value(y, x, ch)) } }
            return plane
        }
    }

    /// `cv2.getGaussianKernel(11, 1.5)` (float64; normalised by multiplying with 1/sum).
    static let window: [Double] = {
        let scale = -0.5 / (1.5 * 1.5)
        let t = (0..<11).map { i -> Double in let x = Double(i - 5); return exp(scale * x * x) }
        let inverse = 1 / t.reduce(0, +)
        return t.map { $0 * inverse }
    }()

    /// basicsr's `_ssim` of two planes: the five Gaussian-weighted sums (μ₁, μ₂, E[a²], E[b²],
    /// E[ab]) over the valid region as two 11-tap passes (`fr_ssim_sum`), then the map's mean.
    static func structuralSimilarity(_ a: [Double], _ b: [Double], width w: Int, height h: Int) -> Double {
        let (ow, oh) = (w - 10, h - 10)
        var scratch = [Double](repeating: 0, count: 5 * ow * (h + 1))
        let sum = a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                window.withUnsafeBufferPointer { g in
                    scratch.withUnsafeMutableBufferPointer { s in
                        fr_ssim_sum(pa.baseAddress, pb.baseAddress, Int64(w), Int64(h), g.baseAddress, s.baseAddress)
                    }
                }
            }
        }
        return sum / Double(ow * oh)
    }
}

extension FloatImage {
    /// VQFR's `correct_mean_var`: each channel shifted to `reference`'s mean and scaled to its
    /// standard deviation, twice (float32 values; means and deviations accumulated in float64).
    func matchingMeanAndDeviation(of reference: FloatImage) -> FloatImage {
        let n = width * height
        func stats(_ image: FloatImage, _ c: Int) -> (Float, Float) {
            var sum = 0.0
            for p in 0..<n { sum += Double(image.values[p * channels + c]) }
            let mean = sum / Double(n)
            var sq = 0.0
            for p in 0..<n { let d = Double(image.values[p * channels + c]) - mean; sq += d * d }
            return (Float(mean), Float((sq / Double(n)).squareRoot()))
        }
        var out = self
        for c in 0..<channels {
            let (targetMean, targetStd) = stats(reference, c)
            for _ in 0..<2 {
                let (mean, _) = stats(out, c)
                for p in 0..<n { out.values[p * channels + c] = out.values[p * channels + c] - mean + targetMean }
                let (_, std) = stats(out, c)
                guard std > 0 else { continue }
                for p in 0..<n { out.values[p * channels + c] = out.values[p * channels + c] / std * targetStd }
            }
        }
        return out
    }
}
