// Vector-quantiser ops of the codebook restorers, with PyTorch semantics:
// - nearest codeword: RestoreFormer's `VectorQuantizer.forward` (gfpgan 1.3.8
//   `gfpgan/archs/restoreformer_arch.py`): `d = Σz² + Σe² − 2·z·eᵀ` in float32, `torch.min(d, 1)`
//   (the first index on ties), `z_q = embedding[idx]`;
// - top-1 of logits: CodeFormer's `torch.topk(softmax(logits), 1)` (sczhou/CodeFormer
//   `basicsr/archs/codeformer_arch.py` @ b33cc7d639d6), i.e. the first maximal index, and its
//   `get_codebook_feat` row gather.
// Ported from reading those; checked by TransformerOpTests.

import CDNNL

/// The result of a nearest-codeword search: per token, the chosen index, its distance, and the
/// gap from the best to the second-best distance (0 on a tie), which tells parity tests how
/// close a choice was.
public struct CodewordMatch: Sendable, Equatable {
    public let indices: [Int]
    public let distances: [Float]
    public let gaps: [Float]
}

/// A codebook `[K, D]` (`quantize.embedding.weight`) with its squared row norms computed once.
public final class Codebook: Sendable {
    public let size: Int
    public let dim: Int
    private let embedding: Tensor
    private let squaredNorms: [Float]

    public init(embedding: Tensor, context: ComputeContext) throws {
        guard embedding.rank == 2, embedding.count > 0 else {
            throw EngineError.shapeMismatch(op: "codebook", detail: "embedding \(embedding.shape) (need [K, D])")
        }
        self.embedding = try context.contiguous(embedding)
        (size, dim) = (embedding.shape[0], embedding.shape[1])
        let (k, d) = (size, dim)
        squaredNorms = self.embedding.withPlainValues { e in
            (0..<k).map { row in ComputeContext.squaredNorm(e.baseAddress! + row * d, d) }
        }
    }

    /// The nearest codeword of each token of `z`: `[N, D]` tokens, or a `[B, D, H, W]` feature map
    /// whose tokens are taken in `z.permute(0, 2, 3, 1).reshape(-1, D)` order.
    /// `d = (Σz² + Σe²) − 2·(z·eᵀ)` in float32 (the norms summed in double and rounded, the product
    /// from oneDNN's matmul), the first index of the minimum. K=1024, D=256, N=256: about 0.5 ms.
    public func nearest(_ z: Tensor, _ context: ComputeContext) throws -> CodewordMatch {
        let tokens: Tensor
        if z.rank == 2, z.shape[1] == dim {
            tokens = try context.contiguous(z)
        } else if z.rank == 4, z.shape[1] == dim {
            let n = z.count / dim
            tokens = Tensor(shape: [n, dim], values: try context.arrayNHWC(z))
        } else {
            throw EngineError.shapeMismatch(op: "codebook", detail: "tokens \(z.shape) for a [\(size), \(dim)] codebook (need [N, \(dim)] or [B, \(dim), H, W])")
        }
        let n = tokens.shape[0]
        guard n > 0 else { throw EngineError.shapeMismatch(op: "codebook", detail: "no tokens in \(z.shape)") }
        let products = try context.matmul(tokens, embedding, transposeB: true)   // [N, K]
        let zNorms = tokens.withPlainValues { t in (0..<n).map { ComputeContext.squaredNorm(t.baseAddress! + $0 * dim, dim) } }
        var indices = [Int](repeating: 0, count: n), distances = [Float](repeating: 0, count: n)
        var gaps = [Float](repeating: 0, count: n)
        products.withPlainValues { p in
            for i in 0..<n {
                let row = p.baseAddress! + i * size
                var best = Float.infinity, second = Float.infinity, index = 0
                for j in 0..<size {
                    let d = (zNorms[i] + squaredNorms[j]) - 2 * row[j]
                    if d < best { second = best; best = d; index = j }
                    else if d < second { second = d }
                }
                indices[i] = index
                distances[i] = best
                gaps[i] = second - best
            }
        }
        return CodewordMatch(indices: indices, distances: distances, gaps: gaps)
    }

    /// `embedding[indices]`: `[N, D]` (plain). Indices outside `0..<K` throw.
    public func rows(_ indices: [Int], _ context: ComputeContext) throws -> Tensor {
        try context.gatherRows(embedding, indices: indices)
    }
}

extension ComputeContext {
    static func squaredNorm(_ p: UnsafePointer<Float>, _ count: Int) -> Float {
        var s = 0.0
        for i in 0..<count { s += Double(p[i]) * Double(p[i]) }
        return Float(s)
    }

    /// `table[indices]` for a `[K, D]` table: `[N, D]` (plain). Indices outside `0..<K` throw.
    public func gatherRows(_ table: Tensor, indices: [Int]) throws -> Tensor {
        guard table.rank == 2 else {
            throw EngineError.shapeMismatch(op: "gatherRows", detail: "table \(table.shape) (need [K, D])")
        }
        let (k, d) = (table.shape[0], table.shape[1])
        if let bad = indices.first(where: { $0 < 0 || $0 >= k }) {
            throw EngineError.shapeMismatch(op: "gatherRows", detail: "index \(bad) outside a table of \(k) rows")
        }
        let src = try contiguous(table)
        return src.withPlainValues { t in
            Tensor(shape: [indices.count, d]) { out in
                for (r, i) in indices.enumerated() {
                    out.baseAddress!.advanced(by: r * d).update(from: t.baseAddress! + i * d, count: d)
                }
            }
        }
    }

    /// Top-1 over the last dim of `logits` (`[..., K]`): the FIRST index of the maximum per row
    /// (`torch.argmax`/`topk(·, 1)`; softmax is monotonic, so argmax of the logits equals
    /// CodeFormer's argmax of their softmax except where softmax rounds two logits to one value),
    /// and the gap from the top to the second logit (0 on a tie). NaN rows throw.
    public func argmax(_ logits: Tensor) throws -> (indices: [Int], gaps: [Float]) {
        guard let k = logits.shape.last, k > 0, logits.count > 0 else {
            throw EngineError.shapeMismatch(op: "argmax", detail: "logits \(logits.shape)")
        }
        let rows = logits.count / k
        let plain = try contiguous(logits)
        var indices = [Int](repeating: 0, count: rows), gaps = [Float](repeating: 0, count: rows)
        var nonFinite = false
        plain.withPlainValues { p in
            for r in 0..<rows {
                let row = p.baseAddress! + r * k
                var best = -Float.infinity, second = -Float.infinity, index = 0
                for j in 0..<k {
                    let v = row[j]
                    if v.isNaN { nonFinite = true }
                    if v > best { second = best; best = v; index = j }
                    else if v > second { second = v }
                }
                indices[r] = index
                gaps[r] = best - second
            }
        }
        if nonFinite { throw EngineError.nonFinite(op: "argmax") }
        return (indices, gaps)
    }
}
