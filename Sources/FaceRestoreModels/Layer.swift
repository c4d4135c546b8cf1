// The building blocks every architecture file composes: a layer (one tensor in, one out) and
// `nn.Sequential`.

import FaceRestoreEngine
import Foundation

/// A layer of a model: one tensor in, one out.
protocol Layer: Sendable {
    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor
}

extension Conv2d: Layer {}

/// Layers applied in order (`nn.Sequential`).
struct Sequential: Layer {
    let layers: [any Layer]
    init(_ layers: [any Layer]) { self.layers = layers }
    func callAsFunction(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        try layers.reduce(x) { try $1($0, ctx) }
    }
}
