// `facerestore detect`: the faces facexlib's RetinaFace finds (`detect_faces(img, threshold)`,
// facexlib 0.3.0 `facexlib/detection/retinaface.py`): box, score and five landmarks per face, as
// text or JSON.

import ArgumentParser
import FaceRestore
import Foundation

struct Detect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the faces in images: box, score and five landmarks (eyes, nose, mouth corners).")

    @Argument(help: "Image files.")
    var images: [String]

    @Flag(name: .long, help: "Print JSON instead of text.")
    var json = false

    @Option(name: .long, help: "Face detector: auto (RetinaFace ResNet50, else MobileNet0.25), a model name, or a weights file.")
    var detector = "auto"

    @Option(name: .long, help: "Detection score threshold (GFPGAN uses 0.97).")
    var threshold: Float = 0.97

    @OptionGroup var compute: ComputeOptions

    struct Report: Encodable {
        struct Face: Encodable { let box: [Float]; let score: Float; let landmarks: [[Float]] }
        let file: String
        let width: Int
        let height: Int
        let faces: [Face]
    }

    func validate() throws {
        if !(0...1).contains(threshold) { throw ValidationError("--threshold must be between 0 and 1") }
    }

    func run() throws {
        let context = compute.context
        let net: RetinaFace
        do { net = try ModelStore().detector(ModelSpec(detector), verifyChecksums: !compute.noVerify, context: context) } catch { throw withHint(error) }
        var reports: [Report] = []
        var failures = 0
        for file in images {
            do {
                let data = try ImageIO.contents(path: file)
                let header = try ImageIO.probe(data, path: file)
                if let budget = compute.memoryBudget {
                    let needed = MemoryPlan.residentBytes + MemoryPlan.detection(width: header.width, height: header.height, backbone: net.backbone)
                    if needed > budget.bytes {
                        throw MemoryError(needed: needed, budget: budget.bytes, cause: "the \(net.backbone.rawValue) detector on the \(header.width)×\(header.height) photo", fits: [])
                    }
                }
                let image = try ImageIO.decode(data, path: file).image
                let faces = try net.detect(bgr: image.pixels, width: image.width, height: image.height, threshold: threshold, context)
                let report = Report(file: file, width: image.width, height: image.height, faces: faces.map { f in
                    Report.Face(box: f.box, score: f.score, landmarks: (0..<5).map { [f.landmarks[2 * $0], f.landmarks[2 * $0 + 1]] })
                })
                if json { reports.append(report) } else { printText(report) }
            } catch {
                printError("facerestore: \(RestoreError(path: file, underlying: error))")
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
