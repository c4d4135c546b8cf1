// The ArcFace "Deg." identity angle against VQFR's calculate_cos_dist.py with a random-weight
// ResNetArcFace (gfpgan 1.3.8 arcface_arch, the tree of arcface-pytorch's resnet_face18), with and
// without SE blocks (Fixtures/arcface, made by scripts/make_lpips_arcface_fixtures.py; weights
// rebuilt here from their seeds): the 128² gray inputs (cv2.imread(p, 0) + INTER_LINEAR resize,
// byte for byte), the embeddings, the angles; loading errors; with the full-size fixtures present,
// the GFP-GAN (plain) and arcface-pytorch (DataParallel `module.`) .pth layouts.

import FaceRestoreEngine
@testable import FaceRestoreEvaluation
import FaceRestoreImaging
import FaceRestoreModels
import FaceRestoreWeights
import Foundation
import Testing

private let arcfaceDirectory = fixtures.appendingPathComponent("arcface")

private func inputPath(_ file: String) -> String {
    file.hasPrefix("examples/") ? repositoryRoot.appendingPathComponent(file).path : arcfaceDirectory.appendingPathComponent(file).path
}

@Suite(.serialized) struct ArcFaceTests {
    let context = ComputeContext()

    func expected() throws -> [String: Any] { try jsonObject("arcface/expected.json") }

    func network(_ variant: String) throws -> ArcFaceResNet {
        let w = try jsonObject("arcface/weights.json")
        let v = try #require(w[variant] as? [String: Any])
        let sd = RandomWeights.stateDict(WeightSpec.list(v["tensors"]), seed: (v["seed"] as! NSNumber).intValue)
        return try ArcFaceResNet(stateDict: sd, file: "random arcface (\(variant))", context: context)
    }

    @Test func grayInputsMatchOpenCV() throws {
        let inputs = try #require(try expected()["inputs"] as? [String: [String: String]])
        for (name, entry) in inputs.sorted(by: { $0.key < $1.key }) {
            let ours = try ArcFaceIdentity.gray128(path: inputPath(entry["file"]!))
            let theirs = try ImageIO.readGrayscale(path: arcfaceDirectory.appendingPathComponent(entry["input128"]!).path)
            #expect(ours.width == 128 && ours.height == 128 && ours.channels == 1)
            let differing = zip(ours.pixels, theirs.pixels).filter { $0 != $1 }.count
            #expect(ours.pixels == theirs.pixels, "\(name): \(differing) of 16384 gray levels differ from cv2")
        }
    }

    @Test(arguments: ["plain", "se"])
    func embeddingsAndAngles(_ variant: String) throws {
        let exp = try expected()
        let inputs = try #require(exp["inputs"] as? [String: [String: String]])
        let want = try #require(exp[variant] as? [String: Any])
        let wantEmbeddings = try #require(want["embeddings"] as? [String: [Double]])
        let net = try network(variant)
        #expect(net.useSE == (variant == "se"))
        #expect(net.layers == [2, 2, 2, 2])
        let identity = ArcFaceIdentity(network: net, context: context)
        let names = inputs.keys.sorted()
        let grays = try names.map { try ArcFaceIdentity.gray128(path: inputPath(inputs[$0]!["file"]!)) }
        let batch = try identity.embeddings(gray128: grays)
        var embeddings: [String: [Float]] = [:]
        var worst: Float = 0
        for (name, e) in zip(names, batch) {
            let w = try #require(wantEmbeddings[name])
            let d = zip(e, w).map { abs($0 - Float($1)) }.max() ?? .infinity
            worst = max(worst, d)
            #expect(e.count == 512 && d <= 1e-4, "\(variant) \(name): max |Δ| \(d)")
            embeddings[name] = e
        }
        // One image at a time gives the same as the batch.
        let single = try identity.embedding(gray128: grays[0])
        #expect(zip(single, batch[0]).allSatisfy { abs($0 - $1) <= 1e-5 })
        let pairs = try #require(exp["pairs"] as? [[String: String]])
        let angles = try #require(want["angles"] as? [Double]), vqfr = try #require(want["angles_vqfr"] as? [Double])
        var worstAngle = 0.0, worstVQFR = 0.0
        var ours: [Double] = []
        for (i, pair) in pairs.enumerated() {
            let a = ArcFaceIdentity.angleDegrees(embeddings[pair["reference"]!]!, embeddings[pair["restored"]!]!)
            ours.append(a)
            worstAngle = max(worstAngle, abs(a - angles[i]))
            if vqfr[i].isFinite { worstVQFR = max(worstVQFR, abs(a - vqfr[i])) }
            #expect(abs(a - angles[i]) <= 1e-3, "\(variant) \(pair): \(a)° vs \(angles[i])°")
        }
        let deg = IdentityDegree(angles: ours)
        let reference = IdentityDegree(angles: angles)
        #expect(deg.dropped == reference.dropped && deg.dropped >= 1)
        #expect(abs((deg.mean ?? .nan) - (reference.mean ?? .nan)) <= 1e-3)
        print("ArcFace \(variant): embeddings max |Δ| \(worst); angles max |Δ| \(worstAngle)° (float32 VQFR script: \(worstVQFR)°); Deg. \(deg.mean ?? .nan)° over \(deg.kept), \(deg.dropped) dropped")
    }

    @Test func degreeDropsPairsUnderOneDegree() {
        let d = IdentityDegree(angles: [0.5, 2, 4, 0.999, 1])
        #expect(d.kept == 3 && d.dropped == 2)
        #expect(d.mean == 7.0 / 3)
        #expect(IdentityDegree(angles: [0.1]).mean == nil)
        #expect(ArcFaceIdentity.angleDegrees([1, 0], [1, 0]) == 0)
        #expect(abs(ArcFaceIdentity.angleDegrees([1, 0], [0, 2]) - 90) < 1e-12)
    }

    @Test func loadingErrorsNameTheTensorAndShapes() throws {
        let w = try jsonObject("arcface/weights.json")
        let spec = WeightSpec.list((w["plain"] as! [String: Any])["tensors"])
        func message(_ sd: StateDict) -> String {
            do { _ = try ArcFaceResNet(stateDict: sd, file: "arcface.pth", context: context); return "loaded" } catch { return "\(error)" }
        }
        #expect(message(RandomWeights.zeros(spec, dropping: "fc5.bias")) == "arcface.pth: missing tensor 'fc5.bias' (expected shape [512])")
        #expect(message(RandomWeights.zeros(spec, reshaping: ("layer3.0.downsample.0.weight", [256, 128, 3, 3])))
                == "arcface.pth: tensor 'layer3.0.downsample.0.weight' has shape [256, 128, 3, 3], the model expects [256, 128, 1, 1]")
        #expect(message(RandomWeights.zeros(spec, reshaping: ("fc5.weight", [512, 8192])))
                == "arcface.pth: tensor 'fc5.weight' has shape [512, 8192], the model expects [512, 32768]")
        let other = StateDict(names: ["features.0.weight"], tensors: ["features.0.weight": WeightTensor(shape: [1], floats: [0])])
        #expect(message(other).hasPrefix("arcface.pth: this is "))
        do { _ = try ArcFaceIdentity(weights: "/nonexistent/resnet18_110.pth") } catch {
            #expect("\(error)" == "/nonexistent/resnet18_110.pth: no such file")
        }
    }

    @Test func fullSizeFileLayouts() throws {
        guard let dir = fullSizeMetricFixtures else {
            print("skipped: no full-size LPIPS/ArcFace fixtures (scripts/make_lpips_arcface_fixtures.py)")
            return
        }
        let full = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("full.json"))) as? [String: Any])
        let images = try #require(full["images"] as? [String])
        let embeddings = try #require(full["arcface_embeddings"] as? [String: [String: [Double]]])
        let angles = try #require(full["arcface_angles"] as? [Double])
        for layout in ["plain", "dataparallel"] {
            let identity = try ArcFaceIdentity(weights: dir.appendingPathComponent("arcface_random_\(layout).pth").path, context: context)
            var worst: Float = 0, worstAngle = 0.0, best = Double.infinity
            for (i, name) in images.enumerated() {
                let start = Date()
                let e = try identity.embedding(path: dir.appendingPathComponent("\(name)_restored.png").path)
                best = min(best, Date().timeIntervalSince(start) * 1000)
                let r = try identity.embedding(path: dir.appendingPathComponent("\(name)_gt.png").path)
                let want = try #require(embeddings[name])
                worst = max(worst, zip(e, want["restored"]!).map { abs($0 - Float($1)) }.max()!,
                            zip(r, want["reference"]!).map { abs($0 - Float($1)) }.max()!)
                worstAngle = max(worstAngle, abs(ArcFaceIdentity.angleDegrees(r, e) - angles[i]))
            }
            #expect(worst <= 1e-4 && worstAngle <= 1e-3)
            let reference = (full["arcface_ms"] as? Double) ?? .nan
            print("ArcFace 512² files (\(layout)): embeddings max |Δ| \(worst), angles max |Δ| \(worstAngle)°; \(String(format: "%.1f", best)) ms per image incl. read in this build (the reference network took \(String(format: "%.1f", reference)) ms when the fixtures were made)")
        }
    }
}
