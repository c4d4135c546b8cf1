// How a model family turns a photo into restored faces and back: the steps around the network
// that its upstream pipeline fixes. GFP-GAN's is facexlib's `FaceRestoreHelper` as
// `GFPGANer.enhance` drives it (gfpgan 1.3.8 `gfpgan/utils.py`, commit 7552a77; facexlib 0.3.0
// `facexlib/utils/face_restoration_helper.py`); RestoreFormer and CodeFormer use the same helper.
// GPEN's is its own `face_enhancement.py` (yangxy/GPEN, commit 2c73670). A recipe comes with the
// model (`FaceRestorer.recipe`), so a restoration with default options does what upstream does
// for that model.

import Foundation

/// The steps of a whole-photo restoration that depend on the model family.
public struct Recipe: Sendable, Equatable, CustomStringConvertible {
    /// The pipeline a recipe reproduces.
    public enum Family: String, Sendable, CaseIterable {
        /// facexlib's `FaceRestoreHelper` (GFP-GAN; RestoreFormer and CodeFormer use it too).
        case facexlib
        /// yangxy/GPEN `FaceEnhancement`.
        case gpen
        /// sczhou/CodeFormer `inference_codeformer.py` with its `facelib` helper.
        case codeFormer
    }

    /// The five-point face template faces are aligned to.
    public enum Template: Sendable, Equatable {
        /// facexlib's FFHQ template for 512² faces, scaled to the model's face size.
        case ffhq512
        /// GPEN's 96×112 reference points made square, padded by 0.25 and scaled to the face size.
        case gpen
    }

    /// How the landmarks are fitted to the template.
    public enum Fit: Sendable, Equatable {
        /// `cv2.estimateAffinePartial2D(method=LMEDS)`; the paste-back uses its inverse.
        case lmeds
        /// Umeyama's least-squares similarity; the paste-back fits back with the scale fixed.
        case umeyama
    }

    /// How the network's [-1, 1] output becomes 8-bit pixels.
    public enum Rounding: Sendable, Equatable {
        /// basicsr's `tensor2img`: round half to even.
        case roundHalfEven
        /// GPEN's `tensor2img`: truncation.
        case truncate
    }

    /// The paste mask: the face-parsing mask and the fallback without a parser.
    public enum Mask: Sendable, Equatable {
        /// Face classes 1–13 and 15, 10 px frame cleared, blurred twice (101, σ 11); without a
        /// parser, the warped square eroded by 2·upscale and blurred inward.
        case facexlib
        /// Every class but background, hat and cloth, 26 px frame cleared, blurred twice (101, σ 4);
        /// without a parser, GPEN's (26…486)² square blurred the same way.
        case gpen
        /// CodeFormer's facelib: the eroded, blurred warped square always, with a parser the
        /// smaller of it and facexlib's parse mask; the face is multiplied by the eroded square
        /// before the blend.
        case codeFormer
    }

    /// Which landmarks the eye-distance filter measures.
    public enum EyeDistance: Sendable, Equatable {
        /// facexlib: the distance between the two eyes.
        case eyes
        /// CodeFormer's facelib indexes one off: (left-eye y − right-eye y, right-eye x − nose x).
        case facelibIndexing
    }

    /// How the photo is resized to the output size when no upsampler is given.
    public enum BackgroundResize: Sendable, Equatable {
        case lanczos4
        case linear
    }

    /// How several faces are combined over the background.
    public enum Blend: Sendable, Equatable {
        /// One face after another, each blended over the result so far, in float.
        case sequential
        /// Per pixel the face with the largest mask value, then one blend (GPEN).
        case largestMask
    }

    /// How `weight` mixes the restored face with the aligned input crop.
    public enum WeightBlend: Sendable, Equatable {
        /// `round((1 − w)·crop + w·restored)` in double.
        case linear
        /// `cv2.addWeighted(restored, w, crop, 1 − w, 0)` in float (GPEN's `--alpha`).
        case addWeighted
    }

    public var family: Family
    public var template: Template
    public var fit: Fit
    /// The colour of the crop outside the photo (BGR).
    public var cropBorder: [UInt8]
    public var rounding: Rounding
    public var mask: Mask
    public var blend: Blend
    public var weightBlend: WeightBlend
    /// `-s` when the caller gives none.
    public var defaultUpscale: Int
    /// Detection score threshold when the caller gives none.
    public var detectionThreshold: Float
    /// Faces whose eyes are closer than this many pixels are skipped (nil: none are).
    public var minimumEyeDistance: Double?
    /// Whether faces are detected and cropped on the photo already resized to the output size.
    public var detectsOnUpscaledPhoto: Bool
    /// Restored faces whose detection box is narrower than this get a 3×3 [1,2,1]² smoothing.
    public var smoothingBelowBoxSize: Float?
    /// The face parsers to look for, in order of preference (model store names).
    public var parsers: [String]
    /// The face size the parse mask is computed at; faces of other sizes cannot use it.
    public var parseMaskSize: Int?
    /// Photos whose short side is below this are first enlarged to it (INTER_LINEAR, both axes by
    /// the same factor); the output is that size × upscale. nil: photos are used as they are.
    public var minimumPhotoSide: Int? = nil
    /// The detector sees the photo resized so its short side is this (INTER_LINEAR up,
    /// INTER_AREA down); boxes and landmarks are scaled back. nil: the photo as it is.
    public var detectionShortSide: Int? = nil
    public var eyeDistance: EyeDistance = .eyes
    public var backgroundResize: BackgroundResize = .lanczos4
    /// Whether gray photos get gray faces (each restored face to gray, then its mean and spread
    /// per channel matched to the crop's) without being asked: CodeFormer's `is_gray` handling.
    public var grayFacesForGrayPhotos = false
    /// Context each Real-ESRGAN tile is read with: GFPGAN's `tile_pad=10`, CodeFormer's 40.
    public var upsamplerTilePad = 10
    /// Whether the pipeline can run its restored faces through Real-ESRGAN before pasting
    /// (CodeFormer's `--face_upsample`; facexlib and GPEN have no such step).
    public var offersFaceUpsampling = false

    /// GFP-GAN's pipeline: facexlib's `FaceRestoreHelper` (upscale 2, threshold 0.97, LMedS onto
    /// the FFHQ template, (135,133,132) border, parse mask at 512², faces blended one by one).
    public static let facexlib = Recipe(
        family: .facexlib, template: .ffhq512, fit: .lmeds, cropBorder: [135, 133, 132], rounding: .roundHalfEven,
        mask: .facexlib, blend: .sequential, weightBlend: .linear, defaultUpscale: 2, detectionThreshold: 0.97,
        minimumEyeDistance: 5, detectsOnUpscaledPhoto: false, smoothingBelowBoxSize: nil, parsers: ["parsenet"],
        parseMaskSize: 512)

    /// GPEN's pipeline: `FaceEnhancement.process` (no upscaling by default, threshold 0.9, Umeyama
    /// onto GPEN's template, black border, truncating output, GPEN's parse mask, largest mask wins).
    public static let gpen = Recipe(
        family: .gpen, template: .gpen, fit: .umeyama, cropBorder: [0, 0, 0], rounding: .truncate,
        mask: .gpen, blend: .largestMask, weightBlend: .addWeighted, defaultUpscale: 1, detectionThreshold: 0.9,
        minimumEyeDistance: nil, detectsOnUpscaledPhoto: true, smoothingBelowBoxSize: 100,
        parsers: ["gpen-parsenet", "parsenet"], parseMaskSize: nil)

    /// CodeFormer's pipeline: `inference_codeformer.py` with its `facelib` `FaceRestoreHelper`
    /// (sczhou/CodeFormer @ b33cc7d639d6): photos under 512 px on the short side enlarged to it,
    /// detection on the photo resized to a 640 px short side (up or down) at threshold 0.8, facelib's
    /// eye-distance indexing, the FFHQ template and border as facexlib, INTER_LINEAR background,
    /// min(parse, square) mask, gray photos get gray faces, Real-ESRGAN tiles read with 40 px of
    /// context, and optionally faces upsampled by Real-ESRGAN before pasting.
    public static let codeFormer = Recipe(
        family: .codeFormer, template: .ffhq512, fit: .lmeds, cropBorder: [135, 133, 132], rounding: .roundHalfEven,
        mask: .codeFormer, blend: .sequential, weightBlend: .linear, defaultUpscale: 2, detectionThreshold: 0.8,
        minimumEyeDistance: 5, detectsOnUpscaledPhoto: false, smoothingBelowBoxSize: nil, parsers: ["parsenet"],
        parseMaskSize: 512, minimumPhotoSide: 512, detectionShortSide: 640, eyeDistance: .facelibIndexing,
        backgroundResize: .linear, grayFacesForGrayPhotos: true, upsamplerTilePad: 40, offersFaceUpsampling: true)

    public var description: String {
        switch family {
        case .facexlib: return "facexlib (GFP-GAN's inference_gfpgan.py)"
        case .gpen: return "GPEN's face_enhancement.py"
        case .codeFormer: return "CodeFormer's inference_codeformer.py"
        }
    }

    /// The template's five points for a `size`² face.
    public func templatePoints(size: Int) -> [(x: Double, y: Double)] {
        switch template {
        case .ffhq512:
            let factor = Double(size) / 512
            return Self.ffhq512.map { (x: $0.x * factor, y: $0.y * factor) }
        case .gpen:
            return Self.gpenTemplate(size: size)
        }
    }

    /// facexlib's 5-point FFHQ template for a 512² face.
    public static let ffhq512: [(x: Double, y: Double)] = [
        (192.98138, 239.94708), (318.90277, 240.1936), (256.63416, 314.01935), (201.26117, 371.41043), (313.08905, 371.15118),
    ]

    /// GPEN's five reference points for a `size`² crop: `get_reference_facial_points((size, size),
    /// inner_padding_factor=0.25, outer_padding=(0, 0), default_square=True)`, as float32.
    public static func gpenTemplate(size: Int) -> [(x: Double, y: Double)] {
        let reference: [(Double, Double)] = [
            (30.29459953, 51.69630051), (65.53179932, 51.50139999), (48.02519989, 71.73660278),
            (33.54930115, 92.3655014), (62.72990036, 92.20410156),
        ]
        // Square (96 → 112 wide: +8 in x), pad by 0.25 (+28 each side: 168²), scale to size.
        let factor = Double(Float(size)) / 168
        return reference.map { p in (x: Double(Float((p.0 + 8 + 28) * factor)), y: Double(Float((p.1 + 28) * factor))) }
    }
}
