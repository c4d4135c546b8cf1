// `facerestore restore`: upstream `inference_gfpgan.py` (gfpgan 1.3.8, commit 7552a77) in Swift.
// Whole photos: detect, align, restore and paste back every face, writing `cropped_faces/`,
// `restored_faces/`, `cmp/` (`<name>_<idx:02d>.png`) and `restored_imgs/<name>.<ext>`, as upstream.
// With `--aligned`: every input is an aligned face crop, resized to 512 like `cv2.resize`, restored,
// and written as `<name>_00.png` in the first three folders.
// A batch goes on past bad files, lists them at the end and exits 1; every output is written
// atomically (a temporary file renamed into place).

import ArgumentParser
import FaceRestoreEngine
import FaceRestoreImaging
import FaceRestoreModels
import FaceRestorePipeline
import FaceRestoreWeights
import Foundation

extension Precision: ExpressibleByArgument {}

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore faces with GFP-GAN (v1, v1.2, v1.3, v1.4) or GPEN (BFR 256, 512, 1024, 2048).",
        discussion: """
        Like upstream inference_gfpgan.py; GPEN models run GPEN's own pipeline (face_enhancement.py: \
        its template, Umeyama alignment, mask and blending; -s 1 and threshold 0.9 by default). Models are looked for in $FACERESTORE_HOME/models \
        (default ~/.cache/facerestore/models), then experiments/pretrained_models and gfpgan/weights. \
        Output is deterministic: the same input and flags give the same bytes.
        """
    )

    @Option(name: [.short, .customLong("input")], help: "An image file, or a folder of them.")
    var input: String

    @Option(name: [.short, .customLong("output")], help: "Output folder.")
    var output = "results"

    @Option(name: [.customShort("v"), .customLong("version")],
            help: "Model: GFPGAN 1, 1.2, 1.3 or 1.4, or GPEN gpen-256, gpen-512, gpen-1024 or gpen-2048.")
    var modelVersion = "1.3"

    @Option(name: .customLong("model-path"), help: "A GFPGAN or GPEN checkpoint to use instead of -v.")
    var modelPath: String?

    @Flag(name: .long, help: "Inputs are aligned face crops (no detection or paste-back).")
    var aligned = false

    @Option(name: [.customShort("s"), .customLong("upscale")],
            help: "Final upsampling of the whole image (default 2; 1 for GPEN models, as GPEN without --use_sr).")
    var upscaleOption: Int?

    @Option(name: .customLong("bg-upsampler"),
            help: "Background upsampler: realesrgan (Real-ESRGAN; upstream's default, which it turns off on CPUs) or none (LANCZOS4 resize).")
    var bgUpsampler = "none"

    @Option(name: .customLong("bg-model"),
            help: "Real-ESRGAN model for --bg-upsampler and the offline fallback: auto (x2plus, x4plus, else the ncnn x4plus from PyPI), a registry name, or a .pth/.param file.")
    var bgModel = "auto"

    @Option(name: .customLong("bg-tile"), help: "Tile size for the background upsampler (0: no tiling).")
    var bgTile = 400

    @Flag(name: .customLong("only-center-face"), help: "Restore only the face nearest the image centre.")
    var onlyCenterFace = false

    @Option(name: .long, help: "Restored image format: auto (as the input), png or jpg.")
    var ext = "auto"

    @Option(name: [.customShort("w"), .customLong("weight")],
            help: "Blend of the restored face with the aligned input: 1 restored (default), 0 input. Upstream ignores -w; here it works.")
    var weightOption: Double?

    @Option(name: .long, help: "GPEN's name for -w: blend of the restored face with the aligned input (cv2.addWeighted).")
    var alpha: Double?

    @Option(name: .long, help: "Face detector: auto (RetinaFace ResNet50, else MobileNet0.25, whichever is installed), a registry name, or a .pth file.")
    var detector = "auto"

    @Option(name: .customLong("detection-threshold"), help: "Face detection score threshold (default 0.97; 0.9 for GPEN models).")
    var detectionThresholdOption: Float?

    @Flag(name: .customLong("no-parse"), help: "Paste back with the soft square mask instead of the ParseNet face mask.")
    var noParse = false

    @Option(name: .long, help: "A ParseNet checkpoint to use instead of the installed parsing_parsenet.pth.")
    var parser: String?

    @Option(name: .long, help: "Fresh StyleGAN noise, drawn as upstream does after torch.manual_seed(N) (default: the checkpoint's stored noise).")
    var seed: UInt64?

    @Option(name: .long, help: "Suffix for restored face file names.")
    var suffix: String?

    @Option(name: .long, help: "CPU threads (default: all cores).")
    var threads: Int?

    @Option(name: .long, help: "Convolution precision: fp32 (default, matches the reference) or bf16 (faster, opt-in).")
    var precision: Precision = .fp32

    @Flag(name: .long, help: "Direct convolutions only (no Winograd): about 30% slower, less memory; outputs differ by a few ulps.")
    var noWinograd = false

    @Flag(name: .long, help: "Print per-stage timings for each image.")
    var verbose = false

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let upscaleOption, upscaleOption < 1 || upscaleOption > 8 { throw ValidationError("--upscale must be between 1 and 8") }
        if weightOption != nil, alpha != nil { throw ValidationError("-w/--weight and --alpha are the same setting: give one") }
        if !(0...1).contains(weight) { throw ValidationError("--weight/--alpha must be between 0 and 1") }
        if !["auto", "png", "jpg", "jpeg"].contains(ext.lowercased()) { throw ValidationError("--ext must be auto, png or jpg") }
        if !["none", "realesrgan"].contains(bgUpsampler) { throw ValidationError("--bg-upsampler must be none or realesrgan") }
        if let t = detectionThresholdOption, !(0...1).contains(t) { throw ValidationError("--detection-threshold must be between 0 and 1") }
    }

    /// `-w` or `--alpha` (default 1: the restored face).
    var weight: Double { weightOption ?? alpha ?? 1 }

    /// The model family's defaults where the user gave none: GFPGAN's (upstream inference_gfpgan.py)
    /// or GPEN's (demo.py without --use_sr; RetinaFaceDetection's 0.9).
    func upscale(gpen: Bool) -> Int { upscaleOption ?? (gpen ? 1 : 2) }
    func detectionThreshold(gpen: Bool) -> Float { detectionThresholdOption ?? (gpen ? 0.9 : 0.97) }

    func run() throws {
        ProcessTuning.keepFreedMemoryForReuse()
        let context = ComputeContext(threads: threads, precision: precision, winograd: !noWinograd)
        let files = try inputFiles()
        let model: String
        switch resolveModel() {
        case .success(let path): model = path
        case .failure(let missing):
            // Offline default: no face model, but a general restorer may be installed.
            guard !aligned, let general = try? loadBackground(context: context, spec: "auto") else { fail("\(missing)") }
            printError("facerestore: \(missing)")
            printError("facerestore: restoring the whole image with the general restorer instead: \(general.title) (\(general.modelPath)); "
                       + "faces are not restored by a face model until one is installed")
            return try runGeneral(files, general, context: context)
        }
        let loadStart = Date()
        let tensors: StateDict
        do { tensors = try WeightsFile.load(path: model).0 } catch { fail("\(error)") }
        let gpen = FaceRestorer.isGPEN(tensors)
        // The face model (most of the loading time: weight layout conversions) is built on another
        // thread while this one loads the detector, the parser and the background model.
        let building = Background { try FaceRestorer(stateDict: tensors, modelPath: model, context: context) }
        var parts: (detector: RetinaFace, parser: ParseNet?, background: RealESRGANer?)?
        if !aligned {
            var background: RealESRGANer?
            if bgUpsampler == "realesrgan" {
                do { background = try loadBackground(context: context, spec: bgModel) } catch { fail("\(error)") }
                if verbose { printError("background: \(background!.title) (\(background!.modelPath)), tile \(bgTile)") }
            }
            let (detector, parser) = loadDetectorAndParser(gpen: gpen, context: context)
            parts = (detector, parser, background)
        }
        let restorer: FaceRestorer
        do { restorer = try building.value() } catch { fail("\(error)") }
        if verbose {
            printError("model: \(model) (\(restorer.network.name), loaded in \(String(format: "%.2f", Date().timeIntervalSince(loadStart))) s)")
        }
        if restorer.isGPEN, seed != nil { printError("facerestore: note: GPEN has no random noise (its noise inputs are the encoder's features); --seed has no effect") }
        if let parts {
            let photo = PhotoRestorer(restorer: restorer, detector: parts.detector, parser: parts.parser, background: parts.background)
            return try runPhotos(files, photo, context: context)
        }
        let dirs = makeFolders(["cropped_faces", "restored_faces", "cmp"])
        let (total, failures) = forEachInput(files) { file, decoded, timings in
            let result = try restorer.restoreAligned(decoded.image, seed: seed, context: context)
            timings = timings + result.timings
            let face = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent + "_00"
            try timings.measure(\.encode) {
                try ImageIO.write(result.input, to: "\(dirs[0])/\(face).png")
                try ImageIO.write(result.restored, to: "\(dirs[1])/\(face)\(suffix.map { "_" + $0 } ?? "").png")
                try ImageIO.write(result.comparison, to: "\(dirs[2])/\(face).png")
            }
            return verbose ? timings.summary : nil
        }
        let restored = files.count - failures.count
        print("restored \(restored) face\(restored == 1 ? "" : "s") into \(output)/restored_faces (\(String(format: "%.2f", total.total)) s)")
        try reportFailures(failures, of: files.count)
    }

    /// Creates the output subfolders; one line and exit 1 when one cannot be made.
    func makeFolders(_ names: [String]) -> [String] {
        names.map { name in
            let dir = output + "/" + name
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                fail("\(dir): cannot create the output folder (\(error.localizedDescription))")
            }
            return dir
        }
    }

    /// Decodes each input and passes it to `body` with timings holding the decode time; `body`
    /// restores and writes it, adds its stages to the timings and returns the detail for its
    /// progress line. Shows progress, adds up the timings, and reports and collects failures, so a
    /// batch goes on past bad files.
    func forEachInput(_ files: [String], _ body: (String, DecodedImage, inout RestoreTimings) throws -> String?)
        -> (RestoreTimings, [String]) {
        let progress = Progress(total: files.count)
        var failures: [String] = []
        var total = RestoreTimings()
        for (i, file) in files.enumerated() {
            progress.update(i, file)
            do {
                var timings = RestoreTimings()
                let decoded = try timings.measure(\.decode) { try ImageIO.read(path: file) }
                let detail = try body(file, decoded, &timings)
                total = total + timings
                progress.done(i, file, detail)
            } catch {
                progress.clear()
                printError("facerestore: \(error)")
                failures.append("\(error)")
            }
        }
        progress.clear()
        return (total, failures)
    }

    /// Lists the failed inputs and exits 1 when there are any.
    func reportFailures(_ failures: [String], of count: Int) throws {
        guard !failures.isEmpty else { return }
        printError("facerestore: \(failures.count) of \(count) input\(count == 1 ? "" : "s") failed:")
        for f in failures { printError("  \(f)") }
        throw ExitCode(1)
    }

    /// The detector and the parser (unless `--no-parse` or not installed) for whole photos.
    func loadDetectorAndParser(gpen: Bool, context: ComputeContext) -> (RetinaFace, ParseNet?) {
        let registry = ModelRegistry()
        let net = loadDetector(detector, context: context, verbose: false)
        var parser: ParseNet?
        if !noParse {
            let entry = try! ModelRegistry.entry(named: "parsenet")
            // GPEN's own parser first for GPEN models; facexlib's is the same network.
            let names = gpen ? ["gpen-parsenet", "parsenet"] : ["parsenet"]
            if let parserPath = self.parser {
                guard FileManager.default.fileExists(atPath: parserPath) else { fail("\(parserPath): no such parser file") }
                do { parser = try ParseNet(path: parserPath, context: context) } catch { fail("\(error)") }
            } else if let path = names.lazy.compactMap({ try? registry.locate(ModelRegistry.entry(named: $0)) }).first {
                do { parser = try ParseNet(path: path, context: context) } catch { fail("\(error)") }
            } else {
                let fallback = gpen ? "GPEN's blurred square mask" : "the soft square mask"
                printError("facerestore: note: \(entry.title) is not installed, so faces are pasted back with \(fallback) "
                           + "(upstream uses the parsing mask; `facerestore models fetch \(names[0])` installs it)")
            }
        }
        if verbose { printError("detector: RetinaFace \(net.backbone.rawValue); paste mask: \(parser == nil ? "square" : "ParseNet")") }
        return (net, parser)
    }

    /// The Real-ESRGAN model for `spec`: a file, a registry name, or `auto` (the first installed of
    /// `ModelRegistry.backgroundModels`). Throws one line naming what is missing.
    func loadBackground(context: ComputeContext, spec: String) throws -> RealESRGANer {
        let registry = ModelRegistry()
        let path: String
        if FileManager.default.fileExists(atPath: spec) {
            path = spec
        } else if spec == "auto" {
            guard let found = ModelRegistry.backgroundModels.lazy.compactMap({ try? registry.locate(ModelRegistry.entry(named: $0)) }).first else {
                let offline = try ModelRegistry.entry(named: "realesrgan-x4plus-ncnn")
                throw ModelRegistryError.notInstalled(offline, searched: [registry.installPath(offline)])
            }
            path = found
        } else {
            let entry = try ModelRegistry.entry(named: spec)
            guard entry.kind == .imageRestoration else { throw ValidationError("--bg-model \(spec): \(entry.title) is not a Real-ESRGAN model") }
            path = try registry.locate(entry)
        }
        return try RealESRGANer(modelPath: path, tile: bgTile, tilePad: 10, prePad: 0, context: context)
    }

    /// A progress line over the tiles of one image, on a terminal only.
    func tileProgress(_ index: Int, _ count: Int, _ file: String) -> ((Int, Int) -> Void)? {
        guard isatty(STDERR_FILENO) == 1 else { return nil }
        return { done, total in
            FileHandle.standardError.write(Data("\r\u{1B}[K[\(index + 1)/\(count)] \(file): background tile \(done)/\(total)".utf8))
        }
    }

    /// The offline default: every image through the general restorer at `--upscale`, written to
    /// `restored_imgs/` (alpha through the network as upstream's RealESRGANer does).
    func runGeneral(_ files: [String], _ general: RealESRGANer, context: ComputeContext) throws {
        let dirs = makeFolders(["restored_imgs"])
        let scale = upscale(gpen: modelVersion.lowercased().hasPrefix("gpen"))
        var index = 0
        let (total, failures) = forEachInput(files) { file, decoded, timings in
            defer { index += 1 }
            let progress = tileProgress(index, files.count, file)
            let image = try timings.measure(\.background) {
                try general.enhance(decoded.image, outscale: Double(scale), context: context, progress: progress)
            }
            let alpha = try decoded.alpha.map { a in
                try timings.measure(\.background) {
                    try general.enhanceAlpha(a, width: decoded.image.width, height: decoded.image.height, outscale: Double(scale), context: context)
                }
            }
            let url = URL(fileURLWithPath: file)
            let outExt = ext.lowercased() == "auto" ? (url.pathExtension.isEmpty ? "png" : url.pathExtension) : ext.lowercased()
            let name = url.deletingPathExtension().lastPathComponent + (suffix.map { "_" + $0 } ?? "")
            try timings.measure(\.encode) { try ImageIO.write(image, alpha: alpha, to: "\(dirs[0])/\(name).\(outExt)") }
            return verbose ? timings.summary : nil
        }
        let done = files.count - failures.count
        print("restored \(done) image\(done == 1 ? "" : "s") with \(general.title) into \(output)/restored_imgs (\(String(format: "%.2f", total.total)) s)")
        try reportFailures(failures, of: files.count)
    }

    func runPhotos(_ files: [String], _ photo: PhotoRestorer, context: ComputeContext) throws {
        let dirs = makeFolders(["cropped_faces", "restored_faces", "cmp", "restored_imgs"])
        let gpen = photo.restorer.isGPEN, scale = upscale(gpen: gpen)
        let options = PhotoOptions(upscale: scale, onlyCenterFace: onlyCenterFace, detectionThreshold: detectionThreshold(gpen: gpen),
                                   weight: weight, seed: seed)
        var faceCount = 0, noFace: [String] = [], index = 0
        let (total, failures) = forEachInput(files) { file, decoded, timings in
            defer { index += 1 }
            let result = try photo.restore(decoded.image, options: options, context: context,
                                           backgroundProgress: tileProgress(index, files.count, file))
            timings = timings + result.timings
            let url = URL(fileURLWithPath: file)
            let base = url.deletingPathExtension().lastPathComponent
            let tail = suffix.map { "_" + $0 } ?? ""
            let outExt = ext.lowercased() == "auto" ? (url.pathExtension.isEmpty ? "png" : url.pathExtension) : ext.lowercased()
            // Alpha: through Real-ESRGAN when it upsamples the background (upstream's RealESRGANer),
            // else LANCZOS4 like the background.
            let alpha = try decoded.alpha.map { a -> [UInt8] in
                if let bg = photo.background {
                    return try bg.enhanceAlpha(a, width: decoded.image.width, height: decoded.image.height,
                                               outscale: Double(scale), context: context)
                }
                return PixelImage(width: decoded.image.width, height: decoded.image.height, channels: 1, pixels: a)
                    .resizedLanczos4(width: result.image.width, height: result.image.height).pixels
            }
            try timings.measure(\.encode) {
                // The whole image first (the largest encode), then the faces' files.
                var files: [(image: PixelImage, alpha: [UInt8]?, path: String)] = [(result.image, alpha, "\(dirs[3])/\(base)\(tail).\(outExt)")]
                for (k, face) in result.faces.enumerated() {
                    let name = "\(base)_\(String(format: "%02d", k))"
                    files += [(face.cropped, nil, "\(dirs[0])/\(name).png"), (face.restored, nil, "\(dirs[1])/\(name)\(tail).png"),
                              (face.comparison, nil, "\(dirs[2])/\(name).png")]
                }
                try ImageIO.write(files, threads: context.threads)
            }
            faceCount += result.faces.count
            if result.faces.isEmpty { noFace.append(file) }
            let found = result.faces.count == result.detectedCount
                ? "\(result.faces.count) face\(result.faces.count == 1 ? "" : "s")"
                : "\(result.faces.count) of \(result.detectedCount) detected faces"
            return verbose ? "\(found); \(timings.summary)" : found
        }
        let done = files.count - failures.count
        print("restored \(faceCount) face\(faceCount == 1 ? "" : "s") in \(done) image\(done == 1 ? "" : "s") into \(output)/restored_imgs (\(String(format: "%.2f", total.total)) s)")
        for f in noFace { printError("facerestore: \(f): no face found (the image was upscaled only)") }
        try reportFailures(failures, of: files.count)
    }

    /// The input file, or the regular, non-hidden files of the input folder in name order.
    func inputFiles() throws -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: input, isDirectory: &isDir) else { fail("\(input): no such file or folder") }
        guard isDir.boolValue else { return [input] }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: input) } catch { fail("\(input): cannot list the folder") }
        let files = names.sorted().filter { !$0.hasPrefix(".") }.map { input + "/" + $0 }.filter {
            var d: ObjCBool = false
            return FileManager.default.fileExists(atPath: $0, isDirectory: &d) && !d.boolValue
        }
        if files.isEmpty { fail("\(input): the folder has no files to restore") }
        return files
    }

    /// The face model's path, or (for an official model that is not installed) why not.
    func resolveModel() -> Result<String, ModelRegistryError> {
        if let modelPath {
            guard FileManager.default.fileExists(atPath: modelPath) else { fail("\(modelPath): no such model file") }
            return .success(modelPath)
        }
        do {
            let entry = try ModelRegistry.entry(named: modelVersion)
            guard entry.kind == .faceRestoration else { fail("-v \(modelVersion): \(entry.title) is not a face restoration model") }
            return .success(try ModelRegistry().locate(entry))
        } catch let e as ModelRegistryError {
            if case .notInstalled = e { return .failure(e) }
            fail("\(e)")
        } catch { fail("\(error)") }
    }
}

/// Prints `facerestore: <message>` to standard error and exits 1, at once: another thread may be
/// building the face model inside oneDNN, and the library destructors that a normal `exit` runs
/// would pull its state away under it (a crash instead of the one-line error). Nothing is being
/// written when this is called (outputs are written atomically, and only after loading).
func fail(_ message: String) -> Never {
    printError("facerestore: \(message)")
    fflush(nil)   // every output stream (print buffers standard output)
    _exit(1)
}

/// Progress over a batch: a rewritten line on a terminal, plain lines otherwise.
struct Progress {
    let total: Int
    let isTerminal = isatty(STDERR_FILENO) == 1

    func update(_ i: Int, _ file: String) {
        guard isTerminal else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K[\(i + 1)/\(total)] \(file)".utf8))
    }

    func done(_ i: Int, _ file: String, _ detail: String?) {
        let line = "[\(i + 1)/\(total)] \(file)" + (detail.map { ": " + $0 } ?? "")
        if isTerminal {
            clear()
            if detail != nil { printError(line) }
        } else {
            print(line)
        }
    }

    func clear() {
        if isTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
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
        return try result!.get()
    }
}
