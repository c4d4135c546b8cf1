// CodeFormer, RestoreFormer and RestoreFormer++ at full size against the reference, in every
// `swift test`: the weights are drawn from the integer hash scripts/make_codebook_ci_fixtures.py
// uses (recomputed here bit for bit), and only the reference's outputs are committed
// (Fixtures/codebook_ci.safetensors, 0.4 MB). CodeFormer: logits within 1e-4, codes equal except
// where the reference's top two logits are closer than our logit error, and the generator run from
// the reference's codes at w = 0.5 and 0; RestoreFormer and RF++: the same codewords and the
// output. Outputs within 1e-4 on [-1, 1] (every 97th value).

import FaceRestoreEngine
@testable import FaceRestoreModels
import FaceRestoreWeights
import Foundation
import Testing

/// The fixture script's weights: per tensor t (key order) and element i, u in [-0.5, 0.5) from
/// splitmix64, then the tensor's rule; `outScale` multiplies `last`'s weight and bias.
func hashedStateDict(_ listing: String, last: String, outScale: Float) throws -> StateDict {
    let text = try String(contentsOf: modelFixtures.appendingPathComponent(listing), encoding: .utf8)
    var names: [String] = [], tensors: [String: WeightTensor] = [:]
    for (t, line) in text.split(separator: "\n").enumerated() {
        guard let open = line.firstIndex(of: "(") else { continue }
        let name = String(line[..<open].dropLast())
        let shape = line[line.index(after: open)...].dropLast().split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        var values = hashedUniform(t, shape.reduce(1, *))
        values.withUnsafeMutableBufferPointer { v in
            if shape.count == 1 && name.hasSuffix("weight") {
                for i in v.indices { v[i] = 1 + Float(0.4) * v[i] }
            } else if shape.count == 1 {
                for i in v.indices { v[i] = Float(0.2) * v[i] }
            } else if name == "position_emb" {
                return
            } else {
                let fanIn = name.hasSuffix("quantize.embedding.weight") ? 1 : shape.dropFirst().reduce(1, *)
                let scale = Float((12.0 / Double(fanIn)).squareRoot())
                for i in v.indices { v[i] = v[i] * scale }
            }
            if name == last + ".weight" || name == last + ".bias" { for i in v.indices { v[i] = v[i] * outScale } }
        }
        names.append(name)
        tensors[name] = WeightTensor(shape: shape, floats: values)
    }
    return StateDict(names: names, tensors: tensors)
}

/// `(splitmix64((t << 40) ^ i ^ 0x9E3779B97F4A7C15) >> 40) / 2²⁴ − 0.5`, exact in float32.
func hashedUniform(_ t: Int, _ count: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        let base = UInt64(t) << 40 ^ 0x9E37_79B9_7F4A_7C15
        for i in 0..<count {
            var z = base ^ UInt64(i)
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            buffer[i] = Float(z >> 40) / 16_777_216 - 0.5
        }
        initialized = count
    }
}

@Suite struct CodebookCIParity {
    static let reference = try? SafeTensors.read(path: modelFixtures.appendingPathComponent("codebook_ci.safetensors").path)
    static let stride = 97

    static var input: Tensor { Tensor(shape: [1, 3, 512, 512], values: hashedUniform(100_000, 3 * 512 * 512).map { 2 * $0 }) }

    /// Max |Δ| of every `stride`-th value of `y` against the reference's, both clamped to [-1, 1].
    static func outputError(_ y: Tensor, _ want: WeightTensor, _ ctx: ComputeContext) throws -> Float {
        let ours = try ctx.array(y), theirs = want.floats()
        #expect(theirs.count == (ours.count + stride - 1) / stride)
        var worst: Float = 0
        for (k, v) in theirs.enumerated() { worst = max(worst, abs(min(max(ours[k * stride], -1), 1) - min(max(v, -1), 1))) }
        return worst
    }

    @Test func codeFormer() throws {
        let ref = try #require(Self.reference)
        func r(_ k: String) throws -> WeightTensor { try #require(ref[k], "\(k) missing") }
        let ctx = ComputeContext(threads: 2)
        let sd = try hashedStateDict("codeformer_keys.txt", last: "generator.blocks.24", outScale: try r("cf.out_scale").floats()[0])
        let net = try CodeFormer(stateDict: sd, file: "hashed CodeFormer", context: ctx)
        let encoded = try net.encode(Self.input, ctx)
        let logits = try ctx.array(try net.logits(encoded.latent, ctx))   // (256, 1, 1024)
        let refLogits = try r("cf.logits").floats(), k = net.codebookSize
        var logitError: Float = 0
        for (row, token) in Swift.stride(from: 0, to: 256, by: 4).enumerated() {
            for j in 0..<k { logitError = max(logitError, abs(logits[token * k + j] - refLogits[row * k + j])) }
        }
        #expect(logitError <= 1e-4, "logits max |Δ| \(logitError)")
        let (codes, _) = try ctx.argmax(Tensor(shape: [256, k], values: logits))
        let refCodes = try r("cf.top_idx").floats().map { Int($0) }, gaps = try r("cf.logit_gap").floats()
        let flips = codes.indices.filter { codes[$0] != refCodes[$0] }
        #expect(flips.allSatisfy { gaps[$0] <= 2 * logitError }, "codes differ at \(flips) beyond near-ties")
        // The generator from the reference's codes, so a near-tie cannot hide a difference.
        let quant = try net.codes(refCodes, latent: encoded.latent, adain: true, ctx)
        var report = "CodeFormer (hashed weights): logits \(logitError), \(256 - flips.count)/256 codes equal"
        for (tag, w) in [("w050", Float(0.5)), ("w000", 0)] {
            let e = try Self.outputError(try net.generate(quant, skips: encoded.skips, w: w, ctx), try r("cf.\(tag)"), ctx)
            #expect(e <= 1e-4, "\(tag): max |Δ| \(e)")
            report += ", \(tag) output \(e)"
        }
        print(report)
    }

    @Test(arguments: [("rf", "restoreformer_keys.txt"), ("rfpp", "restoreformer_pp_keys.txt")])
    func restoreFormer(tag: String, listing: String) throws {
        let ref = try #require(Self.reference)
        let ctx = ComputeContext(threads: 2)
        let sd = try hashedStateDict(listing, last: "decoder.conv_out", outScale: try #require(ref["\(tag).out_scale"]).floats()[0])
        let net = try RestoreFormer(stateDict: sd, file: "hashed \(tag)", context: ctx)
        #expect(net.variant == (tag == "rfpp" ? .restoreFormerPlusPlus : .restoreFormer))
        let (y, match) = try net.forward(Self.input, ctx)
        let refCodes = try #require(ref["\(tag).indices"]).floats().map { Int($0) }
        #expect(match.indices == refCodes, "codewords differ at \(match.indices.indices.filter { match.indices[$0] != refCodes[$0] })")
        let e = try Self.outputError(y, try #require(ref["\(tag).output"]), ctx)
        #expect(e <= 1e-4, "max |Δ| \(e)")
        print("\(net.variant.rawValue) (hashed weights): codewords equal \(match.indices == refCodes), output max |Δ| \(e)")
    }
}
