// The identity check of a restoration: each restored face's ID-dlib distance to the face in its
// aligned input crop (dlib's face-recognition embeddings of the two, 1 − cosine), and the guard
// that lowers the blend weight of a face that drifted further than the user allows, so the person
// still looks like themselves. The crop and the pasted face share the aligned frame, so both chips
// come from the same five template points and no detector runs again.

import FaceRestoreEvaluation
import FaceRestoreImaging
import FaceRestorePipeline
import Foundation

/// Measures and, with a limit, bounds how far restored faces drift from the person in the input.
public struct IdentityGuard: Sendable {
    /// The identity embedding of an aligned face (dlib's descriptor of its chip).
    public let embedding: @Sendable (PixelImage) throws -> [Float]
    /// Faces further than this from their crop are pasted with a lower weight (nil: measure only).
    public let maxDrift: Double?
    /// Halvings of the weight interval when searching for the largest weight within the limit
    /// (6: the weight to 1/64 of the requested one).
    static let searchSteps = 6

    public init(maxDrift: Double?, embedding: @escaping @Sendable (PixelImage) throws -> [Float]) {
        self.maxDrift = maxDrift
        self.embedding = embedding
    }

    /// ID-dlib between two aligned faces of the same frame.
    public func distance(_ a: PixelImage, _ b: PixelImage) throws -> Double {
        DlibFaceRecognizer.cosineDistance(try embedding(a), try embedding(b))
    }

    /// Sets each face's `identityDistance` at the weight it is pasted with and, for faces beyond
    /// `maxDrift`, the largest weight (bisected between 0 and the photo's) whose pasted face is
    /// within it: weight 0 pastes the crop itself, so one always is. Returns a warning per lowered
    /// face. Pasting again is the caller's (`PhotoRestorer.reblend`).
    func check(_ restoration: inout PhotoRestoration, with photo: PhotoRestorer) throws -> [RestoreWarning] {
        try check(faces: &restoration.faces, weight: restoration.weight, with: photo)
    }

    /// `check` on faces pasted with `weight`.
    func check(faces: inout [RestoredFace], weight: Double, with photo: PhotoRestorer) throws -> [RestoreWarning] {
        var warnings: [RestoreWarning] = []
        for k in faces.indices {
            var face = faces[k]
            face.weight = nil
            let crop = try embedding(face.cropped)
            func distance(atWeight w: Double) throws -> Double {
                DlibFaceRecognizer.cosineDistance(crop, try embedding(photo.pastedFace(face, weight: w)))
            }
            let measured = try distance(atWeight: weight)
            face.identityDistance = measured
            if let limit = maxDrift, measured > limit, weight > 0 {
                var (low, high, atLow) = (0.0, weight, 0.0)
                for _ in 0..<Self.searchSteps {
                    let mid = (low + high) / 2
                    let d = try distance(atWeight: mid)
                    if d <= limit { (low, atLow) = (mid, d) } else { high = mid }
                }
                face.weight = low
                face.identityDistance = atLow
                warnings.append(.identityDrift(face: k + 1, distance: measured, limit: limit, weight: low, distanceAfter: atLow))
            }
            faces[k] = face
        }
        return warnings
    }
}
