// dlib's face-recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`), the `anet_type` of
// davisking/dlib `examples/dnn_face_recognition_ex.cpp` (read at commit 3d40bf5…):
//
//   loss_metric<fc_no_bias<128, avg_pool_everything<
//     ares_down<256, ares<256, ares<256, ares_down<256, ares<128, ares<128, ares_down<128,
//     ares<64, ares<64, ares<64, ares_down<64, ares<32, ares<32, ares<32,
//     max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>>>>>>>>>>>>>
//
// with block = affine<con<N,3,3,1,1, relu<affine<con<N,3,3,s,s, x>>>>>, ares = relu(block(x) + x)
// and ares_down = relu(block_s2(x) + avg_pool<2,2,2,2>(x)). dlib's defaults give strided convs
// and pools no padding and 3×3 stride-1 convs padding 1 (`dlib/dnn/layers.h`); `add_prev` of
// tensors of different sizes adds over the larger one with the missing values taken as 0
// (`tt::add`, `dlib/cuda/cpu_dlib.cpp`): the 64-channel block's pooled shortcut has 32 channels,
// and at 8×8 → 4×4 vs 3×3 the strided conv's output is the smaller. The input is
// (pixel − mean)/256 per channel (`input_rgb_image_sized`), and the descriptor is the raw fc output
// (loss_metric's `to_label` copies it; `compute_face_descriptor` returns it as is).
//
// Each affine follows a conv and is folded into it at load (γ·(W∗x + b) + β); ReLUs are fused.

import FaceRestoreEngine
import FaceRestoreWeights

public final class DlibResNet: Sendable {
    /// The serialized structure of `anet_type`, outermost layer first (the order the file nests
    /// its layers in), without the loss and input layers.
    public static let structure: [DlibNode] = {
        let res: [DlibNode] = [.relu, .addPrev(tag: 1), .affine, .con, .relu, .affine, .con, .tag(1)]
        let down: [DlibNode] = [.relu, .addPrev(tag: 2), .avgPool, .skip(1), .tag(2), .affine, .con, .relu, .affine, .con, .tag(1)]
        var s: [DlibNode] = [.fc, .avgPool]
        for (kind, _) in blocks { s += kind ? down : res }
        return s + [.maxPool, .relu, .affine, .con]
    }()

    /// (down-sampling, width) of the residual blocks, outermost first.
    static let blocks: [(Bool, Int)] = [(true, 256), (false, 256), (false, 256), (true, 256), (false, 128), (false, 128), (true, 128),
                                        (false, 64), (false, 64), (false, 64), (true, 64), (false, 32), (false, 32), (false, 32)]

    public static let inputSize = 150
    public static let descriptorSize = 128

    struct Block: Sendable {
        let down: Bool
        let conv1: Conv2d   // 3×3, stride 1 or 2, no padding when strided; affine + ReLU fused
        let conv2: Conv2d   // 3×3, stride 1, padding 1; affine fused
    }

    let inputMeans: [Float]
    let stem: Conv2d        // 7×7 stride 2, affine + ReLU fused
    let blocks: [Block]     // input side first
    let fc: [Float]         // [256, 128]

    /// Builds the network from a file read with `structure`; names any missing or mis-shaped
    /// tensor and any layer whose configuration is not anet_type's.
    public init(network net: DlibNetwork, context: ComputeContext) throws {
        let file = net.path
        guard net.layers.count == Self.structure.count else {
            throw ModelError.wrongArchitecture(file: file, expected: "dlib's face-recognition ResNet", found: "a dlib network of \(net.layers.count) layers")
        }
        guard net.inputRows == Self.inputSize, net.inputCols == Self.inputSize else {
            throw ModelError.wrongArchitecture(file: file, expected: "dlib's face-recognition ResNet (150×150 input)",
                                               found: "a network for \(net.inputRows)×\(net.inputCols) inputs")
        }
        inputMeans = net.inputMeans
        let loader = WeightLoader(net.stateDict, file: file)
        let layers = loader.root["layers"]
        func config(_ i: Int, _ what: String) -> ModelError {
            .wrongArchitecture(file: file, expected: "dlib's face-recognition ResNet (layer \(i): \(what))", found: "layer \(i): \(net.layers[i])")
        }
        // A conv at `i` followed (outward, i − 1) by its affine, folded.
        func conv(_ i: Int, cin: Int, cout: Int, kernel: Int, stride: Int, relu: Bool, size: Int) throws -> Conv2d {
            let padding = stride == 1 ? kernel / 2 : 0
            let window = DlibWindow(rows: kernel, cols: kernel, strideY: stride, strideX: stride, padY: padding, padX: padding)
            guard case .con(window, cout, let hasBias, false) = net.layers[i] else { throw config(i, "con<\(cout),\(kernel),\(kernel),\(stride),\(stride)>") }
            guard case .affine(true, let disabled) = net.layers[i - 1] else { throw config(i - 1, "affine (conv mode)") }
            var w = try layers[i].floats("weight", shape: [cout, cin, kernel, kernel])
            var b = hasBias ? try layers[i].floats("bias", shape: [cout]) : [Float](repeating: 0, count: cout)
            if !disabled {
                let g = try layers[i - 1].floats("gamma", shape: [cout]), beta = try layers[i - 1].floats("beta", shape: [cout])
                let per = cin * kernel * kernel
                for o in 0..<cout {
                    for j in 0..<per { w[o * per + j] *= g[o] }
                    b[o] = b[o] * g[o] + beta[o]
                }
            }
            return try Conv2d(weight: w, shape: [cout, cin, kernel, kernel], bias: b, stride: stride, padding: Padding2D(padding),
                              postOps: relu ? [.relu] : [], hint: (size, size), fusedWinograd: false, context: context)
        }
        func expect(_ i: Int, _ layer: DlibLayer) throws {
            guard net.layers[i] == layer else { throw config(i, "\(layer)") }
        }
        let n = Self.structure.count
        // Stem: con (n−1), affine, relu, max_pool (n−4).
        stem = try conv(n - 1, cin: 3, cout: 32, kernel: 7, stride: 2, relu: true, size: Self.inputSize)
        try expect(n - 3, .relu(disabled: false))
        try expect(n - 4, .maxPool(DlibWindow(rows: 3, cols: 3, strideY: 2, strideX: 2, padY: 0, padX: 0)))
        // Blocks, input side first: walk the structure from layer n − 5 outwards.
        var i = n - 5
        var cin = 32, size = 35
        var built: [Block] = []
        for (down, width) in Self.blocks.reversed() {
            // tag1 at i, then con, affine, relu, con, affine (outwards), then tag2/skip/avg_pool for down.
            guard case .tag(1) = net.layers[i] else { throw config(i, "tag1") }
            let stride = down ? 2 : 1
            let c1 = try conv(i - 1, cin: cin, cout: width, kernel: 3, stride: stride, relu: true, size: size)
            try expect(i - 3, .relu(disabled: false))
            let c2 = try conv(i - 4, cin: width, cout: width, kernel: 3, stride: 1, relu: false, size: down ? (size - 3) / 2 + 1 : size)
            i -= 6
            if down {
                try expect(i, .tag(2))
                try expect(i - 1, .skip(1))
                try expect(i - 2, .avgPool(DlibWindow(rows: 2, cols: 2, strideY: 2, strideX: 2, padY: 0, padX: 0)))
                try expect(i - 3, .addPrev(tag: 2))
                i -= 4
                size = (size - 2) / 2 + 1
            } else {
                try expect(i, .addPrev(tag: 1))
                i -= 1
            }
            try expect(i, .relu(disabled: false))
            i -= 1
            built.append(Block(down: down, conv1: c1, conv2: c2))
            cin = width
        }
        blocks = built
        try expect(1, .avgPool(DlibWindow(rows: 0, cols: 0, strideY: 1, strideX: 1, padY: 0, padX: 0)))
        guard case .fc(Self.descriptorSize, 256, let fcBias) = net.layers[0], !fcBias else { throw config(0, "fc_no_bias<128> from 256 inputs") }
        fc = try layers[0].floats("weight", shape: [256, Self.descriptorSize])
        _ = try loader.finish(deliberatelyUnused: [])
    }

    /// The 128-d descriptor of a 150×150 RGB chip (`rgb`: 150·150·3 bytes, row-major, R G B).
    public func descriptor(rgb: [UInt8], _ context: ComputeContext) throws -> [Float] {
        let s = Self.inputSize
        guard rgb.count == s * s * 3 else {
            throw ModelError.invalidInput("dlib face chip: expected \(s)×\(s)×3 bytes, got \(rgb.count)")
        }
        var input = [Float](repeating: 0, count: 3 * s * s)
        for p in 0..<(s * s) {
            for c in 0..<3 { input[c * s * s + p] = (Float(rgb[p * 3 + c]) - inputMeans[c]) / 256 }
        }
        var x = try stem(Tensor(shape: [1, 3, s, s], values: input), context)
        x = try context.maxPool2d(x, kernel: 3, stride: 2, padding: 0)
        var shape = x.shape
        var values = try context.array(x)
        for block in blocks {
            let t = Tensor(shape: shape, values: values)
            let branch = try block.conv2(try block.conv1(t, context), context)
            let bshape = branch.shape
            let bvalues = try context.array(branch)
            let (short, sshape) = block.down ? Self.averagePool2(values, shape) : (values, shape)
            (values, shape) = Self.addReLU(short, sshape, bvalues, bshape)
        }
        // avg_pool_everything, then fc_no_bias: out[j] = Σ_i v[i]·W[i, j].
        let (c, hw) = (shape[1], shape[2] * shape[3])
        var pooled = [Float](repeating: 0, count: c)
        for ch in 0..<c {
            var sum: Float = 0
            for p in 0..<hw { sum += values[ch * hw + p] }
            pooled[ch] = sum / Float(hw)
        }
        var out = [Float](repeating: 0, count: Self.descriptorSize)
        for i in 0..<c {
            let v = pooled[i]
            for j in 0..<Self.descriptorSize { out[j] += v * fc[i * Self.descriptorSize + j] }
        }
        return out
    }

    /// avg_pool<2,2,2,2> without padding (NCHW, batch 1).
    static func averagePool2(_ x: [Float], _ shape: [Int]) -> ([Float], [Int]) {
        let (c, h, w) = (shape[1], shape[2], shape[3])
        let oh = (h - 2) / 2 + 1, ow = (w - 2) / 2 + 1
        var out = [Float](repeating: 0, count: c * oh * ow)
        for ch in 0..<c {
            for y in 0..<oh {
                for xx in 0..<ow {
                    let b = ch * h * w + 2 * y * w + 2 * xx
                    out[(ch * oh + y) * ow + xx] = (x[b] + x[b + 1] + x[b + w] + x[b + w + 1]) / 4
                }
            }
        }
        return (out, [1, c, oh, ow])
    }

    /// relu(a + b) over the larger extent of each dimension, missing values taken as 0.
    static func addReLU(_ a: [Float], _ ashape: [Int], _ b: [Float], _ bshape: [Int]) -> ([Float], [Int]) {
        let c = max(ashape[1], bshape[1]), h = max(ashape[2], bshape[2]), w = max(ashape[3], bshape[3])
        var out = [Float](repeating: 0, count: c * h * w)
        func at(_ v: [Float], _ s: [Int], _ ch: Int, _ y: Int, _ x: Int) -> Float {
            ch < s[1] && y < s[2] && x < s[3] ? v[(ch * s[2] + y) * s[3] + x] : 0
        }
        for ch in 0..<c {
            for y in 0..<h {
                for x in 0..<w { out[(ch * h + y) * w + x] = max(at(a, ashape, ch, y, x) + at(b, bshape, ch, y, x), 0) }
            }
        }
        return (out, [1, c, h, w])
    }
}
