// FaceRestoreImaging
