// What a request does, apart from HTTP: take an upload to disk, check it from its header, queue
// it; restore a job on a worker thread and write its files atomically; re-blend a finished job
// from its cached faces. Paths come only from validated job ids and fixed names: nothing a client
// sends (a file name, an id that is not 32 hex digits) reaches the file system.

import FaceRestore
import Foundation
import HTTPTypes
import Logging
import Synchronization

/// An API failure: its status and one line for `{"error": …}`.
struct APIError: Error {
    let status: HTTPResponse.Status
    let message: String
    var retryAfter: Int?

    init(_ status: HTTPResponse.Status, _ message: String, retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.retryAfter = retryAfter
    }
}

/// An upload saved to its job folder, not yet checked.
struct SavedUpload: Sendable {
    let id: JobID
    let folder: URL
    /// The client's file name, for display only.
    let name: String
}

final class ServerState: Sendable {
    let configuration: ServerConfiguration
    let store: JobStore
    let pool: RestorerPool
    let cache: ResultCache
    let logger: Logger
    /// `<data>/jobs`: one folder per job, named by its id.
    let jobsFolder: URL
    let dataFolder: URL
    let ownsDataFolder: Bool
    /// The default restorer, loaded at start.
    let defaultRestorer: Restorer
    private let reblendQueue = DispatchQueue(label: "facerestore.reblend", qos: .userInitiated, attributes: .concurrent)
    /// Called on the worker's thread when a job has been marked running, before any work on it
    /// (the shutdown test holds its job here; nil in the server).
    let jobStarted: (@Sendable (JobID) -> Void)?

    init(configuration: ServerConfiguration, logger: Logger, jobStarted: (@Sendable (JobID) -> Void)? = nil) throws {
        self.jobStarted = jobStarted
        var c = configuration
        c.workers = max(1, c.workers)
        self.configuration = c
        self.logger = logger
        if let dir = c.dataDirectory {
            dataFolder = URL(fileURLWithPath: dir, isDirectory: true)
            ownsDataFolder = false
        } else {
            dataFolder = FileManager.default.temporaryDirectory
                .appendingPathComponent("facerestore-serve-\(getpid())-\(JobID.random().value.prefix(8))", isDirectory: true)
            ownsDataFolder = true
        }
        jobsFolder = dataFolder.appendingPathComponent("jobs", isDirectory: true)
        try FileManager.default.createDirectory(at: jobsFolder, withIntermediateDirectories: true)
        // Jobs live in memory: folders left by an earlier run have no job any more.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: jobsFolder.path)) ?? [] where JobID(Substring(name)) != nil {
            try? FileManager.default.removeItem(at: jobsFolder.appendingPathComponent(name))
        }
        store = JobStore(capacity: c.queueCapacity)
        pool = RestorerPool(base: c.restorer, store: c.store, limit: c.maxLoadedModels)
        cache = ResultCache(budget: c.reblendCacheBytes)
        defaultRestorer = try pool.restorer(.init(model: nil, background: false))
    }

    func removeTemporaryData() {
        if ownsDataFolder { try? FileManager.default.removeItem(at: dataFolder) }
    }

    func folder(_ id: JobID) -> URL { jobsFolder.appendingPathComponent(id.value, isDirectory: true) }

    // MARK: uploads

    /// A new job folder for an upload.
    func newUpload(name: String) throws -> SavedUpload {
        let id = JobID.random()
        let folder = folder(id)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false)
        return SavedUpload(id: id, folder: folder, name: Self.displayName(name))
    }

    /// The client's file name cut to something safe to show and to put in a download name.
    static func displayName(_ raw: String) -> String {
        let base = raw.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        let kept = base.unicodeScalars.filter { !CharacterSet.controlCharacters.contains($0) && $0 != "\"" }
        let text = String(String.UnicodeScalarView(kept)).trimmingCharacters(in: .whitespaces)
        return text.isEmpty ? "image" : String(text.prefix(120))
    }

    /// Checks an upload from its first bytes and header (nothing is decoded), names its file by the
    /// format found, and returns its size.
    @discardableResult
    func check(_ upload: SavedUpload, request: JobRequest) throws -> ImageHeader? {
        let raw = upload.folder.appendingPathComponent("upload")
        let data: Data
        do { data = try Data(contentsOf: raw, options: .alwaysMapped) } catch {
            throw APIError(.internalServerError, "\(upload.name): the upload could not be read back")
        }
        guard !data.isEmpty else { throw APIError(.unprocessableContent, "\(upload.name): the file is empty") }
        if let container = VideoContainer.sniff(Array(data.prefix(64))) {
            try checkVideo(upload, container: container, raw: raw)
            return nil
        }
        guard ImageFormat.sniff(data) != nil else {
            throw APIError(.unsupportedMediaType, "\(upload.name): not a PNG, JPEG, TIFF, WebP, BMP or HEIC image (its bytes do not start like one)")
        }
        let header: ImageHeader
        do { header = try ImageIO.probe(data, path: upload.name, limits: configuration.imageLimits) } catch let e as ImageError {
            switch e {
            case .limits: throw APIError(.contentTooLarge, "\(e) (this server takes at most \(configuration.maxPixels) pixels)")
            case .unsupported: throw APIError(.unsupportedMediaType, "\(e)")
            default: throw APIError(.unprocessableContent, "\(e)")
            }
        }
        let scale = request.upscale ?? defaultRestorer.recipe?.defaultUpscale ?? 2
        let (out, overflow) = (header.width * header.height).multipliedReportingOverflow(by: scale * scale)
        if overflow || out > configuration.maxOutputPixels {
            throw APIError(.contentTooLarge, "\(upload.name): \(header.width)×\(header.height) upscaled ×\(scale) is beyond this server's output limit of \(configuration.maxOutputPixels) pixels")
        }
        do {
            try defaultRestorer.checkMemory(width: header.width, height: header.height, options: request.photoOptions)
        } catch let e as MemoryError {
            throw APIError(.contentTooLarge, "\(upload.name): \(e)")
        }
        let ext = header.format.fileExtension
        do { try FileManager.default.moveItem(at: raw, to: upload.folder.appendingPathComponent("input.\(ext)")) } catch {
            throw APIError(.internalServerError, "\(upload.name): the upload could not be stored")
        }
        return header
    }

    /// Video containers browsers play (the page shows the restored video).
    static let playableVideos: [VideoContainer] = [.mp4, .mov, .webm]

    /// A video upload: a container the page can play, its size and length within the limits
    /// (ffprobe; nothing is decoded).
    func checkVideo(_ upload: SavedUpload, container: VideoContainer, raw: URL) throws {
        guard Self.playableVideos.contains(container) else {
            throw APIError(.unsupportedMediaType, "\(upload.name): the page plays MP4, MOV and WebM videos; restore \(container.rawValue.uppercased()) files with `facerestore restore`")
        }
        let info: VideoInfo
        do { info = try Restorer.probeVideo(raw.path) } catch {
            throw APIError(.unprocessableContent, Self.message(error, input: raw.path, display: upload.name))
        }
        let (pixels, overflow) = info.width.multipliedReportingOverflow(by: info.height)
        if overflow || pixels > configuration.maxPixels {
            throw APIError(.contentTooLarge, "\(upload.name): \(info.width)×\(info.height) frames exceed this server's \(configuration.maxPixels) pixels")
        }
        guard let seconds = info.duration, seconds.isFinite else {
            throw APIError(.unprocessableContent, "\(upload.name): the video's duration is unknown")
        }
        if seconds > configuration.maxVideoSeconds {
            throw APIError(.contentTooLarge, String(format: "%@: %.1f s of video; this server takes at most %.0f s (restore longer videos with `facerestore restore`)",
                                                    upload.name, seconds, configuration.maxVideoSeconds))
        }
        do { try FileManager.default.moveItem(at: raw, to: upload.folder.appendingPathComponent("input.\(container.rawValue)")) } catch {
            throw APIError(.internalServerError, "\(upload.name): the upload could not be stored")
        }
    }

    func discard(_ uploads: [SavedUpload]) {
        for u in uploads { try? FileManager.default.removeItem(at: u.folder) }
    }

    /// Checks the form's options against the installed models.
    func validate(_ request: JobRequest) throws {
        if let model = request.model {
            guard let entry = ModelCatalog.entry(named: model), entry.kind == .faceRestoration else {
                throw APIError(.badRequest, "unknown face model '\(model)' (GET /api/v1/models lists them)")
            }
            guard !entry.alignedOnly else {
                throw APIError(.badRequest, "\(entry.title) restores aligned face crops only; the server restores whole photos")
            }
            guard (try? configuration.store.locate(entry)) != nil else {
                throw APIError(.badRequest, "\(entry.title) is not installed on this server (run: facerestore models fetch \(entry.name))")
            }
        }
        guard (0...1).contains(request.weight) else { throw APIError(.badRequest, "weight must be between 0 and 1") }
        if let s = request.upscale, !(1...8).contains(s) { throw APIError(.badRequest, "upscale must be 1 to 8") }
        do { try request.photoOptions.validate() } catch { throw APIError(.badRequest, "\(error)") }
        if request.background, configuration.restorer.background == nil,
           (try? configuration.store.path(for: .auto, kind: .imageRestoration)) == nil {
            throw APIError(.badRequest, "no Real-ESRGAN model is installed on this server (run: facerestore models fetch realesrgan-x2plus)")
        }
    }

    // MARK: restoring

    static func progress(_ stage: RestoreStage, background: Bool) -> Double {
        switch stage {
        case .decoding: return 0.02
        case .detecting: return 0.05
        case let .restoringFace(k, n): return 0.1 + (background ? 0.4 : 0.8) * Double(k) / Double(max(n, 1))
        case let .background(t, n): return 0.5 + 0.4 * Double(t) / Double(max(n, 1))
        case .pasting: return 0.92
        }
    }

    /// Restores a job taken from the queue, writes its files and reports the end (on a worker thread).
    func process(_ id: JobID) {
        guard let job = store.job(id) else { return }
        let start = job.created
        let request = job.request
        let input = inputFile(id)
        let display = job.snapshot.name
        store.update(id) { $0.status = .running; $0.stage = "loading"; $0.progress = 0.01 }
        jobStarted?(id)
        do {
            guard let input else { throw APIError(.internalServerError, "the upload is gone") }
            let restorer = try pool.restorer(.init(model: request.model, background: request.background))
                .with(threads: threads(running: store.counts.running))
            store.update(id) { s in
                s.license = restorer.licenseNotice
                if restorer.takesFidelity { s.fidelity = request.fidelity ?? Double(FaceRestorer.defaultFidelity) }
            }
            let options = request.photoOptions
            if VideoContainer.of(fileAt: input.path) != nil {
                try processVideo(id, input: input, restorer: restorer, options: options, folder: job.folder, start: start)
                return
            }
            let result = try restorer.restore(file: input.path, options: options) { stage in
                let p = Self.progress(stage, background: request.background)
                self.store.update(id) { $0.stage = stage.name; $0.progress = max($0.progress, p) }
            }
            store.update(id) { $0.stage = "writing"; $0.progress = 0.96 }
            try writeFiles(result, folder: job.folder, faces: true)
            cache.put(id, result)
            let elapsed = (ContinuousClock.now - start).components
            let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
            store.finish(id) { s in
                s.status = .done; s.stage = "done"; s.progress = 1
                s.faces = Self.faces(result)
                s.warnings = result.warnings.map(\.description)
                s.model = restorer.modelName
                s.upscale = result.photo?.upscale ?? request.upscale
                s.width = result.original.width; s.height = result.original.height
                s.revision = 1
                s.seconds = seconds
            }
            logger.info("job done", metadata: ["job": "\(id)", "faces": "\(result.faces.count)", "seconds": "\(String(format: "%.2f", seconds))"])
        } catch {
            let message = Self.message(error, input: input?.path, display: display)
            store.finish(id) { s in s.status = .failed; s.stage = "failed"; s.error = message }
            logger.warning("job failed", metadata: ["job": "\(id)", "error": "\(message)"])
        }
    }

    /// Threads for a job that starts while `running` jobs (itself included) run: `--threads` if
    /// given, else the cores shared among them, so a job alone gets every core.
    func threads(running: Int) -> Int {
        configuration.restorer.threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, min(running, configuration.workers)))
    }

    /// An error's line with the server's own paths replaced by the upload's name.
    static func message(_ error: any Error, input: String?, display: String) -> String {
        if let api = error as? APIError { return api.message }
        var text = "\(error)"
        if let input { text = text.replacingOccurrences(of: input, with: display) }
        return text
    }

    static func faces(_ result: RestoreResult) -> [FaceReport] {
        let pasted = Set(result.photo?.pastedFaces ?? [])
        return result.faces.enumerated().map { k, f in
            FaceReport(index: k, box: f.detection.box, score: f.detection.score, included: pasted.contains(k),
                       identity: f.identityDistance, weight: f.weight)
        }
    }

    /// A video job: every frame restored (temporal mode) into `restored_videos/input.<ext>`.
    func processVideo(_ id: JobID, input: URL, restorer: Restorer, options: PhotoOptions, folder: URL, start: ContinuousClock.Instant) throws {
        var video = VideoOptions()
        video.photo = options
        let out = folder.appendingPathComponent("restored_videos").appendingPathComponent("input." + input.pathExtension)
        try FileManager.default.createDirectory(at: out.deletingLastPathComponent(), withIntermediateDirectories: true)
        store.update(id) { $0.video = true; $0.stage = "restoring_faces"; $0.progress = 0.02 }
        let result = try restorer.restoreVideo(file: input.path, to: out.path, options: video) { p in
            self.store.update(id) { s in
                s.frames = p.frames
                s.totalFrames = p.total
                if let total = p.total, total > 0 { s.progress = max(s.progress, 0.02 + 0.96 * Double(p.frames) / Double(total)) }
            }
        }
        let elapsed = (ContinuousClock.now - start).components
        let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        store.finish(id) { s in
            s.status = .done; s.stage = "done"; s.progress = 1
            s.video = true
            s.frames = result.frames
            s.totalFrames = result.frames
            s.warnings = result.copiedThrough ? ["no face found in the video: it is returned unchanged"] : []
            s.model = restorer.modelName
            s.upscale = 1
            s.width = result.info.width; s.height = result.info.height
            s.revision = 1
            s.seconds = seconds
        }
        logger.info("video job done", metadata: ["job": "\(id)", "frames": "\(result.frames)", "seconds": "\(String(format: "%.2f", seconds))"])
    }

    /// The result image (and, the first time, the faces' crops) under the job folder, atomically.
    func writeFiles(_ result: RestoreResult, folder: URL, faces: Bool) throws {
        var files = result.outputs(OutputOptions(format: Self.resultFormat(result.format), restoredImageOnly: !faces))
        // A TIFF or HEIC input is shown through a PNG copy of it (what the restorer decoded, upright).
        if faces, !Self.browserFormats.contains(result.format) {
            files.append(OutputFile(relativePath: Self.inputView, image: result.original))
        }
        files.removeAll { $0.relativePath.hasPrefix("cmp/") }
        for dir in Set(files.map { ($0.relativePath as NSString).deletingLastPathComponent }) {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent(dir), withIntermediateDirectories: true)
        }
        // Encoded as the CLI encodes them (the restored image with the input's metadata).
        try ImageIO.write(files.map {
            ImageOutput(image: $0.image, alpha: $0.alpha, image16: $0.image16, alpha16: $0.alpha16,
                        path: folder.appendingPathComponent($0.relativePath).path, options: $0.encoding)
        }, threads: 1)
    }

    /// Formats browsers show: kept as they are for the result and the page's "before" image.
    static let browserFormats: Set<ImageFormat> = [.png, .jpeg, .webp]

    /// The result's format: the input's where browsers show it, else PNG (TIFF, BMP: lossless, 16
    /// bits kept) or JPEG (HEIC).
    static func resultFormat(_ input: ImageFormat) -> OutputFormat {
        switch input {
        case .png, .tiff, .bmp: return .png
        case .jpeg, .heic: return .jpg
        case .webp: return .webp
        }
    }

    /// The PNG copy of an input browsers cannot show.
    static let inputView = "input_view.png"

    static let resultExtensions = ["jpg", "png", "webp"]

    /// The result file of a job (the restored image).
    func resultFile(_ id: JobID) -> URL? {
        let dir = folder(id).appendingPathComponent("restored_imgs")
        let videos = folder(id).appendingPathComponent("restored_videos")
        return (Self.resultExtensions.map { dir.appendingPathComponent("input.\($0)") }
                + Self.playableVideos.map { videos.appendingPathComponent("input.\($0.rawValue)") })
            .first { FileManager.default.fileExists(atPath: $0.path) }
    }

    /// The uploaded file, whatever its format.
    func inputFile(_ id: JobID) -> URL? {
        (ImageFormat.allCases.map(\.fileExtension) + Self.playableVideos.map(\.rawValue)).map { folder(id).appendingPathComponent("input.\($0)") }
            .first { FileManager.default.fileExists(atPath: $0.path) }
    }

    /// The input as the page shows it: the upload itself, or its PNG copy once the job has run.
    func inputViewFile(_ id: JobID) -> URL? {
        guard let input = inputFile(id) else { return nil }
        if let f = ImageFormat(extension: input.pathExtension), Self.browserFormats.contains(f) { return input }
        if Self.playableVideos.contains(where: { $0.rawValue == input.pathExtension }) { return input }
        let view = folder(id).appendingPathComponent(Self.inputView)
        return FileManager.default.fileExists(atPath: view.path) ? view : nil
    }

    func faceFile(_ id: JobID, index: Int, restored: Bool) -> URL {
        folder(id).appendingPathComponent(restored ? "restored_faces" : "cropped_faces")
            .appendingPathComponent("input_\(index < 10 ? "0" : "")\(index).png")
    }

    // MARK: re-blending

    /// A new result from the job's cached faces with another weight and/or set of faces, written
    /// over the old one; no network runs unless the cache dropped the job (then it runs again,
    /// deterministically, and the answer says so).
    func reblend(_ id: JobID, weight: Double?, faces: [Int]?) async throws -> JobSnapshot {
        guard let job = store.job(id) else { throw APIError(.notFound, "no job \(id)") }
        guard job.snapshot.status == .done else {
            throw APIError(.conflict, "job \(id) is \(job.snapshot.status.rawValue): only a finished job can be re-blended")
        }
        if job.snapshot.video {
            throw APIError(.conflict, "job \(id) is a video: its faces are not re-blended (rerun it with other options)")
        }
        if let weight, !(0...1).contains(weight) { throw APIError(.badRequest, "weight must be between 0 and 1") }
        if let faces, let bad = faces.first(where: { !job.snapshot.faces.indices.contains($0) }) {
            throw APIError(.badRequest, "no face \(bad): the photo has \(job.snapshot.faces.count) restored face\(job.snapshot.faces.count == 1 ? "" : "s")")
        }
        let request = job.request
        let state = self
        return try await onThread(reblendQueue) {
            try state.withJobLock(id) {
                let restorer = try state.pool.restorer(.init(model: request.model, background: request.background))
                var cached = state.cache.get(id)
                if cached == nil, let input = state.inputFile(id) {
                    state.logger.info("re-blend of a job dropped from the cache: restoring it again", metadata: ["job": "\(id)"])
                    cached = try restorer.restore(file: input.path, options: request.photoOptions)
                }
                guard let base = cached else { throw APIError(.notFound, "job \(id) has no input any more") }
                // What the request leaves out stays as it is now.
                let current = state.store.snapshot(id)
                let keep = current.map { snap in snap.faces.filter(\.included).map(\.index) }
                let again = try restorer.reblend(base, weight: weight ?? current?.weight, faces: faces ?? keep)
                try state.writeFiles(again, folder: job.folder, faces: false)
                state.cache.put(id, again)
                state.store.update(id) { s in
                    s.weight = again.photo?.weight ?? s.weight
                    s.faces = Self.faces(again)
                    s.revision += 1
                }
                guard let snap = state.store.snapshot(id) else { throw APIError(.notFound, "job \(id) was deleted") }
                return snap
            }
        }
    }

    private let jobLocks = JobLocks()

    /// Runs `body` with the job's lock held, so re-blends of one job write in turn.
    func withJobLock<T>(_ id: JobID, _ body: () throws -> T) throws -> T {
        let lock = jobLocks.lock(for: id)
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    // MARK: models

    /// What `GET /api/v1/models` reports.
    func modelsReport() -> ModelsReport {
        let store = configuration.store
        func item(_ e: ModelEntry) -> ModelsReport.Model {
            ModelsReport.Model(name: e.name, title: e.title, kind: e.kind.rawValue, installed: (try? store.locate(e)) != nil,
                               nonCommercial: e.nonCommercial, license: e.license, fidelity: e.takesFidelity, size: e.size)
        }
        // `auto`'s order first, then the face models used only by name; not those that restore
        // aligned crops only (the server restores whole photos).
        let auto = ModelStore.faceModels.compactMap { ModelCatalog.entry(named: $0) }
        let faceModels = (auto + ModelCatalog.entries(of: .faceRestoration).filter { !auto.contains($0) && !$0.alignedOnly }).map(item)
        let general = ModelCatalog.backgroundModels.compactMap { ModelCatalog.entry(named: $0) }.map(item)
        var fallback: String?
        if case .general = defaultRestorer.mode { fallback = defaultRestorer.modelName }
        return ModelsReport(default: defaultRestorer.modelName,
                            defaultName: defaultRestorer.faceRestorer == nil ? nil : Self.catalogName(of: defaultRestorer, store: store),
                            offlineFallback: fallback,
                            install: fallback == nil ? nil : "no face model is installed: run `facerestore models fetch 1.4` on the server, then restart it",
                            faceModels: faceModels, backgroundModels: general,
                            warnings: defaultRestorer.warnings.map(\.description))
    }

    /// The catalog name of the restorer's face model file, if it is a catalog file.
    static func catalogName(of restorer: Restorer, store: ModelStore) -> String? {
        guard let path = try? store.path(for: restorer.configuration.model, kind: .faceRestoration) else { return nil }
        let file = URL(fileURLWithPath: path).lastPathComponent
        return ModelCatalog.entries(of: .faceRestoration).first { $0.fileName == file }?.name
    }
}

/// One lock per job id, created on demand (ids are never reused).
final class JobLocks: Sendable {
    private let locks = Mutex<[JobID: NSLock]>([:])
    func lock(for id: JobID) -> NSLock {
        locks.withLock { m in
            if let l = m[id] { return l }
            let l = NSLock()
            m[id] = l
            return l
        }
    }
}

struct ModelsReport: Codable, Sendable {
    struct Model: Codable, Sendable {
        var name: String
        var title: String
        var kind: String
        var installed: Bool
        var nonCommercial: Bool
        var license: String
        /// A face model that takes CodeFormer's fidelity weight (changing it runs the network again).
        var fidelity: Bool
        var size: Int?
    }
    /// What restores faces when a job names no model.
    var `default`: String
    /// Its catalog name, when it is a catalog file.
    var defaultName: String?
    /// Set when no face model is installed: the general restorer used instead.
    var offlineFallback: String?
    /// How to install a face model, when none is.
    var install: String?
    var faceModels: [Model]
    var backgroundModels: [Model]
    var warnings: [String]
}
