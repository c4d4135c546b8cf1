// `facerestore restore`: upstream `inference_gfpgan.py` (gfpgan 1.3.8, commit 7552a77) as flags
// over the FaceRestore library's `Restorer`, which owns every decision (recipes, model lookup,
// fallbacks, outputs), and its `Batch` (inputs, shards, skipping, reports). This file maps
// arguments, shows progress and lists failures: a batch goes on past bad files, lists them at the
// end and exits 1; a batch that cannot start (bad arguments, no inputs, models missing) exits 2.

import ArgumentParser
import FaceRestore
import Foundation

/// `--bg-upsampler`.
enum BackgroundUpsampler: String, ExpressibleByArgument, CaseIterable {
    /// Real-ESRGAN (upstream's default, which it turns off on CPUs).
    case realesrgan
    /// The LANCZOS4 resize.
    case none
}

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore faces with GFP-GAN (v1, v1.2, v1.3, v1.4), RestoreFormer, RestoreFormer++, CodeFormer or GPEN (BFR 256, 512, 1024, 2048).",
        discussion: """
        Like upstream inference_gfpgan.py; GPEN models run GPEN's own pipeline (face_enhancement.py: \
        its template, Umeyama alignment, mask and blending; -s 1 and threshold 0.9 by default), CodeFormer runs \
        inference_codeformer.py's (small photos enlarged to 512 px first, threshold 0.8, gray photos get gray faces; \
        -w is its fidelity weight). CodeFormer and GPEN weights are for non-commercial use only: bring your own copy; \
        their licence is shown when they load. Models are looked for in $FACERESTORE_HOME/models \
        (default ~/.cache/facerestore/models), then experiments/pretrained_models and gfpgan/weights. \
        Output is deterministic: the same input and flags give the same bytes.

        Large batches (docs/scale.md): --list reads the inputs from a file (one path per line, relative to \
        the listing's folder; - reads standard input), --recursive walks subfolders and mirrors them in the \
        outputs, --skip-existing skips inputs whose restored image exists, --report appends one JSON line per \
        input, and --shard i/N (or auto, from a Kubernetes Indexed Job or a Slurm job array) restores one \
        worker's share. Merge reports with `facerestore report`.

        Exit status: 0 when every input was restored, skipped or had no face; 1 when some inputs failed \
        (listed at the end); 2 when the batch could not run at all (bad arguments, no inputs or an \
        unreadable listing, models missing).
        """
    )

    @Option(name: [.short, .customLong("input")], help: "An image file, or a folder of them.")
    var input: String?

    @Option(name: .long, help: ArgumentHelp("A file listing the inputs, one path per line (relative paths from the listing's folder; blank lines and # comments skipped); - reads standard input.", valueName: "file"))
    var list: String?

    @Flag(name: .long, help: "Walk the input folder's subfolders too (with --list: the listed paths' folders), mirroring them in every output folder.")
    var recursive = false

    @Flag(name: .customLong("skip-existing"), help: "Skip inputs whose restored image already exists in the output folder (a finished earlier run with the same --ext and --suffix).")
    var skipExisting = false

    @Option(name: .long, help: ArgumentHelp("Append one JSON line per input to this file as it finishes (path, status, faces, model, timings, outputs, error, shard, host, pid, time).", valueName: "file.jsonl"))
    var report: String?

    @Option(name: .long, help: ArgumentHelp("Restore only this worker's share of the inputs: i/N (0 ≤ i < N), or auto (a Kubernetes Indexed Job's JOB_COMPLETION_INDEX and JOB_COMPLETIONS, else a Slurm job array's SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT).", valueName: "i/N|auto"))
    var shard: String?

    @Option(name: .customLong("max-pixels"), help: "Largest input image, in pixels, checked from its header before decoding (default 100000000; sides up to 65536 when given).")
    var maxPixels: Int?

    @Option(name: .customLong("stream-pixels"), help: "TIFF photos over this many pixels are restored band by band from the file, in bounded memory (default 40000000).")
    var streamPixels: Int?

    @Option(name: .long, help: "Photos restored side by side, each on its share of the threads; memory holds that many photos (default 1: one photo at a time on every thread, which was as fast on 2 cores).")
    var jobs: Int?

    @Option(name: [.short, .customLong("output")], help: "Output folder.")
    var output = "results"

    @Option(name: [.customShort("v"), .customLong("version")],
            help: "Model: GFPGAN 1, 1.2, 1.3 or 1.4, restoreformer or restoreformer++, codeformer (codeformer-colorization and codeformer-inpainting with --aligned), GPEN gpen-256, gpen-512, gpen-1024 or gpen-2048, or auto (the first installed).")
    var modelVersion = "1.3"

    @Option(name: .customLong("model-path"), help: "A GFPGAN, RestoreFormer (.pth or .ckpt), CodeFormer or GPEN checkpoint to use instead of -v.")
    var modelPath: String?

    @Flag(name: .long, help: "Inputs are aligned face crops (no detection or paste-back).")
    var aligned = false

    @Option(name: [.customShort("s"), .customLong("upscale")],
            help: "Final upsampling of the whole image, 1–8 (default 2; 1 for GPEN models, as GPEN without --use_sr).")
    var upscale: Int?

    @Option(name: .customLong("bg-upsampler"), help: "Background upsampler.")
    var bgUpsampler: BackgroundUpsampler = .none

    @Option(name: .customLong("bg-model"),
            help: "Real-ESRGAN model for --bg-upsampler and the offline fallback: auto (x2plus, x4plus, else the ncnn x4plus from PyPI), a model name, or a .pth/.param file.")
    var bgModel = "auto"

    @Option(name: .customLong("bg-tile"), help: "Tile size for the background upsampler (0: no tiling).")
    var bgTile = 400

    @Flag(name: .customLong("face-upsample"),
          help: "CodeFormer: run each restored face through Real-ESRGAN (the --bg-model) before pasting it, as inference_codeformer.py --face_upsample.")
    var faceUpsample = false

    @Flag(name: .customLong("only-center-face"), help: "Restore only the face nearest the image centre.")
    var onlyCenterFace = false

    @Option(name: .long, help: "Restored image format (auto: as the input; HEIC inputs are written as JPEG).")
    var ext: OutputFormat = .auto

    @Flag(name: .customLong("strip-metadata"),
          help: "Leave the input's EXIF, ICC profile, XMP, IPTC and resolution out of the restored image (only the Software tag is written).")
    var stripMetadata = false

    @Option(name: [.customShort("w"), .customLong("weight")],
            help: "Blend of the restored face with the aligned input when pasting: 1 restored (default), 0 input (upstream GFPGAN ignores -w; here it works). With CodeFormer, its fidelity weight as in inference_codeformer.py: 0 quality … 1 fidelity to the input (default 0.5).")
    var weightOption: Double?

    @Option(name: .long, help: "CodeFormer's fidelity weight, 0–1 (the same as -w with CodeFormer; default 0.5).")
    var fidelity: Double?

    @Flag(name: .customLong("keep-gray"), help: "Gray in, gray out: a gray photo gets gray faces, toned like the photo, and comes out gray.")
    var keepGray = false

    @Option(name: .long, help: "GPEN's name for -w.")
    var alpha: Double?

    @Option(name: .long, help: "Face detector: auto (RetinaFace ResNet50, else MobileNet0.25, whichever is installed), a model name, or a weights file.")
    var detector = "auto"

    @Option(name: .customLong("detection-threshold"), help: "Face detection score threshold (default 0.97; 0.9 for GPEN models).")
    var detectionThreshold: Float?

    @Flag(name: .customLong("no-parse"), help: "Paste back with the square mask instead of the ParseNet face mask.")
    var noParse = false

    @Option(name: .long, help: "A ParseNet checkpoint to use instead of the installed one.")
    var parser: String?

    @Option(name: .long, help: "Fresh StyleGAN noise, drawn as upstream does after torch.manual_seed(N) (default: the checkpoint's stored noise).")
    var seed: UInt64?

    @Option(name: .customLong("max-identity-drift"),
            help: "Paste faces whose ID-dlib distance to the person in the photo exceeds this with a lower weight, the largest within it (needs dlib's face-recognition model; ./scripts/setup installs it).")
    var maxIdentityDrift: Double?

    @Option(name: .long, help: "Suffix for restored file names.")
    var suffix: String?

    @Option(name: .long, help: "Videos: x264's constant rate factor, 0–51 (default 17, visually lossless; VP9's for WebM).")
    var crf = 17

    @Option(name: .long, help: ArgumentHelp("Videos: restore from this many seconds in.", valueName: "seconds"))
    var start: Double?

    @Option(name: .long, help: ArgumentHelp("Videos: restore this many seconds.", valueName: "seconds"))
    var duration: Double?

    @Flag(name: .customLong("no-temporal"), help: "Videos: restore each frame alone (no face tracking or landmark smoothing over time).")
    var noTemporal = false

    @OptionGroup var compute: ComputeOptions

    @Flag(name: .long, help: "Print per-stage timings for each image.")
    var verbose = false

    func validate() throws {
        if (input == nil) == (list == nil) { throw ValidationError("give the inputs with -i/--input or --list, one of the two") }
        if let jobs, !(1...256).contains(jobs) { throw ValidationError("--jobs must be 1 to 256") }
        if let maxPixels, !(1...4_294_967_296).contains(maxPixels) { throw ValidationError("--max-pixels must be 1 to 4294967296") }
        if let streamPixels, streamPixels < 0 { throw ValidationError("--stream-pixels must be 0 or more") }
        if let shard, shard != "auto" { do { _ = try Shard(parsing: shard) } catch { throw ValidationError("--shard: \(error)") } }
        if weightOption != nil, alpha != nil { throw ValidationError("-w/--weight and --alpha are the same setting: give one") }
        if let f = fidelity, !(0...1).contains(f) { throw ValidationError("--fidelity must be between 0 and 1, got \(f)") }
        if !(0...65536).contains(bgTile) { throw ValidationError("--bg-tile must be between 0 (no tiling) and 65536") }
        do { try options.validate() } catch { throw ValidationError("\(error)") }
        if let d = maxIdentityDrift, !(0...2).contains(d) { throw ValidationError("--max-identity-drift is an ID-dlib distance between 0 and 2") }
        do { try videoOptions(photo: options).validate() } catch { throw ValidationError("\(error)") }
    }

    /// The per-image options; nil values take the model's recipe defaults. `-w` is checked here
    /// as a blend weight; `options(for:)` gives it the loaded model's meaning.
    var options: PhotoOptions {
        PhotoOptions(upscale: upscale, onlyCenterFace: onlyCenterFace, detectionThreshold: detectionThreshold,
                     weight: weightOption ?? alpha ?? 1, seed: seed, fidelity: fidelity.map(Float.init), keepGray: keepGray)
    }

    /// The options for the loaded model: with CodeFormer `-w` is its fidelity weight.
    func options(for restorer: Restorer) throws -> PhotoOptions {
        var base = options
        base.weight = alpha ?? 1
        if restorer.takesFidelity, weightOption != nil, fidelity != nil {
            throw ValidationError("with CodeFormer -w is its fidelity weight, the same as --fidelity: give one")
        }
        return restorer.applyingUpstreamWeight(weightOption, to: base)
    }

    var restorerConfiguration: Restorer.Configuration {
        var c = Restorer.Configuration(model: modelPath.map { .file($0) } ?? ModelSpec(modelVersion))
        c.detector = ModelSpec(detector)
        c.useParser = !noParse
        c.parser = parser
        c.background = bgUpsampler == .realesrgan ? ModelSpec(bgModel) : nil
        c.generalModel = ModelSpec(bgModel)
        c.backgroundTile = bgTile
        c.faceUpsampling = faceUpsample
        if let maxPixels { c.limits = ImageLimits(maxWidth: 65536, maxHeight: 65536, maxPixels: maxPixels) }
        if let streamPixels { c.streamingPixels = max(streamPixels, 0) }
        c.aligned = aligned
        c.threads = compute.threads
        c.precision = compute.precision
        c.winograd = !compute.noWinograd
        c.memoryBudget = compute.memoryBudget
        c.verifyChecksums = !compute.noVerify
        c.maxIdentityDrift = maxIdentityDrift
        return c
    }

    func run() throws {
        ProcessTuning.keepFreedMemoryForReuse()
        // Anything that stops the batch before it starts: one line, exit 2.
        var batch: Batch
        let restorer: Restorer, photo: PhotoOptions, reportWriter: BatchReportWriter?
        do {
            batch = try makeBatch()
            reportWriter = try report.map { try BatchReportWriter(path: $0) }
            do { restorer = try Restorer(restorerConfiguration) } catch { throw withHint(error) }
            photo = try options(for: restorer)
        } catch let error as ValidationError {
            throw error
        } catch {
            printError("facerestore: \(error)")
            throw ExitCode(2)
        }
        if let notice = restorer.licenseNotice { printError("facerestore: \(notice)") }
        for warning in restorer.warnings + restorer.warnings(for: photo) { printError("facerestore: \(warning)") }
        if verbose { describe(restorer) }
        if let shard = batch.options.shard {
            printError("facerestore: shard \(shard): \(batch.inputs.count) of \(plural(batch.listed.count, "input"))")
        }

        // Videos (recognised by content) go through the video path; the photos stay a batch.
        let videos = batch.inputs.filter { VideoContainer.of(fileAt: $0.path) != nil }
        var videoFailures: [String] = []
        if !videos.isEmpty {
            videoFailures = restoreVideos(videos, restorer: restorer, photo: photo, report: reportWriter,
                                          shard: batch.options.shard?.description)
            if videos.count == batch.inputs.count {
                guard videoFailures.isEmpty else {
                    printError("facerestore: \(videoFailures.count) of \(plural(videos.count, "video")) failed:")
                    for f in videoFailures { printError("  \(f)") }
                    throw ExitCode(1)
                }
                return
            }
            batch = Batch(batch.inputs.filter { VideoContainer.of(fileAt: $0.path) == nil }, options: batch.options)
        }

        // Temporary files a killed earlier run left in the output folders (their process is gone).
        batch.removeStaleTemporaryFiles()
        for input in batch.inputs where URL(fileURLWithPath: input.name).lastPathComponent != Restorer.baseName(input.path) {
            printError("facerestore: \(input.listed): another input has the same name; its outputs are named \(URL(fileURLWithPath: input.name).lastPathComponent) so that neither is overwritten")
        }
        let progress = Progress(total: batch.inputs.count)
        if verbose, batch.inputs.count > 1 {
            let jobs = batch.jobs(for: restorer)
            printError("photos at a time: \(jobs), \(plural(max(1, restorer.context.threads / jobs), "thread")) each")
        }
        let start = DispatchTime.now().uptimeNanoseconds
        let summary = batch.run(restorer: restorer, options: photo, report: reportWriter) { event in
            switch event {
            case let .started(i, input):
                progress.update(i, input.listed)
            case let .stage(i, input, stage):
                progress.stages(i, input.listed)?(stage)
            case let .finished(i, outcome):
                let file = outcome.input.listed
                switch outcome.status {
                case .done, .noFaces:
                    for warning in outcome.result?.warnings ?? [] {
                        switch warning {
                        case .nonFiniteFaces, .identityDrift: progress.clear(); printError("facerestore: \(file): \(warning)")
                        default: break
                        }
                    }
                    progress.done(i, file, outcome.result.flatMap(detail))
                case .skipped:
                    if verbose { progress.done(i, file, "skipped (its restored image exists)") } else { progress.clear() }
                case .failed:
                    progress.clear()
                    let advice = ((outcome.failure as? RestoreError)?.underlying ?? outcome.failure).flatMap { error -> String? in
                        if case .limits? = error as? ImageError { return " (--max-pixels N raises the limit)" }
                        return nil
                    } ?? ""
                    printError("facerestore: \(outcome.error ?? file)\(advice)")
                }
                if let problem = outcome.reportError { progress.clear(); printError("facerestore: warning: \(problem)") }
            }
        }
        progress.clear()
        let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let done = (summary.counts[.done] ?? 0) + (summary.counts[.noFaces] ?? 0), seconds = String(format: "%.2f", wall)
        let faces = summary.faces
        switch restorer.mode {
        case .photos:
            print("restored \(plural(faces, "face")) in \(plural(done, "image")) into \(output)/restored_imgs (\(seconds) s)")
        case .aligned:
            print("restored \(plural(done, "face")) into \(output)/restored_faces (\(seconds) s)")
        case .general(let general):
            print("restored \(plural(done, "image")) with \(general.title) into \(output)/restored_imgs (\(seconds) s)")
        }
        if let skipped = summary.counts[.skipped], skipped > 0 {
            print("skipped \(plural(skipped, "input")) whose restored image exists")
        }
        for f in summary.noFace { printError("facerestore: \(f): \(RestoreWarning.noFace)") }
        guard summary.failures.isEmpty, videoFailures.isEmpty else {
            let failures = videoFailures + summary.failures
            printError("facerestore: \(failures.count) of \(plural(batch.inputs.count + videos.count, "input")) failed:")
            for f in failures { printError("  \(f)") }
            throw ExitCode(1)
        }
    }

    /// The batch the flags describe: the listed inputs, this worker's shard, the output options.
    func makeBatch() throws -> Batch {
        let inputs: [BatchInput]
        if let list {
            if list == "-" {
                let data = FileHandle.standardInput.readDataToEndOfFile()
                inputs = try BatchListing.list(data, name: "standard input", base: FileManager.default.currentDirectoryPath, recursive: recursive)
            } else {
                inputs = try BatchListing.list(at: list, recursive: recursive)
            }
        } else {
            inputs = try BatchListing.path(input ?? "", recursive: recursive)
        }
        let shard: Shard?
        switch self.shard {
        case nil: shard = nil
        case "auto"?: shard = try Shard.fromEnvironment(ProcessInfo.processInfo.environment)
        case let text?: shard = try Shard(parsing: text)
        }
        return Batch(inputs, options: Batch.Options(output: output, outputs: OutputOptions(format: ext, suffix: suffix, stripMetadata: stripMetadata),
                                                    skipExisting: skipExisting, shard: shard, jobs: jobs))
    }

    /// The progress line's detail for one restored input.
    func detail(_ result: RestoreResult) -> String? {
        var parts: [String] = []
        if result.photo != nil || result.streamed != nil {
            let (n, detected) = (result.restoredFaceCount, result.detectedCount)
            parts.append(n == detected ? plural(n, "face") : "\(n) of \(detected) detected faces")
            if let s = result.streamed, verbose {
                parts.append("streamed from the file, detection at 1/\(s.detectionFactor) scale")
            }
        }
        if verbose {
            // ID-dlib distance of each face as pasted to its crop (when the model is installed).
            let distances = result.faces.compactMap(\.identityDistance) + [result.aligned?.identityDistance].compactMap { $0 }
            if !distances.isEmpty { parts.append("ID-dlib " + distances.map { String(format: "%.3f", $0) }.joined(separator: ", ")) }
            parts.append(result.timings.summary)
        }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }

    /// `--verbose`: which models run.
    func describe(_ restorer: Restorer) {
        let load = String(format: "%.2f", restorer.loadTime)
        switch restorer.mode {
        case .photos(let photo):
            printError("model: \(photo.restorer.modelPath) (\(photo.restorer.network.name), \(photo.recipe); loaded in \(load) s)")
            printError("detector: RetinaFace \(photo.detector.backbone.rawValue); paste mask: \(photo.parser == nil ? "square" : "ParseNet")")
            if let bg = photo.background { printError("background: \(bg.title) (\(bg.modelPath)), tile \(bgTile)") }
        case .aligned(let face):
            printError("model: \(face.modelPath) (\(face.network.name); loaded in \(load) s)")
        case .general(let general):
            printError("general restorer: \(general.title) (\(general.modelPath); loaded in \(load) s)")
        }
    }

}

/// A file, or the files of a folder in name order (hidden files and subfolders skipped).
func listInputs(_ input: String) throws -> [String] {
    try BatchListing.path(input).map(\.path)
}

/// "1 face", "2 faces".
func plural(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

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

    /// A progress line over the background upsampler's tiles, on a terminal only.
    /// Shows the background's tiles as they finish (the stage that can take minutes).
    func stages(_ i: Int, _ file: String) -> ((RestoreStage) -> Void)? {
        guard isTerminal else { return nil }
        let total = self.total
        return { stage in
            guard case let .background(done, tiles) = stage, done > 0 else { return }
            FileHandle.standardError.write(Data("\r\u{1B}[K[\(i + 1)/\(total)] \(file): background tile \(done)/\(tiles)".utf8))
        }
    }

    func clear() {
        if isTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
