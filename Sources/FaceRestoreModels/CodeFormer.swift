// CodeFormer (sczhou/CodeFormer @ b33cc7d639d6, `basicsr/archs/codeformer_arch.py` on
// `basicsr/archs/vqgan_arch.py`; NTU S-Lab License 1.0, non-commercial), written from the
// architecture description in ../shared/docs/reference-codeformer-restoreformer.md §1; no upstream
// source is copied. Released as `CodeFormer(dim_embd=512, n_head=8, n_layers=9,
// codebook_size=1024, latent_size=256, connect_list=['32','64','128','256'])` on
// `VQAutoEncoder(512, 64, [1,2,2,4,4,8], 'nearest', 2, [16], 1024, 256)`:
//
// - Encoder (`encoder.blocks.0…24`): conv 3→64; per level (64, 128, 128, 256, 256, 512 channels)
//   two residual blocks, at 16² each followed by attention; between levels a stride-2 conv on the
//   input zero-padded right and bottom by one; a mid block (residual, attention, residual);
//   GroupNorm without swish; conv 512→256 = `lq_feat`. The last residual block of the 256², 128²,
//   64² and 32² levels is kept for the fusion.
// - Transformer on the 256 tokens of `lq_feat` (token 16·y + x), sequence-first: `feat_emb`
//   256→512, a learned position embedding added to queries and keys of every layer; nine
//   pre-norm layers of 8-head self-attention (`nn.MultiheadAttention`) and a GELU MLP
//   512→1024→512, LayerNorm eps 1e-5; `idx_pred_layer` (LayerNorm, Linear 512→K without bias)
//   gives the logits; each token takes the codeword of its top logit.
// - The codewords as a 16² map, with AdaIN to `lq_feat` (unbiased variance + 1e-5) when `adain`.
// - Generator (`generator.blocks.0…24`): conv 256→512, mid (residual, attention, residual), then
//   per level (512, 256, 256, 128, 128, 64) residual blocks, attention at 16², nearest ×2 + conv
//   between levels; GroupNorm without swish; conv 64→3; no tanh (the caller clamps). After the
//   first residual block of the 32², 64², 128² and 256² levels, `Fuse_sft_block` when w > 0:
//   `e = ResBlock(2C→C)(cat[enc, dec])`, `dec + w·(dec·scale(e) + shift(e))` with scale and
//   shift each conv → LeakyReLU(0.2) → conv. At w = 0 the fusion is skipped, as upstream.
//
// The configuration comes from the keys: the fused levels from `fuse_convs_dict.*`, the codebook
// size from `quantize.embedding.weight`, the layer count from `ft_layers.*`; the head count (8)
// cannot be read from shapes. That tells the released restoration, colorization (three fused
// levels, 1024 codes) and inpainting (three, 512 codes) checkpoints apart.

import FaceRestoreEngine
import FaceRestoreWeights

/// `Fuse_sft_block(C, C)`: the encoder's features modulate the generator's, weighted by `w`.
struct CodeFormerFusion: Sendable {
    let encode: VQGANResnetBlock
    let scale: (Conv2d, Conv2d), shift: (Conv2d, Conv2d)

    init(_ s: WeightScope, _ channels: Int, size: Int, _ ctx: ComputeContext) throws {
        encode = try VQGANResnetBlock(s["encode_enc"], 2 * channels, channels, size: size, shortcut: "conv_out", ctx)
        func branch(_ b: WeightScope) throws -> (Conv2d, Conv2d) {
            (try b[0].conv2d(channels, channels, kernel: 3, postOps: [.leakyReLU(0.2)], hint: (size, size), context: ctx),
             try b[2].conv2d(channels, channels, kernel: 3, hint: (size, size), context: ctx))
        }
        scale = try branch(s["scale"])
        shift = try branch(s["shift"])
    }

    func callAsFunction(encoder enc: Tensor, decoder dec: Tensor, w: Float, _ ctx: ComputeContext) throws -> Tensor {
        let e = try encode(try ctx.concat([enc, dec], axis: 1), ctx)
        let scale = try self.scale.1(try self.scale.0(e, ctx), ctx)
        let shift = try self.shift.1(try self.shift.0(e, ctx), ctx)
        // dec + w·(dec·scale + shift), in that order of float operations.
        let modulated = try ctx.scale(try ctx.add(try ctx.multiply(dec, scale), shift), by: w)
        return try ctx.add(dec, modulated)
    }
}

/// One `TransformerSALayer`: pre-norm self-attention with the position embedding on queries and
/// keys, then a GELU MLP; both residual.
struct CodeFormerTransformerLayer: Sendable {
    let norm1: ([Float], [Float]), norm2: ([Float], [Float])
    let attention: MultiheadAttention
    let linear1: Linear, linear2: Linear

    init(_ s: WeightScope, embed e: Int, hidden: Int, heads: Int, _ ctx: ComputeContext) throws {
        func norm(_ n: WeightScope) throws -> ([Float], [Float]) {
            (try n.floats("weight", shape: [e]), try n.floats("bias", shape: [e]))
        }
        norm1 = try norm(s["norm1"])
        norm2 = try norm(s["norm2"])
        let a = s["self_attn"]
        attention = try MultiheadAttention(embedDim: e, heads: heads, inProjWeight: try a.tensor("in_proj_weight", shape: [3 * e, e]),
                                           inProjBias: try a.floats("in_proj_bias", shape: [3 * e]),
                                           outProjWeight: try a["out_proj"].tensor("weight", shape: [e, e]),
                                           outProjBias: try a["out_proj"].floats("bias", shape: [e]), context: ctx)
        linear1 = try s["linear1"].linear(e, hidden, context: ctx)
        linear2 = try s["linear2"].linear(hidden, e, context: ctx)
    }

    /// `x` and `position` are `(L, 1, E)`.
    func callAsFunction(_ x: Tensor, position: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        let y = try ctx.layerNorm(x, eps: 1e-5, gamma: norm1.0, beta: norm1.1)
        let qk = try ctx.add(y, position)
        let attended = try ctx.add(x, try attention(query: qk, key: qk, value: y, ctx))
        let z = try ctx.layerNorm(attended, eps: 1e-5, gamma: norm2.0, beta: norm2.1)
        return try ctx.add(attended, try linear2(try ctx.gelu(try linear1(z, ctx)), ctx))
    }
}

/// CodeFormer: a VQGAN whose codes are predicted by a transformer from the degraded face's latent,
/// with the encoder's features fused into the generator by the fidelity weight `w`.
public final class CodeFormer: Sendable {
    /// What a checkpoint was trained for (read from its configuration).
    public enum Task: String, Sendable {
        /// `codeformer.pth`: restoration, with the fidelity weight.
        case restoration
        /// `codeformer_colorization.pth`: gray faces in colour (run with w = 0 and AdaIN).
        case colorization
        /// `codeformer_inpainting.pth`: masked (white) regions filled in (w = 1, no AdaIN).
        case inpainting
    }

    /// The released checkpoints: four fused levels for restoration; three with 1024 codes for
    /// colorization, with 512 for inpainting.
    public static func task(fusedSizes: [Int], codebookSize: Int) -> Task {
        fusedSizes.count == 4 ? .restoration : codebookSize == 1024 ? .colorization : .inpainting
    }

    public static let size = 512
    static let latentSize = 16, latentChannels = 256, heads = 8
    /// Feature size → channels of the fused levels (`Fuse_sft_block` names).
    static let fusionChannels: [(size: Int, channels: Int)] = [(32, 256), (64, 256), (128, 128), (256, 128)]
    static let encoderChannels = [64, 128, 128, 256, 256, 512]

    public let task: Task
    /// The fused levels (`connect_list`), by feature size.
    public let fusedSizes: [Int]
    public let codebookSize: Int
    public let layerCount: Int
    public let embedDim: Int

    let encoderConvIn: Conv2d
    /// Encoder levels: residual blocks (with attention at 16²), then the downsampling conv.
    let encoderLevels: [(blocks: [VQGANResnetBlock], attention: [VQGANAttention], down: Conv2d?)]
    let encoderMid: (VQGANResnetBlock, VQGANAttention, VQGANResnetBlock)
    let encoderNorm: VQGANNorm, encoderConvOut: Conv2d

    let featEmbedding: Linear
    let position: Tensor   // (256, 1, E)
    let layers: [CodeFormerTransformerLayer]
    let logitNorm: ([Float], [Float]), logitLayer: Linear
    let codebook: Codebook

    let generatorConvIn: Conv2d
    let generatorMid: (VQGANResnetBlock, VQGANAttention, VQGANResnetBlock)
    /// Generator levels (16² … 512²): residual blocks (attention at 16²), then upsampling conv.
    let generatorLevels: [(blocks: [VQGANResnetBlock], attention: [VQGANAttention], up: Conv2d?)]
    let generatorNorm: VQGANNorm, generatorConvOut: Conv2d
    let fusions: [Int: CodeFormerFusion]

    /// The configuration a state dict holds, or nil when it is not a CodeFormer.
    static func looksLikeCodeFormer(_ sd: StateDict) -> Bool {
        sd["position_emb"] != nil && sd["quantize.embedding.weight"] != nil && sd["idx_pred_layer.1.weight"] != nil
            && sd["encoder.blocks.0.weight"] != nil
    }

    /// Builds the network from a state dict (`codeformer.pth` after its `params_ema` wrapper),
    /// strictly, its configuration read from the keys.
    public init(stateDict sd: StateDict, file: String, context ctx: ComputeContext) throws {
        guard Self.looksLikeCodeFormer(sd), let pos = sd["position_emb"], pos.shape.count == 2,
              let code = sd["quantize.embedding.weight"], code.shape.count == 2 else {
            throw ModelError.wrongArchitecture(file: file, expected: "CodeFormer", in: sd)
        }
        let latentTokens = Self.latentSize * Self.latentSize
        let e = pos.shape[1], k = code.shape[0]
        embedDim = e
        codebookSize = k
        let fused = Self.fusionChannels.map(\.size).filter { sd["fuse_convs_dict.\($0).encode_enc.norm1.weight"] != nil }
        fusedSizes = fused
        var count = 0
        while sd["ft_layers.\(count).linear1.weight"] != nil, count < 64 { count += 1 }
        layerCount = count
        guard pos.shape[0] == latentTokens, code.shape[1] == Self.latentChannels, e > 0, e % Self.heads == 0, k > 0, count > 0 else {
            throw ModelError.wrongArchitecture(file: file, expected: "CodeFormer (256 positions, 256-wide codes, 8 heads)", in: sd)
        }
        task = Self.task(fusedSizes: fused, codebookSize: k)
        // Consistency of what the configuration was read from, before anything is built: the
        // logit layer has one row per code, and every transformer layer is complete.
        if let logits = sd["idx_pred_layer.1.weight"], logits.shape != [k, e] {
            throw ModelError.shapeMismatch(file: file, key: "idx_pred_layer.1.weight", expected: [k, e], found: logits.shape)
        }
        let layerParts: [(String, [Int])] = [
            ("self_attn.in_proj_weight", [3 * e, e]), ("self_attn.in_proj_bias", [3 * e]), ("self_attn.out_proj.weight", [e, e]),
            ("self_attn.out_proj.bias", [e]), ("linear1.weight", [2 * e, e]), ("linear1.bias", [2 * e]), ("linear2.weight", [e, 2 * e]),
            ("linear2.bias", [e]), ("norm1.weight", [e]), ("norm1.bias", [e]), ("norm2.weight", [e]), ("norm2.bias", [e]),
        ]
        // A layer with some tensors but not `linear1.weight` ends the count early: name what it lacks.
        let present = sd.names.contains { $0.hasPrefix("ft_layers.\(count).") } ? count + 1 : count
        for i in 0..<present {
            if let (part, shape) = layerParts.first(where: { sd["ft_layers.\(i).\($0.0)"] == nil }) {
                throw ModelError.missingKey(file: file, key: "ft_layers.\(i).\(part)", expected: shape)
            }
        }

        let loader = WeightLoader(sd, file: file)
        let root = loader.root
        let channels = Self.encoderChannels
        let sizes = (0..<6).map { Self.size >> $0 }   // 512 … 16

        // Encoder: the block index runs through the flat `blocks` list as upstream builds it.
        let enc = root["encoder"]["blocks"]
        var index = 0
        func next() -> WeightScope { defer { index += 1 }; return enc[index] }
        encoderConvIn = try next().conv2d(3, channels[0], kernel: 3, hint: (512, 512), context: ctx)
        var levels: [(blocks: [VQGANResnetBlock], attention: [VQGANAttention], down: Conv2d?)] = []
        var cin = channels[0]
        for level in 0..<6 {
            let (blocks, attention) = try Self.level(next, cin, channels[level], size: sizes[level], ctx)
            cin = channels[level]
            var down: Conv2d?
            if level < 5 {
                // F.pad(x, (0, 1, 0, 1)) then a 3×3 stride-2 conv: one primitive with that padding.
                let s = next()["conv"]
                down = try Conv2d(weight: try s.tensor("weight", shape: [cin, cin, 3, 3]), bias: try s.floats("bias", shape: [cin]), stride: 2,
                                  padding: Padding2D(top: 0, left: 0, bottom: 1, right: 1), hint: (sizes[level], sizes[level]), context: ctx)
            }
            levels.append((blocks, attention, down))
        }
        encoderLevels = levels
        encoderMid = try Self.mid(next, ctx)
        encoderNorm = try VQGANNorm(next(), 512)
        encoderConvOut = try next().conv2d(512, Self.latentChannels, kernel: 3, hint: (16, 16), context: ctx)

        // Transformer.
        featEmbedding = try root["feat_emb"].linear(Self.latentChannels, e, context: ctx)
        position = try ctx.reshape(try root.tensor("position_emb", shape: [latentTokens, e]), [latentTokens, 1, e])
        layers = try (0..<count).map {
            try CodeFormerTransformerLayer(root["ft_layers"][$0], embed: e, hidden: 2 * e, heads: Self.heads, ctx)
        }
        let p = root["idx_pred_layer"]
        logitNorm = (try p[0].floats("weight", shape: [e]), try p[0].floats("bias", shape: [e]))
        logitLayer = try p[1].linear(e, k, bias: false, context: ctx)
        codebook = try Codebook(embedding: try root["quantize"]["embedding"].tensor("weight", shape: [k, Self.latentChannels]),
                                context: ctx)

        // Generator.
        let g = root["generator"]["blocks"]
        index = 0
        func nextG() -> WeightScope { defer { index += 1 }; return g[index] }
        generatorConvIn = try nextG().conv2d(Self.latentChannels, 512, kernel: 3, hint: (16, 16), context: ctx)
        generatorMid = try Self.mid(nextG, ctx)
        var gLevels: [(blocks: [VQGANResnetBlock], attention: [VQGANAttention], up: Conv2d?)] = []
        var width = 512
        for level in stride(from: 5, through: 0, by: -1) {
            let (blocks, attention) = try Self.level(nextG, width, channels[level], size: sizes[level], ctx)
            width = channels[level]
            let up = level > 0 ? try nextG()["conv"].conv2d(width, width, kernel: 3, hint: (sizes[level - 1], sizes[level - 1]), context: ctx) : nil
            gLevels.append((blocks, attention, up))
        }
        generatorLevels = gLevels
        generatorNorm = try VQGANNorm(nextG(), 64)
        generatorConvOut = try nextG().conv2d(64, 3, kernel: 3, hint: (512, 512), context: ctx)

        var fusions: [Int: CodeFormerFusion] = [:]
        for (size, c) in Self.fusionChannels where fused.contains(size) {
            fusions[size] = try CodeFormerFusion(root["fuse_convs_dict"][String(size)], c, size: size, ctx)
        }
        self.fusions = fusions
        _ = try loader.finish(deliberatelyUnused: [])
    }

    /// One level of the encoder or generator from the flat block list (`next` hands out its
    /// entries in order): two residual blocks `cin` → `cout` → `cout`, each followed by
    /// single-head attention at 16².
    static func level(_ next: () -> WeightScope, _ cin: Int, _ cout: Int, size: Int, _ ctx: ComputeContext) throws
        -> ([VQGANResnetBlock], [VQGANAttention]) {
        var blocks: [VQGANResnetBlock] = [], attention: [VQGANAttention] = []
        for i in 0..<2 {
            blocks.append(try VQGANResnetBlock(next(), i == 0 ? cin : cout, cout, size: size, shortcut: "conv_out", ctx))
            if size == 16 { attention.append(try VQGANAttention(next(), cout, heads: 1, size: 16, norm: "norm", crossNorm: nil, ctx)) }
        }
        return (blocks, attention)
    }

    /// The 16² mid block (residual, attention, residual at 512 channels) from the flat list.
    static func mid(_ next: () -> WeightScope, _ ctx: ComputeContext) throws -> (VQGANResnetBlock, VQGANAttention, VQGANResnetBlock) {
        (try VQGANResnetBlock(next(), 512, 512, size: 16, shortcut: "conv_out", ctx),
         try VQGANAttention(next(), 512, heads: 1, size: 16, norm: "norm", crossNorm: nil, ctx),
         try VQGANResnetBlock(next(), 512, 512, size: 16, shortcut: "conv_out", ctx))
    }

    /// Loads a CodeFormer checkpoint (`params_ema`, else `params`, else a bare state dict).
    public convenience init(path: String, verifyChecksums: Bool = true, context: ComputeContext) throws {
        let (sd, _) = try WeightsFile.load(path: path, verifyChecksums: verifyChecksums)
        try self.init(stateDict: sd, file: path, context: context)
    }

    /// The fidelity weight and AdaIN the inference script uses for this checkpoint when the user
    /// gives none: `w` as asked for restoration, 0 for colorization, 1 for inpainting; AdaIN except
    /// for inpainting.
    public func call(fidelity w: Float) -> (w: Float, adain: Bool) {
        switch task {
        case .restoration: return (w, true)
        case .colorization: return (0, true)
        case .inpainting: return (1, false)
        }
    }

    /// The encoder's outputs: `lq_feat` and the features kept for the fused levels.
    struct Encoded {
        var latent: Tensor
        var skips: [Int: Tensor]
    }

    func encode(_ x: Tensor, _ ctx: ComputeContext) throws -> Encoded {
        var h = try encoderConvIn(x, ctx)
        var skips: [Int: Tensor] = [:]
        for (level, stage) in encoderLevels.enumerated() {
            for (i, block) in stage.blocks.enumerated() {
                h = try block(h, ctx)
                if i < stage.attention.count { h = try stage.attention[i](h, ctx) }
            }
            let size = Self.size >> level
            if fusedSizes.contains(size) { skips[size] = h }
            if let down = stage.down { h = try down(h, ctx) }
        }
        h = try encoderMid.2(try encoderMid.1(try encoderMid.0(h, ctx), ctx), ctx)
        let latent = try encoderConvOut(try encoderNorm.deferred(h, swish: false, ctx), ctx)
        return Encoded(latent: latent, skips: skips)
    }

    /// The transformer's logits `(256, 1, K)` for `lq_feat` `[1, 256, 16, 16]`; also every
    /// layer's output when `trace` is given (for the parity tests).
    func logits(_ latent: Tensor, trace: ((Int, Tensor) -> Void)? = nil, _ ctx: ComputeContext) throws -> Tensor {
        let tokens = latent.shape[2] * latent.shape[3]
        // flatten(2).permute(2, 0, 1): token-major, i.e. the NHWC order of the map.
        let sequence = Tensor(shape: [tokens, 1, Self.latentChannels], values: try ctx.arrayNHWC(latent))
        var x = try featEmbedding(sequence, ctx)
        trace?(-1, x)
        for (i, layer) in layers.enumerated() {
            x = try layer(x, position: position, ctx)
            trace?(i, x)
        }
        return try logitLayer(try ctx.layerNorm(x, eps: 1e-5, gamma: logitNorm.0, beta: logitNorm.1), ctx)
    }

    /// The codewords of `indices` as a `[1, 256, 16, 16]` map, with AdaIN to `latent` when asked.
    func codes(_ indices: [Int], latent: Tensor, adain: Bool, _ ctx: ComputeContext) throws -> Tensor {
        let (h, w) = (latent.shape[2], latent.shape[3])
        guard indices.count == h * w else {
            throw EngineError.shapeMismatch(op: "CodeFormer", detail: "\(indices.count) codes for a \(h)×\(w) latent")
        }
        let rows = try codebook.rows(indices, ctx)   // [HW, C], token-major
        let c = Self.latentChannels
        let map = rows.withPlainValues { r -> Tensor in
            Tensor(shape: [1, c, h, w]) { out in
                for t in 0..<(h * w) { for ch in 0..<c { out[ch * h * w + t] = r[t * c + ch] } }
            }
        }
        return adain ? try ctx.adaptiveInstanceNorm(map, style: latent) : map
    }

    /// The generator on the code map, fusing the encoder's features with weight `w` (none at 0).
    func generate(_ quant: Tensor, skips: [Int: Tensor], w: Float, trace: ((String, Tensor) -> Void)? = nil,
                  _ ctx: ComputeContext) throws -> Tensor {
        var h = try generatorConvIn(quant, ctx)
        h = try generatorMid.2(try generatorMid.1(try generatorMid.0(h, ctx), ctx), ctx)
        for (step, stage) in generatorLevels.enumerated() {
            let size = Self.latentSize << step
            for (i, block) in stage.blocks.enumerated() {
                h = try block(h, ctx)
                if i < stage.attention.count { h = try stage.attention[i](h, ctx) }
                if i == 0, w > 0, let fusion = fusions[size], let enc = skips[size] {
                    h = try fusion(encoder: enc, decoder: h, w: w, ctx)
                    trace?("fuse.\(size)", h)
                }
            }
            trace?("gen.\(size)", h)
            if let up = stage.up { h = try up(try ctx.resize(h, factor: 2, mode: .nearest), ctx) }
        }
        return try generatorConvOut(try generatorNorm.deferred(h, swish: false, ctx), ctx)
    }

    /// The restored face for a `[1, 3, 512, 512]` RGB input in [−1, 1], unclamped, with each
    /// token's code and the gap from its top logit to the next. `w` is the fidelity weight
    /// (0: the codebook's face, 1: closest to the input; 0.5 the inference script's default);
    /// `adain` as the inference script calls it (true) unless the task says otherwise.
    public func forward(_ x: Tensor, w: Float, adain: Bool = true, _ ctx: ComputeContext) throws
        -> (image: Tensor, codes: [Int], gaps: [Float]) {
        guard x.shape == [1, 3, Self.size, Self.size] else {
            throw EngineError.shapeMismatch(op: "CodeFormer", detail: "takes [1, 3, 512, 512], got \(x.shape)")
        }
        guard w.isFinite, w >= 0 else {
            throw EngineError.shapeMismatch(op: "CodeFormer", detail: "fidelity weight \(w) (needs a finite w ≥ 0)")
        }
        let encoded = try encode(x, ctx)
        let (indices, gaps) = try ctx.argmax(try logits(encoded.latent, ctx))
        let quant = try codes(indices, latent: encoded.latent, adain: adain, ctx)
        return (try generate(quant, skips: encoded.skips, w: w, ctx), indices, gaps)
    }
}
