// `facerestore detect`: the faces facexlib's RetinaFace finds (`detect_faces(img, threshold)`,
// facexlib 0.3.0 `facexlib/detection/retinaface.py`): box, score and five landmarks per face, as
// text or JSON. Also the detector resolution shared with `restore`.

import ArgumentParser
import FaceRestoreEngine
import FaceRestoreImaging
import FaceRestoreModels
import FaceRestorePipeline
import Foundation

/// The detector named by `spec`: a file path, a registry name, or `auto` (the first installed of
/// RetinaFace ResNet50 — upstream's default — and MobileNet0.25). Fails with one line.
func loadDetector(_ spec: String, context: ComputeContext, verbose: Bool) -> RetinaFace {
    let registry = ModelRegistry()
    let path: String
    if FileManager.default.fileExists(atPath: spec) {
        path = spec
    } else if spec == "auto" {
        let names = ["retinaface-resnet50", "retinaface-mobilenet0.25", "retinaface-mobilenet0.25-tiny"]
        guard let found = names.lazy.compactMap({ try? registry.locate(ModelRegistry.entry(named: $0)) }).first else {
            let e = try! ModelRegistry.entry(named: names[0])
            fail("no face detector is installed: run `facerestore models fetch \(e.name)` or download \(e.url) "
                 + "to \(registry.installPath(e)) (or pass --detector FILE)")
        }
        path = found
    } else {
        do {
            let entry = try ModelRegistry.entry(named: spec)
            guard entry.kind == .faceDetection else { fail("--detector \(spec): \(entry.title) is not a face detector") }
            path = try registry.locate(entry)
        } catch { fail("\(error)") }
    }
    do {
        let net = try RetinaFace(path: path, context: context)
        if verbose { printError("detector: \(path) (RetinaFace \(net.backbone.rawValue))") }
        return net
    } catch { fail("\(error)") }
}

struct Detect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the faces in images: box, score and five landmarks (eyes, nose, mouth corners).")

    @Argument(help: "Image files.")
    var images: [String]

    @Flag(name: .long, help: "Print JSON instead of text.")
    var json = false

    @Option(name: .long, help: "Face detector: auto, a registry name, or a .pth file.")
    var detector = "auto"

    @Option(name: .long, help: "Detection score threshold (GFPGAN uses 0.97).")
    var threshold: Float = 0.97

    @Option(name: .long, help: "CPU threads (default: all cores).")
    var threads: Int?

    struct Report: Encodable {
        struct Face: Encodable { let box: [Float]; let score: Float; let landmarks: [[Float]] }
        let file: String
        let width: Int
        let height: Int
        let faces: [Face]
    }

    func run() throws {
        let context = ComputeContext(threads: threads)
        let net = loadDetector(detector, context: context, verbose: false)
        var reports: [Report] = []
        var failures = 0
        for file in images {
            do {
                let image = try ImageIO.read(path: file).image
                let faces = try net.detect(bgr: image.pixels, width: image.width, height: image.height, threshold: threshold, context)
                let report = Report(file: file, width: image.width, height: image.height, faces: faces.map { f in
                    Report.Face(box: f.box, score: f.score, landmarks: (0..<5).map { [f.landmarks[2 * $0], f.landmarks[2 * $0 + 1]] })
                })
                if json { reports.append(report) } else { printText(report) }
            } catch {
                printError("facerestore: \(error)")
                failures += 1
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(reports), as: UTF8.self))
        }
        if failures > 0 { throw ExitCode(1) }
    }

    func printText(_ r: Report) {
        print("\(r.file): \(r.width)×\(r.height), \(r.faces.count) face\(r.faces.count == 1 ? "" : "s")")
        func f(_ v: Float) -> String { String(format: "%.1f", v) }
        for (i, face) in r.faces.enumerated() {
            let lm = face.landmarks.map { "(\(f($0[0])), \(f($0[1])))" }.joined(separator: " ")
            print("  \(i): box (\(f(face.box[0])), \(f(face.box[1])))–(\(f(face.box[2])), \(f(face.box[3]))) "
                  + "score \(String(format: "%.4f", face.score)) landmarks \(lm)")
        }
    }
}
