// LMD's AWing FAN and landmark extraction against facexlib 0.3.0 (Fixtures/lmd, made by
// scripts/make_lmd_fixtures.py): the script's seeded random weights are regenerated here with
// TorchGenerator from the key list it wrote (state-dict order, one randn draw per tensor), so
// only the key list and the reference outputs are committed. Where the script's full outputs
// are in ~/.cache/facerestore-reference/fixtures, every heatmap of every module is compared too.

import FaceRestoreEngine
@testable import FaceRestoreEvaluation
import FaceRestoreImaging
import FaceRestoreModels
import FaceRestoreWeights
import Foundation
import Testing

private let lmdFixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("lmd")
private let referenceFixtures = (ProcessInfo.processInfo.environment["HOME"] ?? "/root") + "/.cache/facerestore-reference/fixtures/"
private let referenceIO = referenceFixtures + "lmd_random_fan_io.safetensors"
private let referenceWeights = referenceFixtures + "lmd_random_fan.pth"

private struct LMDKeys: Decodable {
    struct Image: Decodable {
        let name: String
        let height: Int
        let width: Int
    }
    let seed: UInt64
    let gain: Double
    let gain_head: Double
    let images: [Image]
    /// [name, shape] pairs; decoded by hand (mixed types).
    let keys: [[KeyPart]]

    enum KeyPart: Decodable {
        case name(String), shape([Int])
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .name(s) } else { self = .shape(try c.decode([Int].self)) }
        }
    }

    var layout: [(String, [Int])] {
        keys.compactMap { pair in
            guard pair.count == 2, case .name(let n) = pair[0], case .shape(let s) = pair[1] else { return nil }
            return (n, s)
        }
    }
}

private let lmdKeys: LMDKeys = {
    let data = try! Data(contentsOf: lmdFixtures.appendingPathComponent("keys.json"))
    return try! JSONDecoder().decode(LMDKeys.self, from: data)
}()

private let lmdExpected: StateDict = try! SafeTensors.read(path: lmdFixtures.appendingPathComponent("expected.safetensors").path)

/// The script's random state dict: per key in order, z = randn(numel) from one generator, then
/// the documented float32 formula for the tensor's kind.
private func randomFANStateDict() -> StateDict {
    var g = TorchGenerator(seed: lmdKeys.seed)
    var tensors: [String: WeightTensor] = [:]
    var names: [String] = []
    for (name, shape) in lmdKeys.layout {
        names.append(name)
        if name.hasSuffix("num_batches_tracked") {
            tensors[name] = WeightTensor(shape: shape, floats: [0])
            continue
        }
        let count = shape.reduce(1, *)
        let z = g.normal(count: count)
        let leaf = String(name.split(separator: ".").last ?? "")
        let owner = String(name.dropLast(leaf.count + 1))
        // FAN's BatchNorms: bn1, ConvBlock's bn1…bn3 and downsample.0, bn_end<i>.
        let module = owner.split(separator: ".").last.map(String.init) ?? ""
        let isBatchNorm = module.hasPrefix("bn") || module == "0"
        let values: [Float]
        if isBatchNorm {
            switch leaf {
            case "weight": values = z.map { Float(1) + Float(0.2) * $0 }
            case "bias", "running_mean": values = z.map { Float(0.1) * $0 }
            default: values = z.map { Float(0.5) + Float(0.5) * $0 * $0 }
            }
        } else if leaf == "weight" {
            let fanIn = shape.dropFirst().reduce(1, *)
            let head = owner.hasPrefix("l") || owner.hasPrefix("al")
            let s = Float((head ? lmdKeys.gain_head : lmdKeys.gain) / Double(fanIn).squareRoot())
            values = z.map { $0 * s }
        } else {
            values = z.map { $0 * Float(0.1) }
        }
        tensors[name] = WeightTensor(shape: shape, floats: values)
    }
    return StateDict(names: names, tensors: tensors)
}

private let lmdContext = ComputeContext()
private let randomFAN: AWingFAN = try! AWingFAN(stateDict: randomFANStateDict(), file: "random_fan.pth", context: lmdContext)

/// Each fixture image's module outputs, computed once (a debug-build forward takes seconds).
private final class HeatmapCache: @unchecked Sendable {
    private let lock = NSLock()
    private var outputs: [String: [[Float]]] = [:]
    func heatmaps(_ name: String) throws -> [[Float]] {
        lock.lock()
        defer { lock.unlock() }
        if let h = outputs[name] { return h }
        let h = try AWingLandmarks(model: randomFAN, context: lmdContext).heatmaps(try lmdImage(name))
        outputs[name] = h
        return h
    }
}
private let heatmapCache = HeatmapCache()

/// The script's images: the two example faces as cv2.imread reads them, and variants of them.
private func lmdImage(_ name: String) throws -> PixelImage {
    let faces = repositoryRoot.appendingPathComponent("examples/faces")
    let a = try ImageIO.read(path: faces.appendingPathComponent("astronaut.jpg").path).image
    let g = try ImageIO.read(path: faces.appendingPathComponent("grace_hopper.jpg").path).image
    func crop(_ p: PixelImage, rows: Range<Int>, cols: Range<Int>, flip: Bool = false) -> PixelImage {
        var out: [UInt8] = []
        for y in rows {
            for x in (flip ? Array(cols.reversed()) : Array(cols)) { out += p.pixels[((y * p.width + x) * 3)..<((y * p.width + x) * 3 + 3)] }
        }
        return PixelImage(width: cols.count, height: rows.count, channels: 3, pixels: out)
    }
    switch name {
    case "astronaut": return a
    case "grace_hopper": return g
    case "astronaut_crop": return crop(a, rows: 40..<340, cols: 100..<460)
    case "grace_hopper_256": return g.resizedLinear(width: 256, height: 256)
    case "astronaut_small_flipped": return crop(a, rows: 200..<300, cols: 150..<270, flip: true)
    default: throw EvaluationError.invalidInput("unknown fixture image \(name)")
    }
}

private func expected(_ key: String) throws -> [Double] {
    guard let t = lmdExpected[key] else { throw EvaluationError.invalidInput("fixture key \(key) missing") }
    return t.doubles()
}

@Suite("LandmarkDistance", .serialized)
struct LandmarkDistanceTests {
    @Test("random-weight FAN: heatmap samples, channel sums and landmarks as facexlib's get_landmarks")
    func heatmapsAndLandmarks() throws {
        #expect(randomFAN.modules == 4 && randomFAN.landmarks == 98)
        for info in lmdKeys.images {
            let image = try lmdImage(info.name)
            #expect(image.width == info.width && image.height == info.height)
            let pixelSum = try expected("\(info.name).pixel_sum")[0]
            #expect(Double(image.pixels.reduce(0) { $0 + Int($1) }) == pixelSum, "\(info.name): decoded pixels")
            let heat = try heatmapCache.heatmaps(info.name)
            let last = try #require(heat.last)
            // The 8×8 grid (rows/cols 3, 11, …, 59) of all 99 channels.
            let grid = try expected("\(info.name).grid")
            var maxGrid = 0.0
            for c in 0..<99 {
                for (gy, y) in stride(from: 3, to: 64, by: 8).enumerated() {
                    for (gx, x) in stride(from: 3, to: 64, by: 8).enumerated() {
                        maxGrid = max(maxGrid, abs(Double(last[(c * 64 + y) * 64 + x]) - grid[(c * 8 + gy) * 8 + gx]))
                    }
                }
            }
            let sums = try expected("\(info.name).channel_sums")
            var maxSum = 0.0
            for c in 0..<99 {
                var sum = 0.0
                for v in last[(c * 4096)..<((c + 1) * 4096)] { sum += Double(v) }
                maxSum = max(maxSum, abs(sum - sums[c]))
            }
            #expect(maxGrid <= 1e-4, "\(info.name): heatmap grid max |Δ| \(maxGrid)")
            #expect(maxSum <= 4096 * 1e-4, "\(info.name): channel sum max |Δ| \(maxSum)")
            let ours = try AWingLandmarks.landmarks(heatmaps: last, count: 98, width: image.width, height: image.height)
            let theirs = try expected("\(info.name).landmarks")
            let mismatched = ours.enumerated().filter { k, p in p.x != theirs[2 * k] || p.y != theirs[2 * k + 1] }.map(\.offset)
            #expect(mismatched.isEmpty, "\(info.name): landmarks \(mismatched) differ")
            if info.name == "astronaut_crop" {
                // The whole of get_landmarks in one call gives the same points.
                let direct = try AWingLandmarks(model: randomFAN, context: lmdContext).landmarks(image)
                #expect(direct.count == 98 && zip(direct, ours).allSatisfy { $0.x == $1.x && $0.y == $1.y })
            }
            print("LMD parity \(info.name): grid max |Δ| \(maxGrid), channel-sum max |Δ| \(maxSum), landmarks \(98 - mismatched.count)/98 exact")
        }
    }

    @Test("every module's full heatmaps within 1e-4 of facexlib's (when the script's outputs are in the cache)",
          .enabled(if: FileManager.default.fileExists(atPath: referenceIO)))
    func fullHeatmaps() throws {
        let io = try SafeTensors.read(path: referenceIO)
        for info in lmdKeys.images {
            let image = try lmdImage(info.name)
            let input = try lmdContext.array(try AWingLandmarks.input(image))
            #expect(input == io[info.name + ".input"]?.floats(), "\(info.name): network input")
            let heat = try heatmapCache.heatmaps(info.name)
            var report: [String] = []
            for (i, h) in heat.enumerated() {
                let ref = try #require(io["\(info.name).out\(i)"]?.floats())
                #expect(ref.count == h.count)
                let d = zip(h, ref).map { abs($0 - $1) }.max() ?? .infinity
                #expect(d <= 1e-4, "\(info.name) module \(i): max |Δ| \(d)")
                report.append(String(format: "%.2e", d))
            }
            print("LMD full heatmaps \(info.name): max |Δ| per module \(report.joined(separator: ", "))")
        }
    }

    @Test("the script's .pth ({'state_dict': …}, torch.save) loads through AWingLandmarks(weights:) and gives the same landmarks",
          .enabled(if: FileManager.default.fileExists(atPath: referenceWeights)))
    func officialContainer() throws {
        let lm = try AWingLandmarks(weights: referenceWeights, context: lmdContext)
        let image = try lmdImage("astronaut_small_flipped")
        let ours = try lm.landmarks(image)
        let theirs = try expected("astronaut_small_flipped.landmarks")
        #expect(ours.enumerated().allSatisfy { k, p in p.x == theirs[2 * k] && p.y == theirs[2 * k + 1] })
    }

    @Test("calculate_points on crafted heatmaps, with the reference's edge quirks")
    func craftedPoints() throws {
        for kind in 0..<4 {
            let h = craftedHeatmaps(kind)
            let ours = try AWingLandmarks.points(heatmaps: h, count: 98)
            let theirs = try expected("crafted\(kind).points")
            for (k, p) in ours.enumerated() {
                #expect(p.x == theirs[2 * k] && p.y == theirs[2 * k + 1], "crafted \(kind) landmark \(k): \(p) vs \(theirs[2 * k]), \(theirs[2 * k + 1])")
            }
        }
        // A peak at the last cell: the reference raises IndexError; here one line.
        var h = craftedHeatmaps(0)
        h[3 * 4096 + 4095] = 1000
        #expect(throws: EvaluationError.self) { try AWingLandmarks.points(heatmaps: h, count: 98) }
        #expect(throws: EvaluationError.self) { try AWingLandmarks.points(heatmaps: [1, 2, 3], count: 98) }
        #expect(throws: EvaluationError.self) { try AWingLandmarks.points(heatmaps: h, count: -1) }
        #expect(throws: EvaluationError.self) { try AWingLandmarks.points(heatmaps: h, count: Int.max) }
        #expect(throws: EvaluationError.self) { try AWingLandmarks.landmarks(heatmaps: h, count: -5, width: 1, height: 1) }
        #expect(throws: EvaluationError.self) { try AWingLandmarks.landmarks(heatmaps: h, count: Int.max / 2, width: 1, height: 1) }
        // numpy's argmax takes the first NaN as the maximum (no crash).
        var nan = craftedHeatmaps(0)
        nan[7 * 4096 + 100] = .nan
        let withNaN = try AWingLandmarks.points(heatmaps: nan, count: 98)
        #expect(withNaN[7].x == 36.75 && withNaN[7].y == 1.75)   // cell (36, 1), its neighbours finite
    }

    @Test("the per-pair distance and the folder mean as VQFR's script")
    func distances() throws {
        func points(_ name: String) throws -> [(x: Double, y: Double)] {
            let v = try expected("\(name).landmarks")
            return (0..<98).map { (x: v[2 * $0], y: v[2 * $0 + 1]) }
        }
        let pairs = [("astronaut", "astronaut_crop"), ("astronaut_crop", "astronaut_small_flipped"), ("grace_hopper", "astronaut")]
        let ours = try pairs.map { try AWingLandmarks.distance(try points($0.1), try points($0.0)) }
        let (pairsExpected, meanExpected) = (try expected("lmd.pairs"), try expected("lmd.mean")[0])
        #expect(ours == pairsExpected)
        #expect(AWingLandmarks.mean(ours) == meanExpected)
        #expect(throws: EvaluationError.self) { try AWingLandmarks.distance([], []) }
    }

    @Test("a mismatched weight file is one line naming the key and both shapes")
    func mismatchedWeights() throws {
        let sd = randomFANStateDict()
        func replacing(_ key: String, with t: WeightTensor?) -> StateDict {
            var tensors = sd.tensors
            tensors[key] = t
            return StateDict(names: t == nil ? sd.names.filter { $0 != key } : sd.names, tensors: tensors)
        }
        func message(_ s: StateDict) -> String {
            do { _ = try AWingFAN(stateDict: s, file: "alignment_WFLW_4HG.pth", context: lmdContext); return "loaded" } catch {
                return "\(error)"
            }
        }
        let shape = message(replacing("m2.b1_3.conv2.weight", with: WeightTensor(shape: [32, 128, 3, 3], floats: [Float](repeating: 0, count: 32 * 128 * 9))))
        #expect(shape == "alignment_WFLW_4HG.pth: tensor 'm2.b1_3.conv2.weight' has shape [32, 128, 3, 3], the model expects [64, 128, 3, 3]")
        let missing = message(replacing("m1.coordconv.conv.bias", with: nil))
        #expect(missing == "alignment_WFLW_4HG.pth: missing tensor 'm1.coordconv.conv.bias' (expected shape [256])")
        var extra = sd.tensors
        extra["m0.extra"] = WeightTensor(shape: [1], floats: [0])
        let unexpected = message(StateDict(names: sd.names + ["m0.extra"], tensors: extra))
        #expect(unexpected.hasPrefix("alignment_WFLW_4HG.pth: 1 unexpected tensor(s), e.g. 'm0.extra'"))
        let other = message(StateDict(names: ["conv.weight"], tensors: ["conv.weight": WeightTensor(shape: [1], floats: [0])]))
        #expect(other.hasPrefix("alignment_WFLW_4HG.pth: this is") && other.contains("not an AWing FAN landmark network"))
        for m in [shape, missing, unexpected, other] { #expect(!m.contains("\n")) }
    }

    @Test("hostile images: no crash, one line")
    func hostileImages() throws {
        let lm = AWingLandmarks(model: randomFAN, context: lmdContext)
        #expect(throws: EvaluationError.self) { try lm.landmarks(PixelImage(width: 4, height: 4, channels: 1, pixels: [UInt8](repeating: 0, count: 16))) }
        #expect(throws: EvaluationError.self) { try lm.landmarks(PixelImage(width: 0, height: 0, channels: 3, pixels: [])) }
        // One pixel is upscaled to 256² (the random network's peaks are then wherever its
        // coordinate channels put them: possibly the last cell, which throws as the reference raises).
        let one = try lmdContext.array(try AWingLandmarks.input(PixelImage(width: 1, height: 1, channels: 3, pixels: [10, 200, 30])))
        #expect(one.count == 3 * 256 * 256 && one[0] == Float(30) / 255 && one[2 * 65536] == Float(10) / 255)
    }
}

/// The script's crafted heatmaps: −((x − cx)² + (y − cy)²) + tx·x + ty·y, exact in float32.
private func craftedHeatmaps(_ kind: Int) -> [Float] {
    var out = [Float](repeating: 0, count: 98 * 4096)
    for n in 0..<98 {
        var (cx, cy) = ((7 * n + 3) % 62 + 1, (11 * n + 5) % 62 + 1)
        if kind == 1 && n == 17 { cy = 0 }
        if kind == 2 && n == 40 { cy = 63 }
        if kind == 3 {
            if n == 5 { cx = 63 }
            if n == 9 { (cx, cy) = (0, 0) }
            if n == 60 { cx = 0 }
        }
        let tx = Float(0.25 * Double(n % 3 - 1)), ty = Float(0.125 * Double(n % 5 - 2))
        for y in 0..<64 {
            for x in 0..<64 {
                let (dx, dy) = (Float(x - cx), Float(y - cy))
                out[n * 4096 + y * 64 + x] = -(dx * dx + dy * dy) + tx * Float(x) + ty * Float(y)
            }
        }
    }
    return out
}
