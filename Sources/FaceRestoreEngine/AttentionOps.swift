// Matrix products and attention through oneDNN's matmul primitive, with PyTorch semantics:
// - `matmul`: `torch.matmul` / `torch.bmm` on 2-D or 3-D operands (transposes as strides).
// - `spatialAttention`: the attention core of CodeFormer's `AttnBlock` (sczhou/CodeFormer
//   `basicsr/archs/vqgan_arch.py` @ b33cc7d639d6) with one head, and of RestoreFormer's
//   `MultiHeadAttnBlock` (gfpgan 1.3.8 `gfpgan/archs/restoreformer_arch.py`) with several.
// - `MultiheadAttention`: `nn.MultiheadAttention` forward (torch 1.13
//   `F.multi_head_attention_forward`, `batch_first=False`, no mask, no dropout) as CodeFormer's
//   `TransformerSALayer` calls it.
// Ported from reading those; checked by TransformerOpTests.

import CDNNL

extension ComputeContext {
    /// One oneDNN matmul `dst = scale·(src·weights) (+ bias)` on descriptors that may be strided.
    func matmul(src: (MemoryDesc, UnsafeMutableRawPointer), weights: (MemoryDesc, UnsafeMutableRawPointer),
                bias: (MemoryDesc, UnsafeMutableRawPointer)? = nil, dst: MemoryDesc, scale: Float = 1) throws -> Tensor {
        let p: Primitive
        do {
            p = try Primitive.make(.matmul(src: src.0, weights: weights.0, bias: bias?.0, dst: dst),
                                   outputScale: scale == 1 ? nil : scale, engine: engine)
        } catch let failure as DNNLFailure {
            throw EngineError.unsupported(op: "matmul", detail: failure.description)
        }
        let out = Tensor(uninitialized: dst)
        var args = [PrimitiveArg(role: DNNL_ARG_SRC, desc: src.0, data: src.1),
                    PrimitiveArg(role: DNNL_ARG_WEIGHTS, desc: weights.0, data: weights.1),
                    PrimitiveArg(role: DNNL_ARG_DST, desc: dst, data: out.storage.pointer)]
        if let bias { args.append(PrimitiveArg(role: DNNL_ARG_BIAS, desc: bias.0, data: bias.1)) }
        try run(p, args)
        return out
    }

    /// Dims `[B, rows, cols]` of a plain `[B, cols, rows]` buffer read transposed (or of a plain
    /// `[B, rows, cols]` buffer read as it is).
    private static func matrixDesc(batch: Int, rows: Int, cols: Int, transposed: Bool, rank: Int) -> MemoryDesc {
        let strides = transposed ? [rows * cols, 1, rows] : [rows * cols, cols, 1]
        return rank == 2 ? MemoryDesc(dims: [rows, cols], strides: Array(strides.dropFirst()))
            : MemoryDesc(dims: [batch, rows, cols], strides: strides)
    }

    /// `torch.matmul(a, b)` for 2-D `[M, K]·[K, N]` or batched 3-D `[B, M, K]·[B, K, N]` operands
    /// (a batch of 1 in `b` broadcasts), with `transposeA`/`transposeB` reading `a` as `[.., K, M]`
    /// or `b` as `[.., N, K]` in memory (no copy: strides). `result = scale·(a·b) + bias`, `bias`
    /// being `[N]`. Returns a plain tensor. 256×512·512×1024: about 0.4 ms on 2 threads.
    public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false,
                       bias: [Float]? = nil, scale: Float = 1) throws -> Tensor {
        let rank = a.rank
        guard rank == 2 || rank == 3, b.rank == rank else {
            throw EngineError.shapeMismatch(op: "matmul", detail: "\(a.shape) and \(b.shape) (need both 2-D or both 3-D)")
        }
        let (m, k) = transposeA ? (a.shape[rank - 1], a.shape[rank - 2]) : (a.shape[rank - 2], a.shape[rank - 1])
        let (kb, n) = transposeB ? (b.shape[rank - 1], b.shape[rank - 2]) : (b.shape[rank - 2], b.shape[rank - 1])
        let batchA = rank == 3 ? a.shape[0] : 1, batchB = rank == 3 ? b.shape[0] : 1
        guard k == kb, batchB == batchA || batchB == 1, m > 0, n > 0, k > 0 else {
            throw EngineError.shapeMismatch(op: "matmul", detail: "\(a.shape)\(transposeA ? "ᵀ" : "") and \(b.shape)\(transposeB ? "ᵀ" : "")")
        }
        if let bias, bias.count != n {
            throw EngineError.shapeMismatch(op: "matmul", detail: "bias has \(bias.count) values for \(n) columns")
        }
        if bias != nil, scale != 1 {
            throw EngineError.unsupported(op: "matmul", detail: "a scale together with a bias")
        }
        let pa = try contiguous(a), pb = try contiguous(b)
        let srcDesc = Self.matrixDesc(batch: batchA, rows: m, cols: k, transposed: transposeA, rank: rank)
        let wDesc = Self.matrixDesc(batch: batchB, rows: k, cols: n, transposed: transposeB, rank: rank)
        let dst = MemoryDesc.plain(rank == 2 ? [m, n] : [batchA, m, n])
        let biasTensor = bias.map { Tensor(shape: rank == 2 ? [1, n] : [1, 1, n], values: $0) }
        return try matmul(src: (srcDesc, pa.storage.pointer), weights: (wDesc, pb.storage.pointer),
                          bias: biasTensor.map { ($0.desc, $0.storage.pointer) }, dst: dst, scale: scale)
    }

    /// The attention core of the VQGAN attention blocks on 1×1-conv outputs `q`, `k`, `v` of
    /// `[B, C, H, W]` (any layout): heads are contiguous channel groups of `C/heads`; for each,
    /// `out[:, c, i] = Σ_j softmax_j(s·Σ_a q[a, i]·k[a, j])·v[c, j]` over the H·W positions, with
    /// `s = (C/heads)^-0.5`. With `heads: 1` this is CodeFormer's `AttnBlock`
    /// (`bmm(q.permute(0,2,1), k)·C^-0.5`, softmax over dim 2, `bmm(v, w.permute(0,2,1))`); with
    /// more it is RestoreFormer's `MultiHeadAttnBlock` (`q·scale` then `matmul(q, kᵀ)`, softmax over
    /// dim 3, `matmul(w, v)`, heads back to channels `head·C/heads + a`). The scale is applied to
    /// the product here, not to q first (a rounding difference of an ulp). `k` and `v` may have
    /// another spatial size than `q` (keys). Returns a plain `[B, C, H, W]` tensor (before
    /// `proj_out`). C=512 16² 8 heads: about 1 ms; C=256 32² 4 heads: about 3 ms (2 threads).
    public func spatialAttention(q: Tensor, k: Tensor, v: Tensor, heads: Int = 1) throws -> Tensor {
        guard q.rank == 4, k.rank == 4, v.rank == 4, k.shape == v.shape, q.shape[0] == k.shape[0], q.shape[1] == k.shape[1],
              heads > 0, q.shape[1] % heads == 0, q.count > 0, k.count > 0 else {
            throw EngineError.shapeMismatch(op: "spatialAttention", detail: "q \(q.shape), k \(k.shape), v \(v.shape), \(heads) heads (need [B, C, H, W], equal B and C, k and v alike, C divisible by heads)")
        }
        let (b, c) = (q.shape[0], q.shape[1])
        let sq = q.shape[2] * q.shape[3], sk = k.shape[2] * k.shape[3]
        let att = c / heads, bh = b * heads
        let pq = try contiguous(q), pk = try contiguous(k), pv = try contiguous(v)
        // Logits [BH, Sq, Sk] = q_hᵀ·k_h: q as [BH, att, Sq] read transposed, k as [BH, att, Sk].
        let logits = try matmul(src: (Self.matrixDesc(batch: bh, rows: sq, cols: att, transposed: true, rank: 3), pq.storage.pointer),
                                weights: (.plain([bh, att, sk]), pk.storage.pointer),
                                dst: .plain([bh, sq, sk]), scale: 1 / Float(att).squareRoot())
        let weights = try softmax(logits, axis: 2)
        // out_h [BH, att, Sq] = v_h [BH, att, Sk] · weightsᵀ (weights read as [BH, Sk, Sq]):
        // directly the plain [B, C, Sq] memory with channel head·att + a.
        let out = try matmul(src: (.plain([bh, att, sk]), pv.storage.pointer),
                             weights: (Self.matrixDesc(batch: bh, rows: sk, cols: sq, transposed: true, rank: 3), weights.storage.pointer),
                             dst: .plain([bh, att, sq]))
        return Tensor(desc: .plain(q.shape), storage: out.storage)
    }
}

/// `nn.MultiheadAttention(E, heads)` forward, sequence-first: inputs `(L, B, E)`, packed
/// `in_proj_weight` `[3E, E]` (rows `[Wq; Wk; Wv]`), `in_proj_bias` `[3E]`, `out_proj`. Per head
/// i (channels `[hd·i, hd·i+hd)`, `hd = E/heads`): `softmax(q_i·k_iᵀ/√hd)·v_i`, heads concatenated,
/// then `out_proj`. No mask, no dropout; q, k and v are projected separately (torch's path when
/// `key is not value`, as in CodeFormer's `self_attn(q, k, value=tgt2)`; the packed path gives the
/// same values up to summation order). L=256, E=512, 8 heads: about 2 ms on 2 threads.
public final class MultiheadAttention: Sendable {
    public let embedDim: Int
    public let heads: Int
    private let qProj: Linear, kProj: Linear, vProj: Linear, outProj: Linear

    /// - Parameters: the state-dict tensors `in_proj_weight` `[3E, E]`, `in_proj_bias` `[3E]`,
    ///   `out_proj.weight` `[E, E]`, `out_proj.bias` `[E]` (plain).
    public init(embedDim: Int, heads: Int, inProjWeight: Tensor, inProjBias: [Float]?, outProjWeight: Tensor,
                outProjBias: [Float]?, context: ComputeContext) throws {
        let e = embedDim
        guard e > 0, heads > 0, e % heads == 0, inProjWeight.shape == [3 * e, e], outProjWeight.shape == [e, e] else {
            throw EngineError.shapeMismatch(op: "multiheadAttention", detail: "E \(e), \(heads) heads, in_proj_weight \(inProjWeight.shape), out_proj.weight \(outProjWeight.shape)")
        }
        if let inProjBias, inProjBias.count != 3 * e {
            throw EngineError.shapeMismatch(op: "multiheadAttention", detail: "in_proj_bias has \(inProjBias.count) values for E \(e)")
        }
        self.embedDim = e
        self.heads = heads
        let packed = try context.contiguous(inProjWeight)
        func part(_ i: Int) throws -> Linear {
            let w = Tensor(shape: [e, e]) { $0.baseAddress!.update(from: packed.storage.floats + i * e * e, count: e * e) }
            return try Linear(weight: w, bias: inProjBias.map { Array($0[i * e..<(i + 1) * e]) }, context: context)
        }
        qProj = try part(0)
        kProj = try part(1)
        vProj = try part(2)
        outProj = try Linear(weight: try context.contiguous(outProjWeight), bias: outProjBias, context: context)
    }

    /// `attn(query, key, value)[0]` for `(L, B, E)` query and `(S, B, E)` key/value; returns a
    /// plain `(L, B, E)` tensor.
    public func callAsFunction(query: Tensor, key: Tensor, value: Tensor, _ context: ComputeContext) throws -> Tensor {
        let e = embedDim
        guard query.rank == 3, key.rank == 3, key.shape == value.shape, query.shape[2] == e, key.shape[2] == e,
              query.shape[1] == key.shape[1], query.count > 0, key.count > 0 else {
            throw EngineError.shapeMismatch(op: "multiheadAttention", detail: "query \(query.shape), key \(key.shape), value \(value.shape), E \(e) (need (L, B, E) and (S, B, E))")
        }
        let (l, b, s) = (query.shape[0], query.shape[1], key.shape[0])
        let hd = e / heads
        // Projections are token-major [L·B, E]; per (batch, head) the [L, hd] block has strides
        // (B·E, 1) from offset b·E + h·hd. Reorder them to plain [B, H, L, hd] (torch's
        // `view(L, B·H, hd).transpose(0, 1)`).
        func split(_ t: Tensor, _ len: Int) throws -> Tensor {
            let view = MemoryDesc(dims: [b, heads, len, hd], strides: [e, hd, b * e, 1])
            let out = Tensor(uninitialized: .plain([b * heads, len, hd]))
            try context.reorder(from: view, t.storage.pointer, to: .plain([b, heads, len, hd]), out.storage.pointer)
            return out
        }
        let q = try split(try qProj(query, context), l)
        let k = try split(try kProj(key, context), s)
        let v = try split(try vProj(value, context), s)
        let logits = try context.matmul(q, k, transposeB: true, scale: 1 / Float(hd).squareRoot())
        let weights = try context.softmax(logits, axis: 2)
        let perHead = try context.matmul(weights, v)   // [B·H, L, hd]
        let merged = Tensor(uninitialized: .plain([l, b, e]))
        try context.reorder(from: .plain([b, heads, l, hd]), perHead.storage.pointer,
                            to: MemoryDesc(dims: [b, heads, l, hd], strides: [e, hd, b * e, 1]), merged.storage.pointer)
        return try outProj(merged, context)
    }
}
