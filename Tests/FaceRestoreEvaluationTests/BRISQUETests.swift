// BRISQUE against OpenCV 4.6's `cv2.quality.QualityBRISQUE_compute` (fixtures made by
// scripts/make_brisque_fixtures.py), and the model reader on broken files.

import Foundation
import Testing
@testable import FaceRestoreEvaluation
import FaceRestoreImaging

private let brisqueFixtureDirectory = Bundle.module.url(forResource: "Fixtures", withExtension: nil)?
    .appendingPathComponent("brisque")

private let debianModelPresent = FileManager.default.fileExists(atPath: BRISQUEModel.defaultModelPath)
    && FileManager.default.fileExists(atPath: BRISQUEModel.defaultRangePath)

/// Debian opencv-data's model, loaded once (nil when the files are absent).
private let debianModel: BRISQUEModel? =
    debianModelPresent ? try? BRISQUEModel(modelPath: BRISQUEModel.defaultModelPath, rangePath: BRISQUEModel.defaultRangePath) : nil

private struct BRISQUEExpected: Decodable {
    struct Case: Decodable {
        let file: String
        let read: String
        let width: Int
        let height: Int
        let score: Double
        let svr: Double
        let features: [Double?]
    }
    let cases: [Case]
}

/// The image as the generator scored it: cv2.imread's BGR, or one gray channel.
private func loadCase(_ c: BRISQUEExpected.Case, in directory: URL) throws -> PixelImage {
    let image = try ImageIO.read(path: directory.appendingPathComponent(c.file).path).image
    guard c.read == "gray" else { return image }
    return PixelImage(width: image.width, height: image.height, channels: 1,
                      pixels: stride(from: 0, to: image.pixels.count, by: image.channels).map { image.pixels[$0] })
}

/// Scores every case of DIR/expected.json; returns (file, ours, OpenCV's, |difference|) rows
/// and checks the features and the unclamped SVR output on the way.
private func checkCases(in directory: URL, model: BRISQUEModel) throws -> [(String, Double, Double, Double)] {
    let data = try Data(contentsOf: directory.appendingPathComponent("expected.json"))
    let expected = try JSONDecoder().decode(BRISQUEExpected.self, from: data)
    #expect(!expected.cases.isEmpty)
    var rows: [(String, Double, Double, Double)] = []
    for c in expected.cases {
        let image = try loadCase(c, in: directory)
        #expect(image.width == c.width && image.height == c.height, "\(c.file): size")
        let features = try brisqueFeatures(image)
        #expect(features.count == c.features.count, "\(c.file): feature count")
        for (i, (ours, theirs)) in zip(features, c.features).enumerated() {
            if let theirs {
                #expect(abs(Double(ours) - theirs) <= 1e-5 * max(1, abs(theirs)), "\(c.file): feature \(i): \(ours) vs \(theirs)")
            } else {
                #expect(ours.isNaN, "\(c.file): feature \(i) should be NaN")
            }
        }
        let svr = Double(model.svrOutput(features))
        #expect(abs(svr - c.svr) <= 1e-3, "\(c.file): SVR output \(svr) vs OpenCV \(c.svr)")
        let score = try brisque(image, model: model)
        let difference = abs(score - c.score)
        #expect(difference <= 1e-3, "\(c.file): BRISQUE \(score) vs OpenCV \(c.score)")
        rows.append((c.file, score, c.score, difference))
    }
    return rows
}

private func report(_ rows: [(String, Double, Double, Double)], title: String) {
    print(title)
    for (file, ours, theirs, difference) in rows {
        let name = file.count < 48 ? file + String(repeating: " ", count: 48 - file.count) : file
        print("  " + name + String(format: " ours %10.6f  OpenCV %10.6f  |diff| %.2e", ours, theirs, difference))
    }
    print(String(format: "  max |diff| %.3e over %d images", rows.map(\.3).max() ?? 0, rows.count))
}

@Suite("BRISQUE")
struct BRISQUETests {
    @Test("matches cv2.quality.QualityBRISQUE_compute on the committed fixtures",
          .enabled(if: debianModelPresent, "the opencv-data model files are absent (apt-get install opencv-data)"))
    func fixtureParity() throws {
        let model = try #require(debianModel, "the opencv-data model files do not load")
        let directory = try #require(brisqueFixtureDirectory)
        let rows = try checkCases(in: directory, model: model)
        #expect(rows.count >= 7)
        report(rows, title: "BRISQUE parity (committed fixtures):")
    }

    @Test("matches OpenCV on the generator's extra images (FACERESTORE_BRISQUE_EXTRA=DIR)",
          .enabled(if: debianModelPresent && ProcessInfo.processInfo.environment["FACERESTORE_BRISQUE_EXTRA"] != nil,
                   "set FACERESTORE_BRISQUE_EXTRA to a directory written by make_brisque_fixtures.py --extra"))
    func extraParity() throws {
        let model = try #require(debianModel)
        let path = try #require(ProcessInfo.processInfo.environment["FACERESTORE_BRISQUE_EXTRA"])
        let rows = try checkCases(in: URL(fileURLWithPath: path), model: model)
        report(rows, title: "BRISQUE parity (\(path)):")
    }

    @Test("flat and 2×2 images score 100 as in OpenCV; too small or odd images throw",
          .enabled(if: debianModelPresent, "the opencv-data model files are absent"))
    func edgeCases() throws {
        let model = try #require(debianModel)
        let flat = PixelImage(width: 40, height: 40, channels: 3, pixels: [UInt8](repeating: 100, count: 40 * 40 * 3))
        #expect(try brisque(flat, model: model) == 100)   // NaN features; OpenCV's SVM gives +inf
        let tiny = PixelImage(width: 2, height: 2, channels: 3, pixels: [10, 20, 30, 200, 100, 50, 0, 255, 7, 99, 98, 97])
        #expect(try brisque(tiny, model: model) == 100)
        for (w, h) in [(1, 50), (50, 1), (0, 0), (1, 1)] {
            let image = PixelImage(width: w, height: h, channels: 3, pixels: [UInt8](repeating: 9, count: w * h * 3))
            #expect(throws: EvaluationError.self) { try brisque(image, model: model) }
        }
        let twoChannel = PixelImage(width: 8, height: 8, channels: 2, pixels: [UInt8](repeating: 1, count: 128))
        #expect(throws: EvaluationError.self) { try brisque(twoChannel, model: model) }
    }

    @Test("one gray channel gives the same features as the gray replicated to BGR")
    func grayMatchesReplicatedGray() throws {
        var gray = [UInt8](repeating: 0, count: 37 * 29)
        var state: UInt32 = 12345
        for i in gray.indices {
            state = state &* 1_664_525 &+ 1_013_904_223
            gray[i] = UInt8(truncatingIfNeeded: (state >> 24) / 2 + UInt32(i % 37) * 3)
        }
        let one = PixelImage(width: 37, height: 29, channels: 1, pixels: gray)
        let three = PixelImage(width: 37, height: 29, channels: 3, pixels: gray.flatMap { [$0, $0, $0] })
        let a = try brisqueFeatures(one), b = try brisqueFeatures(three)
        #expect(a.count == 36)
        #expect(zip(a, b).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) })
    }

    @Test("the branch-free AGGD sums equal OpenCV's loop, NaN, ±0 and ±∞ included")
    func aggdSumsMatchReference() {
        var values: [Float] = [0, -0.0, .nan, 1.5, -2.25, .infinity, -.infinity, Float.leastNormalMagnitude / 8, -Float.leastNormalMagnitude / 8, 3e38, -7, 0.125]
        var state: UInt32 = 7
        for _ in 0..<500 {
            state = state &* 1_664_525 &+ 1_013_904_223
            values.append(Float(Int32(bitPattern: state)) / 1e9)
        }
        var poscount = 0, negcount = 0
        var possqsum = 0.0, negsqsum = 0.0, abssum = 0.0
        for v in values {   // AGGDfit's loop in opencv_contrib 4.6
            let pt = Double(v)
            if pt > 0 {
                poscount += 1; possqsum += pt * pt; abssum += pt
            } else if pt < 0 {
                negcount += 1; negsqsum += pt * pt; abssum -= pt
            }
        }
        var sums = BRISQUEKernels.AGGDSums()
        values.withUnsafeBufferPointer { sums.add($0.baseAddress!, $0.count) }
        #expect(sums.poscount == poscount && sums.negcount == negcount)
        #expect(sums.possqsum.bitPattern == possqsum.bitPattern && sums.negsqsum.bitPattern == negsqsum.bitPattern)
        #expect(sums.abssum.bitPattern == abssum.bitPattern)
    }

    @Test("the Gaussian kernel is OpenCV's getGaussianKernel(7, 7/6, CV_32F)")
    func gaussianKernel() {
        // cv2.getGaussianKernel(7, 7/6, ktype=cv2.CV_32F) on OpenCV 4.6.
        let expected: [Float] = [0x1.9b929ap-7, 0x1.42e11cp-4, 0x1.e5fb7cp-3, 0x1.5edaccp-2, 0x1.e5fb7cp-3, 0x1.42e11cp-4, 0x1.9b929ap-7]
        #expect(BRISQUEKernels.gaussianKernel == expected)
    }

    @Test("OpenCV's exp32f: close to exp; in place, NaN gives 0 in SIMD blocks of 16 and NaN in the tail")
    func openCVExp() {
        var values: [Float] = (0..<40).map { -Float($0) * 0.37 }
        let inputs = values
        BRISQUEKernels.openCVExpInPlace(&values)
        for (x, y) in zip(inputs, values) { #expect(abs(Double(y) - exp(Double(x))) <= 1e-6 * exp(Double(x))) }
        var nans = [Float](repeating: .nan, count: 20)
        BRISQUEKernels.openCVExpInPlace(&nans)
        #expect(nans[0..<16].allSatisfy { $0 == 0 } && nans[16...].allSatisfy(\.isNaN))
    }
}

// MARK: - Model files

@Suite("BRISQUE model files")
struct BRISQUEModelFileTests {
    /// A two-vector EPS_SVR model in OpenCV's layout (36 features).
    static func modelText(svTotal: Int = 2, vectors: [[Double]]? = nil, alpha: String = "[ 1.5, -0.5 ]",
                          svmType: String = "EPS_SVR", gamma: String = "5.0000000000000003e-02") -> String {
        let rows = vectors ?? [Array(repeating: 0.25, count: 36), (0..<36).map { Double($0) / 36 - 0.5 }]
        let sv = rows.map { "      - [ " + $0.map { String($0) }.joined(separator: ", ") + " ]" }.joined(separator: "\n")
        return """
        %YAML:1.0
        ---
        opencv_ml_svm:
           format: 3
           svmType: \(svmType)
           kernel:
              type: RBF
              gamma: \(gamma)
           C: 1024.
           p: 1.0000000000000001e-01
           term_criteria: { epsilon:1.0000000000000000e-03 }
           var_count: 36
           sv_total: \(svTotal)
           support_vectors:
        \(sv)
           decision_functions:
              -
                 sv_count: 2
                 rho: -10.
                 alpha: \(alpha)

        """
    }

    static func rangeText(values: Int = 72, rows: Int = 2) -> String {
        let data = (0..<values).map { $0 < 36 ? "0." : "2.0000000000000000e+00" }.joined(separator: ", ")
        return """
        %YAML:1.0
        ---
        range: !!opencv-matrix
           rows: \(rows)
           cols: 36
           dt: f
           data: [ \(data) ]

        """
    }

    /// Writes the texts to a temporary directory and loads them.
    static func load(model: String, range: String = rangeText()) throws -> BRISQUEModel {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("brisque-model-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let m = dir.appendingPathComponent("model.yml"), r = dir.appendingPathComponent("range.yml")
        try Data(model.utf8).write(to: m)
        try Data(range.utf8).write(to: r)
        return try BRISQUEModel(modelPath: m.path, rangePath: r.path)
    }

    @Test("a small valid model reads and predicts Σ αᵢ·exp(−γ‖svᵢ − x‖²) − ρ")
    func validModel() throws {
        let model = try Self.load(model: Self.modelText())
        #expect(model.supportVectorCount == 2 && model.alpha == [1.5, -0.5] && model.rho == -10)
        // Features equal to the range midpoint (1) scale to 0.
        let features = [Float](repeating: 1, count: 36)
        let d0 = 36 * 0.25 * 0.25
        let d1 = (0..<36).reduce(0.0) { let v = Double($1) / 36 - 0.5; return $0 + v * v }
        let expected = 1.5 * exp(-0.05 * d0) - 0.5 * exp(-0.05 * d1) + 10
        #expect(abs(Double(model.svrOutput(features)) - expected) < 1e-5)
        #expect(abs(Double(model.predict(features)) - expected) < 1e-5)
    }

    @Test("missing, malformed or inconsistent files throw modelFile naming the file")
    func brokenFiles() throws {
        func expectModelFileError(_ model: String, range: String = BRISQUEModelFileTests.rangeText(), file: String = "model.yml",
                                  sourceLocation: SourceLocation = #_sourceLocation) {
            do {
                _ = try Self.load(model: model, range: range)
                Issue.record("expected an error", sourceLocation: sourceLocation)
            } catch let EvaluationError.modelFile(path, reason) {
                #expect(path.hasSuffix(file), "\(path): \(reason)", sourceLocation: sourceLocation)
                #expect(!reason.isEmpty && !reason.contains("\n"), sourceLocation: sourceLocation)
            } catch {
                Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
            }
        }
        expectModelFileError("not yaml at all")
        expectModelFileError("%YAML:1.0\n")
        expectModelFileError(Self.modelText(svTotal: 3))                       // fewer vectors than sv_total
        expectModelFileError(Self.modelText(svTotal: 1_000_000_000_000))       // a huge count, little data
        expectModelFileError(Self.modelText(vectors: [Array(repeating: 0, count: 35), Array(repeating: 0, count: 36)]))
        expectModelFileError(Self.modelText(alpha: "[ 1.5 ]"))
        expectModelFileError(Self.modelText(alpha: "[ 1.5, abc ]"))
        expectModelFileError(Self.modelText(alpha: "[ 1.5, -0.5"))             // unterminated
        expectModelFileError(Self.modelText(svmType: "C_SVC"))
        expectModelFileError(Self.modelText(gamma: ".NaN"))
        expectModelFileError(String(Self.modelText().prefix(400)))
        expectModelFileError("%YAML:1.0\na: " + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000))
        expectModelFileError("%YAML:1.0\n" + (0..<200).map { String(repeating: " ", count: $0) + "k\($0):" }.joined(separator: "\n"))
        expectModelFileError(Self.modelText(), range: Self.rangeText(values: 71), file: "range.yml")
        expectModelFileError(Self.modelText(), range: Self.rangeText(rows: 3), file: "range.yml")
        expectModelFileError(Self.modelText(), range: "%YAML:1.0\nrange: 3\n", file: "range.yml")

        #expect(throws: EvaluationError.modelFile(path: "/nonexistent/brisque_model.yml",
                                                  reason: "no such file")) {
            try BRISQUEModel(modelPath: "/nonexistent/brisque_model.yml", rangePath: BRISQUEModel.defaultRangePath)
        }
    }

    @Test("the Debian model reads as documented",
          .enabled(if: debianModelPresent, "the opencv-data model files are absent"))
    func debianModelShape() throws {
        let model = try #require(debianModel)
        #expect(model.supportVectorCount == 774 && model.supportVectors.count == 774 * 36)
        #expect(model.gamma == 0.05 && model.alpha.count == 774)
        #expect(model.rho == -1.4963506109127357e+02)
        #expect(model.rangeMin.count == 36 && model.rangeMax.count == 36)
    }
}
