// FaceRestoreModels
