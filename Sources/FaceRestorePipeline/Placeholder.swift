// FaceRestorePipeline
