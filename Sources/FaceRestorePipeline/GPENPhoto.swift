// GPEN's masks and paste-back (`Recipe.gpen`), as GPEN's own pipeline runs them: yangxy/GPEN
// `face_enhancement.py` (FaceEnhancement.process, commit 2c73670), `align_faces.py`
// (get_reference_facial_points, warp_and_crop_face, _umeyama) and `face_parse/face_parsing.py`
// (FaceParse.process). Where GPEN's pipeline differs from facexlib's (PhotoRestorer.restore):
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
