// `cv2.warpAffine` with bilinear interpolation and a constant border, as facexlib aligns faces and
// pastes them back. Ported from OpenCV 4.6 `modules/imgproc/src/imgwarp.cpp` (`warpAffine`,
// `WarpAffineInvoker`, `remapBilinear`, `initInterTab2D`). What the reference hides:
//   - the matrix is inverted in double, then source coordinates are stepped in 10-bit fixed
//     point: X = (round((m1·y + m2)·1024) + 16 + round(m0·x·1024)) >> 5, i.e. snapped to 1/32 px;
//   - 8-bit images blend the four neighbours with integer weights (32−i)(32−j) … summing to 1024
//     and round with (Σ + 512) >> 10; float images use the same weights as floats;
//   - neighbours outside the source take the border value one by one, so edges fade into it;
//   - INTER_AREA (flags=3) acts as bilinear here.

import Foundation

/// A single-channel floating-point image (a mask), row-major.
public struct Plane<Element: BinaryFloatingPoint & Sendable>: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public var values: [Element]

    public init(width: Int, height: Int, values: [Element]) {
        precondition(values.count == width * height, "\(width)×\(height) plane needs \(width * height) values, got \(values.count)")
        self.width = width
        self.height = height
        self.values = values
    }

    public init(width: Int, height: Int, repeating value: Element) {
        self.init(width: width, height: height, values: [Element](repeating: value, count: width * height))
    }
}

/// Per destination pixel: the top-left source neighbour and the 1/32-pixel fraction (ty·32 + tx).
struct WarpSampler {
    let a: Double, b: Double, c: Double, d: Double, e: Double, f: Double
    let adelta: [Int], bdelta: [Int]

    let originY: Int

    /// `origin`: where pixel (0, 0) of the output sits in the full destination image, so a
    /// region is computed with exactly the coordinates the full warp would use.
    init(_ forward: AffineMatrix, width: Int, origin: (x: Int, y: Int)) {
        let inv = forward.inverted().m
        (a, b, c, d, e, f) = (inv[0], inv[1], inv[2], inv[3], inv[4], inv[5])
        let (ia, id) = (inv[0], inv[3])
        adelta = (0..<width).map { Self.round(ia * Double($0 + origin.x) * 1024) }
        bdelta = (0..<width).map { Self.round(id * Double($0 + origin.x) * 1024) }
        originY = origin.y
    }

    /// `saturate_cast<int>(double)`: round half to even, saturating.
    static func round(_ v: Double) -> Int {
        guard v.isFinite else { return v > 0 ? Int(Int32.max) : Int(Int32.min) }
        return Int(min(max(v.rounded(.toNearestOrEven), Double(Int32.min)), Double(Int32.max)))
    }

    /// Calls `body(x, sx, sy, fraction)` for each pixel of row `y`.
    @inline(__always)
    func row(_ y: Int, _ body: (Int, Int, Int, Int) -> Void) {
        let x0 = Self.round((b * Double(y + originY) + c) * 1024) + 16
        let y0 = Self.round((e * Double(y + originY) + f) * 1024) + 16
        for x in 0..<adelta.count {
            let X = (x0 + adelta[x]) >> 5, Y = (y0 + bdelta[x]) >> 5
            let sx = min(max(X >> 5, Int(Int16.min)), Int(Int16.max))
            let sy = min(max(Y >> 5, Int(Int16.min)), Int(Int16.max))
            body(x, sx, sy, (Y & 31) * 32 + (X & 31))
        }
    }

    /// The four bilinear weights for a fraction, scaled by 1024 (exact in any type).
    @inline(__always)
    static func weights(_ fraction: Int) -> (Int, Int, Int, Int) {
        let ty = fraction >> 5, tx = fraction & 31
        return ((32 - ty) * (32 - tx), (32 - ty) * tx, ty * (32 - tx), ty * tx)
    }
}

extension PixelImage {
    /// `cv2.warpAffine(self, m, (W, H), INTER_LINEAR, BORDER_CONSTANT, borderValue=border)`, or
    /// the `width × height` region of it whose top-left pixel is `origin`. With `within`, this
    /// image is the region at (x, y) of a `width × height` photo that `m` maps from (a streamed
    /// photo's face region): the same values as warping the whole photo wherever the samples fall
    /// inside the region.
    public func warpedAffine(_ m: AffineMatrix, width dw: Int, height dh: Int, border: [UInt8],
                             origin: (x: Int, y: Int) = (0, 0),
                             within photo: (x: Int, y: Int, width: Int, height: Int)? = nil) -> PixelImage {
        let cn = channels
        precondition(border.count >= cn, "border needs \(cn) values")
        let sampler = WarpSampler(m, width: dw, origin: origin)
        var out = [UInt8](repeating: 0, count: dw * dh * cn)
        let (w, h) = (photo?.width ?? width, photo?.height ?? height)
        let (ox, oy, rw, rh) = (photo?.x ?? 0, photo?.y ?? 0, width, height)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<dh {
                    sampler.row(y) { x, sx, sy, fr in
                        let o = (y * dw + x) * cn
                        if sx >= w || sx + 1 < 0 || sy >= h || sy + 1 < 0 {
                            for k in 0..<cn { dst[o + k] = border[k] }
                            return
                        }
                        let (w0, w1, w2, w3) = WarpSampler.weights(fr)
                        let in0 = sx >= 0 && sx < w, in1 = sx + 1 >= 0 && sx + 1 < w
                        let r0 = sy >= 0 && sy < h, r1 = sy + 1 >= 0 && sy + 1 < h
                        for k in 0..<cn {
                            @inline(__always) func at(_ xx: Int, _ yy: Int, _ inside: Bool) -> Int {
                                let (rx, ry) = (xx - ox, yy - oy)
                                return inside && rx >= 0 && rx < rw && ry >= 0 && ry < rh ? Int(src[(ry * rw + rx) * cn + k]) : Int(border[k])
                            }
                            let v = at(sx, sy, in0 && r0) * w0 + at(sx + 1, sy, in1 && r0) * w1
                                + at(sx, sy + 1, in0 && r1) * w2 + at(sx + 1, sy + 1, in1 && r1) * w3
                            dst[o + k] = UInt8(clamping: (v + 512) >> 10)
                        }
                    }
                }
            }
        }
        return PixelImage(width: dw, height: dh, channels: cn, pixels: out)
    }
}

extension Plane {
    /// `cv2.warpAffine(self, m, (W, H))` on a float32/float64 plane: bilinear (also what
    /// flags=3 gives), constant border `border`; or the region of it at `origin`.
    @_specialize(where Element == Double)
    @_specialize(where Element == Float)
    public func warpedAffine(_ m: AffineMatrix, width dw: Int, height dh: Int, border: Element = 0,
                             origin: (x: Int, y: Int) = (0, 0)) -> Plane {
        let sampler = WarpSampler(m, width: dw, origin: origin)
        var out = [Element](repeating: 0, count: dw * dh)
        let (w, h) = (width, height)
        let table: [(Element, Element, Element, Element)] = (0..<1024).map { fr in
            let (a, b, c, d) = WarpSampler.weights(fr)
            return (Element(Float(a) / 1024), Element(Float(b) / 1024), Element(Float(c) / 1024), Element(Float(d) / 1024))
        }
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<dh {
                    sampler.row(y) { x, sx, sy, fr in
                        if sx >= w || sx + 1 < 0 || sy >= h || sy + 1 < 0 { dst[y * dw + x] = border; return }
                        let in0 = sx >= 0 && sx < w, in1 = sx + 1 >= 0 && sx + 1 < w
                        let r0 = sy >= 0 && sy < h, r1 = sy + 1 >= 0 && sy + 1 < h
                        let v00 = in0 && r0 ? src[sy * w + sx] : border
                        let v01 = in1 && r0 ? src[sy * w + sx + 1] : border
                        let v10 = in0 && r1 ? src[(sy + 1) * w + sx] : border
                        let v11 = in1 && r1 ? src[(sy + 1) * w + sx + 1] : border
                        let t = table[fr]
                        var s = v00 * t.0
                        s += v01 * t.1
                        s += v10 * t.2
                        s += v11 * t.3
                        dst[y * dw + x] = s
                    }
                }
            }
        }
        return Plane(width: dw, height: dh, values: out)
    }
}
