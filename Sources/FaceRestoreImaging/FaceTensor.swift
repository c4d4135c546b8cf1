// Image ↔ network tensor conversions, exactly as GFPGANer.enhance does them
// (gfpgan 1.3.8 `gfpgan/utils.py`; basicsr 1.4.2 `basicsr/utils/img_util.py` img2tensor/tensor2img):
//   in:  float64 `img / 255.`, cast to float32, BGR→RGB, HWC→CHW, then `(x − 0.5) / 0.5` in float32;
//   out: clamp to [−1, 1], `(x + 1) / 2`, RGB→BGR, `· 255` in float32, `np.round` (half to even), uint8.

import FaceRestoreEngine

/// An 8-bit interleaved image. Colour images are in OpenCV's BGR order, as the reference pipeline
/// keeps them from `cv2.imread` to `cv2.imwrite`.
public struct PixelImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    /// Row-major, interleaved (`height × width × channels`).
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && channels > 0 && pixels.count == width * height * channels,
                     "\(width)×\(height)×\(channels) image needs \(width * height * channels) bytes, got \(pixels.count)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }
}

public enum FaceTensor {
    /// A BGR image as the `[1, 3, H, W]` RGB tensor in [−1, 1] that GFPGAN takes.
    public static func normalized(bgr image: PixelImage) -> Tensor {
        precondition(image.channels == 3, "normalized(bgr:) needs a 3-channel BGR image")
        let (h, w) = (image.height, image.width)
        return Tensor(shape: [1, 3, h, w]) { out in
            image.pixels.withUnsafeBufferPointer { px in
                for c in 0..<3 {
                    let src = 2 - c   // RGB plane c comes from BGR channel 2 − c
                    for i in 0..<(h * w) {
                        let x = Float(Double(px[i * 3 + src]) / 255.0)
                        out[c * h * w + i] = (x - 0.5) / 0.5
                    }
                }
            }
        }
    }

    /// How a network output becomes 8 bits.
    public enum Quantization: Sendable {
        /// basicsr `tensor2img`: clamp to [−1, 1], `(x + 1) / 2 · 255`, round half to even (GFPGAN).
        case roundHalfEven
        /// GPEN's `FaceGAN.tensor2img`: `x · 0.5 + 0.5`, clip to [0, 1], `· 255`, `astype(uint8)`
        /// (truncation).
        case truncate
    }

    /// A `[1, 3, H, W]` RGB tensor in [−1, 1] as an 8-bit BGR image (basicsr `tensor2img`, or
    /// GPEN's truncating variant).
    public static func bgrImage(from tensor: Tensor, quantization: Quantization = .roundHalfEven,
                                _ context: ComputeContext) throws -> PixelImage {
        guard tensor.rank == 4, tensor.shape[0] == 1, tensor.shape[1] == 3 else {
            throw EngineError.shapeMismatch(op: "tensor2img", detail: "needs [1, 3, H, W], got \(tensor.shape)")
        }
        let (h, w) = (tensor.shape[2], tensor.shape[3])
        let values = try context.array(tensor)
        var pixels = [UInt8](repeating: 0, count: h * w * 3)
        for c in 0..<3 {
            for i in 0..<(h * w) {
                let x = values[c * h * w + i]
                guard x.isFinite else { throw EngineError.nonFinite(op: "tensor2img") }
                let byte: UInt8
                switch quantization {
                case .roundHalfEven: byte = UInt8((((min(max(x, -1), 1) + 1) / 2) * 255).rounded(.toNearestOrEven))
                case .truncate: byte = UInt8((min(max(x * 0.5 + 0.5, 0), 1) * 255).rounded(.towardZero))
                }
                pixels[i * 3 + (2 - c)] = byte
            }
        }
        return PixelImage(width: w, height: h, channels: 3, pixels: pixels)
    }
}
