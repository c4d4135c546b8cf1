// FaceRestore: the one module an app imports. It re-exports what a restoration needs — image
// I/O (`ImageIO`, `PixelImage`), the compute context, the models and the pipeline types — and
// adds the product layer: `ModelStore` (which file a model name means, downloads), `Restorer`
// (a whole job for a file or an image) and `RestoreResult` (faces, outputs, re-blending).
//
//     import FaceRestore
//     let restorer = try Restorer(Restorer.Configuration(model: .named("1.4")))
//     try restorer.restore(file: "old.jpg").write(to: "results")

@_exported import FaceRestoreEngine
@_exported import FaceRestoreEvaluation
@_exported import FaceRestoreImaging
@_exported import FaceRestoreModels
@_exported import FaceRestorePipeline
@_exported import FaceRestoreWeights

/// The library's version (also `facerestore --version`).
public let faceRestoreVersion = "0.2.0"
