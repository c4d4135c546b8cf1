// `facerestore restore`: upstream `inference_gfpgan.py` (gfpgan 1.3.8, commit 7552a77) in Swift.
// With `--aligned`: every input is an aligned face crop, resized to 512 like `cv2.resize`, restored,
// and written as `cropped_faces/`, `restored_faces/` and `cmp/` `<name>_00.png`, as upstream names them.
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
        abstract: "Restore faces with GFP-GAN (v1, v1.2, v1.3, v1.4).",
        discussion: """
        Like upstream inference_gfpgan.py. Models are looked for in $FACERESTORE_HOME/models \
        (default ~/.cache/facerestore/models), then experiments/pretrained_models and gfpgan/weights. \
        Output is deterministic: the same input and flags give the same bytes.
        """
    )

    @Option(name: [.short, .customLong("input")], help: "An image file, or a folder of them.")
    var input: String

    @Option(name: [.short, .customLong("output")], help: "Output folder.")
    var output = "results"

    @Option(name: [.customShort("v"), .customLong("version")], help: "GFPGAN model version: 1, 1.2, 1.3 or 1.4.")
    var modelVersion = "1.3"

    @Option(name: .customLong("model-path"), help: "A GFPGAN checkpoint to use instead of -v.")
    var modelPath: String?

    @Flag(name: .long, help: "Inputs are aligned face crops (no detection or paste-back).")
    var aligned = false

    @Option(name: .long, help: "Fresh StyleGAN noise, drawn as upstream does after torch.manual_seed(N) (default: the checkpoint's stored noise).")
    var seed: UInt64?

    @Option(name: .long, help: "Suffix for restored face file names.")
    var suffix: String?

    @Option(name: .long, help: "CPU threads (default: all cores).")
    var threads: Int?

    @Option(name: .long, help: "Convolution precision: fp32 (default, matches the reference) or bf16 (faster, opt-in).")
    var precision: Precision = .fp32

    @Flag(name: .long, help: "Print per-stage timings for each image.")
    var verbose = false

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        guard aligned else {
            fail("whole-photo restoration (face detection, alignment and paste-back) is not available yet; "
                 + "pass --aligned to restore aligned face crops")
        }
        ProcessTuning.keepFreedMemoryForReuse()
        let context = ComputeContext(threads: threads, precision: precision)
        let files = try inputFiles()
        let model = try resolveModel()
        let loadStart = Date()
        let restorer: FaceRestorer
        do { restorer = try FaceRestorer(modelPath: model, context: context) } catch { fail("\(error)") }
        if verbose {
            printError("model: \(model) (\(restorer.network.config.architecture.rawValue), loaded in \(String(format: "%.2f", Date().timeIntervalSince(loadStart))) s)")
        }
        let dirs = ["cropped_faces", "restored_faces", "cmp"].map { output + "/" + $0 }
        for dir in dirs {
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                fail("\(dir): cannot create the output folder (\(error.localizedDescription))")
            }
        }
        let progress = Progress(total: files.count)
        var failures: [String] = []
        var total = RestoreTimings()
        for (i, file) in files.enumerated() {
            progress.update(i, file)
            do {
                var decode = RestoreTimings()
                let decoded = try decode.measure(\.decode) { try ImageIO.read(path: file) }
                let result = try restorer.restoreAligned(decoded.image, seed: seed, context: context)
                var timings = result.timings
                timings.decode = decode.decode
                let base = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
                let face = "\(base)_00"
                try timings.measure(\.encode) {
                    try ImageIO.write(result.input, to: "\(dirs[0])/\(face).png")
                    try ImageIO.write(result.restored, to: "\(dirs[1])/\(face)\(suffix.map { "_" + $0 } ?? "").png")
                    try ImageIO.write(result.comparison, to: "\(dirs[2])/\(face).png")
                }
                total = total + timings
                progress.done(i, file, verbose ? timings.summary : nil)
            } catch {
                progress.clear()
                printError("facerestore: \(error)")
                failures.append("\(error)")
            }
        }
        progress.clear()
        let restored = files.count - failures.count
        print("restored \(restored) face\(restored == 1 ? "" : "s") into \(output)/restored_faces (\(String(format: "%.2f", total.total)) s)")
        if !failures.isEmpty {
            printError("facerestore: \(failures.count) of \(files.count) input\(files.count == 1 ? "" : "s") failed:")
            for f in failures { printError("  \(f)") }
            throw ExitCode(1)
        }
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

    func resolveModel() throws -> String {
        if let modelPath {
            guard FileManager.default.fileExists(atPath: modelPath) else { fail("\(modelPath): no such model file") }
            return modelPath
        }
        do {
            let entry = try ModelRegistry.entry(named: modelVersion)
            guard entry.kind == .faceRestoration else { fail("-v \(modelVersion): \(entry.title) is not a face restoration model") }
            return try ModelRegistry().locate(entry)
        } catch { fail("\(error)") }
    }
}

/// Prints `facerestore: <message>` to standard error and exits 1.
func fail(_ message: String) -> Never {
    printError("facerestore: \(message)")
    Restore.exit(withError: ExitCode(1))
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
