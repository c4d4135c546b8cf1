// LPIPS v0.1 (VGG16, AlexNet) against lpips 0.1.4 with random backbones (Fixtures/lpips, made by
// scripts/make_lpips_arcface_fixtures.py; the weights are rebuilt here from their seeds), with
// random linear layers and with the lpips wheel's (from the model cache, when installed); the
// lpips state-dict dump layout; loading errors. With the full-size fixtures present, the
// torchvision-layout .pth files at 512².

import FaceRestoreEngine
@testable import FaceRestoreEvaluation
import FaceRestoreImaging
import FaceRestoreModels
import FaceRestoreWeights
import Foundation
import Testing

private let lpipsDirectory = fixtures.appendingPathComponent("lpips")

private func lpipsImage(_ name: String) throws -> FloatImage {
    FloatImage(try ImageIO.read(path: lpipsDirectory.appendingPathComponent(name).path).image)
}

private func lpipsSpec(_ net: String) throws -> (backbone: [WeightSpec], backboneSeed: Int, linear: [WeightSpec], linearSeed: Int) {
    let w = try jsonObject("lpips/weights.json")
    let n = try #require(w[net] as? [String: Any])
    return (WeightSpec.list(n["backbone"]), (n["backbone_seed"] as! NSNumber).intValue,
            WeightSpec.list(n["linear"]), (n["linear_seed"] as! NSNumber).intValue)
}

/// The random backbones, made once (about 15 M values for VGG16) and shared by the tests.
private let randomBackbones: [String: StateDict] = Dictionary(uniqueKeysWithValues: ["vgg", "alex"].map { net in
    let spec = try! lpipsSpec(net)
    return (net, RandomWeights.stateDict(spec.backbone, seed: spec.backboneSeed))
})

@Suite(.serialized) struct LPIPSTests {
    let context = ComputeContext()

    /// Scores every fixture pair; returns the largest difference from `expected`.
    func check(_ metric: LPIPSMetric, expected key: String) throws -> Double {
        let exp = try jsonObject("lpips/expected.json")
        let pairs = try #require(exp["pairs"] as? [[String: String]])
        let values = try #require(exp[key] as? [Double])
        var worst = 0.0
        for (pair, want) in zip(pairs, values) {
            let d = try metric.distance(try lpipsImage(pair["restored"]!), try lpipsImage(pair["reference"]!))
            worst = max(worst, abs(d - want))
            #expect(abs(d - want) <= 1e-4, "\(key) \(pair): \(d) vs \(want)")
        }
        print("LPIPS \(key): max |Δ| \(worst) over \(pairs.count) pairs")
        return worst
    }

    @Test(arguments: ["vgg", "alex"])
    func randomBackboneAndLinearLayers(_ net: String) throws {
        let spec = try lpipsSpec(net)
        let backbone = try #require(randomBackbones[net])
        let linear = RandomWeights.stateDict(spec.linear, seed: spec.linearSeed)
        let network = try LPIPSNet(backbone: LPIPSNet.Backbone(rawValue: net)!, weights: backbone, file: "random \(net)",
                                   linear: linear, linearFile: "random linear", context: context)
        _ = try check(LPIPSMetric(network: network, context: context), expected: "\(net)_random_linear")

        // The same tensors as one lpips.LPIPS() state dict (net.sliceK.N.*, lin*, scaling_layer.*).
        let ends = net == "vgg" ? [4, 9, 16, 23, 30] : [2, 5, 8, 10, 12]
        var names: [String] = [], tensors: [String: WeightTensor] = [:]
        for key in ["scaling_layer.shift", "scaling_layer.scale"] {
            let values = key.hasSuffix("shift") ? LPIPSNet.shift : LPIPSNet.scale
            names.append(key); tensors[key] = WeightTensor(shape: [1, 3, 1, 1], floats: values)
        }
        for key in backbone.names {
            let parts = key.split(separator: ".")
            let i = Int(parts[1])!
            let dumped = "net.slice\(ends.firstIndex { i < $0 }! + 1).\(i).\(parts[2])"
            names.append(dumped); tensors[dumped] = backbone[key]
        }
        for key in linear.names { names.append(key); tensors[key] = linear[key] }
        let dump = try LPIPSNet(backbone: LPIPSNet.Backbone(rawValue: net)!, weights: StateDict(names: names, tensors: tensors),
                                file: "lpips dump", context: context)
        _ = try check(LPIPSMetric(network: dump, context: context), expected: "\(net)_random_linear")
    }

    @Test(arguments: ["vgg", "alex"])
    func wheelLinearLayers(_ net: String) throws {
        let path = modelCache.appendingPathComponent("lpips_v0.1_\(net).pth").path
        guard FileManager.default.fileExists(atPath: path) else {
            print("skipped: \(path) not installed (scripts/pypi_models.py)")
            return
        }
        let (linear, _) = try WeightsFile.load(path: path)
        let network = try LPIPSNet(backbone: LPIPSNet.Backbone(rawValue: net)!,
                                   weights: try #require(randomBackbones[net]), file: "random \(net)",
                                   linear: linear, linearFile: path, context: context)
        _ = try check(LPIPSMetric(network: network, context: context), expected: "\(net)_wheel_linear")
    }

    @Test func loadingErrorsNameTheTensorAndShapes() throws {
        let vgg = try lpipsSpec("vgg"), alex = try lpipsSpec("alex")
        let linear = RandomWeights.zeros(vgg.linear)
        func message(_ backbone: StateDict, _ lin: StateDict?) -> String {
            do {
                _ = try LPIPSNet(backbone: .vgg, weights: backbone, file: "vgg16.pth", linear: lin, linearFile: "lpips_v0.1_vgg.pth",
                                 context: context)
                return "loaded"
            } catch { return "\(error)" }
        }
        let missing = message(RandomWeights.zeros(vgg.backbone, dropping: "features.28.bias"), linear)
        #expect(missing == "vgg16.pth: missing tensor 'features.28.bias' (expected shape [512])")
        // AlexNet's backbone offered as VGG16's.
        let alexAsVGG = message(RandomWeights.zeros(alex.backbone), linear)
        #expect(alexAsVGG == "vgg16.pth: tensor 'features.0.weight' has shape [64, 3, 11, 11], the model expects [64, 3, 3, 3]")
        let badLinear = message(RandomWeights.zeros(vgg.backbone), RandomWeights.zeros(vgg.linear, reshaping: ("lin3.model.1.weight", [1, 256, 1, 1])))
        #expect(badLinear == "lpips_v0.1_vgg.pth: tensor 'lin3.model.1.weight' has shape [1, 256, 1, 1], the model expects [1, 512, 1, 1]")
        let noLinear = message(RandomWeights.zeros(vgg.backbone), nil)
        #expect(noLinear.hasPrefix("vgg16.pth: LPIPS needs its linear layers"))
        var extra = RandomWeights.zeros(vgg.backbone)
        extra = StateDict(names: extra.names + ["features.31.weight"],
                          tensors: extra.tensors.merging(["features.31.weight": WeightTensor(shape: [1], floats: [0])]) { a, _ in a })
        #expect(message(extra, linear) == "vgg16.pth: 1 unexpected tensor(s), e.g. 'features.31.weight'")
        let notFound = (try? LPIPSMetric(backbone: "/nonexistent/vgg16.pth", linear: nil, network: .vgg)).map { _ in "loaded" }
        #expect(notFound == nil)
        do { _ = try LPIPSMetric(backbone: "/nonexistent/vgg16.pth", linear: nil, network: .vgg) } catch {
            #expect("\(error)" == "/nonexistent/vgg16.pth: no such file")
        }
        for text in [missing, alexAsVGG, badLinear, noLinear] { #expect(!text.contains("\n")) }
    }

    @Test func fullSizeTorchvisionFiles() throws {
        guard let dir = fullSizeMetricFixtures else {
            print("skipped: no full-size LPIPS/ArcFace fixtures (scripts/make_lpips_arcface_fixtures.py)")
            return
        }
        let full = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("full.json"))) as? [String: Any])
        let images = try #require(full["images"] as? [String])
        for net in ["vgg", "alex"] {
            let linear = modelCache.appendingPathComponent("lpips_v0.1_\(net).pth").path
            guard FileManager.default.fileExists(atPath: linear) else { print("skipped: \(linear) not installed"); return }
            var metrics = [("torchvision", try LPIPSMetric(backbone: dir.appendingPathComponent("\(net)_random_torchvision.pth").path,
                                                           linear: linear, network: .init(rawValue: net)!, context: context))]
            #expect(metrics[0].1.ignoredKeys == ["classifier.6.bias"])
            if net == "vgg" {
                metrics.append(("lpips dump", try LPIPSMetric(backbone: dir.appendingPathComponent("vgg_random_lpips_dump.pth").path,
                                                              linear: nil, network: .vgg, context: context)))
            }
            let want = try #require(full["lpips_\(net)"] as? [Double])
            for (layout, metric) in metrics {
                var worst = 0.0, best = Double.infinity
                // The dump layout reads the same tensors: one pair is enough for it.
                for (name, value) in zip(images, want).prefix(layout == "lpips dump" ? 1 : images.count) {
                    let restored = FloatImage(try ImageIO.read(path: dir.appendingPathComponent("\(name)_restored.png").path).image)
                    let reference = FloatImage(try ImageIO.read(path: dir.appendingPathComponent("\(name)_gt.png").path).image)
                    let start = Date()
                    let d = try metric.distance(restored, reference)
                    best = min(best, Date().timeIntervalSince(start) * 1000)
                    worst = max(worst, abs(d - value))
                    #expect(abs(d - value) <= 1e-4, "\(net) \(layout) \(name): \(d) vs \(value)")
                }
                let reference = (full["lpips_\(net)_ms"] as? Double) ?? .nan
                print("LPIPS-\(net) 512² (\(layout)): max |Δ| \(worst); \(Int(best)) ms per pair in this build (the reference took \(Int(reference)) ms when the fixtures were made)")
            }
        }
    }
}
