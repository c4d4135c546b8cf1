// Whole-photo restoration as `GFPGANer.enhance(img, has_aligned=False, paste_back=True)` runs it
// with facexlib's `FaceRestoreHelper` (gfpgan 1.3.8 `gfpgan/utils.py`, commit 7552a77; facexlib
// 0.3.0 `facexlib/utils/face_restoration_helper.py`):
//   detect (RetinaFace, score > 0.97, NMS 0.4) → skip faces with eye distance < 5 px →
//   [only the face nearest the centre] → LMedS similarity onto the FFHQ 5-point template →
//   warpAffine to 512² with the (135,133,132) border → GFPGAN → inverse affine ×upscale
//   (+0.5·upscale when upscaling) → paste onto the LANCZOS4-upscaled photo through a soft mask:
//   ParseNet's face classes blurred twice (101, σ 11) with a 10 px frame cleared, or, without a
//   parser, the eroded and blurred warped square. Faces blend one after another in float
//   (float64 with the parse mask, float32 without), and the result is truncated to 8 bits.
// Work is confined to each face's region of the output: outside it the mask is 0 and upstream's
// blend returns the background exactly, so the result is the same as computing every full-size
// plane, without their memory.

import FaceRestoreEngine
import FaceRestoreImaging
import FaceRestoreModels
import Foundation

/// Options of a whole-photo restoration (upstream's `inference_gfpgan.py` flags).
public struct PhotoOptions: Sendable, Equatable {
    /// Final upsampling of the whole image (`-s/--upscale`, default 2).
    public var upscale: Int = 2
    /// Keep only the face nearest the image centre (`--only-center-face`).
    public var onlyCenterFace = false
    /// Detection score threshold (facexlib's 0.97 in GFPGAN).
    public var detectionThreshold: Float = 0.97
    /// Blend of the restored face with the aligned input crop: 1 = restored (upstream), 0 = input
    /// (GPEN's `--alpha`).
    public var weight: Double = 1
    /// Fresh StyleGAN noise from this seed (see `FaceRestorer.noise(seed:)`); nil = stored noise.
    public var seed: UInt64?

    public init(upscale: Int = 2, onlyCenterFace: Bool = false, detectionThreshold: Float = 0.97, weight: Double = 1,
                seed: UInt64? = nil) {
        self.upscale = upscale
        self.onlyCenterFace = onlyCenterFace
        self.detectionThreshold = detectionThreshold
        self.weight = weight
        self.seed = seed
    }
}

/// One face found and restored in a photo.
public struct RestoredFace: Sendable {
    public var detection: DetectedFace
    /// Photo → aligned-face affine (`cv2.estimateAffinePartial2D` result).
    public var affine: AffineMatrix
    /// The aligned input crop (upstream's `cropped_faces`).
    public var cropped: PixelImage
    /// The restored face (upstream's `restored_faces`).
    public var restored: PixelImage

    /// Crop and restoration side by side (upstream's `cmp/`).
    public var comparison: PixelImage { PixelImage.sideBySide(cropped, restored) }
}

/// The result of restoring a whole photo.
public struct PhotoRestoration: Sendable {
    public var faces: [RestoredFace]
    /// Faces the detector found, before the eye-distance and centre-face filters.
    public var detectedCount: Int
    /// The restored photo, upscaled (upstream's `restored_imgs`).
    public var image: PixelImage
    public var timings: RestoreTimings
    /// Whether the paste-back used the face-parsing mask (else the soft square mask).
    public var usedParsing: Bool
}

/// Detector + restorer (+ optional face parser). Immutable and `Sendable`.
public struct PhotoRestorer: Sendable {
    public let restorer: FaceRestorer
    public let detector: RetinaFace
    public let parser: ParseNet?
    /// Upsamples the background (`--bg-upsampler realesrgan`); nil resizes it with LANCZOS4.
    public let background: RealESRGANer?
    /// GPEN's paste mask without a parser (the same for every face), made once here.
    let gpenSquare: Plane<Float>?

    /// facexlib's 5-point FFHQ template for a 512² face.
    public static let template512: [(x: Double, y: Double)] = [
        (192.98138, 239.94708), (318.90277, 240.1936), (256.63416, 314.01935), (201.26117, 371.41043), (313.08905, 371.15118),
    ]
    public static let cropBorder: [UInt8] = [135, 133, 132]

    public init(restorer: FaceRestorer, detector: RetinaFace, parser: ParseNet?, background: RealESRGANer? = nil) {
        self.restorer = restorer
        self.detector = detector
        self.parser = parser
        self.background = background
        gpenSquare = restorer.isGPEN && parser == nil ? Self.gpenSquareMask(size: restorer.faceSize) : nil
    }

    /// Faces as `GFPGANer.enhance` keeps them: detected, eye distance ≥ 5 px, optionally only the
    /// one nearest the centre.
    public func faces(in image: PixelImage, options: PhotoOptions, eyeDistanceFilter: Bool = true,
                      context: ComputeContext) throws -> (kept: [DetectedFace], detected: Int) {
        let all = try detector.detect(bgr: image.pixels, width: image.width, height: image.height,
                                      threshold: options.detectionThreshold, context)
        var kept = eyeDistanceFilter ? all.filter { $0.eyeDistance >= 5 } : all
        if options.onlyCenterFace, !kept.isEmpty {
            let (cx, cy) = (Double(image.width) / 2, Double(image.height) / 2)
            func distance(_ f: DetectedFace) -> Double {
                let fx = Double((f.box[0] + f.box[2]) / 2), fy = Double((f.box[1] + f.box[3]) / 2)
                return ((fx - cx) * (fx - cx) + (fy - cy) * (fy - cy)).squareRoot()
            }
            let best = kept.indices.min { distance(kept[$0]) < distance(kept[$1]) }!
            kept = [kept[best]]
        }
        return (kept, all.count)
    }

    /// Restores every face of an 8-bit BGR photo and pastes them back (GFPGAN's pipeline, or
    /// GPEN's for a GPEN model: GPENPhoto.swift). `backgroundProgress` gets (tile, tiles) from the
    /// background upsampler.
    public func restore(_ image: PixelImage, options: PhotoOptions = PhotoOptions(), context: ComputeContext,
                        backgroundProgress: ((Int, Int) -> Void)? = nil) throws -> PhotoRestoration {
        precondition(image.channels == 3, "restore(_:) needs a BGR image")
        guard options.upscale >= 1 else { throw ModelError.invalidInput("upscale must be at least 1, got \(options.upscale)") }
        if restorer.isGPEN {
            return try restoreGPEN(image, options: options, context: context, backgroundProgress: backgroundProgress)
        }
        var timings = RestoreTimings()
        let (kept, detected) = try timings.measure(\.detect) { try self.faces(in: image, options: options, context: context) }
        let size = restorer.faceSize
        let factor = Double(size) / 512
        let template = Self.template512.map { p -> (x: Double, y: Double) in (x: p.x * factor, y: p.y * factor) }
        var faces: [RestoredFace] = []
        for face in kept {
            let points = (0..<5).map { (x: Double(face.landmarks[2 * $0]), y: Double(face.landmarks[2 * $0 + 1])) }
            guard let affine = SimilarityFit.estimateLMedS(from: points, to: template) else { continue }
            let cropped = timings.measure(\.align) {
                image.warpedAffine(affine, width: size, height: size, border: Self.cropBorder)
            }
            var restored = try restorer.restoreAligned(cropped, seed: options.seed, context: context)
            timings.network += restored.timings.network
            if options.weight != 1 { restored.restored = PixelImage.blend(restored.input, restored.restored, weight: options.weight) }
            faces.append(RestoredFace(detection: face, affine: affine, cropped: cropped, restored: restored.restored))
        }
        let useParse = parser != nil
        // `bg_upsampler.enhance(img, outscale=upscale)`, then facexlib resizes it to (w·s, h·s)
        // with LANCZOS4: the same size, which OpenCV returns unchanged.
        let (w, h) = (image.width * options.upscale, image.height * options.upscale)
        let upsampled = try timings.measure(\.background) { () throws -> PixelImage in
            guard let background else { return image.resizedLanczos4(width: w, height: h) }
            let up = try background.enhance(image, outscale: Double(options.upscale), context: context, progress: backgroundProgress)
            return up.width == w && up.height == h ? up : up.resizedLanczos4(width: w, height: h)
        }
        let out = try timings.measure(\.paste) {
            try paste(faces, onto: upsampled, upscale: options.upscale, context: context)
        }
        return PhotoRestoration(faces: faces, detectedCount: detected, image: out, timings: timings, usedParsing: useParse)
    }

    // MARK: paste-back

    /// `paste_faces_to_input_image` onto the upsampled photo.
    func paste(_ faces: [RestoredFace], onto upsampled: PixelImage, upscale: Int, context: ComputeContext) throws -> PixelImage {
        let (w, h) = (upsampled.width, upsampled.height)
        var background = upsampled
        guard !faces.isEmpty else { return background }
        let inverses = faces.map { face -> AffineMatrix in
            let inv = face.affine.inverted().scaled(by: Double(upscale))
            return upscale > 1 ? inv.translated(by: 0.5 * Double(upscale), 0.5 * Double(upscale)) : inv
        }
        // Each face's mask is the warped face square eroded/blurred inward; `margin` covers the
        // bilinear footprint plus, for the soft mask, the blur's outward spread.
        let rois = zip(faces, inverses).map { face, inv in
            region(of: inv, faceSize: face.restored.width, margin: parser == nil ? softMaskMargin(inv, face.restored.width, upscale) : 2,
                   width: w, height: h)
        }
        // Float canvas over the union of the regions (upstream blends in float without rounding
        // between faces).
        let union = rois.dropFirst().reduce(rois[0]) { $0.union($1) }
        var canvas = Canvas(rect: union, from: background)
        for (i, face) in faces.enumerated() {
            let roi = rois[i]
            let inv = inverses[i], origin = (x: roi.x, y: roi.y)
            let restoredWarp = face.restored.warpedAffine(inv, width: roi.width, height: roi.height, border: [0, 0, 0], origin: origin)
            if let parser {
                let mask = try parseMask(face.restored, parser: parser, context: context)
                    .warpedAffine(inv, width: roi.width, height: roi.height, origin: origin)
                canvas.blend(restoredWarp, mask: mask.values, at: roi)
            } else {
                let (mask, pasted) = softMask(inv, restoredWarp, faceSize: face.restored.width, upscale: upscale, roi: roi)
                canvas.blendFloat(pasted, mask: mask.values, at: roi)
            }
        }
        canvas.truncate(into: &background)
        return background
    }

    /// facexlib's parse mask for a restored face: 255 on face classes, blurred twice, border cleared, /255.
    func parseMask(_ restored: PixelImage, parser: ParseNet, context: ComputeContext) throws -> Plane<Double> {
        let s = 512
        let input = restored.resizedLinear(width: s, height: s)
        let labels = try parser.labels(FaceTensor.normalized(bgr: input), context)
        let faceClasses: Set<UInt8> = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15]
        var mask = Plane<Double>(width: s, height: s, values: labels.map { faceClasses.contains($0) ? 255 : 0 })
        mask = mask.gaussianBlurred(size: 101, sigma: 11).gaussianBlurred(size: 101, sigma: 11)
        for y in 0..<s {
            for x in 0..<s where y < 10 || y >= s - 10 || x < 10 || x >= s - 10 { mask.values[y * s + x] = 0 }
        }
        mask.values = mask.values.map { $0 / 255 }
        // `cv2.resize(mask, restored_face.shape[:2])`: a copy when the face is 512².
        precondition(restored.width == s && restored.height == s, "the parse mask path expects 512² faces")
        return mask
    }

    /// The soft square mask (non-parse path), computed over `roi` (which holds every non-zero value).
    func softMask(_ inv: AffineMatrix, _ restoredWarp: PixelImage, faceSize: Int, upscale: Int, roi: Rect)
        -> (mask: Plane<Float>, pasted: [Float]) {
        let ones = Plane<Float>(width: faceSize, height: faceSize, repeating: 1)
        let warped = ones.warpedAffine(inv, width: roi.width, height: roi.height, origin: (roi.x, roi.y))
        let erosion = warped.eroded(size: 2 * upscale)
        let pasted = restoredWarp.pixels.indices.map { erosion.values[$0 / 3] * Float(restoredWarp.pixels[$0]) }
        let edge = Int(erosion.sum.squareRoot()) / 20
        let center = erosion.eroded(size: edge * 2 == 0 ? 3 : edge * 2)
        return (center.gaussianBlurred(size: edge * 2 + 1, sigma: 0), pasted)
    }

    func softMaskMargin(_ inv: AffineMatrix, _ faceSize: Int, _ upscale: Int) -> Int {
        // w_edge ≤ √(area of the warped square)/20; the blur spreads by w_edge.
        let scale = (inv.m[0] * inv.m[0] + inv.m[3] * inv.m[3]).squareRoot()
        return Int(Double(faceSize) * scale / 20) * 2 + 2 * upscale + 4
    }

    /// The integer rectangle of the output covered by the face square under `inv`, plus `margin`.
    func region(of inv: AffineMatrix, faceSize: Int, margin: Int, width: Int, height: Int) -> Rect {
        let s = Double(faceSize)
        let corners = [(0.0, 0.0), (s, 0), (0, s), (s, s)].map { inv.apply((x: $0.0, y: $0.1)) }
        let x0 = Int((corners.map(\.x).min()!).rounded(.down)) - margin, x1 = Int((corners.map(\.x).max()!).rounded(.up)) + margin
        let y0 = Int((corners.map(\.y).min()!).rounded(.down)) - margin, y1 = Int((corners.map(\.y).max()!).rounded(.up)) + margin
        let r = Rect(x: max(x0, 0), y: max(y0, 0), width: max(min(x1, width) - max(x0, 0), 1), height: max(min(y1, height) - max(y0, 0), 1))
        return r.clamped(width: width, height: height)
    }
}

/// An integer rectangle in an image.
struct Rect: Equatable {
    var x: Int, y: Int, width: Int, height: Int

    func union(_ o: Rect) -> Rect {
        let x0 = min(x, o.x), y0 = min(y, o.y)
        return Rect(x: x0, y: y0, width: max(x + width, o.x + o.width) - x0, height: max(y + height, o.y + o.height) - y0)
    }

    func clamped(width w: Int, height h: Int) -> Rect {
        let x0 = min(max(x, 0), max(w - 1, 0)), y0 = min(max(y, 0), max(h - 1, 0))
        return Rect(x: x0, y: y0, width: max(min(width, w - x0), 1), height: max(min(height, h - y0), 1))
    }
}

/// The float image upstream accumulates faces in, kept only over `rect`.
struct Canvas {
    let rect: Rect
    var values: [Double]

    init(rect: Rect, from image: PixelImage) {
        self.rect = rect
        var v = [Double](repeating: 0, count: rect.width * rect.height * 3)
        for y in 0..<rect.height {
            for x in 0..<rect.width {
                for c in 0..<3 { v[(y * rect.width + x) * 3 + c] = Double(image.pixels[((rect.y + y) * image.width + rect.x + x) * 3 + c]) }
            }
        }
        values = v
    }

    /// `out = m·face + (1 − m)·out` in float64 (the parse-mask path).
    mutating func blend(_ face: PixelImage, mask: [Double], at roi: Rect) {
        for y in 0..<roi.height {
            for x in 0..<roi.width {
                let m = mask[y * roi.width + x]
                let o = ((roi.y - rect.y + y) * rect.width + roi.x - rect.x + x) * 3
                for c in 0..<3 { values[o + c] = m * Double(face.pixels[(y * roi.width + x) * 3 + c]) + (1 - m) * values[o + c] }
            }
        }
    }

    /// The same in float32 (the soft-mask path: mask, pasted face and products are float32).
    mutating func blendFloat(_ pasted: [Float], mask: [Float], at roi: Rect) {
        for y in 0..<roi.height {
            for x in 0..<roi.width {
                let m = mask[y * roi.width + x]
                let o = ((roi.y - rect.y + y) * rect.width + roi.x - rect.x + x) * 3
                for c in 0..<3 {
                    let v = m * pasted[(y * roi.width + x) * 3 + c] + (1 - m) * Float(values[o + c])
                    values[o + c] = Double(v)
                }
            }
        }
    }

    /// `astype(np.uint8)`: truncation toward zero.
    func truncate(into image: inout PixelImage) {
        for y in 0..<rect.height {
            for x in 0..<rect.width {
                for c in 0..<3 {
                    let v = values[(y * rect.width + x) * 3 + c]
                    image.pixels[((rect.y + y) * image.width + rect.x + x) * 3 + c] = UInt8(clamping: Int(v.rounded(.towardZero)))
                }
            }
        }
    }
}

extension PixelImage {
    /// Two images of the same height side by side (`np.concatenate(axis=1)`).
    public static func sideBySide(_ a: PixelImage, _ b: PixelImage) -> PixelImage {
        precondition(a.height == b.height && a.channels == b.channels, "side by side needs equal heights and channels")
        let c = a.channels
        var px = [UInt8]()
        px.reserveCapacity((a.width + b.width) * a.height * c)
        for y in 0..<a.height {
            px += a.pixels[(y * a.width * c)..<((y + 1) * a.width * c)]
            px += b.pixels[(y * b.width * c)..<((y + 1) * b.width * c)]
        }
        return PixelImage(width: a.width + b.width, height: a.height, channels: c, pixels: px)
    }

    /// `round((1 − w)·a + w·b)` per value (the `-w/--weight` blend; w = 1 returns `b`).
    public static func blend(_ a: PixelImage, _ b: PixelImage, weight w: Double) -> PixelImage {
        if w == 1 { return b }
        let px = zip(a.pixels, b.pixels).map { UInt8(clamping: Int(((1 - w) * Double($0) + w * Double($1)).rounded())) }
        return PixelImage(width: b.width, height: b.height, channels: b.channels, pixels: px)
    }
}
