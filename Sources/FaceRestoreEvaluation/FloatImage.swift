// Images as the evaluation code of basicsr and OpenCV hold them: numpy-like arrays of float32
// (or float64 where the reference computes in double), row-major and interleaved (H × W × C),
// channels in OpenCV's BGR order.

import FaceRestoreImaging

/// An H × W × C image of `Float` values (BGR for colour), as a float32 numpy array.
public struct FloatImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    /// Row-major, interleaved (`height × width × channels`).
    public var values: [Float]

    public init(width: Int, height: Int, channels: Int, values: [Float]) {
        precondition(width >= 0 && height >= 0 && channels > 0 && values.count == width * height * channels,
                     "\(width)×\(height)×\(channels) image needs \(width * height * channels) values, got \(values.count)")
        self.width = width
        self.height = height
        self.channels = channels
        self.values = values
    }

    public init(width: Int, height: Int, channels: Int, repeating value: Float = 0) {
        self.init(width: width, height: height, channels: channels,
                  values: [Float](repeating: value, count: width * height * channels))
    }

    /// `img.astype(np.float32) * scale` of an 8-bit image (`scale` 1/255 gives [0, 1]).
    public init(_ image: PixelImage, scale: Float = 1) {
        self.init(width: image.width, height: image.height, channels: image.channels,
                  values: image.pixels.map { Float($0) * scale })
    }

    public subscript(y: Int, x: Int, c: Int) -> Float {
        get { values[(y * width + x) * channels + c] }
        set { values[(y * width + x) * channels + c] = newValue }
    }

    /// 8 bits per value as OpenCV's `saturate_cast<uchar>` of `value × scale`: rounded half to
    /// even (`cvRound`), clamped to [0, 255], NaN → 0.
    public func pixelImage(scale: Float = 1) -> PixelImage {
        var pixels = [UInt8](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { v in
            pixels.withUnsafeMutableBufferPointer { p in
                for i in v.indices {
                    let x = v[i] * scale
                    // Clamped before rounding (the same bytes as `saturatingByte`, in a loop that vectorizes).
                    p[i] = UInt8((x.isNaN ? 0 : Swift.min(Swift.max(x, 0), 255)).rounded(.toNearestOrEven))
                }
            }
        }
        return PixelImage(width: width, height: height, channels: channels, pixels: pixels)
    }
}

/// OpenCV's `saturate_cast<uchar>(float)`: round half to even, clamp to [0, 255], NaN → 0.
@inline(__always)
public func saturatingByte(_ v: Float) -> UInt8 {
    guard v.isFinite else { return v == .infinity ? 255 : 0 }
    let r = v.rounded(.toNearestOrEven)
    return r <= 0 ? 0 : r >= 255 ? 255 : UInt8(r)
}

/// A metric or degradation that cannot run on what it was given. One line.
public enum EvaluationError: Error, CustomStringConvertible, Equatable {
    /// The input is not what the computation takes (e.g. an image smaller than the window).
    case invalidInput(String)
    /// A model file (NIQE parameters, BRISQUE model, …) is missing or unreadable.
    case modelFile(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidInput(message): return message
        case let .modelFile(path, reason): return "\(path): \(reason)"
        }
    }
}
