// The degradation's random streams, parameters and images, and PSNR/SSIM, against fixtures from
// the reference code (scripts/make_eval_fixtures.py: basicsr 1.4.2, numpy 1.24, OpenCV 4.6).

import FaceRestoreEngine
import FaceRestoreEvaluation
import FaceRestoreImaging
import Foundation
import Testing

let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

func jsonObject(_ relative: String) throws -> [String: Any] {
    let data = try Data(contentsOf: fixtures.appendingPathComponent(relative))
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

/// random.json as the generator writes it (decoded with JSONDecoder, which reads doubles exactly).
struct StreamFixture: Decodable {
    struct Seed: Decodable {
        let seed: Int
        let python: [Double]
        let uniform: [Double]
        let uniform01to10: Double
        let randn: [Double]
        let randnF32: [Double]
        let choices: [String]
        enum CodingKeys: String, CodingKey {
            case seed, python, uniform, randn, choices
            case uniform01to10 = "uniform_0.1_10", randnF32 = "randn_f32"
        }
    }
    struct BigSeed: Decodable { let seed: Int; let random: Double }
    let seeds: [Seed]
    let pythonBigSeed: BigSeed
    enum CodingKeys: String, CodingKey { case seeds, pythonBigSeed = "python_big_seed" }
}

@Suite struct RandomStreams {
    @Test func pythonAndNumpyStreamsMatchBitForBit() throws {
        let expected = try JSONDecoder().decode(StreamFixture.self, from: Data(contentsOf: fixtures.appendingPathComponent("random.json")))
        #expect(expected.seeds.count == 4)
        for entry in expected.seeds {
            var python = PythonRandom(seed: entry.seed)
            var numpy = NumpyRandom(seed: UInt32(entry.seed))
            #expect((0..<3).map { _ in python.random() } == entry.python, "seed \(entry.seed)")
            #expect((0..<2).map { _ in numpy.uniform() } == entry.uniform, "seed \(entry.seed)")
            #expect(numpy.uniform(0.1, 10) == entry.uniform01to10, "seed \(entry.seed)")
            #expect((0..<5).map { _ in numpy.gauss() } == entry.randn, "seed \(entry.seed)")
            // The cached Gaussian carries over to the next call, as in numpy.
            #expect(numpy.randnFloat32(count: 12).map(Double.init) == entry.randnF32, "seed \(entry.seed)")
            var again = PythonRandom(seed: entry.seed)
            #expect((0..<6).map { _ in again.choice(weights: [0.5, 0.5]) == 0 ? "iso" : "aniso" } == entry.choices, "seed \(entry.seed)")
        }
        var python = PythonRandom(seed: expected.pythonBigSeed.seed)
        #expect(python.random() == expected.pythonBigSeed.random, "a seed above 2³² is split into 32-bit words")
    }
}

@Suite struct Degradations {
    /// Parameters identical to the reference's; images within JPEG's tolerance (after the same
    /// JPEG bytes, the remaining differences come from float rounding in the blur and resizes).
    @Test(arguments: [("gfpgan", 7), ("gpen", 11), ("codeformer", 3)])
    func matchTheReferencePipeline(_ preset: String, _ seed: Int) throws {
        let pipeline = try #require(DegradationSettings.Pipeline(rawValue: preset))
        let degrader = try Degrader(.preset(pipeline))
        let context = ComputeContext(threads: 2)
        for (i, name) in ["a", "b", "c"].enumerated() {
            let hq = try ImageIO.read(path: fixtures.appendingPathComponent("degrade/hq/\(name).png").path).image
            let ours = try degrader.degrade(hq, seed: seed + i, context: context)
            let reference = try JSONDecoder().decode(DegradationRecord.self,
                                                     from: Data(contentsOf: fixtures.appendingPathComponent("degrade/\(preset)/\(name).json")))
            #expect(ours.record == reference, "\(preset) \(name): the drawn parameters differ")
            let expected = try ImageIO.read(path: fixtures.appendingPathComponent("degrade/\(preset)/\(name).png").path).image
            let diffs = zip(ours.image.pixels, expected.pixels).map { abs(Int($0) - Int($1)) }
            let mean = Double(diffs.reduce(0, +)) / Double(diffs.count)
            #expect(mean <= 0.5, "\(preset) \(name): mean |difference| \(mean) gray levels")
        }
    }

    @Test func badSettingsAreOneLine() {
        var s = DegradationSettings.preset(.gfpgan)
        s.downsample = [8, 0.8]
        #expect(throws: EvaluationError.self) { try Degrader(s) }
        s = .preset(.gfpgan)
        s.kernelSize = 40
        #expect(throws: EvaluationError.self) { try Degrader(s) }
    }
}

@Suite struct FullReferenceMetrics {
    /// basicsr's PSNR within 1e-4 dB and SSIM within 1e-6, in each mode.
    @Test func psnrAndSSIMMatchBasicsr() throws {
        let expected = try #require(try jsonObject("fullref/expected.json")["pairs"] as? [String: [String: [Double]]])
        #expect(expected.count == 3)
        let modes: [String: FullReferenceOptions] = [
            "rgb": FullReferenceOptions(), "crop4": FullReferenceOptions(cropBorder: 4), "y": FullReferenceOptions(yChannel: true),
            "cmv": FullReferenceOptions(correctMeanVariance: true),
        ]
        for (name, values) in expected {
            let reference = try ImageIO.read(path: fixtures.appendingPathComponent("degrade/hq/\(name)").path).image
            let restored = try ImageIO.read(path: fixtures.appendingPathComponent("degrade/gfpgan/\(name)").path).image
            for (mode, options) in modes {
                let scores = try FullReference.scores(restored, reference: reference, options: options)
                let want = try #require(values[mode])
                #expect(abs(scores.psnr - want[0]) <= 1e-4, "\(name) \(mode): PSNR \(scores.psnr) vs \(want[0])")
                #expect(abs(scores.ssim - want[1]) <= 1e-6, "\(name) \(mode): SSIM \(scores.ssim) vs \(want[1])")
            }
            let same = try FullReference.scores(reference, reference: reference)
            #expect(same.psnr == .infinity && abs(same.ssim - 1) < 1e-12)
        }
    }

    @Test func mismatchedSizesAreOneLine() throws {
        let a = PixelImage(width: 20, height: 20, channels: 3, pixels: [UInt8](repeating: 9, count: 1200))
        let b = PixelImage(width: 20, height: 21, channels: 3, pixels: [UInt8](repeating: 9, count: 1260))
        #expect(throws: EvaluationError.self) { try FullReference.scores(a, reference: b) }
        #expect(throws: EvaluationError.self) { try FullReference.scores(a, reference: a, options: FullReferenceOptions(cropBorder: 10)) }
    }
}
