// LMD, the landmark distance of VQFR's paper metrics (`metric_paper/calculate_landmark_distance.py`
// at TencentARC/VQFR 1245d42): 98 WFLW landmarks from the AWing FAN (`alignment_WFLW_4HG.pth`,
// user-supplied) on the restored image and on its ground truth, the mean L2 distance between
// them per image, averaged over the images. Landmark extraction is `FAN.get_landmarks` (VQFR's
// `vqfr/archs/awing_arch.py`, identical to facexlib 0.3.0's `facexlib/alignment/awing_arch.py`
// apart from VQFR's `@torch.no_grad` and CUDA device), with `calculate_points` for the heatmaps.
// Written from reading those files; no code is copied.
//
// get_landmarks, step by step, as done here:
//   - the image is `cv2.imread`'s BGR uint8, resized with `cv2.resize(img, (256, 256))` (INTER_LINEAR
//     on 8 bits: Imaging's bit-exact `resizedLinear`, including OpenCV's 2× INTER_AREA shortcut
//     and the same-size copy), flipped to RGB, float32 / 255;
//   - the last module's heatmaps without the boundary channel go to calculate_points: the first
//     argmax of each 64 × 64 map (numpy: a NaN counts as the maximum), then ±¼ pixel toward the
//     larger neighbour in x (index ± 1 in the flattened map, so a peak in the last column reads
//     the next row's first value, and one in the first column at index 0 reads the map's last
//     value) and in y (index ± 64), then + ½, then × (W/64, H/64) of the original image;
//   - the reference's quirks are kept: if ANY landmark's peak is in the last row, every
//     landmark's "below" neighbour is the map's last value (index 4095); if any index − 64 ≤ 0
//     (first row, or row 1 column 0), every "above" neighbour is the map's first value; a peak at
//     the very last pixel makes the reference raise IndexError (index 4096), and throws here.
// The distance is `np.sqrt(((gt - pred) ** 2).sum(1)).mean()` in float64 (numpy's pairwise mean),
// in each image's own pixel units (512-px for the paper's 512² CelebA-Test); the script averages
// it over images with Python's `sum(list) / len(list)` and pairs the two folders by sorted order.
// Note: facexlib's calculate_points uses `np.float`, removed in numpy 1.24; its get_landmarks
// fails there unless the alias is restored (scripts/make_lmd_fixtures.py does).

import FaceRestoreEngine
import FaceRestoreImaging
import FaceRestoreModels
import FaceRestoreWeights

/// AWing FAN landmarks as VQFR's LMD script extracts them.
public final class AWingLandmarks: Sendable {
    public let model: AWingFAN
    let context: ComputeContext

    public init(model: AWingFAN, context: ComputeContext = ComputeContext()) {
        self.model = model
        self.context = context
    }

    /// Loads the user's `alignment_WFLW_4HG.pth` (strict; a mismatched file throws one line
    /// naming the tensor and both shapes).
    public convenience init(weights path: String, verifyChecksums: Bool = true, context: ComputeContext = ComputeContext()) throws {
        self.init(model: try AWingFAN(path: path, verifyChecksums: verifyChecksums, context: context), context: context)
    }

    /// get_landmarks' network input: `cv2.resize(img, (256, 256))`, BGR → RGB, float32 / 255,
    /// `[1, 3, 256, 256]`. `image`: 8-bit BGR as `cv2.imread` gives it.
    public static func input(_ image: PixelImage) throws -> Tensor {
        guard image.channels == 3, image.width > 0, image.height > 0 else {
            throw EvaluationError.invalidInput("LMD needs a 3-channel image, got \(image.width)×\(image.height)×\(image.channels)")
        }
        let size = AWingFAN.inputSize
        let small = image.resizedLinear(width: size, height: size)
        let plane = size * size
        var values = [Float](repeating: 0, count: 3 * plane)
        small.pixels.withUnsafeBufferPointer { p in
            for i in 0..<plane {
                for c in 0..<3 { values[c * plane + i] = Float(p[i * 3 + 2 - c]) / 255 }
            }
        }
        return Tensor(shape: [1, 3, size, size], values: values)
    }

    /// Every module's output `[landmarks + 1, 64, 64]` (plain, row-major; the last channel is the
    /// boundary map) for `image` (8-bit BGR).
    public func heatmaps(_ image: PixelImage) throws -> [[Float]] {
        try model.outputs(try Self.input(image), context).map { try context.array($0) }
    }

    /// `FAN.get_landmarks(image)`: the landmarks in the image's pixels (x, y), for 8-bit BGR
    /// `image` as `cv2.imread` gives it.
    public func landmarks(_ image: PixelImage) throws -> [(x: Double, y: Double)] {
        guard let output = try model.outputs(try Self.input(image), context).last else {
            throw EvaluationError.invalidInput("the AWing FAN has no modules")
        }
        return try Self.landmarks(heatmaps: try context.array(output), count: model.landmarks,
                                  width: image.width, height: image.height)
    }

    /// get_landmarks' last steps: `calculate_points` on the first `count` maps of a module's
    /// output (`[≥ count, 64, 64]`, row-major), × (W/64, H/64) of the original `width × height`.
    public static func landmarks(heatmaps: [Float], count: Int, width: Int, height: Int) throws -> [(x: Double, y: Double)] {
        let cells = AWingFAN.heatmapSize * AWingFAN.heatmapSize
        guard count > 0, count <= heatmaps.count / cells, width > 0, height > 0 else {
            throw EvaluationError.invalidInput("get_landmarks: \(heatmaps.count) heatmap values for \(count) maps, image \(width)×\(height)")
        }
        let grid = AWingFAN.heatmapSize
        let points = try Self.points(heatmaps: Array(heatmaps.prefix(count * cells)), count: count)
        let (sx, sy) = (Double(width) / Double(grid), Double(height) / Double(grid))
        return points.map { (x: $0.x * sx + 0, y: $0.y * sy + 0) }
    }

    /// LMD of one pair: `np.sqrt(((gt - pred) ** 2).sum(1)).mean()`.
    public func distance(restored: PixelImage, reference: PixelImage) throws -> Double {
        try Self.distance(try landmarks(restored), try landmarks(reference))
    }

    /// facexlib/VQFR `calculate_points` for one image: `heatmaps` holds `count` 64 × 64 maps
    /// (row-major); the points are in heatmap cells (before the × W/64 scaling), + ½ included.
    public static func points(heatmaps: [Float], count: Int) throws -> [(x: Double, y: Double)] {
        let w = AWingFAN.heatmapSize
        let cells = w * w   // the reference hard-codes 4096 for its bounds
        guard count > 0, heatmaps.count % cells == 0, heatmaps.count / cells == count else {
            throw EvaluationError.invalidInput("calculate_points: \(heatmaps.count) values for \(count) maps of \(w)×\(w)")
        }
        return try heatmaps.withUnsafeBufferPointer { h -> [(x: Double, y: Double)] in
            // np.argmax: the first maximum; a NaN is the maximum (the first NaN wins).
            let peaks = (0..<count).map { k -> Int in
                let base = k * cells
                var best = 0
                for i in 0..<cells {
                    let v = h[base + i]
                    if v.isNaN { return i }
                    if v > h[base + best] { best = i }
                }
                return best
            }
            if let k = peaks.firstIndex(of: cells - 1) {
                throw EvaluationError.invalidInput(
                    "calculate_points: landmark \(k) peaks at the last heatmap cell; the reference raises IndexError there")
            }
            let lastRowSomewhere = peaks.contains { $0 + w >= cells }
            let firstRowSomewhere = peaks.contains { $0 - w <= 0 }
            return peaks.enumerated().map { k, i in
                let row = k * cells
                let xUp = h[row + i + 1]
                let xDown = h[row + (i == 0 ? cells - 1 : i - 1)]
                let yUp = h[row + (lastRowSomewhere ? cells - 1 : i + w)]
                let yDown = h[row + (firstRowSomewhere ? 0 : i - w)]
                // np.sign of the float32 differences, × 0.25, added to the float64 cell index.
                func sign(_ d: Float) -> Double { d.isNaN ? .nan : d > 0 ? 0.25 : d < 0 ? -0.25 : 0 }
                return (x: Double(i % w) + sign(xUp - xDown) + 0.5, y: Double(i / w) + sign(yUp - yDown) + 0.5)
            }
        }
    }

    /// `np.sqrt(((a - b) ** 2).sum(1)).mean()` over the points (float64, numpy's pairwise sum).
    public static func distance(_ a: [(x: Double, y: Double)], _ b: [(x: Double, y: Double)]) throws -> Double {
        guard a.count == b.count, !a.isEmpty else {
            throw EvaluationError.invalidInput("LMD: \(a.count) and \(b.count) landmarks")
        }
        let d = zip(a, b).map { p, q -> Double in
            let (dx, dy) = (p.x - q.x, p.y - q.y)
            return (dx * dx + dy * dy).squareRoot()
        }
        return pairwiseSum(d[...]) / Double(d.count)
    }

    /// The LMD of a folder pair: `sum(per_image) / len(per_image)` (Python's left-to-right sum).
    public static func mean(_ perImage: [Double]) -> Double {
        perImage.isEmpty ? .nan : perImage.reduce(0, +) / Double(perImage.count)
    }

    /// numpy's `DOUBLE_pairwise_sum` (numpy/core/src/umath/loops_utils.h.src): under 8 values in
    /// order; up to 128 with eight interleaved accumulators; above, split at an 8-aligned half.
    static func pairwiseSum(_ a: ArraySlice<Double>) -> Double {
        let n = a.count, s = a.startIndex
        if n < 8 { return a.reduce(0, +) }
        if n <= 128 {
            var r = (0..<8).map { a[s + $0] }
            var i = 8
            while i < n - n % 8 {
                for j in 0..<8 { r[j] += a[s + i + j] }
                i += 8
            }
            var res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
            while i < n { res += a[s + i]; i += 1 }
            return res
        }
        var n2 = n / 2
        n2 -= n2 % 8
        return pairwiseSum(a[s..<(s + n2)]) + pairwiseSum(a[(s + n2)...])
    }
}
