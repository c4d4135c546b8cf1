// Our fused F(4×4,3×3) Winograd convolution (Sources/CWinograd/winograd.c) behind `Conv2d`: the
// 3×3 layers of stride 1 (or 2: polyphase, F(4,2) on the even taps) that `FusedWinogradConv.supports` takes (zero padding 1, or 0 for inputs the
// caller padded, float32, input channels in multiples of 16, output channels in multiples of 32 or
// (padded to one) not of 16, no activation or a (leaky) ReLU, outputs of 32² and more, on CPUs
// with AVX-512) run here rather than on oneDNN.
//
// oneDNN's kernel transforms a layer's whole input, then multiplies, then transforms back, each
// phase a pass through memory: its work buffers reach hundreds of MB on 512² faces (ParseNet's
// 128→128 conv at 512²: about 600 MB), which a one-shot process pays in page faults, and it runs
// 3–4× slower at awkward tile counts (210², ESRGAN's tiles) and below speed on 32-output layers.
// This one takes 14 tiles at a time through all three phases in cache (a few hundred KB per
// thread), with the bias and the (leaky) ReLU applied in the output transform.

import CDNNL
import CWinograd

final class FusedWinogradConv: Sendable {
    let inChannels: Int, outChannels: Int
    /// Output channels computed: `outChannels` rounded up to a multiple of 32. The extra ones have
    /// zero weights and bias, so they hold zeros: the padding of the nChw16c output.
    let computedChannels: Int
    /// Zero padding on each side (0 or 1).
    let padding: Int
    /// 1, or 2 (the polyphase kernel: F(4,2) on the even taps, the odd tap as it is; winograd.c).
    let stride: Int
    /// Transformed weights, [36][out/32][in][32], made on demand (KernelWeights.swift) from the
    /// plain weights, which the layer keeps (a view of the memory-mapped checkpoint where the
    /// loader hands one out).
    let tiles: KernelWeights
    /// For stride 1, the weights of the kernel for inputs read upsampled ×2 (nearest) and padded by
    /// one (`Read.reflected(upsample: 2, …)`, ParseNet's decoder): four 2×2 convolutions of the
    /// source, one per output phase, each F(4×4,2×2) (100 values per channel pair), made on
    /// demand like `tiles`.
    let nearest2xTiles: KernelWeights?
    private let bias: TensorStorage?
    /// LeakyReLU slope (0 for ReLU), nil for no activation.
    private let slope: Float?

    /// Whether a layer with these properties runs here, for an `output` (height, width) typical of
    /// its inputs: 3×3, stride 1 or 2, zero padding 1 (or 0 for pre-padded inputs), at least 32
    /// input channels in multiples of 16, outputs in multiples of 32 (or other counts that are not
    /// multiples of 16, computed as the next multiple of 32 with zero weights), outputs from 32²,
    /// no activation or one (leaky) ReLU, float32, Winograd allowed, AVX-512 present. Everything
    /// else stays on oneDNN. The bounds are where ours beats oneDNN on this project's machines
    /// (`facerestore-bench dense --size N --shapes …`, docs/performance.md); at 32² a warm call
    /// is 1.5–1.7× faster than oneDNN's direct kernel.
    static func supports(weightShape s: [Int], stride: Int, padding: Padding2D, dilation: Int, groups: Int,
                         postOps: [PostOp], output: (Int, Int), context: ComputeContext) -> Bool {
        guard context.winograd, context.precision == .fp32, frw_available() != 0 else { return false }
        guard s.count == 4, s[2] == 3, s[3] == 3, stride == 1 || stride == 2, dilation == 1, groups == 1,
              padding == Padding2D(1) || padding == Padding2D(0), s[1] % 16 == 0,
              s[0] % 32 == 0 || (s[0] > 16 && s[0] % 16 != 0) else { return false }
        let side = min(output.0, output.1)
        guard s[1] >= 32, side >= 32 else { return false }
        return activation(postOps) != nil
    }

    /// The fused activation of `postOps`: .some(nil) for none, .some(slope) for one (leaky) ReLU;
    /// nil when the kernel cannot fuse them.
    private static func activation(_ postOps: [PostOp]) -> Float?? {
        guard let op = postOps.first else { return .some(nil) }
        guard postOps.count == 1 else { return nil }
        switch op {
        case .relu: return .some(0)
        case .leakyReLU(let s): return .some(s)
        case .linear: return nil
        }
    }

    /// `weight`: PyTorch layout [out, in, 3, 3] (plain); `padding`: 0 or 1 on every side; `stride`:
    /// 1 or 2.
    init(weight: Tensor, bias: [Float]?, padding: Int, stride: Int, postOps: [PostOp]) {
        let (o, i) = (weight.shape[0], weight.shape[1])
        let computed = (o + 31) / 32 * 32
        inChannels = i
        outChannels = o
        computedChannels = computed
        self.padding = padding
        self.stride = stride
        var plain = weight.storage
        if computed != o {
            // Zero weights for the padding outputs (a small copy: ParseNet's 64→19 mask head).
            let padded = TensorStorage(bytes: computed * i * 9 * 4)
            padded.floats.initialize(repeating: 0, count: computed * i * 9)
            padded.floats.update(from: plain.floats, count: o * i * 9)
            plain = padded
        }
        let source = plain
        func transformed(_ kind: Int32) -> KernelWeights {
            KernelWeights(bytes: frw_weight_floats(Int32(i), Int32(computed), kind) * 4) { out, context in
                // Split by 32-output blocks across the threads (each writes its own part of `out`).
                let u = out.assumingMemoryBound(to: Float.self)
                context.parallelRows(computed / 32, grain: 1) { blocks in
                    frw_transform_weight_blocks(source.floats, Int32(computed), Int32(i), u,
                                                Int32(blocks.lowerBound), Int32(blocks.upperBound), kind)
                }
            }
        }
        tiles = transformed(stride == 2 ? FRW_STRIDE2 : FRW_STRIDE1)
        nearest2xTiles = stride == 1 ? transformed(FRW_NEAREST2X) : nil
        if let bias {
            let b = TensorStorage(bytes: computed * 4)
            b.floats.initialize(repeating: 0, count: computed)
            bias.withUnsafeBufferPointer { b.floats.update(from: $0.baseAddress!, count: o) }
            self.bias = b
        } else {
            self.bias = nil
        }
        slope = Self.activation(postOps)!
    }

    /// How the kernel reads its input, as each value is loaded (nothing is written out):
    /// - `.reflected`: for a layer built for inputs padded beforehand (`padding` 0), the input
    ///   upsampled ×`upsample` (nearest), reflection-padded by 1 and, with `leakyReLUSlope`,
    ///   through that activation (ParseNet's `ReflectionPad2d` convs);
    /// - `.bilinear`: the input upsampled ×2 bilinearly (align_corners=False, torch's arithmetic),
    ///   then the layer's own zero padding (GFPGAN's upsampling StyleConvs and U-Net blocks).
    /// - `.normalized`: a deferred group norm (without swish) applied to each value as it is
    ///   read, for a stride-1 layer; the same bits as convolving `ComputeContext.apply(g)`.
    enum Read {
        case reflected(upsample: Int, leakyReLUSlope: Float?)
        case bilinear
        case normalized(GroupNormed)
    }

    /// The output (nChw16c), written into `destination` when it is given in that layout; with
    /// `residual` (same shape), `output·scale + residual` in the same pass; with `read`, the
    /// convolution of `x` read that way (see `Read`).
    func forward(_ x: Tensor, into destination: Tensor?, residual: (tensor: Tensor, scale: Float)? = nil,
                 read: Read? = nil, context: ComputeContext) throws -> Tensor {
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        var how = frw_read(upsample: 1, bilinear: 0, reflect: 0, leaky: 0, slope: 0, mul: nil, add: nil)
        var pad = padding
        var affine: (mul: TensorStorage, add: TensorStorage)?
        switch read {
        case nil: break
        case let .reflected(upsample, slope)?:
            precondition(padding == 0 && (upsample == 1 || upsample == 2), "a reflection-padded input goes to a layer built without padding")
            pad = 1
            how = frw_read(upsample: Int32(upsample), bilinear: 0, reflect: 1, leaky: slope == nil ? 0 : 1, slope: slope ?? 0,
                           mul: nil, add: nil)
        case .bilinear?:
            how = frw_read(upsample: 2, bilinear: 1, reflect: 0, leaky: 0, slope: 0, mul: nil, add: nil)
        case .normalized(let g)?:
            precondition(stride == 1 && !g.swish && g.mul.count == n * inChannels,
                         "a deferred group norm without swish feeds a stride-1 layer, one scale per channel")
            let (m, a) = (TensorStorage(bytes: g.mul.count * 4), TensorStorage(bytes: g.add.count * 4))
            g.mul.withUnsafeBufferPointer { m.floats.initialize(from: $0.baseAddress!, count: $0.count) }
            g.add.withUnsafeBufferPointer { a.floats.initialize(from: $0.baseAddress!, count: $0.count) }
            affine = (m, a)
        }
        let up = Int(how.upsample)
        precondition(stride == 1 || up == 1, "the stride-2 kernel reads its input without upsampling")
        let (oh, ow) = ((up * h + 2 * pad - 3) / stride + 1, (up * w + 2 * pad - 3) / stride + 1)
        guard up * h + 2 * pad >= 3, up * w + 2 * pad >= 3, how.reflect == 0 || up * min(h, w) >= 2 else {
            throw EngineError.shapeMismatch(op: "convolution", detail: "input \(x.shape) too small for a 3×3 kernel with padding \(pad)")
        }
        let outDesc = MemoryDesc.channelBlocked16([n, outChannels, oh, ow])
        if let destination, destination.shape != outDesc.dims {
            throw EngineError.shapeMismatch(op: "convolution", detail: "output \(outDesc.dims) into \(destination.shape)")
        }
        if let residual, residual.tensor.shape != outDesc.dims {
            throw EngineError.shapeMismatch(op: "convolution", detail: "output \(outDesc.dims) plus \(residual.tensor.shape)")
        }
        if let destination, destination.desc != outDesc {
            let y = try forward(x, into: nil, residual: residual, read: read, context: context)
            try context.reorder(from: y.desc, y.storage.pointer, to: destination.desc, destination.storage.pointer)
            return destination
        }
        // nChw16c and channels-last inputs are read as they are (a conv after a Swift-side pass, a
        // reflection pad or a 1×1 conv gets channels-last); others are converted to nChw16c.
        let nhwc = x.desc == .channelsLast(x.shape) && Int(bitPattern: x.storage.pointer) % 64 == 0
        let src = nhwc ? x : try context.reordered(x, to: .channelBlocked16(x.shape))
        let added = try residual.map { try context.reordered($0.tensor, to: outDesc) }
        let out = destination ?? Tensor(uninitialized: outDesc)
        let (inPlane, outPlane) = (inChannels * h * w, computedChannels * oh * ow)
        // Nearest ×2 upsampled and padded reads go to the per-phase kernel (reflection or zeros).
        let nearest2x = up == 2 && how.bilinear == 0 && pad == 1 ? nearest2xTiles : nil
        let kind = nearest2x != nil ? FRW_NEAREST2X : stride == 2 ? FRW_STRIDE2 : FRW_STRIDE1
        let scratchBytes = frw_scratch_floats(Int32(inChannels), Int32(computedChannels), kind) * 4
        let tileSize = kind == FRW_NEAREST2X ? 8 : 4
        let tileRows = (oh + tileSize - 1) / tileSize
        try (nearest2x ?? tiles).use(context) { weights in
            let u = weights.assumingMemoryBound(to: Float.self)
            for b in 0..<n {
                let s = src.storage.floats + b * inPlane, d = out.storage.floats + b * outPlane
                let r = added.map { UnsafePointer($0.storage.floats + b * outPlane) }
                var how = how
                if let affine {   // this sample's scales
                    how.mul = UnsafePointer(affine.mul.floats + b * inChannels)
                    how.add = UnsafePointer(affine.add.floats + b * inChannels)
                }
                context.parallelRows(tileRows, grain: 1) { range in
                    let scratch = TensorStorage(bytes: scratchBytes)
                    frw_conv3x3(s, nhwc ? 1 : 0, Int32(inChannels), Int32(h), Int32(w), Int32(pad), kind, &how,
                                u, bias?.floats, Int32(computedChannels), d,
                                slope == nil ? 0 : 1, slope ?? 0, r, residual?.scale ?? 0,
                                Int32(range.lowerBound), Int32(range.upperBound), scratch.floats)
                }
            }
        }
        withExtendedLifetime(affine) {}
        return out
    }
}
