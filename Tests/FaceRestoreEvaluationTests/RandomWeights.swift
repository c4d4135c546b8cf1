// Random-weight state dicts for the metric networks, rebuilt bit for bit from the recipe of
// scripts/make_lpips_arcface_fixtures.py (its `generate`): tensor i of a key list is the first n
// values of `torch.manual_seed(seed + i); torch.empty(max(n, 16)).normal_()` (TorchGenerator),
// scaled by powers of two according to its kind. The key lists (with shapes and kinds) come from
// the fixtures' weights.json, written by the script from the PyPI/torch modules' state dicts.

import FaceRestoreEngine
import FaceRestoreWeights
import Foundation

struct WeightSpec {
    let key: String
    let shape: [Int]
    let kind: String

    /// `[[key, shape, kind], …]` as weights.json holds it.
    static func list(_ json: Any?) -> [WeightSpec] {
        (json as? [[Any]] ?? []).map { WeightSpec(key: $0[0] as! String, shape: ($0[1] as! [NSNumber]).map(\.intValue), kind: $0[2] as! String) }
    }
}

enum RandomWeights {
    /// The values of one tensor (float32 arithmetic as torch's, every factor a power of two).
    static func values(seed: UInt64, shape: [Int], kind: String) -> [Float] {
        let n = shape.reduce(1, *)
        var generator = TorchGenerator(seed: seed)
        let z = Array(generator.normal(count: max(n, 16)).prefix(n))
        func pow2(_ e: Int) -> Float { Float(sign: .plus, exponent: e, significand: 1) }
        switch kind {
        case "weight", "head":
            let fanIn = n / shape[0]
            let k = (Int.bitWidth - fanIn.leadingZeroBitCount - 1) / 2 + (kind == "head" ? 6 : 0)
            return z.map { $0 * pow2(-k) }
        case "bias": return z.map { $0 * pow2(-4) }
        case "lin": return z.map { abs($0) * pow2(-4) }
        case "bn_weight": return z.map { $0 * pow2(-3) + 1 }
        case "bn_bias", "running_mean": return z.map { $0 * pow2(-3) }
        case "running_var": return z.map { abs($0) * pow2(-1) + pow2(-1) }
        case "prelu": return z.map { $0 * pow2(-4) + pow2(-2) }
        default: fatalError("unknown weight kind \(kind)")
        }
    }

    static func stateDict(_ spec: [WeightSpec], seed: Int, rename: (String) -> String = { $0 }) -> StateDict {
        var tensors: [String: WeightTensor] = [:]
        for (i, s) in spec.enumerated() {
            tensors[rename(s.key)] = WeightTensor(shape: s.shape, floats: values(seed: UInt64(seed + i), shape: s.shape, kind: s.kind))
        }
        return StateDict(names: spec.map { rename($0.key) }, tensors: tensors)
    }

    /// A state dict of zeros with `spec`'s keys and shapes (for loading errors), less `dropping`
    /// and with `reshaping` changed.
    static func zeros(_ spec: [WeightSpec], dropping: String? = nil, reshaping: (String, [Int])? = nil) -> StateDict {
        var names: [String] = []
        var tensors: [String: WeightTensor] = [:]
        for s in spec where s.key != dropping {
            let shape = s.key == reshaping?.0 ? reshaping!.1 : s.shape
            tensors[s.key] = WeightTensor(shape: shape, floats: [Float](repeating: 0, count: shape.reduce(1, *)))
            names.append(s.key)
        }
        return StateDict(names: names, tensors: tensors)
    }
}

/// The repository root (examples/ and the full-size fixtures' default folder are found from it).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The out-of-repo full-size fixtures (scripts/make_lpips_arcface_fixtures.py), when made.
let fullSizeMetricFixtures: URL? = {
    let base = ProcessInfo.processInfo.environment["FACERESTORE_REFERENCE_FIXTURES"].flatMap { $0.isEmpty ? nil : $0 }
        ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/facerestore-reference/fixtures").path
    let dir = URL(fileURLWithPath: base).appendingPathComponent("lpips_arcface")
    return FileManager.default.fileExists(atPath: dir.appendingPathComponent("full.json").path) ? dir : nil
}()

/// The model cache of scripts/pypi_models.py.
let modelCache: URL = {
    let home = ProcessInfo.processInfo.environment["FACERESTORE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
        ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/facerestore").path
    return URL(fileURLWithPath: home).appendingPathComponent("models")
}()
