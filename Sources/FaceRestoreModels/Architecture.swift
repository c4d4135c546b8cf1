// Recognizes which network a state dict belongs to, and its configuration, from key names and
// tensor shapes alone (stable-diffusion.cpp's `detect_from_weights` idea). Key layouts follow:
// gfpgan 1.3.8 `gfpgan/archs/gfpganv1_clean_arch.py`, `gfpganv1_arch.py`; facexlib 0.3.0
// `facexlib/detection/retinaface.py`, `facexlib/parsing/parsenet.py`; basicsr 1.4.2
// `basicsr/archs/rrdbnet_arch.py`; realesrgan 0.3.0 `realesrgan/archs/srvgg_arch.py`;
// yangxy/GPEN `face_model/gpen_model.py`.

import FaceRestoreWeights

/// A network FaceRestore knows, with the configuration read from its weights.
public enum Architecture: Sendable, Equatable, CustomStringConvertible {
    /// GFPGANv1Clean (GFPGAN v1.2, v1.3, v1.4).
    case gfpganClean(outSize: Int, channelMultiplier: Int, narrow: Double)
    /// GFPGANv1, the paper architecture (GFPGAN v1).
    case gfpganV1(outSize: Int, channelMultiplier: Int, narrow: Double)
    /// GPEN's FullGenerator (GPEN-BFR-256/512/1024/2048).
    case gpen(size: Int)
    case retinaFace(backbone: String)
    case parseNet
    /// Real-ESRGAN RRDBNet (x4plus, x2plus with pixel-unshuffle).
    case rrdbNet(scale: Int, features: Int, blocks: Int)
    /// Real-ESRGAN SRVGGNetCompact (realesr-general-x4v3, realesr-animevideov3).
    case srvggNetCompact(scale: Int, features: Int, convs: Int)
    /// RestoreFormer (8 heads) or RestoreFormer++ (4 heads, decoder attention at 32² too).
    case restoreFormer(plusPlus: Bool)
    /// CodeFormer: the feature sizes its generator fuses (`connect_list`) and its codebook size,
    /// which tell restoration, colorization and inpainting checkpoints apart.
    case codeFormer(fusedSizes: [Int], codebookSize: Int)
    /// Recognized but not (yet) runnable by FaceRestore.
    case other(String)

    public var description: String {
        switch self {
        case let .gfpganClean(size, cm, narrow):
            return "GFPGANv1Clean (GFPGAN v1.2/v1.3/v1.4 layout): out_size \(size), channel_multiplier \(cm), narrow \(Self.format(narrow))"
        case let .gfpganV1(size, cm, narrow):
            return "GFPGANv1 (GFPGAN v1 paper architecture): out_size \(size), channel_multiplier \(cm), narrow \(Self.format(narrow))"
        case let .gpen(size): return "GPEN FullGenerator: size \(size)"
        case let .retinaFace(backbone): return "RetinaFace (\(backbone)) face detector"
        case .parseNet: return "ParseNet face parsing (19 classes)"
        case let .rrdbNet(scale, f, b): return "RRDBNet (Real-ESRGAN): scale \(scale), num_feat \(f), num_block \(b)"
        case let .srvggNetCompact(scale, f, c): return "SRVGGNetCompact (Real-ESRGAN): upscale \(scale), num_feat \(f), num_conv \(c)"
        case let .restoreFormer(plusPlus): return plusPlus ? "RestoreFormer++ (4 heads)" : "RestoreFormer (8 heads)"
        case let .codeFormer(fused, k):
            let task = CodeFormer.task(fusedSizes: fused, codebookSize: k)
            return "CodeFormer (\(task.rawValue)): fuses at \(fused.map { "\($0)²" }.joined(separator: ", ")), \(k) codes"
        case let .other(name): return "\(name) (recognized; not supported yet)"
        }
    }

    private static func format(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : String(x) }

    /// Identifies the architecture of a state dict, or nil when it matches none FaceRestore knows.
    public static func detect(_ sd: StateDict) -> Architecture? {
        detect(shapes: sd.tensors.mapValues(\.shape))
    }

    /// Identifies the architecture from key → shape alone.
    public static func detect(shapes: [String: [Int]]) -> Architecture? {
        func has(_ k: String) -> Bool { shapes[k] != nil }
        func count(_ prefix: String, _ suffix: String) -> Int {
            var n = 0
            while has("\(prefix)\(n)\(suffix)") { n += 1 }
            return n
        }

        // GFPGAN: the StyleGAN2 decoder plus the U-Net. The clean arch names the StyleConv bias
        // `style_conv1.bias`; the paper arch has FusedLeakyReLU's `activate.bias`.
        if has("stylegan_decoder.constant_input.weight"), has("final_linear.weight") {
            let rgbs = count("stylegan_decoder.to_rgbs.", ".bias")
            guard rgbs > 0, let c4 = shapes["stylegan_decoder.constant_input.weight"], c4.count == 4,
                  let last = shapes["stylegan_decoder.to_rgbs.\(rgbs - 1).modulated_conv.weight"], last.count == 5 else { return nil }
            let outSize = 1 << (rgbs + 2)
            let narrow = Double(c4[1]) / 512
            // Decoder channels at resolution r ≥ 64 are (16384 / r) · cm · narrow.
            let cm = Int((Double(last[2]) / (16384 / Double(outSize)) / narrow).rounded())
            if has("conv_body_first.weight") { return .gfpganClean(outSize: outSize, channelMultiplier: cm, narrow: narrow) }
            if has("conv_body_first.0.weight") { return .gfpganV1(outSize: outSize, channelMultiplier: cm, narrow: narrow) }
            return nil
        }
        if shapes.keys.contains(where: { $0.hasPrefix("ecd0.") }), shapes.keys.contains(where: { $0.hasPrefix("generator.") }) {
            // ecd0 (1×1 at full size), then one stride-2 layer per halving down to 4×4.
            var encoders = 0
            while has("ecd\(encoders).0.0.weight") || has("ecd\(encoders).0.1.weight") { encoders += 1 }
            return .gpen(size: encoders > 0 ? 1 << (encoders + 1) : 0)
        }
        if has("ClassHead.0.conv1x1.weight"), has("ssh1.conv3X3.0.weight") {
            if has("body.stage1.0.0.weight") { return .retinaFace(backbone: "MobileNet0.25") }
            if has("body.conv1.weight") { return .retinaFace(backbone: "ResNet50") }
        }
        if has("encoder.0.conv2d.weight"), has("out_mask_conv.conv2d.weight") { return .parseNet }
        if let first = shapes["conv_first.weight"], has("body.0.rdb1.conv1.weight"), first.count == 4 {
            let scale = [3: 4, 12: 2, 48: 1][first[1]] ?? 0
            return .rrdbNet(scale: scale, features: first[0], blocks: count("body.", ".rdb1.conv1.weight"))
        }
        if let first = shapes["body.0.weight"], first.count == 4, first[1] == 3, let act = shapes["body.1.weight"], act.count == 1 {
            // body = conv, act, (conv, act)×num_conv, conv(→ 3·s²): the last weight is 4-D.
            var last = 0
            while has("body.\(last + 1).weight") { last += 1 }
            guard let out = shapes["body.\(last).weight"], out.count == 4 else { return nil }
            let scale = Int(Double(out[0] / 3).squareRoot().rounded())
            return .srvggNetCompact(scale: scale, features: first[0], convs: (last - 2) / 2)
        }
        if has("quantize.embedding.weight") {
            if has("position_emb"), let code = shapes["quantize.embedding.weight"], code.count == 2 {
                return .codeFormer(fusedSizes: CodeFormer.fusionChannels.map(\.size).filter { has("fuse_convs_dict.\($0).encode_enc.norm1.weight") },
                                   codebookSize: code[0])
            }
            // RestoreFormer's own keys, or a Lightning checkpoint's under `vqvae.`.
            for p in ["", "vqvae."] where has(p + "encoder.conv_in.weight") && has(p + "decoder.conv_out.weight") {
                return .restoreFormer(plusPlus: has(p + "decoder.up.4.attn.0.q.weight"))
            }
            return .other("VQ autoencoder")
        }
        if has("vqvae.quantize.embedding.weight"), has("vqvae.encoder.conv_in.weight"), has("vqvae.decoder.conv_out.weight") {
            return .restoreFormer(plusPlus: has("vqvae.decoder.up.4.attn.0.q.weight"))
        }
        return nil
    }
}
