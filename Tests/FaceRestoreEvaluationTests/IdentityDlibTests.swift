// ID-dlib: our dlib face-recognition network against PyPI dlib's embeddings of the same chips
// (Fixtures/dlib, made by scripts/parity_dlib.py), the .dat reader against damaged files, and the
// metric's sense (the same person closer than two people). The model comes from the model cache
// (scripts/pypi_models.py); the tests that need it skip when it is absent.
//
// scripts/parity_dlib.py also drives `parityHook` (FACERESTORE_DLIB_PARITY=<folder>): it reads
// the folder's manifest.json and writes ours.json with our embeddings and chips.

import Foundation
import Testing
@testable import FaceRestoreEvaluation
import FaceRestoreImaging
import FaceRestoreWeights

private let dlibFixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("dlib")
private let dlibModelInstalled = FileManager.default.fileExists(atPath: DlibFaceRecognizer.defaultPath)
private let dlibParityFolder = ProcessInfo.processInfo.environment["FACERESTORE_DLIB_PARITY"].flatMap { $0.isEmpty ? nil : $0 }

private struct DlibExpected: Decodable {
    let tolerance: Float
    /// chip file → dlib's compute_face_descriptor(chip).
    let embeddings: [String: [Float]]
}

/// A fixture chip as dlib saw it (PNG, read as BGR).
private func fixtureChip(_ name: String) throws -> PixelImage {
    try ImageIO.read(path: dlibFixtures.appendingPathComponent(name).path).image
}

/// One recognizer for the suite (loading takes a fraction of a second, but many tests share it).
private let loadedRecognizer = Result { try DlibFaceRecognizer(path: DlibFaceRecognizer.defaultPath) }
private var sharedRecognizer: DlibFaceRecognizer? {
    get throws { try loadedRecognizer.get() }
}

@Suite("ID-dlib")
struct IdentityDlibTests {
    @Test(.enabled(if: dlibModelInstalled, "dlib_face_recognition_resnet_model_v1.dat is not in the model cache (scripts/pypi_models.py installs it)"))
    func embeddingsMatchDlib() throws {
        let recognizer = try #require(try sharedRecognizer)
        let data = try Data(contentsOf: dlibFixtures.appendingPathComponent("expected.json"))
        let expected = try JSONDecoder().decode(DlibExpected.self, from: data)
        #expect(!expected.embeddings.isEmpty)
        for (file, reference) in expected.embeddings.sorted(by: { $0.key < $1.key }) {
            let ours = try recognizer.embedding(chip: try fixtureChip(file))
            #expect(ours.count == 128)
            let diff = zip(ours, reference).map { abs($0 - $1) }.max() ?? .infinity
            #expect(diff <= expected.tolerance, "\(file): max |Δ| \(diff)")
        }
    }

    @Test(.enabled(if: dlibModelInstalled, "the dlib model is not in the model cache"))
    func samePersonIsCloserThanAnother() throws {
        let recognizer = try #require(try sharedRecognizer)
        let a = try recognizer.embedding(chip: try fixtureChip("astronaut.png"))
        let degraded = try recognizer.embedding(chip: try fixtureChip("astronaut_degraded.png"))
        let other = try recognizer.embedding(chip: try fixtureChip("grace_hopper.png"))
        let same = DlibFaceRecognizer.cosineDistance(a, degraded), different = DlibFaceRecognizer.cosineDistance(a, other)
        #expect(same < different, "same person \(same), different people \(different)")
        #expect(DlibFaceRecognizer.cosineDistance(a, a) < 1e-6)
    }

    @Test(.enabled(if: dlibModelInstalled, "the dlib model is not in the model cache"))
    func alignedFaceChip() throws {
        // A 512² face aligned to the FFHQ template: the chip is 150² and not black.
        let recognizer = try #require(try sharedRecognizer)
        let face = PixelImage(width: 512, height: 512, channels: 3, pixels: (0..<(512 * 512 * 3)).map { UInt8(truncatingIfNeeded: $0 * 7 / 3) })
        let chip = try DlibFaceRecognizer.chip(alignedFace: face)
        #expect(chip.width == 150 && chip.height == 150 && chip.channels == 3)
        #expect(chip.pixels.contains { $0 != 0 })
        #expect(try recognizer.embedding(chip: chip).count == 128)
    }

    @Test(.enabled(if: dlibModelInstalled, "the dlib model is not in the model cache"))
    func damagedFilesGiveOneLine() throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: DlibFaceRecognizer.defaultPath))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("facerestore-dlib-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var cases: [(String, Data)] = [
            ("empty", Data()),
            ("header", bytes.prefix(20)),
            ("half", bytes.prefix(bytes.count / 2)),
            ("short", bytes.dropLast(1)),
            ("extra", bytes + Data([0])),
        ]
        var wrongVersion = bytes
        wrongVersion[wrongVersion.startIndex + 1] = 7   // add_loss_layer version 7
        cases.append(("version", wrongVersion))
        var wrongName = bytes
        wrongName[wrongName.startIndex + 3] = UInt8(ascii: "X")   // "Xoss_metric_2"
        cases.append(("name", wrongName))
        for (name, data) in cases {
            let path = dir.appendingPathComponent("\(name).dat").path
            try data.write(to: URL(fileURLWithPath: path))
            do {
                _ = try DlibFaceRecognizer(path: path)
                Issue.record("\(name): loaded a damaged file")
            } catch {
                let message = "\(error)"
                #expect(!message.contains("\n"), "\(name): \(message)")
                #expect(message.contains(path), "\(name): \(message)")
            }
        }
        #expect(throws: (any Error).self) { try DlibFaceRecognizer(path: dir.appendingPathComponent("absent.dat").path) }
    }

    @Test func chipDetailsFollowTheLandmarks() throws {
        // The template's own points (padding 0.25, 150²) map to the chip: an axis-aligned 150² box.
        let size = 150.0, pad = 0.25
        let points = DlibFaceChip.templateFivePoints.map { (x: (pad + $0.x) / (2 * pad + 1) * size, y: (pad + $0.y) / (2 * pad + 1) * size) }
        let d = try DlibFaceChip.details(landmarks: points)
        #expect(abs(d.angle) < 1e-12)
        // dlib centres the rectangle on the chip centre's image, (75, 75): corners at 0.5 and 149.5.
        #expect(abs(d.left - 0.5) < 1e-9 && abs(d.top - 0.5) < 1e-9 && abs(d.right - 149.5) < 1e-9 && abs(d.bottom - 149.5) < 1e-9)
        #expect(throws: EvaluationError.self) { try DlibFaceChip.details(landmarks: [(x: .nan, y: 0)] + points.dropFirst()) }
    }

    /// scripts/parity_dlib.py's hook: not a check by itself.
    @Test(.enabled(if: dlibModelInstalled && dlibParityFolder != nil, "set FACERESTORE_DLIB_PARITY (scripts/parity_dlib.py does)"))
    func parityHook() throws {
        struct Item: Decodable {
            let name: String
            /// A raw RGB file and its size.
            let file: String
            let width: Int, height: Int
            /// Five landmarks (x, y) to cut a chip from the image; absent: the file is a chip.
            let landmarks: [[Double]]?
            /// Chip details to extract with (else computed from the landmarks).
            let details: DlibChipDetails?
        }
        let folder = URL(fileURLWithPath: try #require(dlibParityFolder))
        let items = try JSONDecoder().decode([Item].self, from: Data(contentsOf: folder.appendingPathComponent("manifest.json")))
        let recognizer = try #require(try sharedRecognizer)
        var results: [String: [String: AnyCodable]] = [:]
        var timings: [Double] = []
        for item in items {
            let raw = [UInt8](try Data(contentsOf: folder.appendingPathComponent(item.file)))
            let image = PixelImage(width: item.width, height: item.height, channels: 3, pixels: raw)
            var entry: [String: AnyCodable] = [:]
            var chip = image
            if let landmarks = item.landmarks {
                let details = try item.details ?? DlibFaceChip.details(landmarks: landmarks.map { (x: $0[0], y: $0[1]) })
                chip = try DlibFaceChip.extract(from: image, details)
                try Data(chip.pixels).write(to: folder.appendingPathComponent(item.name + ".ours.rgb"))
                entry["details"] = .details(details)
            }
            let start = DispatchTime.now().uptimeNanoseconds
            let e = try recognizer.embedding(chip: chip, rgb: true)
            timings.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            entry["embedding"] = .floats(e)
            results[item.name] = entry
        }
        results["_timing"] = ["ms": .floats(timings.map { Float($0) })]
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        try encoder.encode(results).write(to: folder.appendingPathComponent("ours.json"))
    }
}

private enum AnyCodable: Encodable {
    case floats([Float])
    case details(DlibChipDetails)

    func encode(to encoder: Encoder) throws {
        switch self {
        case .floats(let v): try v.encode(to: encoder)
        case .details(let d): try d.encode(to: encoder)
        }
    }
}
