// The taming-transformers VQGAN blocks that RestoreFormer (gfpgan 1.3.8
// `gfpgan/archs/restoreformer_arch.py`, Apache-2.0) and CodeFormer (sczhou/CodeFormer @
// b33cc7d639d6 `basicsr/archs/vqgan_arch.py`, per ../shared/docs/reference-codeformer-restoreformer.md)
// share: GroupNorm(32, eps 1e-6) with swish, the two-conv residual block, spatial attention. Key
// names differ between the two and are parameters here.

import FaceRestoreEngine
import FaceRestoreWeights

/// `GroupNorm(32, C, eps=1e-6, affine=True)`, optionally followed by swish (`x·sigmoid(x)`).
struct VQGANNorm: Sendable {
    let gamma: [Float], beta: [Float]

    init(_ s: WeightScope, _ channels: Int) throws {
        gamma = try s.floats("weight", shape: [channels])
        beta = try s.floats("bias", shape: [channels])
    }

    func callAsFunction(_ x: Tensor, swish: Bool, _ ctx: ComputeContext) throws -> Tensor {
        try ctx.groupNorm(x, groups: 32, eps: 1e-6, gamma: gamma, beta: beta, swish: swish)
    }

    /// The norm for a conv that follows: the conv applies it as it reads (`Conv2d(_:GroupNormed)`).
    func deferred(_ x: Tensor, swish: Bool, _ ctx: ComputeContext) throws -> GroupNormed {
        try ctx.groupNormDeferred(x, groups: 32, eps: 1e-6, gamma: gamma, beta: beta, swish: swish)
    }
}

/// `ResnetBlock` without time embedding (CodeFormer's `ResBlock`): norm1 → swish → conv1 → norm2
/// → swish → conv2, plus the input (through a 1×1 conv when the width changes: `nin_shortcut` in
/// RestoreFormer, `conv_out` in CodeFormer).
struct VQGANResnetBlock: Sendable {
    let norm1: VQGANNorm, conv1: Conv2d, norm2: VQGANNorm, conv2: Conv2d
    let ninShortcut: Conv2d?

    init(_ s: WeightScope, _ cin: Int, _ cout: Int, size: Int, shortcut: String = "nin_shortcut", _ ctx: ComputeContext) throws {
        norm1 = try VQGANNorm(s["norm1"], cin)
        conv1 = try s["conv1"].conv2d(cin, cout, kernel: 3, hint: (size, size), context: ctx)
        norm2 = try VQGANNorm(s["norm2"], cout)
        conv2 = try s["conv2"].conv2d(cout, cout, kernel: 3, hint: (size, size), context: ctx)
        ninShortcut = cin == cout ? nil : try s[shortcut].conv2d(cin, cout, kernel: 1, hint: (size, size), context: ctx)
    }

    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        let h = try conv1(try norm1.deferred(x, swish: true, ctx), ctx)
        let shortcut = try ninShortcut.map { try $0(x, ctx) } ?? x
        return try conv2(try norm2.deferred(h, swish: true, ctx), scale: 1, adding: shortcut, ctx)
    }
}

/// RestoreFormer's `MultiHeadAttnBlock(x, y)`: h = norm1(x); queries from norm2(y) when `y` is
/// given (the encoder's features), else from h; keys and values from h; `x + proj_out(attention)`.
/// The self-attention blocks hold a `norm2` they never use. CodeFormer's single-head `AttnBlock`
/// is the same without `y`, its one GroupNorm named `norm` (`crossNorm: nil`).
struct VQGANAttention: Sendable {
    let norm1: VQGANNorm, norm2: VQGANNorm?
    let q: Conv2d, k: Conv2d, v: Conv2d, projOut: Conv2d
    let heads: Int

    init(_ s: WeightScope, _ channels: Int, heads: Int, size: Int, norm: String = "norm1", crossNorm: String? = "norm2",
         _ ctx: ComputeContext) throws {
        norm1 = try VQGANNorm(s[norm], channels)
        norm2 = try crossNorm.map { try VQGANNorm(s[$0], channels) }
        q = try s["q"].conv2d(channels, channels, kernel: 1, hint: (size, size), context: ctx)
        k = try s["k"].conv2d(channels, channels, kernel: 1, hint: (size, size), context: ctx)
        v = try s["v"].conv2d(channels, channels, kernel: 1, hint: (size, size), context: ctx)
        projOut = try s["proj_out"].conv2d(channels, channels, kernel: 1, hint: (size, size), context: ctx)
        self.heads = heads
    }

    func callAsFunction(_ x: Tensor, query y: Tensor? = nil, _ ctx: ComputeContext) throws -> Tensor {
        let h = try norm1(x, swish: false, ctx)
        let source: Tensor
        if let y {
            guard let norm2 else { throw EngineError.shapeMismatch(op: "attention", detail: "a self-attention block was given queries") }
            source = try norm2(y, swish: false, ctx)
        } else {
            source = h
        }
        let attended = try ctx.spatialAttention(q: try q(source, ctx), k: try k(h, ctx), v: try v(h, ctx), heads: heads)
        return try projOut(attended, scale: 1, adding: x, ctx)
    }
}
