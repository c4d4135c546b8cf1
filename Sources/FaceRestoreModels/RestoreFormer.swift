// RestoreFormer and RestoreFormer++ as gfpgan 1.3.8 builds them (`gfpgan/archs/restoreformer_arch.py`,
// Apache-2.0, "modified from wzhouxiff/RestoreFormer"; RestoreFormer++ from
// `wzhouxiff/RestoreFormerPlusPlus` `RestoreFormer/modules/vqvae/vqvae_arch.py`, Apache-2.0):
// `RestoreFormer(n_embed=1024, embed_dim=256, ch=64, ch_mult=(1,2,2,4,4,8), num_res_blocks=2,
// attn_resolutions=(16,), z_channels=256, double_z=False, enable_mid=True, head_size=8)`.
//
// - Encoder (`MultiHeadEncoder`): conv_in 3→64; six levels of two ResnetBlocks (64, 128, 128, 256,
//   256, 512 channels; level 5 at 16² adds self-attention after each block); a stride-2 conv on
//   the input zero-padded right and bottom by one between levels; `hs['block_i']` saved before
//   each downsample; mid block_1 (saved as `hs['block_5_atten']`), attention, block_2 (saved as
//   `hs['mid_atten']`); GroupNorm, swish, conv_out 512→256.
// - Quantizer: quant_conv 1×1, nearest codeword by ‖z‖² + ‖e‖² − 2z·e with the first index on
//   ties (`torch.min`), `z + (e − z)` as upstream's straight-through form computes it, then
//   post_quant_conv 1×1.
// - Decoder (`MultiHeadDecoderTransformer`): conv_in 256→512; mid block_1, attention whose
//   queries come from `hs['mid_atten']`, block_2; levels 5→0 of three ResnetBlocks (512, 256, 256,
//   128, 128, 64), level 5 with attention after each block querying `hs['block_5_atten']`
//   (RestoreFormer++ also level 4, querying `hs['block_4']`); nearest ×2 + conv between levels;
//   GroupNorm, swish, conv_out 64→3. No tanh; the caller clamps.
// - GroupNorm is `GroupNorm(32, C, eps=1e-6)`; attention heads are contiguous channel groups,
//   scaled by (C/heads)^-0.5, softmax over the keys; `x + proj_out(·)`.
//
// Which network a file holds comes from its keys: `decoder.up.4.attn.*` means RestoreFormer++ with
// 4 heads, else RestoreFormer with 8 (head counts cannot be read from shapes).

import FaceRestoreEngine
import FaceRestoreWeights

/// RestoreFormer or RestoreFormer++.
public final class RestoreFormer: Sendable {
    public enum Variant: String, Sendable {
        case restoreFormer = "RestoreFormer"
        case restoreFormerPlusPlus = "RestoreFormer++"
    }

    public let variant: Variant
    /// Attention heads (8 for RestoreFormer, 4 for RestoreFormer++).
    public let heads: Int
    public static let size = 512
    static let levelChannels = [64, 128, 128, 256, 256, 512]
    static let codebookSize = 1024, embedDim = 256, zChannels = 256

    // Encoder.
    let encoderConvIn: Conv2d
    let encoderBlocks: [[VQGANResnetBlock]]
    let encoderAttention: [VQGANAttention]   // level 5, one per block
    let downsample: [Conv2d]                         // levels 0–4
    let encoderMid: (VQGANResnetBlock, VQGANAttention, VQGANResnetBlock)
    let encoderNormOut: VQGANNorm
    let encoderConvOut: Conv2d
    // Quantizer.
    let quantConv: Conv2d, postQuantConv: Conv2d
    /// The codebook [1024, 256] (`quantize.embedding.weight`) and its rows, row-major.
    let codebook: Codebook
    let codewords: [Float]
    // Decoder.
    let decoderConvIn: Conv2d
    let decoderMid: (VQGANResnetBlock, VQGANAttention, VQGANResnetBlock)
    let decoderBlocks: [[VQGANResnetBlock]]          // index = level (0…5), three blocks each
    let decoderAttention: [Int: [VQGANAttention]]   // level → one per block
    let upsample: [Int: Conv2d]                              // levels 1–5
    let decoderNormOut: VQGANNorm
    let decoderConvOut: Conv2d

    /// A Lightning checkpoint's network (`RestoreFormer.ckpt`, `RestoreFormer++.ckpt`: the
    /// `state_dict` holds the network under `vqvae.` and the training losses under `loss.`): the
    /// network's tensors without the prefix and the loss keys, which the network does not use.
    /// Other state dicts come back as they are.
    public static func networkTensors(_ sd: StateDict) -> (StateDict, lossKeys: [String]) {
        guard sd.names.contains(where: { $0.hasPrefix("vqvae.") }) else { return (sd, []) }
        var names: [String] = [], tensors: [String: WeightTensor] = [:], other: [String] = []
        for name in sd.names {
            guard let t = sd.tensors[name] else { continue }
            if name.hasPrefix("vqvae.") {
                let key = String(name.dropFirst("vqvae.".count))
                names.append(key)
                tensors[key] = t
            } else {
                other.append(name)
            }
        }
        return (StateDict(names: names + other, tensors: tensors.merging(other.compactMap { k in sd.tensors[k].map { (k, $0) } }) { a, _ in a },
                          wrapper: sd.wrapper, strippedPrefix: "vqvae.", skippedEntries: sd.skippedEntries), other)
    }

    /// The variant a state dict holds, from its keys (nil: not a RestoreFormer).
    public static func variant(of sd: StateDict) -> Variant? {
        guard sd["quantize.embedding.weight"] != nil, sd["encoder.conv_in.weight"] != nil, sd["decoder.conv_out.weight"] != nil else {
            return nil
        }
        return sd["decoder.up.4.attn.0.q.weight"] != nil ? .restoreFormerPlusPlus : .restoreFormer
    }

    /// Builds the network from `sd` (GFPGAN's `RestoreFormer.pth` after its `params_ema`/`params`
    /// wrapper, or a Lightning checkpoint's `state_dict` with the `vqvae.` prefix removed and its
    /// `loss.*` keys listed in `unused`), strictly.
    public init(stateDict sd: StateDict, file: String, unused: [String] = [], context ctx: ComputeContext) throws {
        guard let variant = Self.variant(of: sd) else {
            throw ModelError.wrongArchitecture(file: file, expected: "RestoreFormer", in: sd)
        }
        self.variant = variant
        // The decoder's attention blocks decide the variant; check they are all there before
        // anything is built (a file missing some would otherwise fail late, or load as the other).
        let channels0 = Self.levelChannels
        for level in variant == .restoreFormerPlusPlus ? [5, 4] : [5] {
            let c = channels0[level]
            for i in 0..<3 {
                for (part, shape) in [("norm1.weight", [c]), ("norm1.bias", [c]), ("norm2.weight", [c]), ("norm2.bias", [c]),
                                      ("q.weight", [c, c, 1, 1]), ("q.bias", [c]), ("k.weight", [c, c, 1, 1]), ("k.bias", [c]),
                                      ("v.weight", [c, c, 1, 1]), ("v.bias", [c]), ("proj_out.weight", [c, c, 1, 1]), ("proj_out.bias", [c])]
                where sd["decoder.up.\(level).attn.\(i).\(part)"] == nil {
                    throw ModelError.missingKey(file: file, key: "decoder.up.\(level).attn.\(i).\(part)", expected: shape)
                }
            }
        }
        let heads = variant == .restoreFormerPlusPlus ? 4 : 8
        self.heads = heads
        let loader = WeightLoader(sd, file: file)
        let root = loader.root
        let channels = Self.levelChannels
        let sizes = (0..<6).map { Self.size >> $0 }   // 512 … 16

        // Encoder.
        let e = root["encoder"]
        encoderConvIn = try e["conv_in"].conv2d(3, channels[0], kernel: 3, hint: (512, 512), context: ctx)
        var blocks: [[VQGANResnetBlock]] = [], downs: [Conv2d] = []
        var cin = channels[0]
        for level in 0..<6 {
            let s = e["down"][level]
            blocks.append(try (0..<2).map { i in
                defer { cin = channels[level] }
                return try VQGANResnetBlock(s["block"][i], i == 0 ? cin : channels[level], channels[level], size: sizes[level], ctx)
            })
            if level < 5 {
                // F.pad(x, (0, 1, 0, 1)) then a 3×3 stride-2 conv: one primitive with that padding.
                let w = try s["downsample"]["conv"].tensor("weight", shape: [channels[level], channels[level], 3, 3])
                let b = try s["downsample"]["conv"].floats("bias", shape: [channels[level]])
                downs.append(try Conv2d(weight: w, bias: b, stride: 2, padding: Padding2D(top: 0, left: 0, bottom: 1, right: 1),
                                        hint: (sizes[level], sizes[level]), context: ctx))
            }
        }
        encoderBlocks = blocks
        downsample = downs
        encoderAttention = try (0..<2).map { try VQGANAttention(e["down"][5]["attn"][$0], 512, heads: heads, size: 16, ctx) }
        encoderMid = (try VQGANResnetBlock(e["mid"]["block_1"], 512, 512, size: 16, ctx),
                      try VQGANAttention(e["mid"]["attn_1"], 512, heads: heads, size: 16, ctx),
                      try VQGANResnetBlock(e["mid"]["block_2"], 512, 512, size: 16, ctx))
        encoderNormOut = try VQGANNorm(e["norm_out"], 512)
        encoderConvOut = try e["conv_out"].conv2d(512, Self.zChannels, kernel: 3, hint: (16, 16), context: ctx)

        // Quantizer.
        quantConv = try root["quant_conv"].conv2d(Self.zChannels, Self.embedDim, kernel: 1, hint: (16, 16), context: ctx)
        codewords = try root["quantize"]["embedding"].floats("weight", shape: [Self.codebookSize, Self.embedDim])
        codebook = try Codebook(embedding: Tensor(shape: [Self.codebookSize, Self.embedDim], values: codewords), context: ctx)
        postQuantConv = try root["post_quant_conv"].conv2d(Self.embedDim, Self.zChannels, kernel: 1, hint: (16, 16), context: ctx)

        // Decoder.
        let d = root["decoder"]
        decoderConvIn = try d["conv_in"].conv2d(Self.zChannels, 512, kernel: 3, hint: (16, 16), context: ctx)
        decoderMid = (try VQGANResnetBlock(d["mid"]["block_1"], 512, 512, size: 16, ctx),
                      try VQGANAttention(d["mid"]["attn_1"], 512, heads: heads, size: 16, ctx),
                      try VQGANResnetBlock(d["mid"]["block_2"], 512, 512, size: 16, ctx))
        var upBlocks = [[VQGANResnetBlock]](repeating: [], count: 6)
        var attention: [Int: [VQGANAttention]] = [:], ups: [Int: Conv2d] = [:]
        var width = 512
        for level in stride(from: 5, through: 0, by: -1) {
            let s = d["up"][level]
            upBlocks[level] = try (0..<3).map { i in
                defer { width = channels[level] }
                return try VQGANResnetBlock(s["block"][i], i == 0 ? width : channels[level], channels[level], size: sizes[level], ctx)
            }
            if level == 5 || (level == 4 && variant == .restoreFormerPlusPlus) {
                attention[level] = try (0..<3).map { try VQGANAttention(s["attn"][$0], channels[level], heads: heads, size: sizes[level], ctx) }
            }
            if level > 0 {
                ups[level] = try s["upsample"]["conv"].conv2d(channels[level], channels[level], kernel: 3, hint: (sizes[level - 1], sizes[level - 1]),
                                                             context: ctx)
            }
        }
        decoderBlocks = upBlocks
        decoderAttention = attention
        upsample = ups
        decoderNormOut = try VQGANNorm(d["norm_out"], 64)
        decoderConvOut = try d["conv_out"].conv2d(64, 3, kernel: 3, hint: (512, 512), context: ctx)
        _ = try loader.finish(deliberatelyUnused: unused)
    }

    /// Loads `RestoreFormer.pth` (GFPGAN's release) or a Lightning `.ckpt` (strict on the network's
    /// keys; the `loss.*` keys are reported as deliberately unused).
    public convenience init(path: String, verifyChecksums: Bool = true, context: ComputeContext) throws {
        let (sd, _) = try WeightsFile.load(path: path, verifyChecksums: verifyChecksums)
        let (network, losses) = Self.networkTensors(sd)
        try self.init(stateDict: network, file: path, unused: losses.isEmpty ? [] : ["loss."], context: context)
    }

    /// What the encoder keeps for the decoder's cross-attention.
    struct EncoderFeatures {
        var block4: Tensor       // hs['block_4'], 32², 256 channels (RestoreFormer++)
        var block5Attention: Tensor   // hs['block_5_atten'], 16², 512
        var midAttention: Tensor      // hs['mid_atten'], 16², 512
        var out: Tensor               // hs['out'], 16², 256
    }

    func encode(_ x: Tensor, _ ctx: ComputeContext) throws -> EncoderFeatures {
        var h = try encoderConvIn(x, ctx)
        var block4: Tensor?
        for level in 0..<6 {
            for i in 0..<2 {
                h = try encoderBlocks[level][i](h, ctx)
                if level == 5 { h = try encoderAttention[i](h, ctx) }
            }
            if level < 5 {
                if level == 4 { block4 = h }
                h = try downsample[level](h, ctx)
            }
        }
        h = try encoderMid.0(h, ctx)
        let block5Attention = h
        h = try encoderMid.2(try encoderMid.1(h, ctx), ctx)
        let midAttention = h
        let out = try encoderConvOut(try encoderNormOut.deferred(h, swish: true, ctx), ctx)
        guard let block4 else { throw EngineError.shapeMismatch(op: "RestoreFormer", detail: "no level-4 features") }
        return EncoderFeatures(block4: block4, block5Attention: block5Attention, midAttention: midAttention, out: out)
    }

    /// The nearest codeword of each of the 256 latent vectors (token t = 16·y + x), first index on
    /// ties, and the quantized latent `z + (e − z)` as upstream computes it, NCHW.
    func quantize(_ z: Tensor, _ ctx: ComputeContext) throws -> (latent: Tensor, match: CodewordMatch) {
        let (c, h, w) = (z.shape[1], z.shape[2], z.shape[3])
        let match = try codebook.nearest(z, ctx)
        let nchw = try ctx.array(z)
        var out = [Float](repeating: 0, count: c * h * w)
        for t in 0..<(h * w) {
            let row = match.indices[t] * c
            for ch in 0..<c {
                let v = nchw[ch * h * w + t]
                out[ch * h * w + t] = v + (codewords[row + ch] - v)
            }
        }
        return (Tensor(shape: z.shape, values: out), match)
    }

    func decode(_ quant: Tensor, _ hs: EncoderFeatures, _ ctx: ComputeContext) throws -> Tensor {
        var h = try decoderConvIn(try postQuantConv(quant, ctx), ctx)
        h = try decoderMid.0(h, ctx)
        h = try decoderMid.1(h, query: hs.midAttention, ctx)
        h = try decoderMid.2(h, ctx)
        for level in stride(from: 5, through: 0, by: -1) {
            for i in 0..<3 {
                h = try decoderBlocks[level][i](h, ctx)
                if let attention = decoderAttention[level] {
                    h = try attention[i](h, query: level == 5 ? hs.block5Attention : hs.block4, ctx)
                }
            }
            if let up = upsample[level] { h = try up(try ctx.resize(h, factor: 2, mode: .nearest), ctx) }
        }
        return try decoderConvOut(try decoderNormOut.deferred(h, swish: true, ctx), ctx)
    }

    /// The restored face for a `[1, 3, 512, 512]` RGB input in [−1, 1] (GFPGANer's preprocessing),
    /// unclamped, with the codeword chosen for each latent position.
    public func forward(_ x: Tensor, _ ctx: ComputeContext) throws -> (image: Tensor, codes: CodewordMatch) {
        guard x.shape == [1, 3, Self.size, Self.size] else {
            throw EngineError.shapeMismatch(op: variant.rawValue, detail: "takes [1, 3, 512, 512], got \(x.shape)")
        }
        let hs = try encode(x, ctx)
        let (quant, codes) = try quantize(try quantConv(hs.out, ctx), ctx)
        return (try decode(quant, hs, ctx), codes)
    }
}
