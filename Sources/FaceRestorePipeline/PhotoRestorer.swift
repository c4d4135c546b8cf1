// Whole-photo restoration: detect, align, restore and paste back every face, with the steps
// around the network taken from the model's `Recipe`:
//   - facexlib's `FaceRestoreHelper` as `GFPGANer.enhance(img, has_aligned=False, paste_back=True)`
//     runs it (gfpgan 1.3.8 `gfpgan/utils.py`, commit 7552a77; facexlib 0.3.0
//     `facexlib/utils/face_restoration_helper.py`): detect (RetinaFace, score > 0.97, NMS 0.4) →
//     skip faces with eye distance < 5 px → [only the face nearest the centre] → LMedS similarity
//     onto the FFHQ 5-point template → warpAffine to 512² with the (135,133,132) border → network →
//     inverse affine ×upscale (+0.5·upscale when upscaling) → paste onto the LANCZOS4-upscaled
//     photo through a soft mask: ParseNet's face classes blurred twice (101, σ 11) with a 10 px
//     frame cleared, or, without a parser, the eroded and blurred warped square. Faces blend one
//     after another in float (float64 with the parse mask, float32 without), and the result is
//     truncated to 8 bits.
//   - GPEN's `FaceEnhancement.process` (GPENPhoto.swift has its masks and paste-back).
// Work is confined to each face's region of the output: outside it the mask is 0 and upstream's
// blend returns the background exactly, so the result is the same as computing every full-size
// plane, without their memory.
// Each face keeps its restoration, its paste mask and its inverse affine, and the result keeps
// the upsampled background, so `reblend` can paste again with another weight or a subset of the
// faces without running a network.

import FaceRestoreEngine
import FaceRestoreImaging
import FaceRestoreModels
import Foundation

/// A restoration that cannot run with the arguments or models it was given (image-rs's
/// *Parameter* category). One line.
public enum PipelineError: Error, CustomStringConvertible, Equatable {
    case invalidArgument(String)
    /// The face parser needs faces of `maskSize`² but the model restores `faceSize`² faces.
    case parserNeedsFaceSize(model: String, faceSize: Int, maskSize: Int)
    /// A face upsampler was given for a pipeline without that step.
    case noFaceUpsampling(recipe: Recipe.Family)

    public var description: String {
        switch self {
        case let .invalidArgument(message): return message
        case let .parserNeedsFaceSize(model, faceSize, maskSize):
            return "\(model): restores \(faceSize)² faces, but the face-parsing paste mask needs \(maskSize)² faces "
                + "(paste back without the parser)"
        case let .noFaceUpsampling(recipe):
            return "face upsampling is a step of CodeFormer's pipeline; \(recipe.rawValue)'s has none"
        }
    }
}

/// Options of a whole-photo restoration (upstream's `inference_gfpgan.py` flags). A nil value
/// takes the model's recipe default.
public struct PhotoOptions: Sendable, Equatable {
    /// Final upsampling of the whole image (`-s/--upscale`; the recipe's default when nil: 2 for
    /// GFP-GAN, 1 for GPEN).
    public var upscale: Int?
    /// Keep only the face nearest the image centre (`--only-center-face`).
    public var onlyCenterFace = false
    /// Detection score threshold (the recipe's when nil: 0.97 for GFP-GAN, 0.9 for GPEN).
    public var detectionThreshold: Float?
    /// Blend of the restored face with the aligned input crop: 1 = restored (upstream), 0 = input
    /// (GPEN's `--alpha`). Applied when pasting: `reblend` can change it.
    public var weight: Double = 1
    /// Fresh StyleGAN noise from this seed (see `FaceRestorer.noise(seed:)`); nil = stored noise.
    public var seed: UInt64?
    /// CodeFormer's fidelity weight w (`-w` of `inference_codeformer.py`): 0 gives the codebook's
    /// face (quality), 1 keeps closest to the input (identity). Nil: 0.5. Other models ignore it.
    public var fidelity: Float?
    /// Gray in, gray out: a gray photo (CodeFormer's `is_gray` test) gets gray faces toned like
    /// their crops and comes out gray. CodeFormer does the face part without being asked.
    public var keepGray = false

    public init(upscale: Int? = nil, onlyCenterFace: Bool = false, detectionThreshold: Float? = nil, weight: Double = 1,
                seed: UInt64? = nil, fidelity: Float? = nil, keepGray: Bool = false) {
        self.upscale = upscale
        self.onlyCenterFace = onlyCenterFace
        self.detectionThreshold = detectionThreshold
        self.weight = weight
        self.seed = seed
        self.fidelity = fidelity
        self.keepGray = keepGray
    }

    /// The first argument that is out of range, as an error.
    public func validate() throws {
        if let upscale, !(1...8).contains(upscale) { throw PipelineError.invalidArgument("upscale must be between 1 and 8, got \(upscale)") }
        if !(0...1).contains(weight) { throw PipelineError.invalidArgument("weight must be between 0 and 1, got \(weight)") }
        if let t = detectionThreshold, !(0...1).contains(t) {
            throw PipelineError.invalidArgument("the detection threshold must be between 0 and 1, got \(t)")
        }
        if let f = fidelity, !(0...1).contains(f) {
            throw PipelineError.invalidArgument("the fidelity weight must be between 0 and 1, got \(f)")
        }
    }
}

/// One face found and restored in a photo.
public struct RestoredFace: Sendable {
    public var detection: DetectedFace
    /// Photo → aligned-face affine (`cv2.estimateAffinePartial2D`, or Umeyama's fit for GPEN).
    public var affine: AffineMatrix
    /// Aligned face → output image (the upscaled photo): what the paste-back warps with.
    public var inverseAffine: AffineMatrix
    /// The aligned input crop (upstream's `cropped_faces`).
    public var cropped: PixelImage
    /// The network's restored face (upstream's `restored_faces`), before the weight blend.
    public var restored: PixelImage
    /// The restored face through the face upsampler (`upscale`× its side), pasted instead of
    /// `restored` when present (CodeFormer's `--face_upsample`).
    public var upsampled: PixelImage?
    /// The paste mask in the face's own frame, made once from the face that is pasted.
    var mask: FaceMask
    /// This face's own blend weight, used instead of the photo's when set (the library's identity
    /// guard lowers it for a face that drifted from the person in the crop).
    public var weight: Double?
    /// The identity distance (ID-dlib) of the face as pasted to its crop, when measured.
    public var identityDistance: Double?

    /// Crop and restoration side by side (upstream's `cmp/`).
    public var comparison: PixelImage { PixelImage.sideBySide(cropped, restored) }
}

/// A face's paste mask before it is warped into the output.
enum FaceMask: Sendable {
    /// facexlib's parse mask at 512² (values in [0, 1], float64).
    case facexlibParse(Plane<Double>)
    /// facexlib's mask without a parser: the warped square, made at paste time.
    case facexlibSquare
    /// GPEN's mask (parse or square) at the face size, float32.
    case gpen(Plane<Float>)
    /// CodeFormer's: the warped soft square, and with a parser the smaller of it and this parse
    /// mask (facexlib's, at 512²).
    case codeFormer(parse: Plane<Double>?)
}

/// The result of restoring a whole photo.
public struct PhotoRestoration: Sendable {
    public var faces: [RestoredFace]
    /// Faces the detector found, before the eye-distance and centre-face filters.
    public var detectedCount: Int
    /// The restored photo, upscaled (upstream's `restored_imgs`).
    public var image: PixelImage
    /// The upscaled photo before any face was pasted (for `reblend`).
    public var background: PixelImage
    /// The upscale factor used (the option, or the recipe's default).
    public var upscale: Int
    /// The weight the faces were pasted with.
    public var weight: Double
    /// Which faces are pasted into `image` (indices into `faces`).
    public var pastedFaces: [Int]
    public var timings: RestoreTimings
    /// Whether the paste-back used the face-parsing mask (else the square mask).
    public var usedParsing: Bool
    /// Kept faces (numbered in detection order, from 0) whose restoration came out NaN or
    /// infinite (damaged weights): left as they are in the photo.
    public var nonFiniteFaces: [Int] = []
    /// Whether the photo was gray (tested when the recipe or `keepGray` needs it).
    public var grayInput = false
    /// Whether the result is made gray after pasting (`keepGray` on a gray photo).
    public var grayOutput = false
}

/// Changes a caller makes to one photo restoration as it runs (a video's temporal mode: tracked
/// faces with smoothed landmarks, paste masks averaged over time). Called on the restoring thread.
public struct FaceAdjustments {
    /// Replaces the kept faces before they are aligned; faces are in the coordinates of the photo
    /// detection ran on (after any enlargement or upscaling the recipe does first).
    public var faces: (([DetectedFace]) throws -> [DetectedFace])?
    /// Changes face `index`'s (of the replaced faces) parse paste mask, `side`² values row-major
    /// in the face's own frame, before it is used. Faces pasted with the square mask are not passed.
    public var mask: ((_ index: Int, _ side: Int, _ values: inout [Double]) -> Void)?

    public init(faces: (([DetectedFace]) throws -> [DetectedFace])? = nil,
                mask: ((_ index: Int, _ side: Int, _ values: inout [Double]) -> Void)? = nil) {
        self.faces = faces
        self.mask = mask
    }
}

/// Detector + restorer (+ optional face parser and background upsampler), run as the restorer's
/// recipe says. Immutable and `Sendable`.
/// Where a restoration is, reported as each stage starts.
public enum RestoreStage: Sendable, Equatable {
    case decoding
    case detecting
    /// Face `index` (from 0) of `of` kept faces is going through the face network.
    case restoringFace(Int, of: Int)
    /// The background upsampler has finished `tile` of `of` tiles.
    case background(tile: Int, of: Int)
    case pasting

    /// A short word for logs and progress bars.
    public var name: String {
        switch self {
        case .decoding: return "decoding"
        case .detecting: return "detecting"
        case .restoringFace: return "restoring"
        case .background: return "background"
        case .pasting: return "pasting"
        }
    }
}

public struct PhotoRestorer: Sendable {
    public let restorer: FaceRestorer
    public let detector: RetinaFace
    public let parser: ParseNet?
    /// Upsamples the background (`--bg-upsampler realesrgan`); nil resizes it with LANCZOS4.
    public let background: RealESRGANer?
    /// Upsamples each restored face before it is pasted (CodeFormer's `--face_upsample`).
    public let faceUpsampler: RealESRGANer?
    /// The model's recipe.
    public var recipe: Recipe { restorer.recipe }
    /// GPEN's paste mask without a parser (the same for every face), made once here.
    let gpenSquare: Plane<Float>?

    /// Throws when the parts cannot work together (a parser with a model whose faces are not the
    /// size the parse mask is made at, a face upsampler in a pipeline without one). The
    /// upsamplers' tiles take the recipe's context (`Recipe.upsamplerTilePad`).
    public init(restorer: FaceRestorer, detector: RetinaFace, parser: ParseNet?, background: RealESRGANer? = nil,
                faceUpsampler: RealESRGANer? = nil) throws {
        let recipe = restorer.recipe
        if parser != nil, let size = recipe.parseMaskSize, restorer.faceSize != size {
            throw PipelineError.parserNeedsFaceSize(model: restorer.modelPath, faceSize: restorer.faceSize, maskSize: size)
        }
        if faceUpsampler != nil, !recipe.offersFaceUpsampling { throw PipelineError.noFaceUpsampling(recipe: recipe.family) }
        self.restorer = restorer
        self.detector = detector
        self.parser = parser
        self.background = background.map { var b = $0; b.tilePad = recipe.upsamplerTilePad; return b }
        self.faceUpsampler = faceUpsampler.map { var f = $0; f.tilePad = recipe.upsamplerTilePad; return f }
        gpenSquare = restorer.recipe.mask == .gpen && parser == nil ? Self.gpenSquareMask(size: restorer.faceSize) : nil
    }

    /// Faces as the recipe keeps them: detected above the threshold, eye distance at least the
    /// recipe's minimum, optionally only the one nearest the centre.
    public func faces(in image: PixelImage, options: PhotoOptions, context: ComputeContext) throws -> (kept: [DetectedFace], detected: Int) {
        let threshold = options.detectionThreshold ?? recipe.detectionThreshold
        var all: [DetectedFace]
        let side = min(image.width, image.height)
        if let target = recipe.detectionShortSide, side != target {
            // facelib (b33cc7d; `max(1, scale)` commented out since a75e7ae): scale = 640 / short
            // side, up or down, the size truncated, INTER_LINEAR up and INTER_AREA down; the
            // boxes, scores and landmarks divided by the scale (float32).
            let scale = Double(target) / Double(side)
            let (w, h) = (Int(Double(image.width) * scale), Int(Double(image.height) * scale))
            let resized = scale < 1 ? image.shrunkByArea(width: w, height: h) : image.resizedLinear(width: w, height: h)
            let f = Float(scale)
            all = try detector.detect(bgr: resized.pixels, width: w, height: h, threshold: threshold, context).map { face in
                var d = face
                d.box = d.box.map { $0 / f }
                d.landmarks = d.landmarks.map { $0 / f }
                d.score /= f
                return d
            }
        } else {
            all = try detector.detect(bgr: image.pixels, width: image.width, height: image.height, threshold: threshold, context)
        }
        var kept = recipe.minimumEyeDistance.map { minimum in all.filter { Self.eyeDistance($0, recipe.eyeDistance) >= minimum } } ?? all
        if options.onlyCenterFace, !kept.isEmpty {
            let (cx, cy) = (Double(image.width) / 2, Double(image.height) / 2)
            func distance(_ f: DetectedFace) -> Double {
                let fx = Double((f.box[0] + f.box[2]) / 2), fy = Double((f.box[1] + f.box[3]) / 2)
                return ((fx - cx) * (fx - cx) + (fy - cy) * (fy - cy)).squareRoot()
            }
            var best = 0
            for i in kept.indices.dropFirst() where distance(kept[i]) < distance(kept[best]) { best = i }
            kept = [kept[best]]
        }
        return (kept, all.count)
    }

    /// The distance the eye-distance filter compares, by the recipe's rule.
    static func eyeDistance(_ face: DetectedFace, _ rule: Recipe.EyeDistance) -> Double {
        switch rule {
        case .eyes: return face.eyeDistance
        case .facelibIndexing:
            // `norm([bbox[6] − bbox[8], bbox[7] − bbox[9]])` with bbox = box, score, landmarks.
            let l = face.landmarks.map(Double.init)
            let (a, b) = (l[1] - l[3], l[2] - l[4])
            return (a * a + b * b).squareRoot()
        }
    }

    /// Restores every face of an 8-bit BGR photo and pastes them back. `progress` is called on
    /// this thread as each stage starts (and after each face and background tile). `adjust`
    /// changes the faces and masks on the way (a video's temporal mode; see `FaceAdjustments`).
    public func restore(_ image: PixelImage, options: PhotoOptions = PhotoOptions(), context: ComputeContext,
                        progress: ((RestoreStage) -> Void)? = nil,
                        adjust: FaceAdjustments? = nil) throws -> PhotoRestoration {
        guard image.channels == 3 else { throw PipelineError.invalidArgument("restore needs a 3-channel BGR image, got \(image.channels) channels") }
        guard image.width > 0, image.height > 0 else { throw PipelineError.invalidArgument("the image is empty") }
        try options.validate()
        let upscale = options.upscale ?? recipe.defaultUpscale
        var timings = RestoreTimings()
        let gray = (recipe.grayFacesForGrayPhotos || options.keepGray) && image.isGray()
        var image = image
        if let minimum = recipe.minimumPhotoSide, min(image.width, image.height) < minimum {
            // CodeFormer enlarges small photos first: the output is this size × upscale.
            guard let enlarged = image.enlargedLinear(by: Double(minimum) / Double(min(image.width, image.height)),
                                                      maxPixels: 1 << 28) else {
                throw PipelineError.invalidArgument("a \(image.width)×\(image.height) photo is too narrow to enlarge to \(minimum) px on its short side")
            }
            image = enlarged
        }
        let (w, h) = (image.width * upscale, image.height * upscale)
        // GPEN with --use_sr detects and crops on the photo resized to the output size.
        let work = recipe.detectsOnUpscaledPhoto && upscale != 1 ? image.resizedLinear(width: w, height: h) : image
        progress?(.detecting)
        var (kept, detected) = try timings.measure(\.detect) { try self.faces(in: work, options: options, context: context) }
        if let replace = adjust?.faces { kept = try replace(kept) }
        let size = restorer.faceSize
        var faces: [RestoredFace] = []
        var nonFinite: [Int] = []
        for (k, face) in kept.enumerated() {
            progress?(.restoringFace(k, of: kept.count))
            do {
                guard var restored = try restoreFace(face, upscale: upscale, gray: gray, options: options, context: context, timings: &timings,
                                                     crop: { work.warpedAffine($0, width: size, height: size, border: recipe.cropBorder) })
                else { continue }
                if let change = adjust?.mask { restored.mask = Self.adjusted(restored.mask, face: k, change) }
                faces.append(restored)
            } catch EngineError.nonFinite {
                nonFinite.append(k)   // this face stays as it is; the photo and the batch go on
            }
        }
        // `bg_upsampler.enhance(img, outscale=upscale)`, then facexlib resizes it to (w·s, h·s)
        // with LANCZOS4: the same size, which OpenCV returns unchanged.
        let upsampled = try timings.measure(\.background) { () throws -> PixelImage in
            guard let background else {
                return recipe.backgroundResize == .linear ? image.resizedLinear(width: w, height: h) : image.resizedLanczos4(width: w, height: h)
            }
            progress?(.background(tile: 0, of: 1))
            let up = try background.enhance(image, outscale: Double(upscale), context: context,
                                            progress: progress.map { report in { report(.background(tile: $0, of: $1)) } })
            return up.width == w && up.height == h ? up : up.resizedLanczos4(width: w, height: h)
        }
        let all = Array(faces.indices)
        progress?(.pasting)
        let grayOutput = gray && options.keepGray
        let out = try timings.measure(\.paste) { () throws -> PixelImage in
            let pasted = try paste(faces, onto: upsampled, upscale: upscale, weight: options.weight)
            return grayOutput ? pasted.grayscaled() : pasted
        }
        return PhotoRestoration(faces: faces, detectedCount: detected, image: out, background: upsampled, upscale: upscale,
                                weight: options.weight, pastedFaces: all, timings: timings, usedParsing: parser != nil,
                                nonFiniteFaces: nonFinite, grayInput: gray, grayOutput: grayOutput)
    }

    /// One detected face aligned (`crop` warps the photo with the face's affine), restored
    /// (toned back to gray for a gray photo when `gray`), upsampled when configured, and its
    /// paste mask made. Nil when the landmarks give no alignment; a network that produces
    /// non-finite values throws `EngineError.nonFinite`.
    func restoreFace(_ face: DetectedFace, upscale: Int, gray: Bool, options: PhotoOptions, context: ComputeContext,
                     timings: inout RestoreTimings, crop: (AffineMatrix) -> PixelImage) throws -> RestoredFace? {
        let points = (0..<5).map { (x: Double(face.landmarks[2 * $0]), y: Double(face.landmarks[2 * $0 + 1])) }
        guard let (affine, inverse) = alignment(points, recipe.templatePoints(size: restorer.faceSize), upscale: upscale) else { return nil }
        let cropped = timings.measure(\.align) { crop(affine) }
        var restored = try restorer.restoreAligned(cropped, seed: options.seed, fidelity: options.fidelity ?? FaceRestorer.defaultFidelity,
                                                   context: context)
        timings.network += restored.timings.network
        if gray { restored.restored = restored.restored.grayToned(like: restored.input) }
        // facelib: `face_upsampler.enhance(restored_face, outscale=upscale)`, then the masks
        // are made at the upsampled size.
        let upsampled = try faceUpsampler.map { up in
            try timings.measure(\.faceUpsampling) { try up.enhance(restored.restored, outscale: Double(upscale), context: context) }
        }
        let mask = try timings.measure(\.masks) { try self.mask(for: upsampled ?? restored.restored, context: context) }
        return RestoredFace(detection: face, affine: affine, inverseAffine: inverse, cropped: restored.input,
                            restored: restored.restored, upsampled: upsampled, mask: mask)
    }

    /// Pastes the restored faces of `restoration` again, with another weight and/or only the faces
    /// at `faces`, without running any network: the same bytes as a fresh `restore` with that
    /// weight, minus the left-out faces. A face with a weight of its own (`RestoredFace.weight`)
    /// keeps it.
    public func reblend(_ restoration: PhotoRestoration, weight: Double? = nil, faces include: [Int]? = nil) throws -> PhotoRestoration {
        let w = weight ?? restoration.weight
        guard (0...1).contains(w) else { throw PipelineError.invalidArgument("weight must be between 0 and 1, got \(w)") }
        let chosen = include ?? Array(restoration.faces.indices)
        for i in chosen where !restoration.faces.indices.contains(i) {
            throw PipelineError.invalidArgument("no face \(i): the photo has \(restoration.faces.count) restored face\(restoration.faces.count == 1 ? "" : "s")")
        }
        let picked = restoration.faces.indices.filter { chosen.contains($0) }
        var out = restoration
        var timings = RestoreTimings()
        out.image = try timings.measure(\.paste) { () throws -> PixelImage in
            let pasted = try paste(picked.map { restoration.faces[$0] }, onto: restoration.background, upscale: restoration.upscale, weight: w)
            return restoration.grayOutput ? pasted.grayscaled() : pasted
        }
        out.weight = w
        out.pastedFaces = picked
        out.timings = timings
        return out
    }

    /// `mask` after `change` (parse masks only; a change that alters the size is ignored).
    static func adjusted(_ mask: FaceMask, face k: Int, _ change: (Int, Int, inout [Double]) -> Void) -> FaceMask {
        func apply(_ p: Plane<Double>) -> Plane<Double> {
            var values = p.values
            change(k, p.width, &values)
            return values.count == p.values.count ? Plane(width: p.width, height: p.height, values: values) : p
        }
        switch mask {
        case .facexlibParse(let p): return .facexlibParse(apply(p))
        case .codeFormer(let p?): return .codeFormer(parse: apply(p))
        case .gpen(let p):
            let d = apply(Plane(width: p.width, height: p.height, values: p.values.map(Double.init)))
            return .gpen(Plane(width: d.width, height: d.height, values: d.values.map(Float.init)))
        case .facexlibSquare, .codeFormer(nil): return mask
        }
    }

    // MARK: the recipe's steps

    /// The photo → face affine and the face → output inverse for `points`.
    func alignment(_ points: [(x: Double, y: Double)], _ template: [(x: Double, y: Double)], upscale: Int)
        -> (AffineMatrix, AffineMatrix)? {
        switch recipe.fit {
        case .lmeds:
            guard let affine = SimilarityFit.estimateLMedS(from: points, to: template) else { return nil }
            let inv = affine.inverted().scaled(by: Double(upscale))
            return (affine, upscale > 1 ? inv.translated(by: 0.5 * Double(upscale), 0.5 * Double(upscale)) : inv)
        case .umeyama:
            guard let fit = SimilarityFit.umeyama(from: points, to: template),
                  let back = SimilarityFit.umeyama(from: template, to: points, fixedScale: 1 / fit.scale) else { return nil }
            return (fit.matrix, back.matrix)
        }
    }

    /// The paste mask of a restored face, in its own frame.
    func mask(for restored: PixelImage, context: ComputeContext) throws -> FaceMask {
        switch recipe.mask {
        case .facexlib:
            guard let parser else { return .facexlibSquare }
            return .facexlibParse(try parseMask(restored, parser: parser, context: context))
        case .gpen:
            return .gpen(try gpenMask(restored, context: context))
        case .codeFormer:
            // facelib parses the face resized to 512² and resizes the mask back to the face's size.
            return .codeFormer(parse: try parser.map { parser in
                let mask = try parseMask(restored.width == 512 ? restored : restored.resizedLinear(width: 512, height: 512),
                                         parser: parser, context: context)
                return mask.resizedLinear(width: restored.width, height: restored.height)
            })
        }
    }

    /// The face as it is pasted with `weight`: the weight blend with the crop (and GPEN's
    /// small-face smoothing). An upsampled face is blended with the crop resized to its size
    /// (INTER_LINEAR), so a re-blend needs no network.
    public func pastedFace(_ face: RestoredFace, weight: Double) -> PixelImage {
        if let up = face.upsampled {
            return weight == 1 ? up : PixelImage.blend(face.cropped.resizedLinear(width: up.width, height: up.height), up, weight: weight)
        }
        var ef = face.restored
        if let limit = recipe.smoothingBelowBoxSize, min(face.detection.box[3] - face.detection.box[1], face.detection.box[2] - face.detection.box[0]) < limit {
            ef = ef.smoothed3x3()
        }
        switch recipe.weightBlend {
        case .linear: return PixelImage.blend(face.cropped, ef, weight: weight)
        case .addWeighted: return PixelImage.addWeighted(ef, weight, face.cropped)
        }
    }

    // MARK: paste-back

    /// The faces pasted onto the upsampled photo as the recipe combines them.
    func paste(_ faces: [RestoredFace], onto upsampled: PixelImage, upscale: Int, weight: Double) throws -> PixelImage {
        guard !faces.isEmpty else { return upsampled }
        let pasted = faces.map { pastedFace($0, weight: $0.weight ?? weight) }
        switch recipe.blend {
        case .sequential: return pasteSequential(faces, pasted, onto: upsampled, upscale: upscale)
        case .largestMask:
            let masks = faces.map { face -> Plane<Float> in
                if case .gpen(let m) = face.mask { return m }
                return gpenSquare ?? Self.gpenSquareMask(size: face.restored.width)
            }
            return pasteGPEN(pasted, masks: masks, inverses: faces.map(\.inverseAffine), onto: upsampled)
        }
    }

    /// `paste_faces_to_input_image` onto the upsampled photo.
    func pasteSequential(_ faces: [RestoredFace], _ pasted: [PixelImage], onto upsampled: PixelImage, upscale: Int) -> PixelImage {
        var background = upsampled
        blendSequential(faces, pasted, width: upsampled.width, height: upsampled.height, upscale: upscale) {
            Canvas(rect: $0, from: upsampled)
        }.truncate(into: &background)
        return background
    }

    /// The faces blended one after another on a float canvas over the union of their regions of
    /// a `width`×`height` output, the canvas made by `canvas` for that rectangle.
    func blendSequential(_ faces: [RestoredFace], _ pasted: [PixelImage], width w: Int, height h: Int, upscale: Int,
                         canvas make: (Rect) -> Canvas) -> Canvas {
        let inverses = faces.map { pasteAffine($0, upscale: upscale) }
        let rois = regions(faces, pasted, width: w, height: h, upscale: upscale)
        // Float canvas over the union of the regions (upstream blends in float without rounding
        // between faces).
        let union = rois.dropFirst().reduce(rois[0]) { $0.union($1) }
        var canvas = make(union)
        for (i, face) in faces.enumerated() {
            let roi = rois[i]
            let inv = inverses[i], origin = (x: roi.x, y: roi.y), faceSize = pasted[i].width
            let restoredWarp = pasted[i].warpedAffine(inv, width: roi.width, height: roi.height, border: [0, 0, 0], origin: origin)
            if case .facexlibParse(let parseMask) = face.mask {
                let mask = parseMask.warpedAffine(inv, width: roi.width, height: roi.height, origin: origin)
                canvas.blend(restoredWarp, mask: mask.values, at: roi)
            } else if case .codeFormer(let parse?) = face.mask {
                // facelib: the smaller of the parse mask and the soft square, in float64.
                let (soft, erodedFace) = softMask(inv, restoredWarp, faceSize: faceSize, upscale: upscale, roi: roi)
                let parsed = parse.warpedAffine(inv, width: roi.width, height: roi.height, origin: origin)
                let mask = zip(parsed.values, soft.values).map { p, s in p < Double(s) ? p : Double(s) }
                canvas.blend(erodedFace, mask: mask, at: roi)
            } else {
                let (mask, soft) = softMask(inv, restoredWarp, faceSize: faceSize, upscale: upscale, roi: roi)
                canvas.blendFloat(soft, mask: mask.values, at: roi)
            }
        }
        return canvas
    }

    /// The output regions the faces' masks can reach. Each face's mask is the warped face square
    /// eroded/blurred inward; the margin covers the bilinear footprint plus, for the soft mask,
    /// the blur's outward spread.
    func regions(_ faces: [RestoredFace], _ pasted: [PixelImage], width w: Int, height h: Int, upscale: Int) -> [Rect] {
        faces.indices.map { i -> Rect in
            let (face, inv, size) = (faces[i], pasteAffine(faces[i], upscale: upscale), pasted[i].width)
            let soft: Bool
            if case .facexlibParse = face.mask { soft = false } else { soft = true }
            return region(of: inv, faceSize: size, margin: soft ? softMaskMargin(inv, size, upscale) : 2, width: w, height: h)
        }
    }

    /// The restoration composited into its 16-bit photo `source` (`DecodedImage.image16`): the
    /// photo resized to the output size as the recipe resizes the 8-bit one (in float), the
    /// pasted faces (8-bit, as the networks make them) blended in with the same masks in 8-bit
    /// units and scaled by 257, and every pixel no face's mask reaches keeping its resized
    /// 16-bit value (with upscale 1, the source's exact samples). Nil where the 8-bit result has
    /// no 16-bit counterpart: a Real-ESRGAN background (8-bit), GPEN's largest-mask blend, a
    /// photo enlarged first (CodeFormer's 512 px minimum), or a source of another size.
    public func composite16(_ r: PhotoRestoration, source: PixelImage16) -> PixelImage16? {
        guard background == nil, recipe.blend == .sequential, source.channels == 3,
              r.background.width == source.width * r.upscale, r.background.height == source.height * r.upscale else { return nil }
        let (w, h) = (r.background.width, r.background.height)
        var out = recipe.backgroundResize == .linear ? source.resizedLinear(width: w, height: h) : source.resizedLanczos4(width: w, height: h)
        let faces = r.pastedFaces.map { r.faces[$0] }
        if !faces.isEmpty {
            let pasted = faces.map { pastedFace($0, weight: $0.weight ?? r.weight) }
            let wide = out
            blendSequential(faces, pasted, width: w, height: h, upscale: r.upscale) { Canvas(rect: $0, from: wide) }.write16(into: &out)
        }
        return r.grayOutput ? out.grayscaled() : out
    }

    /// The face → output affine the paste warps with: `inverseAffine`, or for an upsampled face
    /// facelib's `inverse_affine /= upscale; inverse_affine[:, 2] *= upscale` (no half-pixel offset).
    func pasteAffine(_ face: RestoredFace, upscale: Int) -> AffineMatrix {
        guard face.upsampled != nil, recipe.fit == .lmeds else { return face.inverseAffine }
        let s = Double(upscale)
        let m = face.affine.inverted().scaled(by: s).m.map { $0 / s }
        return AffineMatrix([m[0], m[1], m[2] * s, m[3], m[4], m[5] * s])
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
        // `cv2.resize(mask, restored_face.shape[:2])` is a copy: `init` admits a parser only for
        // 512² faces.
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
        return Self.pixel(Double(faceSize) * scale / 20, .towardZero) * 2 + 2 * upscale + 4
    }

    /// The integer rectangle of the output covered by the face square under `inv`, plus `margin`.
    func region(of inv: AffineMatrix, faceSize: Int, margin: Int, width: Int, height: Int) -> Rect {
        let s = Double(faceSize)
        let corners = [(0.0, 0.0), (s, 0), (0, s), (s, s)].map { inv.apply((x: $0.0, y: $0.1)) }
        let xs = corners.map(\.x), ys = corners.map(\.y)
        let x0 = Self.pixel(xs.min() ?? 0, .down) - margin, x1 = Self.pixel(xs.max() ?? 0, .up) + margin
        let y0 = Self.pixel(ys.min() ?? 0, .down) - margin, y1 = Self.pixel(ys.max() ?? 0, .up) + margin
        let r = Rect(x: max(x0, 0), y: max(y0, 0), width: max(min(x1, width) - max(x0, 0), 1), height: max(min(y1, height) - max(y0, 0), 1))
        return r.clamped(width: width, height: height)
    }

    /// A coordinate rounded to a pixel, kept within ±2³⁰ (a degenerate fit cannot overflow `Int`).
    static func pixel(_ v: Double, _ rule: FloatingPointRoundingRule) -> Int {
        guard v.isFinite else { return 0 }
        return Int(min(max(v.rounded(rule), -1_073_741_824), 1_073_741_824))
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
    /// Pixels some face's mask reached (for the 16-bit output, which keeps the others exactly).
    var touched: [Bool]

    /// Over a 16-bit image, in 8-bit units (v / 257), so faces blend with the same arithmetic.
    /// `imageY`: the output row the image's first row is (a band of a streamed output).
    init(rect: Rect, from image: PixelImage16, imageY: Int = 0) {
        self.rect = rect
        var v = [Double](repeating: 0, count: rect.width * rect.height * 3)
        for y in 0..<rect.height {
            for x in 0..<rect.width {
                for c in 0..<3 { v[(y * rect.width + x) * 3 + c] = Double(image.pixels[((rect.y - imageY + y) * image.width + rect.x + x) * 3 + c]) / 257 }
            }
        }
        values = v
        touched = [Bool](repeating: false, count: rect.width * rect.height)
    }

    /// The touched pixels back into a 16-bit image: ×257, rounded, clamped.
    func write16(into image: inout PixelImage16, imageY: Int = 0) {
        for y in 0..<rect.height {
            for x in 0..<rect.width where touched[y * rect.width + x] {
                for c in 0..<3 {
                    let v = (values[(y * rect.width + x) * 3 + c] * 257).rounded()
                    image.pixels[((rect.y - imageY + y) * image.width + rect.x + x) * 3 + c] = UInt16(min(max(v.isFinite ? v : 0, 0), 65535))
                }
            }
        }
    }

    init(rect: Rect, from image: PixelImage, imageY: Int = 0) {
        self.rect = rect
        var v = [Double](repeating: 0, count: rect.width * rect.height * 3)
        for y in 0..<rect.height {
            for x in 0..<rect.width {
                for c in 0..<3 { v[(y * rect.width + x) * 3 + c] = Double(image.pixels[((rect.y - imageY + y) * image.width + rect.x + x) * 3 + c]) }
            }
        }
        values = v
        touched = [Bool](repeating: false, count: rect.width * rect.height)
    }

    /// `out = m·face + (1 − m)·out` in float64 (the parse-mask path).
    mutating func blend(_ face: PixelImage, mask: [Double], at roi: Rect) {
        for y in 0..<roi.height {
            for x in 0..<roi.width {
                let m = mask[y * roi.width + x]
                let o = ((roi.y - rect.y + y) * rect.width + roi.x - rect.x + x) * 3
                if m != 0 { touched[o / 3] = true }
                for c in 0..<3 { values[o + c] = m * Double(face.pixels[(y * roi.width + x) * 3 + c]) + (1 - m) * values[o + c] }
            }
        }
    }

    /// `out = m·face + (1 − m)·out` in float64 for a float face (CodeFormer's eroded face under
    /// the parse-and-square mask).
    mutating func blend(_ face: [Float], mask: [Double], at roi: Rect) {
        for y in 0..<roi.height {
            for x in 0..<roi.width {
                let m = mask[y * roi.width + x]
                let o = ((roi.y - rect.y + y) * rect.width + roi.x - rect.x + x) * 3
                if m != 0 { touched[o / 3] = true }
                for c in 0..<3 { values[o + c] = m * Double(face[(y * roi.width + x) * 3 + c]) + (1 - m) * values[o + c] }
            }
        }
    }

    /// The same in float32 (the soft-mask path: mask, pasted face and products are float32).
    mutating func blendFloat(_ pasted: [Float], mask: [Float], at roi: Rect) {
        for y in 0..<roi.height {
            for x in 0..<roi.width {
                let m = mask[y * roi.width + x]
                let o = ((roi.y - rect.y + y) * rect.width + roi.x - rect.x + x) * 3
                if m != 0 { touched[o / 3] = true }
                for c in 0..<3 {
                    let v = m * pasted[(y * roi.width + x) * 3 + c] + (1 - m) * Float(values[o + c])
                    values[o + c] = Double(v)
                }
            }
        }
    }

    /// `astype(np.uint8)`: truncation toward zero.
    func truncate(into image: inout PixelImage, imageY: Int = 0) {
        for y in 0..<rect.height {
            for x in 0..<rect.width {
                for c in 0..<3 {
                    let v = values[(y * rect.width + x) * 3 + c]
                    image.pixels[((rect.y - imageY + y) * image.width + rect.x + x) * 3 + c] = UInt8(clamping: Int(v.rounded(.towardZero)))
                }
            }
        }
    }
}

extension PixelImage {
    /// Two images of the same height side by side (`np.concatenate(axis=1)`).
    public static func sideBySide(_ a: PixelImage, _ b: PixelImage) -> PixelImage {
        // Crops and restorations share a size; for any other pair the first image comes back.
        guard a.height == b.height, a.channels == b.channels else { return a }
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
