// dlib's face chips (davisking/dlib `dlib/image_transforms/interpolation.h`: chip_details,
// get_face_chip_details, extract_image_chips; `image_pyramid.h`: pyramid_down<2>;
// `geometry/point_transforms.h`: find_similarity_transform; `geometry/drectangle.h`; read at
// commit 3d40bf5790ca9073c160cebb898800d9f33e12ab), from FaceRestore's five landmarks.
//
// dlib aligns a face by fitting a similarity transform (least squares, Umeyama) from points of a
// mean face in the chip to the landmarks in the image. Its 5-point predictor marks eye corners,
// which RetinaFace does not give, so the chip points here come from the 68-point mean face that
// get_face_chip_details uses for 68-point shapes: the centres of the two eyes (the means of points
// 36–41 and 42–47), the nose tip (30) and the mouth corners (48, 54), each padded as dlib pads
// them: (padding + p)/(2·padding + 1)·size. The chip is then cut out as extract_image_chip does:
// a rectangle and angle from the transform, a 5-tap pyramid_down<2> of the region while the chip
// is more than 2× smaller than it, and bilinear sampling (truncated to 8 bits; black outside).

import FaceRestoreImaging
import Foundation

/// Where a chip lies in an image: dlib's `chip_details` (a rectangle with inclusive corners, its
/// rotation about its centre in radians, and the chip's size).
public struct DlibChipDetails: Sendable, Equatable, Codable {
    public var left: Double, top: Double, right: Double, bottom: Double
    public var angle: Double
    public var rows: Int, cols: Int

    public init(left: Double, top: Double, right: Double, bottom: Double, angle: Double, rows: Int, cols: Int) {
        (self.left, self.top, self.right, self.bottom, self.angle, self.rows, self.cols) = (left, top, right, bottom, angle, rows, cols)
    }

    var width: Double { left > right || top > bottom ? 0 : right - left + 1 }
    var height: Double { left > right || top > bottom ? 0 : bottom - top + 1 }
    var area: Double { width * height }
    var center: (x: Double, y: Double) { ((left + right) / 2, (top + bottom) / 2) }
}

public enum DlibFaceChip {
    /// dlib's chip size and padding for face recognition (`compute_face_descriptor`).
    public static let size = 150
    public static let padding = 0.25

    /// dlib's 68-point mean face (points 17–67, x then y, in the unit square), as listed in
    /// get_face_chip_details.
    static let meanFaceX: [Double] = [
        0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124,
        0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036,
        0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
        0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
        0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
        0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
        0.553364, 0.490127, 0.42689,
    ]
    static let meanFaceY: [Double] = [
        0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891,
        0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326,
        0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733,
        0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099,
        0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
        0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746,
        0.784792, 0.824182, 0.831803, 0.824182,
    ]

    /// The mean face's five points in FaceRestore's landmark order (the eye on the image's left,
    /// the other eye, nose tip, left and right mouth corner), in the unit square.
    public static let templateFivePoints: [(x: Double, y: Double)] = {
        func p(_ i: Int) -> (x: Double, y: Double) { (meanFaceX[i - 17], meanFaceY[i - 17]) }
        func mean(_ r: ClosedRange<Int>) -> (x: Double, y: Double) {
            let ps = r.map(p)
            return (ps.map(\.x).reduce(0, +) / Double(ps.count), ps.map(\.y).reduce(0, +) / Double(ps.count))
        }
        return [mean(36...41), mean(42...47), p(30), p(48), p(54)]
    }()

    /// The similarity (least squares; for a proper rotation the same as dlib's Umeyama fit)
    /// mapping `from` onto `to`: x' = a·x − b·y + tx, y' = b·x + a·y + ty.
    static func similarity(from: [(x: Double, y: Double)], to: [(x: Double, y: Double)]) -> (a: Double, b: Double, tx: Double, ty: Double) {
        let n = Double(from.count)
        let mfx = from.map(\.x).reduce(0, +) / n, mfy = from.map(\.y).reduce(0, +) / n
        let mtx = to.map(\.x).reduce(0, +) / n, mty = to.map(\.y).reduce(0, +) / n
        var sxx = 0.0, dot = 0.0, cross = 0.0
        for (f, t) in zip(from, to) {
            let (fx, fy, tx, ty) = (f.x - mfx, f.y - mfy, t.x - mtx, t.y - mty)
            sxx += fx * fx + fy * fy
            dot += fx * tx + fy * ty
            cross += fx * ty - fy * tx
        }
        let a = sxx > 0 ? dot / sxx : 1, b = sxx > 0 ? cross / sxx : 0
        return (a, b, mtx - (a * mfx - b * mfy), mty - (b * mfx + a * mfy))
    }

    /// dlib's `chip_details(chip_points, img_points, chip_dims(size, size))` for the five
    /// landmarks (image pixels, FaceRestore's order): get_face_chip_details with the mean face's
    /// eye centres, nose tip and mouth corners.
    public static func details(landmarks: [(x: Double, y: Double)], size: Int = DlibFaceChip.size,
                               padding: Double = DlibFaceChip.padding) throws -> DlibChipDetails {
        guard landmarks.count == 5, landmarks.allSatisfy({ $0.x.isFinite && $0.y.isFinite && abs($0.x) < 1e7 && abs($0.y) < 1e7 }) else {
            throw EvaluationError.invalidInput("dlib face chip: five finite landmarks are needed, got \(landmarks.count)")
        }
        guard size > 0, size <= 4096, padding >= 0, padding <= 10 else {
            throw EvaluationError.invalidInput("dlib face chip: size \(size), padding \(padding)")
        }
        let chipPoints = templateFivePoints.map { p in
            (x: (padding + p.x) / (2 * padding + 1) * Double(size), y: (padding + p.y) / (2 * padding + 1) * Double(size))
        }
        let t = similarity(from: chipPoints, to: landmarks)
        // M·(1, 0) = (a, b): the angle and scale; the rectangle is centred on the chip centre's image.
        let angle = atan2(t.b, t.a), scale = (t.a * t.a + t.b * t.b).squareRoot()
        let c = Double(size) / 2
        let cx = t.a * c - t.b * c + t.tx, cy = t.b * c + t.a * c + t.ty
        let w = Double(size) * scale - 1, h = Double(size) * scale - 1
        return DlibChipDetails(left: cx - w / 2, top: cy - h / 2, right: cx + w / 2, bottom: cy + h / 2, angle: angle, rows: size, cols: size)
    }

    /// The five landmarks of an aligned 512² face (GFP-GAN's FFHQ template, as FaceRestore aligns
    /// faces) scaled to a `side`² face.
    public static func ffhqLandmarks(side: Int) -> [(x: Double, y: Double)] {
        let ffhq512: [(x: Double, y: Double)] = [
            (192.98138, 239.94708), (318.90277, 240.1936), (256.63416, 314.01935), (201.26117, 371.41043), (313.08905, 371.15118),
        ]
        return ffhq512.map { (x: $0.x * Double(side) / 512, y: $0.y * Double(side) / 512) }
    }

    // MARK: extract_image_chip

    /// An interleaved 8-bit image region (any channel count).
    struct Plane8 {
        var width: Int, height: Int, channels: Int
        var pixels: [UInt8]
    }

    /// dlib's pyramid_down<2> for 8-bit colour images: [1 4 6 4 1] along rows (every other
    /// column), then along columns (every other row), integer sums ÷ 256 truncated; the output is
    /// ((h − 3)/2) × ((w − 3)/2), and empty for an input of 8 or fewer rows or columns.
    static func pyramidDown(_ src: Plane8) -> Plane8 {
        let (w, h, ch) = (src.width, src.height, src.channels)
        guard w > 8, h > 8 else { return Plane8(width: 0, height: 0, channels: ch, pixels: []) }
        let tw = (w - 3) / 2, oh = (h - 3) / 2
        var temp = [Int](repeating: 0, count: h * tw * ch)
        src.pixels.withUnsafeBufferPointer { s in
            for r in 0..<h {
                for c in 0..<tw {
                    let base = (r * w + 2 * c) * ch
                    for k in 0..<ch {
                        temp[(r * tw + c) * ch + k] = Int(s[base + k]) + 4 * Int(s[base + ch + k]) + 6 * Int(s[base + 2 * ch + k])
                            + 4 * Int(s[base + 3 * ch + k]) + Int(s[base + 4 * ch + k])
                    }
                }
            }
        }
        var out = [UInt8](repeating: 0, count: oh * tw * ch)
        let row = tw * ch
        for dr in 0..<oh {
            let r = 2 + 2 * dr
            for i in 0..<row {
                let v = temp[(r - 2) * row + i] + 4 * temp[(r - 1) * row + i] + 6 * temp[r * row + i] + 4 * temp[(r + 1) * row + i]
                    + temp[(r + 2) * row + i]
                out[dr * row + i] = UInt8(truncatingIfNeeded: v / 256)
            }
        }
        return Plane8(width: tw, height: oh, channels: ch, pixels: out)
    }

    /// pyramid_down<2>'s rect_down: each corner p ↦ p/2 − (1.25, 0.75).
    static func rectDown(_ r: DlibChipDetails) -> DlibChipDetails {
        var d = r
        d.left = r.left / 2 - 1.25
        d.right = r.right / 2 - 1.25
        d.top = r.top / 2 - 0.75
        d.bottom = r.bottom / 2 - 0.75
        return d
    }

    static func rotate(_ p: (x: Double, y: Double), about c: (x: Double, y: Double), _ angle: Double) -> (x: Double, y: Double) {
        let (s, co) = (sin(angle), cos(angle))
        let (x, y) = (p.x - c.x, p.y - c.y)
        return (co * x - s * y + c.x, s * x + co * y + c.y)
    }

    /// `extract_image_chip(image, details)` with bilinear interpolation, for an 8-bit image of
    /// any channel order (each channel is sampled alike).
    public static func extract(from image: PixelImage, _ details: DlibChipDetails) throws -> PixelImage {
        let (rows, cols, ch) = (details.rows, details.cols, image.channels)
        guard rows > 0, cols > 0, rows <= 4096, cols <= 4096,
              [details.left, details.top, details.right, details.bottom, details.angle].allSatisfy({ $0.isFinite && abs($0) < 1e9 }) else {
            throw EvaluationError.invalidInput("dlib face chip: invalid chip details \(details)")
        }
        let size = Double(rows * cols)
        var out = [UInt8](repeating: 0, count: rows * cols * ch)
        let empty = details.left > details.right || details.top > details.bottom
        if empty || image.width == 0 || image.height == 0 {
            return PixelImage(width: cols, height: rows, channels: ch, pixels: out)
        }
        // How deep a pyramid, and the region it covers (the rotated rectangle, grown by a border
        // that doubles with each level, within the image; dlib rounds it to whole pixels).
        var depth = 0
        var grow = 2.0
        var r = rectDown(details)
        while r.area > size {
            r = rectDown(r)
            depth += 1
            grow = grow * 2 + 2
        }
        let c = details.center
        let corners = [(details.left, details.top), (details.right, details.top), (details.left, details.bottom), (details.right, details.bottom)]
            .map { rotate((x: $0.0, y: $0.1), about: c, details.angle) }
        let minX = corners.reduce(Double.infinity) { min($0, $1.x) }, maxX = corners.reduce(-Double.infinity) { max($0, $1.x) }
        let minY = corners.reduce(Double.infinity) { min($0, $1.y) }, maxY = corners.reduce(-Double.infinity) { max($0, $1.y) }
        let gl = max(minX - grow, 0), gt = max(minY - grow, 0)
        let gr = min(maxX + grow, Double(image.width - 1)), gb = min(maxY + grow, Double(image.height - 1))
        let bl = Int(gl.rounded(.toNearestOrAwayFromZero)), bt = Int(gt.rounded(.toNearestOrAwayFromZero))
        let br = Int(gr.rounded(.toNearestOrAwayFromZero)), bb = Int(gb.rounded(.toNearestOrAwayFromZero))
        guard bl <= br, bt <= bb else { return PixelImage(width: cols, height: rows, channels: ch, pixels: out) }
        // The region (sub_image), then its pyramid levels.
        var region = Plane8(width: br - bl + 1, height: bb - bt + 1, channels: ch, pixels: [])
        region.pixels.reserveCapacity(region.width * region.height * ch)
        for y in bt...bb {
            let start = (y * image.width + bl) * ch
            region.pixels += image.pixels[start..<(start + region.width * ch)]
        }
        // The level to sample (−1: the region itself) and the chip rectangle in its coordinates.
        var level = -1
        var rect = details
        rect.left -= Double(bl); rect.right -= Double(bl); rect.top -= Double(bt); rect.bottom -= Double(bt)
        while rectDown(rect).area > size {
            level += 1
            rect = rectDown(rect)
        }
        var source = region
        if level >= 0 {
            for _ in 0...level { source = pyramidDown(source) }
        }
        // The chip's corners (0,0), (cols−1, 0), (0, rows−1) onto the rotated rectangle.
        let rc = rect.center
        let p0 = rotate((rect.left, rect.top), about: rc, details.angle)
        let p1 = rotate((rect.right, rect.top), about: rc, details.angle)
        let p2 = rotate((rect.left, rect.bottom), about: rc, details.angle)
        let m00 = cols > 1 ? (p1.x - p0.x) / Double(cols - 1) : 0, m10 = cols > 1 ? (p1.y - p0.y) / Double(cols - 1) : 0
        let m01 = rows > 1 ? (p2.x - p0.x) / Double(rows - 1) : 0, m11 = rows > 1 ? (p2.y - p0.y) / Double(rows - 1) : 0
        let (sw, sh) = (source.width, source.height)
        source.pixels.withUnsafeBufferPointer { s in
            for y in 0..<rows {
                for x in 0..<cols {
                    let px = m00 * Double(x) + m01 * Double(y) + p0.x
                    let py = m10 * Double(x) + m11 * Double(y) + p0.y
                    let fl = px.rounded(.down), ft = py.rounded(.down)
                    guard fl >= 0, ft >= 0, fl + 1 < Double(sw), ft + 1 < Double(sh) else { continue }
                    let left = Int(fl), top = Int(ft)
                    let lr = px - fl, tb = py - ft
                    let i00 = (top * sw + left) * ch, i01 = i00 + ch, i10 = i00 + sw * ch, i11 = i10 + ch
                    for k in 0..<ch {
                        let v = (1 - tb) * ((1 - lr) * Double(s[i00 + k]) + lr * Double(s[i01 + k]))
                            + tb * ((1 - lr) * Double(s[i10 + k]) + lr * Double(s[i11 + k]))
                        out[(y * cols + x) * ch + k] = UInt8(max(0, min(255, v)))
                    }
                }
            }
        }
        return PixelImage(width: cols, height: rows, channels: ch, pixels: out)
    }
}
