// Whole-photo restoration with a GPEN model as GPEN's own pipeline runs it: yangxy/GPEN
// `face_enhancement.py` (FaceEnhancement.process, commit 2c73670), `align_faces.py`
// (get_reference_facial_points, warp_and_crop_face, _umeyama) and `face_parse/face_parsing.py`
// (FaceParse.process). Where it differs from GFPGAN's (PhotoRestorer.restore):
//   - with upscaling, the photo is first resized (INTER_LINEAR) to the output size and faces are
//     detected and cropped there (GPEN with --use_sr); the background is the Real-ESRGAN output,
//     or (where GPEN has no upscaling) the LANCZOS4-resized photo;
//   - detection keeps scores ≥ 0.9 (GPEN's threshold) and has no eye-distance filter;
//   - the template is the 96×112 five-point set made square, padded by 0.25 and scaled to the
//     model size; the fit is Umeyama's least-squares similarity (not LMedS), and the inverse is
//     the Umeyama fit back with the scale fixed; warps use a black border;
//   - the network output is truncated, not rounded (FaceGAN.tensor2img);
//   - faces whose detection box is under 100 px get a 3×3 [1,2,1]² smoothing, then `--alpha`
//     blends the result with the crop (cv2.addWeighted);
//   - the mask: ParseNet's labels with GPEN's set (every face class plus neck; not hat or cloth),
//     a 26 px frame cleared, GaussianBlur(101, σ 4) twice, resized to the model size; without a
//     parser GPEN's unused alternative, the (26…486)² square blurred the same way;
//   - faces are combined by keeping, per pixel, the face with the larger mask value, then one
//     float32 blend over the background, rounded (cv2.convertScaleAbs).
// Work is confined to the faces' regions, outside which the mask is 0 and the blend returns the
// background exactly.

import FaceRestoreEngine
import FaceRestoreImaging
import FaceRestoreModels
import Foundation

extension PhotoRestorer {
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

    /// GPEN's unused alternative to the parse mask, prepared once in `FaceEnhancement.__init__`:
    /// `cv2.rectangle(mask, (26, 26), (486, 486), 1, -1, LINE_AA)` on a float32 512² plane, blurred
    /// (101, σ 4) twice in float32, resized to the model size. The same for every face.
    static func gpenSquareMask(size: Int) -> Plane<Float> {
        let s = 512, frame = 26
        let square = Plane<Float>(width: s, height: s, values: (0..<(s * s)).map { i in
            (frame...(s - frame)).contains(i % s) && (frame...(s - frame)).contains(i / s) ? 1 : 0
        })
        return square.gaussianBlurred(size: 101, sigma: 4).gaussianBlurred(size: 101, sigma: 4).resizedLinear(width: size, height: size)
    }

    /// The paste mask for one restored face at the model size: ParseNet's face classes, or without
    /// a parser the square mask made at init.
    func gpenMask(_ restored: PixelImage, context: ComputeContext) throws -> Plane<Float> {
        let s = 512, frame = 26
        let size = restorer.faceSize
        guard let parser else { return gpenSquare ?? Self.gpenSquareMask(size: size) }
        let input = restored.resizedLinear(width: s, height: s)
        // FaceParse.img2tensor: BGR→RGB, `img / 255. * 2 - 1` in float64, then float32.
        let x = Tensor(shape: [1, 3, s, s]) { out in
            for c in 0..<3 {
                for i in 0..<(s * s) { out[c * s * s + i] = Float(Double(input.pixels[i * 3 + 2 - c]) / 255 * 2 - 1) }
            }
        }
        let labels = try parser.labels(x, context)
        // MASK_COLORMAP: 255 for every class but background (0), hat (14) and cloth (18); `/ 255.`
        // and mask_postprocess (frame cleared, two blurs) in float64, then float32.
        var mask = Plane<Double>(width: s, height: s, values: labels.map { $0 == 0 || $0 == 14 || $0 >= 18 ? 0 : 1 })
        for y in 0..<s {
            for x in 0..<s where y < frame || y >= s - frame || x < frame || x >= s - frame { mask.values[y * s + x] = 0 }
        }
        mask = mask.gaussianBlurred(size: 101, sigma: 4).gaussianBlurred(size: 101, sigma: 4)
        return Plane(width: s, height: s, values: mask.values.map { Float($0) }).resizedLinear(width: size, height: size)
    }

    /// `FaceEnhancement.process(img, aligned=False)` (see the file header).
    func restoreGPEN(_ image: PixelImage, options: PhotoOptions, context: ComputeContext,
                     backgroundProgress: ((Int, Int) -> Void)?) throws -> PhotoRestoration {
        var timings = RestoreTimings()
        let (w, h) = (image.width * options.upscale, image.height * options.upscale)
        let work = options.upscale == 1 ? image : image.resizedLinear(width: w, height: h)
        let (detected, detectedCount) = try timings.measure(\.detect) {
            try self.faces(in: work, options: options, eyeDistanceFilter: false, context: context)
        }
        let size = restorer.faceSize
        let template = Self.gpenTemplate(size: size)
        var faces: [RestoredFace] = [], inverses: [AffineMatrix] = [], pasted: [PixelImage] = []
        for face in detected {
            let points = (0..<5).map { (x: Double(face.landmarks[2 * $0]), y: Double(face.landmarks[2 * $0 + 1])) }
            guard let fit = SimilarityFit.umeyama(from: points, to: template),
                  let back = SimilarityFit.umeyama(from: template, to: points, fixedScale: 1 / fit.scale) else { continue }
            let cropped = timings.measure(\.align) { work.warpedAffine(fit.matrix, width: size, height: size, border: [0, 0, 0]) }
            let restored = try restorer.restoreAligned(cropped, context: context)
            timings.network += restored.timings.network
            var ef = restored.restored
            if min(face.box[3] - face.box[1], face.box[2] - face.box[0]) < 100 { ef = ef.smoothed3x3() }
            ef = PixelImage.addWeighted(ef, options.weight, cropped)
            faces.append(RestoredFace(detection: face, affine: fit.matrix, cropped: cropped, restored: restored.restored))
            inverses.append(back.matrix)
            pasted.append(ef)
        }
        let upsampled = try timings.measure(\.background) { () throws -> PixelImage in
            guard let background else { return options.upscale == 1 ? image : image.resizedLanczos4(width: w, height: h) }
            let up = try background.enhance(image, outscale: Double(options.upscale), context: context, progress: backgroundProgress)
            return up.width == w && up.height == h ? up : up.resizedLanczos4(width: w, height: h)
        }
        let out = try timings.measure(\.paste) { () throws -> PixelImage in
            guard !faces.isEmpty else { return upsampled }
            let masks = try faces.map { try gpenMask($0.restored, context: context) }
            return pasteGPEN(pasted, masks: masks, inverses: inverses, onto: upsampled)
        }
        return PhotoRestoration(faces: faces, detectedCount: detectedCount, image: out, timings: timings, usedParsing: parser != nil)
    }

    /// GPEN's paste-back: per pixel the face with the largest mask wins (`mask > full_mask`), then
    /// `convertScaleAbs(img·(1 − m) + face·m)` in float32.
    func pasteGPEN(_ faces: [PixelImage], masks: [Plane<Float>], inverses: [AffineMatrix], onto background: PixelImage) -> PixelImage {
        let (w, h) = (background.width, background.height)
        let rois = inverses.map { region(of: $0, faceSize: faces[0].width, margin: 2, width: w, height: h) }
        let union = rois.dropFirst().reduce(rois[0]) { $0.union($1) }
        var fullMask = [Float](repeating: 0, count: union.width * union.height)
        var fullImage = [UInt8](repeating: 0, count: union.width * union.height * 3)
        for (i, roi) in rois.enumerated() {
            let origin = (x: roi.x, y: roi.y)
            let mask = masks[i].warpedAffine(inverses[i], width: roi.width, height: roi.height, origin: origin)
            let face = faces[i].warpedAffine(inverses[i], width: roi.width, height: roi.height, border: [0, 0, 0], origin: origin)
            for y in 0..<roi.height {
                for x in 0..<roi.width {
                    let m = mask.values[y * roi.width + x]
                    let o = (roi.y - union.y + y) * union.width + roi.x - union.x + x
                    if m - fullMask[o] > 0 {
                        fullMask[o] = m
                        for c in 0..<3 { fullImage[o * 3 + c] = face.pixels[(y * roi.width + x) * 3 + c] }
                    }
                }
            }
        }
        var out = background
        for y in 0..<union.height {
            for x in 0..<union.width {
                let m = fullMask[y * union.width + x]
                guard m != 0 else { continue }
                let o = ((union.y + y) * w + union.x + x) * 3
                for c in 0..<3 {
                    let v: Float = Float(background.pixels[o + c]) * (1 - m) + Float(fullImage[(y * union.width + x) * 3 + c]) * m
                    out.pixels[o + c] = UInt8(clamping: Int(abs(v).rounded(.toNearestOrEven)))
                }
            }
        }
        return out
    }
}
