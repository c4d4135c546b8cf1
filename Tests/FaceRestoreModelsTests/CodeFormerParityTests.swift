// CodeFormer: configuration from the keys, and, where scripts/make_codeformer_fixtures.py has
// written its random-weight fixtures (~/.cache/facerestore-reference/fixtures, reference env only),
// every stage at parity with the reference (spandrel-extra-arches 0.2.0's copy, bit-identical to
// sczhou/CodeFormer) on one face: encoder features, transformer layers, logits and codes, AdaIN,
// each fused and generator level, the output for w = 0.5 and 0 (the generator run from the
// reference's codes, so a code flipped on a near-tie could not hide a generator difference); and
// the colorization and inpainting checkpoints end to end. scripts/parity_codeformer.py runs every
// face and weight on a release build.

import FaceRestoreEngine
@testable import FaceRestoreModels
import FaceRestoreWeights
import Foundation
import Testing

private let codeFormerFixtures = (ProcessInfo.processInfo.environment["HOME"] ?? "/root") + "/.cache/facerestore-reference/fixtures/"
private let haveCodeFormerFixtures = FileManager.default.fileExists(atPath: codeFormerFixtures + "codeformer_parity.safetensors")

@Suite struct CodeFormerParity {
    @Test func configurationFromTheKeys() {
        var keys: [String: [Int]] = ["quantize.embedding.weight": [1024, 256], "position_emb": [256, 512],
                                     "encoder.blocks.0.weight": [64, 3, 3, 3], "idx_pred_layer.1.weight": [1024, 512]]
        for s in [32, 64, 128] { keys["fuse_convs_dict.\(s).encode_enc.norm1.weight"] = [2 * (s == 128 ? 128 : 256)] }
        #expect(Architecture.detect(shapes: keys) == .codeFormer(fusedSizes: [32, 64, 128], codebookSize: 1024))
        #expect(Architecture.detect(shapes: keys)?.description.contains("colorization") == true)
        keys["quantize.embedding.weight"] = [512, 256]
        #expect(Architecture.detect(shapes: keys)?.description.contains("inpainting") == true)
        keys["fuse_convs_dict.256.encode_enc.norm1.weight"] = [256]
        #expect(Architecture.detect(shapes: keys) == .codeFormer(fusedSizes: [32, 64, 128, 256], codebookSize: 512))
        #expect(CodeFormer.task(fusedSizes: [32, 64, 128, 256], codebookSize: 1024) == .restoration)
    }

    /// Max |Δ| between a tensor of ours and the reference's (same element order).
    static func worst(_ ours: Tensor, _ ref: WeightTensor, _ ctx: ComputeContext, clamp: Bool = false) throws -> Float {
        #expect(ours.shape == ref.shape, "shape \(ours.shape) vs \(ref.shape)")
        let a = try ctx.array(ours), b = try ref.floats()
        guard a.count == b.count else { return .infinity }
        var m: Float = 0
        for i in a.indices {
            let (x, y) = clamp ? (min(max(a[i], -1), 1), min(max(b[i], -1), 1)) : (a[i], b[i])
            m = max(m, abs(x - y))
        }
        return m
    }

    /// Max |Δ| relative to the reference tensor's largest magnitude (features grow to O(100)).
    static func relative(_ ours: Tensor, _ ref: WeightTensor, _ ctx: ComputeContext) throws -> Float {
        let scale = try ref.floats().reduce(Float(0)) { max($0, abs($1)) }
        return try worst(ours, ref, ctx) / max(scale, 1)
    }

    @Test(.enabled(if: haveCodeFormerFixtures, "no CodeFormer fixtures (scripts/make_codeformer_fixtures.py, reference env)"))
    func everyStageMatchesTheReference() throws {
        let ctx = ComputeContext(threads: 2)
        let net = try CodeFormer(path: codeFormerFixtures + "codeformer_random.pth", context: ctx)
        #expect(net.task == .restoration && net.fusedSizes == [32, 64, 128, 256] && net.codebookSize == 1024 && net.layerCount == 9)
        let ref = try SafeTensors.read(path: codeFormerFixtures + "codeformer_parity.safetensors")
        func r(_ key: String) throws -> WeightTensor { try #require(ref[key], "\(key) missing") }
        for face in ["astronaut"] {
            let x = try r("\(face).input")
            let encoded = try net.encode(Tensor(shape: x.shape, values: try x.floats()), ctx)
            var report = "\(face): lq_feat \(try Self.relative(encoded.latent, try r("\(face).lq_feat"), ctx))"
            for s in [32, 64, 128, 256] {
                let e = try Self.relative(try #require(encoded.skips[s]), try r("\(face).enc.\(s)"), ctx)
                #expect(e <= 1e-5, "enc.\(s) relative \(e)")
            }
            #expect(try Self.relative(encoded.latent, try r("\(face).lq_feat"), ctx) <= 1e-5)

            var layerError: Float = 0
            let logits = try net.logits(encoded.latent, trace: { i, t in
                let key = i < 0 ? "\(face).feat_emb" : "\(face).ft.\(i)"
                if let want = ref[key], let e = try? Self.relative(t, want, ctx) { layerError = max(layerError, e) }
            }, ctx)
            #expect(layerError <= 1e-5, "transformer layers relative \(layerError)")
            let logitError = try Self.worst(try ctx.reshape(logits, [1, 256, net.codebookSize]), try r("\(face).logits"), ctx)
            let (indices, _) = try ctx.argmax(logits)
            let refIndices = try r("\(face).top_idx").floats().map { Int($0) }
            let refGaps = try r("\(face).logit_gap").floats()
            // A code may differ only where the reference's top two logits are within our logit error.
            let flips = indices.indices.filter { indices[$0] != refIndices[$0] }
            #expect(flips.allSatisfy { refGaps[$0] <= 2 * logitError }, "codes differ at \(flips) (logit error \(logitError))")
            #expect(flips.isEmpty, "the fixture's smallest gap is 0.05; no code should flip")
            report += ", layers \(layerError), logits \(logitError), codes \(indices.count - flips.count)/\(indices.count) equal"

            let quant = try net.codes(refIndices, latent: encoded.latent, adain: false, ctx)
            #expect(try Self.worst(quant, try r("\(face).quant"), ctx) == 0, "the codewords are copied")
            let adain = try net.codes(refIndices, latent: encoded.latent, adain: true, ctx)
            let adainError = try Self.relative(adain, try r("\(face).quant_adain"), ctx)
            #expect(adainError <= 1e-5)

            // The generator from the reference's codes, at each fidelity weight.
            for (tag, w) in [("w050", Float(0.5)), ("w000", 0)] where ref["\(face).\(tag).output"] != nil {
                var levels: [String: Float] = [:]
                let out = try net.generate(adain, skips: encoded.skips, w: w, trace: { name, t in
                    if let want = ref["\(face).\(tag).\(name)"], let e = try? Self.relative(t, want, ctx) { levels[name] = e }
                }, ctx)
                let e = try Self.worst(out, try r("\(face).\(tag).output"), ctx, clamp: true)
                #expect(e <= 1e-4, "\(tag) output max |Δ| on [-1, 1]: \(e)")
                #expect(levels.values.allSatisfy { $0 <= 5e-5 }, "\(tag) levels \(levels)")
                #expect(levels.keys.contains { $0.hasPrefix("fuse") } == (w > 0), "fusion runs only when w > 0")
                report += "; \(tag) output \(e), levels ≤ \(levels.values.max() ?? 0)"
            }
            print("CodeFormer \(report)")
        }
    }

    @Test(.enabled(if: haveCodeFormerFixtures, "no CodeFormer fixtures (scripts/make_codeformer_fixtures.py, reference env)"),
          arguments: [("codeformer_colorization", "grace_hopper_gray", CodeFormer.Task.colorization),
                      ("codeformer_inpainting", "grace_hopper_masked", .inpainting)])
    func colorizationAndInpaintingCheckpoints(config: String, face: String, task: CodeFormer.Task) throws {
        let ctx = ComputeContext(threads: 2)
        let net = try CodeFormer(path: codeFormerFixtures + config + "_random.pth", context: ctx)
        #expect(net.task == task && net.fusedSizes == [32, 64, 128])
        let ref = try SafeTensors.read(path: codeFormerFixtures + config + "_parity.safetensors")
        let x = try #require(ref["\(face).input"])
        let (w, adain) = net.call(fidelity: 0.5)
        let tag = w == 0 ? "w000" : "w100"
        let (y, codes, _) = try net.forward(Tensor(shape: x.shape, values: try x.floats()), w: w, adain: adain, ctx)
        #expect(codes == (try #require(ref["\(face).top_idx"])).floats().map { Int($0) })
        let e = try Self.worst(y, try #require(ref["\(face).\(tag).output"]), ctx, clamp: true)
        #expect(e <= 1e-4, "max |Δ| on [-1, 1]: \(e)")
        print("CodeFormer \(config): w \(w), adain \(adain), output max |Δ| \(e)")
    }
}

/// Damaged codebook-restorer files: one line naming the key and the shapes, before any layer is
/// built. The state dicts are the official key listings (committed) filled with zeros.
@Suite struct CodebookRestorerBadFiles {
    static func stateDict(_ listing: String, _ change: (inout [(String, [Int])]) -> Void) throws -> StateDict {
        let text = try String(contentsOf: modelFixtures.appendingPathComponent(listing), encoding: .utf8)
        var entries: [(String, [Int])] = text.split(separator: "\n").compactMap { line in
            guard let open = line.firstIndex(of: "(") else { return nil }
            let shape = line[line.index(after: open)...].dropLast().split(separator: ",")
                .compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            return (String(line[..<open].dropLast()), shape)
        }
        change(&entries)
        var tensors: [String: WeightTensor] = [:]
        for (name, shape) in entries { tensors[name] = WeightTensor(shape: shape, floats: [Float](repeating: 0, count: shape.reduce(1, *))) }
        return StateDict(names: entries.map(\.0), tensors: tensors)
    }

    func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "loaded"
    }

    @Test func codeFormerWithACodebookOfAnotherSize() throws {
        let sd = try Self.stateDict("codeformer_keys.txt") { e in
            if let i = e.firstIndex(where: { $0.0 == "quantize.embedding.weight" }) { e[i].1 = [1000, 256] }
        }
        let text = message { _ = try CodeFormer(stateDict: sd, file: "cf.pth", context: ComputeContext(threads: 1)) }
        #expect(text == "cf.pth: 'idx_pred_layer.1.weight' has shape [1024, 512], expected [1000, 512]" || 
                (text.contains("idx_pred_layer.1.weight") && text.contains("[1000, 512]") && text.contains("[1024, 512]")), "\(text)")
        #expect(!text.contains("\n"))
    }

    @Test func codeFormerWithAnIncompleteTransformerLayer() throws {
        let sd = try Self.stateDict("codeformer_keys.txt") { e in e.removeAll { $0.0 == "ft_layers.8.norm2.bias" } }
        let text = message { _ = try CodeFormer(stateDict: sd, file: "cf.pth", context: ComputeContext(threads: 1)) }
        #expect(text == "cf.pth: missing tensor 'ft_layers.8.norm2.bias' (expected shape [512])", "\(text)")
        // A last layer missing `linear1.weight` (which the count is read from) is named too.
        let sd2 = try Self.stateDict("codeformer_keys.txt") { e in e.removeAll { $0.0 == "ft_layers.8.linear1.weight" } }
        let text2 = message { _ = try CodeFormer(stateDict: sd2, file: "cf.pth", context: ComputeContext(threads: 1)) }
        #expect(text2 == "cf.pth: missing tensor 'ft_layers.8.linear1.weight' (expected shape [1024, 512])", "\(text2)")
    }

    @Test func restoreFormerPlusPlusMissingDecoderAttention() throws {
        let sd = try Self.stateDict("restoreformer_pp_keys.txt") { e in e.removeAll { $0.0.hasPrefix("decoder.up.4.attn.2.") } }
        let text = message { _ = try RestoreFormer(stateDict: sd, file: "rf.pth", context: ComputeContext(threads: 1)) }
        #expect(text == "rf.pth: missing tensor 'decoder.up.4.attn.2.norm1.weight' (expected shape [256])", "\(text)")
    }
}
